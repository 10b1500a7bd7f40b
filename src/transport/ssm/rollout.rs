//! The rollout: send the command (at most 50 instances each), poll every invocation until it
//! ends, stop what has not started past `max_errors`, cancel on Ctrl-C or the deadline, and
//! fetch each instance's output.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::operation::send_command::SendCommandError;
use aws_sdk_ssm::types::CommandInvocationStatus;
use futures_util::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::judge::{allowed_errors, classify, not_finished, parse_elapsed, report_output};
use super::{
    CANCEL_SETTLE, DELIVERY_TIMEOUT, MAX_IDS_PER_COMMAND, STDERR_LIMIT, STDOUT_LIMIT, SsmError,
    SsmTransport, api_error, retry_throttled, truncated,
};
use crate::aws::is_throttling;
use crate::transport::{Invocation, InvocationStatus, Job, OutputSink, TransportError};

impl SsmTransport {
    async fn send(&self, job: &Job<'_>, ids: &[String]) -> Result<String, SsmError> {
        let comment: String = job.comment.chars().take(100).collect();
        // The same parameters the plan counted against SSM's quota (`crate::carry`).
        let parameters = crate::domain::carry::ssm_parameters(job.script, job.timeout);
        let resp = retry_throttled(|| {
            parameters
                .iter()
                .fold(self.client.send_command(), |send, (name, value)| {
                    send.parameters(*name, vec![value.clone()])
                })
                .document_name("AWS-RunShellScript")
                .set_instance_ids(Some(ids.to_vec()))
                .timeout_seconds(i32::try_from(DELIVERY_TIMEOUT.as_secs()).expect("600 s"))
                .comment(comment.clone())
                .max_concurrency(job.policy.max_concurrency.to_string())
                .max_errors(job.policy.max_errors.to_string())
                .send()
        })
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(SendCommandError::is_max_document_size_exceeded)
            {
                SsmError::DocumentTooLarge {
                    script_bytes: job.script.text.len(),
                    aws: crate::aws::error_message(&e),
                }
            } else {
                api_error("SendCommand", &e)
            }
        })?;
        Ok(resp
            .command()
            .and_then(|c| c.command_id())
            .unwrap_or_default()
            .to_owned())
    }

    /// One pass over every command's invocations: instance id → (status, details). Not under
    /// the shared throttling policy: the poll loop ([`Self::wait`]) is the retry, and stretches
    /// its interval when throttled.
    async fn statuses(
        &self,
        command_id: &str,
    ) -> Result<
        Vec<(String, CommandInvocationStatus, Option<String>)>,
        aws_sdk_ssm::error::SdkError<
            aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsError,
        >,
    > {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let resp = self
                .client
                .list_command_invocations()
                .command_id(command_id)
                .set_next_token(token.clone())
                .send()
                .await?;
            for inv in resp.command_invocations() {
                if let (Some(id), Some(status)) = (inv.instance_id(), inv.status()) {
                    out.push((
                        id.to_owned(),
                        status.clone(),
                        inv.status_details().map(str::to_owned),
                    ));
                }
            }
            token = resp.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// One instance's invocation, once `ListCommandInvocations` said it ended (`listed`).
    /// `GetCommandInvocation` may not know that yet: right after `SendCommand` it answers
    /// `InvocationDoesNotExist`, and it can still say `InProgress` (with partial output) a
    /// moment after the list said the invocation ended. Both are retried with a growing wait;
    /// if it never catches up, the listed status stands, with what output there was.
    async fn fetch(
        &self,
        command_id: &str,
        id: &str,
        listed: InvocationStatus,
        started: Instant,
    ) -> Invocation {
        const ATTEMPTS: u32 = 9;
        let mut last_err = String::new();
        let mut behind: Option<Invocation> = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(250 << (attempt - 1).min(4))).await;
            }
            let got = retry_throttled(|| {
                self.client
                    .get_command_invocation()
                    .command_id(command_id)
                    .instance_id(id)
                    .send()
            })
            .await;
            match got {
                Ok(r) => {
                    let stdout = r.standard_output_content().unwrap_or_default().to_owned();
                    let stderr = r.standard_error_content().unwrap_or_default().to_owned();
                    let terminal = r.status().map_or(Some(InvocationStatus::Failed), |s| {
                        let inv: CommandInvocationStatus = s.as_str().into();
                        classify(&inv, r.status_details())
                    });
                    let code = r.response_code();
                    let duration = r
                        .execution_elapsed_time()
                        .and_then(parse_elapsed)
                        .unwrap_or_else(|| started.elapsed());
                    let inv = Invocation {
                        target: id.to_owned(),
                        status: terminal.unwrap_or(listed),
                        exit_code: (code >= 0).then_some(code),
                        stdout_truncated: truncated(&stdout, STDOUT_LIMIT),
                        command_id: Some(command_id.to_owned()),
                        stderr_truncated: truncated(&stderr, STDERR_LIMIT),
                        outcome: None,
                        // Parsed by deploy, from the output once redacted.
                        result: None,
                        stdout,
                        stderr,
                        duration,
                    };
                    if terminal.is_some() {
                        return inv;
                    }
                    behind = Some(inv);
                }
                Err(e) => {
                    // InvocationDoesNotExist right after sending (throttling was retried
                    // above, under the shared policy): wait, retry.
                    last_err = api_error("GetCommandInvocation", &e).to_string();
                }
            }
        }
        if let Some(mut inv) = behind {
            let note = format!(
                "GetCommandInvocation still said the invocation was running after \
                 ListCommandInvocations said it ended ({listed:?}); its output may be \
                 incomplete"
            );
            inv.stderr = if inv.stderr.is_empty() {
                note
            } else {
                format!("{}\n{note}", inv.stderr)
            };
            return inv;
        }
        Invocation {
            target: id.to_owned(),
            status: InvocationStatus::Failed,
            exit_code: None,
            stdout: String::new(),
            stderr: last_err,
            stdout_truncated: false,
            command_id: None,
            stderr_truncated: false,
            outcome: None,
            duration: started.elapsed(),
            result: None,
        }
    }

    /// One instance's invocation once the rollout ended: its output when it finished,
    /// otherwise what SSM last said of it.
    async fn output(
        &self,
        command_id: &str,
        id: &str,
        state: Option<&(CommandInvocationStatus, Option<InvocationStatus>)>,
        started: Instant,
        sink: &dyn OutputSink,
    ) -> Invocation {
        let inv = match state {
            Some((_, Some(listed))) => {
                let inv = self.fetch(command_id, id, *listed, started).await;
                report_output(&inv, sink);
                inv
            }
            Some((status, None)) => not_finished(id, status.as_str(), started),
            None => not_finished(id, "never reported", started),
        };
        Invocation {
            command_id: Some(command_id.to_owned()),
            ..inv
        }
    }

    async fn cancel_all(&self, commands: &[(String, Vec<String>)], sink: &dyn OutputSink) {
        for (command_id, _) in commands {
            sink.status("ssm", &format!("cancelling command {command_id}"));
            if let Err(e) =
                retry_throttled(|| self.client.cancel_command().command_id(command_id).send()).await
            {
                sink.status("ssm", &api_error("CancelCommand", &e).to_string());
            }
        }
    }

    /// Past `max_errors` (counted by hoist, Undeliverable included): stop what has not
    /// started, as SSM's own `MaxErrors` does, and let running invocations finish — cancelling
    /// a script mid-switch would only cost a host its working release. Only invocations seen
    /// `Pending` or `Delayed` are stopped: one not listed yet (SSM lists an invocation a moment
    /// after `SendCommand`) may already run, and what was never sent SSM's own `MaxErrors`
    /// holds back.
    async fn cancel_pending(
        &self,
        commands: &[(String, Vec<String>)],
        states: &BTreeMap<String, (CommandInvocationStatus, Option<InvocationStatus>)>,
        sink: &dyn OutputSink,
    ) {
        for (command_id, ids) in commands {
            let pending: Vec<String> = ids
                .iter()
                .filter(|id| {
                    states.get(*id).is_some_and(|(s, _)| {
                        matches!(
                            s,
                            CommandInvocationStatus::Pending | CommandInvocationStatus::Delayed
                        )
                    })
                })
                .cloned()
                .collect();
            if pending.is_empty() {
                continue;
            }
            sink.status(
                "ssm",
                &format!("not starting {} pending instance(s)", pending.len()),
            );
            if let Err(e) = retry_throttled(|| {
                self.client
                    .cancel_command()
                    .command_id(command_id)
                    .set_instance_ids(Some(pending.clone()))
                    .send()
            })
            .await
            {
                sink.status("ssm", &api_error("CancelCommand", &e).to_string());
            }
        }
    }

    /// Waits until every instance of every command is terminal (or `deadline`), reporting
    /// status changes. Returns when done, cancelled, or too many instances failed.
    async fn wait(
        &self,
        commands: &[(String, Vec<String>)],
        states: &mut BTreeMap<String, (CommandInvocationStatus, Option<InvocationStatus>)>,
        cancel: &CancellationToken,
        deadline: Instant,
        allowed: Option<usize>,
        sink: &dyn OutputSink,
    ) -> WaitEnd {
        let mut interval = self.poll.first;
        let mut seed = crate::aws::jitter_seed();
        let began = Instant::now();
        loop {
            let mut throttled = false;
            for (command_id, _) in commands {
                match self.statuses(command_id).await {
                    Ok(list) => {
                        for (id, status, details) in list {
                            let terminal = classify(&status, details.as_deref());
                            let entry = states
                                .entry(id.clone())
                                .or_insert((CommandInvocationStatus::Pending, None));
                            if entry.0 != status || entry.1 != terminal {
                                let shown = match &details {
                                    Some(d) if d != status.as_str() => {
                                        format!("{} ({d})", status.as_str())
                                    }
                                    _ => status.as_str().to_owned(),
                                };
                                sink.status(&id, &format!("SSM status {shown}"));
                                *entry = (status, terminal);
                            }
                        }
                    }
                    // Throttled, or the invocations are not visible yet: poll again later.
                    Err(e) if is_throttling(&e) => throttled = true,
                    Err(e) if e.code() == Some("InvalidCommandId") => {}
                    Err(e) => sink.status(
                        "ssm",
                        &format!("{} (will retry)", api_error("ListCommandInvocations", &e)),
                    ),
                }
            }
            let done = states.values().filter(|(_, t)| t.is_some()).count();
            if done == commands.iter().map(|(_, ids)| ids.len()).sum::<usize>() {
                return WaitEnd::Done;
            }
            if let Some(allowed) = allowed {
                let failed = states
                    .values()
                    .filter(|(_, t)| t.is_some_and(|t| t != InvocationStatus::Success))
                    .count();
                if failed > allowed {
                    return WaitEnd::TooManyErrors(failed);
                }
            }
            if Instant::now() >= deadline {
                return WaitEnd::Deadline;
            }
            if throttled {
                interval = (interval * 2).min(self.poll.throttled_max);
            }
            tokio::select! {
                () = tokio::time::sleep(crate::aws::jittered(interval, &mut seed)) => {}
                () = cancel.cancelled() => return WaitEnd::Cancelled,
            }
            if !throttled {
                let cap = if began.elapsed() >= self.poll.later_after {
                    self.poll.later_max
                } else {
                    self.poll.max
                };
                interval = (interval.mul_f32(1.5)).min(cap);
            }
        }
    }
}

/// How many instances' output is fetched at once (`GetCommandInvocation`).
const FETCH_CONCURRENCY: usize = 16;

enum WaitEnd {
    Done,
    Cancelled,
    TooManyErrors(usize),
    Deadline,
}

impl SsmTransport {
    pub(super) async fn run_commands(
        &self,
        job: &Job<'_>,
        cancel: &CancellationToken,
        sink: &dyn OutputSink,
        started: Instant,
    ) -> Result<Vec<Invocation>, TransportError> {
        // One command per 50 instances, sent at once. A chunk SSM refused is reported on its
        // instances; the others' commands run on (only when every send failed is it an
        // error, and then nothing was sent).
        let chunks: Vec<&[String]> = job.targets.chunks(MAX_IDS_PER_COMMAND).collect();
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        let mut unsent: Vec<Invocation> = Vec::new();
        if !cancel.is_cancelled() {
            let sent =
                futures_util::future::join_all(chunks.iter().map(|chunk| self.send(job, chunk)))
                    .await;
            let mut first_error = None;
            for (chunk, result) in chunks.iter().zip(sent) {
                match result {
                    Ok(id) => {
                        sink.status(
                            "ssm",
                            &format!("sent command {id} to {} instance(s)", chunk.len()),
                        );
                        commands.push((id, chunk.to_vec()));
                    }
                    Err(e) => {
                        sink.status("ssm", &e.to_string());
                        unsent.extend(chunk.iter().map(|id| Invocation {
                            status: InvocationStatus::Failed,
                            stderr: format!("the command was not sent to it: {e}"),
                            ..not_finished(id, "not sent", started)
                        }));
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error
                && commands.is_empty()
            {
                return Err(e.into());
            }
        }
        let mut states = BTreeMap::new();
        let deadline = Instant::now() + DELIVERY_TIMEOUT + job.timeout + Duration::from_secs(60);
        let allowed = allowed_errors(job.policy.max_errors, job.targets.len());
        let mut end = if commands.is_empty() {
            WaitEnd::Cancelled
        } else {
            self.wait(
                &commands,
                &mut states,
                cancel,
                deadline,
                Some(allowed),
                sink,
            )
            .await
        };
        if let WaitEnd::TooManyErrors(n) = end {
            sink.status(
                "ssm",
                &format!(
                    "{n} instance(s) failed, more than max_errors ({allowed}): stopping the \
                     rollout; instances already deploying finish"
                ),
            );
            self.cancel_pending(&commands, &states, sink).await;
            end = self
                .wait(&commands, &mut states, cancel, deadline, None, sink)
                .await;
        }
        match end {
            WaitEnd::Done | WaitEnd::TooManyErrors(_) => {}
            WaitEnd::Cancelled | WaitEnd::Deadline => {
                if let WaitEnd::Deadline = end {
                    sink.status("ssm", "the command ran past its deadline");
                }
                self.cancel_all(&commands, sink).await;
                let settle = Instant::now() + CANCEL_SETTLE;
                let _ = self
                    .wait(
                        &commands,
                        &mut states,
                        &CancellationToken::new(),
                        settle,
                        None,
                        sink,
                    )
                    .await;
            }
        }
        // Each finished instance's output, FETCH_CONCURRENCY at a time, in target order.
        let mut fetches = Vec::new();
        for (command_id, ids) in &commands {
            for id in ids {
                fetches.push(self.output(command_id, id, states.get(id), started, sink));
            }
        }
        let mut out: Vec<Invocation> = futures_util::stream::iter(fetches)
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        out.extend(unsent);
        // Instances never sent to (cancelled before their chunk went out).
        for id in job.targets {
            if !out.iter().any(|i| &i.target == id) {
                out.push(Invocation {
                    status: InvocationStatus::Cancelled,
                    ..not_finished(id, "not sent", started)
                });
            }
        }
        out.sort_by_key(|inv| job.targets.iter().position(|t| t == &inv.target));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
    use aws_sdk_ssm::operation::list_command_invocations::{
        ListCommandInvocationsError, ListCommandInvocationsOutput,
    };
    use aws_sdk_ssm::operation::send_command::SendCommandOutput;
    use aws_sdk_ssm::types::{Command, CommandInvocation};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::config::Rate;
    use crate::domain::outcome;
    use crate::plan::script::{Body, render};
    use crate::transport::Transport;
    use crate::transport::ssm::Poll;
    use crate::transport::ssm::testing::DEPLOYED;

    /// What deploy does with a transport's raw output: parse the result line.
    fn parsed(mut out: Vec<Invocation>) -> Vec<Invocation> {
        for inv in &mut out {
            inv.result = outcome::parse(&inv.stdout);
        }
        out
    }

    struct Lines(std::sync::Mutex<Vec<String>>);
    impl OutputSink for Lines {
        fn line(&self, target: &str, line: &str) {
            self.0.lock().unwrap().push(format!("[{target}] {line}"));
        }
    }

    fn job<'a>(
        script: &'a crate::plan::script::Script,
        targets: &'a [String],
        max_errors: Rate,
    ) -> Job<'a> {
        Job {
            script,
            secrets: None,
            targets,
            policy: crate::plan::RolloutPolicy {
                max_concurrency: Rate::Percent(50),
                max_errors,
            },
            timeout: Duration::from_secs(60),
            comment: "test".into(),
        }
    }

    /// SSM takes at most 50 instance ids per `SendCommand`: 120 targets go out as 50 + 50 + 20,
    /// and every instance of every command is waited for and judged.
    #[tokio::test]
    async fn sends_at_most_50_instances_per_command() {
        // The instance ids of each command, in the order SSM got them (sent concurrently).
        let sent: Arc<std::sync::Mutex<Vec<Vec<String>>>> = Arc::default();
        let seen = sent.clone();
        let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(move |r| {
            let mut sent = seen.lock().unwrap();
            sent.push(r.instance_ids().to_vec());
            SendCommandOutput::builder()
                .command(
                    Command::builder()
                        .command_id(format!("cmd-{}", sent.len()))
                        .set_instance_ids(r.instance_ids.clone())
                        .build(),
                )
                .build()
        });
        let ids: Vec<String> = (0..120).map(|n| format!("i-{n:017x}")).collect();
        let commands = sent.clone();
        let list =
            mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |r| {
                let n: usize = r.command_id().unwrap()[4..].parse().unwrap();
                let rows = commands.lock().unwrap()[n - 1]
                    .iter()
                    .map(|id| {
                        CommandInvocation::builder()
                            .instance_id(id)
                            .status(CommandInvocationStatus::Success)
                            .status_details("Success")
                            .build()
                    })
                    .collect();
                ListCommandInvocationsOutput::builder()
                    .set_command_invocations(Some(rows))
                    .build()
            });
        let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
            GetCommandInvocationOutput::builder()
                .instance_id(r.instance_id().unwrap_or_default())
                .status("Success".into())
                .status_details("Success")
                .response_code(0)
                .standard_output_content(DEPLOYED)
                .build()
        });
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&send, &list, &get]);
        let transport = fast(client);
        let script = render(Body::Recreate, &[], &[]);
        let job = job(&script, &ids, Rate::Count(5));
        let out = transport
            .run(
                &job,
                CancellationToken::new(),
                &Lines(std::sync::Mutex::default()),
            )
            .await
            .unwrap();
        let out = parsed(out);
        let mut sizes: Vec<usize> = sent.lock().unwrap().iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [20, 50, 50]);
        assert_eq!(out.len(), 120);
        assert!(out.iter().all(Invocation::deployed));
        let targets: Vec<&str> = out.iter().map(|i| i.target.as_str()).collect();
        assert_eq!(targets, ids.iter().map(String::as_str).collect::<Vec<_>>());
        // Each invocation names the command it belongs to.
        let commands: Vec<&str> = out
            .iter()
            .map(|i| i.command_id.as_deref().unwrap())
            .collect();
        assert_eq!(commands[0], "cmd-1");
        assert_eq!(commands[50], "cmd-2");
        assert_eq!(commands[119], "cmd-3");
    }

    fn fast(client: aws_sdk_ssm::Client) -> SsmTransport {
        SsmTransport::new(client).with_poll(Poll {
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
            throttled_max: Duration::from_millis(40),
            ..Poll::default()
        })
    }

    fn sent_one() -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_ssm::Client::send_command).then_compute_output(|_| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        })
    }

    fn listed(status: CommandInvocationStatus) -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |_| {
            ListCommandInvocationsOutput::builder()
                .command_invocations(
                    CommandInvocation::builder()
                        .instance_id("i-0123456789abcdef0")
                        .status(status.clone())
                        .status_details(status.as_str())
                        .build(),
                )
                .build()
        })
    }

    /// `ListCommandInvocations` may say an invocation ended while `GetCommandInvocation` still
    /// says `InProgress`, with part of the output: hoist asks again until it has the end (the
    /// result line), instead of judging the partial output.
    #[tokio::test]
    async fn an_invocation_that_get_still_reports_running_is_fetched_again_until_it_ended() {
        let gets = Arc::new(AtomicUsize::new(0));
        let counted = gets.clone();
        let get =
            mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(move |r| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                let b = GetCommandInvocationOutput::builder()
                    .instance_id(r.instance_id().unwrap_or_default());
                if n < 2 {
                    b.status("InProgress".into())
                        .status_details("InProgress")
                        .response_code(-1)
                        .standard_output_content("hoist: healthy\n")
                        .build()
                } else {
                    b.status("Success".into())
                        .status_details("Success")
                        .response_code(0)
                        .standard_output_content(DEPLOYED)
                        .build()
                }
            });
        let list = listed(CommandInvocationStatus::Success);
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&sent_one(), &list, &get]);
        let script = render(Body::Recreate, &[], &[]);
        let ids = ["i-0123456789abcdef0".to_owned()];
        let out = fast(client)
            .run(
                &job(&script, &ids, Rate::Count(0)),
                CancellationToken::new(),
                &Lines(std::sync::Mutex::default()),
            )
            .await
            .unwrap();
        let out = parsed(out);
        assert_eq!(gets.load(Ordering::SeqCst), 3);
        assert_eq!(out[0].status, InvocationStatus::Success);
        assert!(out[0].deployed(), "{:?}", out[0]);
    }

    /// SSM's `MaxDocumentSizeExceeded` is said in plain words: the quota, the script's size,
    /// and that no host received it.
    #[tokio::test]
    async fn max_document_size_exceeded_is_explained_in_plain_words() {
        use aws_sdk_ssm::types::error::MaxDocumentSizeExceeded;
        let refused = mock!(aws_sdk_ssm::Client::send_command).then_error(|| {
            SendCommandError::MaxDocumentSizeExceeded(
                MaxDocumentSizeExceeded::builder()
                    .message("Document content exceeds the maximum size")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &[&refused]);
        let script = render(Body::Recreate, &[], &[]);
        let ids = ["i-0123456789abcdef0".to_owned()];
        let out = fast(client)
            .run(
                &job(&script, &ids, Rate::Count(0)),
                CancellationToken::new(),
                &Lines(std::sync::Mutex::default()),
            )
            .await;
        let text = match out {
            Err(e) => e.to_string(),
            Ok(invs) => invs.iter().map(|i| i.stderr.clone()).collect(),
        };
        assert!(text.contains("64 KB quota"), "{text}");
        assert!(
            text.contains(&format!("({} bytes)", script.text.len())),
            "{text}"
        );
        assert!(text.contains("no host received it"), "{text}");
    }

    /// The agent cuts stdout by bytes and appends its suffix: multibyte output under 24,000
    /// characters can be cut, and the suffix alone tells a cut.
    #[test]
    fn truncation_is_told_by_bytes_or_by_the_agents_suffix() {
        let multibyte = "é".repeat(12_000); // 12,000 characters, 24,000 bytes
        assert!(truncated(&multibyte, STDOUT_LIMIT));
        let cut = format!("{}{}", "a".repeat(100), crate::transport::ssm::TRUNCATED);
        assert!(truncated(&cut, STDOUT_LIMIT));
        assert!(!truncated(&"a".repeat(23_999), STDOUT_LIMIT));
        assert!(!truncated(DEPLOYED, STDOUT_LIMIT));
    }

    /// A command SSM refuses does not abandon the others, already sent: its instances are
    /// reported not sent (failed), every other instance is waited for and judged.
    #[tokio::test]
    async fn a_refused_command_fails_its_instances_and_the_others_run() {
        use aws_sdk_ssm::operation::send_command::SendCommandError;
        use aws_sdk_ssm::types::error::InvalidInstanceId;
        let refused = mock!(aws_sdk_ssm::Client::send_command)
            .match_requests(|r| r.instance_ids().len() == 20)
            .then_error(|| {
                SendCommandError::InvalidInstanceId(
                    InvalidInstanceId::builder()
                        .message("Instances [[i-0000000000000064]] not in a valid state")
                        .build(),
                )
            });
        let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(|r| {
            SendCommandOutput::builder()
                .command(
                    Command::builder()
                        .command_id(format!("cmd-{}", r.instance_ids()[0]))
                        .build(),
                )
                .build()
        });
        let ids: Vec<String> = (0..120).map(|n| format!("i-{n:016x}")).collect();
        let by_first: std::collections::HashMap<String, Vec<String>> = ids
            .chunks(50)
            .map(|c| (format!("cmd-{}", c[0]), c.to_vec()))
            .collect();
        let list =
            mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |r| {
                let rows = by_first[r.command_id().unwrap()]
                    .iter()
                    .map(|id| {
                        CommandInvocation::builder()
                            .instance_id(id)
                            .status(CommandInvocationStatus::Success)
                            .status_details("Success")
                            .build()
                    })
                    .collect();
                ListCommandInvocationsOutput::builder()
                    .set_command_invocations(Some(rows))
                    .build()
            });
        let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
            GetCommandInvocationOutput::builder()
                .instance_id(r.instance_id().unwrap_or_default())
                .status("Success".into())
                .status_details("Success")
                .response_code(0)
                .standard_output_content(DEPLOYED)
                .build()
        });
        let client = mock_client!(
            aws_sdk_ssm,
            RuleMode::MatchAny,
            &[&refused, &send, &list, &get]
        );
        let transport = fast(client);
        let script = render(Body::Recreate, &[], &[]);
        let job = job(&script, &ids, Rate::Percent(100));
        let out = parsed(
            transport
                .run(
                    &job,
                    CancellationToken::new(),
                    &Lines(std::sync::Mutex::default()),
                )
                .await
                .unwrap(),
        );
        let targets: Vec<&str> = out.iter().map(|i| i.target.as_str()).collect();
        assert_eq!(targets, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out[..100].iter().all(Invocation::deployed));
        for inv in &out[100..] {
            assert_eq!(inv.status, InvocationStatus::Failed);
            assert!(
                inv.stderr.contains("was not sent") && inv.stderr.contains("SendCommand"),
                "{}",
                inv.stderr
            );
        }
    }

    /// Past `max_errors` hoist stops only what has not started: the pending instance is
    /// cancelled, the one mid-deploy finishes (cancelling it would cost it its release).
    #[tokio::test]
    async fn past_max_errors_only_pending_instances_are_cancelled() {
        use aws_sdk_ssm::operation::cancel_command::CancelCommandOutput;
        let ids = [
            "i-0000000000000000a",
            "i-0000000000000000b",
            "i-0000000000000000c",
        ];
        let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        });
        let cancelled = Arc::new(std::sync::Mutex::new(Vec::<Vec<String>>::new()));
        let seen = cancelled.clone();
        let cancel = mock!(aws_sdk_ssm::Client::cancel_command).then_compute_output(move |r| {
            seen.lock().unwrap().push(r.instance_ids().to_vec());
            CancelCommandOutput::builder().build()
        });
        let after_cancel = cancelled.clone();
        let list =
            mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |_| {
                let row = |id: &str, s: &str| {
                    CommandInvocation::builder()
                        .instance_id(id)
                        .status(CommandInvocationStatus::from(s))
                        .status_details(s)
                        .build()
                };
                let rows = if after_cancel.lock().unwrap().is_empty() {
                    vec![
                        row(ids[0], "Failed"),
                        row(ids[1], "InProgress"),
                        row(ids[2], "Pending"),
                    ]
                } else {
                    vec![
                        row(ids[0], "Failed"),
                        row(ids[1], "Success"),
                        row(ids[2], "Cancelled"),
                    ]
                };
                ListCommandInvocationsOutput::builder()
                    .set_command_invocations(Some(rows))
                    .build()
            });
        let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
            let id = r.instance_id().unwrap_or_default();
            let (status, code, out) = match id {
                "i-0000000000000000a" => ("Failed", 1, ""),
                "i-0000000000000000b" => ("Success", 0, DEPLOYED),
                _ => ("Cancelled", -1, ""),
            };
            GetCommandInvocationOutput::builder()
                .instance_id(id)
                .status(status.into())
                .status_details(status)
                .response_code(code)
                .standard_output_content(out)
                .build()
        });
        let client = mock_client!(
            aws_sdk_ssm,
            RuleMode::MatchAny,
            &[&send, &cancel, &list, &get]
        );
        let ids: Vec<String> = ids.iter().map(std::string::ToString::to_string).collect();
        let transport = SsmTransport::new(client).with_poll(Poll {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            throttled_max: Duration::from_millis(40),
            ..Poll::default()
        });
        let script = render(Body::Recreate, &[], &[]);
        let out = transport
            .run(
                &job(&script, &ids, Rate::Count(0)),
                CancellationToken::new(),
                &Lines(std::sync::Mutex::default()),
            )
            .await
            .unwrap();
        let out = parsed(out);
        assert_eq!(*cancelled.lock().unwrap(), [vec![ids[2].clone()]]);
        assert_eq!(out[0].status, InvocationStatus::Failed);
        assert!(
            out[1].deployed(),
            "the running instance finished its deploy"
        );
        assert_eq!(out[2].status, InvocationStatus::Cancelled);
    }

    /// Three instances: SSM's overall command would say Success (undeliverable instances do
    /// not count as errors), but hoist judges each one: only `a` deployed.
    #[tokio::test]
    async fn judges_each_instance_not_the_command() {
        let ids = [
            "i-0000000000000000a",
            "i-0000000000000000b",
            "i-0000000000000000c",
        ];
        let send = mock!(aws_sdk_ssm::Client::send_command).then_output(|| {
            SendCommandOutput::builder()
                .command(Command::builder().command_id("cmd-1").build())
                .build()
        });
        // First poll: nothing visible yet (eventual consistency); then throttled once; then
        // running; then final.
        let polls = Arc::new(AtomicUsize::new(0));
        let p = polls.clone();
        let list = mock!(aws_sdk_ssm::Client::list_command_invocations)
            .match_requests(|r| r.command_id() == Some("cmd-1"))
            .then_compute_output(move |_| {
                let n = p.fetch_add(1, Ordering::SeqCst);
                let row = |id: &str, s: &str, d: &str| {
                    CommandInvocation::builder()
                        .instance_id(id)
                        .status(CommandInvocationStatus::from(s))
                        .status_details(d)
                        .build()
                };
                let rows = match n {
                    0 => vec![],
                    1 => ids
                        .iter()
                        .map(|i| row(i, "InProgress", "InProgress"))
                        .collect(),
                    _ => vec![
                        row(ids[0], "Success", "Success"),
                        row(ids[1], "Failed", "Undeliverable"),
                        row(ids[2], "Success", "Success"),
                    ],
                };
                ListCommandInvocationsOutput::builder()
                    .set_command_invocations(Some(rows))
                    .build()
            });
        let throttle = mock!(aws_sdk_ssm::Client::list_command_invocations)
            .sequence()
            .error(|| {
                ListCommandInvocationsError::generic(
                    aws_sdk_ssm::error::ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
            .build();
        let get = mock!(aws_sdk_ssm::Client::get_command_invocation).then_compute_output(|r| {
            let id = r.instance_id().unwrap_or_default();
            let (status, details, code, out) = match id {
                "i-0000000000000000a" => ("Success", "Success", 0, DEPLOYED),
                "i-0000000000000000b" => ("Failed", "Undeliverable", -1, ""),
                // Exit 0 but no result line: the script did not finish its job.
                _ => ("Success", "Success", 0, "hoist: starting\n"),
            };
            GetCommandInvocationOutput::builder()
                .instance_id(id)
                .status(status.into())
                .status_details(details)
                .response_code(code)
                .standard_output_content(out)
                .build()
        });
        let client = mock_client!(
            aws_sdk_ssm,
            RuleMode::MatchAny,
            &[&send, &throttle, &list, &get]
        );
        let ids: Vec<String> = ids.iter().map(std::string::ToString::to_string).collect();
        let transport = SsmTransport::new(client).with_poll(Poll {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
            throttled_max: Duration::from_millis(40),
            ..Poll::default()
        });
        let script = render(Body::Recreate, &[], &[]);
        let job = job(&script, &ids, Rate::Count(5));
        let sink = Lines(std::sync::Mutex::default());
        let out = transport
            .run(&job, CancellationToken::new(), &sink)
            .await
            .unwrap();
        let out = parsed(out);
        assert_eq!(out.len(), 3);
        assert!(out[0].deployed());
        assert_eq!(out[1].status, InvocationStatus::Undeliverable);
        assert_eq!(out[1].exit_code, None, "ResponseCode -1: never ran");
        assert!(!out[1].deployed());
        assert!(!out[2].deployed());
        assert!(out[2].failure_reason().unwrap().contains("no HOIST-RESULT"));
        let (t, p) = (throttle.num_calls(), polls.load(Ordering::SeqCst));
        assert!(t >= 1 && p >= 3, "throttled {t}, polls {p}");
        let lines = sink.0.lock().unwrap().join("\n");
        assert!(lines.contains("Failed (Undeliverable)"), "{lines}");
    }
}

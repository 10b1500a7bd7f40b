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
    CANCEL_SETTLE, MAX_IDS_PER_COMMAND, STDERR_LIMIT, STDOUT_LIMIT, SsmError, SsmTransport,
    api_error, retry_throttled, truncated,
};
use crate::aws::is_throttling;
use crate::domain::waves::{SETTLE_MARGIN, Spread, command_timeout};
use crate::transport::{Invocation, InvocationStatus, Job, OutputSink, TransportError};

impl SsmTransport {
    /// Sends the script to `ids` (at most 50) with `timeout` as SSM's `TimeoutSeconds`
    /// (the command's delivery timeout, its waves included: [`crate::domain::waves`]).
    async fn send(
        &self,
        job: &Job<'_>,
        ids: &[String],
        timeout: Duration,
    ) -> Result<String, SsmError> {
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
                .timeout_seconds(timeout_seconds(timeout))
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
            // Only these commands' instances: `states` also holds earlier commands'.
            let done = commands
                .iter()
                .flat_map(|(_, ids)| ids)
                .all(|id| states.get(id).is_some_and(|(_, t)| t.is_some()));
            if done {
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

/// SSM's `TimeoutSeconds` for a command: within the API's bounds (30 s to 30 days; the plan
/// refuses a rollout whose waves need more).
fn timeout_seconds(timeout: Duration) -> i32 {
    let secs = timeout
        .as_secs()
        .clamp(30, crate::domain::waves::MAX_TIMEOUT_SECONDS);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

impl SsmTransport {
    pub(super) async fn run_commands(
        &self,
        job: &Job<'_>,
        cancel: &CancellationToken,
        sink: &dyn OutputSink,
        started: Instant,
    ) -> Result<Vec<Invocation>, TransportError> {
        // One command per 50 instances. SSM applies MaxConcurrency per command, so with a
        // count the commands go one after another (three at once would run three times the
        // count); with a percentage, at once (`crate::domain::waves`). A command SSM refused
        // is reported on its instances and the others run on (only when every send failed is
        // it an error, and then nothing was sent). Past max_errors, on Ctrl-C or the
        // deadline, the commands not sent yet are not sent.
        let spread = Spread::of(job.policy.max_concurrency, job.targets.len());
        let chunks: Vec<(usize, &[String])> = job
            .targets
            .chunks(MAX_IDS_PER_COMMAND)
            .enumerate()
            .collect();
        let groups: Vec<Vec<(usize, &[String])>> = if spread.one_after_another {
            chunks.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![chunks]
        };
        let total = spread.commands.len();
        let allowed = allowed_errors(job.policy.max_errors, job.targets.len());
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        let mut unsent: Vec<Invocation> = Vec::new();
        let mut states = BTreeMap::new();
        for group in groups {
            if cancel.is_cancelled() {
                break;
            }
            let timeouts: Vec<Duration> = group
                .iter()
                .map(|(n, _)| command_timeout(spread.waves[*n], job.timeout))
                .collect();
            let sent = futures_util::future::join_all(
                group
                    .iter()
                    .zip(&timeouts)
                    .map(|((_, chunk), timeout)| self.send(job, chunk, *timeout)),
            )
            .await;
            let mut first_error = None;
            let mut these: Vec<(String, Vec<String>)> = Vec::new();
            for ((n, chunk), result) in group.iter().zip(sent) {
                match result {
                    Ok(id) => {
                        let which = if total > 1 {
                            format!(" (command {} of {total})", n + 1)
                        } else {
                            String::new()
                        };
                        sink.status(
                            "ssm",
                            &format!("sent command {id} to {} instance(s){which}", chunk.len()),
                        );
                        sink.command_sent(&id);
                        these.push((id, chunk.to_vec()));
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
                && these.is_empty()
                && commands.is_empty()
            {
                return Err(e.into());
            }
            if these.is_empty() {
                continue;
            }
            let longest = timeouts.iter().max().copied().unwrap_or_default();
            let deadline = Instant::now() + longest + SETTLE_MARGIN;
            let stop = self
                .finish(&these, &mut states, cancel, deadline, allowed, sink)
                .await;
            commands.extend(these);
            if stop {
                break;
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
        // Instances never sent to (cancelled, or stopped, before their command went out).
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

    /// Waits for `commands` (sent together) to end: past `allowed` errors (counted over the
    /// whole run) stops what has not started and lets the rest finish; on Ctrl-C or the
    /// deadline cancels them. True when the run must not go on to further commands.
    async fn finish(
        &self,
        commands: &[(String, Vec<String>)],
        states: &mut BTreeMap<String, (CommandInvocationStatus, Option<InvocationStatus>)>,
        cancel: &CancellationToken,
        deadline: Instant,
        allowed: usize,
        sink: &dyn OutputSink,
    ) -> bool {
        let mut end = self
            .wait(commands, states, cancel, deadline, Some(allowed), sink)
            .await;
        if let WaitEnd::TooManyErrors(n) = end {
            sink.status(
                "ssm",
                &format!(
                    "{n} instance(s) failed, more than max_errors ({allowed}): stopping the \
                     rollout; instances already deploying finish"
                ),
            );
            self.cancel_pending(commands, states, sink).await;
            end = self
                .wait(commands, states, cancel, deadline, None, sink)
                .await;
            if let WaitEnd::Done = end {
                return true;
            }
        }
        match end {
            WaitEnd::Done => false,
            WaitEnd::TooManyErrors(_) => true,
            WaitEnd::Cancelled | WaitEnd::Deadline => {
                if let WaitEnd::Deadline = end {
                    sink.status("ssm", "the command ran past its deadline");
                }
                self.cancel_all(commands, sink).await;
                let settle = Instant::now() + CANCEL_SETTLE;
                let _ = self
                    .wait(
                        commands,
                        states,
                        &CancellationToken::new(),
                        settle,
                        None,
                        sink,
                    )
                    .await;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;

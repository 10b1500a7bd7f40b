//! The SSM transport: runs the script on EC2 instances with SSM Run Command
//! (`AWS-RunShellScript`) and judges every instance on its own.
//!
//! What it gets right that SSM-based deploy steps often do not: it waits for every
//! invocation; it never trusts the command's overall status (SSM does not count undeliverable
//! instances as errors); it reads every instance's output; secrets travel as a short-lived
//! SecureString parameter the instance fetches itself, never in the command text; Ctrl-C
//! cancels the command and reports where each instance was left.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{CommandInvocationStatus, InstanceInformationStringFilter};
use tokio_util::sync::CancellationToken;

use super::{Invocation, InvocationStatus, Job, OutputSink, Transport, TransportError};
use crate::config::{Rate, Targets};
use crate::outcome;

/// SSM accepts at most 50 instance ids in one SendCommand.
pub const MAX_IDS_PER_COMMAND: usize = 50;
/// GetCommandInvocation returns at most this many characters of each stream.
pub const STDOUT_LIMIT: usize = 24_000;
pub const STDERR_LIMIT: usize = 8_000;

/// How long an instance may take to pick the command up before SSM gives up on it.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(600);
/// After CancelCommand, how long to wait for instances to settle before reporting.
const CANCEL_SETTLE: Duration = Duration::from_secs(30);

/// Polling: fast at first, then backing off; throttling stretches the interval further.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            first: Duration::from_millis(500),
            max: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SsmError {
    #[error("SSM {operation} failed: {message}")]
    Api {
        operation: &'static str,
        message: String,
    },
    #[error("preflight failed, nothing was changed:\n{}", .0.join("\n"))]
    Preflight(Vec<String>),
    #[error("no instance matches the targets ({0})")]
    NoTargets(String),
    #[error(
        "the secret env is {0} bytes; the SSM SecureString parameter holds at most {1} in \
         its tier"
    )]
    SecretsTooLarge(usize, usize),
    #[error(
        "the secret parameter {0} already exists: another run chose the same name; nothing \
         was sent (run the deploy again)"
    )]
    ParameterCollision(String),
}

pub(super) fn api_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    err: &aws_sdk_ssm::error::SdkError<E>,
) -> SsmError {
    SsmError::Api {
        operation,
        message: crate::aws::error_message(err),
    }
}

fn is_throttling<E: ProvideErrorMetadata>(err: &aws_sdk_ssm::error::SdkError<E>) -> bool {
    matches!(
        err.code(),
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
        )
    )
}

/// An instance SSM knows, as preflight sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedInstance {
    pub id: String,
    pub ping_status: String,
    pub platform: String,
}

/// Resolves the config's targets to instance ids and checks every one is managed, online and
/// Linux. Fails naming each instance that is not, before anything changes.
pub async fn preflight(client: &Client, targets: &Targets) -> Result<Vec<String>, SsmError> {
    let mut found: BTreeMap<String, ManagedInstance> = BTreeMap::new();
    if !targets.instance_ids.is_empty() {
        for chunk in targets.instance_ids.chunks(50) {
            let filter = InstanceInformationStringFilter::builder()
                .key("InstanceIds")
                .set_values(Some(chunk.to_vec()))
                .build()
                .expect("key and values set");
            for i in describe(client, vec![filter]).await? {
                found.insert(i.id.clone(), i);
            }
        }
    }
    let mut tagged = BTreeSet::new();
    if !targets.tags.is_empty() {
        let filters = targets
            .tags
            .iter()
            .map(|(k, vs)| {
                InstanceInformationStringFilter::builder()
                    .key(format!("tag:{k}"))
                    .set_values(Some(vs.clone()))
                    .build()
                    .expect("key and values set")
            })
            .collect();
        for i in describe(client, filters).await? {
            tagged.insert(i.id.clone());
            found.insert(i.id.clone(), i);
        }
    }
    let mut ids: Vec<String> = targets.instance_ids.clone();
    ids.extend(
        tagged
            .into_iter()
            .filter(|id| !targets.instance_ids.contains(id)),
    );
    if ids.is_empty() {
        return Err(SsmError::NoTargets(describe_targets(targets)));
    }
    let problems = judge_preflight(&ids, &found);
    if problems.is_empty() {
        Ok(ids)
    } else {
        Err(SsmError::Preflight(problems))
    }
}

/// Pure: what is wrong with each wanted instance, given what SSM reported.
pub fn judge_preflight(ids: &[String], found: &BTreeMap<String, ManagedInstance>) -> Vec<String> {
    let mut problems = Vec::new();
    for id in ids {
        match found.get(id) {
            None => problems.push(format!(
                "  {id}: not managed by SSM (no agent registered in this account and region, \
                 or the instance lacks an instance profile allowing SSM)"
            )),
            Some(i) if i.ping_status != "Online" => problems.push(format!(
                "  {id}: SSM agent is {} (not Online): the instance is stopped or its agent \
                 cannot reach SSM",
                i.ping_status
            )),
            Some(i) if i.platform != "Linux" => problems.push(format!(
                "  {id}: platform is {}, hoist's scripts need Linux",
                i.platform
            )),
            Some(_) => {}
        }
    }
    problems
}

fn describe_targets(t: &Targets) -> String {
    let mut parts: Vec<String> = t.instance_ids.clone();
    for (k, vs) in &t.tags {
        parts.push(format!("tag {k} in [{}]", vs.join(", ")));
    }
    parts.join("; ")
}

async fn describe(
    client: &Client,
    filters: Vec<InstanceInformationStringFilter>,
) -> Result<Vec<ManagedInstance>, SsmError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let resp = retry_throttled(|| {
            client
                .describe_instance_information()
                .set_filters(Some(filters.clone()))
                .set_next_token(token.clone())
                .send()
        })
        .await
        .map_err(|e| api_error("DescribeInstanceInformation", &e))?;
        for i in resp.instance_information_list() {
            out.push(ManagedInstance {
                id: i.instance_id().unwrap_or_default().to_owned(),
                ping_status: i
                    .ping_status()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                platform: i
                    .platform_type()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            });
        }
        token = resp.next_token().map(str::to_owned);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Retries a call while SSM throttles it, with exponential backoff (on top of the SDK's own
/// retries), for up to about a minute.
pub(super) async fn retry_throttled<T, E, F, Fut>(
    mut call: F,
) -> Result<T, aws_sdk_ssm::error::SdkError<E>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, aws_sdk_ssm::error::SdkError<E>>>,
{
    let mut delay = Duration::from_millis(250);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match call().await {
            Err(e) if is_throttling(&e) && Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(8));
            }
            other => return other,
        }
    }
}

/// Maps SSM's (Status, StatusDetails) to a terminal outcome; `None` while still running.
pub fn classify(
    status: &CommandInvocationStatus,
    details: Option<&str>,
) -> Option<InvocationStatus> {
    let details: String = details
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match status {
        CommandInvocationStatus::Pending
        | CommandInvocationStatus::InProgress
        | CommandInvocationStatus::Delayed
        | CommandInvocationStatus::Cancelling => return None,
        CommandInvocationStatus::Success => InvocationStatus::Success,
        CommandInvocationStatus::Cancelled => InvocationStatus::Cancelled,
        CommandInvocationStatus::TimedOut => match details.as_str() {
            "deliverytimedout" => InvocationStatus::DeliveryTimedOut,
            "executiontimedout" => InvocationStatus::ExecutionTimedOut,
            _ => InvocationStatus::TimedOut,
        },
        CommandInvocationStatus::Failed => match details.as_str() {
            "undeliverable" => InvocationStatus::Undeliverable,
            "terminated" => InvocationStatus::Terminated,
            "accessdenied" => InvocationStatus::AccessDenied,
            "deliverytimedout" => InvocationStatus::DeliveryTimedOut,
            "executiontimedout" => InvocationStatus::ExecutionTimedOut,
            _ => InvocationStatus::Failed,
        },
        // A status this hoist does not know: never a success.
        _ => InvocationStatus::Failed,
    })
}

/// How many errors `max_errors` allows over `total` targets (SSM rounds percentages down,
/// and at least... zero).
pub fn allowed_errors(rate: Rate, total: usize) -> usize {
    match rate {
        Rate::Count(n) => n as usize,
        Rate::Percent(p) => total * p as usize / 100,
    }
}

pub struct SsmTransport {
    client: Client,
    poll: Poll,
}

impl SsmTransport {
    pub fn new(client: Client) -> Self {
        SsmTransport {
            client,
            poll: Poll::default(),
        }
    }

    pub fn with_poll(mut self, poll: Poll) -> Self {
        self.poll = poll;
        self
    }

    async fn send(&self, job: &Job<'_>, ids: &[String]) -> Result<String, SsmError> {
        let exec = job.timeout.as_secs().max(1);
        let comment: String = job.comment.chars().take(100).collect();
        // The agent writes `_script.sh` as the commands joined by "\n" plus a final "\n":
        // one element without the script's own last newline makes that file byte-identical
        // to the plan's script.
        let commands = job
            .script
            .text
            .strip_suffix('\n')
            .unwrap_or(&job.script.text)
            .to_owned();
        let resp = retry_throttled(|| {
            self.client
                .send_command()
                .document_name("AWS-RunShellScript")
                .set_instance_ids(Some(ids.to_vec()))
                .parameters("commands", vec![commands.clone()])
                .parameters("executionTimeout", vec![exec.to_string()])
                .timeout_seconds(DELIVERY_TIMEOUT.as_secs() as i32)
                .comment(comment.clone())
                .max_concurrency(job.policy.max_concurrency.to_string())
                .max_errors(job.policy.max_errors.to_string())
                .send()
        })
        .await
        .map_err(|e| api_error("SendCommand", &e))?;
        Ok(resp
            .command()
            .and_then(|c| c.command_id())
            .unwrap_or_default()
            .to_owned())
    }

    /// One pass over every command's invocations: instance id → (status, details).
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

    async fn fetch(&self, command_id: &str, id: &str, started: Instant) -> Invocation {
        let mut last_err = String::new();
        for attempt in 0..8u32 {
            match self
                .client
                .get_command_invocation()
                .command_id(command_id)
                .instance_id(id)
                .send()
                .await
            {
                Ok(r) => {
                    let stdout = r.standard_output_content().unwrap_or_default().to_owned();
                    let stderr = r.standard_error_content().unwrap_or_default().to_owned();
                    let status = r
                        .status()
                        .map(|s| {
                            let inv: CommandInvocationStatus = s.as_str().into();
                            classify(&inv, r.status_details())
                                .unwrap_or(InvocationStatus::InProgress)
                        })
                        .unwrap_or(InvocationStatus::Failed);
                    let code = r.response_code();
                    let duration = r
                        .execution_elapsed_time()
                        .and_then(parse_elapsed)
                        .unwrap_or_else(|| started.elapsed());
                    return Invocation {
                        target: id.to_owned(),
                        status,
                        exit_code: (code >= 0).then_some(code),
                        stdout_truncated: stdout.chars().count() >= STDOUT_LIMIT,
                        stderr_truncated: stderr.chars().count() >= STDERR_LIMIT,
                        outcome: None,
                        // Parsed by deploy, from the output once redacted.
                        result: None,
                        stdout,
                        stderr,
                        duration,
                    };
                }
                Err(e) => {
                    last_err = api_error("GetCommandInvocation", &e).to_string();
                    // InvocationDoesNotExist right after sending, or throttling: wait, retry.
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(4))).await;
                }
            }
        }
        Invocation {
            target: id.to_owned(),
            status: InvocationStatus::Failed,
            exit_code: None,
            stdout: String::new(),
            stderr: last_err,
            stdout_truncated: false,
            stderr_truncated: false,
            outcome: None,
            duration: started.elapsed(),
            result: None,
        }
    }

    async fn cancel_all(&self, commands: &[(String, Vec<String>)], sink: &dyn OutputSink) {
        for (command_id, _) in commands {
            sink.line("ssm", &format!("cancelling command {command_id}"));
            if let Err(e) =
                retry_throttled(|| self.client.cancel_command().command_id(command_id).send()).await
            {
                sink.line("ssm", &api_error("CancelCommand", &e).to_string());
            }
        }
    }

    /// Past `max_errors` (counted by hoist, Undeliverable included): stop what has not
    /// started, as SSM's own MaxErrors does, and let running invocations finish — cancelling
    /// a script mid-switch would only cost a host its working release.
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
                    states.get(*id).is_none_or(|(s, _)| {
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
            sink.line(
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
                sink.line("ssm", &api_error("CancelCommand", &e).to_string());
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
                                sink.line(&id, &format!("SSM status {shown}"));
                                *entry = (status, terminal);
                            }
                        }
                    }
                    // Throttled, or the invocations are not visible yet: poll again later.
                    Err(e) if is_throttling(&e) => throttled = true,
                    Err(e) if e.code() == Some("InvalidCommandId") => {}
                    Err(e) => sink.line(
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
                interval = (interval * 2).min(self.poll.max * 2);
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = cancel.cancelled() => return WaitEnd::Cancelled,
            }
            if !throttled {
                interval = (interval.mul_f32(1.5)).min(self.poll.max);
            }
        }
    }
}

enum WaitEnd {
    Done,
    Cancelled,
    TooManyErrors(usize),
    Deadline,
}

#[async_trait]
impl Transport for SsmTransport {
    fn name(&self) -> &'static str {
        "ssm"
    }

    async fn run(
        &self,
        job: &Job<'_>,
        cancel: CancellationToken,
        sink: &dyn OutputSink,
    ) -> Result<Vec<Invocation>, TransportError> {
        self.run_commands(job, &cancel, sink, Instant::now()).await
    }
}

impl SsmTransport {
    async fn run_commands(
        &self,
        job: &Job<'_>,
        cancel: &CancellationToken,
        sink: &dyn OutputSink,
        started: Instant,
    ) -> Result<Vec<Invocation>, TransportError> {
        let mut commands: Vec<(String, Vec<String>)> = Vec::new();
        for chunk in job.targets.chunks(MAX_IDS_PER_COMMAND) {
            if cancel.is_cancelled() {
                break;
            }
            let id = self.send(job, chunk).await?;
            sink.line(
                "ssm",
                &format!("sent command {id} to {} instance(s)", chunk.len()),
            );
            commands.push((id, chunk.to_vec()));
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
            sink.line(
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
                    sink.line("ssm", "the command ran past its deadline");
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
        let mut out = Vec::new();
        for (command_id, ids) in &commands {
            for id in ids {
                let inv = match states.get(id) {
                    Some((_, Some(_))) => {
                        let inv = self.fetch(command_id, id, started).await;
                        report_output(&inv, sink);
                        inv
                    }
                    Some((status, None)) => not_finished(id, status.as_str(), started),
                    None => not_finished(id, "never reported", started),
                };
                out.push(inv);
            }
        }
        // Instances never sent to (cancelled before their chunk went out).
        for id in job.targets {
            if !out.iter().any(|i| &i.target == id) {
                out.push(Invocation {
                    status: InvocationStatus::Cancelled,
                    ..not_finished(id, "not sent", started)
                });
            }
        }
        Ok(out)
    }
}

/// SSM's `ExecutionElapsedTime` (ISO 8601, e.g. `PT1M2.5S`).
pub fn parse_elapsed(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix("PT")?;
    let mut total = 0f64;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                total += n * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    (number.is_empty() && total.is_finite()).then(|| Duration::from_secs_f64(total))
}

fn not_finished(id: &str, state: &str, started: Instant) -> Invocation {
    Invocation {
        target: id.to_owned(),
        status: match state {
            "Pending" | "Delayed" => InvocationStatus::Pending,
            "Cancelling" => InvocationStatus::Cancelling,
            "not sent" | "never reported" => InvocationStatus::Cancelled,
            _ => InvocationStatus::InProgress,
        },
        exit_code: None,
        stdout: String::new(),
        stderr: format!("the invocation had not finished when hoist stopped waiting ({state})"),
        stdout_truncated: false,
        stderr_truncated: false,
        outcome: None,
        duration: started.elapsed(),
        result: None,
    }
}

/// Shows one instance's output, grouped, and says when SSM cut it.
fn report_output(inv: &Invocation, sink: &dyn OutputSink) {
    for line in inv.stdout.lines() {
        if !line.starts_with(outcome::MARKER) {
            sink.line(&inv.target, line);
        }
    }
    for line in inv.stderr.lines() {
        sink.line(&inv.target, line);
    }
    if inv.stdout_truncated {
        sink.line(
            &inv.target,
            &format!("(SSM returned only the first {STDOUT_LIMIT} characters of stdout)"),
        );
    }
    if inv.stderr_truncated {
        sink.line(
            &inv.target,
            &format!("(SSM returned only the first {STDERR_LIMIT} characters of stderr)"),
        );
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
    use crate::script::{Body, render};

    const DEPLOYED: &str =
        "hoist: healthy\nHOIST-RESULT {\"status\":\"deployed\",\"release\":\"r1\"}\n";

    #[test]
    fn every_status_and_detail_is_judged() {
        use CommandInvocationStatus as S;
        use InvocationStatus as I;
        let cases: &[(S, &str, Option<I>)] = &[
            (S::Pending, "Pending", None),
            (S::InProgress, "InProgress", None),
            (S::Delayed, "Delayed", None),
            (S::Cancelling, "Cancelling", None),
            (S::Success, "Success", Some(I::Success)),
            (S::Failed, "Failed", Some(I::Failed)),
            (S::Failed, "Undeliverable", Some(I::Undeliverable)),
            (S::Failed, "Terminated", Some(I::Terminated)),
            (S::Failed, "Access Denied", Some(I::AccessDenied)),
            (S::TimedOut, "DeliveryTimedOut", Some(I::DeliveryTimedOut)),
            (S::TimedOut, "Delivery Timed Out", Some(I::DeliveryTimedOut)),
            (S::TimedOut, "ExecutionTimedOut", Some(I::ExecutionTimedOut)),
            (
                S::TimedOut,
                "Execution Timed Out",
                Some(I::ExecutionTimedOut),
            ),
            (S::TimedOut, "", Some(I::TimedOut)),
            (S::Cancelled, "Cancelled", Some(I::Cancelled)),
            (S::from("SomethingNew"), "", Some(I::Failed)),
        ];
        for (status, details, want) in cases {
            assert_eq!(
                classify(status, Some(details)),
                *want,
                "{status:?} / {details}"
            );
        }
    }

    fn invocation(status: InvocationStatus, code: Option<i32>, stdout: &str) -> Invocation {
        Invocation {
            target: "i-0123456789abcdef0".into(),
            status,
            exit_code: code,
            stdout: stdout.into(),
            stderr: String::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            outcome: None,
            duration: Duration::ZERO,
            result: outcome::parse(stdout),
        }
    }

    /// What deploy does with a transport's raw output: parse the result line.
    fn parsed(mut out: Vec<Invocation>) -> Vec<Invocation> {
        for inv in &mut out {
            inv.result = outcome::parse(&inv.stdout);
        }
        out
    }

    #[test]
    fn only_success_with_exit_0_and_a_deployed_result_counts() {
        use InvocationStatus as I;
        assert!(invocation(I::Success, Some(0), DEPLOYED).deployed());
        // SSM says Success but the script's result line is missing (e.g. output truncated).
        let no_line = invocation(I::Success, Some(0), "hoist: healthy\n");
        assert!(!no_line.deployed());
        assert!(
            no_line
                .failure_reason()
                .unwrap()
                .contains("no HOIST-RESULT")
        );
        // Every non-success status fails, whatever the output says.
        for s in [
            I::Failed,
            I::TimedOut,
            I::Cancelled,
            I::Undeliverable,
            I::Terminated,
            I::DeliveryTimedOut,
            I::ExecutionTimedOut,
            I::AccessDenied,
            I::Pending,
            I::InProgress,
            I::Cancelling,
        ] {
            let inv = invocation(s, Some(0), DEPLOYED);
            assert!(!inv.deployed(), "{s:?}");
            assert!(inv.failure_reason().is_some());
        }
        let failed = invocation(
            I::Failed,
            Some(1),
            "HOIST-RESULT {\"status\":\"failed\",\"reason\":\"health check failed\"}\n",
        );
        assert_eq!(failed.failure_reason().unwrap(), "health check failed");
        let never_ran = invocation(I::Undeliverable, None, "");
        assert!(
            never_ran
                .failure_reason()
                .unwrap()
                .contains("never reached")
        );
    }

    #[test]
    fn elapsed_times_parse() {
        assert_eq!(parse_elapsed("PT0.013S"), Some(Duration::from_millis(13)));
        assert_eq!(
            parse_elapsed("PT1M2.5S"),
            Some(Duration::from_millis(62_500))
        );
        assert_eq!(parse_elapsed("PT1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_elapsed("1.5"), None);
        assert_eq!(parse_elapsed("PT1.5"), None);
    }

    #[test]
    fn max_errors_resolves_like_ssm() {
        assert_eq!(allowed_errors(Rate::Count(0), 3), 0);
        assert_eq!(allowed_errors(Rate::Count(2), 3), 2);
        assert_eq!(allowed_errors(Rate::Percent(10), 50), 5);
        assert_eq!(allowed_errors(Rate::Percent(50), 3), 1);
    }

    #[test]
    fn preflight_names_each_unusable_instance() {
        let mut found = BTreeMap::new();
        for (id, ping, platform) in [
            ("i-00000000000000001", "Online", "Linux"),
            ("i-00000000000000002", "ConnectionLost", "Linux"),
            ("i-00000000000000003", "Online", "Windows"),
        ] {
            found.insert(
                id.to_owned(),
                ManagedInstance {
                    id: id.into(),
                    ping_status: ping.into(),
                    platform: platform.into(),
                },
            );
        }
        let ids: Vec<String> = (1..=4).map(|n| format!("i-0000000000000000{n}")).collect();
        let problems = judge_preflight(&ids, &found);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems[0].contains("i-00000000000000002") && problems[0].contains("ConnectionLost")
        );
        assert!(problems[1].contains("i-00000000000000003") && problems[1].contains("Windows"));
        assert!(problems[2].contains("i-00000000000000004") && problems[2].contains("not managed"));
    }

    struct Lines(std::sync::Mutex<Vec<String>>);
    impl OutputSink for Lines {
        fn line(&self, target: &str, line: &str) {
            self.0.lock().unwrap().push(format!("[{target}] {line}"));
        }
    }

    fn job<'a>(
        script: &'a crate::script::Script,
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

    /// SSM takes at most 50 instance ids per SendCommand: 120 targets go out as 50 + 50 + 20,
    /// and every instance of every command is waited for and judged.
    #[tokio::test]
    async fn sends_at_most_50_instances_per_command() {
        let sizes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let send = mock!(aws_sdk_ssm::Client::send_command).then_compute_output(move |r| {
            let mut sizes = seen.lock().unwrap();
            sizes.push(r.instance_ids().len());
            SendCommandOutput::builder()
                .command(
                    Command::builder()
                        .command_id(format!("cmd-{}", sizes.len()))
                        .set_instance_ids(r.instance_ids.clone())
                        .build(),
                )
                .build()
        });
        let ids: Vec<String> = (0..120).map(|n| format!("i-{n:017x}")).collect();
        let chunks: Vec<Vec<String>> = ids.chunks(50).map(<[String]>::to_vec).collect();
        let list =
            mock!(aws_sdk_ssm::Client::list_command_invocations).then_compute_output(move |r| {
                let n: usize = r.command_id().unwrap()[4..].parse().unwrap();
                let rows = chunks[n - 1]
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
        let transport = SsmTransport::new(client).with_poll(Poll {
            first: Duration::from_millis(1),
            max: Duration::from_millis(5),
        });
        let script = render(Body::Recreate, &[], &[]);
        let job = job(&script, &ids, Rate::Count(5));
        let out = transport
            .run(&job, CancellationToken::new(), &Lines(Default::default()))
            .await
            .unwrap();
        let out = parsed(out);
        assert_eq!(*sizes.lock().unwrap(), [50, 50, 20]);
        assert_eq!(out.len(), 120);
        assert!(out.iter().all(Invocation::deployed));
        let targets: Vec<&str> = out.iter().map(|i| i.target.as_str()).collect();
        assert_eq!(targets, ids.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Past max_errors hoist stops only what has not started: the pending instance is
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
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let transport = SsmTransport::new(client).with_poll(Poll {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
        });
        let script = render(Body::Recreate, &[], &[]);
        let out = transport
            .run(
                &job(&script, &ids, Rate::Count(0)),
                CancellationToken::new(),
                &Lines(Default::default()),
            )
            .await
            .unwrap();
        let out = parsed(out);
        assert_eq!(*cancelled.lock().unwrap(), [vec![ids[2].to_owned()]]);
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
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        let transport = SsmTransport::new(client).with_poll(Poll {
            first: Duration::from_millis(5),
            max: Duration::from_millis(20),
        });
        let script = render(Body::Recreate, &[], &[]);
        let job = job(&script, &ids, Rate::Count(5));
        let sink = Lines(Default::default());
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

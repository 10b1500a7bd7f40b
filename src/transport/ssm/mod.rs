//! The SSM transport: runs the script on EC2 instances with SSM Run Command
//! (`AWS-RunShellScript`) and judges every instance on its own.
//!
//! What it gets right that SSM-based deploy steps often do not: it waits for every
//! invocation; it never trusts the command's overall status (SSM does not count undeliverable
//! instances as errors); it reads every instance's output; secrets travel as a short-lived
//! `SecureString` parameter the instance fetches itself, never in the command text; Ctrl-C
//! cancels the command and reports where each instance was left.
//!
//! One concern a file: `preflight` (which instances the targets are, and whether each can
//! run the script), `rollout` (send the command, poll every invocation, cancel, fetch the
//! output), `judge` (what SSM's statuses and output mean for each instance); this file holds
//! the limits, the errors, the API helpers and the [`Transport`] itself.

mod judge;
mod preflight;
mod rollout;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use tokio_util::sync::CancellationToken;

use super::{Invocation, Job, OutputSink, Transport, TransportError};

pub use judge::{allowed_errors, classify, parse_elapsed};
pub use preflight::{ManagedInstance, instances, judge_preflight, preflight};

pub use crate::domain::waves::{DELIVERY_TIMEOUT, MAX_IDS_PER_COMMAND};
/// The most of a stream SSM hands back: the agent keeps at most 24,000 bytes of stdout (a
/// longer one is cut to 23,980 bytes and [`TRUNCATED`] is appended), and
/// `GetCommandInvocation` returns at most 8,000 characters of stderr. Bytes, not characters:
/// multibyte output is cut sooner than its character count suggests.
pub const STDOUT_LIMIT: usize = 24_000;
pub const STDERR_LIMIT: usize = 8_000;
/// What the agent appends to a stream it cut.
pub const TRUNCATED: &str = "--output truncated--";

/// Whether SSM cut a stream: it ends with the agent's suffix, or it reaches the limit in bytes
/// (which also covers a cut by characters, never longer than one by bytes).
pub(super) fn truncated(text: &str, limit: usize) -> bool {
    text.ends_with(TRUNCATED) || text.len() >= limit
}

/// After `CancelCommand`, how long to wait for instances to settle before reporting.
const CANCEL_SETTLE: Duration = Duration::from_secs(30);

/// Polling `ListCommandInvocations` (one call per command, that is per 50 instances, per
/// poll): every `first` at first, growing ×1.5 up to `max`, so that the end of a script is
/// noticed within about `max` (at most two calls a second per command by default); once
/// the wait has lasted `later_after`, up to `later_max` (a long rollout makes half the
/// calls). Each wait is jittered ±20 % so that concurrent deploys do not poll in step. A
/// throttled poll doubles the interval, up to `throttled_max`, until calls go through again.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    pub first: Duration,
    pub max: Duration,
    pub later_after: Duration,
    pub later_max: Duration,
    pub throttled_max: Duration,
}

impl Default for Poll {
    fn default() -> Self {
        Poll {
            first: Duration::from_millis(250),
            max: Duration::from_millis(500),
            later_after: Duration::from_secs(60),
            later_max: Duration::from_secs(1),
            throttled_max: Duration::from_secs(10),
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
    #[error(
        "SSM refused the command: the script ({script_bytes} bytes) and its parameters pass \
         SSM's 64 KB quota on a document's content plus its runtime parameters, so no host \
         received it ({aws})"
    )]
    DocumentTooLarge { script_bytes: usize, aws: String },
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

/// The shared policy for throttled AWS calls ([`crate::aws::retry`]), by the name the SSM
/// calls know it.
pub(super) use crate::aws::retry as retry_throttled;

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

/// What the tests of every part of the transport share.
#[cfg(test)]
mod testing {
    /// The output of a script that deployed.
    pub(super) const DEPLOYED: &str =
        "hoist: healthy\nHOIST-RESULT {\"status\":\"deployed\",\"release\":\"r1\"}\n";
}

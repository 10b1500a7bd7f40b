//! Transports carry a rendered script to hosts and bring back what happened there.
//!
//! The deploy code sees only this trait: `local` runs the script on this machine, `ssm`
//! (AWS SSM Run Command) on EC2 instances. Both report one [`Invocation`] per target.

pub mod local;
pub mod secret_parameter;
pub mod ssm;

use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use crate::domain::invocation::{Invocation, InvocationStatus, Outcome};
use crate::domain::secrets::SecretEnv;
use crate::domain::{RolloutPolicy, Script};

pub use local::LocalTransport;
pub use ssm::SsmTransport;

/// What to run, where and how.
pub struct Job<'a> {
    pub script: &'a Script,
    /// Secret env values for the script's standard input (the local transport). Over SSM
    /// they travel in the run's secret parameter instead, which deploy puts and deletes.
    pub secrets: Option<&'a SecretEnv>,
    /// The instances to run on (the local transport runs on this machine, whatever it says).
    pub targets: &'a [String],
    /// How the run spreads over the targets.
    pub policy: RolloutPolicy,
    /// Hard limit for one host's run.
    pub timeout: Duration,
    /// A human-readable label (SSM's command comment): app and release.
    pub comment: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot run the script locally with {shell}: {cause}")]
    Spawn {
        shell: String,
        cause: std::io::Error,
    },
    #[error("i/o with the local script failed: {0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Ssm(#[from] ssm::SsmError),
}

/// Not `#[from]`: that would make the error also the [`source`](std::error::Error::source)
/// of a message that already says it (see the crate's documentation on errors).
impl From<std::io::Error> for TransportError {
    fn from(e: std::io::Error) -> Self {
        TransportError::Io(e)
    }
}

/// Receives output as it arrives, for live progress.
pub trait OutputSink: Send + Sync {
    /// A line a target's script printed (stdout or stderr), unredacted.
    fn line(&self, target: &str, line: &str);

    /// What the transport itself says of a target or of the run (`target` is then the
    /// transport's name): a command sent, a status change, a cancel, output cut short.
    fn status(&self, target: &str, message: &str) {
        self.line(target, message);
    }

    /// A command went out (SSM's command id): the fleet lock records it, so that whoever
    /// finds the lock can ask SSM whether the run is still going.
    fn command_sent(&self, _command_id: &str) {}
}

#[async_trait]
pub trait Transport: Send + Sync {
    fn name(&self) -> &'static str;

    /// Runs the job on every target. Returns when every target finished, failed, or was
    /// cancelled through `cancel`; one invocation per target.
    async fn run(
        &self,
        job: &Job<'_>,
        cancel: CancellationToken,
        sink: &dyn OutputSink,
    ) -> Result<Vec<Invocation>, TransportError>;
}

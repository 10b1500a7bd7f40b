//! What one target's run of a script came to: the transport's report ([`Invocation`]) and
//! hoist's judgement of it ([`Outcome`]).

use std::time::Duration;

use serde::Serialize;

use super::outcome::ScriptResult;
use super::ser::millis;

/// How one target's run ended, in SSM's vocabulary so both transports judge alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InvocationStatus {
    Success,
    Failed,
    TimedOut,
    Cancelled,
    Undeliverable,
    Terminated,
    DeliveryTimedOut,
    ExecutionTimedOut,
    AccessDenied,
    /// Not finished when hoist stopped waiting (after a cancel): the last state seen.
    Pending,
    InProgress,
    Cancelling,
}

/// One target's result.
#[derive(Debug, Clone, Serialize)]
pub struct Invocation {
    pub target: String,
    pub status: InvocationStatus,
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The transport cut the output (SSM returns at most 24,000 / 8,000 characters).
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    #[serde(with = "millis")]
    pub duration: Duration,
    /// The script's `HOIST-RESULT` line, when it printed one. Transports return raw output
    /// and leave this `None`: deploy parses it from the output once redacted.
    pub result: Option<ScriptResult>,
    /// What happened, as deploy judged it from all of the above (`None` until judged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The SSM command the target's run belongs to (none for the local transport, or for
    /// an instance no command was sent to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_id: Option<String>,
}

/// What happened on one target, in the words of the summary and the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The script ran to the end and reported the new release deployed.
    Deployed,
    /// The release already ran with the same image and configuration: nothing was touched.
    Unchanged,
    /// Staged (a two-phase rollout's first phase): healthy in the idle color, not serving.
    Staged,
    /// What the run staged was removed (staging failed elsewhere): nothing switched.
    Discarded,
    /// The deploy failed and the script observed the previous release serving again.
    RolledBack,
    /// The deploy failed, and nothing says the previous release serves again.
    Failed,
    /// The command never ran there (undeliverable, not delivered in time, access denied, or
    /// still pending when hoist stopped waiting).
    NotStarted,
    /// Cancelled before the script reported anything.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Deployed => "deployed",
            Outcome::Unchanged => "unchanged",
            Outcome::Staged => "staged",
            Outcome::Discarded => "discarded",
            Outcome::RolledBack => "rolled back",
            Outcome::Failed => "failed",
            Outcome::NotStarted => "not started",
            Outcome::Cancelled => "cancelled",
        }
    }
}

impl Invocation {
    /// A target counts as deployed only when the transport says the script succeeded *and*
    /// the script itself reported the release deployed (or already running, unchanged) — or,
    /// in a two-phase rollout's stage and discard phases, what the phase is for: staged,
    /// discarded. Anything else is a failure.
    pub fn deployed(&self) -> bool {
        use crate::domain::outcome::ResultStatus;
        self.status == InvocationStatus::Success
            && self.exit_code == Some(0)
            && self.result.as_ref().is_some_and(|r| {
                matches!(
                    r.status,
                    ResultStatus::Deployed
                        | ResultStatus::Unchanged
                        | ResultStatus::Staged
                        | ResultStatus::Discarded
                )
            })
    }

    /// What the phase succeeded with there, when it did and it was not a plain deploy:
    /// `Staged` or `Discarded`.
    pub fn staged_or_discarded(&self) -> Option<Outcome> {
        use crate::domain::outcome::ResultStatus;
        if !self.deployed() {
            return None;
        }
        match self.result.as_ref()?.status {
            ResultStatus::Staged => Some(Outcome::Staged),
            ResultStatus::Discarded => Some(Outcome::Discarded),
            _ => None,
        }
    }

    /// Deployed without a change: the release already ran with this image and configuration.
    pub fn unchanged(&self) -> bool {
        self.deployed()
            && self
                .result
                .as_ref()
                .is_some_and(|r| r.status == crate::domain::outcome::ResultStatus::Unchanged)
    }

    /// The run did not end on its own: it was stopped (cancelled), or it had not finished
    /// when hoist stopped waiting. A target that finished, even failed, is not interrupted.
    pub fn interrupted(&self) -> bool {
        matches!(
            self.status,
            InvocationStatus::Cancelled
                | InvocationStatus::Cancelling
                | InvocationStatus::Pending
                | InvocationStatus::InProgress
        )
    }

    /// Judges the target: only a script that reported `deployed` and exited 0 under a
    /// successful invocation is deployed; a rollback counts only when the script saw it.
    pub fn judge(&self) -> Outcome {
        use InvocationStatus as S;
        if self.unchanged() {
            return Outcome::Unchanged;
        }
        if let Some(outcome) = self.staged_or_discarded() {
            return outcome;
        }
        if self.deployed() {
            return Outcome::Deployed;
        }
        if self.result.as_ref().is_some_and(|r| r.rolled_back) {
            return Outcome::RolledBack;
        }
        match self.status {
            S::Undeliverable | S::DeliveryTimedOut | S::AccessDenied | S::Pending => {
                Outcome::NotStarted
            }
            S::Cancelled | S::Cancelling if self.result.is_none() => Outcome::Cancelled,
            _ => Outcome::Failed,
        }
    }

    /// Why this target failed, in one line.
    pub fn failure_reason(&self) -> Option<String> {
        if self.deployed() {
            return None;
        }
        if let Some(r) = &self.result
            && !r.reason.is_empty()
        {
            return Some(r.reason.clone());
        }
        Some(match self.status {
            InvocationStatus::Success if self.result.is_none() => {
                "the script printed no HOIST-RESULT line".to_owned()
            }
            InvocationStatus::Cancelled => "cancelled".to_owned(),
            InvocationStatus::TimedOut | InvocationStatus::ExecutionTimedOut => {
                "the script ran past its timeout".to_owned()
            }
            InvocationStatus::Undeliverable | InvocationStatus::DeliveryTimedOut => {
                "the command never reached the host".to_owned()
            }
            InvocationStatus::Terminated => "the host stopped the command".to_owned(),
            InvocationStatus::AccessDenied => {
                "SSM denied access to the instance (check the caller's IAM permissions)".to_owned()
            }
            InvocationStatus::Pending
            | InvocationStatus::InProgress
            | InvocationStatus::Cancelling => {
                format!(
                    "still {:?} when hoist stopped waiting: the instance may be mid-deploy",
                    self.status
                )
            }
            _ => match self.exit_code {
                Some(code) => format!("the script exited with status {code}"),
                None => "the script did not finish".to_owned(),
            },
        })
    }
}

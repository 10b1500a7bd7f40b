//! What can go wrong with the lock, said with the parameter and the AWS error.

use std::time::Duration;

use super::Record;

use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the deploy lock {parameter} is held by {}{}; nothing was changed{}",
        .record.describe(),
        waited_for(*.waited),
        if .waited.is_some() { "" } else { " (wait for it with --lock-wait DURATION)" }
    )]
    Held {
        parameter: String,
        record: Box<Record>,
        /// With --lock-wait: how long hoist waited.
        waited: Option<Duration>,
    },
    #[error(
        "stale deploy lock {parameter} held by {} ({} of release {} since {}): its lease \
         expired at {} and none of its SSM commands still runs, so that hoist was killed or \
         lost SSM and its rollout is over; break the lock with `hoist unlock`. Nothing was \
         changed",
        .record.holder, .record.operation, .record.release, .record.started, .record.expires
    )]
    Stale {
        parameter: String,
        record: Box<Record>,
    },
    #[error(
        "the deploy lock {parameter} is held by {} ({} of release {} since {}), and its run is \
         still going: SSM command(s) {} have not ended{}. {}. Nothing was changed",
        .record.holder, .record.operation, .record.release, .record.started,
        super::LiveCommand::describe(.commands),
        if .record.expired_now() { " (its lease expired: that hoist is gone, its commands are not)" } else { "" },
        if *.unlocking {
            "Wait for them to end, or `hoist unlock --cancel-commands` to cancel them and break \
             the lock (`--force` breaks it and leaves them running)"
        } else {
            "Wait for them to end (`hoist lock status` names them), or cancel them with \
             `hoist unlock --cancel-commands`"
        }
    )]
    Live {
        parameter: String,
        record: Box<Record>,
        commands: Vec<super::LiveCommand>,
        /// Said to `hoist unlock` (which offers --force).
        unlocking: bool,
    },
    #[error(
        "the deploy lock {parameter} holds a value hoist cannot read ({value}); break it with \
         `hoist unlock` if no deploy holds it. Nothing was changed"
    )]
    Unreadable { parameter: String, value: String },
    #[error(
        "not allowed to call {action} on the deploy lock {parameter} ({message}): the role \
         needs ssm:PutParameter, ssm:AddTagsToResource (the lock is created with its tags), \
         ssm:GetParameter and ssm:DeleteParameter on the app's parameters /hoist/<app>/* \
         (see examples/github-actions/iam/ci-deploy-role.json)"
    )]
    AccessDenied {
        action: &'static str,
        parameter: String,
        message: String,
    },
    #[error("SSM {operation} of the deploy lock {parameter} failed: {message}")]
    Api {
        operation: &'static str,
        parameter: String,
        message: String,
    },
    #[error("interrupted while waiting for the deploy lock {0}: nothing was changed")]
    Interrupted(String),
}

impl LockError {
    /// Held by another deploy, or stale, or unreadable: the lock is in the way (exit 3).
    pub fn is_contention(&self) -> bool {
        matches!(
            self,
            LockError::Held { .. }
                | LockError::Stale { .. }
                | LockError::Live { .. }
                | LockError::Unreadable { .. }
        )
    }
}

pub(super) fn waited_for(waited: Option<Duration>) -> String {
    waited.map_or_else(String::new, |w| {
        format!(
            " (waited {} for it)",
            crate::config::duration::format(whole(w))
        )
    })
}

pub(super) fn whole(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

pub(super) fn error<E>(operation: &'static str, parameter: &str, e: &SdkError<E>) -> LockError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = crate::aws::error_message(e);
    match e.code() {
        Some("AccessDeniedException" | "AccessDenied") => LockError::AccessDenied {
            action: match operation {
                "PutParameter" => "ssm:PutParameter",
                "GetParameter" => "ssm:GetParameter",
                "ListCommandInvocations" => "ssm:ListCommandInvocations",
                "CancelCommand" => "ssm:CancelCommand",
                _ => "ssm:DeleteParameter",
            },
            parameter: parameter.to_owned(),
            message,
        },
        _ => LockError::Api {
            operation,
            parameter: parameter.to_owned(),
            message,
        },
    }
}

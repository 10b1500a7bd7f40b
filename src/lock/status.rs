//! `hoist lock status` and `hoist unlock`: who holds the lock, and breaking it.

use aws_sdk_ssm::Client;
use serde::Serialize;

use super::store::{self, Current, read};
use super::{LiveCommand, LockError, Record, commands};
use crate::config::Config;

/// What `hoist lock status` prints.
#[derive(Debug, Serialize)]
pub struct Status {
    pub app: String,
    pub parameter: String,
    pub locked: bool,
    /// The lease ended and no command of its run still runs: its hoist is gone, and so is
    /// its rollout.
    pub stale: bool,
    /// Commands of its run that have not ended (asked of SSM): the lock is live, whatever
    /// its lease says.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_commands: Vec<LiveCommand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<Record>,
    /// A value hoist cannot read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl Status {
    pub fn to_text(&self) -> String {
        match (&self.holder, &self.unreadable) {
            (Some(r), _) => format!(
                "{}: {}locked by {}\n  {} of release {}{}\n  since {}\n  lease until {}{}\n",
                self.parameter,
                if self.stale { "STALE, " } else { "" },
                r.holder,
                r.operation,
                r.release,
                r.run
                    .as_deref()
                    .map_or_else(String::new, |run| format!(" (run {run})")),
                r.started,
                r.expires,
                if self.stale {
                    " (expired, and none of its SSM commands runs: break it with `hoist unlock`)"
                        .to_owned()
                } else if self.live_commands.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n  still running: SSM command(s) {}{}",
                        LiveCommand::describe(&self.live_commands),
                        if r.expired_now() {
                            " (its lease expired: that hoist is gone, its commands are not)"
                        } else {
                            ""
                        }
                    )
                }
            ),
            (None, Some(v)) => format!(
                "{}: locked, with a value hoist cannot read ({v})\n",
                self.parameter
            ),
            (None, None) => format!("{}: not locked\n", self.parameter),
        }
    }
}

/// `hoist lock status`: who holds the lock, if anyone.
pub async fn status(client: &Client, config: &Config) -> Result<Status, LockError> {
    let parameter = crate::domain::lock_parameter(config);
    let current = read(client, &parameter).await?;
    let (holder, unreadable) = match current {
        Current::Absent => (None, None),
        Current::Held(r) => (Some(*r), None),
        Current::Unreadable(v) => (None, Some(v)),
    };
    let live_commands = match &holder {
        Some(r) => commands::live(client, &parameter, r).await?,
        None => Vec::new(),
    };
    Ok(Status {
        app: config.app.clone(),
        locked: holder.is_some() || unreadable.is_some(),
        stale: holder.as_ref().is_some_and(Record::expired_now) && live_commands.is_empty(),
        live_commands,
        holder,
        unreadable,
        parameter,
    })
}

/// What `hoist unlock` does with a lock whose run still has commands going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Breaking {
    /// Refuse (the default).
    #[default]
    Refuse,
    /// Cancel the commands, then break the lock.
    CancelCommands,
    /// Break the lock and leave the commands running.
    Force,
}

/// `hoist unlock`: deletes the lock; returns what it held (`None`: nothing was there). A lock
/// whose run still has commands going is refused unless `breaking` says otherwise.
pub async fn unlock(
    client: &Client,
    config: &Config,
    breaking: Breaking,
) -> Result<Option<Status>, LockError> {
    let before = status(client, config).await?;
    if !before.locked {
        return Ok(None);
    }
    if let Some(record) = &before.holder
        && !before.live_commands.is_empty()
    {
        match breaking {
            Breaking::Refuse => {
                return Err(LockError::Live {
                    parameter: before.parameter.clone(),
                    record: Box::new(record.clone()),
                    commands: before.live_commands.clone(),
                    unlocking: true,
                });
            }
            Breaking::CancelCommands => {
                commands::cancel(client, &before.parameter, &before.live_commands).await?;
            }
            Breaking::Force => {}
        }
    }
    // One delete at a time, never retried blind (see `Held::delete_ours`): a lost answer is
    // settled by reading the lock again.
    let p = &before.parameter;
    let was = before.holder.as_ref().map(|r| r.token.clone());
    let mut lost = None;
    for _ in 0..3 {
        lost = match store::delete_once(client, p).await? {
            store::Deleted::Done => return Ok(Some(before)),
            store::Deleted::Absent => return Ok(None),
            store::Deleted::Unknown(e) => Some(e),
        };
        match read(client, p).await? {
            // Still the lock it read: the delete did not go through.
            Current::Held(r) if Some(&r.token) == was.as_ref() => {}
            Current::Unreadable(v) if before.unreadable.as_ref() == Some(&v) => {}
            // Gone, or broken and taken again since (the new lock stays).
            _ => return Ok(Some(before)),
        }
    }
    Err(lost.unwrap_or_else(|| LockError::Api {
        operation: "DeleteParameter",
        parameter: p.clone(),
        message: "no answer".into(),
    }))
}

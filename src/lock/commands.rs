//! Whether a lock's run is still going, asked of SSM: the lock records the command ids its
//! run sent, and a command with an invocation still `Pending`, `Delayed`, `InProgress` or
//! `Cancelling` is live, whatever the lease says (a hoist killed without cancelling leaves its
//! waves running).

use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::CommandInvocationStatus;
use serde::Serialize;

use super::Record;
use super::error::{LockError, error};

/// A command of the lock's run that has not ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveCommand {
    pub command_id: String,
    /// What its invocations are: `InProgress on 1, Pending on 2`, or `not listed yet`.
    pub state: String,
}

impl LiveCommand {
    pub fn describe(list: &[LiveCommand]) -> String {
        list.iter()
            .map(|c| format!("{} ({})", c.command_id, c.state))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The commands of `record`'s run that have not ended. A command SSM lists no invocation of
/// counts as live: right after `SendCommand` the list is empty for a moment (SSM forgets a
/// command after 30 days; `hoist unlock --force` is for that).
pub(super) async fn live(
    client: &Client,
    parameter: &str,
    record: &Record,
) -> Result<Vec<LiveCommand>, LockError> {
    let mut live = Vec::new();
    for id in &record.commands {
        let mut counts = std::collections::BTreeMap::<String, usize>::default();
        let mut listed = 0;
        let mut token = None;
        loop {
            let resp = match crate::aws::retry(|| {
                client
                    .list_command_invocations()
                    .command_id(id)
                    .set_next_token(token.clone())
                    .send()
            })
            .await
            {
                Ok(r) => r,
                Err(e) if e.code() == Some("InvalidCommandId") => break,
                Err(e) => return Err(error("ListCommandInvocations", parameter, &e)),
            };
            for inv in resp.command_invocations() {
                listed += 1;
                if let Some(status) = inv.status()
                    && running(status)
                {
                    *counts.entry(status.as_str().to_owned()).or_default() += 1;
                }
            }
            token = resp.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if listed == 0 {
            live.push(LiveCommand {
                command_id: id.clone(),
                state: "no invocation listed yet".into(),
            });
        } else if !counts.is_empty() {
            live.push(LiveCommand {
                command_id: id.clone(),
                state: counts
                    .iter()
                    .map(|(s, n)| format!("{s} on {n}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    Ok(live)
}

fn running(status: &CommandInvocationStatus) -> bool {
    matches!(
        status,
        CommandInvocationStatus::Pending
            | CommandInvocationStatus::Delayed
            | CommandInvocationStatus::InProgress
            | CommandInvocationStatus::Cancelling
    )
}

/// Cancels each of `commands` (`hoist unlock --cancel-commands`).
pub(super) async fn cancel(
    client: &Client,
    parameter: &str,
    commands: &[LiveCommand],
) -> Result<(), LockError> {
    for c in commands {
        crate::aws::retry(|| client.cancel_command().command_id(&c.command_id).send())
            .await
            .map_err(|e| error("CancelCommand", parameter, &e))?;
    }
    Ok(())
}

//! `hoist lock status` and `hoist unlock`: the app's fleet-wide deploy lock.

use clap::{Args, Subcommand};

use super::LOCK_STATUS_EXIT;
use super::args::ConfigArgs;
use super::session::Session;
use super::validate::TextOrJson;
use crate::config;
use crate::lock;
use crate::ops::Error;
use crate::ops::prepare::Aws;
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct LockArgs {
    #[command(subcommand)]
    command: LockCommand,
}

#[derive(Debug, Subcommand)]
enum LockCommand {
    /// Who holds the app's fleet-wide deploy lock over SSM (holder, release, since, lease),
    /// and whether it is stale.
    #[command(after_help = LOCK_STATUS_EXIT)]
    Status(LockStatusArgs),
}

#[derive(Debug, Args)]
struct LockStatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format: `json` prints `{app, parameter, locked, stale, holder}`.
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

impl LockArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let LockCommand::Status(args) = self.command;
        let config = args.config.source(session).load(config::Files::None)?;
        let aws = Aws::new(&config).await;
        let status = lock::status(&aws.ssm, &config).await?;
        let format = match args.format {
            TextOrJson::Text => Format::Text,
            TextOrJson::Json => Format::Json,
        };
        session.output(Some(format)).lock(&status);
        Ok(())
    }
}

#[derive(Debug, Args)]
pub(super) struct UnlockArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// When the lock's run still has SSM commands going: cancel them, then break the lock.
    #[arg(long, conflicts_with = "force")]
    cancel_commands: bool,
    /// When the lock's run still has SSM commands going: break the lock anyway and leave
    /// them running (the next deploy may then run beside them).
    #[arg(long)]
    force: bool,
}

impl UnlockArgs {
    /// Breaks the app's fleet-wide lock, saying whose it was.
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let config = self.config.source(session).load(config::Files::None)?;
        let aws = Aws::new(&config).await;
        let parameter = crate::domain::lock_parameter(&config);
        let breaking = match (self.cancel_commands, self.force) {
            (true, _) => lock::Breaking::CancelCommands,
            (_, true) => lock::Breaking::Force,
            _ => lock::Breaking::Refuse,
        };
        let text = match lock::unlock(&aws.ssm, &config, breaking).await? {
            None => format!("{parameter}: not locked, nothing to break\n"),
            Some(was) => match &was.holder {
                Some(r) => format!(
                    "broke the deploy lock {parameter}, held by {}{}\n",
                    r.describe(),
                    match (was.live_commands.is_empty(), breaking, was.stale) {
                        (false, lock::Breaking::CancelCommands, _) => format!(
                            ": cancelled its SSM command(s) {}",
                            lock::LiveCommand::describe(&was.live_commands)
                        ),
                        (false, _, _) => format!(
                            ": its SSM command(s) {} are STILL RUNNING (--force)",
                            lock::LiveCommand::describe(&was.live_commands)
                        ),
                        (true, _, true) => ": its lease had expired".to_owned(),
                        (true, _, false) => {
                            ": its lease had NOT expired, that deploy may still be running"
                                .to_owned()
                        }
                    }
                ),
                None => format!(
                    "broke the deploy lock {parameter}, which held a value hoist cannot read ({})\n",
                    was.unreadable.as_deref().unwrap_or_default()
                ),
            },
        };
        session.output(Some(Format::Text)).unlock(&text);
        Ok(())
    }
}

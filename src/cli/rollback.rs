//! `hoist rollback`: start a retained release again on every target.

use clap::Args;

use super::args::{ConfigArgs, FormatArg, LockWaitArgs, TransportArgs};
use super::session::Session;
use crate::ops::Error;
use crate::ops::rollback::{self, RolledBack};

#[derive(Debug, Args)]
pub(super) struct RollbackArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    /// The release to go back to; by default each target's newest retained release older
    /// than the one running.
    #[arg(long, value_name = "RELEASE")]
    to: Option<String>,
    /// Print the script each target would run, and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    lock: LockWaitArgs,
}

impl RollbackArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let output = session.output(Some(format));
        let request = rollback::Request {
            file: self.config.source(session),
            local: self.transport.local,
            to: self.to.clone(),
            dry_run: self.dry_run,
            lock_wait: self.lock.lock_wait,
        };
        match rollback::run_request(request, session.events(format), session.cancel()).await? {
            RolledBack::Script { app, phase } => {
                output.rollback_script(&app, self.to.as_deref(), &phase);
                Ok(())
            }
            RolledBack::Ran(report) => {
                output.rollback(&report);
                rollback::verdict(&report)
            }
        }
    }
}

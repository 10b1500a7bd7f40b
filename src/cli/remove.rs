//! `hoist remove`: the app taken off every target.

use std::io::{BufRead as _, IsTerminal as _};

use clap::Args;

use super::args::{ConfigArgs, FormatArg, LockWaitArgs, TransportArgs};
use super::session::Session;
use crate::ops::{self, Error};
use crate::output::remote as print;
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct RemoveArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    /// Do not ask: remove at once (needed when standard input is not a terminal).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print the script each target would run, and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    lock: LockWaitArgs,
}

impl RemoveArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let events = session.events(format);
        let cancel = session.cancel();
        let transport = crate::ops::prepare::transport_kind(self.transport.local);
        if self.dry_run {
            let config = self
                .config
                .source(session)
                .load(crate::config::Files::None)?;
            let phase =
                crate::plan::remove_phase(&config, transport).map_err(|e| Error::Plan(e.into()))?;
            print::script(
                &format!("Removal of app {}", config.app),
                &phase,
                format == Format::Json,
            );
            return Ok(());
        }
        let (config, targets, ssm) = ops::remote::targets(
            &self.config.source(session),
            self.transport.local,
            &[],
            events.as_ref(),
            &cancel,
        )
        .await?;
        if !self.yes {
            confirm(&config.app, &targets)?;
        }
        let outputs = ops::remote::remove(
            &config,
            &targets,
            ssm,
            self.lock.lock_wait,
            &events,
            &cancel,
        )
        .await?;
        if format == Format::Json {
            print::json(&outputs);
        } else {
            print::lines(&outputs);
            print::problems(&outputs, "not removed");
            print::remove_table(&outputs);
        }
        let failed = outputs.iter().filter(|o| o.problem.is_some()).count();
        if failed == 0 {
            Ok(())
        } else {
            Err(Error::NotRemoved(failed, outputs.len()))
        }
    }
}

/// Asks on the terminal; refuses without one (`--yes` is then the way).
fn confirm(app: &str, targets: &[String]) -> Result<(), Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NeedsYes);
    }
    crate::output::write::err(&format!(
        "Remove app {app} (its containers, images, nginx file, state and history) from {} \
         target(s): {}? [y/N] ",
        targets.len(),
        targets.join(", ")
    ));
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|_| Error::NeedsYes)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(Error::Interrupted("before anything was removed"))
    }
}

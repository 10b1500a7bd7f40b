//! `hoist exec -- CMD…`: a command in the live container of every target.

use std::time::Duration;

use clap::Args;

use super::args::{ConfigArgs, FormatArg, TransportArgs};
use super::session::Session;
use crate::ops::{self, Error};
use crate::output::remote as print;
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct ExecArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    /// Only these targets (instance ids; repeatable).
    #[arg(long = "target", value_name = "ID")]
    targets: Vec<String>,
    /// How long the command may run on each target.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = duration)]
    timeout: Duration,
    /// Print the script each target would run (the command quoted in its header), and run
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    format: FormatArg,
    /// The command and its arguments, after `--` (no shell: pass `sh -c '…'` for one).
    #[arg(required = true, last = true, value_name = "CMD")]
    command: Vec<String>,
}

fn duration(text: &str) -> Result<Duration, String> {
    crate::config::duration::parse(text)
}

impl ExecArgs {
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
            let phase = crate::plan::exec_phase(&config, transport, &self.command, self.timeout)
                .map_err(|e| Error::Plan(e.into()))?;
            let words: Vec<String> = self
                .command
                .iter()
                .map(|w| crate::domain::quote(w))
                .collect();
            print::script(
                &format!("Exec of {} in app {}", words.join(" "), config.app),
                &phase,
                format == Format::Json,
            );
            return Ok(());
        }
        let (config, targets, ssm) = ops::remote::targets(
            &self.config.source(session),
            self.transport.local,
            &self.targets,
            events.as_ref(),
            &cancel,
        )
        .await?;
        let mask = ops::remote::known_secrets(&config);
        let phase = crate::plan::exec_phase(&config, transport, &self.command, self.timeout)
            .map_err(|e| Error::Plan(e.into()))?;
        let outputs = ops::remote::run(
            &phase,
            &targets,
            ssm,
            "HOIST-EXEC ",
            &mask,
            format!("hoist exec {}", config.app),
            &cancel,
        )
        .await?;
        if format == Format::Json {
            print::json(&outputs);
        } else {
            print::lines(&outputs);
            print::problems(&outputs, "the command failed");
            print::exec_table(&outputs);
        }
        let failed = outputs
            .iter()
            .filter(|o| o.problem.is_some() || o.said.code != Some(0))
            .count();
        if failed == 0 {
            Ok(())
        } else {
            Err(Error::ExecFailed(failed, outputs.len()))
        }
    }
}

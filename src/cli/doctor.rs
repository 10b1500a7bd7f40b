//! `hoist doctor`: what this machine and every target have of what hoist needs.

use clap::Args;

use super::args::{ConfigArgs, FormatArg, TransportArgs};
use super::session::Session;
use crate::ops::{self, Error};
use crate::output::doctor as print;
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    /// Only these targets (instance ids; repeatable).
    #[arg(long = "target", value_name = "ID")]
    targets: Vec<String>,
    /// Print the script each target would run, and run nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    format: FormatArg,
}

impl DoctorArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let events = session.events(format);
        let cancel = session.cancel();
        if self.dry_run {
            let config = self
                .config
                .source(session)
                .load(crate::config::Files::None)?;
            let transport = ops::prepare::transport_kind(self.transport.local);
            let phase = crate::plan::doctor::doctor_phase(
                &config,
                transport,
                crate::plan::doctor::CheckSet::Doctor,
                config.region.as_deref(),
            )
            .map_err(|e| Error::Plan(e.into()))?;
            crate::output::remote::script(
                &format!("Checks for app {}", config.app),
                &phase,
                format == Format::Json,
            );
            return Ok(());
        }
        let report = ops::doctor::doctor(
            &self.config.source(session),
            self.transport.local,
            &self.targets,
            events.as_ref(),
            &cancel,
        )
        .await?;
        if format == Format::Json {
            print::json(&report);
        } else {
            print::table(&report);
        }
        match report.failures() {
            0 => Ok(()),
            n => Err(Error::DoctorFailed(n)),
        }
    }
}

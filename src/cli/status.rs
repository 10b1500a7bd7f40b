//! `hoist status`: what runs on each target.

use clap::Args;

use super::args::{ConfigArgs, FormatArg, TransportArgs};
use super::session::Session;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    #[command(flatten)]
    format: FormatArg,
}

impl StatusArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let events = session.events(format);
        let cancel = session.cancel();
        let read = ops::status::read(
            &self.config.source(session),
            self.transport.local,
            events.as_ref(),
            &cancel,
        )
        .await?;
        session
            .output(Some(format))
            .status(&read.report, &read.invocations);
        ops::status::verdict(&read.report)
    }
}

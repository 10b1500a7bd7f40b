//! `hoist build`: build the image and push it; print what hosts would run.

use clap::Args;

use super::args::{ConfigArgs, FormatArg};
use super::session::Session;
use crate::ops::{self, Error};

#[derive(Debug, Args)]
pub(super) struct BuildArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Build only, into this machine's engine (no ECR): prints the image id.
    #[arg(long)]
    local: bool,
    /// Release id to use instead of the commit's short SHA.
    #[arg(long)]
    release: Option<String>,
    #[command(flatten)]
    format: FormatArg,
}

impl BuildArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let request = ops::build::Request {
            file: self.config.source(session),
            local: self.local,
            release: self.release,
        };
        let events = session.events(format);
        let built = ops::build::run_request(request, events.as_ref(), &session.cancel()).await?;
        session.output(Some(format)).built(&built);
        Ok(())
    }
}

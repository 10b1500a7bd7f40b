//! `hoist deploy`: build, push and roll out, or apply a reviewed plan.

use std::path::PathBuf;

use clap::Args;

use super::args::{ConfigArgs, FormatArg, LockWaitArgs, TransportArgs};
use super::session::Session;
use crate::ops::Error;
use crate::ops::deploy::{self, Deployed};

#[derive(Debug, Args)]
pub(super) struct DeployArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    transport: TransportArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Release id to use instead of the commit's short SHA.
    #[arg(long)]
    release: Option<String>,
    #[command(flatten)]
    format: FormatArg,
    /// Deploy this existing image (`registry/repository:tag` or `…@sha256:…`) without
    /// building or pushing.
    #[arg(long, value_name = "URI", conflicts_with = "plan")]
    image: Option<String>,
    /// Apply this reviewed plan (`hoist plan --out FILE`): refused, with every difference
    /// named, unless the config, commit, strategy, resolved targets and hoist's scripts are
    /// the reviewed ones; the executed scripts differ from it only in the image reference.
    /// With --dry-run: check, and change nothing.
    #[arg(long, value_name = "FILE", conflicts_with = "release")]
    plan: Option<PathBuf>,
    /// Replace the release even on hosts that already run it with the same image and
    /// configuration (by default they report `unchanged` and are left alone).
    #[arg(long, conflicts_with = "plan")]
    force: bool,
    /// Print the deploy's timeline once it ends: each step, each target's script phases, and
    /// hoist's own overhead (the JSON report always carries it, as `timings`).
    #[arg(long)]
    timings: bool,
    #[command(flatten)]
    lock: LockWaitArgs,
}

impl DeployArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let format = self.format.format;
        let output = session.output_with(Some(format), self.timings);
        let request = deploy::Request {
            file: self.config.source(session),
            local: self.transport.local,
            dry_run: self.dry_run,
            release: self.release,
            image: self.image,
            plan: self.plan.clone(),
            force: self.force,
            lock_wait: self.lock.lock_wait,
        };
        let deployed = Box::pin(deploy::run(
            request,
            session.events(format),
            session.cancel(),
        ));
        match deployed.await? {
            Deployed::Plan(plan) => {
                output.plan("deploy", &plan, None);
                Ok(())
            }
            Deployed::Reviewed(plan) => {
                output.reviewed(&plan);
                Ok(())
            }
            Deployed::Ran(report) => {
                output.deploy(&report, self.plan.as_deref());
                deploy::verdict(&report)
            }
        }
    }
}

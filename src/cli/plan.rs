//! `hoist plan`: what a deploy would do, printed or saved for review.

use std::path::PathBuf;

use clap::Args;

use super::args::ConfigArgs;
use super::session::Session;
use crate::ops::{self, Error};
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct PlanArgs {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    shown: Shown,
    /// Save the plan for review as JSON in this file; `hoist deploy --plan FILE` applies
    /// exactly it. Over SSM it needs --resolve-targets: a reviewed plan names its instances.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Plan for the local transport (this machine is the host).
    #[arg(long)]
    local: bool,
    /// Release id to use instead of the commit's short SHA.
    #[arg(long)]
    release: Option<String>,
    /// Ask SSM which instances the targets are now (needs AWS credentials), and check them
    /// as a deploy's preflight would. Without it the plan is made offline.
    #[arg(long, conflicts_with = "local")]
    resolve_targets: bool,
    /// Read what runs on each target now (a read-only script, over SSM or on this machine
    /// with --local) and show per target what the deploy would change: release, image, env
    /// keys, settings, color, or `unchanged`. With --out the plan records it, and `deploy
    /// --plan` refuses a target that moved since.
    #[arg(long)]
    against_live: bool,
}

/// How the plan is shown on stdout.
#[derive(Debug, Args)]
struct Shown {
    /// Output format on stdout (with --out: nothing on stdout unless a format is given).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Show every phase's whole script after the text or markdown plan (which otherwise
    /// names each script by its bytes, sha256 and source files; JSON and --out always hold
    /// the scripts).
    #[arg(long)]
    scripts: bool,
}

impl PlanArgs {
    pub(super) async fn run(self, session: &Session) -> Result<(), Error> {
        let request = ops::plan::Request {
            file: self.config.source(session),
            local: self.local,
            release: self.release,
            out: self.out.clone(),
            resolve_targets: self.resolve_targets,
            against_live: self.against_live,
        };
        let events = session.events(self.shown.format.unwrap_or(Format::Text));
        let plan = ops::plan::run(request, events.as_ref(), &session.cancel()).await?;
        let format = match &self.out {
            None => Some(self.shown.format.unwrap_or(Format::Text)),
            Some(_) => self.shown.format,
        };
        session
            .plan_output(format, self.shown.scripts)
            .plan("plan", &plan, self.out.as_deref());
        if let Some(path) = &self.out {
            crate::output::write::errln!(
                "saved the plan for review in {} (sha256 {}): release {}, {} phase(s); apply \
                 it with `hoist deploy --plan {}`",
                path.display(),
                crate::domain::sha256_hex(plan.render(Format::Json).as_bytes()),
                plan.release,
                plan.phases().count(),
                path.display()
            );
        }
        Ok(())
    }
}

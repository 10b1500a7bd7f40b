//! What a command ends with, as the use cases hand it over: the command line chooses how it
//! is shown (text or JSON on stdout, and under GitHub Actions the runner's outputs, summary
//! and annotations too), through this trait. Live progress is [`crate::domain::Events`].

use std::path::Path;

use super::build::Built;
use super::error::Error;
use super::rollback::RollbackReport;
use super::status::StatusReport;
use super::steps::Report;
use crate::domain::{Invocation, Phase};
use crate::plan::Plan;

pub trait Output {
    /// A plan: `hoist plan` (saved for review in `saved`, when it was) and `deploy --dry-run`.
    fn plan(&self, command: &str, plan: &Plan, saved: Option<&Path>);
    /// A reviewed plan that `deploy --plan FILE --dry-run` found still applies.
    fn reviewed(&self, plan: &Plan);
    /// A deploy that ran (whatever came of it); `applied` is the reviewed plan's file.
    fn deploy(&self, report: &Report, applied: Option<&Path>);
    /// What `hoist build` made.
    fn built(&self, built: &Built);
    /// What runs on each target, and the invocations that read it.
    fn status(&self, report: &StatusReport, invocations: &[Invocation]);
    /// A rollback that ran.
    fn rollback(&self, report: &RollbackReport);
    /// The phase `rollback --dry-run` would run on `app`'s targets, back to `to`.
    fn rollback_script(&self, app: &str, to: Option<&str>, phase: &Phase);
    /// Who holds the fleet-wide lock (`hoist lock status`).
    fn lock(&self, status: &super::LockStatus);
    /// What `hoist unlock` did.
    fn unlock(&self, text: &str);
    /// The error that ended `command`.
    fn failed(&self, command: &str, error: &Error);
}

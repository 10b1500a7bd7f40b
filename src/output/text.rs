//! Results for people on stdout (errors on stderr): tables, the plan as text or markdown.

use std::path::Path;

use super::write::{err, out};
use crate::config::text::escape;
use crate::domain::{Invocation, Phase};
use crate::ops::build::Built;
use crate::ops::rollback::RollbackReport;
use crate::ops::status::StatusReport;
use crate::ops::steps::Report;
use crate::ops::{Error, LockStatus, Output};
use crate::plan::{Format, Plan};

/// Text on stdout. `fence` wraps what hosts' output reaches (the result tables) so that
/// whoever reads stdout acts on nothing in it (the command line sets it under a CI runner).
pub struct Text {
    /// How a plan is shown: text or markdown.
    pub format: Format,
    /// `deploy --timings`: the timeline after the summary.
    pub timings: bool,
    /// `plan --scripts`: a plan ends with every phase's whole script.
    pub scripts: bool,
    pub fence: fn(&str) -> String,
    /// Colour in error reports (a terminal that allows it).
    pub color: bool,
}

impl Text {
    pub fn new(format: Format) -> Text {
        Text {
            format,
            timings: false,
            scripts: false,
            fence: str::to_owned,
            color: super::progress::color(),
        }
    }
}

impl Output for Text {
    fn plan(&self, _command: &str, plan: &Plan, _saved: Option<&Path>) {
        out(&plan.render_with(self.format, self.scripts));
    }

    fn reviewed(&self, plan: &Plan) {
        out(&plan.render_with(self.format, self.scripts));
    }

    fn deploy(&self, report: &Report, _applied: Option<&Path>) {
        out(&(self.fence)(&super::summary::summary(report)));
        if self.timings {
            out(&super::summary::timeline(report));
        }
    }

    fn built(&self, built: &Built) {
        out(&format!("{}\n", built.image));
    }

    fn status(&self, report: &StatusReport, _invocations: &[Invocation]) {
        out(&super::status::text(report));
    }

    fn rollback(&self, report: &RollbackReport) {
        out(&(self.fence)(&super::summary::rollback(report)));
    }

    fn rollback_script(&self, app: &str, to: Option<&str>, phase: &Phase) {
        out(&format!(
            "Rollback of {app} to {} on {} via {} transport (script {} sha256 {})\n",
            to.unwrap_or("the previous release"),
            phase.on,
            phase.transport.as_str(),
            phase.script.body,
            phase.script.sha256
        ));
        out(&escape(&phase.script.text, true));
    }

    fn lock(&self, status: &LockStatus) {
        out(&escape(&status.to_text(), true));
    }

    fn unlock(&self, text: &str) {
        out(&escape(text, true));
    }

    fn failed(&self, _command: &str, error: &Error) {
        err(&report(error, self.color));
    }
}

/// Nothing on stdout (`plan --out` without `--format`); errors still go to stderr.
pub struct Nothing;

impl Output for Nothing {
    fn plan(&self, _: &str, _: &Plan, _: Option<&Path>) {}
    fn reviewed(&self, _: &Plan) {}
    fn deploy(&self, _: &Report, _: Option<&Path>) {}
    fn built(&self, _: &Built) {}
    fn status(&self, _: &StatusReport, _: &[Invocation]) {}
    fn rollback(&self, _: &RollbackReport) {}
    fn rollback_script(&self, _: &str, _: Option<&str>, _: &Phase) {}
    fn lock(&self, _: &LockStatus) {}
    fn unlock(&self, _: &str) {}
    fn failed(&self, _command: &str, error: &Error) {
        err(&report(error, super::progress::color()));
    }
}

/// What hoist prints for the error that ended a command: a config error with its snippets,
/// nothing for a failed deploy (its summary said it all) or for errors already reported
/// on stdout, else `error: ` and the error's `Display`, whose text holds its causes (see
/// the crate's documentation on errors).
pub fn report(err: &Error, color: bool) -> String {
    match err {
        Error::Config(e) => e.render(color),
        Error::Failed | Error::ConfigReported(_) => String::new(),
        e => format!("error: {e}\n"),
    }
}

//! Results for machines: one JSON document on stdout (`--format json`); errors on stderr as
//! for people.

use std::path::Path;

use serde::Serialize;

use super::write::out;

use crate::domain::{Invocation, Phase};
use crate::ops::build::Built;
use crate::ops::rollback::RollbackReport;
use crate::ops::status::StatusReport;
use crate::ops::steps::Report;
use crate::ops::{Error, LockStatus, Output};
use crate::plan::{Format, Plan};

pub struct Json;

fn print(value: &impl Serialize) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("a report serializes")
    ));
}

impl Output for Json {
    fn plan(&self, _command: &str, plan: &Plan, _saved: Option<&Path>) {
        out(&plan.render(Format::Json));
    }

    fn reviewed(&self, plan: &Plan) {
        out(&plan.render(Format::Json));
    }

    fn deploy(&self, report: &Report, _applied: Option<&Path>) {
        print(report);
    }

    fn built(&self, built: &Built) {
        print(built);
    }

    fn status(&self, report: &StatusReport, _invocations: &[Invocation]) {
        print(report);
    }

    fn rollback(&self, report: &RollbackReport) {
        print(report);
    }

    fn rollback_script(&self, _app: &str, _to: Option<&str>, phase: &Phase) {
        print(phase);
    }

    fn lock(&self, status: &LockStatus) {
        print(status);
    }

    fn unlock(&self, text: &str) {
        out(&crate::config::text::escape(text, true));
    }

    fn failed(&self, _command: &str, error: &Error) {
        super::write::err(&super::text::report(error, super::progress::color()));
    }
}

//! What `hoist doctor` prints: one row per check (this machine's first, then each target's),
//! or one JSON document.

use super::write::outln;
use crate::config::text::escape;
use crate::domain::checks::Check;
use crate::ops::doctor::Report;

pub fn table(report: &Report) {
    outln!("{:<22}  {:<13}  {:<6}  DETAIL", "TARGET", "CHECK", "STATUS");
    let row = |target: &str, check: &Check| {
        outln!(
            "{:<22}  {:<13}  {:<6}  {}",
            target,
            check.name,
            check.status.as_str(),
            escape(&check.detail, false)
        );
    };
    for check in &report.runner {
        row("(this machine)", check);
    }
    for target in &report.targets {
        for check in &target.checks {
            row(&target.target, check);
        }
    }
}

pub fn json(report: &Report) {
    outln!(
        "{}",
        serde_json::to_string_pretty(report).expect("a report serializes")
    );
}

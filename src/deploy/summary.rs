//! What a deploy prints: progress lines from the hosts, and the per-target table at the end.

use std::fmt::Write as _;

use super::{Report, StepStatus};
use crate::progress::Reporter;
use crate::secrets::SecretEnv;
use crate::transport::OutputSink;

/// Shows the hosts' output as it arrives, redacted of secret values.
pub(super) struct Sink<'a> {
    pub progress: &'a Reporter,
    pub secrets: &'a SecretEnv,
}

impl OutputSink for Sink<'_> {
    fn line(&self, target: &str, line: &str) {
        self.progress
            .info(&format!("[{target}] {}", self.secrets.redact(line)));
    }
}

/// The steps that did not simply run (skipped, failed, not run), then the per-target
/// table of every phase, then the stderr tail of each target that did not succeed.
pub fn summary(report: &Report) -> String {
    let mut out = String::new();
    for step in report.steps.iter().filter(|s| s.status != StepStatus::Done) {
        let _ = writeln!(
            out,
            "{} {}: {}",
            step.step.as_str(),
            step.status.as_str(),
            step.detail
        );
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let several = report.phases.len() > 1;
    let mut rows = vec![[
        "TARGET".to_owned(),
        "STATUS".to_owned(),
        "RELEASE".to_owned(),
        "TIME".to_owned(),
        "DETAIL".to_owned(),
    ]];
    for phase in &report.phases {
        for inv in &phase.invocations {
            let mut status = inv
                .outcome
                .unwrap_or_else(|| inv.judge())
                .as_str()
                .to_owned();
            if several {
                status = format!("{}: {status}", phase.name);
            }
            let detail = match inv.failure_reason() {
                Some(reason) => reason,
                None => inv
                    .result
                    .as_ref()
                    .map(|r| format!("container {}; health: {}", r.container, r.health))
                    .unwrap_or_default(),
            };
            rows.push([
                inv.target.clone(),
                status,
                report.release.clone(),
                format!("{:.1}s", inv.duration.as_secs_f64()),
                detail,
            ]);
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        for (c, w) in widths.iter().enumerate() {
            let _ = write!(out, "{:<w$}  ", row[c]);
        }
        let _ = writeln!(out, "{}", row[4]);
    }
    for inv in report
        .phases
        .iter()
        .flat_map(|p| &p.invocations)
        .filter(|i| !i.deployed())
    {
        let tail: Vec<&str> = inv.stderr.lines().rev().take(20).collect();
        if !tail.is_empty() {
            let _ = writeln!(out, "\n--- {}: last lines of stderr ---", inv.target);
            for line in tail.into_iter().rev() {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

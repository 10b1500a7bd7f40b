//! What a deploy prints: progress lines from the hosts, and the per-target table at the end.

use std::fmt::Write as _;

use super::{PhaseReport, Report, StepStatus};
use crate::progress::{Reporter, SCRIPT_LOG_PREFIX, Verbosity};
use crate::secrets::SecretEnv;
use crate::transport::{Invocation, OutputSink};

/// Shows the hosts' output as it arrives, redacted of secret values: the lines a script
/// logs of its own steps (`hoist: …`) by default, every line with `--verbose`, none with
/// `--quiet` or under GitHub Actions (where each target's output is shown in a group once
/// judged). What the transport says (a command sent, a status change) is progress.
pub(super) struct Sink<'a> {
    pub progress: &'a Reporter,
    pub secrets: &'a SecretEnv,
}

impl OutputSink for Sink<'_> {
    fn line(&self, target: &str, line: &str) {
        if self.progress.github() || self.progress.verbosity() == Verbosity::Quiet {
            return;
        }
        let line = self.secrets.redact(line);
        let shown = format!("[{target}] {line}");
        if line.starts_with(SCRIPT_LOG_PREFIX) {
            self.progress.info(&shown);
        } else {
            self.progress.verbose(&shown);
        }
    }

    fn status(&self, target: &str, message: &str) {
        self.progress
            .info(&format!("[{target}] {}", self.secrets.redact(message)));
    }
}

/// One target's output for people, as a GitHub Actions group shows it: stdout without the
/// result line, then stderr, then what the transport cut.
pub fn host_output(inv: &Invocation) -> String {
    let mut out = String::new();
    for line in inv
        .stdout
        .lines()
        .filter(|l| !l.starts_with(crate::outcome::MARKER))
        .chain(inv.stderr.lines())
    {
        let _ = writeln!(out, "{line}");
    }
    if inv.stdout_truncated || inv.stderr_truncated {
        let _ = writeln!(
            out,
            "(the transport returned only the start of this output)"
        );
    }
    out
}

/// The DETAIL of a target's row: why it failed, else its container and health.
pub fn detail(inv: &Invocation) -> String {
    match inv.failure_reason() {
        Some(reason) => reason,
        None => inv
            .result
            .as_ref()
            .map(|r| {
                if r.status == crate::outcome::ResultStatus::Unchanged {
                    format!("container {} already runs it, untouched", r.container)
                } else {
                    format!("container {}; health: {}", r.container, r.health)
                }
            })
            .unwrap_or_default(),
    }
}

/// The steps that did not simply run (skipped, failed, not run), then the per-target
/// table of every phase, then the stderr tail of each target that did not succeed.
pub fn summary(report: &Report) -> String {
    let mut out = steps(report);
    if let Some(lock) = &report.lock {
        let _ = writeln!(out, "{lock}\n");
    }
    if let Some(pairs) = &report.reviewed {
        for pair in pairs {
            let _ = writeln!(
                out,
                "reviewed plan applied: {} script sha256 {} as reviewed, {} as executed \
                 (the image reference pinned)",
                pair.phase, pair.reviewed_sha256, pair.executed_sha256
            );
        }
        out.push('\n');
    }
    out.push_str(&table(
        &report.phases,
        &|_| report.release.clone(),
        &|inv| {
            inv.outcome
                .unwrap_or_else(|| inv.judge())
                .as_str()
                .to_owned()
        },
    ));
    if let Some(ms) = report.mixed_version_window_ms {
        let _ = writeln!(
            out,
            "\nmixed-version window: {:.3} s (from the first target's switch to the last's, \
             by the hosts' clocks)",
            std::time::Duration::from_millis(ms).as_secs_f64()
        );
    }
    out
}

fn steps(report: &Report) -> String {
    let mut out = String::new();
    for step in report.steps.iter().filter(|s| s.status != StepStatus::Done) {
        let _ = writeln!(
            out,
            "{}{} {}: {}",
            step.step.as_str(),
            step.phase
                .as_ref()
                .map(|p| format!(" {p}"))
                .unwrap_or_default(),
            step.status.as_str(),
            step.detail
        );
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// One row per target of each phase (TARGET, STATUS, RELEASE, TIME, DETAIL), then the last
/// lines of stderr of each target that did not succeed.
pub fn table(
    phases: &[PhaseReport],
    release: &dyn Fn(&Invocation) -> String,
    status: &dyn Fn(&Invocation) -> String,
) -> String {
    let mut out = String::new();
    let several = phases.len() > 1;
    let mut rows = vec![[
        "TARGET".to_owned(),
        "STATUS".to_owned(),
        "RELEASE".to_owned(),
        "TIME".to_owned(),
        "DETAIL".to_owned(),
    ]];
    for phase in phases {
        for inv in &phase.invocations {
            let mut status = status(inv);
            if several {
                status = format!("{}: {status}", phase.name);
            }
            rows.push([
                inv.target.clone(),
                status,
                release(inv),
                format!("{:.1}s", inv.duration.as_secs_f64()),
                detail(inv),
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
    for inv in phases
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

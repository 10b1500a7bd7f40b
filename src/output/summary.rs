//! What a deploy prints: progress lines from the hosts, and the per-target table at the end.

use std::fmt::Write as _;

use std::time::Duration;

use crate::domain::Invocation;
use crate::ops::execute::{PhaseReport, StepStatus};
use crate::ops::rollback::{RollbackReport, release_of, status_of};
use crate::ops::steps::Report;

/// One target's output for people, as a GitHub Actions group shows it: stdout without the
/// result line, then stderr, then what the transport cut.
pub fn host_output(inv: &Invocation) -> String {
    let mut out = String::new();
    for line in inv
        .stdout
        .lines()
        .filter(|l| !l.starts_with(crate::domain::outcome::MARKER))
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
                if r.status == crate::domain::outcome::ResultStatus::Unchanged {
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
                 (the image pinned; the commit, release and run this apply's own)",
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

/// A rollback's per-target table: STATUS says `rolled back` where the release now runs;
/// the release column is the one each target runs now, as its script reported.
pub fn rollback(report: &RollbackReport) -> String {
    let phases = [PhaseReport {
        name: report.phase.name.clone(),
        invocations: report.invocations.clone(),
    }];
    table(&phases, &|inv| release_of(inv), &|inv| {
        status_of(inv).to_owned()
    })
}

/// The timeline `deploy --timings` prints after the summary: what ran before the steps, each
/// step, each target's script and the phases it reported, and the overhead.
pub fn timeline(report: &Report) -> String {
    let mut out = String::from("\ntimings:\n");
    let ms = |d: Duration| format!("{:>7} ms", d.as_millis());
    if let Some(t) = &report.timings {
        let _ = writeln!(
            out,
            "  {}  preflight, registry login, engine ping (at once), the lock",
            ms(t.before_steps)
        );
    }
    for step in &report.steps {
        let what = match &step.phase {
            Some(phase) => format!("{} {phase}", step.step.as_str()),
            None => step.step.as_str().to_owned(),
        };
        let _ = writeln!(
            out,
            "  {}  {what} ({})",
            ms(step.duration),
            step.status.as_str()
        );
        let Some(phase) = step
            .phase
            .as_ref()
            .and_then(|name| report.phases.iter().find(|p| &p.name == name))
        else {
            continue;
        };
        for inv in &phase.invocations {
            let marks = inv
                .result
                .as_ref()
                .map(|r| {
                    r.marks
                        .iter()
                        .map(|(name, at)| {
                            format!("{name} +{:.2}s", Duration::from_millis(*at).as_secs_f64())
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}    script on {}{}",
                ms(inv.duration),
                inv.target,
                if marks.is_empty() {
                    String::new()
                } else {
                    format!(": {marks}")
                }
            );
        }
    }
    if let Some(t) = &report.timings {
        let _ = writeln!(
            out,
            "  {}  in all; hoist's overhead {} ms (wall less build, push and each phase's \
             slowest script)",
            ms(t.wall),
            t.overhead.as_millis()
        );
    }
    out
}

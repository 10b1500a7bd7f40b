//! Where a deploy's time went: hoist's own overhead (wall time less the build, the push and
//! the slowest target's script of each phase) and the timeline `deploy --timings` prints.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::Report;
use crate::plan::StepKind;
use crate::transport::millis;

/// A deploy's time, in the JSON report (`timings`) and behind `--timings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// From the command's start to the report.
    #[serde(rename = "wall_ms", with = "millis")]
    pub wall: Duration,
    /// Before the first step: the engine's ping, preflight and the registry login, at once,
    /// then the fleet-wide lock (and any wait for it).
    #[serde(rename = "before_steps_ms", with = "millis")]
    pub before_steps: Duration,
    #[serde(rename = "build_ms", with = "millis")]
    pub build: Duration,
    #[serde(rename = "push_ms", with = "millis")]
    pub push: Duration,
    /// Each phase's slowest target's script, added up.
    #[serde(rename = "slowest_scripts_ms", with = "millis")]
    pub slowest_scripts: Duration,
    /// The rest: hoist's own work and waits (planning, API calls, noticing the scripts'
    /// end, fetching their output).
    #[serde(rename = "overhead_ms", with = "millis")]
    pub overhead: Duration,
}

impl Timings {
    pub fn of(report: &Report, before_steps: Duration, wall: Duration) -> Timings {
        let step_time = |kind: StepKind| -> Duration {
            report
                .steps
                .iter()
                .filter(|s| s.step == kind)
                .map(|s| s.duration)
                .sum()
        };
        let build = step_time(StepKind::Build);
        let push = step_time(StepKind::Push);
        let slowest_scripts = report
            .phases
            .iter()
            .filter_map(|p| p.invocations.iter().map(|i| i.duration).max())
            .sum();
        Timings {
            wall,
            before_steps,
            build,
            push,
            slowest_scripts,
            overhead: wall.saturating_sub(build + push + slowest_scripts),
        }
    }
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

//! Where a deploy's time went: hoist's own overhead (wall time less the build, the push and
//! the slowest target's script of each phase) and the timeline `deploy --timings` prints.

use std::time::Duration;

use serde::Serialize;

use super::steps::Report;
use crate::domain::StepKind;
use crate::domain::ser::millis;

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

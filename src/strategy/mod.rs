//! Strategies: how a release replaces the one running, as phases.
//!
//! A strategy turns the plan's resolved inputs into [`Phase`]s: each runs one script (the
//! shared library plus the strategy's body, behind the rendered header) on a set of targets
//! with its own timeout and rollout policy. Recreate has one phase, and so has blue-green
//! for now (its script stages, switches, verifies and retires on each host); a fleet-wide
//! rollout that stages everywhere before it switches anywhere would have two, the second on
//! the targets that passed the first.

mod blue_green;
mod recreate;

use std::time::Duration;

pub use blue_green::BlueGreen;
pub use recreate::Recreate;

use crate::config::{self, Config};
use crate::plan::{Phase, PhaseTargets, RolloutPolicy, TransportKind};
use crate::script::{self, Body, Param};

/// What every phase of a deploy shares, resolved by the plan.
pub struct PhaseInputs<'a> {
    pub config: &'a Config,
    pub release: &'a str,
    pub transport: TransportKind,
    /// The targets, in words.
    pub on: String,
    /// The header every script of this deploy gets (image, container, health, env, …).
    pub params: Vec<(&'static str, Param)>,
    /// Comment lines that open each script.
    pub comment: Vec<String>,
    /// The budget of one host's switch: pull, stop, health gate, the strategy's own switch
    /// (blue-green's post-switch check and drain) and prune.
    pub timeout: Duration,
    pub policy: RolloutPolicy,
}

pub trait Strategy: Sync {
    /// The strategy as the config names it.
    fn kind(&self) -> config::Strategy;

    /// The phases of a deploy, in the order they run.
    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase>;
}

/// The strategy the config chose.
pub fn of(kind: config::Strategy) -> &'static dyn Strategy {
    match kind {
        config::Strategy::Recreate => &Recreate,
        config::Strategy::BlueGreen => &BlueGreen,
    }
}

/// The phase of a strategy that does its whole switch on each host in one run of `body`:
/// `deploy`, on every target.
fn one_host_phase(body: Body, inputs: &PhaseInputs<'_>) -> Phase {
    Phase {
        name: "deploy".to_owned(),
        transport: inputs.transport,
        on: inputs.on.clone(),
        targets: PhaseTargets::All,
        policy: inputs.policy,
        timeout: inputs.timeout,
        script: script::render(body, &inputs.comment, &inputs.params),
    }
}

//! Strategies: how a release replaces the one running, as phases.
//!
//! Recreate's two-phase rollout pulls the image everywhere first (`stage`), then replaces
//! the release on the targets that have it (`switch`), `max_concurrency` at a time.
//!
//! A strategy turns the plan's resolved inputs into [`Phase`]s: each runs one script (the
//! shared library plus the strategy's body, behind the rendered header) on a set of targets
//! with its own timeout and rollout policy. Recreate has one phase, and so has blue-green with
//! `rollout: one-phase` (its script stages, switches, verifies and retires on each host).
//! Blue-green's two-phase rollout (its default) stages on every target at once, then switches
//! on the targets it staged, in batches, only if staging passed on enough of them; otherwise a
//! discard phase removes what was staged. With a canary, the switch runs first on a few of the
//! staged targets, watched for the canary window, and on the rest only once they held.

mod blue_green;
mod recreate;

use std::time::Duration;

pub(super) use blue_green::BlueGreen;
pub(super) use recreate::Recreate;

use crate::config::{self, Config};
use crate::domain::carry::Carried;
use crate::plan::script::{self, Body, Param};
use crate::plan::{Phase, PhaseTargets, PhaseWhen, RolloutPolicy, TransportKind};

/// What every phase of a deploy shares, resolved by the plan.
pub(super) struct PhaseInputs<'a> {
    pub config: &'a Config,
    /// The deploy run (`<run>` in a plan made without one): a staged container's label.
    pub run: &'a str,
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

pub(super) trait Strategy: Sync {
    /// The phases of a deploy, in the order they run.
    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase>;
}

/// The strategy the config chose.
pub(super) fn of(kind: config::Strategy) -> &'static dyn Strategy {
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
        when: PhaseWhen::Always,
        reads_secrets: true,
        policy: inputs.policy,
        timeout: inputs.timeout,
        script: script::render(body, &inputs.comment, &inputs.params),
        carried: Carried::default(),
    }
}

/// The env's header parameters (secrets among them): only a phase that creates the container
/// reads them.
const ENV_PARAMS: [&str; 5] = [
    "HOIST_ENV_CLEAR",
    "HOIST_ENV_SECRETS",
    "HOIST_HOST_SECRETS",
    "HOIST_ENV_SOURCE",
    "HOIST_SECRET_PARAMETER",
];

/// Whether a header parameter is one only a blue-green stage reads: the pull (image, registry,
/// region), `--force` and the env. The switch and discard phases' headers leave them out.
pub fn stage_only(name: &str) -> bool {
    ENV_PARAMS.contains(&name)
        || [
            "HOIST_PULL",
            "HOIST_REGISTRY",
            "HOIST_REGION",
            "HOIST_FORCE",
        ]
        .contains(&name)
}

/// A two-phase rollout whose stage only brings the image onto the hosts: `stage` (`pull`'s
/// body, on every target at once with the config's `max_errors`, no env in its header),
/// then `switch` (`switch`'s body, the whole deploy, env included) on the targets it staged,
/// `max_concurrency` at a time, only when staging passed. Nothing is left to discard.
fn pull_then_switch(pull: Body, switch: Body, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
    let stage_params: Vec<(&'static str, Param)> = inputs
        .params
        .iter()
        .filter(|(name, _)| !ENV_PARAMS.contains(name))
        .cloned()
        .collect();
    let stage = Phase {
        name: "stage".to_owned(),
        transport: inputs.transport,
        on: inputs.on.clone(),
        targets: PhaseTargets::All,
        when: PhaseWhen::Always,
        reads_secrets: false,
        policy: RolloutPolicy {
            max_concurrency: config::Rate::Percent(100),
            max_errors: inputs.policy.max_errors,
        },
        timeout: inputs.timeout,
        script: script::render(pull, &inputs.comment, &stage_params),
        carried: Carried::default(),
    };
    let switch = Phase {
        name: "switch".to_owned(),
        targets: PhaseTargets::Staged("stage".into()),
        when: PhaseWhen::Passed("stage".into()),
        ..one_host_phase(switch, inputs)
    };
    vec![stage, switch]
}

/// A two-phase rollout: `stage` (on every target at once, with the config's `max_errors`),
/// then `switch` on the targets it staged, `max_concurrency` at a time, when it passed;
/// then `discard` on the staged targets no switch started on (all of them when staging
/// failed; those it did not reach when it stopped past its max errors). With
/// `rollout.canary`, phase `canary` comes between `stage` and `switch`: the switch's script
/// on the first canaries of the staged targets, all at once, with no error allowed, each
/// watched for the canary window after its switch; `switch` then runs on the rest, only if
/// every canary held.
fn two_phases(stage: Body, switch: Body, discard: Body, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
    let mut all = inputs.params.clone();
    all.push(("HOIST_RUN", inputs.run.into()));
    let after: Vec<(&'static str, Param)> = all
        .iter()
        .filter(|(name, _)| !stage_only(name))
        .cloned()
        .collect();
    let phase = |name: &str, body, params: &[(&str, Param)]| Phase {
        name: name.to_owned(),
        transport: inputs.transport,
        on: inputs.on.clone(),
        targets: PhaseTargets::All,
        when: PhaseWhen::Always,
        reads_secrets: false,
        policy: inputs.policy,
        timeout: inputs.timeout,
        script: script::render(body, &inputs.comment, params),
        carried: Carried::default(),
    };
    let everywhere = |max_errors| RolloutPolicy {
        max_concurrency: config::Rate::Percent(100),
        max_errors,
    };
    let mut phases = vec![Phase {
        reads_secrets: true,
        policy: everywhere(inputs.policy.max_errors),
        ..phase("stage", stage, &all)
    }];
    let mut switches = Vec::new();
    let mut switch_phase = Phase {
        targets: PhaseTargets::Staged("stage".into()),
        when: PhaseWhen::Passed("stage".into()),
        ..phase("switch", switch, &after)
    };
    if let Some(canary) = inputs.config.canary {
        let mut watched = after.clone();
        watched.push((
            "HOIST_CANARY_WINDOW",
            crate::plan::secs(canary.window).into(),
        ));
        phases.push(Phase {
            targets: PhaseTargets::Canary {
                stage: "stage".into(),
                count: canary.count,
                window: canary.window,
            },
            when: PhaseWhen::Passed("stage".into()),
            policy: everywhere(config::Rate::Count(0)),
            timeout: inputs.timeout.saturating_add(canary.window),
            ..phase("canary", switch, &watched)
        });
        switches.push("canary".to_owned());
        switch_phase.targets = PhaseTargets::AfterCanary {
            stage: "stage".into(),
            canary: "canary".into(),
        };
        switch_phase.when = PhaseWhen::Passed("canary".into());
    }
    phases.push(switch_phase);
    switches.push("switch".to_owned());
    phases.push(Phase {
        targets: PhaseTargets::Unswitched {
            stage: "stage".into(),
            switches,
        },
        policy: everywhere(config::Rate::Percent(100)),
        ..phase("discard", discard, &after)
    });
    phases
}

#[cfg(test)]
mod tests {
    use crate::plan::{Plan, Step};

    /// A plan's steps' kinds in order from its put-secret-parameter step on, a phase's with
    /// its name (`run-phase stage`).
    pub(super) fn steps_from_the_put(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .skip_while(|s| !matches!(s, Step::PutSecretParameter { .. }))
            .map(|s| match s {
                Step::RunPhase(p) => format!("run-phase {}", p.name),
                other => other.kind().as_str().to_owned(),
            })
            .collect()
    }
}

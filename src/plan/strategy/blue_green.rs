//! Blue-green: on each host, start the new release beside the running one on the idle
//! color's loopback port, health-gate it, switch nginx (listening on `container.publish`) to
//! it, verify it through nginx, then drain and stop the old color.
//!
//! `rollout: two-phase` (the default): phase `stage` (bg-stage.sh) stages the release on every
//! target at once; phase `switch` (bg-switch.sh) switches, verifies and retires on the targets
//! it staged, `max_concurrency` at a time, only when staging passed on enough targets; else
//! phase `discard` (bg-discard.sh) removes what was staged and nothing switches anywhere.
//! `rollout: one-phase`: one phase, `deploy`, whose script runs stage → switch → verify →
//! retire on each host, `max_concurrency` hosts at a time.

use super::{PhaseInputs, Strategy, one_host_phase, two_phases};
use crate::config::Rollout;
use crate::plan::Phase;
use crate::plan::script::Body;

pub(crate) struct BlueGreen;

impl Strategy for BlueGreen {
    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
        match inputs.config.rollout {
            Rollout::OnePhase => vec![one_host_phase(Body::BlueGreen, inputs)],
            Rollout::TwoPhase => two_phases(Body::BgStage, Body::BgSwitch, Body::BgDiscard, inputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Inputs, PhaseTargets, TransportKind, build};
    use crate::revision::Revision;

    #[test]
    fn one_deploy_phase_runs_the_blue_green_body_on_every_target() {
        let config = crate::config::parse(
            "app: web\ntargets:\n  tags: {Env: [prod]}\ncontainer:\n  publish: 8080\n\
             strategy: blue-green\nrollout: one-phase\n",
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap();
        let plan = build(
            &config,
            &Inputs::new(
                Revision::clean("0123456789abcdef0123456789abcdef01234567"),
                TransportKind::Ssm,
            ),
        )
        .unwrap();
        let phases: Vec<&Phase> = plan.phases().collect();
        assert_eq!(phases.len(), 1);
        assert_eq!(phases[0].name, "deploy");
        assert_eq!(phases[0].targets, PhaseTargets::All);
        assert_eq!(phases[0].script.body, "blue-green.sh");
        assert!(
            phases[0]
                .script
                .text
                .contains("blue-green deploy of app web")
        );
    }

    fn two_phase_plan(yaml_extra: &str, secret: bool) -> crate::plan::Plan {
        let config = crate::config::parse(
            &format!(
                "app: web\ntargets:\n  tags: {{Env: [prod]}}\n  max_concurrency: 1\n  \
                 max_errors: 0\ncontainer:\n  publish: 8080\nstrategy: blue-green\n{}{yaml_extra}",
                if secret {
                    "env:\n  clear: {MODE: x}\n  secret: [TOKEN]\n"
                } else {
                    ""
                }
            ),
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap();
        assert_eq!(config.rollout, crate::config::Rollout::TwoPhase);
        let mut inputs = Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            TransportKind::Ssm,
        );
        inputs.run = Some("20261206T170000Z-0a1b2c3d".into());
        inputs.instances = Some(vec!["i-1".into(), "i-2".into(), "i-3".into()]);
        build(&config, &inputs).unwrap()
    }

    /// Two-phase (blue-green's default): stage everywhere at once with the config's max
    /// errors, then switch the staged targets one batch at a time only if staging passed,
    /// else discard; the secret parameter is deleted right after the stage, and only the
    /// stage's header carries the env.
    #[test]
    fn two_phase_stages_everywhere_then_switches_or_discards_the_staged_targets() {
        use crate::config::Rate;
        use crate::plan::PhaseWhen;
        let plan = two_phase_plan("", true);
        let phases: Vec<&Phase> = plan.phases().collect();
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["stage", "switch", "discard"]);
        let [stage, switch, discard] = [phases[0], phases[1], phases[2]];
        assert_eq!(stage.targets, PhaseTargets::All);
        assert_eq!(stage.when, PhaseWhen::Always);
        assert_eq!(stage.policy.max_concurrency, Rate::Percent(100));
        assert_eq!(stage.policy.max_errors, Rate::Count(0));
        assert!(stage.reads_secrets);
        assert_eq!(stage.script.body, "bg-stage.sh");
        assert_eq!(switch.targets, PhaseTargets::Staged("stage".into()));
        assert_eq!(switch.when, PhaseWhen::Passed("stage".into()));
        assert_eq!(switch.policy.max_concurrency, Rate::Count(1));
        assert!(!switch.reads_secrets);
        assert_eq!(switch.script.body, "bg-switch.sh");
        assert_eq!(
            discard.targets,
            PhaseTargets::Unswitched {
                stage: "stage".into(),
                switches: vec!["switch".into()]
            }
        );
        assert_eq!(discard.when, PhaseWhen::Always);
        assert_eq!(discard.script.body, "bg-discard.sh");
        for phase in [stage, switch, discard] {
            assert!(
                phase
                    .script
                    .text
                    .contains("\nHOIST_RUN='20261206T170000Z-0a1b2c3d'\n"),
                "{}",
                phase.name
            );
        }
        for phase in [switch, discard] {
            for param in [
                "HOIST_ENV_SECRETS=",
                "HOIST_ENV_CLEAR=",
                "HOIST_SECRET_PARAMETER=",
            ] {
                assert!(
                    !phase.script.text.contains(&format!("\n{param}")),
                    "{} has {param}",
                    phase.name
                );
            }
        }
        assert!(
            stage
                .script
                .text
                .contains("\nHOIST_ENV_SECRETS=('TOKEN')\n")
        );
        assert_eq!(
            crate::plan::strategy::tests::steps_from_the_put(&plan),
            [
                "put-secret-parameter",
                "run-phase stage",
                "delete-secret-parameter",
                "run-phase switch",
                "run-phase discard"
            ]
        );
        let text = plan.render(crate::plan::Format::Text);
        assert!(
            text.contains("; two-phase: stage on every target at once"),
            "{text}"
        );
        assert!(
            text.contains("on the targets phase stage staged via ssm transport")
                && text.contains("in batches of 1: 3 batches for 3 target(s)")
                && text.contains("only if phase stage succeeded on enough targets")
                && text
                    .contains("on the targets phase stage staged where phase switch did not start"),
            "{text}"
        );
        let back =
            crate::plan::Plan::read(&plan.render(crate::plan::Format::Json), "p.json").unwrap();
        assert_eq!(back, plan);
    }

    /// `rollout.canary`: phase canary runs the switch's script, watched for the window, on
    /// the first canaries of the staged targets, all at once with no error allowed; the
    /// switch runs on the rest only if it passed; the discard covers what neither started.
    #[test]
    fn a_canary_switches_a_few_staged_targets_first_and_the_rest_only_if_they_held() {
        use crate::config::Rate;
        use crate::plan::PhaseWhen;
        use std::time::Duration;
        let plan = two_phase_plan("rollout:\n  canary: 1\n  canary_window: 45s\n", true);
        let phases: Vec<&Phase> = plan.phases().collect();
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["stage", "canary", "switch", "discard"]);
        let [stage, canary, switch, discard] = [phases[0], phases[1], phases[2], phases[3]];
        assert_eq!(
            canary.targets,
            PhaseTargets::Canary {
                stage: "stage".into(),
                count: Rate::Count(1),
                window: Duration::from_secs(45)
            }
        );
        assert_eq!(canary.when, PhaseWhen::Passed("stage".into()));
        assert_eq!(canary.policy.max_errors, Rate::Count(0));
        assert_eq!(canary.policy.max_concurrency, Rate::Percent(100));
        assert_eq!(canary.script.body, "bg-switch.sh");
        assert!(!canary.reads_secrets);
        assert_eq!(canary.timeout, switch.timeout + Duration::from_secs(45));
        assert!(
            canary.script.text.contains("\nHOIST_CANARY_WINDOW='45'\n"),
            "{}",
            canary.script.text
        );
        assert!(!switch.script.text.contains("\nHOIST_CANARY_WINDOW='"));
        assert_eq!(
            switch.targets,
            PhaseTargets::AfterCanary {
                stage: "stage".into(),
                canary: "canary".into()
            }
        );
        assert_eq!(switch.when, PhaseWhen::Passed("canary".into()));
        assert_eq!(switch.policy.max_concurrency, Rate::Count(1));
        assert_eq!(
            discard.targets,
            PhaseTargets::Unswitched {
                stage: "stage".into(),
                switches: vec!["canary".into(), "switch".into()]
            }
        );
        assert!(stage.reads_secrets);
        let text = plan.render(crate::plan::Format::Text);
        assert!(
            text.contains("two-phase with a canary: stage on every target at once")
                && text.contains("switch 1 of the staged targets first (phase canary)")
                && text.contains("watch them for 45s"),
            "{text}"
        );
        assert!(
            text.contains("phase canary: run bg-switch.sh")
                && text.contains("(the canaries, each watched for 45s after its switch)")
                && text.contains("; 1 target(s) at once; only if phase stage succeeded"),
            "{text}"
        );
        assert!(
            text.contains("the targets phase stage staged but for phase canary's")
                && text
                    .contains("in batches of 1: 2 batches for 2 target(s); only if phase canary"),
            "{text}"
        );
        assert!(
            text.contains("where neither phase canary nor phase switch started"),
            "{text}"
        );
        let back =
            crate::plan::Plan::read(&plan.render(crate::plan::Format::Json), "p.json").unwrap();
        assert_eq!(back, plan);

        // A percentage rounds up, to at least one, and never past what was staged.
        assert_eq!(crate::config::Canary::of(Rate::Percent(10), 3), 1);
        assert_eq!(crate::config::Canary::of(Rate::Percent(50), 3), 2);
        assert_eq!(crate::config::Canary::of(Rate::Count(5), 3), 3);
        assert_eq!(crate::config::Canary::of(Rate::Count(1), 0), 0);
    }

    /// A canary needs a two-phase blue-green rollout; its fields are checked where they are.
    #[test]
    fn a_canary_is_refused_where_it_could_not_switch_back() {
        let parse = |yaml: &str| {
            crate::config::parse(
                &format!(
                    "app: web\ntargets:\n  tags: {{Env: [prod]}}\ncontainer:\n  publish: 8080\n{yaml}"
                ),
                "hoist.yaml".as_ref(),
                ".".as_ref(),
            )
            .map_err(|e| e.headlines())
        };
        let err = parse("rollout:\n  canary: 1\n").unwrap_err();
        assert!(
            err.contains("hoist.yaml:7:11: rollout.canary:")
                && err.contains("`strategy: blue-green`"),
            "{err}"
        );
        let err =
            parse("strategy: blue-green\nrollout:\n  mode: one-phase\n  canary: 1\n").unwrap_err();
        assert!(
            err.contains("rollout.canary:") && err.contains("`rollout.mode: two-phase`"),
            "{err}"
        );
        let err = parse("strategy: blue-green\nrollout:\n  canary: 100%\n").unwrap_err();
        assert!(err.contains("a canary of 100% is every target"), "{err}");
        let err = parse("strategy: blue-green\nrollout:\n  canary: 0\n").unwrap_err();
        assert!(
            err.contains("rollout.canary:") && err.contains("1 or more"),
            "{err}"
        );
        let err = parse("strategy: blue-green\nrollout:\n  canary: 1\n  canary_window: 2h\n")
            .unwrap_err();
        assert!(
            err.contains("rollout.canary_window:") && err.contains("out of range (1s-1h)"),
            "{err}"
        );
        let err = parse("strategy: blue-green\nrollout:\n  canary_window: 1m\n").unwrap_err();
        assert!(err.contains("`canary_window` without `canary`"), "{err}");
        let err =
            parse("strategy: blue-green\nrollout:\n  canary: 1\n  canary_windw: 1m\n").unwrap_err();
        assert!(err.contains("unknown key `canary_windw`"), "{err}");
        let ok = parse("strategy: blue-green\nrollout:\n  canary: 25%\n").unwrap();
        assert_eq!(ok.rollout, crate::config::Rollout::TwoPhase);
        let canary = ok.canary.unwrap();
        assert_eq!(canary.count, crate::config::Rate::Percent(25));
        assert_eq!(canary.window, crate::config::Canary::DEFAULT_WINDOW);
        let ok = parse("strategy: blue-green\nrollout: {mode: two-phase}\n").unwrap();
        assert!(ok.canary.is_none());
    }

    #[test]
    fn one_phase_blue_green_and_recreate_keep_one_deploy_phase() {
        let plan = two_phase_plan("", false);
        assert_eq!(plan.phases().count(), 3);
        let config = crate::config::parse(
            "app: web\ntargets:\n  tags: {Env: [prod]}\ncontainer:\n  publish: 8080\n",
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap();
        assert_eq!(config.rollout, crate::config::Rollout::OnePhase);
        let err = crate::config::parse(
            "app: web\ntargets:\n  tags: {Env: [prod]}\ncontainer:\n  publish: 8080\n\
             strategy: blue-green\nrollout: three-phase\n",
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap_err()
        .headlines();
        assert!(err.contains("unknown rollout `three-phase`"), "{err}");
    }
}

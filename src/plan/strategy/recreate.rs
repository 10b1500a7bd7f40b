//! Recreate: on each host, stop the running release and start the new one in its place,
//! health-gated, with the old one put back when the new one fails.
//!
//! `rollout: one-phase` (the default): one phase, `deploy`, `max_concurrency` hosts at a time.
//! `rollout: two-phase`: phase `stage` (recreate-stage.sh) pulls the image on every target at
//! once and touches nothing that runs; only if it passed on enough targets (`max_errors`)
//! does phase `switch` (recreate.sh, whose pull then finds the image there) replace the
//! release on the targets it staged, `max_concurrency` at a time. There is nothing to discard.

use super::{PhaseInputs, Strategy, one_host_phase, pull_then_switch};
use crate::config::Rollout;
use crate::plan::Phase;
use crate::plan::script::Body;

pub(crate) struct Recreate;

impl Strategy for Recreate {
    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
        match inputs.config.rollout {
            Rollout::OnePhase => vec![one_host_phase(Body::Recreate, inputs)],
            Rollout::TwoPhase => pull_then_switch(Body::RecreateStage, Body::Recreate, inputs),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::{Inputs, Phase, PhaseTargets, PhaseWhen, TransportKind, build};
    use crate::revision::Revision;

    /// Recreate's two-phase rollout: `stage` pulls everywhere at once, reading no env (its
    /// header has none); `switch` is the whole recreate deploy on the staged targets, in
    /// batches, only if the stage passed; the secret parameter lives until the switch ends.
    #[test]
    fn two_phase_recreate_pulls_everywhere_then_switches_the_staged_targets() {
        use crate::config::Rate;
        let config = crate::config::parse(
            "app: web\ntargets:\n  tags: {Env: [prod]}\n  max_concurrency: 1\n  \
             max_errors: 1\ncontainer:\n  publish: 8080\nrollout: two-phase\n\
             env:\n  clear: {MODE: x}\n  secret: [TOKEN]\n",
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap();
        let mut inputs = Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            TransportKind::Ssm,
        );
        inputs.run = Some("20261206T170000Z-0a1b2c3d".into());
        inputs.instances = Some(vec!["i-1".into(), "i-2".into(), "i-3".into()]);
        let plan = build(&config, &inputs).unwrap();
        let phases: Vec<&Phase> = plan.phases().collect();
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["stage", "switch"]);
        let [stage, switch] = [phases[0], phases[1]];
        assert_eq!(stage.script.body, "recreate-stage.sh");
        assert!(!stage.reads_secrets);
        assert_eq!(stage.policy.max_concurrency, Rate::Percent(100));
        assert_eq!(stage.policy.max_errors, Rate::Count(1));
        for param in [
            "HOIST_ENV_SECRETS=",
            "HOIST_ENV_CLEAR=",
            "HOIST_SECRET_PARAMETER=",
        ] {
            assert!(
                !stage.script.text.contains(&format!("\n{param}")),
                "{param}"
            );
        }
        assert!(stage.script.text.contains("\nHOIST_PULL='if-missing'\n"));
        assert_eq!(switch.script.body, "recreate.sh");
        assert!(switch.reads_secrets);
        assert!(
            switch
                .script
                .text
                .contains("\nHOIST_ENV_SECRETS=('TOKEN')\n")
        );
        assert_eq!(switch.targets, PhaseTargets::Staged("stage".into()));
        assert_eq!(switch.when, PhaseWhen::Passed("stage".into()));
        assert_eq!(switch.policy.max_concurrency, Rate::Count(1));
        assert_eq!(
            crate::plan::strategy::tests::steps_from_the_put(&plan),
            [
                "put-secret-parameter",
                "run-phase stage",
                "run-phase switch",
                "delete-secret-parameter"
            ]
        );
        let text = plan.render(crate::plan::Format::Text);
        assert!(
            text.contains("two-phase: stage (pull the image, touching nothing that runs)"),
            "{text}"
        );
        assert!(
            !text.contains("phase canary"),
            "no canary without rollout.canary: {text}"
        );
    }
}

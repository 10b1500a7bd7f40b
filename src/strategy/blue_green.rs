//! Blue-green: on each host, start the new release beside the running one on the idle
//! color's loopback port, health-gate it, switch nginx (listening on `container.publish`) to
//! it, verify it through nginx, then drain and stop the old color. One phase, `deploy`: the
//! script runs stage → switch → verify → retire itself and records each step for the
//! watchdog. (A fleet-wide two-phase rollout, staging everywhere before switching anywhere,
//! is a later change.)

use super::{PhaseInputs, Strategy, one_host_phase};
use crate::config;
use crate::plan::Phase;
use crate::script::Body;

pub struct BlueGreen;

impl Strategy for BlueGreen {
    fn kind(&self) -> config::Strategy {
        config::Strategy::BlueGreen
    }

    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
        vec![one_host_phase(Body::BlueGreen, inputs)]
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
             strategy: blue-green\n",
            "hoist.yaml".as_ref(),
            ".".as_ref(),
        )
        .unwrap();
        assert_eq!(super::super::of(config.strategy).kind(), config.strategy);
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
}

//! Recreate: on each host, stop the running release and start the new one in its place,
//! health-gated, with the old one put back when the new one fails. One phase.

use super::{PhaseInputs, Strategy};
use crate::config;
use crate::plan::{Phase, PhaseTargets};
use crate::script::{self, Body};

pub struct Recreate;

impl Strategy for Recreate {
    fn kind(&self) -> config::Strategy {
        config::Strategy::Recreate
    }

    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
        vec![Phase {
            name: "deploy".to_owned(),
            transport: inputs.transport,
            on: inputs.on.clone(),
            targets: PhaseTargets::All,
            policy: inputs.policy,
            timeout: inputs.timeout,
            script: script::render(Body::Recreate, &inputs.comment, &inputs.params),
        }]
    }
}

//! Recreate: on each host, stop the running release and start the new one in its place,
//! health-gated, with the old one put back when the new one fails. One phase.

use super::{PhaseInputs, Strategy, one_host_phase};
use crate::config;
use crate::plan::Phase;
use crate::script::Body;

pub struct Recreate;

impl Strategy for Recreate {
    fn kind(&self) -> config::Strategy {
        config::Strategy::Recreate
    }

    fn phases(&self, inputs: &PhaseInputs<'_>) -> Vec<Phase> {
        vec![one_host_phase(Body::Recreate, inputs)]
    }
}

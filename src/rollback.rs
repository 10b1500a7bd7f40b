//! `hoist rollback [--to RELEASE]`: start a retained release again on every target.
//!
//! A retained release is a stopped container that keeps its whole configuration (image, env
//! file contents baked in at `docker create`, labels with its health check), so nothing is
//! built, pushed or sent but the script: no secret travels again. `rollback.sh` takes the
//! app's lock, stops the running release, starts the chosen one, health-gates it with its
//! own labels, and on failure restores the release that was running, verified like a
//! deploy's rollback. A target that does not retain the release says so and is left as is.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::deploy::{self, DeployError, PhaseReport, PhaseRun, Services};
use crate::plan::{self, Phase, PhaseTargets, TransportKind};
use crate::transport::{Invocation, Outcome};

/// The one phase of a rollback; refused when its transport would refuse the script.
pub fn phase(
    config: &Config,
    transport: TransportKind,
    to: Option<&str>,
) -> Result<Phase, crate::carry::TooLarge> {
    let mut phase = Phase {
        name: "rollback".to_owned(),
        transport,
        on: plan::describe_on(config, transport),
        targets: PhaseTargets::All,
        when: plan::PhaseWhen::Always,
        reads_secrets: false,
        policy: plan::rollout_policy(config),
        timeout: plan::switch_timeout(config),
        script: plan::rollback_script(config, to),
        carried: crate::carry::Carried::default(),
    };
    phase.carried = phase.measure().check(&phase.script)?;
    Ok(phase)
}

/// What happened, for the summary table and `--format json`.
#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub app: String,
    /// `--to`; `None`: each target's newest retained release older than the running one.
    pub to: Option<String>,
    /// The phase executed, with its script.
    pub phase: Phase,
    pub invocations: Vec<Invocation>,
    /// Targets now running the release they were asked to go back to.
    pub rolled_back: usize,
    pub failed: usize,
    pub cancelled: bool,
    /// Over SSM: the fleet-wide lock the rollback held, and how long it waited for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::lock::LockReport>,
}

impl RollbackReport {
    pub fn ok(&self) -> bool {
        self.failed == 0 && !self.cancelled && !self.invocations.is_empty()
    }

    /// The per-target table: STATUS says `rolled back` where the release now runs; the
    /// release column is the one each target runs now, as its script reported.
    pub fn summary(&self) -> String {
        let phases = [PhaseReport {
            name: self.phase.name.clone(),
            invocations: self.invocations.clone(),
        }];
        deploy::table(&phases, &|inv| release_of(inv), &|inv| {
            status_of(inv).to_owned()
        })
    }
}

/// The release a target runs now, as its script reported.
pub fn release_of(inv: &Invocation) -> String {
    inv.result
        .as_ref()
        .map(|r| r.release.clone())
        .unwrap_or_default()
}

/// A target's STATUS after a rollback: `rolled back` where the release now runs.
pub fn status_of(inv: &Invocation) -> &'static str {
    match inv.outcome.unwrap_or_else(|| inv.judge()) {
        Outcome::Deployed => "rolled back",
        // The chosen release failed its gate and the one that ran is back.
        Outcome::RolledBack => "failed, restored",
        other => other.as_str(),
    }
}

/// Runs the rollback phase on `targets` and judges each.
pub async fn run(
    app: &str,
    to: Option<&str>,
    phase: Phase,
    targets: Vec<String>,
    services: &Services<'_>,
    cancel: CancellationToken,
) -> Result<RollbackReport, DeployError> {
    let comment = match to {
        Some(release) => format!("hoist rollback {app} to release {release}"),
        None => format!("hoist rollback {app} to the previous release"),
    };
    let run = PhaseRun {
        comment,
        targets,
        parameter: None,
    };
    let (invocations, _) = deploy::run_phase(&phase, run, services, &cancel)
        .await
        .map_err(|(e, _)| e)?;
    let rolled_back = invocations.iter().filter(|i| i.deployed()).count();
    let cancelled = cancel.is_cancelled() && invocations.iter().any(Invocation::interrupted);
    Ok(RollbackReport {
        app: app.to_owned(),
        to: to.map(str::to_owned),
        phase,
        failed: invocations.len() - rolled_back,
        rolled_back,
        invocations,
        cancelled,
        lock: None,
    })
}

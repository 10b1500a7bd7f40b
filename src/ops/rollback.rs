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

use std::sync::Arc;
use std::time::Duration;

use super::error::Error;
use super::execute::{self, PhaseRun, Runner};
use super::prepare::{self, take_lock};
use super::steps::DeployError;
use crate::config;
use crate::domain::secrets::SecretEnv;
use crate::domain::{Events, Invocation, Outcome, Phase};
use crate::lock;
use crate::plan;
use crate::transport::{LocalTransport, SsmTransport};

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
    runner: &Runner<'_>,
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
    let (invocations, _) = execute::run_phase(&phase, run, runner, &cancel)
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
/// What `hoist rollback` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub file: crate::config::Source,
    pub local: bool,
    /// `--to`: the release to go back to.
    pub to: Option<String>,
    pub dry_run: bool,
    pub lock_wait: Option<Duration>,
}

/// What a rollback came to.
pub enum RolledBack {
    /// `--dry-run`: the phase each target of `app` would run; nothing changed.
    Script { app: String, phase: Box<Phase> },
    /// It ran; the report says how each target ended.
    Ran(Box<RollbackReport>),
}

/// `hoist rollback`: checks the request, resolves the targets, takes the fleet-wide lock
/// (over SSM) and runs the rollback phase on every target. Nothing is built and no secret
/// is sent, so neither Docker nor the secret parameter is involved.
pub async fn run_request(
    request: Request,
    events: Arc<dyn Events>,
    cancel: CancellationToken,
) -> Result<RolledBack, Error> {
    let config = request.file.load(config::Files::None)?;
    if let Some(to) = &request.to
        && !plan::is_release_id(to)
    {
        return Err(Error::BadTo(config::text::escape(to, false).into_owned()));
    }
    let transport = prepare::transport_kind(request.local);
    let phase = plan::rollback_phase(&config, transport, request.to.as_deref())
        .map_err(|e| Error::Plan(e.into()))?;
    if request.dry_run {
        return Ok(RolledBack::Script {
            app: config.app,
            phase: Box::new(phase),
        });
    }
    let (targets, aws) =
        prepare::resolve_targets(transport, &config, events.as_ref(), &cancel).await?;
    // Held until hoist ends (released when dropped, after the rollback's own cancel).
    let lock = match &aws {
        Some(aws) => {
            let release = request.to.as_deref().unwrap_or("previous");
            let lock_request = lock::Request::here("rollback", release, None);
            let wait = request.lock_wait;
            Some(take_lock(&aws.ssm, &config, &lock_request, wait, &events, &cancel).await?)
        }
        None => None,
    };
    let secrets = SecretEnv::default();
    let local = LocalTransport::default();
    let remote = aws.map(|aws| SsmTransport::new(aws.ssm));
    let recorder = lock.as_ref().map(lock::Held::recorder);
    let runner = Runner {
        ssm: None,
        transport: match &remote {
            Some(t) => t,
            None => &local,
        },
        secrets: &secrets,
        progress: events.as_ref(),
        commands: recorder.as_ref(),
    };
    let mut report = run(
        &config.app,
        request.to.as_deref(),
        phase,
        targets,
        &runner,
        cancel,
    )
    .await?;
    report.lock = lock.as_ref().map(lock::Held::report);
    Ok(RolledBack::Ran(Box::new(report)))
}

/// How a rollback that ran ends the command: `Ok` when every target runs the release.
pub fn verdict(report: &RollbackReport) -> Result<(), Error> {
    if report.cancelled {
        Err(Error::Interrupted(
            "during the rollback: the scripts were stopped; each target's state is above",
        ))
    } else if report.ok() {
        Ok(())
    } else {
        Err(Error::Failed)
    }
}

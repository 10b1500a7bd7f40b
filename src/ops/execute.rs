//! Running one phase: its script through the transport to its targets, the run's secret
//! parameter put before and deleted after, and every target's output redacted and judged.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::steps::DeployError;
use crate::domain::outcome;
use crate::domain::secrets::SecretEnv;
use crate::domain::{Events, Invocation, Phase, StepKind};
use crate::plan::Plan;
use crate::transport::secret_parameter::{self, SecretParameter};
use crate::transport::{Job, OutputSink, Transport};

/// What every phase runs with: the transport that carries its script, the SSM API for the
/// run's secret parameter, the secret values (sent, and redacted from every output), and
/// where events go. Publishing (Docker and the registry) is [`super::build::Publisher`]'s.
pub struct Runner<'a> {
    /// The SSM API (put- and delete-secret-parameter).
    pub ssm: Option<&'a aws_sdk_ssm::Client>,
    pub transport: &'a dyn Transport,
    pub secrets: &'a SecretEnv,
    pub progress: &'a dyn Events,
    /// Over SSM, under the fleet lock: where the commands the phases send are recorded.
    pub commands: Option<&'a crate::lock::CommandRecorder>,
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Done,
    /// Not needed: what it would make already exists (the detail says what and where).
    Skipped,
    Failed,
    /// An earlier step failed, or the deploy was cancelled, before this one began.
    NotRun,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::NotRun => "not run",
        }
    }
}

/// One executed step, in the plan's order.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: StepKind,
    /// The phase, for a run-phase step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub status: StepStatus,
    pub detail: String,
    #[serde(rename = "duration_ms", with = "crate::domain::ser::millis")]
    pub duration: Duration,
}

/// One phase's targets, judged.
#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub invocations: Vec<Invocation>,
}

/// Passes the hosts' output on as it arrives, redacted of secret values first.
struct Sink<'a> {
    progress: &'a dyn Events,
    secrets: &'a SecretEnv,
    commands: Option<&'a crate::lock::CommandRecorder>,
}

impl OutputSink for Sink<'_> {
    fn line(&self, target: &str, line: &str) {
        self.progress.host_line(target, &self.secrets.redact(line));
    }

    fn status(&self, target: &str, message: &str) {
        self.progress
            .host_status(target, &self.secrets.redact(message));
    }

    fn command_sent(&self, command_id: &str) {
        if let Some(commands) = self.commands {
            commands.record(command_id);
        }
    }
}

pub(super) async fn put_parameter(
    plan: &Plan,
    s: &Runner<'_>,
    name: &str,
    tier: crate::config::SecretTier,
    lifetime: Duration,
) -> Result<(), DeployError> {
    let ssm = s.ssm.ok_or_else(|| {
        DeployError::Unsupported(
            "the plan puts a secret parameter, and this deploy has no SSM".into(),
        )
    })?;
    let parameter = SecretParameter {
        name: name.to_owned(),
        tier,
        tags: [
            ("hoist:app", Some(plan.app.as_str())),
            ("hoist:environment", plan.environment.as_deref()),
            ("hoist:release", Some(plan.release.as_str())),
            ("hoist:run", Some(plan.run.as_deref().unwrap_or_default())),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned())))
        .collect(),
    };
    secret_parameter::put(ssm, &parameter, &s.secrets.payload(), lifetime)
        .await
        .map_err(DeployError::SecretParameter)
}

/// Deletes the run's secret parameter; a failure is reported, not fatal (the next deploy's
/// sweep deletes it once it expired).
pub(super) async fn delete_parameter(s: &Runner<'_>, name: &str) -> (StepStatus, String) {
    let Some(ssm) = s.ssm else {
        return (StepStatus::Failed, "this deploy has no SSM".into());
    };
    match secret_parameter::delete(ssm, name).await {
        Ok(()) => {
            s.progress
                .done(&format!("deleted the secret parameter {name}"));
            (StepStatus::Done, format!("deleted {name}"))
        }
        Err(e) => {
            let line = format!(
                "could not delete the secret parameter {name}: {e}; the next deploy of this \
                 app deletes it once it expires"
            );
            s.progress.warn(&format!("warning: {line}"));
            (StepStatus::Failed, line)
        }
    }
}

/// Where and how one phase runs.
pub struct PhaseRun<'a> {
    /// What the run is, for people (SSM's command comment, the progress line).
    pub comment: String,
    pub targets: Vec<String>,
    /// The run's secret parameter, when a step put one.
    pub parameter: Option<&'a str>,
}

/// Runs one phase through the transport and judges each target. On a cancel the run's
/// secret parameter is deleted at once, while the transport stops the scripts (a CI runner
/// escalates to SIGKILL within seconds); the flag says it was.
pub async fn run_phase(
    phase: &Phase,
    run: PhaseRun<'_>,
    s: &Runner<'_>,
    cancel: &CancellationToken,
) -> Result<(Vec<Invocation>, bool), (DeployError, bool)> {
    let parameter = run.parameter;
    let job = Job {
        script: &phase.script,
        secrets: (phase.reads_secrets && !s.secrets.is_empty() && parameter.is_none())
            .then_some(s.secrets),
        targets: &run.targets,
        policy: phase.policy,
        timeout: phase.timeout,
        comment: run.comment.clone(),
    };
    s.progress.activity(&format!(
        "{}: phase {} via {} (script sha256 {})",
        run.comment,
        phase.name,
        s.transport.name(),
        &phase.script.sha256[..16]
    ));
    let sink = Sink {
        progress: s.progress,
        secrets: s.secrets,
        commands: s.commands,
    };
    let finished = CancellationToken::new();
    let run = async {
        let result = s.transport.run(&job, cancel.clone(), &sink).await;
        finished.cancel();
        result
    };
    let early_delete = async {
        let Some(name) = parameter else { return false };
        tokio::select! {
            () = cancel.cancelled() => {
                let _ = delete_parameter(s, name).await;
                true
            }
            () = finished.cancelled() => false,
        }
    };
    let (result, deleted_early) = tokio::join!(run, early_delete);
    let mut invocations = result.map_err(|e| (e.into(), deleted_early))?;
    for inv in &mut invocations {
        read_output(inv, s.secrets);
    }
    for inv in &invocations {
        s.progress.judged(&phase.name, inv);
    }
    for inv in &invocations {
        s.progress.verbose(&format!(
            "[{}] {:?}, exit code {}, {:.1}s: {}",
            inv.target,
            inv.status,
            inv.exit_code
                .map_or_else(|| "none".to_owned(), |c| c.to_string()),
            inv.duration.as_secs_f64(),
            inv.outcome.unwrap_or_else(|| inv.judge()).as_str()
        ));
    }
    let deployed = invocations.iter().filter(|i| i.deployed()).count();
    s.progress.done(&format!(
        "phase {}: {deployed} of {} target{} succeeded",
        phase.name,
        invocations.len(),
        if invocations.len() == 1 { "" } else { "s" }
    ));
    Ok((invocations, deleted_early))
}

/// The one place output from a transport is read: redacted of secret values first, then
/// the script's `HOIST-RESULT` line parsed from what is left, so every field taken from
/// output (reason, health, the summary, the JSON report) is redacted too.
pub(super) fn read_output(inv: &mut Invocation, secrets: &SecretEnv) {
    inv.stdout = secrets.redact(&inv.stdout);
    inv.stderr = secrets.redact(&inv.stderr);
    inv.result = outcome::parse(&inv.stdout);
    inv.outcome = Some(inv.judge());
}

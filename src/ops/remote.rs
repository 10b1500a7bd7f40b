//! `hoist logs` and `hoist exec`: one read-only script (`logs.sh`) or one command in the live
//! container (`exec.sh`) on every target, their output per target, secrets masked twice: on
//! the host (every secret the container holds) and here (every secret value in hoist's own
//! environment).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::prepare;
use crate::config;
use crate::domain::secrets::SecretEnv;
use crate::domain::{Events, Invocation, Phase};
use crate::transport::{Job, LocalTransport, OutputSink, SsmTransport, Transport};

/// What one host said after its output: the `HOIST-LOGS` / `HOIST-EXEC` line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Said {
    pub release: String,
    pub container: Option<String>,
    /// `exec`: the command's exit status.
    pub code: Option<i32>,
    pub lines: u64,
    pub cut: bool,
    /// `logs`: where the read ended (the next `--follow` read starts there).
    pub until: String,
    /// `remove`: the containers removed, and whether the app's nginx file was.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    pub nginx: bool,
    pub error: Option<String>,
}

/// One target's answer.
#[derive(Debug, Clone, Serialize)]
pub struct TargetOutput {
    pub target: String,
    /// Its output lines, masked (the marker line left out).
    pub output: Vec<String>,
    #[serde(flatten)]
    pub said: Said,
    /// Why the target could not be read (or the command not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl TargetOutput {
    fn of(inv: &Invocation, marker: &str, mask: &SecretEnv) -> TargetOutput {
        let said: Option<Said> = crate::domain::outcome::last_marked(&inv.stdout, marker);
        let lines = inv
            .stdout
            .lines()
            .filter(|l| !l.starts_with(marker))
            .map(|l| mask.redact(l))
            .collect();
        let problem = match &said {
            Some(s) => s.error.clone(),
            None => Some(
                inv.failure_reason()
                    .unwrap_or_else(|| "the host printed no answer".to_owned()),
            ),
        };
        TargetOutput {
            target: inv.target.clone(),
            output: lines,
            said: said.unwrap_or_default(),
            problem: problem.map(|p| mask.redact(&p)),
        }
    }
}

/// The secret values of hoist's own environment that are set (none need be): masked in
/// whatever the hosts print.
pub fn known_secrets(config: &config::Config) -> SecretEnv {
    let present: Vec<String> = config
        .env
        .from_environment()
        .into_iter()
        .filter(|n| std::env::var_os(n).is_some())
        .collect();
    SecretEnv::from_env(&present).unwrap_or_else(|_| SecretEnv::default())
}

/// The targets a command addresses: all of them, or the ones `only` names (each must be one
/// of them).
pub fn pick(all: Vec<String>, only: &[String]) -> Result<Vec<String>, Error> {
    if only.is_empty() {
        return Ok(all);
    }
    if let Some(stray) = only.iter().find(|t| !all.contains(t)) {
        return Err(Error::NotATarget {
            target: stray.clone(),
            targets: all,
        });
    }
    Ok(all.into_iter().filter(|t| only.contains(t)).collect())
}

/// Runs `phase` on `targets` (over SSM with `ssm`, else on this machine), its hosts' lines
/// dropped: what each target said is in its invocation.
pub async fn invocations(
    phase: &Phase,
    targets: &[String],
    ssm: Option<aws_sdk_ssm::Client>,
    comment: String,
    cancel: &CancellationToken,
) -> Result<Vec<Invocation>, Error> {
    let job = Job {
        script: &phase.script,
        secrets: None,
        targets,
        policy: phase.policy,
        timeout: phase.timeout,
        comment,
    };
    match ssm {
        None => {
            LocalTransport::default()
                .run(&job, cancel.clone(), &Quiet)
                .await
        }
        Some(ssm) => {
            SsmTransport::new(ssm)
                .run(&job, cancel.clone(), &Quiet)
                .await
        }
    }
    .map_err(|e| Error::Deploy(e.into()))
}

/// Runs `phase` on `targets` and reads each one's answer.
pub async fn run(
    phase: &Phase,
    targets: &[String],
    ssm: Option<aws_sdk_ssm::Client>,
    marker: &str,
    mask: &SecretEnv,
    comment: String,
    cancel: &CancellationToken,
) -> Result<Vec<TargetOutput>, Error> {
    let invocations = invocations(phase, targets, ssm, comment, cancel).await?;
    if cancel.is_cancelled() {
        return Err(Error::Interrupted("while the targets answered"));
    }
    Ok(invocations
        .iter()
        .map(|inv| TargetOutput::of(inv, marker, mask))
        .collect())
}

/// The config, its targets (resolved over SSM, or this machine) narrowed to `only`, and the
/// SSM client.
pub async fn targets(
    file: &config::Source,
    local: bool,
    only: &[String],
    events: &dyn Events,
    cancel: &CancellationToken,
) -> Result<(config::Config, Vec<String>, Option<aws_sdk_ssm::Client>), Error> {
    let config = file.load(config::Files::None)?;
    let transport = prepare::transport_kind(local);
    let (all, aws) = prepare::resolve_targets(transport, &config, events, cancel).await?;
    let targets = pick(all, only)?;
    Ok((config, targets, aws.map(|a| a.ssm)))
}

/// How long `logs --follow` waits between reads.
pub fn follow_interval(local: bool) -> Duration {
    if local {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(5)
    }
}

struct Quiet;

impl OutputSink for Quiet {
    fn line(&self, _target: &str, _line: &str) {}
}

/// `hoist remove`: over SSM under the fleet-wide lock (waiting up to `lock_wait`), the app
/// taken off every target.
pub async fn remove(
    config: &config::Config,
    targets: &[String],
    ssm: Option<aws_sdk_ssm::Client>,
    lock_wait: Option<Duration>,
    events: &std::sync::Arc<dyn Events>,
    cancel: &CancellationToken,
) -> Result<Vec<TargetOutput>, Error> {
    let transport = if ssm.is_some() {
        crate::domain::TransportKind::Ssm
    } else {
        crate::domain::TransportKind::Local
    };
    let phase = crate::plan::remove_phase(config, transport).map_err(|e| Error::Plan(e.into()))?;
    // Held until the hosts answered; released when dropped.
    let _lock = match &ssm {
        Some(client) => {
            let request = crate::lock::Request::here("remove", "-", None);
            Some(prepare::take_lock(client, config, &request, lock_wait, events, cancel).await?)
        }
        None => None,
    };
    events.activity(&format!(
        "removing {} from {} target(s)",
        config.app,
        targets.len()
    ));
    run(
        &phase,
        targets,
        ssm,
        "HOIST-REMOVE ",
        &SecretEnv::default(),
        format!("hoist remove {}", config.app),
        cancel,
    )
    .await
}

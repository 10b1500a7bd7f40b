//! `hoist status`: what runs on each target, read on the host from Docker's labels and the
//! app's history by `status.sh`, which prints one `HOIST-STATUS {json}` line.

use serde::{Deserialize, Serialize};

use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::prepare;
use crate::config;
use crate::domain::{Events, Invocation, InvocationStatus};
use crate::plan;

pub const MARKER: &str = "HOIST-STATUS ";

/// One host's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostStatus {
    pub app: String,
    /// How the app is deployed on the host (absent from a script older than blue-green).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<crate::config::Strategy>,
    /// The live release, if any.
    pub running: Option<Running>,
    /// Stopped releases kept for rollback, newest first.
    pub retained: Vec<Retained>,
    /// Releases a two-phase rollout staged that run unserved: waiting for their run's switch,
    /// or left by a run that died between its phases (the next deploy removes them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub staged: Vec<Staged>,
    /// The last records of the host's history, oldest first.
    pub history: Vec<serde_json::Value>,
    /// A deploy or rollback holds the app's lock, or left its state behind.
    pub deploying: bool,
    /// Blue-green: the color nginx routes to (else the running release's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_color: Option<String>,
    /// Blue-green: the other color, where the next deploy stages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_color: Option<String>,
    /// Blue-green: the release standing on the idle color, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_release: Option<String>,
    /// What kept the script from reading the host (the engine did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Running {
    pub release: String,
    pub container: String,
    pub name: String,
    /// The reference the container was created from.
    pub image: String,
    pub image_id: String,
    pub digest: Option<String>,
    /// `healthy`, `unhealthy: why`, or `running (no health check)`.
    pub health: String,
    pub since: String,
    pub restart: String,
    /// Blue-green: `blue` or `green`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// The commit its image was built from; empty when the image does not say.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Its `hoist.settings` and `hoist.env` labels (JSON text); empty on a release an older
    /// hoist made.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub settings: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub env: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Retained {
    pub release: String,
    pub container: String,
    pub name: String,
    pub image: String,
    pub deployed_at: String,
    /// Blue-green: `blue` or `green`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Staged {
    pub release: String,
    pub container: String,
    pub name: String,
    pub color: Option<String>,
    /// The deploy run that staged it.
    pub run: String,
}

/// The last `HOIST-STATUS` line of a script's stdout.
pub fn parse(stdout: &str) -> Option<HostStatus> {
    crate::domain::outcome::last_marked(stdout, MARKER)
}

/// One target, as `hoist status` reports it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub target: String,
    /// What the host said; `None` when it said nothing readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostStatus>,
    /// Why the target could not be read (or what the host reported as an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl TargetStatus {
    /// Judges one invocation of the status script.
    pub fn from_invocation(inv: &Invocation) -> TargetStatus {
        let host = parse(&inv.stdout);
        let error = match &host {
            Some(h) if h.error.is_some() => h.error.clone(),
            Some(_) => None,
            None => Some(match inv.status {
                InvocationStatus::Success => "the host printed no HOIST-STATUS line".to_owned(),
                _ => inv
                    .failure_reason()
                    .unwrap_or_else(|| format!("{:?}", inv.status)),
            }),
        };
        TargetStatus {
            target: inv.target.clone(),
            host,
            error,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub app: String,
    pub targets: Vec<TargetStatus>,
}

impl StatusReport {
    /// Every target answered.
    pub fn ok(&self) -> bool {
        self.targets.iter().all(|t| t.error.is_none())
    }
}

/// What `hoist status` reads, and the invocations that read it.
pub struct Read {
    pub report: StatusReport,
    pub invocations: Vec<Invocation>,
}

/// `hoist status`: runs the plan's status phase on every target (the config's, resolved by
/// preflight, or this machine) and reads what each runs.
pub async fn read(
    file: &config::Source,
    local: bool,
    events: &dyn Events,
    cancel: &CancellationToken,
) -> Result<Read, Error> {
    let config = file.load(config::Files::None)?;
    let transport = prepare::transport_kind(local);
    let (targets, aws) = prepare::resolve_targets(transport, &config, events, cancel).await?;
    read_targets(
        &config,
        transport,
        &targets,
        aws.map(|a| a.ssm),
        events,
        cancel,
    )
    .await
}

/// Runs the status phase on `targets` (over SSM with `ssm`, else on this machine).
pub async fn read_targets(
    config: &config::Config,
    transport: crate::domain::TransportKind,
    targets: &[String],
    ssm: Option<aws_sdk_ssm::Client>,
    events: &dyn Events,
    cancel: &CancellationToken,
) -> Result<Read, Error> {
    let phase = plan::status_phase(config, transport).map_err(|e| Error::Plan(e.into()))?;
    events.activity(&format!("reading {} target(s)", targets.len()));
    let comment = format!("hoist status {}", config.app);
    let invocations = super::remote::invocations(&phase, targets, ssm, comment, cancel).await?;
    events.done(&format!("{} target(s) answered", invocations.len()));
    if cancel.is_cancelled() {
        return Err(Error::Interrupted("while reading the targets"));
    }
    let report = StatusReport {
        app: config.app.clone(),
        targets: invocations
            .iter()
            .map(TargetStatus::from_invocation)
            .collect(),
    };
    Ok(Read {
        report,
        invocations,
    })
}

/// How a status read ends the command: `Ok` when every target answered.
pub fn verdict(report: &StatusReport) -> Result<(), Error> {
    let unread = report.targets.iter().filter(|t| t.error.is_some()).count();
    if unread > 0 {
        return Err(Error::Unread(unread, report.targets.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_status_line_is_read_and_garbage_is_none() {
        let out = "noise\nHOIST-STATUS {\"app\":\"web\",\"running\":null}\n\
                   HOIST-STATUS {\"app\":\"web\",\"running\":{\"release\":\"v2\"},\
                   \"retained\":[{\"release\":\"v1\"}]}\n";
        let s = parse(out).unwrap();
        assert_eq!(s.running.unwrap().release, "v2");
        assert_eq!(s.retained[0].release, "v1");
        assert_eq!(parse("HOIST-STATUS {cut\n"), None);
        assert_eq!(parse("hoist: nothing\n"), None);
    }
}

//! `hoist status`: what runs on each target, read on the host from Docker's labels and the
//! app's history by `status.sh`, which prints one `HOIST-STATUS {json}` line.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::transport::{Invocation, InvocationStatus};

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
    crate::outcome::last_marked(stdout, MARKER)
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

    /// The table people read: one row per target, then each target's retained releases.
    pub fn to_text(&self) -> String {
        let mut rows =
            vec![["TARGET", "RELEASE", "HEALTH", "SINCE", "CONTAINER", "IMAGE"].map(str::to_owned)];
        for t in &self.targets {
            let row = match (&t.error, t.host.as_ref().and_then(|h| h.running.as_ref())) {
                (Some(e), _) => [
                    t.target.clone(),
                    "?".into(),
                    format!("error: {e}"),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
                (None, None) => [
                    t.target.clone(),
                    "(none)".into(),
                    "-".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
                (None, Some(r)) => [
                    t.target.clone(),
                    match &r.color {
                        Some(color) => format!("{} ({color})", r.release),
                        None => r.release.clone(),
                    },
                    r.health.clone(),
                    r.since.clone(),
                    short(&r.container).to_owned(),
                    r.digest.clone().unwrap_or_else(|| r.image.clone()),
                ],
            };
            rows.push(row);
        }
        let widths: Vec<usize> = (0..5)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &rows {
            for (c, w) in widths.iter().enumerate() {
                let _ = write!(out, "{:<w$}  ", row[c]);
            }
            let _ = writeln!(out, "{}", row[5]);
        }
        for t in &self.targets {
            let Some(host) = &t.host else { continue };
            if let (Some(idle), Some(live)) = (&host.idle_color, &host.live_color) {
                let _ = writeln!(
                    out,
                    "\n{}: nginx routes to {live}; idle color {idle}{}",
                    t.target,
                    host.idle_release
                        .as_ref()
                        .map(|r| format!(" holds release {r}"))
                        .unwrap_or_default()
                );
            }
            if host.deploying {
                let _ = writeln!(out, "\n{}: a deploy or rollback is in progress", t.target);
            }
            for s in &host.staged {
                let _ = writeln!(
                    out,
                    "\n{}: release {} staged{} by run {}, not serving (container {})",
                    t.target,
                    s.release,
                    s.color
                        .as_ref()
                        .map(|c| format!(" on {c}"))
                        .unwrap_or_default(),
                    s.run,
                    short(&s.container)
                );
            }
            if host.retained.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{}: retained for rollback (newest first)", t.target);
            for r in &host.retained {
                let _ = writeln!(
                    out,
                    "  {}  deployed {}  container {}  {}",
                    r.release,
                    r.deployed_at,
                    short(&r.container),
                    r.image
                );
            }
        }
        crate::config::text::escape(&out, true).into_owned()
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
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

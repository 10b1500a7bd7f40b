//! What runs on a target now, as `hoist plan --against-live` reads it: the live release and
//! how it was made (the labels hoist puts on every release it creates), the colors, staged
//! releases and the host's lock. Plain data: the plan compares it with what a deploy would
//! make ([`crate::plan`]'s `live` module).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The label holding a release's container settings (JSON object, name → value), as the
/// plan that created it rendered them.
pub const SETTINGS_LABEL: &str = "hoist.settings";
/// The label holding a release's environment (JSON object, name → `clear:<sha256, 16 hex>`
/// or `secret:<source>`): names and where their values come from, never a secret's value
/// or a digest of one.
pub const ENV_LABEL: &str = "hoist.env";

/// One target's live state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostLive {
    pub target: String,
    /// The live release, if one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<LiveRelease>,
    /// Blue-green: the color nginx routes to, and the one the next deploy takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_color: Option<String>,
    /// Releases a two-phase rollout staged that run unserved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub staged: Vec<String>,
    /// A deploy or rollback holds the host's lock (or left its state behind).
    pub deploying: bool,
    /// Why the target could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The live release of a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveRelease {
    pub release: String,
    pub container: String,
    /// The image's registry digest (`repo@sha256:…`) where the host knows one, else its id.
    pub image: String,
    /// The commit its image was built from (`org.opencontainers.image.revision`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// [`SETTINGS_LABEL`], parsed; `None` for a release made by a hoist that did not label it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<BTreeMap<String, String>>,
    /// [`ENV_LABEL`], parsed; `None` as above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
}

impl HostLive {
    /// What moved between two reads of one target, in words (empty: nothing did). Compares
    /// what a deploy would replace: the live release (its container, settings and env) and
    /// the live color.
    pub fn moved_since(&self, before: &HostLive) -> Vec<String> {
        let mut moved = Vec::new();
        let name = |r: &Option<LiveRelease>| {
            r.as_ref().map_or_else(
                || "no release".to_owned(),
                |r| format!("release {} (container {})", r.release, short(&r.container)),
            )
        };
        match (&before.release, &self.release) {
            (Some(b), Some(n)) if b.container == n.container => {
                if b.settings != n.settings {
                    moved.push(format!("the settings of release {} changed", n.release));
                }
                if b.env != n.env {
                    moved.push(format!("the env of release {} changed", n.release));
                }
            }
            (b, n) if b == n => {}
            (b, n) => moved.push(format!("{} → {} runs now", name(b), name(n))),
        }
        if before.live_color != self.live_color {
            moved.push(format!(
                "live color {} → {}",
                before.live_color.as_deref().unwrap_or("none"),
                self.live_color.as_deref().unwrap_or("none")
            ));
        }
        moved
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

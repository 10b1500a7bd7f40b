//! A plan against what runs now (`hoist plan --against-live`): each target's live state
//! ([`HostLive`], read on the host) compared with what the deploy would make there. Pure.
//!
//! A release carries how it was made in two labels hoist renders here and the host puts on
//! the container it creates: its settings ([`settings`]) and its environment ([`env`]: each
//! name with a digest of a clear value, or a secret's source; never a secret's value nor a
//! digest of one). Comparing them with the config's says what a deploy would change.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Plan;
use crate::config::Config;
use crate::domain::live::{HostLive, LiveRelease};

/// The container settings a release is made with, by name (the [`SETTINGS_LABEL`]).
///
/// [`SETTINGS_LABEL`]: crate::domain::live::SETTINGS_LABEL
pub fn settings(config: &Config) -> BTreeMap<String, String> {
    let c = &config.container;
    let h = &config.healthcheck;
    let list = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let mut s = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        s.insert(k.to_owned(), v);
    };
    put("port", c.port.to_string());
    put(
        "publish",
        c.publish.map(|p| p.to_string()).unwrap_or_default(),
    );
    put("restart", c.restart.clone());
    put("stop_timeout", c.stop_timeout.as_secs().to_string());
    put("memory", c.memory.clone().unwrap_or_default());
    put("cpus", c.cpus.clone().unwrap_or_default());
    put("init", c.init.to_string());
    put("volumes", list(&c.volumes));
    put(
        "labels",
        list(
            &c.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        ),
    );
    put("command", list(&c.command));
    // The Docker options, as the `docker create` arguments they become (empty: none).
    let docker = c.docker.create_args();
    if !docker.is_empty() {
        put("docker", list(&docker));
    }
    put("health_path", h.path.clone().unwrap_or_default());
    put("health_status", h.expect_status.to_string());
    // A check other than a path or none (older releases have no such setting).
    let check = h.label();
    if !check.is_empty() && !check.starts_with("running:") {
        put("health_check", check);
    }
    s
}

/// A release's environment by name (the [`ENV_LABEL`]): `clear:<sha256 of the value, 16
/// hex>`, `secret:environment` (from hoist's environment) or `secret:<source>` (read by the
/// host).
///
/// [`ENV_LABEL`]: crate::domain::live::ENV_LABEL
pub fn env(config: &Config) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = config
        .env
        .clear
        .iter()
        .map(|(k, v)| (k.clone(), format!("clear:{}", clear_digest(v))))
        .collect();
    for name in &config.env.secret {
        let source = config.env.sources.get(name).map_or_else(
            || "environment".to_owned(),
            crate::config::SecretSource::describe,
        );
        env.insert(name.clone(), format!("secret:{source}"));
    }
    env
}

/// 16 hex digits of a clear value's sha256.
fn clear_digest(value: &str) -> String {
    crate::domain::sha256_hex(value.as_bytes())[..16].to_owned()
}

/// What `--against-live` read: each target, and the fleet-wide lock's holder (over SSM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveInputs {
    pub hosts: Vec<HostLive>,
    /// Who holds the fleet-wide deploy lock now, in words; `None`: nobody.
    pub lock: Option<String>,
}

/// The plan against live state: per target what the deploy would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivePlan {
    /// Whether the deploy takes a fleet-wide lock (over SSM; a local deploy has the host's
    /// only).
    pub fleet: bool,
    /// The fleet-wide lock's holder when the plan was made; `None`: free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<String>,
    pub targets: Vec<TargetChange>,
}

/// What a deploy would do to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetChange {
    pub target: String,
    /// `unchanged`, `changes`, `first-deploy` or `unreadable`.
    pub verdict: Verdict,
    /// The live state as read (what `deploy --plan` finds unmoved, or refuses).
    pub live: HostLive,
    /// `release a → b`, the image, the env keys, the settings, the color switch: each in
    /// words, in that order.
    pub changes: Vec<String>,
    /// What else a reviewer should know of the target (staged releases, a deploy under
    /// way, a release hoist did not label).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The live release is this release, made with these settings and env: the deploy
    /// leaves the host alone (unless a secret's value from hoist's environment changed:
    /// the host compares those too).
    Unchanged,
    Changes,
    /// The live release is this release of this commit, but it carries no settings or env
    /// label (an older hoist made it): whether the deploy changes it cannot be told here.
    Unlabelled,
    FirstDeploy,
    Unreadable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unchanged => "unchanged",
            Verdict::Changes => "changes",
            Verdict::Unlabelled => "unlabelled",
            Verdict::FirstDeploy => "first deploy",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// Compares each target's live state with what `plan` deploys.
pub fn compare(plan: &Plan, config: &Config, live: &LiveInputs) -> LivePlan {
    let (settings, env) = (settings(config), env(config));
    LivePlan {
        fleet: plan.lock.is_some(),
        lock: live.lock.clone(),
        targets: live
            .hosts
            .iter()
            .map(|host| target(plan, &settings, &env, config, host))
            .collect(),
    }
}

fn target(
    plan: &Plan,
    settings: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    config: &Config,
    host: &HostLive,
) -> TargetChange {
    let mut notes = Vec::new();
    if !host.staged.is_empty() {
        notes.push(format!(
            "staged and unserved: {} (the deploy's stage removes what a dead run left)",
            host.staged.join(", ")
        ));
    }
    if host.deploying {
        notes.push("a deploy or rollback is under way on this host (its lock is held)".into());
    }
    let mut changes = Vec::new();
    let color = match (&host.live_color, &host.idle_color) {
        (Some(live), Some(idle)) => Some(format!("switch {live} → {idle}")),
        (None, Some(idle)) => Some(format!("first color: {idle}")),
        _ => None,
    };
    let verdict = match (&host.error, &host.release) {
        (Some(e), _) => {
            notes.push(format!("could not be read: {e}"));
            Verdict::Unreadable
        }
        (None, None) => {
            changes.push(format!("release (none) → {}", plan.release));
            changes.push(format!("image: {}", image_to(plan)));
            changes.extend(color);
            Verdict::FirstDeploy
        }
        (None, Some(live)) => {
            let found = release_changes(plan, settings, env, config, live, &mut notes);
            if found.is_empty() && (live.settings.is_none() || live.env.is_none()) {
                Verdict::Unlabelled
            } else if found.is_empty() {
                Verdict::Unchanged
            } else {
                changes.extend(found);
                changes.extend(color);
                Verdict::Changes
            }
        }
    };
    TargetChange {
        target: host.target.clone(),
        verdict,
        live: host.clone(),
        changes,
        notes,
    }
}

/// What the deploy changes of a live release, in words; empty when it is the same release
/// made the same way.
fn release_changes(
    plan: &Plan,
    settings: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    config: &Config,
    live: &LiveRelease,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut changes = Vec::new();
    if live.release != plan.release {
        changes.push(format!("release {} → {}", live.release, plan.release));
    }
    if plan.revision.dirty {
        changes.push(format!(
            "image {} → rebuilt from uncommitted changes to commit {}",
            live.image,
            short(&plan.revision.sha)
        ));
    } else if live.revision.as_deref() != Some(plan.revision.sha.as_str()) {
        changes.push(format!(
            "image {} (commit {}) → {}",
            live.image,
            live.revision.as_deref().map_or("unknown", short),
            image_to(plan)
        ));
    }
    match &live.env {
        None => notes.push(
            "the live release carries no env label (made by an older hoist): its env cannot \
             be compared"
                .into(),
        ),
        Some(live_env) => changes.extend(env_changes(live_env, env, config)),
    }
    match &live.settings {
        None => notes.push(
            "the live release carries no settings label (made by an older hoist): its \
             settings cannot be compared"
                .into(),
        ),
        Some(live_settings) => {
            for (key, now) in settings {
                let was = live_settings.get(key).map_or("(unset)", String::as_str);
                if was != now {
                    changes.push(format!("{key}: {} → {}", shown(was), shown(now)));
                }
            }
        }
    }
    changes
}

/// Env keys added, removed and changed: clear values shown (they are in the config),
/// secrets by name and source only.
fn env_changes(
    live: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
    config: &Config,
) -> Vec<String> {
    let describe = |name: &str, label: &str| match label.strip_prefix("secret:") {
        Some(source) => format!("{name} (secret from {source})"),
        None => match config.env.clear.get(name) {
            Some(value) => format!("{name}={value}"),
            None => name.to_owned(),
        },
    };
    let mut out = Vec::new();
    for (name, label) in now {
        match live.get(name) {
            None => out.push(format!("env + {}", describe(name, label))),
            Some(was) if was == label => {}
            Some(was) => match (was.strip_prefix("secret:"), label.strip_prefix("secret:")) {
                (None, None) => out.push(format!(
                    "env ~ {} (was another value)",
                    describe(name, label)
                )),
                (Some(from), Some(to)) => {
                    out.push(format!("env ~ {name}: secret from {from} → from {to}"));
                }
                (None, Some(to)) => out.push(format!("env ~ {name}: clear → secret from {to}")),
                (Some(from), None) => {
                    out.push(format!(
                        "env ~ {} (was a secret from {from})",
                        describe(name, label)
                    ));
                }
            },
        }
    }
    for name in live.keys().filter(|k| !now.contains_key(*k)) {
        out.push(format!("env - {name}"));
    }
    out
}

/// What hosts will run: the pinned image, or this commit's.
fn image_to(plan: &Plan) -> String {
    if plan.image.pinned {
        plan.image.reference.clone()
    } else {
        format!("the image of commit {}", short(&plan.revision.sha))
    }
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        "(none)".to_owned()
    } else {
        value.to_owned()
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

impl LivePlan {
    /// The section `Against what runs now`, one line per fact: the lock, then per target its
    /// verdict and each change (indented), then its notes.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.fleet {
            lines.push(match &self.lock {
                None => "fleet lock: free".to_owned(),
                Some(holder) => format!("fleet lock: held by {holder}"),
            });
        }
        let unchanged = self
            .targets
            .iter()
            .filter(|t| t.verdict == Verdict::Unchanged)
            .count();
        lines.push(format!(
            "{} target(s): {unchanged} unchanged, {} to change",
            self.targets.len(),
            self.targets.len() - unchanged
        ));
        for t in &self.targets {
            let running = t.live.release.as_ref().map_or_else(
                || "nothing runs".to_owned(),
                |r| format!("runs {}", r.release),
            );
            lines.push(format!("{}: {} ({running})", t.target, t.verdict.as_str()));
            for change in &t.changes {
                lines.push(format!("  {change}"));
            }
            for note in &t.notes {
                lines.push(format!("  note: {note}"));
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests;

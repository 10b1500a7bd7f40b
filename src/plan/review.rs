//! Reviewed plans: whether a plan saved for review (`hoist plan --out`) still describes what
//! a deploy would run now, and, once the image exists, whether the plan a deploy executes
//! differs from the reviewed one only in the image reference.
//!
//! Pure: both plans are data. Every difference is named precisely (the commit, the config,
//! the strategy, the resolved targets, hoist's script bodies, a header parameter), so that a
//! refusal says what to look at.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;

use super::{Inputs, Plan, TransportKind};
use crate::domain::{PathChanges, SourceDigest};
use crate::plan::script::sha256_hex;

/// Header parameters that name the image, known only once it is built and pushed: the one
/// part of a script a reviewed plan does not fix (it binds the image to its commit instead).
pub const IMAGE_PARAMS: [&str; 3] = ["HOIST_IMAGE", "HOIST_IMAGE_LABEL", "HOIST_REGISTRY"];

/// One way a plan differs from the reviewed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// A script's text does not hash to the sha256 the saved plan shows (edited by hand).
    Tampered {
        phase: String,
    },
    App {
        reviewed: String,
        now: String,
    },
    Transport {
        reviewed: TransportKind,
        now: TransportKind,
    },
    /// The checkout's tree is not the reviewed one: the paths that differ (when both
    /// listings are known).
    Tree {
        reviewed: String,
        now: String,
        changes: PathChanges,
    },
    /// The build context (what `.dockerignore` lets through, tracked or not) differs.
    Context {
        reviewed: String,
        now: String,
        changes: PathChanges,
    },
    /// The plan records no source tree (not saved for review by this hoist), or this deploy
    /// builds nothing to compare it with.
    Unbound,
    /// The plan was made from a checkout with uncommitted changes.
    ReviewedDirty,
    /// The checkout has uncommitted changes now.
    Dirty,
    Config {
        reviewed: String,
        now: String,
    },
    Strategy {
        reviewed: String,
        now: String,
    },
    /// The targets resolve to other instances than when the plan was made.
    Targets {
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// An SSM plan not made for review (`plan --resolve-targets --out`): it names no
    /// instances or no deploy run.
    Unresolved,
    HoistVersion {
        reviewed: String,
        now: String,
    },
    /// The library and body under a script's header differ (another hoist's scripts).
    ScriptBody {
        phase: String,
        line: usize,
        reviewed: String,
        now: String,
    },
    /// Header parameters (other than the image's) or comment lines differ.
    Header {
        phase: String,
        names: Vec<String>,
    },
    /// Other phases run (count or names).
    Phases {
        reviewed: Vec<String>,
        now: Vec<String>,
    },
    /// A target moved since the plan was made against it (`--against-live`): someone
    /// deployed, rolled back or changed it.
    Drift {
        target: String,
        moved: Vec<String>,
    },
    /// Anything else, by JSON path.
    Field {
        path: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Tampered { phase } => write!(
                f,
                "the {phase} phase's script does not match the sha256 the plan shows: the \
                 file was edited after hoist wrote it"
            ),
            Difference::App { reviewed, now } => {
                write!(
                    f,
                    "app changed: the plan is for `{reviewed}`, the config for `{now}`"
                )
            }
            Difference::Transport { reviewed, now } => write!(
                f,
                "transport changed: the plan is for the {} transport, this deploy uses {}",
                reviewed.as_str(),
                now.as_str()
            ),
            Difference::Tree {
                reviewed,
                now,
                changes,
            } => {
                write!(
                    f,
                    "source changed: the plan was reviewed on tree {}, the checkout's is {}",
                    short(reviewed),
                    short(now)
                )?;
                if changes.is_empty() {
                    write!(f, " (the plan lists no paths to compare)")
                } else {
                    write!(f, ": {}", changes.describe(10))
                }
            }
            Difference::Context {
                reviewed,
                now,
                changes,
            } => {
                write!(
                    f,
                    "build context changed (files git does not track, or .dockerignore): \
                     sha256 {} reviewed, {} now",
                    short(reviewed),
                    short(now)
                )?;
                if !changes.is_empty() {
                    write!(f, ": {}", changes.describe(10))?;
                }
                Ok(())
            }
            Difference::Unbound => write!(
                f,
                "the plan records no source tree to apply it to: make it with `hoist plan \
                 --out FILE` (and apply it to a deploy that builds the image)"
            ),
            Difference::ReviewedDirty => write!(
                f,
                "the plan was made from a checkout with uncommitted changes, which no deploy \
                 can reproduce: commit them and make the plan again"
            ),
            Difference::Dirty => write!(
                f,
                "the checkout has uncommitted changes: the image would not be the reviewed \
                 commit"
            ),
            Difference::Config { reviewed, now } => write!(
                f,
                "config changed: its settings hash to {} now, {} when the plan was made",
                short(now),
                short(reviewed)
            ),
            Difference::Strategy { reviewed, now } => {
                write!(f, "strategy changed: reviewed {reviewed}, now {now}")
            }
            Difference::Targets { added, removed } => {
                write!(f, "targets changed (as SSM resolves them now):")?;
                if !added.is_empty() {
                    write!(f, " added {}", added.join(", "))?;
                }
                if !added.is_empty() && !removed.is_empty() {
                    write!(f, ";")?;
                }
                if !removed.is_empty() {
                    write!(f, " gone {}", removed.join(", "))?;
                }
                Ok(())
            }
            Difference::Unresolved => write!(
                f,
                "the plan was not made for review, so it does not name the instances and the \
                 deploy run that were reviewed: make it with `hoist plan --resolve-targets \
                 --out FILE`"
            ),
            Difference::HoistVersion { reviewed, now } => write!(
                f,
                "hoist version changed: the plan was made by hoist {reviewed}, this is hoist \
                 {now}"
            ),
            Difference::ScriptBody {
                phase,
                line,
                reviewed,
                now,
            } => write!(
                f,
                "script body changed: the {phase} phase's script (library and body, which \
                 come with hoist) differs from line {line}: reviewed `{}`, now `{}`",
                clip(reviewed),
                clip(now)
            ),
            Difference::Header { phase, names } => write!(
                f,
                "the {phase} phase's script header differs in {}",
                names.join(", ")
            ),
            Difference::Phases { reviewed, now } => write!(
                f,
                "other phases: reviewed [{}], now [{}]",
                reviewed.join(", "),
                now.join(", ")
            ),
            Difference::Drift { target, moved } => write!(
                f,
                "{target} moved since the plan was made against it: {}; plan again against \
                 what runs now",
                moved.join("; ")
            ),
            Difference::Field { path } => write!(f, "the plan differs at {path}"),
        }
    }
}

/// Why a reviewed plan was refused: every difference found.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: the reviewed plan does not match what this deploy would run, so nothing was \
     changed:{}",
    list(.differences)
)]
pub struct Refusal {
    pub path: String,
    pub differences: Vec<Difference>,
}

fn list(differences: &[Difference]) -> String {
    use std::fmt::Write as _;
    differences.iter().fold(String::new(), |mut out, d| {
        let _ = write!(out, "\n  - {d}");
        out
    })
}

/// One phase's script, as reviewed and as executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScriptPair {
    pub phase: String,
    pub reviewed_sha256: String,
    pub executed_sha256: String,
}

/// `inputs` with the execution values of `reviewed`: its commit, release and run. Built
/// from them, this checkout's plan must be the reviewed one; executed, it gets its own
/// (the checkout's commit, its release, a fresh run), as it gets its own image.
pub fn as_reviewed(reviewed: &Plan, inputs: &Inputs) -> Inputs {
    Inputs {
        revision: crate::domain::Revision {
            dirty: inputs.revision.dirty,
            ..reviewed.revision.clone()
        },
        release: Some(reviewed.release.clone()),
        run: reviewed.run.clone(),
        source: reviewed.source.clone(),
        ..inputs.clone()
    }
}

/// Whether the checkout (`now`) holds the reviewed source: the same git tree and the same
/// build context. The commit id does not count: a squash merge, a merge commit or a rebase
/// of the reviewed tree is the reviewed source.
pub fn source_differences(reviewed: &Plan, now: Option<&SourceDigest>) -> Vec<Difference> {
    let (Some(r), Some(n)) = (&reviewed.source, now) else {
        return vec![Difference::Unbound];
    };
    let mut found = Vec::new();
    if r.tree != n.tree {
        found.push(Difference::Tree {
            reviewed: r.tree.clone(),
            now: n.tree.clone(),
            changes: if r.files.is_empty() || n.files.is_empty() {
                PathChanges::default()
            } else {
                PathChanges::between(&r.files, &n.files)
            },
        });
    }
    // With the same tree, what else reaches the build: untracked files, and .dockerignore
    // rules the tree does not hold (another tree's paths are named above).
    if r.tree == n.tree && r.context_sha256 != n.context_sha256 {
        found.push(Difference::Context {
            reviewed: r.context_sha256.clone(),
            now: n.context_sha256.clone(),
            changes: PathChanges::between(&r.context, &n.context),
        });
    }
    found
}

/// The targets a plan made against live state (`--against-live`) found otherwise than
/// `now`: each named with what moved. Empty for a plan made without it.
pub fn drift(reviewed: &Plan, now: &[crate::domain::live::HostLive]) -> Vec<Difference> {
    let Some(live) = &reviewed.live else {
        return Vec::new();
    };
    live.targets
        .iter()
        .filter_map(|t| {
            let moved = match now.iter().find(|h| h.target == t.target) {
                None => vec!["it was not read now".to_owned()],
                Some(h) if h.error.is_some() => vec![format!(
                    "it could not be read now: {}",
                    h.error.as_deref().unwrap_or_default()
                )],
                Some(h) => h.moved_since(&t.live),
            };
            (!moved.is_empty()).then(|| Difference::Drift {
                target: t.target.clone(),
                moved,
            })
        })
        .collect()
}

/// Every difference between the reviewed plan and the plan made now from the same inputs
/// (the image not yet known in either). Empty when the reviewed plan applies.
pub fn differences(reviewed: &Plan, now: &Plan) -> Vec<Difference> {
    let mut found = Vec::new();
    for phase in reviewed.phases() {
        if sha256_hex(phase.script.text.as_bytes()) != phase.script.sha256 {
            found.push(Difference::Tampered {
                phase: phase.name.clone(),
            });
        }
    }
    if reviewed.app != now.app {
        found.push(Difference::App {
            reviewed: reviewed.app.clone(),
            now: now.app.clone(),
        });
    }
    if reviewed.transport != now.transport {
        found.push(Difference::Transport {
            reviewed: reviewed.transport,
            now: now.transport,
        });
    }
    if reviewed.revision.dirty {
        found.push(Difference::ReviewedDirty);
    }
    if now.revision.dirty {
        found.push(Difference::Dirty);
    }
    if reviewed.config_sha256 != now.config_sha256 {
        found.push(Difference::Config {
            reviewed: reviewed.config_sha256.clone(),
            now: now.config_sha256.clone(),
        });
    }
    if reviewed.strategy != now.strategy {
        found.push(Difference::Strategy {
            reviewed: reviewed.strategy.as_str().to_owned(),
            now: now.strategy.as_str().to_owned(),
        });
    }
    if now.transport == TransportKind::Ssm {
        match (&reviewed.targets.resolved, &now.targets.resolved) {
            (None, _) => found.push(Difference::Unresolved),
            (Some(r), Some(n)) => {
                let r: BTreeSet<&String> = r.iter().collect();
                let n: BTreeSet<&String> = n.iter().collect();
                let added: Vec<String> = n.difference(&r).map(|s| (*s).clone()).collect();
                let removed: Vec<String> = r.difference(&n).map(|s| (*s).clone()).collect();
                if !added.is_empty() || !removed.is_empty() {
                    found.push(Difference::Targets { added, removed });
                }
            }
            (Some(_), None) => found.push(Difference::Field {
                path: "targets.resolved".into(),
            }),
        }
    }
    if reviewed.hoist_version != now.hoist_version {
        found.push(Difference::HoistVersion {
            reviewed: reviewed.hoist_version.clone(),
            now: now.hoist_version.clone(),
        });
    }
    let names = |p: &Plan| p.phases().map(|p| p.name.clone()).collect::<Vec<_>>();
    if names(reviewed) == names(now) {
        for (r, n) in reviewed.phases().zip(now.phases()) {
            found.extend(script_differences(&r.name, &r.script.text, &n.script.text));
        }
    } else {
        found.push(Difference::Phases {
            reviewed: names(reviewed),
            now: names(now),
        });
    }
    // What a plan against live state read is compared by [`drift`], with what runs now.
    let (reviewed, now) = (&without_live(reviewed), &without_live(now));
    if found.is_empty() && reviewed != now {
        found.extend(field_differences(reviewed, now));
    }
    found
}

/// Checks that `as_reviewed` (the plan with the image pinned, built with the reviewed
/// execution values: [`as_reviewed`]) differs from `reviewed` only in the image reference;
/// returns each phase's reviewed hash and the hash of the script `executed` runs.
pub fn image_only(
    reviewed: &Plan,
    as_reviewed: &Plan,
    executed: &Plan,
) -> Result<Vec<ScriptPair>, Vec<Difference>> {
    let found = differences(&without_image(reviewed), &without_image(as_reviewed));
    if !found.is_empty() {
        return Err(found);
    }
    Ok(reviewed
        .phases()
        .zip(executed.phases())
        .map(|(r, e)| ScriptPair {
            phase: r.name.clone(),
            reviewed_sha256: r.script.sha256.clone(),
            executed_sha256: e.script.sha256.clone(),
        })
        .collect())
}

/// The plan with everything that names the image blanked: the image's name and reference,
/// the push's registry, and the image's header parameters (script hashes recomputed).
fn without_image(plan: &Plan) -> Plan {
    let mut plan = plan.clone();
    plan.image.name = String::new();
    plan.image.reference = String::new();
    plan.image.pinned = false;
    for step in &mut plan.steps {
        match step {
            super::Step::Push { registry, .. } => *registry = None,
            super::Step::RunPhase(phase) => {
                let text: String = phase
                    .script
                    .text
                    .split_inclusive('\n')
                    .map(|line| match param_name(line) {
                        Some(name) if IMAGE_PARAMS.contains(&name) => format!("{name}=…\n"),
                        _ => line.to_owned(),
                    })
                    .collect();
                // Only a script that matched its hash gets a new one: tampering stays visible.
                if sha256_hex(phase.script.text.as_bytes()) == phase.script.sha256 {
                    phase.script.sha256 = sha256_hex(text.as_bytes());
                }
                phase.script.text = text;
                // Measured from the script, image included.
                phase.carried = crate::domain::carry::Carried::default();
            }
            _ => {}
        }
    }
    plan
}

fn without_live(plan: &Plan) -> Plan {
    Plan {
        live: None,
        ..plan.clone()
    }
}

/// `NAME` of a header line `NAME=…` (upper case and `_`), else `None`.
fn param_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once('=')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')).then_some(name)
}

/// A script's header (up to its first empty line) and the rest (library and body).
fn split(text: &str) -> (Vec<&str>, &str, usize) {
    let end = text.find("\n\n").map_or(text.len(), |i| i + 1);
    let header: Vec<&str> = text[..end].lines().collect();
    let header_lines = header.len();
    (header, &text[end..], header_lines)
}

fn script_differences(phase: &str, reviewed: &str, now: &str) -> Vec<Difference> {
    let mut found = Vec::new();
    let (r_head, r_rest, head_lines) = split(reviewed);
    let (n_head, n_rest, _) = split(now);
    if r_head != n_head {
        let key = |line: &str| -> String {
            param_name(line).map_or_else(
                || {
                    if line.starts_with('#') {
                        "the comment lines".to_owned()
                    } else {
                        line.to_owned()
                    }
                },
                str::to_owned,
            )
        };
        let r: BTreeSet<&str> = r_head.iter().copied().collect();
        let n: BTreeSet<&str> = n_head.iter().copied().collect();
        // The image's parameters, the release and the comment lines follow the commit, the
        // release and hoist's version, each named on its own.
        let names: BTreeSet<String> = r
            .symmetric_difference(&n)
            .map(|l| key(l))
            .filter(|k| {
                !IMAGE_PARAMS.contains(&k.as_str())
                    && k != "HOIST_RELEASE"
                    && k != "the comment lines"
            })
            .collect();
        if !names.is_empty() {
            found.push(Difference::Header {
                phase: phase.to_owned(),
                names: names.into_iter().collect(),
            });
        }
    }
    if r_rest != n_rest {
        let (r_lines, n_lines): (Vec<&str>, Vec<&str>) =
            (r_rest.lines().collect(), n_rest.lines().collect());
        let longest = r_lines.len().max(n_lines.len());
        let index = (0..longest)
            .find(|&i| at(&r_lines, i) != at(&n_lines, i))
            .unwrap_or(longest);
        let (r, n) = (at(&r_lines, index), at(&n_lines, index));
        found.push(Difference::ScriptBody {
            phase: phase.to_owned(),
            // 1-based; the rest begins with the empty line that ends the header.
            line: head_lines + 1 + index,
            reviewed: r.to_owned(),
            now: n.to_owned(),
        });
    }
    found
}

/// The JSON paths where two plans differ (at most a few), for differences no rule names.
fn field_differences(reviewed: &Plan, now: &Plan) -> Vec<Difference> {
    let r = serde_json::to_value(reviewed).expect("a plan serializes");
    let n = serde_json::to_value(now).expect("a plan serializes");
    let mut paths = Vec::new();
    diff_paths(&r, &n, String::new(), &mut paths);
    paths
        .into_iter()
        .take(5)
        .map(|path| Difference::Field { path })
        .collect()
}

fn diff_paths(
    reviewed: &serde_json::Value,
    now: &serde_json::Value,
    at: String,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (reviewed, now) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                match (left.get(key), right.get(key)) {
                    (Some(l), Some(r)) => diff_paths(l, r, path, out),
                    _ => out.push(path),
                }
            }
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => {
            for (i, (l, r)) in left.iter().zip(right).enumerate() {
                diff_paths(l, r, format!("{at}[{i}]"), out);
            }
        }
        (l, r) if l != r => out.push(if at.is_empty() { "the plan".into() } else { at }),
        _ => {}
    }
}

/// Line `i` of `lines`, or an empty one past the end.
fn at<'a>(lines: &[&'a str], i: usize) -> &'a str {
    lines.get(i).copied().unwrap_or_default()
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn clip(line: &str) -> String {
    let line = crate::config::text::escape(line, false);
    if line.chars().count() > 80 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.into_owned()
    }
}

#[cfg(test)]
mod tests;

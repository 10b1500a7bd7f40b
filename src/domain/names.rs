//! Names hoist gives things, each a pure function of the config and the run: release ids,
//! secret parameters, the deploy lock's parameter and scope, image labels.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Targets};

/// The OCI label that names the commit an image was built from.
pub const REVISION_LABEL: &str = "org.opencontainers.image.revision";

/// The `SecureString` parameter carrying one deploy's secret env. Named by app and release so
/// a reviewer sees it in the plan; hoist deletes it when the deploy ends.
///
/// One parameter per deploy run: two deploys of one release (the same commit to staging and
/// production) never share, overwrite or delete each other's. Offline plans show the
/// pattern, with `<run>` where the deploy puts its run id.
pub fn secret_parameter(config: &Config, release: &str, run: Option<&str>) -> String {
    format!(
        "/hoist/{}/{release}/{}/env",
        config.app,
        run.unwrap_or("<run>")
    )
}

/// Where all of an app's per-run secret parameters live (what a sweep looks under).
pub fn secret_parameter_root(app: &str) -> String {
    format!("/hoist/{app}/")
}

/// True when `reference` names content rather than a tag: an image id (`sha256:<64 hex>`) or
/// a digest reference (`name@sha256:<64 hex>`). Only such a reference is pinned.
pub fn is_content_addressed(reference: &str) -> bool {
    let digest = reference
        .rsplit_once('@')
        .map_or(reference, |(_, digest)| digest);
    digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn is_release_id(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// What the plan shows of the lock: the parameter and its lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockSpec {
    pub parameter: String,
    #[serde(with = "crate::config::secs")]
    pub lease: Duration,
}

impl LockSpec {
    pub fn of(config: &Config) -> LockSpec {
        LockSpec {
            parameter: lock_parameter(config),
            lease: config.lock.lease,
        }
    }
}

/// The lock's parameter: `/hoist/<app>/lock/<scope>`, a pure function of the config.
pub fn lock_parameter(config: &Config) -> String {
    format!("/hoist/{}/lock/{}", config.app, lock_scope(&config.targets))
}

/// The first 12 hex digits of the sha256 of the targets selector in a canonical form:
/// instance ids sorted, tag keys sorted, each key's values sorted (the order they are
/// written in does not make another fleet).
pub fn lock_scope(targets: &Targets) -> String {
    let mut ids = targets.instance_ids.clone();
    ids.sort();
    ids.dedup();
    let tags: std::collections::BTreeMap<&String, Vec<&String>> = targets
        .tags
        .iter()
        .map(|(k, vs)| {
            let mut vs: Vec<&String> = vs.iter().collect();
            vs.sort();
            vs.dedup();
            (k, vs)
        })
        .collect();
    let canonical = serde_json::json!({"instance_ids": ids, "tags": tags});
    super::script::sha256_hex(canonical.to_string().as_bytes())[..12].to_owned()
}

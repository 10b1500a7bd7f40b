//! Names hoist gives things, each a pure function of the config and the run: release ids,
//! secret parameters, the deploy lock's parameter and scope, image labels, the record of an
//! image hoist pushed.

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
///
/// Without an environment: `/hoist/<app>/<release>/<run>/env`; with environment `<env>`:
/// `/hoist/<app>/<env>/runs/<release>/<run>/env`, under the environment's own root
/// ([`parameter_root`]) so that IAM can grant one environment's names and not another's.
pub fn secret_parameter(config: &Config, release: &str, run: Option<&str>) -> String {
    let run = run.unwrap_or("<run>");
    match &config.environment {
        None => format!("/hoist/{}/{release}/{run}/env", config.app),
        Some(env) => format!("/hoist/{}/{env}/runs/{release}/{run}/env", config.app),
    }
}

/// Where all of an app's (or an app's environment's) parameters live, the lock and the
/// per-run secret parameters: `/hoist/<app>/`, or `/hoist/<app>/<env>/`.
pub fn parameter_root(app: &str, environment: Option<&str>) -> String {
    match environment {
        None => format!("/hoist/{app}/"),
        Some(env) => format!("/hoist/{app}/{env}/"),
    }
}

/// Where hoist records the digest it pushed for `commit`: `/hoist/<app>/images/<commit>`, or
/// `/hoist/<app>/<env>/images/<commit>` in an environment, under the environment's own root
/// ([`parameter_root`]) so that IAM lets only that environment's deploy role write it. A
/// later deploy of the commit reuses the image only when the commit's tag still holds this
/// digest: a tag anyone who may push can move; this parameter only hoist writes.
pub fn image_record_parameter(app: &str, environment: Option<&str>, commit: &str) -> String {
    format!("{}images/{commit}", parameter_root(app, environment))
}

/// Whether `name` has the shape of a run's secret parameter of `app` (in `environment`):
/// what a sweep may delete once expired. An environment's parameters sit deeper under
/// `/hoist/<app>/` than an app's without one, and its lock has no `env` leaf, so the sweep
/// of one never deletes the other's, nor a lock.
pub fn is_secret_parameter_of(name: &str, app: &str, environment: Option<&str>) -> bool {
    let Some(rest) = name.strip_prefix(&parameter_root(app, environment)) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let is_id = |s: &str| is_release_id(s) && s != "<run>";
    match (environment, parts.as_slice()) {
        (None, [release, run, "env"]) | (Some(_), ["runs", release, run, "env"]) => {
            is_id(release) && is_id(run)
        }
        _ => false,
    }
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

/// The lock's parameter: `/hoist/<app>/lock/<scope>`, or `/hoist/<app>/<env>/lock/<scope>`
/// in an environment; a pure function of the config.
pub fn lock_parameter(config: &Config) -> String {
    format!(
        "{}lock/{}",
        parameter_root(&config.app, config.environment.as_deref()),
        lock_scope(&config.targets)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(environment: Option<&str>) -> Config {
        let mut c = crate::config::parse(
            "app: hello\ntargets:\n  tags:\n    Env: [staging]\n",
            std::path::Path::new("hoist.yaml"),
            std::path::Path::new("."),
        )
        .unwrap();
        c.environment = environment.map(str::to_owned);
        c
    }

    const RUN: &str = "20261206T170000Z-1a2b3c4d";
    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn without_an_environment_the_names_are_the_apps_as_before() {
        let c = config(None);
        let scope = lock_scope(&c.targets);
        assert_eq!(lock_parameter(&c), format!("/hoist/hello/lock/{scope}"));
        assert_eq!(
            secret_parameter(&c, "abc1234", Some(RUN)),
            format!("/hoist/hello/abc1234/{RUN}/env")
        );
        assert_eq!(parameter_root("hello", None), "/hoist/hello/");
        assert_eq!(
            image_record_parameter("hello", None, SHA),
            format!("/hoist/hello/images/{SHA}")
        );
    }

    #[test]
    fn an_environment_scopes_every_name_under_its_own_root() {
        let c = config(Some("staging"));
        let scope = lock_scope(&c.targets);
        let root = parameter_root("hello", Some("staging"));
        assert_eq!(root, "/hoist/hello/staging/");
        assert_eq!(lock_parameter(&c), format!("{root}lock/{scope}"));
        assert_eq!(
            secret_parameter(&c, "abc1234", Some(RUN)),
            format!("{root}runs/abc1234/{RUN}/env")
        );
        assert_eq!(
            secret_parameter(&c, "abc1234", None),
            format!("{root}runs/abc1234/<run>/env")
        );
        assert_eq!(
            image_record_parameter("hello", Some("staging"), SHA),
            format!("{root}images/{SHA}")
        );
        // Same targets, another environment: another lock.
        assert_ne!(
            lock_parameter(&c),
            lock_parameter(&config(Some("production")))
        );
        assert_ne!(lock_parameter(&c), lock_parameter(&config(None)));
    }

    #[test]
    fn a_sweep_considers_only_its_own_environments_run_parameters() {
        let plain = config(None);
        let staging = config(Some("staging"));
        let production = config(Some("production"));
        let secret = |c: &Config| secret_parameter(c, "abc1234", Some(RUN));
        let sweeps = |name: &str, env: Option<&str>| is_secret_parameter_of(name, "hello", env);
        // Each its own run's parameter.
        assert!(sweeps(&secret(&plain), None));
        assert!(sweeps(&secret(&staging), Some("staging")));
        assert!(sweeps(&secret(&production), Some("production")));
        // Never another's, whichever root holds it; never a lock.
        for (name, env) in [
            (secret(&staging), None),
            (secret(&production), None),
            (secret(&production), Some("staging")),
            (secret(&plain), Some("staging")),
            (lock_parameter(&plain), None),
            (lock_parameter(&staging), None),
            (lock_parameter(&staging), Some("staging")),
            (lock_parameter(&production), Some("staging")),
            (image_record_parameter("hello", None, SHA), None),
            (
                image_record_parameter("hello", Some("staging"), SHA),
                Some("staging"),
            ),
            (secret_parameter(&staging, "abc1234", None), Some("staging")),
            ("/hoist/hello2/abc1234/x/env".to_owned(), None),
            ("/hoist/hello/abc1234/env".to_owned(), None),
        ] {
            assert!(!sweeps(&name, env), "{name} swept in {env:?}");
        }
    }
}

//! Environments: `-e NAME` merges `hoist.NAME.yaml` over `hoist.yaml`, and every error names
//! the file that wrote the value.

use std::path::{Path, PathBuf};

use super::*;

/// A directory of config files, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(files: &[(&str, &str)]) -> Dir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hoist-env-test-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Dir(dir)
    }

    fn load(&self, environment: Option<&str>) -> Result<Config, ConfigError> {
        load_environment(&self.0.join("hoist.yaml"), environment, Files::None)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const BASE: &str = "\
app: hello
targets:
  tags:
    Env: [production]
    Role: [web]
container:
  port: 8080
  memory: 256m
env:
  clear:
    LOG_LEVEL: info
    REGION_NAME: eu
  secret:
    - API_TOKEN
    - DB_URL: {ssm: /prod/db-url}
secrets:
  tier: standard
";

const STAGING: &str = "\
targets:
  tags:
    Env: [staging]
env:
  clear:
    LOG_LEVEL: debug
  secret:
    - DB_URL: {ssm: /staging/db-url}
secrets:
  tier: advanced
container:
  memory: 128m
";

#[test]
fn the_overlay_merges_over_the_file_key_by_key_and_replaces_lists() {
    let dir = Dir::new(&[("hoist.yaml", BASE), ("hoist.staging.yaml", STAGING)]);
    let c = dir.load(Some("staging")).unwrap();
    assert_eq!(c.environment.as_deref(), Some("staging"));
    // Targets: the tag the overlay sets is replaced, the other kept.
    assert_eq!(c.targets.tags["Env"], ["staging"]);
    assert_eq!(c.targets.tags["Role"], ["web"]);
    // Env values: merged by name.
    assert_eq!(c.env.clear["LOG_LEVEL"], "debug");
    assert_eq!(c.env.clear["REGION_NAME"], "eu");
    // A list is replaced whole: staging's secrets are only its own.
    assert_eq!(c.env.secret, ["DB_URL"]);
    assert_eq!(
        c.env.sources["DB_URL"],
        SecretSource::Ssm("/staging/db-url".into())
    );
    // Settings.
    assert_eq!(c.secrets.tier, SecretTier::Advanced);
    assert_eq!(c.container.port, 8080);
    assert_eq!(c.container.memory.as_deref(), Some("128m"));

    // Without the environment the file alone, and no environment.
    let c = dir.load(None).unwrap();
    assert_eq!(c.environment, None);
    assert_eq!(c.targets.tags["Env"], ["production"]);
    assert_eq!(c.env.secret, ["API_TOKEN", "DB_URL"]);
}

#[test]
fn a_null_in_the_overlay_removes_the_key_and_an_empty_overlay_changes_nothing() {
    let dir = Dir::new(&[
        ("hoist.yaml", BASE),
        (
            "hoist.a.yaml",
            "container:\n  memory: ~\ntargets:\n  tags: ~\n  instance_ids: [i-0123456789abcdef0]\n",
        ),
        ("hoist.b.yaml", ""),
    ]);
    let c = dir.load(Some("a")).unwrap();
    assert_eq!(c.container.memory, None);
    assert!(c.targets.tags.is_empty(), "{:?}", c.targets);
    assert_eq!(c.targets.instance_ids, ["i-0123456789abcdef0"]);
    let c = dir.load(Some("b")).unwrap();
    assert_eq!(c.environment.as_deref(), Some("b"));
    assert_eq!(c.container.memory.as_deref(), Some("256m"));
}

#[test]
fn errors_point_at_the_file_that_set_the_value() {
    let dir = Dir::new(&[
        ("hoist.yaml", &BASE.replace("memory: 256m", "memory: lots")),
        (
            "hoist.staging.yaml",
            "container:\n  port: 0\n  prot: 1\nsecrets:\n  tier: premium\n",
        ),
    ]);
    let err = dir.load(Some("staging")).unwrap_err();
    let text = err.headlines();
    let base = dir.0.join("hoist.yaml").display().to_string();
    let overlay = dir.0.join("hoist.staging.yaml").display().to_string();
    for line in [
        format!("{base}:8:11: container.memory:"),
        format!("{overlay}:2:9: container.port: 0 is out of range"),
        format!("{overlay}:3:3: container.prot: unknown key `prot`"),
        format!("{overlay}:5:9: secrets.tier:"),
    ] {
        assert!(text.contains(&line), "{line}\nnot in:\n{text}");
    }
    let json = err.to_json();
    let files: Vec<&str> = json.iter().map(|e| e["file"].as_str().unwrap()).collect();
    assert_eq!(files, [&base, &overlay, &overlay, &overlay], "{json:?}");
    // The rendered snippet is the overlay's text under the overlay's headline.
    let rendered = err.render(false);
    assert!(rendered.contains("prot: 1"), "{rendered}");
}

#[test]
fn a_syntax_error_in_the_overlay_is_reported_in_the_overlay() {
    let dir = Dir::new(&[("hoist.yaml", BASE), ("hoist.staging.yaml", "targets: [\n")]);
    let err = dir.load(Some("staging")).unwrap_err();
    let overlay = dir.0.join("hoist.staging.yaml").display().to_string();
    assert!(
        err.headlines().starts_with(&format!("{overlay}:")),
        "{}",
        err.headlines()
    );
}

#[test]
fn a_selected_environment_needs_its_overlay() {
    let dir = Dir::new(&[("hoist.yaml", BASE)]);
    let err = dir.load(Some("production")).unwrap_err();
    let path = dir.0.join("hoist.production.yaml");
    assert!(
        matches!(&err, ConfigError::NoOverlay { path: p, .. } if *p == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn the_environment_key_selects_alone_and_must_agree_with_the_flag() {
    let file = format!("{BASE}environment: production\n");
    let dir = Dir::new(&[("hoist.yaml", &file), ("hoist.staging.yaml", "")]);
    // The key alone: that environment, the file complete (no overlay read).
    let c = dir.load(None).unwrap();
    assert_eq!(c.environment.as_deref(), Some("production"));
    let err = dir.load(Some("staging")).unwrap_err();
    let base = dir.0.join("hoist.yaml").display().to_string();
    assert!(
        err.headlines().contains(&format!(
            "{base}:18:14: environment: the file is for environment `production`, but \
             --environment selects `staging`"
        )),
        "{}",
        err.headlines()
    );
    // The overlay may say which environment it is for.
    let dir = Dir::new(&[
        ("hoist.yaml", BASE),
        ("hoist.staging.yaml", "environment: staging\n"),
    ]);
    assert_eq!(
        dir.load(Some("staging")).unwrap().environment.as_deref(),
        Some("staging")
    );
}

#[test]
fn environment_names_are_checked_like_app_names() {
    let dir = Dir::new(&[("hoist.yaml", &format!("{BASE}environment: Prod_1\n"))]);
    let err = dir.load(None).unwrap_err();
    assert_eq!(err.issues()[0].field, "environment", "{err:?}");
    assert!(
        err.issues()[0]
            .message
            .contains("not a valid environment name")
    );
    for bad in ["Prod", "../x", "a/b", "", "-x", "x-"] {
        let err = dir.load(Some(bad)).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadEnvironment { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn the_overlay_sits_beside_the_file_named_after_it() {
    assert_eq!(
        overlay_path(Path::new("hoist.yaml"), "staging"),
        Path::new("hoist.staging.yaml")
    );
    assert_eq!(
        overlay_path(Path::new("deploy/web.yml"), "prod"),
        Path::new("deploy/web.prod.yml")
    );
}

//! `hoist.yaml`: reading, validating and reporting on the configuration file.

mod decode;
pub mod duration;
mod error;
mod schema;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use decode::{is_app_name, is_env_name, is_tag};
pub use error::{ConfigError, Issue};
pub use schema::*;

/// The name hoist looks for when no `--file` is given.
pub const DEFAULT_FILE: &str = "hoist.yaml";

/// Reads and validates a config file. On failure the error holds every issue found.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parse(&text, path, &base_dir)
}

/// Validates config text; `path` only names the file in messages.
pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
    let invalid = |issues| ConfigError::Invalid {
        file: path.to_path_buf(),
        text: text.to_owned(),
        issues,
    };
    let root = yaml::parse(text).map_err(|e| {
        invalid(vec![Issue {
            field: String::new(),
            loc: yaml::Loc::of_error(&e),
            message: format!(
                "YAML syntax: {}",
                first_line(&e.without_snippet().to_string())
            ),
            help: None,
        }])
    })?;
    decode::decode(&root, base_dir).map_err(invalid)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(text: &str) -> Vec<Issue> {
        match parse(text, Path::new("hoist.yaml"), Path::new(".")) {
            Ok(c) => panic!("expected errors, got {c:?}"),
            Err(e) => e.issues().to_vec(),
        }
    }

    const MINIMAL: &str = "app: web\ntargets:\n  tags:\n    Env: [prod]\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MINIMAL, Path::new("hoist.yaml"), Path::new("/srv/app")).unwrap();
        assert_eq!(c.app, "web");
        assert_eq!(c.image.repository, "web");
        assert_eq!(c.image.context, Path::new("/srv/app"));
        assert_eq!(c.image.dockerfile, "Dockerfile");
        assert!(c.image.tags.is_empty());
        assert_eq!(c.container.port, 80);
        assert_eq!(c.container.restart, "unless-stopped");
        assert_eq!(c.healthcheck.expect_status, 200);
        assert_eq!(c.retain, 3);
        assert_eq!(c.targets.max_errors, Rate::Count(0));
        assert_eq!(c.strategy, Strategy::Recreate);
    }

    #[test]
    fn reports_every_issue_not_just_the_first() {
        let found = issues(
            "app: Web\ntargets:\n  tags:\n    Env: [prod]\ncontainer:\n  port: 70000\n  \
             prot: 1\nretain: -1\n",
        );
        let fields: Vec<&str> = found.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            ["app", "container.port", "container.prot", "retain"]
        );
        assert_eq!(found[1].loc.unwrap().line, 6);
        assert!(
            found[2]
                .help
                .as_deref()
                .unwrap()
                .contains("did you mean `port`")
        );
    }

    #[test]
    fn syntax_error_has_line() {
        let found = issues("app: web\ntargets: [\n");
        assert_eq!(found.len(), 1);
        assert!(found[0].message.starts_with("YAML syntax"), "{found:?}");
        assert!(found[0].loc.is_some());
    }

    #[test]
    fn rendering_names_file_line_and_field() {
        let err = parse(
            "app: web\ntargets:\n  tags:\n    Env: [prod]\ncontainer:\n  port: 0\n",
            Path::new("deploy/hoist.yaml"),
            Path::new("."),
        )
        .unwrap_err();
        let text = err.render(false);
        assert!(
            text.contains("error: deploy/hoist.yaml:6:9: container.port: 0 is out of range"),
            "{text}"
        );
    }
}

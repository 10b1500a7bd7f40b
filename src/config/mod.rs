//! `hoist.yaml`: reading, validating and reporting on the configuration file.

mod decode;
pub mod duration;
mod error;
pub mod init;
pub mod locate;
mod schema;
pub mod text;
pub mod yaml;

use std::io::Read as _;
use std::path::{Path, PathBuf};

pub use decode::{MAX_ENV_LINE, is_app_name, is_env_name, is_instance_id, is_tag, schema_keys};
pub use error::{ConfigError, Issue};
pub use schema::*;

/// The name hoist looks for when no `--file` is given.
pub const DEFAULT_FILE: &str = "hoist.yaml";

/// The largest config file hoist reads (a real one is a few KiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// What a command needs on disk besides the config file, checked with the config so a
/// missing path is a config error (exit 2) before anything is built or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// Nothing beyond the file.
    None,
    /// The build context directory (the release is named after its git commit).
    Context,
    /// The build context and its Dockerfile: hoist builds the image.
    ContextAndDockerfile,
}

/// Where a command's config comes from: the file (`--file`) and the environment selected
/// on the command line (`--environment`), whose overlay is merged over the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub file: PathBuf,
    pub environment: Option<String>,
}

impl Source {
    /// The file alone, no environment selected on the command line.
    pub fn file(file: impl Into<PathBuf>) -> Source {
        Source {
            file: file.into(),
            environment: None,
        }
    }

    /// Reads and validates the config, as [`load_checked`] does, with the environment's
    /// overlay merged over the file when one is selected.
    pub fn load(&self, files: Files) -> Result<Config, ConfigError> {
        load_environment(&self.file, self.environment.as_deref(), files)
    }
}

/// Reads and validates a config file. On failure the error holds every issue found.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_checked(path, Files::None)
}

/// [`load`], then checks that the paths the config names exist, as `files` asks.
pub fn load_checked(path: &Path, files: Files) -> Result<Config, ConfigError> {
    load_environment(path, None, files)
}

/// The overlay of environment `environment` for the config file `path`: beside it, the
/// environment's name before the extension (`hoist.yaml` → `hoist.staging.yaml`).
pub fn overlay_path(path: &Path, environment: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "hoist".into(), |s| s.to_string_lossy().into_owned());
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{environment}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{environment}"),
    };
    path.with_file_name(name)
}

/// [`load_checked`] with environment `environment` selected (`--environment`): its overlay
/// ([`overlay_path`]) must exist and is merged over the file ([`yaml::merge`]), and an
/// `environment:` key, in either file, must name the same environment.
pub fn load_environment(
    path: &Path,
    environment: Option<&str>,
    files: Files,
) -> Result<Config, ConfigError> {
    if let Some(e) = environment
        && !is_app_name(e)
    {
        return Err(ConfigError::BadEnvironment {
            environment: text::escape(e, false).into_owned(),
        });
    }
    // `-f -`: the text from standard input, its relative paths (and overlay) from here.
    let stdin = path == Path::new(locate::STDIN);
    let (text, path) = if stdin {
        (locate::stdin_text()?, Path::new(locate::STDIN_NAME))
    } else {
        (read(path)?, path)
    };
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() && !stdin => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let overlay = match environment {
        Some(e) => {
            let overlay = overlay_path(if stdin { Path::new(DEFAULT_FILE) } else { path }, e);
            match std::fs::symlink_metadata(&overlay) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ConfigError::NoOverlay {
                        path: overlay,
                        environment: e.to_owned(),
                    });
                }
                _ => {}
            }
            let overlay_text = read(&overlay)?;
            Some((overlay, overlay_text))
        }
        None => None,
    };
    parse_files(
        &text,
        path,
        overlay
            .as_ref()
            .map(|(p, t)| (p.as_path(), t.as_str(), environment.unwrap_or_default())),
        &base_dir,
        files,
    )
}

/// Reads a config file: a regular file of at most [`MAX_FILE_BYTES`] of UTF-8. A FIFO or a
/// device (`/dev/zero`) is refused before it is read, so it can neither hang nor fill memory.
fn read(path: &Path) -> Result<String, ConfigError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |cause| ConfigError::Read {
        path: path.to_path_buf(),
        cause,
    };
    let regular = |meta: &std::fs::Metadata| {
        if meta.is_file() {
            Ok(())
        } else {
            Err(ConfigError::NotAFile {
                path: path.to_path_buf(),
                kind: file_kind(meta),
            })
        }
    };
    regular(&std::fs::metadata(path).map_err(io)?)?;
    // Checked again on the open file, which O_NONBLOCK keeps from waiting for a FIFO's
    // writer should the path have been swapped meanwhile (regular files ignore the flag).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    regular(&meta)?;
    let too_large = || ConfigError::TooLarge {
        path: path.to_path_buf(),
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        ))
    })
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Validates config text; `path` only names the file in messages.
pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigError> {
    parse_checked(text, path, base_dir, Files::None)
}

fn parse_checked(
    text: &str,
    path: &Path,
    base_dir: &Path,
    files: Files,
) -> Result<Config, ConfigError> {
    parse_files(text, path, None, base_dir, files)
}

/// Parses the config file's `text` and, with an environment, its overlay's (path, text,
/// environment), merges the overlay over it and decodes the result. Each file's syntax
/// errors are reported in that file; every other issue in the file that wrote the value.
fn parse_files(
    text: &str,
    path: &Path,
    overlay: Option<(&Path, &str, &str)>,
    base_dir: &Path,
    files: Files,
) -> Result<Config, ConfigError> {
    let environment = overlay.as_ref().map(|(_, _, e)| *e);
    let overlay_file = overlay.map(|(p, t, _)| (p.to_path_buf(), t.to_owned()));
    let invalid = |issues| ConfigError::Invalid {
        file: path.to_path_buf(),
        text: text.to_owned(),
        issues,
        overlay: overlay_file.clone(),
    };
    let syntax = |e: &serde_saphyr::Error, text: &str, file: u8| Issue {
        field: String::new(),
        loc: yaml::Loc::of_error(e, text).map(|l| yaml::Loc { file, ..l }),
        message: syntax_message(e),
        help: None,
    };
    let mut root = yaml::parse(text).map_err(|e| invalid(vec![syntax(&e, text, 0)]))?;
    if let Some((_, overlay_text, _)) = overlay {
        let mut over =
            yaml::parse(overlay_text).map_err(|e| invalid(vec![syntax(&e, overlay_text, 1)]))?;
        yaml::set_file(&mut over, 1);
        // An empty overlay changes nothing.
        if over.value != yaml::Value::Null {
            root = yaml::merge(root, over);
        }
    }
    let (config, origins) = decode::decode(&root, base_dir, environment).map_err(invalid)?;
    let issues = check_files(&config, &origins, files);
    if issues.is_empty() {
        Ok(config)
    } else {
        Err(invalid(issues))
    }
}

/// The build context must be a directory and, when hoist builds, hold the Dockerfile.
fn check_files(config: &Config, origins: &decode::Origins, files: Files) -> Vec<Issue> {
    let mut issues = Vec::new();
    if files == Files::None {
        return issues;
    }
    // Shown as `./app`, not `././app` (the config's directory joined with what it says).
    let context: PathBuf = config.image.context.components().collect();
    let context = &context;
    let defaulted = origins.context.is_none().then(|| {
        "image.context defaults to the directory holding the config file; set it to the \
         directory to build"
            .to_owned()
    });
    let problem = match std::fs::metadata(context) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "the build context {} is not a directory",
            context.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "the build context directory {} does not exist",
            context.display()
        )),
        Err(e) => Some(format!(
            "cannot read the build context {}: {e}",
            context.display()
        )),
    };
    if let Some(message) = problem {
        issues.push(Issue {
            field: "image.context".into(),
            loc: origins.context,
            message,
            help: defaulted,
        });
        return issues;
    }
    if files == Files::ContextAndDockerfile {
        // Resolved as `image::context::pack` (and Docker) do: inside the context.
        let relative: Vec<&str> = config
            .image
            .dockerfile
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .fold(Vec::new(), |mut parts, p| {
                if p == ".." {
                    parts.pop();
                } else {
                    parts.push(p);
                }
                parts
            });
        let path = context.join(relative.join("/"));
        if !path.is_file() {
            issues.push(Issue {
                field: "image.dockerfile".into(),
                loc: origins.dockerfile.or(origins.context),
                message: format!(
                    "the Dockerfile `{}` is not in the build context: {} is not a file",
                    config.image.dockerfile,
                    path.display()
                ),
                help: Some(
                    "image.dockerfile is relative to image.context (default `Dockerfile`); \
                     to deploy an existing image without building, pass --image"
                        .into(),
                ),
            });
        }
    }
    issues
}

fn syntax_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let line = first_line(&text);
    if line.starts_with("budget breached: Depth") {
        format!(
            "YAML syntax: collections nested more than {} levels deep (a hoist.yaml needs 4)",
            yaml::MAX_DEPTH
        )
    } else {
        format!("YAML syntax: {line}")
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod environment_tests;

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
        assert_eq!(c.healthcheck.consecutive, 1);
        assert_eq!(c.blue_green, None);
        assert_eq!(c.switch_time(), std::time::Duration::ZERO);
    }

    fn blue_green(extra: &str) -> BlueGreen {
        let text = format!("{MINIMAL}strategy: blue-green\n{extra}");
        let c = parse(&text, Path::new("hoist.yaml"), Path::new(".")).unwrap();
        assert_eq!(c.strategy, Strategy::BlueGreen);
        c.blue_green.expect("blue-green has its section")
    }

    #[test]
    fn blue_green_gets_defaults_and_ports_derived_from_publish() {
        use std::time::Duration;
        let bg = blue_green("container:\n  publish: 8080\n");
        assert_eq!(
            bg,
            BlueGreen {
                drain: Duration::from_secs(10),
                post_switch_check: Duration::from_secs(10),
                install_proxy: false,
                ports: [18080, 28080],
                proxy: Proxy {
                    max_body: None,
                    read_timeout: Duration::from_secs(3600),
                    ipv6: true,
                },
            }
        );
        assert_eq!(bg.switch_time(), Duration::from_secs(20));
        let bg = blue_green(
            "container:\n  publish: 80\nblue_green:\n  drain: 0s\n  \
             post_switch_check: 1m\n  install_proxy: true\n  ports: [9001, 9002]\n  \
             proxy:\n    max_body: 10M\n    read_timeout: 90s\n    ipv6: false\n",
        );
        assert_eq!(
            bg,
            BlueGreen {
                drain: Duration::ZERO,
                post_switch_check: Duration::from_secs(60),
                install_proxy: true,
                ports: [9001, 9002],
                proxy: Proxy {
                    max_body: Some(10 << 20),
                    read_timeout: Duration::from_secs(90),
                    ipv6: false,
                },
            }
        );
        for (written, bytes) in [("0", None), ("512", Some(512)), ("2k", Some(2048))] {
            let bg = blue_green(&format!(
                "container:\n  publish: 80\nblue_green:\n  proxy: {{max_body: {written}}}\n"
            ));
            assert_eq!(bg.proxy.max_body, bytes, "{written}");
        }
        // An empty section is the defaults.
        assert_eq!(
            blue_green("container:\n  publish: 80\nblue_green:\n").ports,
            [10080, 20080]
        );
    }

    #[test]
    fn default_ports_fit_under_65536_or_are_none() {
        assert_eq!(BlueGreen::default_ports(1), Some([10001, 20001]));
        assert_eq!(BlueGreen::default_ports(45535), Some([55535, 65535]));
        assert_eq!(BlueGreen::default_ports(45536), None);
        assert_eq!(BlueGreen::default_ports(65535), None);
        assert_eq!(
            blue_green("container:\n  publish: 50000\nblue_green:\n  ports: [1, 2]\n").ports,
            [1, 2],
            "explicit ports need no derivation"
        );
        let found = issues(&format!(
            "{MINIMAL}strategy: blue-green\ncontainer:\n  publish: 50000\n"
        ));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].field, "blue_green.ports");
        assert!(found[0].message.contains("70000"), "{found:?}");
    }

    #[test]
    fn the_budget_is_checked_even_when_the_strategy_is_wrong() {
        let found = issues(&format!(
            "{MINIMAL}strategy: canary\nhealthcheck:\n  timeout: 48h\n"
        ));
        let fields: Vec<&str> = found.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(fields, ["strategy", "healthcheck.timeout"], "{found:?}");
    }

    #[test]
    fn consecutive_successes_must_fit_in_the_health_budget() {
        let c = parse(
            &format!("{MINIMAL}healthcheck:\n  consecutive: 3\n  interval: 5s\n  timeout: 10s\n"),
            Path::new("hoist.yaml"),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(c.healthcheck.consecutive, 3);
        let found = issues(&format!(
            "{MINIMAL}healthcheck:\n  consecutive: 4\n  interval: 5s\n  timeout: 10s\n"
        ));
        assert_eq!(found[0].field, "healthcheck.consecutive", "{found:?}");
        assert!(found[0].message.contains("take 15s"), "{found:?}");
        for bad in ["0", "11", "two"] {
            let found = issues(&format!("{MINIMAL}healthcheck:\n  consecutive: {bad}\n"));
            assert_eq!(
                found[0].field, "healthcheck.consecutive",
                "{bad}: {found:?}"
            );
        }
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
    fn deep_nesting_is_a_syntax_error_in_plain_words() {
        let text = format!("x: {}1{}\n", "[".repeat(30), "]".repeat(30));
        let found = issues(&text);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains("nested more than 24 levels deep"),
            "{found:?}"
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

    #[test]
    fn secrets_come_from_hoists_environment_or_from_a_source_each_host_reads() {
        let text = format!(
            "{MINIMAL}env:\n  secret:\n    - API_TOKEN\n    - DB_URL: {{ssm: /prod/db-url}}\n    \
             - DB_OLD: {{ssm: '/prod/db-url:3'}}\n    \
             - DB_PASSWORD: {{secretsmanager: prod/db, key: password}}\n    \
             - TLS_KEY: {{secretsmanager: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-AbCdEf'}}\n\
             secrets:\n  tier: advanced\n"
        );
        let c = parse(&text, Path::new("hoist.yaml"), Path::new(".")).unwrap();
        assert_eq!(
            c.env.secret,
            ["API_TOKEN", "DB_URL", "DB_OLD", "DB_PASSWORD", "TLS_KEY"]
        );
        assert_eq!(c.env.from_environment(), ["API_TOKEN"]);
        assert_eq!(
            c.env.sources["DB_URL"],
            SecretSource::Ssm("/prod/db-url".into())
        );
        assert_eq!(c.env.sources["DB_OLD"].describe(), "ssm:/prod/db-url:3");
        assert_eq!(
            c.env.sources["DB_PASSWORD"].describe(),
            "secretsmanager:prod/db#password"
        );
        assert!(c.env.sources["TLS_KEY"].describe().ends_with("tls-AbCdEf"));
        assert_eq!(c.secrets.tier, SecretTier::Advanced);
    }

    #[test]
    fn a_secret_source_must_name_exactly_one_valid_place() {
        for (source, field, says) in [
            ("{}", "env.secret[0].X", "exactly one source"),
            (
                "{ssm: /a, secretsmanager: b}",
                "env.secret[0].X",
                "exactly one source",
            ),
            (
                "{ssm: 'a b'}",
                "env.secret[0].X.ssm",
                "not an SSM parameter name",
            ),
            ("{ssm: /a, key: k}", "env.secret[0].X.key", "one value"),
            (
                "{secretsmanager: 'a b'}",
                "env.secret[0].X.secretsmanager",
                "not a Secrets Manager secret",
            ),
            ("{vault: x}", "env.secret[0].X.vault", "unknown key"),
        ] {
            let text = format!("{MINIMAL}env:\n  secret:\n    - X: {source}\n");
            let found = issues(&text);
            assert!(
                found
                    .iter()
                    .any(|i| i.field == field && i.message.contains(says)),
                "{source}: {found:?}"
            );
        }
        let found = issues(&format!("{MINIMAL}secrets:\n  tier: premium\n"));
        assert_eq!(found[0].field, "secrets.tier", "{found:?}");
    }
}

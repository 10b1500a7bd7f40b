//! `hoist init`: writes a commented `hoist.yaml` for the app in the config file's directory,
//! from its Dockerfile (`EXPOSE`, `HEALTHCHECK`), its git remote (the app's name) and the
//! flags; checked as `hoist validate` checks it before it is written, and never over a file
//! that exists.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::config::init::{self, Healthcheck, Init, Origin, Targets};
use crate::config::{self, Strategy};
use crate::ops::Error;

#[derive(Debug, Args)]
pub(super) struct InitArgs {
    /// The file to write; the app is the one in its directory (its Dockerfile, its git
    /// remote). Never overwritten.
    #[arg(short = 'f', long = "file", default_value = config::DEFAULT_FILE)]
    file: PathBuf,
    /// Target the instances with this tag (repeatable; a key given twice takes both values).
    #[arg(long = "tags", value_name = "KEY=VALUE", value_parser = tag)]
    tags: Vec<(String, String)>,
    /// Target these instances (repeatable, or comma-separated).
    #[arg(long = "instance-ids", value_name = "ID", value_delimiter = ',', value_parser = instance_id)]
    instance_ids: Vec<String>,
    /// The app's name (default: the git remote origin's repository name, else the
    /// directory's name).
    #[arg(long, value_name = "NAME", value_parser = app)]
    app: Option<String>,
    /// The port the app listens on in the container (default: the first TCP port the
    /// Dockerfile's `EXPOSE` declares, else 80).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// The deploy strategy.
    #[arg(long, value_enum, default_value_t = InitStrategy::Recreate)]
    strategy: InitStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum InitStrategy {
    Recreate,
    BlueGreen,
}

/// `--tags KEY=VALUE`.
fn tag(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE (e.g. Env=staging)")),
    }
}

/// `--instance-ids i-…`: an EC2 instance id.
fn instance_id(text: &str) -> Result<String, String> {
    if config::is_instance_id(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an EC2 instance id (i- followed by 8 or 17 lowercase hex digits)"
        ))
    }
}

/// `--app NAME`: an app name as the config takes it.
fn app(text: &str) -> Result<String, String> {
    if config::is_app_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not an app name (1-32 of a-z, 0-9 and -, starting with a letter)"
        ))
    }
}

impl InitArgs {
    pub(super) fn run(&self) -> Result<(), Error> {
        let file = &self.file;
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if file.symlink_metadata().is_ok() {
            return Err(exists(file));
        }
        let dockerfile_path = dir.join("Dockerfile");
        let dockerfile = match std::fs::read_to_string(&dockerfile_path) {
            Ok(text) => Some(init::dockerfile::read(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(cause) => {
                return Err(Error::Read {
                    path: dockerfile_path,
                    cause,
                });
            }
        };
        let found = dockerfile.clone().unwrap_or_default();
        let spec = Init {
            app: self.app_name(&dir),
            port: self.port(&found),
            healthcheck: health(&found),
            healthcheck_note: health_note(dockerfile.as_ref()),
            targets: self.targets(),
            strategy: match self.strategy {
                InitStrategy::Recreate => Strategy::Recreate,
                InitStrategy::BlueGreen => Strategy::BlueGreen,
            },
            missing_dockerfile: dockerfile.is_none().then(|| "Dockerfile".to_owned()),
        };
        let text = init::render(&spec);
        // What is written validates: a flag the config refuses (an instance id, a tag) is
        // reported as `validate` would, and nothing is written.
        config::parse(&text, file, &dir)?;
        write_new(file, &text)?;
        crate::output::write::errln!(
            "wrote {}: app {}, port {}, {}",
            file.display(),
            spec.app.0,
            spec.port.0,
            match &spec.healthcheck {
                Some((path, _)) => format!("health check {path}"),
                None => "no health check (one is suggested in a comment)".to_owned(),
            }
        );
        if spec.targets.is_empty() {
            let (k, v) = init::PLACEHOLDER_TAG;
            crate::output::write::errln!(
                "note: no --tags or --instance-ids: it targets the instances tagged {k}={v}; \
                 change targets: before a deploy"
            );
        }
        if dockerfile.is_none() {
            crate::output::write::errln!(
                "note: no Dockerfile in {}: write one (or set image.dockerfile) before a deploy",
                dir.display()
            );
        }
        crate::output::write::errln!(
            "next: hoist validate -f {0} && hoist plan -f {0}",
            file.display()
        );
        Ok(())
    }

    fn app_name(&self, dir: &Path) -> (String, Origin) {
        if let Some(app) = &self.app {
            return (app.clone(), Origin::Flag("--app"));
        }
        if let Some(url) = origin_url(dir)
            && let Some(name) = init::repository_name(&url).and_then(init::app_name)
        {
            return (
                name,
                Origin::Found(format!("the git remote origin ({url})")),
            );
        }
        let name = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .and_then(|n| init::app_name(&n));
        match name {
            Some(name) => (name, Origin::Found("the directory's name".to_owned())),
            None => (
                "app".to_owned(),
                Origin::Default("no git remote or directory name to take it from"),
            ),
        }
    }

    fn port(&self, found: &init::Dockerfile) -> (u16, Origin) {
        if let Some(port) = self.port {
            return (port, Origin::Flag("--port"));
        }
        match found.ports.first() {
            Some(&port) => {
                let also = if found.ports.len() > 1 {
                    " (the first of its ports)"
                } else {
                    ""
                };
                (
                    port,
                    Origin::Found(format!("the Dockerfile's EXPOSE {port}{also}")),
                )
            }
            None => (
                80,
                Origin::Default("hoist's default: the Dockerfile EXPOSEs no TCP port"),
            ),
        }
    }

    fn targets(&self) -> Targets {
        let mut targets = Targets::default();
        for (k, v) in &self.tags {
            targets.add_tag(k, v);
        }
        for id in &self.instance_ids {
            if !targets.instance_ids.contains(id) {
                targets.instance_ids.push(id.clone());
            }
        }
        targets
    }
}

fn health(found: &init::Dockerfile) -> Option<(String, Origin)> {
    match &found.healthcheck {
        Some(Healthcheck::Http { path, .. }) => Some((
            path.clone(),
            Origin::Found("the Dockerfile's HEALTHCHECK".to_owned()),
        )),
        _ => None,
    }
}

fn health_note(dockerfile: Option<&init::Dockerfile>) -> Option<String> {
    let note = match dockerfile.and_then(|d| d.healthcheck.as_ref()) {
        _ if dockerfile.is_none() => "no Dockerfile to read a HEALTHCHECK from",
        None => "the Dockerfile has no HEALTHCHECK",
        Some(Healthcheck::Disabled) => "the Dockerfile says HEALTHCHECK NONE",
        Some(Healthcheck::Command(_)) => {
            "the Dockerfile's HEALTHCHECK runs a command, not an HTTP request"
        }
        Some(Healthcheck::Http { .. }) => return None,
    };
    Some(note.to_owned())
}

/// The URL of the git remote `origin` of the repository `dir` is in, if git says one.
fn origin_url(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["config", "--get", "remote.origin.url"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let url = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !url.is_empty()).then_some(url)
}

fn exists(file: &Path) -> Error {
    Error::Write {
        path: file.to_path_buf(),
        cause: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it exists already, and hoist init never overwrites a file (remove it, or write \
             another with -f PATH)",
        ),
    }
}

/// Writes `text` to `file`, which must not exist (checked by the open itself).
fn write_new(file: &Path, text: &str) -> Result<(), Error> {
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists(file)),
        Err(cause) => {
            return Err(Error::Write {
                path: file.to_path_buf(),
                cause,
            });
        }
    };
    f.write_all(text.as_bytes()).map_err(|cause| Error::Write {
        path: file.to_path_buf(),
        cause,
    })
}

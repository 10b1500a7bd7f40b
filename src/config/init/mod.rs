//! `hoist init`'s file: a commented `hoist.yaml` rendered from what was found (the
//! Dockerfile, the git remote, the directory's name) and the flags given. Pure: the command
//! line reads the files and git, and checks the result with [`crate::config::parse`] before
//! writing it.

pub mod dockerfile;

use std::fmt::Write as _;

pub use dockerfile::{Dockerfile, Healthcheck};

use super::Strategy;
use super::decode::is_app_name;

/// The paths an HTTP app commonly answers its health check on, suggested (commented out)
/// when the Dockerfile names none.
pub const COMMON_HEALTH_PATHS: &[&str] = &["/healthz", "/health", "/up"];

/// Where a value of the file came from, said in its comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A flag of `hoist init`'s (`--app`).
    Flag(&'static str),
    /// Something found, described (`the git remote origin (git@host:acme/shop.git)`).
    Found(String),
    /// hoist's default: nothing said otherwise (and why).
    Default(&'static str),
}

impl Origin {
    fn comment(&self) -> String {
        match self {
            Origin::Flag(flag) => format!("from {flag}"),
            Origin::Found(what) => format!("from {what}"),
            Origin::Default(why) => why.to_string(),
        }
    }
}

/// Which instances the file targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Tag key → values, in the order given (`--tags Env=staging --tags Env=qa`).
    pub tags: Vec<(String, Vec<String>)>,
    pub instance_ids: Vec<String>,
}

impl Targets {
    /// `--tags KEY=VALUE`: adds VALUE to KEY's values.
    pub fn add_tag(&mut self, key: &str, value: &str) {
        match self.tags.iter_mut().find(|(k, _)| k == key) {
            Some((_, values)) => {
                if !values.iter().any(|v| v == value) {
                    values.push(value.to_owned());
                }
            }
            None => self.tags.push((key.to_owned(), vec![value.to_owned()])),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty() && self.instance_ids.is_empty()
    }
}

/// Everything the file is rendered from.
#[derive(Debug, Clone)]
pub struct Init {
    pub app: (String, Origin),
    pub port: (u16, Origin),
    /// The health check path, when the Dockerfile (or a flag) names one; otherwise the file
    /// suggests [`COMMON_HEALTH_PATHS`] in a comment.
    pub healthcheck: Option<(String, Origin)>,
    /// Said in the comment above a suggested health check: why there is none.
    pub healthcheck_note: Option<String>,
    /// Empty: a placeholder target (`Env: [staging]`) with a comment to change it.
    pub targets: Targets,
    pub strategy: Strategy,
    /// The Dockerfile's name, relative to the file, when there is none (said in a comment).
    pub missing_dockerfile: Option<String>,
}

/// The tag hoist init targets when no `--tags` or `--instance-ids` is given.
pub const PLACEHOLDER_TAG: (&str, &str) = ("Env", "staging");

/// An app name (1-32 of `a-z 0-9 -`, starting with a letter) made from `raw` (a repository
/// or directory name): lower-cased, other characters as `-`, runs of `-` as one, what cannot
/// start or end a name trimmed. None when nothing is left.
pub fn app_name(raw: &str) -> Option<String> {
    let mut name = String::new();
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if c == '-' && (name.is_empty() || name.ends_with('-')) {
            continue;
        }
        name.push(c);
    }
    let name = name.trim_start_matches(|c: char| !c.is_ascii_lowercase());
    let mut name: String = name.chars().take(32).collect();
    while name.ends_with('-') {
        name.pop();
    }
    is_app_name(&name).then_some(name)
}

/// The repository's name in a git remote URL (`https://host/acme/shop.git`,
/// `git@host:acme/shop.git`, `/srv/git/shop`): its last path segment without `.git`.
pub fn repository_name(url: &str) -> Option<&str> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let name = url.rsplit(['/', ':']).next()?;
    (!name.is_empty()).then_some(name)
}

/// A YAML scalar as written in the file: plain when it reads back as the same string,
/// otherwise double-quoted (JSON's quoting, which YAML reads).
fn scalar(s: &str) -> String {
    const WORDS: &[&str] = &[
        "y", "n", "yes", "no", "true", "false", "on", "off", "null", "~",
    ];
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !WORDS.contains(&s.to_ascii_lowercase().as_str());
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

/// Appends `text` (with `indent` spaces) and, when there is one, `# comment` aligned at the
/// comment column.
fn line(out: &mut String, indent: usize, text: &str, comment: &str) {
    const COLUMN: usize = 30;
    let written = format!("{:indent$}{text}", "");
    if comment.is_empty() {
        out.push_str(written.trim_end());
    } else {
        let pad = COLUMN.saturating_sub(written.len()).max(1);
        let _ = write!(out, "{written}{:pad$}# {comment}", "");
    }
    out.push('\n');
}

/// The commented `hoist.yaml`.
pub fn render(init: &Init) -> String {
    let mut out = String::new();
    let (app, app_origin) = &init.app;
    let _ = writeln!(
        out,
        "# hoist.yaml for {app}, written by `hoist init`. Check it with `hoist validate`; see \
         what a\n# deploy would do with `hoist plan`. Every key is in README.md, \"Configuration \
         reference\".\n"
    );
    line(&mut out, 0, &format!("app: {app}"), &app_origin.comment());
    line(
        &mut out,
        0,
        "# region: us-east-1",
        "default: the AWS environment's (AWS_REGION, the profile)",
    );
    out.push('\n');

    out.push_str("image:\n");
    line(
        &mut out,
        2,
        &format!("repository: {app}"),
        "the ECR repository (created on the first push)",
    );
    line(
        &mut out,
        2,
        "# context: .",
        "the build context, beside this file",
    );
    match &init.missing_dockerfile {
        Some(name) => line(
            &mut out,
            2,
            &format!("# dockerfile: {}", scalar(name)),
            "not found: write it, or name yours here, before a deploy",
        ),
        None => line(&mut out, 2, "# dockerfile: Dockerfile", "in the context"),
    }
    out.push('\n');

    render_targets(&mut out, &init.targets);

    let (port, port_origin) = &init.port;
    out.push_str("container:\n");
    line(
        &mut out,
        2,
        &format!("port: {port}"),
        &format!("the app's, in the container: {}", port_origin.comment()),
    );
    line(
        &mut out,
        2,
        &format!("publish: {port}"),
        "the host's port it is published on",
    );
    line(&mut out, 2, "# memory: 256m", "no limit by default");
    line(
        &mut out,
        2,
        "# init: true",
        "an init as PID 1 forwards SIGTERM",
    );
    out.push('\n');

    if let Some((path, origin)) = &init.healthcheck {
        out.push_str("healthcheck:\n");
        line(
            &mut out,
            2,
            &format!("path: {}", scalar(path)),
            &origin.comment(),
        );
        line(&mut out, 2, "# expect_status: 200", "");
        line(&mut out, 2, "# timeout: 60s", "for the new release to pass");
    } else {
        let note = init
            .healthcheck_note
            .as_deref()
            .unwrap_or("the Dockerfile has no HTTP HEALTHCHECK");
        let _ = writeln!(
            out,
            "# {note}.\n# Without a path the gate waits for the image's own HEALTHCHECK \
             (Docker's health status), or\n# with none for the container to be running a \
             second later. A path the app answers 200 on is\n# better (common ones: {}):",
            COMMON_HEALTH_PATHS.join(", ")
        );
        out.push_str("# healthcheck:\n");
        let _ = writeln!(out, "#   path: {}", COMMON_HEALTH_PATHS[0]);
    }
    out.push('\n');

    out.push_str(
        "# env:\n#   clear:\n#     LOG_LEVEL: info         # shown in the plan\n\
         #   secret: [DATABASE_URL]   # from hoist's environment at deploy time; never shown\n\n",
    );

    let strategy_comment = match init.strategy {
        Strategy::Recreate => "or blue-green: nginx on each host, no failed request",
        Strategy::BlueGreen => "nginx on each host listens on publish, switches colors",
    };
    line(
        &mut out,
        0,
        &format!("strategy: {}", init.strategy.as_str()),
        strategy_comment,
    );
    line(
        &mut out,
        0,
        "# retain: 3",
        "releases kept stopped for rollback",
    );
    out
}

fn render_targets(out: &mut String, targets: &Targets) {
    if targets.is_empty() {
        line(
            out,
            0,
            "targets:",
            "a placeholder: hoist init --tags KEY=VALUE or --instance-ids",
        );
        out.push_str("  tags:\n");
        let (k, v) = PLACEHOLDER_TAG;
        line(
            out,
            4,
            &format!("{k}: [{v}]"),
            "the instances tagged Env=staging",
        );
    } else {
        line(out, 0, "targets:", "the EC2 instances the app runs on");
        if !targets.tags.is_empty() {
            line(out, 2, "tags:", "instances with each of these tags");
            for (key, values) in &targets.tags {
                let values: Vec<String> = values.iter().map(|v| scalar(v)).collect();
                line(
                    out,
                    4,
                    &format!("{}: [{}]", scalar(key), values.join(", ")),
                    "",
                );
            }
        }
        if !targets.instance_ids.is_empty() {
            line(out, 2, "instance_ids:", "");
            for id in &targets.instance_ids {
                line(out, 4, &format!("- {}", scalar(id)), "");
            }
        }
    }
    line(
        out,
        2,
        "# max_concurrency: \"50%\"",
        "how many deploy at once (default 50)",
    );
    out.push('\n');
}

#[cfg(test)]
mod tests;

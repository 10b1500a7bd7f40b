//! Configuration errors: every problem found, each with file, line, column and field path.

use std::fmt::Write as _;
use std::path::PathBuf;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};

use super::text::{escape, sanitize_same_len};
use super::yaml::Loc;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted field path, e.g. `container.port` or `env.secret[1]`; empty for the document.
    pub field: String,
    pub loc: Option<Loc>,
    pub message: String,
    pub help: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "config file {} is {kind}, not a regular file; hoist reads its config only from a \
         regular file",
        path.display()
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "config file {} is larger than {} bytes (1 MiB), more than any hoist.yaml needs; \
         hoist does not read it",
        path.display(),
        super::MAX_FILE_BYTES
    )]
    TooLarge { path: PathBuf },
    #[error(
        "environment `{environment}` is selected but its overlay {} does not exist: create \
         it (it may be empty) beside the config file, or select another environment",
        path.display()
    )]
    NoOverlay { path: PathBuf, environment: String },
    #[error(
        "`{environment}` is not a valid environment name: use 1-32 lowercase letters, digits \
         and hyphens, starting with a letter and not ending with a hyphen"
    )]
    BadEnvironment { environment: String },
    #[error("{} has {} error{}", files(file, overlay.as_ref()), issues.len(), if issues.len() == 1 { "" } else { "s" })]
    Invalid {
        file: PathBuf,
        text: String,
        issues: Vec<Issue>,
        /// With an environment: its overlay file and text, where the issues whose
        /// location is in file 1 are.
        overlay: Option<(PathBuf, String)>,
    },
}

fn files(file: &std::path::Path, overlay: Option<&(PathBuf, String)>) -> String {
    match overlay {
        Some((o, _)) => format!("{} with {}", file.display(), o.display()),
        None => file.display().to_string(),
    }
}

impl ConfigError {
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }

    /// Every issue's `file:line:column: field: message` line, then the error's own line
    /// (`FILE has N errors`); the error's message alone when it is not about issues.
    pub fn headlines(&self) -> String {
        let ConfigError::Invalid { issues, .. } = self else {
            return escape(&self.to_string(), true).into_owned();
        };
        let mut out = String::new();
        for issue in issues {
            let (file, _) = self.file_of(issue);
            let name = escape(&file.display().to_string(), false).into_owned();
            let _ = writeln!(out, "{}", headline(&name, issue));
        }
        let _ = write!(out, "{self}");
        out
    }

    /// The file an issue is in, and its text: the overlay's for a location in file 1.
    fn file_of(&self, issue: &Issue) -> (&std::path::Path, &str) {
        match self {
            ConfigError::Invalid {
                overlay: Some((path, text)),
                ..
            } if issue.loc.is_some_and(|l| l.file == 1) => (path, text),
            ConfigError::Invalid { file, text, .. } => (file, text),
            _ => unreachable!("only an Invalid error has issues"),
        }
    }

    /// The errors as `hoist validate --format json` reports them: one object per issue
    /// (`file`, `line`, `column`, `field`, `message`, `help`; no location for an error that
    /// is not about one place in the file, such as an unreadable file).
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        let ConfigError::Invalid { issues, .. } = self else {
            let file = match self {
                ConfigError::Read { path, .. }
                | ConfigError::NotAFile { path, .. }
                | ConfigError::NoOverlay { path, .. }
                | ConfigError::TooLarge { path } => path.display().to_string(),
                ConfigError::BadEnvironment { .. } => String::new(),
                ConfigError::Invalid { file, .. } => file.display().to_string(),
            };
            return vec![serde_json::json!({
                "file": file,
                "line": null,
                "column": null,
                "field": "",
                "message": self.to_string(),
                "help": null,
            })];
        };
        issues
            .iter()
            .map(|issue| {
                serde_json::json!({
                    "file": self.file_of(issue).0.display().to_string(),
                    "line": issue.loc.map(|l| l.line),
                    "column": issue.loc.map(|l| l.column),
                    "field": issue.field,
                    "message": issue.message,
                    "help": issue.help,
                })
            })
            .collect()
    }

    /// Renders every issue: a `file:line:column: field: message` headline (easy to grep and
    /// to click in an editor or a CI log), followed by the source snippet with the span marked
    /// and the help. Each message is printed once: the snippet under its headline shows
    /// where, not the message again.
    pub fn render(&self, color: bool) -> String {
        let ConfigError::Invalid { issues, .. } = self else {
            return format!("error: {}\n", escape(&self.to_string(), true));
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let mut out = String::new();
        for issue in issues {
            let (file, text) = self.file_of(issue);
            let name = escape(&file.display().to_string(), false).into_owned();
            // Nothing from the file reaches the terminal unescaped: a value holding an ANSI
            // escape or a carriage return must not rewrite the report about it.
            let text = sanitize_same_len(text).into_owned();
            let help = issue.help.as_deref().map(|h| escape(h, false).into_owned());
            let _ = writeln!(out, "error: {}", headline(&name, issue));
            if let Some(loc) = issue.loc {
                let diagnostic = Snippet {
                    src: NamedSource::new(&name, text.clone()),
                    span: (loc.offset.min(text.len()), loc.len.max(1)).into(),
                    help,
                };
                let mut snippet = String::new();
                let _ = handler.render_report(&mut snippet, &diagnostic);
                // miette's first line is the diagnostic's message, which is empty: the
                // headline above said it.
                out.push_str(snippet.split_once('\n').map_or("", |(_, rest)| rest));
            } else if let Some(help) = &help {
                let _ = writeln!(out, "  help: {help}");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "{self}");
        out
    }
}

/// `file:line:column: field: message` (`file: message` without a location or field),
/// every part escaped.
fn headline(name: &str, issue: &Issue) -> String {
    let at = match issue.loc {
        Some(loc) => format!("{name}:{}:{}", loc.line, loc.column),
        None => name.to_owned(),
    };
    let field = if issue.field.is_empty() {
        String::new()
    } else {
        format!("{}: ", escape(&issue.field, false))
    };
    format!("{at}: {field}{}", escape(&issue.message, false))
}

/// Where an issue is, for miette to draw: the snippet, the span marked, the help. It has
/// no message of its own (its issue's headline is printed above it).
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("")]
struct Snippet {
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    #[help]
    help: Option<String>,
}

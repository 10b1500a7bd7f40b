//! Configuration errors: every problem found, each with file, line, column and field path.

use std::fmt::Write as _;
use std::path::PathBuf;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, NamedSource, SourceSpan};

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
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} has {} error{}", file.display(), issues.len(), if issues.len() == 1 { "" } else { "s" })]
    Invalid {
        file: PathBuf,
        text: String,
        issues: Vec<Issue>,
    },
}

impl ConfigError {
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { issues, .. } => issues,
        }
    }

    /// Renders every issue: a `file:line:column: field: message` headline (easy to grep and
    /// to click in an editor or a CI log), followed by the source snippet with the span marked.
    pub fn render(&self, color: bool) -> String {
        let ConfigError::Invalid { file, text, issues } = self else {
            return format!("error: {self}\n");
        };
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
        let name = file.display().to_string();
        let mut out = String::new();
        for issue in issues {
            let at = match issue.loc {
                Some(loc) => format!("{name}:{}:{}", loc.line, loc.column),
                None => name.clone(),
            };
            let field = if issue.field.is_empty() {
                String::new()
            } else {
                format!("{}: ", issue.field)
            };
            let _ = writeln!(out, "error: {at}: {field}{}", issue.message);
            if let Some(loc) = issue.loc {
                let diagnostic = Snippet {
                    message: format!("{field}{}", issue.message),
                    src: NamedSource::new(&name, text.clone()),
                    span: (loc.offset, loc.len.max(1)).into(),
                    help: issue.help.clone(),
                };
                let _ = handler.render_report(&mut out, &diagnostic);
            } else if let Some(help) = &issue.help {
                let _ = writeln!(out, "  help: {help}");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "{self}");
        out
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
struct Snippet {
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: SourceSpan,
    #[help]
    help: Option<String>,
}

//! `hoist validate`: the config and the files it names, checked; as text or JSON.

use clap::{Args, ValueEnum};

use super::args::ConfigArgs;
use crate::config;
use crate::ops::Error;
use crate::output::write::out;

#[derive(Debug, Args)]
pub(super) struct ValidateArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Output format: `json` prints `{file, valid, app, strategy}`, or when invalid
    /// `{file, valid, errors: [{file, line, column, field, message, help}]}` (exit 2).
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

/// The formats of a command whose result has no markdown form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum TextOrJson {
    Text,
    Json,
}

impl ValidateArgs {
    pub(super) fn run(&self, session: &super::session::Session) -> Result<(), Error> {
        let source = self.config.source(session);
        let loaded = source.load(config::Files::ContextAndDockerfile);
        let file = match source.file.to_str() {
            Some(config::locate::STDIN) => std::path::Path::new(config::locate::STDIN_NAME),
            _ => source.file.as_path(),
        };
        if self.format == TextOrJson::Text {
            let config = loaded?;
            out(&format!(
                "{} is valid: app {}, {} strategy\n",
                file.display(),
                config.app,
                config.strategy.as_str()
            ));
            return Ok(());
        }
        let (json, result) = match loaded {
            Ok(config) => (
                serde_json::json!({
                    "file": file.display().to_string(),
                    "valid": true,
                    "app": config.app,
                    "strategy": config.strategy.as_str(),
                }),
                Ok(()),
            ),
            Err(e) => (
                serde_json::json!({
                    "file": file.display().to_string(),
                    "valid": false,
                    "errors": e.to_json(),
                }),
                Err(Error::ConfigReported(e)),
            ),
        };
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&json).expect("JSON serializes")
        ));
        result
    }
}

//! Argument groups several subcommands share, declared once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config;
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct ConfigArgs {
    /// The config file, or `-` to read it from standard input (its relative paths are then
    /// relative to the current directory) [default: hoist.yaml in the current directory or
    /// the nearest parent, up to the git repository's root]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

impl ConfigArgs {
    /// The file (found, when `--file` is not given: `--verbose` says which), with the
    /// environment the command line selects (`-e`).
    pub(super) fn source(&self, session: &super::session::Session) -> config::Source {
        let file = if let Some(file) = &self.file {
            file.clone()
        } else {
            let found = std::env::current_dir()
                .ok()
                .and_then(|dir| config::locate::discover(&dir));
            if let Some(found) = &found {
                session.verbose(&format!("config: {}", found.display()));
            }
            found.unwrap_or_else(|| PathBuf::from(config::DEFAULT_FILE))
        };
        config::Source {
            file,
            environment: session.environment().map(str::to_owned),
        }
    }
}

#[derive(Debug, Args)]
pub(super) struct FormatArg {
    /// Output format of the result (and of the plan or script with --dry-run).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub(super) struct LockWaitArgs {
    /// When another deploy holds the fleet-wide lock, wait up to this long for it (`5m`)
    /// instead of failing at once (a stale lock fails at once all the same).
    #[arg(long, value_name = "DURATION", value_parser = lock_wait, conflicts_with = "local")]
    pub lock_wait: Option<Duration>,
}

/// `--lock-wait 5m`: a duration as the config writes them.
fn lock_wait(text: &str) -> Result<Duration, String> {
    config::duration::parse(text)
}

#[derive(Debug, Args)]
pub(super) struct TransportArgs {
    /// This machine is the host (the local transport, its Docker engine) instead of the
    /// EC2 targets over SSM.
    #[arg(long)]
    pub local: bool,
}

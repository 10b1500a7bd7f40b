//! Argument groups several subcommands share, declared once.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::config;
use crate::plan::Format;

#[derive(Debug, Args)]
pub(super) struct ConfigArgs {
    /// The config file.
    #[arg(short = 'f', long = "file", default_value = config::DEFAULT_FILE)]
    pub file: PathBuf,
}

impl ConfigArgs {
    /// The file, with the environment the command line selects (`-e`).
    pub(super) fn source(&self, session: &super::session::Session) -> config::Source {
        config::Source {
            file: self.file.clone(),
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

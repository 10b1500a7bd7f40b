//! The one error type of the world's command-line side.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("a world is already up in {0} (run `hoist-fleet down --dir {0}` first)")]
    AlreadyUp(PathBuf),
    #[error("no world in {0} (missing world.json)")]
    NoWorld(PathBuf),
    #[error("bad state file {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("timed out after {secs}s waiting for {what}")]
    Timeout { what: String, secs: u64 },
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("this must run as root (it creates namespaces, links and mounts)")]
    NotRoot,
    #[error("admin request failed: {0}")]
    Admin(String),
}

impl FleetError {
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FleetError {
        let context = context.into();
        move |source| FleetError::Io { context, source }
    }
}

pub type Result<T> = std::result::Result<T, FleetError>;

//! What ends a command early: every error the use cases return, and the exit code each
//! means (0 ok, 1 deploy failed, 2 bad input or config, 3 the fleet lock is held, 130
//! interrupted).

use std::path::PathBuf;

use super::steps::DeployError;
use crate::config::ConfigError;
use crate::domain::secrets::SecretError;
use crate::ecr::EcrError;
use crate::lock::LockError;
use crate::plan;
use crate::revision::RevisionError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A config error already reported on stdout (`validate --format json`).
    #[error(transparent)]
    ConfigReported(ConfigError),
    #[error(transparent)]
    Revision(#[from] RevisionError),
    /// The build context could not be read (for its digest).
    #[error(transparent)]
    Context(#[from] crate::image::ContextError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Deploy(#[from] DeployError),
    #[error("cannot connect to the Docker engine: {0}")]
    Docker(bollard::errors::Error),
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Preflight(crate::transport::ssm::SsmError),
    #[error("deploy failed")]
    Failed,
    #[error("interrupted {0}")]
    Interrupted(&'static str),
    #[error("--to `{0}` is not a release id (letters, digits, _ . -, at most 64)")]
    BadTo(String),
    #[error("{0} of {1} target(s) could not be read")]
    Unread(usize, usize),
    #[error("cannot read {}: {cause}", path.display())]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    PlanFile(#[from] plan::ReadError),
    #[error(
        "--out saves a plan for review, and a reviewed SSM plan names the instances it was \
         reviewed for: add --resolve-targets (it asks SSM, with AWS credentials)"
    )]
    OutNeedsTargets,
    #[error(
        "no AWS region: set `region:` in the config, or AWS_REGION (or a profile's region) \
         where hoist runs; nothing was changed"
    )]
    NoRegion,
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("--target {target} is not one of the targets: {}", targets.join(", "))]
    NotATarget {
        target: String,
        targets: Vec<String>,
    },
    #[error("the command failed on {0} of {1} target(s)")]
    ExecFailed(usize, usize),
    #[error("the app was not removed from {0} of {1} target(s)")]
    NotRemoved(usize, usize),
    #[error("{0} check(s) failed (the table says which and why)")]
    DoctorFailed(usize),
    #[error(
        "hoist remove asks before it removes anything, and standard input is not a terminal: \
         pass --yes to remove without asking (nothing was changed)"
    )]
    NeedsYes,
}

impl Error {
    /// The exit code a command that ended in this error exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_)
            | Error::ConfigReported(_)
            | Error::Revision(_)
            | Error::Context(_)
            | Error::Secret(_)
            | Error::Plan(_)
            | Error::Write { .. }
            | Error::BadTo(_)
            | Error::Read { .. }
            | Error::PlanFile(_)
            | Error::OutNeedsTargets
            | Error::NotATarget { .. }
            | Error::NeedsYes
            | Error::NoRegion
            | Error::Deploy(
                DeployError::Plan(_)
                | DeployError::BadImage(..)
                | DeployError::Reviewed(_)
                | DeployError::TagMoved { .. }
                | DeployError::Ecr(EcrError::MutableRepository { .. } | EcrError::BadRecord { .. }),
            ) => 2,
            Error::Interrupted(_) | Error::Lock(LockError::Interrupted(_)) => 130,
            Error::Lock(e) if e.is_contention() => 3,
            Error::Deploy(_)
            | Error::Docker(_)
            | Error::Preflight(_)
            | Error::Unread(..)
            | Error::ExecFailed(..)
            | Error::NotRemoved(..)
            | Error::DoctorFailed(_)
            | Error::Lock(_)
            | Error::Failed => 1,
        }
    }
}

/// Every error prints its cause once (see the crate's documentation on errors).
#[cfg(test)]
mod tests;

//! The source revision a deploy is built from: the git commit of the build context.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// Full commit SHA.
    pub sha: String,
    /// True when tracked files differ from the commit (the image may not match the SHA).
    pub dirty: bool,
}

impl Revision {
    /// The default release id: 12 hex digits of the commit, `-dirty` when the tree was.
    pub fn release_id(&self) -> String {
        let short = &self.sha[..self.sha.len().min(12)];
        if self.dirty {
            format!("{short}-dirty")
        } else {
            short.to_owned()
        }
    }

    /// The default image tag: the full SHA, `-dirty` when the tree was.
    pub fn default_tag(&self) -> String {
        if self.dirty {
            format!("{}-dirty", self.sha)
        } else {
            self.sha.clone()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error(
        "{} is not inside a git repository, so hoist cannot name the release and image tag \
         after a commit; put the app under git (`git init && git add -A && git commit`)",
        dir.display()
    )]
    NotGit { dir: std::path::PathBuf },
    #[error("cannot run git: {0}")]
    Git(#[from] std::io::Error),
}

/// Reads HEAD and whether tracked files are modified, in the repository holding `dir`.
pub fn resolve(dir: &Path) -> Result<Revision, RevisionError> {
    let head = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "HEAD"])
        .output()?;
    if !head.status.success() {
        return Err(RevisionError::NotGit {
            dir: dir.to_path_buf(),
        });
    }
    let sha = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--untracked-files=no", "--", "."])
        .output()?;
    let dirty = !status.status.success() || !status.stdout.is_empty();
    Ok(Revision { sha, dirty })
}

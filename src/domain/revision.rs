//! The source revision a deploy is built from: the git commit of the build context (read by
//! [`crate::revision::resolve`]).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revision {
    /// Full commit SHA.
    pub sha: String,
    /// True when tracked files differ from the commit (the image may not match the SHA).
    pub dirty: bool,
    /// The commit's time (RFC 3339): the image's `org.opencontainers.image.created`, so a
    /// rebuild of the same commit gives the same image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    /// Where the source lives (`GITHUB_SERVER_URL/GITHUB_REPOSITORY`, else the `origin`
    /// remote): the image's `org.opencontainers.image.source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Revision {
    /// A commit of a clean tree, with nothing more known about it.
    pub fn clean(sha: &str) -> Revision {
        Revision {
            sha: sha.to_owned(),
            dirty: false,
            committed_at: None,
            source: None,
        }
    }

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

//! The source revision a deploy is built from: the git commit of the build context (read by
//! [`crate::revision::resolve`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an unknown revision's `sha` says.
pub const UNKNOWN: &str = "unknown";

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

    /// No commit: `--release` or `--image` was given where git has none to read (no
    /// repository, or one without commits). Plans show the revision as `unknown`; the image
    /// gets no revision label and is tagged with the release id.
    pub fn unknown() -> Revision {
        Revision::clean(UNKNOWN)
    }

    /// Whether a commit is known (not [`Revision::unknown`]).
    pub fn is_known(&self) -> bool {
        self.sha != UNKNOWN
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

/// The release id an image pinned by digest names when there is no commit: the digest's
/// first 12 hex digits (`…@sha256:0123456789ab…` → `0123456789ab`).
pub fn image_release_id(uri: &str) -> Option<String> {
    let (_, hex) = uri.split_once("@sha256:")?;
    let short = hex.get(..12)?;
    short
        .bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| short.to_owned())
}

/// What a reviewed plan binds its source by: the content, never the commit id (a squash
/// merge, a merge commit and a rebase of the reviewed tree are new commits of the same
/// tree).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDigest {
    /// The git tree of the checkout's HEAD (`git rev-parse HEAD^{tree}`): every tracked file.
    pub tree: String,
    /// The sha256 of the build context as Docker receives it (what `.dockerignore` lets
    /// through, tracked or not): each file's path, kind, executable bit and content.
    pub context_sha256: String,
    /// How many files the build context holds.
    pub context_files: usize,
    /// Saved for review only: each tracked path's git blob id, so that a refusal names the
    /// paths that differ even where the reviewed tree's objects are not fetched.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Saved for review only: each build-context path's content digest (sha256, 16 hex).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// How two path listings differ: changed, added and removed paths, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PathChanges {
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl PathChanges {
    /// What changed from `before` to `after` (path → content id).
    pub fn between(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Self {
        let mut changes = PathChanges::default();
        for (path, id) in after {
            match before.get(path) {
                None => changes.added.push(path.clone()),
                Some(old) if old != id => changes.changed.push(path.clone()),
                Some(_) => {}
            }
        }
        changes.removed = before
            .keys()
            .filter(|p| !after.contains_key(*p))
            .cloned()
            .collect();
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }

    /// `changed a, b; added c; removed d`, at most `most` paths named per kind.
    pub fn describe(&self, most: usize) -> String {
        let mut parts = Vec::new();
        for (what, paths) in [
            ("changed", &self.changed),
            ("added", &self.added),
            ("removed", &self.removed),
        ] {
            if paths.is_empty() {
                continue;
            }
            let mut named: Vec<&str> = paths.iter().take(most).map(String::as_str).collect();
            let more = paths.len().saturating_sub(most);
            let more = (more > 0).then(|| format!("and {more} more"));
            named.extend(more.as_deref());
            parts.push(format!("{what} {}", named.join(", ")));
        }
        parts.join("; ")
    }
}

//! The source revision a deploy is built from: the git commit of the build context.

use std::path::Path;
use std::process::Command;

pub use crate::domain::Revision;

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error(
        "the build context {} (image.context) does not exist or is not a directory",
        dir.display()
    )]
    NoDirectory { dir: std::path::PathBuf },
    #[error(
        "{} is not inside a git repository, so hoist cannot name the release and image tag \
         after a commit; put the app under git (`git init && git add -A && git commit`)",
        dir.display()
    )]
    NotGit { dir: std::path::PathBuf },
    #[error(
        "the git repository holding {} has no commits yet, so hoist cannot name the release \
         and image tag after one; commit the app (`git add -A && git commit`), or give \
         --release (or --image)",
        dir.display()
    )]
    NoCommits { dir: std::path::PathBuf },
    #[error(
        "git refuses the repository holding {}: it detected dubious ownership (the \
         repository belongs to another user than the one running hoist, common as root in a \
         CI container); if you trust it, run `git config --global --add safe.directory {}`\
         \n  git said: {reason}",
        dir.display(),
        repository.display()
    )]
    DubiousOwnership {
        dir: std::path::PathBuf,
        repository: std::path::PathBuf,
        reason: String,
    },
    #[error("git cannot read the repository holding {}: {reason}", dir.display())]
    GitSaid {
        dir: std::path::PathBuf,
        reason: String,
    },
    #[error("git named HEAD `{0}`, which is not a commit id (40 or 64 hex digits)")]
    BadHead(String),
    #[error("cannot run git: {0}")]
    Git(std::io::Error),
}

/// Not `#[from]`: that would make the error also the [`source`](std::error::Error::source)
/// of a message that already says it (see the crate's documentation on errors).
impl From<std::io::Error> for RevisionError {
    fn from(e: std::io::Error) -> Self {
        RevisionError::Git(e)
    }
}

/// What git sees of hoist's environment: enough to find its config and the repository,
/// never the rest (hoist's environment holds the deploy's secrets, and a child process's
/// environment is readable in `/proc` by anyone who can see the process).
const GIT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// `git -C dir …` in a minimal environment ([`GIT_ENV`]) and the C locale, taking no
/// optional lock: hoist only reads, and `git status` would otherwise rewrite the index, as
/// root's file in a user's checkout when the deploy runs under sudo.
fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .envs(
            GIT_ENV
                .iter()
                .filter_map(|&name| Some((name, std::env::var_os(name)?))),
        )
        .env("LC_ALL", "C")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .arg("-C")
        .arg(dir);
    cmd
}

/// Reads HEAD and whether tracked files are modified, in the repository holding `dir`.
pub fn resolve(dir: &Path) -> Result<Revision, RevisionError> {
    if !dir.is_dir() {
        // git would only say "not a git repository", which sends people looking elsewhere.
        return Err(RevisionError::NoDirectory {
            dir: dir.to_path_buf(),
        });
    }
    let head = git(dir).args(["rev-parse", "--verify", "HEAD"]).output()?;
    if !head.status.success() {
        return Err(diagnose(dir)?);
    }
    let sha = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    if !is_object_id(&sha) {
        return Err(RevisionError::BadHead(sha.escape_default().to_string()));
    }
    let status = git(dir)
        .args(["status", "--porcelain", "--untracked-files=no", "--", "."])
        .output()?;
    let dirty = !status.status.success() || !status.stdout.is_empty();
    let git_out = |args: &[&str]| -> Option<String> {
        let out = git(dir).args(args).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let committed_at = git_out(&["show", "-s", "--format=%cI", "HEAD"]);
    let source = match (
        std::env::var("GITHUB_SERVER_URL"),
        std::env::var("GITHUB_REPOSITORY"),
    ) {
        (Ok(server), Ok(repo)) if !server.is_empty() && !repo.is_empty() => {
            Some(format!("{server}/{repo}"))
        }
        _ => git_out(&["config", "--get", "remote.origin.url"]).map(|u| strip_userinfo(&u)),
    };
    Ok(Revision {
        sha,
        dirty,
        committed_at,
        source,
    })
}

/// Why HEAD cannot be read in `dir`, in git's own words where it has some: no repository,
/// one git refuses (dubious ownership), or one without commits.
fn diagnose(dir: &Path) -> Result<RevisionError, RevisionError> {
    let out = git(dir).args(["rev-parse", "--git-dir"]).output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    let reason = said
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .trim_start_matches("fatal: ")
        .to_owned();
    let dir = dir.to_path_buf();
    Ok(if out.status.success() {
        RevisionError::NoCommits { dir }
    } else if reason.contains("dubious ownership") {
        // `… in repository at '/path'`: the path to trust, as git's own hint names it.
        let repository = reason
            .split_once(" at '")
            .and_then(|(_, rest)| rest.strip_suffix('\''))
            .map_or_else(|| dir.clone(), std::path::PathBuf::from);
        RevisionError::DubiousOwnership {
            dir,
            repository,
            reason,
        }
    } else if reason.is_empty() || reason.starts_with("not a git repository") {
        RevisionError::NotGit { dir }
    } else {
        RevisionError::GitSaid { dir, reason }
    })
}

/// Whether `err` means there is no commit to read (no repository, one git refuses, or one
/// without commits), as opposed to git failing to run or answering nonsense.
pub fn no_commit(err: &RevisionError) -> bool {
    matches!(
        err,
        RevisionError::NotGit { .. }
            | RevisionError::NoCommits { .. }
            | RevisionError::DubiousOwnership { .. }
            | RevisionError::GitSaid { .. }
    )
}

/// The git tree of HEAD in the repository holding `dir`, and, with `listing`, each tracked
/// path's blob id (the whole repository, whatever `dir` is).
pub fn tree(
    dir: &Path,
    listing: bool,
) -> Result<(String, std::collections::BTreeMap<String, String>), RevisionError> {
    let out = git(dir)
        .args(["rev-parse", "--verify", "HEAD^{tree}"])
        .output()?;
    let tree = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !is_object_id(&tree) {
        return Err(RevisionError::NotGit {
            dir: dir.to_path_buf(),
        });
    }
    let mut files = std::collections::BTreeMap::new();
    if listing {
        let out = git(dir)
            .args(["ls-tree", "-r", "-z", "--full-tree", "HEAD"])
            .output()?;
        if !out.status.success() {
            return Err(RevisionError::NotGit {
                dir: dir.to_path_buf(),
            });
        }
        // `<mode> <type> <id>\t<path>\0`
        for entry in out.stdout.split(|&b| b == 0).filter(|e| !e.is_empty()) {
            let entry = String::from_utf8_lossy(entry);
            if let Some((meta, path)) = entry.split_once('\t') {
                let mut meta = meta.split(' ');
                let mode = meta.next().unwrap_or_default();
                let id = meta.nth(1).unwrap_or_default();
                files.insert(path.to_owned(), format!("{mode} {id}"));
            }
        }
    }
    Ok((tree, files))
}

/// A full SHA-1 or SHA-256 object id, as `git rev-parse` prints it: the release id and the
/// image tag are cut from it, and plans print it.
fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Drops credentials from a remote URL (`https://user:token@host/x` → `https://host/x`).
fn strip_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host))
                if !rest[..rest.find('/').unwrap_or(rest.len())].is_empty()
                    && rest.find('@') < rest.find('/') =>
            {
                format!("{scheme}://{host}")
            }
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_reported_as_missing_not_as_outside_git() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("no-such-app");
        let err = resolve(&gone).unwrap_err();
        assert!(matches!(err, RevisionError::NoDirectory { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("does not exist") && text.contains("no-such-app"),
            "{text}"
        );
        assert!(!text.contains("git repository"), "{text}");
    }

    #[test]
    fn only_a_full_hex_object_id_is_a_revision() {
        assert!(is_object_id(&"a1".repeat(20)));
        assert!(is_object_id(&"0f".repeat(32)));
        assert!(!is_object_id("abc123"));
        assert!(!is_object_id(&format!("{}\u{1b}", "a".repeat(39))));
        assert!(!is_object_id(&"g".repeat(40)));
    }

    /// git runs with hoist's environment filtered down to what git needs: a variable of
    /// hoist's that is not git's (cargo sets `CARGO_MANIFEST_DIR` for this test; in a deploy
    /// it would be a secret) is not in the environment of git or anything git starts.
    #[test]
    fn git_sees_only_what_it_needs_of_hoists_environment() {
        assert!(
            std::env::var_os("CARGO_MANIFEST_DIR").is_some(),
            "run by cargo"
        );
        let dir = tempfile::tempdir().unwrap();
        let out = git(dir.path())
            .args(["-c", "alias.showenv=!env", "showenv"])
            .output()
            .expect("git runs");
        let env = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{env}");
        assert!(env.lines().any(|l| l.starts_with("PATH=")), "{env}");
        assert!(env.lines().any(|l| l == "LC_ALL=C"), "{env}");
        assert!(!env.contains("CARGO_MANIFEST_DIR"), "{env}");
    }

    /// Reading the revision leaves the repository as it was: `git status` refreshes a stale
    /// index by writing it again, which under sudo leaves root's file in a user's checkout.
    #[test]
    fn resolving_the_revision_does_not_rewrite_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(root)
                .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
        };
        run(&["init", "-q"]);
        std::fs::write(root.join("a.txt"), "a\n").unwrap();
        run(&["add", "a.txt"]);
        run(&["commit", "-q", "-m", "a"]);
        // The file's stat data moves on, its content does not: the index is stale.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(root.join("a.txt"), "a\n").unwrap();
        let index = root.join(".git/index");
        let before = std::fs::read(&index).unwrap();
        resolve(root).unwrap();
        assert_eq!(
            std::fs::read(&index).unwrap(),
            before,
            "the index is unchanged"
        );
    }
}

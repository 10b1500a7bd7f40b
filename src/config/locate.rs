//! Where the config comes from when `--file` does not name a file: `hoist.yaml` in the
//! current directory or the nearest parent (up to the git root), and `-f -`, standard input.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{ConfigError, DEFAULT_FILE, MAX_FILE_BYTES};

/// `-f -`: the config is read from standard input.
pub const STDIN: &str = "-";

/// How a config read from standard input is named in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// `hoist.yaml` in `dir` or the nearest of its parents that has one, as a path relative to
/// `dir` (`hoist.yaml`, `../hoist.yaml`, …). The search stops at the first directory that
/// holds `.git` (the repository's root, searched too) and at the filesystem's root. `None`
/// when there is none: the caller names `hoist.yaml` in its error.
pub fn discover(dir: &Path) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    let mut at = dir;
    loop {
        let candidate = at.join(DEFAULT_FILE);
        if candidate.is_file() {
            return Some(relative.join(DEFAULT_FILE));
        }
        if at.join(".git").exists() {
            return None;
        }
        at = at.parent()?;
        relative.push("..");
    }
}

/// Standard input as config text: at most [`MAX_FILE_BYTES`] of UTF-8. Read once per
/// process (a command may load its config more than once) and kept.
pub(super) fn stdin_text() -> Result<String, ConfigError> {
    static TEXT: OnceLock<Result<String, String>> = OnceLock::new();
    let read = || {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
        }
        String::from_utf8(bytes).map_err(|e| {
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            )
        })
    };
    TEXT.get_or_init(read)
        .clone()
        .map_err(|cause| ConfigError::Read {
            path: PathBuf::from(STDIN_NAME),
            cause: std::io::Error::new(std::io::ErrorKind::InvalidData, cause),
        })
}

#[cfg(test)]
mod tests {
    use super::discover;

    #[test]
    fn the_nearest_hoist_yaml_up_to_the_git_root() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("repo");
        let deep = repo.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        // Above the repository's root: never found from inside it.
        std::fs::write(root.path().join("hoist.yaml"), "app: outside\n").unwrap();
        assert_eq!(discover(&deep), None);
        std::fs::write(repo.join("hoist.yaml"), "app: web\n").unwrap();
        assert_eq!(discover(&deep), Some("../../hoist.yaml".into()));
        assert_eq!(discover(&repo), Some("hoist.yaml".into()));
        std::fs::write(deep.join("hoist.yaml"), "app: web\n").unwrap();
        assert_eq!(discover(&deep), Some("hoist.yaml".into()));
    }
}

//! The build context as Docker's CLI sends it: a tar of the context directory, minus what
//! `.dockerignore` excludes (with `!` exceptions, `**`, and parent-directory matches; the
//! last matching pattern wins). The Dockerfile and `.dockerignore` are always sent.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("build context {} does not exist or is not a directory", .0.display())]
    Missing(PathBuf),
    #[error("Dockerfile {} not found in the build context", .0.display())]
    NoDockerfile(PathBuf),
    #[error("{}:{line}: bad .dockerignore pattern `{pattern}`: {cause}", file.display())]
    Pattern {
        file: PathBuf,
        line: usize,
        pattern: String,
        cause: globset::Error,
    },
    #[error("reading the build context failed at {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

struct Rule {
    matcher: GlobMatcher,
    /// Matches everything below a matching directory too.
    below: GlobMatcher,
    include: bool,
}

/// Parsed `.dockerignore` rules.
#[derive(Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    pub fn parse(text: &str, file: &Path) -> Result<Self, ContextError> {
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pattern = clean(pattern);
            if pattern.is_empty() {
                continue;
            }
            let glob = |p: &str| -> Result<GlobMatcher, ContextError> {
                GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .map(|g: Glob| g.compile_matcher())
                    .map_err(|cause| ContextError::Pattern {
                        file: file.to_path_buf(),
                        line: i + 1,
                        pattern: raw.to_owned(),
                        cause,
                    })
            };
            rules.push(Rule {
                matcher: glob(&pattern)?,
                below: glob(&format!("{pattern}/**"))?,
                include,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `rel` (relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, rel: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.matcher.is_match(rel) || rule.below.is_match(rel) {
                excluded = !rule.include;
            }
        }
        excluded
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.include)
    }
}

/// Docker cleans patterns like Go's `filepath.Clean` and drops a leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// [`pack`] on tokio's blocking pool: walking the tree, matching `.dockerignore` and writing
/// the tar are disk and CPU work that must not hold a runtime worker (the progress display,
/// Ctrl-C and every other task run there). Dropping the future leaves the packing to finish
/// on its thread and its result unused. A panic while packing is resumed here.
pub async fn pack_blocking(
    context: &Path,
    dockerfile: &str,
) -> Result<(Vec<u8>, usize), ContextError> {
    let (context, dockerfile) = (context.to_path_buf(), dockerfile.to_owned());
    tokio::task::spawn_blocking(move || pack(&context, &dockerfile))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Tars the context directory. Returns the archive and the number of files in it. Blocking:
/// from async code, use [`pack_blocking`].
pub fn pack(context: &Path, dockerfile: &str) -> Result<(Vec<u8>, usize), ContextError> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    let count = walk(context, dockerfile, |path, rel_path, _| {
        tar.append_path_with_name(path, rel_path).map_err(io(path))
    })?;
    let bytes = tar.into_inner().map_err(io(context))?;
    Ok((bytes, count))
}

/// The build context's content digest: the sha256 over each entry Docker would receive (its
/// path, kind, executable bit and content, or a link's target), in order, and each file's
/// own digest (16 hex digits) by path. Unlike the tar it does not depend on times or
/// owners: two checkouts of the same content digest alike. Blocking.
pub fn digest(
    context: &Path,
    dockerfile: &str,
) -> Result<(String, usize, std::collections::BTreeMap<String, String>), ContextError> {
    use sha2::{Digest as _, Sha256};
    let mut all = Sha256::new();
    let mut files = std::collections::BTreeMap::new();
    let count = walk(context, dockerfile, |path, rel_path, kind| {
        let rel = rel_path.to_string_lossy().replace('\\', "/");
        let (tag, content) = if kind.is_symlink() {
            let target = std::fs::read_link(path).map_err(io(path))?;
            ("l", target.to_string_lossy().into_owned().into_bytes())
        } else if kind.is_dir() {
            ("d", Vec::new())
        } else {
            let executable = {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(path)
                    .map_err(io(path))?
                    .permissions()
                    .mode();
                mode & 0o111 != 0
            };
            let tag = if executable { "x" } else { "f" };
            (tag, std::fs::read(path).map_err(io(path))?)
        };
        let own = crate::domain::sha256_hex(&content);
        all.update(format!("{tag} {} {own}\n", rel.len()));
        all.update(rel.as_bytes());
        all.update(b"\n");
        if tag != "d" {
            files.insert(rel, format!("{tag} {}", &own[..16]));
        }
        Ok(())
    })?;
    let sum = all.finalize().iter().fold(String::new(), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    });
    Ok((sum, count, files))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + use<> {
    let path = path.to_path_buf();
    move |cause| ContextError::Io { path, cause }
}

/// Visits what Docker receives of the context directory (what `.dockerignore` lets through,
/// the Dockerfile and `.dockerignore` always) in name order, with each entry's path, its
/// path in the context and its kind; returns the number of files (not directories).
fn walk(
    context: &Path,
    dockerfile: &str,
    mut visit: impl FnMut(&Path, &Path, std::fs::FileType) -> Result<(), ContextError>,
) -> Result<usize, ContextError> {
    if !context.is_dir() {
        return Err(ContextError::Missing(context.to_path_buf()));
    }
    let dockerfile_rel = clean(dockerfile);
    if !context.join(&dockerfile_rel).is_file() {
        return Err(ContextError::NoDockerfile(context.join(dockerfile)));
    }
    let ignore_path = context.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&ignore_path) {
        Ok(text) => DockerIgnore::parse(&text, &ignore_path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(io(&ignore_path)(e)),
    };
    let always = |rel: &str| rel == dockerfile_rel || rel == ".dockerignore";

    let mut count = 0;
    let mut walker = walkdir::WalkDir::new(context)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let entry = entry.map_err(|e| ContextError::Io {
            path: e.path().unwrap_or(context).to_path_buf(),
            cause: e.into(),
        })?;
        let rel_path = entry
            .path()
            .strip_prefix(context)
            .expect("below the context");
        if rel_path.as_os_str().is_empty() {
            continue;
        }
        let rel = rel_path.to_string_lossy().replace('\\', "/");
        if ignore.excludes(&rel) && !always(&rel) {
            // Nothing below an excluded directory can come back without a `!` rule.
            if entry.file_type().is_dir() && !ignore.has_exceptions() {
                walker.skip_current_dir();
            }
            continue;
        }
        visit(entry.path(), rel_path, entry.file_type())?;
        if !entry.file_type().is_dir() {
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text, Path::new(".dockerignore")).unwrap()
    }

    #[test]
    fn docker_semantics() {
        let ig = rules("# comment\n*.md\n!README.md\nsecrets/\n/build\n**/*.tmp\n");
        assert!(ig.excludes("NOTES.md"));
        assert!(!ig.excludes("README.md"));
        assert!(!ig.excludes("docs/NOTES.md"), "* does not cross /");
        assert!(ig.excludes("secrets"));
        assert!(ig.excludes("secrets/key.pem"), "below an excluded dir");
        assert!(ig.excludes("build/out.bin"));
        assert!(ig.excludes("a/b/c.tmp"));
        assert!(!ig.excludes("src/main.rs"));
    }

    #[test]
    fn packs_context_without_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "secrets\nDockerfile\n").unwrap();
        std::fs::create_dir(root.join("secrets")).unwrap();
        std::fs::write(root.join("secrets/key"), "k").unwrap();
        std::fs::write(root.join("app.txt"), "hi").unwrap();
        let (bytes, count) = pack(root, "Dockerfile").unwrap();
        let mut names: Vec<String> = tar::Archive::new(bytes.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app.txt"]);
        assert_eq!(count, 3);
    }

    /// The digest is the content Docker receives: not times, not what `.dockerignore`
    /// leaves out; a changed byte, a new file or an executable bit changes it.
    #[test]
    fn the_digest_follows_content_not_times() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join(".dockerignore"), "secrets\n").unwrap();
        std::fs::write(root.join("app.sh"), "hi").unwrap();
        let (first, count, files) = digest(root, "Dockerfile").unwrap();
        assert_eq!(count, 3);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            [".dockerignore", "Dockerfile", "app.sh"]
        );
        let file = std::fs::File::options()
            .write(true)
            .open(root.join("app.sh"))
            .unwrap();
        file.set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        std::fs::create_dir(root.join("secrets")).unwrap();
        std::fs::write(root.join("secrets/key"), "k").unwrap();
        assert_eq!(digest(root, "Dockerfile").unwrap().0, first);

        std::fs::write(root.join("app.sh"), "hj").unwrap();
        let (changed, _, by_path) = digest(root, "Dockerfile").unwrap();
        assert_ne!(changed, first);
        assert_ne!(by_path["app.sh"], files["app.sh"]);
        std::fs::write(root.join("app.sh"), "hi").unwrap();
        std::fs::set_permissions(root.join("app.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        assert_ne!(digest(root, "Dockerfile").unwrap().0, first);
    }

    /// Off the runtime: on a current-thread runtime, waiting for the packing frees the one
    /// worker (a task spawned before gets to run; packed inline, it would not have), and the
    /// archive is the same as [`pack`]'s.
    #[tokio::test(flavor = "current_thread")]
    async fn pack_blocking_runs_off_the_runtime_worker() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(root.join("app.txt"), "hi").unwrap();
        // Big enough that packing is still under way when the runtime first looks (a tiny
        // context could be packed before that, and the task spawned before never run).
        std::fs::write(root.join("big.bin"), vec![7u8; 32 << 20]).unwrap();
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let ticker = tokio::spawn(async move {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let (bytes, count) = pack_blocking(root, "Dockerfile").await.unwrap();
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        ticker.await.unwrap();
        assert_eq!((bytes, count), pack(root, "Dockerfile").unwrap());
        assert!(matches!(
            pack_blocking(&root.join("nope"), "Dockerfile").await,
            Err(ContextError::Missing(_))
        ));
    }

    #[test]
    fn missing_dockerfile_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            pack(dir.path(), "Dockerfile"),
            Err(ContextError::NoDockerfile(_))
        ));
    }
}

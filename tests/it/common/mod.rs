//! Shared helpers for hoist's integration tests: run the real binary, make scratch apps;
//! `fleet`: the emulated AWS fleet as the tests drive it; `action`: a runner for action.yml.
#![allow(dead_code)]

pub(crate) mod action;
pub(crate) mod fleet;

use std::ffi::OsStr;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The hoist binary, with none of the GitHub Actions runner's variables a test run inside
/// a workflow would pass on (tests that want GitHub Actions mode set their own).
pub(crate) fn hoist() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    for name in [
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_ENV",
        "RUNNER_TEMP",
    ] {
        cmd.env_remove(name);
    }
    cmd
}

/// A run of the hoist binary, set up fluently and checked fluently:
///
/// ```ignore
/// Hoist::new()
///     .current_dir(&root)
///     .args(["plan", "--format", "json"])
///     .env("DOCKER_HOST", &trap.url)
///     .run()
///     .success()
///     .stdout_has("\"schema\"")
///     .stderr_lacks("warning");
/// ```
pub(crate) struct Hoist {
    command: Command,
    timeout: Option<Duration>,
}

impl Default for Hoist {
    fn default() -> Self {
        Self::new()
    }
}

impl Hoist {
    pub(crate) fn new() -> Self {
        Hoist {
            command: hoist(),
            timeout: None,
        }
    }

    pub(crate) fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub(crate) fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub(crate) fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.command.env_remove(key);
        self
    }

    /// What hoist reads on stdin (by default nothing).
    pub(crate) fn stdin(mut self, from: impl Into<Stdio>) -> Self {
        self.command.stdin(from);
        self
    }

    /// Where hoist's stdout goes instead of a pipe the run reads (then `Run::stdout` is empty).
    pub(crate) fn stdout(mut self, to: impl Into<Stdio>) -> Self {
        self.command.stdout(to);
        self
    }

    /// Where hoist's stderr goes instead of a pipe the run reads (then `Run::stderr` is empty).
    pub(crate) fn stderr(mut self, to: impl Into<Stdio>) -> Self {
        self.command.stderr(to);
        self
    }

    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Fails the test (killing hoist) if it has not finished within `limit`: a run that
    /// hangs fails its test, not the whole suite.
    pub(crate) fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Runs hoist to the end. Its arguments and directory go to the test's captured output,
    /// which the test harness shows when the test fails.
    pub(crate) fn run(mut self) -> Run {
        eprintln!(
            "running hoist {:?} in {}",
            self.command.get_args().collect::<Vec<_>>(),
            self.command
                .get_current_dir()
                .unwrap_or(Path::new("."))
                .display()
        );
        let Some(limit) = self.timeout else {
            return self.command.output().expect("hoist runs").into();
        };
        let mut child = self
            .command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hoist starts");
        // Both pipes are drained while hoist runs: a full pipe would block it.
        let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
        let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("hoist can be waited for") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hoist did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        std::process::Output {
            status,
            stdout: stdout.join().expect("stdout is read"),
            stderr: stderr.join().expect("stderr is read"),
        }
        .into()
    }
}

/// What a run of hoist did.
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Checks on a run. Each panics, showing the exit code and all of stdout and stderr, when
/// the run is not as wanted, and returns the run for the next check.
impl Run {
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\nexit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- end ---",
            self.code, self.stdout, self.stderr
        )
    }

    /// Exit code 0.
    #[track_caller]
    pub(crate) fn success(&self) -> &Self {
        self.code(0)
    }

    #[track_caller]
    pub(crate) fn code(&self, want: i32) -> &Self {
        if self.code != want {
            self.fail(&format!("hoist exited {}, not {want}", self.code));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stdout_has(&self, text: impl AsRef<str>) -> &Self {
        let text = text.as_ref();
        if !self.stdout.contains(text) {
            self.fail(&format!("stdout does not contain {text:?}"));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stdout_lacks(&self, text: impl AsRef<str>) -> &Self {
        let text = text.as_ref();
        if self.stdout.contains(text) {
            self.fail(&format!("stdout contains {text:?}"));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stdout_is_empty(&self) -> &Self {
        if !self.stdout.is_empty() {
            self.fail("stdout is not empty");
        }
        self
    }

    #[track_caller]
    pub(crate) fn stderr_has(&self, text: impl AsRef<str>) -> &Self {
        let text = text.as_ref();
        if !self.stderr.contains(text) {
            self.fail(&format!("stderr does not contain {text:?}"));
        }
        self
    }

    #[track_caller]
    pub(crate) fn stderr_lacks(&self, text: impl AsRef<str>) -> &Self {
        let text = text.as_ref();
        if self.stderr.contains(text) {
            self.fail(&format!("stderr contains {text:?}"));
        }
        self
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| self.fail(&format!("stdout is not JSON: {e}")))
    }
}

/// A fake Docker endpoint: a unix socket nobody answers on. Tests point `DOCKER_HOST` at it
/// and then check that hoist never connected.
pub(crate) struct DockerTrap {
    pub listener: UnixListener,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl DockerTrap {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        DockerTrap {
            listener,
            url: format!("unix://{}", path.display()),
            _dir: dir,
        }
    }

    pub(crate) fn was_called(&self) -> bool {
        self.listener.accept().is_ok()
    }
}

/// Runs `git` in `dir`, panicking with its output on failure.
pub(crate) fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=hoist-test",
            "-c",
            "user.email=test@hoist.invalid",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A scratch directory holding a git repository with the given files committed.
pub(crate) fn repo_with(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "test"]);
    (dir, root)
}

/// A scratch copy of `examples/hello` as a fresh git repository (nothing committed yet).
pub(crate) fn example_app() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(&src).unwrap();
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(root.join(rel)).unwrap();
        } else {
            std::fs::copy(entry.path(), root.join(rel)).unwrap();
        }
    }
    git(&root, &["init", "-q", "-b", "main"]);
    (dir, root)
}

/// Root and a running Docker engine (required in CI, else skipped with a reason), plus the
/// example's base image, made locally by `tests/support/base-image.sh`.
pub(crate) fn docker_with_base_image(also: bool, what: &str) -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    let docker = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !prerequisite(root && docker && also, what) {
        return false;
    }
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/base-image.sh");
    let out = Command::new("bash").arg(&base).output().expect("bash runs");
    assert!(out.status.success(), "base image: {out:?}");
    true
}

/// Whether a prerequisite is there. Without it a test skips with a printed reason on a
/// developer machine, and fails loudly in CI (`CI=true`), where everything must run.
pub(crate) fn prerequisite(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CI requires {what}, and it is missing"
    );
    eprintln!("SKIPPED: {what} is missing on this machine");
    false
}

pub(crate) fn have_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The first run-phase step of a JSON plan (`hoist plan --format json`, or a report's
/// `plan`).
pub(crate) fn run_phase(plan: &serde_json::Value) -> &serde_json::Value {
    plan["steps"]
        .as_array()
        .expect("a plan has steps")
        .iter()
        .find(|s| s["kind"] == "run-phase")
        .expect("a plan runs a phase")
}

//! The local transport: this machine is the host. The script is written to a private file
//! and run by bash, with the secret env lines on its standard input — the same bytes the
//! plan shows, never secrets in the script text or command line.
//!
//! The script runs in its own process group, so a terminal's Ctrl-C (sent to the whole
//! foreground group) reaches only hoist, which decides what the script gets: one SIGTERM
//! (the script rolls back), SIGKILL to the group only after a grace period.
//!
//! The script gets a minimal environment, not hoist's: hoist's environment holds the secret
//! values (that is where they come from), and whatever the script has, every `docker` it
//! runs and its watchdog have too, readable in `/proc/<pid>/environ`. It gets only
//! [`SCRIPT_ENV`] (the same `PATH`, home, temp dir and Docker engine as hoist; the C locale),
//! never a variable named in `env.secret`, and nothing that changes how bash runs it
//! (`BASH_ENV`, `ENV`, `SHELLOPTS`, `BASHOPTS`, `PS4`, exported functions: an inherited
//! `set -x` would print the secret lines). No `AWS_*` variable either: the script talks to
//! AWS only on an instance, through the SSM transport, with the instance's own role; here it
//! never calls AWS, and AWS credentials are secrets of their own.
//!
//! Its file lives in a random private directory (`$TMPDIR/hoist-XXXXXX`, mode 0700) with a
//! `pid` file locked (`flock`) for as long as the hoist that made it lives. Each run first
//! removes the directories whose lock nobody holds: left by a hoist that was `SIGKILLed`.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{Invocation, InvocationStatus, Job, OutputSink, Transport, TransportError};
use crate::domain::outcome;

/// The variables the script gets from hoist's environment, when set (see the module doc).
pub const SCRIPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
];

/// `PATH` for the script when hoist has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bash reads no startup file (and `BASH_ENV` is not in the environment it gets).
const SHELL_ARGS: &[&str] = &["--noprofile", "--norc"];

/// The script's whole environment: [`SCRIPT_ENV`] as `lookup` has them (hoist's own
/// environment in production), less any name `is_secret` claims, with a default `PATH` and
/// the C locale.
pub fn script_env(
    lookup: impl Fn(&str) -> Option<OsString>,
    is_secret: impl Fn(&str) -> bool,
) -> Vec<(&'static str, OsString)> {
    let mut env: Vec<(&'static str, OsString)> = SCRIPT_ENV
        .iter()
        .filter(|name| !is_secret(name))
        .filter_map(|&name| Some((name, lookup(name)?)))
        .collect();
    if !env.iter().any(|(name, _)| *name == "PATH") {
        env.insert(0, ("PATH", DEFAULT_PATH.into()));
    }
    env.extend([("LANG", "C".into()), ("LC_ALL", "C".into())]);
    env
}

/// How long a cancelled or timed-out script gets to roll back after SIGTERM.
const GRACE: Duration = Duration::from_secs(60);

pub struct LocalTransport {
    shell: PathBuf,
}

impl Default for LocalTransport {
    fn default() -> Self {
        LocalTransport {
            shell: PathBuf::from("bash"),
        }
    }
}

impl LocalTransport {
    /// Runs scripts with another interpreter (tests use a wrapper that keeps a copy).
    /// It is started like bash: `SHELL --noprofile --norc SCRIPT`, in the same minimal
    /// environment.
    pub fn with_shell(shell: impl Into<PathBuf>) -> Self {
        LocalTransport {
            shell: shell.into(),
        }
    }
}

pub const TARGET: &str = "local";

#[async_trait]
impl Transport for LocalTransport {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn run(
        &self,
        job: &Job<'_>,
        cancel: CancellationToken,
        sink: &dyn OutputSink,
    ) -> Result<Vec<Invocation>, TransportError> {
        sweep_stale(&std::env::temp_dir());
        let dir = RunDir::create()?;
        let path = dir.path().join("_script.sh");
        write_private(&path, job.script.text.as_bytes())?;

        let env = script_env(
            |name| std::env::var_os(name),
            |name| job.secrets.is_some_and(|s| s.has_name(name)),
        );
        let started = Instant::now();
        let mut child = Command::new(&self.shell)
            .args(SHELL_ARGS)
            .arg(&path)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group: signals to hoist's group (a terminal's Ctrl-C) do not
            // reach it; only `stop` does.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|cause| TransportError::Spawn {
                shell: self.shell.display().to_string(),
                cause,
            })?;

        let mut stdin = child.stdin.take().expect("piped");
        let payload = job
            .secrets
            .map(crate::domain::secrets::SecretEnv::payload)
            .unwrap_or_default();
        let feed = async move {
            // A script that exits early closes the pipe: not our error to report.
            let _ = stdin.write_all(payload.as_bytes()).await;
            let _ = stdin.shutdown().await;
        };
        let stdout = collect(child.stdout.take().expect("piped"), sink, false);
        let stderr = collect(child.stderr.take().expect("piped"), sink, true);

        let pid = child.id();
        let waited = async {
            let status = tokio::select! {
                // A script that already ended is reported as it ended, cancel or not.
                biased;
                status = child.wait() => (status?, InvocationStatus::Success),
                () = cancel.cancelled() => {
                    (stop(&mut child, pid).await?, InvocationStatus::Cancelled)
                }
                () = tokio::time::sleep(job.timeout) => {
                    (stop(&mut child, pid).await?, InvocationStatus::TimedOut)
                }
            };
            Ok::<_, std::io::Error>(status)
        };
        let ((), out, err, waited) = tokio::join!(feed, stdout, stderr, waited);
        // Whatever the script left running in its group goes with it (its watchdog runs in
        // a session of its own and is not hit).
        if let Some(pid) = pid {
            kill_group(pid, libc::SIGKILL);
        }
        drop(dir);
        let (exit, mut status) = waited?;
        let exit_code = exit.code();
        if status == InvocationStatus::Success && exit_code != Some(0) {
            status = InvocationStatus::Failed;
        }
        Ok(vec![Invocation {
            target: TARGET.to_owned(),
            status,
            exit_code,
            // Parsed by deploy, from the output once redacted.
            result: None,
            stdout: out?,
            stderr: err?,
            stdout_truncated: false,
            command_id: None,
            stderr_truncated: false,
            outcome: None,
            duration: started.elapsed(),
        }])
    }
}

/// One SIGTERM to the script (it traps it and rolls back; the commands it runs meanwhile are
/// left alone), then SIGKILL to its whole process group after the grace period.
async fn stop(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pid) = pid {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped yet.
        unsafe {
            libc::kill(pid_t(pid), libc::SIGTERM);
        }
    }
    if let Ok(status) = tokio::time::timeout(GRACE, child.wait()).await {
        status
    } else {
        if let Some(pid) = pid {
            kill_group(pid, libc::SIGKILL);
        }
        child.start_kill()?;
        child.wait().await
    }
}

/// Signals the process group the script leads. Its id stays taken while any member lives,
/// so it cannot name another group then; once the group is empty this finds nothing.
fn kill_group(pgid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals the process group; no memory involved.
    unsafe {
        libc::kill(-pid_t(pgid), signal);
    }
}

/// A child's pid as kill(2) takes it (the kernel's pids fit: at most 2^22).
fn pid_t(pid: u32) -> libc::pid_t {
    libc::pid_t::try_from(pid).expect("a pid fits in pid_t")
}

async fn collect(
    stream: impl AsyncRead + Unpin,
    sink: &dyn OutputSink,
    is_stderr: bool,
) -> std::io::Result<String> {
    let mut lines = BufReader::new(stream).lines();
    let mut all = String::new();
    while let Some(line) = lines.next_line().await? {
        if is_stderr || !line.starts_with(outcome::MARKER) {
            sink.line(TARGET, &line);
        }
        all.push_str(&line);
        all.push('\n');
    }
    Ok(all)
}

const DIR_PREFIX: &str = "hoist-";
/// In every run directory: the owning hoist's pid, locked while that hoist lives.
const PID_FILE: &str = "pid";

/// A run's private directory (random name, 0700), removed when dropped.
struct RunDir {
    dir: tempfile::TempDir,
    /// Holds the `pid` file's lock: released by the kernel when this process ends, however
    /// it ends, which is what tells a later sweep that the directory is stale.
    _lock: File,
}

impl RunDir {
    fn create() -> std::io::Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()?;
        // Locked before it gets its name, so a sweep never sees an unlocked pid file of a
        // live run. (Opened close-on-exec: the script does not inherit the lock.)
        let staged = dir.path().join(".pid");
        let mut lock = create_private(&staged, 0o600)?;
        lock.try_lock().map_err(std::io::Error::other)?;
        writeln!(lock, "{}", std::process::id())?;
        std::fs::rename(&staged, dir.path().join(PID_FILE))?;
        Ok(RunDir { dir, _lock: lock })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Removes the run directories in `base` that a hoist no longer holds: ours (same owner),
/// named `hoist-*`, with a `pid` file whose lock can be taken. A directory without a `pid`
/// file (being created, or not hoist's) or with a held lock is left alone. Returns how many
/// were removed.
fn sweep_stale(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    // SAFETY: geteuid(2) has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut removed = 0;
    for entry in entries.flatten() {
        use std::os::unix::fs::MetadataExt;
        if !entry.file_name().to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let path = entry.path();
        // Not followed: a symlink is not a run directory.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        let Ok(pid_file) = File::open(path.join(PID_FILE)) else {
            continue;
        };
        if pid_file.try_lock().is_ok() && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    create_private(path, 0o700)?.write_all(bytes)
}

fn create_private(path: &Path, mode: u32) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::script::Script;

    struct Quiet;

    impl OutputSink for Quiet {
        fn line(&self, _target: &str, _line: &str) {}
    }

    async fn run_script(text: &str) -> Invocation {
        let script = Script {
            body: "recreate.sh".into(),
            sha256: String::new(),
            text: text.to_owned(),
            modules: Vec::new(),
        };
        let job = Job {
            script: &script,
            secrets: None,
            targets: &[],
            policy: crate::plan::RolloutPolicy {
                max_concurrency: crate::config::Rate::Count(1),
                max_errors: crate::config::Rate::Count(0),
            },
            timeout: Duration::from_secs(30),
            comment: "test".into(),
        };
        let mut out = LocalTransport::default()
            .run(&job, CancellationToken::new(), &Quiet)
            .await
            .unwrap();
        assert_eq!(out[0].exit_code, Some(0), "{out:?}");
        out.remove(0)
    }

    #[tokio::test]
    async fn each_run_gets_its_own_unpredictable_private_directory() {
        let script = "echo \"$0\"; stat -c %a \"$(dirname \"$0\")\"\n";
        let first = run_script(script).await;
        let second = run_script(script).await;
        let (path_1, mode_1) = first.stdout.trim().split_once('\n').unwrap();
        let (path_2, _) = second.stdout.trim().split_once('\n').unwrap();
        assert_ne!(path_1, path_2, "two runs, two names");
        let dir = Path::new(path_1).parent().unwrap();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("hoist-"), "{name}");
        assert!(
            !name.contains(&std::process::id().to_string()),
            "the name does not derive from the pid: {name}"
        );
        assert_eq!(mode_1, "700");
        assert!(!dir.exists(), "removed after the run");
    }

    #[tokio::test]
    async fn a_run_removes_directories_left_by_gone_hoists_and_keeps_live_ones() {
        use std::io::Write;
        let new_dir = || {
            tempfile::Builder::new()
                .prefix(DIR_PREFIX)
                .tempdir()
                .unwrap()
        };
        // Left by a hoist that was SIGKILLed: a pid file nobody holds locked.
        let stale = new_dir().keep();
        writeln!(File::create(stale.join(PID_FILE)).unwrap(), "999999999").unwrap();
        // A live hoist's: its pid file is locked.
        let live = new_dir();
        let held = File::create(live.path().join(PID_FILE)).unwrap();
        held.lock().unwrap();
        // Being created (no pid file yet), or not hoist's at all.
        let unknown = new_dir();

        run_script("true\n").await;

        let left = stale.exists();
        let _ = std::fs::remove_dir_all(&stale);
        assert!(!left, "{} was not swept", stale.display());
        assert!(
            live.path().join(PID_FILE).exists(),
            "a live run's directory is kept"
        );
        assert!(
            unknown.path().exists(),
            "a directory without a pid file is kept"
        );
    }

    #[test]
    fn the_script_env_is_the_engine_path_home_and_temp_dir_never_a_secret_or_shell_setting() {
        let hoists = |name: &str| -> Option<OsString> {
            let value = match name {
                "HOME" => "/root",
                "TMPDIR" => "/var/tmp",
                "DOCKER_HOST" => "unix:///run/other.sock",
                "DOCKER_CONFIG" => "/root/.docker-alt",
                "BASH_ENV" | "ENV" => "/tmp/trace.sh",
                "SHELLOPTS" => "xtrace",
                "PS4" => "+ $HELLO_API_TOKEN ",
                "HELLO_API_TOKEN" | "AWS_SECRET_ACCESS_KEY" => "s3cr3t-value",
                "LANG" => "de_DE.UTF-8",
                _ => return None,
            };
            Some(value.into())
        };
        // HOME is also named in env.secret here: then the script does not get it.
        let env = script_env(hoists, |name| name == "HELLO_API_TOKEN" || name == "HOME");
        let env: Vec<(&str, String)> = env
            .into_iter()
            .map(|(k, v)| (k, v.into_string().unwrap()))
            .collect();
        let expect = |k: &'static str, v: &str| (k, v.to_owned());
        assert_eq!(
            env,
            [
                expect("PATH", DEFAULT_PATH),
                expect("TMPDIR", "/var/tmp"),
                expect("DOCKER_HOST", "unix:///run/other.sock"),
                expect("DOCKER_CONFIG", "/root/.docker-alt"),
                expect("LANG", "C"),
                expect("LC_ALL", "C"),
            ]
        );
        let with_path = script_env(
            |name| (name == "PATH").then(|| "/opt/bin:/usr/bin".into()),
            |_| false,
        );
        assert_eq!(with_path[0], ("PATH", "/opt/bin:/usr/bin".into()));
    }

    #[tokio::test]
    async fn the_script_runs_with_only_the_script_env_and_no_startup_files() {
        // `env` in the script lists what it got, plus what bash itself sets.
        let out =
            run_script("env; echo \"opts=$-\"; shopt -q login_shell && echo login; true\n").await;
        let bash_own = ["PWD", "SHLVL", "_"];
        for line in out.stdout.lines() {
            if let Some(opts) = line.strip_prefix("opts=") {
                assert!(!opts.contains('x'), "no xtrace: {opts}");
                continue;
            }
            assert_ne!(line, "login");
            let name = line.split_once('=').map_or(line, |(k, _)| k);
            assert!(
                SCRIPT_ENV.contains(&name)
                    || ["LANG", "LC_ALL"].contains(&name)
                    || bash_own.contains(&name),
                "the script got {name}: {}",
                out.stdout
            );
        }
        assert!(out.stdout.contains("LC_ALL=C\n"), "{}", out.stdout);
    }

    #[tokio::test]
    async fn the_script_runs_in_a_process_group_of_its_own() {
        let out = run_script("echo \"$$ $(cut -d' ' -f5 /proc/$$/stat)\"\n").await;
        let (pid, pgid) = out.stdout.trim().split_once(' ').unwrap();
        assert_eq!(pid, pgid, "the script leads its own group");
        // SAFETY: getpgrp(2) has no preconditions.
        let ours = unsafe { libc::getpgrp() };
        assert_ne!(pgid, ours.to_string(), "not in the caller's group");
    }
}

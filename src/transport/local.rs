//! The local transport: this machine is the host. The script is written to a private file
//! and run by bash, with the secret env lines on its standard input — the same bytes the
//! plan shows, never secrets in the script text or command line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{Invocation, InvocationStatus, Job, OutputSink, Transport, TransportError};
use crate::outcome;

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
        let dir = tempfile_dir()?;
        let path = dir.join("_script.sh");
        write_private(&path, job.script.text.as_bytes())?;

        let started = Instant::now();
        let mut child = Command::new(&self.shell)
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| TransportError::Spawn {
                shell: self.shell.display().to_string(),
                source,
            })?;

        let mut stdin = child.stdin.take().expect("piped");
        let payload = job.secrets.map(|s| s.payload()).unwrap_or_default();
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
        let _ = std::fs::remove_dir_all(&dir);
        let (exit, mut status) = waited?;
        let exit_code = exit.code();
        if status == InvocationStatus::Success && exit_code != Some(0) {
            status = InvocationStatus::Failed;
        }
        let stdout = out?;
        Ok(vec![Invocation {
            target: TARGET.to_owned(),
            status,
            exit_code,
            result: outcome::parse(&stdout),
            stdout,
            stderr: err?,
            stdout_truncated: false,
            stderr_truncated: false,
            duration: started.elapsed(),
        }])
    }
}

/// SIGTERM (the script traps it and rolls back), then SIGKILL after the grace period.
async fn stop(
    child: &mut tokio::process::Child,
    pid: Option<u32>,
) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pid) = pid {
        // SAFETY: kill(2) on our own child's pid; it has not been reaped yet.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
    match tokio::time::timeout(GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.start_kill()?;
            child.wait().await
        }
    }
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

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for attempt in 0..100u32 {
        let dir = base.join(format!("hoist-{}-{attempt}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "cannot create a private temporary directory",
    ))
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)?;
    f.write_all(bytes)
}

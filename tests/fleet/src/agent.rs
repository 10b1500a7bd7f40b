//! What the SSM agent's runShellScript plugin does on an instance, as the
//! real amazon-ssm-agent does it (CONFORMANCE.md, "Agent", cites the sources):
//! the commands go to `_script.sh` (mode 0700) under the orchestration
//! directory and run as `sh -c <path>` from the agent's own working directory
//! (`/usr/bin`) with the agent's environment (a systemd PATH and the
//! `AWS_SSM_*` variables; no HOME, no region, no credentials: the AWS CLI gets
//! those from the instance metadata service, see `imds.rs`). Stdout and stderr
//! are pipes: the invocation ends when the script has exited and every holder
//! of the pipes has closed them. Output is cut in bytes with the agent's
//! suffix, exit codes map to statuses the agent's way (137, 168, 169, 194),
//! timeouts and cancels SIGKILL the process group, and each instance runs at
//! most 5 commands with 5 more queued.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, RwLock, Semaphore};

use crate::world::{Instance, Kind, World};

/// The agent's exit code for a command it stopped (timeout or cancel): 128 + SIGKILL.
pub const STOPPED_EXIT_CODE: i32 = 137;
/// A script exiting 168 has succeeded (and asks the agent to skip later steps).
pub const EXIT_WITH_SUCCESS: i32 = 168;
/// A script exiting 169 has failed (and asks the agent to skip later steps).
pub const EXIT_WITH_FAILURE: i32 = 169;
/// A script exiting 194 asks the agent to reboot the instance.
pub const REBOOT_EXIT_CODE: i32 = 194;
/// What the agent keeps of stdout and stderr, in bytes, suffix included.
pub const MAX_STDOUT: usize = 24_000;
pub const MAX_STDERR: usize = 8_000;
pub const TRUNCATED_SUFFIX: &str = "--output truncated--";
/// The agent's execution timeout bounds; outside them it uses the default.
pub const MIN_EXECUTION_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_EXECUTION_TIMEOUT: Duration = Duration::from_secs(172_800);
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(3_600);
/// Commands an instance runs at once, and how many more wait for a worker.
pub const COMMAND_WORKERS: usize = 5;
pub const COMMAND_BUFFER: usize = 5;
/// The agent's working directory (its systemd unit's WorkingDirectory).
pub const AGENT_CWD: &str = "/usr/bin";
/// systemd's default PATH for services.
pub const SYSTEMD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const DOCKER_CALLS_LOG: &str = "/run/hoist-fleet-docker-calls.log";

pub struct Job {
    pub command_id: String,
    pub commands: Vec<String>,
    pub working_directory: String,
    pub execution_timeout: Duration,
}

/// The plugin's result status as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Success,
    Failed,
    TimedOut,
    Cancelled,
}

pub struct Outcome {
    pub ending: Ending,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// A document the agent could not run; said in the server's log too.
    fn failed(code: i32, stderr: String) -> Outcome {
        eprintln!("hoist-fleet agent: a document was not run: {stderr}");
        Outcome {
            ending: Ending::Failed,
            code,
            stdout: String::new(),
            stderr,
        }
    }
}

/// The orchestration directory as the instance sees it.
pub fn orchestration_dir(instance_id: &str, command_id: &str) -> String {
    format!(
        "/var/lib/amazon/ssm/{instance_id}/document/orchestration/{command_id}/awsrunShellScript/0.awsrunShellScript"
    )
}

fn host_path(inst: &Instance, inside: &str) -> PathBuf {
    // /var/lib/amazon/ssm is the instance's `ssm` directory.
    let rel = inside.trim_start_matches("/var/lib/amazon/ssm/");
    inst.root.join("ssm").join(rel)
}

/// Where a directory the instance names lives on the host (for checks only).
fn instance_view(inst: &Instance, dir: &str) -> PathBuf {
    if inst.kind == Kind::Full
        && let Some(pid) = inst.holder_pid
    {
        return PathBuf::from(format!("/proc/{pid}/root")).join(dir.trim_start_matches('/'));
    }
    for (sub, target) in crate::instance::BOUND {
        if let Ok(rest) = Path::new(dir).strip_prefix(target) {
            return inst.root.join(sub).join(rest);
        }
    }
    PathBuf::from(dir)
}

/// The mounts that give a process the instance's view of the host (shared by
/// the full instances' namespace holder and the light instances' commands).
pub fn bind_script(with_docker_stub: Option<(&Path, &str)>) -> String {
    let mut s = String::from("set -e\nR=\"$1\"\n");
    for (dir, target) in crate::instance::BOUND {
        s.push_str(&format!("mount --bind \"$R/{dir}\" {target}\n"));
    }
    if let Some((stub, real)) = with_docker_stub {
        s.push_str(&format!("mount --bind '{}' '{}'\n", stub.display(), real));
    }
    s
}

/// NAME and VERSION_ID of the (shared) /etc/os-release, as the agent's
/// platform package reads them.
fn platform() -> (String, String) {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    (field("NAME"), field("VERSION_ID"))
}

/// The script's environment: what systemd gives the agent plus what the
/// agent adds. Nothing else: no HOME, no region, no credentials.
pub fn environment(world: &World, inst: &Instance, command_id: &str) -> Vec<(String, String)> {
    let mut path = String::new();
    if inst.kind == Kind::Light {
        path.push_str(&world.dir.join("run/stub").display().to_string());
        path.push(':');
    }
    if let Some(dir) = &world.aws_cli_dir {
        path.push_str(dir);
        path.push(':');
    }
    path.push_str(SYSTEMD_PATH);
    let (name, version) = platform();
    let mut env = vec![
        ("PATH".to_string(), path),
        ("AWS_SSM_INSTANCE_ID".into(), inst.id.clone()),
        ("AWS_SSM_REGION_NAME".into(), world.region.clone()),
        ("AWS_SSM_PLATFORM_NAME".into(), name),
        ("AWS_SSM_PLATFORM_VERSION".into(), version),
        ("SSM_COMMAND_ID".into(), command_id.to_string()),
        // Kept on purpose: there is no real AWS here, so the SDKs are pointed
        // at the world. Credentials and region are not given.
        ("AWS_ENDPOINT_URL".into(), world.endpoint()),
        // The emulated metadata service answers over a loaded test machine's
        // scheduler, not a hypervisor's: give it the time a real one never needs.
        ("AWS_METADATA_SERVICE_TIMEOUT".into(), "5".into()),
        ("AWS_METADATA_SERVICE_NUM_ATTEMPTS".into(), "3".into()),
    ];
    if inst.kind == Kind::Light {
        // Light instances share the host's network, so 169.254.169.254 is not
        // theirs: the SDK is pointed at the world's metadata listener instead.
        env.push((
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".into(),
            format!("http://{}/{}/", world.imds(), inst.id),
        ));
    }
    env
}

/// The agent's per-instance worker pool: how many commands hold a slot
/// (running or queued), the running ones' permits, and the reboot gate.
struct AgentState {
    admitted: AtomicUsize,
    workers: Semaphore,
    reboot: RwLock<()>,
}

fn agent_state(instance_id: &str) -> Arc<AgentState> {
    static AGENTS: OnceLock<Mutex<HashMap<String, Arc<AgentState>>>> = OnceLock::new();
    let mut map = AGENTS
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .expect("agents");
    map.entry(instance_id.to_string())
        .or_insert_with(|| {
            Arc::new(AgentState {
                admitted: AtomicUsize::new(0),
                workers: Semaphore::new(COMMAND_WORKERS),
                reboot: RwLock::new(()),
            })
        })
        .clone()
}

/// Gives the slot back when a command is done (however it ends).
struct Admitted(Arc<AgentState>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The agent's rule for `executionTimeout`: below 5 s or above 172,800 s it
/// is the default, 3,600 s.
pub fn effective_timeout(requested: Duration) -> Duration {
    if requested < MIN_EXECUTION_TIMEOUT || requested > MAX_EXECUTION_TIMEOUT {
        DEFAULT_EXECUTION_TIMEOUT
    } else {
        requested
    }
}

/// `pluginutil.StringPrefix` on bytes: under `max` bytes the text is kept
/// whole; otherwise the first `max - suffix` bytes and the suffix. A cut
/// character's bytes read as U+FFFD each, as Go's JSON encoder writes them.
pub fn agent_prefix(bytes: &[u8], total_len: usize, max: usize) -> String {
    if total_len < max {
        return go_lossy(bytes);
    }
    let keep = max - TRUNCATED_SUFFIX.len();
    let mut s = go_lossy(&bytes[..keep.min(bytes.len())]);
    s.push_str(TRUNCATED_SUFFIX);
    s
}

fn go_lossy(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                out.push('\u{FFFD}');
                rest = &bad[1..];
            }
        }
    }
}

/// Reads one pipe to its end (every holder closed it), writing everything to
/// `file` and keeping the first `keep` bytes. Returns (kept, total length).
async fn drain(
    mut pipe: impl AsyncRead + Unpin,
    file: PathBuf,
    keep: usize,
    kept: Arc<Mutex<(Vec<u8>, usize)>>,
) {
    let mut f = tokio::fs::File::create(&file).await.ok();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(f) = f.as_mut() {
            let _ = f.write_all(&buf[..n]).await;
        }
        let mut k = kept.lock().expect("output");
        let room = keep.saturating_sub(k.0.len());
        k.0.extend_from_slice(&buf[..n.min(room)]);
        k.1 += n;
    }
}

/// The agent's status for an exit code it did not cause (pluginutil.GetStatus).
fn status_of_exit(code: i32) -> Ending {
    match code {
        0 | EXIT_WITH_SUCCESS | REBOOT_EXIT_CODE => Ending::Success,
        STOPPED_EXIT_CODE => Ending::TimedOut,
        EXIT_WITH_FAILURE => Ending::Failed,
        _ => Ending::Failed,
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "killed".into(),
        libc::SIGTERM => "terminated".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGHUP => "hangup".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        libc::SIGABRT => "aborted".into(),
        libc::SIGPIPE => "broken pipe".into(),
        n => format!("signal {n}"),
    }
}

/// Runs one invocation the agent's way; `cancel` is notified by CancelCommand.
pub async fn run(world: &World, inst: &Instance, job: &Job, cancel: Arc<Notify>) -> Outcome {
    let cancel_delay = Duration::from_millis(world.cancel_delay_ms);
    let state = agent_state(&inst.id);
    let admitted = state
        .admitted
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < COMMAND_WORKERS + COMMAND_BUFFER).then_some(n + 1)
        });
    if admitted.is_err() {
        return Outcome::failed(
            1,
            format!(
                "the agent's command pool is full ({COMMAND_WORKERS} running, {COMMAND_BUFFER} queued); the document was not run"
            ),
        );
    }
    let _slot = Admitted(state.clone());
    // Queued until a worker is free; a cancel reaches a queued command too.
    let _worker = tokio::select! {
        p = state.workers.acquire() => match p {
            Ok(p) => p,
            Err(_) => return Outcome::failed(1, "the agent stopped".into()),
        },
        _ = cancel.notified() => {
            tokio::time::sleep(cancel_delay).await;
            return Outcome { ending: Ending::Cancelled, code: 1, stdout: String::new(), stderr: String::new() };
        }
    };
    let gate = state.reboot.read().await;
    let outcome = execute(world, inst, job, cancel, cancel_delay).await;
    drop(gate);
    if outcome.code == REBOOT_EXIT_CODE && outcome.ending == Ending::Success {
        reboot(world, inst, &state).await;
    }
    outcome
}

async fn execute(
    world: &World,
    inst: &Instance,
    job: &Job,
    cancel: Arc<Notify>,
    cancel_delay: Duration,
) -> Outcome {
    let inside = orchestration_dir(&inst.id, &job.command_id);
    let host = host_path(inst, &inside);
    if std::fs::create_dir_all(&host).is_err() {
        return Outcome::failed(
            1,
            format!("failed to create orchestrationDir directory, {inside}"),
        );
    }
    let script = host.join("_script.sh");
    let mut text = job.commands.join("\n");
    text.push('\n');
    if let Err(e) = std::fs::write(&script, text)
        .and_then(|_| std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)))
    {
        return Outcome::failed(1, format!("failed to create script file. {e}"));
    }
    let workdir = if job.working_directory.is_empty() {
        AGENT_CWD.to_string()
    } else {
        job.working_directory.clone()
    };
    if !instance_view(inst, &workdir).is_dir() {
        return Outcome::failed(
            1,
            format!("failed to run commands: chdir {workdir}: no such file or directory"),
        );
    }
    let script_inside = format!("{inside}/_script.sh");
    let mut cmd = match inst.kind {
        Kind::Full => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg("-t")
                .arg(inst.holder_pid.unwrap_or(0).to_string())
                .args(["-m", "-n", "-u", "--", "/bin/sh", "-c"])
                .arg("cd \"$1\" || exit 1; unset OLDPWD; exec sh -c \"$2\"")
                .args(["ssm-agent-worker", &workdir, &script_inside]);
            c
        }
        Kind::Light => {
            let stub = world.dir.join("run/stub/docker");
            let binds = bind_script(
                world
                    .docker_cli
                    .as_deref()
                    .map(|real| (stub.as_path(), real)),
            );
            let mut c = tokio::process::Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg(format!(
                    "{binds}cd \"$2\" || exit 1\nunset OLDPWD\nset +e\nexec sh -c \"$3\"\n"
                ))
                .arg("ssm-agent-worker")
                .arg(&inst.root)
                .args([&workdir, &script_inside]);
            c
        }
    };
    cmd.env_clear()
        .envs(environment(world, inst, &job.command_id))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::failed(1, format!("failed to run commands: {e}")),
    };
    let pid = child.id().unwrap_or(0);
    let out = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let err = Arc::new(Mutex::new((Vec::new(), 0usize)));
    let out_task = tokio::spawn(drain(
        child.stdout.take().expect("piped stdout"),
        host.join("stdout"),
        MAX_STDOUT,
        out.clone(),
    ));
    let err_task = tokio::spawn(drain(
        child.stderr.take().expect("piped stderr"),
        host.join("stderr"),
        MAX_STDERR,
        err.clone(),
    ));
    // Go's exec.Cmd.Wait: the process has exited and its output copied to the
    // end, i.e. every process holding the pipes has closed them.
    let finished = async {
        let status = child.wait().await;
        let _ = out_task.await;
        let _ = err_task.await;
        status
    };
    let timeout = effective_timeout(job.execution_timeout);
    let stopped = tokio::select! {
        status = finished => {
            use std::os::unix::process::ExitStatusExt;
            let (code, error) = match status.ok() {
                Some(s) if s.success() => (0, None),
                Some(s) => match s.code() {
                    Some(c) => (c, Some(format!("exit status {c}"))),
                    None => (-1, Some(format!("signal: {}", signal_name(s.signal().unwrap_or(0))))),
                },
                None => (1, Some("wait failed".into())),
            };
            let ending = status_of_exit(code);
            let line = match (ending, code, error) {
                (Ending::Failed, c, Some(e)) if c != EXIT_WITH_SUCCESS => Some(format!("failed to run commands: {e}")),
                _ => None,
            };
            return collect(ending, code, &out, &err, line);
        }
        _ = tokio::time::sleep(timeout) => Ending::TimedOut,
        _ = async {
            cancel.notified().await;
            // The cancel travels through the service to the agent first.
            tokio::time::sleep(cancel_delay).await;
        } => Ending::Cancelled,
    };
    if pid > 0 {
        crate::sys::signal_group(pid, libc::SIGKILL);
    }
    // The agent stops reading at the kill and does not wait for the pipes.
    let outcome = collect(stopped, STOPPED_EXIT_CODE, &out, &err, None);
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    outcome
}

fn collect(
    ending: Ending,
    code: i32,
    out: &Mutex<(Vec<u8>, usize)>,
    err: &Mutex<(Vec<u8>, usize)>,
    line: Option<String>,
) -> Outcome {
    let (out_bytes, out_len) = out.lock().expect("stdout").clone();
    let (mut err_bytes, mut err_len) = err.lock().expect("stderr").clone();
    if let Some(line) = line {
        // Appended to what the script wrote; cut with it.
        if err_bytes.len() == err_len {
            err_bytes.extend_from_slice(line.as_bytes());
            err_bytes.truncate(MAX_STDERR);
        }
        err_len += line.len();
    }
    Outcome {
        ending,
        code,
        stdout: agent_prefix(&out_bytes, out_len, MAX_STDOUT),
        stderr: agent_prefix(&err_bytes, err_len, MAX_STDERR),
    }
}

/// How long an emulated reboot keeps the agent away (the instance is down).
const REBOOT_DOWN: Duration = Duration::from_secs(2);

/// Exit code 194: the agent reboots the instance once the command is done.
/// Emulated: every process of the instance is stopped (the engine first, so
/// its containers stop as on a shutdown), the tmpfs directories /run and /tmp
/// are emptied, and a new engine starts (containers with a restart policy come
/// back, as on boot). While it reboots, the instance's next commands wait.
async fn reboot(world: &World, inst: &Instance, state: &AgentState) {
    let gate = state.reboot.write().await;
    let (world, inst) = (world.clone(), inst.clone());
    let _ = tokio::task::spawn_blocking(move || reboot_blocking(&world, &inst)).await;
    tokio::time::sleep(REBOOT_DOWN).await;
    drop(gate);
}

fn reboot_blocking(world: &World, inst: &Instance) {
    use crate::sys;
    let holder = inst.holder_pid.unwrap_or(0);
    if inst.kind == Kind::Full && holder > 0 {
        if let Some(pid) = std::fs::read_to_string(inst.root.join("run/docker.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            sys::signal(pid, libc::SIGTERM);
            let _ = sys::wait_until("the engine to stop", Duration::from_secs(15), || {
                sys::reap(pid);
                !sys::alive(pid)
            });
        }
        if let Some(ino) = sys::ns_inode(holder, "mnt") {
            // SIGKILL is not instant: a process in the middle of a write (on a
            // busy machine, containerd dumping its stacks after the engine's
            // SIGTERM) could still create a file in /tmp after the wipe below.
            // A real reboot leaves nothing running, so wait until it is so.
            let others = || {
                sys::pids_in_namespaces("mnt", &[ino])
                    .into_iter()
                    .filter(|p| *p != holder)
                    .collect::<Vec<_>>()
            };
            let _ = sys::wait_until(
                "the instance's processes to die",
                Duration::from_secs(15),
                || {
                    let left = others();
                    for &pid in &left {
                        sys::signal(pid, libc::SIGKILL);
                        sys::reap(pid);
                    }
                    left.is_empty()
                },
            );
        }
        if let Some(cg) = &world.cgroup {
            sys::kill_cgroup(&cg.join(format!("i{}", inst.index)), 0);
        }
    }
    for dir in ["run", "tmp"] {
        if let Ok(entries) = std::fs::read_dir(inst.root.join(dir)) {
            for e in entries.flatten() {
                let p = e.path();
                let _ = if p.is_dir() && !p.is_symlink() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
    }
    if inst.kind == Kind::Full && holder > 0 {
        match crate::instance::start_dockerd(world, inst) {
            Ok(pid) => {
                let ledger = crate::ledger::Ledger::open(&world.dir);
                let _ = ledger.process(
                    pid,
                    &format!("dockerd {} (after a reboot)", inst.id),
                    Duration::from_secs(10),
                );
                if let Err(e) = crate::instance::wait_engine(inst) {
                    eprintln!("hoist-fleet: {} did not come back: {e}", inst.id);
                }
            }
            Err(e) => eprintln!("hoist-fleet: {} did not come back: {e}", inst.id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_under_the_limit_is_kept_whole() {
        let s = "x".repeat(MAX_STDOUT - 1);
        assert_eq!(agent_prefix(s.as_bytes(), s.len(), MAX_STDOUT), s);
    }

    #[test]
    fn output_at_the_limit_keeps_23980_bytes_and_the_suffix() {
        let s = "x".repeat(MAX_STDOUT);
        let got = agent_prefix(s.as_bytes(), s.len(), MAX_STDOUT);
        assert_eq!(got.len(), MAX_STDOUT);
        assert!(got.ends_with("x--output truncated--"));
        assert_eq!(got.len() - TRUNCATED_SUFFIX.len(), 23_980);
    }

    #[test]
    fn a_cut_multibyte_character_reads_as_replacement_characters() {
        // 23,979 bytes of 'a' then 'é' (2 bytes): the cut falls inside it.
        let mut s = "a".repeat(23_979);
        s.push_str(&"é".repeat(100));
        let got = agent_prefix(s.as_bytes(), s.len(), MAX_STDOUT);
        assert!(
            got.ends_with("a\u{FFFD}--output truncated--"),
            "{}",
            &got[23_970..]
        );
    }

    #[test]
    fn execution_timeouts_under_5_seconds_become_an_hour() {
        assert_eq!(
            effective_timeout(Duration::from_secs(4)),
            Duration::from_secs(3600)
        );
        assert_eq!(
            effective_timeout(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        assert_eq!(
            effective_timeout(Duration::from_secs(172_801)),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn exit_codes_map_to_the_agents_statuses() {
        assert_eq!(status_of_exit(0), Ending::Success);
        assert_eq!(status_of_exit(168), Ending::Success);
        assert_eq!(status_of_exit(169), Ending::Failed);
        assert_eq!(status_of_exit(194), Ending::Success);
        assert_eq!(status_of_exit(137), Ending::TimedOut);
        assert_eq!(status_of_exit(-1), Ending::Failed);
    }
}

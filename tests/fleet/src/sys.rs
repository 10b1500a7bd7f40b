//! Small wrappers around the system tools the world drives (`ip`, `openssl`,
//! ...) and around processes and cgroups.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{FleetError, Result};

/// Runs a tool to completion; a non-zero exit is an error carrying its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(FleetError::io(format!("starting {program}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(FleetError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Like [`run`] but for teardown: failures are reported, never fatal.
pub fn run_quiet(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn alive(pid: u32) -> bool {
    // A zombie still "exists" for kill(0); read the state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|s| s.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}

/// The process's start time in clock ticks, to tell it from a later one with the same pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

pub fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: as above; a negative pid addresses the process group.
    unsafe {
        libc::kill(-(pgid as i32), sig);
    }
}

/// A process known by its pid and start time, so a pid the kernel has
/// reused for another process is never signalled (pids wrap fast on a busy
/// machine with a small pid_max).
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: u32,
    pub start: Option<u64>,
}

impl Proc {
    /// The process with this pid now.
    pub fn now(pid: u32) -> Proc {
        Proc {
            pid,
            start: start_time(pid),
        }
    }

    /// Still the same process, and not a zombie.
    pub fn alive(self) -> bool {
        alive(self.pid) && self.start.is_none_or(|s| start_time(self.pid) == Some(s))
    }

    /// SIGKILL to it and its process group (it leads its group), if it is still it.
    pub fn kill(self) {
        if self.alive() {
            signal_group(self.pid, libc::SIGKILL);
            signal(self.pid, libc::SIGKILL);
        }
        reap(self.pid);
    }
}

/// SIGTERM, then SIGKILL after `grace`, for a process and its group.
pub fn stop(p: Proc, grace: Duration) {
    stop_all(&[(p, grace)]);
}

/// SIGTERM to every process at once; each gets SIGKILL (with its group) when
/// its own grace period is over.
pub fn stop_all(procs: &[(Proc, Duration)]) {
    let started = Instant::now();
    for (p, _) in procs {
        if p.alive() {
            signal(p.pid, libc::SIGTERM);
        }
    }
    let mut pending: Vec<(Proc, Duration)> = procs.to_vec();
    while !pending.is_empty() {
        pending.retain(|(p, grace)| {
            if !p.alive() {
                reap(p.pid);
                return false;
            }
            if started.elapsed() >= *grace {
                p.kill();
                return false;
            }
            true
        });
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Collects a child that has exited so it does not linger as a zombie.
pub fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: waitpid with WNOHANG on a pid that may or may not be our child.
    unsafe {
        libc::waitpid(pid as i32, &mut status, libc::WNOHANG);
    }
}

/// `mnt:[4026532712]` -> 4026532712.
pub fn ns_inode(pid: u32, kind: &str) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
    let s = link.to_string_lossy();
    s.split('[').nth(1)?.trim_end_matches(']').parse().ok()
}

pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(FleetError::Timeout {
                what: what.to_string(),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cgroup hierarchy the world puts its processes in: v1's `pids`, or v2's root.
pub fn cgroup_root() -> Option<PathBuf> {
    let v1 = Path::new("/sys/fs/cgroup/pids");
    if v1.join("cgroup.procs").exists() {
        return Some(v1.to_path_buf());
    }
    let v2 = Path::new("/sys/fs/cgroup");
    v2.join("cgroup.controllers")
        .exists()
        .then(|| v2.to_path_buf())
}

/// The cgroup (below the world's) of the world's own processes; the
/// engines' containers are in its siblings.
pub const WORLD_LEAF: &str = "world";

/// Every pid in a cgroup and its descendants.
pub fn cgroup_pids(dir: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0;
    while let Some(d) = stack.pop() {
        visited += 1;
        if visited > 100_000 {
            break;
        }
        if let Ok(text) = std::fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }
    pids
}

/// Removes a cgroup directory tree, deepest first, in every v1 hierarchy.
pub fn remove_cgroup_everywhere(name: &str) {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            roots.push(e.path());
        }
    }
    roots.push(PathBuf::from("/sys/fs/cgroup"));
    for root in roots {
        let dir = root.join(name);
        if dir.is_dir() {
            rmdir_tree(&dir, 0);
        }
    }
}

fn rmdir_tree(dir: &Path, depth: usize) {
    if depth > 16 {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                rmdir_tree(&e.path(), depth + 1);
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Moves the calling process into a cgroup (its children will follow).
pub fn join_cgroup(dir: &Path) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .map_err(FleetError::io(format!("joining {}", procs.display())))
}

/// Kills every process in a cgroup tree until it is empty (bounded).
pub fn kill_cgroup(dir: &Path, skip: u32) {
    for _ in 0..50 {
        let pids: Vec<u32> = cgroup_pids(dir)
            .into_iter()
            .filter(|p| *p != skip)
            .collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            signal(pid, libc::SIGKILL);
            reap(pid);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Processes whose namespace of `kind` has one of the given inodes.
pub fn pids_in_namespaces(kind: &str, inodes: &[u64]) -> Vec<u32> {
    let mut found = Vec::new();
    if inodes.is_empty() {
        return found;
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ino) = ns_inode(pid, kind)
                && inodes.contains(&ino)
            {
                found.push(pid);
            }
        }
    }
    found
}

/// Mount points (as the host sees them) at or under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut found: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Which directory on PATH holds `program`.
pub fn which_dir(program: &str) -> Option<String> {
    let path = std::env::var("PATH").ok()?;
    path.split(':')
        .find(|d| !d.is_empty() && Path::new(d).join(program).is_file())
        .map(str::to_string)
}

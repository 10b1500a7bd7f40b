//! The record of everything `up` creates, written *before* each thing is made
//! (or right after, for process ids), so `down` can undo a crashed `up`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{FleetError, Result};
use crate::sys;

pub const LEDGER_FILE: &str = "resources.jsonl";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Resource {
    /// A directory this world owns; removed with everything in it.
    Files {
        path: PathBuf,
    },
    /// A directory created on the host outside DIR (a mount point); removed when empty.
    HostDir {
        path: PathBuf,
    },
    /// A file created on the host outside DIR (a registry CA for the host's engine).
    HostFile {
        path: PathBuf,
    },
    /// A cgroup (relative to each hierarchy) holding the world's processes.
    Cgroup {
        name: String,
    },
    Bridge {
        name: String,
    },
    Link {
        name: String,
    },
    Netns {
        name: String,
    },
    /// A namespace by inode: any process still inside is killed.
    Namespace {
        ns: String,
        inode: u64,
    },
    Process {
        pid: u32,
        start: Option<u64>,
        label: String,
        grace_ms: u64,
    },
}

pub struct Ledger {
    path: PathBuf,
}

impl Ledger {
    pub fn create(dir: &Path) -> Result<Ledger> {
        let path = dir.join(LEDGER_FILE);
        if path.exists() {
            return Err(FleetError::AlreadyUp(dir.to_path_buf()));
        }
        std::fs::write(&path, "")
            .map_err(FleetError::io(format!("creating {}", path.display())))?;
        Ok(Ledger { path })
    }

    /// The ledger of a world that is up (to add what the server starts later).
    pub fn open(dir: &Path) -> Ledger {
        Ledger {
            path: dir.join(LEDGER_FILE),
        }
    }

    pub fn record(&self, r: Resource) -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(FleetError::io(format!("opening {}", self.path.display())))?;
        let line = serde_json::to_string(&r).expect("resource serializes");
        writeln!(f, "{line}")
            .and_then(|_| f.sync_data())
            .map_err(FleetError::io(format!("writing {}", self.path.display())))
    }

    pub fn process(&self, pid: u32, label: &str, grace: Duration) -> Result<()> {
        self.record(Resource::Process {
            pid,
            start: sys::start_time(pid),
            label: label.to_string(),
            grace_ms: grace.as_millis() as u64,
        })
    }
}

/// A host directory instances bind over (or one above such a directory).
fn is_mount_point_dir(path: &Path) -> bool {
    crate::instance::BOUND
        .iter()
        .any(|(_, target)| Path::new(target).starts_with(path))
}

/// Whether another world's bridge (`hfleetK`) exists; ours is gone by then.
fn other_world_up() -> bool {
    std::fs::read_dir("/sys/class/net")
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("hfleet"))
        })
        .unwrap_or(false)
}

fn read(dir: &Path) -> Vec<Resource> {
    let text = std::fs::read_to_string(dir.join(LEDGER_FILE)).unwrap_or_default();
    // A line cut short by a crash is skipped; everything before it still counts.
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Undoes everything in the ledger, newest first. Never stops at a failure:
/// it reports what it could not remove.
pub fn teardown(dir: &Path) -> Vec<String> {
    let resources = read(dir);
    let mut problems = Vec::new();
    let me = std::process::id();
    let cgroup_root = sys::cgroup_root();

    // 1. Daemons, gracefully (dockerd stops its containers): the API server
    //    first so no new command starts, then every other process at once, so
    //    `down` takes the longest grace period, not their sum. The namespace
    //    holders stay until step 2 has swept their namespaces.
    let live: Vec<(sys::Proc, u64, &str)> = resources
        .iter()
        .rev()
        .filter_map(|r| match r {
            Resource::Process {
                pid,
                start,
                grace_ms,
                label,
            } if *pid != me
                && sys::alive(*pid)
                && (start.is_none() || sys::start_time(*pid) == *start) =>
            {
                Some((
                    sys::Proc {
                        pid: *pid,
                        start: start.or_else(|| sys::start_time(*pid)),
                    },
                    *grace_ms,
                    label.as_str(),
                ))
            }
            _ => None,
        })
        .collect();
    let is_holder = |label: &str| label.starts_with("holder ");
    for (p, grace, _) in live.iter().filter(|p| p.2 == "api server") {
        sys::stop(*p, Duration::from_millis(*grace));
    }
    // Containers live in sub-cgroups (dockerd's --cgroup-parent); killing them
    // first spares each dockerd a slow stop of its containers.
    if let Some(root) = &cgroup_root {
        for r in &resources {
            if let Resource::Cgroup { name } = r
                && let Ok(entries) = std::fs::read_dir(root.join(name))
            {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != sys::WORLD_LEAF {
                        sys::kill_cgroup(&e.path(), me);
                    }
                }
            }
        }
    }
    sys::stop_all(
        &live
            .iter()
            .filter(|p| p.2 != "api server" && !is_holder(p.2))
            .map(|(p, grace, _)| (*p, Duration::from_millis(*grace)))
            .collect::<Vec<_>>(),
    );
    // 2. Anything left in the instances' namespaces. A namespace's inode
    //    number is reused once it is gone, so only namespaces still pinned are
    //    swept: mount namespaces by their live holders, network namespaces by
    //    their /var/run/netns files.
    let holders: Vec<sys::Proc> = live
        .iter()
        .filter(|p| is_holder(p.2) && p.0.alive())
        .map(|p| p.0)
        .collect();
    let pinned_mnt: Vec<u64> = holders
        .iter()
        .filter_map(|p| sys::ns_inode(p.pid, "mnt"))
        .collect();
    let pinned_net: Vec<u64> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Netns { name } => std::fs::metadata(Path::new("/var/run/netns").join(name))
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::ino(&m)),
            _ => None,
        })
        .collect();
    for (ns, pinned) in [("mnt", &pinned_mnt), ("net", &pinned_net)] {
        let inodes: Vec<u64> = resources
            .iter()
            .filter_map(|r| match r {
                Resource::Namespace { ns: k, inode } if k == ns && pinned.contains(inode) => {
                    Some(*inode)
                }
                _ => None,
            })
            .collect();
        for _ in 0..20 {
            let pids: Vec<u32> = sys::pids_in_namespaces(ns, &inodes)
                .into_iter()
                .filter(|p| *p != me && !holders.iter().any(|h| h.pid == *p))
                .collect();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                sys::signal(p, libc::SIGKILL);
                sys::reap(p);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for h in &holders {
        h.kill();
    }
    // Then whatever is left in the world's cgroups (light instances' commands).
    for r in &resources {
        if let (Resource::Cgroup { name }, Some(root)) = (r, &cgroup_root) {
            // Leave the cgroup first if we are in it (a failed `up` tears itself down).
            let _ = std::fs::write(root.join("cgroup.procs"), me.to_string());
            sys::kill_cgroup(&root.join(name), me);
        }
    }
    // 3. Network: namespaces (their veth ends go with them), links, the bridge.
    for r in resources.iter().rev() {
        match r {
            Resource::Netns { name }
                if Path::new("/var/run/netns").join(name).exists()
                    && !sys::run_quiet("ip", &["netns", "delete", name]) =>
            {
                problems.push(format!("network namespace {name}"));
            }
            Resource::Link { name } | Resource::Bridge { name }
                if Path::new("/sys/class/net").join(name).exists()
                    && !sys::run_quiet("ip", &["link", "delete", name]) =>
            {
                problems.push(format!("link {name}"));
            }
            _ => {}
        }
    }
    // 4. Cgroups (docker makes them in every hierarchy).
    for r in &resources {
        if let Resource::Cgroup { name } = r {
            sys::remove_cgroup_everywhere(name);
            if let Some(root) = &cgroup_root
                && root.join(name).exists()
            {
                problems.push(format!("cgroup {name}"));
            }
        }
    }
    // 5. Files: first anything still mounted under our directories, then the host's.
    for r in resources.iter().rev() {
        if let Resource::Files { path } = r {
            for m in sys::mounts_under(path) {
                sys::run_quiet("umount", &["-l", &m.to_string_lossy()]);
            }
        }
    }
    for r in resources.iter().rev() {
        match r {
            Resource::HostFile { path } if path.exists() && std::fs::remove_file(path).is_err() => {
                problems.push(format!("file {}", path.display()));
            }
            // A host directory may be another world's mount point: removing it
            // would detach that world's bind mounts, so it stays while one is up.
            Resource::HostDir { path } if !is_mount_point_dir(path) || !other_world_up() => {
                let _ = std::fs::remove_dir(path);
            }
            Resource::Files { path } if path.exists() && std::fs::remove_dir_all(path).is_err() => {
                problems.push(format!("directory {}", path.display()));
            }
            _ => {}
        }
    }
    for name in [
        crate::world::WORLD_FILE,
        "world.json.tmp",
        "env.sh",
        "env.json",
    ] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    // The ledger goes last, and DIR itself when `up` made it.
    let _ = std::fs::remove_file(dir.join(LEDGER_FILE));
    for r in &resources {
        if let Resource::HostDir { path } = r
            && path == dir
        {
            let _ = std::fs::remove_dir(path);
        }
    }
    problems
}

//! One instance: its directories, its network namespace on the world's
//! bridge, the process that holds its mount namespace (with the bind mounts
//! that give it its own /run, /tmp, /var/lib/hoist, /etc/nginx, nginx's log
//! and state directories, /etc/docker,
//! /root/.docker and SSM agent directory) and its own `dockerd`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::error::{FleetError, Result};
use crate::ledger::{Ledger, Resource};
use crate::sys;
use crate::world::{Instance, World};

/// Directories inside an instance's root, each bound over a host path.
pub const BOUND: &[(&str, &str)] = &[
    ("run", "/run"),
    ("tmp", "/tmp"),
    ("etc-docker", "/etc/docker"),
    ("hoist", "/var/lib/hoist"),
    ("ssm", "/var/lib/amazon/ssm"),
    ("nginx", "/etc/nginx"),
    ("nginx-log", "/var/log/nginx"),
    ("nginx-lib", "/var/lib/nginx"),
    ("dotdocker", "/root/.docker"),
];

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(FleetError::io(format!("creating {}", p.display())))
}

/// The instance's own copies of the bound directories.
pub fn prepare_dirs(root: &Path, registry: &str, ca_cert: &Path) -> Result<()> {
    for (dir, _) in BOUND {
        mkdir(&root.join(dir))?;
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777));
    let certs = root.join("etc-docker/certs.d").join(registry);
    mkdir(&certs)?;
    std::fs::copy(ca_cert, certs.join("ca.crt")).map_err(FleetError::io("copying the CA"))?;
    // Start from the host's nginx configuration, as an AMI would ship it.
    if Path::new("/etc/nginx").is_dir() {
        let _ = Command::new("cp")
            .args(["-a", "/etc/nginx/.", &root.join("nginx").to_string_lossy()])
            .status();
    }
    Ok(())
}

/// Host mount points the instances bind over; made (and recorded) when missing.
pub fn ensure_mount_points(ledger: &Ledger) -> Result<()> {
    for (_, target) in BOUND {
        let mut missing = Vec::new();
        let mut p = Path::new(target).to_path_buf();
        while !p.exists() {
            missing.push(p.clone());
            if !p.pop() {
                break;
            }
        }
        for dir in missing.into_iter().rev() {
            ledger.record(Resource::HostDir { path: dir.clone() })?;
            mkdir(&dir)?;
        }
    }
    Ok(())
}

pub fn create_network(world: &World, index: usize, ledger: &Ledger) -> Result<(String, String)> {
    let k = world.index;
    let netns = format!("hf{k}-i{index}");
    let host_end = format!("hf{k}-{index}h");
    let peer = format!("hf{k}-{index}c");
    let address = format!("10.213.{k}.{}", 10 + index);
    ledger.record(Resource::Netns {
        name: netns.clone(),
    })?;
    sys::run("ip", &["netns", "add", &netns])?;
    if let Some(ino) = std::fs::metadata(format!("/var/run/netns/{netns}"))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    {
        ledger.record(Resource::Namespace {
            ns: "net".into(),
            inode: ino,
        })?;
    }
    ledger.record(Resource::Link {
        name: host_end.clone(),
    })?;
    sys::run(
        "ip",
        &[
            "link", "add", &host_end, "type", "veth", "peer", "name", &peer,
        ],
    )?;
    sys::run("ip", &["link", "set", &peer, "netns", &netns])?;
    sys::run(
        "ip",
        &["link", "set", &host_end, "master", &world.bridge, "up"],
    )?;
    let ns = |args: &[&str]| -> Result<String> {
        let mut all = vec!["-n", netns.as_str()];
        all.extend_from_slice(args);
        sys::run("ip", &all)
    };
    ns(&["link", "set", &peer, "name", "eth0"])?;
    ns(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])?;
    ns(&["link", "set", "eth0", "up"])?;
    ns(&["link", "set", "lo", "up"])?;
    // No default route: an instance reaches only the world's own subnet.
    Ok((netns, address))
}

/// The metadata service's link-local address, inside the instance's network
/// namespace: a route to 169.254.169.254 on eth0 and a DNAT rule that sends
/// its port 80 to the world's listener (`imds.rs`), so the SDKs' default
/// endpoint works as on EC2. The rule lives and dies with the namespace.
pub fn route_metadata(world: &World, inst: &Instance) -> Result<()> {
    let Some(netns) = inst.netns.as_deref() else {
        return Ok(());
    };
    let address = format!("{}/32", crate::imds::ADDRESS);
    sys::run(
        "ip",
        &["-n", netns, "route", "add", &address, "dev", "eth0"],
    )?;
    sys::run(
        "ip",
        &[
            "netns",
            "exec",
            netns,
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            crate::imds::ADDRESS,
            "--dport",
            "80",
            "-j",
            "DNAT",
            "--to-destination",
            &world.imds(),
        ],
    )?;
    Ok(())
}

/// An EC2-style host name: `ip-10-213-1-10`.
pub fn hostname(address: &str) -> String {
    format!("ip-{}", address.replace('.', "-"))
}

/// Starts the process that holds the instance's mount namespace.
pub fn start_holder(inst: &Instance, ledger: &Ledger) -> Result<u32> {
    let netns = inst.netns.as_deref().unwrap_or_default();
    let ready = inst.root.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::File::create(inst.root.join("holder.log"))
        .map_err(FleetError::io("creating holder.log"))?;
    let script = format!(
        "{}hostname \"$2\"\ntouch \"$R/ready\"\nexec sleep 2147483647\n",
        crate::agent::bind_script(None)
    );
    let child = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{netns}"))
        .args([
            "--",
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
        ])
        .arg(script)
        .arg("hoist-fleet-instance")
        .arg(&inst.root)
        .arg(hostname(&inst.address))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(FleetError::io("holder log"))?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(FleetError::io("starting the namespace holder"))?;
    let pid = child.id();
    ledger.process(
        pid,
        &format!("holder {}", inst.id),
        Duration::from_millis(0),
    )?;
    sys::wait_until(
        &format!("instance {} mounts", inst.id),
        Duration::from_secs(15),
        || ready.exists() || !sys::alive(pid),
    )?;
    if !ready.exists() {
        let log = std::fs::read_to_string(inst.root.join("holder.log")).unwrap_or_default();
        return Err(FleetError::Command {
            command: "instance mount namespace".into(),
            status: "exited".into(),
            stderr: log,
        });
    }
    if let Some(ino) = sys::ns_inode(pid, "mnt") {
        ledger.record(Resource::Namespace {
            ns: "mnt".into(),
            inode: ino,
        })?;
    }
    Ok(pid)
}

/// Starts the instance's own engine inside its namespaces; its socket is
/// /var/run/docker.sock there, `ROOT/run/docker.sock` on the host.
pub fn start_dockerd(world: &World, inst: &Instance) -> Result<u32> {
    let holder = inst
        .holder_pid
        .ok_or_else(|| FleetError::Invalid("no holder".into()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(inst.root.join("dockerd.log"))
        .map_err(FleetError::io("creating dockerd.log"))?;
    let data_root = inst.root.join("docker-data");
    // A pid file left by an engine that was killed: dockerd refuses to start while the pid
    // in it exists, and a killed engine not yet reaped still does (a zombie). Reap it and
    // remove the file; a live engine's file stays, and dockerd says so.
    let pid_file = inst.root.join("run/docker.pid");
    if let Some(old) = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        && !sys::alive(old)
    {
        sys::reap(old);
        let _ = std::fs::remove_file(&pid_file);
    }
    let cgroup_parent = format!("/hoist-fleet-{}/i{}", world.index, inst.index);
    let child = Command::new("nsenter")
        .args(["-t", &holder.to_string(), "-m", "-n", "-u", "--", "dockerd"])
        .arg("--data-root")
        .arg(&data_root)
        .args([
            "--exec-root=/run/docker",
            "--pidfile=/run/docker.pid",
            "--host=unix:///run/docker.sock",
            "--storage-driver=vfs",
            "--shutdown-timeout=2",
            "--log-level=warn",
            "--mtu=1400",
        ])
        .arg(format!("--cgroup-parent={cgroup_parent}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(FleetError::io("dockerd log"))?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(FleetError::io("starting dockerd"))?;
    Ok(child.id())
}

use std::os::unix::process::CommandExt;

fn ping(socket: &Path) -> bool {
    let Ok(mut s) = UnixStream::connect(socket) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.0 200") || buf.starts_with("HTTP/1.1 200")
}

pub fn wait_engine(inst: &Instance) -> Result<()> {
    let socket = inst.root.join("run/docker.sock");
    sys::wait_until(
        &format!("the engine of {}", inst.id),
        Duration::from_secs(90),
        || ping(&socket),
    )
    .map_err(|e| {
        let log = std::fs::read_to_string(inst.root.join("dockerd.log")).unwrap_or_default();
        let tail: String = log.lines().rev().take(10).collect::<Vec<_>>().join("\n");
        FleetError::Command {
            command: format!("dockerd for {}", inst.id),
            status: e.to_string(),
            stderr: tail,
        }
    })
}

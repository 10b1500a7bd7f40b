//! `hoist-fleet up`: builds the world, recording each thing in the ledger
//! before making it, and tears down what it made if any step fails.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{FleetError, Result};
use crate::ledger::{self, Ledger, Resource};
use crate::world::{Instance, Kind, World};
use crate::{instance, random, registry, sys, tls};

/// How the instances' access key ids begin (the rest is random per world).
pub const INSTANCE_KEY_PREFIX: &str = "ASIAFLEETINSTANCE";

pub struct UpOptions {
    pub dir: PathBuf,
    pub instances: usize,
    pub light: usize,
    /// Which 10.213.K.0/24 subnet and names to use; the first free one when `None`.
    pub index: Option<u8>,
    pub api_port: u16,
    pub registry_port: u16,
    pub imds_port: u16,
    pub cancel_delay_ms: u64,
    pub region: String,
    pub tags: Vec<String>,
    pub light_docker_sleep_ms: u64,
    pub invocation_visibility_ms: u64,
    pub api: crate::api::settings::ApiSettings,
}

pub fn up(opts: &UpOptions) -> Result<World> {
    if !sys::is_root() {
        return Err(FleetError::NotRoot);
    }
    if opts.instances > 200 || opts.light > 5000 {
        return Err(FleetError::Invalid(
            "at most 200 full and 5000 light instances".into(),
        ));
    }
    if let Some(k) = opts.index
        && !(1..=99).contains(&k)
    {
        return Err(FleetError::Invalid(format!("--index {k}: use 1 to 99")));
    }
    parse_tags(&opts.tags, 0)?;
    let dir = absolute(&opts.dir)?;
    check_dir(&dir)?;
    let created_dir = !dir.exists();
    std::fs::create_dir_all(&dir).map_err(FleetError::io(format!("creating {}", dir.display())))?;
    let ledger = Ledger::create(&dir)?;
    if created_dir {
        ledger.record(Resource::HostDir { path: dir.clone() })?;
    }
    let started = Instant::now();
    match build(opts, &dir, &ledger) {
        Ok(world) => {
            eprintln!(
                "hoist-fleet: up in {:.1}s ({} full, {} light instances)",
                started.elapsed().as_secs_f64(),
                opts.instances,
                opts.light
            );
            Ok(world)
        }
        Err(e) => {
            eprintln!("hoist-fleet: up failed ({e}); removing what it made");
            for p in ledger::teardown(&dir) {
                eprintln!("hoist-fleet: could not remove {p}");
            }
            Err(e)
        }
    }
}

/// Creates the world's bridge `hfleetK`: the given K, or the first free one.
/// Creating the link is the atomic claim, so two `up`s never share a subnet;
/// it is recorded right after (recording first would let a failed claim
/// delete another world's bridge).
fn claim_bridge(wanted: Option<u8>, ledger: &Ledger) -> Result<(u8, String)> {
    let candidates: Vec<u8> = match wanted {
        Some(k) if (1..=99).contains(&k) => vec![k],
        Some(k) => return Err(FleetError::Invalid(format!("--index {k}: use 1 to 99"))),
        None => (1..=99).collect(),
    };
    for k in candidates {
        let bridge = format!("hfleet{k}");
        if Path::new("/sys/class/net").join(&bridge).exists() {
            continue;
        }
        if sys::run("ip", &["link", "add", &bridge, "type", "bridge"]).is_ok() {
            ledger.record(Resource::Bridge {
                name: bridge.clone(),
            })?;
            return Ok((k, bridge));
        }
    }
    Err(FleetError::Invalid(match wanted {
        Some(k) => format!("bridge hfleet{k} exists: another world uses index {k}"),
        None => "no free world index (bridges hfleet1..hfleet99 all exist)".into(),
    }))
}

/// DIR must stay visible inside the instances, so it cannot live under a
/// directory they get their own copy of.
fn check_dir(dir: &Path) -> Result<()> {
    for (_, target) in instance::BOUND {
        if dir.starts_with(target) || (*target == "/run" && dir.starts_with("/var/run")) {
            return Err(FleetError::Invalid(format!(
                "--dir {}: it must not be under {target}, which each instance has its own copy of \
                 (use e.g. /var/tmp or the cargo target directory)",
                dir.display()
            )));
        }
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .map_err(FleetError::io("current directory"))?
            .join(p))
    }
}

fn parse_tags(specs: &[String], index: usize) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for spec in specs {
        let (target, kv) = match spec.split_once(':') {
            Some((n, kv)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                (Some(n.parse::<usize>().unwrap_or(usize::MAX)), kv)
            }
            _ => (None, spec.as_str()),
        };
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            FleetError::Invalid(format!("tag {spec}: use KEY=VALUE or N:KEY=VALUE"))
        })?;
        if target.is_none_or(|t| t == index) {
            out.push((k.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

fn build(opts: &UpOptions, dir: &Path, ledger: &Ledger) -> Result<World> {
    let run = dir.join("run");
    ledger.record(Resource::Files { path: run.clone() })?;
    std::fs::create_dir_all(&run).map_err(FleetError::io("creating run/"))?;
    let (k, bridge) = claim_bridge(opts.index, ledger)?;
    let gateway = format!("10.213.{k}.1");

    // Every process of the world lives in one cgroup, so `down` finds them all.
    let cgroup = sys::cgroup_root().map(|root| root.join(format!("hoist-fleet-{k}")));
    if let Some(cg) = &cgroup {
        ledger.record(Resource::Cgroup {
            name: format!("hoist-fleet-{k}"),
        })?;
        std::fs::create_dir_all(cg)
            .map_err(FleetError::io(format!("creating {}", cg.display())))?;
        // The processes sit in a leaf below it: on cgroup v2 a cgroup with
        // processes of its own cannot hand controllers to children, and the
        // engines put their containers in siblings (`i0`, `i1`, ...).
        let leaf = cg.join(sys::WORLD_LEAF);
        std::fs::create_dir_all(&leaf)
            .map_err(FleetError::io(format!("creating {}", leaf.display())))?;
        sys::join_cgroup(&leaf)?;
    }

    let tls = tls::make(&run.join("tls"), &gateway)?;
    let registry_addr = format!("{gateway}:{}", opts.registry_port);

    sys::run(
        "ip",
        &["addr", "add", &format!("{gateway}/24"), "dev", &bridge],
    )?;
    sys::run("ip", &["link", "set", &bridge, "up"])?;

    instance::ensure_mount_points(ledger)?;
    trust_on_host(ledger, &registry_addr, &tls.ca_cert)?;

    let password = random::token(48);
    let reg_dir = run.join("registry");
    let config = registry::configure(&reg_dir, &registry_addr, &tls, &password)?;
    let reg_pid = registry::spawn(&config, &run.join("registry.log"))?;
    ledger.process(reg_pid, "registry", Duration::from_secs(2))?;

    let mut world = World {
        dir: dir.to_path_buf(),
        index: k,
        bridge: bridge.clone(),
        gateway: gateway.clone(),
        api_port: opts.api_port,
        registry_port: opts.registry_port,
        imds_port: opts.imds_port,
        cancel_delay_ms: opts.cancel_delay_ms,
        region: opts.region.clone(),
        account: "123456789012".into(),
        access_key_id: format!("ASIA{}", random::alnum_upper(16)),
        secret_access_key: random::token(40),
        session_token: format!("hoist-fleet-{}", random::token(64)),
        instance_access_key_id: format!("{}{}", INSTANCE_KEY_PREFIX, random::alnum_upper(12)),
        instance_secret_access_key: random::token(40),
        instance_session_token: format!("hoist-fleet-instance-{}", random::token(64)),
        registry_password: password,
        ca_cert: tls.ca_cert.clone(),
        aws_cli_dir: aws_cli_dir(),
        docker_cli: sys::which_dir("docker").map(|d| format!("{d}/docker")),
        light_docker_sleep_ms: opts.light_docker_sleep_ms,
        invocation_visibility_ms: opts.invocation_visibility_ms,
        api: opts.api.clone(),
        busybox_tar: run.join("busybox.tar"),
        cgroup,
        instances: Vec::new(),
    };

    // Full instances: network, mounts, then all engines start together.
    for n in 0..opts.instances {
        let root = run.join(format!("i{n}"));
        instance::prepare_dirs(&root, &registry_addr, &tls.ca_cert)?;
        let (netns, address) = instance::create_network(&world, n, ledger)?;
        let mut tags = BTreeMap::from([
            ("Name".to_string(), format!("fleet-{n}")),
            ("Env".to_string(), "test".to_string()),
        ]);
        tags.extend(parse_tags(&opts.tags, n)?);
        let mut inst = Instance {
            id: random::instance_id(),
            index: n,
            kind: Kind::Full,
            address,
            tags,
            root: root.clone(),
            netns: Some(netns),
            holder_pid: None,
            dockerd_pid: None,
            docker_host: Some(format!("unix://{}", root.join("run/docker.sock").display())),
        };
        instance::route_metadata(&world, &inst)?;
        inst.holder_pid = Some(instance::start_holder(&inst, ledger)?);
        let pid = instance::start_dockerd(&world, &inst)?;
        ledger.process(
            pid,
            &format!("dockerd {}", inst.id),
            Duration::from_secs(10),
        )?;
        inst.dockerd_pid = Some(pid);
        world.instances.push(inst);
    }
    for m in 0..opts.light {
        let n = opts.instances + m;
        let root = run.join(format!("l{m}"));
        instance::prepare_dirs(&root, &registry_addr, &tls.ca_cert)?;
        let mut tags = BTreeMap::from([
            ("Name".to_string(), format!("light-{m}")),
            ("Env".to_string(), "light".to_string()),
        ]);
        tags.extend(parse_tags(&opts.tags, n)?);
        world.instances.push(Instance {
            id: random::instance_id(),
            index: n,
            kind: Kind::Light,
            // Light instances share the host's network; the address is nominal.
            address: format!("10.213.{}.{}", 100 + (m / 250) % 100, 1 + m % 250),
            tags,
            root,
            netns: None,
            holder_pid: None,
            dockerd_pid: None,
            docker_host: None,
        });
    }
    write_docker_stub(&run, opts.light_docker_sleep_ms, opts.light > 0)?;
    write_busybox_tar(&run)?;

    for inst in world.instances.iter().filter(|i| i.kind == Kind::Full) {
        instance::wait_engine(inst)?;
    }
    sys::wait_until("the registry", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&registry_addr).is_ok()
    })?;

    world.save()?;
    let server = spawn_server(dir, &run)?;
    ledger.process(server, "api server", Duration::from_secs(2))?;
    let api = format!("{gateway}:{}", opts.api_port);
    let imds = world.imds();
    sys::wait_until("the API server", Duration::from_secs(30), || {
        (crate::admin_client::get(&api, "/_fleet/health").is_ok()
            && std::net::TcpStream::connect(&imds).is_ok())
            || !sys::alive(server)
    })?;
    if !sys::alive(server) {
        let log = std::fs::read_to_string(run.join("server.log")).unwrap_or_default();
        return Err(FleetError::Command {
            command: "hoist-fleet serve".into(),
            status: "exited".into(),
            stderr: log,
        });
    }
    std::fs::write(dir.join("env.sh"), world.exports())
        .map_err(FleetError::io("writing env.sh"))?;
    std::fs::write(
        dir.join("env.json"),
        serde_json::to_string_pretty(&world.env_json()).expect("json"),
    )
    .map_err(FleetError::io("writing env.json"))?;
    Ok(world)
}

/// The directory of the `aws` program itself. A pyenv shim needs pyenv's
/// variables and HOME, which the agent's environment does not have; the
/// program it runs (a script naming its interpreter) needs neither.
fn aws_cli_dir() -> Option<String> {
    let dir = sys::which_dir("aws")?;
    if !dir.ends_with("/shims") {
        return Some(dir);
    }
    let real = sys::run("pyenv", &["which", "aws"]).ok()?;
    Path::new(real.trim())
        .parent()
        .map(|p| p.display().to_string())
        .or(Some(dir))
}

/// The host's engine trusts the registry too (for `docker push` from the host).
fn trust_on_host(ledger: &Ledger, registry: &str, ca: &Path) -> Result<()> {
    let certs = Path::new("/etc/docker/certs.d");
    let dir = certs.join(registry);
    for d in [Path::new("/etc/docker"), certs, dir.as_path()] {
        if !d.exists() {
            ledger.record(Resource::HostDir {
                path: d.to_path_buf(),
            })?;
            // Another world's `up` may make /etc/docker or certs.d at the same moment.
            match std::fs::create_dir(d) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(FleetError::io(format!("creating {}", d.display()))(e));
                }
                _ => {}
            }
        }
    }
    let file = dir.join("ca.crt");
    ledger.record(Resource::HostFile { path: file.clone() })?;
    std::fs::copy(ca, &file).map_err(FleetError::io(format!("writing {}", file.display())))?;
    Ok(())
}

/// The light instances' `docker`: a stateful stand-in for the CLI (see docker_stub.py).
const DOCKER_STUB: &str = include_str!("docker_stub.py");

/// The stub's interpreter: the host's python3 (instances share the host's /usr).
fn python3() -> Option<String> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .map(str::to_string)
        .or_else(|| sys::which_dir("python3").map(|d| format!("{d}/python3")))
}

fn write_docker_stub(run: &Path, sleep_ms: u64, needed: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Some(python) = python3() else {
        if needed {
            return Err(FleetError::Invalid(
                "light instances need python3 on this machine (their docker stub is a Python \
                 script)"
                    .into(),
            ));
        }
        return Ok(());
    };
    let dir = run.join("stub");
    std::fs::create_dir_all(&dir).map_err(FleetError::io("creating stub/"))?;
    let path = dir.join("docker");
    // -I: no PYTHON* variables or user site; -S: no site import (a faster start).
    let script = format!(
        "#!{python} -IS\n{}",
        DOCKER_STUB
            .replace("@SLEEP_MS@", &sleep_ms.to_string())
            .replace("@CALLS_LOG@", crate::agent::DOCKER_CALLS_LOG)
    );
    std::fs::write(&path, script).map_err(FleetError::io("writing the docker stub"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .map_err(FleetError::io("chmod the docker stub"))
}

/// A minimal image root: static busybox and its applets, for `docker import`.
fn write_busybox_tar(run: &Path) -> Result<()> {
    let busybox = ["/usr/bin/busybox", "/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(busybox) = busybox else {
        eprintln!("hoist-fleet: no busybox on this machine; no test image tarball");
        return Ok(());
    };
    let rootfs = run.join("busybox-rootfs");
    let bin = rootfs.join("bin");
    for d in [
        "bin",
        "tmp",
        "etc",
        "proc",
        "sys",
        "dev",
        "root",
        "var/run",
        "usr/share/nginx/html",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(FleetError::io("creating the rootfs"))?;
    }
    std::fs::copy(busybox, bin.join("busybox")).map_err(FleetError::io("copying busybox"))?;
    let list = sys::run(busybox, &["--list"])?;
    for applet in list
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && *a != "busybox")
    {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .map_err(FleetError::io("writing /etc/passwd"))?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(FleetError::io("writing /etc/group"))?;
    sys::run(
        "tar",
        &[
            "-C",
            &rootfs.to_string_lossy(),
            "-cf",
            &run.join("busybox.tar").to_string_lossy(),
            ".",
        ],
    )?;
    Ok(())
}

fn spawn_server(dir: &Path, run: &Path) -> Result<u32> {
    let exe = std::env::current_exe().map_err(FleetError::io("finding hoist-fleet"))?;
    let log =
        std::fs::File::create(run.join("server.log")).map_err(FleetError::io("server.log"))?;
    let child = Command::new(exe)
        .arg("serve")
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(FleetError::io("server.log"))?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(FleetError::io("starting the API server"))?;
    Ok(child.id())
}

//! Starting and stopping a world, and helpers to talk to it with the AWS CLI
//! and the AWS SDK for Rust.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_sdk_ssm::config::Credentials;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_hoist-fleet");

fn on_path(program: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| !d.is_empty() && Path::new(d).join(program).is_file())
}

/// Why the fleet cannot run here, if it cannot.
pub fn prerequisites_missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("root (namespaces, links and mounts)".into());
    }
    for tool in [
        "ip", "nsenter", "unshare", "openssl", "dockerd", "docker", "aws",
    ] {
        if !on_path(tool) {
            return Some(format!("`{tool}` on PATH"));
        }
    }
    if !Path::new("/usr/bin/docker-registry").exists() {
        return Some("Debian's docker-registry (/usr/bin/docker-registry)".into());
    }
    let engine = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !engine.is_ok_and(|s| s.success()) {
        return Some("a running Docker engine (`docker info` failed)".into());
    }
    None
}

/// What a world made, read before `down`, to check afterwards that it is gone.
#[derive(Debug, Default)]
pub struct Made {
    pub dir: PathBuf,
    pub netns: Vec<String>,
    pub links: Vec<String>,
    pub cgroups: Vec<String>,
    pub processes: Vec<(u32, Option<u64>, String)>,
    pub host_files: Vec<PathBuf>,
}

fn read_made(dir: &Path) -> Made {
    let mut made = Made {
        dir: dir.to_path_buf(),
        ..Made::default()
    };
    let text = std::fs::read_to_string(dir.join("resources.jsonl")).unwrap_or_default();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        match v["kind"].as_str() {
            Some("netns") => made.netns.push(s("name")),
            Some("link") | Some("bridge") => made.links.push(s("name")),
            Some("cgroup") => made.cgroups.push(s("name")),
            Some("host_file") => made.host_files.push(PathBuf::from(s("path"))),
            Some("process") => made.processes.push((
                v["pid"].as_u64().unwrap_or(0) as u32,
                v["start"].as_u64(),
                s("label"),
            )),
            _ => {}
        }
    }
    made
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Panics with a list of whatever a world left behind.
pub fn assert_nothing_left(made: &Made) {
    let mut left = Vec::new();
    assert!(
        !made.links.is_empty() && !made.processes.is_empty(),
        "the ledger listed no links or processes: {made:?}"
    );
    for n in &made.netns {
        if Path::new("/var/run/netns").join(n).exists() {
            left.push(format!("network namespace {n}"));
        }
    }
    for l in &made.links {
        if Path::new("/sys/class/net").join(l).exists() {
            left.push(format!("link {l}"));
        }
    }
    for c in &made.cgroups {
        for h in [
            "pids", "memory", "cpu", "devices", "freezer", "systemd", "unified", "",
        ] {
            let p = Path::new("/sys/fs/cgroup").join(h).join(c);
            if p.exists() {
                left.push(format!("cgroup {}", p.display()));
            }
        }
    }
    for (pid, start, label) in &made.processes {
        if start_time(*pid).is_some() && start_time(*pid) == *start {
            left.push(format!("process {pid} ({label})"));
        }
    }
    let dir = made.dir.to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&dir) && start_time(pid).is_some() {
            left.push(format!("process {pid}: {cmdline}"));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for m in mounts.lines().filter(|l| l.contains(&dir)) {
        left.push(format!("mount {m}"));
    }
    for f in &made.host_files {
        if f.exists() {
            left.push(format!("file {}", f.display()));
        }
        // The registry's own directory in /etc/docker/certs.d goes with its CA.
        if let Some(parent) = f.parent()
            && parent.starts_with("/etc/docker/certs.d/")
            && parent.exists()
        {
            left.push(format!("directory {}", parent.display()));
        }
    }
    if made.dir.exists() {
        left.push(format!("directory {}", made.dir.display()));
    }
    assert!(
        left.is_empty(),
        "down left behind:\n  {}",
        left.join("\n  ")
    );
}

/// A world that is taken down when this is dropped (also on panic).
pub struct Guard {
    pub dir: PathBuf,
    pub env: Value,
    pub world: Value,
    done: bool,
}

/// A world's directory: in cargo's target directory, unless that lies where
/// a world's directory may not (under /tmp or /run, which instances get their
/// own copies of), then in /var/tmp.
pub fn world_dir(label: &str) -> PathBuf {
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let base = if ["/tmp", "/run", "/var/run"]
        .iter()
        .any(|p| target.starts_with(p))
    {
        PathBuf::from("/var/tmp")
    } else {
        target
    };
    base.join(format!("fleet-{label}-{}", std::process::id()))
}

fn fleet(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running hoist-fleet")
}

fn down(dir: &Path) -> Output {
    fleet(&["down", "--dir", &dir.to_string_lossy()])
}

impl Guard {
    pub fn up(label: &str, extra: &[&str]) -> Guard {
        let dir = world_dir(label);
        if dir.exists() {
            let _ = down(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
        let mut guard = Guard {
            dir: dir.clone(),
            env: Value::Null,
            world: Value::Null,
            done: false,
        };
        let d = dir.to_string_lossy().into_owned();
        let mut args = vec!["up", "--dir", &d, "--format", "json"];
        args.extend_from_slice(extra);
        let out = fleet(&args);
        assert!(
            out.status.success(),
            "hoist-fleet up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        guard.env = serde_json::from_slice(&out.stdout).expect("up prints JSON");
        let world = std::fs::read_to_string(dir.join("world.json")).expect("world.json");
        guard.world = serde_json::from_str(&world).expect("world.json parses");
        guard
    }

    /// Takes the world down and returns what it had made.
    pub fn down(&mut self) -> Made {
        let made = read_made(&self.dir);
        self.done = true;
        let out = down(&self.dir);
        assert!(
            out.status.success(),
            "hoist-fleet down failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        made
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            let out = down(&self.dir);
            if !out.status.success() {
                eprintln!(
                    "hoist-fleet down failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

/// `up` killed in the middle, then `down`: nothing may be left.
pub fn crashed_up_then_down() {
    let dir = world_dir("crash");
    let d = dir.to_string_lossy().into_owned();
    let mut child = Command::new(BIN)
        .args(["up", "--dir", &d, "--index", "97", "--instances", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting up");
    // Kill it once it has started an engine (half-way).
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ledger = std::fs::read_to_string(dir.join("resources.jsonl")).unwrap_or_default();
        if ledger.contains("dockerd i-") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let made = read_made(&dir);
    let out = down(&dir);
    assert!(
        out.status.success(),
        "down after a crash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        made.processes.iter().any(|p| p.2.starts_with("dockerd")),
        "up was not killed half-way: {made:?}"
    );
    assert_nothing_left(&made);
}

#[derive(Debug, Clone)]
pub struct Inst {
    pub id: String,
    pub address: String,
    pub root: PathBuf,
}

/// Everything a check needs: the world's environment, its instances, SDK clients.
pub struct Ctx {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub registry: String,
    pub full: Vec<Inst>,
    pub light: Vec<Inst>,
    pub rt: tokio::runtime::Runtime,
    /// SSM with the SDK's standard retries (throttling included): Parameter
    /// Store writes are throttled at 3 a second, as on AWS.
    pub ssm: aws_sdk_ssm::Client,
    /// SSM without retries, for checks that must see an error as AWS sends it.
    pub ssm_raw: aws_sdk_ssm::Client,
    pub ecr: aws_sdk_ecr::Client,
    pub sts: aws_sdk_sts::Client,
    /// A command sent by the first check and checked by the last.
    pub delivery: std::sync::Mutex<Option<(String, String, Instant)>>,
    /// The rate-controlled command whose second wave waits behind the offline instance:
    /// (command id, the waiting instance).
    pub queued: std::sync::Mutex<Option<(String, String)>>,
}

impl Ctx {
    pub fn new(guard: &Guard) -> Ctx {
        let env: Vec<(String, String)> = guard.env["env"]
            .as_object()
            .expect("env")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} not in the world's environment"))
        };
        let insts = |kind: &str| -> Vec<Inst> {
            guard.env["instances"]
                .as_array()
                .expect("instances")
                .iter()
                .filter(|i| i["Kind"] == kind)
                .map(|i| Inst {
                    id: i["InstanceId"].as_str().unwrap_or_default().into(),
                    address: i["Address"].as_str().unwrap_or_default().into(),
                    root: PathBuf::from(i["Root"].as_str().unwrap_or_default()),
                })
                .collect()
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let creds = Credentials::new(
            get("AWS_ACCESS_KEY_ID"),
            get("AWS_SECRET_ACCESS_KEY"),
            Some(get("AWS_SESSION_TOKEN")),
            None,
            "hoist-fleet",
        );
        let conf = rt.block_on(
            aws_config::defaults(BehaviorVersion::latest())
                .region(aws_config::Region::new(get("AWS_REGION")))
                .endpoint_url(get("AWS_ENDPOINT_URL"))
                .credentials_provider(creds)
                .retry_config(aws_config::retry::RetryConfig::disabled())
                .load(),
        );
        let retrying = conf
            .to_builder()
            .retry_config(
                aws_config::retry::RetryConfig::standard()
                    .with_max_attempts(10)
                    .with_initial_backoff(Duration::from_millis(200)),
            )
            .build();
        Ctx {
            dir: guard.dir.clone(),
            registry: get("HOIST_FLEET_REGISTRY"),
            full: insts("full"),
            light: insts("light"),
            ssm: aws_sdk_ssm::Client::new(&retrying),
            ssm_raw: aws_sdk_ssm::Client::new(&conf),
            ecr: aws_sdk_ecr::Client::new(&conf),
            sts: aws_sdk_sts::Client::new(&conf),
            rt,
            env,
            delivery: std::sync::Mutex::new(None),
            queued: std::sync::Mutex::new(None),
        }
    }

    /// The base image the checks import into the host's engine (removed on drop).
    pub fn host_image(&self) -> String {
        format!("hoist-fleet-test/busybox:{}", std::process::id())
    }

    pub fn var(&self, k: &str) -> String {
        self.env
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// The AWS CLI with the world's environment and no user configuration.
    pub fn aws(&self, args: &[&str]) -> Output {
        Command::new("aws")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_CONFIG_FILE", "/nonexistent/hoist-fleet")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/hoist-fleet")
            .env("AWS_PAGER", "")
            .stdin(Stdio::null())
            .output()
            .expect("running aws")
    }

    pub fn aws_ok(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `hoist-fleet fault --dir DIR ARGS...`
    pub fn fault(&self, args: &[&str]) {
        let d = self.dir.to_string_lossy().into_owned();
        let mut all = vec!["fault", "--dir", &d];
        all.extend_from_slice(args);
        let out = fleet(&all);
        assert!(
            out.status.success(),
            "hoist-fleet {} failed: {}",
            all.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SendCommand (AWS-RunShellScript) through the SDK; returns the command id.
    pub fn send(
        &self,
        ids: &[&str],
        commands: &[&str],
        tweak: impl FnOnce(
            aws_sdk_ssm::operation::send_command::builders::SendCommandFluentBuilder,
        )
            -> aws_sdk_ssm::operation::send_command::builders::SendCommandFluentBuilder,
    ) -> String {
        let mut req = self
            .ssm
            .send_command()
            .document_name("AWS-RunShellScript")
            .parameters("commands", commands.iter().map(|c| c.to_string()).collect());
        for id in ids {
            req = req.instance_ids(*id);
        }
        let out = self.rt.block_on(tweak(req).send()).expect("SendCommand");
        out.command()
            .and_then(|c| c.command_id())
            .expect("a command id")
            .to_string()
    }

    /// GetCommandInvocation until the invocation ends (InvocationDoesNotExist is retried).
    pub fn wait(
        &self,
        command: &str,
        instance: &str,
        limit: Duration,
    ) -> GetCommandInvocationOutput {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.rt.block_on(
                self.ssm
                    .get_command_invocation()
                    .command_id(command)
                    .instance_id(instance)
                    .send(),
            );
            match got {
                Ok(out) => {
                    let status = out
                        .status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default();
                    if ["Success", "Failed", "TimedOut", "Cancelled"].contains(&status.as_str()) {
                        return out;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "invocation {command} on {instance} still {status} after {limit:?}"
                    );
                }
                Err(e) => {
                    assert_eq!(
                        e.code(),
                        Some("InvocationDoesNotExist"),
                        "GetCommandInvocation failed: {e:?}"
                    );
                    assert!(Instant::now() < deadline, "invocation never appeared");
                }
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Runs a script on one instance and waits for its end.
    pub fn run(&self, instance: &str, commands: &[&str]) -> GetCommandInvocationOutput {
        let id = self.send(&[instance], commands, |r| r);
        self.wait(&id, instance, Duration::from_secs(120))
    }
}

pub fn stdout_of(out: &GetCommandInvocationOutput) -> String {
    out.standard_output_content()
        .unwrap_or_default()
        .to_string()
}

/// Status and StatusDetails of an invocation.
pub fn status_of(out: &GetCommandInvocationOutput) -> (String, String) {
    (
        out.status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        out.status_details().unwrap_or_default().to_string(),
    )
}

pub fn describe(out: &GetCommandInvocationOutput) -> String {
    format!(
        "status {:?}, code {}, stdout {:?}, stderr {:?}",
        status_of(out),
        out.response_code(),
        out.standard_output_content().unwrap_or_default(),
        out.standard_error_content().unwrap_or_default()
    )
}

pub fn assert_success(out: &GetCommandInvocationOutput) -> String {
    assert_eq!(
        status_of(out),
        ("Success".to_string(), "Success".to_string()),
        "{}",
        describe(out)
    );
    assert_eq!(out.response_code(), 0);
    stdout_of(out)
}

impl Drop for Ctx {
    /// Undoes what the checks did to the host's engine: its login and image.
    fn drop(&mut self) {
        for args in [
            vec!["logout", self.registry.as_str()],
            vec!["rmi", "-f", &self.host_image()],
        ] {
            let _ = Command::new("docker")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

//! The emulated AWS fleet (tests/fleet) as the tests use it: a world of three instances
//! brought up for one test and always torn down, the example app configured to deploy to it,
//! and the checks every fleet test makes (the secret never leaks, an instance serves a
//! version). Shared by `ssm_deploy.rs` and the GitHub Action's end-to-end test.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use super::{Run, git, hoist};

/// Awkward on purpose: a quote, a backslash, a double quote, a dollar and a tab, which shell
/// quoting, xtrace and JSON all write differently.
pub(crate) const SECRET: &str = "hoist-ssm-'secret\\value\"$HOME\t5be2";

/// Whether `text` holds the secret as it is or as JSON escapes it.
pub(crate) fn leaks(text: &str) -> bool {
    let json = serde_json::to_string(SECRET).unwrap();
    text.contains(SECRET) || text.contains(&json[1..json.len() - 1])
}

pub(crate) fn fleet_bin() -> PathBuf {
    // target/debug/deps/it-… → target/debug/hoist-fleet (built by `cargo test --workspace`)
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("hoist-fleet")
}

pub(crate) fn ready() -> bool {
    let tools = super::have_command("ip")
        && super::have_command("docker-registry")
        && super::have_command("aws");
    super::docker_with_base_image(
        tools && fleet_bin().exists(),
        "root, a Docker engine, iproute2, docker-registry, the AWS CLI and the hoist-fleet \
         binary (cargo test --workspace builds it)",
    )
}

pub(crate) struct Instance {
    pub id: String,
    pub address: String,
    pub docker_host: String,
    pub netns: String,
    /// The instance's own directory on the host (its /run, its SSM agent directory, ...).
    pub root: PathBuf,
    /// The process holding the instance's mount and network namespaces.
    pub holder_pid: u64,
}

/// A running world; `down` when dropped.
pub(crate) struct World {
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub registry_password: String,
    pub instances: Vec<Instance>,
}

impl World {
    pub(crate) fn up(tag: &str) -> World {
        World::up_with(tag, &["--instances", "3"])
    }

    /// A world of the given instances (`hoist-fleet up` flags).
    pub(crate) fn up_with(tag: &str, instances: &[&str]) -> World {
        let dir = PathBuf::from(format!(
            "/var/tmp/hoist-ssm-tests/{tag}-{}",
            std::process::id()
        ));
        let _ = Command::new(fleet_bin())
            .args(["down", "--dir"])
            .arg(&dir)
            .output();
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let out = Command::new(fleet_bin())
            .arg("up")
            .args(instances)
            .args(["--format", "json", "--dir"])
            .arg(&dir)
            .output()
            .expect("hoist-fleet runs");
        // Constructed before the assert so a failed `up` is torn down too.
        let mut world = World {
            dir,
            env: Vec::new(),
            registry_password: String::new(),
            instances: Vec::new(),
        };
        assert!(
            out.status.success(),
            "hoist-fleet up failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: Value = serde_json::from_slice(&out.stdout).expect("up prints JSON");
        world.env = printed["env"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        // The world's own state file holds what a client does not get: roots, namespaces.
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(world.dir.join("world.json")).unwrap())
                .unwrap();
        state["registry_password"]
            .as_str()
            .unwrap()
            .clone_into(&mut world.registry_password);
        world.instances = state["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| Instance {
                id: i["id"].as_str().unwrap().to_owned(),
                address: i["address"].as_str().unwrap().to_owned(),
                docker_host: i["docker_host"].as_str().unwrap_or_default().to_owned(),
                netns: i["netns"].as_str().unwrap_or_default().to_owned(),
                root: PathBuf::from(i["root"].as_str().unwrap()),
                holder_pid: i["holder_pid"].as_u64().unwrap_or_default(),
            })
            .collect();
        world
    }

    pub(crate) fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub(crate) fn fault(&self, args: &[&str]) {
        let out = Command::new(fleet_bin())
            .args(["fault", "--dir"])
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "fault {args:?}: {out:?}");
    }

    pub(crate) fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("run/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The `SendCommand`s that may change a host: every one but a deploy's host checks
    /// (read-only; their comment ends with "host checks").
    pub(crate) fn changing_commands(&self) -> usize {
        self.journal()
            .iter()
            .filter(|l| {
                l["operation"] == "SendCommand"
                    && l["error"].is_null()
                    && !l["params"]["Comment"]
                        .as_str()
                        .is_some_and(|c| c.ends_with("host checks"))
            })
            .count()
    }

    pub(crate) fn calls(&self, operation: &str) -> usize {
        self.journal()
            .iter()
            .filter(|l| l["operation"] == operation && l["error"].is_null())
            .count()
    }

    /// A shell command inside an instance's mount and network namespaces (as its root sees
    /// the machine).
    #[allow(clippy::unused_self)] // read as the world's: `world.on_instance(inst, …)`
    pub(crate) fn on_instance(&self, inst: &Instance, script: &str) -> String {
        let holder = inst.holder_pid;
        assert!(holder > 0, "{} has a namespace holder", inst.id);
        let out = Command::new("nsenter")
            .arg(format!("--mount=/proc/{holder}/ns/mnt"))
            .arg(format!("--net=/proc/{holder}/ns/net"))
            .args(["sh", "-c", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `docker` against one instance's own engine.
    #[allow(clippy::unused_self)] // read as the world's: `world.docker(inst, …)`
    pub(crate) fn docker(&self, inst: &Instance, args: &[&str]) -> String {
        let out = Command::new("docker")
            .arg("-H")
            .arg(&inst.docker_host)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let out = Command::new(fleet_bin())
            .args(["down", "--dir"])
            .arg(&self.dir)
            .output();
        if let Ok(out) = out
            && !out.status.success()
        {
            eprintln!("hoist-fleet down: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// A scratch copy of examples/hello as its own git repository, targeting the world's
/// instances (tag Env=test).
pub(crate) struct App {
    pub name: String,
    pub root: PathBuf,
    _dir: tempfile::TempDir,
}

impl App {
    pub(crate) fn new(tag: &str) -> App {
        let name = format!("ssm-{tag}");
        let (dir, root) = super::example_app();
        let app = App {
            name,
            root,
            _dir: dir,
        };
        app.configure("1.0.0", "0s", "0");
        app
    }

    pub(crate) fn configure(&self, version: &str, start_period: &str, max_errors: &str) {
        self.configure_with(version, start_period, max_errors, "2s", "");
    }

    /// `container_extra`: more `container:` lines, each indented by two spaces.
    pub(crate) fn configure_with(
        &self,
        version: &str,
        start_period: &str,
        max_errors: &str,
        stop_timeout: &str,
        container_extra: &str,
    ) {
        let yaml = format!(
            "app: {name}\nregion: us-east-1\n\
             image:\n  repository: e2e/{name}\n  build_args:\n    VERSION: \"{version}\"\n\
             targets:\n  tags:\n    Env: [test]\n  max_concurrency: \"3\"\n  max_errors: \"{max_errors}\"\n\
             container:\n  port: 8080\n  publish: 8080\n  stop_timeout: {stop_timeout}\n{container_extra}\
             healthcheck:\n  path: /healthz\n  interval: 1s\n  timeout: 20s\n  start_period: {start_period}\n\
             env:\n  clear:\n    GREETING: hi\n  secret: [HELLO_API_TOKEN]\n",
            name = self.name,
        );
        std::fs::write(self.root.join("hoist.yaml"), yaml).unwrap();
        git(&self.root, &["add", "-A"]);
        git(
            &self.root,
            &["commit", "-qm", &format!("{version} {start_period}")],
        );
    }

    pub(crate) fn cmd(&self, world: &World, args: &[&str]) -> Command {
        let mut cmd = hoist();
        cmd.current_dir(&self.root)
            .arg("deploy")
            .args(args)
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("HELLO_API_TOKEN", SECRET)
            .env("CI", "true");
        cmd
    }

    pub(crate) fn deploy(&self, world: &World, args: &[&str]) -> Run {
        let run: Run = self.cmd(world, args).output().expect("hoist runs").into();
        assert!(!leaks(&run.stdout) && !leaks(&run.stderr));
        run
    }
}

pub(crate) fn get(address: &str, path: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "3"])
        .arg(format!("http://{address}:8080{path}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub(crate) fn assert_serves(inst: &Instance, version: &str) {
    assert_eq!(
        get(&inst.address, "/version").as_deref(),
        Some(version),
        "{} ({})",
        inst.id,
        inst.address
    );
}

pub(crate) fn assert_ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "deploy failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

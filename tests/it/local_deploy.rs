//! End to end on a real Docker engine: `hoist deploy --local` builds examples/hello and rolls
//! it out on this machine with the same script an EC2 instance runs.
//!
//! Needs root and a Docker engine: skipped with a reason on a laptop without them, required
//! in CI. Every test uses its own app name and port and removes its containers and images
//! when it ends, also when it fails.

use crate::common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{DockerTrap, Run, git, hoist, run_phase};

const SECRET: &str = "hoist-e2e-secret-value-7d1f";

fn docker_ready() -> bool {
    common::docker_with_base_image(true, "root and a running Docker engine")
}

/// A scratch copy of examples/hello as its own git repository, under a unique app name.
struct App {
    name: String,
    port: u16,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl App {
    fn new(tag: &str) -> Self {
        let name = format!("e2e-{tag}-{}", std::process::id() % 100_000);
        let port = free_port();
        let (dir, root) = common::example_app();
        let app = App {
            name,
            port,
            root,
            _dir: dir,
        };
        app.configure("1.0.0", "/healthz", 3, "0s");
        app
    }

    /// Rewrites hoist.yaml for this test and commits it (a new commit is a new release).
    fn configure(&self, version: &str, health: &str, retain: u32, start_period: &str) {
        let yaml = format!(
            "app: {name}\n\
             image:\n  repository: hoist-e2e/{name}\n  build_args:\n    VERSION: \"{version}\"\n\
             targets:\n  tags:\n    Env: [test]\n\
             container:\n  port: 8080\n  publish: {port}\n  stop_timeout: 2s\n\
             healthcheck:\n  path: {health}\n  interval: 1s\n  timeout: 8s\n  start_period: {start_period}\n\
             env:\n  clear:\n    GREETING: hi\n  secret: [HELLO_API_TOKEN]\n\
             retain: {retain}\n",
            name = self.name,
            port = self.port,
        );
        std::fs::write(self.root.join("hoist.yaml"), yaml).unwrap();
        git(&self.root, &["add", "-A"]);
        git(
            &self.root,
            &["commit", "-qm", &format!("{version} {health}")],
        );
    }

    fn deploy(&self) -> Run {
        self.deploy_cmd().output().expect("hoist runs").into()
    }

    /// The release the next deploy gets (from the plan).
    fn next_release(&self) -> String {
        let out = hoist()
            .current_dir(&self.root)
            .args(["plan", "--local", "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["release"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn deploy_cmd(&self) -> Command {
        let mut cmd = hoist();
        cmd.current_dir(&self.root)
            .args(["deploy", "--local"])
            .env("HELLO_API_TOKEN", SECRET)
            .env("CI", "true");
        cmd
    }

    fn get(&self, path: &str) -> Option<String> {
        let out = Command::new("curl")
            .args(["-fsS", "--max-time", "3"])
            .arg(format!("http://127.0.0.1:{}{path}", self.port))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// `name state release` of every container of this app, newest first.
    fn containers(&self) -> Vec<(String, String, String)> {
        let out = Command::new("docker")
            .args(["ps", "-a", "--filter"])
            .arg(format!("label=hoist.app={}", self.name))
            .args([
                "--format",
                "{{.Names}} {{.State}} {{.Label \"hoist.release\"}}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let mut p = l.split_whitespace().map(str::to_owned);
                (
                    p.next().unwrap_or_default(),
                    p.next().unwrap_or_default(),
                    p.next().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn running(&self) -> Vec<(String, String, String)> {
        self.containers()
            .into_iter()
            .filter(|c| c.1 == "running")
            .collect()
    }

    fn run_dir_is_empty(&self) -> bool {
        let dir = Path::new("/run/hoist").join(&self.name);
        std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none())
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=hoist.app={}", self.name))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let names = Command::new("docker")
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .arg(format!("hoist-e2e/{}", self.name))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        // By name, never by id (another test may hold the same image under its own name),
        // and not the images' untagged parents: they are the build cache of other tests.
        for name in names.split_whitespace() {
            let _ = Command::new("docker")
                .args(["rmi", "--no-prune", name])
                .output();
        }
        // A test that failed half-way may leave the deploy's private tmpfs mounted.
        let private = Path::new("/run/hoist").join(&self.name);
        let _ = Command::new("umount").arg(&private).output();
        let _ = std::fs::remove_dir(&private);
        let _ = std::fs::remove_dir_all(Path::new("/var/lib/hoist").join(&self.name));
        let _ = std::fs::remove_file(Path::new("/run/hoist").join(format!("{}.lock", self.name)));
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn assert_ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "deploy failed\nstdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

fn assert_no_secret(run: &Run) {
    assert!(
        !run.stdout.contains(SECRET),
        "secret in stdout:\n{}",
        run.stdout
    );
    assert!(
        !run.stderr.contains(SECRET),
        "secret in stderr:\n{}",
        run.stderr
    );
}

#[test]
fn deploys_v1_then_v2_keeping_v1_stopped_and_secrets_ephemeral() {
    if !docker_ready() {
        return;
    }
    let app = App::new("upgrade");
    let v1 = app.deploy();
    assert_ok(&v1);
    assert_no_secret(&v1);
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    assert!(app.run_dir_is_empty(), "env file left on tmpfs");

    // The container does receive the secret and the clear value.
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    let env = Command::new("docker")
        .args(["exec", &running[0].0, "env"])
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(env.contains(&format!("HELLO_API_TOKEN={SECRET}")));
    assert!(env.contains("GREETING=hi"));

    app.configure("2.0.0", "/healthz", 3, "0s");
    let v2 = app.deploy();
    assert_ok(&v2);
    assert_no_secret(&v2);
    assert_eq!(app.get("/version").as_deref(), Some("2.0.0"));
    assert!(app.run_dir_is_empty());
    let all = app.containers();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(app.running().len(), 1);
    assert!(
        all.iter().any(|c| c.1 == "exited" && c.0 == running[0].0),
        "v1 kept stopped for rollback: {all:?}"
    );

    // History: one JSON line per deploy.
    let history = std::fs::read_to_string(
        Path::new("/var/lib/hoist")
            .join(&app.name)
            .join("history.jsonl"),
    )
    .unwrap();
    let lines: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["status"] == "deployed"));
    assert!(!history.contains(SECRET));
}

/// `rollout: two-phase` with recreate, on this machine: phase `stage` (the image, no
/// secret) then phase `switch` (the deploy, which alone gets the secrets on its stdin); the
/// report has both, and the release serves.
#[test]
fn a_two_phase_recreate_stages_then_switches_locally() {
    if !docker_ready() {
        return;
    }
    let app = App::new("twophase");
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    std::fs::write(
        app.root.join("hoist.yaml"),
        format!("{yaml}rollout: two-phase\n"),
    )
    .unwrap();
    git(&app.root, &["commit", "-qam", "two-phase"]);
    let run: Run = app
        .deploy_cmd()
        .args(["--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_ok(&run);
    assert_no_secret(&run);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let phases: Vec<(&str, &str)> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["invocations"][0]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        phases,
        [("stage", "staged"), ("switch", "deployed")],
        "{report}"
    );
    assert_eq!(report["deployed"], 1, "{report}");
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    // The same commit again: the stage finds the image, the switch finds it running.
    let again: Run = app
        .deploy_cmd()
        .args(["--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_ok(&again);
    let report: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        report["phases"][1]["invocations"][0]["outcome"], "unchanged",
        "{report}"
    );
}

#[test]
fn retain_prunes_old_releases() {
    if !docker_ready() {
        return;
    }
    let app = App::new("retain");
    for v in ["1", "2", "3"] {
        app.configure(v, "/healthz", 1, "0s");
        assert_ok(&app.deploy());
    }
    assert_eq!(app.get("/version").as_deref(), Some("3"));
    let all = app.containers();
    assert_eq!(all.len(), 2, "one running + retain 1 stopped: {all:?}");
}

#[test]
fn a_failing_health_check_leaves_v1_serving_and_exits_1() {
    if !docker_ready() {
        return;
    }
    let app = App::new("health");
    assert_ok(&app.deploy());
    let before = app.running();

    app.configure("2.0.0", "/does-not-exist", 3, "0s");
    let bad = app.deploy();
    assert_eq!(
        bad.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        bad.stdout, bad.stderr
    );
    assert_no_secret(&bad);
    let all_output = format!("{}{}", bad.stdout, bad.stderr);
    assert!(
        all_output.contains("health"),
        "names the reason:\n{all_output}"
    );
    assert!(all_output.contains("rolled back"), "{all_output}");
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    assert_eq!(app.running(), before, "v1 still the one running");
    assert_eq!(app.containers().len(), 1, "the failed container is removed");
    assert!(app.run_dir_is_empty());
}

#[test]
fn a_port_conflict_on_first_deploy_fails_cleanly() {
    if !docker_ready() {
        return;
    }
    let app = App::new("port");
    let _squatter = TcpListener::bind(("0.0.0.0", app.port)).unwrap();
    let run = app.deploy();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(app.running().is_empty());
    assert!(app.run_dir_is_empty());
}

#[test]
fn concurrent_deploys_never_interleave() {
    if !docker_ready() {
        return;
    }
    let app = App::new("lock");
    assert_ok(&app.deploy());
    app.configure("2.0.0", "/healthz", 3, "4s");
    let release = app.next_release();
    let first = app
        .deploy_cmd()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first deploy holds the host lock.
    let lock = Path::new("/run/hoist").join(format!("{}.lock", app.name));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&release)) {
        assert!(
            Instant::now() < deadline,
            "first deploy never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = app.deploy();
    let first: Run = first.wait_with_output().unwrap().into();
    assert_ok(&first);
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    let text = format!("{}{}", second.stdout, second.stderr);
    assert!(text.contains("lock"), "{text}");
    assert!(
        text.contains(&release),
        "names the release holding the lock:\n{text}"
    );
    assert_eq!(app.get("/version").as_deref(), Some("2.0.0"));
    assert_eq!(app.running().len(), 1);
}

#[test]
fn the_script_executed_is_byte_identical_to_the_plan() {
    if !docker_ready() {
        return;
    }
    let app = App::new("bytes");
    let copy = app.root.join("executed.sh");
    let wrapper = app.root.join("shell.sh");
    std::fs::write(
        &wrapper,
        format!(
            // Started as `SHELL --noprofile --norc SCRIPT`, like bash.
            "#!/bin/sh\ncp \"$3\" '{}'\nexec bash \"$@\"\n",
            copy.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let config = hoist::config::load(&app.root.join("hoist.yaml")).unwrap();
    let inputs = hoist::plan::Inputs::new(
        hoist::revision::resolve(&app.root).unwrap(),
        hoist::plan::TransportKind::Local,
    );
    let secrets =
        hoist::domain::secrets::SecretEnv::resolve(&config.env.secret, |_| Some(SECRET.into()))
            .unwrap();
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let transport = hoist::transport::LocalTransport::with_shell(&wrapper);
    let progress = hoist::output::progress::Reporter::plain();
    let publisher = hoist::ops::build::Publisher::new(&docker, None, &progress);
    let runner = hoist::ops::execute::Runner {
        ssm: None,
        transport: &transport,
        secrets: &secrets,
        progress: &progress,
        commands: None,
    };
    let report = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(hoist::ops::steps::deploy(
            &config,
            inputs,
            publisher,
            &runner,
            tokio_util::sync::CancellationToken::new(),
        ))
        .unwrap();
    assert!(report.ok(), "{}", hoist::output::summary::summary(&report));
    let executed = std::fs::read(&copy).unwrap();
    let scripts = report.plan.scripts();
    assert_eq!(executed, scripts[0].text.as_bytes());
    assert!(!scripts[0].text.contains(SECRET));
}

/// Both of the engine's builders: BuildKit-only Dockerfile syntax builds with
/// `builder: buildkit`, and with either builder a failing step exits 1 showing that step's
/// output, before anything runs on the host.
#[test]
fn builds_with_either_builder_and_a_failed_build_shows_its_output() {
    if !docker_ready() {
        return;
    }
    for builder in ["buildkit", "classic"] {
        let app = App::new(&format!("build-{builder}"));
        let set_builder = |extra_run: &str, message: &str| {
            let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
            let yaml = yaml.replace("image:\n", &format!("image:\n  builder: {builder}\n"));
            std::fs::write(app.root.join("hoist.yaml"), yaml).unwrap();
            let mut dockerfile = std::fs::read_to_string(app.root.join("Dockerfile")).unwrap();
            dockerfile.push_str(extra_run);
            std::fs::write(app.root.join("Dockerfile"), dockerfile).unwrap();
            git(&app.root, &["commit", "-qam", message]);
        };
        if builder == "buildkit" {
            // A cache mount exists only in BuildKit's Dockerfile syntax.
            set_builder(
                "RUN --mount=type=cache,target=/cache touch /cache/stamp\n",
                "buildkit",
            );
            let run = app.deploy();
            assert_ok(&run);
            assert!(run.stderr.contains("--mount=type=cache"), "{}", run.stderr);
            assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
        } else {
            set_builder("", "classic");
            // The classic builder makes each label of the build API a step of its own:
            // hoist gives it all of them in one LABEL step, on top of the built image.
            let run = app.deploy();
            assert_ok(&run);
            let image = docker_out(&[
                "ps",
                "--filter",
                &format!("label=hoist.app={}", app.name),
                "--format",
                "{{.Image}}",
            ]);
            let image = image.trim();
            let revision = docker_out(&[
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"org.opencontainers.image.revision\"}} \
                 {{index .Config.Labels \"hoist.build.app\"}}",
                image,
            ]);
            let head = Command::new("git")
                .arg("-C")
                .arg(&app.root)
                .args(["rev-parse", "HEAD"])
                .output()
                .unwrap();
            let head = String::from_utf8_lossy(&head.stdout);
            assert_eq!(
                revision.split_whitespace().collect::<Vec<_>>(),
                [head.trim(), app.name.as_str()],
                "the classic build's image carries hoist's labels"
            );
            let history =
                docker_out(&["history", "--no-trunc", "--format", "{{.CreatedBy}}", image]);
            let label_steps: Vec<&str> = history.lines().filter(|l| l.contains("LABEL")).collect();
            assert_eq!(label_steps.len(), 1, "one LABEL step:\n{history}");
            assert!(
                label_steps[0].contains("org.opencontainers.image.revision")
                    && label_steps[0].contains("hoist.build.release"),
                "{history}"
            );
        }
        let before = app.containers();
        std::fs::write(
            app.root.join("Dockerfile"),
            std::fs::read_to_string(app.root.join("Dockerfile")).unwrap()
                + "RUN echo step-output-before-failing && exit 3\n",
        )
        .unwrap();
        git(&app.root, &["commit", "-qam", "broken"]);
        let run = app.deploy();
        assert_eq!(run.code, 1, "{builder}: {}", run.stderr);
        assert!(
            run.stderr.contains("build failed"),
            "{builder}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("step-output-before-failing"),
            "{builder}: the failing step's output is shown:\n{}",
            run.stderr
        );
        assert_eq!(
            app.containers(),
            before,
            "{builder}: nothing ran on the host"
        );
    }
}

/// The pid the script wrote into the host lock (`release R, pid N, since T`).
fn script_pid(app: &App) -> i32 {
    let lock = std::fs::read_to_string(Path::new("/run/hoist").join(format!("{}.lock", app.name)))
        .unwrap();
    lock.split("pid ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in the lock: {lock:?}"))
}

fn history(app: &App) -> Vec<serde_json::Value> {
    std::fs::read_to_string(
        Path::new("/var/lib/hoist")
            .join(&app.name)
            .join("history.jsonl"),
    )
    .unwrap_or_default()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect()
}

fn docker_out(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A container somebody ran by hand from the app's image (a migration, a debug shell) is
/// not a release: the deploy neither stops it, nor counts it against `retain`, nor prunes
/// it. Images no longer carry `hoist.app`, and a container from an older image that does
/// (inherited labels) is still left alone.
#[test]
fn a_container_run_by_hand_from_the_apps_image_is_not_a_release() {
    if !docker_ready() {
        return;
    }
    let app = App::new("byhand");
    assert_ok(&app.deploy());
    let v1 = app.running();
    assert_eq!(v1.len(), 1, "{v1:?}");
    let image = docker_out(&["inspect", "--format", "{{.Image}}", &v1[0].0]);
    let labels = docker_out(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &image,
    ]);
    assert!(
        labels.contains("hoist.build.app") && !labels.contains("\"hoist.app\""),
        "image labels: {labels}"
    );
    // As an image built by an older hoist would make it: `hoist.app` inherited.
    let by_hand = format!("{}-migration", app.name);
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &by_hand, "--label"])
        .arg(format!("hoist.app={}", app.name))
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    app.configure("2.0.0", "/healthz", 0, "0s");
    let v2 = app.deploy();
    assert_ok(&v2);
    assert_eq!(app.get("/version").as_deref(), Some("2.0.0"));
    let state = docker_out(&["inspect", "--format", "{{.State.Status}}", &by_hand]);
    assert_eq!(state, "running", "the hand-run container keeps running");
    let all = app.containers();
    assert_eq!(
        all.len(),
        2,
        "v2 and the hand-run container; v1 pruned (retain 0): {all:?}"
    );
    let result = history(&app).pop().unwrap();
    assert_eq!(result["previous"], v1[0].0.as_str(), "{result}");
}

/// `healthcheck.path` reaches curl literally: `[]` and `{}` are not URL globs.
#[test]
fn a_health_path_with_brackets_and_braces_is_probed_literally() {
    if !docker_ready() {
        return;
    }
    let app = App::new("globs");
    app.configure("1.0.0", "'/healthz?probe[0]={x}'", 3, "0s");
    let run = app.deploy();
    assert_ok(&run);
    assert!(run.stdout.contains("http 200"), "{}", run.stdout);
}

/// A release is created without a restart policy and gets its configured one only once it
/// is healthy; a release that is stopped and retained gets none, so that a daemon restart
/// or a reboot never brings it back beside the live one.
#[test]
fn retained_releases_lose_their_restart_policy_and_the_live_one_keeps_it() {
    if !docker_ready() {
        return;
    }
    let app = App::new("restart");
    let set_always = || {
        let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
        std::fs::write(
            app.root.join("hoist.yaml"),
            yaml.replace(
                "  stop_timeout: 2s\n",
                "  stop_timeout: 2s\n  restart: always\n",
            ),
        )
        .unwrap();
        git(&app.root, &["commit", "-qam", "restart: always"]);
    };
    set_always();
    assert_ok(&app.deploy());
    app.configure("2.0.0", "/healthz", 3, "0s");
    set_always();
    let release = app.next_release();
    assert_ok(&app.deploy());
    let policy = |name: &str| {
        docker_out(&[
            "inspect",
            "--format",
            "{{.HostConfig.RestartPolicy.Name}}",
            name,
        ])
    };
    for (name, state, rel) in app.containers() {
        let expected = if rel == release { "always" } else { "no" };
        assert_eq!(policy(&name), expected, "{name} ({state}, release {rel})");
    }
}

/// Watching a deploy in its health gate: the unverified container has no restart policy yet.
#[test]
fn an_unverified_release_has_no_restart_policy() {
    if !docker_ready() {
        return;
    }
    let app = App::new("gatepolicy");
    app.configure("1.0.0", "/healthz", 3, "4s");
    let release = app.next_release();
    let mut child = app
        .deploy_cmd()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_release(&app, &release, &mut child);
    let name = app.running()[0].0.clone();
    let during = docker_out(&[
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Name}}",
        &name,
    ]);
    let run: Run = child.wait_with_output().unwrap().into();
    assert_ok(&run);
    assert_eq!(during, "no", "in the gate");
    let after = docker_out(&[
        "inspect",
        "--format",
        "{{.HostConfig.RestartPolicy.Name}}",
        &name,
    ]);
    assert_eq!(after, "unless-stopped", "after the gate");
}

/// SIGTERM to the script, then SIGTERM and SIGINT again while it rolls back (an impatient
/// operator, a CI runner escalating): the rollback runs to the end, the script itself
/// reports it, and history records the failure, not a kill.
#[test]
fn more_signals_during_the_rollback_do_not_cut_it_short() {
    if !docker_ready() {
        return;
    }
    let app = App::new("signals");
    assert_ok(&app.deploy());
    app.configure("2.0.0", "/healthz", 3, "20s");
    let release = app.next_release();
    let mut child = app
        .deploy_cmd()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_release(&app, &release, &mut child);
    let pid = script_pid(&app);
    for (signal, pause) in [
        (libc::SIGTERM, 150),
        (libc::SIGTERM, 150),
        (libc::SIGINT, 150),
        (libc::SIGTERM, 0),
    ] {
        unsafe { libc::kill(pid, signal) };
        std::thread::sleep(Duration::from_millis(pause));
    }
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("rolled back"), "{}", run.stdout);
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    assert_eq!(app.running().len(), 1, "{:?}", app.containers());
    let last = history(&app).pop().unwrap();
    assert_eq!(last["status"], "failed", "{last}");
    assert_eq!(last["rolled_back"], true, "{last}");
    assert!(
        last["reason"].as_str().unwrap().contains("SIGTERM"),
        "{last}"
    );
}

/// A deploy that dies with its watchdog (a host crash, a power cut) leaves its state file
/// under /var/lib/hoist: the next deploy finds it, removes the unverified container, brings
/// the previous release back, records what it did, and then deploys.
#[test]
fn an_interrupted_deploy_is_reconciled_by_the_next_one() {
    if !docker_ready() {
        return;
    }
    let app = App::new("crash");
    assert_ok(&app.deploy());
    let v1 = app.running()[0].0.clone();
    app.configure("2.0.0", "/healthz", 3, "30s");
    let v2_release = app.next_release();
    let mut child = app
        .deploy_cmd()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_release(&app, &v2_release, &mut child);
    // The crash: the watchdog, the script and hoist die at once, no trap runs.
    let watchdog = format!("/var/lib/hoist/{}/watchdog.sh", app.name);
    let pkill = Command::new("pkill")
        .args(["-KILL", "-f", &watchdog])
        .status()
        .unwrap();
    assert!(pkill.success(), "the watchdog ran");
    unsafe { libc::kill(script_pid(&app), libc::SIGKILL) };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        Path::new("/var/lib/hoist")
            .join(&app.name)
            .join("deploy.state")
            .exists(),
        "the state survives on disk"
    );

    app.configure("3.0.0", "/healthz", 3, "0s");
    let run = app.deploy();
    assert_ok(&run);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(output.contains("interrupted"), "{output}");
    assert_eq!(app.get("/version").as_deref(), Some("3.0.0"));
    let all = app.containers();
    assert!(
        !all.iter().any(|c| c.2 == v2_release),
        "the unverified v2 is gone: {all:?}"
    );
    assert!(all.iter().any(|c| c.0 == v1 && c.1 == "exited"), "{all:?}");
    let records = history(&app);
    let reconciled = records
        .iter()
        .find(|r| r["status"] == "interrupted")
        .unwrap_or_else(|| panic!("{records:?}"));
    assert_eq!(reconciled["release"], v2_release.as_str());
    assert_eq!(reconciled["rolled_back"], true, "{reconciled}");
    assert_eq!(records.last().unwrap()["status"], "deployed");
}

/// Waits until the app has a running container of `release` (the script started it).
fn wait_for_release(app: &App, release: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !app.running().iter().any(|c| c.2 == release) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("hoist ended ({status}) before release {release} started");
        }
        assert!(Instant::now() < deadline, "release {release} never started");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A terminal's Ctrl-C goes to hoist's whole process group. Only hoist gets it: the script,
/// in a group of its own, gets one SIGTERM from hoist and rolls back to v1 undisturbed.
#[test]
fn ctrl_c_during_the_health_gate_rolls_back_to_v1_and_exits_130() {
    use std::os::unix::process::CommandExt;
    if !docker_ready() {
        return;
    }
    let app = App::new("sigint");
    assert_ok(&app.deploy());
    let v1 = app.running();

    app.configure("2.0.0", "/healthz", 3, "4s");
    let release = app.next_release();
    let mut child = app
        .deploy_cmd()
        .args(["--format", "json"])
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_release(&app, &release, &mut child);
    std::thread::sleep(Duration::from_secs(1));
    // As the terminal does: SIGINT to every process in the foreground group.
    // SAFETY: kill(2) on the group of the child we spawned.
    unsafe {
        libc::kill(-libc::pid_t::try_from(child.id()).unwrap(), libc::SIGINT);
    }
    let run: Run = child.wait_with_output().unwrap().into();
    assert_eq!(
        run.code, 130,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert_no_secret(&run);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &report["phases"][0]["invocations"][0]["result"];
    assert_eq!(report["cancelled"], true);
    assert_eq!(result["rolled_back"], true, "{result}");
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.contains("SIGTERM") && !reason.contains("SIGINT"),
        "the script got hoist's SIGTERM only: {reason}"
    );
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    assert_eq!(app.running(), v1, "v1 is the one container running");
    assert!(app.run_dir_is_empty());
}

/// Core dumps are off for hoist and the script it runs, even when the caller allows them:
/// a crash must not write secret values to disk.
#[test]
fn the_deploy_script_runs_with_core_dumps_disabled() {
    use std::os::unix::process::CommandExt;
    if !docker_ready() {
        return;
    }
    let app = App::new("core");
    app.configure("1.0.0", "/healthz", 3, "3s");
    let release = app.next_release();
    let mut cmd = app.deploy_cmd();
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: setrlimit(2) between fork and exec touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            let unlimited = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &raw const unlimited) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    wait_for_release(&app, &release, &mut child);
    let script = script_of(child.id()).expect("the deploy script runs");
    let limits = std::fs::read_to_string(format!("/proc/{script}/limits")).unwrap();
    let run: Run = child.wait_with_output().unwrap().into();
    assert_ok(&run);
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let soft = core
        .trim_start_matches("Max core file size")
        .split_whitespace()
        .next();
    assert_eq!(soft, Some("0"), "{core}");
}

/// The pid of the script a hoist process runs (its child running `…/_script.sh`).
fn script_of(hoist_pid: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after its ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(hoist_pid) && String::from_utf8_lossy(&cmdline).contains("_script.sh") {
            return Some(pid);
        }
    }
    None
}

/// `--image name:tag` with the local transport deploys the image id the tag names now, so a
/// tag that moves later cannot change what this deploy runs; the plan shows both.
#[test]
fn a_local_image_tag_deploys_the_image_id_it_names() {
    if !docker_ready() {
        return;
    }
    let app = App::new("image");
    assert_ok(&app.deploy());
    let running = app.running();
    let id = Command::new("docker")
        .args(["inspect", "--format", "{{.Image}}", &running[0].0])
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    assert!(id.starts_with("sha256:"), "{id}");
    let uri = format!("hoist-e2e/{}:stable", app.name);
    let tagged = Command::new("docker")
        .args(["tag", &id, &uri])
        .status()
        .unwrap();
    assert!(tagged.success());

    let run: Run = app
        .deploy_cmd()
        .args(["--image", &uri, "--release", "stable1", "--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_ok(&run);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let image = &report["plan"]["image"];
    assert_eq!(image["pinned"], true, "{image}");
    assert_eq!(image["reference"], id.as_str(), "hosts run the id: {image}");
    assert_eq!(image["name"], uri.as_str(), "{image}");
    assert!(
        run_phase(&report["plan"])["script"]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("HOIST_IMAGE='{id}'"))
    );
    let now = app.running();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].2, "stable1");

    // A name the engine does not have is bad input, before anything changes.
    let missing: Run = app
        .deploy_cmd()
        .args(["--image", &format!("hoist-e2e/{}:nope", app.name)])
        .output()
        .unwrap()
        .into();
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    assert_eq!(app.running(), now);
}

/// A secret with every character quoting rewrites: `'`, `\`, `"`, `$` and a tab. Its tail
/// is in every quoted form of it, so finding the tail finds any form.
const AWKWARD_SECRET: &str = "hoist-e2e it's a\\back\"slash $HOME\tend-5c2e";
const AWKWARD_TAIL: &str = "5c2e";

/// Hoist's environment asks bash to trace (`BASH_ENV` naming a `set -x` file, and
/// `SHELLOPTS=xtrace`): the script never sees either. While the deploy runs, no process holds
/// the secret in its environment or command line but hoist itself and the container (another
/// pid namespace); nothing hoist prints holds it; the container gets it byte for byte.
#[test]
fn a_tracing_environment_leaks_no_secret_to_output_or_to_any_process() {
    if !docker_ready() {
        return;
    }
    let app = App::new("hygiene");
    // A health gate of a few seconds: time to look at the processes.
    app.configure("1.0.0", "/healthz", 3, "3s");
    let release = app.next_release();
    let scratch = tempfile::tempdir().unwrap();
    let trace = scratch.path().join("trace.sh");
    std::fs::write(&trace, "set -x\n").unwrap();
    let (out, err) = (scratch.path().join("out"), scratch.path().join("err"));
    let mut cmd = app.deploy_cmd();
    cmd.env("HELLO_API_TOKEN", AWKWARD_SECRET)
        .env("BASH_ENV", &trace)
        .env("SHELLOPTS", "xtrace")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = cmd.spawn().unwrap();
    let hoist_exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_hoist")).unwrap();
    let our_pid_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();

    let mut saw_script = false;
    let mut saw_release = false;
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the deploy never ended");
        if let Some(script) = script_of(child.id()) {
            saw_script = true;
            let environ = std::fs::read(format!("/proc/{script}/environ")).unwrap_or_default();
            for name in ["BASH_ENV=", "SHELLOPTS=", "HELLO_API_TOKEN="] {
                assert!(
                    !environ
                        .split(|&b| b == 0)
                        .any(|v| v.starts_with(name.as_bytes())),
                    "the script got {name}"
                );
            }
        }
        saw_release |= app.running().iter().any(|c| c.2 == release);
        for (pid, exe, what) in holders_of(AWKWARD_SECRET.as_bytes()) {
            // hoist itself (also a fork of it not yet running its new program, which shares
            // hoist's memory: its program is read before its environment, so a fork that
            // execs in between is still taken for hoist, and is looked at again next round) …
            if pid == child.id() || exe.as_deref() == Some(hoist_exe.as_path()) {
                continue;
            }
            // … and the app in its container.
            if std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns != our_pid_ns) {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            panic!(
                "process {pid} ({}) holds the secret in its {what}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = Run {
        code: child.wait().unwrap().code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out).unwrap(),
        stderr: std::fs::read_to_string(&err).unwrap(),
    };
    assert_ok(&run);
    assert!(saw_script && saw_release, "looked while the script ran");
    for (name, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        assert!(
            !text.contains(AWKWARD_TAIL),
            "the secret in hoist's {name}:\n{text}"
        );
    }
    let running = app.running();
    let env = docker_out(&["exec", &running[0].0, "env"]);
    assert!(
        env.lines()
            .any(|l| l == format!("HELLO_API_TOKEN={AWKWARD_SECRET}")),
        "the container's env: {env:?}"
    );
}

/// The pids whose environment or command line holds `needle`, the program each ran when
/// looked at just before, and which of the two holds it.
fn holders_of(needle: &[u8]) -> Vec<(u32, Option<PathBuf>, &'static str)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        for what in ["environ", "cmdline"] {
            let bytes = std::fs::read(format!("/proc/{pid}/{what}")).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push((pid, exe.clone(), what));
            }
        }
    }
    found
}

/// A secret shorter than 8 characters is named in a warning, once, before anything runs
/// (here with `--dry-run`, which never talks to Docker); a longer one is not.
#[test]
fn a_short_secret_warns_before_any_docker_call() {
    let app = App::new("short");
    let warning = "secret HELLO_API_TOKEN is shorter than 8 characters: hoist cannot reliably \
                   scrub it from output";
    for (value, warns) in [("abc1234", true), ("abc", true), ("abcd1234", false)] {
        let trap = DockerTrap::new();
        let run: Run = app
            .deploy_cmd()
            .args(["--dry-run"])
            .env("HELLO_API_TOKEN", value)
            .env("DOCKER_HOST", &trap.url)
            .output()
            .unwrap()
            .into();
        assert_ok(&run);
        let count = run.stderr.matches(warning).count();
        assert_eq!(count, usize::from(warns), "{value}: {}", run.stderr);
        assert!(!trap.was_called(), "no Docker call");
    }
}

/// history.jsonl keeps the last 1000 records: a host deployed to for years does not fill
/// its disk with them.
#[test]
fn the_history_keeps_the_last_thousand_records() {
    if !docker_ready() {
        return;
    }
    let app = App::new("history");
    let dir = Path::new("/var/lib/hoist").join(&app.name);
    std::fs::create_dir_all(&dir).unwrap();
    let old: String = (0..1200)
        .map(|i| format!("{{\"status\":\"deployed\",\"release\":\"old-{i}\"}}"))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    std::fs::write(dir.join("history.jsonl"), old).unwrap();
    assert_ok(&app.deploy());
    let records = history(&app);
    assert_eq!(records.len(), 1000);
    assert_eq!(records[0]["release"], "old-201", "the oldest go first");
    assert_eq!(records[999]["status"], "deployed");
    assert_eq!(records[999]["app"], app.name.as_str());
}

impl App {
    /// `hoist status --local --format json` for this app.
    fn status(&self) -> serde_json::Value {
        let run: Run = hoist()
            .current_dir(&self.root)
            .args(["status", "--local", "--format", "json"])
            .output()
            .unwrap()
            .into();
        assert_eq!(run.code, 0, "status failed: {}", run.stderr);
        let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        report["targets"][0]["host"].clone()
    }

    fn rollback(&self, args: &[&str]) -> Run {
        hoist()
            .current_dir(&self.root)
            .args(["rollback", "--local"])
            .args(args)
            .output()
            .unwrap()
            .into()
    }
}

/// `hoist status` shows the live release (healthy, its container and image) and what is
/// retained; `hoist rollback` starts v1 again with no secret in hoist's environment (the
/// container keeps its own), `--to` goes forward again, and a release this host does not
/// retain is refused with nothing changed.
#[test]
fn status_and_rollback_locally() {
    if !docker_ready() {
        return;
    }
    let app = App::new("rollback");
    assert_eq!(
        app.status()["running"],
        serde_json::Value::Null,
        "nothing yet"
    );
    let v1 = app.next_release();
    assert_ok(&app.deploy());
    app.configure("2.0.0", "/healthz", 3, "0s");
    let v2 = app.next_release();
    assert_ok(&app.deploy());
    assert_eq!(app.get("/version").as_deref(), Some("2.0.0"));

    let status = app.status();
    let running = &status["running"];
    assert_eq!(running["release"], v2.as_str(), "{status}");
    assert_eq!(running["health"], "healthy", "{status}");
    assert_eq!(running["restart"], "unless-stopped", "{status}");
    assert!(
        running["image_id"].as_str().unwrap().starts_with("sha256:"),
        "{status}"
    );
    let retained: Vec<&str> = status["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    assert_eq!(retained, [v1.as_str()], "{status}");
    assert_eq!(status["history"].as_array().unwrap().len(), 2, "{status}");

    // --dry-run shows the script each host would run, and changes nothing.
    let before = app.containers();
    let dry = app.rollback(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("HOIST_TO=''") && dry.stdout.contains("#!/bin/bash"),
        "{}",
        dry.stdout
    );
    assert_eq!(app.containers(), before, "a dry run changes nothing");

    // Back to v1: no secret in hoist's environment, the container keeps its own.
    let back = app.rollback(&["--format", "json"]);
    assert_eq!(back.code, 0, "{}\n{}", back.stdout, back.stderr);
    let report: serde_json::Value = serde_json::from_str(&back.stdout).unwrap();
    assert_eq!(report["rolled_back"], 1, "{report}");
    assert_eq!(
        report["invocations"][0]["result"]["release"],
        v1.as_str(),
        "{report}"
    );
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    assert_eq!(running[0].2, v1);
    let env = docker_out(&["exec", &running[0].0, "env"]);
    assert!(env.contains(&format!("HELLO_API_TOKEN={SECRET}")), "{env}");
    let status = app.status();
    assert_eq!(status["running"]["release"], v1.as_str(), "{status}");
    assert_eq!(status["running"]["restart"], "unless-stopped", "{status}");
    let last = status["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["status"], "rolled-back", "{last}");
    assert_eq!(last["release"], v1.as_str(), "{last}");

    // A release this host does not retain: refused, nothing changed.
    let before = app.containers();
    let unknown = app.rollback(&["--to", "no-such-release"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(
        unknown
            .stdout
            .contains("release no-such-release is not retained on this host"),
        "{}",
        unknown.stdout
    );
    assert_eq!(app.containers(), before, "nothing changed");
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));

    // Bad input: exit 2 before anything runs.
    let bad = app.rollback(&["--to", "../v1"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--to `../v1` is not a release id"),
        "{}",
        bad.stderr
    );

    // Forward again with --to.
    let forward = app.rollback(&["--to", &v2]);
    assert_eq!(forward.code, 0, "{}\n{}", forward.stdout, forward.stderr);
    assert!(forward.stdout.contains("rolled back"), "{}", forward.stdout);
    assert_eq!(app.get("/version").as_deref(), Some("2.0.0"));
    assert_eq!(app.running().len(), 1);
}

/// A plan saved for review (`plan --out`) on a pull request's branch applies with `deploy
/// --plan` to any commit of the reviewed tree (a squash merge, a merge commit, a rebase),
/// and is refused — exit 2, nothing changed, the difference named — when a file, the config,
/// the strategy, or the script hoist would run is not the reviewed one. Applied, the release
/// is the merged commit's, and the executed script differs from the reviewed one only in
/// the image reference and the release.
#[test]
fn a_reviewed_plan_applies_only_while_nothing_changed() {
    if !docker_ready() {
        return;
    }
    let app = App::new("reviewed");
    let saved = tempfile::tempdir().unwrap();
    let reviewed_path = saved.path().join("plan.json");
    let reviewed_file = reviewed_path.to_str().unwrap();
    // The pull request: one commit on a branch, planned there.
    git(&app.root, &["branch", "-M", "main"]);
    git(&app.root, &["checkout", "-qb", "feature"]);
    std::fs::write(app.root.join("CHANGELOG"), "the feature\n").unwrap();
    git(&app.root, &["add", "-A"]);
    git(&app.root, &["commit", "-qm", "feature"]);
    let out = hoist()
        .current_dir(&app.root)
        .args(["plan", "--local", "--out", reviewed_file])
        .output()
        .unwrap();
    let run: Run = out.into();
    run.success()
        .stdout_is_empty()
        .stderr_has("hoist deploy --plan");
    let reviewed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&reviewed_path).unwrap()).unwrap();
    let reviewed_commit = reviewed["revision"]["sha"].as_str().unwrap().to_owned();
    let reviewed_script = run_phase(&reviewed)["script"].clone();
    git(&app.root, &["checkout", "-q", "main"]);

    let apply = |plan: &str, extra: &[&str]| -> Run {
        app.deploy_cmd()
            .args(["--plan", plan])
            .args(extra)
            .output()
            .unwrap()
            .into()
    };
    let refused = |run: &Run, why: &str| {
        assert_eq!(run.code, 2, "{why}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr
                .contains("the reviewed plan does not match what this deploy would run")
                && run.stderr.contains(why),
            "{why}: {}",
            run.stderr
        );
        assert!(app.containers().is_empty(), "{why}: nothing changed");
    };
    let head = || {
        let out = Command::new("git")
            .arg("-C")
            .arg(&app.root)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let applies = |how: &str| {
        assert_ne!(head(), reviewed_commit, "{how}: a new commit");
        let dry = apply(reviewed_file, &["--dry-run"]);
        assert_eq!(dry.code, 0, "{how}: {}", dry.stderr);
        assert!(dry.stderr.contains("applies"), "{how}: {}", dry.stderr);
        assert!(
            app.containers().is_empty(),
            "{how}: --dry-run changes nothing"
        );
    };

    // Main has not moved: a squash merge, a merge commit and a rebase are new commits of
    // the reviewed tree, and the plan applies to each.
    git(&app.root, &["merge", "-q", "--squash", "feature"]);
    git(&app.root, &["commit", "-qm", "squashed feature (#1)"]);
    applies("squash merge");
    git(&app.root, &["reset", "-q", "--hard", "HEAD~1"]);
    git(
        &app.root,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge pull request #1",
            "feature",
        ],
    );
    applies("merge commit");
    git(&app.root, &["reset", "-q", "--hard", "HEAD~1"]);
    git(&app.root, &["cherry-pick", "--allow-empty", "feature"]);
    if head() == reviewed_commit {
        // Same second, same parent: cherry-pick made the very same commit; amend its time.
        git(
            &app.root,
            &[
                "commit",
                "-q",
                "--amend",
                "--no-edit",
                "--date=2030-01-01T00:00:00",
            ],
        );
    }
    applies("rebase");
    git(&app.root, &["reset", "-q", "--hard", "HEAD~1"]);

    // One more file than reviewed: the file is named.
    git(&app.root, &["merge", "-q", "--squash", "feature"]);
    std::fs::write(app.root.join("NOTES"), "later\n").unwrap();
    git(&app.root, &["add", "-A"]);
    git(&app.root, &["commit", "-qm", "feature and notes"]);
    let run = apply(reviewed_file, &[]);
    refused(&run, "source changed: the plan was reviewed on tree");
    assert!(run.stderr.contains(": added NOTES"), "{}", run.stderr);
    assert!(!run.stderr.contains("config changed"), "{}", run.stderr);
    // An untracked file in the build context, with the reviewed tree: named too.
    git(&app.root, &["reset", "-q", "--hard", "HEAD~1"]);
    git(&app.root, &["merge", "-q", "--squash", "feature"]);
    git(&app.root, &["commit", "-qm", "squashed feature (#1)"]);
    std::fs::write(app.root.join("stray.txt"), "not in git\n").unwrap();
    let run = apply(reviewed_file, &[]);
    refused(&run, "build context changed");
    assert!(run.stderr.contains("added stray.txt"), "{}", run.stderr);
    std::fs::remove_file(app.root.join("stray.txt")).unwrap();

    // Another config (and so another commit): the config, and the header line it changes.
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    std::fs::write(
        app.root.join("hoist.yaml"),
        yaml.replace("retain: 3", "retain: 4"),
    )
    .unwrap();
    git(&app.root, &["commit", "-qam", "retain 4"]);
    let run = apply(reviewed_file, &[]);
    refused(&run, "config changed");
    assert!(run.stderr.contains("HOIST_RETAIN"), "{}", run.stderr);
    git(&app.root, &["reset", "-q", "--hard", "HEAD~1"]);

    // Another strategy.
    std::fs::write(
        app.root.join("hoist.yaml"),
        // Explicit ports: the default ones (publish + 10000, + 20000) overflow for a high
        // free port.
        format!("{yaml}strategy: blue-green\nblue_green:\n  ports: [20001, 20002]\n"),
    )
    .unwrap();
    git(&app.root, &["commit", "-qam", "blue-green"]);
    refused(
        &apply(reviewed_file, &[]),
        "strategy changed: reviewed recreate, now blue-green",
    );
    git(&app.root, &["reset", "-q", "--hard", "HEAD~1"]);

    // The script body another hoist would run (the saved plan's library edited, and its
    // hash made to match, as a plan made by another version of hoist would be).
    let mut other = reviewed.clone();
    let script = &mut other["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["kind"] == "run-phase")
        .unwrap()["script"];
    let text = script["text"].as_str().unwrap().replacen(
        "    set -eEuo",
        "    : other hoist\n    set -eEuo",
        1,
    );
    script["sha256"] = hoist::plan::script::sha256_hex(text.as_bytes()).into();
    script["text"] = text.into();
    let other_path = saved.path().join("other.json");
    std::fs::write(&other_path, serde_json::to_string_pretty(&other).unwrap()).unwrap();
    let run = apply(other_path.to_str().unwrap(), &[]);
    refused(&run, "script body changed");
    assert!(run.stderr.contains(": other hoist"), "{}", run.stderr);

    // Edited without a matching hash: tampering.
    other["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["kind"] == "run-phase")
        .unwrap()["script"]["sha256"] = reviewed_script["sha256"].clone();
    std::fs::write(&other_path, serde_json::to_string_pretty(&other).unwrap()).unwrap();
    refused(
        &apply(other_path.to_str().unwrap(), &[]),
        "does not match the sha256 the plan shows",
    );

    // Nothing changed: --dry-run says it applies and changes nothing; then it is applied.
    let dry = apply(reviewed_file, &["--dry-run"]);
    dry.success().stderr_has("applies");
    assert!(app.containers().is_empty());
    let squashed = head();
    assert_ne!(squashed, reviewed_commit);
    let run = apply(reviewed_file, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
    let report = run.json();
    // The release is the merged commit's, not the one written in the file.
    assert_eq!(report["release"], squashed[..12]);
    assert_ne!(report["release"], reviewed["release"]);
    assert_eq!(
        report["reviewed"][0]["reviewed_sha256"],
        reviewed_script["sha256"]
    );
    let executed = run_phase(&report["plan"])["script"].clone();
    assert_eq!(report["reviewed"][0]["executed_sha256"], executed["sha256"]);
    // Line by line, the executed script is the reviewed one but for the image reference.
    let (r, e) = (
        reviewed_script["text"].as_str().unwrap(),
        executed["text"].as_str().unwrap(),
    );
    assert_eq!(r.lines().count(), e.lines().count());
    let differing: Vec<&str> = r
        .lines()
        .zip(e.lines())
        .filter(|(a, b)| a != b && !a.starts_with('#'))
        .map(|(a, _)| a.split('=').next().unwrap())
        .collect();
    assert_eq!(
        differing,
        ["HOIST_RELEASE", "HOIST_IMAGE", "HOIST_IMAGE_LABEL"],
        "{r}\n---\n{e}"
    );
    assert!(
        e.contains(&format!("# source revision {squashed}\n")),
        "{e}"
    );
}

/// A deploy run as a GitHub Actions step: its environment, and what it left for the
/// workflow.
struct GithubRun {
    run: Run,
    /// `$GITHUB_OUTPUT`, as written.
    output_text: String,
    outputs: std::collections::BTreeMap<String, String>,
    /// `$GITHUB_STEP_SUMMARY`, as appended to.
    step_summary: String,
    /// `$RUNNER_TEMP`, which holds the files.
    dir: tempfile::TempDir,
}

/// `$GITHUB_OUTPUT` as the runner reads it: `name=value` lines and `name<<DELIMITER`
/// heredocs.
fn github_outputs(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        match (line.split_once('='), line.split_once("<<")) {
            (Some((name, value)), _) if !name.contains("<<") => {
                out.insert(name.to_owned(), value.to_owned());
            }
            (_, Some((name, delimiter))) => {
                let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
                out.insert(name.to_owned(), value.join("\n"));
            }
            _ => panic!("not an output line: {line:?}\n{text}"),
        }
    }
    out
}

impl App {
    /// `hoist deploy --local` with `GITHUB_ACTIONS=true` and the runner's files in a
    /// scratch directory.
    fn deploy_on_github(&self, args: &[&str]) -> GithubRun {
        let mut cmd = self.deploy_cmd();
        cmd.args(args);
        Self::on_github(cmd)
    }

    /// `cmd` (a `hoist deploy`) run as a GitHub Actions step.
    fn on_github(mut cmd: Command) -> GithubRun {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("github-output");
        let step_summary = dir.path().join("step-summary.md");
        std::fs::write(&output, "").unwrap();
        std::fs::write(&step_summary, "").unwrap();
        let run: Run = cmd
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_STEP_SUMMARY", &step_summary)
            .env("RUNNER_TEMP", dir.path())
            .output()
            .unwrap()
            .into();
        let output_text = std::fs::read_to_string(&output).unwrap();
        GithubRun {
            run,
            outputs: github_outputs(&output_text),
            output_text,
            step_summary: std::fs::read_to_string(&step_summary).unwrap(),
            dir,
        }
    }
}

/// The secret is on stdout only in the `::add-mask::` line that comes first, and in no
/// file written for the workflow.
fn assert_masked_first_and_nowhere_else(gh: &GithubRun) {
    let run = &gh.run;
    let mut stdout = run.stdout.lines();
    assert_eq!(
        stdout.next(),
        Some(format!("::add-mask::{SECRET}").as_str()),
        "the mask comes first:\n{}",
        run.stdout
    );
    let rest: Vec<&str> = stdout.collect();
    assert!(
        !rest.join("\n").contains(SECRET),
        "secret in stdout:\n{}",
        run.stdout
    );
    assert!(
        !run.stderr.contains(SECRET),
        "secret in stderr:\n{}",
        run.stderr
    );
    let summary = std::fs::read_to_string(&gh.outputs["summary"]).unwrap();
    for (name, text) in [
        ("GITHUB_OUTPUT", &gh.output_text),
        ("GITHUB_STEP_SUMMARY", &gh.step_summary),
        ("the summary file", &summary),
    ] {
        assert!(!text.contains(SECRET), "secret in {name}:\n{text}");
    }
}

/// Under GitHub Actions a deploy masks its secret before printing anything, shows each
/// target's output in a group once judged (nothing streamed), writes the step's outputs
/// and a job summary with the per-target table and the timeline, the same text in the
/// `summary` file.
#[test]
fn under_github_actions_a_deploy_masks_first_groups_output_and_writes_outputs_and_summary() {
    if !docker_ready() {
        return;
    }
    let app = App::new("gha");
    let release = app.next_release();
    let gh = app.deploy_on_github(&[]);
    let run = &gh.run;
    assert_ok(run);
    assert_masked_first_and_nowhere_else(&gh);

    let o = &gh.outputs;
    assert_eq!(o["release"], release, "{o:?}");
    assert!(o["image"].starts_with("sha256:"), "the image id: {o:?}");
    assert_eq!(o["digest"], "", "a local image is in no registry: {o:?}");
    assert_eq!(o["command-id"], "", "no SSM command: {o:?}");
    assert_eq!(o["result"], "deployed", "{o:?}");
    // No plan file was applied: the `plan` output is the plan the deploy executed.
    assert!(Path::new(&o["plan"]).starts_with(gh.dir.path()), "{o:?}");
    let executed = hoist::plan::Plan::read(&std::fs::read_to_string(&o["plan"]).unwrap(), "plan")
        .expect("the executed plan");
    assert_eq!(executed.image.reference, o["image"], "{o:?}");

    let summary = std::fs::read_to_string(&o["summary"]).unwrap();
    assert!(
        Path::new(&o["summary"]).starts_with(gh.dir.path()),
        "in RUNNER_TEMP: {o:?}"
    );
    assert_eq!(summary, gh.step_summary, "the same text");
    assert!(
        summary.starts_with(&format!(
            "### hoist deploy: `{}` release `{release}`: deployed\n",
            app.name
        )),
        "{summary}"
    );
    assert!(
        summary.contains("| target | status | release | duration | detail |"),
        "{summary}"
    );
    let row = summary
        .lines()
        .find(|l| l.starts_with("| local |"))
        .unwrap_or_else(|| panic!("a row for local:\n{summary}"));
    assert!(
        row.starts_with(&format!("| local | deployed | {release} | ")),
        "{row}"
    );
    assert!(row.contains("health: http 200"), "{row}");
    assert!(
        summary.contains("| step | status | duration | detail |")
            && summary.contains("| build | done | ")
            && summary.contains("| run-phase deploy | done | "),
        "the timeline:\n{summary}"
    );

    // One group per target, holding its output; nothing streamed live.
    assert_eq!(
        run.stderr.matches("::group::deploy · local\n").count(),
        1,
        "{}",
        run.stderr
    );
    let group = run
        .stderr
        .split("::group::deploy · local\n")
        .nth(1)
        .and_then(|g| g.split("::endgroup::").next())
        .unwrap();
    assert!(group.contains("hoist: "), "the script's output:\n{group}");
    assert!(!run.stderr.contains("[local] hoist:"), "{}", run.stderr);
    assert!(!run.stderr.contains("::error"), "{}", run.stderr);
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
}

/// A deploy whose health check fails under GitHub Actions: the target is annotated with
/// the reason, `result` says it rolled back, and the summary's row says so.
#[test]
fn under_github_actions_a_failed_deploy_is_annotated_and_its_result_is_rolled_back() {
    if !docker_ready() {
        return;
    }
    let app = App::new("gha-fail");
    assert_ok(&app.deploy());
    app.configure("2.0.0", "/does-not-exist", 3, "0s");
    let release = app.next_release();
    let gh = app.deploy_on_github(&[]);
    let run = &gh.run;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_masked_first_and_nowhere_else(&gh);
    let o = &gh.outputs;
    assert_eq!(o["result"], "rolled-back", "{o:?}");
    assert_eq!(o["release"], release, "{o:?}");
    let annotation = run
        .stderr
        .lines()
        .find(|l| l.starts_with("::error title=hoist deploy failed on local::"))
        .unwrap_or_else(|| panic!("an annotation for local:\n{}", run.stderr));
    assert!(annotation.contains("health"), "the reason: {annotation}");
    assert_eq!(
        run.stderr.matches("::error").count(),
        1,
        "one annotation, none for the exit: {}",
        run.stderr
    );
    let row = gh
        .step_summary
        .lines()
        .find(|l| l.starts_with("| local |"))
        .unwrap_or_else(|| panic!("a row for local:\n{}", gh.step_summary));
    assert!(row.starts_with("| local | rolled back | "), "{row}");
    assert!(
        gh.step_summary.contains("| run-phase deploy | failed | "),
        "{}",
        gh.step_summary
    );
    assert!(
        run.stderr.contains("::group::deploy · local\n"),
        "{}",
        run.stderr
    );
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
}

/// `--quiet` prints results and errors only: no progress line, no host output; the
/// default shows the steps each host's script logs (`hoist: …`); `--verbose` adds every
/// other line the hosts print (here the failed container's log), as it arrives.
#[test]
fn quiet_prints_no_progress_and_verbose_adds_every_host_line() {
    if !docker_ready() {
        return;
    }
    let app = App::new("verbosity");
    let quiet: Run = app.deploy_cmd().arg("-q").output().unwrap().into();
    assert_ok(&quiet);
    assert!(
        quiet.stderr.is_empty(),
        "no progress lines:\n{}",
        quiet.stderr
    );
    assert!(
        quiet.stdout.lines().any(|l| l.starts_with("local ")),
        "the result table is printed:\n{}",
        quiet.stdout
    );

    // A release that fails its health check and logs a line when it starts: the script
    // prints the container's last log lines.
    let failing = |version: &str| {
        app.configure(version, "/does-not-exist", 3, "0s");
        let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
        let yaml = yaml.replace(
            "container:\n",
            "container:\n  command: \"echo booting the release; exec busybox httpd -f -p 8080 -h /www\"\n",
        );
        std::fs::write(app.root.join("hoist.yaml"), yaml).unwrap();
        git(&app.root, &["commit", "-qam", "a release that logs"]);
    };
    let host_lines = |run: &Run| -> Vec<String> {
        run.stderr
            .lines()
            .filter_map(|l| l.split_once(" [local] ").map(|(_, line)| line.to_owned()))
            .collect()
    };
    failing("2.0.0");
    let normal = app.deploy();
    assert_eq!(normal.code, 1, "{}\n{}", normal.stdout, normal.stderr);
    let shown = host_lines(&normal);
    assert!(
        shown.iter().any(|l| l.starts_with("hoist: last log lines")),
        "{}",
        normal.stderr
    );
    assert!(
        shown.iter().all(|l| l.starts_with("hoist: ")),
        "by default only the script's own steps: {shown:#?}"
    );
    assert!(
        normal.stdout.contains("  | "),
        "the log lines are in the table's stderr tail:\n{}",
        normal.stdout
    );

    failing("3.0.0");
    let verbose: Run = app.deploy_cmd().arg("--verbose").output().unwrap().into();
    assert_eq!(verbose.code, 1, "{}\n{}", verbose.stdout, verbose.stderr);
    assert_no_secret(&verbose);
    let all = host_lines(&verbose);
    assert!(
        all.iter().any(|l| l.starts_with("  | ")),
        "--verbose shows the container's log lines live: {all:#?}"
    );
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));
}

/// A deploy of what already runs — the same image, configuration and env — changes nothing:
/// the host reports `unchanged` and its container keeps running untouched. `--force`
/// replaces it anyway, and a changed secret value is a change.
#[test]
fn an_identical_redeploy_is_unchanged_unless_forced_or_a_secret_changed() {
    if !docker_ready() {
        return;
    }
    let app = App::new("same");
    assert_ok(&app.deploy());
    let first = app.containers();
    assert_eq!(first.len(), 1, "{first:?}");

    let again = app.deploy();
    assert_ok(&again);
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    assert_eq!(
        app.containers(),
        first,
        "nothing was created, stopped or started"
    );
    assert_eq!(app.get("/version").as_deref(), Some("1.0.0"));

    let forced: Run = app
        .deploy_cmd()
        .arg("--force")
        .output()
        .expect("hoist runs")
        .into();
    assert_ok(&forced);
    assert!(!forced.stdout.contains("unchanged"), "{}", forced.stdout);
    let after_force = app.running();
    assert_eq!(after_force.len(), 1);
    assert_ne!(after_force[0].0, first[0].0, "a new container");

    let rotated: Run = app
        .deploy_cmd()
        .env("HELLO_API_TOKEN", format!("{SECRET}-rotated"))
        .output()
        .expect("hoist runs")
        .into();
    assert_ok(&rotated);
    assert!(!rotated.stdout.contains("unchanged"), "{}", rotated.stdout);
    assert_ne!(
        app.running()[0].0,
        after_force[0].0,
        "the new secret needs a new container"
    );

    // Running the same release but failing its own health check: replaced, not unchanged.
    let sick = app.running()[0].0.clone();
    let out = Command::new("docker")
        .args(["exec", &sick, "rm", "/www/healthz"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let healed: Run = app
        .deploy_cmd()
        .env("HELLO_API_TOKEN", format!("{SECRET}-rotated"))
        .output()
        .expect("hoist runs")
        .into();
    assert_ok(&healed);
    assert!(!healed.stdout.contains("unchanged"), "{}", healed.stdout);
    assert!(
        format!("{}{}", healed.stdout, healed.stderr).contains("is not healthy"),
        "{}\n{}",
        healed.stdout,
        healed.stderr
    );
    assert_ne!(app.running()[0].0, sick, "a new container");
    assert_eq!(app.get("/healthz").as_deref(), Some("ok"));
    assert!(app.run_dir_is_empty());
}

/// `deploy --timings` shows where the time went: each step, the script's phases on each
/// target with their times, and hoist's overhead; the JSON report carries the same numbers,
/// and they add up.
#[test]
fn timings_show_each_step_the_scripts_phases_and_the_overhead() {
    if !docker_ready() {
        return;
    }
    let app = App::new("timings");
    let run: Run = app.deploy_cmd().arg("--timings").output().unwrap().into();
    assert_ok(&run);
    for line in [
        "timings:",
        "build (done)",
        "run-phase deploy (done)",
        "script on local: ",
        "image +",
        "gate +",
        "verified +",
        "hoist's overhead",
    ] {
        assert!(run.stdout.contains(line), "{line:?} in:\n{}", run.stdout);
    }
    let run: Run = app
        .deploy_cmd()
        .args(["--force", "--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_ok(&run);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let t = &report["timings"];
    let ms = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {t}"));
    assert!(ms("wall_ms") > 0);
    // Each is rounded down to the millisecond on its own.
    let rest = ms("wall_ms") - ms("build_ms") - ms("push_ms") - ms("slowest_scripts_ms");
    assert!(ms("overhead_ms").abs_diff(rest) <= 3, "{t}");
    let inv = &report["phases"][0]["invocations"][0];
    let marks: Vec<(String, u64)> = serde_json::from_value(inv["result"]["marks"].clone()).unwrap();
    let names: Vec<&str> = marks.iter().map(|(n, _)| n.as_str()).collect();
    for phase in ["image", "stop", "start", "gate", "verified"] {
        assert!(names.contains(&phase), "{phase} in {names:?}");
    }
    assert!(
        marks.windows(2).all(|w| w[0].1 <= w[1].1),
        "marks in order: {marks:?}"
    );
    assert!(
        marks.last().unwrap().1 <= inv["duration"].as_u64().unwrap() + 50,
        "marks within the script's run: {marks:?}, {inv}"
    );
    assert_eq!(ms("slowest_scripts_ms"), inv["duration"].as_u64().unwrap());
}

/// A value the host reads itself (`{ssm: …}`: hoist never knows it), with a slash, an `@`
/// and a space, so that its JSON and URL forms differ from it.
const HOST_SECRET: &str = "h0st-s3cret/p@ss word-7c2e";

/// The app of the host-secret test: it prints its `DB_URL` as an app that fails to connect
/// would (as is, in a JSON log line with `\/`, percent-encoded in a URL), then serves
/// without the health path, so that its gate fails.
const LEAKY_APP: &str = "#!/bin/sh\n\
echo \"connecting to $DB_URL: connection refused\"\n\
echo \"{\\\"dsn\\\":\\\"$(echo \"$DB_URL\" | sed 's,/,\\\\/,g')\\\"}\"\n\
echo \"url=postgres://app:$(echo \"$DB_URL\" | sed 's,%,%25,g; s,/,%2F,g; s,@,%40,g; s, ,%20,g')@db:5432/app\"\n\
exec busybox httpd -f -p 8080 -h /www\n";

/// A value the host resolved itself is masked on the host in the container's log lines a
/// failed gate relays: it is in no output of hoist (text with `--verbose`, `--format json`,
/// GitHub mode and the files it writes there), nor in what the script itself printed (the
/// invocation's output, kept by a `bash` first on PATH), while the relayed lines are there,
/// masked. The host's `aws` is a stand-in that answers the parameter's value; it also
/// records the TMPDIR the script gave it, which is in the run's private tmpfs.
#[test]
fn a_host_resolved_secret_the_app_prints_is_masked_in_every_output() {
    if !docker_ready() {
        return;
    }
    let app = App::new("hostsecret");
    std::fs::write(app.root.join("leaky.sh"), LEAKY_APP).unwrap();
    let dockerfile = std::fs::read_to_string(app.root.join("Dockerfile")).unwrap();
    std::fs::write(
        app.root.join("Dockerfile"),
        format!("{dockerfile}COPY leaky.sh /leaky.sh\n"),
    )
    .unwrap();
    let yaml = format!(
        "app: {name}\n\
         image:\n  repository: hoist-e2e/{name}\n\
         targets:\n  tags:\n    Env: [test]\n\
         container:\n  port: 8080\n  publish: {port}\n  stop_timeout: 2s\n  \
         command: [sh, /leaky.sh]\n\
         healthcheck:\n  path: /does-not-exist\n  interval: 1s\n  timeout: 4s\n\
         env:\n  secret:\n    - HELLO_API_TOKEN\n    - DB_URL: {{ssm: /e2e/db-url}}\n",
        name = app.name,
        port = app.port,
    );
    std::fs::write(app.root.join("hoist.yaml"), yaml).unwrap();
    git(&app.root, &["add", "-A"]);
    git(&app.root, &["commit", "-qm", "leaky"]);

    // The host's tools: `aws` answers the parameter (and notes its TMPDIR), `bash` keeps what
    // the transport's script prints (the invocation's output), then passes it on.
    let tools = tempfile::tempdir().unwrap();
    let bin = tools.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let kept = tools.path().join("invocation");
    let tmp_note = tools.path().join("tmpdir");
    let real_bash = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v bash"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let write_tool = |name: &str, text: String| {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    };
    write_tool(
        "aws",
        format!(
            "#!/bin/sh\n\
             case \"$*\" in *'get-parameter'*'--with-decryption'*'--name /e2e/db-url'*) ;; \
             *) echo \"unexpected: aws $*\" >&2; exit 255 ;; esac\n\
             t=$(mktemp) && printf '%s %s %s\\n' \"$TMPDIR\" \"$(stat -f -c %T \"$t\")\" \"$t\" >'{note}' && rm -f \"$t\"\n\
             printf '%s\\n' '{HOST_SECRET}'\n",
            note = tmp_note.display(),
        ),
    );
    write_tool(
        "bash",
        format!(
            "#!/bin/sh\n\
             if [ \"$1\" = --noprofile ]; then\n  \
             {bash} \"$@\" >'{kept}.out' 2>'{kept}.err'; code=$?\n  \
             cat '{kept}.out'; cat '{kept}.err' >&2; exit $code\nfi\n\
             exec {bash} \"$@\"\n",
            bash = real_bash.trim(),
            kept = kept.display(),
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let forms = [
        HOST_SECRET.to_owned(),
        HOST_SECRET.replace('/', "\\/"),
        HOST_SECRET
            .replace('/', "%2F")
            .replace('@', "%40")
            .replace(' ', "%20"),
        "p@ss word".to_owned(),
    ];
    let invocation = |what: &str| {
        let out = std::fs::read_to_string(format!("{}.out", kept.display())).unwrap();
        let err = std::fs::read_to_string(format!("{}.err", kept.display())).unwrap();
        for form in &forms {
            assert!(
                !out.contains(form.as_str()) && !err.contains(form.as_str()),
                "{what}: the invocation's output holds {form:?}:\n{out}\n{err}"
            );
        }
        // The relayed lines are there, masked (not left out).
        for masked in [
            "  | connecting to ***: connection refused",
            "  | {\"dsn\":\"***\"}",
            "  | url=postgres://app:***@db:5432/app",
        ] {
            assert!(err.contains(masked), "{what}: no {masked:?} in:\n{err}");
        }
    };
    let no_secret = |what: &str, text: &str| {
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "{what} holds {form:?}:\n{text}"
            );
        }
    };

    // Text, with every host line (--verbose).
    let mut cmd = app.deploy_cmd();
    cmd.env("PATH", &path).arg("--verbose");
    let run: Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    no_secret("text stdout", &run.stdout);
    no_secret("text stderr", &run.stderr);
    assert!(
        run.stderr.contains("connecting to ***: connection refused"),
        "the relayed log, masked:\n{}",
        run.stderr
    );
    invocation("text");
    let note = std::fs::read_to_string(&tmp_note).unwrap();
    let private = Path::new("/run/hoist").join(&app.name).join("tmp");
    let mut note = note.split_whitespace();
    assert_eq!(
        note.next(),
        Some(private.to_str().unwrap()),
        "the script's TMPDIR"
    );
    assert_eq!(note.next(), Some("tmpfs"), "where mktemp writes");
    assert!(app.run_dir_is_empty(), "the private tmpfs is gone");
    assert!(app.containers().is_empty(), "the failed release is removed");

    // JSON.
    let mut cmd = app.deploy_cmd();
    cmd.env("PATH", &path).args(["--format", "json"]);
    let run: Run = cmd.output().unwrap().into();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    no_secret("json stdout", &run.stdout);
    no_secret("json stderr", &run.stderr);
    serde_json::from_str::<serde_json::Value>(&run.stdout).expect("a JSON report");
    invocation("json");

    // GitHub Actions.
    let mut cmd = app.deploy_cmd();
    cmd.env("PATH", &path);
    let gh = App::on_github(cmd);
    assert_eq!(gh.run.code, 1, "{}\n{}", gh.run.stdout, gh.run.stderr);
    no_secret("GitHub stdout", &gh.run.stdout);
    no_secret("GitHub stderr", &gh.run.stderr);
    no_secret("GITHUB_OUTPUT", &gh.output_text);
    no_secret("GITHUB_STEP_SUMMARY", &gh.step_summary);
    for file in walkdir::WalkDir::new(gh.dir.path()) {
        let file = file.unwrap();
        if file.file_type().is_file() {
            let text = String::from_utf8_lossy(&std::fs::read(file.path()).unwrap()).into_owned();
            no_secret(&file.path().display().to_string(), &text);
        }
    }
    assert!(
        gh.run
            .stderr
            .contains("connecting to ***: connection refused"),
        "the relayed log in the target's group:\n{}",
        gh.run.stderr
    );
    invocation("GitHub");
    let history = std::fs::read_to_string(
        Path::new("/var/lib/hoist")
            .join(&app.name)
            .join("history.jsonl"),
    )
    .unwrap();
    no_secret("history.jsonl", &history);
}

/// `plan --against-live` reads what runs now: right after a deploy every target is
/// `unchanged`; a changed clear env value shows only that key (with the new value, and no
/// secret's value anywhere); saved with `--out`, a target changed by hand since is refused
/// by `deploy --plan`, naming the target and what moved, and nothing changes.
#[test]
fn a_plan_against_live_state_shows_what_changes_and_refuses_a_target_that_moved() {
    if !docker_ready() {
        return;
    }
    let app = App::new("live");
    let plan = |args: &[&str]| -> Run {
        hoist()
            .current_dir(&app.root)
            .args(["plan", "--local", "--against-live"])
            .args(args)
            .output()
            .unwrap()
            .into()
    };
    // Nothing runs yet: a first deploy.
    let first = plan(&["--format", "json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let json = first.json();
    assert_eq!(
        json["live"]["targets"][0]["verdict"], "first-deploy",
        "{json}"
    );
    assert_ok(&app.deploy());

    // Right after the deploy: unchanged, in text, markdown and JSON.
    let json = plan(&["--format", "json"]).json();
    let target = &json["live"]["targets"][0];
    assert_eq!(target["target"], "local");
    assert_eq!(target["verdict"], "unchanged", "{target}");
    assert_eq!(target["changes"], serde_json::json!([]), "{target}");
    let text = plan(&[]);
    text.success();
    assert!(text.stdout.contains("local: unchanged"), "{}", text.stdout);
    assert!(
        text.stdout
            .contains("1 target(s): 1 unchanged, 0 to change"),
        "{}",
        text.stdout
    );
    let md = plan(&["--format", "markdown"]);
    assert!(md.stdout.contains("`local: unchanged"), "{}", md.stdout);

    // A clear env value changed (uncommitted: the same commit, release `…-dirty`): the env
    // shows only that key, with its new value.
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    std::fs::write(
        app.root.join("hoist.yaml"),
        yaml.replace("GREETING: hi", "GREETING: hello"),
    )
    .unwrap();
    let json = plan(&["--format", "json"]).json();
    let target = &json["live"]["targets"][0];
    assert_eq!(target["verdict"], "changes", "{target}");
    let changes: Vec<&str> = target["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let env: Vec<&&str> = changes.iter().filter(|c| c.starts_with("env")).collect();
    assert_eq!(
        env,
        [&"env ~ GREETING=hello (was another value)"],
        "{changes:?}"
    );
    assert!(changes.iter().all(|c| !c.contains(SECRET)), "{changes:?}");
    assert!(
        !changes
            .iter()
            .any(|c| c.contains("memory") || c.contains("restart")),
        "no setting changed: {changes:?}"
    );
    std::fs::write(app.root.join("hoist.yaml"), &yaml).unwrap();

    // Saved against live state, then the live release stopped by hand: refused.
    let saved = tempfile::tempdir().unwrap();
    let file = saved.path().join("plan.json");
    plan(&["--out", file.to_str().unwrap()]).success();
    let (name, ..) = app.running().into_iter().next().expect("a release runs");
    let before = app.containers();
    docker_out(&["stop", "-t", "1", &name]);
    let refused: Run = app
        .deploy_cmd()
        .args(["--plan", file.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("local moved since the plan was made against it: release"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("no release runs now"),
        "{}",
        refused.stderr
    );
    let after = app.containers();
    assert_eq!(before.len(), after.len(), "nothing was created: {after:?}");
    // Back as it was: the plan applies.
    docker_out(&["start", &name]);
    let applied: Run = app
        .deploy_cmd()
        .args(["--plan", file.to_str().unwrap()])
        .output()
        .unwrap()
        .into();
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stderr
            .contains("every target is as the plan found it"),
        "{}",
        applied.stderr
    );
}

/// `hoist logs` and `hoist exec` on this machine: the live release's log lines (`--tail`, a
/// retained one with `--release`), each secret masked by the host itself even when hoist's
/// environment does not hold it; a command's words arrive as written (no shell), its output
/// masked, its exit status per target; `--dry-run` shows the quoted script; an unknown
/// `--target` is exit 2. Then `hoist remove` asks first, and with `--yes` takes the app off.
#[test]
fn logs_exec_and_remove_on_this_machine() {
    if !docker_ready() {
        return;
    }
    let app = App::new("logs");
    // An app that prints its secret as it starts (as is, and JSON-escaped).
    let dockerfile = std::fs::read_to_string(app.root.join("Dockerfile")).unwrap();
    let start = r#"CMD ["sh", "-c", "echo v=$(cat /www/version) token=$HELLO_API_TOKEN; echo to stderr >&2; exec busybox httpd -f -p 8080 -h /www"]"#;
    let dockerfile: String = dockerfile
        .lines()
        .map(|l| if l.starts_with("CMD ") { start } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(app.root.join("Dockerfile"), dockerfile + "\n").unwrap();
    git(
        &app.root,
        &["commit", "-qam", "an app that logs its secret"],
    );
    assert_ok(&app.deploy());
    let first = app.running()[0].2.clone();
    app.configure("2.0.0", "/healthz", 3, "0s");
    assert_ok(&app.deploy());

    let run = |args: &[&str], with_secret: bool| -> Run {
        let mut cmd = hoist();
        cmd.current_dir(&app.root)
            .arg(args[0])
            .arg("--local")
            .args(&args[1..]);
        if with_secret {
            cmd.env("HELLO_API_TOKEN", SECRET);
        } else {
            cmd.env_remove("HELLO_API_TOKEN");
        }
        cmd.output().unwrap().into()
    };
    // Masked on the host: hoist's environment has no secret to mask with.
    let logs = run(&["logs"], false);
    logs.success();
    assert!(
        logs.stdout.contains("[local] v=2.0.0 token=***"),
        "{}",
        logs.stdout
    );
    assert!(logs.stdout.contains("[local] to stderr"), "{}", logs.stdout);
    assert!(!logs.stdout.contains(SECRET) && !logs.stderr.contains(SECRET));
    let last = run(&["logs", "--tail", "1"], true);
    last.success();
    assert_eq!(last.stdout.lines().count(), 1, "{}", last.stdout);
    let old = run(&["logs", "--release", &first, "--format", "json"], false).json();
    let output = &old["targets"][0]["output"];
    assert!(
        output
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l == "v=1.0.0 token=***"),
        "{old}"
    );

    // exec: the words as written, the output masked, the status per target.
    let exec = run(
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$HELLO_API_TOKEN\"; printf '%s|' \"$@\"; echo",
            "argv0",
            "a b",
            "$(touch /tmp/hoist-pwned)",
            ";",
        ],
        false,
    );
    exec.success();
    assert!(exec.stdout.contains("[local] ***\n"), "{}", exec.stdout);
    assert!(
        exec.stdout
            .contains("[local] a b|$(touch /tmp/hoist-pwned)|;|"),
        "{}",
        exec.stdout
    );
    assert!(!Path::new("/tmp/hoist-pwned").exists());
    let live = app.running()[0].2.clone();
    let row = exec.stdout.lines().last().unwrap();
    assert!(
        row.starts_with("local") && row.contains(&live) && row.ends_with(" 0"),
        "{row}"
    );
    let failed = run(&["exec", "--", "sh", "-c", "echo no; exit 3"], false);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("the command exited with status 3"),
        "{}",
        failed.stderr
    );
    let table = failed.stdout.lines().last().unwrap();
    assert!(
        table.starts_with("local") && table.ends_with(" 3"),
        "{table}"
    );

    let dry = run(&["exec", "--dry-run", "--", "echo", "it's"], false);
    dry.success();
    assert!(
        dry.stdout.contains("HOIST_EXEC=('echo' 'it'\\''s')"),
        "{}",
        dry.stdout
    );
    let stray = run(&["exec", "--target", "i-0nosuch", "--", "true"], false);
    assert_eq!(stray.code, 2, "{}", stray.stderr);
    assert!(
        stray
            .stderr
            .contains("--target i-0nosuch is not one of the targets: local"),
        "{}",
        stray.stderr
    );

    // doctor: this machine as the host, every check passing.
    let doctor = run(&["doctor", "--format", "json"], false);
    doctor.success();
    let report = doctor.json();
    let checks = report["targets"][0]["checks"].as_array().unwrap();
    assert_eq!(report["targets"][0]["target"], "local", "{report}");
    for want in [
        "bash",
        "docker",
        "flock",
        "setsid",
        "curl",
        "tmpfs",
        "disk",
        "clock-offset",
    ] {
        let check = checks
            .iter()
            .find(|c| c["name"] == want)
            .unwrap_or_else(|| panic!("{want}: {report}"));
        assert_ne!(check["status"], "fail", "{check}");
    }

    // A deploy on a machine without flock (hidden in a mount namespace of its own) is
    // refused by its first step (beside the build), before any host changes.
    let live = app.running();
    app.configure("3.0.0", "/healthz", 3, "0s");
    let hidden: Run = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(
            "blank=$(mktemp) && mount --bind \"$blank\" \"$(command -v flock)\" && \
             exec \"$0\" deploy --local",
        )
        .arg(env!("CARGO_BIN_EXE_hoist"))
        .current_dir(&app.root)
        .env("HELLO_API_TOKEN", SECRET)
        .output()
        .unwrap()
        .into();
    assert_eq!(hidden.code, 1, "{}\n{}", hidden.stdout, hidden.stderr);
    assert!(
        hidden
            .stderr
            .contains("host checks failed, no host was changed")
            && hidden
                .stderr
                .contains("local: flock: flock is not installed on this host"),
        "{}",
        hidden.stderr
    );
    assert_eq!(app.running(), live, "nothing changed");

    // remove: asks first (no terminal here: refused, nothing changed); --dry-run changes
    // nothing; --yes takes the app off (containers, state, history), and again is a no-op.
    let containers = app.containers().len();
    assert_eq!(containers, 2, "{:?}", app.containers());
    let asked = run(&["remove"], false);
    assert_eq!(asked.code, 2, "{}", asked.stderr);
    assert!(asked.stderr.contains("pass --yes"), "{}", asked.stderr);
    run(&["remove", "--dry-run"], false).success();
    assert_eq!(app.containers().len(), containers);
    let removed = run(&["remove", "--yes"], false);
    removed.success();
    assert!(
        removed.stdout.contains("removed     2 container(s)"),
        "{}",
        removed.stdout
    );
    assert!(app.containers().is_empty(), "{:?}", app.containers());
    assert_eq!(app.get("/version"), None);
    assert!(!Path::new("/var/lib/hoist").join(&app.name).exists());
    assert!(
        !Path::new("/run/hoist")
            .join(format!("{}.lock", app.name))
            .exists()
    );
    run(&["remove", "--yes"], false).success();
}

/// A Docker network, removed when dropped (after the containers on it).
struct RemoveNetwork(String);

impl Drop for RemoveNetwork {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["network", "rm", &self.0])
            .output();
    }
}

/// The Docker options of `container:` reach `docker create` exactly, as `docker inspect`
/// reads them back; the plan shows them; the same config again is `unchanged`, and a changed
/// option deploys a new container.
#[test]
fn docker_options_reach_docker_create_as_written() {
    if !docker_ready() {
        return;
    }
    // Dropped after the app (declared before it), whose containers use it.
    let network = format!("e2e-net-{}", std::process::id() % 100_000);
    let _network = RemoveNetwork(network.clone());
    let app = App::new("dockeropts");
    let made = Command::new("docker")
        .args(["network", "create", &network])
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let yaml = |signal: &str| {
        format!(
            "app: {name}\n\
             image:\n  repository: hoist-e2e/{name}\n\
             targets:\n  tags:\n    Env: [test]\n\
             container:\n  port: 8080\n  publish: {port}\n  stop_timeout: 2s\n  \
             entrypoint: /bin/busybox\n  command: [httpd, -f, -p, \"8080\", -h, /www]\n  \
             log_driver: json-file\n  log_options:\n    max-size: 1m\n    max-file: \"2\"\n  \
             user: \"65534:65534\"\n  read_only: true\n  tmpfs: [/tmp, \"/scratch:size=1m\"]\n  \
             cap_drop: [ALL]\n  cap_add: [cap_net_bind_service]\n  \
             ulimits:\n    nofile: \"1024:2048\"\n  \
             extra_hosts:\n    db.internal: 10.1.2.3\n  \
             network: {network}\n  shm_size: 32m\n  stop_signal: {signal}\n\
             healthcheck:\n  path: /healthz\n  interval: 1s\n  timeout: 8s\n\
             env:\n  secret: [HELLO_API_TOKEN]\n",
            name = app.name,
            port = app.port,
        )
    };
    std::fs::write(app.root.join("hoist.yaml"), yaml("SIGQUIT")).unwrap();
    git(&app.root, &["commit", "-qam", "docker options"]);

    let plan: Run = hoist()
        .current_dir(&app.root)
        .args(["plan", "--local"])
        .env("HELLO_API_TOKEN", SECRET)
        .output()
        .unwrap()
        .into();
    plan.success().stdout_has(format!(
        "--log-driver json-file --log-opt max-file=2 --log-opt max-size=1m --user 65534:65534 \
         --tmpfs /tmp --tmpfs /scratch:size=1m --cap-drop ALL --cap-add NET_BIND_SERVICE \
         --ulimit nofile=1024:2048 --add-host db.internal:10.1.2.3 --network {network} \
         --entrypoint /bin/busybox --shm-size 32m --stop-signal SIGQUIT --read-only"
    ));

    // One release id throughout: only the options tell the deploys apart.
    let deploy = || -> Run {
        app.deploy_cmd()
            .args(["--release", "opts-1"])
            .output()
            .unwrap()
            .into()
    };
    assert_ok(&deploy());
    assert_eq!(app.get("/version").as_deref(), Some("dev"));
    let running = app.running();
    assert_eq!(running.len(), 1, "{running:?}");
    let inspect = |format: &str| -> String {
        let out = Command::new("docker")
            .args(["inspect", "--format", format, &running[0].0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let host: serde_json::Value = serde_json::from_str(&inspect("{{json .HostConfig}}")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&inspect("{{json .Config}}")).unwrap();
    assert_eq!(host["LogConfig"]["Type"], "json-file", "{host}");
    assert_eq!(
        host["LogConfig"]["Config"],
        serde_json::json!({"max-size": "1m", "max-file": "2"})
    );
    assert_eq!(config["User"], "65534:65534");
    assert_eq!(host["ReadonlyRootfs"], true);
    assert_eq!(
        host["Tmpfs"],
        serde_json::json!({"/tmp": "", "/scratch": "size=1m"})
    );
    // Docker keeps a capability with or without `CAP_` (20.10 adds it to all but ALL).
    let caps = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().trim_start_matches("CAP_").to_owned())
            .collect()
    };
    assert_eq!(caps(&host["CapDrop"]), ["ALL"]);
    assert_eq!(caps(&host["CapAdd"]), ["NET_BIND_SERVICE"]);
    assert_eq!(
        host["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}])
    );
    assert_eq!(
        host["ExtraHosts"],
        serde_json::json!(["db.internal:10.1.2.3"])
    );
    assert_eq!(host["NetworkMode"], network.as_str());
    assert_eq!(config["Entrypoint"], serde_json::json!(["/bin/busybox"]));
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["httpd", "-f", "-p", "8080", "-h", "/www"])
    );
    assert_eq!(host["ShmSize"], 32 * 1024 * 1024);
    assert_eq!(config["StopSignal"], "SIGQUIT");

    // The same config: nothing to do. Another stop signal: a new container.
    let again = deploy();
    assert_ok(&again);
    assert!(again.stdout.contains("unchanged"), "{}", again.stdout);
    assert_eq!(app.running()[0].0, running[0].0);
    std::fs::write(app.root.join("hoist.yaml"), yaml("SIGINT")).unwrap();
    git(&app.root, &["commit", "-qam", "another stop signal"]);
    assert_ok(&deploy());
    let now = app.running();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(
        now[0].0, running[0].0,
        "a changed option is a new container"
    );
}

/// Health checks that are not HTTP: a worker with no check must keep running
/// `healthcheck.min_running` (one that exits after 2 s is refused, and the release that
/// ran before keeps running); `healthcheck.command` runs in the container until it exits 0;
/// `healthcheck.tcp` connects to the port; `healthcheck.docker` waits for the image's own
/// HEALTHCHECK. The check is the release's: `status` probes it the same way.
#[test]
fn health_checks_that_are_not_http() {
    if !docker_ready() {
        return;
    }
    let app = App::new("checks");
    let write = |container: &str, health: &str| {
        let yaml = format!(
            "app: {name}\n\
             image:\n  repository: hoist-e2e/{name}\n\
             targets:\n  tags:\n    Env: [test]\n\
             container:\n  port: 8080\n  stop_timeout: 1s\n  init: true\n{container}\
             healthcheck:\n  interval: 1s\n{health}\
             env:\n  secret: [HELLO_API_TOKEN]\n",
            name = app.name,
        );
        std::fs::write(app.root.join("hoist.yaml"), yaml).unwrap();
    };
    let deploy = |release: &str| -> Run {
        app.deploy_cmd()
            .args(["--release", release])
            .output()
            .unwrap()
            .into()
    };
    let running_release = || -> Vec<String> { app.running().into_iter().map(|c| c.2).collect() };

    // A worker: no port published, no check. It must keep running 3 s.
    write(
        "  command: [sh, -c, \"exec sleep 1000\"]\n",
        "  min_running: 3s\n  timeout: 12s\n",
    );
    let started = Instant::now();
    let worker = deploy("worker-1");
    assert_ok(&worker);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "judged after 3 s of running"
    );
    assert_eq!(running_release(), ["worker-1"]);
    // One that crashes after 2 s fails its gate; worker-1 runs again.
    write(
        "  command: [sh, -c, \"sleep 2; exit 3\"]\n",
        "  min_running: 5s\n  timeout: 12s\n",
    );
    let crashed = deploy("worker-2");
    assert_eq!(crashed.code, 1, "{}\n{}", crashed.stdout, crashed.stderr);
    assert!(
        crashed.stdout.contains("container stopped")
            || crashed.stderr.contains("container stopped"),
        "{}\n{}",
        crashed.stdout,
        crashed.stderr
    );
    assert_eq!(running_release(), ["worker-1"]);

    // A command in the container: healthy once it exits 0.
    let publish = format!("  publish: {}\n", app.port);
    write(
        &format!(
            "{publish}  command: [sh, -c, \"sleep 2; touch /tmp/ready; exec busybox httpd -f -p 8080 -h /www\"]\n"
        ),
        "  command: [test, -f, /tmp/ready]\n  timeout: 12s\n",
    );
    assert_ok(&deploy("command-1"));
    assert_eq!(running_release(), ["command-1"]);
    // A command that never passes: refused, command-1 runs again.
    write(
        &publish,
        "  command: [test, -f, /tmp/never]\n  timeout: 3s\n",
    );
    let never = deploy("command-2");
    assert_eq!(never.code, 1, "{}\n{}", never.stdout, never.stderr);
    assert!(
        format!("{}{}", never.stdout, never.stderr).contains("the health command did not exit 0"),
        "{}\n{}",
        never.stdout,
        never.stderr
    );
    assert_eq!(running_release(), ["command-1"]);

    // TCP on the published port, then the image's own HEALTHCHECK.
    write(&publish, "  tcp: true\n  timeout: 12s\n");
    assert_ok(&deploy("tcp-1"));
    assert_eq!(app.get("/version").as_deref(), Some("dev"));
    write(&publish, "  docker: true\n  timeout: 12s\n");
    let docker = deploy("docker-1");
    assert_ok(&docker);
    assert_eq!(running_release(), ["docker-1"]);

    // status probes the release's own check.
    let status: Run = hoist()
        .current_dir(&app.root)
        .args(["status", "--local", "--format", "json"])
        .output()
        .unwrap()
        .into();
    let json = status.success().json();
    assert_eq!(
        json["targets"][0]["host"]["running"]["health"], "healthy",
        "{json}"
    );
}

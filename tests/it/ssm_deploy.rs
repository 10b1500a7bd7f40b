//! The real path against the emulated AWS fleet (tests/fleet): hoist builds with the host's
//! Docker engine, pushes to the world's registry (real `docker-registry` over TLS with the
//! ECR token), and runs the script on three instances — network namespaces with their own
//! dockerd — through the emulated SSM Run Command. Only AWS's API is emulated.
//!
//! Needs root, Docker, iproute2 and Debian's docker-registry: skipped with a reason on a
//! laptop without them, required in CI. Each test starts its own world (at most two at once
//! under `tests/run`: .config/nextest.toml); every world is torn down when its test ends, also
//! when it fails.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fleet::{App, Instance, SECRET, World, assert_ok, assert_serves, get, leaks, ready};
use common::{Run, git, hoist, run_phase};
use serde_json::Value;

#[test]
fn builds_pushes_and_rolls_out_then_skips_what_is_already_there() {
    if !ready() {
        return;
    }
    let world = World::up("rollout");
    let app = App::new("rollout");
    let instances = world.instances();
    assert_eq!(instances.len(), 3);

    // The plan resolves the tag filter to the instances when asked to (and stays offline
    // otherwise).
    let planned = {
        let mut cmd = hoist();
        cmd.current_dir(&app.root)
            .args(["plan", "--resolve-targets", "--format", "json"])
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let run: Run = cmd.output().unwrap().into();
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<Value>(&run.stdout).unwrap()
    };
    let mut resolved: Vec<&str> = planned["targets"]["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    resolved.sort_unstable();
    let mut ids: Vec<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(resolved, ids);

    let v1 = app.deploy(&world, &["--format", "json"]);
    assert_ok(&v1);
    let report: Value = serde_json::from_str(&v1.stdout).expect("a JSON report");
    assert_eq!(report["deployed"], 3);
    let reference = report["plan"]["image"]["reference"].as_str().unwrap();
    let registry = world
        .env
        .iter()
        .find(|(k, _)| k == "HOIST_FLEET_REGISTRY")
        .unwrap();
    assert!(
        reference.starts_with(&format!("{}/e2e/{}@sha256:", registry.1, app.name)),
        "hosts run the pushed digest: {reference}"
    );
    let sha = report["plan"]["revision"]["sha"].as_str().unwrap();
    let script = run_phase(&report["plan"])["script"]["text"]
        .as_str()
        .unwrap();
    let script_sha = run_phase(&report["plan"])["script"]["sha256"]
        .as_str()
        .unwrap();
    for inst in instances {
        assert_serves(inst, "1.0.0");
        // The instance pulled the image from the registry: it carries the revision label.
        let label = world.docker(
            inst,
            &[
                "image",
                "inspect",
                "--format",
                "{{index .Config.Labels \"org.opencontainers.image.revision\"}}",
                reference,
            ],
        );
        assert_eq!(label, sha, "{}", inst.id);
        // The agent ran the bootstrap for exactly the plan's script, and it decoded that
        // script, byte-identical, beside its `_script.sh`.
        let orchestration = inst
            .root
            .join("ssm")
            .join(&inst.id)
            .join("document/orchestration");
        let named = |name: &str| -> Vec<Vec<u8>> {
            walkdir::WalkDir::new(&orchestration)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy() == name)
                .map(|e| std::fs::read(e.path()).unwrap())
                .collect()
        };
        // Two commands: the host checks, then the deploy.
        let bootstraps = named("_script.sh");
        assert_eq!(bootstraps.len(), 2, "{}", orchestration.display());
        let deploy_prefix = format!("#!/bin/sh\nHOIST_SHA256='{script_sha}'\n");
        assert_eq!(
            bootstraps
                .iter()
                .filter(|b| b.starts_with(deploy_prefix.as_bytes()))
                .count(),
            1,
            "{}",
            inst.id
        );
        let executed = named(&format!("hoist-{script_sha}.sh"));
        assert_eq!(executed.len(), 1, "{}", orchestration.display());
        assert_eq!(executed[0], script.as_bytes(), "{}", inst.id);
        // No registry credential or env file stays on the instance, as the instance itself
        // sees its /run (inside its mount namespace, where the script mounts its tmpfs).
        let left = world.on_instance(
            inst,
            "find /run/hoist -type f ! -name '*.lock' ! -name '*.state' 2>/dev/null; \
             grep -s ' /run/hoist' /proc/mounts || true",
        );
        assert!(
            left.trim().is_empty(),
            "{}: left on the instance: {left}",
            inst.id
        );
    }

    // The same commit again: nothing is built or pushed, the same digest is deployed, and
    // every host, already running it with this configuration, is left alone (unchanged); the
    // report says so for each step and target, with the reason.
    let again = app.deploy(&world, &["--format", "json"]);
    assert_ok(&again);
    let report: Value = serde_json::from_str(&again.stdout).expect("a JSON report");
    let step = |kind: &str| -> Value {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} step in {}", report["steps"]))
    };
    assert_eq!(step("build")["status"], "skipped", "{}", report["steps"]);
    assert!(
        step("build")["detail"]
            .as_str()
            .unwrap()
            .contains("holds the digest hoist recorded in"),
        "{}",
        report["steps"]
    );
    assert_eq!(step("push")["status"], "skipped", "{}", report["steps"]);
    assert_eq!(step("run-phase")["status"], "done", "{}", report["steps"]);
    for inv in report["phases"][0]["invocations"].as_array().unwrap() {
        assert_eq!(inv["outcome"], "unchanged", "{inv}");
    }
    let executed: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    let planned: Vec<&str> = report["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(executed, planned, "the steps run are the plan's steps");
    assert!(
        again.stderr.contains("no build, no push"),
        "second deploy of the same commit skips build and push:\n{}",
        again.stderr
    );
    assert!(!again.stderr.contains("pushing"), "{}", again.stderr);
    assert!(!again.stderr.contains("building"), "{}", again.stderr);

    // A new commit updates all three.
    app.configure("2.0.0", "0s", "0");
    let v2 = app.deploy(&world, &[]);
    assert_ok(&v2);
    assert!(v2.stderr.contains("pushed"), "{}", v2.stderr);
    for inst in instances {
        assert_serves(inst, "2.0.0");
        // v1 kept stopped for rollback (one: the second deploy changed nothing), v2 running.
        let states = world.docker(
            inst,
            &[
                "ps",
                "-a",
                "--filter",
                &format!("label=hoist.app={}", app.name),
                "--format",
                "{{.State}}",
            ],
        );
        let mut states: Vec<&str> = states.lines().collect();
        states.sort_unstable();
        assert_eq!(states, ["exited", "running"], "{}", inst.id);
    }

    // The journal: no command carries the registry password, the ECR token or the secret;
    // the secret travelled only in its SecureString parameter, which is gone now.
    let journal = world.journal();
    let token = base64_of(&format!("AWS:{}", world.registry_password));
    for line in journal.iter().filter(|l| l["operation"] == "SendCommand") {
        let text = line.to_string();
        assert!(
            !text.contains(&world.registry_password),
            "password in {text}"
        );
        assert!(!text.contains(&token), "token in {text}");
        assert!(!leaks(&text), "secret in {text}");
    }
    // The world's journal redacts SecureString values, so the secret appears nowhere.
    let everything: String = journal.iter().map(Value::to_string).collect();
    assert!(!leaks(&everything), "the secret leaked into an API call");
    // Every parameter put was deleted again (the lock's overwrites, as it renews or names a
    // command, are not new parameters).
    let created = world
        .journal()
        .iter()
        .filter(|l| {
            l["operation"] == "PutParameter"
                && l["error"].is_null()
                && l["params"]["Overwrite"].as_bool() != Some(true)
        })
        .count();
    assert!(created >= 3);
    assert_eq!(created, world.calls("DeleteParameter"));
}

#[test]
fn an_offline_instance_fails_preflight_and_nothing_changes() {
    if !ready() {
        return;
    }
    let world = World::up("offline");
    let app = App::new("offline");
    let instances = world.instances();
    world.fault(&["offline", &instances[1].id]);
    // The agent's heartbeat goes stale: wait until SSM reports it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = app.deploy(&world, &[]);
        if run.code != 0 && run.stderr.contains(&instances[1].id) {
            assert_eq!(run.code, 1, "{}", run.stderr);
            assert!(run.stderr.contains("preflight"), "{}", run.stderr);
            assert!(run.stderr.contains("not Online"), "{}", run.stderr);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "preflight never noticed:\n{}",
            run.stderr
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(world.calls("SendCommand"), 0, "no command was sent");
    // The registry login ran beside preflight (it only reads); nothing after it did.
    for call in ["DescribeRepositories", "CreateRepository", "BatchGetImage"] {
        assert_eq!(world.calls(call), 0, "{call}: nothing was built or pushed");
    }
    assert_eq!(
        world.calls("PutParameter"),
        0,
        "neither the lock nor a secret was put"
    );
    for inst in [&instances[0], &instances[2]] {
        let containers = world.docker(inst, &["ps", "-aq"]);
        assert!(containers.is_empty(), "{} changed: {containers}", inst.id);
    }
}

#[test]
fn a_failing_instance_is_reported_and_the_others_serve() {
    if !ready() {
        return;
    }
    let world = World::up("failing");
    let app = App::new("failing");
    let instances = world.instances();
    // Something else holds port 8080 on the third instance.
    let mut squatter = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{}", instances[2].netns))
        .args(["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _kill = KillOnDrop(&mut squatter);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&instances[2].address, "/").is_none() {
        assert!(Instant::now() < deadline, "squatter did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let run = app.deploy(&world, &[]);
    assert_eq!(
        run.code, 1,
        "max_errors 0: exit 1\n{}\n{}",
        run.stdout, run.stderr
    );
    let failed_row = run
        .stdout
        .lines()
        .find(|l| l.starts_with(&instances[2].id))
        .unwrap_or_else(|| panic!("a row for the failing instance:\n{}", run.stdout));
    assert!(failed_row.contains("failed"), "{failed_row}");
    assert!(
        failed_row.contains("docker start failed") || failed_row.contains("address"),
        "the reason: {failed_row}"
    );
    // Its output is shown, grouped under its id.
    assert!(
        run.stderr
            .contains(&format!("[{}] hoist: deploying", instances[2].id)),
        "{}",
        run.stderr
    );
    for inst in &instances[..2] {
        assert_serves(inst, "1.0.0");
    }
}

#[test]
fn throttling_slows_a_deploy_but_does_not_fail_it() {
    if !ready() {
        return;
    }
    let world = World::up("throttle");
    let app = App::new("throttle");
    world.fault(&["throttle", "SendCommand", "--next", "3"]);
    world.fault(&["throttle", "ListCommandInvocations", "--next", "6"]);
    world.fault(&["throttle", "DescribeInstanceInformation", "--next", "2"]);
    let run = app.deploy(&world, &[]);
    assert_ok(&run);
    let throttled = world
        .journal()
        .iter()
        .filter(|l| l["error"] == "ThrottlingException")
        .count();
    assert!(
        throttled >= 11,
        "the faults were hit ({throttled} throttled calls)"
    );
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
}

#[test]
fn ctrl_c_cancels_the_command_and_every_instance_keeps_serving() {
    if !ready() {
        return;
    }
    let world = World::up("cancel");
    let app = App::new("cancel");
    assert_ok(&app.deploy(&world, &[]));
    // v2 sits in its health gate's start period long enough to be interrupted.
    app.configure("2.0.0", "30s", "0");
    let mut child = app
        .cmd(&world, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let stderr = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = stderr.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    // Interrupt mid-switch: on every instance v1 is stopped and v2 started but not yet
    // verified (its health gate waits out a 30 s start period).
    let release = {
        let out = hoist()
            .current_dir(&app.root)
            .args(["plan", "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["release"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let instances = world.instances();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !instances.iter().all(|inst| {
        !world
            .docker(
                inst,
                &[
                    "ps",
                    "-q",
                    "--filter",
                    &format!("label=hoist.release={release}"),
                ],
            )
            .is_empty()
    }) {
        assert!(
            Instant::now() < deadline,
            "v2 never started everywhere:\n{}",
            stderr.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    unsafe { libc::kill(libc::pid_t::try_from(child.id()).unwrap(), libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("cancelling command"), "{stderr}");
    assert!(world.calls("CancelCommand") >= 1);
    // Each instance is reported. SSM killed each script mid-switch (SIGKILL, no trap runs):
    // the script's watchdog removed the unverified v2 and started v1 again.
    for inst in instances {
        assert!(stdout.contains(&inst.id), "{} reported:\n{stdout}", inst.id);
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&inst.address, "/version").as_deref() != Some("1.0.0") {
            assert!(
                Instant::now() < deadline,
                "{} does not serve v1 again: {:?}\n{stderr}",
                inst.id,
                get(&inst.address, "/version")
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        let v2 = world.docker(
            inst,
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=hoist.release={release}"),
            ],
        );
        assert!(v2.is_empty(), "{}: the unverified v2 is removed", inst.id);
    }
    assert!(!leaks(&stdout) && !leaks(&stderr));
}

struct KillOnDrop<'a>(&'a mut Child);
impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether a journaled Parameter Store call is about an app's fleet-wide deploy lock
/// (`/hoist/<app>/lock/<scope>`), which deploys and rollbacks put, read and delete.
fn is_the_lock(call: &Value) -> bool {
    call["params"]["Name"]
        .as_str()
        .is_some_and(|name| name.starts_with("/hoist/") && name.split('/').nth(3) == Some("lock"))
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn immutable_tags_refuse_new_content_and_an_existing_image_deploys_without_a_build() {
    if !ready() {
        return;
    }
    let world = World::up("immutable");
    let app = App::new("immutable");
    let pin = |app: &App| {
        let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
        let yaml = yaml.replace(
            "image:\n",
            "image:\n  tags: [stable]\n  immutable_tags: true\n",
        );
        std::fs::write(app.root.join("hoist.yaml"), yaml).unwrap();
        git(&app.root, &["commit", "-qam", "pin the tag"]);
    };
    pin(&app);
    let v1 = app.deploy(&world, &[]);
    assert_ok(&v1);
    assert!(
        v1.stderr.contains("created ECR repository") && v1.stderr.contains("immutable"),
        "{}",
        v1.stderr
    );
    let registry = &world
        .env
        .iter()
        .find(|(k, _)| k == "HOIST_FLEET_REGISTRY")
        .unwrap()
        .1;

    // New content under the same tag of an immutable repository: refused before any host
    // is touched.
    app.configure("2.0.0", "0s", "0");
    pin(&app);
    let sends = world.changing_commands();
    let refused = app.deploy(&world, &[]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("immutable repository") && refused.stderr.contains("stable"),
        "{}",
        refused.stderr
    );
    assert_eq!(world.changing_commands(), sends, "no host was touched");
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }

    // `--image` deploys what the registry holds, without building or pushing, pinned by
    // digest.
    let uri = format!("{registry}/e2e/{}:stable", app.name);
    let existing = app.deploy(&world, &["--image", &uri, "--format", "json"]);
    assert_ok(&existing);
    assert!(!existing.stderr.contains("building"), "{}", existing.stderr);
    let report: Value = serde_json::from_str(&existing.stdout).unwrap();
    let reference = report["plan"]["image"]["reference"].as_str().unwrap();
    assert!(
        reference.starts_with(&format!("{registry}/e2e/{}@sha256:", app.name)),
        "{reference}"
    );
    let steps: Vec<&str> = report["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps
            .iter()
            .filter(|s| matches!(**s, "ensure-repository" | "build" | "push"))
            .count(),
        0,
        "no build, no push: {steps:?}"
    );
    assert!(steps.contains(&"run-phase"), "{steps:?}");
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }

    // A tag the repository does not have is bad input: exit 2, nothing sent.
    let sends = world.calls("SendCommand");
    let missing = app.deploy(
        &world,
        &["--image", &format!("{registry}/e2e/{}:nope", app.name)],
    );
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);
    assert_eq!(world.calls("SendCommand"), sends);
}

/// The release the app's current commit plans to.
fn planned_release(app: &App) -> String {
    let out = hoist()
        .current_dir(&app.root)
        .args(["plan", "--format", "json"])
        .output()
        .unwrap();
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["release"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until every instance in `on` has a container of `release` (`ps_flag`: `-q` for
/// running ones, `-aq` for any).
fn wait_for_release(world: &World, on: &[&Instance], release: &str, ps_flag: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !on.iter().all(|inst| {
        !world
            .docker(
                inst,
                &[
                    "ps",
                    ps_flag,
                    "--filter",
                    &format!("label=hoist.release={release}"),
                ],
            )
            .is_empty()
    }) {
        assert!(Instant::now() < deadline, "{release} never appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last record of the app's history on an instance.
fn last_history(world: &World, inst: &Instance, app: &App) -> Value {
    let text = world.on_instance(
        inst,
        &format!("cat /var/lib/hoist/{}/history.jsonl", app.name),
    );
    serde_json::from_str(text.lines().last().expect("a history record")).unwrap()
}

/// Polls `done` every 250 ms until it holds; fails the test, saying `what`, after `within`.
fn eventually(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// `name release` of the containers running on an instance.
fn running_releases(world: &World, inst: &Instance) -> Vec<String> {
    world
        .docker(
            inst,
            &["ps", "--format", "{{.Names}} {{.Label \"hoist.release\"}}"],
        )
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The host must never go dark because a cancel landed while the old release was stopping:
/// SSM SIGKILLs the script while `docker stop` of v1 is in flight (busybox httpd ignores
/// SIGTERM, so the stop takes the whole 10 s timeout), the engine finishes that stop after
/// the client died, and the watchdog must wait for it before starting v1 again — and only
/// then say it rolled back. 20 s after hoist exits, every host serves v1, answers its health
/// check, and its history says so.
#[test]
fn a_cancel_while_the_old_release_stops_leaves_every_host_serving_it() {
    if !ready() {
        return;
    }
    let world = World::up("stopcancel");
    let app = App::new("stopcancel");
    app.configure_with("1.0.0", "0s", "0", "10s", "");
    assert_ok(&app.deploy(&world, &[]));
    app.configure_with("2.0.0", "30s", "0", "10s", "");
    let release = planned_release(&app);
    let child = app
        .cmd(&world, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let instances: Vec<&Instance> = world.instances().iter().collect();
    // v2 is created everywhere: the scripts are now stopping v1 (10 s each).
    wait_for_release(&world, &instances, &release, "-aq");
    std::thread::sleep(Duration::from_millis(1500));
    for inst in &instances {
        let v1_state = world.docker(inst, &["ps", "-q", "--filter", "status=running"]);
        assert!(!v1_state.is_empty(), "{}: v1 is still stopping", inst.id);
    }
    unsafe { libc::kill(libc::pid_t::try_from(child.id()).unwrap(), libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");

    // Each host's watchdog finishes the restore on its own: wait (at most a minute) until
    // every host serves v1 with one release running and its history says so, then check.
    let restored = |inst: &&Instance| {
        get(&inst.address, "/version").as_deref() == Some("1.0.0")
            && running_releases(&world, inst).len() == 1
            && last_history(&world, inst, &app)["status"] == "killed"
    };
    eventually(Duration::from_secs(60), "every host restored v1", || {
        instances.iter().all(restored)
    });
    for inst in &instances {
        assert_serves(inst, "1.0.0");
        assert_eq!(get(&inst.address, "/healthz").as_deref(), Some("ok"));
        let running = running_releases(&world, inst);
        assert_eq!(running.len(), 1, "{}: {running:?}", inst.id);
        let record = last_history(&world, inst, &app);
        assert_eq!(record["status"], "killed", "{}: {record}", inst.id);
        assert_eq!(record["rolled_back"], true, "{}: {record}", inst.id);
        assert_eq!(record["release"], release.as_str(), "{record}");
        assert!(
            running[0].starts_with(record["previous"].as_str().unwrap()),
            "{}: history names the release that runs: {record} / {running:?}",
            inst.id
        );
    }
}

/// A daemon restart mid-deploy: on one host the engine goes down while v3 sits in its
/// health gate and comes back seconds later. The unverified v3 (created without a restart
/// policy) does not come back; hoist reports that host failed and rolled back once v2 was
/// observed serving again; the other hosts deploy v3. Before that, a daemon restart on a
/// host with `restart: always` brings back only the live release, never a retained one.
#[test]
fn a_daemon_restart_never_revives_an_unverified_or_a_retained_release() {
    if !ready() {
        return;
    }
    let world = World::up("daemon");
    let app = App::new("daemon");
    let always = "  restart: always\n";
    app.configure_with("1.0.0", "0s", "1", "2s", always);
    assert_ok(&app.deploy(&world, &[]));
    app.configure_with("2.0.0", "0s", "1", "2s", always);
    assert_ok(&app.deploy(&world, &[]));
    let v2_release = planned_release(&app);
    let instances: Vec<&Instance> = world.instances().iter().collect();

    // A daemon restart with v1 retained (stopped): only v2 comes back.
    world.fault(&["engine", &instances[0].id, "down"]);
    world.fault(&["engine", &instances[0].id, "ok"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&instances[0].address, "/version").as_deref() != Some("2.0.0") {
        assert!(Instant::now() < deadline, "v2 came back after the restart");
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_secs(2));
    let running = running_releases(&world, instances[0]);
    assert_eq!(running.len(), 1, "only the live release: {running:?}");
    assert!(running[0].ends_with(&v2_release), "{running:?}");

    // The engine goes away during v3's health gate on instance 1.
    app.configure_with("3.0.0", "6s", "1", "2s", always);
    let v3_release = planned_release(&app);
    let child = app
        .cmd(&world, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_release(&world, &[instances[1]], &v3_release, "-q");
    world.fault(&["engine", &instances[1].id, "down"]);
    std::thread::sleep(Duration::from_secs(3));
    world.fault(&["engine", &instances[1].id, "ok"]);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&instances[1].id))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains("rolled back"), "{row}");

    // Until the restarted engine has settled: v3 on the two others, v2 alone on this one.
    eventually(Duration::from_secs(60), "the hosts settled", || {
        get(&instances[0].address, "/version").as_deref() == Some("3.0.0")
            && get(&instances[2].address, "/version").as_deref() == Some("3.0.0")
            && get(&instances[1].address, "/version").as_deref() == Some("2.0.0")
            && running_releases(&world, instances[1]).len() == 1
    });
    assert_serves(instances[0], "3.0.0");
    assert_serves(instances[2], "3.0.0");
    assert_serves(instances[1], "2.0.0");
    let running = running_releases(&world, instances[1]);
    assert_eq!(running.len(), 1, "{running:?}");
    assert!(running[0].ends_with(&v2_release), "{running:?}");
    let record = last_history(&world, instances[1], &app);
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["rolled_back"], true, "{record}");
}

impl World {
    /// The AWS CLI on the host, with the credentials hoist uses (not an instance's).
    fn aws(&self, args: &[&str]) -> String {
        let out = Command::new("aws")
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(out.status.success(), "aws {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Names of every parameter under /hoist/ but the records of the images hoist pushed
    /// (`/hoist/<app>[/<env>]/images/<commit>`, kept: later deploys of a commit trust them).
    fn hoist_parameters(&self) -> Vec<String> {
        let out = self.aws(&[
            "ssm",
            "get-parameters-by-path",
            "--path",
            "/hoist",
            "--recursive",
            "--query",
            "Parameters[].Name",
            "--output",
            "text",
        ]);
        out.split_whitespace()
            .filter(|n| *n != "None" && !n.contains("/images/"))
            .map(str::to_owned)
            .collect()
    }

    /// `NAME=value` lines of the environment of the app's running container on `inst`.
    fn container_env(&self, inst: &Instance, app: &App) -> String {
        let name = self.docker(
            inst,
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=hoist.app={}", app.name),
            ],
        );
        assert!(!name.is_empty(), "{}: no container runs", inst.id);
        self.docker(inst, &["exec", &name, "env"])
    }
}

/// One app's staging and production environments (`-e staging`, `-e production`: overlays
/// `hoist.staging.yaml` and `hoist.production.yaml` over one `hoist.yaml`) deployed at once
/// to disjoint instances, each with its own secret value. Each takes its own lock (neither
/// waits for the other), puts its secret under its own `/hoist/<app>/<env>/`, sweeps only its
/// own environment's expired parameters, and every host's container holds its own
/// environment's value; no parameter is left but the other's planted one.
#[test]
fn staging_and_production_deploy_at_once_each_with_its_own_names_secret_and_sweep() {
    if !ready() {
        return;
    }
    let world = World::up("twoenvs");
    let app = App::new("twoenvs");
    let instances = world.instances();
    let overlay = |env: &str, ids: &[&Instance]| {
        let ids: Vec<&str> = ids.iter().map(|i| i.id.as_str()).collect();
        let yaml = format!(
            "targets:\n  tags: ~\n  instance_ids: [{}]\n",
            ids.join(", ")
        );
        std::fs::write(app.root.join(format!("hoist.{env}.yaml")), yaml).unwrap();
    };
    overlay("staging", &[&instances[0]]);
    overlay("production", &[&instances[1], &instances[2]]);
    git(&app.root, &["add", "-A"]);
    git(&app.root, &["commit", "-qm", "two environments"]);

    // An expired run parameter a killed deploy left in each environment.
    let planted = |env: &str| {
        format!(
            "/hoist/{}/{env}/runs/old/20200101T000000Z-0000dead/env",
            app.name
        )
    };
    for env in ["staging", "production"] {
        world.aws(&[
            "ssm",
            "put-parameter",
            "--name",
            &planted(env),
            "--type",
            "SecureString",
            "--value",
            "x",
            "--tags",
            &format!("Key=hoist:app,Value={}", app.name),
            "Key=hoist:expires,Value=2020-01-01T00:00:00Z",
        ]);
    }
    let spawn = |env: &str, secret: &str| {
        app.cmd(&world, &["-e", env, "--format", "json"])
            .env("HELLO_API_TOKEN", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let staging = spawn("staging", "staging-secret-value-81c2");
    let production = spawn("production", "production-secret-value-f07d");
    let staging: Run = staging.wait_with_output().unwrap().into();
    let production: Run = production.wait_with_output().unwrap().into();
    assert_ok(&staging);
    assert_ok(&production);
    assert!(
        world
            .container_env(&instances[0], &app)
            .contains("HELLO_API_TOKEN=staging-secret-value-81c2")
    );
    for inst in &instances[1..] {
        assert!(
            world
                .container_env(inst, &app)
                .contains("HELLO_API_TOKEN=production-secret-value-f07d"),
            "{}",
            inst.id
        );
    }
    for run in [&staging, &production] {
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains("secret-value-81c2") && !text.contains("secret-value-f07d"));
        }
    }
    // Each its own lock, taken at once (neither waited), and its own secret parameter.
    for (env, run) in [("staging", &staging), ("production", &production)] {
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let lock = report["lock"]["parameter"].as_str().unwrap();
        assert!(
            lock.starts_with(&format!("/hoist/{}/{env}/lock/", app.name)),
            "{lock}"
        );
        assert!(
            !run.stderr.contains("waiting for the deploy lock"),
            "{}",
            run.stderr
        );
        // It swept its own environment's expired parameter, and not the other's.
        let other = if env == "staging" {
            "production"
        } else {
            "staging"
        };
        assert!(
            run.stderr.contains("swept 1 expired secret parameter")
                && run.stderr.contains(&planted(env))
                && !run.stderr.contains(&planted(other)),
            "{}",
            run.stderr
        );
    }
    let created: Vec<String> = world
        .journal()
        .iter()
        .filter(|l| {
            l["operation"] == "PutParameter"
                && l["error"].is_null()
                && l["params"]["Type"] == "SecureString"
                && !l["params"]["Name"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("/runs/old/")
        })
        .map(|l| l["params"]["Name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(created.len(), 2, "{created:?}");
    for env in ["staging", "production"] {
        let root = format!("/hoist/{}/{env}/runs/", app.name);
        assert_eq!(
            created.iter().filter(|n| n.starts_with(&root)).count(),
            1,
            "{created:?}"
        );
    }
    assert_eq!(world.hoist_parameters(), Vec::<String>::new());
}

/// `kill -9` of hoist right after `SendCommand` leaves its secret parameter behind. Once its
/// expiry has passed (moved back here with the tag, as time would), the next deploy of the
/// app reports and deletes it, and no /hoist/ parameter remains.
#[test]
fn a_killed_deploys_parameter_is_swept_by_the_next_deploy_once_expired() {
    if !ready() {
        return;
    }
    let world = World::up("sweep");
    let app = App::new("sweep");
    app.configure("1.0.0", "3s", "0");
    let mut child = app
        .cmd(&world, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while world.changing_commands() == 0 {
        assert!(Instant::now() < deadline, "hoist never sent the command");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<String> = world
        .hoist_parameters()
        .into_iter()
        .filter(|name| !name.contains("/lock/"))
        .collect();
    assert_eq!(left.len(), 1, "the killed run's parameter stays: {left:?}");
    // So does its fleet lock, which only `hoist unlock` breaks (never the sweep), once the
    // killed run's command ended (while it runs the lock is live and unlock refuses).
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status: Run = hoist()
            .current_dir(&app.root)
            .args(["lock", "status", "--format", "json"])
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap()
            .into();
        let status: Value = serde_json::from_str(&status.stdout).unwrap();
        if status["live_commands"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed run's command never ended: {status}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let unlock: Run = hoist()
        .current_dir(&app.root)
        .arg("unlock")
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
        .into();
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert!(
        unlock.stdout.contains("broke the deploy lock"),
        "{}",
        unlock.stdout
    );
    // The orphaned command still deploys v1 everywhere; wait for it to end: v1 serves, and
    // the script let go of the app's lock (it holds it a moment longer, to prune and record).
    for inst in world.instances() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(&inst.address, "/version").as_deref() != Some("1.0.0") {
            assert!(Instant::now() < deadline, "{} never served v1", inst.id);
            std::thread::sleep(Duration::from_millis(250));
        }
        world.on_instance(
            inst,
            &format!("flock -w 60 /run/hoist/{}.lock true", app.name),
        );
    }

    // Not yet expired: the next deploy leaves it (another run might still need it).
    app.configure("2.0.0", "0s", "0");
    let v2 = app.deploy(&world, &[]);
    assert_ok(&v2);
    assert!(!v2.stderr.contains("swept"), "{}", v2.stderr);
    assert_eq!(world.hoist_parameters(), left);

    world.aws(&[
        "ssm",
        "add-tags-to-resource",
        "--resource-type",
        "Parameter",
        "--resource-id",
        &left[0],
        "--tags",
        "Key=hoist:expires,Value=2020-01-01T00:00:00Z",
    ]);
    app.configure("3.0.0", "0s", "0");
    let v3 = app.deploy(&world, &[]);
    assert_ok(&v3);
    assert!(
        v3.stderr.contains("swept 1 expired secret parameter") && v3.stderr.contains(&left[0]),
        "{}",
        v3.stderr
    );
    assert_eq!(world.hoist_parameters(), Vec::<String>::new());
}

/// Secrets each instance reads with its own role, from Parameter Store and from Secrets
/// Manager: the containers hold both values, hoist never saw them (its output, and no call
/// made with its credentials reads them), and a missing source fails each host with the
/// secret's name and source while the previous release keeps serving.
/// A config with no `region:`: hoist deploys to the region its SDK resolved (here from
/// `AWS_REGION`), and the hosts' script carries it. An instance's commands, as the SSM agent
/// runs them, have no region in their environment and the AWS CLI v1 does not ask the
/// instance metadata for one: without the header's region every host fails to read the run's
/// secret parameter and to log in to ECR.
#[test]
fn a_config_without_a_region_deploys_with_the_region_hoist_resolved() {
    if !ready() {
        return;
    }
    let world = World::up("noregion");
    let app = App::new("noregion");
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    assert!(yaml.contains("region: us-east-1\n"));
    std::fs::write(
        app.root.join("hoist.yaml"),
        yaml.replace("region: us-east-1\n", ""),
    )
    .unwrap();
    git(&app.root, &["commit", "-qam", "no region"]);
    let region = world
        .env
        .iter()
        .find(|(k, _)| k == "AWS_REGION")
        .map(|(_, v)| v.clone())
        .unwrap();
    let plan = app
        .cmd(&world, &["--dry-run", "--format", "json"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains(&format!("HOIST_REGION='{region}'")),
        "the script's header carries the resolved region"
    );
    let run = app.deploy(&world, &[]);
    assert_ok(&run);
    for inst in world.instances() {
        let env = world.container_env(inst, &app);
        assert!(
            env.contains(&format!("HELLO_API_TOKEN={SECRET}")),
            "{}",
            inst.id
        );
    }
    // The hosts themselves read the run's parameter and logged in to ECR.
    let client = world
        .env
        .iter()
        .find(|(k, _)| k == "AWS_ACCESS_KEY_ID")
        .map(|(_, v)| v.clone())
        .unwrap();
    let on_hosts = |op: &str| {
        world
            .journal()
            .iter()
            .filter(|c| c["operation"] == op && c["error"].is_null())
            .filter(|c| c["caller"].as_str() != Some(client.as_str()))
            .count()
    };
    assert!(on_hosts("GetParameter") >= 3, "each host read its secrets");
    assert!(
        on_hosts("GetAuthorizationToken") >= 3,
        "each host logged in"
    );
}

#[test]
fn secrets_the_hosts_read_themselves_never_pass_through_hoist() {
    const DB_URL: &str = "postgres://app:p4ss-from-ssm-66a1@db/app";
    const DB_PASSWORD: &str = "pw-from-secretsmanager-9f3e";
    if !ready() {
        return;
    }
    let world = World::up("hostsecrets");
    let app = App::new("hostsecrets");
    world.aws(&[
        "ssm",
        "put-parameter",
        "--name",
        "/prod/hostsecrets/db-url",
        "--type",
        "SecureString",
        "--value",
        DB_URL,
    ]);
    world.aws(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "prod/hostsecrets",
        "--secret-string",
        &format!("{{\"password\":\"{DB_PASSWORD}\",\"user\":\"app\"}}"),
    ]);
    let original = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    let with_sources = |extra: &str, message: &str| {
        let yaml = original.replace(
            "  secret: [HELLO_API_TOKEN]\n",
            &format!(
                "  secret:\n    - HELLO_API_TOKEN\n    - DB_URL: {{ssm: /prod/hostsecrets/db-url}}\n    \
                 - DB_PASSWORD: {{secretsmanager: prod/hostsecrets, key: password}}\n{extra}"
            ),
        );
        std::fs::write(app.root.join("hoist.yaml"), yaml).unwrap();
        git(&app.root, &["commit", "-qam", message]);
    };
    with_sources("", "host secrets");
    let before = world.journal().len();
    let run = app.deploy(&world, &[]);
    assert_ok(&run);
    for inst in world.instances() {
        let env = world.container_env(inst, &app);
        assert!(env.contains(&format!("DB_URL={DB_URL}")), "{}", inst.id);
        assert!(
            env.contains(&format!("DB_PASSWORD={DB_PASSWORD}")),
            "{}",
            inst.id
        );
        assert!(env.contains(&format!("HELLO_API_TOKEN={SECRET}")));
    }
    let output = format!("{}{}", run.stdout, run.stderr);
    assert!(!output.contains(DB_URL) && !output.contains(DB_PASSWORD));
    // hoist's own calls (the host's credentials) never read those sources; the instances
    // (their own credentials) did.
    let host_key = world
        .env
        .iter()
        .find(|(k, _)| k == "AWS_ACCESS_KEY_ID")
        .map(|(_, v)| v.clone())
        .unwrap();
    let calls: Vec<Value> = world.journal().into_iter().skip(before).collect();
    let reads = |from_host: bool| {
        calls
            .iter()
            .filter(|c| (c["caller"].as_str() == Some(host_key.as_str())) == from_host)
            .filter(|c| c["operation"] == "GetParameter" || c["operation"] == "GetSecretValue")
            .filter(|c| !is_the_lock(c))
            // hoist reads the record of the image it pushed for the commit.
            .filter(|c| {
                !c["params"]["Name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("/hoist/{}/images/", app.name)))
            })
            .count()
    };
    assert_eq!(reads(true), 0, "hoist read a secret source");
    assert!(reads(false) >= 6, "each instance read both sources");
    let journal = std::fs::read_to_string(world.dir.join("run/journal.jsonl")).unwrap();
    assert!(!journal.contains(DB_URL) && !journal.contains(DB_PASSWORD));

    // A source that does not exist: every host fails naming it; nothing switches.
    let serving: Vec<String> = world
        .instances()
        .iter()
        .map(|i| running_releases(&world, i).join(","))
        .collect();
    with_sources(
        "    - MISSING: {ssm: /prod/hostsecrets/nope}\n",
        "a missing source",
    );
    let bad = app.deploy(&world, &[]);
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    for (inst, before) in world.instances().iter().zip(&serving) {
        let row = bad
            .stdout
            .lines()
            .find(|l| l.starts_with(&inst.id))
            .unwrap_or_else(|| panic!("{}", bad.stdout));
        assert!(
            row.contains("secret MISSING") && row.contains("ssm:/prod/hostsecrets/nope"),
            "{row}"
        );
        assert_eq!(&running_releases(&world, inst).join(","), before);
        assert_serves(inst, "1.0.0");
    }
}

impl App {
    /// `hoist SUBCOMMAND ARGS` against the world, with no secret in hoist's environment.
    fn without_secrets(&self, world: &World, subcommand: &str, args: &[&str]) -> Run {
        let run: Run = hoist()
            .current_dir(&self.root)
            .arg(subcommand)
            .args(args)
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CI", "true")
            .output()
            .expect("hoist runs")
            .into();
        assert!(!leaks(&run.stdout) && !leaks(&run.stderr));
        run
    }
}

/// Over SSM on the three instances: `hoist status` reads each one (release, health,
/// retained releases) from Docker and the history; `hoist rollback` returns every instance
/// to v1 with one `SendCommand` and no secret (no `PutParameter`: each retained container keeps
/// its configuration), and `--to` returns them to v2.
#[test]
fn status_and_rollback_over_ssm() {
    if !ready() {
        return;
    }
    let world = World::up("rollback");
    let app = App::new("rollback");
    let v1 = planned_release(&app);
    assert_ok(&app.deploy(&world, &[]));
    app.configure("2.0.0", "0s", "0");
    let v2 = planned_release(&app);
    assert_ok(&app.deploy(&world, &[]));
    for inst in world.instances() {
        assert_serves(inst, "2.0.0");
    }

    let status = app.without_secrets(&world, "status", &["--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    let targets = report["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 3, "{report}");
    for t in targets {
        let host = &t["host"];
        assert_eq!(host["running"]["release"], v2.as_str(), "{t}");
        assert_eq!(host["running"]["health"], "healthy", "{t}");
        assert!(
            host["running"]["digest"]
                .as_str()
                .is_some_and(|d| d.contains("@sha256:")),
            "pulled by digest: {t}"
        );
        assert_eq!(host["retained"][0]["release"], v1.as_str(), "{t}");
    }
    let text = app.without_secrets(&world, "status", &[]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    for inst in world.instances() {
        assert!(text.stdout.contains(&inst.id), "{}", text.stdout);
    }

    let before = world.journal().len();
    let back = app.without_secrets(&world, "rollback", &["--format", "json"]);
    assert_eq!(back.code, 0, "{}\n{}", back.stdout, back.stderr);
    let report: Value = serde_json::from_str(&back.stdout).unwrap();
    assert_eq!(report["rolled_back"], 3, "{report}");
    assert!(
        report["lock"]["parameter"]
            .as_str()
            .is_some_and(|p| p.starts_with(&format!("/hoist/{}/lock/", app.name))),
        "a rollback holds the fleet lock: {report}"
    );
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
        let history = last_history(&world, inst, &app);
        assert_eq!(history["status"], "rolled-back", "{history}");
        assert_eq!(history["release"], v1.as_str(), "{history}");
        let running = running_releases(&world, inst);
        assert_eq!(running.len(), 1, "{}: {running:?}", inst.id);
    }
    let calls: Vec<String> = world
        .journal()
        .into_iter()
        .skip(before)
        .filter_map(|c| c["operation"].as_str().map(str::to_owned))
        .collect();
    // The one parameter a rollback puts is its fleet-wide lock (a String): no secret.
    let put: Vec<Value> = world
        .journal()
        .into_iter()
        .skip(before)
        .filter(|c| c["operation"] == "PutParameter")
        .collect();
    assert!(
        put.iter()
            .all(|c| c["params"]["Type"] == "String" && is_the_lock(c)),
        "a rollback sends no secret: {put:?}"
    );
    assert_eq!(
        calls.iter().filter(|op| *op == "SendCommand").count(),
        1,
        "{calls:?}"
    );

    let forward = app.without_secrets(&world, "rollback", &["--to", &v2]);
    assert_eq!(forward.code, 0, "{}\n{}", forward.stdout, forward.stderr);
    for inst in world.instances() {
        assert_serves(inst, "2.0.0");
    }
}

impl App {
    /// hoist.yaml for blue/green, rolled out in one phase (`rollout: one-phase`): see
    /// `configure_rollout`.
    fn configure_blue_green(&self, version: &str, drain: &str, command: &str) {
        self.configure_rollout("one-phase", "0", version, drain, command);
    }

    /// hoist.yaml for blue/green: nginx on 8080, the two colors on loopback, a post-switch
    /// check of 4 s, a drain of `drain`; `command`: the container's command (YAML), if any;
    /// `rollout` and `max_errors` as given, max concurrency 1.
    fn configure_rollout(
        &self,
        rollout: &str,
        max_errors: &str,
        version: &str,
        drain: &str,
        command: &str,
    ) {
        let concurrency = if rollout == "one-phase" { "3" } else { "1" };
        let yaml = format!(
            "app: {name}\nregion: us-east-1\nstrategy: blue-green\nrollout: {rollout}\n\
             image:\n  repository: e2e/{name}\n  build_args:\n    VERSION: \"{version}\"\n\
             targets:\n  tags:\n    Env: [test]\n  max_concurrency: \"{concurrency}\"\n  \
             max_errors: \"{max_errors}\"\n\
             container:\n  port: 8080\n  publish: 8080\n  stop_timeout: 2s\n{command}\
             healthcheck:\n  path: /healthz\n  interval: 1s\n  timeout: 10s\n\
             blue_green:\n  drain: {drain}\n  post_switch_check: 4s\n\
             env:\n  clear:\n    GREETING: hi\n  secret: [HELLO_API_TOKEN]\n",
            name = self.name,
        );
        std::fs::write(self.root.join("hoist.yaml"), yaml).unwrap();
        git(&self.root, &["add", "-A"]);
        git(
            &self.root,
            &["commit", "-qm", &format!("{version} blue-green")],
        );
    }
}

/// Requests `/version` through each instance's nginx, back to back, until stopped: what
/// a client of the app saw during a deploy.
struct Load {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Observed>>,
}

/// One instance's view: requests sent, the failures (connection errors, non-2xx), and the
/// versions seen in order (each change once).
#[derive(Debug, Default)]
struct Observed {
    address: String,
    sent: usize,
    failed: Vec<String>,
    versions: Vec<String>,
}

impl Observed {
    /// The first version seen was `first`, the last `last`, and none but `only` was seen.
    fn assert_versions(&self, first: &str, last: &str, only: &[&str]) {
        assert_eq!(
            self.versions.first().map(String::as_str),
            Some(first),
            "{self:?}"
        );
        assert_eq!(
            self.versions.last().map(String::as_str),
            Some(last),
            "{self:?}"
        );
        assert!(
            self.versions.iter().all(|v| only.contains(&v.as_str())),
            "{self:?}"
        );
    }
}

impl Load {
    fn start(instances: &[Instance]) -> Load {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = instances
            .iter()
            .map(|inst| {
                let address = inst.address.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = Observed {
                        address: address.clone(),
                        ..Observed::default()
                    };
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        seen.sent += 1;
                        match http_get(&address, 8080, "/version") {
                            Ok((status, body)) if (200..300).contains(&status) => {
                                let v = body.trim().to_owned();
                                if seen.versions.last() != Some(&v) {
                                    seen.versions.push(v);
                                }
                            }
                            Ok((status, _)) => seen.failed.push(format!("HTTP {status}")),
                            Err(e) => seen.failed.push(e),
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    seen
                })
            })
            .collect();
        Load { stop, threads }
    }

    fn stop(self) -> Vec<Observed> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect()
    }
}

/// One HTTP/1.1 GET with `Connection: close`: the status and the body.
fn http_get(address: &str, port: u16, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = format!("{address}:{port}").parse().unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .map_err(|e| format!("read: {e}"))?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok((status, body.to_owned()))
}

fn assert_no_failed_requests(observed: &[Observed], during: &str) {
    for o in observed {
        eprintln!(
            "{during}: {}: {} requests, {} failed, versions {:?}",
            o.address,
            o.sent,
            o.failed.len(),
            o.versions
        );
        assert!(o.sent > 10, "{during}: {o:?}");
        assert!(
            o.failed.is_empty(),
            "{during}: {} failed requests on {}: {:?}",
            o.failed.len(),
            o.address,
            &o.failed[..o.failed.len().min(5)]
        );
    }
}

/// Blue/green over SSM on three instances, each with its own real nginx, under continuous
/// requests: the first deploy installs nginx's file for the app; a second deploy switches
/// every instance to v2 with no failed request; a release whose health check fails never
/// gets traffic (exit 1, each instance named); one that passes its gate but fails the
/// post-switch check through nginx is switched back (history `rolled-back`); `hoist
/// rollback` returns to v1 with no failed request and no `PutParameter`; status names the
/// live and idle colors.
#[test]
fn blue_green_switches_without_failed_requests_and_undoes_bad_releases() {
    if !ready() {
        return;
    }
    let world = World::up("bluegreen");
    let app = App::new("bluegreen");
    let instances = world.instances();
    app.configure_blue_green("1.0.0", "2s", "");
    let v1 = planned_release(&app);
    assert_ok(&app.deploy(&world, &[]));
    for inst in instances {
        assert_serves(inst, "1.0.0");
        let conf = world.on_instance(
            inst,
            &format!("cat /etc/nginx/conf.d/hoist-{}.conf", app.name),
        );
        assert!(conf.contains("listen 8080"), "{}: {conf}", inst.id);
    }

    // v2 under load: every request answered; each instance moves from v1 to v2. Until v2 is
    // verified, v1 is nginx's backup and answers a request v2 could not (a slow accept on a
    // loaded machine), so v1 may show again between v2's answers, but nothing else does.
    app.configure_blue_green("2.0.0", "2s", "");
    let v2 = planned_release(&app);
    let load = Load::start(instances);
    let deployed = app.deploy(&world, &[]);
    let observed = load.stop();
    assert_ok(&deployed);
    assert_no_failed_requests(&observed, "v1 -> v2");
    for o in &observed {
        o.assert_versions("1.0.0", "2.0.0", &["1.0.0", "2.0.0"]);
    }

    // A release whose health check fails: traffic never moves.
    app.configure_blue_green(
        "3.0.0-broken",
        "2s",
        "  command: [\"sh\", \"-c\", \"rm -f /www/healthz; exec busybox httpd -f -p 8080 -h /www\"]\n",
    );
    let load = Load::start(instances);
    let broken = app.deploy(&world, &[]);
    let observed = load.stop();
    assert_eq!(broken.code, 1, "{}\n{}", broken.stdout, broken.stderr);
    for inst in instances {
        assert!(broken.stdout.contains(&inst.id), "{}", broken.stdout);
    }
    assert_no_failed_requests(&observed, "a failing health check");
    for o in &observed {
        assert_eq!(o.versions, ["2.0.0"], "{o:?}");
    }

    // Passes its gate, then fails through nginx within the post-switch check: switched back.
    app.configure_blue_green(
        "4.0.0-fades",
        "2s",
        "  command: [\"sh\", \"-c\", \"(sleep 2; rm -f /www/healthz) & exec busybox httpd -f -p 8080 -h /www\"]\n",
    );
    let load = Load::start(instances);
    let fades = app.deploy(&world, &[]);
    let observed = load.stop();
    assert_eq!(fades.code, 1, "{}\n{}", fades.stdout, fades.stderr);
    assert_no_failed_requests(&observed, "a failing post-switch check");
    for inst in instances {
        assert_serves(inst, "2.0.0");
        let history = last_history(&world, inst, &app);
        assert_eq!(history["status"], "rolled-back", "{}: {history}", inst.id);
    }

    // Status: v2 live in its color, v1 idle.
    let status = app.without_secrets(&world, "status", &["--format", "json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let report: Value = serde_json::from_str(&status.stdout).unwrap();
    for t in report["targets"].as_array().unwrap() {
        let host = &t["host"];
        assert_eq!(host["running"]["release"], v2.as_str(), "{t}");
        assert_eq!(host["live_color"], host["running"]["color"], "{t}");
        assert_ne!(host["live_color"], host["idle_color"], "{t}");
    }

    // Rollback to v1 under load: no failed request, no secret sent.
    let before = world.journal().len();
    let load = Load::start(instances);
    let back = app.without_secrets(&world, "rollback", &[]);
    let observed = load.stop();
    assert_eq!(back.code, 0, "{}\n{}", back.stdout, back.stderr);
    assert_no_failed_requests(&observed, "rollback");
    for o in &observed {
        assert_eq!(
            o.versions.last().map(String::as_str),
            Some("1.0.0"),
            "{o:?}"
        );
    }
    for inst in instances {
        assert_serves(inst, "1.0.0");
        assert_eq!(last_history(&world, inst, &app)["release"], v1.as_str());
    }
    assert!(
        !world
            .journal()
            .into_iter()
            .skip(before)
            .any(|c| c["operation"] == "PutParameter" && !is_the_lock(&c)),
        "a rollback sends no secret (it puts its fleet-wide lock only)"
    );

    // Ctrl-C between the switch and the retire: every instance keeps serving
    // with no failed request, and what each serves is what its history says.
    app.configure_blue_green("5.0.0", "20s", "");
    let conf = |inst: &Instance| {
        world.on_instance(
            inst,
            &format!("cat /etc/nginx/conf.d/hoist-{}.conf", app.name),
        )
    };
    let before: Vec<String> = instances.iter().map(conf).collect();
    let load = Load::start(instances);
    let child = app
        .cmd(&world, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while instances.iter().zip(&before).any(|(i, b)| conf(i) == *b) {
        assert!(Instant::now() < deadline, "nginx never switched everywhere");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(libc::pid_t::try_from(child.id()).unwrap(), libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    // SSM killed each script: its watchdog finishes the restore on its own, within 30 s one
    // release runs. The load runs until then.
    for inst in instances {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let running = running_releases(&world, inst);
            if running.len() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {running:?}", inst.id);
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let observed = load.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_failed_requests(&observed, "Ctrl-C between switch and retire");
    for inst in instances {
        assert!(stdout.contains(&inst.id), "{} reported:\n{stdout}", inst.id);
        let serving = get(&inst.address, "/version").expect("serves");
        let history = last_history(&world, inst, &app);
        // The agent kills a cancelled script a moment after the cancel: one that passed its
        // gate by then stays (its watchdog records `killed`, "… it stays").
        let stayed = history["status"] == "deployed"
            || history["reason"]
                .as_str()
                .is_some_and(|r| r.ends_with("passed its health gate; it stays"));
        let expected = if stayed { "5.0.0" } else { "1.0.0" };
        assert_eq!(serving, expected, "{}: history {history}", inst.id);
    }
}

/// A plan reviewed over SSM (`plan --resolve-targets --out`) is applied by `deploy --plan` on
/// the instances it names, running the reviewed scripts but for the image reference; it is
/// refused before any AWS call changes anything when the targets resolve to an instance it
/// does not name, and when the commit's tag no longer holds the digest hoist recorded
/// pushing (a mutable tag pushed over by hand).
#[test]
fn a_reviewed_plan_applies_over_ssm_and_is_refused_when_the_targets_or_the_image_changed() {
    if !ready() {
        return;
    }
    let world = World::up("reviewed");
    let app = App::new("reviewed");
    let saved = tempfile::tempdir().unwrap();
    let plan_cmd = |args: &[&str]| -> Run {
        hoist()
            .current_dir(&app.root)
            .arg("plan")
            .args(args)
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CI", "true")
            .output()
            .unwrap()
            .into()
    };
    // Saved for review, a plan over SSM must name its instances.
    let path = saved.path().join("plan.json");
    let file = path.to_str().unwrap();
    let offline = plan_cmd(&["--out", file]);
    assert_eq!(offline.code, 2, "{}", offline.stderr);
    assert!(
        offline.stderr.contains("add --resolve-targets"),
        "{}",
        offline.stderr
    );
    plan_cmd(&["--resolve-targets", "--out", file]).success();
    let reviewed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut ids: Vec<String> = world.instances().iter().map(|i| i.id.clone()).collect();
    ids.sort();
    assert_eq!(reviewed["targets"]["resolved"], serde_json::json!(ids));
    // The run is each apply's own: the reviewed plan names its secret parameter's pattern.
    assert!(reviewed.get("run").is_none(), "{reviewed}");
    assert!(
        reviewed["env"]["parameter"]
            .as_str()
            .unwrap()
            .ends_with("/<run>/env"),
        "{}",
        reviewed["env"]["parameter"]
    );

    // Reviewed when only two instances matched: the third is named, nothing is called.
    let mut fewer = reviewed.clone();
    let dropped = fewer["targets"]["resolved"]
        .as_array_mut()
        .unwrap()
        .pop()
        .unwrap();
    let fewer_path = saved.path().join("fewer.json");
    std::fs::write(&fewer_path, serde_json::to_string(&fewer).unwrap()).unwrap();
    let refused = app.deploy(&world, &["--plan", fewer_path.to_str().unwrap()]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "targets changed (as SSM resolves them now): added {}",
            dropped.as_str().unwrap()
        )),
        "{}",
        refused.stderr
    );
    for operation in ["CreateRepository", "PutParameter", "SendCommand"] {
        assert_eq!(world.calls(operation), 0, "{operation}: nothing changed");
    }

    // An apply that fails (one instance's state directory is read-only), then re-run as it was:
    // each attempt is its own run, with its own secret parameter; the re-run works.
    let put_names = || -> Vec<String> {
        world
            .journal()
            .iter()
            .filter(|l| l["operation"] == "PutParameter" && l["error"].is_null())
            .filter_map(|l| l["params"]["Name"].as_str().map(str::to_owned))
            .filter(|n| n.ends_with("/env"))
            .collect()
    };
    // (A read-only /var/lib/hoist: the host checks pass, the deploy fails there.)
    let down = &world.instances()[0].id;
    world.fault(&["disk", down, "readonly"]);
    let failed = app.deploy(&world, &["--plan", file]);
    world.fault(&["disk", down, "ok"]);
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    let first = put_names();
    assert_eq!(first.len(), 1, "{first:?}");

    // Applied. The executed script is the reviewed one but for the image and the run.
    let applied = app.deploy(&world, &["--plan", file, "--format", "json"]);
    assert_ok(&applied);
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
    let report: Value = serde_json::from_str(&applied.stdout).unwrap();
    let run_id = report["plan"]["run"].as_str().unwrap().to_owned();
    let puts = put_names();
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_ne!(puts[0], puts[1], "a re-run is a new run");
    assert!(puts[1].contains(&run_id), "{puts:?} {run_id}");
    assert_eq!(
        report["plan"]["env"]["parameter"].as_str(),
        Some(puts[1].as_str())
    );
    let (r, e) = (
        run_phase(&reviewed)["script"]["text"].as_str().unwrap(),
        run_phase(&report["plan"])["script"]["text"]
            .as_str()
            .unwrap(),
    );
    let differing: Vec<&str> = r
        .lines()
        .zip(e.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.split('=').next().unwrap())
        .collect();
    assert_eq!(r.lines().count(), e.lines().count());
    assert_eq!(
        differing,
        [
            "HOIST_IMAGE",
            "HOIST_IMAGE_LABEL",
            "HOIST_SECRET_PARAMETER",
            "HOIST_REGISTRY"
        ]
    );
    assert_eq!(
        report["reviewed"][0]["reviewed_sha256"],
        run_phase(&reviewed)["script"]["sha256"]
    );

    // Against live state, right after the deploy: every instance unchanged.
    let live_path = saved.path().join("live.json");
    let live_file = live_path.to_str().unwrap();
    plan_cmd(&["--against-live", "--out", live_file]).success();
    let live: Value = serde_json::from_str(&std::fs::read_to_string(&live_path).unwrap()).unwrap();
    let verdicts: Vec<&str> = live["live"]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["unchanged"; 3], "{}", live["live"]);
    // One instance changed by hand (its release stopped): the apply is refused naming it
    // alone, and nothing is deployed.
    let (changed, others) = world.instances().split_first().unwrap();
    let container = world.docker(
        changed,
        &[
            "ps",
            "-q",
            "--filter",
            &format!("label=hoist.app={}", app.name),
        ],
    );
    world.docker(changed, &["stop", "-t", "1", container.trim()]);
    let puts = put_names().len();
    let refused = app.deploy(&world, &["--plan", live_file]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "{} moved since the plan was made against it",
            changed.id
        )),
        "{}",
        refused.stderr
    );
    for other in others {
        assert!(
            !refused.stderr.contains(&format!("{} moved", other.id)),
            "{}",
            refused.stderr
        );
        assert_serves(other, "1.0.0");
    }
    assert_eq!(put_names().len(), puts, "no secret parameter was put");
    world.docker(changed, &["start", container.trim()]);

    // `hoist build` prints what hosts run: the digest hoist recorded pushing for the commit.
    let built: Run = hoist()
        .current_dir(&app.root)
        .arg("build")
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CI", "true")
        .output()
        .unwrap()
        .into();
    built.success();
    assert_eq!(
        built.stdout.trim(),
        report["plan"]["image"]["reference"].as_str().unwrap()
    );
    assert!(
        built.stderr.contains("holds the digest hoist recorded in"),
        "{}",
        built.stderr
    );

    // The commit's tag pushed over with an image of another revision: refused, nothing sent.
    // (image_reuse.rs pushes one whose label is forged to match the commit.)
    let registry = &world
        .env
        .iter()
        .find(|(k, _)| k == "HOIST_FLEET_REGISTRY")
        .unwrap()
        .1;
    let commit = reviewed["revision"]["sha"].as_str().unwrap();
    let other = "feedfacefeedfacefeedfacefeedfacefeedface";
    let docker_config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write as _;
        let mut child = Command::new("docker")
            .env("DOCKER_CONFIG", docker_config.path())
            .env("DOCKER_BUILDKIT", "0")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    };
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM busybox:1.35\nLABEL org.opencontainers.image.revision={other}\nRUN echo other > /other\n"
        ),
    )
    .unwrap();
    let tag = format!("{registry}/e2e/{}:{commit}", app.name);
    docker(
        &["build", "-q", "-t", &tag, context.path().to_str().unwrap()],
        None,
    );
    docker(
        &["login", "-u", "AWS", "--password-stdin", registry],
        Some(&world.registry_password),
    );
    docker(&["push", "-q", &tag], None);
    docker(&["rmi", "--no-prune", &tag], None);
    let sends = world.changing_commands();
    let refused = app.deploy(&world, &["--plan", file]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    let recorded = report["plan"]["image"]["reference"]
        .as_str()
        .unwrap()
        .rsplit_once('@')
        .unwrap()
        .1;
    assert!(
        refused.stderr.contains(&format!(
            "tag {commit} of ECR repository e2e/{} holds sha256:",
            app.name
        )) && refused.stderr.contains(&format!(
            ", not {recorded}, the digest hoist recorded in /hoist/{}/images/{commit}",
            app.name
        )),
        "{}",
        refused.stderr
    );
    assert_eq!(world.changing_commands(), sends, "no host was touched");
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
}

/// A two-phase blue-green rollout on three instances (max concurrency 1, max errors 0):
/// under load, the stage runs everywhere, then the switch one instance at a time; every
/// instance serves v2 with no failed request, the report has each phase's per-target results
/// and the mixed-version window, and the secret parameter is deleted before the switch is
/// sent. Then staging fails on one instance (its idle color's port taken): no instance
/// switches, every one still serves v2, the others' staged containers are discarded, exit 1,
/// and the report says so per target.
#[test]
fn two_phase_blue_green_switches_only_when_staging_passed_everywhere() {
    if !ready() {
        return;
    }
    let world = World::up("twophase");
    let app = App::new("twophase");
    let instances = world.instances();
    app.configure_rollout("two-phase", "0", "1.0.0", "1s", "");
    assert_ok(&app.deploy(&world, &[]));
    for inst in instances {
        assert_serves(inst, "1.0.0");
    }

    // v2, under load.
    app.configure_rollout("two-phase", "0", "2.0.0", "1s", "");
    let v2 = planned_release(&app);
    let before = world.journal().len();
    let load = Load::start(instances);
    let run = app.deploy(&world, &["--format", "json"]);
    let observed = load.stop();
    assert_ok(&run);
    assert_no_failed_requests(&observed, "two-phase v1 -> v2");
    for o in &observed {
        // From v1 to v2 (right after a graceful reload nginx's old worker may still answer a
        // request or two: README, blue-green's switch).
        o.assert_versions("1.0.0", "2.0.0", &["1.0.0", "2.0.0"]);
    }
    for inst in instances {
        assert_serves(inst, "2.0.0");
    }
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let phase = |name: &str| {
        report["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no phase {name} in {report}"))
    };
    for (name, outcome) in [("stage", "staged"), ("switch", "deployed")] {
        let p = phase(name);
        let invocations = p["invocations"].as_array().unwrap();
        assert_eq!(invocations.len(), 3, "{p}");
        for inv in invocations {
            assert_eq!(inv["outcome"], outcome, "{name}: {inv}");
        }
    }
    assert_eq!(report["deployed"], 3, "{report}");
    let window = report["mixed_version_window_ms"]
        .as_u64()
        .expect("a mixed-version window");
    assert!(window < 120_000, "{window}");
    assert!(
        run.stderr.contains("mixed-version window: "),
        "{}",
        run.stderr
    );
    let discard = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["phase"] == "discard")
        .unwrap();
    assert_eq!(discard["status"], "skipped", "{discard}");
    // The secret parameter is gone before the switch is sent; switch commands one at a time.
    let calls: Vec<Value> = world.journal().into_iter().skip(before).collect();
    let deleted = calls
        .iter()
        .position(|c| c["operation"] == "DeleteParameter" && c["error"].is_null())
        .expect("the parameter is deleted");
    let sends: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c["operation"] == "SendCommand" && c["error"].is_null())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(sends.len(), 3, "host checks, stage, switch: {sends:?}");
    assert!(
        sends[1] < deleted && deleted < sends[2],
        "{sends:?} {deleted}"
    );
    for inst in instances {
        assert_eq!(last_history(&world, inst, &app)["release"], v2.as_str());
        assert!(
            world
                .docker(
                    inst,
                    &["ps", "-a", "--filter", "label=hoist.staged-by", "-q"]
                )
                .lines()
                .count()
                >= 1,
            "v2's container carries its run's label"
        );
    }

    // v3: instance 0's idle color (blue: v1's, stopped) has its loopback port taken by a
    // process of its own, so v3 cannot start there. (SO_REUSEADDR, as docker-proxy binds:
    // nginx's connections to v1 on that port may linger in TIME_WAIT.)
    app.configure_rollout("two-phase", "0", "3.0.0", "1s", "");
    let v3 = planned_release(&app);
    let taken = &instances[0];
    let squatter = world
        .on_instance(
            taken,
            "setsid /usr/bin/python3 -c 'import socket, time\n\
             s = socket.socket()\n\
             s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
             s.bind((\"127.0.0.1\", 18080))\n\
             s.listen()\n\
             time.sleep(600)' </dev/null >/dev/null 2>/tmp/squatter.err & echo $!",
        )
        .trim()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !world
        .on_instance(taken, "cat /proc/net/tcp")
        .contains(":46A0 00000000:0000 0A")
    {
        assert!(
            Instant::now() < deadline,
            "the squatter ({squatter}) never listened: {}",
            world.on_instance(taken, "cat /tmp/squatter.err; ps -ef | grep -c python3")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let load = Load::start(instances);
    let run = app.deploy(&world, &[]);
    let observed = load.stop();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_no_failed_requests(&observed, "staging failed on one instance");
    for o in &observed {
        assert_eq!(o.versions, ["2.0.0"], "{o:?}");
    }
    for inst in instances {
        assert_serves(inst, "2.0.0");
        let left = world.docker(
            inst,
            &[
                "ps",
                "-a",
                "--filter",
                &format!("label=hoist.release={v3}"),
                "-q",
            ],
        );
        assert!(left.is_empty(), "{}: v3 left {left}", inst.id);
        let row = run
            .stdout
            .lines()
            .find(|l| l.starts_with(&inst.id) && l.contains("stage:"))
            .unwrap_or_else(|| panic!("{} has no stage row:\n{}", inst.id, run.stdout));
        if inst.id == taken.id {
            assert!(row.contains("stage: rolled back"), "{row}");
        } else {
            assert!(row.contains("stage: staged"), "{row}");
            assert!(
                run.stdout
                    .lines()
                    .any(|l| l.starts_with(&inst.id) && l.contains("discard: discarded")),
                "{}",
                run.stdout
            );
        }
    }
    assert!(
        run.stdout
            .contains("more than max errors (0) allow: nothing switched anywhere"),
        "{}",
        run.stdout
    );
    world.on_instance(taken, &format!("kill {squatter}"));

    // v4: hoist is SIGKILLed once every instance runs v4 staged, before any switch. The
    // stages finish on their own (SSM keeps running them); nothing switches; the staged
    // containers run on, unserved, and `hoist status` lists them; the lock stays (its lease
    // not yet over) until `hoist unlock`, whose job summary says whose it was.
    app.configure_rollout("two-phase", "0", "4.0.0", "1s", "");
    let v4 = planned_release(&app);
    let mut child = app
        .cmd(&world, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while instances
        .iter()
        .any(|i| running_container(&world, i, &v4).is_empty())
    {
        assert!(Instant::now() < deadline, "v4 never ran staged everywhere");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let staged = loop {
        let status = app.without_secrets(&world, "status", &["--format", "json"]);
        let report: Value = serde_json::from_str(&status.stdout).unwrap();
        let staged: Vec<Value> = report["targets"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| {
                t["host"]["staged"]
                    .as_array()
                    .and_then(|s| s.first())
                    .cloned()
            })
            .collect();
        if staged.len() == 3 {
            break staged;
        }
        assert!(
            Instant::now() < deadline,
            "status never listed v4 staged: {report}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for s in &staged {
        assert_eq!(s["release"], v4.as_str(), "{s}");
    }
    for inst in instances {
        assert_serves(inst, "2.0.0");
    }
    app.configure_rollout("two-phase", "0", "5.0.0", "1s", "");
    let refused = app.deploy(&world, &[]);
    assert_eq!(refused.code, 3, "{}\n{}", refused.stdout, refused.stderr);
    let summary = tempfile::NamedTempFile::new().unwrap();
    let unlock: Run = hoist()
        .current_dir(&app.root)
        .arg("unlock")
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    let written = std::fs::read_to_string(summary.path()).unwrap();
    assert!(
        written.contains("### hoist unlock")
            && written.contains("broke the deploy lock")
            && written.contains("that deploy may still be running"),
        "{written}"
    );

    // v5: its stage removes v4's staged containers (never switched), then v5 goes live.
    let run = app.deploy(&world, &[]);
    assert_ok(&run);
    for inst in instances {
        assert_serves(inst, "5.0.0");
        let left = world.docker(
            inst,
            &[
                "ps",
                "-a",
                "--filter",
                &format!("label=hoist.release={v4}"),
                "-q",
            ],
        );
        assert!(left.is_empty(), "{}: v4 left {left}", inst.id);
    }
}

/// The release's container of `release` running on `inst`, by id.
fn running_container(world: &World, inst: &Instance, release: &str) -> String {
    world
        .docker(
            inst,
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=hoist.release={release}"),
                "--filter",
                "status=running",
            ],
        )
        .trim()
        .to_owned()
}

/// A canary rollout (`rollout.canary: 1`) on three instances under load: a release whose
/// health check starts failing on the canary after its post-switch check, inside the canary
/// window, is switched back there; the other two instances never change (they only ever
/// serve v1, their nginx file is as it was, their staged containers are discarded); no
/// request fails; the report says why the rest did not switch. A release that holds switches
/// the canary first and the rest only once the window is over.
#[test]
fn a_canary_that_fails_its_window_is_switched_back_and_nothing_else_changes() {
    if !ready() {
        return;
    }
    let world = World::up("canary");
    let app = App::new("canary");
    let instances = world.instances();
    let rollout = "{canary: 1, canary_window: 15s}";
    app.configure_rollout("two-phase", "0", "1.0.0", "1s", "");
    let v1 = planned_release(&app);
    assert_ok(&app.deploy(&world, &[]));
    for inst in instances {
        assert_serves(inst, "1.0.0");
    }
    let conf = |inst: &Instance| {
        world.on_instance(
            inst,
            &format!("cat /etc/nginx/conf.d/hoist-{}.conf", app.name),
        )
    };
    let before: Vec<String> = instances.iter().map(conf).collect();

    // v2: 6 s after the canary serves it (past its 4 s post-switch check, inside its 15 s
    // window), its health check starts failing there.
    app.configure_rollout(rollout, "0", "2.0.0", "1s", "");
    let v2 = planned_release(&app);
    let load = Load::start(instances);
    let child = app
        .cmd(&world, &["--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let canary = loop {
        let serving: Vec<&Instance> = instances
            .iter()
            .filter(|i| get(&i.address, "/version").as_deref() == Some("2.0.0"))
            .collect();
        assert!(serving.len() <= 1, "more than the canary switched");
        if let Some(inst) = serving.first() {
            break *inst;
        }
        assert!(Instant::now() < deadline, "no canary ever served v2");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Past its 4 s post-switch check and inside its 15 s window: a time, not a state (the
    // script shows no step between the two).
    std::thread::sleep(Duration::from_secs(6));
    let v2_container = running_container(&world, canary, &v2);
    assert!(!v2_container.is_empty());
    world.docker(canary, &["exec", &v2_container, "rm", "-f", "/www/healthz"]);
    let out = child.wait_with_output().unwrap();
    let observed = load.stop();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!leaks(&stdout) && !leaks(&stderr));
    assert_no_failed_requests(&observed, "a failing canary");
    for (inst, o) in instances.iter().zip(&observed) {
        if inst.id == canary.id {
            // v1, v2, v1 again (right after a graceful reload nginx's old worker may still
            // answer a request or two: README, blue-green's switch).
            o.assert_versions("1.0.0", "1.0.0", &["1.0.0", "2.0.0"]);
            assert!(o.versions.iter().any(|v| v == "2.0.0"), "{o:?}");
        } else {
            assert_eq!(o.versions, ["1.0.0"], "{o:?}");
        }
    }
    for (inst, conf_before) in instances.iter().zip(&before) {
        assert_serves(inst, "1.0.0");
        assert_eq!(&conf(inst), conf_before, "{}: nginx as before", inst.id);
        let left = world.docker(
            inst,
            &[
                "ps",
                "-a",
                "--filter",
                &format!("label=hoist.release={v2}"),
                "-q",
            ],
        );
        assert!(left.is_empty(), "{}: v2 left {left}", inst.id);
        let history = last_history(&world, inst, &app);
        if inst.id == canary.id {
            assert_eq!(history["status"], "rolled-back", "{history}");
            assert_eq!(history["release"], v2.as_str(), "{history}");
        } else {
            // What they record last is the discard of their staged v2; v1 serves on.
            assert_eq!(history["status"], "discarded", "{history}");
            assert!(
                history["reason"]
                    .as_str()
                    .unwrap()
                    .contains("nginx still routes to"),
                "{history}"
            );
            let running = running_releases(&world, inst);
            assert!(
                running.len() == 1 && running[0].ends_with(&format!(" {v1}")),
                "{}: {running:?}",
                inst.id
            );
        }
    }
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let phase = |report: &Value, name: &str| -> Vec<Value> {
        report["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["invocations"].as_array().unwrap().clone())
            .unwrap_or_default()
    };
    let canaries = phase(&report, "canary");
    assert_eq!(canaries.len(), 1, "{report}");
    assert_eq!(canaries[0]["target"], canary.id.as_str(), "{report}");
    assert_eq!(canaries[0]["outcome"], "rolled-back", "{report}");
    let why = canaries[0]["result"]["reason"].as_str().unwrap_or_default();
    assert!(why.contains("canary failed"), "{}", canaries[0]);
    let switch = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["phase"] == "switch")
        .unwrap();
    assert_eq!(switch["status"], "not-run", "{switch}");
    assert!(
        switch["detail"]
            .as_str()
            .unwrap()
            .contains("failed on 1 of 1 canary target(s)"),
        "{switch}"
    );
    let discarded = phase(&report, "discard");
    assert_eq!(discarded.len(), 2, "{report}");
    assert!(
        discarded.iter().all(|i| i["outcome"] == "discarded"),
        "{report}"
    );

    // v3 holds: the canary first, the rest once its 15 s window is over.
    app.configure_rollout(rollout, "0", "3.0.0", "1s", "");
    let load = Load::start(instances);
    let run = app.deploy(&world, &["--format", "json"]);
    let observed = load.stop();
    assert_ok(&run);
    assert_no_failed_requests(&observed, "a canary that holds");
    for inst in instances {
        assert_serves(inst, "3.0.0");
    }
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let canaries = phase(&report, "canary");
    let rest = phase(&report, "switch");
    assert_eq!((canaries.len(), rest.len()), (1, 2), "{report}");
    let at = |i: &Value| i["result"]["switched_at"].as_u64().unwrap();
    for inv in &rest {
        assert_eq!(inv["outcome"], "deployed", "{inv}");
        assert!(
            at(inv) >= at(&canaries[0]) + 15_000,
            "switched before the canary's window ended: {report}"
        );
    }
    assert_eq!(report["deployed"], 3, "{report}");
    assert!(report["mixed_version_window_ms"].as_u64().unwrap() >= 15_000);
}

/// Recreate's two-phase rollout (`rollout: two-phase`): the stage pulls the image on every
/// instance at once and changes nothing that runs. With instance 0's state disk read-only
/// the stage fails there (max errors 0): no instance switches, each still runs the very
/// container it ran, exit 1. With the disk fixed, the next deploy switches everywhere, and
/// the switch pulls nothing where the earlier stage already did.
#[test]
fn two_phase_recreate_pulls_everywhere_before_any_host_switches() {
    if !ready() {
        return;
    }
    let world = World::up("recreate2ph");
    let app = App::new("recreate2ph");
    let instances = world.instances();
    let two_phase = |version: &str| {
        app.configure_with(version, "0s", "0", "3s", "");
        let path = app.root.join("hoist.yaml");
        let yaml = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{yaml}rollout: two-phase\n")).unwrap();
        git(
            &app.root,
            &["commit", "-qam", &format!("{version} two-phase")],
        );
    };
    two_phase("1.0.0");
    let v1 = planned_release(&app);
    assert_ok(&app.deploy(&world, &[]));
    let before: Vec<String> = instances
        .iter()
        .map(|i| running_container(&world, i, &v1))
        .collect();

    two_phase("2.0.0");
    world.fault(&["disk", &instances[0].id, "readonly"]);
    let run = app.deploy(&world, &["--format", "json"]);
    world.fault(&["disk", &instances[0].id, "ok"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let stage = report["phases"][0]["invocations"].as_array().unwrap();
    assert_eq!(report["phases"][0]["name"], "stage", "{report}");
    assert_eq!(stage.len(), 3, "{report}");
    for inv in stage {
        if inv["target"] == instances[0].id.as_str() {
            assert_eq!(inv["outcome"], "failed", "{inv}");
            let why = inv["result"]["reason"].as_str().unwrap();
            assert!(why.contains("cannot write to /var/lib/hoist/"), "{inv}");
        } else {
            assert_eq!(inv["outcome"], "staged", "{inv}");
            assert!(inv["stdout"].as_str().unwrap().contains("pulling"), "{inv}");
        }
    }
    let switch = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["phase"] == "switch")
        .unwrap();
    assert_eq!(switch["status"], "not-run", "{switch}");
    for (inst, id) in instances.iter().zip(&before) {
        assert_serves(inst, "1.0.0");
        assert_eq!(&running_container(&world, inst, &v1), id, "{}", inst.id);
    }

    let run = app.deploy(&world, &["--format", "json"]);
    assert_ok(&run);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["deployed"], 3, "{report}");
    let switched = report["phases"][1]["invocations"].as_array().unwrap();
    assert_eq!(report["phases"][1]["name"], "switch", "{report}");
    for inv in switched {
        assert_eq!(inv["outcome"], "deployed", "{inv}");
        assert!(
            !inv["stdout"].as_str().unwrap().contains("pulling"),
            "the image was staged: {inv}"
        );
    }
    for inst in instances {
        assert_serves(inst, "2.0.0");
    }
}

//! The fleet-wide deploy lock against the emulated AWS fleet (tests/fleet, three full
//! instances): two deploys at once, one waiting for the other, a killed hoist's stale lock
//! and `hoist unlock`, and a Ctrl-C releasing the lock.
//!
//! Needs what `ssm_deploy.rs` needs (root, Docker, iproute2, docker-registry, the AWS CLI):
//! skipped with a reason without them, required in CI.

use crate::common;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::process::Child;
use std::time::{Duration, Instant};

use common::fleet::{App, World, assert_serves, get, leaks, ready};
use common::{Run, git, hoist};
use serde_json::Value;

/// A deploy under way; its output goes to files, never to a pipe that could fill up and
/// block it (and so keep it holding the lock) while the test waits for something else.
struct Deploy {
    child: Child,
    stdout: File,
    stderr: File,
}

/// A deploy with `args`, by `user` (the lock's holder is `user@host`).
fn spawn(app: &App, world: &World, args: &[&str], user: &str) -> Deploy {
    let stdout = tempfile::tempfile().unwrap();
    let stderr = tempfile::tempfile().unwrap();
    let child = app
        .cmd(world, args)
        .env("USER", user)
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    Deploy {
        child,
        stdout,
        stderr,
    }
}

fn finish(mut deploy: Deploy) -> Run {
    let status = deploy.child.wait().unwrap();
    let read = |f: &mut File| {
        let mut text = String::new();
        f.seek(SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut text).unwrap();
        text
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: read(&mut deploy.stdout),
        stderr: read(&mut deploy.stderr),
    };
    assert!(!leaks(&run.stdout) && !leaks(&run.stderr));
    run
}

/// `hoist ARGS` in the app's directory against the world (not a deploy).
fn hoist_in(app: &App, world: &World, args: &[&str]) -> Run {
    hoist()
        .current_dir(&app.root)
        .args(args)
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
        .into()
}

fn lock_status(app: &App, world: &World) -> Value {
    let run = hoist_in(app, world, &["lock", "status", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

/// Writes `file`: the app's config with `extra` appended, building `version` under the
/// image tag `tag` (so that two configs never share an image), and commits it.
fn config(app: &App, file: &str, version: &str, tag: &str, extra: &str) {
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    let at = yaml.find("    VERSION: ").expect("the example's build arg");
    let end = at + yaml[at..].find('\n').unwrap();
    let yaml = format!(
        "{}    VERSION: \"{version}\"\n  tags: [{tag}]\n{}{extra}",
        &yaml[..at],
        &yaml[end + 1..]
    );
    std::fs::write(app.root.join(file), yaml).unwrap();
    git(&app.root, &["add", "-A"]);
    git(&app.root, &["commit", "-qm", file]);
}

/// The name of the lock parameter the plan shows (offline: no AWS is asked).
fn planned_lock(app: &App, file: &str) -> String {
    let run: Run = hoist()
        .current_dir(&app.root)
        .args(["plan", "-f", file, "--format", "json"])
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    plan["lock"]["parameter"].as_str().unwrap().to_owned()
}

const SHORT_LEASE: &str = "lock:\n  lease: 10s\n";

#[test]
fn two_deploys_at_once_one_proceeds_and_the_other_fails_or_waits_for_it() {
    if !ready() {
        return;
    }
    let world = World::up("lock-two");
    let app = App::new("lock-two");

    // Started together: one takes the lock, the other fails at once naming it, before it
    // changed anything (no build, no secret parameter, no command).
    let alice = spawn(&app, &world, &["--format", "json"], "alice");
    let bob = spawn(&app, &world, &["--format", "json"], "bob");
    let (alice, bob) = (finish(alice), finish(bob));
    let (winner, loser, holder) = match (alice.code, bob.code) {
        (0, 3) => (alice, bob, "alice@"),
        (3, 0) => (bob, alice, "bob@"),
        _ => panic!(
            "want one deploy to succeed and one to exit 3:\nalice {}:\n{}\nbob {}:\n{}",
            alice.code, alice.stderr, bob.code, bob.stderr
        ),
    };
    assert!(
        loser.stderr.contains("is held by ")
            && loser.stderr.contains(holder)
            && loser.stderr.contains("--lock-wait")
            && loser.stderr.contains("nothing was changed"),
        "{}",
        loser.stderr
    );
    assert!(loser.stdout.is_empty(), "{}", loser.stdout);
    assert!(!loser.stderr.contains("swept") && !loser.stderr.contains("building"));
    let report: Value = serde_json::from_str(&winner.stdout).unwrap();
    assert_eq!(report["deployed"], 3);
    let lock = report["lock"]["parameter"].as_str().unwrap().to_owned();
    assert_eq!(lock, planned_lock(&app, "hoist.yaml"));
    assert_eq!(
        world.calls("SendCommand"),
        2,
        "the winner's host checks and its deploy; the loser sent no command"
    );
    // The winner's lock, its secret, the record of the image it pushed, and the lock again
    // naming each command it sent (its host checks', then its rollout's).
    let puts: Vec<String> = world
        .journal()
        .iter()
        .filter(|l| l["operation"] == "PutParameter" && l["error"].is_null())
        .map(|l| {
            format!(
                "{} overwrite={}",
                l["params"]["Name"].as_str().unwrap_or_default(),
                l["params"]["Overwrite"].as_bool().unwrap_or(false)
            )
        })
        .collect();
    assert_eq!(
        puts.len(),
        5,
        "the winner's lock, secret, image record and commands only: {puts:?}"
    );
    assert_eq!(
        puts.iter().filter(|p| p.contains("/images/")).count(),
        1,
        "{puts:?}"
    );
    assert_eq!(
        puts.iter()
            .filter(|p| p.starts_with(&format!("{lock} ")))
            .count(),
        3,
        "{puts:?}"
    );
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
    assert_eq!(lock_status(&app, &world)["locked"], false, "released");

    // With --lock-wait both deploy, one after the other: the one that waited is the one
    // the hosts serve.
    config(&app, "v2.yaml", "2.0.0", "v2", "");
    config(&app, "v3.yaml", "3.0.0", "v3", "");
    assert_eq!(
        planned_lock(&app, "v2.yaml"),
        lock,
        "one app, one fleet: one lock"
    );
    let args = |file: &'static str, release: &'static str| {
        [
            "-f",
            file,
            "--release",
            release,
            "--lock-wait",
            "5m",
            "--format",
            "json",
        ]
    };
    let v2 = spawn(&app, &world, &args("v2.yaml", "v2"), "carol");
    let v3 = spawn(&app, &world, &args("v3.yaml", "v3"), "dave");
    let (v2, v3) = (finish(v2), finish(v3));
    for run in [&v2, &v3] {
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let waited = |run: &Run| {
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        report["lock"]["waited_ms"].as_u64().unwrap()
    };
    let (first, second, version, holder) = if v2.stderr.contains("waiting for the deploy lock") {
        (&v3, &v2, "2.0.0", "dave@")
    } else {
        (&v2, &v3, "3.0.0", "carol@")
    };
    assert!(
        !first.stderr.contains("waiting for the deploy lock"),
        "only one waited:\n{}",
        first.stderr
    );
    assert!(
        second.stderr.contains("waiting for the deploy lock") && second.stderr.contains(holder),
        "{}",
        second.stderr
    );
    assert!(waited(second) > 1000, "{}", second.stdout);
    assert!(waited(first) < 1000, "{}", first.stdout);
    assert!(
        second
            .stderr
            .contains(&format!("lock {lock} taken (waited "))
    );
    assert_eq!(
        world.calls("SendCommand"),
        6,
        "three deploys, each its host checks and its rollout"
    );
    for inst in world.instances() {
        assert_serves(inst, version);
    }
    assert_eq!(lock_status(&app, &world)["locked"], false);
}

/// A hoist `SIGKILLed` mid-rollout (max concurrency 1 over the three instances) leaves its SSM
/// command running. Its lock names the command; while the command runs the lock is live,
/// even past its lease: `lock status` says so, the next deploy and a plain `unlock` refuse.
/// Once the command ended the lock is stale and `unlock` breaks it. A Ctrl-C releases it.
#[test]
fn a_killed_hoist_leaves_a_live_then_stale_lock_that_unlock_breaks_and_ctrl_c_releases_it() {
    if !ready() {
        return;
    }
    let world = World::up("lock-kill");
    let app = App::new("lock-kill");
    // A short lease; v1 sits in its health gate on each host, one host at a time.
    app.configure("1.0.0", "20s", "0");
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    let one_at_a_time = yaml.replace("max_concurrency: \"3\"", "max_concurrency: \"1\"");
    assert_ne!(yaml, one_at_a_time);
    std::fs::write(app.root.join("hoist.yaml"), one_at_a_time).unwrap();
    config(&app, "hoist.yaml", "1.0.0", "v1", SHORT_LEASE);
    let lock = planned_lock(&app, "hoist.yaml");

    let mut killed = spawn(&app, &world, &["--release", "v1"], "erin");
    // Killed once the lock names the deploy's command (after its host checks' command).
    let deadline = Instant::now() + Duration::from_secs(180);
    let command = loop {
        let status = lock_status(&app, &world);
        if let Some(id) = status["holder"]["commands"][1].as_str() {
            break id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the lock never named a command: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    killed.child.kill().unwrap();
    killed.child.wait().unwrap();
    assert_eq!(world.calls("SendCommand"), 2);
    // Past its 10 s lease, the lock is live: its command still runs.
    std::thread::sleep(Duration::from_secs(12));
    let status = lock_status(&app, &world);
    assert_eq!(status["locked"], true, "{status}");
    assert_eq!(status["stale"], false, "{status}");
    assert_eq!(
        status["live_commands"][0]["command_id"],
        command.as_str(),
        "{status}"
    );
    let text = hoist_in(&app, &world, &["lock", "status"]);
    assert!(
        text.stdout
            .contains(&format!("still running: SSM command(s) {command}"))
            && text
                .stdout
                .contains("its lease expired: that hoist is gone"),
        "{}",
        text.stdout
    );

    // The next deploy refuses, naming the command, and changes nothing; so does `unlock`.
    let next = finish(spawn(&app, &world, &[], "frank"));
    assert_eq!(next.code, 3, "{}", next.stderr);
    assert!(
        next.stderr
            .contains(&format!("the deploy lock {lock} is held by erin@"))
            && next.stderr.contains(&format!("SSM command(s) {command} (")),
        "{}",
        next.stderr
    );
    assert_eq!(world.calls("SendCommand"), 2);
    let refused = hoist_in(&app, &world, &["unlock"]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("--cancel-commands") && refused.stderr.contains(&command),
        "{}",
        refused.stderr
    );
    assert_eq!(lock_status(&app, &world)["locked"], true);

    // Once the command ended (the hosts finished v1), the lock is stale.
    let deadline = Instant::now() + Duration::from_secs(240);
    while lock_status(&app, &world)["stale"] != true {
        assert!(Instant::now() < deadline, "the command never ended");
        std::thread::sleep(Duration::from_millis(500));
    }
    let text = hoist_in(&app, &world, &["lock", "status"]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("STALE, locked by erin@") && text.stdout.contains("release v1"),
        "{}",
        text.stdout
    );
    let sent = world.calls("SendCommand");
    let next = finish(spawn(&app, &world, &[], "frank"));
    assert_eq!(next.code, 3, "{}", next.stderr);
    assert!(
        next.stderr
            .contains(&format!("stale deploy lock {lock} held by erin@"))
            && next.stderr.contains("hoist unlock"),
        "{}",
        next.stderr
    );
    assert_eq!(world.calls("SendCommand"), sent);

    // `hoist unlock` breaks it, saying whose it was; then nothing is locked.
    let unlock = hoist_in(&app, &world, &["unlock"]);
    assert_eq!(unlock.code, 0, "{}", unlock.stderr);
    assert!(
        unlock
            .stdout
            .contains(&format!("broke the deploy lock {lock}, held by erin@"))
            && unlock.stdout.contains("its lease had expired"),
        "{}",
        unlock.stdout
    );
    let again = hoist_in(&app, &world, &["unlock"]);
    assert_eq!(again.code, 0);
    assert!(
        again.stdout.contains("not locked, nothing to break"),
        "{}",
        again.stdout
    );
    assert_eq!(lock_status(&app, &world)["locked"], false);

    // The killed run's command still finishes on the hosts (their own flock); then a
    // deploy works.
    for inst in world.instances() {
        world.on_instance(
            inst,
            &format!("flock -w 90 /run/hoist/{}.lock true", app.name),
        );
    }
    app.configure("2.0.0", "0s", "0");
    config(&app, "hoist.yaml", "2.0.0", "v2", SHORT_LEASE);
    let v2 = app.deploy(&world, &["--release", "v2"]);
    assert_eq!(v2.code, 0, "{}", v2.stderr);
    for inst in world.instances() {
        assert_serves(inst, "2.0.0");
    }
    assert_eq!(lock_status(&app, &world)["locked"], false);

    // A Ctrl-C mid-rollout releases the lock, after the deploy's own cancel. Until then
    // it is renewed: held, and not stale, well past its 10 s lease.
    app.configure("3.0.0", "30s", "0");
    config(&app, "hoist.yaml", "3.0.0", "v3", SHORT_LEASE);
    let sent = world.calls("SendCommand");
    let interrupted = spawn(&app, &world, &["--release", "v3"], "grace");
    let deadline = Instant::now() + Duration::from_secs(180);
    // Its host checks' command, then its deploy's.
    while world.calls("SendCommand") < sent + 2 {
        assert!(Instant::now() < deadline, "hoist never sent the command");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(14));
    let status = lock_status(&app, &world);
    assert_eq!(status["locked"], true, "{status}");
    assert_eq!(status["stale"], false, "renewed: {status}");
    unsafe {
        libc::kill(
            libc::pid_t::try_from(interrupted.child.id()).unwrap(),
            libc::SIGINT,
        )
    };
    let out = finish(interrupted);
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert!(
        out.stderr.contains("cancelling command")
            && out
                .stderr
                .contains(&format!("released the deploy lock {lock}")),
        "{}",
        out.stderr
    );
    let cancelled_at = out.stderr.find("cancelling command").unwrap();
    let released_at = out.stderr.find("released the deploy lock").unwrap();
    assert!(
        cancelled_at < released_at,
        "released after the cancel:\n{}",
        out.stderr
    );
    let status = lock_status(&app, &world);
    assert_eq!(status["locked"], false, "{status}");
    for inst in world.instances() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(&inst.address, "/version").as_deref() != Some("2.0.0") {
            assert!(
                Instant::now() < deadline,
                "{} does not serve v2 again",
                inst.id
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// A release whose `DeleteParameter` was carried out but whose answer was lost (the emulator
/// holds the connection 4 s, then closes it) while a second hoist waits for the lock: the
/// second takes the lock in that time, and the first must not delete it (a retried delete
/// did, leaving the second deploy running without a lock a third could then take).
#[test]
fn a_lost_delete_answer_never_removes_the_next_holders_lock() {
    if !ready() {
        return;
    }
    let world = World::up_with("lock-lost", &["--instances", "0", "--light", "1"]);
    for (k, v) in &world.env {
        // SAFETY: nextest runs each test in a process of its own, before any other thread
        // of it reads the environment.
        unsafe { std::env::set_var(k, v) };
    }
    let config = hoist::config::parse(
        "app: lost\nimage:\n  repository: lost\ntargets:\n  tags:\n    Env: [light]\n",
        "hoist.yaml".as_ref(),
        ".".as_ref(),
    )
    .unwrap();
    let spec = hoist::domain::LockSpec::of(&config);
    let timing = hoist::lock::Timing {
        poll_min: Duration::from_millis(200),
        poll_max: Duration::from_millis(400),
        ..hoist::lock::Timing::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sdk = hoist::aws::sdk_config(Some("us-east-1")).await;
        let client = hoist::aws::ssm(&sdk);
        let quiet: std::sync::Arc<dyn hoist::domain::Events> =
            std::sync::Arc::new(hoist::domain::events::Silent);
        let cancel = tokio_util::sync::CancellationToken::new();
        let request = |who: &str| hoist::lock::Request {
            operation: "deploy".into(),
            release: "r1".into(),
            run: None,
            holder: who.into(),
            host: "test".into(),
        };
        let first = hoist::lock::acquire(
            &client,
            &spec,
            &request("first"),
            None,
            timing,
            quiet.clone(),
            &cancel,
        )
        .await
        .unwrap();
        let second = tokio::spawn({
            let (client, spec, quiet, cancel) =
                (client.clone(), spec.clone(), quiet.clone(), cancel.clone());
            let request = request("second");
            async move {
                hoist::lock::acquire(
                    &client,
                    &spec,
                    &request,
                    Some(Duration::from_secs(60)),
                    timing,
                    quiet,
                    &cancel,
                )
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        world.fault(&["drop-response", "DeleteParameter", "--hold-ms", "4000"]);
        first.release().await;
        let second = second
            .await
            .unwrap()
            .expect("the second hoist takes the lock");
        let status = hoist::lock::status(&client, &config).await.unwrap();
        assert!(
            status.locked,
            "the second hoist's lock was deleted: {status:?}"
        );
        assert_eq!(
            status.holder.as_ref().unwrap().holder,
            "second",
            "{status:?}"
        );
        // A third hoist finds it held.
        let third = hoist::lock::acquire(
            &client,
            &spec,
            &request("third"),
            None,
            timing,
            quiet.clone(),
            &cancel,
        )
        .await;
        assert!(
            matches!(third, Err(hoist::lock::LockError::Held { .. })),
            "two holders: {:?}",
            third.err()
        );
        second.release().await;
    });
    assert_eq!(
        world.calls("DeleteParameter"),
        2,
        "{:?}",
        world.journal().len()
    );
}

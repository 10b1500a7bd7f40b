//! hoist's control plane at scale, against the emulated fleet's light instances (tests/fleet:
//! no engine; a stateful `docker` stub that keeps each instance's images and containers and
//! answers the CLI subset hoist's scripts use). The real hoist binary builds and pushes the
//! image to the world's registry, then deploys it through the emulated SSM Run Command to 60
//! instances — 2 `SendCommand`s, of 50 and 10, for the host checks, then 2 for the deploy — and each instance runs the real script: lock, registry
//! login with the instance's own role (`aws ecr get-login-password`), pull, create, start,
//! health gate, prune. Then the same release again, a second release, `hoist status` (read from
//! each stub's state) and `hoist rollback`. The journal counts the API calls of each operation;
//! the wall times are printed beside those of a single instance, never asserted.
//!
//! The app has no `healthcheck.path`: a stub container has no process and serves nothing, so
//! the gate is the scripts' "keeps running for `healthcheck.min_running`" (1 s here).
//!
//! Wall times here are mostly the emulation's: 60 hosts' scripts (bash, the AWS CLI, the
//! stub's Python) share this machine's CPUs, so the deploy config rolls out 25 % of each
//! command's instances at a time (SSM `MaxConcurrency`), which keeps the scripts' own
//! `timeout 10 docker …` calls from starving. The CPU the instances used is printed too.
//!
//! Needs what `tests/it/ssm_deploy.rs` needs (root, Docker, iproute2, docker-registry, the AWS CLI,
//! the hoist-fleet binary) and python3: skipped with a reason on a laptop without them,
//! required in CI. It takes several minutes on a 2-core machine.

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fleet::fleet_bin;
use common::{Run, git, hoist};
use serde_json::Value;

/// How many light instances, and how many instance ids one `SendCommand` carries.
/// (60 in the suite, to keep CI short; `bench/speed.py` measures the control plane at 200.)
const N: usize = 60;
const PER_COMMAND: usize = 50;

fn ready() -> bool {
    let tools = common::have_command("ip")
        && common::have_command("docker-registry")
        && common::have_command("aws")
        && common::have_command("python3");
    common::docker_with_base_image(
        tools && fleet_bin().exists(),
        "root, a Docker engine, iproute2, docker-registry, the AWS CLI, python3 and the \
         hoist-fleet binary (cargo test --workspace builds it)",
    )
}

/// A world of light instances only; `down` when dropped.
struct World {
    dir: PathBuf,
    env: Vec<(String, String)>,
    instances: usize,
}

impl World {
    fn up(tag: &str, light: usize) -> World {
        World::up_with(tag, light, &[])
    }

    /// `extra`: more `hoist-fleet up` flags.
    fn up_with(tag: &str, light: usize, extra: &[&str]) -> World {
        let dir = PathBuf::from(format!(
            "/var/tmp/hoist-fleet-scale/{tag}-{}",
            std::process::id()
        ));
        let _ = Command::new(fleet_bin())
            .args(["down", "--dir"])
            .arg(&dir)
            .output();
        std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
        let out = Command::new(fleet_bin())
            .args(["up", "--instances", "0", "--light", &light.to_string()])
            .args(extra)
            .args(["--format", "json", "--dir"])
            .arg(&dir)
            .output()
            .expect("hoist-fleet runs");
        // Made before the assert, so that a failed `up` is taken down too.
        let mut world = World {
            dir,
            env: Vec::new(),
            instances: light,
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
        assert_eq!(printed["instances"].as_array().unwrap().len(), light);
        world
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("run/journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// CPU seconds used by the commands the world's instances ran (and have ended): the API
    /// server's reaped children (`cutime + cstime`). A deploy's watchdog, which outlives its
    /// command, is not counted (it sleeps).
    fn instances_cpu(&self) -> f64 {
        let ledger = std::fs::read_to_string(self.dir.join("resources.jsonl")).unwrap_or_default();
        let Some(pid) = ledger
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|r| r["kind"] == "process" && r["label"] == "api server")
            .and_then(|r| r["pid"].as_u64())
        else {
            return f64::NAN;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces) — cutime and cstime are the
        // 16th and 17th fields of the whole line.
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields.get(13..15).map_or(0.0, |f| {
            f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
        });
        #[allow(clippy::cast_precision_loss)]
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks / hz
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

/// A scratch copy of examples/hello as its own git repository, targeting the light instances
/// (tag Env=light), with no HTTP health check (a stub container serves nothing).
struct App {
    name: String,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl App {
    fn new(tag: &str) -> App {
        let (dir, root) = common::example_app();
        let app = App {
            name: format!("scale-{tag}"),
            root,
            _dir: dir,
        };
        app.configure("1.0.0");
        app
    }

    fn configure(&self, version: &str) {
        self.configure_with(version, "25%", "");
    }

    /// `secret`: an `env.secret` section's items, each on its own line indented by four.
    fn configure_with(&self, version: &str, max_concurrency: &str, secret: &str) {
        let yaml = format!(
            "app: {name}\nregion: us-east-1\n\
             image:\n  repository: e2e/{name}\n  build_args:\n    VERSION: \"{version}\"\n\
             targets:\n  tags:\n    Env: [light]\n  max_concurrency: \"{max_concurrency}\"\n  max_errors: \"0\"\n\
             container:\n  port: 8080\n  publish: 8080\n  stop_timeout: 2s\n\
             healthcheck:\n  interval: 1s\n  timeout: 30s\n  min_running: 1s\n\
             env:\n  clear:\n    GREETING: hi\n{secret}",
            name = self.name,
        );
        std::fs::write(self.root.join("hoist.yaml"), yaml).unwrap();
        git(&self.root, &["add", "-A"]);
        git(&self.root, &["commit", "-qm", version]);
    }

    /// `hoist ARGS --format json` against the world, killed after 30 minutes. Its output goes
    /// to files, not pipes: a deploy's build log can fill a pipe nobody reads until it ends.
    fn hoist(&self, world: &World, args: &[&str]) -> Run {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        eprintln!("running hoist {args:?} (N={})", world.instances);
        let mut child = hoist()
            .current_dir(&self.root)
            .args(args)
            .args(["--format", "json"])
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CI", "true")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .spawn()
            .expect("hoist starts");
        let deadline = Instant::now() + Duration::from_secs(30 * 60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hoist {args:?} did not finish within 30 minutes");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let read = |mut f: std::fs::File| {
            let mut text = String::new();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.read_to_string(&mut text).unwrap();
            text
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: read(out),
            stderr: read(err),
        }
    }

    /// `hoist ARGS --format json` against the world, measured: its wall time, the API calls it
    /// made (the journal's lines from then on) and the CPU the instances' commands used.
    fn measured(&self, world: &World, what: &str, args: &[&str]) -> (Value, Measure) {
        let before = world.journal().len();
        let cpu = world.instances_cpu();
        let started = Instant::now();
        let run = self.hoist(world, args);
        let secs = started.elapsed().as_secs_f64();
        run.success();
        let client = world.var("AWS_ACCESS_KEY_ID");
        let mut measure = Measure {
            what: what.to_owned(),
            secs,
            cpu: world.instances_cpu() - cpu,
            ..Measure::default()
        };
        for call in world.journal().into_iter().skip(before) {
            let op = call["operation"].as_str().unwrap_or_default().to_owned();
            let calls = if call["caller"] == client {
                &mut measure.hoist
            } else {
                &mut measure.instances
            };
            *calls.entry(op).or_default() += 1;
        }
        (run.json(), measure)
    }
}

#[derive(Default)]
struct Measure {
    what: String,
    secs: f64,
    /// CPU seconds the instances' commands used.
    cpu: f64,
    /// API calls by operation: hoist's, and the instances' own (registry logins, ...).
    hoist: BTreeMap<String, usize>,
    instances: BTreeMap<String, usize>,
}

impl Measure {
    fn calls(&self, op: &str) -> usize {
        self.hoist.get(op).copied().unwrap_or_default()
    }

    fn line(&self, n: usize) -> String {
        let list = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "N={n:<3} {:<16} {:>6.1}s wall, instances' CPU {:>6.1}s | hoist: {} | instances: {}",
            self.what,
            self.secs,
            self.cpu,
            list(&self.hoist),
            if self.instances.is_empty() {
                "none".to_owned()
            } else {
                list(&self.instances)
            }
        )
    }
}

/// The judged invocations of a report: a deploy's last phase's, or a rollback's.
fn invocations(report: &Value) -> &Vec<Value> {
    report["phases"]
        .as_array()
        .and_then(|p| p.last())
        .map_or(&report["invocations"], |p| &p["invocations"])
        .as_array()
        .unwrap_or_else(|| panic!("no invocations in {report}"))
}

/// Every target of a deploy or rollback was judged deployed, with release `release`.
fn assert_all_deployed(report: &Value, n: usize, release: &str) {
    assert_all(report, n, release, "deployed");
}

/// Every target ended `status` (`deployed`, or `unchanged`: it already ran the release with
/// this image and configuration), with release `release`.
fn assert_all(report: &Value, n: usize, release: &str, status: &str) {
    let invs = invocations(report);
    assert_eq!(invs.len(), n, "{}", report["phases"]);
    let mut targets: Vec<&str> = Vec::new();
    for inv in invs {
        assert_eq!(inv["status"], "Success", "{inv}");
        assert_eq!(inv["exit_code"], 0, "{inv}");
        if !inv["outcome"].is_null() {
            assert_eq!(inv["outcome"], status, "{inv}");
        }
        assert_eq!(inv["result"]["status"], status, "{inv}");
        assert_eq!(inv["result"]["release"], release, "{inv}");
        targets.push(inv["target"].as_str().unwrap());
    }
    targets.sort_unstable();
    targets.dedup();
    assert_eq!(targets.len(), n, "every target once");
}

/// SSM's commands for a deploy to `n` targets: one per 50 for each of its two phases (the host
/// checks, then the deploy); each command's invocations listed a bounded number of times for
/// the operation's length (hoist polls every 0.25 s, growing to 0.5 s, and
/// to 1 s after a minute, with ±20 % jitter; one page of 50 per command).
fn assert_bounded_polling(m: &Measure, n: usize) {
    let commands = 2 * n.div_ceil(PER_COMMAND);
    assert_eq!(m.calls("SendCommand"), commands, "{}", m.line(n));
    // At most: the ramp's first polls, then one per 0.4 s, for each command.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let polls = 8 + (m.secs / 0.4).ceil() as usize;
    let listed = m.calls("ListCommandInvocations");
    assert!(
        listed <= commands * polls,
        "{listed} ListCommandInvocations for {commands} command(s) in {:.1}s: {}",
        m.secs,
        m.line(n)
    );
    // Each instance's output fetched once a phase, and again while `GetCommandInvocation` lags the
    // list (the world's `--invocation-lag-ms`, 500 ms; hoist waits 250 ms, then 500 ms).
    let fetched = m.calls("GetCommandInvocation");
    assert!(
        (2 * n..=6 * n).contains(&fetched),
        "{fetched} GetCommandInvocation for {n} instance(s): {}",
        m.line(n)
    );
}

/// 60 light instances: a deploy, the same release again (every host `unchanged`) and status
/// complete, every target judged; one `SendCommand` per 50 targets and bounded polling. The
/// numbers are printed beside a single instance's, which also deploys a second release and
/// rolls back (kept off the 60 to keep CI short).
#[test]
fn sixty_light_instances_deploy_report_and_roll_back() {
    if !ready() {
        return;
    }
    let mut lines: Vec<String> = Vec::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    lines.push(format!(
        "machine: {} CPU(s), load average at start {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    ));

    // ---- N = 1: the baseline (build and push included, as below).
    {
        let world = World::up("one", 1);
        let app = App::new("one");
        let (report, m) = app.measured(&world, "deploy", &["deploy"]);
        let release = report["release"].as_str().unwrap().to_owned();
        assert_all_deployed(&report, 1, &release);
        assert_bounded_polling(&m, 1);
        lines.push(m.line(1));
        let (report, m) = app.measured(&world, "deploy again", &["deploy"]);
        assert_all(&report, 1, &release, "unchanged");
        lines.push(m.line(1));
        app.configure("2.0.0");
        let (report, m) = app.measured(&world, "deploy v2", &["deploy"]);
        let v2 = report["release"].as_str().unwrap().to_owned();
        assert_all_deployed(&report, 1, &v2);
        lines.push(m.line(1));
        let (report, m) = app.measured(&world, "rollback", &["rollback"]);
        assert_eq!(report["rolled_back"].as_u64(), Some(1), "{report}");
        assert_all_deployed(&report, 1, &release);
        assert!(
            m.instances.is_empty(),
            "a rollback makes no AWS call on the hosts: {}",
            m.line(1)
        );
        lines.push(m.line(1));
    }

    // ---- N = 60.
    let world = World::up("many", N);
    let app = App::new("many");
    let (report, m) = app.measured(&world, "deploy", &["deploy"]);
    let v1 = report["release"].as_str().unwrap().to_owned();
    assert_eq!(
        (report["deployed"].as_u64(), report["failed"].as_u64()),
        (u64::try_from(N).ok(), Some(0))
    );
    assert_all_deployed(&report, N, &v1);
    assert_bounded_polling(&m, N);
    lines.push(m.line(N));
    println!("{}", lines.last().unwrap());

    // The same release again: every host already runs it with this image and configuration.
    let (report, m) = app.measured(&world, "deploy again", &["deploy"]);
    assert_all(&report, N, &v1, "unchanged");
    assert_bounded_polling(&m, N);
    lines.push(m.line(N));
    println!("{}", lines.last().unwrap());

    // Status: what each stub's state says — v1 runs, by digest, nothing retained yet.
    let (status, m) = app.measured(&world, "status", &["status"]);
    let targets = status["targets"].as_array().unwrap();
    assert_eq!(targets.len(), N, "{status}");
    for t in targets {
        let host = &t["host"];
        assert_eq!(host["running"]["release"], v1.as_str(), "{t}");
        assert_eq!(
            host["running"]["health"], "running (no health check)",
            "{t}"
        );
        assert!(
            host["running"]["digest"]
                .as_str()
                .is_some_and(|d| d.contains("@sha256:")),
            "pulled by digest: {t}"
        );
        assert_eq!(host["error"], Value::Null, "{t}");
    }
    assert_eq!(
        m.calls("SendCommand"),
        N.div_ceil(PER_COMMAND),
        "{}",
        m.line(N)
    );
    lines.push(m.line(N));

    println!("\nfleet_scale (light instances, recreate, max_concurrency 25%):");
    for line in &lines {
        println!("  {line}");
    }
}

/// Parameter Store answers about 40 reads a second per account and region (`GetParameter`,
/// `GetParameters` and `GetParametersByPath` share the rate) and throttles the rest. Twenty
/// hosts that each read three secrets of their own from it at once are throttled; their
/// scripts retry with jittered backoff, and every host deploys. Twenty light hosts on two
/// cores start their scripts over several seconds (over ten on a loaded machine), which 40
/// a second would mostly absorb, so the world answers 2 reads a second here: the same
/// throttle, stricter (at 5, a loaded CI run once spread the 60 reads thin enough that none
/// was throttled).
#[test]
fn twenty_hosts_reading_their_secrets_under_parameter_store_throttling_all_deploy() {
    const HOSTS: usize = 20;
    if !ready() {
        return;
    }
    let world = World::up_with("throttle", HOSTS, &["--param-read-tps", "2"]);
    let app = App::new("throttle");
    let mut secret = String::from("  secret:\n");
    for name in ["A", "B", "C"] {
        let path = format!("/throttle/{}", name.to_ascii_lowercase());
        let out = Command::new("aws")
            .args([
                "ssm",
                "put-parameter",
                "--type",
                "SecureString",
                "--name",
                &path,
            ])
            .args(["--value", &format!("value-of-{name}")])
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let _ = writeln!(secret, "    - SECRET_{name}: {{ssm: {path}}}");
    }
    app.configure_with("1.0.0", "100%", &secret);
    let before = world.journal().len();
    let run = app.hoist(&world, &["deploy"]);
    run.success();
    let report = run.json();
    let release = report["release"].as_str().unwrap().to_owned();
    assert_all_deployed(&report, HOSTS, &release);
    let client = world.var("AWS_ACCESS_KEY_ID").to_owned();
    let reads: Vec<Value> = world
        .journal()
        .into_iter()
        .skip(before)
        .filter(|c| c["operation"] == "GetParameter" && c["caller"] != client.as_str())
        .collect();
    let throttled = reads
        .iter()
        .filter(|c| c["error"].as_str() == Some("ThrottlingException"))
        .count();
    let served = reads.iter().filter(|c| c["error"].is_null()).count();
    println!(
        "{HOSTS} hosts, 3 host-resolved secrets each: {served} reads served, {throttled} throttled"
    );
    assert!(throttled > 0, "the hosts' reads were throttled");
    assert_eq!(
        served,
        HOSTS * 3,
        "every host read each of its secrets once"
    );
}

/// Where the transport's output goes when a test does not read it.
struct Quiet;

impl hoist::transport::OutputSink for Quiet {
    fn line(&self, _: &str, _: &str) {}
}

/// `max_concurrency` as a count holds across SSM's 50-instance commands. SSM applies
/// `MaxConcurrency` per command, so 120 targets at 2 sent as three commands at once ran 6
/// hosts at a time; they now go one after another. The hosts' own marks (each script writes
/// its start and end time to the instance's /run) never overlap more than 2 deep, and the
/// plan's text says what runs: 60 batches of 2, as 3 commands one after another; and each
/// command's SSM timeout covers its waves.
#[test]
fn a_count_of_max_concurrency_holds_across_the_50_instance_commands() {
    const HOSTS: usize = 120;
    if !ready() {
        return;
    }
    let world = World::up("waves", HOSTS);
    let app = App::new("waves");
    app.configure_with("1.0.0", "2", "");

    // The plan, against the world's 120 instances.
    let plan = hoist()
        .current_dir(&app.root)
        .args(["plan", "--resolve-targets"])
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("hoist plan runs");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        text.contains(
            "in batches of 2: 60 batches for 120 target(s) as 3 SSM commands of at most 50 \
             instances, one after another"
        ),
        "{text}"
    );

    // The transport the deploy uses, with a script that marks its start and end.
    for (k, v) in &world.env {
        // SAFETY: nextest runs each test in a process of its own, and no other thread of
        // this one reads the environment yet.
        unsafe { std::env::set_var(k, v) };
    }
    let text = "#!/bin/bash\nset -eu\ndate +%s%N >/run/hoist-wave-start\nsleep 0.3\n\
                date +%s%N >/run/hoist-wave-end\n";
    let script = hoist::domain::Script {
        body: "waves.sh".into(),
        sha256: hoist::domain::sha256_hex(text.as_bytes()),
        text: text.into(),
        modules: Vec::new(),
    };
    let world_json: Value =
        serde_json::from_str(&std::fs::read_to_string(world.dir.join("world.json")).unwrap())
            .unwrap();
    let instances = world_json["instances"].as_array().unwrap();
    let ids: Vec<String> = instances
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let out = rt.block_on(async {
        let config = hoist::aws::sdk_config(Some("us-east-1")).await;
        let transport = hoist::transport::SsmTransport::new(hoist::aws::ssm(&config));
        let job = hoist::transport::Job {
            script: &script,
            secrets: None,
            targets: &ids,
            policy: hoist::domain::RolloutPolicy {
                max_concurrency: hoist::config::Rate::Count(2),
                max_errors: hoist::config::Rate::Count(0),
            },
            timeout: Duration::from_secs(60),
            comment: "waves".into(),
        };
        hoist::transport::Transport::run(
            &transport,
            &job,
            tokio_util::sync::CancellationToken::new(),
            &Quiet,
        )
        .await
        .expect("the run")
    });
    let failed: Vec<_> = out
        .iter()
        .filter(|i| i.status != hoist::transport::InvocationStatus::Success)
        .map(|i| format!("{} {:?} {}", i.target, i.status, i.stderr))
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");

    // Every host's (start, end), from its own marks; then the deepest overlap.
    let mut events: Vec<(u128, i32)> = Vec::new();
    for i in instances {
        let run = PathBuf::from(i["root"].as_str().unwrap()).join("run");
        let read = |name: &str| -> u128 {
            std::fs::read_to_string(run.join(name))
                .unwrap_or_else(|e| panic!("{} {name}: {e}", i["id"]))
                .trim()
                .parse()
                .unwrap()
        };
        events.push((read("hoist-wave-start"), 1));
        events.push((read("hoist-wave-end"), -1));
    }
    // An end and a start at the same instant: the end first.
    events.sort_unstable();
    let (mut running, mut deepest) = (0, 0);
    for (_, step) in &events {
        running += step;
        deepest = deepest.max(running);
    }
    assert_eq!(events.len(), 2 * HOSTS);
    assert_eq!(
        deepest, 2,
        "at most 2 hosts ran the script at once, saw {deepest}"
    );
    // Each command's TimeoutSeconds (SSM's delivery timeout, which a queued wave must start
    // within) covers its waves: delivery 600 s + waves x the 60 s per-host timeout, not 600.
    let timeouts: Vec<u64> = world
        .journal()
        .iter()
        .filter(|l| l["operation"] == "SendCommand" && l["error"].is_null())
        .map(|l| l["params"]["TimeoutSeconds"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(timeouts, [600 + 25 * 60, 600 + 25 * 60, 600 + 10 * 60]);
}

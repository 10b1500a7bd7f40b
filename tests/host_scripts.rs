//! The host scripts on a real Docker engine, run as the local transport runs them (`bash
//! --noprofile --norc FILE`, the transport's minimal environment, secrets on stdin): the
//! rendered recreate script deploys two releases of a tiny busybox httpd app, then
//! `status.sh` and `rollback.sh` are checked against what `docker` and HTTP say.
//!
//! Needs root and a Docker engine: skipped with a reason without them, required in CI. Every
//! test uses its own app name and port, and removes its containers, images and host state
//! when it ends, also when it fails.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Run;
use hoist::plan::{self, Inputs, TransportKind};
use hoist::revision::Revision;
use serde_json::Value;

const SECRET: &str = "hoist-host-scripts-secret-3f9a";

fn docker_ready() -> bool {
    common::docker_with_base_image(true, "root and a running Docker engine")
}

/// The app: busybox httpd serving /version and /healthz. A release whose container finds
/// `/www/broken` when it starts removes its /healthz (a test breaks a stopped release so).
const DOCKERFILE: &str = "FROM busybox:1.35\n\
ARG VERSION=dev\n\
RUN mkdir -p /www && printf '%s\\n' \"$VERSION\" > /www/version && printf 'ok\\n' > /www/healthz\n\
EXPOSE 8080\n\
CMD [\"sh\", \"-c\", \"if [ -e /www/broken ]; then rm -f /www/healthz; fi; exec busybox httpd -f -p 8080 -h /www\"]\n";

/// One app on this host, cleaned up when dropped.
struct Host {
    app: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Host {
    fn new(tag: &str) -> Self {
        let app = format!("hs-{tag}-{}", std::process::id() % 100_000);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
        Host {
            app,
            port: free_port(),
            dir,
        }
    }

    fn config(&self) -> hoist::config::Config {
        self.config_with_start_period("0s")
    }

    fn config_with_start_period(&self, start_period: &str) -> hoist::config::Config {
        let yaml = format!(
            "app: {app}\n\
             targets:\n  instance_ids: [i-0123456789abcdef0]\n\
             container:\n  port: 8080\n  publish: {port}\n  stop_timeout: 2s\n\
             healthcheck:\n  path: /healthz\n  interval: 1s\n  timeout: 6s\n  start_period: {start}\n\
             env:\n  clear:\n    GREETING: hi\n  secret: [HS_TOKEN]\n\
             retain: 3\n",
            app = self.app,
            port = self.port,
            start = start_period,
        );
        hoist::config::parse(&yaml, Path::new("hoist.yaml"), self.dir.path()).unwrap()
    }

    fn image(&self, release: &str) -> String {
        format!("hoist-hs/{}:{release}", self.app)
    }

    /// Builds the release's image and deploys it with the rendered recreate script.
    fn deploy(&self, release: &str) -> Run {
        let tag = self.image(release);
        let build = Command::new("docker")
            .args(["build", "-q", "--build-arg"])
            .arg(format!("VERSION={release}"))
            .args(["-t", &tag])
            .arg(self.dir.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(build.status.success(), "docker build: {build:?}");
        let image_id = docker_out(&["image", "inspect", "--format", "{{.Id}}", &tag]);
        let inputs = Inputs {
            release: Some(release.into()),
            image_id: Some(image_id),
            prebuilt: Some(tag),
            ..Inputs::new(
                Revision::clean("0123456789abcdef0123456789abcdef01234567"),
                TransportKind::Local,
            )
        };
        let config = self.config();
        let plan = plan::build(&config, &inputs).unwrap();
        let secrets =
            hoist::secrets::SecretEnv::resolve(&config.env.secret, |_| Some(SECRET.into()))
                .unwrap();
        let run = run_script(&plan.scripts()[0].text, &secrets.payload());
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
        run
    }

    fn status(&self) -> (Run, Value) {
        let run = run_script(&plan::status_script(&self.config()).text, "");
        let json = marked(&run, "HOIST-STATUS ");
        (run, json)
    }

    fn rollback(&self, to: Option<&str>) -> (Run, Value) {
        let run = run_script(&plan::rollback_script(&self.config(), to).text, "");
        let json = marked(&run, "HOIST-RESULT ");
        (run, json)
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

    /// The full ids of the app's running containers.
    fn running_ids(&self) -> Vec<String> {
        let out = docker_out(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=hoist.app={}", self.app),
        ]);
        out.lines().map(str::to_owned).collect()
    }

    /// The app's container of `release`: (id, name, state, restart policy).
    fn release(&self, release: &str) -> (String, String, String, String) {
        let ids = docker_out(&[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=hoist.app={}", self.app),
            "--filter",
            &format!("label=hoist.release={release}"),
        ]);
        let ids: Vec<&str> = ids.lines().collect();
        assert_eq!(ids.len(), 1, "one container of release {release}: {ids:?}");
        let line = docker_out(&[
            "inspect",
            "--format",
            "{{.Id}}|{{.Name}}|{{.State.Status}}|{{.HostConfig.RestartPolicy.Name}}",
            ids[0],
        ]);
        let f: Vec<&str> = line.split('|').collect();
        (
            f[0].to_owned(),
            f[1].trim_start_matches('/').to_owned(),
            f[2].to_owned(),
            f[3].to_owned(),
        )
    }

    fn history(&self) -> Vec<Value> {
        std::fs::read_to_string(self.state_dir().join("history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn state_dir(&self) -> PathBuf {
        Path::new("/var/lib/hoist").join(&self.app)
    }

    fn lock_file(&self) -> PathBuf {
        Path::new("/run/hoist").join(format!("{}.lock", self.app))
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let ids = docker_out(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=hoist.app={}", self.app),
        ]);
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["rm", "-f", id]).output();
        }
        let images = docker_out(&["images", "-q", &format!("hoist-hs/{}", self.app)]);
        for id in images.split_whitespace() {
            let _ = Command::new("docker").args(["rmi", "-f", id]).output();
        }
        let private = Path::new("/run/hoist").join(&self.app);
        let _ = Command::new("umount").arg(&private).output();
        let _ = std::fs::remove_dir(&private);
        let _ = std::fs::remove_dir_all(self.state_dir());
        let _ = std::fs::remove_file(self.lock_file());
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn docker_out(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A script started as the local transport starts one: bash without startup files, in the
/// transport's minimal environment, with the secret lines on stdin.
fn script_command(text: &str, extra_env: &[(&str, &str)]) -> (Command, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("_script.sh");
    std::fs::write(&path, text).unwrap();
    let env = hoist::transport::local::script_env(|name| std::env::var_os(name), |_| false);
    let mut cmd = Command::new("bash");
    cmd.args(["--noprofile", "--norc"])
        .arg(&path)
        .env_clear()
        .envs(env)
        .envs(extra_env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (cmd, dir)
}

fn run_script_with(text: &str, stdin: &str, extra_env: &[(&str, &str)]) -> Run {
    use std::io::Write;
    let (mut cmd, _dir) = script_command(text, extra_env);
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // A script that needs no secret may exit before reading them.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    child.wait_with_output().unwrap().into()
}

fn run_script(text: &str, stdin: &str) -> Run {
    run_script_with(text, stdin, &[])
}

/// The JSON of the last stdout line starting with `marker`.
fn marked(run: &Run, marker: &str) -> Value {
    let line = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(marker))
        .unwrap_or_else(|| {
            panic!(
                "no {marker}line\nstdout:\n{}\nstderr:\n{}",
                run.stdout, run.stderr
            )
        });
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn assert_ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

fn releases(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect()
}

#[test]
fn status_and_rollback_on_a_real_engine() {
    if !docker_ready() {
        return;
    }
    let host = Host::new("flow");

    // No release yet: a status is still a status.
    let (run, s) = host.status();
    assert_ok(&run);
    assert_eq!(s["app"], host.app.as_str(), "{s}");
    assert!(s["running"].is_null(), "{s}");
    assert_eq!(s["retained"], serde_json::json!([]), "{s}");
    assert_eq!(s["history"], serde_json::json!([]), "{s}");
    assert_eq!(s["deploying"], false, "{s}");
    assert!(s["error"].is_null(), "{s}");

    assert_ok(&host.deploy("v1"));
    assert_eq!(host.get("/version").as_deref(), Some("v1"));
    assert_ok(&host.deploy("v2"));
    assert_eq!(host.get("/version").as_deref(), Some("v2"));
    let (v1, v1_name, _, _) = host.release("v1");
    let (v2, v2_name, _, _) = host.release("v2");
    let v2_image = docker_out(&["inspect", "--format", "{{.Image}}", &v2]);

    let (run, s) = host.status();
    assert_ok(&run);
    let running = &s["running"];
    assert_eq!(running["release"], "v2", "{s}");
    assert_eq!(running["container"], v2.as_str(), "{s}");
    assert_eq!(running["name"], v2_name.as_str(), "{s}");
    assert_eq!(
        running["image"],
        v2_image.as_str(),
        "created from the image id: {s}"
    );
    assert_eq!(running["image_id"], v2_image.as_str(), "{s}");
    assert!(
        running["digest"].is_null(),
        "a local image has no digest: {s}"
    );
    assert_eq!(running["health"], "healthy", "{s}");
    assert_eq!(running["restart"], "unless-stopped", "{s}");
    assert_eq!(
        running["since"],
        docker_out(&["inspect", "--format", "{{.State.StartedAt}}", &v2]).as_str()
    );
    assert_eq!(releases(&s["retained"]), ["v1"], "{s}");
    assert_eq!(s["retained"][0]["container"], v1.as_str(), "{s}");
    assert_eq!(s["retained"][0]["name"], v1_name.as_str(), "{s}");
    assert!(
        s["retained"][0]["deployed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let history = s["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{s}");
    assert_eq!(history[1]["release"], "v2", "newest last: {s}");
    assert!(history.iter().all(|r| r["status"] == "deployed"), "{s}");
    assert_eq!(s["deploying"], false);

    // Back to the newest retained release older than the running one: v1.
    let (run, r) = host.rollback(None);
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(r["action"], "rollback", "{r}");
    assert_eq!(r["release"], "v1", "{r}");
    assert_eq!(r["container"], v1_name.as_str(), "{r}");
    assert_eq!(r["previous"], v2_name.as_str(), "{r}");
    assert_eq!(r["rolled_back"], false, "{r}");
    assert_eq!(host.get("/version").as_deref(), Some("v1"));
    assert_eq!(host.running_ids(), [v1.as_str()]);
    let (_, _, v2_state, v2_policy) = host.release("v2");
    let (_, _, _, v1_policy) = host.release("v1");
    assert_eq!(
        (v2_state.as_str(), v2_policy.as_str()),
        ("exited", "no"),
        "v2 stopped, retained, no policy"
    );
    assert_eq!(v1_policy, "unless-stopped", "v1's own policy is back");
    // Its container kept its configuration: the env file's values of its deploy.
    let env = docker_out(&["exec", &v1, "env"]);
    assert!(
        env.lines().any(|l| l == format!("HS_TOKEN={SECRET}")),
        "{env}"
    );
    assert!(env.lines().any(|l| l == "GREETING=hi"), "{env}");
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "rolled-back", "{record}");
    assert_eq!(record["release"], "v1", "{record}");
    assert_eq!(record["action"], "rollback", "{record}");
    assert_eq!(record["previous"], v2_name.as_str(), "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains("manual rollback to release v1"),
        "{record}"
    );
    let (_, s) = host.status();
    assert_eq!(s["running"]["release"], "v1", "{s}");
    assert_eq!(releases(&s["retained"]), ["v2"], "{s}");
    assert_eq!(
        s["history"].as_array().unwrap().last().unwrap()["status"],
        "rolled-back"
    );
    assert!(!host.state_dir().join("deploy.state").exists());

    // A release this host does not keep: refused, nothing changes.
    let before = host.running_ids();
    let records = host.history().len();
    let (run, r) = host.rollback(Some("nope"));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(
        r["reason"], "release nope is not retained on this host (retained: v2)",
        "{r}"
    );
    assert_eq!(r["rolled_back"], false, "{r}");
    assert_eq!(host.running_ids(), before);
    assert_eq!(host.release("v2").2, "exited");
    assert_eq!(host.get("/version").as_deref(), Some("v1"));
    assert_eq!(host.history().len(), records + 1, "the refusal is recorded");

    // The release that already runs: nothing to do, and it says so.
    let (run, r) = host.rollback(Some("v1"));
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("already runs"),
        "{r}"
    );
    assert_eq!(host.running_ids(), before);
    assert_eq!(
        host.history().len(),
        records + 1,
        "nothing happened to record"
    );

    // `--to` a newer retained release works too: forward to v2, the very same container.
    let (run, r) = host.rollback(Some("v2"));
    assert_ok(&run);
    assert_eq!(r["release"], "v2", "{r}");
    assert_eq!(host.get("/version").as_deref(), Some("v2"));
    assert_eq!(host.running_ids(), [v2.as_str()]);

    // v1 is broken while it is stopped: rolling back to it fails its health gate, and v2 is
    // put back and observed serving.
    let marker = host.dir.path().join("broken");
    std::fs::write(&marker, "x").unwrap();
    let cp = Command::new("docker")
        .arg("cp")
        .arg(&marker)
        .arg(format!("{v1}:/www/broken"))
        .output()
        .unwrap();
    assert!(cp.status.success(), "{cp:?}");
    let (run, r) = host.rollback(None);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["release"], "v1", "{r}");
    assert_eq!(r["rolled_back"], true, "{r}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("health check failed"), "{reason}");
    assert!(
        reason.contains(&format!("{v2_name} runs again")),
        "{reason}"
    );
    assert_eq!(host.get("/version").as_deref(), Some("v2"));
    assert_eq!(host.running_ids(), [v2.as_str()], "the same v2 container");
    let (_, _, v1_state, v1_policy) = host.release("v1");
    assert_eq!((v1_state.as_str(), v1_policy.as_str()), ("exited", "no"));
    assert_eq!(host.release("v2").3, "unless-stopped");
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["rolled_back"], true, "{record}");
    assert_eq!(record["action"], "rollback", "{record}");
    assert!(!host.state_dir().join("deploy.state").exists());
    let (_, s) = host.status();
    assert_eq!(s["running"]["release"], "v2", "{s}");
    assert_eq!(s["running"]["health"], "healthy", "{s}");
    assert_eq!(releases(&s["retained"]), ["v1"], "{s}");
}

/// SSM cancels a command by `SIGKILLing` its process group: a rollback killed in its health
/// gate is finished by its watchdog, which stops the target again and brings back the
/// release that was running.
#[test]
fn a_rollback_killed_in_its_gate_is_undone_by_its_watchdog() {
    if !docker_ready() {
        return;
    }
    let host = Host::new("killed");
    assert_ok(&host.deploy("v1"));
    assert_ok(&host.deploy("v2"));
    let (v1, _, _, _) = host.release("v1");
    let (v2, v2_name, _, _) = host.release("v2");

    // A long start period: time to kill it while it waits in the gate.
    let text = plan::rollback_script(&host.config_with_start_period("30s"), None).text;
    let (mut cmd, _dir) = script_command(&text, &[]);
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().unwrap();
    drop(child.stdin.take());
    // Until the rollback has started v1 (it is then in its 30s start period).
    let deadline = Instant::now() + Duration::from_secs(60);
    while host.running_ids() != [v1.as_str()] {
        assert!(child.try_wait().unwrap().is_none(), "the rollback ended");
        assert!(Instant::now() < deadline, "v1 never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill(2) on the process group of the child we spawned.
    unsafe {
        libc::kill(-libc::pid_t::try_from(child.id()).unwrap(), libc::SIGKILL);
    }
    let _ = child.wait();

    let state = host.state_dir().join("deploy.state");
    let deadline = Instant::now() + Duration::from_secs(90);
    while state.exists() {
        assert!(Instant::now() < deadline, "the watchdog never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(host.get("/version").as_deref(), Some("v2"));
    assert_eq!(host.running_ids(), [v2.as_str()]);
    assert_eq!(host.release("v1").2, "exited");
    assert_eq!(host.release("v1").3, "no");
    assert_eq!(host.release("v2").3, "unless-stopped");
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "killed", "{record}");
    assert_eq!(record["action"], "rollback", "{record}");
    assert_eq!(record["release"], "v1", "{record}");
    assert_eq!(record["rolled_back"], true, "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{v2_name} runs again")),
        "{record}"
    );
}

/// While a deploy holds the app's lock a status says `deploying`, without taking the lock
/// itself; with no engine to ask it reports an error and exits 1.
#[test]
fn status_sees_a_held_lock_and_reports_an_engine_it_cannot_reach() {
    use std::os::fd::AsRawFd;
    if !docker_ready() {
        return;
    }
    let host = Host::new("status");
    std::fs::create_dir_all("/run/hoist").unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(host.lock_file())
        .unwrap();
    // SAFETY: flock(2) on a file descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (run, s) = host.status();
    assert_ok(&run);
    assert_eq!(s["deploying"], true, "{s}");
    drop(lock);
    let (_, s) = host.status();
    assert_eq!(s["deploying"], false, "{s}");

    let text = plan::status_script(&host.config()).text;
    let run = run_script_with(
        &text,
        "",
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let s = marked(&run, "HOIST-STATUS ");
    assert_eq!(
        s["error"], "cannot reach the Docker engine on this host",
        "{s}"
    );
    assert!(s["running"].is_null(), "{s}");
    assert_eq!(s["app"], host.app.as_str(), "{s}");
}

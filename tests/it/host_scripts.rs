//! The host scripts on a real Docker engine, run as the local transport runs them (`bash
//! --noprofile --norc FILE`, the transport's minimal environment, secrets on stdin): the
//! rendered recreate script deploys two releases of a tiny busybox httpd app, then
//! `status.sh` and `rollback.sh` are checked against what `docker` and HTTP say.
//!
//! Needs root and a Docker engine: skipped with a reason without them, required in CI. Every
//! test uses its own app name and port, and removes its containers, images and host state
//! when it ends, also when it fails.

use crate::common;

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
ARG BROKEN=\n\
RUN mkdir -p /www && printf '%s\\n' \"$VERSION\" > /www/version && printf 'ok\\n' > /www/healthz\n\
RUN if [ -n \"$BROKEN\" ]; then touch /www/broken; fi\n\
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

    /// Builds the release's image (one whose /healthz is gone once it starts, with `broken`);
    /// returns its tag and id.
    fn build(&self, release: &str, broken: bool) -> (String, String) {
        let tag = self.image(release);
        let build = Command::new("docker")
            .args(["build", "-q", "--build-arg"])
            .arg(format!("VERSION={release}"))
            .args([
                "--build-arg",
                &format!("BROKEN={}", if broken { "1" } else { "" }),
            ])
            .args(["-t", &tag])
            .arg(self.dir.path())
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .unwrap();
        assert!(build.status.success(), "docker build: {build:?}");
        let image_id = docker_out(&["image", "inspect", "--format", "{{.Id}}", &tag]);
        (tag, image_id)
    }

    /// Builds the release's image and deploys it with the rendered recreate script.
    fn deploy(&self, release: &str) -> Run {
        let (tag, image_id) = self.build(release, false);
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
            hoist::domain::secrets::SecretEnv::resolve(&config.env.secret, |_| Some(SECRET.into()))
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
        // By name, never by id: another test built the same content (the same image id)
        // under its own name, and `rmi -f ID` would take it from that test too. Nor the
        // images' untagged parents: they are the build cache other tests are using now.
        let names = docker_out(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            &format!("hoist-hs/{}", self.app),
        ]);
        for name in names.split_whitespace() {
            let _ = Command::new("docker")
                .args(["rmi", "--no-prune", name])
                .output();
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

// ---------------------------------------------------------------- blue-green behind nginx

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hoist::plan::script::{self, Body, Param};

/// What nginx lets through to the app, and the restore that reloads nginx.
mod proxy;

/// An nginx of the test's own: its `nginx.conf` keeps its pid file, logs and temp files in a
/// temporary directory and includes only that directory's `conf.d/*.conf`, so it never reads
/// or changes the machine's configuration. Not started here: the first blue-green deploy
/// starts it (as a host's first deploy starts the system's nginx). Stopped when dropped, by
/// the pid in its pid file, whoever started it; its directory goes with it.
struct Nginx {
    dir: tempfile::TempDir,
    bin: String,
}

impl Nginx {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let conf = format!(
            "worker_processes 1;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log notice;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log off;\n\
             \x20 client_body_temp_path {d}/tmp/body;\n  proxy_temp_path {d}/tmp/proxy;\n\
             \x20 fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n\
             \x20 scgi_temp_path {d}/tmp/scgi;\n\
             \x20 include {d}/conf.d/*.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let bin = Command::new("sh")
            .args(["-c", "command -v nginx"])
            .output()
            .unwrap();
        Nginx {
            dir,
            bin: String::from_utf8_lossy(&bin.stdout).trim().to_owned(),
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "-c".into(),
            self.dir.path().join("nginx.conf").display().to_string(),
        ]
    }

    fn conf_d(&self) -> PathBuf {
        self.dir.path().join("conf.d")
    }

    fn pid(&self) -> Option<libc::pid_t> {
        let text = std::fs::read_to_string(self.dir.path().join("nginx.pid")).ok()?;
        let pid: libc::pid_t = text.trim().parse().ok()?;
        // SAFETY: kill(2) with signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else { return };
        for signal in [libc::SIGTERM, libc::SIGKILL] {
            // SAFETY: kill(2) on the master of the nginx this test's configuration ran.
            unsafe { libc::kill(pid, signal) };
            let deadline = Instant::now() + Duration::from_secs(5);
            // SAFETY: as above, signal 0.
            while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            // SAFETY: as above, signal 0.
            if unsafe { libc::kill(pid, 0) } != 0 {
                return;
            }
        }
    }
}

/// One app deployed blue-green on this host, behind the test's own nginx on `host.port`.
struct BlueGreen {
    host: Host,
    nginx: Nginx,
    blue: u16,
    green: u16,
    /// Whether a two-phase rollout's phases build their release "broken" (see `Host::build`).
    broken_phases: std::cell::Cell<bool>,
}

/// What a blue-green run is given beyond the app's config.
#[derive(Clone, Copy)]
struct BgKnobs {
    post_switch_check: u32,
    drain: u32,
    health_timeout: u32,
    consecutive: u32,
    /// `blue_green.proxy`: the body limit in bytes (0: none) and the idle timeout, seconds.
    max_body: u64,
    read_timeout: u32,
}

const KNOBS: BgKnobs = BgKnobs {
    post_switch_check: 2,
    drain: 1,
    health_timeout: 20,
    consecutive: 2,
    max_body: 0,
    read_timeout: 3600,
};

impl BlueGreen {
    fn new(tag: &str) -> Option<Self> {
        if !docker_ready()
            || !common::prerequisite(
                common::have_command("nginx"),
                "nginx (apt-get install nginx)",
            )
        {
            return None;
        }
        Some(BlueGreen {
            host: Host::new(tag),
            nginx: Nginx::new(),
            blue: free_port(),
            green: free_port(),
            broken_phases: std::cell::Cell::new(false),
        })
    }

    fn conf(&self) -> PathBuf {
        self.nginx
            .conf_d()
            .join(format!("hoist-{}.conf", self.host.app))
    }

    fn conf_text(&self) -> String {
        std::fs::read_to_string(self.conf()).unwrap_or_default()
    }

    /// The parameters blue-green adds to a header (as the other engineer's plan renders them),
    /// plus the test's own nginx.
    fn bg_params(&self, knobs: BgKnobs) -> Vec<(&'static str, Param)> {
        vec![
            (
                "HOIST_BG_PORTS",
                vec![self.blue.to_string(), self.green.to_string()].into(),
            ),
            ("HOIST_BG_DRAIN", knobs.drain.to_string().into()),
            (
                "HOIST_BG_POST_SWITCH_CHECK",
                knobs.post_switch_check.to_string().into(),
            ),
            ("HOIST_BG_INSTALL_PROXY", "false".into()),
            ("HOIST_BG_MAX_BODY", knobs.max_body.to_string().into()),
            (
                "HOIST_BG_READ_TIMEOUT",
                knobs.read_timeout.to_string().into(),
            ),
            ("HOIST_BG_DUAL_STACK", "true".into()),
            ("HOIST_NGINX_CONF", self.conf().display().to_string().into()),
            ("HOIST_NGINX_BIN", self.nginx.bin.as_str().into()),
            ("HOIST_NGINX_ARGS", self.nginx.args().into()),
        ]
    }

    /// The header of a blue-green deploy of `release` (image `tag`, id `image_id`): recreate's
    /// parameters for this app's config (see `header_params` in src/plan/mod.rs) and
    /// blue-green's.
    fn deploy_script(&self, release: &str, image_id: &str, knobs: BgKnobs) -> String {
        let h = &self.host;
        let mut params: Vec<(&'static str, Param)> = vec![
            ("HOIST_APP", h.app.as_str().into()),
            ("HOIST_RELEASE", release.into()),
            ("HOIST_IMAGE", image_id.into()),
            ("HOIST_IMAGE_LABEL", h.image(release).into()),
            ("HOIST_PULL", "never".into()),
            ("HOIST_CONTAINER_PORT", "8080".into()),
            ("HOIST_PUBLISH", h.port.to_string().into()),
            (
                "HOIST_RUN_OPTS",
                vec!["--stop-timeout".to_owned(), "2".to_owned()].into(),
            ),
            ("HOIST_RESTART", "unless-stopped".into()),
            ("HOIST_COMMAND", Vec::<String>::new().into()),
            ("HOIST_STOP_TIMEOUT", "2".into()),
            ("HOIST_HEALTH_PATH", "/healthz".into()),
            ("HOIST_HEALTH_STATUS", "200".into()),
            ("HOIST_HEALTH_INTERVAL", "1".into()),
            (
                "HOIST_HEALTH_TIMEOUT",
                knobs.health_timeout.to_string().into(),
            ),
            ("HOIST_HEALTH_START_PERIOD", "0".into()),
            (
                "HOIST_HEALTH_CONSECUTIVE",
                knobs.consecutive.to_string().into(),
            ),
            ("HOIST_ENV_CLEAR", vec!["GREETING=hi".to_owned()].into()),
            ("HOIST_ENV_SECRETS", vec!["HS_TOKEN".to_owned()].into()),
            ("HOIST_HOST_SECRETS", Vec::<String>::new().into()),
            ("HOIST_ENV_SOURCE", "stdin".into()),
            ("HOIST_RETAIN", "3".into()),
            ("HOIST_SECRET_PARAMETER", "".into()),
            ("HOIST_REGION", "".into()),
            ("HOIST_REGISTRY", "".into()),
            ("HOIST_FORCE", "false".into()),
            ("HOIST_RUN_DIR", "/run/hoist".into()),
            ("HOIST_STATE_DIR", "/var/lib/hoist".into()),
        ];
        params.extend(self.bg_params(knobs));
        script::render(Body::BlueGreen, &[], &params).text
    }

    /// A two-phase rollout's script `body` for `release` by run `run`: the deploy's header
    /// and `HOIST_RUN`; the switch and discard leave out what only the stage reads (the pull,
    /// the env, secrets), as src/strategy/mod.rs renders them.
    fn phase_script(&self, body: Body, release: &str, image_id: &str, run: &str) -> String {
        let text = self.deploy_script(release, image_id, KNOBS);
        // The header's lines, as rendered, put back verbatim (no re-quoting).
        let mut header: Vec<String> = text
            .lines()
            .skip_while(|l| !l.starts_with("HOIST_"))
            .take_while(|l| !l.is_empty())
            .filter(|l| {
                body == Body::BgStage || !hoist::plan::stage_only(l.split_once('=').unwrap().0)
            })
            .map(str::to_owned)
            .collect();
        header.push(format!("HOIST_RUN={}", script::quote(run)));
        let rendered = script::render(body, &[], &[]).text;
        let (head, rest) = rendered.split_once("\n\n").unwrap();
        format!("{head}\n{}\n\n{rest}", header.join("\n"))
    }

    /// A canary's switch (bg-switch.sh with `HOIST_CANARY_WINDOW=window`) of `release`,
    /// staged by `run`, while `during` runs beside it on another thread.
    fn canary(
        &self,
        release: &str,
        run: &str,
        window: u64,
        during: impl FnOnce() + Send + 'static,
    ) -> (Run, Value) {
        let (_, image_id) = self.host.build(release, self.broken_phases.get());
        let text = self
            .phase_script(Body::BgSwitch, release, &image_id, run)
            .replacen(
                "\nHOIST_RUN=",
                &format!("\nHOIST_CANARY_WINDOW='{window}'\nHOIST_RUN="),
                1,
            );
        let side = std::thread::spawn(during);
        let run = run_script(&text, "");
        side.join().unwrap();
        let json = marked(&run, "HOIST-RESULT ");
        (run, json)
    }

    /// Runs phase `body` of a two-phase rollout of `release` (built first) by run `run`.
    fn phase(&self, body: Body, release: &str, run: &str) -> (Run, Value) {
        let (_, image_id) = self.host.build(release, self.broken_phases.get());
        let stdin = if body == Body::BgStage {
            format!("HS_TOKEN={SECRET}\n")
        } else {
            String::new()
        };
        let run = run_script(&self.phase_script(body, release, &image_id, run), &stdin);
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
        let json = marked(&run, "HOIST-RESULT ");
        (run, json)
    }

    /// The app's containers staged by `run`: (name, state).
    fn staged_by(&self, run: &str) -> Vec<String> {
        docker_out(&[
            "ps",
            "-a",
            "--filter",
            &format!("label=hoist.app={}", self.host.app),
            "--filter",
            &format!("label=hoist.staged-by={run}"),
            "--format",
            "{{.Names}} {{.State}}",
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// Builds `release` and deploys it blue-green.
    fn deploy(&self, release: &str, broken: bool, knobs: BgKnobs) -> (Run, Value) {
        let (_, image_id) = self.host.build(release, broken);
        let run = run_script(
            &self.deploy_script(release, &image_id, knobs),
            &format!("HS_TOKEN={SECRET}\n"),
        );
        assert!(!run.stdout.contains(SECRET) && !run.stderr.contains(SECRET));
        let json = marked(&run, "HOIST-RESULT ");
        (run, json)
    }

    /// Builds `release` and starts its blue-green deploy in a process group of its own.
    fn spawn_deploy(
        &self,
        release: &str,
        knobs: BgKnobs,
    ) -> (std::process::Child, tempfile::TempDir) {
        let (_, image_id) = self.host.build(release, false);
        let (mut cmd, dir) = script_command(&self.deploy_script(release, &image_id, knobs), &[]);
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("HS_TOKEN={SECRET}\n").as_bytes())
            .unwrap();
        drop(stdin);
        (child, dir)
    }

    fn maintenance_params(&self, knobs: BgKnobs) -> Vec<(&'static str, Param)> {
        let mut params = vec![
            ("HOIST_STRATEGY", "blue-green".into()),
            ("HOIST_PUBLISH", self.host.port.to_string().into()),
            (
                "HOIST_HEALTH_CONSECUTIVE",
                knobs.consecutive.to_string().into(),
            ),
        ];
        params.extend(self.bg_params(knobs));
        params
    }

    /// `rollback.sh` with recreate's rollback header for this app plus blue-green's.
    fn rollback(&self, to: Option<&str>) -> (Run, Value) {
        let mut params: Vec<(&'static str, Param)> = vec![
            ("HOIST_APP", self.host.app.as_str().into()),
            ("HOIST_TO", to.unwrap_or_default().into()),
            ("HOIST_STOP_TIMEOUT", "2".into()),
            ("HOIST_HEALTH_INTERVAL", "1".into()),
            ("HOIST_HEALTH_TIMEOUT", "20".into()),
            ("HOIST_HEALTH_START_PERIOD", "0".into()),
            ("HOIST_RUN_DIR", "/run/hoist".into()),
            ("HOIST_STATE_DIR", "/var/lib/hoist".into()),
        ];
        params.extend(self.maintenance_params(KNOBS));
        let run = run_script(&script::render(Body::Rollback, &[], &params).text, "");
        let json = marked(&run, "HOIST-RESULT ");
        (run, json)
    }

    /// `status.sh` with recreate's status header for this app plus blue-green's.
    fn status(&self) -> (Run, Value) {
        let mut params: Vec<(&'static str, Param)> = vec![
            ("HOIST_APP", self.host.app.as_str().into()),
            ("HOIST_HISTORY_LIMIT", "10".into()),
            ("HOIST_HEALTH_INTERVAL", "1".into()),
            ("HOIST_PROBE_TIMEOUT", "5".into()),
            ("HOIST_RUN_DIR", "/run/hoist".into()),
            ("HOIST_STATE_DIR", "/var/lib/hoist".into()),
        ];
        params.extend(self.maintenance_params(KNOBS));
        let run = run_script(&script::render(Body::Status, &[], &params).text, "");
        let json = marked(&run, "HOIST-STATUS ");
        (run, json)
    }

    /// A container's label.
    fn label(id: &str, label: &str) -> String {
        docker_out(&[
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{label}\"}}}}"),
            id,
        ])
    }

    /// What the app's container `id` publishes, as `docker port` says.
    fn ports(id: &str) -> String {
        docker_out(&["port", id])
    }

    fn wait_for_state_phase(&self, child: &mut std::process::Child, phase: &str) {
        let state = self.host.state_dir().join("deploy.state");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = std::fs::read_to_string(&state).unwrap_or_default();
            if text.lines().last() == Some(&format!("phase {phase}")) {
                return;
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "the deploy ended before phase {phase}"
            );
            assert!(Instant::now() < deadline, "never reached phase {phase}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One GET of `path` on 127.0.0.1:`port` over a fresh connection: the body, or why not.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no header end: {text:?}"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(status.to_owned());
    }
    Ok(body.trim().to_owned())
}

/// A client asking for /version through nginx over and over, on its own thread, until it is
/// stopped: what every request got, and when.
struct Hammer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(Instant, Result<String, String>)>>,
}

/// What a client saw. `versions` are the versions it was served in order, each run of one
/// version once. A graceful nginx reload has a moment when the old worker still accepts a
/// connection or two after the new one started (both listen on the socket until the old one
/// handles its shutdown): the versions interleave briefly. `settled` leaves out those short
/// runs (under 300 ms, not first or last), and `overlap` is the longest such interleaving
/// between two settled versions.
#[derive(Debug)]
struct Seen {
    requests: usize,
    failures: Vec<String>,
    versions: Vec<String>,
    settled: Vec<String>,
    overlap: Duration,
}

impl Hammer {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                seen.push((Instant::now(), http_get(port, "/version")));
                std::thread::sleep(Duration::from_millis(15));
            }
            seen
        });
        Hammer { stop, thread }
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let all = self.thread.join().unwrap();
        // Runs of one version: (version, first, last).
        let mut runs: Vec<(String, Instant, Instant)> = Vec::new();
        let mut failures = Vec::new();
        for (at, r) in &all {
            match r {
                Ok(v) => match runs.last_mut() {
                    Some(run) if run.0 == *v => run.2 = *at,
                    _ => runs.push((v.clone(), *at, *at)),
                },
                Err(e) => failures.push(e.clone()),
            }
        }
        let versions: Vec<String> = runs.iter().map(|r| r.0.clone()).collect();
        let last = runs.len().saturating_sub(1);
        let kept: Vec<&(String, Instant, Instant)> = runs
            .iter()
            .enumerate()
            .filter(|(i, r)| *i == 0 || *i == last || r.2 - r.1 >= Duration::from_millis(300))
            .map(|(_, r)| r)
            .collect();
        let mut settled: Vec<String> = Vec::new();
        let mut overlap = Duration::ZERO;
        let mut previous: Option<&(String, Instant, Instant)> = None;
        for run in kept {
            match previous {
                Some(p) if p.0 == run.0 => {}
                Some(p) => {
                    overlap = overlap.max(run.1.saturating_duration_since(p.2));
                    settled.push(run.0.clone());
                }
                None => settled.push(run.0.clone()),
            }
            previous = Some(run);
        }
        eprintln!(
            "client: {} requests, {} failed, versions {versions:?}, settled {settled:?}, longest overlap {overlap:?}",
            all.len(),
            failures.len()
        );
        Seen {
            requests: all.len(),
            failures,
            versions,
            settled,
            overlap,
        }
    }

    /// No request failed, the versions settled as `want`, and no switch interleaved them for
    /// more than a second.
    #[track_caller]
    fn check(seen: &Seen, want: &[&str]) {
        assert!(seen.failures.is_empty(), "no failed request: {seen:?}");
        assert_eq!(seen.settled, want, "{seen:?}");
        assert!(seen.overlap < Duration::from_secs(1), "{seen:?}");
    }
}

#[test]
fn blue_green_deploys_and_rolls_back_behind_nginx_with_no_failed_request() {
    let Some(bg) = BlueGreen::new("bgflow") else {
        return;
    };
    let host = &bg.host;

    // A host recreate deployed to: v0 publishes the port nginx is to take.
    assert_ok(&host.deploy("v0"));
    assert_eq!(host.get("/version").as_deref(), Some("v0"));
    let (v0, _, _, _) = host.release("v0");

    // The first blue-green deploy: blue, and nginx (not running yet) started by the script.
    assert!(bg.nginx.pid().is_none());
    let (run, r) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert!(
        run.stdout.contains("nginx was not running: started it"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("(2 in a row)"),
        "the gate's 2 in a row: {}",
        run.stdout
    );
    assert!(bg.nginx.pid().is_some(), "the script started nginx");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
    let (v1, v1_name, _, v1_policy) = host.release("v1");
    assert_eq!(v1_policy, "unless-stopped");
    assert_eq!(BlueGreen::label(&v1, "hoist.color"), "blue");
    assert_eq!(BlueGreen::label(&v1, "hoist.strategy"), "blue-green");
    assert_eq!(
        BlueGreen::ports(&v1),
        format!("8080/tcp -> 127.0.0.1:{}", bg.blue),
        "loopback only"
    );
    let (_, _, v0_state, v0_policy) = host.release("v0");
    assert_eq!(
        (v0_state.as_str(), v0_policy.as_str()),
        ("exited", "no"),
        "v0 retained"
    );
    assert_eq!(
        r["previous"],
        docker_out(&["inspect", "--format", "{{.Name}}", &v0]).trim_start_matches('/'),
        "{r}"
    );
    let conf = bg.conf_text();
    let var = host.app.replace('-', "_");
    for want in [
        format!("upstream hoist_{} {{", host.app),
        format!("server 127.0.0.1:{} max_fails=0;", bg.blue),
        format!("listen {} default_server;", host.port),
        format!("map $http_upgrade $hoist_{var}_connection {{"),
        "proxy_http_version 1.1;".to_owned(),
        "keepalive 16;".to_owned(),
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;".to_owned(),
        format!(
            "# hoist-live: color=blue port={} release=v1 container={v1_name}",
            bg.blue
        ),
    ] {
        assert!(conf.contains(&want), "{want} in:\n{conf}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(bg.nginx.conf_d())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, [format!("hoist-{}.conf", host.app)]);

    // The second: green, with a client hammering nginx all along.
    let hammer = Hammer::start(host.port);
    std::thread::sleep(Duration::from_millis(300));
    let (run, r) = bg.deploy("v2", false, KNOBS);
    std::thread::sleep(Duration::from_millis(300));
    let seen = hammer.stop();
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(r["previous"], v1_name.as_str(), "{r}");
    Hammer::check(&seen, &["v1", "v2"]);
    assert!(seen.requests >= 50, "{seen:?}");
    let (v2, v2_name, _, v2_policy) = host.release("v2");
    assert_eq!(BlueGreen::label(&v2, "hoist.color"), "green");
    assert_eq!(
        BlueGreen::ports(&v2),
        format!("8080/tcp -> 127.0.0.1:{}", bg.green)
    );
    assert_eq!(v2_policy, "unless-stopped");
    let (_, _, v1_state, v1_policy) = host.release("v1");
    assert_eq!((v1_state.as_str(), v1_policy.as_str()), ("exited", "no"));
    assert!(
        bg.conf_text()
            .contains(&format!("server 127.0.0.1:{} max_fails=0;", bg.green))
    );
    assert_eq!(host.history().pop().unwrap()["status"], "deployed");

    // Status: the colors, and what stands in the idle one.
    let (run, s) = bg.status();
    assert_ok(&run);
    assert_eq!(s["strategy"], "blue-green", "{s}");
    assert_eq!(s["live_color"], "green", "{s}");
    assert_eq!(s["idle_color"], "blue", "{s}");
    assert_eq!(s["idle_release"], "v1", "{s}");
    assert_eq!(s["running"]["release"], "v2", "{s}");
    assert_eq!(s["running"]["color"], "green", "{s}");
    assert_eq!(s["running"]["health"], "healthy", "{s}");
    assert_eq!(releases(&s["retained"]), ["v1", "v0"], "{s}");
    assert_eq!(s["retained"][0]["color"], "blue", "{s}");
    assert!(
        s["retained"][1]["color"].is_null(),
        "recreate's v0 has no color: {s}"
    );

    // Rollback to the previous release: v1, in blue, whose port is free: no downtime.
    let hammer = Hammer::start(host.port);
    std::thread::sleep(Duration::from_millis(300));
    let (run, r) = bg.rollback(None);
    std::thread::sleep(Duration::from_millis(300));
    let seen = hammer.stop();
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(r["action"], "rollback", "{r}");
    assert_eq!(r["release"], "v1", "{r}");
    assert_eq!(r["previous"], v2_name.as_str(), "{r}");
    Hammer::check(&seen, &["v2", "v1"]);
    assert_eq!(host.running_ids(), [v1.as_str()]);
    assert_eq!(host.release("v1").3, "unless-stopped");
    assert_eq!(host.release("v2").3, "no");
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "rolled-back", "{record}");
    assert_eq!(record["action"], "rollback", "{record}");

    // A release recreate deployed publishes nginx's port itself: refused, nothing changes.
    let (run, r) = bg.rollback(Some("v0"));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("deployed by the recreate strategy"),
        "{r}"
    );
    assert_eq!(host.running_ids(), [v1.as_str()]);
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));

    // v3 goes to green; v2 (green too) is then two deploys back and needs the port v3
    // holds: rolling back to it falls back to stop-then-start on that port.
    let (run, _) = bg.deploy("v3", false, KNOBS);
    assert_ok(&run);
    let (v3, _, _, _) = host.release("v3");
    assert_eq!(BlueGreen::label(&v3, "hoist.color"), "green");
    let hammer = Hammer::start(host.port);
    let (run, r) = bg.rollback(Some("v2"));
    let seen = hammer.stop();
    assert_ok(&run);
    assert!(run.stdout.contains("stop-then-start"), "{}", run.stdout);
    assert_eq!(r["release"], "v2", "{r}");
    assert_eq!(host.running_ids(), [v2.as_str()]);
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v2"));
    eprintln!(
        "stop-then-start rollback: {} of {} requests failed in its gap",
        seen.failures.len(),
        seen.requests
    );
    assert!(!host.state_dir().join("deploy.state").exists());
}

/// A new release that fails its health gate on its loopback port: nginx is never touched.
#[test]
fn a_blue_green_deploy_failing_its_health_gate_never_moves_traffic() {
    let Some(bg) = BlueGreen::new("bggate") else {
        return;
    };
    let host = &bg.host;
    let (run, _) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    let (v1, v1_name, _, _) = host.release("v1");
    let before = bg.conf_text();

    let hammer = Hammer::start(host.port);
    let knobs = BgKnobs {
        health_timeout: 4,
        ..KNOBS
    };
    let (run, r) = bg.deploy("v2", true, knobs);
    let seen = hammer.stop();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["rolled_back"], true, "{r}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("health check failed"), "{reason}");
    assert!(
        reason.contains(&format!("nginx never left {v1_name}")),
        "{reason}"
    );
    Hammer::check(&seen, &["v1"]);
    assert_eq!(seen.versions, ["v1"], "{seen:?}");
    assert_eq!(bg.conf_text(), before, "the nginx file is untouched");
    assert_eq!(host.running_ids(), [v1.as_str()]);
    assert_eq!(host.release("v1").3, "unless-stopped");
    let v2 = docker_out(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=hoist.app={}", host.app),
        "--filter",
        "label=hoist.release=v2",
    ]);
    assert!(v2.is_empty(), "the new container is removed: {v2}");
    assert_eq!(host.history().pop().unwrap()["status"], "failed");
    assert!(!host.state_dir().join("deploy.state").exists());
}

/// The gate passes, then the release breaks while the post-switch check probes it through
/// nginx: traffic goes back to the old color, which never stopped.
#[test]
fn a_post_switch_failure_moves_traffic_back_to_the_old_color() {
    let Some(bg) = BlueGreen::new("bgpost") else {
        return;
    };
    let host = &bg.host;
    let (run, _) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    let (v1, v1_name, _, _) = host.release("v1");
    let before = bg.conf_text();

    let hammer = Hammer::start(host.port);
    let knobs = BgKnobs {
        post_switch_check: 20,
        ..KNOBS
    };
    let (mut child, _dir) = bg.spawn_deploy("v2", knobs);
    bg.wait_for_state_phase(&mut child, "verify");
    // nginx routes to v2 now; a second later its health path goes away (its /version still
    // answers), while the post-switch check probes it.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v2"));
    let (v2, _, _, _) = host.release("v2");
    let exec = Command::new("docker")
        .args(["exec", &v2, "rm", "/www/healthz"])
        .output()
        .unwrap();
    assert!(exec.status.success(), "{exec:?}");
    let run: Run = child.wait_with_output().unwrap().into();
    let seen = hammer.stop();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = marked(&run, "HOIST-RESULT ");
    assert_eq!(r["status"], "failed", "{r}");
    assert_eq!(r["rolled_back"], true, "{r}");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("post-switch check failed"), "{reason}");
    assert!(reason.contains("answered 404"), "{reason}");
    assert!(
        reason.contains(&format!("nginx routes to {v1_name} (blue) again")),
        "{reason}"
    );
    Hammer::check(&seen, &["v1", "v2", "v1"]);
    assert_eq!(bg.conf_text(), before, "the previous nginx file is back");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
    assert_eq!(host.running_ids(), [v1.as_str()]);
    assert_eq!(host.release("v1").3, "unless-stopped");
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "rolled-back", "{record}");
    assert_eq!(record["release"], "v2", "{record}");
    assert_eq!(record["rolled_back"], true, "{record}");
    assert!(!host.state_dir().join("deploy.state").exists());
}

/// Another file makes nginx's configuration invalid with the new one (a second default server
/// on the port): `nginx -t` fails, the previous file is put back, nothing switches.
#[test]
fn a_blue_green_deploy_nginx_rejects_switches_nothing() {
    let Some(bg) = BlueGreen::new("bgconf") else {
        return;
    };
    let host = &bg.host;
    let (run, _) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    let (v1, v1_name, _, _) = host.release("v1");
    let before = bg.conf_text();
    // Sorted after hoist's file: it is the second default server.
    let conflict = bg.nginx.conf_d().join("zz-conflict.conf");
    std::fs::write(
        &conflict,
        format!(
            "server {{ listen {} default_server; return 418; }}\n",
            host.port
        ),
    )
    .unwrap();

    let hammer = Hammer::start(host.port);
    let (run, r) = bg.deploy("v2", false, KNOBS);
    let seen = hammer.stop();
    std::fs::remove_file(&conflict).unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(r["status"], "failed", "{r}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("nginx rejected the configuration"),
        "{reason}"
    );
    assert!(
        reason.contains("a duplicate default server"),
        "nginx's own words: {reason}"
    );
    assert!(
        reason.contains(&format!("nginx never left {v1_name}")),
        "{reason}"
    );
    Hammer::check(&seen, &["v1"]);
    assert_eq!(seen.versions, ["v1"], "{seen:?}");
    assert_eq!(bg.conf_text(), before, "the previous file is back");
    assert_eq!(host.running_ids(), [v1.as_str()]);
    let leftovers: Vec<_> = std::fs::read_dir(bg.nginx.conf_d())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, [format!("hoist-{}.conf", host.app)]);
    assert!(!host.state_dir().join("deploy.state").exists());
}

/// SIGKILL (a cancel over SSM) while the new color is verified through nginx: the watchdog
/// puts the previous nginx file back and removes the new container once nginx no longer
/// routes to it.
#[test]
fn a_blue_green_deploy_killed_in_verify_is_undone_by_its_watchdog() {
    let Some(bg) = BlueGreen::new("bgkill") else {
        return;
    };
    let host = &bg.host;
    let (run, _) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    let (v1, v1_name, _, _) = host.release("v1");
    let before = bg.conf_text();

    let hammer = Hammer::start(host.port);
    let knobs = BgKnobs {
        post_switch_check: 60,
        ..KNOBS
    };
    let (mut child, _dir) = bg.spawn_deploy("v2", knobs);
    bg.wait_for_state_phase(&mut child, "verify");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v2"));
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
    let seen = hammer.stop();
    Hammer::check(&seen, &["v1", "v2", "v1"]);
    assert_eq!(bg.conf_text(), before);
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
    assert_eq!(host.running_ids(), [v1.as_str()]);
    let record = host.history().pop().unwrap();
    assert_eq!(record["status"], "killed", "{record}");
    assert_eq!(record["release"], "v2", "{record}");
    assert_eq!(record["rolled_back"], true, "{record}");
    assert!(
        record["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("nginx routes to {v1_name} (blue) again")),
        "{record}"
    );
    // The lock is free: the next deploy goes ahead.
    let (run, _) = bg.deploy("v3", false, KNOBS);
    assert_ok(&run);
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v3"));
}

/// Without nginx (and without `install_proxy`) the run is refused before anything changes.
#[test]
fn a_blue_green_deploy_without_nginx_is_refused_before_anything_changes() {
    let Some(mut bg) = BlueGreen::new("bgnone") else {
        return;
    };
    bg.nginx.bin = "/nonexistent/nginx".into();
    let (_, image_id) = bg.host.build("v1", false);
    let run = run_script(&bg.deploy_script("v1", &image_id, KNOBS), "");
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let r = marked(&run, "HOIST-RESULT ");
    assert_eq!(r["status"], "invalid", "{r}");
    assert_eq!(
        r["reason"],
        "nginx is not installed on this host; install it (dnf/yum/apt-get install nginx) or set blue_green.install_proxy: true"
    );
    assert!(bg.host.running_ids().is_empty());
    assert!(!bg.host.state_dir().join("deploy.state").exists());
    assert!(!bg.conf().exists());
}

/// Recreate's gate honours `HOIST_HEALTH_CONSECUTIVE` too (absent from a header: one answer).
#[test]
fn the_recreate_gate_needs_its_healthy_answers_in_a_row() {
    if !docker_ready() {
        return;
    }
    let host = Host::new("consec");
    let (tag, image_id) = host.build("v1", false);
    let inputs = Inputs {
        release: Some("v1".into()),
        image_id: Some(image_id),
        prebuilt: Some(tag),
        ..Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            TransportKind::Local,
        )
    };
    let config = host.config();
    let text = plan::build(&config, &inputs).unwrap().scripts()[0]
        .text
        .replacen(
            "HOIST_RETAIN=",
            "HOIST_HEALTH_CONSECUTIVE='3'\nHOIST_RETAIN=",
            1,
        );
    let started = Instant::now();
    let run = run_script(&text, &format!("HS_TOKEN={SECRET}\n"));
    assert_ok(&run);
    assert!(
        run.stdout
            .contains("healthy: http 200 from /healthz (3 in a row)"),
        "{}",
        run.stdout
    );
    // Three answers a second apart.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(host.get("/version").as_deref(), Some("v1"));
}

/// A two-phase rollout's phases, run as the deploy runs them on one host: the stage leaves
/// nginx on the live color and the staged release running, unserved, on the idle color's
/// port; the switch of the same run makes exactly that container live; a discard removes what
/// its run staged and touches nothing else; a later stage removes what an earlier run staged
/// and never switched, and that run's switch then refuses, changing nothing.
#[test]
fn two_phase_stage_switch_and_discard_on_one_host() {
    let Some(bg) = BlueGreen::new("bg2ph") else {
        return;
    };
    let host = &bg.host;
    let (run, r) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    let conf_v1 = bg.conf_text();

    // Stage v2: staged and healthy on green, nginx untouched, v1 serves.
    let (run, r) = bg.phase(Body::BgStage, "v2", "run-a");
    assert_ok(&run);
    assert_eq!(r["status"], "staged", "{r}");
    assert!(r.get("switched_at").is_none(), "{r}");
    assert_eq!(bg.conf_text(), conf_v1, "the stage never touches nginx");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
    let (v2, v2_name, v2_state, v2_policy) = host.release("v2");
    assert_eq!((v2_state.as_str(), v2_policy.as_str()), ("running", "no"));
    assert_eq!(BlueGreen::label(&v2, "hoist.staged-by"), "run-a");
    assert_eq!(BlueGreen::label(&v2, "hoist.color"), "green");
    assert_eq!(http_get(bg.green, "/version").as_deref(), Ok("v2"));
    assert!(!host.state_dir().join("deploy.state").exists());
    let (_, st) = bg.status();
    assert_eq!(st["running"]["release"], "v1", "{st}");
    assert_eq!(st["staged"][0]["release"], "v2", "{st}");
    assert_eq!(st["staged"][0]["run"], "run-a", "{st}");
    assert_eq!(st["staged"][0]["color"], "green", "{st}");

    // Switch run-a: exactly the staged container goes live; v1 is retired and retained.
    let before = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let (run, r) = bg.phase(Body::BgSwitch, "v2", "run-a");
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(r["container"], v2_name.as_str(), "{r}");
    let at = r["switched_at"].as_u64().expect("switched_at");
    assert!(at >= before && at < before + 60_000, "{at} vs {before}");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v2"));
    let (_, _, v1_state, _) = host.release("v1");
    assert_eq!(v1_state, "exited");
    let (_, _, _, v2_policy) = host.release("v2");
    assert_eq!(v2_policy, "unless-stopped");
    let (_, st) = bg.status();
    assert_eq!(st["running"]["release"], "v2", "{st}");
    assert_eq!(st["staged"], serde_json::json!([]), "{st}");

    // Stage v3 by run-b, then discard run-b: the staged container goes, v2 serves on.
    let (run, r) = bg.phase(Body::BgStage, "v3", "run-b");
    assert_ok(&run);
    assert_eq!(r["status"], "staged", "{r}");
    assert_eq!(bg.staged_by("run-b").len(), 1);
    let (run, r) = bg.phase(Body::BgDiscard, "v3", "run-b");
    assert_ok(&run);
    assert_eq!(r["status"], "discarded", "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("removed 1 container(s) staged by run run-b")
            && r["reason"].as_str().unwrap().contains("which serves"),
        "{r}"
    );
    assert!(bg.staged_by("run-b").is_empty());
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v2"));
    assert_eq!(host.release("v2").2, "running");

    // run-c stages v4 and dies before its switch; run-d's stage removes it.
    let (run, _) = bg.phase(Body::BgStage, "v4", "run-c");
    assert_ok(&run);
    let (run, r) = bg.phase(Body::BgStage, "v5", "run-d");
    assert_ok(&run);
    assert_eq!(r["status"], "staged", "{r}");
    assert!(
        run.stdout.contains("staged by run run-c, never switched"),
        "{}",
        run.stdout
    );
    assert!(bg.staged_by("run-c").is_empty());
    // run-c's switch finds nothing of its own and changes nothing.
    let (run, r) = bg.phase(Body::BgSwitch, "v4", "run-c");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(r["status"], "failed", "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("by run run-c is left on this host"),
        "{r}"
    );
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v2"));
    assert_eq!(
        bg.staged_by("run-d").len(),
        1,
        "run-d's staged container stays"
    );
    // A served release is never discarded: v2 was staged by run-a and served.
    let (run, r) = bg.phase(Body::BgDiscard, "v2", "run-a");
    assert_ok(&run);
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("removed 0 container(s)"),
        "{r}"
    );
    assert_eq!(host.release("v2").2, "running");
    let (run, r) = bg.phase(Body::BgSwitch, "v5", "run-d");
    assert_ok(&run);
    assert_eq!(r["status"], "deployed", "{r}");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v5"));
}

/// A canary (bg-switch.sh with a canary window) is watched after its post-switch check: one
/// whose container stops during the window is switched back — nginx routes to the old color
/// again, which was never stopped, and the canary's container is removed — and no client
/// request fails meanwhile (the old color is nginx's backup until the canary is verified);
/// one that holds for the window retires the old color as any switch does, and nginx's file
/// then names it alone.
#[test]
fn a_canary_that_stops_during_its_window_is_switched_back() {
    let Some(bg) = BlueGreen::new("bgcanary") else {
        return;
    };
    let host = &bg.host;
    let (run, _) = bg.deploy("v1", false, KNOBS);
    assert_ok(&run);
    let conf_v1 = bg.conf_text();

    // v2 staged, then its canary switch: once nginx routes to v2 and the post-switch check
    // (2 s) has passed, v2's container is killed.
    let (run, r) = bg.phase(Body::BgStage, "v2", "run-a");
    assert_ok(&run);
    assert_eq!(r["status"], "staged", "{r}");
    let (v2, _, _, _) = host.release("v2");
    let port = host.port;
    let killer = v2.clone();
    let hammer = Hammer::start(host.port);
    let (run, r) = bg.canary("v2", "run-a", 12, move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while http_get(port, "/version").as_deref() != Ok("v2") {
            assert!(std::time::Instant::now() < deadline, "never switched to v2");
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(4));
        docker_out(&["kill", &killer]);
    });
    let seen = hammer.stop();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        (&r["status"], &r["rolled_back"]),
        (&"failed".into(), &true.into()),
        "{r}"
    );
    // Until the switch back, nginx passed what the dead canary could not answer to v1 (its
    // backup while the canary is watched): no request failed.
    assert!(seen.failures.is_empty(), "{seen:?}");
    assert_eq!(seen.settled, ["v1", "v2", "v1"], "{seen:?}");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("canary failed") && reason.contains("not running"),
        "{r}"
    );
    assert!(run.stdout.contains("canary: watching"), "{}", run.stdout);
    assert!(r["switched_at"].as_u64().is_some(), "{r}");
    assert_eq!(bg.conf_text(), conf_v1, "nginx routes to v1 again");
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v1"));
    let (_, _, v1_state, v1_policy) = host.release("v1");
    assert_eq!(v1_state, "running");
    assert_eq!(v1_policy, "unless-stopped");
    assert!(
        docker_out(&["ps", "-aq", "--filter", &format!("id={v2}")]).is_empty(),
        "the failed canary's container is removed"
    );

    // v3 holds for its window (4 s, past its 2 s post-switch check): v1 is retired.
    let (run, r) = bg.phase(Body::BgStage, "v3", "run-b");
    assert_ok(&run);
    let started = std::time::Instant::now();
    let (run, r2) = bg.canary("v3", "run-b", 4, || {});
    assert_ok(&run);
    assert_eq!(r["status"], "staged", "{r}");
    assert_eq!(r2["status"], "deployed", "{r2}");
    assert!(
        r2["reason"]
            .as_str()
            .unwrap()
            .contains("canary: held for 4s after its switch"),
        "{r2}"
    );
    assert!(started.elapsed() >= Duration::from_secs(4));
    assert_eq!(http_get(host.port, "/version").as_deref(), Ok("v3"));
    let conf = bg.conf_text();
    assert!(!conf.contains(" backup"), "{conf}");
    assert!(
        run.stdout.contains("is no longer its backup"),
        "{}",
        run.stdout
    );
    assert_eq!(host.release("v1").2, "exited");
}

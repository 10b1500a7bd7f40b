//! What the SSM agent's runShellScript plugin does on an instance: write the
//! commands to `_script.sh` under the orchestration directory, run that file
//! through `sh -c` (so a shebang is honoured) as root inside the instance's
//! namespaces, keep stdout and stderr in files beside it, enforce the
//! execution timeout and honour cancellation by killing the process group
//! (exit code 137, as the agent reports).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::world::{Instance, Kind, World};

/// The agent's exit code for a command it stopped (timeout or cancel): 128 + SIGKILL.
pub const STOPPED_EXIT_CODE: i32 = 137;
pub const MAX_STDOUT: usize = 24_000;
pub const MAX_STDERR: usize = 8_000;
pub const DOCKER_CALLS_LOG: &str = "/run/hoist-fleet-docker-calls.log";

pub struct Job {
    pub command_id: String,
    pub commands: Vec<String>,
    pub working_directory: String,
    pub execution_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

pub struct Outcome {
    pub ending: Ending,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The orchestration directory as the instance sees it.
pub fn orchestration_dir(instance_id: &str, command_id: &str) -> String {
    format!(
        "/var/lib/amazon/ssm/{instance_id}/document/orchestration/{command_id}/awsrunShellScript/0.awsrunShellScript"
    )
}

fn host_path(inst: &Instance, inside: &str) -> PathBuf {
    // /var/lib/amazon/ssm is the instance's `ssm` directory.
    let rel = inside.trim_start_matches("/var/lib/amazon/ssm/");
    inst.root.join("ssm").join(rel)
}

/// The mounts that give a process the instance's view of the host (shared by
/// the full instances' namespace holder and the light instances' commands).
pub fn bind_script(with_docker_stub: Option<(&Path, &str)>) -> String {
    let mut s = String::from("set -e\nR=\"$1\"\n");
    for (dir, target) in crate::instance::BOUND {
        s.push_str(&format!("mount --bind \"$R/{dir}\" {target}\n"));
    }
    if let Some((stub, real)) = with_docker_stub {
        s.push_str(&format!("mount --bind '{}' '{}'\n", stub.display(), real));
    }
    s
}

pub fn environment(world: &World, inst: &Instance) -> Vec<(String, String)> {
    let mut path = String::new();
    if inst.kind == Kind::Light {
        path.push_str(&world.dir.join("run/stub").display().to_string());
        path.push(':');
    }
    if let Some(dir) = &world.aws_cli_dir {
        path.push_str(dir);
        path.push(':');
    }
    path.push_str("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut env = vec![
        ("PATH".to_string(), path),
        ("HOME".into(), "/root".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("AWS_SSM_INSTANCE_ID".into(), inst.id.clone()),
        ("AWS_SSM_REGION_NAME".into(), world.region.clone()),
        // What an instance profile gives the AWS CLI, pointed at the world:
        // the instances' own credentials, not the client's.
        ("AWS_REGION".into(), world.region.clone()),
        ("AWS_DEFAULT_REGION".into(), world.region.clone()),
        (
            "AWS_ACCESS_KEY_ID".into(),
            world.instance_access_key_id.clone(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY".into(),
            world.instance_secret_access_key.clone(),
        ),
        (
            "AWS_SESSION_TOKEN".into(),
            world.instance_session_token.clone(),
        ),
        ("AWS_ENDPOINT_URL".into(), world.endpoint()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    for k in ["PYENV_ROOT", "PYENV_VERSION"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.into(), v));
        }
    }
    env
}

fn read_prefix(path: &Path, max_chars: usize) -> String {
    use std::io::Read;
    let mut buf = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take((max_chars * 4) as u64).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf)
        .chars()
        .take(max_chars)
        .collect()
}

pub async fn run(world: &World, inst: &Instance, job: &Job, cancel: Arc<Notify>) -> Outcome {
    let inside = orchestration_dir(&inst.id, &job.command_id);
    let host = host_path(inst, &inside);
    let failed = |msg: String| Outcome {
        ending: Ending::Exited,
        code: 1,
        stdout: String::new(),
        stderr: msg,
    };
    if let Err(e) = std::fs::create_dir_all(&host) {
        return failed(format!(
            "failed to create orchestrationDir directory, {inside}: {e}"
        ));
    }
    let script = host.join("_script.sh");
    let mut text = job.commands.join("\n");
    text.push('\n');
    if let Err(e) = std::fs::write(&script, text)
        .and_then(|_| std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)))
    {
        return failed(format!("failed to create script file. {e}"));
    }
    let (Ok(out), Ok(err)) = (
        std::fs::File::create(host.join("stdout")),
        std::fs::File::create(host.join("stderr")),
    ) else {
        return failed("failed to create the output files".into());
    };
    let workdir = if job.working_directory.is_empty() {
        inside.clone()
    } else {
        job.working_directory.clone()
    };
    let script_inside = format!("{inside}/_script.sh");
    let mut cmd = match inst.kind {
        Kind::Full => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg("-t")
                .arg(inst.holder_pid.unwrap_or(0).to_string())
                .args(["-m", "-n", "-u", "--", "/bin/sh", "-c"])
                .arg("cd \"$1\" || exit 1; exec sh -c \"$2\"")
                .args(["ssm-agent-worker", &workdir, &script_inside]);
            c
        }
        Kind::Light => {
            let stub = world.dir.join("run/stub/docker");
            let binds = bind_script(
                world
                    .docker_cli
                    .as_deref()
                    .map(|real| (stub.as_path(), real)),
            );
            let mut c = tokio::process::Command::new("unshare");
            c.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
                .arg(format!(
                    "{binds}cd \"$2\" || exit 1\nset +e\nexec sh -c \"$3\"\n"
                ))
                .arg("ssm-agent-worker")
                .arg(&inst.root)
                .args([&workdir, &script_inside]);
            c
        }
    };
    cmd.env_clear()
        .envs(environment(world, inst))
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("failed to run commands: {e}")),
    };
    let pid = child.id().unwrap_or(0);
    let ending = tokio::select! {
        status = child.wait() => {
            let code = status.ok().and_then(|s| {
                use std::os::unix::process::ExitStatusExt;
                s.code().or_else(|| s.signal().map(|sig| 128 + sig))
            }).unwrap_or(1);
            return Outcome {
                ending: Ending::Exited,
                code,
                stdout: read_prefix(&host.join("stdout"), MAX_STDOUT),
                stderr: read_prefix(&host.join("stderr"), MAX_STDERR),
            };
        }
        _ = tokio::time::sleep(job.execution_timeout) => Ending::TimedOut,
        _ = cancel.notified() => Ending::Cancelled,
    };
    if pid > 0 {
        crate::sys::signal_group(pid, libc::SIGKILL);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    Outcome {
        ending,
        code: STOPPED_EXIT_CODE,
        stdout: read_prefix(&host.join("stdout"), MAX_STDOUT),
        stderr: read_prefix(&host.join("stderr"), MAX_STDERR),
    }
}

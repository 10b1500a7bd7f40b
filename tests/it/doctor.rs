//! `doctor.sh`, the host checks behind `hoist doctor` and a deploy's check-hosts step, run by
//! real bash on a host made of stubs: a PATH without `flock`, `setsid` or `curl`, a `docker`
//! that answers, an `aws` whose role may not read the app's parameter path. No root, no
//! Docker. (`hoist doctor` itself, locally and over SSM, is in `local_deploy` and
//! `remote_commands`; the deploy refusing a host without `flock` in `ssm_deploy`.)

use std::path::Path;
use std::process::Command;

use hoist::domain::TransportKind;
use hoist::plan::doctor::{CheckSet, doctor_script};
use serde_json::Value;

/// The real tools the script uses, linked into the stub host's PATH.
const REAL: &[&str] = &[
    "bash", "cat", "date", "mkdir", "mktemp", "rmdir", "stat", "df", "awk", "dirname", "grep",
    "tr", "timeout", "sleep", "head", "tail", "env",
];

fn stub(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn which(tool: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs the rendered script with `checks` on a host whose PATH is `bin` only; its exit code
/// and the HOIST-DOCTOR line.
fn run(script: &str, checks: &[&str], bin: &Path, state: &Path) -> (i32, Value) {
    let list: Vec<String> = checks.iter().map(|c| format!("'{c}'")).collect();
    let text: String = script
        .lines()
        .map(|l| {
            if l.starts_with("HOIST_CHECKS=") {
                format!("HOIST_CHECKS=({})", list.join(" "))
            } else if l.starts_with("HOIST_STATE_DIR=") {
                format!("HOIST_STATE_DIR='{}'", state.display())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let file = state.join("doctor.sh");
    std::fs::write(&file, text + "\n").unwrap();
    let out = Command::new(bin.join("bash"))
        .args(["--noprofile", "--norc"])
        .arg(&file)
        .env_clear()
        .env("PATH", bin)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("HOIST-DOCTOR "))
        .unwrap_or_else(|| {
            panic!(
                "no HOIST-DOCTOR line:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (
        out.status.code().unwrap(),
        serde_json::from_str(line).unwrap(),
    )
}

fn check<'a>(said: &'a Value, name: &str) -> (&'a str, &'a str) {
    let c = said["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {said}"));
    (c["status"].as_str().unwrap(), c["detail"].as_str().unwrap())
}

#[test]
fn the_doctor_names_each_missing_tool_and_a_role_that_cannot_read_the_parameters() {
    let host = tempfile::tempdir().unwrap();
    let bin = host.path().join("bin");
    let state = host.path().join("state");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    for tool in REAL {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    stub(
        &bin,
        "docker",
        "case \"$1\" in version) echo 24.0.7 ;; info) echo /var/lib/docker ;; esac\n",
    );
    // The role may not read the app's path; a parameter the config names does not exist.
    stub(
        &bin,
        "aws",
        "case \"$*\" in\n\
         --version) echo 'aws-cli/2.15.0 Python/3.11.6 Linux/6.1' ;;\n\
         'configure get region') exit 1 ;;\n\
         *hoist-doctor-probe*) echo 'An error occurred (AccessDeniedException) when calling the GetParameter operation: User: arn:aws:sts::123456789012:assumed-role/web-host/i-0abc is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:eu-west-1:123456789012:parameter/hoist/web/hoist-doctor-probe' >&2; exit 254 ;;\n\
         *) echo 'An error occurred (ParameterNotFound) when calling the GetParameter operation: ' >&2; exit 254 ;;\n\
         esac\n",
    );
    let config = hoist::config::parse(
        "app: web\ntargets:\n  instance_ids: [i-0123456789abcdef0]\n\
         env:\n  secret:\n    - DB: {ssm: /prod/db}\n",
        Path::new("hoist.yaml"),
        Path::new("."),
    )
    .unwrap();
    let script = doctor_script(
        &config,
        TransportKind::Ssm,
        CheckSet::Doctor,
        Some("eu-west-1"),
    );
    let (code, said) = run(
        &script.text,
        &[
            "bash",
            "docker",
            "flock",
            "setsid",
            "curl",
            "timeout",
            "aws",
            "disk",
            "parameters",
        ],
        &bin,
        &state,
    );
    assert_eq!(code, 1, "{said}");
    assert_eq!(check(&said, "bash").0, "ok");
    assert_eq!(
        check(&said, "docker"),
        ("ok", "Docker 24.0.7, root /var/lib/docker")
    );
    assert_eq!(
        check(&said, "flock"),
        (
            "fail",
            "flock is not installed on this host (every deploy holds the app's lock with it)"
        )
    );
    assert_eq!(check(&said, "setsid").0, "fail");
    assert_eq!(check(&said, "curl").0, "fail");
    assert_eq!(check(&said, "timeout").0, "ok");
    assert_eq!(
        check(&said, "aws"),
        (
            "ok",
            "aws-cli/2.15.0 Python/3.11.6 Linux/6.1; region eu-west-1 (hoist passes it)"
        )
    );
    let (status, detail) = check(&said, "parameters");
    assert_eq!(status, "fail", "{detail}");
    assert!(
        detail.contains("/hoist/web/: An error occurred (AccessDeniedException)")
            && detail.contains("/prod/db: An error occurred (ParameterNotFound)"),
        "{detail}"
    );
    assert_ne!(check(&said, "disk").0, "fail", "{said}");
    assert_eq!(said["error"], "failed: flock setsid curl parameters");
    assert!(said["time_ms"].as_i64().unwrap() > 1_700_000_000_000);

    // The role that may read: ParameterNotFound on the probe is a read allowed.
    stub(
        &bin,
        "aws",
        "case \"$*\" in\n\
         *hoist-doctor-probe*) echo 'An error occurred (ParameterNotFound) when calling the GetParameter operation: ' >&2; exit 254 ;;\n\
         *) echo /prod/db ;;\n\
         esac\n",
    );
    std::os::unix::fs::symlink(which("flock"), bin.join("flock")).unwrap();
    let (code, said) = run(&script.text, &["flock", "parameters"], &bin, &state);
    assert_eq!(code, 0, "{said}");
    assert_eq!(check(&said, "flock").0, "ok");
    assert_eq!(
        check(&said, "parameters"),
        (
            "ok",
            "the instance role reads the app's parameters (2 checked)"
        )
    );
    assert_eq!(said["error"], Value::Null);
}

#[test]
fn an_unknown_check_is_refused_before_any_runs() {
    let host = tempfile::tempdir().unwrap();
    let config = hoist::config::parse(
        "app: web\ntargets:\n  instance_ids: [i-0123456789abcdef0]\n",
        Path::new("hoist.yaml"),
        Path::new("."),
    )
    .unwrap();
    let script = doctor_script(&config, TransportKind::Local, CheckSet::Deploy, None);
    let bin = host.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in REAL {
        std::os::unix::fs::symlink(which(tool), bin.join(tool)).unwrap();
    }
    let (code, said) = run(&script.text, &["bash", "nosuch"], &bin, host.path());
    assert_eq!(code, 2, "{said}");
    assert_eq!(
        said["error"],
        "parameter HOIST_CHECKS names an unknown check: 'nosuch'"
    );
}

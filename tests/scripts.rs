//! Every rendered script variant is clean under shellcheck, and parameters with hostile
//! characters stay data.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use hoist::plan::{self, Inputs, TransportKind};
use hoist::revision::Revision;

const BASE: &str = "app: web\ntargets:\n  instance_ids: [i-0123456789abcdef0]\n";

const VARIANTS: &[(&str, &str)] = &[
    ("minimal", ""),
    (
        "everything",
        "container:\n  port: 8080\n  publish: 80\n  command: [\"/bin/app\", \"--flag=it's $HOME\"]\n  \
         volumes: [\"/srv/data:/data:ro\"]\n  memory: 256m\n  cpus: 0.5\n  restart: on-failure:3\n  \
         labels: {team: \"web & ops\"}\n  stop_timeout: 30s\nhealthcheck:\n  path: /healthz?full=1\n  \
         expect_status: 204\n  interval: 1s\n  timeout: 2m\n  start_period: 5s\nenv:\n  clear:\n    \
         QUOTE: \"it's \\\"quoted\\\" $(not run) `nor this`\"\n    EMPTY: \"\"\n  secret: [DB_PASSWORD, API_TOKEN]\nretain: 0\n",
    ),
    (
        "shell-form command",
        "container:\n  command: \"exec /bin/app > /dev/null 2>&1\"\n",
    ),
    ("secrets only", "env:\n  secret: [TOKEN]\n"),
    (
        "secrets the hosts read themselves",
        "env:\n  secret:\n    - TOKEN\n    - DB: {ssm: /prod/db}\n    \
         - PW: {secretsmanager: prod/db, key: password}\n",
    ),
    (
        "no healthcheck, not published",
        "container:\n  port: 9000\n",
    ),
];

fn render(extra: &str, transport: TransportKind) -> String {
    let text = format!("{BASE}{extra}");
    let config = hoist::config::parse(&text, Path::new("hoist.yaml"), Path::new(".")).unwrap();
    let inputs = Inputs {
        revision: Revision {
            sha: "0123456789abcdef0123456789abcdef01234567".into(),
            dirty: false,
            committed_at: None,
            source: None,
        },
        release: None,
        transport,
        image_id: Some(format!("sha256:{}", "ab".repeat(32))),
        registry: None,
        prebuilt: None,
        instances: None,
        run: None,
        hoist_version: "test".into(),
    };
    plan::build(&config, &inputs).unwrap().scripts()[0]
        .text
        .clone()
}

#[test]
fn every_rendered_variant_passes_shellcheck() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let mut failures = Vec::new();
    for (name, extra) in VARIANTS {
        for transport in [TransportKind::Local, TransportKind::Ssm] {
            let script = render(extra, transport);
            let mut child = Command::new("shellcheck")
                .args(["--shell=bash", "--severity=style", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{name} ({transport:?}):\n{}",
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_header_parses_back_to_the_exact_values() {
    let script = render(VARIANTS[1].1, TransportKind::Local);
    let header: String = script
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let probe = format!(
        "{header}\nprintf '%s\\n' \"${{HOIST_ENV_CLEAR[@]}}\" \"${{HOIST_COMMAND[@]}}\" \"$HOIST_HEALTH_PATH\"\n"
    );
    let out = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "EMPTY=",
            "QUOTE=it's \"quoted\" $(not run) `nor this`",
            "/bin/app",
            "--flag=it's $HOME",
            "/healthz?full=1",
        ]
    );
}

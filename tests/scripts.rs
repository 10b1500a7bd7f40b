//! Every rendered script variant is clean under shellcheck, and parameters with hostile
//! characters stay data.

mod common;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use hoist::plan::{self, Inputs, TransportKind};
use hoist::revision::Revision;
use hoist::script::{self, Body, Param};

const BASE: &str = "app: web\ntargets:\n  instance_ids: [i-0123456789abcdef0]\n";

// No blue-green variant yet: src/scripts/blue-green.sh is a placeholder until its real body
// lands, and status.sh and rollback.sh do not read the HOIST_BG_* parameters yet (shellcheck
// would call them unused). Add one with the real script, e.g. ("blue-green",
// "strategy: blue-green\ncontainer:\n  publish: 80\nhealthcheck:\n  path: /healthz\n  \
// consecutive: 3\nblue_green:\n  drain: 30s\n  install_proxy: true\n").

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
    let config = config(extra);
    let inputs = Inputs {
        image_id: Some(format!("sha256:{}", "ab".repeat(32))),
        ..Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            transport,
        )
    };
    plan::build(&config, &inputs).unwrap().scripts()[0]
        .text
        .clone()
}

/// Runs shellcheck from the repository root (where the bodies' `# shellcheck source=`
/// directive points), on `file` or, with `None`, on `stdin`. `Err` holds its report.
fn shellcheck(file: Option<&str>, stdin: &str) -> Result<(), String> {
    // A file in the repository is a body: shellcheck follows its `source` line into the
    // library. A rendered script (stdin) already holds the library; its body's `source`
    // line never runs there, and following it would check the library twice.
    let follow: &[&str] = if file.is_some() {
        &["--external-sources"]
    } else {
        &["--exclude=SC1091"]
    };
    let mut child = Command::new("shellcheck")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--shell=bash", "--severity=style"])
        .args(follow)
        .arg(file.unwrap_or("-"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn config(extra: &str) -> hoist::config::Config {
    hoist::config::parse(
        &format!("{BASE}{extra}"),
        Path::new("hoist.yaml"),
        Path::new("."),
    )
    .unwrap()
}

/// The library and every body as they are in the repository: each body is checked together
/// with the library it calls (its `source` line, which shellcheck follows).
#[test]
fn the_library_and_every_body_pass_shellcheck() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scripts");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| Path::new(name).extension().is_some_and(|e| e == "sh"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "bg-discard.sh",
            "bg-stage.sh",
            "bg-switch.sh",
            "blue-green.sh",
            "lib.sh",
            "recreate-stage.sh",
            "recreate.sh",
            "rollback.sh",
            "status.sh"
        ],
        "a new script needs a Body and a check here"
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|name| {
            shellcheck(Some(&format!("src/scripts/{name}")), "")
                .err()
                .map(|e| format!("{name}:\n{e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rendered_variant_passes_shellcheck() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let mut failures = Vec::new();
    // Variants that render the same script (status and rollback read few of the config's
    // fields) are checked once: shellcheck takes seconds on each 2000-line script.
    let mut seen = std::collections::HashSet::new();
    let mut check = |name: String, script: &str| {
        if seen.insert(script.to_owned())
            && let Err(report) = shellcheck(None, script)
        {
            failures.push(format!("{name}:\n{report}"));
        }
    };
    for (name, extra) in VARIANTS {
        for transport in [TransportKind::Local, TransportKind::Ssm] {
            check(format!("{name} ({transport:?})"), &render(extra, transport));
        }
        let config = config(extra);
        check(
            format!("{name} (status)"),
            &plan::status_script(&config).text,
        );
        for to in [None, Some("v1.2.3")] {
            check(
                format!("{name} (rollback to {to:?})"),
                &plan::rollback_script(&config, to).text,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A two-phase blue-green rollout's three scripts (stage, switch, discard), as the plan
/// renders them, for two variants over both transports; with a canary, its four (the
/// canary's switch has the window in its header); recreate's two (stage, switch).
#[test]
fn every_two_phase_script_passes_shellcheck() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let mut failures = Vec::new();
    let mut cases: Vec<(String, String, usize, Vec<TransportKind>)> = Vec::new();
    for (name, extra) in &VARIANTS[..2] {
        // Blue-green needs container.publish: "everything" has it, "minimal" gets it.
        let extra = if extra.contains("publish:") {
            (*extra).to_owned()
        } else {
            format!("container:\n  publish: 80\n{extra}")
        };
        cases.push((
            (*name).to_owned(),
            format!("{extra}strategy: blue-green\n"),
            3,
            vec![TransportKind::Local, TransportKind::Ssm],
        ));
        if cases.len() == 1 {
            cases.push((
                format!("{name}, canary"),
                format!(
                    "{extra}strategy: blue-green\nrollout: {{canary: 1, canary_window: 30s}}\n"
                ),
                4,
                vec![TransportKind::Ssm],
            ));
            cases.push((
                format!("{name}, recreate"),
                format!("{extra}rollout: two-phase\n"),
                2,
                vec![TransportKind::Ssm],
            ));
        }
    }
    for (name, yaml, count, transports) in cases {
        let config = config(&yaml);
        for transport in transports {
            let inputs = Inputs {
                image_id: Some(format!("sha256:{}", "ab".repeat(32))),
                run: Some("20261206T170000Z-0a1b2c3d".into()),
                ..Inputs::new(
                    Revision::clean("0123456789abcdef0123456789abcdef01234567"),
                    transport,
                )
            };
            let plan = plan::build(&config, &inputs).unwrap();
            let phases: Vec<_> = plan.phases().collect();
            assert_eq!(phases.len(), count, "{name}");
            for phase in phases {
                if let Err(report) = shellcheck(None, &phase.script.text) {
                    failures.push(format!("{name} {transport:?} {}:\n{report}", phase.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Blue-green's parameters, as a header carries them (the ports, the drain and post-switch
/// check, the nginx file), with or without the optional nginx of its own.
fn blue_green_params(own_nginx: bool) -> Vec<(&'static str, Param)> {
    let mut params: Vec<(&'static str, Param)> = vec![
        (
            "HOIST_BG_PORTS",
            vec!["18080".to_owned(), "28080".to_owned()].into(),
        ),
        ("HOIST_BG_DRAIN", "5".into()),
        ("HOIST_BG_POST_SWITCH_CHECK", "10".into()),
        ("HOIST_BG_INSTALL_PROXY", "true".into()),
        (
            "HOIST_NGINX_CONF",
            "/etc/nginx/conf.d/hoist-web.conf".into(),
        ),
    ];
    if own_nginx {
        params.push(("HOIST_NGINX_BIN", "/usr/sbin/nginx".into()));
        params.push((
            "HOIST_NGINX_ARGS",
            vec!["-c".to_owned(), "/srv/it's nginx.conf".to_owned()].into(),
        ));
    }
    params
}

/// The rendered header lines of `script` (`NAME=value`), as `(name, raw value)`.
fn header_lines(script: &str) -> Vec<(String, String)> {
    script
        .lines()
        .skip_while(|l| !l.starts_with("HOIST_"))
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (name, value) = l.split_once('=').unwrap();
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Header lines back as text.
fn header_text(lines: &[(String, String)]) -> String {
    lines.iter().fold(String::new(), |mut text, (n, v)| {
        writeln!(text, "{n}={v}").unwrap();
        text
    })
}

/// A blue-green deploy of the variant: recreate's header for it (every parameter recreate
/// gets, values exactly as rendered) with blue-green's added, rendered with the blue-green
/// body. The header's values are taken back from recreate's rendered text by bash itself.
fn render_blue_green(extra: &str, transport: TransportKind, own_nginx: bool) -> String {
    let recreate = render(extra, transport);
    let lines = header_lines(&recreate);
    let mut probe = header_text(&lines);
    for (name, _) in &lines {
        // One NUL-separated record per parameter: name, count, then each value.
        writeln!(
            probe,
            "printf '%s\\0' {name} \"${{#{name}[@]}}\" \"${{{name}[@]}}\""
        )
        .unwrap();
    }
    let out = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut words = text.split('\0');
    let mut params: Vec<(&'static str, Param)> = Vec::new();
    for (name, raw) in &lines {
        assert_eq!(words.next(), Some(name.as_str()));
        let n: usize = words.next().unwrap().parse().unwrap();
        let values: Vec<String> = (0..n).map(|_| words.next().unwrap().to_owned()).collect();
        let name: &'static str = Box::leak(name.clone().into_boxed_str());
        if raw.starts_with('(') {
            params.push((name, values.into()));
        } else {
            params.push((name, values.concat().into()));
        }
    }
    params.push(("HOIST_HEALTH_CONSECUTIVE", "3".into()));
    params.extend(blue_green_params(own_nginx));
    let script = script::render(Body::BlueGreen, &["blue-green".into()], &params);
    // The same parameters as recreate's, byte for byte, then blue-green's.
    assert!(script.text.contains(&header_text(&lines)));
    script.text
}

/// Recreate's rollback or status header for the variant, with blue-green's added.
fn render_blue_green_maintenance(extra: &str, body: Body, own_nginx: bool) -> String {
    let config = config(extra);
    let base = match body {
        Body::Status => plan::status_script(&config).text,
        _ => plan::rollback_script(&config, Some("v1.2.3")).text,
    };
    let mut params: Vec<(&'static str, Param)> = header_lines(&base)
        .into_iter()
        .map(|(n, v)| {
            let name: &'static str = Box::leak(n.into_boxed_str());
            // These headers hold plain single-quoted words only.
            (name, v.trim_matches('\'').to_owned().into())
        })
        .collect();
    params.push(("HOIST_STRATEGY", "blue-green".into()));
    params.push(("HOIST_PUBLISH", "80".into()));
    params.push(("HOIST_HEALTH_CONSECUTIVE", "2".into()));
    params.extend(blue_green_params(own_nginx));
    script::render(body, &[], &params).text
}

/// Each deploy variant over both transports, and the rollback and status scripts (whose
/// headers barely depend on the variant) for two of them; the optional nginx of one's own
/// (binary and arguments) with the fullest variant.
#[test]
fn every_rendered_blue_green_variant_passes_shellcheck() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let mut scripts: Vec<(String, String)> = Vec::new();
    // The first two variants (minimal, everything): what the other variants vary is the
    // header recreate shares, checked above; here it is blue-green's own parameters.
    for (i, (name, extra)) in VARIANTS[..2].iter().enumerate() {
        // Blue-green needs a published port: nginx listens there.
        let extra = if extra.contains("publish:") {
            (*extra).to_owned()
        } else if extra.contains("container:\n") {
            extra.replace("container:\n", "container:\n  publish: 8080\n")
        } else {
            format!("{extra}container:\n  publish: 8080\n")
        };
        for transport in [TransportKind::Local, TransportKind::Ssm] {
            scripts.push((
                format!("{name} (deploy, {transport:?})"),
                render_blue_green(&extra, transport, false),
            ));
        }
        if i < 2 {
            for body in [Body::Rollback, Body::Status] {
                scripts.push((
                    format!("{name} ({body:?})"),
                    render_blue_green_maintenance(&extra, body, false),
                ));
            }
        }
        if i == 1 {
            scripts.push((
                format!("{name} (deploy, own nginx)"),
                render_blue_green(&extra, TransportKind::Local, true),
            ));
            for body in [Body::Rollback, Body::Status] {
                scripts.push((
                    format!("{name} ({body:?}, own nginx)"),
                    render_blue_green_maintenance(&extra, body, true),
                ));
            }
        }
    }
    assert_eq!(scripts.len(), 2 * 2 + 4 + 3);
    let failures: Vec<String> = scripts
        .iter()
        .filter_map(|(what, text)| {
            shellcheck(None, text)
                .err()
                .map(|report| format!("{what}:\n{report}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_header_parses_back_to_the_exact_values() {
    let script = render(VARIANTS[1].1, TransportKind::Local);
    let header: String = script
        .split_inclusive('\n')
        .take_while(|l| *l != "\n")
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

/// A rollback target is data too: it reaches the script exactly, and a target that is no
/// release id ends the run as invalid (exit 2) before it looks at anything.
#[test]
fn a_hostile_rollback_target_stays_data_and_is_refused() {
    let hostile = "v1'; touch /tmp/hoist-pwned; echo '$(id) `id`";
    let script = plan::rollback_script(&config(""), Some(hostile)).text;
    let header: String = script
        .split_inclusive('\n')
        .take_while(|l| *l != "\n")
        .collect();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("{header}\nprintf '%s' \"$HOIST_TO\"\n"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);

    let scratch = tempfile::tempdir().unwrap();
    let state = scratch.path().join("state");
    let script = script
        .replace(
            "HOIST_STATE_DIR='/var/lib/hoist'",
            &format!("HOIST_STATE_DIR='{}'", state.display()),
        )
        .replace(
            "HOIST_RUN_DIR='/run/hoist'",
            &format!("HOIST_RUN_DIR='{}'", scratch.path().join("run").display()),
        );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // No engine either way: the target is refused before any Docker call.
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let result = hoist::outcome::parse(&stdout).unwrap();
    assert_eq!(result.status, hoist::outcome::ResultStatus::Invalid);
    assert!(result.reason.contains("is not valid"), "{}", result.reason);
    assert!(!Path::new("/tmp/hoist-pwned").exists());
    assert!(!state.exists(), "nothing written");
}

/// The health gate needs `HOIST_HEALTH_CONSECUTIVE` healthy probes in a row: a failure in
/// between starts the count again, and a budget that runs out mid-streak fails, saying how
/// far it got. Exercised with stand-ins for `docker` and `curl` (no engine needed).
#[test]
fn the_gate_counts_consecutive_healthy_probes() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let write_tool = |name: &str, body: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        let path = bin.join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{body}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    // A running container with an HTTP check on published port 18080.
    write_tool("docker", "echo 'running|0||200|18080|80||/healthz'\n");
    // Answers the codes in $CODES, one a call, counting calls in $CALLS.
    write_tool(
        "curl",
        "n=$(( $(cat \"$CALLS\" 2>/dev/null || echo 0) + 1 ))\necho \"$n\" >\"$CALLS\"\n\
         set -- $CODES\nshift $(( n - 1 ))\nprintf '%s' \"${1:-000}\"\n",
    );
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scripts/lib.sh");
    let probe = |consecutive: Option<&str>, codes: &str, budget: u32| {
        let calls = dir
            .path()
            .join(format!("calls-{}", codes.replace(' ', "-")));
        let need = consecutive.unwrap_or_default();
        let program = format!(
            "source {lib}\nHOIST_HEALTH_INTERVAL=0\n\
             if probe_health c1 {budget} {need}; then echo \"healthy|$HEALTH\"; \
             else echo \"unhealthy|$PROBE_WHY\"; fi\n",
            lib = lib.display()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&program)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("CODES", codes)
            .env("CALLS", &calls)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let calls: u32 = std::fs::read_to_string(&calls)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (
            String::from_utf8(out.stdout).unwrap().trim().to_owned(),
            calls,
        )
    };
    assert_eq!(
        probe(None, "200", 30),
        ("healthy|http 200 from /healthz".into(), 1),
        "one healthy probe is enough by default"
    );
    assert_eq!(
        probe(Some("3"), "200 500 200 200 200", 30),
        ("healthy|http 200 from /healthz (3 in a row)".into(), 5),
        "the 500 starts the count again"
    );
    let (out, calls) = probe(Some("3"), "200 200 200", 0);
    assert_eq!(calls, 1, "no time for a second probe");
    assert_eq!(
        out,
        "unhealthy|only 1 healthy answer(s) in a row of the 3 needed in 0s (http 200 from /healthz)"
    );
}

/// The search for a free container name is bounded: against an engine that says every name
/// exists (as the old light-instance stub did, answering success to everything), the run fails
/// with a message instead of looping forever; against a real one, the first free `-N` is taken.
/// Exercised with a stand-in for `docker` (no engine needed).
#[test]
fn the_search_for_a_free_container_name_ends() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        // `container inspect NAME` succeeds (the name exists) while $TAKEN is "all" or NAME
        // ends in one of the suffixes in $TAKEN; `create` prints an id. Every call is counted.
        let path = bin.join("docker");
        std::fs::write(
            &path,
            "#!/bin/bash\necho \"$*\" >>\"$CALLS\"\n\
             case $1 in\n\
               container) [[ $TAKEN == all ]] && exit 0\n\
                 for s in $TAKEN; do [[ $3 == *\"$s\" ]] && exit 0; done\n\
                 exit 1 ;;\n\
               create) echo 0123456789abcdef ;;\n\
             esac\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scripts/lib.sh");
    let create = |taken: &str| {
        let calls = dir
            .path()
            .join(format!("calls-{}", taken.replace(' ', "-")));
        let program = format!(
            "source {lib}\nHOIST_APP=web HOIST_RELEASE=r1 HOIST_IMAGE=web:r1\n\
             STATE_FILE={state}\ntrap 'printf \"%s|%s|%s\\n\" \"$TARGET_NAME\" \"$TARGET_ID\" \"$REASON\"' EXIT\n\
             create_release ''\n",
            lib = lib.display(),
            state = dir.path().join("deploy.state").display(),
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&program)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("TAKEN", taken)
            .env("CALLS", &calls)
            .output()
            .unwrap();
        let calls = std::fs::read_to_string(&calls).unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            calls,
        )
    };

    let (code, out, calls) = create("all");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("|no free container name: web-r1-") && out.contains("-2 to -100 variants"),
        "{out}"
    );
    assert_eq!(
        calls.lines().count(),
        100,
        "one look per name, then it gives up"
    );
    assert!(!calls.contains("create"), "{calls}");

    // Taken: the bare name and -2 (stamps end in Z, so "Z" matches only the bare name).
    let (code, out, calls) = create("Z -2");
    assert_eq!(code, Some(0), "{out}");
    let last = out.trim().lines().last().unwrap();
    let (name, rest) = last.split_once('|').unwrap();
    assert!(
        name.starts_with("web-r1-") && name.ends_with("Z-3"),
        "{out}"
    );
    assert_eq!(rest, "0123456789abcdef|", "{out}");
    assert_eq!(
        calls.lines().filter(|l| l.starts_with("container")).count(),
        3
    );
}

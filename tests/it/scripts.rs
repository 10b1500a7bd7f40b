//! Every rendered script variant is clean under shellcheck and `bash -n`, fits SSM's budget,
//! keeps every function of its modules, and parameters with hostile characters stay data; the
//! library's exit codes, stdout bound, throttling retries and background jobs are what the
//! real SSM agent needs.

use crate::common;

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use hoist::plan::script::{self, Body, Module, Param, Script};
use hoist::plan::{self, Inputs, TransportKind};
use hoist::revision::Revision;

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
    if !out.status.success() {
        return Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if file.is_none() {
        // A rendered script: bash itself must parse it too.
        let out = Command::new("bash")
            .args(["-n", "-c", stdin])
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!("bash -n: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    Ok(())
}

fn config(extra: &str) -> hoist::config::Config {
    hoist::config::parse(
        &format!("{BASE}{extra}"),
        Path::new("hoist.yaml"),
        Path::new("."),
    )
    .unwrap()
}

/// The library's modules and every body as they are in the repository: each file alone (as
/// `tests/run` checks every shell file), and each body after the commented sources of its
/// modules, as one file (what the rendered script is, comments included).
#[test]
fn the_library_and_every_body_pass_shellcheck() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let list = |dir: &str| {
        let mut files: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| Path::new(name).extension().is_some_and(|e| e == "sh"))
            .map(|name| format!("{dir}/{name}"))
            .collect();
        files.sort();
        files
    };
    let bodies = list("src/scripts");
    // The bodies, and SSM's bootstrap (checked here as a file; `carry`'s tests run it).
    let mut want: Vec<String> = Body::ALL
        .iter()
        .map(|b| format!("src/scripts/{}", b.file_name()))
        .chain([hoist::domain::carry::BOOTSTRAP_FILE.to_owned()])
        .collect();
    want.sort();
    assert_eq!(bodies, want, "a new script needs a Body and a check here");
    let modules = list("src/scripts/lib");
    let mut want: Vec<String> = Module::ALL.iter().map(|m| m.path()).collect();
    want.sort();
    assert_eq!(
        modules, want,
        "a new module needs a Module and a check here"
    );
    let mut failures: Vec<String> = bodies
        .iter()
        .chain(&modules)
        .filter_map(|path| {
            shellcheck(Some(path), "")
                .err()
                .map(|e| format!("{path}:\n{e}"))
        })
        .collect();
    for body in Body::ALL {
        let whole: String = std::iter::once("#!/bin/bash\n")
            .chain(
                body.modules()
                    .iter()
                    .map(|m| m.text())
                    .chain([body.text()])
                    .map(|t| t.strip_prefix("#!/bin/bash\n").unwrap()),
            )
            .collect();
        if let Err(e) = shellcheck(None, &whole) {
            failures.push(format!(
                "{} with its modules, commented:\n{e}",
                body.file_name()
            ));
        }
    }
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
    let result = hoist::domain::outcome::parse(&stdout).unwrap();
    assert_eq!(result.status, hoist::domain::outcome::ResultStatus::Invalid);
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
    let lib = dir.path().join("lib.sh");
    std::fs::write(&lib, script::library(&[Module::Engine])).unwrap();
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
    let lib = dir.path().join("lib.sh");
    std::fs::write(&lib, script::library(&[Module::Release])).unwrap();
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

// ---------------------------------------------------------------- every variant, as the plan renders it

/// The fullest config of the variants above ("everything": every container option, clear and
/// secret env), with secrets the hosts read themselves and a registry, so that each header
/// is as long as a real one gets; `extra` adds the strategy and rollout.
fn full_config(extra: &str) -> hoist::config::Config {
    config(&format!(
        "{}env:\n  clear:\n    QUOTE: \"it's \\\"quoted\\\" $(not run) `nor this`\"\n    EMPTY: \"\"\n  \
         secret:\n    - DB_PASSWORD\n    - API_TOKEN\n    - DB: {{ssm: /prod/db}}\n    \
         - PW: {{secretsmanager: prod/db, key: password}}\nregion: eu-west-1\n{extra}",
        VARIANTS[1].1.split("env:\n").next().unwrap(),
    ))
}

/// Every script a plan sends, each named: recreate (one phase, local and SSM; two-phase stage
/// and switch), blue-green (one phase, local and SSM; two-phase stage, switch and discard;
/// a canary's switch), status and rollback (with and without `--to`, for both strategies),
/// logs, exec and remove.
fn every_variant() -> Vec<(String, Script)> {
    let mut out = Vec::new();
    let inputs = |transport| Inputs {
        image_id: Some(format!("sha256:{}", "ab".repeat(32))),
        run: Some("20261206T170000Z-0a1b2c3d".into()),
        registry: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com".into()),
        ..Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            transport,
        )
    };
    let strategies = [
        ("recreate", ""),
        ("recreate two-phase", "rollout: two-phase\n"),
        ("blue-green", "strategy: blue-green\nrollout: one-phase\n"),
        ("blue-green two-phase", "strategy: blue-green\n"),
        (
            "blue-green canary",
            "strategy: blue-green\nrollout: {canary: 1, canary_window: 30s}\n",
        ),
    ];
    for (name, extra) in strategies {
        let config = full_config(extra);
        for transport in [TransportKind::Local, TransportKind::Ssm] {
            let plan = plan::build(&config, &inputs(transport)).unwrap();
            for phase in plan.all_phases() {
                out.push((
                    format!("{name} {} ({transport:?})", phase.name),
                    phase.script.clone(),
                ));
            }
        }
    }
    for (name, extra) in [("recreate", ""), ("blue-green", "strategy: blue-green\n")] {
        let config = full_config(extra);
        out.push((format!("status, {name}"), plan::status_script(&config)));
        for transport in [TransportKind::Local, TransportKind::Ssm] {
            out.push((
                format!("doctor, {name} ({transport:?})"),
                plan::doctor::doctor_script(
                    &config,
                    transport,
                    plan::doctor::CheckSet::Doctor,
                    Some("eu-west-1"),
                ),
            ));
        }
        out.push((
            format!("rollback, {name}"),
            plan::rollback_script(&config, None),
        ));
        out.push((
            format!("rollback --to, {name}"),
            plan::rollback_script(&config, Some("v1.2.3")),
        ));
        let phases = [
            (
                "logs",
                plan::logs_phase(
                    &config,
                    TransportKind::Ssm,
                    &plan::LogsRequest {
                        release: Some("v1.2.3".into()),
                        tail: 100,
                        since: Some("10m".into()),
                        since_by_target: vec![format!("i-{}=2026-12-07T10:00:00Z", "0".repeat(17))],
                    },
                ),
            ),
            (
                "exec",
                plan::exec_phase(
                    &config,
                    TransportKind::Ssm,
                    &["sh".into(), "-c".into(), "echo \"it's\" $HOME".into()],
                    std::time::Duration::from_secs(300),
                ),
            ),
            ("remove", plan::remove_phase(&config, TransportKind::Ssm)),
        ];
        for (what, phase) in phases {
            out.push((format!("{what}, {name}"), phase.unwrap().script));
        }
    }
    out
}

/// SSM's quota is 64 KB for the document and its parameters together; hoist keeps what
/// `SendCommand` carries for every script (its bootstrap and the gzipped script, as JSON
/// parameters) at half of it, so that the scripts have room to grow. Prints every size
/// (`cargo test --test it scripts::every_variant_fits -- --nocapture`).
#[test]
fn every_variant_fits_in_32_kib_of_sendcommand_parameters() {
    const BUDGET: usize = 32 * 1024;
    let variants = every_variant();
    let bodies: std::collections::BTreeSet<&str> =
        variants.iter().map(|(_, s)| s.body.as_str()).collect();
    assert_eq!(
        bodies.len(),
        Body::ALL.len(),
        "every body is measured: {bodies:?}"
    );
    let mut over = Vec::new();
    for (name, script) in &variants {
        let carried =
            hoist::domain::carry::Carried::ssm(script, std::time::Duration::from_secs(3600));
        let sent = carried.ssm_parameter_bytes.unwrap();
        let line = format!(
            "{sent:>7} bytes of SendCommand parameters for {:>7} bytes of script  {name} ({})",
            script.bytes(),
            script.body
        );
        println!("{line}");
        if sent > BUDGET {
            over.push(format!("{name}: {sent} bytes"));
        }
    }
    assert!(
        over.is_empty(),
        "over the budget of {BUDGET} bytes:\n{}",
        over.join("\n")
    );
}

/// Every variant above, as the plan renders it, through shellcheck and `bash -n`.
#[test]
fn every_variant_of_every_strategy_passes_shellcheck_and_bash_n() {
    if !common::prerequisite(common::have_command("shellcheck"), "shellcheck") {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    let failures: Vec<String> = every_variant()
        .into_iter()
        .filter(|(_, s)| seen.insert(s.text.clone()))
        .filter_map(|(name, s)| {
            shellcheck(None, &s.text)
                .err()
                .map(|e| format!("{name}:\n{e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What bash defines after sourcing a file: every function with its text as bash prints it
/// (`declare -f`, which leaves comments out and keeps heredocs and strings), and the names of
/// the variables it set.
fn defines(text: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("module.sh");
    std::fs::write(&file, text).unwrap();
    let program = format!(
        "before=$(compgen -v)\nsource {}\ndeclare -F\necho ----\ndeclare -f\necho ----\n\
         comm -13 <(printf '%s\\n' $before | sort) <(compgen -v | sort) | grep -vx before\n",
        file.display()
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Lossy: clip's patterns are bytes that are no UTF-8 of their own.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (names, rest) = text.split_once("----\n").unwrap();
    let (functions, vars) = rest.split_once("----\n").unwrap();
    assert!(names.lines().count() > 0, "{text}");
    (functions.to_owned(), vars.to_owned())
}

/// Rendering drops only comments: each module defines the same functions, with the same
/// text as bash reads it, and sets the same variables, before and after.
#[test]
fn a_module_defines_the_same_functions_before_and_after_rendering() {
    for m in Module::ALL {
        let source = defines(m.text());
        let rendered = defines(&script::strip(m.text()));
        assert_eq!(source.0, rendered.0, "{}: functions", m.path());
        assert_eq!(source.1, rendered.1, "{}: variables", m.path());
        let names = source.0.lines().filter(|l| l.ends_with(" () ")).count();
        assert!(names > 0, "{}: {}", m.path(), source.0);
    }
}

// ---------------------------------------------------------------- what the real agent needs

/// A program that runs `body` after the rendered library of `modules`, with fake tools from
/// `bin` first on PATH; returns (exit code, stdout bytes, stderr).
fn run_with_library(
    modules: &[Module],
    body: &str,
    bin: &Path,
    env: &[(&str, &str)],
) -> (Option<i32>, Vec<u8>, String) {
    let program = format!("#!/bin/bash\n{}\n{body}\n", script::library(modules));
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &program])
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_tool(bin: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(bin).unwrap();
    let path = bin.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The SSM agent reads some exit codes as its own: 168 as success, 169 as failed, 194 as "reboot
/// the instance", 137 as timed out or cancelled. A deploy whose command fails with any of
/// them exits 1, with its HOIST-RESULT line, and says the code in its reason.
#[test]
fn a_command_failing_with_an_agent_code_ends_the_run_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    for code in [194, 168, 169, 137, 3] {
        let body = format!(
            "HOIST_APP=web\nbegin_script on_exit\nlog working\nsh -c 'exit {code}'\nfinish deployed ''\n"
        );
        let (exit, stdout, stderr) = run_with_library(&[Module::State], &body, dir.path(), &[]);
        let stdout = String::from_utf8(stdout).unwrap();
        assert_eq!(exit, Some(1), "code {code}: {stdout}{stderr}");
        let result = hoist::domain::outcome::parse(&stdout).unwrap_or_else(|| panic!("{stdout}"));
        assert_eq!(result.status, hoist::domain::outcome::ResultStatus::Failed);
        assert!(
            result.reason.contains(&format!("(exit {code})")),
            "{}",
            result.reason
        );
    }
    // hoist's own codes still come through: invalid (2), locked (75).
    for (status, code) in [("invalid", 2), ("locked", 75), ("staged", 0)] {
        let body = format!("begin_script on_exit\nfinish {status} why\n");
        let (exit, stdout, _) = run_with_library(&[Module::State], &body, dir.path(), &[]);
        assert_eq!(exit, Some(code), "{}", String::from_utf8_lossy(&stdout));
    }
}

/// The SSM agent keeps the first 23,980 bytes of stdout. A run that logs 30 KB of multibyte
/// progress and fails with a 30 KB reason still prints its HOIST-RESULT line, whole, within
/// them, and stdout stays valid UTF-8; the reason in full is on stderr.
#[test]
fn the_result_survives_30_kb_of_multibyte_output_before_it() {
    const KEPT: usize = 23_980;
    let dir = tempfile::tempdir().unwrap();
    let body = "HOIST_APP=web\nbegin_script on_exit\n\
        for i in $(seq 1 200); do log \"step $i ✓ $(printf 'é%.0s' $(seq 1 80))\"; done\n\
        fail \"docker said: $(printf '✓%.0s' $(seq 1 10000))\"\n";
    let (exit, stdout, stderr) = run_with_library(&[Module::State], body, dir.path(), &[]);
    assert_eq!(exit, Some(1), "{stderr}");
    let produced = 200 * 160 + 30_000;
    assert!(
        stdout.len() + stderr.len() > produced,
        "the run produced its output"
    );
    let kept = &stdout[..stdout.len().min(KEPT)];
    let kept = std::str::from_utf8(kept).expect("stdout is cut on character boundaries");
    assert!(
        kept.ends_with('\n') && kept.lines().last().unwrap().starts_with("HOIST-RESULT "),
        "the result line is the last of the first {KEPT} bytes ({} bytes of stdout)",
        stdout.len()
    );
    let result = hoist::domain::outcome::parse(kept).unwrap();
    assert!(
        result.reason.starts_with("docker said: ✓✓"),
        "{}",
        result.reason
    );
    assert!(result.reason.ends_with("..."), "{}", result.reason);
    assert!(
        stderr.contains(&"✓".repeat(10_000)),
        "the reason in full on stderr"
    );
    assert!(
        stderr.contains("step 200 ✓"),
        "progress past the bound goes to stderr"
    );
}

/// A fake `aws` that answers as Parameter Store or Secrets Manager does under throttling: its
/// first $THROTTLE calls fail with $ERROR (exit 255, as the CLI does); then it prints $VALUE.
/// Every call is counted in $CALLS; a fake `sleep` records each wait in $SLEEPS.
fn throttled_aws(bin: &Path) {
    write_tool(
        bin,
        "aws",
        "n=$(( $(cat \"$CALLS\" 2>/dev/null || echo 0) + 1 ))\necho \"$n\" >\"$CALLS\"\n\
         if (( n <= THROTTLE )); then echo \"$ERROR\" >&2; exit 255; fi\n\
         printf '%s\\n' \"$VALUE\"\n",
    );
    write_tool(bin, "sleep", "echo \"$1\" >>\"$SLEEPS\"\n");
}

/// On-host reads of secrets retry while AWS throttles them, with jittered exponential backoff
/// (bounded in tries and in each wait), and never retry another error.
#[test]
fn on_host_secret_reads_retry_throttling_with_jittered_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    throttled_aws(&bin);
    let throttle = "An error occurred (ThrottlingException) when calling the GetParameter operation (reached max retries: 4): Rate exceeded";
    let run = |case: &str, program: &str, throttle_n: u32, error: &str, value: &str| {
        let calls = dir.path().join(format!("calls-{case}"));
        let sleeps = dir.path().join(format!("sleeps-{case}"));
        let n = throttle_n.to_string();
        let (exit, stdout, stderr) = run_with_library(
            &[Module::Secrets],
            &format!("begin_script on_exit\nHOIST_REGION=eu-west-1\n{program}\n"),
            &bin,
            &[
                ("CALLS", calls.to_str().unwrap()),
                ("SLEEPS", sleeps.to_str().unwrap()),
                ("THROTTLE", &n),
                ("ERROR", error),
                ("VALUE", value),
            ],
        );
        let calls: u32 = std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .trim()
            .parse()
            .unwrap_or(0);
        let sleeps: Vec<f64> = std::fs::read_to_string(&sleeps)
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        (
            exit,
            String::from_utf8(stdout).unwrap(),
            stderr,
            calls,
            sleeps,
        )
    };
    let read = "v=$(host_secret ssm /prod/db '') || fail \"read failed\"\nprintf 'VALUE=%s\\n' \"$v\"\nfinish deployed ''";

    // Throttled three times, then the value: four calls, three waits doubling from 0.2 s, each
    // between half of its step and all of it.
    let (exit, out, err, calls, sleeps) = run("three", read, 3, throttle, "s3cr3t");
    assert_eq!(exit, Some(0), "{out}{err}");
    assert!(out.contains("VALUE=s3cr3t\n"), "{out}");
    assert_eq!(calls, 4);
    assert_eq!(sleeps.len(), 3, "{sleeps:?}");
    for (wait, step) in sleeps.iter().zip([0.2, 0.4, 0.8]) {
        assert!(*wait >= step / 2.0 && *wait <= step, "{sleeps:?}");
    }

    // Always throttled: eight tries, no wait over 5 s, then the CLI's error.
    let (exit, out, err, calls, sleeps) = run("always", read, 100, throttle, "x");
    assert_eq!(exit, Some(1), "{out}{err}");
    assert_eq!(calls, 8);
    assert_eq!(sleeps.len(), 7, "{sleeps:?}");
    assert!(sleeps.iter().all(|w| *w <= 5.0), "{sleeps:?}");
    assert!(sleeps[6] >= 2.5, "{sleeps:?}");
    assert!(err.contains("Rate exceeded"), "{err}");

    // TooManyRequestsException (Secrets Manager's word) is throttling too; a field of a JSON
    // secret comes through the retry and the pipe to the JSON reader.
    let field = "v=$(host_secret secretsmanager prod/db password) || fail \"read failed\"\nprintf 'VALUE=%s\\n' \"$v\"\nfinish deployed ''";
    let (exit, out, err, calls, _) = run(
        "json",
        field,
        2,
        "An error occurred (TooManyRequestsException) when calling the GetSecretValue operation",
        r#"{"password":"pw-1","user":"u"}"#,
    );
    assert_eq!(exit, Some(0), "{out}{err}");
    assert!(out.contains("VALUE=pw-1\n"), "{out}");
    assert_eq!(calls, 3);

    // Any other error is not retried.
    let (exit, _, err, calls, sleeps) = run(
        "missing",
        read,
        100,
        "An error occurred (ParameterNotFound) when calling the GetParameter operation: ",
        "x",
    );
    assert_eq!(exit, Some(1), "{err}");
    assert_eq!(calls, 1);
    assert!(sleeps.is_empty());
}

/// The `&`s of a line's code (from [`hoist::plan::script::Lexer`]) that put a command in the
/// background: not part of `&&`, `>&`, `<&`, `&>` or `|&`, and ending the command (the line
/// ends after it, or `;`, `)` or `}` follows), unlike arithmetic's `a & b`.
fn background_jobs(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'&')
        .filter(|&i| !(i > 0 && b"&<>|".contains(&b[i - 1])))
        .filter(|&i| !b.get(i + 1).is_some_and(|c| b"&>".contains(c)))
        .filter(|&i| {
            let rest = code[i + 1..].trim_start();
            rest.is_empty() || rest.starts_with([';', ')', '}'])
        })
        .collect()
}

/// Whether the command before a background `&` sends both stdout and stderr elsewhere.
fn redirected_away(command: &str) -> bool {
    let out = command.contains("&>")
        || command.match_indices('>').any(|(i, _)| {
            i == 0
                || !command.as_bytes()[i - 1].is_ascii_digit()
                || command.as_bytes()[i - 1] == b'1'
        });
    let err = command.contains("&>") || command.contains("2>");
    out && err
}

/// The lint's findings in a shell source: each background job whose command keeps the
/// script's stdout or stderr and that is not waited for on the next line of code.
fn unredirected_background_jobs(source: &str) -> Vec<String> {
    let mut lexer = hoist::plan::script::Lexer::default();
    let lines: Vec<String> = source.lines().map(|l| lexer.line(l).code).collect();
    let mut found = Vec::new();
    for (n, code) in lines.iter().enumerate() {
        for at in background_jobs(code) {
            let start = code[..at].rfind([';', '|', '{', '(']).map_or(0, |i| i + 1);
            let command = &code[start..at];
            let waited = code[at + 1..].contains("wait ")
                || lines[n + 1..]
                    .iter()
                    .find(|l| !l.trim().is_empty())
                    .is_some_and(|l| l.trim_start().starts_with("wait "));
            if !redirected_away(command) && !waited {
                found.push(format!("line {}: {}", n + 1, code.trim()));
            }
        }
    }
    found
}

/// The real SSM agent reads stdout and stderr through pipes, and the invocation ends only when
/// every process holding them has closed them: a job left in the background with the script's
/// stdout or stderr would hold a deploy open until its timeout. Every `&` in the scripts is
/// redirected away from both, or waited for.
#[test]
fn every_background_job_in_the_scripts_is_redirected_away_or_waited_for() {
    // The lint itself finds what it must, and only that.
    assert_eq!(
        unredirected_background_jobs("x=1\nsleep 9 &\necho hi\n").len(),
        1
    );
    assert_eq!(unredirected_background_jobs("f() { sleep 9 & }\n").len(), 1);
    assert_eq!(
        unredirected_background_jobs("sleep 9 >/dev/null &\n").len(),
        1
    );
    for fine in [
        "sleep 9 >/dev/null 2>&1 &\n",
        "sleep 9 &>/dev/null &\n",
        "sleep 9 >\"$f\" 2>\"$f.err\" &\n",
        "sleep 9 &\nwait $! || true\n",
        "a && b || c\n",
        "x=$(((d >> 8) & 0xfff))\n",
        "echo '&' \"&\" # a &\n",
        "exec 2>&1 >&3\n",
    ] {
        assert_eq!(
            unredirected_background_jobs(fine),
            Vec::<String>::new(),
            "{fine}"
        );
    }
    let mut found = Vec::new();
    let mut jobs = 0;
    for source in Module::ALL.iter().map(|m| (m.path(), m.text())).chain(
        Body::ALL
            .iter()
            .map(|b| (b.file_name().to_owned(), b.text())),
    ) {
        let mut lexer = hoist::plan::script::Lexer::default();
        jobs += source
            .1
            .lines()
            .map(|l| background_jobs(&lexer.line(l).code).len())
            .sum::<usize>();
        found.extend(
            unredirected_background_jobs(source.1)
                .into_iter()
                .map(|f| format!("{}: {f}", source.0)),
        );
    }
    assert!(jobs >= 3, "the scripts' background jobs are seen ({jobs})");
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A status reads back history records, which older scripts wrote with reasons of any length:
/// the HOIST-STATUS line keeps the newest that fit, so that it stays within the 23,980 bytes
/// of stdout SSM keeps. Exercised with a stand-in for `docker` (an engine with no release).
#[test]
fn a_status_line_stays_within_what_ssm_keeps_of_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    write_tool(&bin, "docker", "case $1 in version) echo 27.0 ;; esac\n");
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("web")).unwrap();
    let mut history = String::new();
    for i in 1..=10 {
        writeln!(
            history,
            "{{\"app\":\"web\",\"release\":\"r{i}\",\"status\":\"failed\",\"reason\":\"{}\"}}",
            "é".repeat(1900)
        )
        .unwrap();
    }
    std::fs::write(state.join("web/history.jsonl"), history).unwrap();
    let script = plan::status_script(&config(""))
        .text
        .replace(
            "HOIST_STATE_DIR='/var/lib/hoist'",
            &format!("HOIST_STATE_DIR='{}'", state.display()),
        )
        .replace(
            "HOIST_RUN_DIR='/run/hoist'",
            &format!("HOIST_RUN_DIR='{}'", dir.path().join("run").display()),
        );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.len() <= 23_980, "{} bytes", stdout.len());
    let status: serde_json::Value =
        hoist::domain::outcome::last_marked(&stdout, "HOIST-STATUS ").unwrap();
    let releases: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["release"].as_str().unwrap())
        .collect();
    assert_eq!(
        releases,
        ["r8", "r9", "r10"],
        "the newest that fit, oldest first"
    );
}

/// The restore is the strategy's own, in the module of its switch: a script without
/// blue-green's modules (a recreate deploy) that finds a blue-green run to undo (its state
/// file left by a killed blue-green deploy) refuses, saying what can undo it, instead of
/// calling a function it does not carry; with the module, the same call reaches blue-green's
/// restore.
#[test]
fn a_script_without_a_strategys_modules_cannot_undo_its_run_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let body = "HOIST_APP=web\nSTRATEGY=blue-green\nPHASE=verified\n\
                if restore; then echo \"restored|$RESTORE_NOTE\"; else echo \"not|$RESTORE_NOTE\"; fi\n";
    let (exit, stdout, stderr) = run_with_library(&[Module::Release], body, dir.path(), &[]);
    assert_eq!(exit, Some(0), "{stderr}");
    assert_eq!(
        String::from_utf8(stdout).unwrap(),
        "not|this script cannot undo a blue-green run; a blue-green deploy or a rollback of web can\n"
    );
    // Blue-green's restore has nothing to undo once the target was verified.
    let (exit, stdout, stderr) = run_with_library(&[Module::Bluegreen], body, dir.path(), &[]);
    assert_eq!(exit, Some(0), "{stderr}");
    assert_eq!(String::from_utf8(stdout).unwrap(), "restored|\n");
}

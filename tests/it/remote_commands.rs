//! `hoist logs` and `hoist exec` over SSM, on the emulated fleet: each target's lines under
//! its id, secrets masked on each host (hoist's environment holds none here), `--target`
//! narrowing to one instance, a command's exit status per target; then `hoist remove`
//! under the fleet lock.

use crate::common::fleet::{App, World, assert_ok, ready};
use crate::common::{Run, git, hoist};

#[test]
fn logs_exec_and_remove_over_ssm() {
    if !ready() {
        return;
    }
    let world = World::up("logs");
    let app = App::new("logs");
    // An app that prints its secret as it starts.
    let dockerfile = std::fs::read_to_string(app.root.join("Dockerfile")).unwrap();
    let start = r#"CMD ["sh", "-c", "echo started token=$HELLO_API_TOKEN; exec busybox httpd -f -p 8080 -h /www"]"#;
    let dockerfile: String = dockerfile
        .lines()
        .map(|l| if l.starts_with("CMD ") { start } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(app.root.join("Dockerfile"), dockerfile + "\n").unwrap();
    git(
        &app.root,
        &["commit", "-qam", "an app that logs its secret"],
    );
    assert_ok(&app.deploy(&world, &[]));

    let run = |args: &[&str]| -> Run {
        hoist()
            .current_dir(&app.root)
            .args(args)
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env_remove("HELLO_API_TOKEN")
            .env("CI", "true")
            .output()
            .unwrap()
            .into()
    };
    let logs = run(&["logs"]);
    logs.success();
    for inst in world.instances() {
        assert!(
            logs.stdout
                .contains(&format!("[{}] started token=***", inst.id)),
            "{}",
            logs.stdout
        );
    }
    assert!(
        !crate::common::fleet::leaks(&logs.stdout),
        "{}",
        logs.stdout
    );

    let one = &world.instances()[1].id;
    let exec = run(&[
        "exec",
        "--target",
        one,
        "--",
        "sh",
        "-c",
        "echo \"in $(hostname) $1\"; exit 4",
        "sh",
        "it's",
    ]);
    assert_eq!(exec.code, 1, "{}\n{}", exec.stdout, exec.stderr);
    let lines: Vec<&str> = exec.stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("[{one}] in ")) && lines[0].ends_with(" it's"),
        "{}",
        exec.stdout
    );
    assert_eq!(
        exec.stdout.matches("[i-").count(),
        1,
        "only --target ran it: {}",
        exec.stdout
    );
    let row = lines.last().unwrap();
    assert!(
        row.starts_with(one.as_str()) && row.ends_with(" 4"),
        "{row}"
    );
    assert!(
        exec.stderr.contains("the command exited with status 4"),
        "{}",
        exec.stderr
    );
    let ok = run(&["exec", "--", "true"]);
    ok.success();
    assert_eq!(
        ok.stdout.lines().filter(|l| l.ends_with(" 0")).count(),
        3,
        "{}",
        ok.stdout
    );

    // remove over SSM, under the fleet lock: every instance loses the app.
    let removed = run(&["remove", "--yes"]);
    removed.success();
    for inst in world.instances() {
        let left = world.docker(
            inst,
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=hoist.app={}", app.name),
            ],
        );
        assert_eq!(left.trim(), "", "{}: {left}", inst.id);
        let state = world.on_instance(
            inst,
            &format!(
                "test -e /var/lib/hoist/{} && echo left || echo gone",
                app.name
            ),
        );
        assert_eq!(state.trim(), "gone", "{}", inst.id);
    }
    assert!(
        world
            .journal()
            .iter()
            .any(|l| l["operation"] == "DeleteParameter"
                && l["params"]["Name"]
                    .as_str()
                    .is_some_and(|n| n.contains("/lock/"))),
        "the fleet lock was taken and released"
    );
}

/// `hoist doctor` over SSM: the agent and every host check per instance; then an instance
/// without `flock` fails its check, and a deploy refuses it up front, naming it, before any
/// host changes (the release and its containers stay as they were, no secret is put). Then a
/// release with Docker options (every instance's container has them), and one judged by a
/// health command.
#[test]
fn doctor_over_ssm_and_a_deploy_refused_for_a_host_without_flock() {
    if !ready() {
        return;
    }
    let world = World::up("doctor");
    let app = App::new("doctor");
    assert_ok(&app.deploy(&world, &[]));
    let run = |args: &[&str]| -> Run {
        hoist()
            .current_dir(&app.root)
            .args(args)
            .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CI", "true")
            .output()
            .unwrap()
            .into()
    };
    let instances = world.instances();
    let report = run(&["doctor", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&report.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", report.stdout, report.stderr));
    assert_eq!(report.code, 0, "{json:#}\n{}", report.stderr);
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), instances.len(), "{json:#}");
    for target in targets {
        let names: Vec<&str> = target["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for want in [
            "agent",
            "bash",
            "docker",
            "flock",
            "setsid",
            "curl",
            "aws",
            "tmpfs",
            "disk",
            "clock",
            "parameters",
            "clock-offset",
        ] {
            assert!(names.contains(&want), "{want}: {target:#}");
        }
        let agent = &target["checks"][0];
        assert_eq!(agent["status"], "ok", "{agent}");
        assert!(
            agent["detail"]
                .as_str()
                .unwrap()
                .starts_with("Online, agent 3."),
            "{agent}"
        );
    }
    let runner: Vec<&str> = json["runner"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        runner,
        ["docker", "git", "region", "credentials"],
        "{json:#}"
    );

    let bare = &instances[1];
    world.fault(&["tool", &bare.id, "flock", "missing"]);
    let table = run(&["doctor", "--target", &bare.id]);
    assert_eq!(table.code, 1, "{}\n{}", table.stdout, table.stderr);
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with(bare.id.as_str()) && l.contains(" flock "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        row.contains(" fail ") && row.contains("flock is not installed on this host"),
        "{row}"
    );
    assert!(
        !table.stdout.contains(&instances[0].id),
        "--target: one instance only\n{}",
        table.stdout
    );

    // A new release: refused before any host changes.
    let before: Vec<String> = instances
        .iter()
        .map(|i| world.docker(i, &["ps", "-aq", "--no-trunc"]))
        .collect();
    let sent = world.calls("SendCommand");
    let secret_puts = || {
        world
            .journal()
            .iter()
            .filter(|l| {
                l["operation"] == "PutParameter"
                    && l["params"]["Name"]
                        .as_str()
                        .is_some_and(|n| n.ends_with("/env"))
            })
            .count()
    };
    let puts = secret_puts();
    app.configure("2.0.0", "0s", "0");
    let refused = app.deploy(&world, &[]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused
            .stderr
            .contains("host checks failed, no host was changed")
            && refused.stderr.contains(&format!(
                "{}: flock: flock is not installed on this host",
                bare.id
            )),
        "{}",
        refused.stderr
    );
    assert_eq!(
        world.calls("SendCommand"),
        sent + 1,
        "one command: the checks"
    );
    for (inst, containers) in instances.iter().zip(&before) {
        assert_eq!(
            &world.docker(inst, &["ps", "-aq", "--no-trunc"]),
            containers,
            "{} changed",
            inst.id
        );
        crate::common::fleet::assert_serves(inst, "1.0.0");
    }
    assert_eq!(secret_puts(), puts, "no secret parameter was put");

    world.fault(&["tool", &bare.id, "flock", "ok"]);
    assert_ok(&app.deploy(&world, &[]));
    for inst in instances {
        crate::common::fleet::assert_serves(inst, "2.0.0");
    }

    // Docker options over SSM: each instance's container has them, as written.
    app.configure_with(
        "3.0.0",
        "0s",
        "0",
        "2s",
        "  read_only: true\n  tmpfs: [/tmp]\n  cap_drop: [ALL]\n  stop_signal: SIGQUIT\n  \
         ulimits:\n    nofile: \"1024:2048\"\n  extra_hosts:\n    db.internal: 10.1.2.3\n",
    );
    assert_ok(&app.deploy(&world, &[]));
    for inst in instances {
        crate::common::fleet::assert_serves(inst, "3.0.0");
        let id = world.docker(
            inst,
            &[
                "ps",
                "-q",
                "--filter",
                &format!("label=hoist.app={}", app.name),
            ],
        );
        let seen = world.docker(
            inst,
            &[
                "inspect",
                "--format",
                "{{.HostConfig.ReadonlyRootfs}} {{json .HostConfig.Tmpfs}} \
                 {{json .HostConfig.CapDrop}} {{.Config.StopSignal}} \
                 {{json .HostConfig.Ulimits}} {{json .HostConfig.ExtraHosts}}",
                id.trim(),
            ],
        );
        assert_eq!(
            seen.trim(),
            "true {\"/tmp\":\"\"} [\"ALL\"] SIGQUIT \
             [{\"Name\":\"nofile\",\"Hard\":2048,\"Soft\":1024}] [\"db.internal:10.1.2.3\"]",
            "{}",
            inst.id
        );
    }

    // A check that is not HTTP, over SSM: a command in each container.
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    let checked = yaml.replace(
        "healthcheck:\n  path: /healthz\n",
        "healthcheck:\n  command: [test, -f, /www/healthz]\n",
    );
    assert_ne!(yaml, checked);
    std::fs::write(app.root.join("hoist.yaml"), checked).unwrap();
    crate::common::git(&app.root, &["commit", "-qam", "a command checks it"]);
    assert_ok(&app.deploy(&world, &[]));
    for inst in instances {
        let history = world.on_instance(
            inst,
            &format!("tail -n 1 /var/lib/hoist/{}/history.jsonl", app.name),
        );
        let last: serde_json::Value = serde_json::from_str(history.trim()).unwrap();
        assert_eq!(last["status"], "deployed", "{last}");
        assert_eq!(last["health"], "command exited 0", "{last}");
    }
}

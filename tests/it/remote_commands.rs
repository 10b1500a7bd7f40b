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

//! Bad configs: each exits 2, names file:line and the field, and never calls Docker.

mod common;

use common::{DockerTrap, Run, hoist};

const GOOD: &str = "\
app: web
targets:
  tags:
    Env: [prod]
container:
  port: 8080
  publish: 8080
healthcheck:
  path: /healthz
env:
  clear:
    MODE: prod
  secret: [API_TOKEN]
";

/// (name, config text, expected line, expected field, expected message fragment)
const CASES: &[(&str, &str, u32, &str, &str)] = &[
    (
        "yaml syntax",
        "app: web\ntargets: [\n",
        2,
        "",
        "YAML syntax",
    ),
    (
        "tab indentation",
        "app: web\ntargets:\n\tinstance_ids: []\n",
        3,
        "",
        "YAML syntax",
    ),
    (
        "unknown top-level key",
        "app: web\napps: x\ntargets:\n  tags: {Env: [a]}\n",
        2,
        "apps",
        "unknown key `apps`",
    ),
    (
        "unknown nested key",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  prot: 80\n",
        5,
        "container.prot",
        "did you mean `port`",
    ),
    (
        "missing app",
        "targets:\n  tags: {Env: [a]}\n",
        1,
        "app",
        "missing required field `app`",
    ),
    (
        "bad app name",
        "app: Web_App\ntargets:\n  tags: {Env: [a]}\n",
        1,
        "app",
        "not a valid app name",
    ),
    (
        "app wrong type",
        "app: [web]\ntargets:\n  tags: {Env: [a]}\n",
        1,
        "app",
        "expected a string, found a list",
    ),
    (
        "port out of range",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  port: 70000\n",
        5,
        "container.port",
        "out of range",
    ),
    (
        "port wrong type",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  port: eighty\n",
        5,
        "container.port",
        "expected an integer",
    ),
    (
        "publish zero",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  publish: 0\n",
        5,
        "container.publish",
        "out of range",
    ),
    (
        "bad duration",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  timeout: 30\n",
        5,
        "healthcheck.timeout",
        "no unit",
    ),
    (
        "bad duration unit",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  stop_timeout: 5d\n",
        5,
        "container.stop_timeout",
        "unknown unit",
    ),
    (
        "interval longer than budget",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  interval: 10s\n  timeout: 5s\n",
        6,
        "healthcheck.timeout",
        "shorter than one probe interval",
    ),
    (
        "no targets",
        "app: web\ntargets: {}\n",
        2,
        "targets",
        "no targets",
    ),
    (
        "missing targets",
        "app: web\n",
        1,
        "targets",
        "missing required field `targets`",
    ),
    (
        "malformed instance id",
        "app: web\ntargets:\n  instance_ids: [i-12345]\n",
        3,
        "targets.instance_ids[0]",
        "not an EC2 instance id",
    ),
    (
        "too many tag keys",
        "app: web\ntargets:\n  tags: {A: [1], B: [2], C: [3], D: [4], E: [5], F: [6]}\n",
        3,
        "targets.tags",
        "at most 5",
    ),
    (
        "bad max_errors",
        "app: web\ntargets:\n  tags: {Env: [a]}\n  max_errors: lots\n",
        4,
        "targets.max_errors",
        "percentage",
    ),
    (
        "max_concurrency zero",
        "app: web\ntargets:\n  tags: {Env: [a]}\n  max_concurrency: 0\n",
        4,
        "targets.max_concurrency",
        "1 or more",
    ),
    (
        "secret not an env name",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  secret: [API-TOKEN]\n",
        5,
        "env.secret[0]",
        "not a valid environment variable name",
    ),
    (
        "name in clear and secret",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear: {TOKEN: x}\n  secret: [TOKEN]\n",
        6,
        "env.secret[0]",
        "both env.clear and env.secret",
    ),
    (
        "clear name invalid",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear: {1BAD: x}\n",
        5,
        "env.clear.1BAD",
        "not a valid environment variable name",
    ),
    (
        "blue-green not yet",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\n",
        4,
        "strategy",
        "not available",
    ),
    (
        "immutable_tags not a boolean",
        "app: web\nimage:\n  immutable_tags: yes please\ntargets:\n  tags: {Env: [a]}\n",
        3,
        "image.immutable_tags",
        "true or false",
    ),
    (
        "unknown builder",
        "app: web\nimage:\n  builder: kaniko\ntargets:\n  tags: {Env: [a]}\n",
        3,
        "image.builder",
        "unknown builder",
    ),
    (
        "unknown strategy",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: yolo\n",
        4,
        "strategy",
        "unknown strategy",
    ),
    (
        "retain negative",
        "app: web\ntargets:\n  tags: {Env: [a]}\nretain: -1\n",
        4,
        "retain",
        "out of range",
    ),
    (
        "bad restart policy",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  restart: sometimes\n",
        5,
        "container.restart",
        "not a restart policy",
    ),
    (
        "bad volume",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  volumes: [data]\n",
        5,
        "container.volumes[0]",
        "not a volume mapping",
    ),
    (
        "reserved label",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  labels: {hoist.app: x}\n",
        5,
        "container.labels.hoist.app",
        "reserved",
    ),
    (
        "bad image tag",
        "app: web\nimage:\n  tags: [-bad]\ntargets:\n  tags: {Env: [a]}\n",
        3,
        "image.tags[0]",
        "not a valid image tag",
    ),
    (
        "bad health path",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  path: healthz\n",
        5,
        "healthcheck.path",
        "must start with /",
    ),
    (
        "bad region",
        "app: web\nregion: mars\ntargets:\n  tags: {Env: [a]}\n",
        2,
        "region",
        "not an AWS region",
    ),
    (
        "duplicate key",
        "app: web\napp: other\ntargets:\n  tags: {Env: [a]}\n",
        2,
        "",
        "YAML syntax",
    ),
];

fn run_in(dir: &std::path::Path, trap: &DockerTrap, args: &[&str]) -> Run {
    hoist()
        .current_dir(dir)
        .args(args)
        .env("DOCKER_HOST", &trap.url)
        .env("API_TOKEN", "t0ps3cret")
        .env_remove("CI")
        .output()
        .expect("hoist runs")
        .into()
}

#[test]
fn the_good_config_is_valid() {
    let (_tmp, root) = common::repo_with(&[("hoist.yaml", GOOD), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    let run = run_in(&root, &trap, &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("hoist.yaml is valid"), "{}", run.stdout);
    assert!(!trap.was_called());
}

#[test]
fn every_bad_config_exits_2_with_file_line_and_field() {
    assert!(CASES.len() >= 20);
    let (_tmp, root) = common::repo_with(&[("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    let mut failures = Vec::new();
    for (name, text, line, field, fragment) in CASES {
        std::fs::write(root.join("hoist.yaml"), text).unwrap();
        for cmd in [
            &["validate"][..],
            &["plan", "--format", "json"],
            &["deploy", "--local"],
        ] {
            let run = run_in(&root, &trap, cmd);
            let at = format!("hoist.yaml:{line}:");
            let field_ok = field.is_empty() || run.stderr.contains(&format!(": {field}: "));
            let ok = run.code == 2
                && run.stderr.contains(&at)
                && field_ok
                && run.stderr.contains(fragment)
                && run.stdout.is_empty();
            if !ok {
                failures.push(format!(
                    "{name} / {cmd:?}: exit {}, want 2 naming {at} `{field}` `{fragment}`\n{}",
                    run.code, run.stderr
                ));
            }
        }
    }
    assert!(!trap.was_called(), "a bad config must not reach Docker");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn validate_reports_all_errors_at_once() {
    let (_tmp, root) = common::repo_with(&[(
        "hoist.yaml",
        "app: Bad!\ntargets:\n  instance_ids: [nope]\ncontainer:\n  port: 0\nretian: 2\n",
    )]);
    let trap = DockerTrap::new();
    let run = run_in(&root, &trap, &["validate"]);
    assert_eq!(run.code, 2);
    for needle in [
        "hoist.yaml:1:6: app:",
        "hoist.yaml:3:18: targets.instance_ids[0]:",
        "hoist.yaml:5:9: container.port:",
        "hoist.yaml:6:1: retian: unknown key",
        "did you mean `retain`",
        "has 4 errors",
    ] {
        assert!(
            run.stderr.contains(needle),
            "missing {needle:?} in\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_missing_config_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let trap = DockerTrap::new();
    let run = run_in(dir.path(), &trap, &["plan", "-f", "nope.yaml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read config file nope.yaml"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_secret_is_exit_2_before_any_docker_call() {
    let (_tmp, root) = common::repo_with(&[("hoist.yaml", GOOD), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    let run: Run = hoist()
        .current_dir(&root)
        .args(["deploy", "--local"])
        .env("DOCKER_HOST", &trap.url)
        .env_remove("API_TOKEN")
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("secret API_TOKEN named in env.secret is not set"),
        "{}",
        run.stderr
    );
    assert!(!trap.was_called());
}

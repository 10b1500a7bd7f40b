//! Bad configs: each exits 2, names <file:line> and the field, and never calls Docker.

use crate::common;

use std::time::Duration;

use common::{DockerTrap, Hoist, Run};

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
        "two health checks",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  path: /up\n  tcp: true\n",
        6,
        "healthcheck.tcp",
        "healthcheck.path and healthcheck.tcp are both set",
    ),
    (
        "running longer than the budget",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  timeout: 5s\n  min_running: 10s\n",
        6,
        "healthcheck.min_running",
        "longer than the whole budget",
    ),
    (
        "a capability misspelt",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  cap_add: [NET_BIND_SERVIC]\n",
        5,
        "container.cap_add[0]",
        "`NET_BIND_SERVIC` is not a Linux capability (did you mean `NET_BIND_SERVICE`?)",
    ),
    (
        "an unknown ulimit",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  ulimits:\n    nofiles: 1024\n",
        6,
        "container.ulimits.nofiles",
        "`nofiles` is not a ulimit (did you mean `nofile`?)",
    ),
    (
        "an extra host that is no address",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  extra_hosts:\n    db: 10.0.0\n",
        6,
        "container.extra_hosts.db",
        "`10.0.0` is not an IP address",
    ),
    (
        "the host network with a published port",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  publish: 8080\n  network: host\n",
        6,
        "container.network",
        "network `host` publishes no port",
    ),
    (
        "an entrypoint with its arguments",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  entrypoint: /app serve\n",
        5,
        "container.entrypoint",
        "has a space",
    ),
    (
        "log options without a driver",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  log_options:\n    max-size: 1m\n",
        6,
        "container.log_options",
        "log_options without log_driver",
    ),
    (
        "a stop signal that is none",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  stop_signal: SIGSTAHP\n",
        5,
        "container.stop_signal",
        "`SIGSTAHP` is not a signal",
    ),
    (
        "a tmpfs that is no path",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  tmpfs: [tmp]\n",
        5,
        "container.tmpfs[0]",
        "a tmpfs mount is an absolute path",
    ),
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
        "unknown strategy",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: canary\n",
        4,
        "strategy",
        "unknown strategy `canary` (known: recreate, blue-green)",
    ),
    (
        "blue_green section with recreate",
        "app: web\ntargets:\n  tags: {Env: [a]}\nblue_green:\n  drain: 5s\n",
        4,
        "blue_green",
        "`blue_green` applies to `strategy: blue-green`, and this config's strategy is recreate",
    ),
    (
        "blue_green section with an explicit recreate",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: recreate\nblue_green: {}\n",
        5,
        "blue_green",
        "applies to `strategy: blue-green`",
    ),
    (
        "blue-green without publish",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\n",
        4,
        "container.publish",
        "`strategy: blue-green` needs `container.publish`, the host port nginx listens on",
    ),
    (
        "blue-green with a container section but no publish",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  port: 8080\n",
        6,
        "container.publish",
        "needs `container.publish`",
    ),
    (
        "blue-green default ports do not fit",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 50000\n",
        6,
        "blue_green.ports",
        "no default ports for container.publish 50000: they are publish + 10000 and publish + \
         20000, and 70000 is more than 65535",
    ),
    (
        "blue-green one port",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  ports: [8081]\n",
        8,
        "blue_green.ports",
        "1 port given; blue-green needs two, [blue, green]",
    ),
    (
        "blue-green ports not a list",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  ports: {blue: 8081, green: 8082}\n",
        8,
        "blue_green.ports",
        "expected a list of two ports, [blue, green], found a mapping",
    ),
    (
        "blue-green ports equal",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  ports:\n    - 8081\n    - 8081\n",
        10,
        "blue_green.ports[1]",
        "the green port is the blue port (8081): each color needs a port of its own",
    ),
    (
        "blue-green port is the publish port",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  ports:\n    - 80\n    - 8082\n",
        9,
        "blue_green.ports[0]",
        "80 is container.publish, the port nginx listens on; the blue release needs a port of \
         its own",
    ),
    (
        "blue-green port out of range",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  ports:\n    - 8081\n    - 65536\n",
        10,
        "blue_green.ports[1]",
        "65536 is out of range (1-65535)",
    ),
    (
        "blue-green drain too long",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  drain: 11m\n",
        8,
        "blue_green.drain",
        "11m is out of range (0s-10m)",
    ),
    (
        "blue-green drain without unit",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  drain: 30\n",
        8,
        "blue_green.drain",
        "no unit",
    ),
    (
        "blue-green proxy body size unreadable",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy:\n    max_body: 10 MB\n",
        9,
        "blue_green.proxy.max_body",
        "`10 MB` is not a size",
    ),
    (
        "blue-green proxy body size too large",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy: {max_body: 2048g}\n",
        8,
        "blue_green.proxy.max_body",
        "more than the largest size, 1024g",
    ),
    (
        "blue-green proxy body size a list",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy:\n    max_body: [1]\n",
        9,
        "blue_green.proxy.max_body",
        "expected a size",
    ),
    (
        "blue-green proxy read timeout zero",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy:\n    read_timeout: 0s\n",
        9,
        "blue_green.proxy.read_timeout",
        "0s is out of range (1s-24h)",
    ),
    (
        "blue-green proxy ipv6 not a boolean",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy:\n    ipv6: auto\n",
        9,
        "blue_green.proxy.ipv6",
        "expected true or false",
    ),
    (
        "blue-green proxy unknown key",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy:\n    max_bdy: 1m\n",
        9,
        "blue_green.proxy.max_bdy",
        "did you mean `max_body`",
    ),
    (
        "blue-green proxy not a mapping",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  proxy: nginx\n",
        8,
        "blue_green.proxy",
        "expected a mapping",
    ),
    (
        "blue-green post-switch check zero",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  post_switch_check: 0s\n",
        8,
        "blue_green.post_switch_check",
        "0s is out of range (1s-10m)",
    ),
    (
        "blue-green post-switch check too long",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  post_switch_check: 1h\n",
        8,
        "blue_green.post_switch_check",
        "1h is out of range (1s-10m)",
    ),
    (
        "blue-green install_proxy not a boolean",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  install_proxy: maybe\n",
        8,
        "blue_green.install_proxy",
        "expected true or false, found a string",
    ),
    (
        "blue-green unknown key",
        "app: web\ntargets:\n  tags: {Env: [a]}\nstrategy: blue-green\ncontainer:\n  publish: 80\n\
         blue_green:\n  drian: 5s\n",
        8,
        "blue_green.drian",
        "did you mean `drain`",
    ),
    (
        "consecutive out of range",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  consecutive: 0\n",
        5,
        "healthcheck.consecutive",
        "0 is out of range (1-10)",
    ),
    (
        "consecutive not an integer",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  consecutive: twice\n",
        5,
        "healthcheck.consecutive",
        "expected an integer (1-10)",
    ),
    (
        "consecutive longer than the health budget",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  interval: 10s\n  \
         timeout: 30s\n  consecutive: 5\n",
        7,
        "healthcheck.consecutive",
        "5 successful probes in a row, one healthcheck.interval (10s) apart, take 40s after the \
         first: more than the whole budget, healthcheck.timeout (30s)",
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
        "app",
        "duplicate key `app` (first at line 1)",
    ),
    (
        "duplicate nested key",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear:\n    A: x\n    A: y\n",
        7,
        "env.clear.A",
        "duplicate key `A` (first at line 6)",
    ),
    (
        "NUL in env.clear",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear:\n    MODE: \"a\\0b\"\n",
        6,
        "env.clear.MODE",
        "contains U+0000 (NUL)",
    ),
    (
        "ANSI escape in command",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  command: \"echo hi\\e[2K\"\n",
        5,
        "container.command",
        "contains U+001B (ESC)",
    ),
    (
        "carriage return in a label",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  labels: {team: \"a\\rb\"}\n",
        5,
        "container.labels.team",
        "contains U+000D (carriage return)",
    ),
    (
        "C1 control in a build arg",
        "app: web\nimage:\n  build_args: {V: \"1\\x85\"}\ntargets:\n  tags: {Env: [a]}\n",
        3,
        "image.build_args.V",
        "contains U+0085 (C1 control)",
    ),
    (
        "bidi override in a command item",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  command: [sh, \"x\\u202Ey\"]\n",
        5,
        "container.command[1]",
        "contains U+202E (bidi control)",
    ),
    (
        "DEL in a key",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear: {\"A\\x7F\": x}\n",
        5,
        "env.clear.A\\u{7f}",
        "contains U+007F (DEL)",
    ),
    (
        "line feed outside the command",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  volumes: [\"a:/b\\n\"]\n",
        5,
        "container.volumes[0]",
        "contains U+000A (line feed)",
    ),
    (
        "SSM parameter reference in the command",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  command: \"echo {{ssm:/db/pw}}\"\n",
        5,
        "container.command",
        "`{{ssm:` is an SSM parameter reference",
    ),
    (
        "resolve reference in env.clear, any case and spacing",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear: {DB: \"{{ Resolve:ssm:/x}}\"}\n",
        5,
        "env.clear.DB",
        "is an SSM parameter reference",
    ),
    (
        "duration over 48h",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  stop_timeout: 49h\n",
        5,
        "container.stop_timeout",
        "longer than 48h",
    ),
    (
        "duration that overflows",
        "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  timeout: 18446744073709551615s\n",
        5,
        "healthcheck.timeout",
        "longer than 48h",
    ),
    (
        "run budget over 48h",
        "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  stop_timeout: 24h\nhealthcheck:\n  \
         timeout: 24h\n",
        7,
        "healthcheck.timeout",
        "the most SSM lets a command run",
    ),
    (
        "null env value",
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear:\n    EMPTY: ~\n",
        6,
        "env.clear.EMPTY",
        "`EMPTY` has no value",
    ),
    (
        "lock lease too short",
        "app: web\ntargets:\n  tags: {Env: [a]}\nlock:\n  lease: 5s\n",
        5,
        "lock.lease",
        "5s is out of range (10s-1h)",
    ),
    (
        "lock lease too long",
        "app: web\ntargets:\n  tags: {Env: [a]}\nlock:\n  lease: 2h\n",
        5,
        "lock.lease",
        "2h is out of range (10s-1h)",
    ),
    (
        "lock lease without a unit",
        "app: web\ntargets:\n  tags: {Env: [a]}\nlock:\n  lease: 300\n",
        5,
        "lock.lease",
        "has no unit",
    ),
    (
        "unknown lock key",
        "app: web\ntargets:\n  tags: {Env: [a]}\nlock:\n  leese: 1m\n",
        5,
        "lock.leese",
        "did you mean `lease`",
    ),
];

fn run_in(dir: &std::path::Path, trap: &DockerTrap, args: &[&str]) -> Run {
    Hoist::new()
        .current_dir(dir)
        .args(args)
        .env("DOCKER_HOST", &trap.url)
        .env("API_TOKEN", "t0ps3cret")
        .env_remove("CI")
        .run()
}

#[test]
fn the_good_config_is_valid() {
    let (_tmp, root) = common::repo_with(&[("hoist.yaml", GOOD), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    run_in(&root, &trap, &["validate"])
        .success()
        .stdout_has("hoist.yaml is valid");
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
    run_in(&root, &trap, &["validate"])
        .code(2)
        .stderr_has("hoist.yaml:1:6: app:")
        .stderr_has("hoist.yaml:3:18: targets.instance_ids[0]:")
        .stderr_has("hoist.yaml:5:9: container.port:")
        .stderr_has("hoist.yaml:6:1: retian: unknown key")
        .stderr_has("did you mean `retain`")
        .stderr_has("has 4 errors");
}

#[test]
fn a_missing_config_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let trap = DockerTrap::new();
    run_in(dir.path(), &trap, &["plan", "-f", "nope.yaml"])
        .code(2)
        .stderr_has("cannot read config file nope.yaml");
}

#[test]
fn a_missing_secret_is_exit_2_before_any_docker_call() {
    let (_tmp, root) = common::repo_with(&[("hoist.yaml", GOOD), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    Hoist::new()
        .current_dir(&root)
        .args(["deploy", "--local"])
        .env("DOCKER_HOST", &trap.url)
        .env_remove("API_TOKEN")
        .run()
        .code(2)
        .stderr_has("secret API_TOKEN named in env.secret is not set");
    assert!(!trap.was_called());
}

/// A config in a scratch git repository with a Dockerfile, and hoist run in it.
fn scratch(config: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    common::repo_with(&[("hoist.yaml", config), ("Dockerfile", "FROM scratch\n")])
}

const MINIMAL: &str = "app: web\ntargets:\n  tags: {Env: [a]}\n";

#[test]
fn a_nul_in_env_clear_is_refused_with_its_field() {
    let (_tmp, root) = scratch(&format!("{MINIMAL}env:\n  clear:\n    MODE: \"pr\\0od\"\n"));
    let trap = DockerTrap::new();
    for cmd in [&["validate"][..], &["plan"], &["deploy", "--local"]] {
        run_in(&root, &trap, cmd)
            .code(2)
            .stderr_has("hoist.yaml:6:11: env.clear.MODE: contains U+0000 (NUL)")
            // The report escapes it.
            .stderr_lacks("\0");
    }
    assert!(!trap.was_called());
}

#[test]
fn hidden_characters_are_refused_in_every_string_even_unknown_keys() {
    let trap = DockerTrap::new();
    let fields = [
        ("app: \"w\\eb\"\ntargets:\n  tags: {Env: [a]}\n", "app"),
        (
            "app: web\nregion: \"us-east-1\\u2066\"\ntargets:\n  tags: {Env: [a]}\n",
            "region",
        ),
        (
            "app: web\ntargets:\n  tags: {\"Env\\t\\x1b\": [a]}\n",
            "targets.tags.Env\t\\u{1b}",
        ),
        (
            "app: web\ntargets:\n  tags: {Env: [\"a\\x9b\"]}\n",
            "targets.tags.Env[0]",
        ),
        (
            "app: web\ntargets:\n  tags: {Env: [a]}\nhealthcheck:\n  path: \"/h\\u202D\"\n",
            "healthcheck.path",
        ),
        (
            "app: web\ntargets:\n  tags: {Env: [a]}\nimage:\n  tags: [\"v1\\r\"]\n",
            "image.tags[0]",
        ),
        (
            "app: web\ntargets:\n  tags: {Env: [a]}\nextra:\n  deep: [{x: \"\\a\"}]\n",
            "extra.deep[0].x",
        ),
    ];
    for (text, field) in fields {
        let (_tmp, root) = scratch(text);
        let run = run_in(&root, &trap, &["validate"]);
        run.code(2).stderr_has(format!(": {field}: contains U+"));
        assert!(
            !run.stderr
                .contains(['\u{1b}', '\r', '\u{9b}', '\u{202d}', '\u{2066}', '\u{7}']),
            "the report itself never prints them raw:\n{}",
            run.stderr
        );
    }
}

#[test]
fn a_multi_line_command_is_still_accepted() {
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}container:\n  command: |\n    set -e\n    exec httpd -f\n"
    ));
    let trap = DockerTrap::new();
    run_in(&root, &trap, &["validate"]).success();
}

#[test]
fn ssm_parameter_references_are_refused_with_a_hint() {
    let trap = DockerTrap::new();
    for (value, field) in [
        (
            "container:\n  command: [sh, -c, \"{{ssm:/pw}}\"]\n",
            "container.command[2]",
        ),
        (
            "container:\n  labels: {a: \"{{  SSM-Secure:/pw }}\"}\n",
            "container.labels.a",
        ),
        (
            "env:\n  clear: {A: \"x{{resolve:ssm:/pw}}\"}\n",
            "env.clear.A",
        ),
        (
            "container:\n  volumes: [\"{{ssm:/v}}:/data\"]\n",
            "container.volumes[0]",
        ),
    ] {
        let (_tmp, root) = scratch(&format!("{MINIMAL}{value}"));
        run_in(&root, &trap, &["plan"])
            .code(2)
            .stderr_has(format!(": {field}: `{{{{"))
            // The hint.
            .stderr_has("env.secret")
            .stdout_is_empty();
    }
    // Other braces are fine.
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}env:\n  clear: {{TPL: \"{{{{ .Name }}}}\"}}\n"
    ));
    run_in(&root, &trap, &["validate"]).success();
}

#[test]
fn durations_beyond_48_hours_are_exit_2_not_a_panic() {
    let trap = DockerTrap::new();
    for (section, field) in [
        (
            "container:\n  stop_timeout: 4294967296h\n",
            "container.stop_timeout",
        ),
        (
            "healthcheck:\n  timeout: 99999999999s\n",
            "healthcheck.timeout",
        ),
        (
            "healthcheck:\n  start_period: 48h1s\n",
            "healthcheck.start_period",
        ),
        (
            "healthcheck:\n  timeout: 30h\n  start_period: 18h\n",
            "healthcheck.timeout",
        ),
    ] {
        let (_tmp, root) = scratch(&format!("{MINIMAL}{section}"));
        for cmd in [&["validate"][..], &["plan", "--format", "json"]] {
            run_in(&root, &trap, cmd)
                .code(2)
                .stderr_has(format!(": {field}: "))
                .stderr_has("48h")
                .stderr_lacks("panicked");
        }
    }
}

/// A blue-green switch (drain, post-switch check) counts in the run's budget: a health
/// budget that fits with recreate does not with blue-green.
#[test]
fn the_blue_green_switch_counts_in_the_48_hour_budget() {
    let trap = DockerTrap::new();
    let health = "container:\n  publish: 80\nhealthcheck:\n  timeout: 47h30m\n";
    let (_tmp, root) = scratch(&format!("{MINIMAL}{health}"));
    run_in(&root, &trap, &["validate"]).success();
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}{health}strategy: blue-green\nblue_green:\n  drain: 10m\n  \
         post_switch_check: 10m\n"
    ));
    run_in(&root, &trap, &["validate"])
        .code(2)
        .stderr_has("hoist.yaml:7:3: healthcheck.timeout: ")
        .stderr_has(
            "healthcheck.timeout + healthcheck.start_period + container.stop_timeout + \
             blue_green.drain + blue_green.post_switch_check + 10m for pull and prune \
             (48h10s) is more than 48h",
        );
    assert!(!trap.was_called());
}

/// A valid blue-green config: its defaults, in `validate`'s words and the plan's JSON.
#[test]
fn a_blue_green_config_is_valid_with_its_defaults() {
    let trap = DockerTrap::new();
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}strategy: blue-green\ncontainer:\n  publish: 8080\n"
    ));
    run_in(&root, &trap, &["validate"])
        .success()
        .stdout_has("blue-green strategy");
    let plan = run_in(&root, &trap, &["plan", "--format", "json"])
        .success()
        .json();
    assert_eq!(plan["strategy"], "blue-green");
    assert_eq!(
        plan["blue_green"],
        serde_json::json!({
            "nginx_conf": "/etc/nginx/conf.d/hoist-web.conf",
            "listen": 8080,
            "ports": [18080, 28080],
            "post_switch_check": "10s",
            "drain": "10s",
            "install_proxy": false,
            "proxy": {"max_body": null, "read_timeout": "1h", "ipv6": true},
        })
    );
    assert!(!trap.was_called());
}

#[test]
fn unquoted_numbers_and_booleans_keep_their_exact_text() {
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}env:\n  clear:\n    A: 1.10\n    B: 0123\n    C: off\n    D: yes\n    \
         E: 0x1F\n    F: 1e3\n    G: -0.0\n    H: True\ncontainer:\n  labels:\n    version: \
         1.10\n    flag: off\nimage:\n  build_args:\n    VERSION: 1.10\n    MODE: 0123\n"
    ));
    let trap = DockerTrap::new();
    let plan = run_in(&root, &trap, &["plan", "--format", "json"])
        .success()
        .json();
    let clear = &plan["env"]["clear"];
    for (k, v) in [
        ("A", "1.10"),
        ("B", "0123"),
        ("C", "off"),
        ("D", "yes"),
        ("E", "0x1F"),
        ("F", "1e3"),
        ("G", "-0.0"),
        ("H", "True"),
    ] {
        assert_eq!(clear[k], v, "env.clear.{k}");
    }
    let script = common::run_phase(&plan)["script"]["text"].as_str().unwrap();
    assert!(script.contains("'version=1.10'"), "{script}");
    assert!(script.contains("'flag=off'"), "{script}");
    let build = step_of(&plan, "build");
    assert_eq!(build["build_args"]["VERSION"], "1.10");
    assert_eq!(build["build_args"]["MODE"], "0123");
}

#[test]
fn an_aliased_number_keeps_the_text_of_its_anchor() {
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}image:\n  build_args:\n    V: &v 1.10\nenv:\n  clear:\n    V: *v\n"
    ));
    let trap = DockerTrap::new();
    let plan = run_in(&root, &trap, &["plan", "--format", "json"])
        .success()
        .json();
    assert_eq!(plan["env"]["clear"]["V"], "1.10");
    assert_eq!(step_of(&plan, "build")["build_args"]["V"], "1.10");
}

/// The plan's step of that kind.
fn step_of<'a>(plan: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} step: {}", plan["steps"]))
}

/// Runs hoist with a hard timeout: a config that hangs it fails the test, not the suite.
fn run_with_timeout(dir: &std::path::Path, args: &[&str]) -> Run {
    Hoist::new()
        .current_dir(dir)
        .args(args)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("CI")
        .timeout(Duration::from_secs(20))
        .run()
}

#[test]
fn a_fifo_as_the_config_file_is_refused_without_waiting_for_a_writer() {
    let (_tmp, root) = common::repo_with(&[("Dockerfile", "FROM scratch\n")]);
    let fifo = root.join("hoist.yaml");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    for cmd in [&["validate"][..], &["plan"], &["deploy", "--local"]] {
        run_with_timeout(&root, cmd)
            .code(2)
            .stderr_has("config file hoist.yaml is a FIFO (named pipe), not a regular file");
    }
}

#[test]
fn dev_zero_as_the_config_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    run_with_timeout(dir.path(), &["validate", "-f", "/dev/zero"])
        .code(2)
        .stderr_has("config file /dev/zero is a character device, not a regular file");
    run_with_timeout(dir.path(), &["plan", "-f", "/tmp"])
        .code(2)
        .stderr_has("is a directory");
}

#[test]
fn a_config_file_over_1_mib_is_refused() {
    let mut big = String::from(MINIMAL);
    while big.len() <= 1 << 20 {
        big.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    let (_tmp, root) = scratch(&big);
    run_with_timeout(&root, &["validate"])
        .code(2)
        .stderr_has("larger than 1048576 bytes (1 MiB)");
}

#[test]
fn a_missing_dockerfile_is_exit_2_before_any_docker_call() {
    let (_tmp, root) = common::repo_with(&[(
        "hoist.yaml",
        "app: web\ntargets:\n  tags: {Env: [a]}\nimage:\n  dockerfile: docker/Dockerfile.prod\n",
    )]);
    let trap = DockerTrap::new();
    for cmd in [&["plan"][..], &["deploy", "--local"], &["deploy"]] {
        run_in(&root, &trap, cmd).code(2).stderr_has(
            "hoist.yaml:5:15: image.dockerfile: the Dockerfile `docker/Dockerfile.prod` \
             is not in the build context",
        );
    }
    // The default Dockerfile, not named in the config: still named, without a line.
    std::fs::write(root.join("hoist.yaml"), MINIMAL).unwrap();
    run_in(&root, &trap, &["deploy", "--local"])
        .code(2)
        .stderr_has("hoist.yaml: image.dockerfile: the Dockerfile `Dockerfile`");
    assert!(!trap.was_called(), "nothing was built");
}

#[test]
fn with_image_no_dockerfile_is_needed() {
    let (_tmp, root) = common::repo_with(&[("hoist.yaml", MINIMAL)]);
    let trap = DockerTrap::new();
    run_in(
        &root,
        &trap,
        &["deploy", "--local", "--dry-run", "--image", "busybox:1.36"],
    )
    .success();
    assert!(!trap.was_called());
}

#[test]
fn a_missing_context_directory_is_named_as_missing_not_as_outside_git() {
    let (_tmp, root) = common::repo_with(&[(
        "hoist.yaml",
        "app: web\ntargets:\n  tags: {Env: [a]}\nimage:\n  context: ./app\n",
    )]);
    let trap = DockerTrap::new();
    for cmd in [
        &["validate"][..],
        &["plan"],
        &["deploy", "--local", "--image", "busybox:1.36"],
    ] {
        run_in(&root, &trap, cmd)
            .code(2)
            .stderr_has(
                "hoist.yaml:5:12: image.context: the build context directory ./app does not exist",
            )
            .stderr_lacks("git repository");
    }
}

#[test]
fn a_secret_payload_over_the_ssm_parameter_limit_is_exit_2_before_any_docker_call() {
    // `standard` forbids the advanced tier: 4096 bytes at most.
    let (_tmp, root) = scratch(&format!(
        "{MINIMAL}env:\n  secret: [A, B]\nsecrets:\n  tier: standard\n"
    ));
    let trap = DockerTrap::new();
    Hoist::new()
        .current_dir(&root)
        .arg("deploy")
        .env("DOCKER_HOST", &trap.url)
        .env("A", "x".repeat(3000))
        .env("B", "y".repeat(1100))
        .run()
        .code(2)
        .stderr_has("the secret env (A, B) is 4106 bytes as NAME=value lines");
    // Any tier: 8192 bytes at most.
    let (_tmp, root) = scratch(&format!("{MINIMAL}env:\n  secret: [A, B]\n"));
    Hoist::new()
        .current_dir(&root)
        .arg("deploy")
        .env("DOCKER_HOST", &trap.url)
        .env("A", "x".repeat(6000))
        .env("B", "y".repeat(3000))
        .run()
        .code(2)
        .stderr_has("at most 8192")
        // Never a value.
        .stderr_lacks("xxxx");
    assert!(!trap.was_called(), "nothing was built or pushed");
}

#[test]
fn a_secret_line_over_dockers_env_file_limit_is_exit_2_before_any_docker_call() {
    let (_tmp, root) = scratch(&format!("{MINIMAL}env:\n  secret: [CERT]\n"));
    let trap = DockerTrap::new();
    Hoist::new()
        .current_dir(&root)
        .args(["deploy", "--local"])
        .env("DOCKER_HOST", &trap.url)
        .env("CERT", "z".repeat(70_000))
        .run()
        .code(2)
        .stderr_has("secret CERT: the env line CERT=… is 70005 bytes");
    assert!(!trap.was_called());
}

#[test]
fn an_env_clear_line_over_dockers_env_file_limit_is_refused() {
    let long = "v".repeat(70_000);
    let (_tmp, root) = scratch(&format!("{MINIMAL}env:\n  clear:\n    BIG: {long}\n"));
    let trap = DockerTrap::new();
    run_in(&root, &trap, &["validate"])
        .code(2)
        .stderr_has("env.clear.BIG: the env line `BIG=…` is 70004 bytes");
}

#[test]
fn a_non_utf8_secret_is_named_as_such_not_as_unset() {
    use std::os::unix::ffi::OsStrExt as _;
    let (_tmp, root) = scratch(&format!("{MINIMAL}env:\n  secret: [TOKEN]\n"));
    let trap = DockerTrap::new();
    Hoist::new()
        .current_dir(&root)
        .args(["deploy", "--local"])
        .env("DOCKER_HOST", &trap.url)
        .env("TOKEN", std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .run()
        .code(2)
        .stderr_has("secret TOKEN is set in hoist's environment, but its value is not valid UTF-8");
    assert!(!trap.was_called());
}

#[test]
fn an_empty_config_names_only_the_required_fields() {
    let (_tmp, root) = scratch("# nothing yet\n");
    std::fs::write(root.join("hoist.yaml"), "").unwrap();
    let trap = DockerTrap::new();
    run_in(&root, &trap, &["validate"])
        .code(2)
        .stderr_has("the file is empty: a hoist.yaml needs at least `app` and `targets`")
        .stderr_lacks("`container`");
}

#[test]
fn a_syntax_error_after_multibyte_characters_points_at_its_column() {
    // The error is the `]` at character 20 of line 2 (byte 24: "é" and "ü" are 2 bytes,
    // "→" is 3).
    let (_tmp, root) = scratch("app: web\nx: \"éü→\" ]\ntargets:\n  tags: {Env: [a]}\n");
    let trap = DockerTrap::new();
    let run = run_in(&root, &trap, &["validate"]);
    run.code(2).stderr_has("YAML syntax");
    let marked = run
        .stderr
        .lines()
        .skip_while(|l| !l.contains("x: \"éü→\" ]"))
        .nth(1)
        .unwrap_or_else(|| panic!("no snippet:\n{}", run.stderr));
    // The marker sits under the `]` (column 10 of `x: "éü→" ]`), counted in characters.
    let source = run
        .stderr
        .lines()
        .find(|l| l.contains("x: \"éü→\" ]"))
        .unwrap();
    let bracket = source.chars().position(|c| c == ']').unwrap();
    let marker = marked
        .chars()
        .position(|c| c == '┬' || c == '▲' || c == '^');
    assert_eq!(
        marker,
        Some(bracket),
        "\n{source}\n{marked}\n{}",
        run.stderr
    );
}

#[test]
fn an_image_flag_with_hidden_characters_or_ssm_references_is_refused() {
    let (_tmp, root) = scratch(MINIMAL);
    let trap = DockerTrap::new();
    for (uri, why) in [
        ("reg/app:{{ssm:/tag}}", "is an SSM parameter reference"),
        ("reg/app:v1\u{1b}[8m", "contains U+001B (ESC)"),
    ] {
        run_in(&root, &trap, &["deploy", "--dry-run", "--image", uri])
            .code(2)
            .stderr_has(why)
            .stderr_lacks("\u{1b}")
            .stdout_is_empty();
    }
    assert!(!trap.was_called());
}

/// `validate --format json`: the verdict on stdout as JSON; when invalid, every error with
/// its file, line, column, field and message, exit 2, and nothing on stderr to parse.
#[test]
fn validate_as_json_reports_the_verdict_and_every_error() {
    let (_tmp, root) = scratch(GOOD);
    let trap = DockerTrap::new();
    let good = run_in(&root, &trap, &["validate", "--format", "json"]);
    let json = good.success().json();
    assert_eq!(json["file"], "hoist.yaml");
    assert_eq!(json["valid"], true);
    assert_eq!(json["app"], "web");
    assert_eq!(json["strategy"], "recreate");

    std::fs::write(
        root.join("hoist.yaml"),
        "app: Bad!\ntargets:\n  instance_ids: [nope]\ncontainer:\n  port: 0\nretian: 2\n",
    )
    .unwrap();
    let bad = run_in(&root, &trap, &["validate", "--format", "json"]);
    let json = bad.code(2).json();
    assert_eq!(json["valid"], false, "{json}");
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4, "{json}");
    let port = errors
        .iter()
        .find(|e| e["field"] == "container.port")
        .unwrap_or_else(|| panic!("container.port: {json}"));
    assert_eq!(port["file"], "hoist.yaml");
    assert_eq!(port["line"], 5);
    assert_eq!(port["column"], 9);
    assert!(
        port["message"].as_str().unwrap().contains("1-65535"),
        "{port}"
    );
    let unknown = errors.iter().find(|e| e["field"] == "retian").unwrap();
    assert!(
        unknown["help"].as_str().unwrap().contains("retain"),
        "{unknown}"
    );
    assert!(bad.stderr.is_empty(), "{}", bad.stderr);

    // A file that cannot be read is an error without a place in it.
    let missing = run_in(
        &root,
        &trap,
        &["validate", "-f", "nope.yaml", "--format", "json"],
    );
    let json = missing.code(2).json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"][0]["line"], serde_json::Value::Null);
    assert!(
        json["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot read config file nope.yaml"),
        "{json}"
    );
    assert!(!trap.was_called());
}

/// Each problem's message is printed once: on its `file:line:column: field:` headline, not
/// again inside the snippet drawn under it (which still marks the place and gives the help).
#[test]
fn each_config_error_message_is_printed_once() {
    let (_tmp, root) =
        scratch("app: Bad!\ntargets:\n  instance_ids: [nope]\ncontainer:\n  port: 0\nretian: 2\n");
    let trap = DockerTrap::new();
    let run = run_in(&root, &trap, &["validate"]);
    run.code(2);
    let messages: Vec<String> = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("error: hoist.yaml:"))
        .map(|l| {
            // `line:column: field: message`
            l.splitn(3, ": ").nth(2).unwrap().to_owned()
        })
        .collect();
    assert_eq!(messages.len(), 4, "{}", run.stderr);
    for message in &messages {
        assert_eq!(
            run.stderr.matches(message.as_str()).count(),
            1,
            "`{message}` is printed other than once:\n{}",
            run.stderr
        );
    }
    // The snippets are still drawn, with the help.
    assert_eq!(run.stderr.matches("╰── here").count(), 4, "{}", run.stderr);
    assert!(run.stderr.contains("5 │   port: 0"), "{}", run.stderr);
    assert!(
        run.stderr.contains("did you mean `retain`"),
        "{}",
        run.stderr
    );
}

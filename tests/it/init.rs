//! `hoist init`: the file it writes validates, for several Dockerfiles; its values come from
//! the Dockerfile, the git remote (else the directory's name) and the flags; it never
//! overwrites a file, and a refused flag writes nothing.

use crate::common::{self, Hoist};

use std::path::Path;

fn init_in(dir: &Path, args: &[&str]) -> common::Run {
    Hoist::new().current_dir(dir).arg("init").args(args).run()
}

fn validate(dir: &Path, file: &str) -> serde_json::Value {
    let run = Hoist::new()
        .current_dir(dir)
        .args(["validate", "-f", file, "--format", "json"])
        .run();
    run.success();
    run.json()
}

/// The first line of `text` that starts (after its indentation) with `key: `, its value
/// without the comment.
fn value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix(key)?.strip_prefix(": ")?;
        Some(rest.split(" #").next().unwrap().trim())
    })
}

#[test]
fn init_then_validate_passes_for_several_dockerfiles() {
    // (Dockerfile, the port and health path the file must hold, a word its comments say)
    let cases: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "FROM busybox\nEXPOSE 8080\nHEALTHCHECK --interval=2s CMD wget -q -O- \
             http://127.0.0.1:8080/healthz || exit 1\nCMD [\"httpd\"]\n",
            "8080",
            Some("/healthz"),
            "from the Dockerfile's HEALTHCHECK",
        ),
        (
            "FROM node:22 AS build\nEXPOSE 9229\nRUN npm ci\n\nFROM node:22-slim\nARG PORT=3000\n\
             ENV NODE_ENV=production\nEXPOSE ${PORT}/tcp 9090\n\
             HEALTHCHECK CMD [\"curl\", \"-f\", \"http://localhost:3000/up\"]\n",
            "3000",
            Some("/up"),
            "the first of its ports",
        ),
        (
            "FROM postgres:16\nexpose 5432\nhealthcheck --interval=5s \\\n  cmd pg_isready -U app\n",
            "5432",
            None,
            "runs a command, not an HTTP request",
        ),
        (
            "FROM nginx\n# EXPOSE 1234\nHEALTHCHECK NONE\n",
            "80",
            None,
            "hoist's default: the Dockerfile EXPOSEs no TCP port",
        ),
    ];
    for (dockerfile, port, health, says) in cases {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("Shop_API");
        std::fs::create_dir(&app).unwrap();
        std::fs::write(app.join("Dockerfile"), dockerfile).unwrap();
        init_in(&app, &["--tags", "Env=staging"])
            .success()
            .stderr_has("wrote hoist.yaml");
        let text = std::fs::read_to_string(app.join("hoist.yaml")).unwrap();
        let json = validate(&app, "hoist.yaml");
        assert_eq!(json["valid"], true, "{text}");
        assert_eq!(json["app"], "shop-api", "the directory's name:\n{text}");
        assert_eq!(value(&text, "port"), Some(*port), "{dockerfile}\n{text}");
        assert_eq!(value(&text, "path"), *health, "{dockerfile}\n{text}");
        if health.is_none() {
            assert!(
                text.contains("# healthcheck:\n#   path: /healthz\n"),
                "a commented suggestion:\n{text}"
            );
        }
        assert!(text.contains(says), "{dockerfile}\n{text}");
    }
}

#[test]
fn the_app_is_named_after_the_git_remote_and_flags_set_the_rest() {
    let (_keep, root) = common::repo_with(&[("Dockerfile", "FROM scratch\nEXPOSE 8000\n")]);
    common::git(
        &root,
        &[
            "remote",
            "add",
            "origin",
            "git@example.test:acme/Web-Shop.git",
        ],
    );
    init_in(&root, &[]).success();
    let text = std::fs::read_to_string(root.join("hoist.yaml")).unwrap();
    assert_eq!(validate(&root, "hoist.yaml")["app"], "web-shop", "{text}");
    assert!(text.contains("from the git remote origin"), "{text}");

    // Into another file, with every flag: the targets, the app, the port, the strategy.
    init_in(
        &root,
        &[
            "-f",
            "deploy.yaml",
            "--app",
            "shop",
            "--port",
            "9000",
            "--strategy",
            "blue-green",
            "--instance-ids",
            "i-0123456789abcdef0,i-01234567",
            "--tags",
            "Env=prod",
            "--tags",
            "Env=canary",
        ],
    )
    .success();
    let text = std::fs::read_to_string(root.join("deploy.yaml")).unwrap();
    let json = validate(&root, "deploy.yaml");
    assert_eq!(json["app"], "shop");
    assert_eq!(json["strategy"], "blue-green");
    assert_eq!(value(&text, "port"), Some("9000"), "{text}");
    assert!(text.contains("Env: [prod, canary]"), "{text}");
    assert!(text.contains("- i-0123456789abcdef0\n"), "{text}");
    assert!(text.contains("- i-01234567\n"), "{text}");
}

#[test]
fn init_never_overwrites_and_a_refused_flag_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("Dockerfile"), "FROM scratch\nEXPOSE 80\n").unwrap();
    std::fs::write(root.join("hoist.yaml"), "app: mine\n").unwrap();
    init_in(root, &["--tags", "Env=staging"])
        .code(2)
        .stderr_has("hoist.yaml")
        .stderr_has("exists already")
        .stdout_is_empty();
    assert_eq!(
        std::fs::read_to_string(root.join("hoist.yaml")).unwrap(),
        "app: mine\n",
        "the file is unchanged"
    );

    for (args, says) in [
        (
            &["--instance-ids", "i-bad"][..],
            "`i-bad` is not an EC2 instance id",
        ),
        (&["--tags", "Env"][..], "is not KEY=VALUE"),
        (&["--app", "Shop!"][..], "is not an app name"),
        (&["--port", "0"][..], "--port"),
    ] {
        let run = init_in(root, &[&["-f", "new.yaml"][..], args].concat());
        run.code(2).stderr_has(says);
        assert!(!root.join("new.yaml").exists(), "{args:?}: nothing written");
    }
}

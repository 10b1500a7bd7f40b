//! The rough edges a new user hits in the first ten minutes (issue 22): each one as the user
//! met it, through the binary.

use std::path::{Path, PathBuf};

use crate::common;

use common::{DockerTrap, Hoist, Run};

/// The example app (examples/hello), committed in a scratch repository.
fn example_repo() -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = common::example_app();
    common::git(&root, &["add", "-A"]);
    common::git(&root, &["commit", "-q", "-m", "test"]);
    (dir, root)
}

fn plan(root: &Path, args: &[&str]) -> Run {
    let trap = DockerTrap::new();
    Hoist::new()
        .current_dir(root)
        .arg("plan")
        .args(args)
        .env("DOCKER_HOST", &trap.url)
        .env("HELLO_API_TOKEN", "s3cr3t")
        .run()
}

/// A pipe whose reader is already gone, as after `| head -1` has read its line or `less`
/// was quit: every write to it fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn a_reader_that_goes_away_ends_hoist_quietly() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    for args in [
        &["plan"][..],
        &["plan", "--format", "json"],
        &["validate"],
        &["completions", "bash"],
    ] {
        let run = Hoist::new()
            .current_dir(&root)
            .args(args)
            .env("DOCKER_HOST", &trap.url)
            .env("HELLO_API_TOKEN", "s3cr3t")
            .stdout(closed_pipe())
            .run();
        run.success()
            .stderr_lacks("panicked")
            .stderr_lacks("Broken pipe");
    }
    // Nor does a closed stderr (`2>&1 | head -1`) turn an error into a panic (exit 101).
    Hoist::new()
        .args(["validate", "-f", "nope.yaml"])
        .stderr(closed_pipe())
        .run()
        .code(2);
    // The plan itself is still whole when someone reads it.
    plan(&root, &[]).success().stdout_has("hello");
}

fn scratch(config: &str) -> (tempfile::TempDir, PathBuf) {
    common::repo_with(&[("hoist.yaml", config), ("Dockerfile", "FROM scratch\n")])
}

#[test]
fn restart_no_unquoted_is_the_policy_no() {
    let (_tmp, root) =
        scratch("app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  restart: no\n");
    plan(&root, &["--format", "json"])
        .success()
        .stdout_has("HOIST_RESTART='no'");
    let (_tmp, root) =
        scratch("app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  restart: \"no\"\n");
    plan(&root, &["--format", "json"])
        .success()
        .stdout_has("HOIST_RESTART='no'");
    // `yes` (true) has no reading as a policy: refused, naming where.
    let (_tmp, root) =
        scratch("app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  restart: yes\n");
    plan(&root, &[])
        .code(2)
        .stderr_has("hoist.yaml:5:12: container.restart");
}

#[test]
fn a_variable_in_a_clear_value_is_refused_unless_escaped() {
    let (_tmp, root) = scratch(
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear:\n    DB_URL: \"postgres://${DB_HOST}:5432\"\n",
    );
    plan(&root, &[])
        .code(2)
        .stderr_has("hoist.yaml:6:13: env.clear.DB_URL")
        .stderr_has("`${DB_HOST}` looks like a variable, but hoist does not interpolate")
        .stderr_has("`$${DB_HOST}`");
    Hoist::new()
        .current_dir(&root)
        .args(["validate", "--format", "json"])
        .run()
        .code(2)
        .stdout_has("env.clear.DB_URL");
    let (_tmp, root) = scratch(
        "app: web\ntargets:\n  tags: {Env: [a]}\nenv:\n  clear:\n    TEMPLATE: \"$${HOME}/x\"\n    PRICE: 5$\n",
    );
    plan(&root, &[])
        .success()
        .stdout_has("TEMPLATE=${HOME}/x")
        .stdout_has("PRICE=5$");
}

#[test]
fn validate_refuses_a_missing_dockerfile_as_plan_does() {
    let (_tmp, root) = common::repo_with(&[(
        "hoist.yaml",
        "app: web\ntargets:\n  tags: {Env: [a]}\nimage:\n  dockerfile: build/Dockerfile\n",
    )]);
    let refused = |args: &[&str]| {
        let run = Hoist::new().current_dir(&root).args(args).run();
        run.code(2).stderr_has("build/Dockerfile");
        run
    };
    refused(&["plan"]);
    refused(&["validate"]).stdout_is_empty();
    let json = Hoist::new()
        .current_dir(&root)
        .args(["validate", "--format", "json"])
        .run();
    json.code(2);
    let json = json.json();
    assert_eq!(json["valid"], false);
    assert_eq!(json["errors"][0]["field"], "image.dockerfile", "{json}");
    std::fs::create_dir(root.join("build")).unwrap();
    std::fs::write(root.join("build/Dockerfile"), "FROM scratch\n").unwrap();
    Hoist::new()
        .current_dir(&root)
        .args(["validate"])
        .run()
        .success()
        .stdout_has("hoist.yaml is valid");
}

#[test]
fn a_dry_run_needs_no_secret_values_and_a_deploy_still_does() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let deploy = |args: &[&str]| {
        Hoist::new()
            .current_dir(&root)
            .args(["deploy", "--local"])
            .args(args)
            .env("DOCKER_HOST", &trap.url)
            .env_remove("HELLO_API_TOKEN")
            .run()
    };
    deploy(&["--dry-run"])
        .success()
        .stdout_has("HELLO_API_TOKEN")
        .stderr_has("secret HELLO_API_TOKEN: <not set>");
    deploy(&[])
        .code(2)
        .stderr_has("HELLO_API_TOKEN named in env.secret is not set");
    assert!(!trap.was_called(), "neither run may reach Docker");
}

#[test]
fn a_man_page_and_completions_for_every_shell_clap_offers() {
    Hoist::new()
        .arg("man")
        .run()
        .success()
        .stdout_has(".TH hoist 1")
        .stdout_has("hoist\\-deploy(1)");
    let dir = tempfile::tempdir().unwrap();
    Hoist::new()
        .args(["man", "--out-dir"])
        .arg(dir.path())
        .run()
        .success();
    for page in [
        "hoist.1",
        "hoist-deploy.1",
        "hoist-lock-status.1",
        "hoist-man.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.starts_with(".ie"), "{page}: {text}");
    }
    Hoist::new()
        .args(["man", "--out-dir", "/nonexistent/man1"])
        .run()
        .code(2)
        .stderr_has("cannot write /nonexistent/man1");
    // Every shell clap_complete can write is named in the help, with its install line.
    let help = Hoist::new().args(["completions", "--help"]).run();
    help.success();
    let long = Hoist::new().arg("--help").run();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        Hoist::new().args(["completions", shell]).run().success();
        help.stdout_has(format!("hoist completions {shell} >"));
        long.stdout_has(shell);
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        assert!(
            readme.contains(&format!("hoist completions {shell} >")),
            "README.md has no install line for {shell}"
        );
    }
}

#[test]
fn hoist_yaml_is_found_in_a_parent_up_to_the_git_root() {
    let (_tmp, root) = example_repo();
    let sub = root.join("deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let run = Hoist::new()
        .current_dir(&sub)
        .args(["plan", "-v"])
        .env("HELLO_API_TOKEN", "s3cr3t")
        .run();
    run.success()
        .stdout_has("hello")
        .stderr_has("config: ../../hoist.yaml");
    // Without --verbose, not a word about it; validate names the file it used.
    Hoist::new()
        .current_dir(&sub)
        .arg("validate")
        .run()
        .success()
        .stdout_has("../../hoist.yaml is valid")
        .stderr_lacks("config:");
    // Not past the repository's root: a hoist.yaml above it is someone else's.
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(
        outer.path().join("hoist.yaml"),
        "app: outer\ntargets:\n  tags: {Env: [a]}\n",
    )
    .unwrap();
    let repo = outer.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    common::git(&repo, &["init", "-q"]);
    Hoist::new()
        .current_dir(&repo)
        .arg("validate")
        .run()
        .code(2)
        .stderr_has("cannot read config file hoist.yaml");
}

#[test]
fn dash_f_dash_reads_the_config_from_stdin() {
    let (_tmp, root) = example_repo();
    let stdin = |path: &Path| std::fs::File::open(path).unwrap();
    Hoist::new()
        .current_dir(&root)
        .args(["validate", "-f", "-"])
        .stdin(stdin(&root.join("hoist.yaml")))
        .run()
        .success()
        .stdout_has("<stdin> is valid: app hello");
    Hoist::new()
        .current_dir(&root)
        .args(["plan", "-f", "-", "--format", "json"])
        .env("HELLO_API_TOKEN", "s3cr3t")
        .stdin(stdin(&root.join("hoist.yaml")))
        .run()
        .success();
    // Its relative paths are the current directory's: here there is no Dockerfile.
    let sub = root.join("elsewhere");
    std::fs::create_dir(&sub).unwrap();
    Hoist::new()
        .current_dir(&sub)
        .args(["validate", "-f", "-"])
        .stdin(stdin(&root.join("hoist.yaml")))
        .run()
        .code(2)
        .stderr_has("Dockerfile");
    // Errors name it as <stdin>, with line and column.
    std::fs::write(root.join("bad.yaml"), "app: web\ntargets:\n  tagz: {}\n").unwrap();
    Hoist::new()
        .current_dir(&root)
        .args(["validate", "-f", "-"])
        .stdin(stdin(&root.join("bad.yaml")))
        .run()
        .code(2)
        .stderr_has("<stdin>:3:3");
}

/// The example app in a repository without commits.
fn uncommitted_app() -> (tempfile::TempDir, PathBuf) {
    common::example_app()
}

fn hoist_in(root: &Path) -> Hoist {
    Hoist::new()
        .current_dir(root)
        .env("HELLO_API_TOKEN", "s3cr3t")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
}

#[test]
fn git_says_why_it_has_no_commit() {
    let (_tmp, root) = uncommitted_app();
    hoist_in(&root)
        .arg("plan")
        .run()
        .code(2)
        .stderr_has("has no commits yet")
        .stderr_lacks("not inside a git repository");
    std::fs::remove_dir_all(root.join(".git")).unwrap();
    hoist_in(&root)
        .arg("plan")
        .run()
        .code(2)
        .stderr_has("is not inside a git repository");
    // A repository another user owns (as root in a CI container, a checkout of the runner's
    // user): git's own reason, and the command that trusts it.
    let root_user = unsafe { libc::geteuid() } == 0;
    if !common::prerequisite(root_user, "root (to give the repository another owner)") {
        return;
    }
    common::git(&root, &["init", "-q"]);
    let chown = std::process::Command::new("chown")
        .args(["-R", "4321:4321"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(chown.success());
    let canonical = root.canonicalize().unwrap();
    hoist_in(&root)
        .arg("plan")
        .run()
        .code(2)
        .stderr_has("detected dubious ownership")
        .stderr_has(format!(
            "git config --global --add safe.directory {}",
            canonical.display()
        ))
        .stderr_lacks("not inside a git repository");
}

#[test]
fn a_release_or_an_image_given_needs_no_commit() {
    let (_tmp, root) = uncommitted_app();
    let digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let image = format!("registry.invalid/hello@sha256:{digest}");
    hoist_in(&root)
        .args(["plan", "--release", "r1"])
        .run()
        .success()
        .stdout_has("release r1")
        .stdout_has("commit unknown")
        .stdout_has("hello:r1");
    let json = hoist_in(&root)
        .args([
            "deploy",
            "--local",
            "--dry-run",
            "--format",
            "json",
            "--image",
        ])
        .arg(&image)
        .run();
    let json = json.success().json();
    assert_eq!(json["release"], "0123456789ab", "{json}");
    assert_eq!(json["revision"]["sha"], "unknown", "{json}");
    hoist_in(&root)
        .args([
            "deploy",
            "--local",
            "--dry-run",
            "--release",
            "r2",
            "--image",
        ])
        .arg(&image)
        .run()
        .success()
        .stdout_has("release r2");
    // A tag names no release: refused, saying what would.
    hoist_in(&root)
        .args([
            "deploy",
            "--local",
            "--dry-run",
            "--image",
            "registry.invalid/hello:1",
        ])
        .run()
        .code(2)
        .stderr_has("give --release ID");
}

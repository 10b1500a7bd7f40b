//! The README's first command, `./examples/quickstart.sh`, as a laptop runs it: by a user who
//! is not root, has the Rust toolchain on their own PATH and passwordless sudo. It builds as
//! that user (the build is theirs: nothing in the checkout belongs to root afterwards), the
//! deploy alone runs as root, the app answers, and `--remove` removes its containers,
//! images and state. Under sudo it refuses, before building, and says how to run it.
//!
//! Needs root (to make the user), a Docker engine, sudo and useradd: skipped with a reason
//! on a laptop without them, required in CI. It takes port 8080 and the app name `hello`, as
//! the quick start does, and builds hoist from a copy of this checkout (a cold build).

use crate::common;

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APP: &str = "hello";

/// A user made for the test, with passwordless sudo; removed (with its home and whatever
/// the quick start left) when the test ends, also when it fails.
struct User {
    name: String,
    home: PathBuf,
    sudoers: PathBuf,
}

impl User {
    fn new() -> User {
        let name = format!("hoist-qs-{}", std::process::id());
        let status = Command::new("useradd")
            .args(["--create-home", "--shell", "/bin/bash", &name])
            .status()
            .expect("useradd runs");
        assert!(status.success(), "useradd {name}");
        let sudoers = PathBuf::from(format!("/etc/sudoers.d/{name}"));
        std::fs::write(&sudoers, format!("{name} ALL=(ALL) NOPASSWD: ALL\n")).unwrap();
        chmod(&sudoers, 0o440);
        User {
            home: PathBuf::from(format!("/home/{name}")),
            name,
            sudoers,
        }
    }

    fn uid(&self) -> u32 {
        let out = Command::new("id")
            .args(["-u", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// `argv` as the user, in `dir`, in a login-like environment of its own: its home, the
    /// toolchain on its PATH, nothing of the test's (no `CARGO_TARGET_DIR`, no `CI`).
    fn run(&self, dir: &Path, argv: &[&str]) -> Output {
        let home = self.home.display().to_string();
        let out = Command::new("sudo")
            .args(["-u", &self.name, "env", "-i"])
            .arg(format!("HOME={home}"))
            .arg(format!("USER={}", self.name))
            .arg(format!("LOGNAME={}", self.name))
            .arg(format!(
                "PATH={home}/.toolchain/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            ))
            .arg(format!("CARGO_HOME={home}/.cargo"))
            // The crates are in its cargo home already (copied from this machine's): a CI
            // machine needs no registry for them.
            .arg("CARGO_NET_OFFLINE=true")
            .args(argv)
            .current_dir(dir)
            .output()
            .expect("sudo runs");
        eprintln!(
            "as {}: {argv:?} exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.name,
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for User {
    fn drop(&mut self) {
        remove_app();
        let _ = std::fs::remove_file(&self.sudoers);
        let _ = Command::new("userdel")
            .args(["--remove", "--force", &self.name])
            .output();
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// What the quick start makes, removed by hand (the test failed before `--remove` ran).
fn remove_app() {
    let ids = docker(&["ps", "-aq", "--filter", &format!("label=hoist.app={APP}")]);
    for id in ids.split_whitespace() {
        docker(&["rm", "-f", id]);
    }
    for image in docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", APP]).split_whitespace()
    {
        docker(&["rmi", image]);
    }
    let _ = Command::new("umount")
        .arg(format!("/run/hoist/{APP}"))
        .output();
    let _ = std::fs::remove_dir_all(format!("/var/lib/hoist/{APP}"));
    let _ = std::fs::remove_dir(format!("/run/hoist/{APP}"));
    let _ = std::fs::remove_file(format!("/run/hoist/{APP}.lock"));
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn sh(script: &str) {
    let out = Command::new("bash").args(["-c", script]).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

/// Gives the user this machine's Rust toolchain and the crates the build needs, as their own
/// (a rustup user's `~/.cargo` and toolchain): hard links where the filesystem allows, so
/// nothing of a gigabyte is copied, and the index copied (cargo writes there).
fn give_toolchain(user: &User) {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc runs");
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_owned();
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    let home = user.home.display();
    let name = &user.name;
    sh(&format!(
        "set -e
         cp -al '{sysroot}' '{home}/.toolchain' 2>/dev/null || cp -a '{sysroot}' '{home}/.toolchain'
         mkdir -p '{home}/.cargo/registry'
         cp -al '{cargo_home}/registry/cache' '{home}/.cargo/registry/' 2>/dev/null ||
           cp -a '{cargo_home}/registry/cache' '{home}/.cargo/registry/'
         cp -a '{cargo_home}/registry/index' '{home}/.cargo/registry/'
         find '{home}/.cargo' -type d -exec chown '{name}:' {{}} +
         chown -R '{name}:' '{home}/.cargo/registry/index'"
    ));
}

/// A copy of this checkout (its build output and .git aside) in the user's home, theirs,
/// committed as a fresh repository: the quick start names the release after the commit.
fn give_checkout(user: &User) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dest = user.home.join("hoist");
    std::fs::create_dir(&dest).unwrap();
    for entry in walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| !matches!(e.file_name().to_str(), Some("target" | ".git")))
    {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(root).unwrap();
        let to = dest.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    sh(&format!("chown -R '{0}:' '{1}'", user.name, dest.display()));
    for args in [
        &["git", "init", "-q", "-b", "main"][..],
        &["git", "add", "-A"],
        &[
            "git",
            "-c",
            "user.name=hoist-test",
            "-c",
            "user.email=test@hoist.invalid",
            "commit",
            "-q",
            "-m",
            "quick start",
        ],
    ] {
        assert!(user.run(&dest, args).status.success(), "{args:?}");
    }
    dest
}

/// Files under `dir` that `uid` does not own.
fn not_owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.metadata().is_ok_and(|m| m.uid() != uid))
        .map(|e| e.path().to_path_buf())
        .take(10)
        .collect()
}

#[test]
fn the_quickstart_runs_as_a_user_with_sudo_and_removes_what_it_made() {
    let root = unsafe { libc::geteuid() } == 0;
    let docker_up = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::prerequisite(
        root && docker_up
            && common::have_command("sudo")
            && common::have_command("useradd")
            && common::have_command("rustc"),
        "root, a Docker engine, sudo, useradd and rustc",
    ) {
        return;
    }
    remove_app();
    let user = User::new();
    give_toolchain(&user);
    let checkout = give_checkout(&user);
    let uid = user.uid();

    // Under sudo (root, called by the user) it refuses before building anything.
    let out = Command::new("./examples/quickstart.sh")
        .current_dir(&checkout)
        .env("SUDO_USER", &user.name)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("run it as yourself, without sudo"), "{said}");
    assert!(!checkout.join("target").exists(), "nothing was built");

    let out = user.run(&checkout, &["./examples/quickstart.sh"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the quick start failed (output above)"
    );
    assert!(
        stdout.contains("http://127.0.0.1:8080/version answers: 1.0.0"),
        "{stdout}"
    );
    let answer = Command::new("curl")
        .args(["-fsS", "http://127.0.0.1:8080/version"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "1.0.0");
    let last = stdout.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.ends_with("./examples/quickstart.sh --remove"),
        "it ends with the command that removes what it made: {last}"
    );
    let target = checkout.join("target");
    assert_eq!(
        std::fs::metadata(&target).map(|m| m.uid()).ok(),
        Some(uid),
        "target/ is the user's"
    );
    assert_eq!(
        not_owned_by(&checkout, uid),
        Vec::<PathBuf>::new(),
        "nothing in the checkout belongs to root"
    );
    let containers = docker(&["ps", "-q", "--filter", &format!("label=hoist.app={APP}")]);
    assert_eq!(containers.split_whitespace().count(), 1, "the app runs");

    let out = user.run(&checkout, &["./examples/quickstart.sh", "--remove"]);
    assert!(out.status.success(), "--remove failed (output above)");
    let left = docker(&["ps", "-aq", "--filter", &format!("label=hoist.app={APP}")]);
    assert!(left.trim().is_empty(), "containers left: {left}");
    let images = docker(&["images", "-q", APP]);
    assert!(images.trim().is_empty(), "images left: {images}");
    assert!(
        !Path::new("/var/lib/hoist").join(APP).exists(),
        "state left"
    );
    assert!(
        Command::new("curl")
            .args(["-fsS", "--max-time", "2", "http://127.0.0.1:8080/version"])
            .output()
            .is_ok_and(|o| !o.status.success()),
        "nothing answers on 8080 any more"
    );
}

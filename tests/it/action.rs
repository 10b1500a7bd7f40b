//! The GitHub Action (action.yml and action/*.sh), run step by step as GitHub's runner runs
//! it (tests/it/common/action.rs): hoist installed from the `path` input, from a release
//! (served by a local HTTP server standing in for GitHub's release downloads: the
//! test-built binary in a tarball, with SHA256SUMS), refused when the tarball does not match
//! its checksum, built from the action's checkout when a release has no binary for the
//! platform; at a commit sha or a branch, the release the action's tree records checked
//! against the tree's checksums, else the checkout built, never the latest release; the inputs reaching hoist as words, never as shell code; and, against the
//! emulated AWS fleet, a deploy with every output and the job summary.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use common::action::{Action, Context, Outcome, Val, parse_file_command, truthy};
use common::{git, hoist};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const REPOSITORY: &str = "hoist-dev/hoist";

fn hoist_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hoist")
}

/// The Rust target the action downloads for this machine.
fn target() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64-unknown-linux-gnu",
        "aarch64" => "aarch64-unknown-linux-gnu",
        other => panic!("no prebuilt hoist for {other}"),
    }
}

fn asset() -> String {
    format!("hoist-{VERSION}-{}.tar.gz", target())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A tarball as release.yml packs it (`hoist-V-TARGET/hoist`), of the test-built binary;
/// made once per test binary.
fn tarball() -> &'static [u8] {
    static TARBALL: OnceLock<Vec<u8>> = OnceLock::new();
    TARBALL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("hoist-{VERSION}-{}", target());
        std::fs::create_dir(dir.path().join(&name)).unwrap();
        std::fs::copy(hoist_bin(), dir.path().join(&name).join("hoist")).unwrap();
        let out = dir.path().join("out.tar.gz");
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .args(["--use-compress-program", "gzip -1", "-cf"])
            .arg(&out)
            .arg(&name)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(out).unwrap()
    })
}

/// What the server answers for a path.
#[derive(Clone)]
enum Route {
    File(Vec<u8>),
    /// A 302 to this path on the same server.
    Redirect(String),
}

/// An HTTP server on 127.0.0.1 in a thread, standing in for `github.server_url`: answers
/// GET with the routes' files and redirects (404 for anything else) and records each path
/// asked for. Stopped when dropped.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(routes: HashMap<String, Route>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, stop, url) = (requests.clone(), stop.clone(), url.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let _ = serve(conn, &routes, &requests, &url);
                }
            })
        };
        Server {
            url,
            requests,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    routes: &HashMap<String, Route>,
    requests: &Mutex<Vec<String>>,
    url: &str,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let path = first.split_whitespace().nth(1).unwrap_or("").to_owned();
    requests.lock().unwrap().push(path.clone());
    let mut conn = conn;
    match routes.get(&path) {
        Some(Route::File(body)) => {
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            conn.write_all(body)?;
        }
        Some(Route::Redirect(to)) => write!(
            conn,
            "HTTP/1.1 302 Found\r\nLocation: {url}{to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )?,
        None => write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
        )?,
    }
    conn.flush()
}

fn download(path: &str) -> String {
    format!("/{REPOSITORY}/releases/download/v{VERSION}/{path}")
}

/// A release v{VERSION} of {REPOSITORY}: the tarball `tarball` for this platform (none with
/// `None`), SHA256SUMS of `listed` (the real tarball unless a test says otherwise), and
/// `/releases/latest` leading to its tag.
fn release(tarball: Option<Vec<u8>>, sums: &str) -> Server {
    let mut routes = HashMap::new();
    if let Some(t) = tarball {
        routes.insert(download(&asset()), Route::File(t));
    }
    routes.insert(
        download("SHA256SUMS"),
        Route::File(sums.as_bytes().to_vec()),
    );
    routes.insert(
        format!("/{REPOSITORY}/releases/latest"),
        Route::Redirect(format!("/{REPOSITORY}/releases/tag/v{VERSION}")),
    );
    routes.insert(
        format!("/{REPOSITORY}/releases/tag/v{VERSION}"),
        Route::File(b"a release page".to_vec()),
    );
    Server::start(routes)
}

fn sums_of(tarball: &[u8]) -> String {
    // Another platform's line first: the action must pick its own exactly.
    format!(
        "{}  hoist-{VERSION}-riscv64gc-unknown-linux-gnu.tar.gz\n{}  {}\n",
        "0".repeat(64),
        sha256_hex(tarball),
        asset()
    )
}

/// A copy of examples/hello, committed, where the action's steps run.
fn app() -> (tempfile::TempDir, PathBuf) {
    let (dir, root) = common::example_app();
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-qm", "hello"]);
    (dir, root)
}

/// A `cargo` that records its arguments in `$STUB_CARGO_LOG` and "builds" hoist by linking
/// the test-built binary into `--root`/bin: what the action's source fallback runs.
fn stub_cargo(dir: &Path) -> PathBuf {
    let bin = dir.join("stub-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("cargo");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >\"$STUB_CARGO_LOG\"\nroot=\nwhile [ $# -gt 0 ]; do\n  \
         if [ \"$1\" = --root ]; then root=$2; fi\n  shift\ndone\n\
         mkdir -p \"$root/bin\" && ln -sf \"$STUB_HOIST\" \"$root/bin/hoist\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// The action as a remote action of {REPOSITORY} at `action_ref`, served by `server`, with a
/// stub cargo first on PATH (whose log is `cargo_log`), the actions cache off.
fn remote(server: &Server, action_ref: &str, scratch: &Path, workspace: &Path) -> Action {
    remote_at(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        server,
        action_ref,
        scratch,
        workspace,
    )
}

/// [`remote`] with the action's checkout at `checkout` (see [`recorded_checkout`]).
fn remote_at(
    checkout: &Path,
    server: &Server,
    action_ref: &str,
    scratch: &Path,
    workspace: &Path,
) -> Action {
    let stub = stub_cargo(scratch);
    Action::at(checkout)
        .github("server_url", &server.url)
        .github("action_repository", REPOSITORY)
        .github("action_ref", action_ref)
        .input("cache", "false")
        .input("command", "plan")
        .input("args", "--local")
        .env(
            "PATH",
            format!("{}:{}", stub.display(), std::env::var("PATH").unwrap()),
        )
        .env(
            "STUB_CARGO_LOG",
            scratch.join("cargo.log").display().to_string(),
        )
        .env("STUB_HOIST", hoist_bin())
        .workspace(workspace)
}

/// The one directory the run put on `GITHUB_PATH`, whose `hoist` answers `--version`.
#[track_caller]
fn installed(out: &Outcome) -> PathBuf {
    assert_eq!(
        out.path.len(),
        1,
        "GITHUB_PATH: {:?}\n{}",
        out.path,
        out.log
    );
    let hoist = Path::new(&out.path[0]).join("hoist");
    let said = Command::new(&hoist).arg("--version").output().unwrap();
    assert!(said.status.success(), "{}", hoist.display());
    assert_eq!(
        String::from_utf8_lossy(&said.stdout).trim(),
        format!("hoist {VERSION}")
    );
    std::fs::canonicalize(hoist).unwrap()
}

#[test]
fn the_path_input_puts_that_binary_on_path_and_runs_the_command_with_its_args() {
    let (_dir, root) = app();
    let out = Action::repository()
        .input("path", hoist_bin())
        .input("command", "plan")
        .input("args", "--local --release 'rel-from-args'")
        .workspace(&root)
        .run();
    assert!(out.ok, "{}", out.log);
    // No download and no cache: the cache step is skipped by its `if:`.
    assert_eq!(out.step("resolve").outputs["kind"], "path");
    assert_eq!(out.steps[1].outcome, "skipped");
    assert_eq!(
        installed(&out),
        std::fs::canonicalize(hoist_bin()).unwrap(),
        "the link on PATH is the given binary"
    );
    assert!(out.log.contains(&format!("hoist {VERSION}")), "{}", out.log);
    // `hoist plan --out hoist-plan.json --format markdown ARGS` ran in working-directory.
    let plan = std::fs::read_to_string(root.join("hoist-plan.json")).expect("the plan file");
    assert!(plan.contains("rel-from-args"), "{plan}");
    assert!(
        out.log
            .contains("hoist plan --file hoist.yaml --out hoist-plan.json --format markdown --local --release rel-from-args"),
        "{}",
        out.log
    );
}

#[test]
fn inputs_reach_hoist_as_words_never_as_shell_code() {
    let (_dir, root) = app();
    // Shell syntax in args is one word handed to hoist, which refuses it as a release id.
    let out = Action::repository()
        .input("path", hoist_bin())
        .input("command", "plan")
        .input("args", "--local --release \"$(touch pwned)\"")
        .workspace(&root)
        .run();
    assert!(!out.ok);
    assert_eq!(out.failed_step.as_deref(), Some("hoist"));
    assert!(
        out.log
            .contains("--release `$(touch pwned)` is not a valid release id"),
        "{}",
        out.log
    );
    assert!(!root.join("pwned").exists());
    let out = Action::repository()
        .input("path", hoist_bin())
        .input("command", "plan")
        .input("args", "`touch pwned2`;touch pwned3 | touch pwned4")
        .workspace(&root)
        .run();
    assert!(!out.ok);
    for f in ["pwned2", "pwned3", "pwned4"] {
        assert!(!root.join(f).exists(), "{f} was created");
    }

    // The config and plan inputs too are data, whatever they hold.
    let out = Action::repository()
        .input("path", hoist_bin())
        .input("command", "plan")
        .input("args", "--local")
        .input("config", "$(touch pwned5).yaml")
        .workspace(&root)
        .run();
    assert!(!out.ok);
    assert!(!root.join("pwned5").exists());
    assert!(out.log.contains("$(touch pwned5).yaml"), "{}", out.log);

    // An unknown command is refused before hoist runs; an unbalanced quote is reported.
    let out = Action::repository()
        .input("path", hoist_bin())
        .input("command", "destroy")
        .workspace(&root)
        .run();
    assert!(!out.ok);
    assert!(
        out.log.contains(
            "command `destroy` is not one of deploy, plan, rollback, status, doctor, lock, unlock"
        ),
        "{}",
        out.log
    );
    // `lock` is `hoist lock status`; `unlock` is `hoist unlock` (both reach SSM, which this
    // test has none of: they fail there, after the action ran the command it says).
    for (command, line) in [
        ("lock", "hoist lock status --file hoist.yaml"),
        ("unlock", "hoist unlock --file hoist.yaml"),
    ] {
        let out = Action::repository()
            .input("path", hoist_bin())
            .input("command", command)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "example")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_MAX_ATTEMPTS", "1")
            .workspace(&root)
            .run();
        assert!(out.log.contains(line), "{}", out.log);
        assert!(!out.log.contains("is not one of"), "{}", out.log);
    }
    let out = Action::repository()
        .input("path", hoist_bin())
        .input("command", "plan")
        .input("args", "--local --release 'unbalanced")
        .workspace(&root)
        .run();
    assert!(!out.ok);
    assert!(out.log.contains("cannot split"), "{}", out.log);
}

#[test]
fn a_release_is_downloaded_verified_cached_and_put_on_path() {
    let scratch = tempfile::tempdir().unwrap();
    let runner = scratch.path().join("runner");
    let (_dir, root) = app();
    let server = release(Some(tarball().to_vec()), &sums_of(tarball()));
    let out = remote(&server, "main", scratch.path(), &root)
        .input("version", VERSION)
        .runner_dir(&runner)
        .run();
    assert!(out.ok, "{}", out.log);
    let resolved = &out.step("resolve").outputs;
    assert_eq!(resolved["kind"], "release");
    assert_eq!(resolved["version"], VERSION);
    assert_eq!(resolved["target"], target());
    let cache = runner.join("tool-cache/hoist").join(VERSION).join(target());
    assert_eq!(Path::new(&resolved["dir"]), cache);
    let binary = std::fs::canonicalize(cache.join("bin/hoist")).unwrap();
    assert_eq!(installed(&out), binary);
    assert!(
        out.log.contains(&format!(
            "verified {} against SHA256SUMS of v{VERSION}: sha256 {}",
            asset(),
            sha256_hex(tarball())
        )),
        "{}",
        out.log
    );
    assert_eq!(
        server.requests(),
        [download("SHA256SUMS"), download(&asset())]
    );
    assert!(root.join("hoist-plan.json").exists(), "hoist ran");
    assert!(
        !scratch.path().join("cargo.log").exists(),
        "nothing was built"
    );

    // The same runner again (the tool cache as the cache step restores it): the tarball is
    // not downloaded again, and is verified again against a fresh SHA256SUMS.
    let again = remote(&server, "main", scratch.path(), &root)
        .input("version", format!("v{VERSION}"))
        .runner_dir(&runner)
        .run();
    assert!(again.ok, "{}", again.log);
    assert!(again.log.contains("from the tool cache"), "{}", again.log);
    assert_eq!(installed(&again), binary);
    assert_eq!(
        server.requests(),
        [
            download("SHA256SUMS"),
            download(&asset()),
            download("SHA256SUMS")
        ]
    );
}

/// A commit sha the action may be pinned to.
const SHA_REF: &str = "5cddb29209fa4bd5e0e3a1f0c7d2b8a9e6f4c3d2";
/// The release `/releases/latest` leads to in [`two_releases`]: not the one a pin records.
const LATEST: &str = "99.0.0";

fn latest_asset() -> String {
    format!("hoist-{LATEST}-{}.tar.gz", target())
}

/// Releases v{VERSION} (`tarball` and a SHA256SUMS of `sums`) and v{LATEST} (a tarball and
/// its SHA256SUMS), `/releases/latest` leading to v{LATEST}.
fn two_releases(tarball: &[u8], sums: &str) -> Server {
    let mut routes = HashMap::new();
    routes.insert(download(&asset()), Route::File(tarball.to_vec()));
    routes.insert(
        download("SHA256SUMS"),
        Route::File(sums.as_bytes().to_vec()),
    );
    let latest = |p: &str| format!("/{REPOSITORY}/releases/download/v{LATEST}/{p}");
    let other = b"another release".to_vec();
    routes.insert(latest(&latest_asset()), Route::File(other.clone()));
    routes.insert(
        latest("SHA256SUMS"),
        Route::File(format!("{}  {}\n", sha256_hex(&other), latest_asset()).into_bytes()),
    );
    routes.insert(
        format!("/{REPOSITORY}/releases/latest"),
        Route::Redirect(format!("/{REPOSITORY}/releases/tag/v{LATEST}")),
    );
    routes.insert(
        format!("/{REPOSITORY}/releases/tag/v{LATEST}"),
        Route::File(b"a release page".to_vec()),
    );
    Server::start(routes)
}

/// Requests for `/releases/latest` or for anything of another release than v{VERSION}.
fn beyond_the_pin(server: &Server) -> Vec<String> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.ends_with("/releases/latest") || r.contains(&format!("v{LATEST}")))
        .collect()
}

/// A copy of the action (action.yml and action/) under `dir` whose tree records release
/// v{VERSION}, as release.yml does after publishing it: action/record-release.sh run on the
/// release's tarball. Returns the checkout and what action/SHA256SUMS says.
fn recorded_checkout(dir: &Path) -> (PathBuf, String) {
    let checkout = dir.join("action-checkout");
    std::fs::create_dir_all(checkout.join("action")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(repo.join("action.yml"), checkout.join("action.yml")).unwrap();
    for script in ["install.sh", "run.sh", "record-release.sh"] {
        std::fs::copy(
            repo.join("action").join(script),
            checkout.join("action").join(script),
        )
        .unwrap();
    }
    let dist = dir.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join(asset()), tarball()).unwrap();
    let out = Command::new("bash")
        .arg(checkout.join("action/record-release.sh"))
        .arg(format!("v{VERSION}"))
        .arg(&dist)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let release = std::fs::read_to_string(checkout.join("action/release.txt")).unwrap();
    assert_eq!(release.lines().last(), Some(VERSION), "{release}");
    let sums = std::fs::read_to_string(checkout.join("action/SHA256SUMS")).unwrap();
    assert_eq!(sums, format!("{}  {}\n", sha256_hex(tarball()), asset()));
    (checkout, sums)
}

#[test]
fn the_default_version_is_the_actions_own_tag_else_its_checkout_never_the_latest_release() {
    let scratch = tempfile::tempdir().unwrap();
    let (_dir, root) = app();
    let server = two_releases(tarball(), &sums_of(tarball()));

    let tagged = remote(&server, &format!("v{VERSION}"), scratch.path(), &root).run();
    assert!(tagged.ok, "{}", tagged.log);
    assert_eq!(tagged.step("resolve").outputs["version"], VERSION);
    installed(&tagged);
    assert_eq!(
        beyond_the_pin(&server),
        Vec::<String>::new(),
        "a tag needs no look-up"
    );

    // At a sha or a branch, a tree that records no release: its own checkout, built.
    for pin in [SHA_REF, "main"] {
        let cargo_log = scratch.path().join("cargo.log");
        let _ = std::fs::remove_file(&cargo_log);
        let before = server.requests().len();
        let out = remote(&server, pin, scratch.path(), &root).run();
        assert!(out.ok, "{}", out.log);
        assert_eq!(out.step("resolve").outputs["kind"], "source", "{pin}");
        assert_eq!(out.step("resolve").outputs["version"], "", "{pin}");
        assert!(
            out.log.contains(
                "records no release (action/release.txt): building the action's checkout"
            ),
            "{}",
            out.log
        );
        let args = std::fs::read_to_string(&cargo_log).expect("cargo ran");
        let args: Vec<&str> = args.lines().collect();
        assert_eq!(
            args[..4],
            ["install", "--locked", "--path", env!("CARGO_MANIFEST_DIR")]
        );
        installed(&out);
        assert!(
            server.requests()[before..].is_empty(),
            "{pin}: nothing downloaded: {:?}",
            server.requests()
        );
    }

    // `latest` only when asked for by name, and then it says so.
    let latest = remote(&server, SHA_REF, scratch.path(), &root)
        .input("version", "latest")
        .run();
    assert_eq!(latest.step("resolve").outputs["version"], LATEST);
    assert!(
        latest.stdout.contains(&format!(
            "::warning title=hoist install::version: latest installs the last hoist released (v{LATEST}), not what the action is pinned to ({SHA_REF})"
        )),
        "{}",
        latest.log
    );
    assert!(
        server
            .requests()
            .contains(&format!("/{REPOSITORY}/releases/latest")),
        "{:?}",
        server.requests()
    );

    // A version that is no release, no `latest`, no `source` and not the action's ref.
    let odd = remote(&server, "main", scratch.path(), &root)
        .input("version", "feature-x")
        .run();
    assert!(!odd.ok);
    assert_eq!(odd.failed_step.as_deref(), Some("resolve"));
    assert!(
        odd.log.contains("version `feature-x` is neither a release"),
        "{}",
        odd.log
    );
}

/// Pinned to a sha whose tree records v{VERSION}: that release, checked against the tree's
/// checksums; neither `/releases/latest` nor the release's own SHA256SUMS is asked for.
#[test]
fn a_sha_ref_installs_the_release_its_tree_records_checked_against_the_trees_checksums() {
    let scratch = tempfile::tempdir().unwrap();
    let runner = scratch.path().join("runner");
    let (_dir, root) = app();
    let (checkout, _) = recorded_checkout(scratch.path());
    // The release's own SHA256SUMS is garbage: it is not what the action checks.
    let server = two_releases(tarball(), "not a checksum file\n");
    for pin in [SHA_REF, "main"] {
        let before = server.requests().len();
        let out = remote_at(&checkout, &server, pin, scratch.path(), &root)
            .runner_dir(&runner.join(pin))
            .run();
        assert!(out.ok, "{}", out.log);
        let resolved = &out.step("resolve").outputs;
        assert_eq!(resolved["kind"], "release");
        assert_eq!(resolved["version"], VERSION);
        assert!(
            out.log.contains(&format!(
                "verified {} against action/SHA256SUMS (the action's tree): sha256 {}",
                asset(),
                sha256_hex(tarball())
            )),
            "{}",
            out.log
        );
        installed(&out);
        assert_eq!(server.requests()[before..], [download(&asset())], "{pin}");
    }
    assert_eq!(beyond_the_pin(&server), Vec::<String>::new());
    assert!(
        !scratch.path().join("cargo.log").exists(),
        "nothing was built"
    );
}

/// A release record the tree holds only half of, or a version that is no version, fails the
/// resolve step naming the file: it is never taken for "no record" (which would build the
/// checkout instead of what the tree says). record-release.sh refuses bad input likewise.
#[test]
fn a_half_or_malformed_release_record_fails_naming_the_file() {
    let scratch = tempfile::tempdir().unwrap();
    let (_dir, root) = app();
    let (checkout, _) = recorded_checkout(scratch.path());
    let server = two_releases(tarball(), &sums_of(tarball()));
    let sums = checkout.join("action/SHA256SUMS");
    let release = checkout.join("action/release.txt");

    std::fs::rename(&sums, scratch.path().join("sums")).unwrap();
    let half = remote_at(&checkout, &server, SHA_REF, scratch.path(), &root).run();
    assert!(!half.ok);
    assert_eq!(half.failed_step.as_deref(), Some("resolve"));
    assert!(
        half.stdout
            .contains("the action's tree has only one of action/release.txt and action/SHA256SUMS"),
        "{}",
        half.log
    );
    std::fs::rename(scratch.path().join("sums"), &sums).unwrap();

    std::fs::write(&release, "# a comment\nnext\n").unwrap();
    let odd = remote_at(&checkout, &server, SHA_REF, scratch.path(), &root).run();
    assert!(!odd.ok);
    assert!(
        odd.stdout
            .contains("action/release.txt does not hold a release version (1.2.3): `next`"),
        "{}",
        odd.log
    );
    assert!(odd.path.is_empty());
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert!(
        !scratch.path().join("cargo.log").exists(),
        "nothing was built"
    );

    let record = |args: &[&str]| {
        Command::new("bash")
            .arg(checkout.join("action/record-release.sh"))
            .args(args)
            .output()
            .unwrap()
    };
    let empty = scratch.path().join("empty-dist");
    std::fs::create_dir_all(&empty).unwrap();
    let none = record(&["1.2.3", empty.to_str().unwrap()]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains(&format!(
            "{} holds no hoist-1.2.3-*.tar.gz",
            empty.display()
        )),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let bad = record(&["main", empty.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`main` is not a release version"));
    assert_eq!(
        std::fs::read_to_string(&release).unwrap(),
        "# a comment\nnext\n",
        "a refused record changes nothing"
    );
}

/// A tarball that does not match the checksum the action's tree records is refused, even
/// when the release's own SHA256SUMS was replaced to match it, at a sha and at a release
/// tag alike: no hoist on PATH, nothing kept in the tool cache, nothing built instead.
#[test]
fn a_tarball_that_does_not_match_the_trees_checksums_is_refused_with_no_fallback() {
    let scratch = tempfile::tempdir().unwrap();
    let (_dir, root) = app();
    let (checkout, _) = recorded_checkout(scratch.path());
    let mut tampered = tarball().to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let server = two_releases(&tampered, &sums_of(&tampered));
    for pin in [SHA_REF.to_owned(), format!("v{VERSION}")] {
        let runner = scratch.path().join("runner").join(&pin);
        let out = remote_at(&checkout, &server, &pin, scratch.path(), &root)
            .runner_dir(&runner)
            .run();
        assert!(!out.ok, "{pin}: {}", out.log);
        assert_eq!(out.failed_step.as_deref(), Some("install"), "{pin}");
        assert!(
            out.stdout.contains(&format!(
                "::error title=hoist install::checksum mismatch for {}: action/SHA256SUMS (the action's tree) says {}, the file is {}; refusing to install it",
                asset(),
                sha256_hex(tarball()),
                sha256_hex(&tampered)
            )),
            "{pin}: {}",
            out.log
        );
        assert!(out.path.is_empty(), "GITHUB_PATH: {:?}", out.path);
        let cache = runner.join("tool-cache/hoist").join(VERSION).join(target());
        assert!(!cache.join("bin/hoist").exists(), "{pin}");
        assert!(
            !cache.join(asset()).exists(),
            "{pin}: the bad tarball is not kept"
        );
        assert!(!root.join("hoist-plan.json").exists(), "hoist did not run");
    }
    assert!(
        !server.requests().contains(&download("SHA256SUMS")),
        "the release's own SHA256SUMS is not consulted: {:?}",
        server.requests()
    );
    assert_eq!(beyond_the_pin(&server), Vec::<String>::new());
    assert!(
        !scratch.path().join("cargo.log").exists(),
        "no fallback to building after a checksum failure"
    );
}

#[test]
fn a_tampered_tarball_is_refused_and_nothing_is_installed_or_built() {
    let scratch = tempfile::tempdir().unwrap();
    let runner = scratch.path().join("runner");
    let (_dir, root) = app();
    let mut tampered = tarball().to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let server = release(Some(tampered.clone()), &sums_of(tarball()));
    let out = remote(&server, "main", scratch.path(), &root)
        .input("version", VERSION)
        .runner_dir(&runner)
        .run();
    assert!(!out.ok, "{}", out.log);
    assert_eq!(out.failed_step.as_deref(), Some("install"));
    assert!(
        out.stdout.contains(&format!(
            "::error title=hoist install::checksum mismatch for {}: SHA256SUMS of v{VERSION} says {}, the file is {}; refusing to install it",
            asset(),
            sha256_hex(tarball()),
            sha256_hex(&tampered)
        )),
        "{}",
        out.log
    );
    assert!(out.path.is_empty(), "GITHUB_PATH: {:?}", out.path);
    let cache = runner.join("tool-cache/hoist").join(VERSION).join(target());
    assert!(!cache.join("bin/hoist").exists());
    assert!(!cache.join(asset()).exists(), "the bad tarball is not kept");
    assert!(
        !scratch.path().join("cargo.log").exists(),
        "no fallback to building after a checksum failure"
    );
    assert!(!root.join("hoist-plan.json").exists(), "hoist did not run");

    // A tampered tarball already in the tool cache is refused the same way.
    let cache_dir = runner.join("tool-cache/hoist").join(VERSION).join(target());
    std::fs::create_dir_all(&cache_dir).unwrap();
    std::fs::write(cache_dir.join(asset()), &tampered).unwrap();
    let good = release(Some(tarball().to_vec()), &sums_of(tarball()));
    let cached = remote(&good, "main", scratch.path(), &root)
        .input("version", VERSION)
        .runner_dir(&runner)
        .run();
    assert!(!cached.ok);
    assert!(
        cached.stdout.contains("checksum mismatch"),
        "{}",
        cached.log
    );
    assert!(cached.path.is_empty());
}

#[test]
fn a_release_without_a_binary_for_the_platform_builds_the_actions_checkout() {
    let scratch = tempfile::tempdir().unwrap();
    let (_dir, root) = app();
    // SHA256SUMS lists another platform only, and there is no tarball for this one.
    let sums = format!(
        "{}  hoist-{VERSION}-riscv64gc-unknown-linux-gnu.tar.gz\n",
        "0".repeat(64)
    );
    let server = release(None, &sums);
    let out = remote(&server, "main", scratch.path(), &root)
        .input("version", VERSION)
        .run();
    assert!(out.ok, "{}", out.log);
    let args = std::fs::read_to_string(scratch.path().join("cargo.log")).expect("cargo ran");
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args[..4],
        ["install", "--locked", "--path", env!("CARGO_MANIFEST_DIR")]
    );
    assert_eq!(args[4], "--root");
    installed(&out);
    assert!(
        !server.requests().contains(&download(&asset())),
        "no tarball was asked for"
    );
}

// ------------------------------------------------------------------------- the runner

/// Contexts for the runner's own tests: inputs `empty` (''), `cache` ('true'), `kind`
/// ('release'); step `resolve` with output `kind` = 'Release'; env `Z` = 'z'.
fn contexts() -> Context {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    Context {
        inputs: map(&[("empty", ""), ("cache", "true"), ("kind", "release")]),
        github: map(&[("server_url", "http://127.0.0.1:1")]),
        runner: map(&[("os", "Linux"), ("arch", "X64")]),
        env: map(&[("Z", "z")]),
        steps: BTreeMap::from([("resolve".to_owned(), map(&[("kind", "Release")]))]),
    }
}

#[test]
fn the_runners_expressions_follow_githubs_rules() {
    let c = contexts();
    let t = |e: &str| truthy(&c.eval(e));
    assert!(t("inputs.empty == ''"));
    assert!(t("inputs.cache == 'TRUE'"), "strings compare ignoring case");
    assert!(t("steps.resolve.outputs.kind == inputs.kind"));
    assert!(
        !t("steps.other.outputs.kind == 'release'"),
        "a missing output is null"
    );
    assert!(t("steps.other.outputs.kind == ''"), "null equals ''");
    assert!(t("!inputs.empty && inputs.cache != 'false'"));
    assert!(t(
        "(inputs.empty == 'x' || env.Z == 'z') && !(env.Z != 'z')"
    ));
    assert!(!t("env.MISSING"));
    assert_eq!(
        c.eval("inputs.empty || 'fallback'"),
        Val::Str("fallback".into())
    );
    assert_eq!(c.eval("inputs.empty && 'x'"), Val::Str(String::new()));
    assert_eq!(c.eval("'it''s'"), Val::Str("it's".into()));
    assert!(truthy(&c.eval_condition("${{ inputs.cache == 'true' }}")));
    assert_eq!(
        c.substitute("hoist-${{ runner.os }}-${{ inputs.kind }}-${{ steps.x.outputs.y }}."),
        "hoist-Linux-release-."
    );
    assert_eq!(c.substitute("${{ '}}' }}"), "}}");
}

#[test]
#[should_panic(expected = "the function hashFiles() is not supported")]
fn the_runner_refuses_functions() {
    contexts().eval("hashFiles('Cargo.lock') != ''");
}

#[test]
#[should_panic(expected = "`matrix.os` is not supported")]
fn the_runner_refuses_contexts_it_does_not_know() {
    contexts().eval("matrix.os == 'linux'");
}

#[test]
#[should_panic(expected = "`1` is not supported")]
fn the_runner_refuses_numbers() {
    contexts().eval("inputs.cache == 1");
}

#[test]
#[should_panic(expected = "the literal true is not supported")]
fn the_runner_refuses_literals_outside_the_subset() {
    contexts().eval("inputs.cache == true");
}

#[test]
#[should_panic(expected = "no input `pth`")]
fn the_runner_refuses_an_input_the_action_does_not_declare() {
    contexts().eval("inputs.pth == ''");
}

#[test]
#[should_panic(expected = "would run `uses: actions/cache@v5`")]
fn the_runner_refuses_to_run_a_uses_step() {
    // A release with the cache on: the cache step's `if:` is true.
    let scratch = tempfile::tempdir().unwrap();
    Action::repository()
        .github("action_repository", REPOSITORY)
        .input("version", VERSION)
        .workspace(scratch.path())
        .run();
}

#[test]
fn the_runner_reads_outputs_in_both_forms() {
    let got = parse_file_command(
        "kind=release\nsummary<<EOF_1\n| a |\n| b |\nEOF_1\nempty=\nwith=equals=sign\n",
        "s",
        "GITHUB_OUTPUT",
    );
    assert_eq!(got["kind"], "release");
    assert_eq!(got["summary"], "| a |\n| b |");
    assert_eq!(got["empty"], "");
    assert_eq!(got["with"], "equals=sign");
}

// ----------------------------------------------------------------------------- end to end

/// The action with `command: deploy` against the emulated fleet: every output, the job
/// summary's per-target table, and the secret masked first and written to neither file.
#[test]
fn a_deploy_through_the_action_sets_every_output_and_the_job_summary_and_masks_the_secret() {
    use common::fleet::{App, SECRET, World, assert_serves, leaks, ready};
    if !ready() {
        return;
    }
    let world = World::up("action");
    let app = App::new("action");
    let release = {
        let out = hoist()
            .current_dir(&app.root)
            .args(["plan", "--format", "json"])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["release"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut action = Action::repository()
        .input("path", hoist_bin())
        .input("command", "deploy")
        .workspace(&app.root)
        .timeout(Duration::from_secs(600));
    for (k, v) in &world.env {
        action = action.env(k, v);
    }
    let out = action.env("HELLO_API_TOKEN", SECRET).run();
    assert!(out.ok, "{}", out.log);
    let step = out.step("hoist");

    // The secret is masked before hoist prints anything else, and nowhere else.
    let first = step.stdout.lines().next().unwrap_or_default();
    assert!(first.starts_with("::add-mask::"), "{}", step.stdout);
    assert_eq!(out.masks.first().map(String::as_str), Some(SECRET));
    let rest: String = step
        .stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!leaks(&rest) && !leaks(&step.stderr), "{}", out.log);

    // Every output, written by hoist to GITHUB_OUTPUT and mapped by action.yml.
    for name in [
        "release",
        "image",
        "digest",
        "command-id",
        "plan",
        "result",
        "summary",
    ] {
        assert!(
            step.outputs.contains_key(name),
            "hoist did not write {name}: {:?}",
            step.outputs
        );
        assert_eq!(out.outputs[name], step.outputs[name], "{name}");
    }
    let o = &out.outputs;
    assert_eq!(o["result"], "deployed");
    assert_eq!(o["release"], release);
    let registry = &world
        .env
        .iter()
        .find(|(k, _)| k == "HOIST_FLEET_REGISTRY")
        .unwrap()
        .1;
    assert!(o["digest"].starts_with("sha256:"), "{}", o["digest"]);
    assert_eq!(
        o["image"],
        format!("{registry}/e2e/{}@{}", app.name, o["digest"])
    );
    let invocations = Command::new("aws")
        .args([
            "ssm",
            "list-command-invocations",
            "--command-id",
            o["command-id"].as_str(),
            "--query",
            "CommandInvocations[].InstanceId",
            "--output",
            "text",
        ])
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let mut got: Vec<String> = String::from_utf8_lossy(&invocations.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    got.sort();
    let mut ids: Vec<String> = world.instances().iter().map(|i| i.id.clone()).collect();
    ids.sort();
    assert_eq!(got, ids, "command-id is the rollout's SSM command");
    let in_app = |p: &str| {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            app.root.join(p)
        }
    };
    let executed = std::fs::read_to_string(in_app(&o["plan"])).expect("the plan file");
    let executed = hoist::plan::Plan::read(&executed, &o["plan"]).expect("the executed plan");
    assert_eq!(executed.release, release);
    assert_eq!(executed.image.reference, o["image"], "the plan hosts ran");

    // The summary file and the job summary: one table, a row per instance.
    let summary = std::fs::read_to_string(in_app(&o["summary"])).expect("the summary file");
    assert!(
        summary.contains("| target | status | release | duration | detail |"),
        "{summary}"
    );
    for inst in world.instances() {
        let row = summary
            .lines()
            .find(|l| l.starts_with('|') && l.contains(&inst.id))
            .unwrap_or_else(|| panic!("no row for {}: {summary}", inst.id));
        assert!(row.contains("deployed") && row.contains(&release), "{row}");
        assert_serves(inst, "1.0.0");
    }
    assert!(out.summary.contains(&summary), "{}", out.summary);

    // The secret is in neither GITHUB_OUTPUT nor the summary.
    for text in out.output_files.iter().chain([&out.summary, &summary]) {
        assert!(!leaks(text), "{text}");
    }
}

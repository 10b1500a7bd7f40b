//! `hoist plan`: deterministic, complete, secret-free, and offline.

use crate::common;

use common::{DockerTrap, Hoist, Run, run_phase};
use sha2::{Digest, Sha256};

/// examples/hello's files, as (path, text).
pub(crate) fn example_files() -> Vec<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello");
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        if entry.file_type().is_file() {
            let rel = entry
                .path()
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.push((rel, std::fs::read_to_string(entry.path()).unwrap()));
        }
    }
    files
}

pub(crate) fn example_repo() -> (tempfile::TempDir, std::path::PathBuf) {
    let files = example_files();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    common::repo_with(&refs)
}

pub(crate) fn plan(root: &std::path::Path, trap: &DockerTrap, args: &[&str]) -> Run {
    Hoist::new()
        .current_dir(root)
        .arg("plan")
        .args(args)
        .env("DOCKER_HOST", &trap.url)
        .env("HELLO_API_TOKEN", "s3cr3t-never-printed")
        .run()
}

#[test]
fn json_plan_holds_the_script_and_its_hash_and_is_byte_identical() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let first = plan(&root, &trap, &["-f", "hoist.yaml", "--format", "json"]);
    let second = plan(&root, &trap, &["-f", "hoist.yaml", "--format", "json"]);
    assert_eq!(first.stdout, second.stdout, "same inputs, same bytes");

    let json = first.success().json();
    assert_eq!(json["schema"], "hoist.plan/v6");
    assert_eq!(json["app"], "hello");
    let script = run_phase(&json)["script"]["text"].as_str().unwrap();
    let sha = run_phase(&json)["script"]["sha256"].as_str().unwrap();
    assert_eq!(sha, hex::encode(Sha256::digest(script.as_bytes())));
    assert!(script.starts_with("#!/bin/bash\n"));
    assert!(script.contains("HOIST_APP='hello'"));
    assert_eq!(json["env"]["secret"][0], "HELLO_API_TOKEN");
    let steps: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "check-hosts",
            "ensure-repository",
            "build",
            "push",
            "put-secret-parameter",
            "run-phase",
            "delete-secret-parameter"
        ],
        "the SSM plan checks the hosts, pushes to ECR and carries the secrets in a parameter for the run"
    );
    // Secrets travel in a SecureString parameter the plan names; the value never appears.
    assert_eq!(json["env"]["delivery"], "ssm-parameter");
    let parameter = json["env"]["parameter"].as_str().unwrap();
    assert!(parameter.starts_with("/hoist/hello/"), "{parameter}");
    assert!(script.contains(&format!("HOIST_SECRET_PARAMETER='{parameter}'")));
    first.stdout_lacks("s3cr3t-never-printed");
    assert!(!trap.was_called(), "planning never talks to Docker");
}

#[test]
fn text_and_markdown_show_the_same_script_hash() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let json = plan(&root, &trap, &["--format", "json"]).success().json();
    let sha = run_phase(&json)["script"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    plan(&root, &trap, &[])
        .success()
        .stdout_has(&sha)
        .stdout_has("HELLO_API_TOKEN=<secret");
    plan(&root, &trap, &["--format", "markdown"])
        .success()
        .stdout_has(format!("sha256 {sha}; made of src/scripts/lib/"))
        .stdout_lacks("#!/bin/bash");
    plan(&root, &trap, &["--format", "markdown", "--scripts"])
        .success()
        .stdout_has(format!("sha256 {sha}; made of src/scripts/lib/"))
        .stdout_has("```bash\n#!/bin/bash\n");
}

/// `--out` saves the JSON plan for review (stdout gets a rendering only when a format is
/// asked for); over SSM it must name the instances, so without `--resolve-targets` it is
/// refused before anything is written.
#[test]
fn out_saves_the_plan_for_review() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let saved = tempfile::tempdir().unwrap();
    let file = saved.path().join("plan.json");
    let file = file.to_str().unwrap();
    plan(&root, &trap, &["--local", "--out", file])
        .success()
        .stdout_is_empty()
        .stderr_has(format!("apply it with `hoist deploy --plan {file}`"));
    let json = std::fs::read_to_string(file).unwrap();
    let read = hoist::plan::Plan::read(&json, file).unwrap();
    assert_eq!(read.app, "hello");
    assert_eq!(read.render(hoist::plan::Format::Json), json);
    plan(
        &root,
        &trap,
        &["--local", "--out", file, "--format", "markdown"],
    )
    .success()
    .stdout_has("**Scripts**")
    .stdout_lacks("#!/bin/bash");
    assert!(
        json.contains("\"text\": \"#!/bin/bash\\n"),
        "the saved plan holds the scripts"
    );

    let ssm = saved.path().join("ssm.json");
    let refused = plan(&root, &trap, &["--out", ssm.to_str().unwrap()]);
    refused.code(2).stderr_has("add --resolve-targets");
    assert!(!ssm.exists(), "nothing written");
}

#[test]
fn a_new_commit_is_a_new_release_and_a_dirty_tree_is_flagged() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let release =
        |r: &Run| -> String { r.success().json()["release"].as_str().unwrap().to_owned() };
    let a = release(&plan(&root, &trap, &["--format", "json"]));
    std::fs::write(root.join("extra.txt"), "x").unwrap();
    common::git(&root, &["add", "extra.txt"]);
    common::git(&root, &["commit", "-qm", "more"]);
    let b = release(&plan(&root, &trap, &["--format", "json"]));
    assert_ne!(a, b);
    assert_eq!(b.len(), 12);
    std::fs::write(root.join("extra.txt"), "changed").unwrap();
    let dirty = plan(&root, &trap, &["--format", "json"]);
    assert_eq!(release(&dirty), format!("{b}-dirty"));
    dirty.stdout_has("uncommitted changes");
}

#[test]
fn a_bad_release_override_is_exit_2() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    plan(&root, &trap, &["--release", "../etc"])
        .code(2)
        .stderr_has("not a valid release id");
}

/// `deploy --dry-run` prints the plan and touches nothing: no Docker engine, no AWS (the
/// endpoint points at a port that answers nothing), with either transport.
#[test]
fn deploy_dry_run_prints_the_plan_and_changes_nothing() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let aws = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    aws.set_nonblocking(true).unwrap();
    for extra in [&[][..], &["--local"][..]] {
        let run = Hoist::new()
            .current_dir(&root)
            .args(["deploy", "--dry-run", "--format", "json"])
            .args(extra)
            .env("DOCKER_HOST", &trap.url)
            .env(
                "AWS_ENDPOINT_URL",
                format!("http://{}", aws.local_addr().unwrap()),
            )
            .env("AWS_REGION", "us-east-1")
            .env("HELLO_API_TOKEN", "s3cr3t-never-printed")
            .run();
        let json = run.success().stdout_lacks("s3cr3t-never-printed").json();
        assert_eq!(json["schema"], "hoist.plan/v6");
    }
    assert!(!trap.was_called(), "no Docker call");
    assert!(aws.accept().is_err(), "no AWS call");
}

fn scratch_plan(config: &str, args: &[&str]) -> Run {
    let (_tmp, root) =
        common::repo_with(&[("hoist.yaml", config), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    let run = plan(&root, &trap, args);
    assert!(!trap.was_called());
    run
}

/// The script inside the markdown's `<details>`: between the opening fence and the first
/// line that closes it (a run of at least as many backticks, alone on its line).
/// The markdown's fenced script of phase `deploy` (the host checks' script comes first).
fn fenced_script(md: &str) -> (String, String) {
    let section = md
        .find("Script of phase deploy")
        .expect("the deploy's script");
    let start = section + md[section..].find("bash\n").expect("a bash fence");
    let open_line_start = md[..start].rfind('\n').unwrap() + 1;
    let fence = md[open_line_start..start].to_owned();
    assert!(
        fence.chars().all(|c| c == '`') && fence.len() >= 3,
        "{fence:?}"
    );
    let body = &md[start + "bash\n".len()..];
    let mut script = String::new();
    for line in body.split_inclusive('\n') {
        let t = line.trim_end_matches('\n').trim_start_matches(' ');
        if t.starts_with(&fence) && t.trim_end().chars().all(|c| c == '`') {
            return (fence, script);
        }
        script.push_str(line);
    }
    panic!("the fence never closes");
}

#[test]
fn a_fence_in_a_value_cannot_close_the_markdown_script() {
    let config = "app: web\ntargets:\n  tags: {Env: [a]}\ncontainer:\n  command: |\n    \
                  echo start\n    cat <<'X'\n    ```````\n    ~~~~~~~~~\n    \
                  <!-- hidden\n    X\n";
    // Both formats from one repository: the script names the commit, and two repositories
    // committed a second apart would not share it.
    let (_tmp, root) =
        common::repo_with(&[("hoist.yaml", config), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    let json = plan(&root, &trap, &["--format", "json"]).success().json();
    let script = run_phase(&json)["script"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let md = plan(&root, &trap, &["--format", "markdown", "--scripts"]);
    md.success();
    assert!(!trap.was_called());
    let (fence, shown) = fenced_script(&md.stdout);
    assert_eq!(
        fence.len(),
        10,
        "longer than the 9 tildes and the 7 backticks"
    );
    assert_eq!(
        shown, script,
        "the whole script, and only it, is in the fence"
    );
    assert!(md.stdout.ends_with(&format!("{fence}\n\n</details>\n")));
}

#[test]
fn markdown_puts_every_config_value_in_code_not_markup() {
    let config = "app: web\nimage:\n  build_args: {NOTE: \"<!-- a\"}\ntargets:\n  \
                  tags: {Env: [\"x|<!--\"]}\nenv:\n  clear: {A: \"`b` <!--\"}\n";
    let md = scratch_plan(config, &["--format", "markdown"]);
    let out = &md.success().stdout;
    // Without the scripts, `<!--` only ever appears inside a code span.
    assert!(!out.contains("<details>"), "{out}");
    for line in out.lines().filter(|l| l.contains("<!--")) {
        let at = line.find("<!--").unwrap();
        let ticks_before = line[..at].matches('`').count();
        assert!(ticks_before % 2 == 1 || line[..at].contains("``"), "{line}");
    }
    md.stdout_has("| targets | `tag Env in [x\\|<!--]") // The table cell escapes `|`.
        .stdout_has("- ``A=`b` <!--  (clear)``")
        .stdout_has("with NOTE=<!-- a, tag");
}

/// Values from outside the config (git, the command line) are not checked like config
/// strings; the text and markdown plans still never print a hidden character raw.
#[test]
fn text_and_markdown_escape_hidden_characters_from_any_source() {
    use hoist::plan::{Format, Inputs, TransportKind};
    let config = hoist::config::parse(
        "app: web\ntargets:\n  tags: {Env: [a]}\n",
        std::path::Path::new("hoist.yaml"),
        std::path::Path::new("/srv/web"),
    )
    .unwrap();
    let inputs = Inputs {
        revision: hoist::revision::Revision {
            // Past the 12 characters a release id or a warning shortens it to.
            sha: "0123456789ab\u{1b}[2Kdef\r\u{202e}".into(),
            dirty: true,
            committed_at: None,
            source: Some("\u{9b}31m".into()),
        },
        release: Some("r1".into()),
        transport: TransportKind::Ssm,
        image_id: None,
        registry: None,
        prebuilt: Some("reg/x:\u{1b}]8;;http://evil\u{7}y\0".into()),
        instances: Some(vec!["i-0123\r".into()]),
        force: false,
        run: None,
        region: Some("us-east-1\u{1b}[2K".into()),
        source: None,
        live: None,
        hoist_version: "0.0.0".into(),
    };
    let plan = hoist::plan::build(&config, &inputs).unwrap();
    for format in [Format::Text, Format::Markdown] {
        let out = plan.render(format);
        let raw: Vec<char> = out
            .chars()
            .filter(|&c| hoist::config::text::is_hidden(c) && c != '\n')
            .collect();
        assert!(raw.is_empty(), "{format:?} printed {raw:?}:\n{out}");
        assert!(
            out.contains("0123456789ab\\u{1b}[2Kdef\\r\\u{202e}"),
            "{format:?}:\n{out}"
        );
        assert!(out.contains("http://evil\\u{7}y\\0"), "{format:?}:\n{out}");
        assert!(out.contains("i-0123\\r"), "{format:?}:\n{out}");
    }
    // JSON keeps the exact values (escaped by JSON itself).
    let json = plan.render(Format::Json);
    assert!(json.contains("0123456789ab\\u001b[2Kdef\\r"), "{json}");
}

/// A plan names each secret with where its value comes from: hoist's environment (carried
/// by the run's own parameter, whose name the plan shows as a pattern) or a source each host
/// reads itself — never a value.
#[test]
fn the_plan_names_every_secrets_source_and_the_runs_parameter_pattern() {
    let run = scratch_plan(
        "app: web\ntargets:\n  tags: {Env: [prod]}\nenv:\n  secret:\n    - TOKEN\n    \
         - DB_URL: {ssm: /prod/db-url}\n    - DB_PASSWORD: {secretsmanager: prod/db, key: password}\n",
        &["--format", "json"],
    );
    let json = run.success().json();
    let env = &json["env"];
    assert_eq!(env["sources"]["DB_URL"], "ssm:/prod/db-url");
    assert_eq!(
        env["sources"]["DB_PASSWORD"],
        "secretsmanager:prod/db#password"
    );
    assert!(env["sources"].get("TOKEN").is_none());
    let release = json["release"].as_str().unwrap();
    assert_eq!(
        env["parameter"],
        format!("/hoist/web/{release}/<run>/env").as_str()
    );
    assert_eq!(env["tier"], "auto");
    let script = run_phase(&json)["script"]["text"].as_str().unwrap();
    assert!(script.contains("HOIST_ENV_SECRETS=('TOKEN')"), "{script}");
    assert!(
        script.contains(
            "HOIST_HOST_SECRETS=('DB_PASSWORD|secretsmanager|prod/db|password' 'DB_URL|ssm|/prod/db-url|')"
        ),
        "{script}"
    );

    let text = scratch_plan(
        "app: web\ntargets:\n  tags: {Env: [prod]}\nenv:\n  secret:\n    - DB_URL: {ssm: /prod/db-url}\n",
        &[],
    );
    text.success()
        .stdout_has("DB_URL=<secret, read by each host from ssm:/prod/db-url>")
        // No parameter when hoist carries nothing.
        .stdout_lacks("SecureString parameter");
}

/// A JSON plan reads back into a `Plan` that writes the same bytes again, in every
/// variant (SSM, local, `--image`); a plan of another schema is refused, saying which.
#[test]
fn a_json_plan_reads_back_into_the_same_plan() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    for args in [
        &["--format", "json"][..],
        &["--format", "json", "--local"],
        &["--format", "json", "--release", "r-1"],
    ] {
        let run = plan(&root, &trap, args);
        run.success();
        let read = hoist::plan::Plan::read(&run.stdout, "plan.json").expect("reads back");
        assert_eq!(
            read.render(hoist::plan::Format::Json),
            run.stdout,
            "{args:?}"
        );
        assert!(!read.scripts().is_empty());
    }
    let run = plan(&root, &trap, &["--format", "json"]);
    let old = run.stdout.replace("hoist.plan/v6", "hoist.plan/v1");
    let err = hoist::plan::Plan::read(&old, "old.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("old.json") && err.contains("hoist.plan/v1") && err.contains("hoist.plan/v6"),
        "{err}"
    );
    let err = hoist::plan::Plan::read("{\"schema\": \"hoist.plan/v6\"}", "cut.json")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cut.json") && err.contains("missing field"),
        "{err}"
    );
}

/// A blue-green plan: the deploy script's header carries the proxy and the colors (the
/// defaults here), the JSON reads back into the same plan, and the text and markdown plans
/// name the nginx file, the port it listens on and the colors' loopback ports.
#[test]
fn a_blue_green_plan_shows_the_proxy_and_reads_back() {
    let config = "app: web\ntargets:\n  tags: {Env: [prod]}\ncontainer:\n  port: 8000\n  \
                  publish: 8080\nstrategy: blue-green\n";
    let (_tmp, root) =
        common::repo_with(&[("hoist.yaml", config), ("Dockerfile", "FROM scratch\n")]);
    let trap = DockerTrap::new();
    for args in [&["--format", "json"][..], &["--format", "json", "--local"]] {
        let run = plan(&root, &trap, args);
        run.success();
        let json = run.json();
        assert_eq!(json["strategy"], "blue-green");
        assert_eq!(
            json["blue_green"]["nginx_conf"],
            "/etc/nginx/conf.d/hoist-web.conf"
        );
        assert_eq!(json["blue_green"]["listen"], 8080);
        assert_eq!(
            json["blue_green"]["ports"],
            serde_json::json!([18080, 28080])
        );
        // Two-phase by default: the first phase stages.
        let phase = run_phase(&json);
        assert_eq!(phase["name"], "stage");
        assert_eq!(phase["script"]["body"], "bg-stage.sh");
        assert_eq!(phase["reads_secrets"], true);
        // 60s gate + 10s stop + 10s post-switch check + 10s drain + 10m slack.
        assert_eq!(phase["timeout"], "11m30s");
        let script = phase["script"]["text"].as_str().unwrap();
        for param in [
            "HOIST_PUBLISH='8080'\n",
            "HOIST_CONTAINER_PORT='8000'\n",
            "HOIST_HEALTH_CONSECUTIVE='1'\n",
            "HOIST_BG_PORTS=('18080' '28080')\n",
            "HOIST_BG_DRAIN='10'\n",
            "HOIST_BG_POST_SWITCH_CHECK='10'\n",
            "HOIST_BG_INSTALL_PROXY='false'\n",
            "HOIST_BG_MAX_BODY='0'\n",
            "HOIST_BG_READ_TIMEOUT='3600'\n",
            "HOIST_BG_DUAL_STACK='true'\n",
            "HOIST_NGINX_CONF='/etc/nginx/conf.d/hoist-web.conf'\n",
        ] {
            assert!(script.contains(param), "{param}{script}");
        }
        let read = hoist::plan::Plan::read(&run.stdout, "plan.json").expect("reads back");
        assert_eq!(
            read.render(hoist::plan::Format::Json),
            run.stdout,
            "{args:?}"
        );
        assert_eq!(read.blue_green.as_ref().unwrap().ports, [18080, 28080]);
    }
    let proxy = "nginx on port 8080 (/etc/nginx/conf.d/hoist-web.conf) -> blue 127.0.0.1:18080, \
                 green 127.0.0.1:28080; post-switch check 10s, drain 10s; hosts must have nginx; \
                 no body limit, idle timeout 1h, IPv4 and IPv6 (where the host has it)";
    plan(&root, &trap, &[])
        .success()
        .stdout_has("(blue-green strategy, ssm transport)")
        .stdout_has(format!("  proxy       {proxy}\n"))
        .stdout_lacks("HOIST_BG_PORTS=");
    plan(&root, &trap, &["--scripts"])
        .success()
        .stdout_has("  | HOIST_BG_PORTS=('18080' '28080')\n");
    plan(&root, &trap, &["--format", "markdown"])
        .success()
        .stdout_has(format!("| proxy | `{proxy}` |"));
    assert!(!trap.was_called());
}

/// A recreate plan has no blue-green section, and its header no blue-green parameter.
#[test]
fn a_recreate_plan_has_no_blue_green_section() {
    let run = scratch_plan(
        "app: web\ntargets:\n  tags: {Env: [prod]}\ncontainer:\n  publish: 8080\n",
        &["--format", "json"],
    );
    let json = run.success().json();
    assert!(json.get("blue_green").is_none(), "{json}");
    let script = run_phase(&json)["script"]["text"].as_str().unwrap();
    // The header: the assignments before the first empty line (the library follows).
    let header = script.split("\n\n").next().unwrap();
    assert!(
        header.contains("HOIST_HEALTH_CONSECUTIVE='1'\n"),
        "{header}"
    );
    assert!(
        !header.contains("HOIST_BG_") && !header.contains("HOIST_NGINX_CONF"),
        "{header}"
    );
}

/// Under GitHub Actions `hoist plan --out F` appends the markdown plan to the job summary,
/// writes the same text to the `summary` file, and sets the `plan`, `release` and `image`
/// outputs. `plan` reads no secret, so it masks none.
#[test]
fn under_github_actions_the_plan_is_the_job_summary_and_outputs_name_it() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let gh = tempfile::tempdir().unwrap();
    let output = gh.path().join("output");
    let step_summary = gh.path().join("step-summary.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let out = gh.path().join("plan.json");
    let run = Hoist::new()
        .current_dir(&root)
        .args(["plan", "--local", "--out"])
        .arg(&out)
        .env("DOCKER_HOST", &trap.url)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .env("RUNNER_TEMP", gh.path())
        .run();
    run.success().stdout_is_empty();
    assert!(!run.stderr.contains("::add-mask::"), "{}", run.stderr);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();

    let outputs = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<&str> = outputs.lines().collect();
    assert!(
        lines.contains(&format!("plan={}", out.display()).as_str()),
        "{outputs}"
    );
    assert!(
        lines.contains(&format!("release={}", plan["release"].as_str().unwrap()).as_str()),
        "{outputs}"
    );
    let image = lines
        .iter()
        .find_map(|l| l.strip_prefix("image="))
        .unwrap_or_else(|| panic!("an image output: {outputs}"));
    assert!(image.contains("hello:"), "{outputs}");
    assert!(
        lines.contains(&"digest="),
        "not built yet, not pinned: {outputs}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("result=")), "{outputs}");

    let summary_path = lines
        .iter()
        .find_map(|l| l.strip_prefix("summary="))
        .unwrap_or_else(|| panic!("a summary output: {outputs}"));
    assert!(summary_path.starts_with(&gh.path().display().to_string()));
    let summary = std::fs::read_to_string(summary_path).unwrap();
    assert!(
        summary.starts_with("### hoist plan: `hello` release"),
        "{summary}"
    );
    assert!(summary.contains("**Steps**"), "{summary}");
    assert_eq!(
        std::fs::read_to_string(&step_summary).unwrap(),
        format!("earlier step\n{summary}"),
        "appended, the same text"
    );
    assert!(!trap.was_called());
}

/// Text that gzip cannot shrink much: pseudo-random base64 characters.
fn incompressible(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ALPHABET[usize::try_from(state >> 58).unwrap()] as char
        })
        .collect()
}

/// Each phase says how big its script is and how many bytes `SendCommand` will carry for
/// it (the bootstrap and the gzipped script, as JSON), well under SSM's 64 KB quota.
#[test]
fn the_plan_shows_each_scripts_bytes_and_what_send_command_carries() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let json = plan(&root, &trap, &["--format", "json"]).success().json();
    let phase = run_phase(&json);
    let carried = &phase["carried"];
    let script = phase["script"]["text"].as_str().unwrap();
    assert_eq!(carried["script_bytes"].as_u64(), Some(script.len() as u64));
    let sent = carried["ssm_parameter_bytes"].as_u64().unwrap();
    assert!(sent > 1000 && sent <= 32 * 1024, "{carried}");
    assert!(
        carried["bootstrap"]
            .as_str()
            .unwrap()
            .starts_with("src/scripts/bootstrap.sh sha256 "),
        "{carried}"
    );
    let text = plan(&root, &trap, &[]).success().stdout.clone();
    assert!(
        text.contains(&format!(
            "sent gzipped by src/scripts/bootstrap.sh in {sent} bytes of SendCommand parameters"
        )),
        "{text}"
    );
}

/// A script SSM would refuse (here its header holds 70 KB of env values that do not
/// compress) is refused by `plan` and `deploy` with exit 2, naming SSM's quota, before
/// anything is built or sent.
#[test]
fn a_script_over_ssms_quota_is_refused_with_exit_2_before_anything_changes() {
    let config = format!(
        "app: web\nregion: us-east-1\ntargets:\n  tags: {{Env: [a]}}\nenv:\n  clear:\n    \
         BLOB_A: \"{}\"\n    BLOB_B: \"{}\"\n",
        incompressible(35_000),
        incompressible(35_000).to_lowercase()
    );
    scratch_plan(&config, &[])
        .code(2)
        .stderr_has(
            "SSM refuses a command whose document content and parameters pass its 64 KB quota",
        )
        .stderr_has("Nothing was changed");
    let (_tmp, root) = common::repo_with(&[
        ("hoist.yaml", config.as_str()),
        ("Dockerfile", "FROM scratch\n"),
    ]);
    let trap = DockerTrap::new();
    Hoist::new()
        .current_dir(&root)
        .arg("deploy")
        .env("DOCKER_HOST", &trap.url)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .run()
        .code(2)
        .stderr_has("MaxDocumentSizeExceeded");
    assert!(!trap.was_called(), "nothing was built");
    // The local transport has no such quota.
    scratch_plan(&config, &["--local"]).success();
}

/// A deploy over SSM needs a region for its own calls and for the hosts' (an SSM agent's
/// environment has none): without one anywhere it stops with exit 2 before anything changes.
#[test]
fn a_deploy_with_no_region_anywhere_is_exit_2_naming_the_ways_to_set_one() {
    let (_tmp, root) = common::repo_with(&[
        ("hoist.yaml", "app: web\ntargets:\n  tags: {Env: [a]}\n"),
        ("Dockerfile", "FROM scratch\n"),
    ]);
    let trap = DockerTrap::new();
    let home = tempfile::tempdir().unwrap();
    Hoist::new()
        .current_dir(&root)
        .arg("deploy")
        .env("DOCKER_HOST", &trap.url)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .run()
        .code(2)
        .stderr_has("no AWS region: set `region:` in the config, or AWS_REGION");
    assert!(!trap.was_called());
    // An offline plan says the same as a warning, and its script carries no region.
    let run = Hoist::new()
        .current_dir(&root)
        .args(["plan", "--format", "json"])
        .env("DOCKER_HOST", &trap.url)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .run();
    let json = run.success().json();
    assert!(
        json["warnings"].as_array().unwrap().iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("no AWS region is known here")),
        "{json}"
    );
    // With AWS_REGION, the hosts' script carries it.
    let json = Hoist::new()
        .current_dir(&root)
        .args(["plan", "--format", "json"])
        .env("DOCKER_HOST", &trap.url)
        .env("AWS_REGION", "eu-west-3")
        .run()
        .success()
        .json();
    let script = run_phase(&json)["script"]["text"].as_str().unwrap();
    assert!(script.contains("HOIST_REGION='eu-west-3'"));
}

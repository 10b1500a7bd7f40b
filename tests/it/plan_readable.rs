//! The text and markdown plans a person reads in a minute: examples/hello's plan leads with
//! what the deploy does in about 80 lines, names each script by its bytes, sha256 and source
//! files, and shows the scripts' text only with `--scripts` (JSON always holds it); the
//! markdown a pull request comment carries stays under 10 KB.

use crate::common::{self, DockerTrap, run_phase};
use crate::plan::{example_files, example_repo, plan};

/// examples/hello with its `strategy:` line replaced by `strategy`.
fn example_with(strategy: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let files: Vec<(String, String)> = example_files()
        .into_iter()
        .map(|(path, text)| {
            if path == "hoist.yaml" {
                let text = text.replace("strategy: recreate\n", strategy);
                assert!(text.contains(strategy), "the example has a strategy line");
                (path, text)
            } else {
                (path, text)
            }
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    common::repo_with(&refs)
}

const CANARY: &str = "strategy: blue-green\nrollout:\n  canary: 1\n  canary_window: 1m\n";

/// Where each of `facts` is in `text`, asserting that each is there and after the previous.
fn in_order(text: &str, facts: &[String]) {
    let mut at = 0;
    for fact in facts {
        let found = text[at..]
            .find(fact.as_str())
            .unwrap_or_else(|| panic!("{fact:?} is not after byte {at} of:\n{text}"));
        at += found + fact.len();
    }
}

#[test]
fn the_examples_text_plan_leads_with_what_the_deploy_does_in_80_lines() {
    let (_tmp, root) = example_repo();
    let trap = DockerTrap::new();
    let json = plan(&root, &trap, &["--format", "json"]).success().json();
    let run = plan(&root, &trap, &[]);
    let text = &run.success().stdout;
    let lines = text.lines().count();
    assert!(lines <= 80, "{lines} lines:\n{text}");

    let phase = run_phase(&json);
    let script = phase["script"]["text"].as_str().unwrap();
    let source = &json["source"];
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    in_order(
        text,
        &[
            format!("Plan: deploy hello release {}", s(&json["release"])),
            "\n  app         hello".into(),
            "\n  environment none".into(),
            format!(
                "\n  release     {} of commit {}; deploy --plan deploys the release and \
                 commit of the checkout it runs in",
                s(&json["release"]),
                s(&json["revision"]["sha"])
            ),
            format!(
                "\n  source      tree {}, build context sha256 {} ({} files)",
                s(&source["tree"]),
                s(&source["context_sha256"]),
                source["context_files"]
            ),
            "\n  image       hello:".into(),
            "(digest pinned once built)".into(),
            "\n  targets     tag Env in [staging] (max concurrency 50%, max errors 0); SSM \
             resolves them when the deploy starts"
                .into(),
            "\n  strategy    recreate".into(),
            "one phase (deploy) over ssm".into(),
            "\nSteps:".into(),
            "phase deploy: run recreate.sh".into(),
            "max concurrency 50%, max errors 0".into(),
            "\nEnvironment:\n  GREETING=hi  (clear)\n  HELLO_API_TOKEN=<secret, from hoist's \
             environment"
                .into(),
            "\nLock: /hoist/hello/lock/".into(),
            "\nIf it fails:".into(),
            "the previous release started again".into(),
            "more than max errors (0) targets fail in phase deploy: hoist stops the rollout".into(),
            "is deleted whatever happens".into(),
            "the fleet lock is released on every way out".into(),
            "Ctrl-C".into(),
            "\nScripts (".into(),
            format!(
                "\n  phase deploy: recreate.sh, {} bytes, sent gzipped",
                script.len()
            ),
            format!(
                "sha256 {}; made of src/scripts/lib/{{core,engine,look,state,aws,secrets,\
                 image,release}}.sh + src/scripts/recreate.sh",
                s(&phase["script"]["sha256"])
            ),
        ],
    );
    // No script text without --scripts.
    for line in ["#!/bin/bash", "HOIST_APP=", "Script of phase"] {
        run.stdout_lacks(line);
    }
    run.stdout_lacks("s3cr3t-never-printed");

    // With --scripts: the same plan, then the whole script, line by line.
    let full = plan(&root, &trap, &["--scripts"]);
    let full = &full.success().stdout;
    let lead = &text[..text.find("\nScripts (").unwrap()];
    assert!(full.starts_with(lead), "{full}");
    let shown: Vec<&str> = full[lead.len()..]
        .lines()
        .skip_while(|l| !l.starts_with("Script of phase deploy ("))
        .skip(1)
        .map_while(|l| l.strip_prefix("  | "))
        .collect();
    let shown = format!("{}\n", shown.join("\n"));
    assert_eq!(shown, script, "the whole script under --scripts");
    assert!(!trap.was_called());
}

/// The markdown a pull request comment carries: under 10 KB for the example and for a
/// blue-green plan with a canary (four phases), with no script in it; `--scripts` adds them.
#[test]
fn the_markdown_plan_stays_under_10_kb_and_names_the_scripts_without_their_text() {
    let trap = DockerTrap::new();
    for strategy in ["strategy: recreate\n", CANARY] {
        let (_tmp, root) = example_with(strategy);
        let json = plan(&root, &trap, &["--format", "json"]).success().json();
        let md = plan(&root, &trap, &["--format", "markdown"]);
        let out = &md.success().stdout;
        assert!(out.len() < 10 * 1024, "{} bytes:\n{out}", out.len());
        md.stdout_lacks("#!/bin/bash").stdout_lacks("<details>");
        let phases = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "run-phase");
        let mut count = 0;
        for phase in phases {
            count += 1;
            md.stdout_has(format!(
                "- `phase {}: {}, {} bytes",
                phase["name"].as_str().unwrap(),
                phase["script"]["body"].as_str().unwrap(),
                phase["script"]["text"].as_str().unwrap().len()
            ))
            .stdout_has(format!(
                "sha256 {}; made of ",
                phase["script"]["sha256"].as_str().unwrap()
            ));
        }
        assert_eq!(count, if strategy == CANARY { 4 } else { 1 });
        md.stdout_has("**If it fails**");
        let full = plan(&root, &trap, &["--format", "markdown", "--scripts"]);
        assert_eq!(
            full.success()
                .stdout
                .matches("```bash\n#!/bin/bash\n")
                .count(),
            count + 1,
            "the host checks' script, then each phase's"
        );
        let text = plan(&root, &trap, &[]);
        let lines = text.success().stdout.lines().count();
        assert!(lines <= 80, "{strategy}: {lines} lines:\n{}", text.stdout);
    }
    assert!(!trap.was_called());
}

/// Each strategy's plan says what a failure does: a canary switches back, a failed stage
/// switches nothing and is discarded.
#[test]
fn a_canary_plan_says_what_happens_when_it_fails() {
    let (_tmp, root) = example_with(CANARY);
    let trap = DockerTrap::new();
    let run = plan(&root, &trap, &[]);
    let text = &run.success().stdout;
    let fails = &text[text.find("\nIf it fails:\n").expect(text)..];
    in_order(
        fails,
        &[
            "nginx stays on the old colour".into(),
            "phase stage fails on more targets than max errors (0) allow: nothing switches \
             anywhere; phase discard removes what was staged"
                .into(),
            "a canary fails within its 1m window".into(),
            "it switches back to the old colour".into(),
            "more than max errors (0) targets fail in phase switch".into(),
            "no discard runs".into(),
        ],
    );
}

/// plan.yml's comment step, run by node with GitHub's objects stubbed, on the summary hoist
/// writes under GitHub Actions for a blue-green plan with a canary: one comment under
/// 10 KB, the short plan whole (no script, no code block), then links to the artifact and to
/// the run.
#[test]
fn plan_yml_comments_the_short_plan_and_links_the_artifact_and_the_run() {
    if !common::prerequisite(
        common::have_command("node"),
        "node, which runs actions/github-script (tests/run installs nodejs)",
    ) {
        return;
    }
    let workflow =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/github-actions/plan.yml");
    let workflow: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(workflow).unwrap()).unwrap();
    let steps = workflow["jobs"]["plan"]["steps"].as_array().unwrap();
    let comment = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/github-script@"))
        })
        .expect("a github-script step");
    let script = comment["with"]["script"].as_str().unwrap();
    assert_eq!(
        comment["env"]["ARTIFACT_URL"],
        "${{ steps.artifact.outputs.artifact-url }}"
    );
    assert!(
        steps.iter().any(|s| s["id"] == "artifact"
            && s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))),
        "the upload step's id is `artifact`"
    );

    // The summary hoist writes for `command: plan`.
    let (_tmp, root) = example_with(CANARY);
    let trap = DockerTrap::new();
    let gh = tempfile::tempdir().unwrap();
    let output = gh.path().join("output");
    crate::common::Hoist::new()
        .current_dir(&root)
        .args(["plan", "--local", "--out"])
        .arg(gh.path().join("plan.json"))
        .env("DOCKER_HOST", &trap.url)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("RUNNER_TEMP", gh.path())
        .run()
        .success();
    let outputs = std::fs::read_to_string(&output).unwrap();
    let summary = outputs
        .lines()
        .find_map(|l| l.strip_prefix("summary="))
        .unwrap_or_else(|| panic!("a summary output: {outputs}"));
    let plan = std::fs::read_to_string(summary).unwrap();

    let harness = format!(
        "const context = {{ serverUrl: 'https://github.com', repo: {{ owner: 'o', repo: 'r' }}, \
         runId: 7, issue: {{ number: 3 }} }};\n\
         let posted = [];\n\
         const github = {{ paginate: async () => [], rest: {{ issues: {{ listComments: null, \
         createComment: async (c) => posted.push(c.body), updateComment: async (c) => \
         posted.push(c.body) }} }} }};\n\
         (async () => {{\n{script}\n}})().then(() => process.stdout.write(JSON.stringify(posted)), \
         (e) => {{ console.error(e); process.exit(1); }});\n"
    );
    let file = gh.path().join("comment.js");
    std::fs::write(&file, harness).unwrap();
    let artifact = "https://github.com/o/r/actions/runs/7/artifacts/99";
    let out = std::process::Command::new("node")
        .arg(&file)
        .env("SUMMARY", summary)
        .env("ARTIFACT_URL", artifact)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posted: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let [body] = posted.as_slice() else {
        panic!("one comment: {posted:?}")
    };
    assert!(body.len() < 10 * 1024, "{} bytes:\n{body}", body.len());
    assert!(
        body.starts_with(&format!("<!-- hoist-plan -->\n{plan}")),
        "the plan whole:\n{body}"
    );
    assert!(
        !body.contains("```") && !body.contains("<details>"),
        "{body}"
    );
    assert!(body.contains("**If it fails**"), "{body}");
    assert!(
        body.contains(&format!("[hoist-plan]({artifact})"))
            && body.contains("[this run](https://github.com/o/r/actions/runs/7)"),
        "{body}"
    );
    assert!(!trap.was_called());
}

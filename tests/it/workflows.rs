//! The GitHub side of hoist, checked by the real tools: actionlint on every workflow (the
//! repository's and the examples'; it reads action.yml through ci.yml's `uses: ./`, and runs
//! shellcheck on each `run:`), check-jsonschema with GitHub's schemas (vendored in it: no
//! network) on action.yml and the workflows, parliament on every IAM policy of the examples,
//! shellcheck on the action's scripts; and checks of our own: no `run:` script interpolates
//! `${{ }}`, the trust policies admit one repository's environment or pull requests (and the
//! jobs assuming the deploy role run in an environment, the plan role's only read), and
//! the policies allow exactly the AWS calls hoist makes — derived from the code (the SDK
//! operations `src/` calls, the `aws` commands the host scripts run), so adding a call
//! without updating the policy fails here, and so does a policy action nothing calls.
//!
//! The tools are Python packages (`tests/run` installs them): skipped with a reason where
//! missing, required in CI.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files ending in `ext` directly in `dir` (relative to the repository), sorted.
fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no *.{ext} in {dir}");
    out
}

fn workflows() -> Vec<PathBuf> {
    let mut all = files(".github/workflows", "yml");
    all.extend(files("examples/github-actions", "yml"));
    all
}

fn policies() -> Vec<PathBuf> {
    files("examples/github-actions/iam", "json")
}

/// Whether `tools` are installed: required in CI, else the test skips with a reason. Prints
/// each one's version for the record.
fn tools(tools: &[(&str, &str)]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(t, _)| !common::have_command(t))
        .map(|(t, _)| *t)
        .collect();
    if !common::prerequisite(
        missing.is_empty(),
        &format!("{} (tests/run installs them)", missing.join(", ")),
    ) {
        return false;
    }
    for (tool, flag) in tools {
        let out = Command::new(tool).arg(flag).output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        eprintln!("{tool}: {}", said.lines().next().unwrap_or_default());
    }
    true
}

/// Runs `cmd` from the repository root; `Err` holds its exit code and output.
fn run(mut cmd: Command) -> Result<String, String> {
    let out = cmd.current_dir(root()).output().expect("the tool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{:?} exited {:?}:\n{text}", cmd, out.status.code()))
    }
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn actionlint_passes_every_workflow_and_the_action_they_use() {
    if !tools(&[("actionlint", "-version"), ("shellcheck", "--version")]) {
        return;
    }
    // actionlint reads a local action's action.yml where a workflow uses it: ci.yml does.
    let ci = std::fs::read_to_string(root().join(".github/workflows/ci.yml")).unwrap();
    assert!(
        ci.contains("uses: ./\n"),
        "ci.yml runs the action from the checkout"
    );
    let mut cmd = Command::new("actionlint");
    cmd.args(["-oneline", "-no-color", "-shellcheck", "shellcheck"])
        .args(workflows().iter().map(|p| relative(p)));
    let said = run(cmd).unwrap_or_else(|e| panic!("{e}"));
    assert!(said.trim().is_empty(), "{said}");
}

#[test]
fn the_action_and_the_workflows_match_githubs_schemas_offline() {
    if !tools(&[("check-jsonschema", "--version")]) {
        return;
    }
    // The schemas are the copies vendored in check-jsonschema: a proxy nobody answers makes
    // sure nothing is fetched.
    let offline = |schema: &str, files: &[PathBuf]| {
        let mut cmd = Command::new("check-jsonschema");
        for var in [
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "http_proxy",
            "https_proxy",
            "ALL_PROXY",
        ] {
            cmd.env(var, "http://127.0.0.1:9");
        }
        cmd.env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .args(["--builtin-schema", schema])
            .args(files.iter().map(|p| relative(p)));
        let said = run(cmd).unwrap_or_else(|e| panic!("{e}"));
        assert!(said.contains("ok -- validation done"), "{said}");
    };
    offline("vendor.github-actions", &[root().join("action.yml")]);
    offline("vendor.github-workflows", &workflows());
}

/// Parliament's findings on one policy, as `issue: detail` lines.
fn parliament(policy: &Path) -> Vec<(String, String)> {
    // Given --file, parliament refuses to run when stdin is not a terminal: the policy goes
    // on stdin.
    let out = Command::new("parliament")
        .arg("--json")
        .stdin(Stdio::from(std::fs::File::open(policy).unwrap()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let findings: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("parliament said {l:?} ({e}): {out:?}"));
            (
                f["issue"].as_str().unwrap_or_default().to_owned(),
                f["detail"].to_string(),
            )
        })
        .collect();
    assert_eq!(
        out.status.success(),
        findings.is_empty(),
        "{}: parliament exited {:?}: {out:?}",
        policy.display(),
        out.status.code()
    );
    findings
}

fn is_trust_policy(policy: &Value) -> bool {
    policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s.get("Principal").is_some())
}

#[test]
fn parliament_finds_nothing_in_the_iam_policies() {
    if !tools(&[("parliament", "--version")]) {
        return;
    }
    for path in policies() {
        let findings = parliament(&path);
        if is_trust_policy(&json(&path)) {
            // Parliament audits identity policies only (its source says so of trust
            // policies): a trust policy has no Resource, and it knows SAML providers but
            // not OIDC ones. Those two findings are all it may report; the test below
            // checks what the trust policies say.
            let issues: BTreeSet<&str> = findings.iter().map(|(i, _)| i.as_str()).collect();
            assert_eq!(
                issues,
                BTreeSet::from(["MALFORMED", "UNKNOWN_FEDERATION_SOURCE"]),
                "{}: {findings:?}",
                path.display()
            );
            for (issue, detail) in &findings {
                assert!(
                    match issue.as_str() {
                        "MALFORMED" => detail.contains("neither Resource nor NotResource"),
                        _ => detail.contains("oidc-provider/token.actions.githubusercontent.com"),
                    },
                    "{}: {issue} {detail}",
                    path.display()
                );
            }
        } else {
            assert!(findings.is_empty(), "{}: {findings:?}", path.display());
        }
    }
}

/// The `sub` values a trust policy admits, per file name, after checking each statement
/// admits GitHub's OIDC tokens for `sts.amazonaws.com` by exact match only: no condition
/// operator but `StringEquals` (no `StringLike`, no `ForAnyValue:`), no wildcard, one
/// repository per subject.
fn trust_subjects() -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in policies() {
        let policy = json(&path);
        if !is_trust_policy(&policy) {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for s in policy["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow", "{name}");
            assert_eq!(s["Action"], "sts:AssumeRoleWithWebIdentity", "{name}");
            let federated = s["Principal"]["Federated"].as_str().unwrap();
            assert!(
                federated.starts_with("arn:aws:iam::")
                    && federated.ends_with(":oidc-provider/token.actions.githubusercontent.com"),
                "{name}: {federated}"
            );
            let conditions = s["Condition"].as_object().unwrap();
            assert_eq!(
                conditions.keys().collect::<Vec<_>>(),
                ["StringEquals"],
                "{name}: exact matches only (no StringLike wildcards)"
            );
            let eq = &conditions["StringEquals"];
            assert_eq!(
                eq["token.actions.githubusercontent.com:aud"], "sts.amazonaws.com",
                "{name}"
            );
            let subs: Vec<String> = match &eq["token.actions.githubusercontent.com:sub"] {
                Value::String(one) => vec![one.clone()],
                Value::Array(many) => many
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect(),
                other => panic!("{name}: no sub condition: {other}"),
            };
            for sub in subs {
                assert!(!sub.contains('*') && !sub.contains('?'), "{name}: {sub}");
                let parts: Vec<&str> = sub.split(':').collect();
                assert_eq!(parts[0], "repo", "{name}: {sub}");
                assert_eq!(
                    parts[1].split('/').count(),
                    2,
                    "{name}: one repository: {sub}"
                );
                seen.entry(name.clone())
                    .or_default()
                    .push(parts[2..].join(":"));
            }
        }
    }
    seen
}

/// A deploy role is assumed only by jobs of a protected GitHub environment: its trust
/// policy names environment subjects and nothing else (a branch, a tag, a pull request or a
/// workflow would skip the environment's branch rule and reviewers). The plan role is
/// assumed only by pull requests. Each per-environment deploy role has its own trust policy,
/// naming that environment only.
#[test]
fn the_trust_policies_admit_one_repositorys_protected_environment_or_its_pull_requests() {
    let seen = trust_subjects();
    let one = |s: &str| vec![s.to_owned()];
    let mut expected = BTreeMap::from([
        (
            "ci-trust-policy.json".to_owned(),
            one("environment:staging"),
        ),
        ("ci-plan-trust-policy.json".to_owned(), one("pull_request")),
    ]);
    // ci-deploy-role-<env>.json is trusted by ci-trust-policy-<env>.json, for <env> only.
    for path in policies() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(env) = name
            .strip_prefix("ci-deploy-role-")
            .and_then(|n| n.strip_suffix(".json"))
        {
            expected.insert(
                format!("ci-trust-policy-{env}.json"),
                one(&format!("environment:{env}")),
            );
        }
    }
    assert!(expected.contains_key("ci-trust-policy-production.json"));
    for (name, subjects) in &seen {
        if name == "ci-plan-trust-policy.json" {
            continue;
        }
        for sub in subjects {
            let env = sub.strip_prefix("environment:");
            assert!(
                env.is_some_and(|e| !e.is_empty() && !e.contains(':')),
                "{name}: a deploy role trusts environments only, not `{sub}`"
            );
        }
    }
    assert_eq!(seen, expected);
}

/// The plan role only reads: every action it allows is a `Get`, `Describe`, `List` or `BatchGet`.
#[test]
fn the_plan_role_can_only_read() {
    let allowed = allowed(&root().join("examples/github-actions/iam/ci-plan-role.json"));
    assert!(!allowed.is_empty());
    for action in &allowed {
        let (_, verb) = action.split_once(':').unwrap();
        assert!(
            ["Get", "Describe", "List", "BatchGet"]
                .iter()
                .any(|read| verb.starts_with(read)),
            "ci-plan-role.json allows {action}, which is not read-only"
        );
    }
}

/// The jobs of `workflow` that assume the role in the variable `role` (`role-to-assume:
/// ${{ vars.ROLE }}`), with their `environment:` (`None` when they have none).
fn jobs_assuming(workflow: &Value, role: &str) -> Vec<(String, Option<String>)> {
    let wanted = format!("${{{{ vars.{role} }}}}");
    let mut out = Vec::new();
    for (name, job) in workflow["jobs"].as_object().unwrap() {
        let assumes = job["steps"].as_array().is_some_and(|steps| {
            steps
                .iter()
                .any(|s| s["with"]["role-to-assume"].as_str() == Some(wanted.as_str()))
        });
        if assumes {
            let env = match &job["environment"] {
                Value::Null => None,
                Value::String(e) => Some(e.clone()),
                Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_owned),
                other => panic!("{name}: environment: {other}"),
            };
            out.push((name.clone(), env.filter(|e| !e.is_empty())));
        }
    }
    out
}

/// The examples' jobs that assume the deploy role run in an environment (so the token's
/// `sub` is the environment's, the one the trust policy admits, and the environment's
/// branch rule and reviewers apply); plan.yml's job, which assumes the plan role, runs in
/// none (its `sub` is `pull_request`). And the README says how to protect the environment.
#[test]
fn the_deploy_role_is_assumed_in_an_environment_and_the_plan_role_in_none() {
    let mut deploy = BTreeSet::new();
    let mut plan = BTreeSet::new();
    for path in files("examples/github-actions", "yml") {
        let workflow = yaml(&path);
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for (job, env) in jobs_assuming(&workflow, "HOIST_ROLE_ARN") {
            assert!(
                env.is_some(),
                "{file}: job {job} assumes the deploy role outside an environment"
            );
            deploy.insert(file.clone());
        }
        for (job, env) in jobs_assuming(&workflow, "HOIST_PLAN_ROLE_ARN") {
            assert_eq!(env, None, "{file}: job {job} assumes the plan role");
            plan.insert(file.clone());
        }
    }
    assert_eq!(
        deploy,
        BTreeSet::from(
            ["apply.yml", "deploy.yml", "rollback.yml", "unlock.yml"].map(str::to_owned)
        )
    );
    assert_eq!(plan, BTreeSet::from(["plan.yml".to_owned()]));

    let readme = std::fs::read_to_string(root().join("examples/github-actions/README.md")).unwrap();
    for needed in [
        "Deployment branches and tags",
        "Selected branches",
        "Required reviewers",
        "ci-trust-policy-production.json",
    ] {
        assert!(
            readme.contains(needed),
            "examples/github-actions/README.md does not say `{needed}`"
        );
    }
}

#[test]
fn the_actions_scripts_pass_shellcheck() {
    if !tools(&[("shellcheck", "--version")]) {
        return;
    }
    let mut cmd = Command::new("shellcheck");
    cmd.args(["--shell=bash", "--severity=style", "--external-sources"])
        .args(files("action", "sh").iter().map(|p| relative(p)));
    run(cmd).unwrap_or_else(|e| panic!("{e}"));
}

/// Every `run:` of a list of steps.
fn runs(steps: &Value) -> Vec<String> {
    steps
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|step| step["run"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn no_run_script_interpolates_an_expression_inputs_go_through_env() {
    let mut scripts = vec![(
        "action.yml".to_owned(),
        runs(&yaml(&root().join("action.yml"))["runs"]["steps"]),
    )];
    for path in workflows() {
        let workflow = yaml(&path);
        for (job, def) in workflow["jobs"].as_object().unwrap() {
            scripts.push((
                format!("{} job {job}", relative(&path)),
                runs(&def["steps"]),
            ));
        }
    }
    let mut counted = 0;
    for (what, runs) in scripts {
        for script in runs {
            counted += 1;
            assert!(
                !script.contains("${{"),
                "{what}: a run: script interpolates an expression (pass it through env:):\n{script}"
            );
        }
    }
    assert!(counted > 10, "only {counted} run: scripts found");
}

// ------------------------------------------------------------------ policies vs the code

/// The SDK crate's operations (`aws_sdk_ssm::operation::*`), found in its source through
/// `cargo metadata` (offline, for this platform: the sources the build used).
fn sdk_operations(krate: &str) -> BTreeSet<String> {
    let platform = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let out = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &platform, "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {out:?}");
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let manifest = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == krate)
        .unwrap_or_else(|| panic!("{krate} is not a dependency"))["manifest_path"]
        .as_str()
        .unwrap()
        .to_owned();
    let dir = Path::new(&manifest).parent().unwrap().join("src/operation");
    let ops: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ops.len() > 20, "{krate}: {ops:?}");
    ops
}

/// `put_parameter` → `PutParameter`; `get-secret-value` → `GetSecretValue`.
fn pascal(name: &str) -> String {
    name.split(['_', '-'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The production text of each source file under `src/`: a file's tests come last, under
/// `#[cfg(test)]` (hoist's convention), and files named `tests.rs` or under a `tests/`
/// directory are test modules.
fn production_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let src = root().join("src");
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.unwrap();
        let path = entry.path();
        let in_tests = path
            .strip_prefix(&src)
            .is_ok_and(|p| p.components().any(|c| c.as_os_str() == "tests"));
        if path.extension().is_none_or(|e| e != "rs")
            || path.file_name().unwrap() == "tests.rs"
            || in_tests
        {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        let production = match text.find("#[cfg(test)]") {
            Some(at) => {
                let after = text[at..].lines().nth(1).unwrap_or_default();
                assert!(
                    after.starts_with("mod "),
                    "{}: #[cfg(test)] on something other than a module: {after}",
                    path.display()
                );
                text[..at].to_owned()
            }
            None => text,
        };
        out.push((relative(path), production));
    }
    out
}

/// `service:Action` of every SDK operation the production code calls (`.operation()` in a
/// file that names that service's crate), and the files that call each.
fn sdk_calls(only: Option<&str>) -> BTreeMap<String, BTreeSet<String>> {
    let services = [
        ("ssm", "aws_sdk_ssm", sdk_operations("aws-sdk-ssm")),
        ("ecr", "aws_sdk_ecr", sdk_operations("aws-sdk-ecr")),
    ];
    let mut calls: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in production_sources() {
        if only.is_some_and(|o| o != file) {
            continue;
        }
        for (service, krate, ops) in &services {
            for op in ops {
                if !text.contains(&format!(".{op}()")) {
                    continue;
                }
                let named: Vec<&str> = services
                    .iter()
                    .filter(|(_, k, o)| text.contains(k) && o.contains(op))
                    .map(|(s, _, _)| *s)
                    .collect();
                assert!(
                    named.len() < 2,
                    "{file} calls .{op}(), which both SDK crates it names have: say which"
                );
                if text.contains(krate) {
                    calls
                        .entry(format!("{service}:{}", pascal(op)))
                        .or_default()
                        .insert(file.clone());
                }
            }
        }
    }
    calls
}

/// What IAM checks for a call beyond the call's own action: hoist tags each run's secret
/// parameter (`PutParameter` with `Tags`: its app, release, run and expiry).
const IMPLIED: &[(&str, &str)] = &[("ssm:PutParameter", "ssm:AddTagsToResource")];

/// What a Docker Engine call in `src/` asks of ECR with the login hoist gets: a push checks
/// which layers the repository has, uploads the others and puts the manifest; a pull would get
/// the manifest and the layers (hoist pulls nothing: it reuses an image by the digest it
/// recorded, without reading the image).
const ENGINE_CALLS: &[(&str, &[&str])] = &[
    (
        ".push_image(",
        &[
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
        ],
    ),
    (
        ".create_image(",
        &["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    ),
];

fn allowed(policy: &Path) -> BTreeSet<String> {
    let policy = json(policy);
    let mut out = BTreeSet::new();
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow");
        match &s["Action"] {
            Value::String(a) => {
                out.insert(a.clone());
            }
            Value::Array(list) => out.extend(list.iter().map(|a| a.as_str().unwrap().to_owned())),
            other => panic!("Action: {other}"),
        }
    }
    for a in &out {
        assert!(!a.contains('*'), "no wildcard actions: {a}");
    }
    out
}

#[track_caller]
fn assert_same(policy: &str, allowed: &BTreeSet<String>, needed: &BTreeSet<String>, why: &str) {
    let missing: Vec<&String> = needed.difference(allowed).collect();
    let extra: Vec<&String> = allowed.difference(needed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{policy}:\n  needed but not allowed: {missing:?}\n  allowed but never called: {extra:?}\n({why})"
    );
}

#[test]
fn the_ci_roles_allow_exactly_the_aws_calls_hoist_makes() {
    let calls = sdk_calls(None);
    for (action, files) in &calls {
        eprintln!(
            "{action}: {}",
            files.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let mut needed: BTreeSet<String> = calls.keys().cloned().collect();
    for (call, also) in IMPLIED {
        if needed.contains(*call) {
            needed.insert((*also).to_owned());
        }
    }
    let sources = production_sources();
    for (call, actions) in ENGINE_CALLS {
        if sources.iter().any(|(_, t)| t.contains(call)) {
            needed.extend(actions.iter().map(|a| (*a).to_owned()));
        }
    }
    assert!(needed.contains("ssm:SendCommand") && needed.contains("ecr:GetAuthorizationToken"));
    assert_same(
        "iam/ci-deploy-role.json",
        &allowed(&root().join("examples/github-actions/iam/ci-deploy-role.json")),
        &needed,
        "the SDK operations src/ calls, what they imply, and what a push asks of ECR",
    );
    // One deploy role per environment: the same calls, on the environment's names only.
    for env in ["staging", "production"] {
        let name = format!("iam/ci-deploy-role-{env}.json");
        assert_same(
            &name,
            &allowed(&root().join("examples/github-actions").join(&name)),
            &needed,
            "an environment's deploy role makes the same calls as the app's",
        );
    }

    // `hoist plan --resolve-targets` runs preflight, and nothing else that calls AWS.
    let preflight: BTreeSet<String> = sdk_calls(Some("src/transport/ssm/preflight.rs"))
        .into_keys()
        .collect();
    assert_same(
        "iam/ci-plan-role.json",
        &allowed(&root().join("examples/github-actions/iam/ci-plan-role.json")),
        &preflight,
        "the SDK operations preflight calls",
    );
}

/// `service:Action` for each `aws SERVICE COMMAND` the host scripts run, and the ECR
/// actions a `docker pull` needs.
fn host_calls() -> BTreeSet<String> {
    let mut needed = BTreeSet::new();
    // The bodies, SSM's bootstrap and the library's modules; `aws_retry ARGS` runs `aws ARGS`.
    let mut scripts = files("src/scripts", "sh");
    scripts.extend(files("src/scripts/lib", "sh"));
    for path in scripts {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let words: Vec<&str> = line.split_whitespace().collect();
            for (i, w) in words.iter().enumerate() {
                if *w == "aws"
                    || w.ends_with("(aws")
                    || *w == "aws_retry"
                    || w.ends_with("(aws_retry")
                {
                    let (Some(service), Some(command)) = (words.get(i + 1), words.get(i + 2))
                    else {
                        continue;
                    };
                    let plain = |s: &str| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    };
                    if !plain(service) || !plain(command) {
                        continue;
                    }
                    let action = match (*service, *command) {
                        // The CLI's own settings: no call to AWS.
                        ("configure", _) => continue,
                        // The CLI's login helper is GetAuthorizationToken.
                        ("ecr", "get-login-password") => "ecr:GetAuthorizationToken".to_owned(),
                        (s, c) => format!("{s}:{}", pascal(c)),
                    };
                    needed.insert(action);
                }
                if *w == "pull" && i > 0 && words[i - 1].contains("docker") {
                    needed.insert("ecr:BatchGetImage".to_owned());
                    needed.insert("ecr:GetDownloadUrlForLayer".to_owned());
                }
            }
        }
    }
    needed
}

#[test]
fn the_instance_role_allows_exactly_what_the_host_scripts_call() {
    let mut needed = host_calls();
    eprintln!("the host scripts call: {needed:?}");
    assert!(needed.contains("ssm:GetParameter") && needed.contains("ecr:BatchGetImage"));
    // Decrypting a SecureString or a secret under a customer managed key (through SSM or
    // Secrets Manager only): not a call of the scripts, but of the services on their behalf.
    needed.insert("kms:Decrypt".to_owned());
    for file in [
        "instance-role.json",
        "instance-role-staging.json",
        "instance-role-production.json",
    ] {
        assert_same(
            &format!("iam/{file}"),
            &allowed(&root().join("examples/github-actions/iam").join(file)),
            &needed,
            "the aws commands and docker pulls of src/scripts/*.sh and src/scripts/lib/*.sh, \
             and kms:Decrypt",
        );
    }
}

/// The example app's names in `environment`, as hoist makes them.
struct Names {
    lock: String,
    /// A run's secret parameter.
    secret: String,
    /// The record of the image hoist pushed for a commit.
    images: String,
}

fn hoist_names(environment: Option<&str>) -> Names {
    let mut config = hoist::config::parse(
        "app: hello\ntargets:\n  tags:\n    Env: [staging]\n",
        Path::new("hoist.yaml"),
        Path::new("."),
    )
    .unwrap();
    config.environment = environment.map(str::to_owned);
    let release = "0123456789abcdef0123456789abcdef01234567";
    Names {
        lock: hoist::domain::lock_parameter(&config),
        secret: hoist::plan::secret_parameter(&config, release, Some("20261206T170000Z-1a2b3c4d")),
        images: hoist::domain::image_record_parameter("hello", environment, release),
    }
}

/// An environment's instance role reads its own environment's run parameters and no other
/// environment's (staging hosts cannot read production's secrets).
#[test]
fn an_environments_instance_role_reads_only_its_own_run_parameters() {
    let secret = |environment: Option<&str>| hoist_names(environment).secret;
    for env in ["staging", "production"] {
        let policy = json(&root().join(format!(
            "examples/github-actions/iam/instance-role-{env}.json"
        )));
        for other in [Some("staging"), Some("production"), None] {
            // Hosts neither read nor write image records: hoist alone vouches for images.
            let images = hoist_names(other).images;
            let actions = parameter_actions(&policy, &images);
            assert!(actions.is_empty(), "{env}'s hosts on {images}: {actions:?}");
            let name = secret(other);
            let actions = parameter_actions(&policy, &name);
            if other == Some(env) {
                assert_eq!(
                    actions,
                    BTreeSet::from(["ssm:GetParameter".to_owned()]),
                    "{env}'s hosts on {name}"
                );
            } else {
                assert!(actions.is_empty(), "{env}'s hosts on {name}: {actions:?}");
            }
        }
    }
}

/// Whether an IAM resource pattern matches `arn`: `*` any run of characters (`/` too), `?`
/// one character.
fn arn_matches(pattern: &str, arn: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), arn.chars().collect());
    // matched[j]: the pattern so far matches the first j characters of the ARN.
    let mut matched = vec![false; a.len() + 1];
    matched[0] = true;
    for c in p {
        let mut next = vec![false; a.len() + 1];
        for j in 0..=a.len() {
            next[j] = match c {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && a[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[a.len()]
}

/// The parameter actions `policy` allows on the parameter `name` (statements that name the
/// parameter's ARN, not those on `*`, which only list).
fn parameter_actions(policy: &Value, name: &str) -> BTreeSet<String> {
    let arn = format!("arn:aws:ssm:us-east-1:123456789012:parameter{name}");
    let list = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_owned())
                .collect(),
            _ => panic!("{v}"),
        }
    };
    let mut out = BTreeSet::new();
    for s in policy["Statement"].as_array().unwrap() {
        assert_eq!(s["Effect"], "Allow", "the examples only allow");
        let resources = list(&s["Resource"]);
        if resources.iter().any(|r| r != "*" && arn_matches(r, &arn)) {
            out.extend(list(&s["Action"]));
        }
    }
    out
}

#[test]
fn the_arn_matcher_matches_as_iam_does() {
    assert!(arn_matches(
        "a:parameter/hoist/hello/*",
        "a:parameter/hoist/hello/x/y"
    ));
    assert!(arn_matches(
        "a:parameter/hoist/hello/*",
        "a:parameter/hoist/hello/"
    ));
    assert!(!arn_matches(
        "a:parameter/hoist/hello/*",
        "a:parameter/hoist/hello"
    ));
    assert!(!arn_matches(
        "a:parameter/hoist/hello/*",
        "a:parameter/hoist/hello2/x"
    ));
    assert!(arn_matches("a:?/b", "a:x/b") && !arn_matches("a:?/b", "a:xy/b"));
    assert!(arn_matches("*", "anything"));
}

/// An environment's deploy role acts on its own environment's lock, secret parameters and
/// image records, and on no other environment's (nor on those of the app without an
/// environment): staging's role cannot write the record production's deploys trust. It
/// sends commands only to its environment's instances. The names are hoist's own.
#[test]
fn an_environments_deploy_role_cannot_touch_another_environments_lock_secrets_or_images() {
    let names = hoist_names;
    let set = |actions: &[&str]| -> BTreeSet<String> {
        actions.iter().map(|a| format!("ssm:{a}")).collect()
    };
    let on_lock = set(&[
        "AddTagsToResource",
        "DeleteParameter",
        "GetParameter",
        "ListTagsForResource",
        "PutParameter",
    ]);
    let on_secret = set(&[
        "AddTagsToResource",
        "DeleteParameter",
        "ListTagsForResource",
        "PutParameter",
    ]);
    let environments = [Some("staging"), Some("production"), None];
    for env in ["staging", "production"] {
        let path = root().join(format!(
            "examples/github-actions/iam/ci-deploy-role-{env}.json"
        ));
        let policy = json(&path);
        for other in environments {
            let Names {
                lock,
                secret,
                images,
            } = names(other);
            let (lock_actions, secret_actions, images_actions) = (
                parameter_actions(&policy, &lock),
                parameter_actions(&policy, &secret),
                parameter_actions(&policy, &images),
            );
            if other == Some(env) {
                assert_eq!(lock_actions, on_lock, "{env}'s role on its lock {lock}");
                assert_eq!(
                    secret_actions, on_secret,
                    "{env}'s role on its secret {secret}"
                );
                // Reads the record, and writes it after a push (an overwrite, no tags).
                assert!(
                    images_actions.is_superset(&set(&["GetParameter", "PutParameter"])),
                    "{env}'s role on its image record {images}: {images_actions:?}"
                );
            } else {
                assert!(
                    images_actions.is_empty(),
                    "{env}'s role on {images}: {images_actions:?}"
                );
                assert!(
                    lock_actions.is_empty(),
                    "{env}'s role on {lock}: {lock_actions:?}"
                );
                assert!(
                    secret_actions.is_empty(),
                    "{env}'s role on {secret}: {secret_actions:?}"
                );
            }
        }
        let tags: Vec<&Value> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["Condition"]["StringEquals"].get("ssm:resourceTag/Env"))
            .collect();
        assert_eq!(
            tags,
            [&Value::from(env)],
            "{env}: commands to its instances only"
        );
    }
    // The app's role, without environments, reaches every environment's names: why an
    // environment needs its own.
    let app_role = json(&root().join("examples/github-actions/iam/ci-deploy-role.json"));
    for env in environments {
        let Names {
            lock,
            secret,
            images,
        } = names(env);
        for name in [lock, secret, images] {
            let actions = parameter_actions(&app_role, &name);
            assert!(
                actions.contains("ssm:PutParameter") && actions.contains("ssm:DeleteParameter"),
                "{name}: {actions:?}"
            );
        }
    }
}

//! Image reuse over SSM against the emulated fleet (tests/fleet) and its real registry: hoist
//! reuses a commit's image only by the digest it recorded when it pushed it (an SSM
//! parameter only its deploy role writes), never by a tag or a label that whoever may push
//! can write; and `image.immutable_tags: true` is checked against the repository.

use crate::common;

use std::process::{Command, Stdio};

use common::fleet::{App, World, assert_ok, assert_serves, ready};
use common::{Run, hoist};
use serde_json::Value;

/// The AWS CLI on the host with hoist's credentials; `None` when it fails.
fn aws(world: &World, args: &[&str]) -> Option<String> {
    let out = Command::new("aws")
        .args(args)
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The value of the parameter `name`, `None` when there is none.
fn parameter(world: &World, name: &str) -> Option<String> {
    aws(
        world,
        &[
            "ssm",
            "get-parameter",
            "--name",
            name,
            "--query",
            "Parameter.Value",
            "--output",
            "text",
        ],
    )
}

/// Every parameter under /hoist/ but the image records: the lock and secret parameters a
/// deploy leaves behind (none, once it ended).
fn transient_parameters(world: &World) -> Vec<String> {
    let names = aws(
        world,
        &[
            "ssm",
            "get-parameters-by-path",
            "--path",
            "/hoist",
            "--recursive",
            "--query",
            "Parameters[].Name",
            "--output",
            "text",
        ],
    )
    .unwrap();
    names
        .split_whitespace()
        .filter(|n| *n != "None" && !n.contains("/images/"))
        .map(str::to_owned)
        .collect()
}

/// The digest `tag` holds in `repository`, `None` when the tag does not exist.
fn tag_digest(world: &World, repository: &str, tag: &str) -> Option<String> {
    let out = aws(
        world,
        &[
            "ecr",
            "batch-get-image",
            "--repository-name",
            repository,
            "--image-ids",
            &format!("imageTag={tag}"),
            "--query",
            "images[0].imageId.imageDigest",
            "--output",
            "text",
        ],
    )?;
    (out.starts_with("sha256:")).then_some(out)
}

/// Pushes, by hand and with the registry's own login (as anyone allowed to push could), an
/// image that is not the app (`marker` makes it unique) under `repository:commit`, labelled
/// as built from `commit`: a forged label. Returns the digest the tag then holds.
fn push_forged(world: &World, repository: &str, commit: &str, marker: &str) -> String {
    let registry = &world
        .env
        .iter()
        .find(|(k, _)| k == "HOIST_FLEET_REGISTRY")
        .unwrap()
        .1;
    let docker_config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str], stdin: &str| {
        use std::io::Write as _;
        let mut child = Command::new("docker")
            .env("DOCKER_CONFIG", docker_config.path())
            .env("DOCKER_BUILDKIT", "0")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
    };
    let context = tempfile::tempdir().unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        format!(
            "FROM busybox:1.35\nLABEL org.opencontainers.image.revision={commit}\n\
             RUN echo {marker} > /forged\nCMD [\"sh\", \"-c\", \"echo {marker}; sleep 3600\"]\n"
        ),
    )
    .unwrap();
    let tag = format!("{registry}/{repository}:{commit}");
    docker(
        &["build", "-q", "-t", &tag, context.path().to_str().unwrap()],
        "",
    );
    docker(
        &["login", "-u", "AWS", "--password-stdin", registry],
        &world.registry_password,
    );
    docker(&["push", "-q", &tag], "");
    docker(&["rmi", "--no-prune", &tag], "");
    tag_digest(world, repository, commit).expect("the forged push left the tag")
}

fn head(app: &App) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(&app.root)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn report(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn step(report: &Value, kind: &str) -> Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} step in {}", report["steps"]))
}

/// The calls that change something: a push (`PutImage` is the registry's, not journalled:
/// the tag's digest is compared instead), a command, a secret parameter.
fn sends_and_secrets(world: &World) -> (usize, usize) {
    let journal = world.journal();
    let secrets = journal
        .iter()
        .filter(|l| {
            l["operation"] == "PutParameter"
                && l["error"].is_null()
                && l["params"]["Type"] == "SecureString"
        })
        .count();
    (world.calls("SendCommand"), secrets)
}

/// The first deploy of a commit builds, pushes and records the digest; the second reuses
/// that digest with no build. The commit's tag pushed over by hand, with a label forged to
/// match the commit, is refused naming the repository, the tag, both digests and the record
/// (exit 2, nothing pushed or sent, lock released, no secret parameter left), and every
/// instance still serves the old release. A commit whose tag somebody pushed before hoist
/// did (no record) is built, pushed over and recorded. A config claiming immutable tags for
/// the MUTABLE repository is refused before anything changes.
#[test]
fn an_image_is_reused_only_by_the_digest_hoist_recorded_pushing_it() {
    if !ready() {
        return;
    }
    let world = World::up("reuse");
    let app = App::new("reuse");
    let repository = format!("e2e/{}", app.name);

    // v1: built, pushed and recorded.
    let v1 = app.deploy(&world, &["--format", "json"]);
    assert_ok(&v1);
    let v1_report = report(&v1);
    let commit = v1_report["plan"]["revision"]["sha"]
        .as_str()
        .unwrap()
        .to_owned();
    let record = format!("/hoist/{}/images/{commit}", app.name);
    let v1_reference = v1_report["plan"]["image"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1_digest = v1_reference.rsplit_once('@').unwrap().1.to_owned();
    let build = v1_report["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "build")
        .unwrap()
        .clone();
    assert_eq!(build["reuse"]["record"], record.as_str(), "{build}");
    assert_eq!(
        parameter(&world, &record),
        Some(format!("{repository}@{v1_digest}")),
        "the push recorded its digest"
    );
    assert!(
        step(&v1_report, "push")["detail"]
            .as_str()
            .unwrap()
            .contains(&format!(
                "recorded sha256:{} in {record}",
                &v1_digest[7..19]
            )),
        "{}",
        v1_report["steps"]
    );
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
    // The plan says what is reused, and where the record is.
    let planned: Run = hoist()
        .current_dir(&app.root)
        .arg("plan")
        .envs(world.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
        .into();
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    assert!(
        planned
            .stdout
            .contains(&format!("digest hoist recorded in {record}")),
        "{}",
        planned.stdout
    );

    // The same commit again: the recorded digest, no build, no push.
    let again = app.deploy(&world, &["--format", "json"]);
    assert_ok(&again);
    let again_report = report(&again);
    assert_eq!(step(&again_report, "build")["status"], "skipped");
    assert!(
        step(&again_report, "build")["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("holds the digest hoist recorded in {record}")),
        "{}",
        again_report["steps"]
    );
    assert_eq!(
        again_report["plan"]["image"]["reference"],
        v1_reference.as_str()
    );
    assert!(!again.stderr.contains("building"), "{}", again.stderr);

    // The commit's tag pushed over by hand, the label forged to match: refused.
    let forged = push_forged(&world, &repository, &commit, "forged-1");
    assert_ne!(forged, v1_digest);
    let before = sends_and_secrets(&world);
    let refused = app.deploy(&world, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    for part in [
        &format!("tag {commit} of ECR repository {repository} holds {forged}, not {v1_digest}"),
        &format!("the digest hoist recorded in {record}"),
        "nothing was changed",
    ] {
        assert!(refused.stderr.contains(part), "{part}:\n{}", refused.stderr);
    }
    assert_eq!(sends_and_secrets(&world), before, "no command, no secret");
    assert_eq!(
        tag_digest(&world, &repository, &commit),
        Some(forged.clone()),
        "nothing was pushed"
    );
    assert_eq!(
        parameter(&world, &record),
        Some(format!("{repository}@{v1_digest}")),
        "the record stands"
    );
    assert_eq!(
        transient_parameters(&world),
        Vec::<String>::new(),
        "lock released"
    );
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
        let image = world.docker(
            inst,
            &[
                "ps",
                "--filter",
                &format!("label=hoist.app={}", app.name),
                "--format",
                "{{.Label \"hoist.image-ref\"}}",
            ],
        );
        assert_eq!(image, v1_reference, "{}", inst.id);
    }

    // A new commit whose tag somebody pushed before hoist did: no record, so the tag is not
    // trusted; hoist builds, pushes over it and records its own digest.
    app.configure("2.0.0", "0s", "0");
    let commit2 = head(&app);
    let forged2 = push_forged(&world, &repository, &commit2, "forged-2");
    let v2 = app.deploy(&world, &["--format", "json"]);
    assert_ok(&v2);
    assert!(
        v2.stderr.contains("no record of hoist pushing") && v2.stderr.contains("pushed"),
        "{}",
        v2.stderr
    );
    let v2_reference = report(&v2)["plan"]["image"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let v2_digest = v2_reference.rsplit_once('@').unwrap().1;
    assert_ne!(v2_digest, forged2);
    assert_eq!(
        tag_digest(&world, &repository, &commit2).as_deref(),
        Some(v2_digest)
    );
    assert_eq!(
        parameter(&world, &format!("/hoist/{}/images/{commit2}", app.name)),
        Some(format!("{repository}@{v2_digest}"))
    );
    for inst in world.instances() {
        assert_serves(inst, "2.0.0");
    }

    // The config claims immutable tags; the repository's are MUTABLE: refused before
    // anything changes, naming both settings and the fixes.
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    std::fs::write(
        app.root.join("hoist.yaml"),
        yaml.replacen("image:\n", "image:\n  immutable_tags: true\n", 1),
    )
    .unwrap();
    common::git(&app.root, &["commit", "-qam", "immutable tags"]);
    let commit3 = head(&app);
    let before = sends_and_secrets(&world);
    let refused = app.deploy(&world, &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    for part in [
        &format!(
            "image.immutable_tags is true, but ECR repository {repository} has tag mutability \
             MUTABLE"
        ),
        &format!(
            "aws ecr put-image-tag-mutability --repository-name {repository} \
             --image-tag-mutability IMMUTABLE"
        ),
        "image.immutable_tags: false",
        "nothing was changed",
    ] {
        assert!(refused.stderr.contains(part), "{part}:\n{}", refused.stderr);
    }
    assert!(!refused.stderr.contains("building"), "{}", refused.stderr);
    assert_eq!(sends_and_secrets(&world), before, "no command, no secret");
    assert_eq!(tag_digest(&world, &repository, &commit3), None, "no push");
    assert_eq!(
        transient_parameters(&world),
        Vec::<String>::new(),
        "lock released"
    );
    for inst in world.instances() {
        assert_serves(inst, "2.0.0");
    }
}

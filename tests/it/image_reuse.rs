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
/// the tag's digest is compared instead), a command (but the read-only host checks), a secret
/// parameter.
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
    (world.changing_commands(), secrets)
}

fn build_step(report: &Value) -> Value {
    report["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "build")
        .cloned()
        .unwrap()
}

fn digest_of(reference: &str) -> String {
    reference.rsplit_once('@').unwrap().1.to_owned()
}

/// The image reference the app's running container on each instance was created from.
fn running_images(world: &World, app: &App) -> Vec<String> {
    world
        .instances()
        .iter()
        .map(|inst| {
            world.docker(
                inst,
                &[
                    "ps",
                    "--filter",
                    &format!("label=hoist.app={}", app.name),
                    "--format",
                    "{{.Label \"hoist.image-ref\"}}",
                ],
            )
        })
        .collect()
}

/// The commit's tag pushed over by hand after hoist pushed it, with a label forged to match
/// the commit: the next deploy of the commit is refused naming the repository, the tag, both
/// digests and the record (exit 2; nothing pushed or sent, the lock released, no secret
/// parameter left), and every instance still serves the old release from the recorded
/// digest. (Before the record, hoist trusted the tag and its label and shipped it.)
#[test]
fn a_tag_pushed_over_with_a_forged_label_is_refused_and_every_instance_keeps_its_release() {
    if !ready() {
        return;
    }
    let world = World::up("forged");
    let app = App::new("forged");
    let repository = format!("e2e/{}", app.name);
    let v1 = app.deploy(&world, &["--format", "json"]);
    assert_ok(&v1);
    let v1_report = report(&v1);
    let commit = v1_report["plan"]["revision"]["sha"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1_reference = v1_report["plan"]["image"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1_digest = digest_of(&v1_reference);
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }

    let forged = push_forged(&world, &repository, &commit, "forged");
    assert_ne!(forged, v1_digest);
    let before = sends_and_secrets(&world);
    let refused = app.deploy(&world, &[]);
    let record = format!("/hoist/{}/images/{commit}", app.name);
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
        "the lock released, no secret parameter left"
    );
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
    assert_eq!(running_images(&world, &app), vec![v1_reference; 3]);
}

/// A commit whose tag somebody pushed before hoist ever did (a forged label, no record): the
/// tag is not trusted, hoist builds, pushes over it and records its own digest, and every
/// instance serves the app. The second deploy of the commit reuses that recorded digest with
/// no build and no push, and the plan names the record.
#[test]
fn a_tag_hoist_did_not_push_is_built_over_and_the_recorded_digest_is_reused() {
    if !ready() {
        return;
    }
    let world = World::up("prepushed");
    let app = App::new("prepushed");
    let repository = format!("e2e/{}", app.name);
    let commit = head(&app);
    let record = format!("/hoist/{}/images/{commit}", app.name);
    // ECR takes pushes only to a repository that exists.
    aws(
        &world,
        &["ecr", "create-repository", "--repository-name", &repository],
    )
    .expect("the repository is created");
    let forged = push_forged(&world, &repository, &commit, "prepushed");

    let v1 = app.deploy(&world, &["--format", "json"]);
    assert_ok(&v1);
    for inst in world.instances() {
        assert_serves(inst, "1.0.0");
    }
    assert!(
        v1.stderr
            .contains(&format!("no record of hoist pushing {repository}:"))
            && v1.stderr.contains("building")
            && v1.stderr.contains("pushed"),
        "{}",
        v1.stderr
    );
    let v1_report = report(&v1);
    let v1_reference = v1_report["plan"]["image"]["reference"]
        .as_str()
        .unwrap()
        .to_owned();
    let v1_digest = digest_of(&v1_reference);
    assert_ne!(v1_digest, forged);
    assert_eq!(
        tag_digest(&world, &repository, &commit).as_deref(),
        Some(v1_digest.as_str()),
        "hoist's push moved the tag"
    );
    assert_eq!(
        parameter(&world, &record),
        Some(format!("{repository}@{v1_digest}")),
        "the push recorded its digest"
    );
    assert_eq!(build_step(&v1_report)["reuse"]["record"], record.as_str());
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

    // The same commit again: the recorded digest, no build, no push.
    let again = app.deploy(&world, &["--format", "json"]);
    assert_ok(&again);
    let again_report = report(&again);
    assert_eq!(step(&again_report, "build")["status"], "skipped");
    assert_eq!(step(&again_report, "push")["status"], "skipped");
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
    assert!(
        !again.stderr.contains("building") && !again.stderr.contains("pushing"),
        "{}",
        again.stderr
    );

    // The plan says what may be reused, and where the record is.
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
}

/// `image.immutable_tags: true` against an existing repository whose tags are MUTABLE: the
/// deploy is refused before anything changes (exit 2; no push, no command, no secret, the
/// lock released), naming the repository, both settings and the two fixes.
#[test]
fn immutable_tags_are_checked_against_the_repository() {
    if !ready() {
        return;
    }
    let world = World::up("mutable");
    let app = App::new("mutable");
    let repository = format!("e2e/{}", app.name);
    aws(
        &world,
        &[
            "ecr",
            "create-repository",
            "--repository-name",
            &repository,
            "--image-tag-mutability",
            "MUTABLE",
        ],
    )
    .expect("the repository is created");
    let yaml = std::fs::read_to_string(app.root.join("hoist.yaml")).unwrap();
    std::fs::write(
        app.root.join("hoist.yaml"),
        yaml.replacen("image:\n", "image:\n  immutable_tags: true\n", 1),
    )
    .unwrap();
    common::git(&app.root, &["commit", "-qam", "immutable tags"]);
    let commit = head(&app);

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
    assert_eq!(sends_and_secrets(&world), (0, 0), "no command, no secret");
    assert_eq!(tag_digest(&world, &repository, &commit), None, "no push");
    assert_eq!(
        transient_parameters(&world),
        Vec::<String>::new(),
        "the lock released"
    );
    for inst in world.instances() {
        let containers = world.docker(inst, &["ps", "-aq"]);
        assert!(containers.is_empty(), "{} changed: {containers}", inst.id);
    }
}

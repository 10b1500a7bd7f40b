//! Reviewed plans: each difference named, the image the only one allowed.
use super::*;
use crate::config::Config;
use crate::plan::{Inputs, build};
use crate::revision::Revision;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn config(extra: &str) -> Config {
    let yaml = format!(
        "app: web\nimage:\n  repository: web\ntargets:\n  tags:\n    Env: [prod]\n\
         container:\n  port: 8080\n  publish: 80\nenv:\n  secret: [TOKEN]\n{extra}"
    );
    crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap()
}

fn source(tree: &str, files: &[(&str, &str)]) -> crate::domain::SourceDigest {
    let files: std::collections::BTreeMap<String, String> = files
        .iter()
        .map(|(p, id)| ((*p).to_owned(), (*id).to_owned()))
        .collect();
    crate::domain::SourceDigest {
        tree: tree.repeat(40),
        context_sha256: "c".repeat(64),
        context_files: files.len(),
        context: files.clone(),
        files,
    }
}

fn inputs(sha: &str, instances: &[&str]) -> Inputs {
    Inputs {
        instances: Some(instances.iter().map(|s| (*s).to_owned()).collect()),
        source: Some(source("a", &[("Dockerfile", "1"), ("app.py", "2")])),
        ..Inputs::new(Revision::clean(sha), TransportKind::Ssm)
    }
}

/// Another commit of the reviewed tree (a squash merge, a merge commit, a rebase) applies:
/// built with the reviewed execution values, its plan is the reviewed one, whatever its own
/// commit, release and run.
#[test]
fn another_commit_of_the_same_tree_applies() {
    let r = reviewed();
    let merged = Inputs {
        run: Some("20261207T010203Z-0a1b2c3d".into()),
        ..inputs(&"f".repeat(40), &["i-1", "i-2"])
    };
    assert!(source_differences(&r, merged.source.as_ref()).is_empty());
    let now = build(&config(""), &as_reviewed(&r, &merged)).unwrap();
    assert_eq!(differences(&r, &now), Vec::<Difference>::new());
    // Executed, it is the checkout's own: its commit's release, its run.
    let executed = build(&config(""), &merged).unwrap();
    assert_eq!(executed.release, "ffffffffffff");
    assert_ne!(executed.release, r.release);
    assert!(
        executed
            .env
            .parameter
            .as_deref()
            .unwrap()
            .contains("20261207T010203Z"),
        "{:?}",
        executed.env.parameter
    );
}

/// Another tree is refused naming the paths that differ; a build context that differs
/// with the same tree (an untracked file) is named too; a plan with no source cannot apply.
#[test]
fn another_tree_is_refused_naming_its_paths() {
    let r = reviewed();
    let edited = source(
        "b",
        &[("Dockerfile", "1"), ("app.py", "3"), ("new.txt", "4")],
    );
    let found = source_differences(&r, Some(&edited));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].to_string(),
        format!(
            "source changed: the plan was reviewed on tree {}, the checkout's is {}: changed \
             app.py; added new.txt",
            "a".repeat(12),
            "b".repeat(12)
        )
    );
    let mut untracked = source("a", &[("Dockerfile", "1"), ("app.py", "2"), (".env", "9")]);
    untracked.context_sha256 = "d".repeat(64);
    let found = source_differences(&r, Some(&untracked));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].to_string().contains("build context changed")
            && found[0].to_string().contains("added .env"),
        "{}",
        found[0]
    );
    let mut unbound = r.clone();
    unbound.source = None;
    assert_eq!(
        source_differences(&unbound, Some(&edited)),
        vec![Difference::Unbound]
    );
}

fn reviewed() -> Plan {
    build(&config(""), &inputs(SHA, &["i-1", "i-2"])).unwrap()
}

#[test]
fn the_same_inputs_make_the_same_plan() {
    assert_eq!(
        differences(&reviewed(), &reviewed()),
        Vec::<Difference>::new()
    );
}

#[test]
fn each_change_is_named() {
    let r = reviewed();

    let health = build(
        &config("healthcheck:\n  path: /ready\n"),
        &inputs(SHA, &["i-1", "i-2"]),
    )
    .unwrap();
    let found = differences(&r, &health);
    assert!(matches!(found[0], Difference::Config { .. }), "{found:?}");
    assert!(
        found
            .iter()
            .any(|d| matches!(d, Difference::Header { names, .. }
            if names == &["HOIST_HEALTH_CHECK".to_owned(), "HOIST_HEALTH_PATH".to_owned(), "HOIST_SETTINGS".to_owned()])),
        "{found:?}"
    );

    let bg = build(
        &config("strategy: blue-green\n"),
        &inputs(SHA, &["i-1", "i-2"]),
    )
    .unwrap();
    assert!(
        differences(&r, &bg)
            .iter()
            .any(|d| matches!(d, Difference::Strategy { .. }))
    );

    let more = build(&config(""), &inputs(SHA, &["i-1", "i-2", "i-3"])).unwrap();
    assert_eq!(
        differences(&r, &more),
        vec![Difference::Targets {
            added: vec!["i-3".into()],
            removed: vec![],
        }]
    );
    assert_eq!(
        differences(&r, &more)[0].to_string(),
        "targets changed (as SSM resolves them now): added i-3"
    );

    let mut offline = r.clone();
    offline.targets.resolved = None;
    assert_eq!(differences(&offline, &r), vec![Difference::Unresolved]);
}

#[test]
fn another_hoists_script_body_is_named_with_its_line() {
    let r = reviewed();
    let mut other = r.clone();
    let super::super::Step::RunPhase(phase) = other
        .steps
        .iter_mut()
        .find(|s| matches!(s, super::super::Step::RunPhase(_)))
        .unwrap()
    else {
        unreachable!()
    };
    phase.script.text = phase.script.text.replacen("set -", "set -x; set -", 1);
    phase.script.sha256 = sha256_hex(phase.script.text.as_bytes());
    let found = differences(&other, &r);
    assert_eq!(found.len(), 1, "{found:?}");
    let Difference::ScriptBody { line, reviewed, .. } = &found[0] else {
        panic!("{found:?}")
    };
    let text = &other.phases().next().unwrap().script.text;
    assert_eq!(text.lines().nth(line - 1), Some(reviewed.as_str()));
    assert!(reviewed.contains("set -x"), "{reviewed}");

    // An edit without a new hash is tampering.
    let super::super::Step::RunPhase(phase) = other
        .steps
        .iter_mut()
        .find(|s| matches!(s, super::super::Step::RunPhase(_)))
        .unwrap()
    else {
        unreachable!()
    };
    phase.script.sha256 = r.phases().next().unwrap().script.sha256.clone();
    assert!(
        differences(&other, &r)
            .iter()
            .any(|d| matches!(d, Difference::Tampered { .. }))
    );
}

#[test]
fn the_pinned_image_is_the_only_difference_allowed() {
    let r = reviewed();
    let registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let executed = build(
        &config(""),
        &Inputs {
            registry: Some(registry.into()),
            image_id: Some(format!("{registry}/web@sha256:{}", "b".repeat(64))),
            ..inputs(SHA, &["i-1", "i-2"])
        },
    )
    .unwrap();
    assert_ne!(r, executed);
    let pairs = image_only(&r, &executed, &executed).unwrap();
    assert_eq!(pairs.len(), 1);
    assert_ne!(pairs[0].reviewed_sha256, pairs[0].executed_sha256);

    // Anything else that differs is refused: here the health path.
    let other_config = build(
        &config("healthcheck:\n  path: /ready\n"),
        &Inputs {
            registry: Some(registry.into()),
            image_id: Some(format!("{registry}/web@sha256:{}", "b".repeat(64))),
            ..inputs(SHA, &["i-1", "i-2"])
        },
    )
    .unwrap();
    assert!(image_only(&r, &other_config, &other_config).is_err());
}

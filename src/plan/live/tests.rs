//! A plan against live state: each change named, nothing else.
use super::*;
use crate::domain::TransportKind;
use crate::plan::{Inputs, build};
use crate::revision::Revision;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn config(extra: &str) -> Config {
    let yaml = format!(
        "app: web\nimage:\n  repository: web\ntargets:\n  tags:\n    Env: [prod]\n\
         container:\n  port: 8080\n  publish: 80\n  memory: 64m\nenv:\n  clear:\n    A: one\n    \
         B: two\n  secret: [TOKEN]\n{extra}"
    );
    crate::config::parse(&yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap()
}

/// A host running what `config` at `sha` deploys.
fn host(config: &Config, sha: &str, target: &str) -> HostLive {
    HostLive {
        target: target.to_owned(),
        release: Some(LiveRelease {
            release: sha[..12].to_owned(),
            container: "c0ffee".repeat(10),
            image: format!("web@sha256:{}", "a".repeat(64)),
            revision: Some(sha.to_owned()),
            settings: Some(settings(config)),
            env: Some(env(config)),
        }),
        ..HostLive::default()
    }
}

fn against(config: &Config, hosts: Vec<HostLive>) -> LivePlan {
    let inputs = Inputs {
        live: Some(LiveInputs { hosts, lock: None }),
        ..Inputs::new(Revision::clean(SHA), TransportKind::Ssm)
    };
    build(config, &inputs).unwrap().live.unwrap()
}

#[test]
fn the_release_that_runs_is_unchanged() {
    let c = config("");
    let live = against(&c, vec![host(&c, SHA, "i-1"), host(&c, SHA, "i-2")]);
    assert!(
        live.targets
            .iter()
            .all(|t| t.verdict == Verdict::Unchanged && t.changes.is_empty()),
        "{live:?}"
    );
    assert_eq!(live.lines()[0], "fleet lock: free");
    assert_eq!(live.lines()[1], "2 target(s): 2 unchanged, 0 to change");
}

#[test]
fn each_change_is_named_and_only_it() {
    let before = config("");
    // One clear value, one setting, a secret's source: three lines, nothing else.
    let after = config("").clone();
    let mut after = after;
    after.env.clear.insert("A".into(), "uno".into());
    after.container.memory = Some("128m".into());
    after.env.sources.insert(
        "TOKEN".into(),
        crate::config::SecretSource::Ssm("/prod/token".into()),
    );
    let live = against(&after, vec![host(&before, SHA, "i-1")]);
    let t = &live.targets[0];
    assert_eq!(t.verdict, Verdict::Changes);
    assert_eq!(
        t.changes,
        [
            "env ~ A=uno (was another value)",
            "env ~ TOKEN: secret from environment → from ssm:/prod/token",
            "memory: 64m → 128m",
        ]
    );

    // Another commit: the release and the image; a key gone and one added.
    let mut next = before.clone();
    next.env.clear.remove("B");
    next.env.clear.insert("C".into(), "three".into());
    let other = "f".repeat(40);
    let live = against(&next, vec![host(&before, &other, "i-1")]);
    assert_eq!(
        live.targets[0].changes,
        [
            "release ffffffffffff → 0123456789ab",
            &format!(
                "image web@sha256:{} (commit ffffffffffff) → the image of commit 0123456789ab",
                "a".repeat(64)
            ),
            "env + C=three",
            "env - B",
        ]
    );
}

#[test]
fn colors_first_deploys_unlabelled_and_unreadable_targets_are_told() {
    let c = config("strategy: blue-green\n");
    let mut switching = host(&c, &"e".repeat(40), "i-1");
    switching.live_color = Some("blue".into());
    switching.idle_color = Some("green".into());
    let mut old = host(&c, SHA, "i-2");
    if let Some(r) = old.release.as_mut() {
        r.settings = None;
        r.env = None;
    }
    let first = HostLive {
        target: "i-3".into(),
        idle_color: Some("blue".into()),
        ..HostLive::default()
    };
    let unreadable = HostLive {
        target: "i-4".into(),
        error: Some("the Docker engine does not answer".into()),
        ..HostLive::default()
    };
    let live = against(&c, vec![switching, old, first, unreadable]);
    let t = &live.targets;
    assert_eq!(t[0].changes.last().unwrap(), "switch blue → green");
    assert_eq!(
        t[1].verdict,
        Verdict::Unlabelled,
        "not compared: not unchanged"
    );
    assert_eq!(t[1].notes.len(), 2, "{:?}", t[1].notes);
    assert_eq!(t[2].verdict, Verdict::FirstDeploy);
    assert_eq!(t[2].changes.last().unwrap(), "first color: blue");
    assert_eq!(t[3].verdict, Verdict::Unreadable);
}

/// The env label names secrets and their sources, and carries digests of clear values only.
#[test]
fn the_env_label_holds_no_secret_value() {
    let c = config("");
    let label = env(&c);
    assert_eq!(label["TOKEN"], "secret:environment");
    assert!(label["A"].starts_with("clear:"), "{label:?}");
    assert!(!label["A"].contains("one"));
}

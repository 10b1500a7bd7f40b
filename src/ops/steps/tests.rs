use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::domain::secrets::SecretEnv;
use crate::ops::execute::read_output;
use crate::output::summary::summary;
use crate::plan::TransportKind;
use crate::revision::Revision;
use crate::transport::{InvocationStatus, Job, Outcome, OutputSink, Transport};

fn plan() -> Plan {
    let yaml = "app: web\nimage:\n  repository: web\ntargets:\n  tags:\n    Env: [prod]\n\
                    container:\n  port: 8080\n";
    let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let inputs = Inputs {
        image_id: Some(format!("sha256:{}", "a".repeat(64))),
        ..Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            TransportKind::Local,
        )
    };
    plan::build(&config, &inputs).unwrap()
}

fn invocation(status: InvocationStatus, result: &str) -> Invocation {
    Invocation {
        target: "local".into(),
        status,
        exit_code: Some(i32::from(result != "deployed")),
        stdout: format!("HOIST-RESULT {{\"status\":\"{result}\"}}\n"),
        stderr: String::new(),
        stdout_truncated: false,
        command_id: None,
        stderr_truncated: false,
        outcome: None,
        duration: Duration::from_secs(1),
        result: None,
    }
}

/// The STATUS column says what happened, never a transport's word for it: a script that
/// exited 0 without reporting `deployed` did not deploy.
#[test]
fn each_target_is_judged_by_what_happened_there() {
    let judged = |mut inv: Invocation| {
        read_output(&mut inv, &SecretEnv::default());
        inv.outcome.unwrap()
    };
    let mut silent = invocation(InvocationStatus::Success, "deployed");
    silent.stdout = "hoist: deploying\n".into();
    assert_eq!(judged(silent), Outcome::Failed);
    assert_eq!(
        judged(invocation(InvocationStatus::Success, "deployed")),
        Outcome::Deployed
    );
    let mut unchanged = invocation(InvocationStatus::Success, "unchanged");
    unchanged.exit_code = Some(0);
    assert_eq!(judged(unchanged.clone()), Outcome::Unchanged);
    read_output(&mut unchanged, &SecretEnv::default());
    assert!(unchanged.deployed(), "unchanged counts as deployed");
    let mut rolled = invocation(InvocationStatus::Failed, "failed");
    rolled.stdout = "HOIST-RESULT {\"status\":\"failed\",\"rolled_back\":true}\n".into();
    assert_eq!(judged(rolled), Outcome::RolledBack);
    assert_eq!(
        judged(invocation(InvocationStatus::Failed, "failed")),
        Outcome::Failed
    );
    for status in [
        InvocationStatus::Undeliverable,
        InvocationStatus::DeliveryTimedOut,
        InvocationStatus::Pending,
    ] {
        let mut inv = invocation(status, "");
        inv.stdout.clear();
        assert_eq!(judged(inv), Outcome::NotStarted, "{status:?}");
    }
    let mut cancelled = invocation(InvocationStatus::Cancelled, "");
    cancelled.stdout.clear();
    assert_eq!(judged(cancelled), Outcome::Cancelled);
    let report_of = |inv: Invocation| {
        let mut inv = inv;
        read_output(&mut inv, &SecretEnv::default());
        let line = summary(&Report {
            app: "a".into(),
            release: "r".into(),
            plan: plan(),
            steps: Vec::new(),
            phases: vec![PhaseReport {
                name: "deploy".into(),
                invocations: vec![inv],
            }],
            deployed: 0,
            failed: 1,
            mixed_version_window_ms: None,
            cancelled: false,
            reviewed: None,
            timings: None,
            lock: None,
        });
        line.lines().nth(1).unwrap().to_owned()
    };
    let mut silent = invocation(InvocationStatus::Success, "deployed");
    silent.stdout = "hoist: deploying\n".into();
    let row = report_of(silent);
    assert!(row.contains("failed") && !row.contains("success"), "{row}");
}

/// A transport whose targets end as given; the cancel (a Ctrl-C) arrives after they
/// ended, before the transport returns.
/// ended, before the transport returns.
struct CancelledAfter(Mutex<Vec<Invocation>>);

#[async_trait]
impl Transport for CancelledAfter {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn run(
        &self,
        _job: &Job<'_>,
        cancel: CancellationToken,
        _sink: &dyn OutputSink,
    ) -> Result<Vec<Invocation>, crate::transport::TransportError> {
        let finished = std::mem::take(&mut *self.0.lock().unwrap());
        cancel.cancel();
        Ok(finished)
    }
}

/// Executes the plan's steps after the build (its image is resolved) through
/// `transport`.
async fn execute_with(transport: &dyn Transport, secrets: &SecretEnv) -> Report {
    let plan = plan();
    let from = plan.steps.iter().take_while(|s| s.precedes_hosts()).count();
    let progress = crate::domain::events::Silent;
    let runner = Runner {
        ssm: None,
        transport,
        secrets,
        progress: &progress,
        commands: None,
    };
    execute(plan, from, Vec::new(), &runner, CancellationToken::new())
        .await
        .unwrap()
}

async fn run_with(invocations: Vec<Invocation>) -> Report {
    let secrets = SecretEnv::resolve(&[], |_| None).unwrap();
    execute_with(&CancelledAfter(Mutex::new(invocations)), &secrets).await
}

#[tokio::test]
async fn a_cancel_after_every_target_finished_reports_the_finished_deploy() {
    let report = run_with(vec![invocation(InvocationStatus::Success, "deployed")]).await;
    assert!(!report.cancelled, "nothing was interrupted");
    assert!(report.ok());
    assert_eq!(report.deployed, 1);
}

#[tokio::test]
async fn a_cancel_that_stopped_a_running_target_is_an_interruption() {
    let report = run_with(vec![
        invocation(InvocationStatus::Success, "deployed"),
        invocation(InvocationStatus::Cancelled, "failed"),
    ])
    .await;
    assert!(report.cancelled);
    assert!(!report.ok());
}

/// A script's result line whose reason and health hold a secret value (JSON-escaped):
/// every field parsed from it, the summary and the JSON report show it masked.
#[tokio::test]
async fn output_is_redacted_before_the_result_line_is_parsed() {
    let value = "it's a\\back\"slash\tq9z7";
    let secrets = SecretEnv::resolve(&["TOKEN".to_owned()], |_| Some(value.into())).unwrap();
    let reason = format!("the registry refused token {value}");
    let line = serde_json::json!({
        "status": "failed",
        "reason": reason,
        "health": format!("probe answered {value}"),
    });
    let mut failed = invocation(InvocationStatus::Failed, "failed");
    failed.stdout = format!("hoist: pulling\nHOIST-RESULT {line}\n");
    failed.stderr = format!("hoist: failed: {reason}\n");
    let report = execute_with(&CancelledAfter(Mutex::new(vec![failed])), &secrets).await;
    let result = report.phases[0].invocations[0]
        .result
        .as_ref()
        .expect("parsed");
    assert_eq!(result.status, crate::domain::outcome::ResultStatus::Failed);
    assert_eq!(result.reason, "the registry refused token ***");
    assert_eq!(result.health, "probe answered ***");
    let table = summary(&report);
    assert!(table.contains("refused token ***"), "{table}");
    let json = serde_json::to_string(&report).unwrap();
    for shown in [&table, &json] {
        assert!(!shown.contains("q9z7"), "{shown}");
    }
}

/// A transport that answers each phase (by its script's body) with the given results per
/// target, and records what each run was given.
struct Scripted {
    results: std::collections::HashMap<&'static str, Vec<(&'static str, String)>>,
    runs: Mutex<Vec<(String, Vec<String>, bool)>>,
}

#[async_trait]
impl Transport for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn run(
        &self,
        job: &Job<'_>,
        _cancel: CancellationToken,
        _sink: &dyn OutputSink,
    ) -> Result<Vec<Invocation>, crate::transport::TransportError> {
        self.runs.lock().unwrap().push((
            job.script.body.clone(),
            job.targets.to_vec(),
            job.secrets.is_some(),
        ));
        let results = &self.results[job.script.body.as_str()];
        Ok(job
            .targets
            .iter()
            .map(|t| {
                let line = &results.iter().find(|(target, _)| target == t).unwrap().1;
                if line == "not started" {
                    return Invocation {
                        target: (*t).clone(),
                        status: InvocationStatus::Pending,
                        exit_code: None,
                        stdout: String::new(),
                        ..invocation(InvocationStatus::Pending, "")
                    };
                }
                let ok = line.contains("\"status\":\"staged\"")
                    || line.contains("\"status\":\"deployed\"")
                    || line.contains("\"status\":\"unchanged\"")
                    || line.contains("\"status\":\"discarded\"");
                Invocation {
                    target: (*t).clone(),
                    status: if ok {
                        InvocationStatus::Success
                    } else {
                        InvocationStatus::Failed
                    },
                    exit_code: Some(i32::from(!ok)),
                    stdout: format!("HOIST-RESULT {line}\n"),
                    ..invocation(InvocationStatus::Success, "")
                }
            })
            .collect())
    }
}

/// Runs a two-phase blue-green plan on targets a, b and c (max errors 0, a secret from
/// hoist's environment) through a transport answering `results`.
async fn two_phase(
    results: &[(&'static str, &[(&'static str, &str)])],
) -> (Report, Vec<(String, Vec<String>, bool)>) {
    let yaml = "app: web\ntargets:\n  tags:\n    Env: [prod]\n  max_concurrency: 1\n\
                    container:\n  publish: 8080\nstrategy: blue-green\nenv:\n  secret: [TOKEN]\n";
    let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
    let inputs = Inputs {
        image_id: Some(format!("sha256:{}", "a".repeat(64))),
        instances: Some(vec!["a".into(), "b".into(), "c".into()]),
        run: Some("20261206T170000Z-0a1b2c3d".into()),
        ..Inputs::new(
            Revision::clean("0123456789abcdef0123456789abcdef01234567"),
            TransportKind::Local,
        )
    };
    let plan = plan::build(&config, &inputs).unwrap();
    let transport = Scripted {
        results: results
            .iter()
            .map(|(body, rows)| {
                (
                    *body,
                    rows.iter().map(|(t, l)| (*t, (*l).to_owned())).collect(),
                )
            })
            .collect(),
        runs: Mutex::new(Vec::new()),
    };
    let secrets =
        SecretEnv::resolve(&["TOKEN".to_owned()], |_| Some("s3cr3t-value".into())).unwrap();
    let from = plan.steps.iter().take_while(|s| s.precedes_hosts()).count();
    let progress = crate::domain::events::Silent;
    let runner = Runner {
        ssm: None,
        transport: &transport,
        secrets: &secrets,
        progress: &progress,
        commands: None,
    };
    let report = execute(plan, from, Vec::new(), &runner, CancellationToken::new())
        .await
        .unwrap();
    (report, transport.runs.into_inner().unwrap())
}

const STAGED: &str = r#"{"status":"staged","container":"web-v2"}"#;

#[tokio::test]
async fn staging_that_passed_switches_the_staged_targets_and_measures_the_window() {
    let (report, runs) = two_phase(&[
        (
            "bg-stage.sh",
            &[
                ("a", STAGED),
                ("b", STAGED),
                ("c", r#"{"status":"unchanged"}"#),
            ],
        ),
        (
            "bg-switch.sh",
            &[
                ("a", r#"{"status":"deployed","switched_at":1700000001000}"#),
                ("b", r#"{"status":"deployed","switched_at":1700000004250}"#),
            ],
        ),
    ])
    .await;
    // The unchanged target has nothing staged: the switch runs on the others, without
    // the secrets.
    assert_eq!(
        runs,
        [
            (
                "bg-stage.sh".into(),
                vec!["a".into(), "b".into(), "c".into()],
                true
            ),
            ("bg-switch.sh".into(), vec!["a".into(), "b".into()], false),
        ]
    );
    assert!(report.ok(), "{report:?}");
    assert_eq!((report.deployed, report.failed), (3, 0));
    assert_eq!(report.mixed_version_window_ms, Some(3250));
    let discard = report
        .steps
        .iter()
        .find(|s| s.phase.as_deref() == Some("discard"))
        .unwrap();
    assert_eq!(discard.status, StepStatus::Skipped, "{discard:?}");
    let text = summary(&report);
    assert!(text.contains("mixed-version window: 3.250 s"), "{text}");
    assert!(
        text.contains("stage: staged") && text.contains("switch: deployed"),
        "{text}"
    );
}

#[tokio::test]
async fn staging_failed_beyond_max_errors_switches_nothing_and_discards_what_was_staged() {
    let failed = r#"{"status":"failed","reason":"docker start failed: port is already allocated","rolled_back":true}"#;
    let (report, runs) = two_phase(&[
        (
            "bg-stage.sh",
            &[("a", STAGED), ("b", failed), ("c", STAGED)],
        ),
        (
            "bg-discard.sh",
            &[
                ("a", r#"{"status":"discarded"}"#),
                ("c", r#"{"status":"discarded"}"#),
            ],
        ),
    ])
    .await;
    assert_eq!(
        runs,
        [
            (
                "bg-stage.sh".into(),
                vec!["a".into(), "b".into(), "c".into()],
                true
            ),
            ("bg-discard.sh".into(), vec!["a".into(), "c".into()], false),
        ]
    );
    assert!(!report.ok());
    assert_eq!((report.deployed, report.failed), (0, 3));
    assert_eq!(report.mixed_version_window_ms, None);
    let switch = report
        .steps
        .iter()
        .find(|s| s.phase.as_deref() == Some("switch"))
        .unwrap();
    assert_eq!(switch.status, StepStatus::NotRun);
    assert!(
        switch
            .detail
            .contains("failed on 1 of 3 target(s), more than max errors (0) allow"),
        "{}",
        switch.detail
    );
    let text = summary(&report);
    for row in [
        "stage: rolled back",
        "discard: discarded",
        "run-phase switch not run",
    ] {
        assert!(text.contains(row), "{row} in {text}");
    }
}

/// The switch stopped past its max errors before it reached two targets: they stay
/// staged, unserved, and the discard removes what they staged.
#[tokio::test]
async fn a_switch_that_stopped_early_leaves_nothing_staged() {
    let (report, runs) = two_phase(&[
        (
            "bg-stage.sh",
            &[("a", STAGED), ("b", STAGED), ("c", STAGED)],
        ),
        (
            "bg-switch.sh",
            &[
                ("a", r#"{"status":"failed","rolled_back":true}"#),
                ("b", "not started"),
                ("c", "not started"),
            ],
        ),
        (
            "bg-discard.sh",
            &[
                ("b", r#"{"status":"discarded"}"#),
                ("c", r#"{"status":"discarded"}"#),
            ],
        ),
    ])
    .await;
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert_eq!(
        runs[2],
        ("bg-discard.sh".into(), vec!["b".into(), "c".into()], false)
    );
    assert!(!report.ok());
    assert_eq!((report.deployed, report.failed), (0, 3));
}

/// What a run told its events, in order: what `-q`, `-v` and GitHub Actions mode show is
/// chosen from these calls (`output::progress`, `github::Grouped`).
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl Recording {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl crate::domain::Events for Recording {
    fn activity(&self, msg: &str) {
        self.push(format!("activity {msg}"));
    }
    fn detail(&self, msg: &str) {
        self.push(format!("detail {msg}"));
    }
    fn done(&self, msg: &str) {
        self.push(format!("done {msg}"));
    }
    fn info(&self, msg: &str) {
        self.push(format!("info {msg}"));
    }
    fn warn(&self, msg: &str) {
        self.push(format!("warn {msg}"));
    }
    fn verbose(&self, msg: &str) {
        self.push(format!("verbose {msg}"));
    }
    fn host_line(&self, target: &str, line: &str) {
        self.push(format!("line {target} {line}"));
    }
    fn host_status(&self, target: &str, message: &str) {
        self.push(format!("status {target} {message}"));
    }
    fn judged(&self, phase: &str, inv: &Invocation) {
        self.push(format!(
            "judged {phase} {} {}",
            inv.target,
            inv.stdout.trim_end()
        ));
    }
}

/// A transport whose targets print a secret value as they go (a line each, and a status of
/// the transport's own), then finish: `a` deployed, `b` failed.
struct Chatty(&'static str);

#[async_trait]
impl Transport for Chatty {
    fn name(&self) -> &'static str {
        "chatty"
    }

    async fn run(
        &self,
        job: &Job<'_>,
        _cancel: CancellationToken,
        sink: &dyn OutputSink,
    ) -> Result<Vec<Invocation>, crate::transport::TransportError> {
        let mut done = Vec::new();
        for (i, target) in ["a", "b"].into_iter().enumerate() {
            sink.status(target, &format!("command sent with {}", self.0));
            sink.line(target, &format!("hoist: logging in with {}", self.0));
            let status = if i == 0 { "deployed" } else { "failed" };
            let mut inv = invocation(
                if i == 0 {
                    InvocationStatus::Success
                } else {
                    InvocationStatus::Failed
                },
                status,
            );
            inv.target = target.into();
            inv.stdout = format!(
                "hoist: logging in with {}\nHOIST-RESULT {{\"status\":\"{status}\"}}\n",
                self.0
            );
            done.push(inv);
        }
        assert_eq!(
            job.targets.len(),
            1,
            "the plan's one target, answered as two"
        );
        Ok(done)
    }
}

/// In process, with a fake transport: each target's lines reach the events as they come and
/// before the target is judged, each target is judged once with its whole output, and no
/// event carries a secret value (lines, statuses and judged output are redacted first).
#[tokio::test]
async fn events_see_each_targets_lines_then_its_judgement_redacted() {
    let value = "hoist-inproc-secret-7a1c";
    let secrets = SecretEnv::resolve(&["TOKEN".to_owned()], |_| Some(value.into())).unwrap();
    let plan = plan();
    let from = plan.steps.iter().take_while(|s| s.precedes_hosts()).count();
    let events = Recording::default();
    let transport = Chatty(value);
    let runner = Runner {
        ssm: None,
        transport: &transport,
        secrets: &secrets,
        progress: &events,
        commands: None,
    };
    let report = execute(plan, from, Vec::new(), &runner, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((report.deployed, report.failed), (1, 1));
    let lines = events.lines();
    assert!(lines.iter().all(|l| !l.contains(value)), "{lines:#?}");
    for target in ["a", "b"] {
        let at = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(&format!("{prefix} {target} ")))
                .unwrap_or_else(|| panic!("no {prefix} for {target}: {lines:#?}"))
        };
        assert!(at("status") < at("line"), "{lines:#?}");
        let judged: Vec<_> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("judged deploy {target} ")))
            .collect();
        assert_eq!(judged.len(), 1, "{lines:#?}");
        assert!(at("line") < at("judged deploy"), "{lines:#?}");
        assert!(
            judged[0].contains("logging in with ***") && judged[0].contains("HOIST-RESULT"),
            "{}",
            judged[0]
        );
    }
}

//! `hoist deploy`: execute a plan's steps in order, and judge every target.
//!
//! The publishing steps (ensure the repository, build, push) run first, as the plan made
//! before the image existed shows them; the plan is then made again with the image pinned to
//! what they produced (its publishing steps are the ones that ran), and its remaining steps
//! run: put the secret parameter, run each phase through the transport, delete the secret
//! parameter. What a host runs is byte for byte the script of the plan in the report.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::build::{Publisher, short_id};
use super::execute::{
    PhaseReport, PhaseRun, Runner, StepReport, StepStatus, delete_parameter, put_parameter,
    run_phase,
};
use super::timings::Timings;
use crate::config::Config;
use crate::domain::{Invocation, Phase, PhaseTargets, PhaseWhen, Step};
use crate::ecr::EcrError;
use crate::image::{BuildError, PushError};
use crate::plan::{self, Inputs, Plan};
use crate::transport::TransportError;
use crate::transport::ssm::SsmError;

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(transparent)]
    Ecr(#[from] EcrError),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("cannot put the secret parameter: {0}")]
    SecretParameter(SsmError),
    #[error("--image {0}: {1}")]
    BadImage(String, String),
    #[error("the Docker engine failed: {0}")]
    Docker(bollard::errors::Error),
    #[error("this deploy cannot execute the plan: {0}")]
    Unsupported(String),
    #[error("interrupted before any host was changed")]
    Interrupted,
    #[error(transparent)]
    Reviewed(#[from] plan::review::Refusal),
    #[error(transparent)]
    Revision(#[from] crate::image::RevisionError),
    #[error(
        "{image} is labelled with revision {found}, not the plan's commit {expected}: the \
         tag no longer holds the reviewed commit's image, so nothing was changed"
    )]
    WrongRevision {
        image: String,
        found: String,
        expected: String,
    },
}

/// What happened, for the summary table and `--format json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub app: String,
    pub release: String,
    /// The plan executed: its steps are the steps below.
    pub plan: Plan,
    pub steps: Vec<StepReport>,
    pub phases: Vec<PhaseReport>,
    /// Targets that ended deployed (or unchanged), and the others: each target as the last
    /// phase that ran on it left it (a target staged and then discarded did not deploy).
    pub deployed: usize,
    pub failed: usize,
    /// How long the fleet served two versions: from the first target's switch to the last
    /// one's (their `switched_at`, each host's clock), when at least one switched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mixed_version_window_ms: Option<u64>,
    /// A cancel (Ctrl-C, SIGTERM) interrupted at least one target's run. A cancel that came
    /// after every target had finished does not count: the report is then the deploy's.
    pub cancelled: bool,
    /// With a reviewed plan (`deploy --plan`): each phase's script as reviewed and as
    /// executed (they differ only in the image reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewed: Option<Vec<plan::review::ScriptPair>>,
    /// Where the time went (the command line fills it in once the deploy ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
    /// Over SSM: the fleet-wide lock the deploy held, and how long it waited for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<crate::lock::LockReport>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed == 0
            && self.deployed > 0
            && !self.cancelled
            && self.steps.iter().all(|s| s.status != StepStatus::Failed)
    }
}

/// A plan saved for review (`hoist plan --out`) that a deploy applies, and the file it was
/// read from (named in refusals).
#[derive(Clone, Copy)]
pub struct Reviewed<'a> {
    pub plan: &'a Plan,
    pub path: &'a str,
}

/// Deploys: plans, runs the publishing steps, plans again with the image they made, and
/// runs the rest. With `inputs.image_id` already set (`--image`) there is nothing to
/// publish and the plan is made once.
pub async fn deploy(
    config: &Config,
    inputs: Inputs,
    publisher: Publisher<'_>,
    runner: &Runner<'_>,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    publish_then_execute(config, inputs, None, publisher, runner, cancel).await
}

/// Applies a reviewed plan: as [`deploy`], and before any step after publishing runs, checks
/// that the plan with the image pinned differs from the reviewed one only in the image
/// reference (the caller checked that the plan made now equals the reviewed one).
pub async fn apply(
    config: &Config,
    inputs: Inputs,
    reviewed: Reviewed<'_>,
    publisher: Publisher<'_>,
    runner: &Runner<'_>,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    publish_then_execute(config, inputs, Some(reviewed), publisher, runner, cancel).await
}

async fn publish_then_execute(
    config: &Config,
    inputs: Inputs,
    reviewed: Option<Reviewed<'_>>,
    publisher: Publisher<'_>,
    runner: &Runner<'_>,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    let draft = plan::build(config, &inputs)?;
    let mut publisher = publisher;
    let (published, reports) = publish(&draft, &mut publisher, &cancel).await?;
    let plan = match publisher.published() {
        Some(image) => plan::build(
            config,
            &Inputs {
                image_id: Some(image.reference),
                registry: image.registry.or(inputs.registry.clone()),
                ..inputs
            },
        )?,
        None => draft,
    };
    if plan.steps.get(..published.len()) != Some(published.as_slice()) {
        return Err(DeployError::Unsupported(
            "the plan's publishing steps changed once the image was known".into(),
        ));
    }
    let Some(reviewed) = reviewed else {
        return execute(plan, published.len(), reports, runner, cancel).await;
    };
    let pairs = plan::review::image_only(reviewed.plan, &plan).map_err(|differences| {
        plan::review::Refusal {
            path: reviewed.path.to_owned(),
            differences,
        }
    })?;
    for pair in &pairs {
        runner.progress.done(&format!(
            "{} script: sha256 {} reviewed, {} executed (only {} differ: the image)",
            pair.phase,
            short_id(&pair.reviewed_sha256),
            short_id(&pair.executed_sha256),
            plan::review::IMAGE_PARAMS.join(", ")
        ));
    }
    let mut report = execute(plan, published.len(), reports, runner, cancel).await?;
    report.reviewed = Some(pairs);
    Ok(report)
}

/// Runs a plan's publishing steps (the leading ensure-repository, build and push) with
/// `publisher`; returns them and their reports. What they made is `publisher.published()`.
pub async fn publish(
    plan: &Plan,
    publisher: &mut Publisher<'_>,
    cancel: &CancellationToken,
) -> Result<(Vec<Step>, Vec<StepReport>), DeployError> {
    let published: Vec<Step> = plan
        .steps
        .iter()
        .take_while(|s| s.publishes())
        .cloned()
        .collect();
    let mut reports = Vec::new();
    for step in &published {
        let started = Instant::now();
        let (status, detail) = tokio::select! {
            done = publisher.execute(step) => done?,
            () = cancel.cancelled() => return Err(DeployError::Interrupted),
        };
        reports.push(StepReport {
            step: step.kind(),
            phase: None,
            status,
            detail,
            duration: started.elapsed(),
        });
    }
    Ok((published, reports))
}

/// Executes `plan.steps[from..]` (the steps before it ran already, as `reports` says): a
/// plan whose image is resolved. Output is redacted of secret values before it is shown or
/// returned. The secret parameter a step put is deleted however the phases end.
pub async fn execute(
    plan: Plan,
    from: usize,
    mut reports: Vec<StepReport>,
    runner: &Runner<'_>,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    let s = runner;
    let mut phases: Vec<PhaseReport> = Vec::new();
    // The parameter this run put, and whether a cancel already deleted it.
    let mut put: Option<(String, bool)> = None;
    let mut error: Option<DeployError> = None;
    let parameter_lifetime = secret_lifetime(&plan);
    for step in &plan.steps[from..] {
        let started = Instant::now();
        let mut report = |status: StepStatus, detail: String, phase: Option<&Phase>| {
            reports.push(StepReport {
                step: step.kind(),
                phase: phase.map(|p| p.name.clone()),
                status,
                detail,
                duration: started.elapsed(),
            });
        };
        match step {
            Step::DeleteSecretParameter { name } => {
                match put.take() {
                    Some((put_name, true)) if &put_name == name => report(
                        StepStatus::Done,
                        "deleted when the deploy was cancelled".into(),
                        None,
                    ),
                    Some((put_name, false)) if &put_name == name => {
                        let (status, detail) = delete_parameter(s, name).await;
                        report(status, detail, None);
                    }
                    other => {
                        put = other;
                        report(StepStatus::NotRun, "nothing was put".into(), None);
                    }
                }
                continue;
            }
            _ if error.is_some() => {
                report(StepStatus::NotRun, "an earlier step failed".into(), None);
                continue;
            }
            _ if cancel.is_cancelled() => {
                report(StepStatus::NotRun, "the deploy was cancelled".into(), None);
                continue;
            }
            _ => {}
        }
        match step {
            Step::PutSecretParameter { name, tier, names } => {
                match put_parameter(&plan, s, name, *tier, parameter_lifetime).await {
                    Ok(()) => {
                        put = Some((name.clone(), false));
                        s.progress.done(&format!("put the secret parameter {name}"));
                        report(
                            StepStatus::Done,
                            format!("{} in {name}", names.join(", ")),
                            None,
                        );
                    }
                    Err(e) => {
                        report(StepStatus::Failed, e.to_string(), None);
                        error = Some(e);
                    }
                }
            }
            Step::RunPhase(phase) => {
                if let Some(why) = skip_phase(&plan, phase, &phases) {
                    s.progress
                        .done(&format!("phase {}: not run: {why}", phase.name));
                    report(StepStatus::NotRun, why, Some(phase));
                    continue;
                }
                let targets = phase_targets(&plan, phase, &phases);
                if targets.is_empty() {
                    report(
                        StepStatus::Skipped,
                        format!(
                            "no target to run on (it runs on {}: none)",
                            phase.targets.describe(&phase.on)
                        ),
                        Some(phase),
                    );
                    continue;
                }
                let run = PhaseRun {
                    comment: format!("hoist deploy {} release {}", plan.app, plan.release),
                    targets,
                    parameter: put.as_ref().map(|(name, _)| name.as_str()),
                };
                match run_phase(phase, run, s, &cancel).await {
                    Ok((judged, deleted_early)) => {
                        if deleted_early && let Some(p) = put.as_mut() {
                            p.1 = true;
                        }
                        let ok = judged.iter().filter(|i| i.deployed()).count();
                        let status = if ok == judged.len() && !judged.is_empty() {
                            StepStatus::Done
                        } else {
                            StepStatus::Failed
                        };
                        report(
                            status,
                            format!("{ok} of {} target(s) succeeded", judged.len()),
                            Some(phase),
                        );
                        phases.push(PhaseReport {
                            name: phase.name.clone(),
                            invocations: judged,
                        });
                    }
                    Err((e, deleted_early)) => {
                        if deleted_early && let Some(p) = put.as_mut() {
                            p.1 = true;
                        }
                        report(StepStatus::Failed, e.to_string(), Some(phase));
                        error = Some(e);
                    }
                }
            }
            other => {
                let e = DeployError::Unsupported(format!(
                    "a {} step after the publishing steps",
                    other.kind().as_str()
                ));
                report(StepStatus::Failed, e.to_string(), None);
                error = Some(e);
            }
        }
    }
    if let Some(e) = error {
        return Err(e);
    }
    let (deployed, failed) = final_counts(&phases);
    let mixed_version_window_ms = mixed_version_window(&phases);
    if let Some(ms) = mixed_version_window_ms {
        s.progress.done(&format!(
            "mixed-version window: {:.3} s (from the first target's switch to the last's)",
            Duration::from_millis(ms).as_secs_f64()
        ));
    }
    let cancelled = cancel.is_cancelled()
        && phases
            .iter()
            .flat_map(|p| &p.invocations)
            .any(Invocation::interrupted);
    Ok(Report {
        app: plan.app.clone(),
        release: plan.release.clone(),
        plan,
        steps: reports,
        phases,
        deployed,
        failed,
        mixed_version_window_ms,
        cancelled,
        reviewed: None,
        timings: None,
        lock: None,
    })
}

/// Why a phase does not run, given how the earlier ones went (its `when`); `None` when it
/// runs.
fn skip_phase(plan: &Plan, phase: &Phase, done: &[PhaseReport]) -> Option<String> {
    let (earlier, want_passed) = match &phase.when {
        PhaseWhen::Always => return None,
        PhaseWhen::Passed(p) => (p, true),
        PhaseWhen::Failed(p) => (p, false),
    };
    let Some(report) = done.iter().find(|p| &p.name == earlier) else {
        return Some(format!("phase {earlier} did not run"));
    };
    let earlier_phase = plan.phases().find(|p| &p.name == earlier)?;
    let policy = earlier_phase.policy;
    let canary = matches!(earlier_phase.targets, PhaseTargets::Canary { .. });
    let total = report.invocations.len();
    let failed = report.invocations.iter().filter(|i| !i.deployed()).count();
    let allowed = crate::transport::ssm::allowed_errors(policy.max_errors, total);
    let passed = total > 0 && failed <= allowed;
    if passed == want_passed {
        return None;
    }
    Some(if passed {
        format!(
            "phase {earlier} failed on {failed} of {total} target(s), within max errors \
             ({allowed}): nothing to discard"
        )
    } else if canary {
        format!(
            "phase {earlier} failed on {failed} of {total} canary target(s), more than max \
             errors ({allowed}) allow: no other target switches"
        )
    } else {
        format!(
            "phase {earlier} failed on {failed} of {total} target(s), more than max errors \
             ({allowed}) allow: nothing switched anywhere"
        )
    })
}

/// Deployed and failed targets: each target of the first phase as the last phase that ran
/// on it left it.
fn final_counts(phases: &[PhaseReport]) -> (usize, usize) {
    let Some(first) = phases.first() else {
        return (0, 0);
    };
    let deployed = first
        .invocations
        .iter()
        .filter(|inv| {
            let last = phases
                .iter()
                .rev()
                .flat_map(|p| p.invocations.iter())
                .find(|i| i.target == inv.target)
                .unwrap_or(inv);
            last.deployed() && last.staged_or_discarded().is_none()
        })
        .count();
    (deployed, first.invocations.len() - deployed)
}

/// From the first target's switch to the last one's, over the targets that switched (their
/// `switched_at`), in every phase: a canary's switch opens the window.
fn mixed_version_window(phases: &[PhaseReport]) -> Option<u64> {
    let times: Vec<u64> = phases
        .iter()
        .flat_map(|p| &p.invocations)
        .filter_map(|i| i.result.as_ref().and_then(|r| r.switched_at))
        .collect();
    Some(times.iter().max()? - times.iter().min()?)
}

/// How long the run's secret parameter may live: every delivery and run of every phase,
/// and a margin; the sweep of a later deploy deletes it after that.
fn secret_lifetime(plan: &Plan) -> Duration {
    plan.phases()
        .map(|p| crate::transport::ssm::DELIVERY_TIMEOUT + p.timeout)
        .sum::<Duration>()
        + Duration::from_secs(15 * 60)
}

/// The targets a phase runs on.
fn phase_targets(plan: &Plan, phase: &Phase, done: &[PhaseReport]) -> Vec<String> {
    match &phase.targets {
        PhaseTargets::All => plan
            .targets
            .resolved
            .clone()
            .unwrap_or_else(|| vec!["local".to_owned()]),
        PhaseTargets::Passed(earlier) => done
            .iter()
            .filter(|p| &p.name == earlier)
            .flat_map(|p| &p.invocations)
            .filter(|i| i.deployed())
            .map(|i| i.target.clone())
            .collect(),
        PhaseTargets::Staged(earlier) => staged_targets(earlier, done),
        PhaseTargets::Canary { stage, count, .. } => {
            let mut staged = staged_targets(stage, done);
            if let Some(order) = &plan.targets.resolved {
                staged.sort_by_key(|t| order.iter().position(|o| o == t));
            }
            let n = crate::config::Canary::of(*count, staged.len());
            staged.into_iter().take(n).collect()
        }
        PhaseTargets::AfterCanary { stage, canary } => {
            let given = |target: &String| {
                done.iter()
                    .filter(|p| &p.name == canary)
                    .flat_map(|p| &p.invocations)
                    .any(|i| &i.target == target)
            };
            staged_targets(stage, done)
                .into_iter()
                .filter(|t| !given(t))
                .collect()
        }
        PhaseTargets::Unswitched { stage, switches } => {
            let staged = staged_targets(stage, done);
            let started = |target: &String| {
                done.iter()
                    .filter(|p| switches.contains(&p.name))
                    .flat_map(|p| &p.invocations)
                    .any(|i| {
                        &i.target == target
                            && !matches!(
                                i.outcome.unwrap_or_else(|| i.judge()),
                                crate::transport::Outcome::NotStarted
                                    | crate::transport::Outcome::Cancelled
                            )
                    })
            };
            staged.into_iter().filter(|t| !started(t)).collect()
        }
    }
}

/// The targets where phase `stage` staged the release.
fn staged_targets(stage: &str, done: &[PhaseReport]) -> Vec<String> {
    done.iter()
        .filter(|p| p.name == stage)
        .flat_map(|p| &p.invocations)
        .filter(|i| i.staged_or_discarded() == Some(crate::transport::Outcome::Staged))
        .map(|i| i.target.clone())
        .collect()
}

#[cfg(test)]
mod tests {
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
        let from = plan.steps.iter().take_while(|s| s.publishes()).count();
        let progress = crate::domain::events::Silent;
        let runner = Runner {
            ssm: None,
            transport,
            secrets,
            progress: &progress,
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
        let from = plan.steps.iter().take_while(|s| s.publishes()).count();
        let progress = crate::domain::events::Silent;
        let runner = Runner {
            ssm: None,
            transport: &transport,
            secrets: &secrets,
            progress: &progress,
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
}

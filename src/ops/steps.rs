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
    #[error(
        "host checks failed, no host was changed (`hoist doctor` checks every host in full):\n{}",
        .0.join("\n")
    )]
    HostsNotReady(Vec<String>),
    #[error(transparent)]
    Reviewed(#[from] plan::review::Refusal),
    #[error(
        "tag {tag} of ECR repository {repository} holds {found}, not {recorded}, the digest \
         hoist recorded in {parameter} when it pushed this commit's image: the tag was pushed \
         over, so hoist does not trust it and nothing was changed (deploy the recorded image \
         with --image <registry>/{repository}@{recorded}; or, if you vouch for the new \
         image, delete {parameter} and hoist builds, pushes and records this commit again)"
    )]
    TagMoved {
        repository: String,
        tag: String,
        found: String,
        recorded: String,
        parameter: String,
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
    // Every target has what the scripts need, checked beside the build and push (which
    // change no host), before any step that changes a host. A failed check stops the build.
    let mut publisher = publisher;
    let publishing = cancel.child_token();
    let check = async {
        let checked = super::doctor::check_hosts(&draft, runner, &cancel).await;
        if checked.is_err() {
            publishing.cancel();
        }
        checked
    };
    let (checked, published) = tokio::join!(check, publish(&draft, &mut publisher, &publishing));
    let (checked, mut reports) = checked?;
    let (published, published_reports) = published?;
    reports.extend(published_reports);
    let executed_inputs = match publisher.published() {
        Some(image) => Inputs {
            image_id: Some(image.reference),
            registry: image.registry.or(inputs.registry.clone()),
            ..inputs
        },
        None => inputs,
    };
    let (executed_image, executed_registry) = (
        executed_inputs.image_id.clone(),
        executed_inputs.registry.clone(),
    );
    let plan = match publisher.published() {
        Some(_) => plan::build(config, &executed_inputs)?,
        None => draft,
    };
    if plan.steps.get(checked..checked + published.len()) != Some(published.as_slice()) {
        return Err(DeployError::Unsupported(
            "the plan's publishing steps changed once the image was known".into(),
        ));
    }
    let Some(reviewed) = reviewed else {
        return execute(plan, checked + published.len(), reports, runner, cancel).await;
    };
    // Built with the reviewed commit, release and run, the executed plan must be the
    // reviewed one but for the image.
    let as_reviewed = plan::build(
        config,
        &Inputs {
            image_id: executed_image,
            registry: executed_registry,
            ..plan::review::as_reviewed(reviewed.plan, &executed_inputs)
        },
    )?;
    let pairs =
        plan::review::image_only(reviewed.plan, &as_reviewed, &plan).map_err(|differences| {
            plan::review::Refusal {
                path: reviewed.path.to_owned(),
                differences,
            }
        })?;
    for pair in &pairs {
        runner.progress.done(&format!(
            "{} script: sha256 {} reviewed, {} executed (they differ only in the image ({}), \
             and in the commit, release and run, which are this apply's own)",
            pair.phase,
            short_id(&pair.reviewed_sha256),
            short_id(&pair.executed_sha256),
            plan::review::IMAGE_PARAMS.join(", ")
        ));
    }
    let mut report = execute(plan, checked + published.len(), reports, runner, cancel).await?;
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
        .skip_while(|s| matches!(s, Step::CheckHosts { .. }))
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
    let n = plan.targets.resolved.as_ref().map_or(1, Vec::len);
    plan.phases()
        .map(|p| {
            crate::domain::waves::Spread::of(p.policy.max_concurrency, n).worst_case(p.timeout)
        })
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
mod tests;

//! Host checks. A deploy's check-hosts step: the doctor script's cheap checks on every
//! target at once, beside the build and before any host changes, and the deploy refused
//! (naming each target and what it lacks) when one fails. And `hoist doctor`: every check on every target (the SSM
//! agent, the host's tools, engine, nginx, disk, clock and parameter access) and on this
//! machine (Docker, AWS credentials and region, git), as one report.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::execute::{Runner, StepReport, StepStatus};
use super::steps::DeployError;
use crate::config;
use crate::domain::checks::{self, Check, CheckStatus, TargetChecks};
use crate::domain::{Events, Invocation, Phase, Step, TransportKind};
use crate::plan::Plan;
use crate::plan::doctor::{CheckSet, doctor_phase};
use crate::transport::{Job, LocalTransport, OutputSink, SsmTransport, Transport};

/// Milliseconds since the epoch, by this machine's clock.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Records the commands sent (under the fleet lock) and drops the hosts' lines: what each
/// target found is in its `HOIST-DOCTOR` line.
struct Sink<'a> {
    commands: Option<&'a crate::lock::CommandRecorder>,
}

impl OutputSink for Sink<'_> {
    fn line(&self, _target: &str, _line: &str) {}

    fn command_sent(&self, command_id: &str) {
        if let Some(commands) = self.commands {
            commands.record(command_id);
        }
    }
}

/// Runs `phase` on `targets` and judges each one's checks.
async fn run_checks(
    phase: &Phase,
    targets: &[String],
    transport: &dyn Transport,
    commands: Option<&crate::lock::CommandRecorder>,
    comment: String,
    cancel: &CancellationToken,
) -> Result<Vec<TargetChecks>, crate::transport::TransportError> {
    let job = Job {
        script: &phase.script,
        secrets: None,
        targets,
        policy: phase.policy,
        timeout: phase.timeout,
        comment,
    };
    let sent = now_ms();
    let invocations: Vec<Invocation> = transport
        .run(&job, cancel.clone(), &Sink { commands })
        .await?;
    let received = now_ms();
    Ok(invocations
        .iter()
        .map(|inv| checks::judge(inv, sent, received))
        .collect())
}

/// The plan's check-hosts step, when it has one (its first): every target checked at once.
/// Its report, and how many steps it was (0 or 1); an error naming each target that failed a
/// check, before any host changed.
pub(super) async fn check_hosts(
    plan: &Plan,
    runner: &Runner<'_>,
    cancel: &CancellationToken,
) -> Result<(usize, Vec<StepReport>), DeployError> {
    let Some(Step::CheckHosts { checks, phase }) = plan.steps.first() else {
        return Ok((0, Vec::new()));
    };
    let started = Instant::now();
    let targets = plan
        .targets
        .resolved
        .clone()
        .unwrap_or_else(|| vec!["local".to_owned()]);
    runner.progress.activity(&format!(
        "checking {} target(s): {}",
        targets.len(),
        checks.join(", ")
    ));
    let judged = tokio::select! {
        judged = run_checks(
            phase,
            &targets,
            runner.transport,
            runner.commands,
            format!("hoist deploy {} release {}: host checks", plan.app, plan.release),
            cancel,
        ) => judged?,
        () = cancel.cancelled() => return Err(DeployError::Interrupted),
    };
    if cancel.is_cancelled() {
        return Err(DeployError::Interrupted);
    }
    for target in &judged {
        for warning in target.warnings() {
            runner.progress.warn(&format!(
                "warning: [{}] {}: {}",
                target.target, warning.name, warning.detail
            ));
        }
    }
    let failed: Vec<String> = judged
        .iter()
        .flat_map(|t| {
            t.failed()
                .map(move |c| format!("  {}: {}: {}", t.target, c.name, c.detail))
        })
        .collect();
    if !failed.is_empty() {
        return Err(DeployError::HostsNotReady(failed));
    }
    let detail = format!(
        "{} target(s) have {}",
        judged.len(),
        if checks.is_empty() {
            "what the deploy needs".to_owned()
        } else {
            checks.join(", ")
        }
    );
    runner.progress.done(&format!("check hosts: {detail}"));
    Ok((
        1,
        vec![StepReport {
            step: crate::domain::StepKind::CheckHosts,
            phase: Some(phase.name.clone()),
            status: StepStatus::Done,
            detail,
            duration: started.elapsed(),
        }],
    ))
}

/// `hoist doctor`'s report: this machine's checks, and each target's.
#[derive(Debug, Serialize)]
pub struct Report {
    pub runner: Vec<Check>,
    pub targets: Vec<TargetChecks>,
}

impl Report {
    pub fn failures(&self) -> usize {
        self.runner
            .iter()
            .chain(self.targets.iter().flat_map(|t| &t.checks))
            .filter(|c| c.status == CheckStatus::Fail)
            .count()
    }
}

/// How long this machine's own checks may take, each.
const RUNNER_CHECK: Duration = Duration::from_secs(20);

/// `hoist doctor`: this machine's checks, then every target's (over SSM: the agent, then
/// the script on the targets whose agent is online).
pub async fn doctor(
    file: &config::Source,
    local: bool,
    only: &[String],
    events: &dyn Events,
    cancel: &CancellationToken,
) -> Result<Report, Error> {
    let config = file.load(config::Files::None)?;
    let transport = super::prepare::transport_kind(local);
    let mut runner = vec![docker_check().await];
    runner.push(git_check(&config));
    let mut targets = Vec::new();
    if transport == TransportKind::Local {
        events.activity("checking this machine as the host");
        let region =
            crate::aws::region(config.region.as_deref(), crate::aws::RegionLookup::Local).await;
        let phase = doctor_phase(&config, transport, CheckSet::Doctor, region.as_deref())
            .map_err(|e| Error::Plan(e.into()))?;
        let local_targets = vec!["local".to_owned()];
        targets = run_checks(
            &phase,
            &local_targets,
            &LocalTransport::default(),
            None,
            format!("hoist doctor {}", config.app),
            cancel,
        )
        .await
        .map_err(|e| Error::Deploy(e.into()))?;
    } else {
        let aws = super::prepare::Aws::new(&config).await;
        let region = aws.sdk.region().map(ToString::to_string);
        runner.push(match &region {
            Some(r) => Check::new("region", CheckStatus::Ok, r.clone()),
            None => Check::new(
                "region",
                CheckStatus::Fail,
                "no AWS region: set `region:` in hoist.yaml, or AWS_REGION",
            ),
        });
        runner.push(credentials_check(&aws.sdk).await);
        if region.is_none()
            || runner
                .iter()
                .any(|c| c.name == "credentials" && c.status == CheckStatus::Fail)
        {
            return Ok(Report { runner, targets });
        }
        events.activity("asking SSM about the targets");
        let (ids, found) = tokio::select! {
            found = crate::transport::ssm::instances(&aws.ssm, &config.targets) => found.map_err(Error::Preflight)?,
            () = cancel.cancelled() => return Err(Error::Interrupted("while SSM answered")),
        };
        let ids = super::remote::pick(ids, only)?;
        let mut online = Vec::new();
        for id in &ids {
            let agent = agent_check(found.get(id));
            if agent.status == CheckStatus::Ok {
                online.push(id.clone());
            }
            targets.push(TargetChecks {
                target: id.clone(),
                checks: vec![agent],
            });
        }
        if !online.is_empty() {
            let phase = doctor_phase(&config, transport, CheckSet::Doctor, region.as_deref())
                .map_err(|e| Error::Plan(e.into()))?;
            events.activity(&format!("checking {} target(s)", online.len()));
            let judged = run_checks(
                &phase,
                &online,
                &SsmTransport::new(aws.ssm.clone()),
                None,
                format!("hoist doctor {}", config.app),
                cancel,
            )
            .await
            .map_err(|e| Error::Deploy(e.into()))?;
            for checked in judged {
                if let Some(t) = targets.iter_mut().find(|t| t.target == checked.target) {
                    t.checks.extend(checked.checks);
                }
            }
        }
    }
    if cancel.is_cancelled() {
        return Err(Error::Interrupted("while the targets answered"));
    }
    Ok(Report { runner, targets })
}

/// The SSM agent of one target, as `DescribeInstanceInformation` reports it.
fn agent_check(found: Option<&crate::transport::ssm::ManagedInstance>) -> Check {
    match found {
        None => Check::new(
            "agent",
            CheckStatus::Fail,
            "not managed by SSM (no agent registered in this account and region, or the \
             instance lacks an instance profile allowing SSM)",
        ),
        Some(i) if i.ping_status != "Online" => Check::new(
            "agent",
            CheckStatus::Fail,
            format!(
                "SSM agent is {} (not Online): the instance is stopped or its agent cannot \
                 reach SSM",
                i.ping_status
            ),
        ),
        Some(i) if i.platform != "Linux" => Check::new(
            "agent",
            CheckStatus::Fail,
            format!("platform is {}, hoist's scripts need Linux", i.platform),
        ),
        Some(i) => Check::new(
            "agent",
            CheckStatus::Ok,
            format!(
                "Online, agent {}",
                i.agent_version.as_deref().unwrap_or("of unknown version")
            ),
        ),
    }
}

/// This machine's Docker engine: it answers, and its version.
async fn docker_check() -> Check {
    let docker = match bollard::Docker::connect_with_local_defaults() {
        Ok(d) => d,
        Err(e) => return Check::new("docker", CheckStatus::Fail, e.to_string()),
    };
    match tokio::time::timeout(RUNNER_CHECK, docker.version()).await {
        Ok(Ok(v)) => Check::new(
            "docker",
            CheckStatus::Ok,
            format!(
                "Docker {} on this machine",
                v.version.as_deref().unwrap_or("of unknown version")
            ),
        ),
        Ok(Err(e)) => Check::new(
            "docker",
            CheckStatus::Fail,
            format!("the Docker engine does not answer: {e} (hoist builds with it)"),
        ),
        Err(_) => Check::new(
            "docker",
            CheckStatus::Fail,
            "the Docker engine did not answer within 20 s",
        ),
    }
}

/// The checkout a deploy builds: its commit, and whether it has uncommitted changes.
fn git_check(config: &config::Config) -> Check {
    match crate::revision::resolve(&config.image.context) {
        Ok(r) if r.dirty => Check::new(
            "git",
            CheckStatus::Warn,
            format!(
                "commit {} with uncommitted changes: a deploy builds them, and its release \
                 says so",
                &r.sha[..r.sha.len().min(12)]
            ),
        ),
        Ok(r) => Check::new(
            "git",
            CheckStatus::Ok,
            format!("commit {}, clean", &r.sha[..r.sha.len().min(12)]),
        ),
        Err(e) => Check::new(
            "git",
            CheckStatus::Warn,
            format!("{e} (deploy needs --release or --image)"),
        ),
    }
}

/// Where the AWS credentials come from, and whether they load.
async fn credentials_check(sdk: &aws_config::SdkConfig) -> Check {
    use aws_sdk_ssm::config::ProvideCredentials as _;
    let source = crate::aws::explain::credential_source();
    let Some(provider) = sdk.credentials_provider() else {
        return Check::new("credentials", CheckStatus::Fail, "no credentials provider");
    };
    match tokio::time::timeout(RUNNER_CHECK, provider.provide_credentials()).await {
        Ok(Ok(_)) => Check::new("credentials", CheckStatus::Ok, format!("from {source}")),
        Ok(Err(e)) => Check::new(
            "credentials",
            CheckStatus::Fail,
            format!("{source}: {}", crate::aws::describe_error(&e)),
        ),
        Err(_) => Check::new(
            "credentials",
            CheckStatus::Fail,
            format!("loading credentials ({source}) took more than 20 s"),
        ),
    }
}

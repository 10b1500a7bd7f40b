//! `hoist deploy`, from a request to a report: every input checked before anything changes
//! (config, revision, secrets, the plan), then at once what only reads (Docker answers, SSM
//! resolves the targets, ECR logs in), a reviewed plan checked against the plan made now,
//! the fleet-wide lock, and the plan's steps ([`super::steps`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::build::{Publisher, Registry, resolve_local_image, resolve_prebuilt};
use super::error::Error;
use super::execute::Runner;
use super::prepare::{
    self, Aws, check_image_flag, check_reviewed, preflight_done, read_plan, take_lock,
};
use super::steps::{self, DeployError, Report, Reviewed};
use super::timings::Timings;
use crate::aws;
use crate::config::{self, Config};
use crate::domain::secrets::{SecretEnv, SecretError};
use crate::domain::{Events, TransportKind};
use crate::ecr::ImageRecords;
use crate::lock;
use crate::plan::{self, Inputs, Plan};
use crate::transport::ssm::{self, SsmTransport};
use crate::transport::{LocalTransport, secret_parameter};

/// What `hoist deploy` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub file: crate::config::Source,
    pub local: bool,
    pub dry_run: bool,
    pub release: Option<String>,
    /// `--image`: deploy this existing image.
    pub image: Option<String>,
    /// `--plan`: apply this reviewed plan.
    pub plan: Option<PathBuf>,
    pub force: bool,
    pub lock_wait: Option<Duration>,
}

/// What a deploy came to.
pub enum Deployed {
    /// `--dry-run`: the plan, and nothing changed.
    Plan(Plan),
    /// `--plan FILE --dry-run`: the reviewed plan still applies; nothing changed.
    Reviewed(Plan),
    /// The deploy ran; the report says how each target ended.
    Ran(Box<Report>),
}

/// The secret values named in env.secret, from hoist's environment. A dry run sends none, so
/// it needs none: each one missing is shown as `<not set>` (a real deploy refuses them all).
fn secrets_for(names: &[String], dry_run: bool, events: &dyn Events) -> Result<SecretEnv, Error> {
    match SecretEnv::from_env(names) {
        Err(SecretError::Missing(missing)) if dry_run => {
            for name in &missing {
                events.warn(&format!(
                    "warning: secret {name}: <not set> in hoist's environment (a dry run needs no \
                     value; a deploy refuses until it is exported)"
                ));
            }
            let set: Vec<String> = names
                .iter()
                .filter(|n| !missing.contains(n))
                .cloned()
                .collect();
            Ok(SecretEnv::from_env(&set)?)
        }
        resolved => Ok(resolved?),
    }
}

/// Deploys as `request` says. Secret values are read from hoist's environment and given to
/// `events` first ([`Events::secrets`]), before anything is printed.
pub async fn run(
    request: Request,
    events: Arc<dyn Events>,
    cancel: CancellationToken,
) -> Result<Deployed, Error> {
    let transport = prepare::transport_kind(request.local);
    // With --image nothing is built: no Dockerfile is needed.
    let files = match request.image {
        Some(_) => config::Files::Context,
        None => config::Files::ContextAndDockerfile,
    };
    let reviewed = request.plan.as_deref().map(read_plan).transpose()?;
    let source = match reviewed {
        Some(_) => prepare::Source::Listing,
        None => prepare::Source::Digest,
    };
    let (config, mut inputs) = prepare::prepare(
        &request.file,
        files,
        transport,
        request.release.clone(),
        source,
    )
    .await?;
    if let Some(uri) = &request.image {
        check_image_flag(uri)?;
        inputs.prebuilt = Some(uri.clone());
    }
    inputs.force = request.force;
    // A reviewed plan fixes what runs, not the release or the run: like the image, they are
    // this checkout's and this attempt's (a re-run of a failed apply is a new run).
    // Every input is checked before anything changes: config, revision, secrets, plan.
    let secrets = secrets_for(&config.env.from_environment(), request.dry_run, &*events)?;
    events.secrets(&secrets);
    if transport == TransportKind::Ssm {
        secrets.check_parameter_size(config.secrets.tier)?;
    }
    // Once, before anything changes (and with --dry-run too).
    for warning in secrets.short_value_warnings() {
        events.warn(&warning);
    }
    // The region the deploy's own SSM and ECR calls use; the hosts' calls get it too.
    inputs.region = match transport {
        TransportKind::Ssm => Some(
            aws::region(config.region.as_deref(), aws::RegionLookup::Sdk)
                .await
                .ok_or(Error::NoRegion)?,
        ),
        TransportKind::Local => {
            aws::region(config.region.as_deref(), aws::RegionLookup::Local).await
        }
    };
    // The plan is made (and so checked) before anything changes, --dry-run or not.
    let draft = plan::build(&config, &inputs)?;
    if request.dry_run && reviewed.is_none() {
        return Ok(Deployed::Plan(draft));
    }
    let started = Instant::now();
    let docker = bollard::Docker::connect_with_local_defaults().map_err(Error::Docker)?;
    // What only reads comes first, at once: the engine answers, SSM resolves the targets,
    // ECR logs in.
    let ping = async {
        if !request.dry_run && (request.local || request.image.is_none()) {
            docker.ping().await.map_err(Error::Docker)?;
        }
        Ok::<_, Error>(())
    };
    let (ids, remote) = if request.local {
        ping.await?;
        (vec!["local".to_owned()], None)
    } else {
        let aws = Aws::new(&config).await;
        let ecr = aws.ecr();
        events.activity("preflight: asking SSM about the targets; logging in to ECR");
        let (pinged, ids, login) = tokio::select! {
            all = async { tokio::join!(ping, ssm::preflight(&aws.ssm, &config.targets), ecr.login()) } => all,
            () = cancel.cancelled() => return Err(Error::Interrupted("before any host was changed")),
        };
        pinged?;
        let ids = ids.map_err(Error::Preflight)?;
        let login = login.map_err(|e| Error::Deploy(e.into()))?;
        preflight_done(events.as_ref(), &ids);
        (ids, Some((aws, ecr, login)))
    };
    if let (Some(r), Some(path)) = (&reviewed, &request.plan) {
        if remote.is_some() {
            inputs.instances = Some(ids.clone());
        }
        check_reviewed(r, path, &config, &inputs)?;
        // Made against live state: a dry run looks now; a deploy once it holds the lock, so
        // that no other deploy moves a target between the look and its own steps.
        if request.dry_run {
            let ssm = remote.as_ref().map(|(aws, ..)| &aws.ssm);
            check_drift(r, path, &config, transport, &ids, ssm, &events, &cancel).await?;
        }
        events.done(&format!(
            "{} applies: the source tree{}, the build context, the config, strategy, targets \
             and hoist's scripts are the reviewed ones",
            path.display(),
            r.source
                .as_ref()
                .map(|s| format!(" {}", &s.tree[..s.tree.len().min(12)]))
                .unwrap_or_default(),
        ));
        if request.dry_run {
            return Ok(Deployed::Reviewed(r.clone()));
        }
    }
    // Over SSM, the fleet-wide lock, before anything changes; held until hoist ends
    // (released when dropped: after the deploy's own cancel, on every path).
    let lock = match &remote {
        Some((aws, ..)) => {
            let run = inputs.run.get_or_insert_with(secret_parameter::new_run_id);
            let request_lock = lock::Request::here("deploy", &draft.release, Some(run));
            let wait = request.lock_wait;
            Some(take_lock(&aws.ssm, &config, &request_lock, wait, &events, &cancel).await?)
        }
        None => None,
    };
    if let (Some(r), Some(path), false) = (&reviewed, &request.plan, request.dry_run) {
        let ssm = remote.as_ref().map(|(aws, ..)| &aws.ssm);
        check_drift(r, path, &config, transport, &ids, ssm, &events, &cancel).await?;
    }
    let before_steps = started.elapsed();
    let applying = reviewed.as_ref().zip(request.plan.as_deref());
    let apply = async |config: &Config,
                       inputs: Inputs,
                       publisher: Publisher<'_>,
                       runner: &Runner<'_>,
                       cancel| match applying {
        Some((plan, path)) => {
            let path = path.display().to_string();
            let reviewed = Reviewed { plan, path: &path };
            steps::apply(config, inputs, reviewed, publisher, runner, cancel).await
        }
        None => steps::deploy(config, inputs, publisher, runner, cancel).await,
    };
    let result = if let Some((aws, ecr, login)) = remote {
        let registry = Registry {
            ecr: &ecr,
            login,
            records: ImageRecords::new(aws.ssm.clone()),
        };
        inputs.registry = Some(registry.login.registry.clone());
        if let Some(uri) = &request.image {
            let image = tokio::select! {
                image = resolve_prebuilt(uri, &registry.login.registry, &ecr, &docker, events.as_ref()) => image?,
                () = cancel.cancelled() => return Err(Error::Interrupted("before any host was changed")),
            };
            inputs.image_id = Some(image.reference);
            inputs.registry = image.registry;
        }
        inputs.instances = Some(ids);
        if inputs.run.is_none() {
            inputs.run = Some(secret_parameter::new_run_id());
        }
        let transport = SsmTransport::new(aws.ssm.clone());
        let publisher = Publisher::new(&docker, Some(&registry), events.as_ref());
        let recorder = lock.as_ref().map(lock::Held::recorder);
        let runner = Runner {
            ssm: Some(&aws.ssm),
            transport: &transport,
            secrets: &secrets,
            progress: events.as_ref(),
            commands: recorder.as_ref(),
        };
        // Parameters that killed runs of this app left behind, once they expired: swept
        // while the deploy runs (they are no run's).
        let (result, ()) = tokio::join!(
            apply(&config, inputs, publisher, &runner, cancel),
            prepare::sweep(
                &aws.ssm,
                &config.app,
                config.environment.as_deref(),
                events.as_ref()
            )
        );
        result
    } else {
        if let Some(uri) = &request.image {
            // Hosts run the image id, not a tag that could move under the deploy.
            inputs.image_id = Some(resolve_local_image(&docker, uri, events.as_ref()).await?);
        }
        // The run names what a two-phase rollout stages.
        inputs.run = Some(secret_parameter::new_run_id());
        let transport = LocalTransport::default();
        let publisher = Publisher::new(&docker, None, events.as_ref());
        let runner = Runner {
            ssm: None,
            transport: &transport,
            secrets: &secrets,
            progress: events.as_ref(),
            commands: None,
        };
        apply(&config, inputs, publisher, &runner, cancel).await
    };
    let mut report = result.map_err(|e| match e {
        DeployError::Interrupted => Error::Interrupted("before any host was changed"),
        e => Error::Deploy(e),
    })?;
    report.lock = lock.as_ref().map(lock::Held::report);
    report.timings = Some(Timings::of(&report, before_steps, started.elapsed()));
    Ok(Deployed::Ran(Box::new(report)))
}

/// A plan made against live state (`plan --against-live --out`) applies only while every
/// target is as the plan found it: read again now, each one that moved is named.
#[allow(clippy::too_many_arguments)]
async fn check_drift(
    reviewed: &Plan,
    path: &std::path::Path,
    config: &Config,
    transport: TransportKind,
    ids: &[String],
    ssm: Option<&aws_sdk_ssm::Client>,
    events: &Arc<dyn Events>,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    if reviewed.live.is_none() {
        return Ok(());
    }
    events.activity("reading what runs on each target now");
    let now = super::live::read(config, transport, ids, ssm, events.as_ref(), cancel).await?;
    let drift = plan::review::drift(reviewed, &now.hosts);
    if !drift.is_empty() {
        return Err(Error::Deploy(DeployError::Reviewed(
            plan::review::Refusal {
                path: path.display().to_string(),
                differences: drift,
            },
        )));
    }
    events.done("every target is as the plan found it");
    Ok(())
}

/// How a deploy that ran ends the command: `Ok` when every target deployed.
pub fn verdict(report: &Report) -> Result<(), Error> {
    if report.cancelled {
        Err(Error::Interrupted(
            "during the rollout: the scripts were stopped; hosts whose switch was not \
             verified restore their previous release (each target's state is above)",
        ))
    } else if report.ok() {
        Ok(())
    } else {
        Err(Error::Failed)
    }
}

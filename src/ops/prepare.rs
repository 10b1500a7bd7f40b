//! What every command does before it changes anything: load and check the config, read the
//! revision, resolve and check the targets (preflight), log in to the registry, take the
//! fleet-wide lock, and check a reviewed plan against the plan made now.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::steps::DeployError;
use crate::aws;
use crate::config::{self, Config};
use crate::domain::{Events, LockSpec, Revision, TransportKind};
use crate::ecr::{Ecr, Login};
use crate::lock;
use crate::plan::{self, Inputs, Plan};
use crate::revision;
use crate::transport::secret_parameter;
use crate::transport::ssm;

/// `--local` as a transport.
pub fn transport_kind(local: bool) -> TransportKind {
    if local {
        TransportKind::Local
    } else {
        TransportKind::Ssm
    }
}

/// How much of the source a command reads besides the revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The tree and the build context's digest.
    Digest,
    /// Also each path's content id: a plan saved for review, or applying one (so that a
    /// refusal names the paths that differ).
    Listing,
}

/// Loads the config and checks the files it names (`files`), then reads the revision and,
/// with a Dockerfile to build, the source's digest (git and the context, off the async
/// runtime's workers).
pub async fn prepare(
    file: &config::Source,
    files: config::Files,
    transport: TransportKind,
    release: Option<String>,
    source: Source,
) -> Result<(Config, Inputs), Error> {
    let config = file.load(files)?;
    let context = config.image.context.clone();
    let dockerfile = config.image.dockerfile.clone();
    let building = files == config::Files::ContextAndDockerfile;
    // A release id given, or an image given, needs no commit: the revision is then unknown.
    // (Not a plan saved for review or applied: it binds the source by its git tree.)
    let no_commit_needed = (release.is_some() || !building) && source == Source::Digest;
    let (revision, source) = tokio::task::spawn_blocking(move || {
        let revision = match revision::resolve(&context) {
            Err(e) if no_commit_needed && revision::no_commit(&e) => {
                return Ok((Revision::unknown(), None));
            }
            resolved => resolved?,
        };
        let source = if building {
            Some(digest(&context, &dockerfile, source == Source::Listing)?)
        } else {
            None
        };
        Ok::<_, Error>((revision, source))
    })
    .await
    .expect("git's task does not panic")?;
    Ok((
        config,
        Inputs {
            release,
            source,
            ..Inputs::new(revision, transport)
        },
    ))
}

/// The checkout's tree and build context, as a reviewed plan binds them.
fn digest(
    context: &Path,
    dockerfile: &str,
    listing: bool,
) -> Result<crate::domain::SourceDigest, Error> {
    let (tree, files) = revision::tree(context, listing)?;
    let (context_sha256, context_files, by_path) = crate::image::digest(context, dockerfile)?;
    Ok(crate::domain::SourceDigest {
        tree,
        context_sha256,
        context_files,
        files,
        context: if listing { by_path } else { BTreeMap::new() },
    })
}

/// The AWS clients of the configuration a command resolved: one SDK configuration, built
/// once, for every client it needs.
pub struct Aws {
    pub sdk: aws_config::SdkConfig,
    pub ssm: aws_sdk_ssm::Client,
}

impl Aws {
    pub async fn new(config: &Config) -> Aws {
        let sdk = aws::sdk_config(config.region.as_deref()).await;
        let ssm = aws::ssm(&sdk);
        Aws { sdk, ssm }
    }

    pub fn ecr(&self) -> Ecr {
        Ecr::new(aws::ecr(&self.sdk))
    }
}

/// The instances a command addresses: `["local"]` for the local transport, else the config's
/// targets resolved and checked by preflight (cancellable), with the AWS clients it used.
pub async fn resolve_targets(
    transport: TransportKind,
    config: &Config,
    progress: &dyn Events,
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Option<Aws>), Error> {
    if transport == TransportKind::Local {
        return Ok((vec!["local".to_owned()], None));
    }
    let aws = Aws::new(config).await;
    progress.activity("preflight: asking SSM about the targets");
    let ids = tokio::select! {
        ids = ssm::preflight(&aws.ssm, &config.targets) => ids.map_err(Error::Preflight)?,
        () = cancel.cancelled() => return Err(Error::Interrupted("before any host was changed")),
    };
    preflight_done(progress, &ids);
    Ok((ids, Some(aws)))
}

pub(super) fn preflight_done(progress: &dyn Events, ids: &[String]) {
    progress.done(&format!(
        "preflight: {} instance{} online: {}",
        ids.len(),
        if ids.len() == 1 { "" } else { "s" },
        ids.join(", ")
    ));
}

/// Takes the fleet-wide lock of the config's app and targets for `request` (waiting up to
/// `wait` for another deploy to release it).
pub async fn take_lock(
    ssm: &aws_sdk_ssm::Client,
    config: &Config,
    request: &lock::Request,
    wait: Option<Duration>,
    progress: &Arc<dyn Events>,
    cancel: &CancellationToken,
) -> Result<lock::Held, Error> {
    Ok(lock::acquire(
        ssm,
        &LockSpec::of(config),
        request,
        wait,
        lock::Timing::default(),
        progress.clone(),
        cancel,
    )
    .await?)
}

/// Deletes the secret parameters of `app` in `environment` that killed runs left behind,
/// once expired; a failure is a warning.
pub async fn sweep(
    ssm: &aws_sdk_ssm::Client,
    app: &str,
    environment: Option<&str>,
    progress: &dyn Events,
) {
    match secret_parameter::sweep(ssm, app, environment).await {
        Ok(swept) if swept.is_empty() => {}
        Ok(swept) => progress.done(&format!(
            "swept {} expired secret parameter{} left by killed deploys: {}",
            swept.len(),
            if swept.len() == 1 { "" } else { "s" },
            swept.join(", ")
        )),
        Err(e) => progress.warn(&format!(
            "warning: could not sweep expired secret parameters of {app}: {e}"
        )),
    }
}

/// Logs in to the account's registry; a cancel ends the command, interrupted `when`.
pub async fn ecr_login(
    ecr: &Ecr,
    progress: &dyn Events,
    cancel: &CancellationToken,
    when: &'static str,
) -> Result<Login, Error> {
    progress.activity("logging in to ECR");
    tokio::select! {
        login = ecr.login() => login.map_err(|e| Error::Deploy(e.into())),
        () = cancel.cancelled() => Err(Error::Interrupted(when)),
    }
}

/// `--image` reaches the script a host runs: the same rules as config values apply.
pub fn check_image_flag(uri: &str) -> Result<(), Error> {
    let bad = |why: String| {
        Error::Deploy(DeployError::BadImage(
            config::text::escape(uri, false).into_owned(),
            why,
        ))
    };
    if let Some(c) = uri.chars().find(|&c| config::text::is_hidden(c)) {
        return Err(bad(format!(
            "contains {}, which a plan cannot show",
            config::text::describe(c)
        )));
    }
    if let Some(reference) = config::text::ssm_reference(uri) {
        return Err(bad(format!(
            "`{reference}` is an SSM parameter reference, which SSM would replace on its side"
        )));
    }
    Ok(())
}

/// Reads a plan saved by `hoist plan --out`.
pub fn read_plan(path: &Path) -> Result<Plan, Error> {
    let text = std::fs::read_to_string(path).map_err(|cause| Error::Read {
        path: path.to_owned(),
        cause,
    })?;
    Ok(Plan::read(&text, &path.display().to_string())?)
}

/// Checks a reviewed plan against the checkout and the plan made now from the same inputs
/// (no image yet, no registry) with the reviewed execution values: the same source tree and
/// build context, and then the same plan, or refused with every difference.
pub fn check_reviewed(
    reviewed: &Plan,
    path: &Path,
    config: &Config,
    inputs: &Inputs,
) -> Result<(), Error> {
    let now = plan::build(
        config,
        &Inputs {
            registry: None,
            ..plan::review::as_reviewed(reviewed, inputs)
        },
    )?;
    let mut differences = plan::review::source_differences(reviewed, inputs.source.as_ref());
    differences.extend(plan::review::differences(reviewed, &now));
    if differences.is_empty() {
        Ok(())
    } else {
        Err(Error::Deploy(DeployError::Reviewed(
            plan::review::Refusal {
                path: path.display().to_string(),
                differences,
            },
        )))
    }
}

//! `hoist plan`: the plan a deploy would execute, made offline or against the targets SSM
//! resolves now, and saved for review.

use std::path::PathBuf;

use super::error::Error;
use super::prepare;
use crate::aws;
use crate::config;
use crate::domain::TransportKind;
use crate::plan::{self, Format, Plan};
use crate::transport::ssm;

/// What `hoist plan` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub file: crate::config::Source,
    pub local: bool,
    pub release: Option<String>,
    /// `--out`: save the plan for review (as JSON) in this file.
    pub out: Option<PathBuf>,
    /// Ask SSM which instances the targets are, and check them.
    pub resolve_targets: bool,
    /// Read what runs on each target now and compare (resolves the targets over SSM).
    pub against_live: bool,
}

/// Makes the plan (and saves it, with `--out`).
pub async fn run(
    request: Request,
    events: &dyn crate::domain::Events,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Plan, Error> {
    let transport = prepare::transport_kind(request.local);
    let saving = request.out.is_some();
    if saving
        && transport == TransportKind::Ssm
        && !request.resolve_targets
        && !request.against_live
    {
        return Err(Error::OutNeedsTargets);
    }
    let (config, mut inputs) = prepare::prepare(
        &request.file,
        config::Files::ContextAndDockerfile,
        transport,
        request.release,
        if saving {
            prepare::Source::Listing
        } else {
            prepare::Source::Digest
        },
    )
    .await?;
    // A plan saved for review is the deploy it describes: its region is the one the deploy's
    // SDK resolves; an offline look only asks the environment and the profile.
    let lookup = if request.resolve_targets || saving {
        aws::RegionLookup::Sdk
    } else {
        aws::RegionLookup::Local
    };
    inputs.region = aws::region(config.region.as_deref(), lookup).await;
    if transport == TransportKind::Ssm && saving && inputs.region.is_none() {
        return Err(Error::NoRegion);
    }
    let mut ssm_client = None;
    if request.resolve_targets || (request.against_live && transport == TransportKind::Ssm) {
        let aws = prepare::Aws::new(&config).await;
        let ids = ssm::preflight(&aws.ssm, &config.targets)
            .await
            .map_err(Error::Preflight)?;
        inputs.instances = Some(ids);
        ssm_client = Some(aws.ssm);
    }
    if request.against_live {
        let targets = inputs
            .instances
            .clone()
            .unwrap_or_else(|| vec!["local".to_owned()]);
        inputs.live = Some(
            super::live::read(
                &config,
                transport,
                &targets,
                ssm_client.as_ref(),
                events,
                cancel,
            )
            .await?,
        );
    }
    let plan = plan::build(&config, &inputs)?;
    if let Some(path) = &request.out {
        std::fs::write(path, plan.render(Format::Json)).map_err(|cause| Error::Write {
            path: path.clone(),
            cause,
        })?;
    }
    Ok(plan)
}

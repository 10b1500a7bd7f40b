//! `--against-live`: each target's live state, read with the status script (read-only: it
//! takes no lock and changes nothing), and the fleet-wide lock's holder.

use tokio_util::sync::CancellationToken;

use super::error::Error;
use super::status::{self, TargetStatus};
use crate::config::Config;
use crate::domain::live::{HostLive, LiveRelease};
use crate::domain::{Events, TransportKind};
use crate::plan::live::LiveInputs;

/// Reads `targets` (over SSM with `ssm`, else this machine) and, over SSM, the fleet lock.
pub async fn read(
    config: &Config,
    transport: TransportKind,
    targets: &[String],
    ssm: Option<&aws_sdk_ssm::Client>,
    events: &dyn Events,
    cancel: &CancellationToken,
) -> Result<LiveInputs, Error> {
    let read =
        status::read_targets(config, transport, targets, ssm.cloned(), events, cancel).await?;
    if cancel.is_cancelled() {
        return Err(Error::Interrupted("while reading the targets"));
    }
    let lock = match ssm {
        None => None,
        Some(ssm) => {
            let status = crate::lock::status(ssm, config).await?;
            status.holder.map(|h| {
                format!(
                    "{} on {} ({} of release {} since {}){}",
                    h.holder,
                    h.host,
                    h.operation,
                    h.release,
                    h.started,
                    if status.stale { ", stale" } else { "" }
                )
            })
        }
    };
    Ok(LiveInputs {
        hosts: read.report.targets.iter().map(host_live).collect(),
        lock,
    })
}

/// One target's status answer as live state.
pub fn host_live(t: &TargetStatus) -> HostLive {
    let Some(host) = &t.host else {
        return HostLive {
            target: t.target.clone(),
            error: Some(t.error.clone().unwrap_or_else(|| "no answer".into())),
            ..HostLive::default()
        };
    };
    let labelled = |text: &str| (!text.is_empty()).then(|| serde_json::from_str(text).ok())?;
    HostLive {
        target: t.target.clone(),
        release: host.running.as_ref().map(|r| LiveRelease {
            release: r.release.clone(),
            container: r.container.clone(),
            image: r.digest.clone().unwrap_or_else(|| r.image_id.clone()),
            revision: (!r.revision.is_empty()).then(|| r.revision.clone()),
            settings: labelled(&r.settings),
            env: labelled(&r.env),
        }),
        live_color: host.live_color.clone(),
        idle_color: host.idle_color.clone(),
        staged: host.staged.iter().map(|s| s.release.clone()).collect(),
        deploying: host.deploying,
        error: t.error.clone(),
    }
}

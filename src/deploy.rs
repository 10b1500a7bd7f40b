//! `hoist deploy`: build the image, plan with it, run the plan's script through a transport,
//! and judge every target.

use std::time::Duration;

use bollard::Docker;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::image::{self, BuildError, BuildRequest};
use crate::plan::{self, Inputs, Plan, Step};
use crate::progress::Reporter;
use crate::secrets::SecretEnv;
use crate::transport::{Invocation, Job, OutputSink, Transport, TransportError};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("interrupted before any host was changed")]
    Interrupted,
}

/// What happened, for the summary table and `--format json`.
#[derive(Debug, Serialize)]
pub struct Report {
    pub app: String,
    pub release: String,
    pub plan: Plan,
    pub invocations: Vec<Invocation>,
    pub deployed: usize,
    pub failed: usize,
    pub cancelled: bool,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed == 0 && !self.cancelled && !self.invocations.is_empty()
    }
}

/// Builds the image for `config` with `docker` and returns its id.
pub async fn build_image(
    docker: &Docker,
    plan: &Plan,
    progress: &Reporter,
) -> Result<String, BuildError> {
    let Some(Step::Build {
        context,
        dockerfile,
        target,
        platform,
        build_args,
        labels,
        tags,
    }) = plan.steps.iter().find(|s| matches!(s, Step::Build { .. }))
    else {
        unreachable!("every plan builds");
    };
    let req = BuildRequest {
        context: context.into(),
        dockerfile: dockerfile.clone(),
        target: target.clone(),
        platform: platform.clone(),
        build_args: build_args.clone(),
        labels: labels.clone(),
        tags: tags.clone(),
    };
    let id = image::build(docker, &req, progress).await?;
    progress.done(&format!("built {} ({})", tags[0], short_id(&id)));
    Ok(id)
}

/// Runs a plan whose image is resolved. Output is redacted of secret values before it is
/// shown or returned.
pub async fn run(
    plan: Plan,
    transport: &dyn Transport,
    secrets: &SecretEnv,
    progress: &Reporter,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    let timeout = plan
        .steps
        .iter()
        .find_map(|s| match s {
            Step::Run { timeout, .. } => Some(*timeout),
            _ => None,
        })
        .unwrap_or(Duration::from_secs(900));
    let job = Job {
        script: &plan.script,
        secrets: (!secrets.is_empty()).then_some(secrets),
        timeout,
        comment: format!("hoist deploy {} release {}", plan.app, plan.release),
    };
    progress.activity(&format!(
        "deploying {} release {} via {} (script sha256 {})",
        plan.app,
        plan.release,
        transport.name(),
        &plan.script.sha256[..16]
    ));
    let sink = Sink { progress, secrets };
    let mut invocations = transport.run(&job, cancel.clone(), &sink).await?;
    for inv in &mut invocations {
        inv.stdout = secrets.redact(&inv.stdout);
        inv.stderr = secrets.redact(&inv.stderr);
    }
    let deployed = invocations.iter().filter(|i| i.deployed()).count();
    let failed = invocations.len() - deployed;
    progress.done(&format!(
        "{deployed} of {} target{} deployed",
        invocations.len(),
        if invocations.len() == 1 { "" } else { "s" }
    ));
    Ok(Report {
        app: plan.app.clone(),
        release: plan.release.clone(),
        plan,
        invocations,
        deployed,
        failed,
        cancelled: cancel.is_cancelled(),
    })
}

/// Convenience for the common path: plan → build → re-plan with the image id → run.
pub async fn build_and_run(
    config: &Config,
    inputs: Inputs,
    docker: &Docker,
    transport: &dyn Transport,
    secrets: &SecretEnv,
    progress: &Reporter,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    let draft = plan::build(config, &inputs)?;
    let image_id = tokio::select! {
        id = build_image(docker, &draft, progress) => id?,
        () = cancel.cancelled() => return Err(DeployError::Interrupted),
    };
    let plan = plan::build(
        config,
        &Inputs {
            image_id: Some(image_id),
            ..inputs
        },
    )?;
    run(plan, transport, secrets, progress, cancel).await
}

struct Sink<'a> {
    progress: &'a Reporter,
    secrets: &'a SecretEnv,
}

impl OutputSink for Sink<'_> {
    fn line(&self, target: &str, line: &str) {
        self.progress
            .info(&format!("[{target}] {}", self.secrets.redact(line)));
    }
}

pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// The per-target summary table.
pub fn summary(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut rows = vec![[
        "TARGET".to_owned(),
        "STATUS".to_owned(),
        "RELEASE".to_owned(),
        "TIME".to_owned(),
        "DETAIL".to_owned(),
    ]];
    for inv in &report.invocations {
        let status = if inv.deployed() {
            "deployed".to_owned()
        } else {
            match &inv.result {
                Some(r) if !r.status.is_empty() => r.status.clone(),
                _ => format!("{:?}", inv.status).to_lowercase(),
            }
        };
        let detail = match inv.failure_reason() {
            Some(reason) => {
                let rolled = match &inv.result {
                    Some(r) if r.rolled_back => " (rolled back)",
                    _ => "",
                };
                format!("{reason}{rolled}")
            }
            None => inv
                .result
                .as_ref()
                .map(|r| format!("container {}; health: {}", r.container, r.health))
                .unwrap_or_default(),
        };
        rows.push([
            inv.target.clone(),
            status,
            report.release.clone(),
            format!("{:.1}s", inv.duration.as_secs_f64()),
            detail,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        for (c, w) in widths.iter().enumerate() {
            let _ = write!(out, "{:<w$}  ", row[c]);
        }
        let _ = writeln!(out, "{}", row[4]);
    }
    for inv in report.invocations.iter().filter(|i| !i.deployed()) {
        let tail: Vec<&str> = inv.stderr.lines().rev().take(20).collect();
        if !tail.is_empty() {
            let _ = writeln!(out, "\n--- {}: last lines of stderr ---", inv.target);
            for line in tail.into_iter().rev() {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out
}

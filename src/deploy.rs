//! `hoist deploy`: build the image, plan with it, run the plan's script through a transport,
//! and judge every target.

use std::time::Duration;

use bollard::Docker;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::ecr::{self, Ecr, EcrError};
use crate::image::{self, BuildError, BuildRequest, PushError};
use crate::outcome;
use crate::plan::{self, Inputs, Plan, Step};
use crate::progress::Reporter;
use crate::secrets::SecretEnv;
use crate::transport::secret_parameter::SecretParameter;
use crate::transport::{Invocation, Job, OutputSink, Transport, TransportError};

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
    #[error("--image {0}: {1}")]
    BadImage(String, String),
    #[error("the Docker engine failed: {0}")]
    Docker(#[source] bollard::errors::Error),
    #[error("interrupted before any host was changed")]
    Interrupted,
}

/// The image hosts run, as the SSM path resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteImage {
    /// `registry/repository@sha256:…` (or an `--image` URI outside the account's registry).
    pub reference: String,
    /// The registry hosts log in to with their own role; `None` when no login is needed.
    pub registry: Option<String>,
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
    /// A cancel (Ctrl-C, SIGTERM) interrupted at least one target's run. A cancel that came
    /// after every target had finished does not count: the report is then the deploy's.
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
        builder,
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
        builder: *builder,
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
        secret_parameter: plan.env.parameter.clone().map(|name| SecretParameter {
            name,
            tier: plan.env.tier.unwrap_or_default(),
            tags: [
                ("hoist:app", plan.app.as_str()),
                ("hoist:release", plan.release.as_str()),
                ("hoist:run", plan.run.as_deref().unwrap_or_default()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        }),
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
        read_output(inv, secrets);
    }
    let deployed = invocations.iter().filter(|i| i.deployed()).count();
    let failed = invocations.len() - deployed;
    progress.done(&format!(
        "{deployed} of {} target{} deployed",
        invocations.len(),
        if invocations.len() == 1 { "" } else { "s" }
    ));
    let cancelled = cancel.is_cancelled() && invocations.iter().any(Invocation::interrupted);
    Ok(Report {
        app: plan.app.clone(),
        release: plan.release.clone(),
        plan,
        invocations,
        deployed,
        failed,
        cancelled,
    })
}

/// The one place output from a transport is read: redacted of secret values first, then
/// the script's `HOIST-RESULT` line parsed from what is left, so every field taken from
/// output (reason, health, the summary, the JSON report) is redacted too.
fn read_output(inv: &mut Invocation, secrets: &SecretEnv) {
    inv.stdout = secrets.redact(&inv.stdout);
    inv.stderr = secrets.redact(&inv.stderr);
    inv.result = outcome::parse(&inv.stdout);
    inv.outcome = Some(inv.judge());
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

/// The SSM path: plan → image in ECR (built and pushed only when needed) → re-plan pinned to
/// the pushed digest → run on every instance.
#[allow(clippy::too_many_arguments)]
pub async fn publish_and_run(
    config: &Config,
    inputs: Inputs,
    docker: &Docker,
    ecr: &Ecr,
    transport: &dyn Transport,
    secrets: &SecretEnv,
    progress: &Reporter,
    cancel: CancellationToken,
) -> Result<Report, DeployError> {
    let draft = plan::build(config, &inputs)?;
    let image = tokio::select! {
        image = publish_image(config, &draft, inputs.prebuilt.as_deref(), docker, ecr, progress) => image?,
        () = cancel.cancelled() => return Err(DeployError::Interrupted),
    };
    let plan = plan::build(
        config,
        &Inputs {
            image_id: Some(image.reference),
            registry: image.registry,
            ..inputs
        },
    )?;
    run(plan, transport, secrets, progress, cancel).await
}

/// Makes sure the image is in ECR and learns its digest. Builds only when the registry does
/// not already hold this commit's image, pushes only tags that do not already hold it.
pub async fn publish_image(
    config: &Config,
    draft: &Plan,
    prebuilt: Option<&str>,
    docker: &Docker,
    ecr: &Ecr,
    progress: &Reporter,
) -> Result<RemoteImage, DeployError> {
    progress.activity("logging in to ECR");
    let login = ecr.login().await?;
    if let Some(uri) = prebuilt {
        return resolve_prebuilt(uri, &login.registry, ecr, docker, progress).await;
    }
    let repository = &config.image.repository;
    let repo = ecr
        .ensure_repository(
            repository,
            config.image.immutable_tags,
            config.image.scan_on_push,
        )
        .await?;
    if repo.created {
        progress.done(&format!(
            "created ECR repository {repository} (tags {})",
            if repo.immutable {
                "immutable"
            } else {
                "mutable"
            }
        ));
    }
    let repo_path = format!("{}/{repository}", login.registry);
    let tags = &draft.image.tags;
    let primary = &tags[0];

    // The same commit again: its image is already in the registry under the commit's tag.
    let commit_tagged = config.image.tags.is_empty() && !draft.revision.dirty;
    if commit_tagged && let Some(content) = ecr.tag_content(repository, primary).await? {
        progress.done(&format!(
            "{repo_path}:{} already holds commit {}'s image ({}): no build, no push",
            short_tag(primary),
            short_id(&draft.revision.sha),
            short_digest(&content.digest)
        ));
        return Ok(RemoteImage {
            reference: format!("{repo_path}@{}", content.digest),
            registry: Some(login.registry),
        });
    }

    let image_id = build_image(docker, draft, progress).await?;
    let creds = image::Credentials {
        registry: &login.registry,
        username: &login.username,
        password: &login.password,
    };
    // The primary tag's digest, when it already held this image (no push, no need to ask).
    let mut primary_digest = None;
    for tag in tags {
        match ecr.tag_content(repository, tag).await? {
            Some(c) if c.config_digest.as_deref() == Some(image_id.as_str()) => {
                progress.done(&format!(
                    "{repo_path}:{} already holds this image ({}): push skipped",
                    short_tag(tag),
                    short_digest(&c.digest)
                ));
                if tag == primary {
                    primary_digest = Some(c.digest);
                }
                continue;
            }
            Some(c) if repo.immutable => {
                return Err(EcrError::ImmutableTagTaken {
                    repository: repository.clone(),
                    tag: tag.clone(),
                    digest: c.digest,
                }
                .into());
            }
            Some(_) => progress.info(&format!(
                "{repo_path}:{} holds a different image; it will point at the new one",
                short_tag(tag)
            )),
            None => {}
        }
        image::push(docker, &image_id, &repo_path, tag, &creds, progress).await?;
        progress.done(&format!("pushed {repo_path}:{}", short_tag(tag)));
    }
    // bollard does not hand back the daemon's digest message: ask the registry.
    let digest = match primary_digest {
        Some(d) => d,
        None => {
            ecr.tag_content(repository, primary)
                .await?
                .ok_or_else(|| PushError::Failed {
                    name: format!("{repo_path}:{primary}"),
                    message: "the registry does not show the tag after the push".into(),
                })?
                .digest
        }
    };
    Ok(RemoteImage {
        reference: format!("{repo_path}@{digest}"),
        registry: Some(login.registry),
    })
}

/// The image id `--image` names in the local engine (local transport): hosts run the id,
/// so the deploy is pinned even when the name is a tag that moves afterwards.
pub async fn resolve_local_image(
    docker: &Docker,
    uri: &str,
    progress: &Reporter,
) -> Result<String, DeployError> {
    let image = docker.inspect_image(uri).await.map_err(|e| match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => DeployError::BadImage(
            uri.to_owned(),
            "no such image in the local Docker engine (see `docker images`)".into(),
        ),
        e => DeployError::Docker(e),
    })?;
    let id = image.id.ok_or_else(|| {
        DeployError::BadImage(uri.to_owned(), "the engine reports no image id".into())
    })?;
    progress.done(&format!("deploying existing image {uri} = {id}"));
    Ok(id)
}

/// How long hoist waits for the engine to ask a foreign registry what a tag points to.
const DIGEST_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

async fn resolve_prebuilt(
    uri: &str,
    registry: &str,
    ecr: &Ecr,
    docker: &Docker,
    progress: &Reporter,
) -> Result<RemoteImage, DeployError> {
    let bad = |why: &str| DeployError::BadImage(uri.to_owned(), why.to_owned());
    let Some((host, repo, reference)) = ecr::split_uri(uri) else {
        return Err(bad(
            "expected registry/repository:tag or registry/repository@sha256:…",
        ));
    };
    if host != registry {
        let lookup = match reference {
            ecr::Reference::Digest(_) => None,
            ecr::Reference::Tag(_) => Some(registry_digest(docker, uri).await),
        };
        let (image, message) = foreign_image(uri, host, repo, registry, lookup);
        progress.info(&message);
        return Ok(image);
    }
    let digest = match reference {
        ecr::Reference::Digest(d) => d.to_owned(),
        ecr::Reference::Tag(tag) => match ecr.tag_content(repo, tag).await {
            Ok(Some(c)) => c.digest,
            Ok(None) => return Err(bad(&format!("tag {tag} is not in repository {repo}"))),
            Err(EcrError::RepositoryNotFound { .. }) => {
                return Err(bad(&format!("repository {repo} does not exist in {host}")));
            }
            Err(e) => return Err(e.into()),
        },
    };
    progress.done(&format!(
        "deploying existing image {host}/{repo}@{}",
        short_digest(&digest)
    ));
    Ok(RemoteImage {
        reference: format!("{host}/{repo}@{digest}"),
        registry: Some(host.to_owned()),
    })
}

/// What a tag in a registry points to, asked through the engine's distribution endpoint
/// (`GET /distribution/{name}/json`; anonymous, so it answers for public images).
async fn registry_digest(docker: &Docker, uri: &str) -> Result<String, String> {
    let asked = tokio::time::timeout(
        DIGEST_LOOKUP_TIMEOUT,
        docker.inspect_registry_image(uri, None),
    )
    .await
    .map_err(|_| format!("no answer in {}s", DIGEST_LOOKUP_TIMEOUT.as_secs()))?;
    let found = asked.map_err(|e| e.to_string())?;
    found
        .descriptor
        .digest
        .filter(|d| plan::is_content_addressed(d))
        .ok_or_else(|| "the registry sent no sha256 digest".to_owned())
}

/// An `--image` outside the account's registry: hosts pull it without logging in. A tag is
/// pinned to the digest the registry gave (`lookup`), else deployed as the tag, which the
/// plan then marks unpinned and has every host pull. Returns the image and what to tell
/// the user.
fn foreign_image(
    uri: &str,
    host: &str,
    repo: &str,
    registry: &str,
    lookup: Option<Result<String, String>>,
) -> (RemoteImage, String) {
    let not_ours = format!("{uri} is not in this account's registry ({registry})");
    let (reference, message) = match lookup {
        None => (
            uri.to_owned(),
            format!("{not_ours}: hosts pull it without logging in"),
        ),
        Some(Ok(digest)) => (
            format!("{host}/{repo}@{digest}"),
            format!(
                "{not_ours}: the tag points to {}; hosts pull that digest without logging in",
                short_digest(&digest)
            ),
        ),
        Some(Err(why)) => (
            uri.to_owned(),
            format!(
                "warning: {not_ours}, and hoist could not learn its digest ({why}): hosts pull \
                 the tag {uri} without logging in, every deploy, and run whatever it points to \
                 when they pull, which may differ between hosts and from the image you tested"
            ),
        ),
    };
    (
        RemoteImage {
            reference,
            registry: None,
        },
        message,
    )
}

fn short_tag(tag: &str) -> &str {
    if tag.len() == 40 && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        &tag[..12]
    } else {
        tag
    }
}

fn short_digest(digest: &str) -> String {
    format!("sha256:{}", short_id(digest))
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
        let status = inv
            .outcome
            .unwrap_or_else(|| inv.judge())
            .as_str()
            .to_owned();
        let detail = match inv.failure_reason() {
            Some(reason) => reason,
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;
    use crate::plan::TransportKind;
    use crate::revision::Revision;
    use crate::transport::{InvocationStatus, Outcome};

    const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    fn plan() -> Plan {
        let yaml = "app: web\nimage:\n  repository: web\ntargets:\n  tags:\n    Env: [prod]\n\
                    container:\n  port: 8080\n";
        let config = crate::config::parse(yaml, "hoist.yaml".as_ref(), ".".as_ref()).unwrap();
        let inputs = Inputs {
            revision: Revision {
                sha: "0123456789abcdef0123456789abcdef01234567".into(),
                dirty: false,
                committed_at: None,
                source: None,
            },
            release: None,
            transport: TransportKind::Local,
            image_id: Some(format!("sha256:{}", "a".repeat(64))),
            registry: None,
            prebuilt: None,
            instances: None,
            run: None,
            hoist_version: "test".into(),
        };
        plan::build(&config, &inputs).unwrap()
    }

    fn invocation(status: InvocationStatus, result: &str) -> Invocation {
        Invocation {
            target: "local".into(),
            status,
            exit_code: Some(if result == "deployed" { 0 } else { 1 }),
            stdout: format!("HOIST-RESULT {{\"status\":\"{result}\"}}\n"),
            stderr: String::new(),
            stdout_truncated: false,
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
                invocations: vec![inv],
                deployed: 0,
                failed: 1,
                cancelled: false,
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

    async fn run_with(invocations: Vec<Invocation>) -> Report {
        let secrets = SecretEnv::resolve(&[], |_| None).unwrap();
        run(
            plan(),
            &CancelledAfter(Mutex::new(invocations)),
            &secrets,
            &Reporter::plain(),
            CancellationToken::new(),
        )
        .await
        .unwrap()
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
        let report = run(
            plan(),
            &CancelledAfter(Mutex::new(vec![failed])),
            &secrets,
            &Reporter::plain(),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let result = report.invocations[0].result.as_ref().expect("parsed");
        assert_eq!(result.status, "failed");
        assert_eq!(result.reason, "the registry refused token ***");
        assert_eq!(result.health, "probe answered ***");
        let table = summary(&report);
        assert!(table.contains("refused token ***"), "{table}");
        let json = serde_json::to_string(&report).unwrap();
        for shown in [&table, &json] {
            assert!(!shown.contains("q9z7"), "{shown}");
        }
    }

    #[test]
    fn a_foreign_tag_is_pinned_to_the_digest_the_registry_gave() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let (image, message) = foreign_image(
            "r.example.com/team/web:v1",
            "r.example.com",
            "team/web",
            REGISTRY,
            Some(Ok(digest.clone())),
        );
        assert_eq!(image.reference, format!("r.example.com/team/web@{digest}"));
        assert_eq!(
            image.registry, None,
            "no login to a registry not the account's"
        );
        assert!(message.contains("sha256:bbbbbbbbbbbb"), "{message}");
    }

    #[test]
    fn a_foreign_tag_without_a_digest_stays_a_tag_with_a_warning() {
        let uri = "r.example.com/team/web:v1";
        let (image, message) = foreign_image(
            uri,
            "r.example.com",
            "team/web",
            REGISTRY,
            Some(Err("unauthorized".into())),
        );
        assert_eq!(image.reference, uri);
        assert!(message.starts_with("warning:"), "{message}");
        assert!(
            message.contains("unauthorized") && message.contains("pull the tag"),
            "{message}"
        );
    }

    #[test]
    fn image_messages_have_no_runs_of_spaces() {
        for lookup in [
            None,
            Some(Ok(format!("sha256:{}", "b".repeat(64)))),
            Some(Err("no answer".to_owned())),
        ] {
            let (_, message) = foreign_image(
                "r.example.com/web:v1",
                "r.example.com",
                "web",
                REGISTRY,
                lookup,
            );
            assert!(!message.contains("  "), "{message:?}");
        }
    }

    #[tokio::test]
    async fn an_unknown_repository_is_bad_input_like_an_unknown_tag() {
        use aws_sdk_ecr::operation::batch_get_image::BatchGetImageError;
        use aws_sdk_ecr::types::error::RepositoryNotFoundException;
        let missing = mock!(aws_sdk_ecr::Client::batch_get_image).then_error(|| {
            BatchGetImageError::RepositoryNotFoundException(
                RepositoryNotFoundException::builder()
                    .message("The repository with name 'nope' does not exist")
                    .build(),
            )
        });
        let ecr = Ecr::new(mock_client!(aws_sdk_ecr, RuleMode::MatchAny, &[&missing]));
        let docker = Docker::connect_with_local_defaults().unwrap();
        let err = resolve_prebuilt(
            &format!("{REGISTRY}/nope:v1"),
            REGISTRY,
            &ecr,
            &docker,
            &Reporter::plain(),
        )
        .await
        .unwrap_err();
        match err {
            DeployError::BadImage(_, why) => assert!(why.contains("nope"), "{why}"),
            e => panic!("expected bad input, got {e:?}"),
        }
    }
}

//! The steps that make the image exist before any host is touched: ensure the repository,
//! build, push; and resolving an `--image` that is deployed as it is.

use std::time::Duration;

use bollard::Docker;

use super::execute::StepStatus;
use super::steps::DeployError;
use crate::domain::Events;
use crate::domain::RepositoryTag;
use crate::ecr::{self, Ecr, EcrError, ImageRecords, Login, Recorded};
use crate::image::{self, BuildError, BuildRequest, PushError};
use crate::plan::{self, Step};

/// The account's registry: its ECR API, the login pushes use, and where hoist records the
/// digests it pushed.
pub struct Registry<'a> {
    pub ecr: &'a Ecr,
    pub login: Login,
    pub records: ImageRecords,
}

/// The image hosts run, once the publishing steps ran (or `--image` was resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteImage {
    /// `registry/repository@sha256:…`, an image id (local), or an `--image` URI outside
    /// the account's registry.
    pub reference: String,
    /// The registry hosts log in to with their own role; `None` when no login is needed.
    pub registry: Option<String>,
}

/// Executes the publishing steps of a plan, in order, and remembers what they made.
pub struct Publisher<'a> {
    docker: &'a Docker,
    registry: Option<&'a Registry<'a>>,
    progress: &'a dyn Events,
    /// The repository was created, or found, with immutable tags.
    immutable: bool,
    /// The image id the build step made.
    built: Option<String>,
    /// `repository` and the digest it holds the image under, once known.
    digest: Option<(String, String)>,
    /// Where the push records the digest it left (the build step's record), if anywhere.
    record: Option<String>,
}

impl<'a> Publisher<'a> {
    pub fn new(
        docker: &'a Docker,
        registry: Option<&'a Registry<'a>>,
        progress: &'a dyn Events,
    ) -> Self {
        Publisher {
            docker,
            registry,
            progress,
            immutable: false,
            built: None,
            digest: None,
            record: None,
        }
    }

    fn registry(&self, step: &str) -> Result<&'a Registry<'a>, DeployError> {
        self.registry.ok_or(DeployError::Unsupported(format!(
            "the plan's {step} step needs the account's registry, and this deploy has none \
             (a local deploy builds only)"
        )))
    }

    /// Executes one publishing step; what it did, in words.
    pub async fn execute(&mut self, step: &Step) -> Result<(StepStatus, String), DeployError> {
        match step {
            Step::EnsureRepository {
                repository,
                immutable_tags,
                scan_on_push,
            } => {
                let registry = self.registry("ensure-repository")?;
                self.progress
                    .activity(&format!("checking ECR repository {repository}"));
                let repo = registry
                    .ecr
                    .ensure_repository(repository, *immutable_tags, *scan_on_push)
                    .await?;
                self.immutable = repo.immutable;
                let tags = if repo.immutable {
                    "immutable"
                } else {
                    "mutable"
                };
                let detail = if repo.created {
                    let line = format!("created ECR repository {repository} (tags {tags})");
                    self.progress.done(&line);
                    line
                } else {
                    format!("ECR repository {repository} exists (tags {tags})")
                };
                Ok((StepStatus::Done, detail))
            }
            Step::Build { reuse, tags, .. } => {
                if let Some(reuse) = reuse {
                    let registry = self.registry("build")?;
                    if let Some(digest) = self.vouched(registry, reuse).await? {
                        let line = format!(
                            "{}/{}:{} holds the digest hoist recorded in {} ({}): no build, no \
                             push",
                            registry.login.registry,
                            reuse.repository,
                            short_tag(&reuse.tag),
                            reuse.record,
                            short_digest(&digest)
                        );
                        self.progress.done(&line);
                        self.digest = Some((reuse.repository.clone(), digest));
                        return Ok((StepStatus::Skipped, line));
                    }
                    self.record = Some(reuse.record.clone());
                }
                let id = build_image(self.docker, step, self.progress).await?;
                let detail = format!("built {} ({})", tags[0], short_id(&id));
                self.built = Some(id);
                Ok((StepStatus::Done, detail))
            }
            Step::Push {
                repository, tags, ..
            } => self.push(repository, tags).await,
            other => Err(DeployError::Unsupported(format!(
                "{} is not a publishing step",
                other.kind().as_str()
            ))),
        }
    }

    /// The digest to reuse for a commit's tag: the one hoist recorded pushing, when the tag
    /// still holds it. `None` (build, push and record) when there is no record (the tag
    /// alone is not trusted, whoever pushed it), or the tag is gone. A tag that holds
    /// another digest than the record is refused: somebody pushed over it.
    async fn vouched(
        &self,
        registry: &Registry<'_>,
        reuse: &RepositoryTag,
    ) -> Result<Option<String>, DeployError> {
        let tag = format!("{}:{}", reuse.repository, short_tag(&reuse.tag));
        let recorded = registry.records.read(&reuse.record).await?;
        let Some(recorded) = recorded.filter(|r| r.repository == reuse.repository) else {
            self.progress.info(&format!(
                "no record of hoist pushing {tag} in {}: building (a tag alone is not trusted)",
                reuse.record
            ));
            return Ok(None);
        };
        match registry
            .ecr
            .tag_content(&reuse.repository, &reuse.tag)
            .await?
        {
            Some(c) if c.digest == recorded.digest => Ok(Some(c.digest)),
            Some(c) => Err(DeployError::TagMoved {
                repository: reuse.repository.clone(),
                tag: reuse.tag.clone(),
                found: c.digest,
                recorded: recorded.digest,
                parameter: reuse.record.clone(),
            }),
            None => {
                self.progress.info(&format!(
                    "{tag} is gone from the registry: building and pushing it again"
                ));
                Ok(None)
            }
        }
    }

    async fn push(
        &mut self,
        repository: &str,
        tags: &[String],
    ) -> Result<(StepStatus, String), DeployError> {
        let registry = self.registry("push")?;
        let Some(image_id) = self.built.clone() else {
            return match &self.digest {
                Some(_) => Ok((
                    StepStatus::Skipped,
                    "the registry already holds this commit's image".to_owned(),
                )),
                None => Err(DeployError::Unsupported(
                    "the plan pushes an image no earlier step built".into(),
                )),
            };
        };
        let login = &registry.login;
        let repo_path = format!("{}/{repository}", login.registry);
        let creds = image::Credentials {
            registry: &login.registry,
            username: &login.username,
            password: &login.password,
        };
        let (mut pushed, mut held) = (Vec::new(), Vec::new());
        // The primary tag's digest, when it already held this image (no need to ask).
        let mut primary_digest = None;
        for tag in tags {
            match registry.ecr.tag_content(repository, tag).await? {
                Some(c) if c.config_digest.as_deref() == Some(image_id.as_str()) => {
                    self.progress.done(&format!(
                        "{repo_path}:{} already holds this image ({}): push skipped",
                        short_tag(tag),
                        short_digest(&c.digest)
                    ));
                    if tag == &tags[0] {
                        primary_digest = Some(c.digest);
                    }
                    held.push(short_tag(tag).to_owned());
                    continue;
                }
                Some(c) if self.immutable => {
                    return Err(EcrError::ImmutableTagTaken {
                        repository: repository.to_owned(),
                        tag: tag.clone(),
                        digest: c.digest,
                    }
                    .into());
                }
                Some(_) => self.progress.info(&format!(
                    "{repo_path}:{} holds a different image; it will point at the new one",
                    short_tag(tag)
                )),
                None => {}
            }
            image::push(
                self.docker,
                &image_id,
                &repo_path,
                tag,
                &creds,
                self.progress,
            )
            .await?;
            self.progress
                .done(&format!("pushed {repo_path}:{}", short_tag(tag)));
            pushed.push(short_tag(tag).to_owned());
        }
        // bollard does not hand back the daemon's digest message: ask the registry.
        let digest = match primary_digest {
            Some(d) => d,
            None => {
                registry
                    .ecr
                    .tag_content(repository, &tags[0])
                    .await?
                    .ok_or_else(|| PushError::Failed {
                        name: format!("{repo_path}:{}", tags[0]),
                        message: "the registry does not show the tag after the push".into(),
                    })?
                    .digest
            }
        };
        let mut recorded_note = String::new();
        if let Some(record) = &self.record {
            let recorded = Recorded {
                repository: repository.to_owned(),
                digest: digest.clone(),
            };
            registry.records.write(record, &recorded).await?;
            self.progress.done(&format!(
                "recorded {} in {record}: later deploys of this commit reuse only that digest",
                short_digest(&digest)
            ));
            recorded_note = format!("; recorded {} in {record}", short_digest(&digest));
        }
        self.digest = Some((repository.to_owned(), digest));
        let held_note = format!("{} already held this image", held.join(", "));
        Ok(match (pushed.is_empty(), held.is_empty()) {
            (true, _) => (
                StepStatus::Skipped,
                format!("every tag: {held_note}{recorded_note}"),
            ),
            (false, true) => (
                StepStatus::Done,
                format!("pushed {}{recorded_note}", pushed.join(", ")),
            ),
            (false, false) => (
                StepStatus::Done,
                format!("pushed {}; {held_note}{recorded_note}", pushed.join(", ")),
            ),
        })
    }

    /// What hosts run, after the publishing steps: the digest in the registry, else the
    /// image id built (local). `None` when no step made an image.
    pub fn published(&self) -> Option<RemoteImage> {
        match (&self.digest, self.registry, &self.built) {
            (Some((repository, digest)), Some(registry), _) => Some(RemoteImage {
                reference: format!("{}/{repository}@{digest}", registry.login.registry),
                registry: Some(registry.login.registry.clone()),
            }),
            (_, _, Some(id)) => Some(RemoteImage {
                reference: id.clone(),
                registry: None,
            }),
            _ => None,
        }
    }
}

/// Builds the image a plan's build step describes with `docker`; returns its id.
async fn build_image(
    docker: &Docker,
    step: &Step,
    progress: &dyn Events,
) -> Result<String, BuildError> {
    let Step::Build {
        builder,
        context,
        dockerfile,
        target,
        platform,
        build_args,
        labels,
        tags,
        ..
    } = step
    else {
        unreachable!("called with the build step");
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

/// The image id `--image` names in the local engine (local transport): hosts run the id,
/// so the deploy is pinned even when the name is a tag that moves afterwards.
pub async fn resolve_local_image(
    docker: &Docker,
    uri: &str,
    progress: &dyn Events,
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

pub async fn resolve_prebuilt(
    uri: &str,
    registry: &str,
    ecr: &Ecr,
    docker: &Docker,
    progress: &dyn Events,
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

pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// What `hoist build` was asked.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub file: crate::config::Source,
    /// Build into this machine's engine only (no ECR).
    pub local: bool,
    pub release: Option<String>,
}

/// What `hoist build` made.
#[derive(Debug, serde::Serialize)]
pub struct Built {
    pub app: String,
    pub release: String,
    pub revision: String,
    /// What hosts would run: `registry/repository@sha256:…` (an image id with --local).
    pub image: String,
    pub digest: Option<String>,
    pub tags: Vec<String>,
    pub steps: Vec<super::execute::StepReport>,
}

/// `hoist build`: the deploy's publishing steps only (ensure the repository, build, push),
/// then what hosts would run.
pub async fn run_request(
    request: Request,
    events: &dyn Events,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Built, super::error::Error> {
    use super::error::Error;
    let transport = super::prepare::transport_kind(request.local);
    let (config, mut inputs) = super::prepare::prepare(
        &request.file,
        crate::config::Files::ContextAndDockerfile,
        transport,
        request.release,
        super::prepare::Source::Digest,
    )
    .await?;
    let docker = Docker::connect_with_local_defaults().map_err(Error::Docker)?;
    docker.ping().await.map_err(Error::Docker)?;
    let interrupted = |e| match e {
        DeployError::Interrupted => Error::Interrupted("before anything was pushed"),
        e => Error::Deploy(e),
    };
    let (image, steps, plan) = if request.local {
        let plan = plan::build(&config, &inputs)?;
        let mut publisher = Publisher::new(&docker, None, events);
        let (_, steps) = super::steps::publish(&plan, &mut publisher, cancel)
            .await
            .map_err(interrupted)?;
        (publisher.published(), steps, plan)
    } else {
        let aws = super::prepare::Aws::new(&config).await;
        let ecr = aws.ecr();
        let login =
            super::prepare::ecr_login(&ecr, events, cancel, "before anything was pushed").await?;
        let registry = Registry {
            ecr: &ecr,
            login,
            records: ImageRecords::new(aws.ssm.clone()),
        };
        inputs.registry = Some(registry.login.registry.clone());
        let plan = plan::build(&config, &inputs)?;
        let mut publisher = Publisher::new(&docker, Some(&registry), events);
        let (_, steps) = super::steps::publish(&plan, &mut publisher, cancel)
            .await
            .map_err(interrupted)?;
        (publisher.published(), steps, plan)
    };
    let image = image.ok_or_else(|| {
        Error::Deploy(DeployError::Unsupported(
            "the plan has no build step".into(),
        ))
    })?;
    let digest = image.reference.rsplit_once('@').map(|(_, d)| d.to_owned());
    Ok(Built {
        app: plan.app.clone(),
        release: plan.release.clone(),
        revision: plan.revision.sha.clone(),
        image: image.reference.clone(),
        digest,
        tags: plan.image.tags.clone(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

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
            &crate::domain::events::Silent,
        )
        .await
        .unwrap_err();
        match err {
            DeployError::BadImage(_, why) => assert!(why.contains("nope"), "{why}"),
            e => panic!("expected bad input, got {e:?}"),
        }
    }
}

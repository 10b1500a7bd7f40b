//! ECR: the account's registry and its credentials, the repository, what a tag holds, and
//! the record of what hoist pushed ([`record`]).
//!
//! The registry host comes from `GetAuthorizationToken`'s `proxyEndpoint`, so an endpoint
//! override (`AWS_ENDPOINT_URL_ECR`, an emulator) needs no other setting. Every call is made
//! under hoist's throttling policy ([`crate::aws::retry`]) on top of the SDK's retries.

use aws_sdk_ecr::Client;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageIdentifier, ImageScanningConfiguration, ImageTagMutability};
use base64::Engine as _;

use crate::aws::retry;

mod record;
pub use record::{ImageRecords, Recorded};

#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("ECR {operation} failed: {message}")]
    Api {
        operation: &'static str,
        message: String,
    },
    #[error("ECR repository {repository} does not exist")]
    RepositoryNotFound { repository: String },
    #[error("ECR returned an authorization token hoist cannot read: {0}")]
    BadToken(String),
    #[error(
        "tag {tag} of the immutable repository {repository} already holds a different image \
         ({digest}); use a new tag, or deploy that image with --image"
    )]
    ImmutableTagTaken {
        repository: String,
        tag: String,
        digest: String,
    },
    #[error(
        "image.immutable_tags is true, but ECR repository {repository} has tag mutability \
         {mutability}: its tags can be pushed over, so nothing was changed. Make the \
         repository's tags immutable (aws ecr put-image-tag-mutability --repository-name \
         {repository} --image-tag-mutability IMMUTABLE), or set image.immutable_tags: false"
    )]
    MutableRepository {
        repository: String,
        mutability: String,
    },
    #[error("SSM {operation} on the image record {parameter} failed: {message}")]
    Record {
        operation: &'static str,
        parameter: String,
        message: String,
    },
    #[error(
        "the image record {parameter} holds {value:?}, not <repository>@sha256:<digest> as \
         hoist writes it: nothing was changed (delete the parameter to have hoist build, push \
         and record the image again)"
    )]
    BadRecord { parameter: String, value: String },
}

fn api_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
    err: &aws_sdk_ecr::error::SdkError<E>,
) -> EcrError {
    EcrError::Api {
        operation,
        message: crate::aws::error_message(err),
    }
}

/// Credentials for the account's registry, valid for 12 hours.
#[derive(Clone)]
pub struct Login {
    /// `host[:port]`, without scheme.
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub name: String,
    pub immutable: bool,
    pub created: bool,
}

/// What a tag holds in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagContent {
    /// The manifest digest (`sha256:…`): what hosts pull.
    pub digest: String,
    /// The image config digest from the manifest: equal to the local image id of the image
    /// that was pushed, so hoist can tell "same content" without pulling.
    pub config_digest: Option<String>,
}

pub struct Ecr {
    client: Client,
}

impl Ecr {
    pub fn new(client: Client) -> Self {
        Ecr { client }
    }

    pub async fn login(&self) -> Result<Login, EcrError> {
        let resp = retry(|| self.client.get_authorization_token().send())
            .await
            .map_err(|e| api_error("GetAuthorizationToken", &e))?;
        let data = resp
            .authorization_data()
            .first()
            .ok_or_else(|| EcrError::BadToken("no authorizationData".into()))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| EcrError::BadToken("no authorizationToken".into()))?;
        let endpoint = data
            .proxy_endpoint()
            .ok_or_else(|| EcrError::BadToken("no proxyEndpoint".into()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|e| EcrError::BadToken(format!("not base64: {e}")))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| EcrError::BadToken("not UTF-8".into()))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| EcrError::BadToken("not user:password".into()))?;
        Ok(Login {
            registry: registry_host(endpoint),
            username: username.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Finds the repository, creating it (with the configured tag mutability and scan on
    /// push) when it does not exist. An existing repository whose tags are not `IMMUTABLE`
    /// when `immutable` says they must be is refused ([`EcrError::MutableRepository`]).
    pub async fn ensure_repository(
        &self,
        name: &str,
        immutable: bool,
        scan_on_push: bool,
    ) -> Result<Repository, EcrError> {
        match retry(|| {
            self.client
                .describe_repositories()
                .repository_names(name)
                .send()
        })
        .await
        {
            Ok(resp) => {
                let mutability = resp
                    .repositories()
                    .first()
                    .and_then(|r| r.image_tag_mutability())
                    .map_or("MUTABLE", ImageTagMutability::as_str);
                // IMMUTABLE_WITH_EXCLUSION leaves the tags its filters match mutable.
                if immutable && mutability != "IMMUTABLE" {
                    return Err(EcrError::MutableRepository {
                        repository: name.to_owned(),
                        mutability: mutability.to_owned(),
                    });
                }
                Ok(Repository {
                    name: name.to_owned(),
                    immutable: mutability.starts_with("IMMUTABLE"),
                    created: false,
                })
            }
            Err(e) if e.code() == Some("RepositoryNotFoundException") => {
                let mutability = if immutable {
                    ImageTagMutability::Immutable
                } else {
                    ImageTagMutability::Mutable
                };
                let created = retry(|| {
                    self.client
                        .create_repository()
                        .repository_name(name)
                        .image_tag_mutability(mutability.clone())
                        .image_scanning_configuration(
                            ImageScanningConfiguration::builder()
                                .scan_on_push(scan_on_push)
                                .build(),
                        )
                        .send()
                })
                .await;
                match created {
                    Ok(_) => {}
                    // Created concurrently by another deploy: fine.
                    Err(e) if e.code() == Some("RepositoryAlreadyExistsException") => {}
                    Err(e) => return Err(api_error("CreateRepository", &e)),
                }
                Ok(Repository {
                    name: name.to_owned(),
                    immutable,
                    created: true,
                })
            }
            Err(e) => Err(api_error("DescribeRepositories", &e)),
        }
    }

    /// What `tag` holds in `repository`, or `None` when the tag does not exist
    /// ([`EcrError::RepositoryNotFound`] when the repository does not).
    pub async fn tag_content(
        &self,
        repository: &str,
        tag: &str,
    ) -> Result<Option<TagContent>, EcrError> {
        let resp = retry(|| {
            self.client
                .batch_get_image()
                .repository_name(repository)
                .image_ids(ImageIdentifier::builder().image_tag(tag).build())
                .accepted_media_types("application/vnd.docker.distribution.manifest.v2+json")
                .accepted_media_types("application/vnd.oci.image.manifest.v1+json")
                .send()
        })
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(aws_sdk_ecr::operation::batch_get_image::BatchGetImageError::is_repository_not_found_exception)
            {
                EcrError::RepositoryNotFound {
                    repository: repository.to_owned(),
                }
            } else {
                api_error("BatchGetImage", &e)
            }
        })?;
        let Some(image) = resp.images().first() else {
            return Ok(None);
        };
        let Some(digest) = image.image_id().and_then(|i| i.image_digest()) else {
            return Ok(None);
        };
        let config_digest = image
            .image_manifest()
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|m| m["config"]["digest"].as_str().map(str::to_owned));
        Ok(Some(TagContent {
            digest: digest.to_owned(),
            config_digest,
        }))
    }
}

/// `https://123.dkr.ecr.us-east-1.amazonaws.com` → `123.dkr.ecr.us-east-1.amazonaws.com`.
pub fn registry_host(endpoint: &str) -> String {
    let host = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .unwrap_or(endpoint);
    host.trim_end_matches('/').to_owned()
}

/// Splits `host/repo/path:tag` or `host/repo@sha256:…` into (host, repository, tag-or-digest).
pub fn split_uri(uri: &str) -> Option<(&str, &str, Reference<'_>)> {
    let (host, rest) = uri.split_once('/')?;
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return None;
    }
    if let Some((repo, digest)) = rest.split_once('@') {
        return Some((host, repo, Reference::Digest(digest)));
    }
    match rest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => Some((host, repo, Reference::Tag(tag))),
        _ => Some((host, rest, Reference::Tag("latest"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference<'a> {
    Tag(&'a str),
    Digest(&'a str),
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecr::config::retry::RetryConfig;
    use aws_sdk_ecr::operation::describe_repositories::{
        DescribeRepositoriesError, DescribeRepositoriesOutput,
    };
    use aws_sdk_ecr::types::Repository as EcrRepository;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    /// Every ECR call is under the shared throttling policy: a `DescribeRepositories` throttled
    /// twice (past the SDK's own retries, here none) still finds the repository.
    #[tokio::test]
    async fn a_throttled_describe_repositories_is_retried() {
        let rule = mock!(aws_sdk_ecr::Client::describe_repositories)
            .sequence()
            .error(|| {
                DescribeRepositoriesError::generic(
                    aws_sdk_ecr::error::ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
            .times(2)
            .output(|| {
                DescribeRepositoriesOutput::builder()
                    .repositories(
                        EcrRepository::builder()
                            .repository_name("web")
                            .image_tag_mutability(ImageTagMutability::Immutable)
                            .build(),
                    )
                    .build()
            })
            .build();
        let client = mock_client!(aws_sdk_ecr, RuleMode::Sequential, [&rule], |c| c
            .retry_config(RetryConfig::disabled()));
        let repo = Ecr::new(client)
            .ensure_repository("web", false, true)
            .await
            .unwrap();
        assert_eq!(
            repo,
            Repository {
                name: "web".into(),
                immutable: true,
                created: false
            }
        );
        assert_eq!(rule.num_calls(), 3);
    }

    /// `immutable_tags: true` is checked against the repository, not assumed: a MUTABLE
    /// one (or one whose exclusions leave tags mutable) is refused, naming both settings
    /// and the fix.
    #[tokio::test]
    async fn a_config_claiming_immutable_tags_refuses_a_mutable_repository() {
        for (found, refused) in [
            (ImageTagMutability::Mutable, true),
            (ImageTagMutability::MutableWithExclusion, true),
            (ImageTagMutability::ImmutableWithExclusion, true),
            (ImageTagMutability::Immutable, false),
        ] {
            let mutability = found.clone();
            let rule = mock!(aws_sdk_ecr::Client::describe_repositories).then_output(move || {
                DescribeRepositoriesOutput::builder()
                    .repositories(
                        EcrRepository::builder()
                            .repository_name("web")
                            .image_tag_mutability(mutability.clone())
                            .build(),
                    )
                    .build()
            });
            let client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, [&rule]);
            let ecr = Ecr::new(client);
            let result = ecr.ensure_repository("web", true, false).await;
            if refused {
                let message = result.unwrap_err().to_string();
                for part in [
                    "web",
                    found.as_str(),
                    "image.immutable_tags is true",
                    "aws ecr put-image-tag-mutability --repository-name web \
                     --image-tag-mutability IMMUTABLE",
                    "image.immutable_tags: false",
                ] {
                    assert!(message.contains(part), "{part}: {message}");
                }
            } else {
                assert!(result.unwrap().immutable);
            }
            // A config that does not ask for immutable tags takes the repository as it is.
            assert!(ecr.ensure_repository("web", false, false).await.is_ok());
        }
    }

    #[test]
    fn registry_host_strips_the_scheme() {
        assert_eq!(
            registry_host("https://1234.dkr.ecr.eu-west-1.amazonaws.com"),
            "1234.dkr.ecr.eu-west-1.amazonaws.com"
        );
        assert_eq!(registry_host("https://10.1.0.1:5000/"), "10.1.0.1:5000");
    }

    #[test]
    fn image_uris_split() {
        assert_eq!(
            split_uri("10.1.0.1:5000/team/hello:abc"),
            Some(("10.1.0.1:5000", "team/hello", Reference::Tag("abc")))
        );
        assert_eq!(
            split_uri("r.example.com/hello@sha256:ff"),
            Some(("r.example.com", "hello", Reference::Digest("sha256:ff")))
        );
        assert_eq!(split_uri("hello:1"), None);
    }
}

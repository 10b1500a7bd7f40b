//! The revision an image says it was built from: its `org.opencontainers.image.revision`
//! label, read from the local engine, pulled first when the engine does not have it.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::CreateImageOptions;
use futures_util::StreamExt;

use super::Credentials;
use crate::domain::Events;

pub use crate::domain::REVISION_LABEL;

#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("cannot pull {image} to read its revision label: {message}")]
    Pull { image: String, message: String },
    #[error("cannot inspect {image}: {cause}")]
    Inspect {
        image: String,
        cause: bollard::errors::Error,
    },
}

/// The revision label of `image` (`registry/repository@sha256:…`), `None` when it has none.
/// A digest names its content, so an image the engine already holds under that digest is
/// the one the registry holds; otherwise it is pulled with `creds`.
pub async fn revision_of(
    docker: &Docker,
    image: &str,
    creds: &Credentials<'_>,
    progress: &dyn Events,
) -> Result<Option<String>, RevisionError> {
    let inspected = match docker.inspect_image(image).await {
        Ok(found) => found,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            progress.activity(&format!("pulling {image} to read its revision label"));
            let credentials = DockerCredentials {
                username: Some(creds.username.to_owned()),
                password: Some(creds.password.to_owned()),
                serveraddress: Some(creds.registry.to_owned()),
                ..Default::default()
            };
            let mut stream = docker.create_image(
                Some(CreateImageOptions {
                    from_image: Some(image.to_owned()),
                    ..Default::default()
                }),
                None,
                Some(credentials),
            );
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| RevisionError::Pull {
                    image: image.to_owned(),
                    message: e.to_string(),
                })?;
                if let Some(err) = info.error_detail {
                    return Err(RevisionError::Pull {
                        image: image.to_owned(),
                        message: err.message.unwrap_or_else(|| "unknown error".into()),
                    });
                }
            }
            docker
                .inspect_image(image)
                .await
                .map_err(|cause| RevisionError::Inspect {
                    image: image.to_owned(),
                    cause,
                })?
        }
        Err(cause) => {
            return Err(RevisionError::Inspect {
                image: image.to_owned(),
                cause,
            });
        }
    };
    Ok(inspected
        .config
        .and_then(|c| c.labels)
        .and_then(|mut labels| labels.remove(REVISION_LABEL)))
}

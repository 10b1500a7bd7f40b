//! `docker push` through the Engine API, with registry credentials that never touch disk.

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use futures_util::StreamExt;

use crate::domain::Events;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("cannot tag {image} as {name}: {cause}")]
    Tag {
        image: String,
        name: String,
        cause: bollard::errors::Error,
    },
    #[error("pushing {name} failed: {message}")]
    Failed { name: String, message: String },
}

/// Registry credentials for one push (ECR: user `AWS` and the token's password).
pub struct Credentials<'a> {
    pub registry: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

/// Tags `image` (an id) as `repo_path:tag` and pushes it.
pub async fn push(
    docker: &Docker,
    image: &str,
    repo_path: &str,
    tag: &str,
    creds: &Credentials<'_>,
    progress: &dyn Events,
) -> Result<(), PushError> {
    let name = format!("{repo_path}:{tag}");
    docker
        .tag_image(
            image,
            Some(TagImageOptions {
                repo: Some(repo_path.to_owned()),
                tag: Some(tag.to_owned()),
            }),
        )
        .await
        .map_err(|cause| PushError::Tag {
            image: image.to_owned(),
            name: name.clone(),
            cause,
        })?;
    progress.activity(&format!("pushing {name}"));
    let credentials = DockerCredentials {
        username: Some(creds.username.to_owned()),
        password: Some(creds.password.to_owned()),
        serveraddress: Some(creds.registry.to_owned()),
        ..Default::default()
    };
    let mut stream = docker.push_image(
        repo_path,
        Some(PushImageOptions {
            tag: Some(tag.to_owned()),
            ..Default::default()
        }),
        Some(credentials),
    );
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| PushError::Failed {
            name: name.clone(),
            message: e.to_string(),
        })?;
        if let Some(err) = info.error_detail {
            return Err(PushError::Failed {
                name,
                message: err.message.unwrap_or_else(|| "unknown error".into()),
            });
        }
        if let Some(status) = info.status
            && info.progress_detail.is_none_or(|p| p.total.is_none())
        {
            progress.detail(&status);
        }
    }
    Ok(())
}

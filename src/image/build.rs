//! `docker build` through the Engine API (bollard), streaming progress.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use bollard::Docker;
use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;

use super::context::{self, ContextError};
use crate::progress::Reporter;

/// Lines of build output kept to show when a build fails.
const TAIL: usize = 25;

#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub context: PathBuf,
    pub dockerfile: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Full names (`repo:tag`); the first is the primary.
    pub tags: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Context(#[from] ContextError),
    #[error("cannot reach the Docker engine: {0}")]
    Engine(#[source] bollard::errors::Error),
    #[error("the image build failed: {message}\n--- last build output ---\n{tail}")]
    Failed { message: String, tail: String },
}

/// Builds the image and tags it with every name. Returns the image id (`sha256:…`).
pub async fn build(
    docker: &Docker,
    req: &BuildRequest,
    progress: &Reporter,
) -> Result<String, BuildError> {
    let (tar, files) = context::pack(&req.context, &req.dockerfile)?;
    progress.activity(&format!(
        "building {} from {} ({files} files, {} KiB context)",
        req.tags[0],
        req.context.display(),
        tar.len().div_ceil(1024)
    ));
    let options = BuildImageOptions {
        dockerfile: req.dockerfile.clone(),
        t: Some(req.tags[0].clone()),
        buildargs: Some(to_map(&req.build_args)),
        labels: Some(to_map(&req.labels)),
        target: req.target.clone().unwrap_or_default(),
        platform: req.platform.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL);
    let mut partial = String::new();
    let mut image_id = None;
    let keep = |line: &str, tail: &mut VecDeque<String>| {
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
        if line.starts_with("Step ") {
            progress.detail(line);
        }
    };
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(failed(error, tail, &partial));
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Err(failed(message, tail, &partial));
            }
            Err(e) => return Err(BuildError::Engine(e)),
        };
        if let Some(text) = info.stream {
            partial.push_str(&text);
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                keep(line.trim_end(), &mut tail);
            }
        }
        if let Some(detail) = info.error_detail {
            return Err(failed(detail.message.unwrap_or_default(), tail, &partial));
        }
        if let Some(id) = info.aux.and_then(|aux| aux.id) {
            image_id = Some(id);
        }
    }
    let image_id = match image_id {
        Some(id) => id,
        None => docker
            .inspect_image(&req.tags[0])
            .await
            .map_err(BuildError::Engine)?
            .id
            .unwrap_or_default(),
    };
    for extra in &req.tags[1..] {
        let (repo, tag) = extra.rsplit_once(':').unwrap_or((extra, "latest"));
        docker
            .tag_image(
                &image_id,
                Some(bollard::query_parameters::TagImageOptions {
                    repo: Some(repo.to_owned()),
                    tag: Some(tag.to_owned()),
                }),
            )
            .await
            .map_err(BuildError::Engine)?;
    }
    Ok(image_id)
}

fn failed(message: String, tail: VecDeque<String>, partial: &str) -> BuildError {
    let mut lines: Vec<String> = tail.into_iter().collect();
    if !partial.trim().is_empty() {
        lines.push(partial.trim_end().to_owned());
    }
    BuildError::Failed {
        message: message.trim().to_owned(),
        tail: lines.join("\n"),
    }
}

fn to_map(m: &BTreeMap<String, String>) -> HashMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

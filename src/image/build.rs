//! `docker build` through the Engine API (bollard), streaming progress.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;

use bollard::Docker;
use bollard::models::BuildInfoAux;
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use futures_util::StreamExt;

use super::context::{self, ContextError};
use crate::config::Builder;
use crate::domain::Events;

/// Lines of build output kept to show when a build fails.
const TAIL: usize = 25;

#[derive(Debug, Clone)]
pub struct BuildRequest {
    pub builder: Builder,
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
    Engine(bollard::errors::Error),
    #[error("the image build failed: {message}\n--- last build output ---\n{tail}")]
    Failed { message: String, tail: String },
}

/// Builds the image and tags it with every name. Returns the image id (`sha256:…`).
pub async fn build(
    docker: &Docker,
    req: &BuildRequest,
    progress: &dyn Events,
) -> Result<String, BuildError> {
    let (tar, files) = context::pack_blocking(&req.context, &req.dockerfile).await?;
    let buildkit = match req.builder {
        Builder::Buildkit => true,
        Builder::Classic => false,
        Builder::Auto => engine_supports_buildkit(docker).await,
    };
    progress.activity(&format!(
        "building {} from {} ({files} files, {} KiB context, {})",
        req.tags[0],
        req.context.display(),
        tar.len().div_ceil(1024),
        if buildkit {
            "BuildKit"
        } else {
            "classic builder"
        }
    ));
    let retry = (buildkit && req.builder == Builder::Auto).then(|| tar.clone());
    match build_with(docker, req, tar, buildkit, progress).await {
        Err(Attempt::Refused(message)) if retry.is_some() => {
            progress.info(&format!(
                "the engine refused a BuildKit build ({}): building with the classic builder",
                message.trim()
            ));
            build_with(docker, req, retry.unwrap_or_default(), false, progress)
                .await
                .map_err(Attempt::into_error)
        }
        done => done.map_err(Attempt::into_error),
    }
}

/// How one build attempt failed: refused by the engine before it began (another builder
/// may work), or failed.
enum Attempt {
    Refused(String),
    Failed(BuildError),
}

impl Attempt {
    fn into_error(self) -> BuildError {
        match self {
            Attempt::Refused(message) => BuildError::Failed {
                message,
                tail: String::new(),
            },
            Attempt::Failed(e) => e,
        }
    }
}

impl From<BuildError> for Attempt {
    fn from(e: BuildError) -> Self {
        Attempt::Failed(e)
    }
}

/// One build with one builder. The classic builder turns each label of the build API into a
/// step of its own (about a second each, for a container commit); it gets them as one
/// `LABEL` step instead, in a build of its own on top of the image (see [`labelled`]).
async fn build_with(
    docker: &Docker,
    req: &BuildRequest,
    tar: Vec<u8>,
    buildkit: bool,
    progress: &dyn Events,
) -> Result<String, Attempt> {
    let one_label_step = !buildkit && !req.labels.is_empty() && labels_line(&req.labels).is_some();
    let options = BuildImageOptions {
        dockerfile: req.dockerfile.clone(),
        t: (!one_label_step).then(|| req.tags[0].clone()),
        buildargs: Some(to_map(&req.build_args)),
        labels: (!one_label_step).then(|| to_map(&req.labels)),
        target: req.target.clone().unwrap_or_default(),
        platform: req.platform.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        version: if buildkit {
            BuilderVersion::BuilderBuildKit
        } else {
            BuilderVersion::BuilderV1
        },
        session: buildkit.then(session_id),
        ..Default::default()
    };
    let built = stream_build(docker, options, tar, progress).await?;
    let image_id = if one_label_step {
        let Some(id) = built else {
            return Err(Attempt::Failed(BuildError::Failed {
                message: "the engine did not say which image it built".into(),
                tail: String::new(),
            }));
        };
        let (options, tar) = labelled(&id, req);
        stream_build(docker, options, tar, progress).await?
    } else {
        built
    };
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

/// The build that gives a classic-builder image its labels in one step: `FROM` the image
/// just built, one `LABEL` line, a context of that Dockerfile alone, tagged with the
/// primary name.
fn labelled(image_id: &str, req: &BuildRequest) -> (BuildImageOptions, Vec<u8>) {
    let dockerfile = format!(
        "FROM {image_id}\n{}\n",
        labels_line(&req.labels).unwrap_or_default()
    );
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .expect("writing to memory");
    let tar = tar.into_inner().expect("writing to memory");
    let options = BuildImageOptions {
        dockerfile: "Dockerfile".into(),
        t: Some(req.tags[0].clone()),
        platform: req.platform.clone().unwrap_or_default(),
        rm: true,
        forcerm: true,
        version: BuilderVersion::BuilderV1,
        ..Default::default()
    };
    (options, tar)
}

/// `LABEL "k"="v" …` for a Dockerfile: each key and value double-quoted, with `\`, `"` and
/// `$` (LABEL expands variables) escaped. None when a key or value holds a character that
/// a Dockerfile line cannot carry (a line break or another control character).
fn labels_line(labels: &BTreeMap<String, String>) -> Option<String> {
    let quote = |s: &str| -> Option<String> {
        if s.chars().any(char::is_control) {
            return None;
        }
        let mut out = String::with_capacity(s.len() + 2);
        out.push('"');
        for c in s.chars() {
            if matches!(c, '\\' | '"' | '$') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        Some(out)
    };
    let mut line = String::from("LABEL");
    for (k, v) in labels {
        line.push(' ');
        line.push_str(&quote(k)?);
        line.push('=');
        line.push_str(&quote(v)?);
    }
    Some(line)
}

/// Sends one build and follows its progress to the end. Returns the image id when the
/// engine said it (the classic builder's `aux`).
async fn stream_build(
    docker: &Docker,
    options: BuildImageOptions,
    tar: Vec<u8>,
    progress: &dyn Events,
) -> Result<Option<String>, Attempt> {
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(tar.into())));
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL);
    let mut partial = String::new();
    let mut image_id = None;
    let mut steps_seen = std::collections::HashSet::new();
    let mut vertex_error = None;
    let keep = |line: &str, tail: &mut VecDeque<String>| {
        if tail.len() == TAIL {
            tail.pop_front();
        }
        tail.push_back(line.to_owned());
        if line.starts_with("Step ") {
            progress.detail(line);
        } else if !line.is_empty() {
            progress.verbose(line);
        }
    };
    let mut began = false;
    while let Some(item) = stream.next().await {
        let info = match item {
            Ok(info) => info,
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                return Err(failed(&error, &tail, &partial).into());
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) if !began => {
                return Err(Attempt::Refused(message));
            }
            Err(bollard::errors::Error::DockerResponseServerError { message, .. }) => {
                return Err(failed(&message, &tail, &partial).into());
            }
            Err(e) => return Err(BuildError::Engine(e).into()),
        };
        began = true;
        if let Some(text) = info.stream {
            partial.push_str(&text);
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                keep(line.trim_end(), &mut tail);
            }
        }
        if let Some(detail) = info.error_detail {
            return Err(failed(&detail.message.unwrap_or_default(), &tail, &partial).into());
        }
        match info.aux {
            Some(BuildInfoAux::Default(aux)) => {
                if let Some(id) = aux.id {
                    image_id = Some(id);
                }
            }
            // BuildKit reports a graph of steps (vertexes) and their logs.
            Some(BuildInfoAux::BuildKit(status)) => {
                for v in &status.vertexes {
                    if v.started.is_some()
                        && !v.name.is_empty()
                        && steps_seen.insert(v.digest.clone())
                    {
                        let line = if v.cached {
                            format!("{} (cached)", v.name)
                        } else {
                            v.name.clone()
                        };
                        if tail.len() == TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line.clone());
                        progress.detail(&line);
                    }
                    if !v.error.is_empty() {
                        vertex_error = Some(format!("{}: {}", v.name, v.error));
                    }
                }
                for log in &status.logs {
                    for line in String::from_utf8_lossy(&log.msg).lines() {
                        progress.verbose(line.trim_end());
                        if tail.len() == TAIL {
                            tail.pop_front();
                        }
                        tail.push_back(line.trim_end().to_owned());
                    }
                }
            }
            None => {}
        }
    }
    if let Some(message) = vertex_error {
        return Err(failed(&message, &tail, &partial).into());
    }
    Ok(image_id)
}

/// A fresh `BuildKit` session id (the session serves the build its context and credentials).
fn session_id() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 12];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    format!("hoist-{}", hex::encode(bytes))
}

/// Docker 23 and later build with `BuildKit` by default; older engines with the classic builder.
/// Whether the engine builds with `BuildKit` through its API: a Linux engine of API 1.39
/// (Docker 18.09) or later, whatever builder it defaults to itself.
async fn engine_supports_buildkit(docker: &Docker) -> bool {
    let Ok(version) = docker.version().await else {
        return false;
    };
    let api = version
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('.'))
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    version.os.as_deref() == Some("linux") && api.is_some_and(|v| v >= (1, 39))
}

fn failed(message: &str, tail: &VecDeque<String>, partial: &str) -> BuildError {
    let mut lines: Vec<String> = tail.iter().cloned().collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_one_quoted_label_line() {
        let labels: BTreeMap<String, String> = [
            ("org.opencontainers.image.revision", "0123abc"),
            ("hoist.build.app", "we\"b\\$HOME"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            labels_line(&labels).unwrap(),
            r#"LABEL "hoist.build.app"="we\"b\\\$HOME" "org.opencontainers.image.revision"="0123abc""#
        );
        let broken: BTreeMap<String, String> =
            [("a".to_owned(), "x\ny".to_owned())].into_iter().collect();
        assert_eq!(labels_line(&broken), None);
    }
}

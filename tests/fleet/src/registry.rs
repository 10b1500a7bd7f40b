//! The world's image registry: Debian's `docker-registry` (distribution) over
//! HTTPS with basic auth, and read access to its storage for the ECR API.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use crate::error::{FleetError, Result};
use crate::tls::Tls;

pub const BINARY: &str = "/usr/bin/docker-registry";

/// Writes the registry's config and password file, returns the config path.
pub fn configure(dir: &Path, listen: &str, tls: &Tls, password: &str) -> Result<PathBuf> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data)
        .map_err(FleetError::io(format!("creating {}", data.display())))?;
    // bcrypt as htpasswd expects ("$2y$"/"$2b$" both accepted by distribution).
    let hash =
        bcrypt::hash(password, 5).map_err(|e| FleetError::Invalid(format!("bcrypt: {e}")))?;
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("AWS:{hash}\n"))
        .map_err(FleetError::io("writing htpasswd"))?;
    let config = format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
         maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: {listen}\n  secret: {secret}\n  tls:\n    certificate: {cert}\n    key: {key}\n\
         auth:\n  htpasswd:\n    realm: hoist-fleet\n    path: {htpasswd}\n",
        data = data.display(),
        secret = crate::random::token(32),
        cert = tls.server_cert.display(),
        key = tls.server_key.display(),
        htpasswd = htpasswd.display(),
    );
    let path = dir.join("config.yml");
    std::fs::write(&path, config).map_err(FleetError::io("writing the registry config"))?;
    Ok(path)
}

pub fn spawn(config: &Path, log: &Path) -> Result<u32> {
    let log = std::fs::File::create(log).map_err(FleetError::io("creating the registry log"))?;
    let child = Command::new(BINARY)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(FleetError::io("registry log"))?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(FleetError::io(format!("starting {BINARY}")))?;
    Ok(child.id())
}

/// One manifest of a repository, read from the registry's storage.
#[derive(Debug, Clone, Serialize)]
pub struct StoredImage {
    pub digest: String,
    pub tags: Vec<String>,
    pub manifest: String,
    pub media_type: String,
    pub size: u64,
    pub pushed_at: f64,
}

fn v2(data: &Path) -> PathBuf {
    data.join("docker/registry/v2")
}

/// Repository names present in storage.
pub fn repositories(data: &Path) -> Vec<String> {
    let root = v2(data).join("repositories");
    let mut names = Vec::new();
    let mut stack = vec![(root.clone(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        if depth > 8 {
            continue;
        }
        if dir.join("_manifests").is_dir() {
            if let Ok(rel) = dir.strip_prefix(&root) {
                names.push(rel.to_string_lossy().into_owned());
            }
            continue;
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push((e.path(), depth + 1));
                }
            }
        }
    }
    names.sort();
    names
}

/// A link file's digest. The registry's filesystem driver rewrites a link in place (truncate,
/// then write), so a push of the same tag at that moment can show it empty for an instant:
/// ECR answers from a consistent store, so an empty link is read again before it counts.
fn read_link(path: &Path) -> Option<String> {
    for _ in 0..50 {
        let text = std::fs::read_to_string(path).ok()?;
        let text = text.trim();
        if !text.is_empty() {
            return Some(text.to_string());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    None
}

fn blob(data: &Path, digest: &str) -> Option<Vec<u8>> {
    let hex = digest.strip_prefix("sha256:")?;
    if hex.len() < 2 {
        return None;
    }
    std::fs::read(
        v2(data)
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data"),
    )
    .ok()
}

fn mtime(path: &Path) -> f64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// Every manifest of a repository with its tags.
pub fn images(data: &Path, repo: &str) -> Vec<StoredImage> {
    let manifests = v2(data).join("repositories").join(repo).join("_manifests");
    let mut out: Vec<StoredImage> = Vec::new();
    let revisions = manifests.join("revisions/sha256");
    if let Ok(entries) = std::fs::read_dir(&revisions) {
        for e in entries.flatten() {
            let link = e.path().join("link");
            let Some(digest) = read_link(&link) else {
                continue;
            };
            let Some(raw) = blob(data, &digest) else {
                continue;
            };
            let manifest = String::from_utf8_lossy(&raw).into_owned();
            let parsed: serde_json::Value = serde_json::from_str(&manifest).unwrap_or_default();
            let media_type = parsed["mediaType"]
                .as_str()
                .unwrap_or("application/vnd.docker.distribution.manifest.v2+json")
                .to_string();
            let layers: u64 = parsed["layers"]
                .as_array()
                .map(|ls| ls.iter().filter_map(|l| l["size"].as_u64()).sum())
                .unwrap_or(0);
            out.push(StoredImage {
                digest,
                tags: Vec::new(),
                manifest,
                media_type,
                size: layers + parsed["config"]["size"].as_u64().unwrap_or(0),
                pushed_at: mtime(&link),
            });
        }
    }
    if let Ok(entries) = std::fs::read_dir(manifests.join("tags")) {
        for e in entries.flatten() {
            let tag = e.file_name().to_string_lossy().into_owned();
            if let Some(d) = read_link(&e.path().join("current/link"))
                && let Some(img) = out.iter_mut().find(|i| i.digest == d)
            {
                img.tags.push(tag);
                let t = mtime(&e.path().join("current/link"));
                if t > img.pushed_at {
                    img.pushed_at = t;
                }
            }
        }
    }
    for img in &mut out {
        img.tags.sort();
    }
    out.sort_by(|a, b| a.pushed_at.total_cmp(&b.pushed_at));
    out
}

/// Removes a tag (the manifest stays, untagged), as BatchDeleteImage by tag does
/// when the image has other tags; the caller decides.
pub fn delete_tag(data: &Path, repo: &str, tag: &str) -> bool {
    let dir = v2(data)
        .join("repositories")
        .join(repo)
        .join("_manifests/tags")
        .join(tag);
    dir.is_dir() && std::fs::remove_dir_all(dir).is_ok()
}

/// Removes a manifest and every tag pointing at it.
pub fn delete_manifest(data: &Path, repo: &str, digest: &str) -> bool {
    let manifests = v2(data).join("repositories").join(repo).join("_manifests");
    let Some(hex) = digest.strip_prefix("sha256:") else {
        return false;
    };
    let rev = manifests.join("revisions/sha256").join(hex);
    if !rev.is_dir() {
        return false;
    }
    if let Ok(entries) = std::fs::read_dir(manifests.join("tags")) {
        for e in entries.flatten() {
            if read_link(&e.path().join("current/link")).as_deref() == Some(digest) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    std::fs::remove_dir_all(rev).is_ok()
}

//! ECR: repositories kept here, images answered from the real registry's storage.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use super::{ApiResult, App, AwsError, required, str_field};
use crate::clock;
use crate::registry::{self, StoredImage};

#[derive(Clone)]
struct Repo {
    created: f64,
    mutability: String,
    scan_on_push: bool,
}

#[derive(Default)]
pub struct Ecr {
    repos: Mutex<BTreeMap<String, Repo>>,
}

fn data(app: &App) -> PathBuf {
    app.world.dir.join("run/registry/data")
}

fn repo_json(app: &App, name: &str, r: &Repo) -> Value {
    json!({
        "repositoryArn": format!("arn:aws:ecr:{}:{}:repository/{name}", app.world.region, app.world.account),
        "registryId": app.world.account,
        "repositoryName": name,
        "repositoryUri": format!("{}/{name}", app.world.registry()),
        "createdAt": clock::epoch_json(r.created),
        "imageTagMutability": r.mutability,
        "imageScanningConfiguration": {"scanOnPush": r.scan_on_push},
        "encryptionConfiguration": {"encryptionType": "AES256"},
    })
}

fn not_found(app: &App, name: &str) -> AwsError {
    AwsError::new(
        "RepositoryNotFoundException",
        format!(
            "The repository with name '{name}' does not exist in the registry with id '{}'",
            app.world.account
        ),
    )
}

/// Repositories made with CreateRepository, plus any the registry holds
/// (pushed without one), as if created when first seen.
fn all_repos(app: &App) -> BTreeMap<String, Repo> {
    let mut repos = app.ecr.repos.lock().expect("ecr").clone();
    for name in registry::repositories(&data(app)) {
        repos.entry(name).or_insert(Repo {
            created: clock::now(),
            mutability: "MUTABLE".into(),
            scan_on_push: false,
        });
    }
    repos
}

fn existing_repo(app: &App, p: &Value) -> Result<String, AwsError> {
    let name = required(p, "repositoryName")?;
    if all_repos(app).contains_key(name) {
        Ok(name.to_string())
    } else {
        Err(not_found(app, name))
    }
}

pub fn get_authorization_token(app: &Arc<App>, _p: &Value) -> ApiResult {
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("AWS:{}", app.world.registry_password));
    Ok(json!({"authorizationData": [{
        "authorizationToken": token,
        "expiresAt": clock::epoch_json(clock::now() + 12.0 * 3600.0),
        "proxyEndpoint": format!("https://{}", app.world.registry()),
    }]}))
}

fn valid_repo_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && part
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric())
        })
}

pub fn create_repository(app: &Arc<App>, p: &Value) -> ApiResult {
    let name = required(p, "repositoryName")?;
    if !valid_repo_name(name) {
        return Err(AwsError::new(
            "InvalidParameterException",
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''".to_string(),
        ));
    }
    let mutability = str_field(p, "imageTagMutability").unwrap_or("MUTABLE");
    if !["MUTABLE", "IMMUTABLE"].contains(&mutability) {
        return Err(AwsError::new(
            "InvalidParameterException",
            format!("Invalid parameter at 'imageTagMutability': {mutability}"),
        ));
    }
    let scan = p["imageScanningConfiguration"]["scanOnPush"]
        .as_bool()
        .unwrap_or(false);
    let mut repos = app.ecr.repos.lock().expect("ecr");
    if repos.contains_key(name) {
        return Err(AwsError::new(
            "RepositoryAlreadyExistsException",
            format!(
                "The repository with name '{name}' already exists in the registry with id '{}'",
                app.world.account
            ),
        ));
    }
    let repo = Repo {
        created: clock::now(),
        mutability: mutability.to_string(),
        scan_on_push: scan,
    };
    repos.insert(name.to_string(), repo.clone());
    Ok(json!({"repository": repo_json(app, name, &repo)}))
}

pub fn describe_repositories(app: &Arc<App>, p: &Value) -> ApiResult {
    let repos = all_repos(app);
    let names = super::string_list(p, "repositoryNames");
    let mut out = Vec::new();
    if names.is_empty() {
        for (n, r) in &repos {
            out.push(repo_json(app, n, r));
        }
    } else {
        for n in &names {
            let r = repos.get(n).ok_or_else(|| not_found(app, n))?;
            out.push(repo_json(app, n, r));
        }
    }
    Ok(json!({"repositories": out}))
}

pub fn delete_repository(app: &Arc<App>, p: &Value) -> ApiResult {
    let name = existing_repo(app, p)?;
    let force = p.get("force").and_then(Value::as_bool).unwrap_or(false);
    let images = registry::images(&data(app), &name);
    if !images.is_empty() && !force {
        return Err(AwsError::new(
            "RepositoryNotEmptyException",
            format!(
                "The repository with name '{name}' in registry with id '{}' cannot be deleted because it still contains images",
                app.world.account
            ),
        ));
    }
    for img in &images {
        registry::delete_manifest(&data(app), &name, &img.digest);
    }
    let repo = all_repos(app).get(&name).cloned();
    app.ecr.repos.lock().expect("ecr").remove(&name);
    let repo = repo.unwrap_or(Repo {
        created: clock::now(),
        mutability: "MUTABLE".into(),
        scan_on_push: false,
    });
    Ok(json!({"repository": repo_json(app, &name, &repo)}))
}

struct ImageId {
    digest: Option<String>,
    tag: Option<String>,
}

fn image_ids(p: &Value) -> Vec<ImageId> {
    p.get("imageIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .map(|i| ImageId {
                    digest: str_field(i, "imageDigest").map(str::to_string),
                    tag: str_field(i, "imageTag").map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn matches(img: &StoredImage, id: &ImageId) -> bool {
    id.digest.as_ref().is_none_or(|d| &img.digest == d)
        && id.tag.as_ref().is_none_or(|t| img.tags.contains(t))
        && (id.digest.is_some() || id.tag.is_some())
}

fn id_json(id: &ImageId) -> Value {
    let mut v = json!({});
    if let Some(d) = &id.digest {
        v["imageDigest"] = json!(d);
    }
    if let Some(t) = &id.tag {
        v["imageTag"] = json!(t);
    }
    v
}

fn detail(app: &App, repo: &str, img: &StoredImage) -> Value {
    let parsed: Value = serde_json::from_str(&img.manifest).unwrap_or_default();
    let mut v = json!({
        "registryId": app.world.account,
        "repositoryName": repo,
        "imageDigest": img.digest,
        "imageSizeInBytes": img.size,
        "imagePushedAt": clock::epoch_json(img.pushed_at),
        "imageManifestMediaType": img.media_type,
    });
    if let Some(t) = parsed["config"]["mediaType"].as_str() {
        v["artifactMediaType"] = json!(t);
    }
    if !img.tags.is_empty() {
        v["imageTags"] = json!(img.tags);
    }
    v
}

pub fn describe_images(app: &Arc<App>, p: &Value) -> ApiResult {
    let repo = existing_repo(app, p)?;
    let images = registry::images(&data(app), &repo);
    let ids = image_ids(p);
    let mut out = Vec::new();
    if ids.is_empty() {
        let status = p["filter"]["tagStatus"].as_str().unwrap_or("ANY");
        for img in &images {
            let keep = match status {
                "TAGGED" => !img.tags.is_empty(),
                "UNTAGGED" => img.tags.is_empty(),
                _ => true,
            };
            if keep {
                out.push(detail(app, &repo, img));
            }
        }
    } else {
        for id in &ids {
            let Some(img) = images.iter().find(|i| matches(i, id)) else {
                return Err(AwsError::new(
                    "ImageNotFoundException",
                    format!(
                        "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{repo}' in the registry with id '{}'",
                        id.digest.as_deref().unwrap_or("null"),
                        id.tag.as_deref().unwrap_or("null"),
                        app.world.account
                    ),
                ));
            };
            out.push(detail(app, &repo, img));
        }
    }
    Ok(json!({"imageDetails": out}))
}

pub fn batch_get_image(app: &Arc<App>, p: &Value) -> ApiResult {
    let repo = existing_repo(app, p)?;
    let images = registry::images(&data(app), &repo);
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for id in image_ids(p) {
        match images.iter().find(|i| matches(i, &id)) {
            Some(img) => {
                let mut image_id = json!({"imageDigest": img.digest});
                if let Some(t) = &id.tag {
                    image_id["imageTag"] = json!(t);
                }
                found.push(json!({
                    "registryId": app.world.account,
                    "repositoryName": repo,
                    "imageId": image_id,
                    "imageManifest": img.manifest,
                    "imageManifestMediaType": img.media_type,
                }));
            }
            None => failures.push(json!({
                "imageId": id_json(&id),
                "failureCode": "ImageNotFound",
                "failureReason": "Requested image not found",
            })),
        }
    }
    Ok(json!({"images": found, "failures": failures}))
}

pub fn batch_delete_image(app: &Arc<App>, p: &Value) -> ApiResult {
    let repo = existing_repo(app, p)?;
    let dir = data(app);
    let (mut deleted, mut failures) = (Vec::new(), Vec::new());
    for id in image_ids(p) {
        let images = registry::images(&dir, &repo);
        let Some(img) = images.iter().find(|i| matches(i, &id)) else {
            failures.push(json!({
                "imageId": id_json(&id),
                "failureCode": "ImageNotFound",
                "failureReason": "Requested image not found",
            }));
            continue;
        };
        match (&id.tag, &id.digest) {
            // By tag alone: the tag goes; the image goes with its last tag.
            (Some(tag), None) if img.tags.len() > 1 => {
                registry::delete_tag(&dir, &repo, tag);
                deleted.push(json!({"imageDigest": img.digest, "imageTag": tag}));
            }
            _ => {
                registry::delete_manifest(&dir, &repo, &img.digest);
                if img.tags.is_empty() {
                    deleted.push(json!({"imageDigest": img.digest}));
                }
                for t in &img.tags {
                    deleted.push(json!({"imageDigest": img.digest, "imageTag": t}));
                }
            }
        }
    }
    Ok(json!({"imageIds": deleted, "failures": failures}))
}

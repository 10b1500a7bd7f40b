//! Secrets Manager: secrets with versions and staging labels (AWSCURRENT,
//! AWSPREVIOUS), string or binary values.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{ApiResult, App, AwsError, required, str_field, string_list};
use crate::clock;

const CURRENT: &str = "AWSCURRENT";
const PREVIOUS: &str = "AWSPREVIOUS";
const MAX_VALUE: usize = 65_536;

#[derive(Clone, PartialEq)]
enum SecretValue {
    String(String),
    /// Base64, as the JSON protocol carries blobs.
    Binary(String),
}

#[derive(Clone)]
struct Version {
    id: String,
    value: SecretValue,
    stages: Vec<String>,
    created: f64,
}

struct Secret {
    arn: String,
    description: String,
    tags: Vec<Value>,
    created: f64,
    versions: Vec<Version>,
    /// When a deletion with a recovery window was requested (the secret is
    /// then kept, unusable, for the rest of the world's life).
    deleted: Option<f64>,
}

#[derive(Default)]
pub struct Secrets {
    by_name: Mutex<BTreeMap<String, Secret>>,
}

fn not_found() -> AwsError {
    AwsError::new(
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    )
}

fn marked_for_deletion() -> AwsError {
    AwsError::new(
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    )
}

fn invalid(message: &str) -> AwsError {
    AwsError::new("InvalidParameterException", message)
}

/// `SecretString` or `SecretBinary` (not both), if the request has one.
fn value_of(p: &Value) -> Result<Option<SecretValue>, AwsError> {
    let string = str_field(p, "SecretString");
    let binary = str_field(p, "SecretBinary");
    let (value, len, field) = match (string, binary) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            ));
        }
        (Some(s), None) => (SecretValue::String(s.to_string()), s.len(), "secretString"),
        (None, Some(b)) => {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| {
                    AwsError::new("SerializationException", "SecretBinary is not base64")
                })?;
            (
                SecretValue::Binary(b.to_string()),
                raw.len(),
                "secretBinary",
            )
        }
        (None, None) => return Ok(None),
    };
    if len == 0 || len > MAX_VALUE {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length between 1 and {MAX_VALUE}"
        )));
    }
    Ok(Some(value))
}

/// The secret a `SecretId` (name or full ARN) names.
fn find<'a>(
    store: &'a mut BTreeMap<String, Secret>,
    id: &str,
) -> Result<(String, &'a mut Secret), AwsError> {
    let name = if id.starts_with("arn:") {
        store
            .iter()
            .find(|(_, s)| s.arn == id)
            .map(|(n, _)| n.clone())
            .ok_or_else(not_found)?
    } else {
        id.to_string()
    };
    let secret = store.get_mut(&name).ok_or_else(not_found)?;
    Ok((name, secret))
}

fn token(p: &Value) -> Result<String, AwsError> {
    match str_field(p, "ClientRequestToken") {
        Some(t) if !(32..=64).contains(&t.len()) => Err(AwsError::validation(
            "1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between 32 and 64",
        )),
        Some(t) => Ok(t.to_string()),
        None => Ok(crate::random::uuid()),
    }
}

/// Adds a version labelled `stages`; a version losing AWSCURRENT becomes AWSPREVIOUS.
fn add_version(secret: &mut Secret, id: String, value: SecretValue, stages: Vec<String>) {
    let moving_current = stages.iter().any(|s| s == CURRENT);
    for v in &mut secret.versions {
        let was_current = v.stages.iter().any(|s| s == CURRENT);
        v.stages.retain(|s| !stages.contains(s));
        if moving_current {
            v.stages.retain(|s| s != PREVIOUS);
            if was_current {
                v.stages.push(PREVIOUS.to_string());
            }
        }
    }
    secret.versions.push(Version {
        id,
        value,
        stages,
        created: clock::now(),
    });
    // Versions without a label are deprecated; AWS keeps about 100 of them.
    let unlabelled = secret
        .versions
        .iter()
        .filter(|v| v.stages.is_empty())
        .count();
    if unlabelled > 100
        && let Some(i) = secret.versions.iter().position(|v| v.stages.is_empty())
    {
        secret.versions.remove(i);
    }
}

pub fn create(app: &Arc<App>, p: &Value) -> ApiResult {
    let name = required(p, "Name")?;
    if name.len() > 512
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
    {
        return Err(AwsError::validation(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        ));
    }
    let value = value_of(p)?;
    let version = token(p)?;
    let tags = p
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut store = app.secrets.by_name.lock().expect("secrets");
    if let Some(old) = store.get(name) {
        if old.deleted.is_some() {
            return Err(AwsError::new(
                "InvalidRequestException",
                "You can't create this secret because a secret with this name is already scheduled for deletion.",
            ));
        }
        return Err(AwsError::new(
            "ResourceExistsException",
            format!("The operation failed because the secret {name} already exists."),
        ));
    }
    let arn = format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
        app.world.region,
        app.world.account,
        crate::random::token(6)
    );
    let mut secret = Secret {
        arn: arn.clone(),
        description: str_field(p, "Description").unwrap_or_default().into(),
        tags,
        created: clock::now(),
        versions: Vec::new(),
        deleted: None,
    };
    let mut out = json!({"ARN": arn, "Name": name});
    if let Some(value) = value {
        add_version(&mut secret, version.clone(), value, vec![CURRENT.into()]);
        out["VersionId"] = json!(version);
    }
    store.insert(name.to_string(), secret);
    Ok(out)
}

pub fn put_value(app: &Arc<App>, p: &Value) -> ApiResult {
    let id = required(p, "SecretId")?;
    let value = value_of(p)?
        .ok_or_else(|| invalid("You must provide either SecretString or SecretBinary."))?;
    let version = token(p)?;
    let stages = match string_list(p, "VersionStages") {
        s if s.is_empty() => vec![CURRENT.to_string()],
        s => s,
    };
    let mut store = app.secrets.by_name.lock().expect("secrets");
    let (name, secret) = find(&mut store, id)?;
    if secret.deleted.is_some() {
        return Err(marked_for_deletion());
    }
    if let Some(existing) = secret.versions.iter().find(|v| v.id == version) {
        // A retry with the same token: idempotent if the value is the same.
        if existing.value != value {
            return Err(AwsError::new(
                "ResourceExistsException",
                "You can't modify an existing version, you can only create a new version.",
            ));
        }
        return Ok(json!({
            "ARN": secret.arn, "Name": name,
            "VersionId": existing.id, "VersionStages": existing.stages,
        }));
    }
    add_version(secret, version.clone(), value, stages.clone());
    Ok(json!({"ARN": secret.arn, "Name": name, "VersionId": version, "VersionStages": stages}))
}

pub fn get_value(app: &Arc<App>, p: &Value) -> ApiResult {
    let id = required(p, "SecretId")?;
    let version_id = str_field(p, "VersionId");
    let stage = str_field(p, "VersionStage");
    let mut store = app.secrets.by_name.lock().expect("secrets");
    let (name, secret) = find(&mut store, id)?;
    if secret.deleted.is_some() {
        return Err(marked_for_deletion());
    }
    let wanted_stage = match (version_id, stage) {
        (None, None) => Some(CURRENT),
        (_, s) => s,
    };
    let version = secret
        .versions
        .iter()
        .find(|v| {
            version_id.is_none_or(|id| v.id == id)
                && wanted_stage.is_none_or(|s| v.stages.iter().any(|x| x == s))
        })
        .ok_or_else(|| {
            AwsError::new(
                "ResourceNotFoundException",
                match (version_id, wanted_stage) {
                    (Some(id), _) => format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {id}"
                    ),
                    (None, s) => format!(
                        "Secrets Manager can't find the specified secret value for staging label: {}",
                        s.unwrap_or(CURRENT)
                    ),
                },
            )
        })?;
    let mut out = json!({
        "ARN": secret.arn,
        "Name": name,
        "VersionId": version.id,
        "VersionStages": version.stages,
        "CreatedDate": clock::epoch_json(version.created),
    });
    match &version.value {
        SecretValue::String(s) => out["SecretString"] = json!(s),
        SecretValue::Binary(b) => out["SecretBinary"] = json!(b),
    }
    Ok(out)
}

pub fn delete(app: &Arc<App>, p: &Value) -> ApiResult {
    let id = required(p, "SecretId")?;
    let force = p
        .get("ForceDeleteWithoutRecovery")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let window = p.get("RecoveryWindowInDays").and_then(Value::as_i64);
    if force && window.is_some() {
        return Err(invalid(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
        ));
    }
    if let Some(days) = window
        && !(7..=30).contains(&days)
    {
        return Err(invalid(
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
        ));
    }
    let mut store = app.secrets.by_name.lock().expect("secrets");
    let (name, secret) = find(&mut store, id)?;
    let arn = secret.arn.clone();
    let now = clock::now();
    let when = if force {
        now
    } else {
        if secret.deleted.is_some() {
            return Err(marked_for_deletion());
        }
        let until = now + window.unwrap_or(30) as f64 * 86_400.0;
        secret.deleted = Some(now);
        until
    };
    if force {
        store.remove(&name);
    }
    Ok(json!({"ARN": arn, "Name": name, "DeletionDate": clock::epoch_json(when)}))
}

/// DescribeSecret: the secret's metadata and its versions' labels, no value.
pub fn describe(app: &Arc<App>, p: &Value) -> ApiResult {
    let id = required(p, "SecretId")?;
    let mut store = app.secrets.by_name.lock().expect("secrets");
    let (name, secret) = find(&mut store, id)?;
    let stages: serde_json::Map<String, Value> = secret
        .versions
        .iter()
        .filter(|v| !v.stages.is_empty())
        .map(|v| (v.id.clone(), json!(v.stages)))
        .collect();
    let changed = secret
        .versions
        .iter()
        .map(|v| v.created)
        .fold(secret.created, f64::max);
    let mut out = json!({
        "ARN": secret.arn,
        "Name": name,
        "CreatedDate": clock::epoch_json(secret.created),
        "LastChangedDate": clock::epoch_json(changed),
        "Tags": secret.tags,
        "VersionIdsToStages": stages,
    });
    if !secret.description.is_empty() {
        out["Description"] = json!(secret.description);
    }
    if let Some(at) = secret.deleted {
        out["DeletedDate"] = json!(clock::epoch_json(at));
    }
    Ok(out)
}

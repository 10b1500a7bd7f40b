//! Parameter Store: String, StringList and SecureString parameters.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{Value, json};

use super::{ApiResult, App, AwsError, page, required, str_field, string_list};
use crate::clock;

#[derive(Clone)]
struct Param {
    kind: String,
    value: String,
    version: u64,
    modified: f64,
    description: String,
}

#[derive(Default)]
pub struct Params {
    store: Mutex<BTreeMap<String, Param>>,
}

fn not_found(name: &str) -> AwsError {
    AwsError::new("ParameterNotFound", format!("Parameter {name} not found."))
}

/// What a SecureString looks like without decryption: an opaque blob, never the value.
fn ciphertext(value: &str) -> String {
    let mut blob = b"\x01\x02\x02\x00hoist-fleet-kms".to_vec();
    blob.extend(value.bytes().rev().map(|b| b ^ 0x5a));
    base64::engine::general_purpose::STANDARD.encode(blob)
}

fn arn(app: &App, name: &str) -> String {
    let sep = if name.starts_with('/') { "" } else { "/" };
    format!(
        "arn:aws:ssm:{}:{}:parameter{sep}{name}",
        app.world.region, app.world.account
    )
}

fn render(app: &App, name: &str, p: &Param, decrypt: bool) -> Value {
    let value = if p.kind == "SecureString" && !decrypt {
        ciphertext(&p.value)
    } else {
        p.value.clone()
    };
    json!({
        "Name": name,
        "Type": p.kind,
        "Value": value,
        "Version": p.version,
        "LastModifiedDate": clock::epoch_json(p.modified),
        "ARN": arn(app, name),
        "DataType": "text",
    })
}

fn valid_name(name: &str) -> bool {
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && !name.contains("//")
        && (!name.contains('/') || name.starts_with('/'))
}

pub fn put(app: &Arc<App>, p: &Value) -> ApiResult {
    let name = required(p, "Name")?;
    let value = str_field(p, "Value").ok_or_else(|| {
        AwsError::validation("1 validation error detected: Value null at 'value' failed to satisfy constraint: Member must not be null")
    })?;
    if !valid_name(name) {
        return Err(AwsError::validation(format!(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive), and must be fully qualified (begin with \"/\") if it has a hierarchy: {name}"
        )));
    }
    if value.chars().count() > 4096 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to 4096",
        ));
    }
    let kind = str_field(p, "Type");
    if let Some(k) = kind
        && !["String", "StringList", "SecureString"].contains(&k)
    {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{k}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
        )));
    }
    let overwrite = p.get("Overwrite").and_then(Value::as_bool).unwrap_or(false);
    let mut store = app.params.store.lock().expect("params");
    let version = match store.get(name) {
        Some(_) if !overwrite => {
            return Err(AwsError::new(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        Some(old) => old.version + 1,
        None => 1,
    };
    let kind = match (kind, store.get(name)) {
        (Some(k), _) => k.to_string(),
        (None, Some(old)) => old.kind.clone(),
        (None, None) => {
            return Err(AwsError::validation(
                "A parameter type is required when you create a parameter.",
            ));
        }
    };
    let description = str_field(p, "Description")
        .map(str::to_string)
        .or_else(|| store.get(name).map(|o| o.description.clone()))
        .unwrap_or_default();
    store.insert(
        name.to_string(),
        Param {
            kind,
            value: value.to_string(),
            version,
            modified: clock::now(),
            description,
        },
    );
    Ok(json!({"Version": version, "Tier": "Standard"}))
}

/// `name` or `name:version`.
fn lookup(store: &BTreeMap<String, Param>, full: &str) -> Result<(String, Param), AwsError> {
    let (name, version) = match full.rsplit_once(':') {
        Some((n, v)) if v.chars().all(|c| c.is_ascii_digit()) && !v.is_empty() => {
            (n, v.parse::<u64>().ok())
        }
        _ => (full, None),
    };
    let p = store.get(name).ok_or_else(|| not_found(full))?;
    if let Some(v) = version
        && v != p.version
    {
        return Err(AwsError::new(
            "ParameterVersionNotFound",
            format!("Systems Manager could not find version {v} of {name}."),
        ));
    }
    Ok((name.to_string(), p.clone()))
}

fn decrypt(p: &Value) -> bool {
    p.get("WithDecryption")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

pub fn get(app: &Arc<App>, p: &Value) -> ApiResult {
    let name = required(p, "Name")?;
    let store = app.params.store.lock().expect("params");
    let (n, param) = lookup(&store, name)?;
    Ok(json!({"Parameter": render(app, &n, &param, decrypt(p))}))
}

pub fn get_many(app: &Arc<App>, p: &Value) -> ApiResult {
    let names = string_list(p, "Names");
    if names.is_empty() || names.len() > 10 {
        return Err(AwsError::validation(
            "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    let store = app.params.store.lock().expect("params");
    let mut found = Vec::new();
    let mut invalid = Vec::new();
    for name in names {
        match lookup(&store, &name) {
            Ok((n, param)) => found.push(render(app, &n, &param, decrypt(p))),
            Err(_) => invalid.push(name),
        }
    }
    Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
}

pub fn get_by_path(app: &Arc<App>, p: &Value) -> ApiResult {
    let path = required(p, "Path")?;
    let recursive = p.get("Recursive").and_then(Value::as_bool).unwrap_or(false);
    let prefix = if path.ends_with('/') {
        path.to_string()
    } else {
        format!("{path}/")
    };
    let store = app.params.store.lock().expect("params");
    let items: Vec<Value> = store
        .iter()
        .filter(|(n, _)| {
            n.strip_prefix(prefix.as_str())
                .is_some_and(|rest| recursive || !rest.contains('/'))
        })
        .map(|(n, param)| render(app, n, param, decrypt(p)))
        .collect();
    let (items, next) = page(&items, p, 10, 10)?;
    let mut out = json!({"Parameters": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn delete(app: &Arc<App>, p: &Value) -> ApiResult {
    let name = required(p, "Name")?;
    let mut store = app.params.store.lock().expect("params");
    store.remove(name).ok_or_else(|| not_found(name))?;
    Ok(json!({}))
}

pub fn delete_many(app: &Arc<App>, p: &Value) -> ApiResult {
    let names = string_list(p, "Names");
    let mut store = app.params.store.lock().expect("params");
    let (mut deleted, mut invalid) = (Vec::new(), Vec::new());
    for n in names {
        if store.remove(&n).is_some() {
            deleted.push(n);
        } else {
            invalid.push(n);
        }
    }
    Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
}

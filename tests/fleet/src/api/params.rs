//! Parameter Store: String, StringList and SecureString parameters, their
//! tiers, tags and (Expiration) policies.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use serde_json::{Value, json};

use super::{ApiResult, App, AwsError, page, required, str_field, string_list};
use crate::clock;

const STANDARD_MAX: usize = 4096;
const ADVANCED_MAX: usize = 8192;
const MAX_TAGS: usize = 50;

#[derive(Clone)]
struct Policy {
    text: String,
    kind: String,
    /// For an Expiration policy: when the parameter is deleted.
    expires: Option<f64>,
}

#[derive(Clone)]
struct Param {
    kind: String,
    value: String,
    version: u64,
    modified: f64,
    description: String,
    tier: &'static str,
    policies: Vec<Policy>,
    tags: BTreeMap<String, String>,
}

impl Param {
    fn expired(&self, now: f64) -> bool {
        self.policies
            .iter()
            .any(|p| p.expires.is_some_and(|t| t <= now))
    }
}

#[derive(Default)]
pub struct Params {
    store: Mutex<BTreeMap<String, Param>>,
}

impl Params {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Param>> {
        self.store.lock().expect("params")
    }

    /// One scan: deletes the parameters whose Expiration timestamp is at or
    /// before `now`, and returns their names. Until the scan after its
    /// timestamp, an expired parameter is still there (read, listed, written).
    fn sweep(&self, now: f64) -> Vec<String> {
        let mut store = self.lock();
        let gone: Vec<String> = store
            .iter()
            .filter(|(_, p)| p.expired(now))
            .map(|(n, _)| n.clone())
            .collect();
        for n in &gone {
            store.remove(n);
        }
        gone
    }
}

/// When the scan after `now` runs: the next multiple of `every` seconds since the epoch.
fn next_scan(now: f64, every: u64) -> f64 {
    let every = every.max(1) as f64;
    ((now / every).floor() + 1.0) * every
}

/// Parameter Store "enforces parameter policies by using asynchronous, periodic
/// scans": every `param_expiry_scan_secs`, at multiples of it since the epoch,
/// the parameters whose Expiration has passed are deleted.
pub async fn expiry_scans(app: Arc<App>) {
    let every = app.world.api.param_expiry_scan_secs;
    loop {
        let now = clock::now();
        let at = next_scan(now, every);
        tokio::time::sleep(std::time::Duration::from_secs_f64((at - now).max(0.001))).await;
        app.params.sweep(at);
    }
}

/// Parameter Store's answer for a name it does not hold (`GetParameter`, `DeleteParameter`):
/// the code and no message at all (the CLI prints "… when calling the GetParameter
/// operation: " and nothing after it); which parameter is for the caller to say.
fn not_found(_name: &str) -> AwsError {
    AwsError::new("ParameterNotFound", "")
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

fn tag_list(p: &Value) -> Result<Option<BTreeMap<String, String>>, AwsError> {
    let Some(tags) = p.get("Tags") else {
        return Ok(None);
    };
    let tags = tags
        .as_array()
        .ok_or_else(|| AwsError::new("SerializationException", "Tags: expected a list"))?;
    let mut out = BTreeMap::new();
    for t in tags {
        let key = str_field(t, "Key").unwrap_or_default();
        let value = str_field(t, "Value").unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 {
            return Err(AwsError::validation(
                "1 validation error detected: Value at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128",
            ));
        }
        if value.chars().count() > 256 {
            return Err(AwsError::validation(
                "1 validation error detected: Value at 'tags.member.value' failed to satisfy constraint: Member must have length less than or equal to 256",
            ));
        }
        out.insert(key.to_string(), value.to_string());
    }
    if out.len() > MAX_TAGS {
        return Err(AwsError::new(
            "TooManyTagsError",
            "The Targets parameter includes too many tags. Remove one or more tags and try the request again.",
        ));
    }
    Ok(Some(out))
}

/// `Policies`: a JSON list of `{"Type", "Version", "Attributes"}`.
fn parse_policies(text: &str) -> Result<Vec<Policy>, AwsError> {
    let invalid_type = || {
        AwsError::new(
            "InvalidPolicyTypeException",
            "A policy type that is not supported was specified. Supported policy types include Expiration, ExpirationNotification, and NoChangeNotification.",
        )
    };
    let list: Vec<Value> = serde_json::from_str(text).map_err(|_| invalid_type())?;
    if list.len() > 10 {
        return Err(AwsError::new(
            "PoliciesLimitExceededException",
            "You specified more than the maximum number of allowed policies for the parameter. The maximum is 10.",
        ));
    }
    let mut out = Vec::new();
    for item in list {
        let kind = str_field(&item, "Type").unwrap_or_default().to_string();
        if ![
            "Expiration",
            "ExpirationNotification",
            "NoChangeNotification",
        ]
        .contains(&kind.as_str())
        {
            return Err(invalid_type());
        }
        let expires = if kind == "Expiration" {
            let stamp = item
                .get("Attributes")
                .and_then(|a| str_field(a, "Timestamp"))
                .unwrap_or_default();
            Some(clock::parse_iso8601(stamp).ok_or_else(|| {
                AwsError::new(
                    "InvalidPolicyAttributeException",
                    format!(
                        "A policy attribute or its value is invalid: Timestamp {stamp:?} is not an ISO 8601 timestamp such as 2026-12-02T21:34:33.000Z."
                    ),
                )
            })?)
        } else {
            None
        };
        out.push(Policy {
            text: item.to_string(),
            kind,
            expires,
        });
    }
    Ok(out)
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
    let overwrite = p.get("Overwrite").and_then(Value::as_bool).unwrap_or(false);
    let tags = tag_list(p)?;
    if overwrite && tags.is_some() {
        return Err(AwsError::validation(
            "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
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
    let requested_tier = str_field(p, "Tier");
    if let Some(t) = requested_tier
        && !["Standard", "Advanced", "Intelligent-Tiering"].contains(&t)
    {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{t}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Standard, Advanced, Intelligent-Tiering]"
        )));
    }
    let policies = match str_field(p, "Policies") {
        Some(text) if !text.trim().is_empty() => Some(parse_policies(text)?),
        _ => None,
    };
    let size = value.chars().count();
    if size > ADVANCED_MAX {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to {ADVANCED_MAX}"
        )));
    }
    let mut store = app.params.lock();
    let old = store.get(name).cloned();
    let version = match &old {
        Some(_) if !overwrite => {
            return Err(AwsError::new(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        Some(old) => old.version + 1,
        None => 1,
    };
    let kind = match (kind, &old) {
        (Some(k), _) => k.to_string(),
        (None, Some(old)) => old.kind.clone(),
        (None, None) => {
            return Err(AwsError::validation(
                "A parameter type is required when you create a parameter.",
            ));
        }
    };
    let was_advanced = old.as_ref().is_some_and(|o| o.tier == "Advanced");
    let policies = policies.or_else(|| old.as_ref().map(|o| o.policies.clone()));
    let has_policies = policies.as_ref().is_some_and(|p| !p.is_empty());
    // No tier in the request: the parameter keeps its tier (Standard for a new one).
    let tier = match requested_tier {
        Some("Advanced") => "Advanced",
        Some("Intelligent-Tiering") if size > STANDARD_MAX || has_policies || was_advanced => {
            "Advanced"
        }
        Some(_) => "Standard",
        None if was_advanced => "Advanced",
        None => "Standard",
    };
    if tier == "Standard" && was_advanced {
        return Err(AwsError::validation(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
        ));
    }
    if tier == "Standard" && size > STANDARD_MAX {
        return Err(AwsError::validation(
            "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
        ));
    }
    if tier == "Standard" && has_policies {
        return Err(AwsError::validation(
            "Parameter policies are supported only for advanced-tier parameters. To assign policies to this parameter, use the advanced-parameter tier or Intelligent-Tiering.",
        ));
    }
    let description = str_field(p, "Description")
        .map(str::to_string)
        .or_else(|| old.as_ref().map(|o| o.description.clone()))
        .unwrap_or_default();
    let tags = tags
        .or_else(|| old.as_ref().map(|o| o.tags.clone()))
        .unwrap_or_default();
    store.insert(
        name.to_string(),
        Param {
            kind,
            value: value.to_string(),
            version,
            modified: clock::now(),
            description,
            tier,
            policies: policies.unwrap_or_default(),
            tags,
        },
    );
    Ok(json!({"Version": version, "Tier": tier}))
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
    let store = app.params.lock();
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
    let store = app.params.lock();
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
    let store = app.params.lock();
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
    let mut store = app.params.lock();
    store.remove(name).ok_or_else(|| not_found(name))?;
    Ok(json!({}))
}

pub fn delete_many(app: &Arc<App>, p: &Value) -> ApiResult {
    let names = string_list(p, "Names");
    let mut store = app.params.lock();
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

/// One DescribeParameters item: metadata, never the value.
fn metadata(app: &App, name: &str, p: &Param) -> Value {
    let mut v = json!({
        "Name": name,
        "ARN": arn(app, name),
        "Type": p.kind,
        "LastModifiedDate": clock::epoch_json(p.modified),
        "Version": p.version,
        "Tier": p.tier,
        "Policies": p.policies.iter().map(|pol| json!({
            "PolicyText": pol.text,
            "PolicyType": pol.kind,
            "PolicyStatus": "Pending",
        })).collect::<Vec<_>>(),
        "DataType": "text",
    });
    if !p.description.is_empty() {
        v["Description"] = json!(p.description);
    }
    if p.kind == "SecureString" {
        v["KeyId"] = json!("alias/aws/ssm");
    }
    v
}

fn invalid_option(option: &str, valid: &str) -> AwsError {
    AwsError::new(
        "InvalidFilterOption",
        format!(
            "The following filter option is not valid: {option}. Valid options include: [{valid}]."
        ),
    )
}

/// A `ParameterStringFilter` of DescribeParameters as a predicate.
type Filter = Box<dyn Fn(&str, &Param) -> bool>;

fn parse_filter(f: &Value) -> Result<Filter, AwsError> {
    let key = str_field(f, "Key").unwrap_or_default().to_string();
    let values = string_list(f, "Values");
    let option = str_field(f, "Option");
    let need_values = || {
        if values.is_empty() {
            Err(AwsError::new(
                "InvalidFilterValue",
                format!("The following filter values are missing : null for filter key {key}."),
            ))
        } else {
            Ok(())
        }
    };
    if key == "Path" {
        let recursive = match option.unwrap_or("OneLevel") {
            "OneLevel" => false,
            "Recursive" => true,
            o => return Err(invalid_option(o, "Recursive, OneLevel")),
        };
        need_values()?;
        let paths: Vec<String> = values
            .iter()
            .map(|v| {
                if v.ends_with('/') {
                    v.clone()
                } else {
                    format!("{v}/")
                }
            })
            .collect();
        if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
            return Err(AwsError::new(
                "InvalidFilterValue",
                format!(
                    "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_. Value: {bad}"
                ),
            ));
        }
        return Ok(Box::new(move |name, _| {
            let full = if name.starts_with('/') {
                name.to_string()
            } else {
                format!("/{name}")
            };
            paths.iter().any(|path| {
                full.strip_prefix(path.as_str())
                    .is_some_and(|rest| recursive || !rest.contains('/'))
            })
        }));
    }
    let equals_or_begins = |valid: &str| -> Result<bool, AwsError> {
        match option.unwrap_or("Equals") {
            "Equals" => Ok(false),
            "BeginsWith" => Ok(true),
            o => Err(invalid_option(o, valid)),
        }
    };
    let matcher = move |begins: bool, values: Vec<String>| {
        move |s: &str| {
            values.iter().any(|v| {
                if begins {
                    s.starts_with(v.as_str())
                } else {
                    s == v
                }
            })
        }
    };
    if key == "Name" {
        if option == Some("Contains") {
            need_values()?;
            return Ok(Box::new(move |name, _| {
                values.iter().any(|v| name.contains(v.as_str()))
            }));
        }
        let begins = equals_or_begins("BeginsWith, Equals, Contains")?;
        need_values()?;
        // Names match with or without their leading slash.
        let m = matcher(begins, values);
        return Ok(Box::new(move |name, _| {
            m(name) || m(name.trim_start_matches('/')) || m(&format!("/{name}"))
        }));
    }
    if let Some(tag) = key.strip_prefix("tag:") {
        let tag = tag.to_string();
        if option.is_some_and(|o| o != "Equals") {
            return Err(invalid_option(option.unwrap_or_default(), "Equals"));
        }
        // Without values: the tag key is present.
        return Ok(Box::new(move |_, p| {
            p.tags
                .get(&tag)
                .is_some_and(|v| values.is_empty() || values.contains(v))
        }));
    }
    let field: fn(&Param) -> String = match key.as_str() {
        "Type" => |p| p.kind.clone(),
        "Tier" => |p| p.tier.to_string(),
        "DataType" => |_| "text".to_string(),
        "KeyId" => |p| {
            if p.kind == "SecureString" {
                "alias/aws/ssm".to_string()
            } else {
                String::new()
            }
        },
        _ => {
            return Err(AwsError::new(
                "InvalidFilterKey",
                format!(
                    "The following filter key is not valid: {key}. Valid filter keys include: [Type, KeyId, Path, Name, Tier, DataType, tag:<key>]."
                ),
            ));
        }
    };
    let begins = equals_or_begins("BeginsWith, Equals")?;
    need_values()?;
    let m = matcher(begins, values);
    Ok(Box::new(move |_, p| m(&field(p))))
}

pub fn describe(app: &Arc<App>, p: &Value) -> ApiResult {
    if let Some(m) = p.get("MaxResults")
        && !m.as_u64().is_some_and(|m| (1..=50).contains(&m))
    {
        return Err(AwsError::validation(format!(
            "1 validation error detected: Value '{m}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 50"
        )));
    }
    let filters = p
        .get("ParameterFilters")
        .and_then(Value::as_array)
        .map(|fs| fs.iter().map(parse_filter).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    let store = app.params.lock();
    let items: Vec<Value> = store
        .iter()
        .filter(|(n, param)| filters.iter().all(|f| f(n, param)))
        .map(|(n, param)| metadata(app, n, param))
        .collect();
    let (items, next) = page(&items, p, 50, 50)?;
    let mut out = json!({"Parameters": items});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// The parameter a tagging call names: `ResourceType: Parameter` and its name.
fn tagged<'a>(
    store: &'a mut BTreeMap<String, Param>,
    p: &Value,
) -> Result<&'a mut Param, AwsError> {
    let kind = required(p, "ResourceType")?;
    let id = required(p, "ResourceId")?;
    if kind != "Parameter" {
        return Err(AwsError::new(
            "InvalidResourceType",
            "The resource type isn't valid. hoist-fleet tags parameters only.",
        ));
    }
    store.get_mut(id).ok_or_else(|| {
        AwsError::new(
            "InvalidResourceId",
            "The resource ID isn't valid. Verify that you entered the correct ID and try again.",
        )
    })
}

pub fn add_tags(app: &Arc<App>, p: &Value) -> ApiResult {
    let tags = tag_list(p)?.unwrap_or_default();
    if tags.is_empty() {
        return Err(AwsError::validation(
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        ));
    }
    let mut store = app.params.lock();
    let param = tagged(&mut store, p)?;
    let mut all = param.tags.clone();
    all.extend(tags);
    if all.len() > MAX_TAGS {
        return Err(AwsError::new(
            "TooManyTagsError",
            "The Targets parameter includes too many tags. Remove one or more tags and try the request again.",
        ));
    }
    param.tags = all;
    Ok(json!({}))
}

pub fn remove_tags(app: &Arc<App>, p: &Value) -> ApiResult {
    let keys = string_list(p, "TagKeys");
    let mut store = app.params.lock();
    let param = tagged(&mut store, p)?;
    for k in keys {
        param.tags.remove(&k);
    }
    Ok(json!({}))
}

pub fn list_tags(app: &Arc<App>, p: &Value) -> ApiResult {
    let mut store = app.params.lock();
    let param = tagged(&mut store, p)?;
    let list: Vec<Value> = param
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    Ok(json!({"TagList": list}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiring(at: f64) -> Param {
        Param {
            kind: "String".into(),
            value: "v".into(),
            version: 1,
            modified: 0.0,
            description: String::new(),
            tier: "Advanced",
            policies: vec![Policy {
                text: String::new(),
                kind: "Expiration".into(),
                expires: Some(at),
            }],
            tags: BTreeMap::new(),
        }
    }

    #[test]
    fn scans_run_at_multiples_of_their_period() {
        assert_eq!(next_scan(1_000.0, 30), 1_020.0);
        assert_eq!(next_scan(1_020.0, 30), 1_050.0);
        assert_eq!(next_scan(1_020.5, 1), 1_021.0);
    }

    #[test]
    fn an_expired_parameter_stays_until_the_scan_after_its_timestamp() {
        let params = Params::default();
        params.lock().insert("/a".into(), expiring(1_005.0));
        params.lock().insert("/b".into(), expiring(1_025.0));
        // Past /a's timestamp, before any scan: still there.
        assert!(params.lock().contains_key("/a"));
        assert_eq!(params.sweep(1_020.0), ["/a"]);
        assert!(params.lock().contains_key("/b"));
        assert!(params.sweep(1_024.0).is_empty());
        assert_eq!(params.sweep(1_050.0), ["/b"]);
    }
}

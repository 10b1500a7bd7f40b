//! The `SecureString` parameter that carries one deploy run's secret env to its instances.
//!
//! One parameter per run (`/hoist/<app>/<release>/<run>/env`, or
//! `/hoist/<app>/<env>/runs/<release>/<run>/env` in an environment), created with overwrite off so
//! that two runs can never deliver or delete each other's secrets, tagged with its app,
//! release, run and an expiry. It is deleted as soon as no instance can still need it (every
//! invocation ended, or a cancel started); a run killed before that leaves it behind, and
//! the next deploy of the app sweeps every parameter of the app whose expiry passed.

use std::time::{Duration, SystemTime};

use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{
    ParameterStringFilter, ParameterTier, ParameterType, ResourceTypeForTagging, Tag,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::ssm::{SsmError, api_error, retry_throttled};
use crate::config::SecretTier;

/// The tag that says when a parameter may be swept.
pub const EXPIRES_TAG: &str = "hoist:expires";

/// What to create: the plan names it, the transport puts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretParameter {
    pub name: String,
    pub tier: SecretTier,
    /// `hoist:app`, `hoist:release`, `hoist:run`; the expiry is added when it is put.
    pub tags: Vec<(String, String)>,
}

/// Creates the parameter (never overwrites one: a collision is an error) with an expiry
/// `lifetime` from now, as a tag and, in the advanced tier, as an Expiration policy that
/// makes SSM delete it itself.
pub async fn put(
    client: &Client,
    p: &SecretParameter,
    payload: &str,
    lifetime: Duration,
) -> Result<(), SsmError> {
    if payload.len() > p.tier.max_bytes() {
        return Err(SsmError::SecretsTooLarge(payload.len(), p.tier.max_bytes()));
    }
    let expires = rfc3339(SystemTime::now() + lifetime);
    let mut tags = Vec::new();
    for (k, v) in p
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([(EXPIRES_TAG, expires.as_str())])
    {
        tags.push(
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set"),
        );
    }
    let res = retry_throttled(|| {
        let mut req = client
            .put_parameter()
            .name(&p.name)
            .value(payload)
            .r#type(ParameterType::SecureString)
            .overwrite(false)
            .set_tags(Some(tags.clone()))
            .description("hoist: the secret env of one deploy run; deleted when it ends");
        if p.tier.for_payload(payload.len()) == SecretTier::Advanced {
            req = req.tier(ParameterTier::Advanced).policies(format!(
                r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{expires}"}}}}]"#
            ));
        }
        req.send()
    })
    .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ParameterAlreadyExists") => {
            Err(SsmError::ParameterCollision(p.name.clone()))
        }
        Err(e) => Err(api_error("PutParameter", &e)),
    }
}

/// Deletes a run's parameter. Already gone is fine.
pub async fn delete(client: &Client, name: &str) -> Result<(), SsmError> {
    match retry_throttled(|| client.delete_parameter().name(name).send()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ParameterNotFound") => Ok(()),
        Err(e) => Err(api_error("DeleteParameter", &e)),
    }
}

/// Deletes every run's secret parameter of the app in `environment` (under `/hoist/<app>/`,
/// or `/hoist/<app>/<env>/`) whose `hoist:expires` has passed (a killed run's), and returns
/// their names. Parameters of runs still in their lifetime are kept: a concurrent deploy of
/// the app to another fleet may be using one. Only names of this environment's run
/// parameters are considered ([`crate::domain::is_secret_parameter_of`]): never a lock, and
/// never another environment's (an app without an environment looks under the root that
/// holds every environment's, and leaves them to their own sweeps).
pub async fn sweep(
    client: &Client,
    app: &str,
    environment: Option<&str>,
) -> Result<Vec<String>, SsmError> {
    let root = crate::domain::parameter_root(app, environment);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let filter = ParameterStringFilter::builder()
            .key("Path")
            .option("Recursive")
            .values(root.trim_end_matches('/'))
            .build()
            .expect("key is set");
        let page = retry_throttled(|| {
            client
                .describe_parameters()
                .parameter_filters(filter.clone())
                .max_results(50)
                .set_next_token(token.clone())
                .send()
        })
        .await
        .map_err(|e| api_error("DescribeParameters", &e))?;
        names.extend(
            page.parameters()
                .iter()
                .filter_map(|p| p.name())
                .filter(|n| crate::domain::is_secret_parameter_of(n, app, environment))
                .map(str::to_owned),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    let now = OffsetDateTime::now_utc();
    let mut swept = Vec::new();
    for name in names {
        let tags = retry_throttled(|| {
            client
                .list_tags_for_resource()
                .resource_type(ResourceTypeForTagging::Parameter)
                .resource_id(&name)
                .send()
        })
        .await;
        let expires = match tags {
            Ok(t) => t
                .tag_list()
                .iter()
                .find(|t| t.key() == EXPIRES_TAG)
                .and_then(|t| OffsetDateTime::parse(t.value(), &Rfc3339).ok()),
            // Deleted meanwhile (its run ended): nothing to sweep.
            Err(e) if e.code() == Some("InvalidResourceId") => continue,
            Err(e) => return Err(api_error("ListTagsForResource", &e)),
        };
        // No expiry: not a parameter of this hoist's making; left alone.
        if expires.is_some_and(|t| t < now) {
            delete(client, &name).await?;
            swept.push(name);
        }
    }
    Ok(swept)
}

/// A run id: the UTC time and 32 random bits, `20261126T001500Z-1a2b3c4d`.
pub fn new_run_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 4];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        bytes = (nanos ^ std::process::id().rotate_left(16)).to_be_bytes();
    }
    let now = OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        hex::encode(bytes)
    )
}

fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
        .format(&Rfc3339)
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_safe_in_a_parameter_name() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261126T001500Z-1a2b3c4d".len(), "{a}");
        assert!(
            a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'),
            "{a}"
        );
        assert!(crate::plan::is_release_id(&a), "{a}");
    }

    #[test]
    fn expiry_is_rfc3339_utc_in_whole_seconds() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_790_000_000_123);
        assert_eq!(rfc3339(t), "2026-09-21T14:13:20Z");
        assert!(OffsetDateTime::parse(&rfc3339(t), &Rfc3339).is_ok());
    }
}

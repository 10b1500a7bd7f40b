//! The lock parameter in Parameter Store: read, put without overwrite, delete.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{ParameterTier, ParameterType, Tag};

use super::Record;
use super::error::{LockError, error};

/// What the lock parameter holds now.
pub(super) enum Current {
    Absent,
    Held(Box<Record>),
    Unreadable(String),
}

pub(super) async fn read(client: &Client, parameter: &str) -> Result<Current, LockError> {
    match crate::aws::retry(|| client.get_parameter().name(parameter).send()).await {
        Ok(out) => {
            let value = out
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_owned();
            let written = out
                .parameter()
                .and_then(|p| p.last_modified_date())
                .and_then(|t| std::time::SystemTime::try_from(*t).ok())
                .map(time::OffsetDateTime::from);
            Ok(match serde_json::from_str::<Record>(&value) {
                Ok(record) => Current::Held(Box::new(Record { written, ..record })),
                Err(_) => Current::Unreadable(
                    crate::config::text::escape(&clip(&value), false).into_owned(),
                ),
            })
        }
        Err(e) if e.code() == Some("ParameterNotFound") => Ok(Current::Absent),
        Err(e) => Err(error("GetParameter", parameter, &e)),
    }
}

pub(super) fn clip(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// How a put of the lock ended.
pub(super) enum Put {
    Done,
    /// Overwrite off, and the parameter exists.
    Exists,
    /// `TooManyUpdates`: another put of the parameter was under way.
    Busy,
}

pub(super) async fn put(
    client: &Client,
    parameter: &str,
    record: &Record,
    overwrite: bool,
) -> Result<Put, LockError> {
    let value = serde_json::to_string(record).expect("a record serializes");
    let tags = [("hoist:app", app_of(parameter)), ("hoist:lock", "true")]
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect::<Vec<_>>();
    let res = crate::aws::retry(|| {
        let req = client
            .put_parameter()
            .name(parameter)
            .value(&value)
            .r#type(ParameterType::String)
            .tier(ParameterTier::Standard)
            .overwrite(overwrite)
            .description("hoist: the fleet-wide deploy lock; `hoist unlock` breaks it");
        // Parameter Store refuses tags with an overwrite; the lock keeps the ones it got.
        if overwrite {
            req.send()
        } else {
            req.set_tags(Some(tags.clone())).send()
        }
    })
    .await;
    match res {
        Ok(_) => Ok(Put::Done),
        Err(e) if e.code() == Some("ParameterAlreadyExists") => Ok(Put::Exists),
        Err(e) if e.code() == Some("TooManyUpdates") => Ok(Put::Busy),
        Err(e) => Err(error("PutParameter", parameter, &e)),
    }
}

/// The app a lock parameter belongs to (`/hoist/<app>/lock/…`).
pub(super) fn app_of(parameter: &str) -> &str {
    parameter.split('/').nth(2).unwrap_or_default()
}

/// How a single delete of the lock ended.
pub(super) enum Deleted {
    Done,
    /// `ParameterNotFound`.
    Absent,
    /// No answer came back (the connection broke, or timed out): the call may or may not
    /// have been carried out.
    Unknown(LockError),
}

/// Deletes the lock with exactly one call that may be carried out: the SDK's own retries are
/// off (hoist's retry of a throttled call stays: a throttled call was not carried out). A
/// retried delete whose first answer was lost could remove a lock another hoist took in
/// between; the caller reads the lock again instead ([`super::Held::release`]).
pub(super) async fn delete_once(client: &Client, parameter: &str) -> Result<Deleted, LockError> {
    let once = aws_sdk_ssm::config::Builder::default()
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled());
    let res = crate::aws::retry(|| {
        client
            .delete_parameter()
            .name(parameter)
            .customize()
            .config_override(once.clone())
            .send()
    })
    .await;
    match res {
        Ok(_) => Ok(Deleted::Done),
        Err(e) if e.code() == Some("ParameterNotFound") => Ok(Deleted::Absent),
        Err(
            e @ (aws_sdk_ssm::error::SdkError::DispatchFailure(_)
            | aws_sdk_ssm::error::SdkError::ResponseError(_)
            | aws_sdk_ssm::error::SdkError::TimeoutError(_)),
        ) => Ok(Deleted::Unknown(error("DeleteParameter", parameter, &e))),
        Err(e) => Err(error("DeleteParameter", parameter, &e)),
    }
}

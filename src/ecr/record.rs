//! The record of an image hoist pushed: a `String` parameter in Parameter Store, named by
//! [`crate::domain::image_record_parameter`], holding `<repository>@<digest>`. A tag can be
//! pushed over by anyone who may push to the repository; the record only hoist's deploy role
//! for that environment may write (IAM on the parameter's path), so it is what a later deploy
//! of the commit trusts.

use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::types::ParameterType;

use super::EcrError;
use crate::aws::retry;

/// What a record says hoist pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub repository: String,
    /// The manifest digest (`sha256:…`) the push left under the tag.
    pub digest: String,
}

impl Recorded {
    fn value(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }

    fn parse(value: &str) -> Option<Recorded> {
        let (repository, digest) = value.rsplit_once('@')?;
        (!repository.is_empty() && crate::domain::is_content_addressed(digest)).then(|| Recorded {
            repository: repository.to_owned(),
            digest: digest.to_owned(),
        })
    }
}

/// Reads and writes image records with hoist's own SSM client.
#[derive(Clone)]
pub struct ImageRecords {
    client: Client,
}

impl ImageRecords {
    pub fn new(client: Client) -> Self {
        ImageRecords { client }
    }

    /// The record in `parameter`, `None` when there is none.
    pub async fn read(&self, parameter: &str) -> Result<Option<Recorded>, EcrError> {
        let resp = retry(|| self.client.get_parameter().name(parameter).send()).await;
        let value = match resp {
            Ok(out) => out
                .parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_owned(),
            Err(e)
                if e.as_service_error()
                    .is_some_and(GetParameterError::is_parameter_not_found) =>
            {
                return Ok(None);
            }
            Err(e) => {
                return Err(EcrError::Record {
                    operation: "GetParameter",
                    parameter: parameter.to_owned(),
                    message: crate::aws::error_message(&e),
                });
            }
        };
        Recorded::parse(&value)
            .map(Some)
            .ok_or_else(|| EcrError::BadRecord {
                parameter: parameter.to_owned(),
                value,
            })
    }

    /// Records that hoist pushed `recorded` for the commit `parameter` names (overwriting an
    /// earlier record: the tag holds the new push now).
    pub async fn write(&self, parameter: &str, recorded: &Recorded) -> Result<(), EcrError> {
        let value = recorded.value();
        retry(|| {
            self.client
                .put_parameter()
                .name(parameter)
                .value(&value)
                .r#type(ParameterType::String)
                .overwrite(true)
                .description("hoist: the image digest hoist pushed for this commit")
                .send()
        })
        .await
        .map(|_| ())
        .map_err(|e| EcrError::Record {
            operation: "PutParameter",
            parameter: parameter.to_owned(),
            message: crate::aws::error_message(&e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_the_repository_and_the_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = Recorded {
            repository: "e2e/hello".into(),
            digest: digest.clone(),
        };
        assert_eq!(r.value(), format!("e2e/hello@{digest}"));
        assert_eq!(Recorded::parse(&r.value()), Some(r));
        for bad in [
            "",
            "hello",
            "hello@sha256:ab",
            &format!("@{digest}"),
            "hello@latest",
        ] {
            assert_eq!(Recorded::parse(bad), None, "{bad}");
        }
    }
}

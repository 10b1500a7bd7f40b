//! AWS clients from the standard credential chain (env, profile/SSO, web identity such as
//! GitHub OIDC, instance profile). `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SSM` /
//! `AWS_ENDPOINT_URL_ECR` are honoured by the SDK itself.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the shared config. The config file's `region` wins over the environment's.
pub async fn sdk_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(
        // Throttling is expected on busy accounts: retry it patiently.
        RetryConfig::standard()
            .with_max_attempts(6)
            .with_initial_backoff(Duration::from_millis(200)),
    );
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

pub fn ssm(config: &SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(config)
}

pub fn ecr(config: &SdkConfig) -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(config)
}

/// One line for any SDK error: the service's code and message when it sent them, else
/// [`describe_error`].
pub fn error_message<E>(err: &aws_sdk_ssm::error::SdkError<E>) -> String
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_ssm::error::ProvideErrorMetadata as _;
    match (err.code(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_owned(),
        _ => describe_error(err),
    }
}

/// One line for an SDK error that carries no service error code: its source chain, with the
/// common causes (no credentials, endpoint unreachable) said plainly.
pub fn describe_error(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    let chain = parts.join(": ");
    if chain.contains("no providers in chain provided credentials") {
        "no AWS credentials found (environment, profile or SSO, web identity, instance \
         profile); in GitHub Actions configure them with an OIDC role"
            .to_owned()
    } else if chain.contains("io error") || chain.contains("Connection refused") {
        format!("cannot reach the AWS endpoint: {chain}")
    } else {
        chain
    }
}

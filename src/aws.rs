//! AWS clients from the standard credential chain (env, profile/SSO, web identity such as
//! GitHub OIDC, instance profile). `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SSM` /
//! `AWS_ENDPOINT_URL_ECR` are honoured by the SDK itself.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Loads the shared config. The config file's `region` wins over the environment's. Retries
/// are hoist's (patient: throttling is expected on busy accounts) unless the standard
/// `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` say otherwise.
pub async fn sdk_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
        && std::env::var_os("AWS_RETRY_MODE").is_none()
    {
        loader = loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(6)
                .with_initial_backoff(Duration::from_millis(200)),
        );
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

pub fn ssm(config: &SdkConfig) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::config::Builder::from(config)
        .interceptor(RecordEndpoint)
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

pub fn ecr(config: &SdkConfig) -> aws_sdk_ecr::Client {
    let conf = aws_sdk_ecr::config::Builder::from(config)
        .interceptor(RecordEndpoint)
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}

/// A response header hoist adds to unsuccessful responses: the URL the request went to, so
/// an error that is not the service's own can say which endpoint answered.
const ENDPOINT_HEADER: &str = "x-hoist-endpoint";

/// Writes the endpoint a request went to into its response when unsuccessful
/// ([`ENDPOINT_HEADER`]).
#[derive(Debug)]
struct RecordEndpoint;

impl aws_sdk_ssm::config::Intercept for RecordEndpoint {
    fn name(&self) -> &'static str {
        "hoist::aws::RecordEndpoint"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_ssm::config::interceptors::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _components: &aws_sdk_ssm::config::RuntimeComponents,
        cfg: &mut aws_sdk_ssm::config::ConfigBag,
    ) -> Result<(), aws_sdk_ssm::error::BoxError> {
        if context.response().status().is_success() {
            return Ok(());
        }
        // The SDK keeps the endpoint it resolved for this request in the config bag.
        if let Some(endpoint) = cfg.load::<aws_sdk_ssm::config::endpoint::Endpoint>() {
            // Best effort: a URL that is not a valid header value is simply not recorded.
            let _ = context
                .response_mut()
                .headers_mut()
                .try_insert(ENDPOINT_HEADER, endpoint.url().to_owned());
        }
        Ok(())
    }
}

/// One line for any SDK error: the service's code and message when it sent them; the HTTP
/// status, endpoint and what the body was when an endpoint answered with something that is
/// not a service error (a proxy's HTML error page); else [`describe_error`].
pub fn error_message<E>(err: &aws_sdk_ssm::error::SdkError<E>) -> String
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_ssm::error::ProvideErrorMetadata as _;
    match (err.code(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_owned(),
        _ => match err.raw_response() {
            Some(raw) if !raw.status().is_success() => {
                let endpoint = raw
                    .headers()
                    .get(ENDPOINT_HEADER)
                    .unwrap_or("the AWS endpoint");
                format!(
                    "HTTP {} from {endpoint}: {}",
                    raw.status(),
                    describe_body(raw.headers().get("content-type"), raw.body().bytes())
                )
            }
            _ => describe_error(err),
        },
    }
}

/// What an unexpected response body was, in a few words: an HTML page's title, else the
/// first line of the text, else the content type.
fn describe_body(content_type: Option<&str>, body: Option<&[u8]>) -> String {
    const MAX: usize = 160;
    let kind = content_type.unwrap_or("no content type");
    let text = body.map(String::from_utf8_lossy).unwrap_or_default();
    let text = text.trim();
    let clip = |s: &str| -> String {
        let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        match s.char_indices().nth(MAX) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s,
        }
    };
    let lower = text.to_ascii_lowercase();
    if kind.contains("html") || lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        let title = lower
            .find("<title>")
            .map(|i| i + "<title>".len())
            .and_then(|start| {
                lower[start..]
                    .find("</title>")
                    .map(|len| &text[start..start + len])
            })
            .map(clip)
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!("an HTML page ({kind}) titled \"{t}\""),
            None => format!("an HTML page ({kind})"),
        };
    }
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!("{} ({kind})", clip(line)),
        None => format!("an empty body ({kind})"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_body_is_described_by_its_title() {
        let page = b"<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title></head></html>";
        assert_eq!(
            describe_body(Some("text/html"), Some(page)),
            "an HTML page (text/html) titled \"502 Bad Gateway\""
        );
        assert_eq!(
            describe_body(None, Some(b"<html><body>down</body></html>")),
            "an HTML page (no content type)"
        );
    }

    #[test]
    fn a_text_body_is_described_by_its_first_line() {
        assert_eq!(
            describe_body(Some("text/plain"), Some(b"\n  upstream timed out  \nmore")),
            "upstream timed out (text/plain)"
        );
        assert_eq!(
            describe_body(Some("text/plain"), Some(b"")),
            "an empty body (text/plain)"
        );
        let long = "x".repeat(500);
        assert!(describe_body(None, Some(long.as_bytes())).len() < 200);
    }
}

//! AWS clients from the standard credential chain (env, profile/SSO, web identity such as
//! GitHub OIDC, instance profile). `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_SSM` /
//! `AWS_ENDPOINT_URL_ECR` are honoured by the SDK itself.
//!
//! # Retries: two layers, one policy for each
//!
//! 1. **The SDK's, per request.** Every SSM and ECR request is retried by the SDK itself in its
//!    standard mode: transient errors (timeouts, 5xx, connection errors) and throttling, up to
//!    [`SDK_MAX_ATTEMPTS`] attempts with exponential backoff from [`SDK_INITIAL_BACKOFF`]
//!    (full jitter, at most 20 s a wait), drawing on the client's retry quota. The standard
//!    `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` replace these settings, and only these: see
//!    [`sdk_config`].
//! 2. **hoist's, per call, for throttling only.** Every SSM and ECR call that a busy account
//!    can throttle goes through [`retry`]: when the SDK gives up on an error that says "slow
//!    down" ([`is_throttling`]), hoist waits longer than the SDK would ([`Retry::THROTTLED`]:
//!    exponential backoff with jitter, a cap on calls and on time) and makes the call again,
//!    SDK retries included. Any other error is returned at once: the SDK already retried what
//!    is worth retrying. The one exception is the rollout's status poll, which is itself a
//!    loop: throttling there stretches the poll interval instead (`transport::ssm`).
//!
//! So a call throttled throughout ends within about a minute (at most [`Retry::max_calls`]
//! calls, none later than [`Retry::budget`] after the first) with the service's throttling
//! error, and a call that fails otherwise ends as soon as the SDK's own attempts are spent
//! (with `AWS_MAX_ATTEMPTS=2`, after two requests).

pub mod explain;

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ssm::error::ProvideErrorMetadata;

/// The SDK's attempts at one request (the first included), unless `AWS_MAX_ATTEMPTS` or
/// `AWS_RETRY_MODE` say otherwise. Patient: throttling is expected on busy accounts.
pub const SDK_MAX_ATTEMPTS: u32 = 6;
/// The SDK's first backoff between attempts; it doubles (with jitter) at each attempt.
pub const SDK_INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// Loads the shared config. The config file's `region` wins over the environment's. Retries
/// are hoist's ([`SDK_MAX_ATTEMPTS`], [`SDK_INITIAL_BACKOFF`], standard mode) unless the
/// standard `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` say otherwise; either way hoist's own
/// throttling layer ([`retry`]) sits on top (see the module's documentation).
pub async fn sdk_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if std::env::var_os("AWS_MAX_ATTEMPTS").is_none()
        && std::env::var_os("AWS_RETRY_MODE").is_none()
    {
        loader = loader.retry_config(
            RetryConfig::standard()
                .with_max_attempts(SDK_MAX_ATTEMPTS)
                .with_initial_backoff(SDK_INITIAL_BACKOFF),
        );
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_owned()));
    }
    loader.load().await
}

/// How far [`region`] looks for a region the config does not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLookup {
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` and the profile: no network (an offline plan).
    Local,
    /// The SDK's whole chain, the instance metadata service included: what the SSM and ECR
    /// clients of a deploy use.
    Sdk,
}

/// The region hoist's own calls go to: the config's `region:`, else as the SDK resolves it.
/// Hosts' AWS calls (the run's secret parameter, host-resolved secrets, the ECR login) get it
/// in their script's header: an SSM agent's environment has no region, and the AWS CLI v1
/// on a host does not ask the instance metadata for one.
pub async fn region(configured: Option<&str>, lookup: RegionLookup) -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    if let Some(r) = configured {
        return Some(r.to_owned());
    }
    let found = match lookup {
        RegionLookup::Local => {
            RegionProviderChain::first_try(
                aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
            )
            .or_else(aws_config::profile::ProfileFileRegionProvider::new())
            .region()
            .await
        }
        RegionLookup::Sdk => RegionProviderChain::default_provider().region().await,
    };
    found.map(|r| r.as_ref().to_owned())
}

/// The error codes by which AWS services say a caller is being throttled: the SDK's own list
/// of throttling errors, less the two that are not about request rates here
/// (`LimitExceededException` is a service quota for ECR, `TransactionInProgressException` a
/// `DynamoDB` conflict): retrying those for a minute would only delay the error.
pub const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Whether an AWS error (an SDK error of any service, or an operation's error) says the
/// caller is being throttled.
pub fn is_throttling(err: &impl ProvideErrorMetadata) -> bool {
    err.code()
        .is_some_and(|code| THROTTLING_CODES.contains(&code))
}

/// hoist's retry policy for throttled calls: exponential backoff with jitter, capped in calls
/// and in time. See the module's documentation for how it sits on the SDK's own retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The wait before the first retry, before jitter; it doubles at each retry.
    pub first_delay: Duration,
    /// The longest wait between two calls, before jitter.
    pub max_delay: Duration,
    /// No call starts later than this after the first one.
    pub budget: Duration,
    /// Calls in all, the first one included.
    pub max_calls: u32,
}

impl Retry {
    /// The policy every throttle-prone SSM and ECR call uses.
    pub const THROTTLED: Retry = Retry {
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(8),
        budget: Duration::from_secs(60),
        max_calls: 12,
    };

    /// The wait before retry `n` (0 for the first) given `unit`, a random number in [0, 1]:
    /// half the exponential delay, plus up to the other half at random ("equal jitter"), so
    /// that hoists throttled together do not all call again at the same moment.
    pub fn delay(&self, n: u32, unit: f64) -> Duration {
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        let full = self.first_delay.saturating_mul(factor).min(self.max_delay);
        full / 2 + full.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }

    /// Makes the call, and again while it fails throttled ([`is_throttling`]) and the policy
    /// allows another call. Returns the last result: a success, an error that is not
    /// throttling, or the throttling error once calls or time ran out.
    pub async fn run<T, E, F, Fut>(&self, mut call: F) -> Result<T, E>
    where
        E: ProvideErrorMetadata,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + self.budget;
        let mut calls = 0;
        loop {
            let result = call().await;
            calls += 1;
            match result {
                Err(e) if is_throttling(&e) && calls < self.max_calls => {
                    let delay = self.delay(calls - 1, jitter());
                    if Instant::now() + delay >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

/// Makes an AWS call under [`Retry::THROTTLED`]: the one retry policy of every SSM and ECR
/// call that can be throttled.
pub async fn retry<T, E, F, Fut>(call: F) -> Result<T, E>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Retry::THROTTLED.run(call).await
}

/// `interval` scaled by a factor in [0.8, 1.2) drawn from `state` (xorshift; advanced).
pub fn jittered(interval: Duration, state: &mut u64) -> Duration {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    // 0..1000 → 0.8..1.2
    #[allow(clippy::cast_precision_loss)] // a value below 1000
    let unit = (*state % 1000) as f64 / 1000.0;
    interval.mul_f64(0.8 + 0.4 * unit)
}

/// A seed for [`jittered`]: the clock's nanoseconds and the process id, never 0.
pub fn jitter_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    #[allow(clippy::cast_possible_truncation)] // the low bits are the random ones
    let seed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
    seed | 1
}

/// A random number in [0, 1] for jitter (not for anything secret): std's randomly keyed
/// hasher, fed the time.
pub(crate) fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    // 53 random bits over 2^53: exact in an f64, a uniform fraction in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}

pub fn ssm(config: &SdkConfig) -> aws_sdk_ssm::Client {
    let conf = aws_sdk_ssm::config::Builder::from(config)
        .interceptor(RecordEndpoint)
        .interceptor(AwsClock)
        .build();
    aws_sdk_ssm::Client::from_conf(conf)
}

pub fn ecr(config: &SdkConfig) -> aws_sdk_ecr::Client {
    let conf = aws_sdk_ecr::config::Builder::from(config)
        .interceptor(RecordEndpoint)
        .build();
    aws_sdk_ecr::Client::from_conf(conf)
}

/// How far AWS's clock is ahead of this machine's (milliseconds; negative: behind), from the
/// `Date` header of the last SSM response; 0 until one came.
static AWS_CLOCK_AHEAD_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The time as AWS tells it: this machine's clock corrected by the `Date` of the last SSM
/// response (to the second). What the lock's staleness is judged by, so that a runner whose
/// clock is off neither breaks a live lock nor waits on a dead one.
pub fn aws_now() -> std::time::SystemTime {
    let ahead = AWS_CLOCK_AHEAD_MS.load(std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now();
    let by = Duration::from_millis(ahead.unsigned_abs());
    if ahead >= 0 { now + by } else { now - by }
}

/// An HTTP `Date` (`Mon, 07 Dec 2026 17:00:00 GMT`) as a time.
fn http_date(value: &str) -> Option<std::time::SystemTime> {
    let t = aws_sdk_ssm::primitives::DateTime::from_str(
        value,
        aws_sdk_ssm::primitives::DateTimeFormat::HttpDate,
    )
    .ok()?;
    std::time::SystemTime::try_from(t).ok()
}

/// Reads AWS's clock off every SSM response ([`aws_now`]).
#[derive(Debug)]
struct AwsClock;

impl aws_sdk_ssm::config::Intercept for AwsClock {
    fn name(&self) -> &'static str {
        "hoist::aws::AwsClock"
    }

    fn read_before_deserialization(
        &self,
        context: &aws_sdk_ssm::config::interceptors::BeforeDeserializationInterceptorContextRef<'_>,
        _components: &aws_sdk_ssm::config::RuntimeComponents,
        _cfg: &mut aws_sdk_ssm::config::ConfigBag,
    ) -> Result<(), aws_sdk_ssm::error::BoxError> {
        if let Some(aws) = context.response().headers().get("date").and_then(http_date) {
            let local = std::time::SystemTime::now();
            let ahead = match aws.duration_since(local) {
                Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
                Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
            };
            AWS_CLOCK_AHEAD_MS.store(ahead, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
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
        (Some(code), Some(msg)) => {
            explain::access_denied(code, msg).unwrap_or_else(|| format!("{code}: {msg}"))
        }
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
        explain::no_credentials()
    } else if let Some(missing) = chain
        .contains("ProfileFile provider could not be built")
        .then(explain::missing_profile)
        .flatten()
    {
        missing
    } else if chain.contains("Missing Region") {
        explain::NO_REGION.to_owned()
    } else if chain.contains("io error") || chain.contains("Connection refused") {
        format!("cannot reach the AWS endpoint: {chain}")
    } else {
        chain
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ecr::config::retry::RetryConfig;
    use aws_sdk_ecr::error::ErrorMetadata;
    use aws_sdk_ecr::operation::describe_repositories::{
        DescribeRepositoriesError, DescribeRepositoriesOutput,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;

    /// [`Retry::THROTTLED`]'s shape, with waits short enough for a test.
    const FAST: Retry = Retry {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        budget: Duration::from_secs(30),
        max_calls: 5,
    };

    fn error(code: &str) -> DescribeRepositoriesError {
        DescribeRepositoriesError::generic(
            ErrorMetadata::builder()
                .code(code)
                .message("from the test")
                .build(),
        )
    }

    /// An ECR client that answers from `rule`, without the SDK's own retries: what is
    /// retried here is retried by hoist's policy.
    fn ecr(rule: &Rule) -> aws_sdk_ecr::Client {
        mock_client!(aws_sdk_ecr, RuleMode::Sequential, [rule], |c| c
            .retry_config(RetryConfig::disabled()))
    }

    async fn describe(
        client: &aws_sdk_ecr::Client,
        policy: Retry,
    ) -> Result<DescribeRepositoriesOutput, aws_sdk_ecr::error::SdkError<DescribeRepositoriesError>>
    {
        policy
            .run(|| {
                client
                    .describe_repositories()
                    .repository_names("web")
                    .send()
            })
            .await
    }

    #[tokio::test]
    async fn a_call_throttled_twice_then_answered_succeeds() {
        for code in [
            "ThrottlingException",
            "TooManyRequestsException",
            "Throttling",
        ] {
            let rule = mock!(aws_sdk_ecr::Client::describe_repositories)
                .sequence()
                .error(move || error(code))
                .times(2)
                .output(|| DescribeRepositoriesOutput::builder().build())
                .build();
            let client = ecr(&rule);
            describe(&client, FAST)
                .await
                .expect("answered on the third call");
            assert_eq!(rule.num_calls(), 3, "{code}");
        }
    }

    #[tokio::test]
    async fn an_error_that_is_not_throttling_is_not_retried() {
        for code in [
            "AccessDeniedException",
            "LimitExceededException",
            "InvalidParameterException",
        ] {
            let rule = mock!(aws_sdk_ecr::Client::describe_repositories)
                .sequence()
                .error(move || error(code))
                .output(|| DescribeRepositoriesOutput::builder().build())
                .build();
            let client = ecr(&rule);
            let err = describe(&client, FAST).await.unwrap_err();
            assert_eq!(err.code(), Some(code));
            assert_eq!(rule.num_calls(), 1, "{code} was retried");
        }
    }

    #[tokio::test]
    async fn throttling_is_retried_only_as_long_as_the_policy_allows() {
        // Calls: at most max_calls.
        let rule = mock!(aws_sdk_ecr::Client::describe_repositories)
            .sequence()
            .error(|| error("ThrottlingException"))
            .times(10)
            .build();
        let client = ecr(&rule);
        let err = describe(&client, FAST).await.unwrap_err();
        assert!(is_throttling(&err), "{err:?}");
        assert_eq!(rule.num_calls(), 5);
        // Time: no call starts past the budget (here, the first wait is already past it).
        let rule = mock!(aws_sdk_ecr::Client::describe_repositories)
            .sequence()
            .error(|| error("ThrottlingException"))
            .times(10)
            .build();
        let client = ecr(&rule);
        let tight = Retry {
            budget: Duration::from_micros(100),
            ..FAST
        };
        assert!(describe(&client, tight).await.is_err());
        assert_eq!(rule.num_calls(), 1);
    }

    #[test]
    fn waits_double_with_jitter_up_to_the_cap() {
        let p = Retry::THROTTLED;
        assert_eq!(p.delay(0, 0.0), Duration::from_millis(125));
        assert_eq!(p.delay(0, 1.0), Duration::from_millis(250));
        assert_eq!(p.delay(2, 0.5), Duration::from_millis(750));
        assert_eq!(p.delay(6, 1.0), p.max_delay, "capped");
        assert_eq!(p.delay(u32::MAX, 1.0), p.max_delay, "no overflow");
        for _ in 0..100 {
            let unit = jitter();
            assert!((0.0..=1.0).contains(&unit), "{unit}");
            let d = p.delay(3, unit);
            assert!(
                d >= Duration::from_secs(1) && d <= Duration::from_secs(2),
                "{d:?}"
            );
        }
        assert!((jitter() - jitter()).abs() > 0.0, "jitter varies");
        // The whole policy stays within about a minute of waiting.
        let most: Duration = (0..p.max_calls - 1).map(|n| p.delay(n, 1.0)).sum();
        assert!(most <= p.budget, "{most:?}");
    }

    #[test]
    fn throttling_codes_are_recognised_and_nothing_else() {
        for code in THROTTLING_CODES {
            assert!(is_throttling(&error(code)), "{code}");
        }
        for code in [
            "AccessDeniedException",
            "RepositoryNotFoundException",
            "LimitExceededException",
        ] {
            assert!(!is_throttling(&error(code)), "{code}");
        }
        assert!(!is_throttling(&DescribeRepositoriesError::generic(
            ErrorMetadata::builder().build()
        )));
    }

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

    /// The `Date` of a response, read as AWS's clock (what the lock's staleness goes by).
    #[test]
    fn an_http_date_reads_as_the_time_it_names() {
        let t = super::http_date("Mon, 07 Dec 2026 17:00:00 GMT").unwrap();
        let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(secs, 1_796_662_800);
        assert!(super::http_date("yesterday").is_none());
    }
}

//! What hoist says when an AWS endpoint answers with something that is not AWS: a proxy's
//! HTML error page is reported by its HTTP status and endpoint, not as a parse error.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Hoist;

const PAGE: &str = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\
                    <body><center><h1>502 Bad Gateway</h1></center></body></html>\n";

/// A one-trick HTTP server: answers every request `502 Bad Gateway` with an HTML page, as a
/// misconfigured proxy would. Returns its URL and the number of requests it answered.
fn bad_gateway() -> (String, Arc<AtomicUsize>) {
    answering("502 Bad Gateway", "text/html", PAGE)
}

/// An HTTP server that answers every request with `status`, `content_type` and `answer`.
fn answering(
    status: &'static str,
    content_type: &'static str,
    answer: &'static str,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (url, count)
}

#[test]
fn an_html_error_page_from_the_endpoint_is_reported_by_http_status_and_endpoint() {
    let (url, requests) = bad_gateway();
    let (_dir, root) = common::repo_with(&[
        (
            "hoist.yaml",
            "app: web\nregion: us-east-1\nimage:\n  repository: web\n\
             targets:\n  tags:\n    Env: [prod]\ncontainer:\n  port: 8080\n",
        ),
        ("Dockerfile", "FROM scratch\n"),
    ]);
    let started = Instant::now();
    let run = Hoist::new()
        .current_dir(&root)
        .args(["plan", "--resolve-targets"])
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // One retry: the path through the retry policy, without its patient backoff.
        .env("AWS_MAX_ATTEMPTS", "2")
        .env_remove("AWS_RETRY_MODE")
        .env_remove("AWS_ENDPOINT_URL_SSM")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", root.join("no-such-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            root.join("no-such-credentials"),
        )
        .run();
    let elapsed = started.elapsed();
    run.code(1)
        .stderr_has("HTTP 502")
        // Names the endpoint, and says what the body was.
        .stderr_has(&url)
        .stderr_has("502 Bad Gateway")
        .stderr_has("text/html")
        // Not a parse error.
        .stderr_lacks("JSON");
    assert!(
        !run.stderr.to_lowercase().contains("deserializ"),
        "not a parse error: {}",
        run.stderr
    );
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "AWS_MAX_ATTEMPTS is honoured"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

/// hoist run in `root` with no AWS credentials anywhere: the environment's removed, the
/// shared files pointed at files that do not exist, the instance metadata service off. No
/// request leaves the machine.
fn without_credentials(root: &std::path::Path) -> Hoist {
    let mut hoist = Hoist::new().current_dir(root);
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SSM",
    ] {
        hoist = hoist.env_remove(name);
    }
    hoist
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", root.join("aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", root.join("aws-credentials"))
        .timeout(Duration::from_secs(60))
}

fn scratch_app(region: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    common::repo_with(&[
        (
            "hoist.yaml",
            &*format!("app: web\n{region}targets:\n  tags:\n    Env: [prod]\n"),
        ),
        ("Dockerfile", "FROM scratch\n"),
    ])
}

#[test]
fn without_credentials_hoist_says_where_it_looked_and_how_to_provide_them() {
    let (_dir, root) = scratch_app("region: us-east-1\n");
    let run = without_credentials(&root)
        .args(["plan", "--resolve-targets"])
        .run();
    run.code(1)
        .stderr_has("no AWS credentials found")
        .stderr_has("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: not set")
        .stderr_has(format!(
            "profile `default` in {}",
            root.join("aws-config").display()
        ))
        .stderr_has("web identity")
        .stderr_has("IMDS: disabled by AWS_EC2_METADATA_DISABLED")
        .stderr_has("export AWS_PROFILE=NAME")
        .stderr_lacks("dispatch failure");
    // A profile that does not exist is named as such, here and for the lock too.
    std::fs::write(
        root.join("aws-config"),
        "[profile dev]\nregion = us-east-1\n",
    )
    .unwrap();
    for args in [&["plan", "--resolve-targets"][..], &["lock", "status"]] {
        without_credentials(&root)
            .args(args)
            .env("AWS_PROFILE", "nosuch")
            .run()
            .code(1)
            .stderr_has("profile `nosuch`, which does not exist in")
            .stderr_has(root.join("aws-credentials").display().to_string());
    }
}

#[test]
fn without_a_region_hoist_says_where_to_set_one() {
    let (_dir, root) = scratch_app("");
    without_credentials(&root)
        .args(["plan", "--resolve-targets"])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .run()
        .code(1)
        .stderr_has("set `region:` in the config, or AWS_REGION")
        .stderr_lacks("Missing Region");
}

const DENIED: &str = "{\"__type\":\"AccessDeniedException\",\"message\":\"User: \
    arn:aws:sts::123456789012:assumed-role/ci/run is not authorized to perform: \
    ssm:DescribeInstanceInformation on resource: arn:aws:ssm:us-east-1:123456789012:* \
    because no identity-based policy allows the ssm:DescribeInstanceInformation action\"}";

#[test]
fn an_access_denied_names_the_action_and_the_policy_that_grants_it() {
    let (url, _requests) = answering("400 Bad Request", "application/x-amz-json-1.1", DENIED);
    let (_dir, root) = scratch_app("region: us-east-1\n");
    without_credentials(&root)
        .args(["plan", "--resolve-targets"])
        .env("AWS_ENDPOINT_URL", &url)
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_MAX_ATTEMPTS", "1")
        .run()
        .code(1)
        .stderr_has("AccessDeniedException")
        .stderr_has("must allow `ssm:DescribeInstanceInformation`")
        .stderr_has("examples/github-actions/iam/ci-deploy-role.json");
}

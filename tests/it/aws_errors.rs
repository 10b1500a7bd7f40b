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
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{PAGE}",
                PAGE.len()
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

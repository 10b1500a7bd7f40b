//! Judging: what SSM's statuses, elapsed times and output mean for each instance. Pure, no
//! API calls.

use std::time::{Duration, Instant};

use aws_sdk_ssm::types::CommandInvocationStatus;

use super::{STDERR_LIMIT, STDOUT_LIMIT};
use crate::config::Rate;
use crate::domain::outcome;
use crate::transport::{Invocation, InvocationStatus, OutputSink};

/// Maps SSM's (Status, `StatusDetails`) to a terminal outcome; `None` while still running.
pub fn classify(
    status: &CommandInvocationStatus,
    details: Option<&str>,
) -> Option<InvocationStatus> {
    let details: String = details
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase();
    Some(match status {
        CommandInvocationStatus::Pending
        | CommandInvocationStatus::InProgress
        | CommandInvocationStatus::Delayed
        | CommandInvocationStatus::Cancelling => return None,
        CommandInvocationStatus::Success => InvocationStatus::Success,
        CommandInvocationStatus::Cancelled => InvocationStatus::Cancelled,
        CommandInvocationStatus::TimedOut => match details.as_str() {
            "deliverytimedout" => InvocationStatus::DeliveryTimedOut,
            "executiontimedout" => InvocationStatus::ExecutionTimedOut,
            _ => InvocationStatus::TimedOut,
        },
        CommandInvocationStatus::Failed => match details.as_str() {
            "undeliverable" => InvocationStatus::Undeliverable,
            "terminated" => InvocationStatus::Terminated,
            "accessdenied" => InvocationStatus::AccessDenied,
            "deliverytimedout" => InvocationStatus::DeliveryTimedOut,
            "executiontimedout" => InvocationStatus::ExecutionTimedOut,
            _ => InvocationStatus::Failed,
        },
        // A status this hoist does not know: never a success.
        _ => InvocationStatus::Failed,
    })
}

/// How many errors `max_errors` allows over `total` targets (SSM rounds percentages down,
/// and at least... zero).
pub fn allowed_errors(rate: Rate, total: usize) -> usize {
    match rate {
        Rate::Count(n) => n as usize,
        Rate::Percent(p) => total * p as usize / 100,
    }
}

/// SSM's `ExecutionElapsedTime` (ISO 8601, e.g. `PT1M2.5S`).
pub fn parse_elapsed(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix("PT")?;
    let mut total = 0f64;
    let mut number = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'H' | 'M' | 'S' => {
                let n: f64 = number.parse().ok()?;
                number.clear();
                total += n * match c {
                    'H' => 3600.0,
                    'M' => 60.0,
                    _ => 1.0,
                };
            }
            _ => return None,
        }
    }
    (number.is_empty() && total.is_finite()).then(|| Duration::from_secs_f64(total))
}

pub(super) fn not_finished(id: &str, state: &str, started: Instant) -> Invocation {
    Invocation {
        target: id.to_owned(),
        status: match state {
            "Pending" | "Delayed" => InvocationStatus::Pending,
            "Cancelling" => InvocationStatus::Cancelling,
            "not sent" | "never reported" => InvocationStatus::Cancelled,
            _ => InvocationStatus::InProgress,
        },
        exit_code: None,
        stdout: String::new(),
        stderr: format!("the invocation had not finished when hoist stopped waiting ({state})"),
        stdout_truncated: false,
        command_id: None,
        stderr_truncated: false,
        outcome: None,
        duration: started.elapsed(),
        result: None,
    }
}

/// Shows one instance's output, grouped, and says when SSM cut it.
pub(super) fn report_output(inv: &Invocation, sink: &dyn OutputSink) {
    for line in inv.stdout.lines() {
        if !line.starts_with(outcome::MARKER) {
            sink.line(&inv.target, line);
        }
    }
    for line in inv.stderr.lines() {
        sink.line(&inv.target, line);
    }
    if inv.stdout_truncated {
        sink.status(
            &inv.target,
            &format!("(SSM returned only the first {STDOUT_LIMIT} bytes of stdout)"),
        );
    }
    if inv.stderr_truncated {
        sink.status(
            &inv.target,
            &format!("(SSM returned only the first {STDERR_LIMIT} characters of stderr)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::ssm::testing::DEPLOYED;

    #[test]
    fn every_status_and_detail_is_judged() {
        use CommandInvocationStatus as S;
        use InvocationStatus as I;
        let cases: &[(S, &str, Option<I>)] = &[
            (S::Pending, "Pending", None),
            (S::InProgress, "InProgress", None),
            (S::Delayed, "Delayed", None),
            (S::Cancelling, "Cancelling", None),
            (S::Success, "Success", Some(I::Success)),
            (S::Failed, "Failed", Some(I::Failed)),
            (S::Failed, "Undeliverable", Some(I::Undeliverable)),
            (S::Failed, "Terminated", Some(I::Terminated)),
            (S::Failed, "Access Denied", Some(I::AccessDenied)),
            (S::TimedOut, "DeliveryTimedOut", Some(I::DeliveryTimedOut)),
            (S::TimedOut, "Delivery Timed Out", Some(I::DeliveryTimedOut)),
            (S::TimedOut, "ExecutionTimedOut", Some(I::ExecutionTimedOut)),
            (
                S::TimedOut,
                "Execution Timed Out",
                Some(I::ExecutionTimedOut),
            ),
            (S::TimedOut, "", Some(I::TimedOut)),
            (S::Cancelled, "Cancelled", Some(I::Cancelled)),
            (S::from("SomethingNew"), "", Some(I::Failed)),
        ];
        for (status, details, want) in cases {
            assert_eq!(
                classify(status, Some(details)),
                *want,
                "{status:?} / {details}"
            );
        }
    }

    fn invocation(status: InvocationStatus, code: Option<i32>, stdout: &str) -> Invocation {
        Invocation {
            target: "i-0123456789abcdef0".into(),
            status,
            exit_code: code,
            stdout: stdout.into(),
            stderr: String::new(),
            stdout_truncated: false,
            command_id: None,
            stderr_truncated: false,
            outcome: None,
            duration: Duration::ZERO,
            result: outcome::parse(stdout),
        }
    }

    #[test]
    fn only_success_with_exit_0_and_a_deployed_result_counts() {
        use InvocationStatus as I;
        assert!(invocation(I::Success, Some(0), DEPLOYED).deployed());
        // SSM says Success but the script's result line is missing (e.g. output truncated).
        let no_line = invocation(I::Success, Some(0), "hoist: healthy\n");
        assert!(!no_line.deployed());
        assert!(
            no_line
                .failure_reason()
                .unwrap()
                .contains("no HOIST-RESULT")
        );
        // Every non-success status fails, whatever the output says.
        for s in [
            I::Failed,
            I::TimedOut,
            I::Cancelled,
            I::Undeliverable,
            I::Terminated,
            I::DeliveryTimedOut,
            I::ExecutionTimedOut,
            I::AccessDenied,
            I::Pending,
            I::InProgress,
            I::Cancelling,
        ] {
            let inv = invocation(s, Some(0), DEPLOYED);
            assert!(!inv.deployed(), "{s:?}");
            assert!(inv.failure_reason().is_some());
        }
        let failed = invocation(
            I::Failed,
            Some(1),
            "HOIST-RESULT {\"status\":\"failed\",\"reason\":\"health check failed\"}\n",
        );
        assert_eq!(failed.failure_reason().unwrap(), "health check failed");
        let never_ran = invocation(I::Undeliverable, None, "");
        assert!(
            never_ran
                .failure_reason()
                .unwrap()
                .contains("never reached")
        );
    }

    #[test]
    fn elapsed_times_parse() {
        assert_eq!(parse_elapsed("PT0.013S"), Some(Duration::from_millis(13)));
        assert_eq!(
            parse_elapsed("PT1M2.5S"),
            Some(Duration::from_millis(62_500))
        );
        assert_eq!(parse_elapsed("PT1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_elapsed("1.5"), None);
        assert_eq!(parse_elapsed("PT1.5"), None);
    }

    #[test]
    fn max_errors_resolves_like_ssm() {
        assert_eq!(allowed_errors(Rate::Count(0), 3), 0);
        assert_eq!(allowed_errors(Rate::Count(2), 3), 2);
        assert_eq!(allowed_errors(Rate::Percent(10), 50), 5);
        assert_eq!(allowed_errors(Rate::Percent(50), 3), 1);
    }
}

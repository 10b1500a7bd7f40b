//! What `hoist doctor` and a deploy's check-hosts step find: named checks, each ok, a
//! warning or a failure, per target (the host's own, from its `HOIST-DOCTOR` line, and those
//! hoist judges itself: the SSM agent, the host's clock against this machine's) and on this
//! machine.

use serde::{Deserialize, Serialize};

use super::Invocation;

/// The marker of the line the doctor script ends with.
pub const MARKER: &str = "HOIST-DOCTOR ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One check: what it is, how it went and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: CheckStatus,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, status: CheckStatus, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            status,
            detail: detail.into(),
        }
    }
}

/// What the doctor script printed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostSaid {
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The host's clock when it printed the line (milliseconds since the epoch).
    pub time_ms: Option<i64>,
    pub error: Option<String>,
}

/// One target's checks.
#[derive(Debug, Clone, Serialize)]
pub struct TargetChecks {
    pub target: String,
    pub checks: Vec<Check>,
}

impl TargetChecks {
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Fail)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == CheckStatus::Warn)
    }
}

/// How far a host's clock may be from this machine's before the `clock` check warns, and
/// fails (AWS refuses requests signed more than 5 minutes off).
pub const CLOCK_WARN_MS: i64 = 30_000;
pub const CLOCK_FAIL_MS: i64 = 240_000;

/// A target's checks from its run of the doctor script, `sent_ms`..`received_ms` being when
/// this machine sent it and read its answer (the host's clock is judged against that
/// window: the offset is at least the distance from it).
pub fn judge(inv: &Invocation, sent_ms: i64, received_ms: i64) -> TargetChecks {
    let said: Option<HostSaid> = super::outcome::last_marked(&inv.stdout, MARKER);
    let mut checks = Vec::new();
    match said {
        None => checks.push(Check::new("script", CheckStatus::Fail, no_answer(inv))),
        Some(said) => {
            checks.extend(said.checks);
            if let Some(time) = said.time_ms {
                checks.push(clock_offset(time, sent_ms, received_ms));
            }
            if let Some(error) = said.error
                && !checks.iter().any(|c| c.status == CheckStatus::Fail)
            {
                checks.push(Check::new("script", CheckStatus::Fail, error));
            }
        }
    }
    TargetChecks {
        target: inv.target.clone(),
        checks,
    }
}

/// Why a target printed no `HOIST-DOCTOR` line: the transport's reason, and the last line
/// the host wrote on stderr.
fn no_answer(inv: &Invocation) -> String {
    let why = match inv.status {
        super::InvocationStatus::Success | super::InvocationStatus::Failed => {
            "the script printed no HOIST-DOCTOR line".to_owned()
        }
        _ => inv
            .failure_reason()
            .unwrap_or_else(|| "the host printed no answer".to_owned()),
    };
    match inv.stderr.lines().rev().find(|l| !l.trim().is_empty()) {
        Some(last) => format!("{why}: {}", last.trim()),
        None => why,
    }
}

/// The host's clock against this machine's: `host_ms` must fall within when the command was
/// sent and when its answer was read.
pub fn clock_offset(host_ms: i64, sent_ms: i64, received_ms: i64) -> Check {
    let offset = if host_ms < sent_ms {
        host_ms - sent_ms
    } else if host_ms > received_ms {
        host_ms - received_ms
    } else {
        0
    };
    let window = (received_ms - sent_ms).max(0);
    // Tenths of a second, in integers: an offset is far below f64's exact range anyway.
    let seconds = |ms: i64| {
        let tenths = ms / 100;
        format!(
            "{}{}.{} s",
            if ms < 0 { "-" } else { "+" },
            tenths.abs() / 10,
            tenths.abs() % 10
        )
    };
    let status = match offset.abs() {
        o if o > CLOCK_FAIL_MS => CheckStatus::Fail,
        o if o > CLOCK_WARN_MS => CheckStatus::Warn,
        _ => CheckStatus::Ok,
    };
    let detail = if offset == 0 {
        format!(
            "within {}.{} s of this machine's (the time the answer took)",
            window / 1000,
            window % 1000 / 100
        )
    } else {
        format!(
            "{} off this machine's at least{}",
            seconds(offset),
            if status == CheckStatus::Fail {
                ": AWS refuses requests signed more than 5 minutes off"
            } else {
                ""
            }
        )
    };
    Check::new("clock-offset", status, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_inside_the_window_is_on_time_and_outside_is_off_by_the_distance() {
        assert_eq!(clock_offset(1_500, 1_000, 2_000).status, CheckStatus::Ok);
        let late = clock_offset(2_000 + 60_000, 1_000, 2_000);
        assert_eq!(late.status, CheckStatus::Warn);
        assert!(late.detail.starts_with("+60.0 s"), "{}", late.detail);
        let early = clock_offset(1_000 - 300_000, 1_000, 2_000);
        assert_eq!(early.status, CheckStatus::Fail);
        assert!(early.detail.starts_with("-300.0 s"), "{}", early.detail);
    }

    fn invocation(stdout: &str) -> Invocation {
        Invocation {
            target: "i-1".into(),
            status: crate::domain::InvocationStatus::Failed,
            exit_code: Some(1),
            stdout: stdout.to_owned(),
            stderr: "bash: flock: command not found\n".into(),
            stdout_truncated: false,
            stderr_truncated: false,
            duration: std::time::Duration::ZERO,
            result: None,
            outcome: None,
            command_id: None,
        }
    }

    #[test]
    fn a_host_answer_gives_its_checks_and_the_clock_offset() {
        let inv = invocation(
            "noise\nHOIST-DOCTOR {\"checks\":[{\"name\":\"flock\",\"status\":\"fail\",\
             \"detail\":\"flock is not installed\"}],\"time_ms\":1500,\"error\":\"failed: flock\"}\n",
        );
        let judged = judge(&inv, 1_000, 2_000);
        let names: Vec<_> = judged.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["flock", "clock-offset"]);
        assert_eq!(judged.failed().count(), 1);
    }

    #[test]
    fn no_answer_is_a_failed_check() {
        let judged = judge(&invocation("bash: line 1: oops\n"), 0, 1);
        assert_eq!(judged.checks.len(), 1);
        assert_eq!(judged.checks[0].name, "script");
        assert_eq!(judged.checks[0].status, CheckStatus::Fail);
        assert_eq!(
            judged.checks[0].detail,
            "the script printed no HOIST-DOCTOR line: bash: flock: command not found"
        );
    }
}

//! Durations as people write them in YAML: `30s`, `2m`, `1m30s`, `500ms`, `1h`.

use std::fmt::Write as _;
use std::time::Duration;

/// The longest duration hoist accepts: SSM Run Command's `executionTimeout` is at most
/// 172800 s (48 hours), and no step of a deploy may outlast the command that runs it.
pub const MAX: Duration = Duration::from_secs(48 * 3600);

/// What one host's run adds to its health gate and stop timeout: pulling the image and
/// pruning old releases.
pub const RUN_SLACK: Duration = Duration::from_secs(600);

/// One host's hard limit for a run of the script: health timeout + start period + stop
/// timeout + `switch` (what the strategy adds after the gate: blue-green's drain and
/// post-switch check, zero for recreate) + [`RUN_SLACK`]. `None` when that exceeds [`MAX`]
/// (or overflows).
pub fn run_budget(
    health_timeout: Duration,
    start_period: Duration,
    stop_timeout: Duration,
    switch: Duration,
) -> Option<Duration> {
    health_timeout
        .checked_add(start_period)?
        .checked_add(stop_timeout)?
        .checked_add(switch)?
        .checked_add(RUN_SLACK)
        .filter(|d| *d <= MAX)
}

/// Parses a duration, at most [`MAX`]. A bare integer is refused: the unit must be explicit.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration (write e.g. 30s, 2m, 1m30s, 500ms)"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            "" => {
                return Err(format!(
                    "`{text}` has no unit (write e.g. {number}s or {number}m)"
                ));
            }
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (use ms, s, m or h)"
                ));
            }
        };
        total = total.saturating_add(part);
    }
    if total > MAX {
        return Err(format!(
            "`{text}` is longer than {}, the most SSM lets a command run",
            format(MAX)
        ));
    }
    Ok(total)
}

/// Formats a duration in the form `parse` reads: `90s` → `1m30s`, `0` → `0s`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_common_forms() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn refuses_missing_or_unknown_units() {
        assert!(parse("30").unwrap_err().contains("no unit"));
        assert!(parse("3 days").is_err());
        assert!(parse("5d").unwrap_err().contains("unknown unit"));
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
    }

    #[test]
    fn durations_beyond_48h_are_refused_not_wrapped() {
        assert_eq!(parse("48h"), Ok(MAX));
        assert_eq!(parse("47h60m"), Ok(MAX));
        for text in [
            "48h1s",
            "49h",
            "172801s",
            "18446744073709551615s",
            "18446744073709551615h",
            "99999999999999999999999s",
            "5124095576030431h5124095576030431h",
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains("longer than 48h") || err.contains("too large"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn the_run_budget_never_exceeds_48h_nor_overflows() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        let s = Duration::from_secs;
        assert_eq!(
            run_budget(s(60), Duration::ZERO, s(10), Duration::ZERO),
            Some(s(670))
        );
        assert_eq!(
            run_budget(s(60), Duration::ZERO, s(10), s(20)),
            Some(s(690)),
            "a blue-green switch's drain and post-switch check count"
        );
        assert_eq!(
            run_budget(h(40), h(7), Duration::ZERO, Duration::ZERO),
            Some(h(47) + RUN_SLACK)
        );
        assert_eq!(
            run_budget(h(40), h(7), Duration::ZERO, s(50 * 60)),
            Some(MAX)
        );
        assert_eq!(
            run_budget(h(40), h(7), Duration::ZERO, s(50 * 60 + 1)),
            None,
            "the switch pushes it past 48h"
        );
        assert_eq!(
            run_budget(h(48), Duration::ZERO, Duration::ZERO, Duration::ZERO),
            None
        );
        assert_eq!(
            run_budget(Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX),
            None
        );
        assert_eq!(
            run_budget(
                Duration::ZERO,
                Duration::ZERO,
                Duration::ZERO,
                Duration::MAX
            ),
            None
        );
    }

    #[test]
    fn format_round_trips() {
        for text in ["0s", "30s", "1m30s", "2h", "1h1m1s", "250ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}

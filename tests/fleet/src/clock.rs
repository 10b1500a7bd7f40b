//! Time as the AWS APIs want it: epoch seconds and ISO-8601 strings.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, with milliseconds.
pub fn now() -> f64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// Rounds to milliseconds, as AWS's epoch timestamps are.
pub fn epoch_json(t: f64) -> serde_json::Value {
    serde_json::json!((t * 1000.0).round() / 1000.0)
}

/// `2024-05-01T12:34:56.789Z`, as in GetCommandInvocation's ExecutionStartDateTime.
pub fn iso8601(t: f64) -> String {
    let millis = (t * 1000.0).round() as i64;
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// `PT1.234S`, as in ExecutionElapsedTime.
pub fn elapsed(start: f64, end: f64) -> String {
    format!("PT{:.3}S", (end - start).max(0.0))
}

/// Parses `2026-05-01T12:34:56Z`, with optional fractional seconds and a
/// `Z`, `+HH:MM` or `-HH:MM` offset, into epoch seconds.
pub fn parse_iso8601(s: &str) -> Option<f64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let y: i64 = d.next()?.parse().ok()?;
    let m: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, mi) = off[1..].split_once(':')?;
        let secs = h.parse::<i64>().ok()? * 3600 + mi.parse::<i64>().ok()? * 60;
        (c, sign * secs)
    };
    let mut t = clock.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let sec: f64 = t.next()?.parse().ok()?;
    if t.next().is_some() || h > 23 || mi > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    let days = days_from_civil(y, m, day);
    Some((days * 86_400 + h * 3600 + mi * 60 - offset) as f64 + sec)
}

// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000.5), "2023-11-14T22:13:20.500Z");
        assert_eq!(iso8601(951_782_400.0), "2000-02-29T00:00:00.000Z");
        assert_eq!(elapsed(1.0, 2.25), "PT1.250S");
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [0.0, 1_700_000_000.5, 951_782_400.0, 1_790_000_000.0] {
            assert_eq!(parse_iso8601(&iso8601(t)), Some(t));
        }
        assert_eq!(
            parse_iso8601("2023-11-14T23:13:20+01:00"),
            Some(1_700_000_000.0)
        );
        assert_eq!(parse_iso8601("2023-11-14T22:13:20Z"), Some(1_700_000_000.0));
        for bad in ["", "2023-11-14", "2023-13-01T00:00:00Z", "tomorrow"] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}

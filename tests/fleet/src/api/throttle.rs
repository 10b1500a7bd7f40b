//! AWS's own request-rate quotas, always in force (unlike the throttling
//! faults of `crate::faults`, which tests switch on): a token bucket per
//! quota, shared by every caller of the world (one account, one region),
//! holding one second's worth of calls and refilled at the quota's rate.
//! A call that finds its bucket empty is `ThrottlingException` "Rate exceeded".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::settings::ApiSettings;

/// The quota an operation counts against, and its rate per second.
pub fn quota(settings: &ApiSettings, service: &str, op: &str) -> Option<(&'static str, u32)> {
    match (service, op) {
        ("ssm", "GetParameter" | "GetParameters" | "GetParametersByPath") => {
            Some(("ssm:parameter-reads", settings.param_read_tps))
        }
        ("ssm", "PutParameter") => Some(("ssm:PutParameter", settings.param_write_tps)),
        ("secretsmanager", "GetSecretValue" | "DescribeSecret") => {
            Some(("secretsmanager:reads", settings.secret_read_tps))
        }
        ("secretsmanager", "PutSecretValue") => {
            Some(("secretsmanager:PutSecretValue", settings.secret_write_tps))
        }
        _ => None,
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Default)]
pub struct Throttles {
    buckets: Mutex<HashMap<&'static str, Bucket>>,
}

impl Throttles {
    /// Whether a call of `service`/`op` may go through now (and takes its token).
    pub fn admit(&self, settings: &ApiSettings, service: &str, op: &str) -> bool {
        self.admit_at(settings, service, op, Instant::now())
    }

    fn admit_at(&self, settings: &ApiSettings, service: &str, op: &str, now: Instant) -> bool {
        let Some((name, rate)) = quota(settings, service, op) else {
            return true;
        };
        let rate = f64::from(rate.max(1));
        let mut buckets = self.buckets.lock().expect("throttles");
        let b = buckets.entry(name).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let refill = now.saturating_duration_since(b.last).as_secs_f64() * rate;
        b.tokens = (b.tokens + refill).min(rate);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reads_share_one_bucket_of_forty_a_second() {
        let s = ApiSettings::default();
        let t = Throttles::default();
        let now = Instant::now();
        let ops = ["GetParameter", "GetParameters", "GetParametersByPath"];
        let admitted = (0..100)
            .filter(|n| t.admit_at(&s, "ssm", ops[n % 3], now))
            .count();
        assert_eq!(admitted, 40);
        // Writes have their own bucket, of three.
        let puts = (0..10)
            .filter(|_| t.admit_at(&s, "ssm", "PutParameter", now))
            .count();
        assert_eq!(puts, 3);
        // A quarter of a second later: ten more reads.
        let later = now + Duration::from_millis(250);
        let admitted = (0..100)
            .filter(|_| t.admit_at(&s, "ssm", "GetParameter", later))
            .count();
        assert_eq!(admitted, 10);
        // Never more than a second's worth at once.
        let much_later = now + Duration::from_secs(60);
        let admitted = (0..100)
            .filter(|_| t.admit_at(&s, "ssm", "GetParameter", much_later))
            .count();
        assert_eq!(admitted, 40);
    }

    #[test]
    fn unlisted_operations_are_not_throttled() {
        let s = ApiSettings::default();
        let t = Throttles::default();
        let now = Instant::now();
        assert!((0..1000).all(|_| t.admit_at(&s, "ssm", "DeleteParameter", now)));
        assert!((0..1000).all(|_| t.admit_at(&s, "ssm", "SendCommand", now)));
        let secrets = (0..20_000)
            .filter(|n| {
                let op = if n % 2 == 0 {
                    "GetSecretValue"
                } else {
                    "DescribeSecret"
                };
                t.admit_at(&s, "secretsmanager", op, now)
            })
            .count();
        assert_eq!(secrets, 10_000);
    }
}

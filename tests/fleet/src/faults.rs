//! Faults on demand: throttling, latency and offline agents, set through the
//! admin API (`hoist-fleet fault ...`). Disk and engine faults act on the
//! instance directly (see `api::admin`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Offline {
    /// The agent is stopped: invocations wait (Delayed) and end DeliveryTimedOut
    /// unless the agent comes back before the delivery timeout.
    Timeout,
    /// The instance is gone (stopped/terminated): invocations end Undeliverable.
    Undeliverable,
}

#[derive(Debug, Default, Serialize)]
pub struct Throttle {
    /// Throttle the next N calls.
    pub next: u32,
    /// Throttle calls above this many per second.
    pub rate: Option<f64>,
    #[serde(skip)]
    recent: VecDeque<Instant>,
}

#[derive(Debug, Default, Serialize)]
pub struct Faults {
    /// By operation name (`SendCommand`) or `*` for every operation.
    pub throttle: HashMap<String, Throttle>,
    pub latency_ms: HashMap<String, u64>,
    /// By operation: the next N calls are carried out, then their connection is held for
    /// the given milliseconds and closed without an answer (a response lost on the way).
    pub drop_response: HashMap<String, (u32, u64)>,
    pub offline: HashMap<String, Offline>,
    pub disk: HashMap<String, String>,
    pub engine: HashMap<String, String>,
    /// (instance, tool): a tool hidden on an instance (`fault tool`).
    pub tools: std::collections::BTreeSet<(String, String)>,
    /// Engines restarted after an `engine down` fault.
    #[serde(skip)]
    pub dockerd_pids: HashMap<String, u32>,
}

impl Throttle {
    pub fn new(next: u32, rate: Option<f64>) -> Throttle {
        Throttle {
            next,
            rate,
            recent: VecDeque::new(),
        }
    }
}

impl Faults {
    /// Called once a call was carried out: `Some(hold)` when its answer is to be lost.
    pub fn drop_answer(&mut self, op: &str) -> Option<u64> {
        let (next, hold) = self.drop_response.get_mut(op)?;
        if *next == 0 {
            return None;
        }
        *next -= 1;
        Some(*hold)
    }

    /// Called for every API call: `None` to throttle it, else the latency to add.
    pub fn before_call(&mut self, op: &str) -> Option<u64> {
        for key in [op, "*"] {
            if let Some(t) = self.throttle.get_mut(key) {
                if t.next > 0 {
                    t.next -= 1;
                    return None;
                }
                if let Some(rate) = t.rate {
                    let now = Instant::now();
                    while t
                        .recent
                        .front()
                        .is_some_and(|f| now.duration_since(*f) > Duration::from_secs(1))
                    {
                        t.recent.pop_front();
                    }
                    if t.recent.len() as f64 >= rate {
                        return None;
                    }
                    t.recent.push_back(now);
                }
            }
        }
        Some(
            self.latency_ms.get(op).copied().unwrap_or(0)
                + self.latency_ms.get("*").copied().unwrap_or(0),
        )
    }

    pub fn offline(&self, instance: &str) -> Option<Offline> {
        self.offline.get(instance).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_n_then_clear() {
        let mut f = Faults::default();
        f.throttle.insert(
            "SendCommand".into(),
            Throttle {
                next: 2,
                ..Default::default()
            },
        );
        assert_eq!(f.before_call("SendCommand"), None);
        assert_eq!(f.before_call("ListCommands"), Some(0));
        assert_eq!(f.before_call("SendCommand"), None);
        assert_eq!(f.before_call("SendCommand"), Some(0));
    }

    #[test]
    fn rate_limit() {
        let mut f = Faults::default();
        f.throttle.insert(
            "*".into(),
            Throttle {
                rate: Some(3.0),
                ..Default::default()
            },
        );
        let allowed = (0..10).filter(|_| f.before_call("X").is_some()).count();
        assert_eq!(allowed, 3);
        f.latency_ms.insert("X".into(), 5);
        f.throttle.clear();
        assert_eq!(f.before_call("X"), Some(5));
    }
}

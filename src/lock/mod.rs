//! The fleet-wide deploy lock: one SSM parameter per app and fleet, created only if absent.
//!
//! Each host's script takes its own `flock`, which keeps two runs off one host but lets two
//! CI jobs deploy one app at once to different hosts. Before anything changes, a deploy or
//! rollback over SSM puts `/hoist/<app>/lock/<scope>` with `PutParameter` and overwrite off:
//! exactly one of two hoists racing for it gets it. `<scope>` is a hash of the config's
//! targets selector, so one app deployed by two configs to two fleets has two locks (and
//! two configs whose selectors differ but overlap do not exclude each other: the hosts'
//! `flock` still does).
//!
//! The parameter holds who took it (a CI run or `user@host`), when, for which release, and
//! until when: a lease, renewed every third of it while hoist runs. A hoist that was killed
//! leaves a lock whose lease runs out; the next one reports it **stale**, naming its holder,
//! and never breaks it by itself: `hoist unlock` does, explicitly. The value carries a random
//! token, so a hoist releases (deletes) and renews only a lock that is still its own.
//!
//! The lock never carries the `hoist:expires` tag, so the sweep of expired secret parameters
//! ([`crate::transport::secret_parameter::sweep`]) never deletes it. Its name cannot be a
//! secret parameter's: those are `/hoist/<app>/<release>/<run>/env`, two levels deeper.
//!
//! Parameter Store has no compare-and-swap, so a renewal (read, then overwrite) and a
//! release (read, then delete) leave a window of one API call in which a lock broken with
//! `hoist unlock` and taken by another deploy could be overwritten or deleted; only an
//! explicit `hoist unlock` of a live lock opens it.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ssm::Client;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::domain::Events;
use crate::domain::LockSpec;

mod commands;
mod error;
mod held;
mod status;
mod store;

pub use commands::LiveCommand;
pub use error::LockError;
use error::whole;
use held::hold;
pub use held::{CommandRecorder, Held, Renewal, renew};
pub use status::{Breaking, Status, status, unlock};
use store::{Current, Put, put, read};

/// What the lock parameter holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Who: `owner/repo run 123 attempt 1 (actor)` under GitHub Actions, else `user@host`.
    pub holder: String,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// `deploy` or `rollback`.
    pub operation: String,
    pub release: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// RFC 3339, UTC.
    pub started: String,
    /// The end of the lease (RFC 3339, UTC): past it, the lock is stale.
    pub expires: String,
    /// Random, per acquisition: the lock is ours only while it holds our token.
    pub token: String,
    #[serde(default)]
    pub hoist_version: String,
    /// The SSM commands the run sent, as it sends them: whoever finds the lock asks SSM
    /// whether they still run ([`commands::live`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
    /// The lease's length in seconds: with the parameter's `LastModifiedDate` (AWS's clock
    /// when it was last written), when the lease ends by AWS's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_secs: Option<u64>,
    /// When the parameter was last written, as AWS says (`LastModifiedDate`); not stored.
    #[serde(skip)]
    pub written: Option<OffsetDateTime>,
}

impl Record {
    /// Whether the lease ended before `now`: by AWS's clock when the record was read from
    /// Parameter Store (its last write plus the lease), else by the end the holder wrote (an
    /// unreadable time counts as ended).
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        if let (Some(written), Some(lease)) = (self.written, self.lease_secs) {
            let lease = i64::try_from(lease).unwrap_or(i64::MAX);
            return written.saturating_add(time::Duration::seconds(lease)) < now;
        }
        OffsetDateTime::parse(&self.expires, &Rfc3339).map_or(true, |t| t < now)
    }

    /// [`Record::expired`] now, by AWS's clock ([`crate::aws::aws_now`]).
    pub fn expired_now(&self) -> bool {
        self.expired(OffsetDateTime::from(crate::aws::aws_now()))
    }

    /// `alice@ci-1 (deploy of release 5cddb29209fa since 2026-12-06T17:00:00Z, lease until
    /// 2026-12-06T17:05:00Z)`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({} of release {} since {}, lease until {})",
            self.holder, self.operation, self.release, self.started, self.expires
        )
    }
}

/// Who takes a lock, and for what.
#[derive(Debug, Clone)]
pub struct Request {
    /// `deploy` or `rollback`.
    pub operation: String,
    pub release: String,
    pub run: Option<String>,
    /// [`holder_from_env`].
    pub holder: String,
    pub host: String,
}

impl Request {
    /// A request from this process: holder from the environment, this host, this pid.
    pub fn here(operation: &str, release: &str, run: Option<&str>) -> Request {
        Request {
            operation: operation.to_owned(),
            release: release.to_owned(),
            run: run.map(str::to_owned),
            holder: holder_from_env(|k| std::env::var(k).ok()),
            host: hostname(),
        }
    }

    fn record(&self, token: &str, lease: Duration, now: OffsetDateTime) -> Record {
        Record {
            holder: self.holder.clone(),
            host: self.host.clone(),
            pid: Some(std::process::id()),
            operation: self.operation.clone(),
            release: self.release.clone(),
            run: self.run.clone(),
            started: rfc3339(now),
            expires: rfc3339(now + lease),
            token: token.to_owned(),
            hoist_version: env!("CARGO_PKG_VERSION").to_owned(),
            commands: Vec::new(),
            lease_secs: Some(lease.as_secs()),
            written: None,
        }
    }
}

/// Who is taking the lock: under GitHub Actions the workflow run
/// (`GITHUB_REPOSITORY run GITHUB_RUN_ID attempt GITHUB_RUN_ATTEMPT (GITHUB_ACTOR)`), else
/// `user@host`.
pub fn holder_from_env(env: impl Fn(&str) -> Option<String>) -> String {
    if env("GITHUB_ACTIONS").as_deref() == Some("true")
        && let (Some(repo), Some(run)) = (env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID"))
    {
        let attempt = env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into());
        let actor = env("GITHUB_ACTOR").unwrap_or_else(|| "unknown actor".into());
        return format!("{repo} run {run} attempt {attempt} ({actor})");
    }
    let user = env("USER")
        .or_else(|| env("LOGNAME"))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            // SAFETY: getuid(2) cannot fail and touches no memory.
            format!("uid{}", unsafe { libc::getuid() })
        });
    format!("{user}@{}", hostname())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// How the lock is polled and renewed. The defaults: a poll every 2 to 5 s (at random, so
/// waiting hoists do not call in step), a renewal every third of the lease.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// While waiting, how often a line says hoist still waits.
    pub say_every: Duration,
    /// `None`: a third of the lease.
    pub renew_every: Option<Duration>,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_min: Duration::from_secs(2),
            poll_max: Duration::from_secs(5),
            say_every: Duration::from_secs(30),
            renew_every: None,
        }
    }
}

/// What the deploy's report says of the lock.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    pub parameter: String,
    /// How long hoist waited for it (0 when it was free).
    #[serde(rename = "waited_ms", with = "crate::domain::ser::millis")]
    pub waited: Duration,
}

impl fmt::Display for LockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lock {} taken", self.parameter)?;
        if !self.waited.is_zero() {
            write!(f, " (waited {:.1} s)", self.waited.as_secs_f64())?;
        }
        Ok(())
    }
}

/// Takes the lock `spec` for `request`: at once, or, with `wait`, as soon as its holder
/// releases it within that time (polling every 2 to 5 s, saying whom it waits for). A lock
/// whose lease ended is stale: never taken over, reported with its holder.
pub async fn acquire(
    client: &Client,
    spec: &LockSpec,
    request: &Request,
    wait: Option<Duration>,
    timing: Timing,
    progress: Arc<dyn Events>,
    cancel: &CancellationToken,
) -> Result<Held, LockError> {
    let started = Instant::now();
    let token = new_token();
    let mut said: Option<(String, Instant)> = None;
    let mut absent = 0;
    let p = &spec.parameter;
    progress.activity(&format!("taking the deploy lock {p}"));
    loop {
        let record = request.record(
            &token,
            spec.lease,
            OffsetDateTime::from(crate::aws::aws_now()),
        );
        match put(client, p, &record, false).await? {
            Put::Done => return Ok(hold(client, spec, record, started, timing, progress)),
            Put::Exists | Put::Busy => {}
        }
        let current = match read(client, p).await? {
            // Released between the put and the read: try again at once (a few times).
            Current::Absent if absent < 5 => {
                absent += 1;
                continue;
            }
            Current::Absent => {
                return Err(LockError::Api {
                    operation: "PutParameter",
                    parameter: p.clone(),
                    message: "the parameter exists when put and is gone when read, again and \
                              again"
                        .into(),
                });
            }
            Current::Unreadable(value) => {
                return Err(LockError::Unreadable {
                    parameter: p.clone(),
                    value,
                });
            }
            Current::Held(current) => current,
        };
        absent = 0;
        // Our own put, whose answer was lost and retried.
        if current.token == token {
            return Ok(hold(client, spec, *current, started, timing, progress));
        }
        if current.expired_now() {
            // A lease that ran out is not a run that ended: its commands may still run.
            let running = commands::live(client, p, &current).await?;
            if !running.is_empty() {
                return Err(LockError::Live {
                    parameter: p.clone(),
                    record: current,
                    commands: running,
                    unlocking: false,
                });
            }
            return Err(LockError::Stale {
                parameter: p.clone(),
                record: current,
            });
        }
        let waited = started.elapsed();
        let Some(limit) = wait.filter(|w| waited < *w) else {
            return Err(LockError::Held {
                parameter: p.clone(),
                record: current,
                waited: wait.map(|_| waited),
            });
        };
        let now = Instant::now();
        match &said {
            Some((t, at)) if *t == current.token => {
                if now.duration_since(*at) >= timing.say_every {
                    progress.info(&format!(
                        "still waiting for the deploy lock {p}: held by {} (waited {} of {})",
                        current.holder,
                        crate::config::duration::format(whole(waited)),
                        crate::config::duration::format(limit)
                    ));
                    said = Some((current.token.clone(), now));
                }
            }
            _ => {
                progress.info(&format!(
                    "waiting for the deploy lock {p}: held by {}; waiting up to {}",
                    current.describe(),
                    crate::config::duration::format(limit)
                ));
                said = Some((current.token.clone(), now));
            }
        }
        let spread = timing.poll_max.saturating_sub(timing.poll_min);
        let pause = timing.poll_min + spread.mul_f64(crate::aws::jitter());
        let pause = pause.min(limit.saturating_sub(waited) + Duration::from_millis(10));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = cancel.cancelled() => return Err(LockError::Interrupted(p.clone())),
        }
    }
}

fn new_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let seed = crate::aws::jitter_seed();
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        bytes[8..].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
    }
    hex::encode(bytes)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .expect("0 is a valid nanosecond")
        .format(&Rfc3339)
        .expect("a UTC time formats")
}

#[cfg(test)]
mod tests;

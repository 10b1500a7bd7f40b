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
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::domain::Events;
use crate::domain::LockSpec;

mod commands;
mod error;
mod store;

pub use commands::LiveCommand;
pub use error::LockError;
use error::whole;
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
}

impl Record {
    /// Whether the lease ended before `now` (an unreadable time counts as ended).
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        OffsetDateTime::parse(&self.expires, &Rfc3339).map_or(true, |t| t < now)
    }

    fn expired_now(&self) -> bool {
        self.expired(OffsetDateTime::now_utc())
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

/// A lock this hoist holds. Renewed in the background until released; released by
/// [`Held::release`] or, on any path that did not, when dropped (which blocks the thread
/// for the calls: on a multi-threaded runtime only).
pub struct Held {
    client: Client,
    parameter: String,
    token: String,
    /// When the lease of the last renewal ends (for messages).
    record: Arc<std::sync::Mutex<Record>>,
    waited: Duration,
    renewal: Option<(CancellationToken, JoinHandle<()>)>,
    /// Wakes the renewal to write the record at once (a command was added).
    write_now: Arc<tokio::sync::Notify>,
    progress: Arc<dyn Events>,
    released: bool,
}

impl Held {
    /// Records the commands the run sends, for the transport's sink: each is written to the
    /// lock at once (by the renewal, which checks the lock is still ours). A hoist killed
    /// between `SendCommand`'s answer and that write leaves that one id out: one API call's
    /// window.
    pub fn recorder(&self) -> CommandRecorder {
        CommandRecorder {
            record: self.record.clone(),
            write_now: self.write_now.clone(),
        }
    }
    pub fn report(&self) -> LockReport {
        LockReport {
            parameter: self.parameter.clone(),
            waited: self.waited,
        }
    }

    /// Stops the renewal, then deletes the lock if it is still ours; says what it did.
    pub async fn release(mut self) {
        self.release_now().await;
    }

    async fn release_now(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if let Some((stop, task)) = self.renewal.take() {
            stop.cancel();
            // A renewal under way ends first: nothing puts the lock after it was deleted.
            let _ = task.await;
        }
        let p = &self.parameter;
        let expires = self.record.lock().expect("not poisoned").expires.clone();
        match read(&self.client, p).await {
            Ok(Current::Held(r)) if r.token == self.token => {
                self.delete_ours(&expires).await;
            }
            Ok(Current::Held(r)) => self.progress.warn(&format!(
                "warning: the deploy lock {p} was not released: it is now held by {} (it was \
                 broken with `hoist unlock` and taken again); left alone",
                r.describe()
            )),
            Ok(Current::Absent) => self.progress.warn(&format!(
                "warning: the deploy lock {p} was already gone when this deploy ended (broken \
                 with `hoist unlock`?)"
            )),
            Ok(Current::Unreadable(v)) => self.progress.warn(&format!(
                "warning: the deploy lock {p} now holds a value hoist cannot read ({v}); left \
                 alone"
            )),
            Err(e) => self.progress.warn(&format!(
                "warning: could not release the deploy lock {p}: {e}; it goes stale at \
                 {expires}, then break it with `hoist unlock`"
            )),
        }
    }
}

impl Held {
    /// Deletes the lock, read as ours just before: one call at a time, never retried blind.
    /// When a delete's answer is lost, the lock is read again: gone means the delete went
    /// through; ours means it did not, and it is deleted again; someone else's means it went
    /// through and another hoist took the lock since, which stays theirs.
    async fn delete_ours(&self, expires: &str) {
        let p = &self.parameter;
        let failed = |e: &dyn fmt::Display| {
            self.progress.warn(&format!(
                "warning: could not release the deploy lock {p}: {e}; it goes stale at \
                 {expires}, then break it with `hoist unlock`"
            ));
        };
        for _ in 0..3 {
            let lost = match store::delete_once(&self.client, p).await {
                Ok(store::Deleted::Done | store::Deleted::Absent) => {
                    self.progress.done(&format!("released the deploy lock {p}"));
                    return;
                }
                Ok(store::Deleted::Unknown(e)) => e,
                Err(e) => return failed(&e),
            };
            match read(&self.client, p).await {
                Ok(Current::Absent) => {
                    self.progress.done(&format!(
                        "released the deploy lock {p} (DeleteParameter's answer was lost: \
                         {lost}; the lock is gone)"
                    ));
                    return;
                }
                Ok(Current::Held(r)) if r.token == self.token => {}
                Ok(Current::Held(r)) => {
                    self.progress.done(&format!(
                        "released the deploy lock {p} (DeleteParameter's answer was lost: \
                         {lost}; it is now held by {}, left alone)",
                        r.describe()
                    ));
                    return;
                }
                Ok(Current::Unreadable(v)) => {
                    return failed(&format!("it now holds a value hoist cannot read ({v})"));
                }
                Err(e) => return failed(&e),
            }
        }
        failed(&"DeleteParameter's answer was lost three times");
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(self.release_now()));
            }
            _ => self.progress.warn(&format!(
                "warning: the deploy lock {} could not be released here; it goes stale when \
                 its lease ends, then break it with `hoist unlock`",
                self.parameter
            )),
        }
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
        let record = request.record(&token, spec.lease, OffsetDateTime::now_utc());
        match put(client, p, &record, false).await? {
            Put::Done => return Ok(held(client, spec, record, started, timing, progress)),
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
            return Ok(held(client, spec, *current, started, timing, progress));
        }
        if current.expired(OffsetDateTime::now_utc()) {
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

fn held(
    client: &Client,
    spec: &LockSpec,
    record: Record,
    started: Instant,
    timing: Timing,
    progress: Arc<dyn Events>,
) -> Held {
    let waited = started.elapsed();
    let token = record.token.clone();
    let record = Arc::new(std::sync::Mutex::new(record));
    let stop = CancellationToken::new();
    let every = timing.renew_every.unwrap_or(spec.lease / 3);
    let write_now = Arc::new(tokio::sync::Notify::new());
    let task = tokio::spawn(renew_loop(
        client.clone(),
        spec.clone(),
        record.clone(),
        every,
        (stop.clone(), write_now.clone()),
        progress.clone(),
    ));
    let held = Held {
        client: client.clone(),
        parameter: spec.parameter.clone(),
        token,
        record,
        waited,
        renewal: Some((stop, task)),
        write_now,
        progress,
        released: false,
    };
    held.progress.done(&held.report().to_string());
    held
}

/// Adds the commands a run sends to its lock (see [`Held::recorder`]).
#[derive(Clone)]
pub struct CommandRecorder {
    record: Arc<std::sync::Mutex<Record>>,
    write_now: Arc<tokio::sync::Notify>,
}

impl CommandRecorder {
    pub fn record(&self, command_id: &str) {
        self.record
            .lock()
            .expect("not poisoned")
            .commands
            .push(command_id.to_owned());
        self.write_now.notify_one();
    }
}

impl fmt::Debug for CommandRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CommandRecorder")
    }
}

/// How one renewal ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still ours: the lease now ends at this time.
    Renewed(String),
    /// No longer ours: why (gone, or whose it is now).
    Lost(String),
}

/// Renews the lock if it still holds `record`'s token: its lease then ends `lease` from now.
pub async fn renew(
    client: &Client,
    spec: &LockSpec,
    record: &mut Record,
) -> Result<Renewal, LockError> {
    match read(client, &spec.parameter).await? {
        Current::Held(r) if r.token == record.token => {
            let mut next = record.clone();
            next.expires = rfc3339(OffsetDateTime::now_utc() + spec.lease);
            match put(client, &spec.parameter, &next, true).await? {
                Put::Done => {
                    *record = next;
                    Ok(Renewal::Renewed(record.expires.clone()))
                }
                // Nothing was written: the lease still ends when it did.
                Put::Busy | Put::Exists => Err(LockError::Api {
                    operation: "PutParameter",
                    parameter: spec.parameter.clone(),
                    message: format!(
                        "another write of the parameter was under way (TooManyUpdates); the \
                         lease was not renewed and still ends at {}",
                        record.expires
                    ),
                }),
            }
        }
        Current::Held(r) => Ok(Renewal::Lost(format!("it is now held by {}", r.describe()))),
        Current::Absent => Ok(Renewal::Lost(
            "it is gone (broken with `hoist unlock`?)".into(),
        )),
        Current::Unreadable(v) => Ok(Renewal::Lost(format!(
            "it now holds a value hoist cannot read ({v})"
        ))),
    }
}

async fn renew_loop(
    client: Client,
    spec: LockSpec,
    record: Arc<std::sync::Mutex<Record>>,
    every: Duration,
    (stop, write_now): (CancellationToken, Arc<tokio::sync::Notify>),
    progress: Arc<dyn Events>,
) {
    // After a renewal that failed, the next try comes sooner: two in a row a third of the
    // lease apart would let it lapse. A command recorded is written at once.
    let mut wait = every;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = write_now.notified() => {}
            () = stop.cancelled() => return,
        }
        wait = every;
        let mut current = record.lock().expect("not poisoned").clone();
        match renew(&client, &spec, &mut current).await {
            Ok(Renewal::Renewed(until)) => {
                progress.verbose(&format!(
                    "renewed the deploy lock {} until {until}",
                    spec.parameter
                ));
                // Only the lease: commands recorded meanwhile stay (and are written next).
                let mut shared = record.lock().expect("not poisoned");
                shared.expires = current.expires;
                if shared.commands.len() > current.commands.len() {
                    write_now.notify_one();
                }
            }
            Ok(Renewal::Lost(why)) => {
                // The deploy goes on: stopping it mid-switch would do more harm.
                progress.warn(&format!(
                    "WARNING: this deploy no longer holds the deploy lock {}: {why}. Another \
                     deploy of this app to these targets may run at the same time; the hosts' \
                     own lock still keeps two off one host",
                    spec.parameter
                ));
                return;
            }
            Err(e) => {
                wait = (every / 4).max(Duration::from_millis(1));
                progress.warn(&format!(
                    "warning: could not renew the deploy lock {}: {e}; trying again in {}",
                    spec.parameter,
                    crate::config::duration::format(wait)
                ));
            }
        }
    }
}

/// What `hoist lock status` prints.
#[derive(Debug, Serialize)]
pub struct Status {
    pub app: String,
    pub parameter: String,
    pub locked: bool,
    /// The lease ended and no command of its run still runs: its hoist is gone, and so is
    /// its rollout.
    pub stale: bool,
    /// Commands of its run that have not ended (asked of SSM): the lock is live, whatever
    /// its lease says.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub live_commands: Vec<LiveCommand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<Record>,
    /// A value hoist cannot read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

impl Status {
    pub fn to_text(&self) -> String {
        match (&self.holder, &self.unreadable) {
            (Some(r), _) => format!(
                "{}: {}locked by {}\n  {} of release {}{}\n  since {}\n  lease until {}{}\n",
                self.parameter,
                if self.stale { "STALE, " } else { "" },
                r.holder,
                r.operation,
                r.release,
                r.run
                    .as_deref()
                    .map_or_else(String::new, |run| format!(" (run {run})")),
                r.started,
                r.expires,
                if self.stale {
                    " (expired, and none of its SSM commands runs: break it with `hoist unlock`)"
                        .to_owned()
                } else if self.live_commands.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n  still running: SSM command(s) {}{}",
                        LiveCommand::describe(&self.live_commands),
                        if r.expired(OffsetDateTime::now_utc()) {
                            " (its lease expired: that hoist is gone, its commands are not)"
                        } else {
                            ""
                        }
                    )
                }
            ),
            (None, Some(v)) => format!(
                "{}: locked, with a value hoist cannot read ({v})\n",
                self.parameter
            ),
            (None, None) => format!("{}: not locked\n", self.parameter),
        }
    }
}

/// `hoist lock status`: who holds the lock, if anyone.
pub async fn status(client: &Client, config: &Config) -> Result<Status, LockError> {
    let parameter = crate::domain::lock_parameter(config);
    let current = read(client, &parameter).await?;
    let now = OffsetDateTime::now_utc();
    let (holder, unreadable) = match current {
        Current::Absent => (None, None),
        Current::Held(r) => (Some(*r), None),
        Current::Unreadable(v) => (None, Some(v)),
    };
    let live_commands = match &holder {
        Some(r) => commands::live(client, &parameter, r).await?,
        None => Vec::new(),
    };
    Ok(Status {
        app: config.app.clone(),
        locked: holder.is_some() || unreadable.is_some(),
        stale: holder.as_ref().is_some_and(|r| r.expired(now)) && live_commands.is_empty(),
        live_commands,
        holder,
        unreadable,
        parameter,
    })
}

/// What `hoist unlock` does with a lock whose run still has commands going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Breaking {
    /// Refuse (the default).
    #[default]
    Refuse,
    /// Cancel the commands, then break the lock.
    CancelCommands,
    /// Break the lock and leave the commands running.
    Force,
}

/// `hoist unlock`: deletes the lock; returns what it held (`None`: nothing was there). A lock
/// whose run still has commands going is refused unless `breaking` says otherwise.
pub async fn unlock(
    client: &Client,
    config: &Config,
    breaking: Breaking,
) -> Result<Option<Status>, LockError> {
    let before = status(client, config).await?;
    if !before.locked {
        return Ok(None);
    }
    if let Some(record) = &before.holder
        && !before.live_commands.is_empty()
    {
        match breaking {
            Breaking::Refuse => {
                return Err(LockError::Live {
                    parameter: before.parameter.clone(),
                    record: Box::new(record.clone()),
                    commands: before.live_commands.clone(),
                    unlocking: true,
                });
            }
            Breaking::CancelCommands => {
                commands::cancel(client, &before.parameter, &before.live_commands).await?;
            }
            Breaking::Force => {}
        }
    }
    // One delete at a time, never retried blind (see `Held::delete_ours`): a lost answer is
    // settled by reading the lock again.
    let p = &before.parameter;
    let was = before.holder.as_ref().map(|r| r.token.clone());
    let mut lost = None;
    for _ in 0..3 {
        lost = match store::delete_once(client, p).await? {
            store::Deleted::Done => return Ok(Some(before)),
            store::Deleted::Absent => return Ok(None),
            store::Deleted::Unknown(e) => Some(e),
        };
        match read(client, p).await? {
            // Still the lock it read: the delete did not go through.
            Current::Held(r) if Some(&r.token) == was.as_ref() => {}
            Current::Unreadable(v) if before.unreadable.as_ref() == Some(&v) => {}
            // Gone, or broken and taken again since (the new lock stays).
            _ => return Ok(Some(before)),
        }
    }
    Err(lost.unwrap_or_else(|| LockError::Api {
        operation: "DeleteParameter",
        parameter: p.clone(),
        message: "no answer".into(),
    }))
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

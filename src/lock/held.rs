//! A lock this hoist holds: its renewal, the commands its run sends, its release.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_ssm::Client;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::store::{self, Current, Put, put, read};
use super::{LockError, LockReport, Record, Timing, rfc3339};
use crate::domain::{Events, LockSpec};

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

pub(super) fn hold(
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
            next.expires = rfc3339(OffsetDateTime::from(crate::aws::aws_now()) + spec.lease);
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

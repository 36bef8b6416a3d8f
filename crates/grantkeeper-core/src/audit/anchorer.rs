//! When checkpoints are written: after events, on a schedule per open vault.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::keychain::Keychain;
use crate::model::now_ms;

use super::{anchor, anchor_due, AnchorOutcome, HistoryKey, ANCHOR_INTERVAL};

/// Schedules checkpoints for one open vault: [`ANCHOR_INTERVAL`] after the first event it wrote
/// that is not yet anchored (on a thread of its own, never on the hand-out path), and when the
/// vault closes (a command ends): always after events other than hand-outs, after hand-outs
/// only when the last checkpoint is older than the interval (so `grantkeeper token` without the
/// agent does not pay a keychain write per call).
pub(crate) struct Anchorer {
    target: Arc<AnchorTarget>,
    schedule: Arc<(Mutex<Schedule>, Condvar)>,
}

pub(super) struct AnchorTarget {
    pub(super) interval: Duration,
    pub(super) db_path: PathBuf,
    pub(super) lock_path: PathBuf,
    pub(super) keychain: Arc<dyn Keychain>,
    pub(super) key: HistoryKey,
    pub(super) vault: String,
}

#[derive(Default)]
pub(super) struct Schedule {
    /// When this vault first wrote an event not yet anchored.
    pub(super) dirty_since: Option<Instant>,
    /// Whether one of those was not a hand-out.
    pub(super) notable: bool,
    pub(super) started: bool,
    pub(super) stop: bool,
}

impl Anchorer {
    pub(crate) fn new(
        db_path: PathBuf,
        lock_path: PathBuf,
        keychain: Arc<dyn Keychain>,
        key: HistoryKey,
        vault: String,
    ) -> Self {
        Self {
            target: Arc::new(AnchorTarget {
                interval: ANCHOR_INTERVAL,
                db_path,
                lock_path,
                keychain,
                key,
                vault,
            }),
            schedule: Arc::default(),
        }
    }

    /// The same with another interval (tests).
    #[cfg(test)]
    pub(super) fn with_interval(mut self, interval: Duration) -> Self {
        Arc::get_mut(&mut self.target)
            .expect("not shared yet")
            .interval = interval;
        self
    }

    /// Notes that this vault appended events (`notable`: not only hand-outs).
    pub(crate) fn appended(&self, notable: bool) {
        let (lock, wake) = &*self.schedule;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        s.notable |= notable;
        if s.dirty_since.is_none() {
            s.dirty_since = Some(Instant::now());
        }
        if !s.started && !s.stop {
            s.started = true;
            let (target, schedule) = (self.target.clone(), self.schedule.clone());
            let spawned = std::thread::Builder::new()
                .name("history-anchor".into())
                .spawn(move || anchor_loop(&target, &schedule));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the usage history's checkpoint thread");
            }
        }
        wake.notify_all();
    }

    /// Writes a checkpoint now (agent lock and stop, app exit).
    pub(crate) fn now(&self, conn: &Connection) -> crate::Result<AnchorOutcome> {
        {
            // Cleared first: events appended meanwhile stay to anchor.
            let mut s = self.schedule.0.lock().unwrap_or_else(|p| p.into_inner());
            s.dirty_since = None;
            s.notable = false;
        }
        let t = &self.target;
        anchor(conn, &t.key, &*t.keychain, &t.vault, &t.lock_path)
    }

    /// Stops the thread; if this vault wrote events not yet anchored, writes a checkpoint when
    /// one was not a hand-out or the last checkpoint is older than [`ANCHOR_INTERVAL`].
    /// Failures are logged.
    pub(crate) fn close(&self, conn: &Connection) {
        let (dirty, notable) = {
            let (lock, wake) = &*self.schedule;
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            s.stop = true;
            wake.notify_all();
            (
                s.dirty_since.take().is_some(),
                std::mem::take(&mut s.notable),
            )
        };
        if !dirty {
            return;
        }
        let t = &self.target;
        if notable || anchor_due(conn, &t.key, now_ms()).unwrap_or(true) {
            log_outcome(anchor(conn, &t.key, &*t.keychain, &t.vault, &t.lock_path));
        }
    }
}

pub(super) fn log_outcome(out: crate::Result<AnchorOutcome>) {
    match out {
        Ok(AnchorOutcome::Refused(why)) => {
            tracing::warn!(%why, "the usage history was not anchored: run `grantkeeper audit verify`")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the usage history could not be anchored"),
    }
}

pub(super) fn anchor_loop(target: &AnchorTarget, schedule: &(Mutex<Schedule>, Condvar)) {
    let (lock, wake) = schedule;
    let mut conn = None;
    loop {
        {
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if s.stop {
                    return;
                }
                match s.dirty_since {
                    Some(since) if since.elapsed() >= target.interval => break,
                    Some(since) => {
                        let wait = target.interval.saturating_sub(since.elapsed());
                        s = wake
                            .wait_timeout(s, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    None => s = wake.wait(s).unwrap_or_else(|p| p.into_inner()),
                }
            }
            s.dirty_since = None;
            s.notable = false;
        }
        if conn.is_none() {
            match crate::db::connect(&target.db_path, false) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the usage history's checkpoint thread cannot open the vault");
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            let out = anchor(
                c,
                &target.key,
                &*target.keychain,
                &target.vault,
                &target.lock_path,
            );
            if out.is_err() {
                // Try again after another interval (the keychain may be locked for a while).
                let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                s.dirty_since.get_or_insert_with(Instant::now);
            }
            log_outcome(out);
            // Off the hand-out path, keep the usage profiles current for anomaly flags.
            if let Err(e) = super::rollup::catch_up(c) {
                tracing::warn!(error = %e, "the usage profiles could not be brought up to date");
            }
        }
    }
}

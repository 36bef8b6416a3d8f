//! What the agent holds (the open vault, or why it is locked) and when it locks itself: after an
//! idle time, and (see [`crate::desktop_lock`]) when the desktop says the user stepped away.
//!
//! A lock drops the agent's handle on the vault (the keys go once the last hand-out in flight
//! ends), records a `locked` event with its reason and anchors the usage history (except when
//! the keychain itself locked: writing the anchor then would ask to unlock it again).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::audit::{Actor, ActorKind, EventKind, NewEvent};
use crate::desktop_lock::LockReason;
use crate::oauth::loopback::CancelToken;
use crate::Vault;

/// The idle time after which the agent locks itself unless told otherwise: 15 minutes without
/// a hand-out.
pub const DEFAULT_IDLE_LOCK: Duration = Duration::from_secs(15 * 60);

/// When the agent locks itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockPolicy {
    /// Lock after this long without a hand-out; `None` never.
    pub idle: Option<Duration>,
    /// Lock when the keychain's default collection or the desktop session locks.
    pub desktop: bool,
}

impl Default for LockPolicy {
    fn default() -> Self {
        Self {
            idle: Some(DEFAULT_IDLE_LOCK),
            desktop: true,
        }
    }
}

struct Inner {
    vault: Option<Arc<Vault>>,
    locked_by: Option<LockReason>,
    last_use: Instant,
}

/// The agent's vault, or why it has none.
pub(super) struct Held(Mutex<Inner>);

impl Held {
    pub(super) fn open(vault: Vault) -> Self {
        Self(Mutex::new(Inner {
            vault: Some(Arc::new(vault)),
            locked_by: None,
            last_use: Instant::now(),
        }))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The vault for a hand-out (which counts as use), or why the agent is locked.
    pub(super) fn use_vault(&self) -> Result<Arc<Vault>, LockReason> {
        let mut inner = self.inner();
        match &inner.vault {
            Some(v) => {
                let v = v.clone();
                inner.last_use = Instant::now();
                Ok(v)
            }
            None => Err(inner.locked_by.unwrap_or(LockReason::User)),
        }
    }

    /// The vault if open, without counting as use (maintenance, status).
    pub(super) fn current(&self) -> Option<Arc<Vault>> {
        self.inner().vault.clone()
    }

    /// Why the agent is locked; `None` when it is open.
    pub(super) fn locked_by(&self) -> Option<LockReason> {
        let inner = self.inner();
        match inner.vault {
            Some(_) => None,
            None => Some(inner.locked_by.unwrap_or(LockReason::User)),
        }
    }

    /// Holds a freshly opened vault.
    pub(super) fn unlock(&self, vault: Vault) {
        let mut inner = self.inner();
        inner.vault = Some(Arc::new(vault));
        inner.locked_by = None;
        inner.last_use = Instant::now();
    }

    /// Locks for `reason` (recording it); false when the agent was locked already.
    pub(super) fn lock(&self, reason: LockReason, actor: &Actor) -> bool {
        let closing = {
            let mut inner = self.inner();
            let closing = inner.vault.take();
            if closing.is_some() {
                inner.locked_by = Some(reason);
            }
            closing
        };
        let Some(vault) = closing else { return false };
        tracing::info!(reason = reason.as_str(), "agent locked");
        let event = NewEvent::new(EventKind::Locked, actor)
            .detail(serde_json::json!({ "reason": reason.as_str() }));
        if let Err(e) = vault.record_events(&[event]) {
            tracing::warn!(error = %e, "the agent's lock could not be recorded");
        }
        if reason != LockReason::KeychainLocked {
            super::server::anchor_history(&vault);
        }
        true
    }

    /// Takes the vault as the agent stops.
    pub(super) fn close(&self) -> Option<Arc<Vault>> {
        self.inner().vault.take()
    }

    /// How long the open vault has gone without a hand-out; `None` when locked.
    fn idle_for(&self) -> Option<Duration> {
        let inner = self.inner();
        inner.vault.as_ref().map(|_| inner.last_use.elapsed())
    }
}

/// Locks the agent once it has gone `idle` without a hand-out, until `stop` is cancelled.
pub(super) fn spawn_idle_lock(
    held: Arc<Held>,
    idle: Duration,
    stop: CancelToken,
) -> std::thread::JoinHandle<()> {
    // Checked at a twentieth of the idle time (late by at most 5 %), at most twice a second.
    let every = (idle / 20).clamp(Duration::from_millis(20), Duration::from_millis(500));
    std::thread::spawn(move || {
        while !stop.is_cancelled() {
            if held.idle_for().is_some_and(|d| d >= idle) {
                held.lock(LockReason::Idle, &Actor::new(ActorKind::Agent));
            }
            std::thread::sleep(every);
        }
    })
}

//! The in-process refresh gate: threads of one process queue while one of them refreshes.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::Actor;
use crate::deadline::Deadline;
use crate::error::Result;
use crate::secret::HandOut;

/// Where threads of one process wait while one of them refreshes a connection. Waiters leave
/// their request at the gate; the refreshing thread records all their hand-outs in the same
/// transaction as the refresh (one commit for all) and leaves each its token.
#[derive(Debug, Default)]
pub(crate) struct RefreshGate {
    state: std::sync::Mutex<GateState>,
    done: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    refreshing: bool,
    waiters: Vec<Arc<Waiter>>,
}

/// A thread waiting for another thread's refresh.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub(crate) actor: Actor,
    pub(crate) min_valid_ms: i64,
    /// Filled by the refreshing thread when the new token satisfies `min_valid_ms`.
    pub(crate) token: std::sync::Mutex<Option<HandOut>>,
}

/// The right to refresh, held by one thread; dropping it wakes every waiter.
pub(crate) struct GateTurn<'g>(&'g RefreshGate);

/// What entering the gate gave.
pub(crate) enum Entry<'g> {
    /// This thread refreshes.
    Turn(GateTurn<'g>),
    /// Another thread refreshed and handed this one its token.
    Served(HandOut),
    /// Another thread's refresh is over without a token for this one: try again.
    Retry,
}

/// What a waiter reports when its deadline passes at the gate.
const WAITING_AT_GATE: &str = "another thread is refreshing this grant";

impl RefreshGate {
    pub(crate) fn enter(
        &self,
        actor: &Actor,
        min_valid_ms: i64,
        deadline: &Deadline,
    ) -> Result<Entry<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.refreshing {
            state.refreshing = true;
            return Ok(Entry::Turn(GateTurn(self)));
        }
        let me = Arc::new(Waiter {
            actor: actor.clone(),
            min_valid_ms,
            token: std::sync::Mutex::new(None),
        });
        state.waiters.push(me.clone());
        let waiting = |s: &mut GateState| s.waiters.iter().any(|w| Arc::ptr_eq(w, &me));
        // Woken every 50 ms to notice a cancel; the deadline bounds the wait.
        while waiting(&mut state) {
            if deadline.is_over() {
                // Leave the gate before the refreshing thread can serve this waiter.
                state.waiters.retain(|w| !Arc::ptr_eq(w, &me));
                return Err(deadline.error(Some(&WAITING_AT_GATE)));
            }
            let slice = deadline.remaining().min(Duration::from_millis(50));
            state = self
                .done
                .wait_timeout(state, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(state);
        let token = me.token.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(token.map_or(Entry::Retry, Entry::Served))
    }

    /// The waiters so far; they stay registered until the turn ends.
    pub(crate) fn waiters(&self) -> Vec<Arc<Waiter>> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiters
            .clone()
    }
}

impl Drop for GateTurn<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.refreshing = false;
        state.waiters.clear();
        drop(state);
        self.0.done.notify_all();
    }
}

//! One deadline for everything a hand-out or refresh does: waiting at the in-process gate and
//! the cross-process lock, every request to the provider and every back-off between retries.
//! A caller (a script's `grantkeeper token`, the window's "Refresh now") gets its answer or a
//! clear failure by then, never later. A deadline can also carry a [`CancelToken`], which the
//! window's Cancel button sets.
//!
//! A request already sent is bounded by the deadline too; when it is cut short, the provider
//! may still have acted on it (see the crash-safety notes in `grants/mod.rs`, step 2).

use std::time::{Duration, Instant};

use crate::error::Error;
use crate::oauth::loopback::CancelToken;

/// The default overall time for a hand-out or refresh: `grantkeeper token`'s `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most time a caller may allow (a bound on user input).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// When a call must be over, and whether its caller gave up already.
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Instant,
    allowed: Duration,
    cancel: Option<CancelToken>,
}

impl Default for Deadline {
    /// [`DEFAULT_TIMEOUT`] from now.
    fn default() -> Self {
        Self::within(DEFAULT_TIMEOUT)
    }
}

impl Deadline {
    /// `allowed` from now (at most [`MAX_TIMEOUT`]).
    pub fn within(allowed: Duration) -> Self {
        let allowed = allowed.min(MAX_TIMEOUT);
        Self {
            at: Instant::now() + allowed,
            allowed,
            cancel: None,
        }
    }

    /// The same deadline, also ended early by `cancel`.
    pub fn cancellable(mut self, cancel: CancelToken) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// The time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The instant it passes.
    pub fn instant(&self) -> Instant {
        self.at
    }

    /// Whether the time is up or the caller cancelled.
    pub fn is_over(&self) -> bool {
        self.is_cancelled() || self.remaining().is_zero()
    }

    fn is_cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(CancelToken::is_cancelled)
    }

    /// `Ok` while time is left; else the error to report, naming what was awaited (`last`, e.g.
    /// the failure of the last attempt).
    pub fn check(&self, last: Option<&dyn std::fmt::Display>) -> Result<(), Error> {
        if self.is_over() {
            Err(self.error(last))
        } else {
            Ok(())
        }
    }

    /// The error for a call this deadline ended.
    pub fn error(&self, last: Option<&dyn std::fmt::Display>) -> Error {
        if self.is_cancelled() {
            return Error::Cancelled;
        }
        Error::TimedOut {
            seconds: self.allowed.as_secs_f64(),
            last: last.map(ToString::to_string),
        }
    }

    /// Sleeps `d`, waking early to report a cancel or the deadline.
    pub(crate) fn sleep(&self, d: Duration) -> Result<(), Error> {
        let until = Instant::now() + d;
        loop {
            self.check(None)?;
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(self.remaining()).min(Duration::from_millis(20)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_and_cancels() {
        let d = Deadline::within(Duration::from_millis(30));
        assert!(d.check(None).is_ok());
        assert!(matches!(
            d.sleep(Duration::from_secs(5)),
            Err(Error::TimedOut { .. })
        ));
        let e = d.error(Some(&"the provider at id.example did not answer"));
        assert!(e.to_string().contains("id.example"), "{e}");

        let cancel = CancelToken::default();
        let d = Deadline::within(Duration::from_secs(60)).cancellable(cancel.clone());
        cancel.cancel();
        assert!(matches!(d.check(None), Err(Error::Cancelled)));
        assert!(Deadline::within(Duration::from_secs(86_400)).remaining() <= MAX_TIMEOUT);
    }
}

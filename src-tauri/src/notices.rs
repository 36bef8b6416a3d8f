//! Desktop notifications while the window runs: the core decides which conditions deserve one
//! and remembers what it already said ([`grantkeeper_core::notice`]); this sends them through
//! the notification plugin (the desktop's notification server).

use std::time::{Duration, Instant};

use grantkeeper_core::Vault;
use tauri::AppHandle;
use tauri_plugin_notification::NotificationExt;

/// The first look waits this long after the start: a look reads every grant and the usage
/// history, and the window's first loads come first.
const FIRST: Duration = Duration::from_secs(5);
/// The least time between two looks after changes (hand-outs can come many a second).
const AFTER_CHANGE: Duration = Duration::from_secs(3);
/// A look at least this often without changes: expiries come with time alone.
const EVERY: Duration = Duration::from_secs(60);

/// When the notices were last looked at.
pub struct Looks {
    started: Instant,
    last: Option<Instant>,
    pending: bool,
}

impl Default for Looks {
    fn default() -> Self {
        Self::starting_at(Instant::now())
    }
}

impl Looks {
    fn starting_at(started: Instant) -> Self {
        Self {
            started,
            last: None,
            pending: false,
        }
    }

    /// Whether to look at `now`, `changed` when the vault changed since the last call; a yes
    /// counts as the look.
    fn due(&mut self, now: Instant, changed: bool) -> bool {
        self.pending |= changed;
        let due = match self.last {
            None => now - self.started >= FIRST,
            Some(at) => (self.pending && now - at >= AFTER_CHANGE) || now - at >= EVERY,
        };
        if due {
            self.last = Some(now);
            self.pending = false;
        }
        due
    }

    /// Called by the watcher on each of its looks; `changed` when the vault changed since the
    /// last one. Sends the notices due, when it is time to look; says whether it looked.
    pub fn tick(&mut self, app: &AppHandle, vault: &Vault, changed: bool) -> bool {
        if !self.due(Instant::now(), changed) {
            return false;
        }
        match vault.take_notices() {
            Ok(notices) => {
                for n in notices {
                    let shown = app
                        .notification()
                        .builder()
                        .title(&n.summary)
                        .body(&n.body)
                        .show();
                    if let Err(e) = shown {
                        eprintln!("grantkeeper: a notification could not be shown: {e}");
                    }
                }
            }
            Err(e) => eprintln!("grantkeeper: the notifications could not be worked out: {e}"),
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_come_5_s_after_start_3_s_after_a_change_and_every_minute() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut looks = Looks::starting_at(t0);
        assert!(!looks.due(at(0), true), "not at start, even after a change");
        assert!(!looks.due(at(4), false));
        assert!(
            looks.due(at(5), false),
            "the first look, 5 s after the start"
        );
        assert!(
            !looks.due(at(6), true),
            "a change within 3 s of a look waits"
        );
        assert!(!looks.due(at(7), false));
        assert!(
            looks.due(at(8), false),
            "the change is looked at 3 s after the last look"
        );
        assert!(!looks.due(at(12), false), "no change: no look");
        assert!(!looks.due(at(67), false));
        assert!(
            looks.due(at(68), false),
            "a look every minute without changes"
        );
    }
}

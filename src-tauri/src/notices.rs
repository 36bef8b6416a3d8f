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
        Self {
            started: Instant::now(),
            last: None,
            pending: false,
        }
    }
}

impl Looks {
    /// Called by the watcher on each of its looks; `changed` when the vault changed since the
    /// last one. Sends the notices due, when it is time to look; says whether it looked.
    pub fn tick(&mut self, app: &AppHandle, vault: &Vault, changed: bool) -> bool {
        self.pending |= changed;
        let due = match self.last {
            None => self.started.elapsed() >= FIRST,
            Some(at) => (self.pending && at.elapsed() >= AFTER_CHANGE) || at.elapsed() >= EVERY,
        };
        if !due {
            return false;
        }
        self.last = Some(Instant::now());
        self.pending = false;
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

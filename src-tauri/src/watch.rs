//! Live updates: every change to the vault writes an event, so the newest event's sequence
//! number tells when anything changed, whoever changed it (this window, the CLI, the agent, a
//! background refresh). The watcher polls it and tells the window with `vault-changed`, and has
//! the notices due sent ([`crate::notices`]).

use std::time::Duration;

use tauri::{AppHandle, Emitter};

use crate::state::vault_if_open;

/// How often the watcher looks.
const EVERY: Duration = Duration::from_millis(700);

/// Starts the watcher thread.
pub fn start(app: AppHandle) {
    // The first look is taken at once, before the window can load or change anything: a change
    // made in the window's first moments (before a first look taken later) would go unseen.
    std::thread::spawn(move || {
        let mut last = None;
        let mut notices = crate::notices::Looks::default();
        loop {
            if let Some(seq) = vault_if_open(&app)
                .and_then(|v| v.recent_events(1).ok())
                .map(|newest| newest.first().map_or(0, |e| e.seq))
            {
                if last.is_some_and(|l| l != seq) {
                    let _ = app.emit("vault-changed", seq);
                }
                if last != Some(seq) {
                    crate::tray::refresh(&app);
                }
                notices.tick(&app, last.is_some_and(|l| l != seq));
                last = Some(seq);
            }
            std::thread::sleep(EVERY);
        }
    });
}

//! Live updates: every change to the vault writes an event, so the newest event's sequence
//! number tells when anything changed, whoever changed it (this window, the CLI, the agent, a
//! background refresh). The watcher polls it and tells the window with `vault-changed`, has the
//! notices due sent ([`crate::notices`]) and the tray's counts updated at the same pace.
//!
//! A team vault changes without any local event (it stops answering, it comes back): a second
//! watcher asks the core for the shared tenants' status every [`sharing_every`] and sends it
//! to the window with `sharing-checked`.

use std::time::Duration;

use tauri::{AppHandle, Emitter};

use crate::state::{seq_at_open, vault_if_open};

/// How often the watcher looks.
const EVERY: Duration = Duration::from_millis(700);

/// How often the team vaults are asked, unless `GRANTKEEPER_TEAM_CHECK_SECS` says otherwise.
const SHARING_EVERY: Duration = Duration::from_secs(30);

/// The interval between two team vault checks: `GRANTKEEPER_TEAM_CHECK_SECS` (whole seconds,
/// at least 1) or [`SHARING_EVERY`].
fn sharing_every() -> Duration {
    std::env::var("GRANTKEEPER_TEAM_CHECK_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s >= 1)
        .map_or(SHARING_EVERY, Duration::from_secs)
}

/// Starts the watcher threads.
pub fn start(app: AppHandle) {
    start_sharing(app.clone());
    // The vault opens at the window's first command, and the window can change it before the
    // watcher's first look: that look compares with the sequence number at the opening.
    std::thread::spawn(move || {
        let mut last = None;
        let mut notices = crate::notices::Looks::default();
        loop {
            let vault = vault_if_open(&app);
            if let Some((vault, seq)) =
                vault.and_then(|v| v.newest_event_seq().ok().map(|s| (v, s)))
            {
                let changed = last.unwrap_or_else(|| seq_at_open(&app)) != seq;
                if changed {
                    let _ = app.emit("vault-changed", seq);
                }
                // The notices and the tray's counts read every grant and the usage history:
                // both at the notices' pace, and the memory that took goes back afterwards.
                if notices.tick(&app, &vault, changed) {
                    crate::tray::refresh(&app);
                    crate::memory::trim_soon(vault);
                }
                last = Some(seq);
            }
            std::thread::sleep(EVERY);
        }
    });
}

/// Starts the team vault watcher: each check's result goes to the window (also an unchanged
/// one, so a window that asked in between never keeps an older answer).
fn start_sharing(app: AppHandle) {
    let every = sharing_every();
    std::thread::spawn(move || {
        let mut shared_before = false;
        loop {
            std::thread::sleep(every);
            let Some(sharing) = vault_if_open(&app).and_then(|v| v.tenant_sharing().ok()) else {
                continue;
            };
            // Nothing shared, now or before: nothing to say.
            if sharing.is_empty() && !shared_before {
                continue;
            }
            shared_before = !sharing.is_empty();
            let _ = app.emit("sharing-checked", sharing);
        }
    });
}

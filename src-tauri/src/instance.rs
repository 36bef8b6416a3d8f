//! One window per desktop session: a second start (from the menu, a terminal, `--demo`) brings
//! the running window to the front and tells it, instead of failing on the demo provider's port
//! or opening the vault twice.

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager};
use ts_rs::TS;

/// What the window is told when Grantkeeper was started again.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SecondInstance {
    /// The second start asked for demo mode.
    pub demo: bool,
}

/// Whether a D-Bus session bus address is known (the variable, or the runtime folder's `bus`):
/// the single-instance plugin cannot start without one.
pub fn session_bus_known() -> bool {
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some_and(|a| !a.is_empty())
        || std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|d| std::path::Path::new(&d).join("bus").exists())
}

/// Shows, raises and focuses the main window, and tells it why.
pub fn focus(app: &AppHandle, argv: &[String]) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
    let demo = argv.iter().skip(1).any(|a| a == "--demo");
    let _ = app.emit("second-instance", SecondInstance { demo });
}

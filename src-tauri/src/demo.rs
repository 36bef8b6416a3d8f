//! Demo mode (`--demo`): placeholder until the embedded provider lands.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether the app runs in demo mode.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Starts demo mode.
pub fn start() -> Result<(), String> {
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

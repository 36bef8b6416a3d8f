//! The app's state: the vault (opened on first use), running sign-ins, cancellable refreshes and
//! the clipboard; and the error type every command returns.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use grantkeeper_core::diagnosis::{VaultCause, VaultProblem};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::oauth::OAuthError;
use grantkeeper_core::{paths, Vault};
use serde::Serialize;
use tauri::{AppHandle, Manager};
use ts_rs::TS;

/// Shared by all commands.
#[derive(Default)]
pub struct AppState {
    // Set on the first use that succeeds (demo mode: with the demo provider started): a failure
    // is not kept, so Try again (or any later command) opens it afresh.
    vault: Mutex<Option<Arc<Vault>>>,
    /// The newest event's sequence number when the vault was last opened (see
    /// [`seq_at_open`]).
    seq_at_open: AtomicI64,
    /// Locked with "Lock now": the vault stays closed until the user unlocks it.
    locked: AtomicBool,
    /// The clipboard, kept open: on X11 the owner must live to serve a copied value.
    pub clipboard: Mutex<Option<arboard::Clipboard>>,
}

/// A command's failure, in plain words.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct CommandError {
    /// What went wrong and what to do next.
    pub message: String,
    /// The network or the provider could not be reached: the window shows it is offline.
    pub offline: bool,
    /// The user cancelled; nothing was stored. (A call that ran out of time is not cancelled:
    /// its message says so.)
    pub cancelled: bool,
}

impl CommandError {
    /// A failure that is not about the network.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            offline: false,
            cancelled: false,
        }
    }
}

impl From<grantkeeper_core::Error> for CommandError {
    fn from(e: grantkeeper_core::Error) -> Self {
        Self {
            offline: e.provider_unreachable(),
            cancelled: e.kind() == grantkeeper_core::ErrorKind::Cancelled,
            message: e.to_string(),
        }
    }
}

impl From<OAuthError> for CommandError {
    fn from(e: OAuthError) -> Self {
        grantkeeper_core::Error::from(e).into()
    }
}

/// The command result type.
pub type CmdResult<T> = Result<T, CommandError>;

/// The vault folder: `$GRANTKEEPER_HOME`, else the platform's data folder.
pub fn home() -> CmdResult<PathBuf> {
    paths::default_home()
        .ok_or_else(|| CommandError::new("cannot find a data folder: set GRANTKEEPER_HOME"))
}

/// SQLite page cache of the app's vault connections, in KiB (freed when the commands are quiet,
/// see `memory::trim_soon`).
pub const APP_DB_CACHE_KIB: u32 = 8 * 1024;

/// Opens the vault for this long-running process: a smaller page cache and no memory-mapped
/// reads than the short-lived CLI uses.
pub fn open_vault(home: &std::path::Path) -> Result<Vault, grantkeeper_core::Error> {
    let vault = Vault::open(home, Arc::new(OsKeychain::from_env()))?;
    vault.limit_memory(APP_DB_CACHE_KIB)?;
    Ok(vault)
}

/// Anchors the usage history in the keychain as the app quits, if the vault was opened (see
/// `grantkeeper_core::audit::anchor`).
pub fn anchor_history(app: &AppHandle) {
    if let Some(vault) = vault_if_open(app) {
        if let Err(e) = vault.anchor_history() {
            eprintln!("grantkeeper: the usage history could not be anchored: {e}");
        }
    }
}

/// Closes the vault (its keys go once the commands using it end) until [`unlock`]; the history
/// is anchored first.
pub fn lock(app: &AppHandle) {
    let state = app.state::<AppState>();
    state.locked.store(true, Ordering::Release);
    let closing = state.vault.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(vault) = closing {
        if let Err(e) = vault.anchor_history() {
            eprintln!("grantkeeper: the usage history could not be anchored: {e}");
        }
    }
}

/// Lets the next command open the vault again.
pub fn unlock(app: &AppHandle) {
    app.state::<AppState>()
        .locked
        .store(false, Ordering::Release);
}

/// Whether "Lock now" closed the vault.
pub fn is_locked(app: &AppHandle) -> bool {
    app.state::<AppState>().locked.load(Ordering::Acquire)
}

/// The vault, opened on first use (opening may wait for the keychain's unlock prompt).
pub fn vault(app: &AppHandle) -> CmdResult<Arc<Vault>> {
    open_or_diagnose(app).map_err(|p| CommandError::new(p.one_line()))
}

/// The vault if it is open already; never opens it (for pollers, which must not touch the
/// keychain again and again while it is unusable).
pub fn vault_if_open(app: &AppHandle) -> Option<Arc<Vault>> {
    app.state::<AppState>()
        .vault
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The newest event's sequence number when the vault was last opened. The vault opens at the
/// window's first command, so the watcher's first look at it can come after the window changed
/// it: that look compares with this number, not with nothing.
pub fn seq_at_open(app: &AppHandle) -> i64 {
    app.state::<AppState>().seq_at_open.load(Ordering::Acquire)
}

/// The vault, opened now if it is not yet; else why it cannot be, with the fix. One opening at
/// a time: callers meanwhile wait for its outcome.
pub fn open_or_diagnose(app: &AppHandle) -> Result<Arc<Vault>, VaultProblem> {
    let state = app.state::<AppState>();
    let mut slot = state.vault.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = &*slot {
        return Ok(v.clone());
    }
    if state.locked.load(Ordering::Acquire) {
        return Err(VaultProblem {
            cause: VaultCause::Locked,
            title: "Grantkeeper is locked".into(),
            fix: "Select Unlock to open the vault from the keychain again.".into(),
            detail: String::new(),
        });
    }
    let home = paths::default_home().ok_or_else(|| VaultProblem {
        cause: VaultCause::BadHome,
        title: "No data folder is known for this user".into(),
        fix: "Set GRANTKEEPER_HOME to a folder you own and can write, then try again.".into(),
        detail: String::new(),
    })?;
    let vault = if crate::demo::enabled() {
        crate::demo::start().map_err(|detail| VaultProblem {
            cause: VaultCause::Other,
            title: "The demo cannot start".into(),
            fix: "Quit whatever else uses the demo provider's port (another Grantkeeper demo started from another session?), then try again.".into(),
            detail,
        })?
    } else {
        open_vault(&home).map_err(|e| VaultProblem::of(&e, &home))?
    };
    let vault = Arc::new(vault);
    state
        .seq_at_open
        .store(vault.newest_event_seq().unwrap_or(0), Ordering::Release);
    *slot = Some(vault.clone());
    Ok(vault)
}

/// Runs `f` with the vault on the blocking pool (never on the window's main thread); the heap
/// pages its data used go back to the system once the commands are quiet again.
pub async fn with_vault<T: Send + 'static>(
    app: AppHandle,
    f: impl FnOnce(&Vault) -> CmdResult<T> + Send + 'static,
) -> CmdResult<T> {
    tauri::async_runtime::spawn_blocking(move || {
        let vault = vault(&app)?;
        let result = f(&vault);
        crate::memory::trim_soon(vault);
        result
    })
    .await
    .map_err(|e| CommandError::new(format!("internal error: {e}")))?
}

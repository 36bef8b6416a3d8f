//! Tauri commands. Each one runs its core call on the blocking pool (never on the window's main
//! thread) and returns plain-words errors; no command returns a secret.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use grantkeeper_core::keychain::{Keychain, OsKeychain};
use grantkeeper_core::model::{Connection, ConnectionId, TenantId, TenantSummary};
use grantkeeper_core::report::ConnectionDetail;
use grantkeeper_core::{paths, ConnectionFilter, Vault};
use serde::Serialize;
use tauri::{AppHandle, Manager};
use ts_rs::TS;

/// The vault, opened on first use (opening may wait for the keychain's unlock prompt).
#[derive(Default)]
pub struct AppState {
    vault: OnceLock<Result<Arc<Vault>, String>>,
}

/// Whether the vault opened, and where it lives.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct VaultStatus {
    /// The vault folder.
    pub home: String,
    /// Where secrets live ("the Secret Service (D-Bus)").
    pub keychain: String,
    /// Why the vault could not be opened, with what to do about it.
    pub error: Option<String>,
}

fn home() -> Result<PathBuf, String> {
    paths::default_home()
        .ok_or_else(|| "cannot find a data folder: set GRANTKEEPER_HOME".to_owned())
}

fn vault(app: &AppHandle) -> Result<Arc<Vault>, String> {
    app.state::<AppState>()
        .vault
        .get_or_init(|| {
            let keychain = Arc::new(OsKeychain::from_env());
            Vault::open(&home()?, keychain)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Runs `f` with the vault on the blocking pool.
async fn with_vault<T: Send + 'static>(
    app: AppHandle,
    f: impl FnOnce(&Vault) -> Result<T, grantkeeper_core::Error> + Send + 'static,
) -> Result<T, String> {
    tauri::async_runtime::spawn_blocking(move || {
        let vault = vault(&app)?;
        f(&vault).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("internal error: {e}"))?
}

/// Opens the vault if needed and reports its state.
#[tauri::command]
pub async fn vault_status(app: AppHandle) -> Result<VaultStatus, String> {
    let home = home()?.display().to_string();
    tauri::async_runtime::spawn_blocking(move || match vault(&app) {
        Ok(v) => VaultStatus {
            home,
            keychain: v.keychain_backend().to_owned(),
            error: None,
        },
        Err(e) => VaultStatus {
            home,
            keychain: OsKeychain::from_env().describe().to_owned(),
            error: Some(e),
        },
    })
    .await
    .map_err(|e| format!("internal error: {e}"))
}

/// Tenants with their connection counts.
#[tauri::command]
pub async fn list_tenants(app: AppHandle) -> Result<Vec<TenantSummary>, String> {
    with_vault(app, |v| v.list_tenants()).await
}

/// Connections, of one tenant or of all.
#[tauri::command]
pub async fn list_connections(
    app: AppHandle,
    tenant: Option<TenantId>,
) -> Result<Vec<Connection>, String> {
    with_vault(app, move |v| {
        v.connections(&ConnectionFilter {
            tenant,
            status: None,
        })
    })
    .await
}

/// One connection's scopes (meaning, risk), history, per-day counts and decoded claims.
#[tauri::command]
pub async fn connection_detail(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
) -> Result<ConnectionDetail, String> {
    with_vault(app, move |v| v.connection_detail(&tenant, &connection, 100)).await
}

//! Read-only commands: everything here works offline and returns no secret.

use grantkeeper_core::audit::{EventKind, HistoryFilter, UsageEvent};
use grantkeeper_core::catalog::{Catalog, Preset};
use grantkeeper_core::diagnosis::VaultProblem;
use grantkeeper_core::keychain::{Keychain, OsKeychain};
use grantkeeper_core::model::{ConnectionId, ProviderApp, TenantId, TenantSummary};
use grantkeeper_core::report::{ConnectionColumns, ConnectionDetail, GrantReportRow, ReviewFilter};
use grantkeeper_core::sharing::TenantSharing;
use grantkeeper_core::ConnectionFilter;
use serde::Serialize;
use tauri::AppHandle;
use ts_rs::TS;

use crate::state::{home, open_or_diagnose, with_vault, CmdResult, CommandError};

/// Whether the vault opened, and where it lives.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct VaultStatus {
    /// The vault folder.
    pub home: String,
    /// Where secrets live ("the Secret Service (D-Bus)").
    pub keychain: String,
    /// Why the vault could not be opened, with what to do about it (one line).
    pub error: Option<String>,
    /// The same, sorted by cause, for the error screen.
    pub problem: Option<VaultProblem>,
    /// The app runs with the embedded demo provider.
    pub demo: bool,
}

/// Opens the vault if needed (again after a failure: the window's Try again) and reports its
/// state.
#[tauri::command]
pub async fn vault_status(app: AppHandle) -> CmdResult<VaultStatus> {
    let home = home()?.display().to_string();
    let demo = crate::demo::enabled();
    tauri::async_runtime::spawn_blocking(move || match open_or_diagnose(&app) {
        Ok(v) => VaultStatus {
            home,
            keychain: v.keychain_backend().to_owned(),
            error: None,
            problem: None,
            demo,
        },
        Err(p) => VaultStatus {
            home,
            keychain: OsKeychain::from_env().describe().to_owned(),
            error: Some(p.one_line()),
            problem: Some(p),
            demo,
        },
    })
    .await
    .map_err(|e| CommandError::new(format!("internal error: {e}")))
}

/// Tenants with their connection counts and attention marks.
#[tauri::command]
pub async fn list_tenants(app: AppHandle) -> CmdResult<Vec<TenantSummary>> {
    with_vault(app, |v| Ok(v.list_tenants()?)).await
}

/// The connections list, of one tenant or of all: compact rows in column form (the detail view
/// loads the rest).
#[tauri::command]
pub async fn list_connections(
    app: AppHandle,
    tenant: Option<TenantId>,
) -> CmdResult<ConnectionColumns> {
    with_vault(app, move |v| {
        Ok(v.connection_rows(&ConnectionFilter {
            tenant,
            status: None,
        })?
        .into())
    })
    .await
}

/// One connection's scopes (meaning, risk), newest history, per-day counts and decoded claims.
#[tauri::command]
pub async fn connection_detail(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
) -> CmdResult<ConnectionDetail> {
    with_vault(app, move |v| {
        Ok(v.connection_detail(&tenant, &connection, 200)?)
    })
    .await
}

/// One connection's history, newest first, optionally of one kind and since a time.
#[tauri::command]
pub async fn connection_history(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    kind: Option<EventKind>,
    since: Option<i64>,
    limit: u32,
) -> CmdResult<Vec<UsageEvent>> {
    with_vault(app, move |v| {
        // The tenant scope proves the connection belongs to it.
        v.tenant(&tenant)?.connection(&connection)?;
        Ok(v.history(&HistoryFilter {
            connection: Some(connection),
            since,
            kind,
            limit: limit.min(5_000),
        })?)
    })
    .await
}

/// The catalog's presets, for the connect wizard.
#[tauri::command]
pub fn catalog() -> Vec<Preset> {
    Catalog::builtin().providers.clone()
}

/// A tenant's provider apps.
#[tauri::command]
pub async fn provider_apps(app: AppHandle, tenant: TenantId) -> CmdResult<Vec<ProviderApp>> {
    with_vault(app, move |v| Ok(v.tenant(&tenant)?.provider_apps()?)).await
}

/// The grants an admin review selects.
#[tauri::command]
pub async fn grant_review(app: AppHandle, filter: ReviewFilter) -> CmdResult<Vec<GrantReportRow>> {
    with_vault(app, move |v| Ok(v.grant_review(&filter)?)).await
}

/// Which tenants are shared, with which team and members, and whether the team vault answers
/// (computed by the core; each team vault asked within a few seconds).
#[tauri::command]
pub async fn tenant_sharing(app: AppHandle) -> CmdResult<Vec<TenantSharing>> {
    with_vault(app, |v| Ok(v.tenant_sharing()?)).await
}

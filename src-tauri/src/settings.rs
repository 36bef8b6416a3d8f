//! Commands that change the vault's set-up: what a provider app registers at its provider,
//! editing and deleting provider apps, renaming and deleting tenants. Each is a thin call into
//! the core, which records the change in the usage history.

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::grants::DeletedConnection;
use grantkeeper_core::model::TenantId;
use grantkeeper_core::provider_app::{
    registration, ProviderAppEdit, ProviderAppEdited, Registration, RegistrationDraft,
};
use tauri::AppHandle;

use crate::state::{with_vault, CmdResult};

fn settings_actor() -> Actor {
    Actor::new(ActorKind::App).with_hint(Some("settings".into()))
}

/// What a provider app with these settings must be registered with at its provider (no I/O).
#[tauri::command]
pub fn registration_values(draft: RegistrationDraft) -> CmdResult<Registration> {
    Ok(registration(&draft)?)
}

/// Changes a provider app's settings (a `config_changed` event names what changed).
#[tauri::command]
pub async fn edit_provider_app(
    app: AppHandle,
    tenant: TenantId,
    provider_app: String,
    edit: ProviderAppEdit,
) -> CmdResult<ProviderAppEdited> {
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?
            .edit_provider_app(&provider_app, edit, &settings_actor())?)
    })
    .await
}

/// Deletes a provider app; with `with_connections`, the connections that use it are revoked at
/// the provider and deleted first (each outcome returned).
#[tauri::command]
pub async fn delete_provider_app(
    app: AppHandle,
    tenant: TenantId,
    provider_app: String,
    with_connections: bool,
) -> CmdResult<Vec<DeletedConnection>> {
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?.delete_provider_app(
            &provider_app,
            with_connections,
            &settings_actor(),
        )?)
    })
    .await
}

/// Changes a tenant's display name (its slug stays).
#[tauri::command]
pub async fn rename_tenant(app: AppHandle, tenant: TenantId, name: String) -> CmdResult<()> {
    with_vault(app, move |v| {
        Ok(v.rename_tenant(&tenant, &name, &settings_actor())?)
    })
    .await
}

/// Deletes a tenant: its grants revoked at their providers (each outcome returned), then its
/// keys and data removed (crypto-shredding any copy).
#[tauri::command]
pub async fn delete_tenant(app: AppHandle, tenant: TenantId) -> CmdResult<Vec<DeletedConnection>> {
    with_vault(app, move |v| {
        Ok(v.revoke_and_delete_tenant(&tenant, &settings_actor())?)
    })
    .await
}

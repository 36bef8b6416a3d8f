//! The first run's welcome and the About box: where secrets will live (the keychain check's
//! result comes from `vault_status`), creating the first tenant, trying the demo provider, and
//! the one version of the workspace.

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::model::{ProviderApp, Tenant, TenantId};
use serde::Serialize;
use tauri::AppHandle;
use ts_rs::TS;

use crate::state::{with_vault, CmdResult, CommandError};

/// What the About box shows.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct AppInfo {
    /// The product's name.
    pub name: String,
    /// The workspace's version (the same as `grantkeeper --version` and the packages').
    pub version: String,
}

/// The app's name and version.
#[tauri::command]
pub fn app_info(app: AppHandle) -> AppInfo {
    let info = app.package_info();
    AppInfo {
        name: info.name.clone(),
        version: info.version.to_string(),
    }
}

fn welcome_actor() -> Actor {
    Actor::new(ActorKind::App).with_hint(Some("welcome".into()))
}

/// Creates a tenant (the welcome's first one); its slug comes from the name.
#[tauri::command]
pub async fn create_tenant(app: AppHandle, name: String) -> CmdResult<Tenant> {
    with_vault(app, move |v| {
        Ok(v.create_tenant(&name, None, "", &welcome_actor())?)
    })
    .await
}

/// Starts the embedded demo provider and gives `tenant` a provider app for it, to try a
/// connection offline; its grants end when the app quits.
#[tauri::command]
pub async fn add_demo_provider(app: AppHandle, tenant: TenantId) -> CmdResult<ProviderApp> {
    with_vault(app, move |v| {
        crate::demo::add_to_tenant(v, &tenant, &welcome_actor()).map_err(CommandError::new)
    })
    .await
}

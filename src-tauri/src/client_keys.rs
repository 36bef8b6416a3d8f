//! The public material a provider app registers at its provider (its public JWK set, its client
//! certificate), shown and exported through the native save dialog; the core computes it, and
//! no private key ever reaches the window.

use grantkeeper_core::model::TenantId;
use grantkeeper_core::provider_app::ClientPublicMaterial;
use serde::Deserialize;
use tauri::AppHandle;
use tauri_plugin_dialog::DialogExt;
use ts_rs::TS;

use crate::export::ask_save_path;
use crate::state::{with_vault, CmdResult, CommandError};

/// Which public material to export.
#[derive(Debug, Clone, Copy, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum PublicMaterialKind {
    /// The public JWK set (JSON).
    Jwks,
    /// The client certificate (PEM).
    Certificate,
}

/// A provider app's public JWK set and client certificate, for those it has.
#[tauri::command]
pub async fn client_public_material(
    app: AppHandle,
    tenant: TenantId,
    provider_app: String,
) -> CmdResult<ClientPublicMaterial> {
    with_vault(app, move |v| {
        Ok(v.tenant(&tenant)?.client_public_material(&provider_app)?)
    })
    .await
}

/// Asks where to save a provider app's public JWK set or certificate, then writes it there.
/// `None`: the user cancelled; nothing was written.
#[tauri::command]
pub async fn export_client_public_material(
    app: AppHandle,
    tenant: TenantId,
    provider_app: String,
    kind: PublicMaterialKind,
) -> CmdResult<Option<String>> {
    let name = provider_app.clone();
    let material = with_vault(app.clone(), move |v| {
        let t = v.tenant(&tenant)?;
        let app_name = t.provider_app(&provider_app)?.name;
        Ok((app_name, t.client_public_material(&provider_app)?))
    })
    .await?;
    let (app_name, material) = material;
    let (text, file, filter, title) = match kind {
        PublicMaterialKind::Jwks => (
            material.jwks,
            format!("{app_name}-public-jwks.json"),
            ("JSON", "json"),
            "Save the public key (JWK set)",
        ),
        PublicMaterialKind::Certificate => (
            material.certificate_pem,
            format!("{app_name}-certificate.pem"),
            ("PEM", "pem"),
            "Save the client certificate",
        ),
    };
    let text = text.ok_or_else(|| {
        CommandError::new(format!(
            "provider app {name} has no such public material to export"
        ))
    })?;
    let chosen =
        tauri::async_runtime::spawn_blocking(move || ask_save_path(&app, title, &file, filter))
            .await
            .map_err(|e| CommandError::new(format!("internal error: {e}")))?;
    let Some(path) = chosen else {
        return Ok(None);
    };
    std::fs::write(&path, text.as_bytes()).map_err(|e| {
        CommandError::new(format!(
            "cannot write {}: {e}; choose another folder",
            path.display()
        ))
    })?;
    Ok(Some(path.display().to_string()))
}

/// Asks for a key or certificate file (the native open dialog, PEM files first); its path, or
/// `None` when cancelled. Only the path reaches the window: the file is read when the app is
/// added ([`crate::actions::add_provider_app`]).
#[tauri::command]
pub async fn choose_key_file(app: AppHandle, title: String) -> CmdResult<Option<String>> {
    tauri::async_runtime::spawn_blocking(move || {
        let mut dialog = app
            .dialog()
            .file()
            .set_title(&title)
            .add_filter("PEM", &["pem", "key", "crt"]);
        if let Some(dir) = dirs::home_dir() {
            dialog = dialog.set_directory(dir);
        }
        dialog
            .blocking_pick_file()
            .and_then(|f| f.into_path().ok())
            .map(|p| p.display().to_string())
    })
    .await
    .map_err(|e| CommandError::new(format!("internal error: {e}")))
}

//! The tray icon (a StatusNotifierItem through libayatana-appindicator on Linux): how many
//! connections need attention and how many anomaly flags are raised (both as the core computes
//! them), "Open Grantkeeper", and "Lock now", which locks the hand-out agent and the window.

use grantkeeper_core::agent::{AgentClient, Request};
use grantkeeper_core::{paths, ConnectionFilter};
use tauri::menu::{Menu, MenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Emitter, Manager, Wry};

use crate::state::{vault_if_open, CmdResult, CommandError};

/// The menu's counts line, updated as the vault changes.
pub struct Counts(MenuItem<Wry>);

/// Builds the tray icon.
pub fn start(app: &AppHandle) -> tauri::Result<()> {
    let counts = MenuItem::with_id(app, "counts", "Vault not open", false, None::<&str>)?;
    let open = MenuItem::with_id(app, "open", "Open Grantkeeper", true, None::<&str>)?;
    let lock = MenuItem::with_id(app, "lock", "Lock now", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&counts, &open, &lock])?;
    let mut tray = TrayIconBuilder::with_id("grantkeeper")
        .tooltip("Grantkeeper")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show_window(app),
            "lock" => lock_all(app),
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(Counts(counts));
    refresh(app);
    Ok(())
}

fn show_window(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}

/// Locks the agent (over its socket, as `grantkeeper agent lock` does) and the window's vault,
/// and tells the window.
fn lock_all(app: &AppHandle) {
    if let Some(mut agent) = paths::default_home().and_then(|h| AgentClient::connect(&h)) {
        if let Err(e) = agent.call(&Request::Lock, std::time::Duration::from_secs(10)) {
            eprintln!("grantkeeper: the hand-out agent did not lock: {e}");
        }
    }
    crate::state::lock(app);
    refresh(app);
    let _ = app.emit("vault-locked", ());
}

/// Sets the counts line from the open vault ("Locked" while it is closed).
pub fn refresh(app: &AppHandle) {
    let Some(counts) = app.try_state::<Counts>() else {
        return;
    };
    let text = match vault_if_open(app) {
        None if crate::state::is_locked(app) => "Locked".to_owned(),
        None => "Vault not open".to_owned(),
        Some(vault) => {
            let attention: u32 = vault
                .list_tenants()
                .map(|ts| ts.iter().map(|t| t.needs_attention).sum())
                .unwrap_or(0);
            let flags = vault
                .anomalies(&ConnectionFilter::default())
                .map_or(0, |a| a.len());
            format!(
                "{attention} need{} attention · {flags} anomaly flag{}",
                if attention == 1 { "s" } else { "" },
                if flags == 1 { "" } else { "s" }
            )
        }
    };
    let _ = counts.0.set_text(&text);
    if let Some(tray) = app.tray_by_id("grantkeeper") {
        let _ = tray.set_tooltip(Some(format!("Grantkeeper: {text}")));
    }
}

/// Unlock on the locked screen: the window may open the vault again, and the agent opens it
/// from the keychain too.
#[tauri::command]
pub async fn unlock_vault(app: AppHandle) -> CmdResult<()> {
    tauri::async_runtime::spawn_blocking(move || {
        crate::state::unlock(&app);
        let home = paths::default_home();
        if let Some(mut agent) = home.as_deref().and_then(AgentClient::connect) {
            let answer = agent
                .call(&Request::Unlock, std::time::Duration::from_secs(300))
                .map_err(|e| {
                    CommandError::new(format!("the hand-out agent did not answer: {e}"))
                })?;
            if !answer.ok {
                return Err(CommandError::new(answer.error.unwrap_or_default()));
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| CommandError::new(format!("internal error: {e}")))?
}

//! Grantkeeper's desktop shell: opens the vault and exposes thin commands over the core.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;

use std::sync::Arc;

use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::{agent, paths, Vault};

/// Runs the hand-out agent while the window is open, unless one already serves this vault.
fn start_agent() -> CancelToken {
    let stop = CancelToken::default();
    if let Some(home) = paths::default_home() {
        let token = stop.clone();
        std::thread::spawn(move || {
            let opener_home = home.clone();
            let opener: Arc<agent::Opener> =
                Arc::new(move || Vault::open(&opener_home, Arc::new(OsKeychain::from_env())));
            if let Err(e) = agent::serve(&home, opener, &token) {
                eprintln!("grantkeeper: the hand-out agent is not running: {e}");
            }
        });
    }
    stop
}

fn main() {
    let agent = start_agent();
    tauri::Builder::default()
        .manage(commands::AppState::default())
        .invoke_handler(tauri::generate_handler![
            commands::vault_status,
            commands::list_tenants,
            commands::list_connections,
            commands::connection_detail
        ])
        .run(tauri::generate_context!())
        .expect("Grantkeeper's window failed to start");
    agent.cancel();
}

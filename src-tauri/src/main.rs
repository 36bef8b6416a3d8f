//! Grantkeeper's desktop shell: opens the vault and exposes thin commands over the core.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod commands;

fn main() {
    tauri::Builder::default()
        .manage(commands::AppState::default())
        .invoke_handler(tauri::generate_handler![
            commands::vault_status,
            commands::list_tenants,
            commands::list_connections
        ])
        .run(tauri::generate_context!())
        .expect("Grantkeeper's window failed to start");
}

//! Grantkeeper's desktop shell: opens the vault and exposes thin commands over the core.
//! `--demo` starts an embedded demo identity provider on 127.0.0.1 and a demo tenant.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod actions;
mod ask;
mod client_keys;
mod demo;
mod export;
mod flows;
mod instance;
mod memory;
mod notices;
mod operations;
mod proxies;
mod settings;
mod state;
mod tray;
mod views;
mod watch;
mod webkit;
mod welcome;

use std::process::ExitCode;
use std::sync::Arc;

use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::{agent, paths};

/// Runs the hand-out agent while the window is open, unless one already serves this vault.
fn start_agent(stop: &CancelToken) {
    if let Some(home) = paths::default_home() {
        let token = stop.clone();
        std::thread::spawn(move || {
            let opener_home = home.clone();
            let opener: Arc<agent::Opener> = Arc::new(move || state::open_vault(&opener_home));
            if let Err(e) = agent::serve(&home, opener, &token) {
                eprintln!("grantkeeper: the hand-out agent is not running: {e}");
            }
        });
    }
}

fn main() -> ExitCode {
    memory::tune();
    webkit::configure();
    let demo = std::env::args().any(|a| a == "--demo");
    if demo {
        demo::enable();
        demo::use_demo_home();
    }
    if let Some(home) = paths::default_home() {
        grantkeeper_core::logging::init(&home);
    }
    // Started once this is the only instance (in setup, after the single-instance check).
    let agent = CancelToken::default();
    let agent_stop = agent.clone();
    let mut builder = tauri::Builder::default();
    // First: a second start hands over to the running window and exits before anything else
    // (the demo provider's port, the vault) is touched. It needs a session bus; without one the
    // window starts and its error screen says what is missing.
    if instance::session_bus_known() {
        builder = builder.plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            instance::focus(app, &argv);
        }));
    }
    let questions = Arc::new(ask::Questions::default());
    let asking = questions.clone();
    let built = builder
        .plugin(tauri_plugin_dialog::init())
        .manage(questions)
        .plugin(tauri_plugin_notification::init())
        .manage(state::AppState::default())
        .manage(flows::Flows::default())
        .manage(operations::Operations::default())
        .manage(proxies::Proxies::default())
        .setup(move |app| {
            start_agent(&agent_stop);
            ask::start(app.handle().clone(), asking.clone(), &agent_stop);
            watch::start(app.handle().clone());
            // The tray loads libayatana-appindicator3 (a dependency of the package) at run time.
            if let Err(e) = tray::start(app.handle()) {
                eprintln!("grantkeeper: no tray icon: {e}");
            }
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            views::vault_status,
            views::list_tenants,
            views::list_connections,
            views::connection_detail,
            views::connection_history,
            views::catalog,
            views::provider_apps,
            views::grant_review,
            actions::refresh_connection,
            operations::cancel_refresh,
            actions::copy_access_token,
            actions::reveal_access_token,
            actions::revoke_connection,
            actions::revoke_many,
            actions::delete_connection,
            actions::introspect_connection,
            actions::add_provider_app,
            export::export_review,
            actions::open_provider_link,
            flows::start_connect,
            flows::start_reconsent,
            flows::cancel_connect,
            flows::paste_redirect,
            welcome::app_info,
            welcome::create_tenant,
            welcome::add_demo_provider,
            settings::registration_values,
            settings::edit_provider_app,
            settings::delete_provider_app,
            settings::rename_tenant,
            settings::delete_tenant,
            views::tenant_sharing,
            tray::unlock_vault,
            client_keys::client_public_material,
            client_keys::export_client_public_material,
            client_keys::choose_key_file,
            ask::answer_hand_out,
            proxies::start_proxy,
            proxies::stop_proxy,
            proxies::proxy_status,
            proxies::reveal_proxy_bearer,
        ])
        .build(tauri::generate_context!());
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            eprintln!("grantkeeper: the window cannot start: {e}");
            agent.cancel();
            return ExitCode::FAILURE;
        }
    };
    app.run(|app, event| {
        if let tauri::RunEvent::Exit = event {
            proxies::stop_all(app);
            state::anchor_history(app);
        }
    });
    agent.cancel();
    ExitCode::SUCCESS
}

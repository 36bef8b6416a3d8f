fn main() {
    // Only the commands listed here exist for the window, and capabilities/ grants them.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "vault_status",
            "list_tenants",
            "list_connections",
            "connection_detail",
            "connection_history",
            "catalog",
            "provider_apps",
            "grant_review",
            "refresh_connection",
            "cancel_refresh",
            "copy_access_token",
            "reveal_access_token",
            "revoke_connection",
            "revoke_many",
            "delete_connection",
            "introspect_connection",
            "add_provider_app",
            "export_review",
            "open_provider_link",
            "start_connect",
            "start_reconsent",
            "cancel_connect",
            "paste_redirect",
            "app_info",
            "create_tenant",
            "add_demo_provider",
        ]),
    ))
    .expect("tauri build script");
}

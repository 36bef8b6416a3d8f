fn main() {
    // Only the commands listed here exist for the window, and capabilities/ grants them.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "vault_status",
            "list_tenants",
            "list_connections",
            "connection_detail",
        ]),
    ))
    .expect("tauri build script");
}

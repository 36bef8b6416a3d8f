//! `--version` of both programs prints the workspace's one version (the packages and the app's
//! About box show the same), through the front binary's hand-over to `grantkeeper-full` too.

use std::process::Command;

#[test]
fn both_programs_print_the_workspace_version() {
    let expected = format!("grantkeeper {}\n", env!("CARGO_PKG_VERSION"));
    for bin in [
        env!("CARGO_BIN_EXE_grantkeeper"),
        env!("CARGO_BIN_EXE_grantkeeper-full"),
    ] {
        for flag in ["--version", "-V"] {
            let out = Command::new(bin)
                .arg(flag)
                .env("GRANTKEEPER_HOME", "/nonexistent/grantkeeper-version-test")
                .output()
                .unwrap();
            assert!(out.status.success(), "{bin} {flag}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                expected,
                "{bin} {flag}"
            );
            assert!(out.stderr.is_empty(), "{bin} {flag}: {out:?}");
        }
    }
}

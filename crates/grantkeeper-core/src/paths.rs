//! Where the vault lives.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Environment variable that overrides the vault folder (separate profiles, tests).
pub const HOME_ENV: &str = "GRANTKEEPER_HOME";

/// The vault folder: `$GRANTKEEPER_HOME`, else the platform's data folder
/// (`~/.local/share/grantkeeper` on Linux).
pub fn default_home() -> Option<PathBuf> {
    match std::env::var_os(HOME_ENV) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => dirs::data_dir().map(|d| d.join("grantkeeper")),
    }
}

/// The socket named `stem` (`agent`, `ask`) of the vault in `home`: in this user's runtime
/// folder (`$XDG_RUNTIME_DIR/grantkeeper/STEM-<hash of home>.sock`), else in the vault folder.
pub fn socket(home: &Path, stem: &str) -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => {
            let digest = Sha256::digest(home.to_string_lossy().as_bytes());
            let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            PathBuf::from(runtime)
                .join("grantkeeper")
                .join(format!("{stem}-{name}.sock"))
        }
        None => home.join(format!("{stem}.sock")),
    }
}

//! Where the vault lives.

use std::path::PathBuf;

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

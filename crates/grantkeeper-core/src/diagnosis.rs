//! Why a vault could not be opened, sorted by what the user must do: the cause, the fix and the
//! underlying detail. The CLI prints it as one line, the window as an error screen.

use std::path::Path;

use serde::Serialize;
use ts_rs::TS;

use crate::error::Error;
use crate::keychain::KeychainError;
use crate::paths::HOME_ENV;

/// What keeps the vault closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum VaultCause {
    /// No D-Bus session bus: not inside a desktop session.
    NoSessionBus,
    /// A session bus, but no Secret Service (keyring daemon) on it.
    NoSecretService,
    /// The keyring is locked (or its unlock prompt was dismissed).
    KeychainLocked,
    /// The keychain did not answer in time: usually an unlock prompt is waiting.
    KeychainTimedOut,
    /// The keychain works but holds no master key for this vault.
    MasterKeyMissing,
    /// The vault folder (`$GRANTKEEPER_HOME` or the default) cannot be used.
    BadHome,
    /// Anything else.
    Other,
    /// Locked on request ("Lock now"): unlocking opens it again from the keychain.
    Locked,
}

/// A vault that did not open: what is wrong, what to do, and the error behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct VaultProblem {
    /// The cause, for front ends that show each differently.
    pub cause: VaultCause,
    /// What is wrong, in a few words ("No Secret Service is running").
    pub title: String,
    /// What to do about it, then try again.
    pub fix: String,
    /// The underlying error, for a bug report; never a secret.
    pub detail: String,
}

impl VaultProblem {
    /// Sorts `e`, the failure to open the vault in `home`.
    pub fn of(e: &Error, home: &Path) -> Self {
        let detail = match e {
            Error::Keychain(
                KeychainError::NoSessionBus { detail }
                | KeychainError::NoSecretService { detail }
                | KeychainError::Locked { detail }
                | KeychainError::Other { detail },
            ) => detail.clone(),
            _ => e.to_string(),
        };
        let (cause, title, fix) = match e {
            Error::Keychain(k) => keychain(k),
            Error::MasterKeyMissing { backend, .. } => (
                VaultCause::MasterKeyMissing,
                format!("The vault's key is not in {backend}"),
                format!(
                    "The keychain was reset or belongs to another user. Restore it, or move {} aside to start a new vault.",
                    home.display()
                ),
            ),
            Error::Io { .. } | Error::Database(_) => bad_home(home),
            _ => (
                VaultCause::Other,
                "The vault could not be opened".to_owned(),
                "Read the detail below; if it persists, report it with that text.".to_owned(),
            ),
        };
        Self {
            cause,
            title,
            fix,
            detail,
        }
    }

    /// One line for a terminal: the title, the fix, and the detail in brackets.
    pub fn one_line(&self) -> String {
        let mut line = format!(
            "{}. {}",
            self.title.trim_end_matches('.'),
            self.fix.trim_end_matches('.')
        );
        if !self.detail.is_empty() {
            line.push_str(&format!(" ({})", self.detail));
        }
        line
    }
}

fn keychain(k: &KeychainError) -> (VaultCause, String, String) {
    match k {
        KeychainError::NoSessionBus { .. } => (
            VaultCause::NoSessionBus,
            "No D-Bus session bus: the keychain (Secret Service) cannot be reached".to_owned(),
            "Run Grantkeeper inside a desktop session (or start one with `dbus-run-session`), then try again.".to_owned(),
        ),
        KeychainError::NoSecretService { .. } => (
            VaultCause::NoSecretService,
            "No Secret Service is running".to_owned(),
            "Start a keyring daemon: gnome-keyring (`gnome-keyring-daemon --start --components=secrets`) or KWallet, then try again.".to_owned(),
        ),
        KeychainError::Locked { .. } => (
            VaultCause::KeychainLocked,
            "The keychain is locked".to_owned(),
            "Unlock it with your login password (the keyring's prompt, Seahorse, or `gnome-keyring-daemon --unlock`), then try again.".to_owned(),
        ),
        KeychainError::TimedOut { seconds } => (
            VaultCause::KeychainTimedOut,
            format!("The keyring did not answer within {seconds} s"),
            "It is probably locked and waiting for its password prompt: answer the prompt (or unlock it in Seahorse), then try again.".to_owned(),
        ),
        KeychainError::Other { .. } => (
            VaultCause::Other,
            "The keychain failed".to_owned(),
            "Check that the keyring daemon works (`secret-tool search --all service grantkeeper`), then try again.".to_owned(),
        ),
    }
}

/// The vault folder cannot be used: say which variable (or default) chose it and what is wrong.
fn bad_home(home: &Path) -> (VaultCause, String, String) {
    let from_env = std::env::var_os(HOME_ENV).is_some_and(|v| !v.is_empty());
    let which = if from_env {
        format!("{HOME_ENV}={}", home.display())
    } else {
        format!("the vault folder {}", home.display())
    };
    let wrong = match std::fs::metadata(home) {
        Ok(m) if !m.is_dir() => "is not a folder".to_owned(),
        Ok(_) => "cannot be written or read".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "does not exist and cannot be created".to_owned()
        }
        Err(e) => format!("cannot be used ({e})"),
    };
    let fix = if from_env {
        format!("Set {HOME_ENV} to a folder you own and can write, or unset it to use the default, then try again.")
    } else {
        "Make the folder yours and writable (or set GRANTKEEPER_HOME to another folder), then try again.".to_owned()
    };
    (VaultCause::BadHome, format!("{which} {wrong}"), fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_keychain_failure_names_its_cause_and_fix() {
        let cases = [
            (
                KeychainError::NoSecretService { detail: "x".into() },
                VaultCause::NoSecretService,
                "gnome-keyring",
            ),
            (
                KeychainError::NoSessionBus { detail: "x".into() },
                VaultCause::NoSessionBus,
                "dbus-run-session",
            ),
            (
                KeychainError::Locked { detail: "x".into() },
                VaultCause::KeychainLocked,
                "Unlock",
            ),
            (
                KeychainError::TimedOut { seconds: 5 },
                VaultCause::KeychainTimedOut,
                "prompt",
            ),
        ];
        for (k, cause, fix) in cases {
            let p = VaultProblem::of(&Error::Keychain(k), Path::new("/v"));
            assert_eq!(p.cause, cause);
            assert!(p.fix.contains(fix), "{p:?}");
            assert!(p.one_line().contains(&p.detail), "{}", p.one_line());
        }
    }

    #[test]
    fn a_vault_folder_that_is_a_file_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let e = Error::io(
            file.join("vault.db"),
            std::io::Error::other("Not a directory"),
        );
        let p = VaultProblem::of(&e, &file);
        assert_eq!(p.cause, VaultCause::BadHome);
        assert!(p.title.ends_with("is not a folder"), "{p:?}");
        assert!(p.title.contains(&file.display().to_string()), "{p:?}");
    }
}

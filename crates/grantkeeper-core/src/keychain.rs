//! The OS keychain: the Secret Service on Linux (gnome-keyring, KWallet), the macOS Keychain,
//! the Windows Credential Manager. Holds the vault's master keys and every refresh token. There
//! is no fallback: when the keychain cannot be used, operations fail with a [`KeychainError`]
//! that says how to fix it.

#[cfg(not(target_os = "linux"))]
#[path = "keychain/native.rs"]
mod backend;
#[cfg(target_os = "linux")]
#[path = "keychain/secret_service.rs"]
mod backend;

use std::sync::mpsc;
use std::time::Duration;

use crate::secret::SecretText;

/// Service name under which Grantkeeper's keychain entries are stored.
pub const SERVICE: &str = "grantkeeper";

/// The name of one keychain entry. Names hold identifiers only, never secrets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryName {
    service: String,
    user: String,
}

impl EntryName {
    /// The entry holding a vault's master key.
    pub fn master_key(vault: &str) -> Self {
        Self::new(format!("vault/{vault}/master-key"))
    }

    /// The entry holding the usage history's latest checkpoint (see [`crate::audit::anchor`]).
    pub fn history_checkpoint(vault: &str) -> Self {
        Self::new(format!("vault/{vault}/history-checkpoint"))
    }

    /// The entry holding one connection's refresh token, namespaced by tenant.
    pub fn refresh_token(vault: &str, tenant: &str, connection: &str) -> Self {
        Self::new(format!(
            "vault/{vault}/tenant/{tenant}/connection/{connection}/refresh-token"
        ))
    }

    /// The entry holding one provider app's private key (`private_key_jwt`).
    pub fn client_key(vault: &str, tenant: &str, app: &str) -> Self {
        Self::new(format!(
            "vault/{vault}/tenant/{tenant}/provider-app/{app}/private-key"
        ))
    }

    fn new(user: String) -> Self {
        Self {
            service: SERVICE.to_owned(),
            user,
        }
    }

    /// The service attribute.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The account attribute (`username` in the Secret Service).
    pub fn user(&self) -> &str {
        &self.user
    }
}

/// Why the keychain could not be used. Each message says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeychainError {
    /// No D-Bus session bus to reach the Secret Service on.
    #[error("no D-Bus session bus: the OS keychain (Secret Service) cannot be reached. Run Grantkeeper inside a desktop session, or start one with `dbus-run-session` ({detail})")]
    NoSessionBus {
        /// The underlying error text.
        detail: String,
    },
    /// A session bus exists but no Secret Service answers on it.
    #[error("no Secret Service on the D-Bus session bus: install and start a keyring daemon such as gnome-keyring (`gnome-keyring-daemon --start --components=secrets`) or KWallet ({detail})")]
    NoSecretService {
        /// The underlying error text.
        detail: String,
    },
    /// The keyring is locked and was not unlocked.
    #[error("the OS keychain is locked: unlock it (log in to your desktop session, or run `gnome-keyring-daemon --unlock`) and try again ({detail})")]
    Locked {
        /// The underlying error text.
        detail: String,
    },
    /// The keychain did not answer in time, usually because an unlock prompt is waiting.
    #[error("the OS keychain did not answer within {seconds} s: it is probably locked and waiting for its password prompt. Unlock it and try again")]
    TimedOut {
        /// The time waited.
        seconds: u64,
    },
    /// Any other keychain failure.
    #[error("the OS keychain failed: {detail}")]
    Other {
        /// The underlying error text.
        detail: String,
    },
}

/// A store for small secrets keyed by [`EntryName`].
pub trait Keychain: Send + Sync {
    /// Reads an entry; `None` when it does not exist.
    fn get(&self, name: &EntryName) -> Result<Option<SecretText>, KeychainError>;
    /// Creates or replaces an entry.
    fn set(&self, name: &EntryName, value: &SecretText) -> Result<(), KeychainError>;
    /// Deletes an entry; deleting a missing entry succeeds.
    fn delete(&self, name: &EntryName) -> Result<(), KeychainError>;
    /// Where the secrets live, for the user ("Secret Service (D-Bus)").
    fn describe(&self) -> &'static str;
}

/// The platform keychain, with a timeout on every call so an unlock
/// prompt nobody answers cannot hang the caller.
#[derive(Debug, Clone)]
pub struct OsKeychain {
    timeout: Duration,
}

impl OsKeychain {
    /// Default time to wait for the keychain.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Environment variable that sets the timeout in seconds.
    pub const TIMEOUT_ENV: &'static str = "GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS";

    /// A keychain whose calls fail with [`KeychainError::TimedOut`] after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// A keychain with the timeout from `GRANTKEEPER_KEYCHAIN_TIMEOUT_SECS`, else the default.
    pub fn from_env() -> Self {
        let timeout = std::env::var(Self::TIMEOUT_ENV)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(Self::DEFAULT_TIMEOUT);
        Self::new(timeout)
    }

    fn call<T: Send + 'static>(
        &self,
        name: &EntryName,
        op: impl FnOnce(&EntryName) -> Result<T, KeychainError> + Send + 'static,
    ) -> Result<T, KeychainError> {
        tracing::debug!(entry = %name.user, "keychain call");
        let name = name.clone();
        let (tx, rx) = mpsc::sync_channel(1);
        // A blocked call (an unanswered unlock prompt) keeps its thread; the caller moves on.
        std::thread::Builder::new()
            .name("keychain".into())
            .spawn(move || {
                let _ = tx.send(op(&name));
            })
            .map_err(|e| KeychainError::Other {
                detail: format!("cannot start keychain thread: {e}"),
            })?;
        match rx.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(_) => Err(KeychainError::TimedOut {
                seconds: self.timeout.as_secs(),
            }),
        }
    }
}

impl Keychain for OsKeychain {
    fn get(&self, name: &EntryName) -> Result<Option<SecretText>, KeychainError> {
        self.call(name, backend::get)
    }

    fn set(&self, name: &EntryName, value: &SecretText) -> Result<(), KeychainError> {
        let value = value.clone();
        self.call(name, move |name| backend::set(name, &value))
    }

    fn delete(&self, name: &EntryName) -> Result<(), KeychainError> {
        self.call(name, backend::delete)
    }

    fn describe(&self) -> &'static str {
        if cfg!(target_os = "linux") {
            "the Secret Service (D-Bus)"
        } else if cfg!(target_os = "macos") {
            "the macOS Keychain"
        } else {
            "the Windows Credential Manager"
        }
    }
}

/// Sorts a keychain failure's text by what the user must do about it.
fn classify(detail: String) -> KeychainError {
    let lower = detail.to_lowercase();
    if lower.contains("autolaunch")
        || lower.contains("dbus_session_bus_address")
        || lower.contains("failed to connect to socket")
        || lower.contains("no such file or directory")
        || lower.contains("connection refused")
    {
        KeychainError::NoSessionBus { detail }
    } else if lower.contains("serviceunknown")
        || lower.contains("service unknown")
        || lower.contains("was not provided by any .service files")
        || lower.contains("name has no owner")
    {
        KeychainError::NoSecretService { detail }
    } else if lower.contains("locked") || lower.contains("prompt") || lower.contains("dismissed") {
        KeychainError::Locked { detail }
    } else {
        KeychainError::Other { detail }
    }
}

/// An in-memory keychain for pure unit tests. Never used by the app or the CLI.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct MemoryKeychain {
    entries: std::sync::Mutex<std::collections::HashMap<EntryName, String>>,
}

#[cfg(test)]
impl Keychain for MemoryKeychain {
    fn get(&self, name: &EntryName) -> Result<Option<SecretText>, KeychainError> {
        let entries = self.entries.lock().expect("poisoned");
        Ok(entries.get(name).map(|v| SecretText::new(v.clone())))
    }

    fn set(&self, name: &EntryName, value: &SecretText) -> Result<(), KeychainError> {
        let mut entries = self.entries.lock().expect("poisoned");
        entries.insert(name.clone(), value.expose().to_owned());
        Ok(())
    }

    fn delete(&self, name: &EntryName) -> Result<(), KeychainError> {
        self.entries.lock().expect("poisoned").remove(name);
        Ok(())
    }

    fn describe(&self) -> &'static str {
        "an in-memory test keychain"
    }
}

#[cfg(test)]
impl MemoryKeychain {
    /// Number of entries held (for tests).
    pub fn len(&self) -> usize {
        self.entries.lock().expect("poisoned").len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of refresh tokens held (for tests).
    pub fn refresh_tokens(&self) -> usize {
        self.entries
            .lock()
            .expect("poisoned")
            .keys()
            .filter(|n| n.user().ends_with("/refresh-token"))
            .count()
    }
}

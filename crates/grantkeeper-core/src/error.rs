//! The core's error type. Messages are written for the user and never contain secrets.

use std::path::PathBuf;

use crate::crypto::CryptoError;
use crate::keychain::KeychainError;

/// Anything that can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS keychain could not be used.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// The vault exists but its master key is gone from the keychain.
    #[error("the vault's master key is not in {backend}: the keychain was reset or belongs to another user, so the stored secrets cannot be decrypted. Restore the keychain, or move {path} aside to start a new vault")]
    MasterKeyMissing {
        /// Where secrets live.
        backend: &'static str,
        /// The vault file.
        path: PathBuf,
    },
    /// SQLite failed (disk full, corruption, permissions).
    #[error("the vault database failed: {0}")]
    Database(#[from] rusqlite::Error),
    /// A stored secret could not be decrypted.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A sign-in or token request failed.
    #[error(transparent)]
    OAuth(#[from] crate::oauth::OAuthError),
    /// A refresh failed; `class` says whether to consent again, fix the configuration, or retry.
    #[error("refreshing failed: {source}{}", crate::lifecycle::advice(*class))]
    Refresh {
        /// What the failure means.
        class: crate::lifecycle::FailureClass,
        /// The underlying failure.
        source: crate::oauth::OAuthError,
    },
    /// A file-system operation failed.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A named record does not exist.
    #[error("no {what} named '{name}'")]
    NotFound {
        /// Kind of record.
        what: &'static str,
        /// The name or id asked for.
        name: String,
    },
    /// A record with that name exists already.
    #[error("a {what} named '{name}' already exists")]
    AlreadyExists {
        /// Kind of record.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// The caller's input is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// A record that decides where secrets go (a provider app's settings, a connection's link to
    /// its app, a tenant's key record) was changed outside Grantkeeper; nothing was sent.
    #[error("{0}")]
    Tampered(String),
    /// The call's deadline passed (`grantkeeper token --timeout`); nothing was stored.
    #[error("no answer within the {seconds} s allowed{}; nothing was stored. Try again later", last.as_deref().map(|l| format!(" ({l})")).unwrap_or_default())]
    TimedOut {
        /// The time allowed.
        seconds: f64,
        /// What the last attempt ran into, if anything.
        last: Option<String>,
    },
    /// The caller cancelled; nothing was stored.
    #[error("cancelled; nothing was stored")]
    Cancelled,
    /// The connection exists but cannot hand out tokens in its state: it needs re-consent, was
    /// revoked, or holds no usable token. Front ends report this as a refusal, not bad input.
    #[error("{message}")]
    NotUsable {
        /// The connection's state.
        status: crate::model::ConnectionStatus,
        /// What happened and what to do, in plain words.
        message: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

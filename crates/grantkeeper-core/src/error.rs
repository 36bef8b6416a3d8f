//! The core's error type. Messages are written for the user and never contain secrets.

use std::path::PathBuf;

use serde::Serialize;
use ts_rs::TS;

use crate::crypto::CryptoError;
use crate::keychain::KeychainError;
use crate::oauth::OAuthError;

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
    #[error("refreshing failed: {source}{}", class.advice())]
    Refresh {
        /// What the failure means.
        class: FailureClass,
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
    /// The team vault (OpenBao) refused, could not be reached, or wants a new login.
    #[error(transparent)]
    Team(#[from] crate::bao::BaoError),
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
    /// The hand-out policy refused the calling program (see [`crate::policy`]); the message
    /// names it, says why and what to do.
    #[error("{0}")]
    HandOutRefused(String),
}

/// What a failure means for the caller: the one sorting of [`Error`]s, which each front end maps
/// once (the CLI to exit codes, the agent to its wire, the window to its messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such tenant, connection or provider app.
    NotFound,
    /// Bad input, or a provider app not set up for what was asked.
    Invalid,
    /// The keychain could not be used.
    Keychain,
    /// The provider refused (consent denied, invalid grant), or the connection cannot be used
    /// until someone acts: it needs re-consent or was revoked.
    Refused,
    /// The network or the provider could not be reached, or answered nonsense.
    Network,
    /// The call's deadline passed, or nobody completed a sign-in in time.
    TimedOut,
    /// The user cancelled.
    Cancelled,
    /// A record deciding where secrets go, or the usage history, was changed outside
    /// Grantkeeper.
    Tampered,
    /// The agent is locked.
    Locked,
    /// Anything else (the database, the file system, a stored secret that does not decrypt).
    Other,
}

impl Error {
    /// What this failure means for the caller.
    pub fn kind(&self) -> ErrorKind {
        use crate::oauth::OAuthError as O;
        match self {
            Self::Keychain(_) | Self::MasterKeyMissing { .. } => ErrorKind::Keychain,
            Self::NotFound { .. } => ErrorKind::NotFound,
            Self::Invalid(_) | Self::AlreadyExists { .. } => ErrorKind::Invalid,
            Self::Tampered(_) => ErrorKind::Tampered,
            Self::NotUsable { .. } | Self::HandOutRefused(_) => ErrorKind::Refused,
            Self::TimedOut { .. } => ErrorKind::TimedOut,
            Self::Cancelled => ErrorKind::Cancelled,
            Self::Refresh { class, .. } => match class {
                FailureClass::Transient => ErrorKind::Network,
                _ => ErrorKind::Refused,
            },
            Self::OAuth(o) => match o {
                O::Http(_) | O::Malformed(_) | O::MissingAccessToken | O::WrongTokenType(_) => {
                    ErrorKind::Network
                }
                O::TimedOut { .. } => ErrorKind::TimedOut,
                O::Cancelled => ErrorKind::Cancelled,
                O::Config(_) | O::Listener(_) | O::Browser(_) => ErrorKind::Invalid,
                _ => ErrorKind::Refused,
            },
            Self::Team(t) => match t {
                crate::bao::BaoError::Unreachable { .. } | crate::bao::BaoError::Malformed(_) => {
                    ErrorKind::Network
                }
                crate::bao::BaoError::Conflict => ErrorKind::Other,
                _ => ErrorKind::Refused,
            },
            Self::Database(_) | Self::Crypto(_) | Self::Io { .. } => ErrorKind::Other,
        }
    }

    /// The provider could not be reached at all (as opposed to answering badly): the window
    /// shows it is offline.
    pub fn provider_unreachable(&self) -> bool {
        use crate::{http::HttpError, oauth::OAuthError as O};
        match self {
            Self::OAuth(O::Http(h)) => {
                matches!(h, HttpError::Network { .. } | HttpError::Timeout { .. })
            }
            Self::Refresh { class, .. } => *class == FailureClass::Transient,
            _ => false,
        }
    }
}

/// What a refresh failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The grant is gone (`invalid_grant`): the user must consent again.
    NeedsReconsent,
    /// The client is misconfigured (`invalid_client`, HTTP 401).
    Configuration,
    /// The provider or the network failed; retry later.
    Transient,
}

impl FailureClass {
    /// What the user should do about a refresh failure of this class, as a sentence to append.
    pub fn advice(self) -> &'static str {
        match self {
        FailureClass::NeedsReconsent => {
            ". The grant is no longer valid: run `grantkeeper reconsent` (or Re-consent in the app)"
        }
        FailureClass::Configuration => ". Check the provider app's client id and secret",
        FailureClass::Transient => ". Nothing was stored; try again later",
    }
    }

    /// Sorts a refresh failure.
    pub fn of(e: &OAuthError) -> FailureClass {
        match e {
            OAuthError::Provider { error, .. } if error == "invalid_grant" => {
                FailureClass::NeedsReconsent
            }
            OAuthError::Provider { error, .. }
                if error == "invalid_client" || error == "unauthorized_client" =>
            {
                FailureClass::Configuration
            }
            OAuthError::Provider { status: 401, .. } => FailureClass::Configuration,
            _ => FailureClass::Transient,
        }
    }
}

/// A catalog error reaching the core's callers (an unknown preset, a bad variable) is bad input.
impl From<crate::catalog::CatalogError> for Error {
    fn from(e: crate::catalog::CatalogError) -> Self {
        Self::Invalid(e.to_string())
    }
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

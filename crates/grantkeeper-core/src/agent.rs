//! The hand-out agent: holds an open vault (its unwrapped keys) in memory and serves access
//! tokens to programs of the same user over a Unix socket, so a script's `grantkeeper token`
//! costs one local round trip instead of a keychain read.
//!
//! - The socket lives in `$XDG_RUNTIME_DIR/grantkeeper/` (a 0700 folder), mode 0600, named after
//!   the vault folder, so separate profiles (`GRANTKEEPER_HOME`) get separate agents.
//! - Each connection's peer is checked with `SO_PEERCRED`: another user's process is refused.
//! - The caller's pid and executable path go into the `handed_out` event, so the history says
//!   which program used which token.
//! - `lock` drops the vault (and with it the keys); `unlock` opens it again from the keychain.
//!   The agent also locks itself after an idle time and when the keychain or the desktop
//!   session locks (see [`LockPolicy`]); each lock is a `locked` event with its reason.
//!
//! Protocol: one JSON object per line each way (see [`Request`] and [`Response`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::Vault;

/// A request to the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A valid access token for `tenant/connection`.
    Token {
        /// Tenant slug or id.
        tenant: String,
        /// Connection name.
        connection: String,
        /// Minimum remaining validity in milliseconds.
        min_valid_ms: u64,
        /// Application hint for the usage history.
        hint: Option<String>,
        /// The caller's overall deadline in milliseconds ([`crate::deadline::DEFAULT_TIMEOUT`] when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
    },
    /// Whether the agent holds an open vault.
    Status,
    /// Drop the keys.
    Lock,
    /// Open the vault again from the keychain.
    Unlock,
}

/// The agent's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The access token (token requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token's expiry (token requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Whether the vault is locked (status requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Why the agent is locked (status and lock requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<LockReason>,
    /// The failure kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// The failure, in plain words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    fn ok() -> Self {
        Self {
            ok: true,
            token: None,
            expires_at: None,
            locked: None,
            locked_by: None,
            kind: None,
            error: None,
        }
    }

    fn fail(kind: ErrorKind, error: String) -> Self {
        Self {
            ok: false,
            kind: Some(kind),
            error: Some(error),
            ..Self::ok()
        }
    }
}

/// The socket of the agent serving the vault in `home`: in `$XDG_RUNTIME_DIR/grantkeeper/`
/// (named after the vault folder), else inside the vault folder itself; never in a shared
/// folder such as `/tmp`, where another user could create the folder first.
pub fn socket_path(home: &Path) -> PathBuf {
    crate::paths::socket(home, "agent")
}

/// The longest path a Unix socket address holds (`sun_path` less its terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Checks the socket's folder (this user's own, private; created when missing) and the path's
/// length.
fn checked_socket_path(home: &Path) -> Result<PathBuf> {
    let path = socket_path(home);
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(Error::Invalid(format!(
            "the agent's socket path {} is longer than {MAX_SOCKET_PATH} bytes: set XDG_RUNTIME_DIR, or use a shorter GRANTKEEPER_HOME",
            path.display()
        )));
    }
    let dir = path.parent().expect("socket path has a folder");
    if dir == home {
        crate::private::ensure_dir(dir)?;
    } else {
        crate::private::ensure_socket_dir(dir)?;
    }
    Ok(path)
}

/// Opens the vault; the agent calls it at start and on `unlock`.
pub type Opener = dyn Fn() -> Result<Vault> + Send + Sync;

/// The longest request line the agent reads (8 KiB); a longer one closes the connection.
pub const MAX_LINE: usize = 8 * 1024;

/// The most connections the agent serves at once (a worker thread each); more are closed
/// unanswered, and their clients open the vault themselves. 200 callers at once are all served
/// (`benches/agent.rs`).
pub const MAX_CONNECTIONS: usize = 256;

/// The time a client has to send each request line (a silent or dripping client is closed).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Longer than [`MAX_LINE`]: the connection is closed.
    TooLong,
    /// Not a request: answered, and the connection goes on.
    Invalid(String),
}

/// Takes the next complete line (without its `\n`, and without a `\r` before it) from the
/// bytes read so far; `Ok(None)` when more must be read. A line, or a pending start of a line,
/// longer than [`MAX_LINE`] is [`LineError::TooLong`].
pub fn next_line(pending: &mut Vec<u8>) -> Result<Option<Vec<u8>>, LineError> {
    let scan = &pending[..pending.len().min(MAX_LINE + 1)];
    match scan.iter().position(|&b| b == b'\n') {
        Some(at) => {
            let mut line: Vec<u8> = pending.drain(..=at).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            Ok(Some(line))
        }
        None if pending.len() > MAX_LINE => Err(LineError::TooLong),
        None => Ok(None),
    }
}

/// Decodes one request line: at most [`MAX_LINE`] bytes of UTF-8 JSON, with its durations
/// bounded (see [`Request::bounded`]).
pub fn decode_request(line: &[u8]) -> Result<Request, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong);
    }
    let text = std::str::from_utf8(line)
        .map_err(|_| LineError::Invalid("bad request: not UTF-8 text".into()))?;
    serde_json::from_str::<Request>(text)
        .map(Request::bounded)
        .map_err(|e| LineError::Invalid(format!("bad request: {e}")))
}

impl Request {
    /// The request with `min_valid_ms` at most [`crate::oauth::token::MAX_LIFETIME`] and
    /// `timeout_ms` at most [`crate::deadline::MAX_TIMEOUT`].
    pub fn bounded(self) -> Self {
        match self {
            Request::Token {
                tenant,
                connection,
                min_valid_ms,
                hint,
                timeout_ms,
            } => Request::Token {
                tenant,
                connection,
                min_valid_ms: min_valid_ms
                    .min(crate::oauth::token::MAX_LIFETIME.as_millis() as u64),
                hint,
                timeout_ms: timeout_ms
                    .map(|t| t.min(crate::deadline::MAX_TIMEOUT.as_millis() as u64)),
            },
            other => other,
        }
    }
}

mod client;
#[cfg(target_os = "linux")]
mod lock;
mod server;

pub use crate::desktop_lock::LockReason;
pub use client::AgentClient;
pub use lock::{LockPolicy, DEFAULT_IDLE_LOCK};
pub use server::{serve, serve_with};

#[cfg(test)]
mod tests;

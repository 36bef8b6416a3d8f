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
//!
//! Protocol: one JSON object per line each way (see [`Request`] and [`Response`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::{Actor, ActorKind};
use crate::deadline::{Deadline, DEFAULT_TIMEOUT};
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::loopback::{CancelToken, Slot};
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
        /// The caller's overall deadline in milliseconds ([`DEFAULT_TIMEOUT`] when absent).
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
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => {
            let digest = Sha256::digest(home.to_string_lossy().as_bytes());
            let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            PathBuf::from(runtime)
                .join("grantkeeper")
                .join(format!("agent-{name}.sock"))
        }
        None => home.join("agent.sock"),
    }
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

/// Serves hand-outs until `stop` is cancelled. Refuses to start when another agent answers on
/// the socket.
pub fn serve(home: &Path, open: Arc<Opener>, stop: &CancelToken) -> Result<()> {
    let path = checked_socket_path(home)?;
    if UnixStream::connect(&path).is_ok() {
        return Err(Error::Invalid(format!(
            "an agent already serves this vault ({})",
            path.display()
        )));
    }
    // Open the vault first: an agent that cannot open it must not take the socket.
    let state = Arc::new(Mutex::new(Some(Arc::new(open()?))));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| Error::io(&path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(&path, e))?;
    tracing::info!(socket = %path.display(), "agent listening");
    let maintenance = spawn_maintenance(state.clone(), stop.clone());
    // Accept blocks (no polling delay on the hand-out path); a watcher wakes it to stop.
    let waker = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            while !stop.is_cancelled() {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = UnixStream::connect(&path);
        })
    };
    let workers = Workers::new(state.clone(), open);
    for stream in listener.incoming() {
        if stop.is_cancelled() {
            break;
        }
        match stream {
            Ok(stream) => workers.dispatch(stream),
            Err(e) => {
                stop.cancel();
                let _ = waker.join();
                let _ = std::fs::remove_file(&path);
                return Err(Error::io(&path, e));
            }
        }
    }
    let _ = waker.join();
    let _ = maintenance.join();
    let _ = std::fs::remove_file(&path);
    let closing = state.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(vault) = closing {
        anchor_history(&vault);
    }
    Ok(())
}

/// Anchors the usage history as the agent locks or stops (see [`crate::audit::anchor`]).
fn anchor_history(vault: &Vault) {
    match vault.anchor_history() {
        Ok(crate::audit::AnchorOutcome::Refused(why)) => {
            tracing::warn!(%why, "the usage history was not anchored: run `grantkeeper audit verify`")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the usage history could not be anchored"),
    }
}

/// Threads that serve client connections. A connection is handed to an idle worker, or to a
/// new one when none is idle (a slow refresh never delays another caller); up to
/// [`Workers::MAX_IDLE`] finished workers stay for the next callers, so a hand-out does not
/// pay for starting a thread. At most [`MAX_CONNECTIONS`] connections are served at once: past
/// that a connection is closed unanswered (the client then opens the vault itself).
struct Workers {
    queue: std::sync::mpsc::Sender<(UnixStream, Slot)>,
    inbox: Arc<Mutex<std::sync::mpsc::Receiver<(UnixStream, Slot)>>>,
    /// Idle workers not yet promised a connection.
    idle: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections being served or waiting for a worker.
    busy: Arc<std::sync::atomic::AtomicUsize>,
    state: Arc<Mutex<Option<Arc<Vault>>>>,
    open: Arc<Opener>,
}

impl Workers {
    const MAX_IDLE: usize = 8;

    fn new(state: Arc<Mutex<Option<Arc<Vault>>>>, open: Arc<Opener>) -> Self {
        let (queue, inbox) = std::sync::mpsc::channel();
        Self {
            queue,
            inbox: Arc::new(Mutex::new(inbox)),
            idle: Arc::default(),
            busy: Arc::default(),
            state,
            open,
        }
    }

    fn dispatch(&self, stream: UnixStream) {
        use std::sync::atomic::Ordering::AcqRel;
        let Some(slot) = Slot::take(&self.busy, MAX_CONNECTIONS) else {
            tracing::warn!(
                max = MAX_CONNECTIONS,
                "agent closed a connection: too many at once"
            );
            return;
        };
        // Promise the connection to an idle worker, or start one for it.
        if self
            .idle
            .fetch_update(AcqRel, std::sync::atomic::Ordering::Acquire, |n| {
                n.checked_sub(1)
            })
            .is_err()
        {
            let (inbox, idle, state, open) = (
                self.inbox.clone(),
                self.idle.clone(),
                self.state.clone(),
                self.open.clone(),
            );
            std::thread::spawn(move || loop {
                let next = inbox.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok((stream, slot)) = next else { return };
                serve_client(stream, &state, &*open, READ_TIMEOUT);
                drop(slot);
                if idle
                    .fetch_update(AcqRel, std::sync::atomic::Ordering::Acquire, |n| {
                        (n < Self::MAX_IDLE).then_some(n + 1)
                    })
                    .is_err()
                {
                    return;
                }
            });
        }
        // `self` holds the receiver too, so the send cannot fail.
        let _ = self.queue.send((stream, slot));
    }
}

/// The longest request line the agent reads (8 KiB); a longer one closes the connection.
pub const MAX_LINE: usize = 8 * 1024;

/// The most connections the agent serves at once; more are closed unanswered.
pub const MAX_CONNECTIONS: usize = 64;

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

/// How often the agent keeps idle refresh tokens alive.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Runs [`Vault::maintain`] at start and then hourly while the agent is unlocked: refresh
/// tokens that die from inactivity within 7 days are refreshed, and those expiring within 14
/// days are logged as warnings.
fn spawn_maintenance(
    state: Arc<Mutex<Option<Arc<Vault>>>>,
    stop: CancelToken,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = std::time::Instant::now();
        while !stop.is_cancelled() {
            if std::time::Instant::now() >= next {
                next += MAINTENANCE_EVERY;
                let vault = state.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(vault) = vault {
                    match vault.maintain(
                        Duration::from_secs(7 * 86_400),
                        Duration::from_secs(14 * 86_400),
                    ) {
                        Ok(report) => {
                            for w in &report.warnings {
                                tracing::warn!(connection = %w.connection_id, name = %w.name, expires_at = w.expires_at, hard = w.hard, "refresh token expires soon");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "maintenance failed"),
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

/// The peer's uid and pid (`SO_PEERCRED`).
fn peer(stream: &UnixStream) -> Option<(u32, i32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is open.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((cred.uid, cred.pid))
}

/// Reads the next request line within `timeout`; `None` when the client went away, was too
/// slow, or sent a line longer than [`MAX_LINE`].
fn read_request_line(
    stream: &UnixStream,
    pending: &mut Vec<u8>,
    timeout: Duration,
) -> Option<Result<Vec<u8>, LineError>> {
    let deadline = std::time::Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    loop {
        match next_line(pending) {
            Ok(Some(line)) => return Some(Ok(line)),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match (&*stream).read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

fn serve_client(
    stream: UnixStream,
    state: &Mutex<Option<Arc<Vault>>>,
    open: &Opener,
    timeout: Duration,
) {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let Some((uid, pid)) = peer(&stream) else {
        return;
    };
    if uid != me {
        tracing::warn!(uid, pid, "agent refused a process of another user");
        return;
    }
    let _ = stream.set_write_timeout(Some(timeout));
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let caller = format!("pid {pid} {exe}");
    let mut pending = Vec::new();
    loop {
        let Some(line) = read_request_line(&stream, &mut pending, timeout) else {
            return;
        };
        let (response, close) = match line.and_then(|l| decode_request(&l)) {
            Ok(req) => (handle(req, state, open, &caller), false),
            Err(LineError::Invalid(e)) => (Response::fail(ErrorKind::Invalid, e), false),
            Err(LineError::TooLong) => (
                Response::fail(
                    ErrorKind::Invalid,
                    format!("bad request: longer than {MAX_LINE} bytes"),
                ),
                true,
            ),
        };
        let mut out = serde_json::to_string(&response).expect("responses serialize");
        out.push('\n');
        if (&stream).write_all(out.as_bytes()).is_err() || close {
            return;
        }
    }
}

fn handle(
    req: Request,
    state: &Mutex<Option<Arc<Vault>>>,
    open: &Opener,
    caller: &str,
) -> Response {
    let current = state.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match req {
        Request::Status => Response {
            locked: Some(current.is_none()),
            ..Response::ok()
        },
        Request::Lock => {
            let closing = state.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(vault) = closing {
                anchor_history(&vault);
            }
            Response {
                locked: Some(true),
                ..Response::ok()
            }
        }
        Request::Unlock => match open() {
            Ok(v) => {
                *state.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(v));
                Response {
                    locked: Some(false),
                    ..Response::ok()
                }
            }
            Err(e) => Response::fail(e.kind(), e.to_string()),
        },
        Request::Token {
            tenant,
            connection,
            min_valid_ms,
            hint,
            timeout_ms,
        } => {
            let deadline =
                Deadline::within(timeout_ms.map_or(DEFAULT_TIMEOUT, Duration::from_millis));
            let Some(vault) = current else {
                return Response::fail(
                    ErrorKind::Locked,
                    "the agent is locked: run `grantkeeper agent unlock`".into(),
                );
            };
            let actor = Actor {
                kind: ActorKind::Agent,
                app_hint: hint,
                caller: Some(caller.to_owned()),
            };
            let result = (|| -> Result<Response> {
                let t = vault.find_tenant(&tenant)?;
                let scope = vault.tenant(&t.id)?;
                let c = scope.connection_named(&connection)?;
                let handed = scope.access_token(
                    &c.id,
                    Duration::from_millis(min_valid_ms),
                    &deadline,
                    &actor,
                )?;
                Ok(Response {
                    token: Some(handed.token.expose().to_owned()),
                    expires_at: handed.expires_at,
                    ..Response::ok()
                })
            })();
            result.unwrap_or_else(|e| Response::fail(e.kind(), e.to_string()))
        }
    }
}

/// A client of a running agent.
pub struct AgentClient {
    stream: UnixStream,
}

impl AgentClient {
    /// Connects to the agent of the vault in `home`; `None` when no agent runs, or when the
    /// socket's folder or the process answering on it is not this user's (then the caller opens
    /// the vault itself).
    pub fn connect(home: &Path) -> Option<Self> {
        let path = socket_path(home);
        let dir = path.parent()?;
        let checked = if dir == home {
            crate::private::ensure_file(&path)
        } else {
            crate::private::ensure_socket_dir(dir)
        };
        if let Err(e) = checked {
            tracing::warn!(error = %e, "not using the agent");
            return None;
        }
        let stream = UnixStream::connect(&path).ok()?;
        match peer(&stream) {
            Some((uid, _)) if uid == crate::private::euid() => Some(Self { stream }),
            other => {
                tracing::warn!(peer = ?other, socket = %path.display(), "not using an agent socket served by another user");
                None
            }
        }
    }

    /// Sends one request and reads the answer, waiting at most `wait` for it (an I/O error of
    /// kind `WouldBlock` or `TimedOut` after that).
    pub fn call(&mut self, req: &Request, wait: Duration) -> std::io::Result<Response> {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut line = serde_json::to_string(req).expect("requests serialize");
        line.push('\n');
        self.stream.write_all(line.as_bytes())?;
        // The answer is one line; a token is a few KiB at most.
        let mut reader = BufReader::new((&self.stream).take(1 << 20));
        let mut answer = String::new();
        reader.read_line(&mut answer)?;
        serde_json::from_str(&answer)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests;

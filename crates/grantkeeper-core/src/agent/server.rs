//! The agent's server: an accept loop that hands each connection to a worker thread (an idle
//! one, or a new one), the request handling, and the hourly maintenance.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::audit::{Actor, ActorKind};
use crate::deadline::{Deadline, DEFAULT_TIMEOUT};
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::loopback::{CancelToken, Slot};
use crate::Vault;

use super::lock::{spawn_idle_lock, Held, LockPolicy};
use super::{
    checked_socket_path, decode_request, next_line, LineError, Opener, Request, Response,
    MAX_CONNECTIONS, MAX_LINE, READ_TIMEOUT,
};
use crate::desktop_lock::LockReason;
use crate::private::peer;

/// Serves hand-outs until `stop` is cancelled, locking by the default [`LockPolicy`]. Refuses
/// to start when another agent answers on the socket.
pub fn serve(home: &Path, open: Arc<Opener>, stop: &CancelToken) -> Result<()> {
    serve_with(home, open, stop, &LockPolicy::default())
}

/// [`serve`], locking by `locks`.
pub fn serve_with(
    home: &Path,
    open: Arc<Opener>,
    stop: &CancelToken,
    locks: &LockPolicy,
) -> Result<()> {
    let path = checked_socket_path(home)?;
    if UnixStream::connect(&path).is_ok() {
        return Err(Error::Invalid(format!(
            "an agent already serves this vault ({})",
            path.display()
        )));
    }
    // Open the vault first: an agent that cannot open it must not take the socket.
    let state = Arc::new(Held::open(open()?));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(|e| Error::io(&path, e))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(&path, e))?;
    tracing::info!(socket = %path.display(), "agent listening");
    let mut helpers = vec![spawn_maintenance(state.clone(), stop.clone())];
    if let Some(idle) = locks.idle {
        helpers.push(spawn_idle_lock(state.clone(), idle, stop.clone()));
    }
    #[cfg(target_os = "linux")]
    if locks.desktop {
        let held = state.clone();
        let lock = Arc::new(move |reason| {
            held.lock(reason, &Actor::new(ActorKind::Agent));
        });
        helpers.extend(crate::desktop_lock::spawn_watchers(lock, stop));
    }
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
    for helper in helpers {
        let _ = helper.join();
    }
    let _ = std::fs::remove_file(&path);
    if let Some(vault) = state.close() {
        anchor_history(&vault);
    }
    Ok(())
}

/// Anchors the usage history as the agent locks or stops (see [`crate::audit::anchor`]).
pub(super) fn anchor_history(vault: &Vault) {
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
    state: Arc<Held>,
    open: Arc<Opener>,
}

impl Workers {
    const MAX_IDLE: usize = 8;

    fn new(state: Arc<Held>, open: Arc<Opener>) -> Self {
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

/// How often the agent keeps idle refresh tokens alive.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Runs [`Vault::maintain`] at start and then hourly while the agent is unlocked: refresh
/// tokens that die from inactivity within 7 days are refreshed, and those expiring within 14
/// days are logged as warnings.
fn spawn_maintenance(state: Arc<Held>, stop: CancelToken) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut next = std::time::Instant::now();
        while !stop.is_cancelled() {
            if std::time::Instant::now() >= next {
                next += MAINTENANCE_EVERY;
                if let Some(vault) = state.current() {
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

/// Reads the next request line within `timeout`; `None` when the client went away, was too
/// slow, or sent a line longer than [`MAX_LINE`].
pub(super) fn read_request_line(
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

fn serve_client(stream: UnixStream, state: &Held, open: &Opener, timeout: Duration) {
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
    // The program asking (the one that ran the command line, when the command line asks).
    let caller = crate::policy::Program::agent_peer(pid.unsigned_abs()).to_caller();
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

fn handle(req: Request, state: &Held, open: &Opener, caller: &str) -> Response {
    match req {
        Request::Status => {
            let locked_by = state.locked_by();
            Response {
                locked: Some(locked_by.is_some()),
                locked_by,
                ..Response::ok()
            }
        }
        Request::Lock => {
            let actor = Actor {
                kind: ActorKind::Agent,
                app_hint: None,
                caller: Some(caller.to_owned()),
            };
            state.lock(LockReason::User, &actor);
            Response {
                locked: Some(true),
                locked_by: state.locked_by(),
                ..Response::ok()
            }
        }
        Request::Unlock => match open() {
            Ok(v) => {
                state.unlock(v);
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
            let vault = match state.use_vault() {
                Ok(vault) => vault,
                Err(reason) => return Response::fail(ErrorKind::Locked, reason.refusal()),
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

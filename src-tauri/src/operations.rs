//! Refreshes the window can cancel: "Refresh now", and copy or reveal when the access token has
//! to be refreshed first.
//!
//! The window names each operation with an id it makes before the call, so a Cancel reaches
//! exactly that operation, and a Cancel that arrives before the command registered the id still
//! counts (it leaves a cancelled token the command then finds).
//!
//! The core checks the cancel at the refresh gate, at the lock and between retries; a request
//! already sent is bounded only by the deadline. So the command stops waiting the moment the user
//! cancels and answers `cancelled` ("nothing was stored"), while that one request runs out in the
//! background. Should the provider still answer it, the core stores the new tokens (a provider
//! may have rotated the refresh token: dropping the answer could lose the grant) and the window
//! hears a `refresh-late` event, so what it said is corrected at once.

use std::collections::HashMap;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use grantkeeper_core::deadline::{Deadline, DEFAULT_TIMEOUT, MAX_TIMEOUT};
use grantkeeper_core::model::{ConnectionId, TenantId};
use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::Vault;
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager};
use ts_rs::TS;

use crate::state::{vault, CmdResult, CommandError};

/// How often a waiting command looks for a cancel.
const POLL: Duration = Duration::from_millis(20);

/// Longest operation id the window may send.
const MAX_ID_LEN: usize = 64;

/// Cancel tokens of running operations, by the window's operation id.
#[derive(Default)]
pub struct Operations {
    live: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    cancel: CancelToken,
    since: Instant,
}

impl Operations {
    /// The cancel token of `id`, registered now unless a Cancel came first.
    fn token(&self, id: &str) -> CancelToken {
        let mut live = self.lock();
        Self::prune(&mut live);
        live.entry(id.to_owned())
            .or_insert_with(|| Entry {
                cancel: CancelToken::default(),
                since: Instant::now(),
            })
            .cancel
            .clone()
    }

    /// Cancels `id`; remembered for a while if the operation has not registered yet.
    fn cancel(&self, id: &str) {
        let mut live = self.lock();
        Self::prune(&mut live);
        live.entry(id.to_owned())
            .or_insert_with(|| Entry {
                cancel: CancelToken::default(),
                since: Instant::now(),
            })
            .cancel
            .cancel();
    }

    fn finish(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Drops entries older than any operation can run: Cancels that came after their
    /// operation had ended.
    fn prune(live: &mut HashMap<String, Entry>) {
        live.retain(|_, e| e.since.elapsed() < 2 * MAX_TIMEOUT);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An operation id the window sent: 1 to 64 letters, digits, `-` or `_`.
fn checked_id(id: &str) -> CmdResult<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CommandError::new("internal error: a bad operation id"))
    }
}

/// Runs `work` with a deadline of [`DEFAULT_TIMEOUT`] that the window's Cancel for `operation`
/// ends early, and answers as soon as either the work is done or the user cancelled. Work still
/// running after a cancel goes on in the background; its result is handed to `late`.
pub async fn run<T: Send + 'static>(
    app: AppHandle,
    operation: String,
    work: impl FnOnce(&Vault, &Deadline) -> CmdResult<T> + Send + 'static,
    late: impl FnOnce(&AppHandle, CmdResult<T>) + Send + 'static,
) -> CmdResult<T> {
    checked_id(&operation)?;
    tauri::async_runtime::spawn_blocking(move || {
        let cancel = app.state::<Operations>().token(&operation);
        let v = match vault(&app) {
            Ok(v) => v,
            Err(e) => {
                app.state::<Operations>().finish(&operation);
                return Err(e);
            }
        };
        let deadline = Deadline::within(DEFAULT_TIMEOUT).cancellable(cancel.clone());
        let (tx, rx) = mpsc::channel();
        let worker_app = app.clone();
        let worker_op = operation.clone();
        std::thread::spawn(move || {
            let result = work(&v, &deadline);
            worker_app.state::<Operations>().finish(&worker_op);
            // The window stopped waiting (it was told `cancelled`): say what happened after all.
            if let Err(mpsc::SendError(result)) = tx.send(result) {
                late(&worker_app, result);
            }
        });
        loop {
            match rx.recv_timeout(POLL) {
                Ok(result) => return result,
                Err(mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => {
                    return Err(grantkeeper_core::Error::Cancelled.into());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(CommandError::new("internal error: the refresh stopped"));
                }
            }
        }
    })
    .await
    .map_err(|e| CommandError::new(format!("internal error: {e}")))?
}

/// Cancels the refresh of an operation the window started (refresh, or copy or reveal while
/// they refresh). The operation's command then answers `cancelled`.
#[tauri::command]
pub fn cancel_refresh(app: AppHandle, operation: String) -> CmdResult<()> {
    checked_id(&operation)?;
    app.state::<Operations>().cancel(&operation);
    Ok(())
}

/// A refresh the user cancelled that the provider answered after all (the `refresh-late`
/// event): its new tokens were stored.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RefreshedLate {
    /// The operation the window cancelled.
    pub operation: String,
    /// The tenant.
    pub tenant: TenantId,
    /// The connection.
    pub connection: ConnectionId,
    /// What happened, in plain words.
    pub message: String,
}

/// Tells the window that the cancelled `operation` refreshed `connection` after all.
pub fn refreshed_late(
    app: &AppHandle,
    operation: String,
    tenant: TenantId,
    connection: ConnectionId,
    not_done: &str,
) {
    let label = vault(app)
        .ok()
        .and_then(|v| {
            let scope = v.tenant(&tenant).ok()?;
            let name = scope.connection(&connection).ok()?.name;
            Some(format!("{}/{name}", scope.tenant().slug))
        })
        .unwrap_or_else(|| "a connection".to_owned());
    let message = format!(
        "The provider answered the refresh of {label} after you cancelled it: its new tokens were \
         stored (the provider may have replaced the refresh token, so they are kept).{not_done}"
    );
    let _ = app.emit(
        "refresh-late",
        RefreshedLate {
            operation,
            tenant,
            connection,
            message,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_reaches_its_operation_whenever_it_comes() {
        let ops = Operations::default();
        // Registered first, then cancelled.
        let t = ops.token("op-1");
        assert!(!t.is_cancelled());
        ops.cancel("op-1");
        assert!(t.is_cancelled());
        // Another operation is not touched.
        assert!(!ops.token("op-2").is_cancelled());
        // Cancelled before it registered: the command finds the cancelled token.
        ops.cancel("op-3");
        assert!(ops.token("op-3").is_cancelled());
        ops.finish("op-1");
        ops.finish("op-2");
        ops.finish("op-3");
        assert!(ops.lock().is_empty());
    }

    #[test]
    fn operation_ids_are_checked() {
        assert!(checked_id("0f3c2a9e-41b7-4c1d-9d2e-6a7b8c9d0e1f").is_ok());
        assert!(checked_id("abc_123").is_ok());
        for bad in ["", "a b", "../x", &"x".repeat(65)] {
            assert!(checked_id(bad).is_err(), "{bad:?}");
        }
    }
}

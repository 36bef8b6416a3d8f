//! The connect wizard's sign-ins: the browser opens, a thread waits for the redirect (or a
//! pasted URL, or cancel, or the timeout), finishes the grant, and tells the window with a
//! `connect-finished` event.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::connect::{ConnectRequest, Pasted, PendingConnect};
use grantkeeper_core::model::{Connection, ConnectionId, RedirectMode, TenantId};
use grantkeeper_core::oauth::flow::parse_pasted_redirect;
use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::oauth::{browser, OAuthError};
use grantkeeper_core::Vault;
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter, Manager};
use ts_rs::TS;

use crate::state::{vault, CmdResult, CommandError};

/// A running sign-in.
struct Flow {
    cancel: CancelToken,
    pasted: mpsc::Sender<Pasted>,
}

/// Sign-ins waiting for the browser, by flow id (managed Tauri state).
#[derive(Default)]
pub struct Flows(Mutex<HashMap<String, Flow>>);

impl Flows {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flow>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the wizard asks for.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct ConnectForm {
    /// The new connection's name (unique in the tenant).
    pub name: String,
    /// The provider app (id or name).
    pub provider_app: String,
    /// Scopes; the app's defaults when `null`.
    pub scopes: Option<Vec<String>>,
    /// Redirect mode; the app's own when `null`.
    pub redirect: Option<RedirectMode>,
    /// Seconds to wait for the browser (default 300).
    pub timeout_secs: Option<u32>,
}

/// A sign-in that has started: the browser is open (or the URL is to be opened by hand).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ConnectStarted {
    /// Identifies the sign-in for cancel and paste.
    pub flow: String,
    /// The authorization URL (holds no secret: state and PKCE challenge only).
    pub url: String,
    /// Where the provider sends the browser back.
    pub redirect_uri: String,
    /// How the redirect comes back.
    pub redirect: RedirectMode,
    /// Seconds the app waits.
    pub timeout_secs: u32,
    /// Why the browser did not open, if it did not.
    pub browser_error: Option<String>,
}

/// How a sign-in ended (the `connect-finished` event).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ConnectFinished {
    /// The sign-in.
    pub flow: String,
    /// The tenant.
    pub tenant: TenantId,
    /// The new or renewed connection.
    pub connection: Option<Connection>,
    /// Why it failed.
    pub error: Option<CommandError>,
    /// The user cancelled.
    pub cancelled: bool,
}

/// Starts connecting a new account through the system browser.
#[tauri::command]
pub async fn start_connect(
    app: AppHandle,
    tenant: TenantId,
    form: ConnectForm,
) -> CmdResult<ConnectStarted> {
    let timeout = form.timeout_secs.unwrap_or(300);
    start(app, tenant, timeout, move |v, t| {
        v.tenant(t)?.begin_connect(ConnectRequest {
            name: form.name,
            provider_app: form.provider_app,
            scopes: form.scopes,
            redirect: form.redirect,
        })
    })
    .await
}

/// Starts a re-consent of an existing connection (same connection, history kept).
#[tauri::command]
pub async fn start_reconsent(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
) -> CmdResult<ConnectStarted> {
    start(app, tenant, 300, move |v, t| {
        v.tenant(t)?.begin_reconsent(&connection, None, None)
    })
    .await
}

async fn start(
    app: AppHandle,
    tenant: TenantId,
    timeout_secs: u32,
    begin: impl FnOnce(&Vault, &TenantId) -> Result<PendingConnect, grantkeeper_core::Error>
        + Send
        + 'static,
) -> CmdResult<ConnectStarted> {
    tauri::async_runtime::spawn_blocking(move || {
        let v = vault(&app)?;
        let pending = begin(&v, &tenant)?;
        let flow = uuid::Uuid::new_v4().simple().to_string();
        let (tx, rx) = mpsc::channel();
        let cancel = CancelToken::default();
        app.state::<Flows>().lock().insert(
            flow.clone(),
            Flow {
                cancel: cancel.clone(),
                pasted: tx,
            },
        );
        let browser_error = browser::open(&pending.url).err().map(|e| e.to_string());
        let started = ConnectStarted {
            flow: flow.clone(),
            url: pending.url.clone(),
            redirect_uri: pending.redirect_uri.clone(),
            redirect: pending.redirect_mode(),
            timeout_secs,
            browser_error,
        };
        let timeout = Duration::from_secs(u64::from(timeout_secs));
        std::thread::spawn(move || {
            let finished = wait_and_finish(&v, &tenant, pending, timeout, &cancel, &rx);
            app.state::<Flows>().lock().remove(&flow);
            let cancelled = matches!(
                &finished,
                Err(grantkeeper_core::Error::OAuth(OAuthError::Cancelled))
            );
            let (connection, error) = match finished {
                Ok(c) => (Some(c), None),
                Err(_) if cancelled => (None, None),
                Err(e) => (None, Some(e.into())),
            };
            let _ = app.emit(
                "connect-finished",
                ConnectFinished {
                    flow,
                    tenant,
                    connection,
                    error,
                    cancelled,
                },
            );
        });
        Ok(started)
    })
    .await
    .map_err(|e| CommandError::new(format!("internal error: {e}")))?
}

fn wait_and_finish(
    v: &Arc<Vault>,
    tenant: &TenantId,
    mut pending: PendingConnect,
    timeout: Duration,
    cancel: &CancelToken,
    pasted: &mpsc::Receiver<Pasted>,
) -> Result<Connection, grantkeeper_core::Error> {
    let params = pending.wait(timeout, cancel, pasted)?;
    let actor = Actor::new(ActorKind::App).with_hint(Some("connect wizard".into()));
    v.tenant(tenant)?.finish_connect(pending, &params, &actor)
}

/// Cancels a sign-in; the window hears `connect-finished` with `cancelled`.
#[tauri::command]
pub fn cancel_connect(app: AppHandle, flow: String) {
    let removed = app.state::<Flows>().lock().remove(&flow);
    if let Some(f) = removed {
        f.cancel.cancel();
        // Dropping the sender ends a paste wait.
    }
}

/// Finishes a sign-in with the address the browser showed after consent (when the redirect
/// cannot reach the app by itself).
#[tauri::command]
pub fn paste_redirect(app: AppHandle, flow: String, url: String) -> CmdResult<()> {
    let params = parse_pasted_redirect(&url)?;
    let flows = app.state::<Flows>();
    let flows = flows.lock();
    let f = flows
        .get(&flow)
        .ok_or_else(|| CommandError::new("this sign-in has already ended; start it again"))?;
    f.pasted
        .send(Ok(params))
        .map_err(|_| CommandError::new("this sign-in has already ended; start it again"))?;
    f.cancel.cancel();
    Ok(())
}

//! Authenticating proxies the window runs, at most one per connection, through the proxy crate
//! (which knows nothing of Tauri): start, stop, what each listens on, and its bearer on request
//! (the showing recorded). The calls themselves are `proxied` events in the history.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use grantkeeper_core::model::{now_ms, ConnectionId, TenantId};
use grantkeeper_proxy::{Grant, Options, Proxy};
use serde::Serialize;
use tauri::async_runtime::Mutex;
use tauri::{AppHandle, Manager};
use ts_rs::TS;

use crate::actions::app_actor;
use crate::state::{vault, CmdResult, CommandError};

/// The running proxies, by connection.
#[derive(Default)]
pub struct Proxies(Mutex<HashMap<ConnectionId, Running>>);

struct Running {
    proxy: Proxy,
    view: ProxyView,
}

/// A running proxy, as the window shows it (no secret).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProxyView {
    /// Where local programs send their requests (`http://127.0.0.1:PORT`).
    pub listen: String,
    /// The API it forwards to.
    pub api_base: String,
    /// Whether clients must present the proxy's own bearer.
    pub bearer_required: bool,
    /// When it started.
    #[ts(type = "number")]
    pub started_at: i64,
}

/// Starts a proxy for a connection on a free loopback port (the running one, if any, is kept).
/// `api_base` is needed for providers the catalog has no API address for.
#[tauri::command]
pub async fn start_proxy(
    app: AppHandle,
    tenant: TenantId,
    connection: ConnectionId,
    require_bearer: bool,
    api_base: Option<String>,
) -> CmdResult<ProxyView> {
    let proxies = app.state::<Proxies>();
    let mut running = proxies.0.lock().await;
    if let Some(r) = running.get(&connection) {
        return Ok(r.view.clone());
    }
    let resolving = app.clone();
    let (vault, api) = {
        let (tenant, connection) = (tenant.clone(), connection.clone());
        tauri::async_runtime::spawn_blocking(move || -> CmdResult<_> {
            let v = vault(&resolving)?;
            let api = {
                let scope = v.tenant(&tenant)?;
                let c = scope.connection(&connection)?;
                let base = api_base.as_deref().map(str::trim).filter(|b| !b.is_empty());
                scope.api_target(&c, base, &BTreeMap::new())?
            };
            Ok((v, api))
        })
        .await
        .map_err(|e| CommandError::new(format!("internal error: {e}")))??
    };
    let api_base = api.base.to_string();
    let grant = Grant {
        vault: Arc::clone(&vault),
        tenant,
        connection: connection.clone(),
        api,
    };
    let options = Options {
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        require_bearer,
    };
    let proxy = Proxy::start(grant, &options)
        .await
        .map_err(|e| CommandError::new(e.to_string()))?;
    let view = ProxyView {
        listen: format!("http://{}", proxy.local_addr()),
        api_base,
        bearer_required: require_bearer,
        started_at: now_ms(),
    };
    running.insert(
        connection,
        Running {
            proxy,
            view: view.clone(),
        },
    );
    Ok(view)
}

/// Stops a connection's proxy: its port closes once open calls finish (a few seconds at most),
/// and every call is in the history when this returns.
#[tauri::command]
pub async fn stop_proxy(app: AppHandle, connection: ConnectionId) -> CmdResult<()> {
    let taken = app.state::<Proxies>().0.lock().await.remove(&connection);
    if let Some(r) = taken {
        r.proxy.stop().await;
    }
    Ok(())
}

/// The connection's running proxy, if any.
#[tauri::command]
pub async fn proxy_status(
    app: AppHandle,
    connection: ConnectionId,
) -> CmdResult<Option<ProxyView>> {
    let proxies = app.state::<Proxies>();
    let running = proxies.0.lock().await;
    Ok(running.get(&connection).map(|r| r.view.clone()))
}

/// Shows the proxy's bearer (recorded as `revealed` first).
#[tauri::command]
pub async fn reveal_proxy_bearer(app: AppHandle, connection: ConnectionId) -> CmdResult<String> {
    let proxies = app.state::<Proxies>();
    let running = proxies.0.lock().await;
    let r = running.get(&connection).ok_or_else(|| {
        CommandError::new("This connection's proxy is not running; start it first.")
    })?;
    let bearer = r
        .proxy
        .reveal_bearer(&app_actor("proxy bearer reveal"))?
        .ok_or_else(|| CommandError::new("This proxy requires no bearer."))?;
    Ok(bearer.expose().to_owned())
}

/// Stops every proxy (the window is closing).
pub fn stop_all(app: &AppHandle) {
    let proxies = app.state::<Proxies>();
    let all: Vec<Running> = tauri::async_runtime::block_on(async {
        proxies.0.lock().await.drain().map(|(_, r)| r).collect()
    });
    for r in all {
        tauri::async_runtime::block_on(r.proxy.stop());
    }
}

//! Grantkeeper's authenticating proxy: local programs send plain HTTP requests to a loopback
//! port, and the proxy forwards them to a connection's API with its access token (and the
//! headers the provider requires) added. The token never reaches the program.
//!
//! - **Tokens**: the connection's cached access token is used until a minute before it expires,
//!   then a fresh one is handed out by the core (which refreshes once per grant across
//!   processes). An upstream 401 forces one refresh per token; a request whose body was buffered
//!   (at most [`MAX_REPLAY`] bytes) is then sent again, a streamed one is answered with the 401.
//! - **Streaming**: bodies larger than [`MAX_REPLAY`], or of unknown length, stream both ways;
//!   upstream connections are kept alive (HTTP/1.1, or h2 negotiated over rustls; plain HTTP only
//!   to a loopback API, the core's HTTP rule).
//! - **Who may call**: it listens on loopback only; connections from another user's processes
//!   are closed (the peer socket's owner comes from the kernel's sock_diag); with a bearer of its own
//!   ([`Bearer`]) every request must present it in `Proxy-Authorization` or `Authorization`.
//!   Any `Authorization` a client sends is removed before forwarding.
//! - **History**: every call is a `proxied` event (method, host, path without query, status,
//!   bytes each way, duration, calling program), written in batches; never a body or a query.
//!   If the history cannot be written, the proxy answers 503 instead of forwarding.

mod bearer;
mod body;
mod caller;
mod forward;
mod record;
mod sockdiag;
mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use grantkeeper_core::catalog::ApiTarget;
use grantkeeper_core::model::{ConnectionId, TenantId};
use grantkeeper_core::Vault;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use bearer::Bearer;
pub use record::ProxyStats;

/// Request bodies up to this size are buffered, so they can be sent again after a 401.
pub const MAX_REPLAY: u64 = 1024 * 1024;

/// How long open connections may finish their requests when the proxy stops.
const GRACE: Duration = Duration::from_secs(5);

/// Why the proxy cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// `--listen` named an address other programs on the network could reach.
    #[error("refusing to listen on {0}: the proxy listens on loopback only (127.0.0.1 or [::1]), so no other machine can use the connection's token")]
    NotLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The API's address or required headers cannot be used.
    #[error("cannot forward to the API: {0}")]
    Setup(String),
}

/// Which grant the proxy speaks for, and where its API is.
#[derive(Clone)]
pub struct Grant {
    /// The open vault.
    pub vault: Arc<Vault>,
    /// The grant's tenant.
    pub tenant: TenantId,
    /// The grant.
    pub connection: ConnectionId,
    /// Its API.
    pub api: ApiTarget,
}

/// How the proxy listens.
#[derive(Debug, Clone)]
pub struct Options {
    /// A loopback address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Require a bearer of the proxy's own from every client.
    pub require_bearer: bool,
}

/// Refuses a listen address that is not a loopback address.
pub fn check_listen(addr: SocketAddr) -> Result<(), ProxyError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(ProxyError::NotLoopback(addr))
    }
}

/// A running proxy; [`Proxy::stop`] ends it and writes the last calls to the history.
pub struct Proxy {
    grant: Grant,
    addr: SocketAddr,
    bearer: Option<Bearer>,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    stats: Arc<ProxyStats>,
    written: tokio::sync::oneshot::Receiver<()>,
}

impl Proxy {
    /// Binds `options.listen` and starts serving (on the current tokio runtime).
    pub async fn start(grant: Grant, options: &Options) -> Result<Proxy, ProxyError> {
        check_listen(options.listen)?;
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ProxyError::Bind {
                    addr: options.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            addr: options.listen,
            source,
        })?;
        let bearer = options.require_bearer.then(Bearer::generate);
        let (recorder, written, stats) = record::Recorder::spawn(&grant);
        let shared = Arc::new(forward::Shared::new(
            grant.clone(),
            bearer.clone(),
            recorder,
        )?);
        let (stop, stopped) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared, stopped));
        Ok(Proxy {
            grant,
            addr,
            bearer,
            stop,
            accept,
            stats,
            written,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer clients must present, when one is required.
    pub fn bearer(&self) -> Option<&Bearer> {
        self.bearer.as_ref()
    }

    /// The bearer, to show to the user: the showing is recorded first (a `revealed` event naming
    /// the proxy's bearer, never its value). `None` when the proxy requires none.
    pub fn reveal_bearer(
        &self,
        actor: &grantkeeper_core::audit::Actor,
    ) -> grantkeeper_core::Result<Option<&Bearer>> {
        let Some(bearer) = &self.bearer else {
            return Ok(None);
        };
        let event = grantkeeper_core::audit::NewEvent::new(
            grantkeeper_core::audit::EventKind::Revealed,
            actor,
        )
        .tenant(&self.grant.tenant)
        .connection(&self.grant.connection)
        .detail(serde_json::json!({
            "secret": "proxy_bearer",
            "how": "reveal",
            "listen": self.addr.to_string(),
        }));
        self.grant.vault.record_events(&[event])?;
        Ok(Some(bearer))
    }

    /// Counters: calls, refreshes after a 401, retries.
    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    /// Stops accepting, lets open requests finish (for a few seconds), and waits until every
    /// call is written to the history.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
        let _ = self.written.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<forward::Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                connections.spawn(serve(stream, peer, shared.clone(), stopped.clone()));
            }
            _ = stopped.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    drop(shared);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        connections.shutdown().await;
    }
}

/// Serves one client connection: its owner checked, its program looked up once.
async fn serve(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<forward::Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let who = tokio::task::spawn_blocking(move || caller::lookup(peer, local))
        .await
        .unwrap_or_default();
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    if who.uid.is_some_and(|uid| uid != me) {
        tracing::warn!(uid = who.uid, %peer, "proxy refused a process of another user");
        return;
    }
    let _ = stream.set_nodelay(true);
    let caller: Arc<Option<String>> = Arc::new(who.caller);
    let service =
        hyper::service::service_fn(move |req| forward::handle(req, shared.clone(), caller.clone()));
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stopped.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

//! The token the proxy sends: the connection's cached access token, handed out by the core when
//! the proxy starts and again shortly before it expires, or refreshed once after an upstream 401.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::deadline::Deadline;
use grantkeeper_core::model::now_ms;
use grantkeeper_core::secret::AccessToken;
use hyper::header::HeaderValue;

use crate::Grant;

/// A new token is fetched this long before the current one expires.
const MARGIN_MS: i64 = 60_000;
/// ... valid for at least this long.
const MIN_VALID: Duration = Duration::from_secs(120);
/// A token obtained after a 401 is not refreshed again after another 401 this soon (an API
/// that refuses every token must not cause a refresh per request).
const REFUSED_AGAIN: Duration = Duration::from_secs(10);
/// A hand-out or refresh gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The token in use.
#[derive(Clone)]
pub(crate) struct Current {
    /// `Bearer <token>`, marked sensitive.
    pub header: HeaderValue,
    /// The token, to keep it out of responses.
    pub token: Arc<AccessToken>,
    /// Its keyed fingerprint, for the history.
    pub fingerprint: Arc<str>,
    /// Bumped with every new token.
    pub generation: u64,
    expires_at: Option<i64>,
    after_401: Option<Instant>,
}

/// Where the proxy gets its token.
pub(crate) struct Tokens {
    grant: Grant,
    current: RwLock<Option<Current>>,
    fetch: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

impl Tokens {
    pub(crate) fn new(grant: Grant) -> Self {
        Self {
            grant,
            current: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        }
    }

    /// A token valid for a while yet; one fetch at a time.
    pub(crate) async fn current(&self) -> Result<Current, String> {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let _turn = self.fetch.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        self.fetch(false).await
    }

    /// After the API refused token `seen` with a 401: a refreshed token, once per token (the
    /// newer one when another request refreshed meanwhile); `None` when no new token can help.
    pub(crate) async fn after_unauthorized(&self, seen: u64) -> Option<Current> {
        let _turn = self.fetch.lock().await;
        if let Some(c) = self.read() {
            if c.generation != seen {
                return Some(c);
            }
            if c.after_401.is_some_and(|t| t.elapsed() < REFUSED_AGAIN) {
                return None;
            }
        }
        match self.fetch(true).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "proxy: refresh after a 401 failed");
                None
            }
        }
    }

    fn read(&self) -> Option<Current> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fresh(&self) -> Option<Current> {
        self.read()
            .filter(|c| c.expires_at.is_none_or(|t| t - now_ms() > MARGIN_MS))
    }

    /// A hand-out (or, `force`, a refresh) from the core, on a blocking thread.
    async fn fetch(&self, force: bool) -> Result<Current, String> {
        let grant = self.grant.clone();
        let handed = tokio::task::spawn_blocking(move || {
            let tenant = grant.vault.tenant(&grant.tenant)?;
            let deadline = Deadline::within(TIMEOUT);
            let actor = Actor::new(ActorKind::Proxy).with_hint(Some("proxy".into()));
            if force {
                tenant.refresh(&grant.connection, &deadline, &actor)
            } else {
                tenant.access_token(&grant.connection, MIN_VALID, &deadline, &actor)
            }
        })
        .await
        .map_err(|e| format!("the token lookup stopped: {e}"))?
        .map_err(|e| e.to_string())?;
        let mut header = HeaderValue::from_str(&format!("Bearer {}", handed.token.expose()))
            .map_err(|_| "the access token holds characters an HTTP header cannot carry")?;
        header.set_sensitive(true);
        let current = Current {
            header,
            fingerprint: self.grant.vault.fingerprint(handed.token.expose()).into(),
            token: Arc::new(handed.token),
            generation: self.generation.fetch_add(1, Ordering::Relaxed) + 1,
            expires_at: handed.expires_at,
            after_401: force.then(Instant::now),
        };
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(current.clone());
        Ok(current)
    }
}

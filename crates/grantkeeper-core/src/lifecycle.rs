//! Keeping grants alive: handing out access tokens, refreshing them once per grant across
//! threads and processes, rotation- and crash-safe; revocation and introspection.
//!
//! # One refresh per grant
//! Threads of one process first queue on an in-process gate per connection; the first one takes
//! an exclusive `flock` on `<vault>/locks/<connection>.lock`, which conflicts across processes
//! (and across threads, each of which opens the file itself). After taking it, the
//! connection is read again: if another caller refreshed meanwhile, its token is handed out and
//! no request is sent. So N callers of an expiring token cause one refresh request.
//!
//! # Crash safety, step by step
//! 1. *Lock taken, nothing sent.* A kill releases the lock (the kernel drops it); nothing changed.
//! 2. *Request sent, no answer read.* The provider may have rotated the refresh token, and the
//!    new one is lost with the process. The keychain still holds the old one: providers with a
//!    reuse grace period (Xero: 30 min) accept it again, and the next refresh recovers. A
//!    provider with strict single use cannot be made safe here by any client.
//! 3. *Answer read.* A rotated refresh token is first written, encrypted under the tenant key, to
//!    the `refresh_journal` row of the connection (one small SQLite commit, microseconds after the
//!    answer): a kill after this point loses nothing.
//! 4. *Journal written, keychain not yet.* The next refresh (under the lock) finds the journal
//!    row, moves its token to the keychain, deletes the row, then refreshes with it.
//! 5. *Keychain written, database not yet.* The keychain holds the new refresh token and the
//!    database the old access token; the journal row repeats what the keychain already holds. The
//!    next caller sees an expired access token and refreshes with the new refresh token.
//! 6. *Database written.* The new access token is cached; the journal row was deleted in the same
//!    transaction, with the `refreshed` event and the caller's `handed_out` event.
//!
//! The new refresh token always reaches the keychain before the new access token is used or
//! returned. When the answer carries no refresh token, the old one stays.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use ts_rs::TS;

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::catalog::{Catalog, Preset, Revocation};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::http::HttpError;
use crate::model::{now_ms, ConnectionId, ConnectionStatus, ExpirySource, UnixMillis};
use crate::oauth::flow::{self, Client, Quirks, TokenEndpoint};
use crate::oauth::jwt::DecodedJwt;
use crate::oauth::token::{clamp_min_valid, expiry_after, TokenResponse};
use crate::oauth::OAuthError;
use crate::secret::{AccessToken, RefreshToken, SecretText};
use crate::vault::TenantVault;

/// Default minimum remaining validity of a handed-out access token.
pub const DEFAULT_MIN_VALID: Duration = Duration::from_secs(60);
/// How long a caller waits for another caller's refresh of the same grant.
const LOCK_WAIT: Duration = Duration::from_secs(120);
/// Attempts for transient refresh failures (5xx, network, timeouts), all within the caller's
/// [`Deadline`].
const ATTEMPTS: u32 = 3;

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

/// What the user should do about a refresh failure of `class`, as a sentence to append.
pub fn advice(class: FailureClass) -> &'static str {
    match class {
        FailureClass::NeedsReconsent => {
            ". The grant is no longer valid: run `grantkeeper reconsent` (or Re-consent in the app)"
        }
        FailureClass::Configuration => ". Check the provider app's client id and secret",
        FailureClass::Transient => ". Nothing was stored; try again later",
    }
}

/// Sorts a refresh failure.
pub fn classify(e: &OAuthError) -> FailureClass {
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

/// How an access token is shown to the user (recorded in the `revealed` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    /// Copied to the clipboard.
    Copy,
    /// Shown on screen.
    Reveal,
}

/// What revoking a grant achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RevokeOutcome {
    /// Whether the provider confirmed the revocation.
    pub revoked_at_provider: bool,
    /// What happened, in plain words.
    pub detail: String,
    /// Tokens already issued may live on: say so.
    pub caveat: String,
}

/// The vault's folder of per-connection lock files.
pub(crate) const LOCKS_DIR: &str = "locks";

/// An exclusive lock on one connection's refresh, released on drop.
struct RefreshLock(File);

impl RefreshLock {
    /// Waits for the lock until the deadline (and at most [`LOCK_WAIT`]).
    fn acquire(path: PathBuf, deadline: &Deadline) -> Result<Self> {
        if let Some(dir) = path.parent() {
            crate::private::ensure_dir(dir)?;
        }
        let file = crate::private::open_lock_file(&path)?;
        let give_up = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self(file)),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < give_up => {
                    deadline.check(Some(&"another process is refreshing this grant"))?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Invalid(
                        "another Grantkeeper process has been refreshing this connection for 2 minutes; try again".into(),
                    ))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
        }
    }
}

impl Drop for RefreshLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Where threads of one process wait while one of them refreshes a connection. Waiters leave
/// their request at the gate; the refreshing thread records all their hand-outs in the same
/// transaction as the refresh (one commit for all) and leaves each its token.
#[derive(Debug, Default)]
pub(crate) struct RefreshGate {
    state: std::sync::Mutex<GateState>,
    done: std::sync::Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    refreshing: bool,
    waiters: Vec<Arc<Waiter>>,
}

/// A thread waiting for another thread's refresh.
#[derive(Debug)]
struct Waiter {
    actor: Actor,
    min_valid_ms: i64,
    /// Filled by the refreshing thread when the new token satisfies `min_valid_ms`.
    token: std::sync::Mutex<Option<HandOut>>,
}

/// The right to refresh, held by one thread; dropping it wakes every waiter.
struct GateTurn<'g>(&'g RefreshGate);

/// What entering the gate gave.
enum Entry<'g> {
    /// This thread refreshes.
    Turn(GateTurn<'g>),
    /// Another thread refreshed and handed this one its token.
    Served(HandOut),
    /// Another thread's refresh is over without a token for this one: try again.
    Retry,
}

/// What a waiter reports when its deadline passes at the gate.
const WAITING_AT_GATE: &str = "another thread is refreshing this grant";

impl RefreshGate {
    fn enter(&self, actor: &Actor, min_valid_ms: i64, deadline: &Deadline) -> Result<Entry<'_>> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.refreshing {
            state.refreshing = true;
            return Ok(Entry::Turn(GateTurn(self)));
        }
        let me = Arc::new(Waiter {
            actor: actor.clone(),
            min_valid_ms,
            token: std::sync::Mutex::new(None),
        });
        state.waiters.push(me.clone());
        let waiting = |s: &mut GateState| s.waiters.iter().any(|w| Arc::ptr_eq(w, &me));
        // Woken every 50 ms to notice a cancel; the deadline bounds the wait.
        while waiting(&mut state) {
            if deadline.is_over() {
                // Leave the gate before the refreshing thread can serve this waiter.
                state.waiters.retain(|w| !Arc::ptr_eq(w, &me));
                return Err(deadline.error(Some(&WAITING_AT_GATE)));
            }
            let slice = deadline.remaining().min(Duration::from_millis(50));
            state = self
                .done
                .wait_timeout(state, slice)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(state);
        let token = me.token.lock().unwrap_or_else(|p| p.into_inner()).take();
        Ok(token.map_or(Entry::Retry, Entry::Served))
    }

    /// The waiters so far; they stay registered until the turn ends.
    fn waiters(&self) -> Vec<Arc<Waiter>> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiters
            .clone()
    }
}

impl Drop for GateTurn<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        state.refreshing = false;
        state.waiters.clear();
        drop(state);
        self.0.done.notify_all();
    }
}

/// A connection's provider app with its quirks and client.
struct GrantContext {
    app: crate::model::ProviderApp,
    quirks: Quirks,
    client: Client,
    preset: Option<&'static Preset>,
}

impl GrantContext {
    /// The `which` endpoint ("token", "introspection") with client authentication.
    fn endpoint<'a>(
        &'a self,
        which: &str,
        http: &'a crate::http::HttpClient,
    ) -> Result<TokenEndpoint<'a>, OAuthError> {
        Ok(self.endpoint_at(flow::require(&self.app.endpoints, which)?, http))
    }

    /// `url` with the app's client authentication.
    fn endpoint_at<'a>(
        &'a self,
        url: &'a str,
        http: &'a crate::http::HttpClient,
    ) -> TokenEndpoint<'a> {
        TokenEndpoint {
            url,
            client: &self.client,
            quirks: &self.quirks,
            http,
        }
    }

    /// Where this app revokes grants: the URL stored at registration. Apps registered before
    /// Grantkeeper stored it for every style fall back to the preset's URL only while they use
    /// the preset's own hosts; any other app must be registered again.
    fn revocation_url(&self) -> Result<String, OAuthError> {
        if let Some(url) = &self.app.endpoints.revocation {
            return Ok(url.clone());
        }
        let none = std::collections::BTreeMap::new();
        let preset_default = self.preset.and_then(|p| {
            let defaults = p.resolve(&none).ok()?;
            (defaults.token == self.app.endpoints.token)
                .then(|| p.revocation_url(&none, &self.client.id).ok().flatten())
                .flatten()
        });
        preset_default.ok_or_else(|| {
            OAuthError::Config(
                "the provider app has no revocation endpoint: revoke the grant in the provider's own console, or register the app again with its revocation URL (--revoke-url)".into(),
            )
        })
    }
}

/// The connection fields a refresh decision needs.
struct Row {
    status: ConnectionStatus,
    has_access: bool,
}

/// An access token handed out, with the expiry it was handed out with (read in the same
/// transaction, so it is this token's and not a newer one's).
#[derive(Debug, Clone)]
pub struct HandOut {
    /// The token.
    pub token: AccessToken,
    /// When it expires; `None` when the provider did not say.
    pub expires_at: Option<UnixMillis>,
}

impl TenantVault<'_> {
    /// A valid access token for the connection, refreshed if it would expire within
    /// `min_valid` (at most 10 years: [`crate::oauth::token::MAX_LIFETIME`]), or a failure by
    /// `deadline`. Every hand-out is recorded (who asked, application hint) before the token is
    /// returned; if the record cannot be written, no token is returned.
    pub fn access_token(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        let min_valid = clamp_min_valid(min_valid);
        if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
            return Ok(token);
        }
        self.refresh_then_hand_out(id, min_valid, deadline, actor, false)
    }

    /// The access token for the user's eyes or clipboard, valid for at least a minute
    /// (refreshed first if needed, recorded as usual). The disclosure is recorded as a
    /// `revealed` event, in the same transaction that reads the token.
    ///
    /// A refresh needed first ends by `deadline`; when the caller cancels while it runs, its new
    /// tokens are kept but nothing is disclosed (and no `revealed` event written). A token that
    /// lives less than a minute even when fresh is disclosed right after its refresh.
    pub fn disclose_access_token(
        &self,
        id: &ConnectionId,
        how: Disclosure,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        const MIN_VALID: Duration = Duration::from_secs(60);
        if let Some(token) = self.hand_out_if_valid(id, MIN_VALID, actor, Some(how))? {
            return Ok(token);
        }
        drop(self.refresh(id, deadline, actor)?);
        deadline.check(None)?;
        self.hand_out_if_valid(id, Duration::from_secs(1), actor, Some(how))?
            .ok_or_else(|| Error::NotUsable {
                status: self.row(id).map_or(ConnectionStatus::Error, |r| r.status),
                message: "the connection has no valid access token; refresh or re-consent it"
                    .into(),
            })
    }

    /// Refreshes now, whatever the cached token's expiry, and hands out the new token; or a
    /// failure by `deadline` (which the window's Cancel ends early).
    pub fn refresh(
        &self,
        id: &ConnectionId,
        deadline: &Deadline,
        actor: &Actor,
    ) -> Result<HandOut> {
        self.refresh_then_hand_out(id, DEFAULT_MIN_VALID, deadline, actor, true)
    }

    fn row(&self, id: &ConnectionId) -> Result<Row> {
        let conn = self.vault.conn();
        let row = conn
            .query_row(
                "SELECT status, access_token IS NOT NULL FROM connections WHERE id = ?1 AND tenant_id = ?2",
                params![id.as_str(), self.tenant.id.as_str()],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "connection",
                name: id.to_string(),
            })?;
        Ok(Row {
            status: ConnectionStatus::parse(&row.0).unwrap_or(ConnectionStatus::Error),
            has_access: row.1,
        })
    }

    /// The fast path: one write transaction that checks validity, decrypts, records the
    /// hand-out and returns the token; `None` when a refresh is needed.
    fn hand_out_if_valid(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        actor: &Actor,
        shown: Option<Disclosure>,
    ) -> Result<Option<HandOut>> {
        let aad = self.aad("connections", "access_token", id.as_str());
        let min_ms = i64::try_from(min_valid.as_millis()).unwrap_or(i64::MAX);
        // A read first: an expiring token must not take the write lock.
        let (status, expires): (String, Option<i64>) = self
            .vault
            .conn()
            .prepare_cached("SELECT status, access_expires_at FROM connections WHERE id = ?1 AND tenant_id = ?2")?
            .query_row(params![id.as_str(), self.tenant.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "connection",
                name: id.to_string(),
            })?;
        if status != "active" || expires.is_some_and(|e| e.saturating_sub(now_ms()) < min_ms) {
            return Ok(None);
        }
        self.vault.write(|tx| {
            let (status, expires, blob): (String, Option<i64>, Option<Vec<u8>>) = tx
                .prepare_cached(
                    "SELECT status, access_expires_at, access_token FROM connections WHERE id = ?1 AND tenant_id = ?2",
                )?
                .query_row(params![id.as_str(), self.tenant.id.as_str()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?
                .ok_or_else(|| Error::NotFound {
                    what: "connection",
                    name: id.to_string(),
                })?;
            let now = now_ms();
            if status != "active" {
                return Ok(None);
            }
            let Some(blob) = blob else { return Ok(None) };
            if expires.is_some_and(|e| e.saturating_sub(now) < min_ms) {
                return Ok(None);
            }
            let token = AccessToken::new(self.key.open(&aad, &blob)?.expose());
            self.record_hand_out(tx, id, &token, now, actor, shown)?;
            Ok(Some(HandOut {
                token,
                expires_at: expires,
            }))
        })
    }

    fn record_hand_out(
        &self,
        tx: &audit::HistoryTx<'_>,
        id: &ConnectionId,
        token: &AccessToken,
        now: UnixMillis,
        actor: &Actor,
        shown: Option<Disclosure>,
    ) -> Result<()> {
        let event = match shown {
            None => NewEvent::new(EventKind::HandedOut, actor),
            Some(how) => NewEvent::new(EventKind::Revealed, actor)
                .detail(serde_json::json!({ "secret": "access_token", "how": how })),
        };
        audit::append(
            tx,
            &event
                .at(now)
                .tenant(&self.tenant.id)
                .connection(id)
                .fingerprint(self.vault.fingerprint(token.expose())),
        )?;
        tx.prepare_cached("UPDATE connections SET last_used_at = ?2 WHERE id = ?1")?
            .execute(params![id.as_str(), now])?;
        Ok(())
    }

    /// The connection's lock file. Ids come from callers (the window, the agent), so only a
    /// well-formed id (a UUID, as the vault makes them) becomes part of a path.
    fn lock_path(&self, id: &ConnectionId) -> Result<PathBuf> {
        if uuid::Uuid::try_parse(id.as_str()).is_err() {
            return Err(Error::NotFound {
                what: "connection",
                name: id.to_string(),
            });
        }
        Ok(self.vault.home().join(LOCKS_DIR).join(format!("{id}.lock")))
    }

    fn refresh_then_hand_out(
        &self,
        id: &ConnectionId,
        min_valid: Duration,
        deadline: &Deadline,
        actor: &Actor,
        force: bool,
    ) -> Result<HandOut> {
        // Threads of this process wait at the gate while one of them refreshes, then all try
        // the fast path at once; only the thread that opens the gate reaches the file lock.
        let gate = self.vault.refresh_gate(id);
        let min_ms = if force {
            i64::MAX
        } else {
            i64::try_from(min_valid.as_millis()).unwrap_or(i64::MAX)
        };
        let _turn = loop {
            match gate.enter(actor, min_ms, deadline)? {
                Entry::Turn(turn) => break turn,
                Entry::Served(token) => return Ok(token),
                Entry::Retry if force => continue,
                Entry::Retry => {
                    if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
                        return Ok(token);
                    }
                }
            }
        };
        if !force {
            if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
                return Ok(token);
            }
        }
        let _lock = RefreshLock::acquire(self.lock_path(id)?, deadline)?;
        self.recover_journal(id)?;
        // Another process may have refreshed while this one waited for the lock.
        if !force {
            if let Some(token) = self.hand_out_if_valid(id, min_valid, actor, None)? {
                return Ok(token);
            }
        }
        let row = self.row(id)?;
        let not_usable = |message: &str| Error::NotUsable {
            status: row.status,
            message: message.into(),
        };
        match row.status {
            ConnectionStatus::Active | ConnectionStatus::Error => {}
            ConnectionStatus::NeedsReconsent => {
                return Err(not_usable(
                    "this connection needs re-consent: the provider no longer accepts its refresh token",
                ))
            }
            ConnectionStatus::Revoked => {
                return Err(not_usable(
                    "this connection was revoked: consent again to use it",
                ))
            }
        }
        let rt = self
            .vault
            .keychain
            .get(&self.refresh_entry(id))?
            .map(|t| RefreshToken::new(t.expose()));
        let Some(rt) = rt else {
            return Err(not_usable(if row.has_access {
                "the access token has expired and this connection has no refresh token: connect again"
            } else {
                "this connection holds no token: connect again"
            }));
        };
        let ctx = self.grant_context(id)?;
        let http = self.vault.http.bounded_by(deadline);
        let endpoint = ctx.endpoint("token", &http).map_err(Error::OAuth)?;
        let response = match self.request_refresh(&endpoint, &rt, deadline) {
            Ok(r) => r,
            Err(e) => {
                let over = deadline.is_over();
                let recorded = self.record_failure(id, e, actor);
                // The deadline is what the caller ran into; the attempt's failure says why.
                return Err(if over && !matches!(recorded, Error::Database(_)) {
                    deadline.error(Some(&recorded))
                } else {
                    recorded
                });
            }
        };
        self.store_refresh(id, response, ctx.preset, actor, &gate)
    }

    /// Sends the refresh, retrying transient failures with back-off while the deadline allows.
    fn request_refresh(
        &self,
        endpoint: &TokenEndpoint<'_>,
        rt: &RefreshToken,
        deadline: &Deadline,
    ) -> Result<TokenResponse, OAuthError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match endpoint.request_tokens(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.expose()),
            ]) {
                Ok(r) => return Ok(r),
                Err(e)
                    if classify(&e) == FailureClass::Transient
                        && attempt < ATTEMPTS
                        && retryable(&e) =>
                {
                    let base = 250u64 << (attempt - 1);
                    let jitter = rand::thread_rng().gen_range(0..=base / 2);
                    if deadline
                        .sleep(Duration::from_millis(base + jitter))
                        .is_err()
                    {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn record_failure(&self, id: &ConnectionId, e: OAuthError, actor: &Actor) -> Error {
        let class = classify(&e);
        let message = e.to_string();
        let (status, detail) = match class {
            FailureClass::NeedsReconsent => (
                Some(ConnectionStatus::NeedsReconsent),
                format!("The provider rejected the refresh token ({message}). Consent again to restore access."),
            ),
            FailureClass::Configuration => (
                Some(ConnectionStatus::Error),
                format!("The provider rejected the client ({message}). Check the client id and secret."),
            ),
            FailureClass::Transient => (None, message.clone()),
        };
        let written = self.vault.write(|tx| {
            if let Some(s) = status {
                tx.execute(
                    "UPDATE connections SET status = ?2, status_detail = ?3 WHERE id = ?1",
                    params![id.as_str(), s.as_str(), detail],
                )?;
            }
            audit::append(
                tx,
                &self
                    .event(EventKind::RefreshFailed, id, actor)
                    .detail(json!({ "class": class, "error": message })),
            )?;
            Ok(())
        });
        match written {
            Ok(()) => Error::Refresh { class, source: e },
            Err(w) => w,
        }
    }

    fn grant_context(&self, id: &ConnectionId) -> Result<GrantContext> {
        let mut app = self.connection_app(&self.connection(id)?)?;
        // An app registered with its issuer only (before endpoints were discovered at
        // registration): its issuer says where the other endpoints are.
        if app.endpoints.token.is_none() {
            if let Some(issuer) = app.endpoints.issuer.clone() {
                let found = self.vault.discover(&issuer)?;
                app.endpoints.fill_missing_from(found);
            }
        }
        let preset = match &app.preset {
            Some(p) => Some(
                Catalog::builtin()
                    .get(p)
                    .map_err(|e| Error::Invalid(e.to_string()))?,
            ),
            None => None,
        };
        let quirks = Quirks::new(preset, app.has_client_secret);
        let client = Client {
            id: app.client_id.clone(),
            secret: self.client_secret(&app.id)?,
        };
        Ok(GrantContext {
            app,
            quirks,
            client,
            preset,
        })
    }

    /// Moves a journaled refresh token into the keychain (step 4 of the crash analysis).
    fn recover_journal(&self, id: &ConnectionId) -> Result<()> {
        let blob: Option<Vec<u8>> = self
            .vault
            .conn()
            .query_row(
                "SELECT refresh_token FROM refresh_journal WHERE connection_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(blob) = blob else { return Ok(()) };
        let rt = self.key.open(
            &self.aad("refresh_journal", "refresh_token", id.as_str()),
            &blob,
        )?;
        self.vault.keychain.set(&self.refresh_entry(id), &rt)?;
        self.vault.conn().execute(
            "DELETE FROM refresh_journal WHERE connection_id = ?1",
            [id.as_str()],
        )?;
        tracing::info!(connection = %id, "recovered a rotated refresh token from the journal");
        Ok(())
    }

    fn store_refresh(
        &self,
        id: &ConnectionId,
        response: TokenResponse,
        preset: Option<&Preset>,
        actor: &Actor,
        gate: &RefreshGate,
    ) -> Result<HandOut> {
        let mut served: Vec<Arc<Waiter>> = Vec::new();
        let now = now_ms();
        let rotated = response.tokens.refresh_token.clone();
        if let Some(new_rt) = &rotated {
            let blob = self.key.seal(
                &self.aad("refresh_journal", "refresh_token", id.as_str()),
                new_rt.expose(),
            );
            self.vault.conn().execute(
                "INSERT OR REPLACE INTO refresh_journal (connection_id, refresh_token, created_at) VALUES (?1, ?2, ?3)",
                params![id.as_str(), blob, now],
            )?;
            crate::testing::crash_point("after_journal");
            self.vault
                .keychain
                .set(&self.refresh_entry(id), &SecretText::new(new_rt.expose()))?;
            crate::testing::crash_point("after_keychain");
        }
        let token = response.tokens.access_token.clone();
        let expiry = refreshed_expiry(&response, preset, now);
        let access_blob = self.key.seal(
            &self.aad("connections", "access_token", id.as_str()),
            token.expose(),
        );
        let id_blob = response.tokens.id_token.as_ref().map(|t| {
            self.key.seal(
                &self.aad("connections", "id_token", id.as_str()),
                t.expose(),
            )
        });
        let scopes = response
            .scopes
            .as_ref()
            .map(|s| serde_json::to_string(s).expect("strings serialize"));
        let sliding = response
            .refresh_expires_in
            .map(|s| expiry_after(now, s))
            .or_else(|| {
                preset
                    .and_then(|p| p.expiry.refresh_idle_days)
                    .map(|d| now + i64::from(d) * 86_400_000)
            });
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET access_token = ?2, access_expires_at = ?3, access_expiry_source = ?4,
                        id_token = COALESCE(?5, id_token), last_refresh_at = ?6, status = 'active',
                        status_detail = NULL, scopes_granted = COALESCE(?7, scopes_granted),
                        refresh_expires_at = ?8
                 WHERE id = ?1",
                params![
                    id.as_str(),
                    access_blob,
                    expiry.map(|(t, _)| t),
                    expiry.map(|(_, s)| serde_json::to_string(&s).expect("enums serialize")),
                    id_blob,
                    now,
                    scopes,
                    sliding,
                ],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::Refreshed, actor)
                    .at(now)
                    .tenant(&self.tenant.id)
                    .connection(id)
                    .fingerprint(self.vault.fingerprint(token.expose()))
                    .detail(json!({ "rotated": rotated.is_some() })),
            )?;
            self.record_hand_out(tx, id, &token, now, actor, None)?;
            // Threads of this process waiting at the gate get the same token, recorded here.
            let valid_ms = expiry.map_or(i64::MAX, |(t, _)| t.saturating_sub(now));
            let mut events = Vec::new();
            for w in gate.waiters().iter().filter(|w| w.min_valid_ms <= valid_ms) {
                events.push(self.event(EventKind::HandedOut, id, &w.actor).at(now).fingerprint(self.vault.fingerprint(token.expose())));
                served.push(w.clone());
            }
            if !events.is_empty() {
                audit::append_batch(tx, &events)?;
            }
            Ok(())
        })?;
        let handed = HandOut {
            token,
            expires_at: expiry.map(|(t, _)| t),
        };
        for w in served {
            *w.token.lock().unwrap_or_else(|p| p.into_inner()) = Some(handed.clone());
        }
        crate::testing::crash_point("after_commit");
        Ok(handed)
    }

    /// Deletes a connection, revoking its grant at the provider first when `revoke` is set and
    /// it was not revoked already (a failed revocation keeps the connection).
    pub fn revoke_and_delete(
        &self,
        id: &ConnectionId,
        revoke: bool,
        actor: &Actor,
    ) -> Result<Option<RevokeOutcome>> {
        let outcome = if revoke && self.row(id)?.status != ConnectionStatus::Revoked {
            Some(self.revoke(id, actor)?)
        } else {
            None
        };
        self.delete_connection(id, actor)?;
        Ok(outcome)
    }

    /// Revokes the grant at the provider (RFC 7009 or the provider's own method), then forgets
    /// its tokens locally, recording whether the provider confirmed.
    pub fn revoke(&self, id: &ConnectionId, actor: &Actor) -> Result<RevokeOutcome> {
        let _lock = RefreshLock::acquire(self.lock_path(id)?, &Deadline::within(LOCK_WAIT))?;
        self.recover_journal(id)?;
        let ctx = self.grant_context(id)?;
        let (client, preset) = (&ctx.client, ctx.preset);
        let rt = self.vault.keychain.get(&self.refresh_entry(id))?;
        let access = self.cached_access_token(id)?;
        let method = preset
            .map(|p| p.revocation.clone())
            .unwrap_or(Revocation::Rfc7009);
        let http = &self.vault.http;
        let attempt = (|| -> Result<String, OAuthError> {
            if let Revocation::Manual { instructions } = &method {
                return Err(OAuthError::Config(format!(
                    "this provider has no revocation API: {instructions}"
                )));
            }
            // Every style goes to the app's own revocation URL, as registered.
            let url = ctx.revocation_url()?;
            match &method {
                Revocation::Rfc7009 | Revocation::Manual { .. } => {
                    let ep = ctx.endpoint_at(&url, http);
                    let mut done = Vec::new();
                    if let Some(rt) = &rt {
                        revoke_rfc7009(&ep, rt.expose(), "refresh_token")?;
                        done.push("refresh token");
                    }
                    if let Some(at) = &access {
                        revoke_rfc7009(&ep, at.expose(), "access_token")?;
                        done.push("access token");
                    }
                    if done.is_empty() {
                        Ok("nothing to revoke: the connection held no token".into())
                    } else {
                        Ok(format!("the provider revoked the {}", done.join(" and ")))
                    }
                }
                Revocation::BearerPost { .. } => {
                    let at = access.as_ref().ok_or_else(|| {
                        OAuthError::Config("no access token to revoke with".into())
                    })?;
                    let auth = format!("Bearer {}", at.expose());
                    let resp = http.post_form(&url, &[("Authorization", &auth)], &[])?;
                    check_revocation_status(resp.status)?;
                    Ok("the provider revoked the token".into())
                }
                Revocation::BasicDeleteJson { field, .. } => {
                    let at = access
                        .as_ref()
                        .ok_or_else(|| OAuthError::Config("no access token to revoke".into()))?;
                    let secret = client.secret.as_ref().ok_or_else(|| {
                        OAuthError::Config("revoking needs the client secret".into())
                    })?;
                    use base64::Engine;
                    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        client.id,
                        secret.expose()
                    ));
                    let auth = format!("Basic {basic}");
                    let resp = http.send_json(
                        "DELETE",
                        &url,
                        &[("Authorization", &auth), ("Accept", "application/json")],
                        &json!({ field: at.expose() }),
                    )?;
                    check_revocation_status(resp.status)?;
                    Ok("the provider deleted the authorization".into())
                }
            }
        })();
        let (confirmed, detail) = match attempt {
            Ok(d) => (true, d),
            Err(e) => (false, format!("not revoked at the provider: {e}")),
        };
        self.vault.keychain.delete(&self.refresh_entry(id))?;
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET status = 'revoked', status_detail = ?2, access_token = NULL, id_token = NULL,
                        has_refresh_token = 0, access_expires_at = NULL WHERE id = ?1",
                params![id.as_str(), detail],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append(
                tx,
                &self.event(EventKind::Revoked, id, actor)
                    .detail(json!({ "at_provider": confirmed, "detail": detail })),
            )?;
            Ok(())
        })?;
        Ok(RevokeOutcome {
            revoked_at_provider: confirmed,
            detail,
            caveat: "Access tokens already issued may keep working until they expire; revoking a grant does not recall them everywhere.".into(),
        })
    }

    fn cached_access_token(&self, id: &ConnectionId) -> Result<Option<AccessToken>> {
        Ok(self
            .connection_secret(id, SecretColumn::AccessToken)?
            .map(|t| AccessToken::new(t.expose())))
    }

    /// Decrypts one secret column of this tenant's connection; `None` when it holds nothing.
    fn connection_secret(
        &self,
        id: &ConnectionId,
        column: SecretColumn,
    ) -> Result<Option<SecretText>> {
        let name = column.name();
        let blob: Option<Option<Vec<u8>>> = self
            .vault
            .conn()
            .query_row(
                &format!("SELECT {name} FROM connections WHERE id = ?1 AND tenant_id = ?2"),
                params![id.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let blob = blob.ok_or_else(|| Error::NotFound {
            what: "connection",
            name: id.to_string(),
        })?;
        blob.map(|b| {
            Ok(self
                .key
                .open(&self.aad("connections", name, id.as_str()), &b)?)
        })
        .transpose()
    }

    /// Asks the provider about the cached access token (RFC 7662). Needs the network.
    pub fn introspect(&self, id: &ConnectionId) -> Result<Map<String, Value>> {
        let Some(at) = self.cached_access_token(id)? else {
            return Err(Error::NotUsable {
                status: self.row(id)?.status,
                message: "this connection holds no access token to introspect".into(),
            });
        };
        let ctx = self.grant_context(id)?;
        let ep = ctx
            .endpoint("introspection", &self.vault.http)
            .map_err(Error::OAuth)?;
        flow::introspect(&ep, at.expose(), "access_token").map_err(Error::OAuth)
    }

    /// Decodes the cached access and ID tokens (when they are JWTs) with no network, and no
    /// token leaving the core: only headers and claims.
    pub fn inspect(&self, id: &ConnectionId) -> Result<TokenInspection> {
        let access = self.cached_access_token(id)?;
        let id_token = self.connection_secret(id, SecretColumn::IdToken)?;
        let decode = |t: &str| {
            DecodedJwt::decode(t).map(|d| JwtView {
                header: d.header,
                claims: d.claims,
            })
        };
        Ok(TokenInspection {
            access_token: access.as_ref().and_then(|t| decode(t.expose())),
            access_token_is_jwt: access
                .as_ref()
                .is_some_and(|t| DecodedJwt::decode(t.expose()).is_some()),
            id_token: id_token.as_ref().and_then(|t| decode(t.expose())),
        })
    }
}

/// The encrypted token columns of a connection row.
#[derive(Debug, Clone, Copy)]
enum SecretColumn {
    AccessToken,
    IdToken,
}

impl SecretColumn {
    fn name(self) -> &'static str {
        match self {
            Self::AccessToken => "access_token",
            Self::IdToken => "id_token",
        }
    }
}

/// Decoded header and claims of a JWT.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct JwtView {
    /// The JOSE header.
    #[ts(type = "Record<string, unknown>")]
    pub header: Map<String, Value>,
    /// The claims.
    #[ts(type = "Record<string, unknown>")]
    pub claims: Map<String, Value>,
}

/// What offline inspection shows of a connection's tokens.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TokenInspection {
    /// The access token's claims, when it is a JWT.
    pub access_token: Option<JwtView>,
    /// Whether the access token is a JWT (opaque tokens cannot be decoded).
    pub access_token_is_jwt: bool,
    /// The ID token's claims.
    pub id_token: Option<JwtView>,
}

fn revoke_rfc7009(ep: &TokenEndpoint<'_>, token: &str, hint: &str) -> Result<(), OAuthError> {
    let resp = ep.post(&[("token", token), ("token_type_hint", hint)])?;
    check_revocation_status(resp.status)
}

fn check_revocation_status(status: u16) -> Result<(), OAuthError> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(OAuthError::Provider {
            error: format!("http_{status}"),
            description: Some("the revocation endpoint refused".into()),
            status,
        })
    }
}

fn retryable(e: &OAuthError) -> bool {
    match e {
        OAuthError::Http(HttpError::Timeout { .. } | HttpError::Network { .. }) => true,
        OAuthError::Provider { status, .. } => *status >= 500 || *status == 429,
        OAuthError::Malformed(m) => m.contains("HTTP 5"),
        _ => false,
    }
}

fn refreshed_expiry(
    response: &TokenResponse,
    preset: Option<&Preset>,
    now: UnixMillis,
) -> Option<(UnixMillis, ExpirySource)> {
    if let Some(s) = response.expires_in {
        return Some((expiry_after(now, s), ExpirySource::Response));
    }
    if let Some(exp) =
        DecodedJwt::decode(response.tokens.access_token.expose()).and_then(|d| d.expires_at_ms())
    {
        return Some((exp, ExpirySource::JwtExp));
    }
    preset
        .and_then(|p| p.expiry.access_default_secs)
        .map(|s| (expiry_after(now, s), ExpirySource::CatalogDefault))
}

/// A refresh token that will die soon unless something happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ExpiryWarning {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant.
    pub tenant_id: crate::model::TenantId,
    /// Its name.
    pub name: String,
    /// When the refresh token expires.
    #[ts(type = "number")]
    pub expires_at: UnixMillis,
    /// Whether the expiry is a hard one (only re-consent helps) or from inactivity (a refresh
    /// renews it).
    pub hard: bool,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MaintenanceReport {
    /// Connections refreshed to keep an idle refresh token alive.
    pub refreshed: Vec<ConnectionId>,
    /// Connections whose keep-alive refresh failed (recorded in their history).
    pub failed: Vec<ConnectionId>,
    /// Refresh tokens expiring within the warning window.
    pub warnings: Vec<ExpiryWarning>,
}

impl crate::Vault {
    /// Refresh tokens that expire within `within`, soonest first.
    pub fn expiry_warnings(&self, within: Duration) -> Result<Vec<ExpiryWarning>> {
        let horizon =
            now_ms().saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, tenant_id, name, refresh_expires_at, refresh_hard_expires_at FROM connections
             WHERE status = 'active' AND has_refresh_token = 1
               AND (refresh_expires_at <= ?1 OR refresh_hard_expires_at <= ?1)",
        )?;
        let rows = stmt.query_map([horizon], |r| {
            let sliding: Option<i64> = r.get(3)?;
            let hard: Option<i64> = r.get(4)?;
            let (expires_at, is_hard) = match (sliding, hard) {
                (Some(s), Some(h)) if h <= s => (h, true),
                (Some(s), _) => (s, false),
                (None, Some(h)) => (h, true),
                (None, None) => (i64::MAX, false),
            };
            Ok(ExpiryWarning {
                connection_id: ConnectionId::from_string(r.get::<_, String>(0)?),
                tenant_id: crate::model::TenantId::from_string(r.get::<_, String>(1)?),
                name: r.get(2)?,
                expires_at,
                hard: is_hard,
            })
        })?;
        let mut out: Vec<ExpiryWarning> = rows.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|w| w.expires_at);
        Ok(out)
    }

    /// One background pass: refreshes every grant whose refresh token would die from inactivity
    /// within `keep_alive` (Xero after 60 idle days, QuickBooks 100, Google 180), so unused
    /// connections stay alive, and lists the refresh tokens expiring within `warn`.
    pub fn maintain(&self, keep_alive: Duration, warn: Duration) -> Result<MaintenanceReport> {
        let actor = Actor::new(crate::audit::ActorKind::Background);
        let mut report = MaintenanceReport::default();
        for w in self.expiry_warnings(keep_alive)? {
            if w.hard {
                continue;
            }
            let scope = self.tenant(&w.tenant_id)?;
            match scope.refresh(&w.connection_id, &Deadline::default(), &actor) {
                Ok(token) => {
                    drop(token);
                    report.refreshed.push(w.connection_id);
                }
                Err(e) => {
                    tracing::warn!(connection = %w.connection_id, error = %e, "keep-alive refresh failed");
                    report.failed.push(w.connection_id);
                }
            }
        }
        report.warnings = self.expiry_warnings(warn)?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::audit::ActorKind;
    use crate::keychain::{Keychain, MemoryKeychain};
    use crate::model::{AccountIdentity, Endpoints, RedirectMode};
    use crate::oauth::stub::{Stub, StubRequest, StubResponse};
    use crate::secret::TokenSet;
    use crate::vault::{NewConnection, NewProviderApp};
    use crate::Vault;

    struct Fx {
        _dir: tempfile::TempDir,
        kc: Arc<MemoryKeychain>,
        vault: Vault,
        stub: Stub,
        id: ConnectionId,
    }

    fn actor() -> Actor {
        Actor::new(ActorKind::Cli)
    }

    /// A connection whose access token expired a minute ago, with refresh token `rt-0`.
    fn fx(handler: impl Fn(&StubRequest) -> StubResponse + Send + Sync + 'static) -> Fx {
        let stub = Stub::start(handler);
        let dir = tempfile::tempdir().unwrap();
        let kc = Arc::new(MemoryKeychain::default());
        let vault = Vault::open(dir.path(), kc.clone())
            .unwrap()
            .with_http_timeout(Duration::from_secs(2));
        let t = vault
            .create_tenant("Acme", Some("acme"), "", &actor())
            .unwrap();
        let id = {
            let scope = vault.tenant(&t.id).unwrap();
            let endpoints = Endpoints {
                token: Some(format!("{}/token", stub.base)),
                revocation: Some(format!("{}/revoke", stub.base)),
                ..Endpoints::default()
            };
            let app = scope
                .add_provider_app(public_app("stub", endpoints), &actor())
                .unwrap();
            store_grant(&scope, &app.id, "c", true)
        };
        Fx {
            _dir: dir,
            kc,
            vault,
            stub,
            id,
        }
    }

    fn scope(f: &Fx) -> TenantVault<'_> {
        f.vault
            .tenant(&f.vault.find_tenant("acme").unwrap().id)
            .unwrap()
    }

    fn stored_rt(f: &Fx) -> String {
        let t = scope(f);
        f.kc.get(&t.refresh_entry(&f.id))
            .unwrap()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    }

    fn refresh_requests(f: &Fx) -> Vec<String> {
        f.stub
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == "/token")
            .map(|r| r.body.clone())
            .collect()
    }

    fn rotating() -> impl Fn(&StubRequest) -> StubResponse + Send + Sync + 'static {
        let n = AtomicUsize::new(0);
        move |_| {
            let i = n.fetch_add(1, Ordering::SeqCst) + 1;
            StubResponse::json(
                200,
                &format!(
                    r#"{{"access_token":"at-{i}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{i}"}}"#
                ),
            )
        }
    }

    #[test]
    fn a_valid_token_needs_no_request() {
        let f = fx(rotating());
        let t = scope(&f);
        t.access_token(&f.id, Duration::ZERO, &Deadline::default(), &actor())
            .unwrap();
        assert_eq!(refresh_requests(&f).len(), 1, "expired: one refresh");
        let tok = t
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap();
        assert_eq!(tok.token.expose(), "at-1");
        assert_eq!(refresh_requests(&f).len(), 1, "valid: no request");
    }

    /// A hand-out carries its own token's expiry: from the fast path, from the refresh that made
    /// it, and not a later token's.
    #[test]
    fn a_hand_out_carries_its_tokens_expiry() {
        let f = fx(rotating());
        let t = scope(&f);
        let refreshed = t
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap();
        let stored = t.connection(&f.id).unwrap().access_expires_at;
        assert!(stored.is_some());
        assert_eq!(refreshed.expires_at, stored);
        let cached = t
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap();
        assert_eq!((cached.token.expose(), cached.expires_at), ("at-1", stored));
        std::thread::sleep(Duration::from_millis(5));
        let forced = t.refresh(&f.id, &Deadline::default(), &actor()).unwrap();
        assert_eq!(forced.token.expose(), "at-2");
        assert!(forced.expires_at > stored, "the new token's expiry");
        assert_eq!(
            forced.expires_at,
            t.connection(&f.id).unwrap().access_expires_at
        );
        assert_eq!(
            cached.expires_at, stored,
            "the earlier hand-out keeps its own"
        );
    }

    #[test]
    fn rotation_stores_the_new_refresh_token_first() {
        let f = fx(rotating());
        let t = scope(&f);
        let tok = t
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap();
        assert_eq!(tok.token.expose(), "at-1");
        assert_eq!(stored_rt(&f), "rt-1");
        assert!(refresh_requests(&f)[0].contains("refresh_token=rt-0"));
        let kinds: Vec<_> = f
            .vault
            .connection_history(&f.id, None, 3)
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::HandedOut,
                EventKind::Refreshed,
                EventKind::Consented
            ]
        );
        let journal: i64 = f
            .vault
            .conn()
            .query_row("SELECT COUNT(*) FROM refresh_journal", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, 0);
        let c = t.connection(&f.id).unwrap();
        assert!(c.last_refresh_at.is_some());
        assert!(c.access_expires_at.unwrap() > now_ms() + 3_500_000);
    }

    #[test]
    fn absurd_lifetimes_and_min_valid_are_clamped_without_overflow() {
        use base64::Engine;
        let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        let ten_years = crate::oauth::token::lifetime_ms(u64::MAX);
        let jwt_max = format!(
            "{}.{}.s",
            b64(r#"{"alg":"none"}"#),
            b64(&format!(r#"{{"exp":{}}}"#, i64::MAX))
        );
        let jwt_neg = format!(
            "{}.{}.s",
            b64(r#"{"alg":"none"}"#),
            b64(&format!(r#"{{"exp":{}}}"#, i64::MIN))
        );
        let answers = [
            format!(
                r#"{{"access_token":"at-1","token_type":"Bearer","expires_in":{}}}"#,
                u64::MAX
            ),
            format!(
                r#"{{"access_token":"at-2","token_type":"Bearer","expires_in":"{}"}}"#,
                i64::MAX
            ),
            format!(r#"{{"access_token":"{jwt_max}","token_type":"Bearer"}}"#),
            format!(r#"{{"access_token":"{jwt_neg}","token_type":"Bearer"}}"#),
        ];
        let n = Arc::new(AtomicUsize::new(0));
        let (n2, answers2) = (n.clone(), answers.clone());
        let f = fx(move |_| {
            let i = n2.fetch_add(1, Ordering::SeqCst).min(3);
            StubResponse::json(200, &answers2[i])
        });
        let t = scope(&f);
        for (i, expected) in [Some(ten_years), Some(ten_years), Some(ten_years), None]
            .into_iter()
            .enumerate()
        {
            // A token valid for exactly 10 years satisfies a 10-year min_valid in the same ms.
            std::thread::sleep(Duration::from_millis(3));
            let before = now_ms();
            // min_valid of u64::MAX seconds: clamped to 10 years, so a refresh, never a panic.
            t.access_token(&f.id, Duration::MAX, &Deadline::default(), &actor())
                .unwrap();
            let at = t.connection(&f.id).unwrap().access_expires_at.unwrap();
            match expected {
                Some(life) => assert!(
                    at >= before + life && at <= now_ms() + life,
                    "answer {i}: {at}"
                ),
                None => assert_eq!(at, 0, "a negative exp is long past"),
            }
        }
        assert_eq!(n.load(Ordering::SeqCst), 4, "each call refreshed");
        // The long-expired token is refreshed again, even for a small min_valid.
        t.access_token(
            &f.id,
            Duration::from_secs(1),
            &Deadline::default(),
            &actor(),
        )
        .unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn without_a_new_refresh_token_the_old_one_stays() {
        let f = fx(|_| {
            StubResponse::json(
                200,
                r#"{"access_token":"at-new","token_type":"Bearer","expires_in":60}"#,
            )
        });
        scope(&f)
            .access_token(
                &f.id,
                Duration::from_secs(1),
                &Deadline::default(),
                &actor(),
            )
            .unwrap();
        assert_eq!(stored_rt(&f), "rt-0");
    }

    #[test]
    fn invalid_grant_means_reconsent_and_keeps_the_connection() {
        let f = fx(|_| {
            StubResponse::json(
                400,
                r#"{"error":"invalid_grant","error_description":"expired"}"#,
            )
        });
        let t = scope(&f);
        let err = t
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Refresh {
                    class: FailureClass::NeedsReconsent,
                    ..
                }
            ),
            "{err}"
        );
        let c = t.connection(&f.id).unwrap();
        assert_eq!(c.status, ConnectionStatus::NeedsReconsent);
        assert!(c.status_detail.unwrap().contains("Consent again"));
        assert_eq!(stored_rt(&f), "rt-0", "kept for review");
        assert_eq!(
            f.vault.connection_history(&f.id, None, 1).unwrap()[0].kind,
            EventKind::RefreshFailed
        );
        // No further requests while it needs re-consent, and a typed error says why.
        assert!(matches!(
            t.access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor()),
            Err(Error::NotUsable {
                status: ConnectionStatus::NeedsReconsent,
                ..
            })
        ));
        assert_eq!(refresh_requests(&f).len(), 1);
    }

    #[test]
    fn invalid_client_is_a_configuration_error() {
        let f = fx(|_| StubResponse::json(401, r#"{"error":"invalid_client"}"#));
        let err = scope(&f)
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Refresh {
                    class: FailureClass::Configuration,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            scope(&f).connection(&f.id).unwrap().status,
            ConnectionStatus::Error
        );
    }

    #[test]
    fn server_errors_are_retried_then_leave_state_unchanged() {
        let f = fx(|_| StubResponse::json(503, r#"{"error":"temporarily_unavailable"}"#));
        let t = scope(&f);
        let before = t.connection(&f.id).unwrap();
        let err = t
            .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Refresh {
                    class: FailureClass::Transient,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(
            refresh_requests(&f).len(),
            ATTEMPTS as usize,
            "bounded retries"
        );
        let after = t.connection(&f.id).unwrap();
        assert_eq!(before.status, after.status);
        assert_eq!(before.access_expires_at, after.access_expires_at);
        assert_eq!(stored_rt(&f), "rt-0");
    }

    #[test]
    fn a_journaled_refresh_token_is_recovered() {
        let f = fx(rotating());
        let t = scope(&f);
        // A crash after the journal write, before the keychain write.
        let blob = t.key.seal(
            &t.aad("refresh_journal", "refresh_token", f.id.as_str()),
            "rt-journaled",
        );
        f.vault
            .conn()
            .execute(
                "INSERT INTO refresh_journal VALUES (?1, ?2, 0)",
                params![f.id.as_str(), blob],
            )
            .unwrap();
        t.access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap();
        assert!(refresh_requests(&f)[0].contains("refresh_token=rt-journaled"));
        assert_eq!(stored_rt(&f), "rt-1");
    }

    #[test]
    fn concurrent_callers_share_one_refresh() {
        let f = fx(rotating());
        let vault = &f.vault;
        let id = &f.id;
        let tokens: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(move || {
                        let t = vault
                            .tenant(&vault.find_tenant("acme").unwrap().id)
                            .unwrap();
                        t.access_token(id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
                            .unwrap()
                            .token
                            .expose()
                            .to_owned()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(refresh_requests(&f).len(), 1);
        assert!(tokens.iter().all(|t| t == "at-1"), "{tokens:?}");
        let handed = f
            .vault
            .connection_history(id, None, 100)
            .unwrap()
            .iter()
            .filter(|e| e.kind == EventKind::HandedOut)
            .count();
        assert_eq!(handed, 16, "every caller recorded");
    }

    #[test]
    fn revoke_rfc7009_forgets_the_tokens() {
        let f = fx(|req| match req.path.as_str() {
            "/revoke" => StubResponse::json(200, "{}"),
            _ => StubResponse::json(500, "{}"),
        });
        let t = scope(&f);
        let out = t.revoke(&f.id, &actor()).unwrap();
        assert!(out.revoked_at_provider, "{}", out.detail);
        assert!(out.caveat.contains("until they expire"));
        let reqs = f.stub.requests.lock().unwrap().clone();
        assert!(reqs.iter().any(|r| r.path == "/revoke"
            && r.body.contains("token=rt-0")
            && r.body.contains("token_type_hint=refresh_token")));
        assert!(reqs
            .iter()
            .any(|r| r.path == "/revoke" && r.body.contains("token=at-0")));
        assert_eq!(stored_rt(&f), "");
        let c = t.connection(&f.id).unwrap();
        assert_eq!(c.status, ConnectionStatus::Revoked);
        assert!(!c.has_refresh_token);
        assert!(matches!(
            t.access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &actor()),
            Err(Error::NotUsable {
                status: ConnectionStatus::Revoked,
                ..
            })
        ));
        assert!(matches!(
            t.introspect(&f.id),
            Err(Error::NotUsable {
                status: ConnectionStatus::Revoked,
                ..
            })
        ));
        assert_eq!(
            f.vault.connection_history(&f.id, None, 1).unwrap()[0].kind,
            EventKind::Revoked
        );
    }

    /// A server on 127.0.0.1 that plays any provider: discovery without a revocation endpoint
    /// (so the preset's revocation path applies), and 200 to everything else.
    fn any_provider() -> Stub {
        Stub::start(|req| {
            if req.path == "/.well-known/openid-configuration" {
                let host = req
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let base = format!("http://{host}");
                StubResponse::json(
                    200,
                    &json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                    })
                    .to_string(),
                )
            } else {
                StubResponse::json(200, "{}")
            }
        })
    }

    /// A grant with tokens `at-0` / `rt-0` on a newly registered app.
    fn grant_on(
        vault: &Vault,
        spec: crate::provider_app::ProviderAppSpec,
    ) -> (TenantVault<'_>, crate::model::ProviderApp, ConnectionId) {
        let t = vault
            .find_tenant("acme")
            .or_else(|_| vault.create_tenant("Acme", Some("acme"), "", &actor()))
            .unwrap();
        let scope = vault.tenant(&t.id).unwrap();
        let app = scope.register_provider_app(spec, &actor()).unwrap();
        let id = store_grant(&scope, &app.id, &app.name, false);
        (scope, app, id)
    }

    /// A public client's app with these endpoints.
    fn public_app(name: &str, endpoints: Endpoints) -> NewProviderApp {
        NewProviderApp {
            name: name.into(),
            preset: None,
            endpoints,
            client_id: "cid".into(),
            client_secret: None,
            redirect_mode: RedirectMode::Loopback,
            redirect_port: None,
            relay_url: None,
            default_scopes: vec![],
        }
    }

    /// A grant on `app` with tokens `at-0` / `rt-0`, its access token expired a minute ago when
    /// `expired`, else without a known expiry.
    fn store_grant(
        scope: &TenantVault<'_>,
        app: &crate::model::ProviderAppId,
        name: &str,
        expired: bool,
    ) -> ConnectionId {
        scope
            .store_connection(
                NewConnection {
                    name: name.into(),
                    provider_app_id: app.clone(),
                    account: AccountIdentity::default(),
                    scopes_requested: vec![],
                    scopes_granted: None,
                    consented_by: None,
                    access_expiry: expired.then(|| (now_ms() - 60_000, ExpirySource::Response)),
                    refresh_expires_at: None,
                    refresh_hard_expires_at: None,
                    metadata: BTreeMap::new(),
                },
                TokenSet {
                    access_token: AccessToken::new("at-0"),
                    refresh_token: Some(RefreshToken::new("rt-0")),
                    id_token: None,
                },
                &actor(),
            )
            .unwrap()
            .id
    }

    fn spec(
        name: &str,
        preset: &str,
        endpoints: crate::provider_app::EndpointSource,
    ) -> crate::provider_app::ProviderAppSpec {
        crate::provider_app::ProviderAppSpec {
            name: name.into(),
            preset: Some(preset.into()),
            endpoints,
            client_id: "cid 1".into(),
            client_secret: Some(crate::secret::ClientSecret::new("sec")),
            scopes: Some(vec![]),
            redirect: None,
            port: None,
            relay_url: None,
        }
    }

    /// An app stored with its issuer only (as the demo preset was): refresh, introspection and
    /// revocation find their endpoints through the issuer instead of failing.
    #[test]
    fn an_issuer_only_app_discovers_its_endpoints() {
        let stub = Stub::start(|req| {
            let host = req
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let base = format!("http://{host}");
            match req.path.as_str() {
                "/.well-known/openid-configuration" => StubResponse::json(
                    200,
                    &json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/authorize"),
                        "token_endpoint": format!("{base}/token"),
                        "revocation_endpoint": format!("{base}/revoke"),
                    })
                    .to_string(),
                ),
                "/token" => StubResponse::json(
                    200,
                    r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#,
                ),
                _ => StubResponse::json(200, "{}"),
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path(), Arc::new(MemoryKeychain::default())).unwrap();
        let t = vault
            .create_tenant("Acme", Some("acme"), "", &actor())
            .unwrap();
        let scope = vault.tenant(&t.id).unwrap();
        let issuer_only = Endpoints {
            issuer: Some(stub.base.clone()),
            ..Endpoints::default()
        };
        let app = scope
            .add_provider_app(public_app("demo", issuer_only), &actor())
            .unwrap();
        let id = store_grant(&scope, &app.id, "c", true);
        let tok = scope
            .access_token(&id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
            .unwrap();
        assert_eq!(tok.token.expose(), "at-1");
        assert!(scope.revoke(&id, &actor()).unwrap().revoked_at_provider);
        let paths: Vec<String> = stub
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert!(
            paths.contains(&"/token".to_owned()) && paths.contains(&"/revoke".to_owned()),
            "{paths:?}"
        );
    }

    /// Every preset that revokes through an API, registered with a local server as its issuer:
    /// the revocation reaches that server in the preset's style, never the preset's public host
    /// (which this machine could not reach: the outcome would then be "not confirmed").
    #[test]
    fn every_revocation_style_goes_to_the_issuer_given() {
        let stub = any_provider();
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path(), Arc::new(MemoryKeychain::default()))
            .unwrap()
            .with_http_timeout(Duration::from_secs(2));
        let origin = url::Url::parse(&stub.base).unwrap();
        let mut styles = BTreeMap::<&str, usize>::new();
        for preset in &Catalog::builtin().providers {
            let Some(expected) = preset.revocation_url_at(&origin, "cid 1") else {
                continue;
            };
            let source = crate::provider_app::EndpointSource::Issuer {
                issuer: stub.base.clone(),
            };
            let (scope, app, id) = grant_on(&vault, spec(&preset.id, &preset.id, source));
            assert_eq!(app.endpoints.revocation.as_deref(), Some(expected.as_str()));
            let before = stub.requests.lock().unwrap().len();
            let out = scope.revoke(&id, &actor()).unwrap();
            assert!(out.revoked_at_provider, "{}: {}", preset.id, out.detail);
            let reqs = stub.requests.lock().unwrap()[before..].to_vec();
            let path = &expected[stub.base.len()..];
            let header = |r: &StubRequest, k: &str| {
                r.headers
                    .iter()
                    .find(|(h, _)| h.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let style = match &preset.revocation {
                Revocation::Rfc7009 => {
                    assert!(reqs.iter().any(|r| r.method == "POST"
                        && r.path == path
                        && r.body.contains("token=rt-0")));
                    "rfc7009"
                }
                Revocation::BearerPost { .. } => {
                    assert!(reqs.iter().any(|r| r.method == "POST"
                        && r.path == path
                        && header(r, "authorization") == "Bearer at-0"));
                    "bearer_post"
                }
                Revocation::BasicDeleteJson { field, .. } => {
                    assert!(path.contains("/cid%201/"), "{path}");
                    assert!(reqs.iter().any(|r| r.method == "DELETE"
                        && r.path == path
                        && header(r, "authorization").starts_with("Basic ")
                        && r.body.contains(&format!("\"{field}\":\"at-0\""))));
                    "basic_delete_json"
                }
                Revocation::Manual { .. } => unreachable!("no URL"),
            };
            *styles.entry(style).or_default() += 1;
        }
        for style in ["rfc7009", "bearer_post", "basic_delete_json"] {
            assert!(
                styles.get(style).is_some_and(|n| *n > 0),
                "{style}: {styles:?}"
            );
        }
    }

    /// Explicit endpoints with a preset, and `--var` overrides: the app's own URL is used.
    #[test]
    fn explicit_and_variable_revocation_urls_are_kept() {
        let stub = any_provider();
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::open(dir.path(), Arc::new(MemoryKeychain::default())).unwrap();
        let explicit = crate::provider_app::EndpointSource::Explicit {
            authorization: format!("{}/authorize", stub.base),
            token: format!("{}/token", stub.base),
            revocation: Some(format!("{}/ghes/grant", stub.base)),
        };
        let (scope, _, id) = grant_on(&vault, spec("gh", "github", explicit));
        assert!(scope.revoke(&id, &actor()).unwrap().revoked_at_provider);
        assert!(stub
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.method == "DELETE" && r.path == "/ghes/grant"));

        let vars = |pairs: &[(&str, &str)]| crate::provider_app::EndpointSource::Preset {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let (scope, app, _) = grant_on(
            &vault,
            spec(
                "ghes",
                "github-enterprise-server",
                vars(&[("host", "ghe.acme.example")]),
            ),
        );
        assert_eq!(
            app.endpoints.revocation.as_deref(),
            Some("https://ghe.acme.example/api/v3/applications/cid%201/grant")
        );
        let (_, app, _) = grant_on(&vault, spec("slack", "slack", vars(&[])));
        assert_eq!(
            app.endpoints.revocation.as_deref(),
            Some("https://slack.com/api/auth.revoke")
        );
        // An app stored before revocation URLs were kept for every style: the preset's URL
        // only while the app uses the preset's own hosts.
        let ctx = |app_id: &str, token: &str| {
            let mut app = scope.provider_app(app_id).unwrap();
            app.endpoints.revocation = None;
            app.endpoints.token = Some(token.into());
            GrantContext {
                preset: Catalog::builtin().get("slack").ok(),
                quirks: Quirks::new(None, false),
                client: Client {
                    id: "cid".into(),
                    secret: None,
                },
                app,
            }
        };
        let slack_token = Catalog::builtin()
            .get("slack")
            .unwrap()
            .resolve(&BTreeMap::new())
            .unwrap()
            .token
            .unwrap();
        assert_eq!(
            ctx(app.id.as_str(), &slack_token).revocation_url().unwrap(),
            "https://slack.com/api/auth.revoke"
        );
        let moved = ctx(app.id.as_str(), &format!("{}/token", stub.base));
        assert!(moved
            .revocation_url()
            .unwrap_err()
            .to_string()
            .contains("no revocation endpoint"));
    }

    /// An id from a caller never becomes a path unless it is a well-formed id.
    #[test]
    fn malformed_ids_never_reach_the_file_system() {
        let f = fx(|_| StubResponse::json(200, "{}"));
        let t = scope(&f);
        for bad in ["../../../tmp/gk-evil", "a/b", "", &"x".repeat(5000)] {
            let id = ConnectionId::from_string(bad);
            assert!(matches!(
                t.revoke(&id, &actor()),
                Err(Error::NotFound { .. })
            ));
            assert!(matches!(
                t.refresh(&id, &Deadline::default(), &actor()),
                Err(Error::NotFound { .. })
            ));
        }
        assert!(!std::path::Path::new("/tmp/gk-evil.lock").exists());
        let locks = f.vault.home().join(LOCKS_DIR);
        let names: Vec<_> = std::fs::read_dir(&locks)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_failed_revocation_is_recorded_as_such() {
        let f = fx(|_| StubResponse::json(503, "{}"));
        let out = scope(&f).revoke(&f.id, &actor()).unwrap();
        assert!(!out.revoked_at_provider);
        assert!(out.detail.contains("not revoked at the provider"));
        let ev = &f.vault.connection_history(&f.id, None, 1).unwrap()[0];
        assert_eq!(ev.detail.as_ref().unwrap()["at_provider"], false);
    }

    #[test]
    fn maintenance_keeps_idle_refresh_tokens_alive_and_warns() {
        let f = fx(|_| {
            StubResponse::json(
                200,
                r#"{"access_token":"at-k","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-k","refresh_token_expires_in":5184000}"#,
            )
        });
        let day = 86_400_000;
        let db = f.vault.conn();
        db.execute(
            "UPDATE connections SET refresh_expires_at = ?1",
            [now_ms() + 2 * day],
        )
        .unwrap();
        drop(db);
        let report = f
            .vault
            .maintain(
                Duration::from_secs(7 * 86_400),
                Duration::from_secs(30 * 86_400),
            )
            .unwrap();
        assert_eq!(report.refreshed, vec![f.id.clone()]);
        assert!(report.failed.is_empty());
        assert_eq!(stored_rt(&f), "rt-k");
        let last = &f.vault.connection_history(&f.id, None, 2).unwrap()[1];
        assert_eq!(last.kind, EventKind::Refreshed);
        assert_eq!(last.actor, Some(ActorKind::Background));
        // The refresh reset the inactivity clock (this provider states no window).
        assert_eq!(
            scope(&f).connection(&f.id).unwrap().refresh_expires_at,
            None
        );
        // A hard expiry is warned about, not refreshed.
        f.vault
            .conn()
            .execute(
                "UPDATE connections SET refresh_hard_expires_at = ?1",
                [now_ms() + 3 * day],
            )
            .unwrap();
        let report = f
            .vault
            .maintain(
                Duration::from_secs(7 * 86_400),
                Duration::from_secs(30 * 86_400),
            )
            .unwrap();
        assert!(report.refreshed.is_empty());
        assert_eq!(report.warnings.len(), 1);
        assert!(report.warnings[0].hard);
    }

    #[test]
    fn inspection_decodes_jwts_offline() {
        let f = fx(rotating());
        let ins = scope(&f).inspect(&f.id).unwrap();
        assert!(!ins.access_token_is_jwt, "at-0 is opaque");
        assert!(ins.id_token.is_none());
    }
}

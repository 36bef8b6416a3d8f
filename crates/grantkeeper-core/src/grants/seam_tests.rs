//! The storage seam seen from the grant logic: a store that records which of its operations the
//! logic calls, in front of the local store. Any store behind `TenantStore` (a team vault) sees
//! these calls in this order, and its promises (one refresher, a rotated refresh token durable
//! before use) rest on it.

use std::sync::{Arc, Mutex};

use super::tests::{fx, refresh_requests, rotating, Fx};
use super::DEFAULT_MIN_VALID;
use crate::audit::{Actor, NewEvent};
use crate::deadline::Deadline;
use crate::error::Result;
use crate::model::{Connection, ConnectionId, ConnectionStatus, ProviderApp, ProviderAppId};
use crate::oauth::stub::StubResponse;
use crate::secret::{ClientSecret, HandOut, RefreshToken, SecretText, TokenSet};
use crate::store::{
    ConnectionStore, GrantLock, GrantState, HandOutEvents, NewConnection, NewProviderApp,
    ProviderAppStore, Refreshed, SecretChange, SecretColumn, TokenStore,
};
use crate::test_support::cli;
use crate::vault::{LocalStore, TenantVault};

/// The local store, with a log of the operations asked of it.
struct Spy<'v> {
    inner: LocalStore<'v>,
    calls: Calls,
}

/// The operations asked of a [`Spy`], in order.
type Calls = Arc<Mutex<Vec<&'static str>>>;

impl Spy<'_> {
    fn log(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
}

impl ConnectionStore for Spy<'_> {
    fn connection(&self, id: &ConnectionId) -> Result<Connection> {
        self.log("connection");
        self.inner.connection(id)
    }
    fn connections_using(&self, app: &ProviderAppId) -> Result<Vec<Connection>> {
        self.log("connections_using");
        self.inner.connections_using(app)
    }
    fn connection_named(&self, name: &str) -> Result<Connection> {
        self.log("connection_named");
        self.inner.connection_named(name)
    }
    fn insert_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()> {
        self.log("insert_connection");
        self.inner.insert_connection(id, new, tokens, event)
    }
    fn renew_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()> {
        self.log("renew_connection");
        self.inner.renew_connection(id, new, tokens, event)
    }
    fn delete_connection(&self, id: &ConnectionId, event: NewEvent) -> Result<()> {
        self.log("delete_connection");
        self.inner.delete_connection(id, event)
    }
    fn connection_app(&self, connection: &Connection) -> Result<ProviderApp> {
        self.log("connection_app");
        self.inner.connection_app(connection)
    }
}

impl ProviderAppStore for Spy<'_> {
    fn add_provider_app(&self, app: NewProviderApp, actor: &Actor) -> Result<ProviderApp> {
        self.log("add_provider_app");
        self.inner.add_provider_app(app, actor)
    }
    fn provider_apps(&self) -> Result<Vec<ProviderApp>> {
        self.log("provider_apps");
        self.inner.provider_apps()
    }
    fn provider_app(&self, id_or_name: &str) -> Result<ProviderApp> {
        self.log("provider_app");
        self.inner.provider_app(id_or_name)
    }
    fn client_secret(&self, app: &ProviderAppId) -> Result<Option<ClientSecret>> {
        self.log("client_secret");
        self.inner.client_secret(app)
    }
    fn client_key(&self, app: &ProviderAppId) -> Result<Option<SecretText>> {
        self.log("client_key");
        self.inner.client_key(app)
    }
    fn update_provider_app(
        &self,
        app: &ProviderApp,
        secret: SecretChange<'_>,
        event: NewEvent,
    ) -> Result<()> {
        self.log("update_provider_app");
        self.inner.update_provider_app(app, secret, event)
    }
    fn delete_provider_app(&self, id: &ProviderAppId, event: NewEvent) -> Result<()> {
        self.log("delete_provider_app");
        self.inner.delete_provider_app(id, event)
    }
}

impl TokenStore for Spy<'_> {
    fn grant_state(&self, id: &ConnectionId) -> Result<GrantState> {
        self.log("grant_state");
        self.inner.grant_state(id)
    }
    fn take_access_token(
        &self,
        id: &ConnectionId,
        min_valid_ms: i64,
        events: HandOutEvents<'_>,
    ) -> Result<Option<HandOut>> {
        self.log("take_access_token");
        self.inner.take_access_token(id, min_valid_ms, events)
    }
    fn secret(&self, id: &ConnectionId, column: SecretColumn) -> Result<Option<SecretText>> {
        self.log("secret");
        self.inner.secret(id, column)
    }
    fn lock_grant(&self, id: &ConnectionId, deadline: &Deadline) -> Result<GrantLock> {
        self.log("lock_grant");
        self.inner.lock_grant(id, deadline)
    }
    fn refresh_token(&self, id: &ConnectionId) -> Result<Option<RefreshToken>> {
        self.log("refresh_token");
        self.inner.refresh_token(id)
    }
    fn dpop_key(&self, id: &ConnectionId) -> Result<Option<SecretText>> {
        self.log("dpop_key");
        self.inner.dpop_key(id)
    }
    fn keep_refresh_token(&self, id: &ConnectionId, token: &RefreshToken) -> Result<()> {
        self.log("keep_refresh_token");
        self.inner.keep_refresh_token(id, token)
    }
    fn save_refreshed(
        &self,
        id: &ConnectionId,
        refreshed: &Refreshed<'_>,
        events: &mut dyn FnMut() -> Vec<NewEvent>,
    ) -> Result<()> {
        self.log("save_refreshed");
        self.inner.save_refreshed(id, refreshed, events)
    }
    fn record_failure(
        &self,
        id: &ConnectionId,
        status: Option<(ConnectionStatus, &str)>,
        event: NewEvent,
    ) -> Result<()> {
        self.log("record_failure");
        self.inner.record_failure(id, status, event)
    }
    fn forget_tokens(&self, id: &ConnectionId, detail: &str, event: NewEvent) -> Result<()> {
        self.log("forget_tokens");
        self.inner.forget_tokens(id, detail, event)
    }
}

/// The fixture's tenant over a spying store, and the spy's log.
fn spied(f: &Fx) -> (TenantVault<'_>, Calls) {
    let tenant = f.vault.find_tenant("acme").unwrap();
    let inner = f.vault.local_store(&tenant.id).unwrap();
    let calls = Calls::default();
    let spy = Spy {
        inner,
        calls: calls.clone(),
    };
    (TenantVault::over(&f.vault, tenant, spy), calls)
}

/// The operations asked of the store since the last look, forgetting them.
fn take(calls: &Calls) -> Vec<&'static str> {
    std::mem::take(&mut *calls.lock().unwrap())
}

/// The calls that lock, read the refresh token or write, in order.
fn lock_and_writes(calls: &[&'static str]) -> Vec<&'static str> {
    const KEPT: [&str; 6] = [
        "lock_grant",
        "refresh_token",
        "keep_refresh_token",
        "save_refreshed",
        "record_failure",
        "forget_tokens",
    ];
    calls.iter().copied().filter(|c| KEPT.contains(c)).collect()
}

fn hand_out(t: &TenantVault<'_>, f: &Fx) -> Result<HandOut> {
    t.access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
}

#[test]
fn a_valid_token_is_one_store_call() {
    let f = fx(rotating());
    let (t, log) = spied(&f);
    hand_out(&t, &f).unwrap();
    take(&log);
    assert_eq!(hand_out(&t, &f).unwrap().token.expose(), "at-1");
    assert_eq!(take(&log), ["take_access_token"]);
}

#[test]
fn a_refresh_locks_then_keeps_the_rotated_token_before_storing_the_new_access_token() {
    let f = fx(rotating());
    let (t, log) = spied(&f);
    assert_eq!(hand_out(&t, &f).unwrap().token.expose(), "at-1");
    let calls = take(&log);
    assert_eq!(
        lock_and_writes(&calls),
        [
            "lock_grant",
            "refresh_token",
            "keep_refresh_token",
            "save_refreshed"
        ],
        "{calls:?}"
    );
    let locked = calls.iter().position(|c| *c == "lock_grant").unwrap();
    assert_eq!(
        calls[locked + 1],
        "take_access_token",
        "after the lock, the token is read again before any request: {calls:?}"
    );
}

#[test]
fn a_rejected_refresh_is_recorded_and_keeps_nothing() {
    let f = fx(|_| {
        StubResponse::json(
            400,
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
        )
    });
    let (t, log) = spied(&f);
    assert!(hand_out(&t, &f).is_err());
    assert_eq!(
        lock_and_writes(&take(&log)),
        ["lock_grant", "refresh_token", "record_failure"]
    );
}

#[test]
fn threads_of_one_process_take_the_stores_lock_once() {
    let f = fx(rotating());
    let (t, log) = spied(&f);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| assert_eq!(hand_out(&t, &f).unwrap().token.expose(), "at-1"));
        }
    });
    let calls = take(&log);
    assert_eq!(
        calls.iter().filter(|c| **c == "lock_grant").count(),
        1,
        "{calls:?}"
    );
    assert_eq!(refresh_requests(&f).len(), 1);
}

#[test]
fn a_revocation_locks_then_forgets_the_tokens() {
    let f = fx(rotating());
    let (t, log) = spied(&f);
    t.revoke(&f.id, &cli()).unwrap();
    assert_eq!(
        lock_and_writes(&take(&log)),
        ["lock_grant", "refresh_token", "forget_tokens"]
    );
}

//! The storage seam: where one tenant's provider apps, connections, secrets and refresh tokens
//! live. Grants, sign-in flows and front ends reach a tenant's records only through
//! [`TenantStore`] (held by [`crate::TenantVault`]), so a second place (a team vault) can stand
//! behind it without touching them.
//!
//! Today every tenant lives in the local vault (`vault::LocalStore`: SQLite rows with secrets
//! sealed under the tenant's key, refresh tokens in the OS keychain, a lock file per grant).
//! A store keeps three promises the grant logic relies on:
//! - each write and the events passed with it are kept together or not at all;
//! - [`TokenStore::lock_grant`] admits one refresher per grant across threads and processes (and
//!   across machines for a shared store), and hands over anything a crashed one left behind;
//! - a rotated refresh token is durable ([`TokenStore::keep_refresh_token`]) before the access
//!   token that came with it is stored or handed out.

use crate::audit::{Actor, NewEvent};
use crate::deadline::Deadline;
use crate::error::Result;
use crate::model::{
    ClientAuth, Connection, ConnectionId, ConnectionStatus, ExpirySource, ProviderApp,
    ProviderAppId, UnixMillis,
};
use crate::secret::{AccessToken, ClientSecret, HandOut, RefreshToken, SecretText, TokenSet};
use std::collections::BTreeMap;

use crate::model::{AccountIdentity, Endpoints, RedirectMode};

/// A new provider app registration.
#[derive(Debug, Clone)]
pub struct NewProviderApp {
    /// Display name, unique in the tenant.
    pub name: String,
    /// Catalog preset, if any.
    pub preset: Option<String>,
    /// Endpoints.
    pub endpoints: Endpoints,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret, for confidential clients.
    pub client_secret: Option<ClientSecret>,
    /// How it authenticates, when chosen (see [`ProviderApp::client_auth`]).
    pub client_auth: Option<ClientAuth>,
    /// Its own private key (`private_key_jwt`), kept in the keychain, never in the database.
    pub client_key: Option<SecretText>,
    /// Whether its grants are DPoP-bound, when chosen (see [`ProviderApp::dpop`]).
    pub dpop: Option<bool>,
    /// How the authorization response comes back.
    pub redirect_mode: RedirectMode,
    /// Fixed loopback port, if the registration needs one.
    pub redirect_port: Option<u16>,
    /// The HTTPS relay page registered as redirect URI, if any.
    pub relay_url: Option<String>,
    /// Scopes requested by default.
    pub default_scopes: Vec<String>,
}

/// A grant to store after a successful token exchange.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Name, unique in the tenant.
    pub name: String,
    /// The provider app used.
    pub provider_app_id: ProviderAppId,
    /// The account at the provider.
    pub account: AccountIdentity,
    /// Scopes asked for.
    pub scopes_requested: Vec<String>,
    /// Scopes the provider reported as granted, if it said.
    pub scopes_granted: Option<Vec<String>>,
    /// Who consented.
    pub consented_by: Option<String>,
    /// Access-token expiry and where it came from.
    pub access_expiry: Option<(UnixMillis, ExpirySource)>,
    /// Sliding refresh-token expiry.
    pub refresh_expires_at: Option<UnixMillis>,
    /// Hard refresh-token expiry.
    pub refresh_hard_expires_at: Option<UnixMillis>,
    /// Provider metadata.
    pub metadata: BTreeMap<String, String>,
    /// The DPoP key its tokens are bound to (RFC 9449), kept in the keychain, never in the
    /// database.
    pub dpop_key: Option<SecretText>,
}

/// How long a caller waits for another caller's refresh of the same grant.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// Everything a tenant's records need from where they live.
pub trait TenantStore: ConnectionStore + ProviderAppStore + TokenStore + Send + Sync {}

impl<T: ConnectionStore + ProviderAppStore + TokenStore + Send + Sync> TenantStore for T {}

/// A tenant's connections (grants without their secrets).
pub trait ConnectionStore {
    /// One connection.
    fn connection(&self, id: &ConnectionId) -> Result<Connection>;
    /// One connection, by name.
    fn connection_named(&self, name: &str) -> Result<Connection>;
    /// Stores a new grant, all or nothing: its row, its tokens, `event`. The name must be free.
    fn insert_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()>;
    /// Replaces a grant's account, scopes, expiries and tokens after a re-consent (a new refresh
    /// token first); status active.
    fn renew_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()>;
    /// The connections granted through one provider app, by name.
    fn connections_using(&self, app: &ProviderAppId) -> Result<Vec<Connection>>;
    /// Removes a grant, its refresh token and its DPoP key.
    fn delete_connection(&self, id: &ConnectionId, event: NewEvent) -> Result<()>;
    /// The provider app a connection uses, its link checked: a link changed outside Grantkeeper
    /// is refused.
    fn connection_app(&self, connection: &Connection) -> Result<ProviderApp>;
}

/// A tenant's provider apps.
pub trait ProviderAppStore {
    /// Registers a provider app (its client secret kept sealed); the name must be free.
    fn add_provider_app(&self, app: NewProviderApp, actor: &Actor) -> Result<ProviderApp>;
    /// Every provider app, by name.
    fn provider_apps(&self) -> Result<Vec<ProviderApp>>;
    /// One provider app by id or name, its settings checked: settings changed outside
    /// Grantkeeper are refused.
    fn provider_app(&self, id_or_name: &str) -> Result<ProviderApp>;
    /// A provider app's client secret.
    fn client_secret(&self, app: &ProviderAppId) -> Result<Option<ClientSecret>>;
    /// A provider app's own private key (`private_key_jwt`), if it has one.
    fn client_key(&self, app: &ProviderAppId) -> Result<Option<SecretText>>;
    /// Replaces a provider app's settings with `app`'s (the same id and name) and its client
    /// secret as `secret` says; `event` with them.
    fn update_provider_app(
        &self,
        app: &ProviderApp,
        secret: SecretChange<'_>,
        event: NewEvent,
    ) -> Result<()>;
    /// Removes a provider app no connection uses, and its private key.
    fn delete_provider_app(&self, id: &ProviderAppId, event: NewEvent) -> Result<()>;
}

/// What an edit does to a provider app's client secret.
#[derive(Debug, Clone, Copy)]
pub enum SecretChange<'a> {
    /// Keeps it.
    Keep,
    /// Replaces it (or sets one: the app becomes a confidential client).
    Set(&'a ClientSecret),
    /// Removes it (the app becomes a public client).
    Remove,
}

/// What a refresh decision reads of a grant.
#[derive(Debug, Clone, Copy)]
pub struct GrantState {
    /// The connection's status.
    pub status: ConnectionStatus,
    /// Whether an access token is cached.
    pub has_access: bool,
}

/// The sealed token columns of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretColumn {
    /// The cached access token.
    AccessToken,
    /// The ID token of the sign-in or the last refresh.
    IdToken,
}

/// A refresh's result, to store.
#[derive(Debug)]
pub struct Refreshed<'a> {
    /// The new tokens (the refresh token, if any, already kept by
    /// [`TokenStore::keep_refresh_token`]).
    pub tokens: &'a TokenSet,
    /// When the new access token expires, and how that is known.
    pub expiry: Option<(UnixMillis, ExpirySource)>,
    /// The scopes the provider reported, if it did.
    pub scopes_granted: Option<&'a [String]>,
    /// The refresh token's new sliding expiry, if known.
    pub refresh_expires_at: Option<UnixMillis>,
    /// The refresh token's hard expiry, when the provider reported it (otherwise the stored
    /// one stays).
    pub refresh_hard_expires_at: Option<UnixMillis>,
    /// When the answer came.
    pub at: UnixMillis,
}

/// Held while one caller refreshes or revokes a grant; dropping it lets the next one in.
pub struct GrantLock {
    _guard: Box<dyn Send>,
}

impl GrantLock {
    /// A lock that holds `guard` until dropped.
    pub fn new(guard: impl Send + 'static) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

impl std::fmt::Debug for GrantLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GrantLock")
    }
}

/// Builds the events of a hand-out from the token handed out and the time of the read.
pub type HandOutEvents<'a> = &'a mut dyn FnMut(&AccessToken, UnixMillis) -> Vec<NewEvent>;

/// A grant's secrets: the cached tokens, the refresh token, and the lock around a refresh.
pub trait TokenStore {
    /// A grant's status and whether it caches an access token.
    fn grant_state(&self, id: &ConnectionId) -> Result<GrantState>;
    /// The cached access token when the grant is active and it stays valid for `min_valid_ms`,
    /// recorded by the events `events` builds (and the grant's last use) in the same write;
    /// `None` when a refresh is needed.
    fn take_access_token(
        &self,
        id: &ConnectionId,
        min_valid_ms: i64,
        events: HandOutEvents<'_>,
    ) -> Result<Option<HandOut>>;
    /// One sealed column, opened; `None` when it holds nothing.
    fn secret(&self, id: &ConnectionId, column: SecretColumn) -> Result<Option<SecretText>>;
    /// Waits (until `deadline`) to be the grant's only refresher, then completes whatever a
    /// refresher that died left behind (a rotated refresh token not yet in place).
    fn lock_grant(&self, id: &ConnectionId, deadline: &Deadline) -> Result<GrantLock>;
    /// The grant's refresh token.
    fn refresh_token(&self, id: &ConnectionId) -> Result<Option<RefreshToken>>;
    /// The DPoP key the grant's tokens are bound to, if any.
    fn dpop_key(&self, id: &ConnectionId) -> Result<Option<SecretText>>;
    /// Makes a rotated refresh token durable: after this returns, a crash loses nothing.
    fn keep_refresh_token(&self, id: &ConnectionId, token: &RefreshToken) -> Result<()>;
    /// Stores a refresh's result; status active; the grant marked used; `events` (given the new
    /// access token) written with it.
    fn save_refreshed(
        &self,
        id: &ConnectionId,
        refreshed: &Refreshed<'_>,
        events: &mut dyn FnMut() -> Vec<NewEvent>,
    ) -> Result<()>;
    /// Records a failed refresh: `event`, and the new status with its explanation if the
    /// failure changes it.
    fn record_failure(
        &self,
        id: &ConnectionId,
        status: Option<(ConnectionStatus, &str)>,
        event: NewEvent,
    ) -> Result<()>;
    /// Forgets a grant's tokens and DPoP key (status revoked, `detail` saying what the provider was told).
    fn forget_tokens(&self, id: &ConnectionId, detail: &str, event: NewEvent) -> Result<()>;
}

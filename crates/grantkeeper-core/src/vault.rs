//! The vault: SQLite for records and encrypted secrets, the OS keychain for the master key and
//! refresh tokens, and the usage log for every operation on them.

mod connections;
mod grant_lock;
mod grant_tokens;
mod history;
mod keys;
mod local;
mod open;
mod policies;
mod provider_apps;
mod tenants;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::TransactionBehavior;

use crate::audit::{self, Actor, EventKind, NewEvent};
use crate::crypto::{DataKey, FingerprintKey, MasterKey};
use crate::error::Result;
use crate::keychain::Keychain;
use crate::model::*;
use crate::secret::ClientSecret;
use crate::store::TenantStore;
pub use crate::store::{NewConnection, NewProviderApp};

pub(crate) use local::LocalStore;
#[cfg(test)]
pub(crate) use local::Sealed;

use keys::TenantKeys;
use provider_apps::{row_to_provider_app, PROVIDER_APP_COLUMNS};
use tenants::validate_name;
pub(crate) use tenants::validate_slug;

const DB_FILE: &str = "vault.db";
const LOCK_FILE: &str = "vault.lock";
/// Held while the keychain entry of the vault's keys is rewritten (a tenant added or removed).
const KEYS_LOCK_FILE: &str = "keys.lock";
/// The vault's folder of per-connection lock files (see [`crate::grants`]).
pub(crate) const LOCKS_DIR: &str = "locks";

/// An open vault.
pub struct Vault {
    pub(crate) http: crate::http::HttpClient,
    /// One gate per connection: threads of this process queue here for a refresh, so that only
    /// the first one takes the cross-process lock and the others find its fresh token.
    refresh_gates: Mutex<std::collections::HashMap<String, Arc<crate::gate::RefreshGate>>>,
    home: PathBuf,
    id: String,
    db: Mutex<rusqlite::Connection>,
    pub(crate) keychain: Arc<dyn Keychain>,
    master: MasterKey,
    fingerprints: FingerprintKey,
    /// Unwrapped data keys by tenant, with the wrapped blob they came from: a tenant's key is
    /// read from the keychain once per process.
    data_keys: Mutex<std::collections::HashMap<TenantId, (Vec<u8>, DataKey)>>,
    /// The tenants' wrapping keys (and which are still being adopted), as last read from the
    /// keychain entry of the vault's keys.
    tenant_keys: Mutex<TenantKeys>,
    /// The newest hand-out policy version known of each tenant (see [`crate::policy`]).
    policy_versions: policies::KnownVersions,
    /// The usage history's MAC key and its checkpoint schedule (see [`audit`]).
    history: audit::HistoryKey,
    anchorer: audit::Anchorer,
    /// The team logins and shared tenants, as this process read them (see [`crate::team`]).
    pub(crate) teams: crate::team::ConfigCache,
    /// Pushes this vault's events on shared tenants to the team history, in batches.
    team_history: crate::team::history::HistoryPusher,
}

impl Drop for Vault {
    /// A command that wrote events anchors them as it ends (see the history's anchorer in [`crate::audit`]).
    fn drop(&mut self) {
        let conn = self.conn();
        self.anchorer.close(&conn);
        self.team_history.close(&conn, &self.http);
    }
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("home", &self.home)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Which connections to list.
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only those in this state.
    pub status: Option<ConnectionStatus>,
}

impl Vault {
    /// Changes the time allowed for each request to a provider (default 30 s).
    pub fn with_http_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.http = crate::http::HttpClient::new(timeout);
        self
    }

    /// The in-process refresh gate of a connection.
    pub(crate) fn refresh_gate(&self, connection: &ConnectionId) -> Arc<crate::gate::RefreshGate> {
        let mut gates = self.refresh_gates.lock().unwrap_or_else(|p| p.into_inner());
        gates
            .entry(connection.as_str().to_owned())
            .or_default()
            .clone()
    }

    /// The vault's identifier (it namespaces the keychain entries).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Lowers the database's memory use for a long-running process (the desktop app):
    /// `cache_kib` of page cache and no memory-mapped reads (mapped pages count in the process's
    /// resident memory).
    pub fn limit_memory(&self, cache_kib: u32) -> Result<()> {
        let conn = self.conn();
        conn.pragma_update(None, "cache_size", -i64::from(cache_kib))?;
        conn.pragma_update(None, "mmap_size", 0)?;
        Ok(())
    }

    /// Frees the database's page cache (a long-running process calls it once it is idle); the
    /// next read fills it again from the file.
    pub fn release_memory(&self) -> Result<()> {
        self.conn().release_memory()?;
        Ok(())
    }

    /// The vault's folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.home.join(DB_FILE)
    }

    /// Where secrets live, for the user.
    pub fn keychain_backend(&self) -> &'static str {
        self.keychain.describe()
    }

    /// A token's keyed fingerprint, to match a leaked token to its history.
    pub fn fingerprint(&self, token: &str) -> String {
        self.fingerprints.fingerprint(token)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in an immediate (write-locked) transaction and commits. The transaction carries
    /// the history key, so `f` can append events ([`audit::append`]).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&audit::HistoryTx<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = audit::HistoryTx::new(
            conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
            &self.history,
        );
        let out = f(&tx)?;
        let (appended, notable) = tx.commit_noting()?;
        if appended > 0 {
            self.anchorer.appended(notable);
            self.team_history.appended(self.teams.get(), &self.http);
        }
        Ok(out)
    }

    // ----- tenants -----
}

/// One tenant's view of the vault: its records through its [`TenantStore`], the only way to
/// them and to its secrets.
pub struct TenantVault<'v> {
    pub(crate) vault: &'v Vault,
    pub(crate) tenant: Tenant,
    pub(crate) store: Box<dyn TenantStore + 'v>,
}

impl std::fmt::Debug for TenantVault<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantVault")
            .field("tenant", &self.tenant.slug)
            .finish_non_exhaustive()
    }
}

impl<'v> TenantVault<'v> {
    /// A tenant's view over another store than the local one (tests of the seam).
    #[cfg(test)]
    pub(crate) fn over(vault: &'v Vault, tenant: Tenant, store: impl TenantStore + 'v) -> Self {
        Self {
            vault,
            tenant,
            store: Box::new(store),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// An event about one of this tenant's connections.
    pub(crate) fn event(
        &self,
        kind: EventKind,
        connection: &ConnectionId,
        actor: &Actor,
    ) -> NewEvent {
        NewEvent::new(kind, actor)
            .tenant(&self.tenant.id)
            .connection(connection)
    }

    /// Registers a provider app; a client secret is stored encrypted.
    pub fn add_provider_app(&self, app: NewProviderApp, actor: &Actor) -> Result<ProviderApp> {
        validate_name("provider app", &app.name)?;
        if app.client_id.trim().is_empty() {
            return Err(crate::Error::Invalid(
                "a provider app needs a client id".into(),
            ));
        }
        if let Some(url) = &app.relay_url {
            check_relay_url(url)?;
        }
        self.store.add_provider_app(app, actor)
    }

    /// This tenant's provider apps.
    pub fn provider_apps(&self) -> Result<Vec<ProviderApp>> {
        self.store.provider_apps()
    }

    /// One of this tenant's provider apps, by id or name, its settings checked: a change made
    /// outside Grantkeeper is refused (and recorded) before any request.
    pub fn provider_app(&self, id_or_name: &str) -> Result<ProviderApp> {
        self.store.provider_app(id_or_name)
    }

    /// The client secret of one of this tenant's provider apps.
    pub fn client_secret(&self, app: &ProviderAppId) -> Result<Option<ClientSecret>> {
        self.store.client_secret(app)
    }

    /// The private key of one of this tenant's provider apps (`private_key_jwt`), if it has one.
    pub(crate) fn client_key(
        &self,
        app: &ProviderAppId,
    ) -> Result<Option<crate::secret::SecretText>> {
        self.store.client_key(app)
    }

    /// The provider app a connection is linked to, the link and the app's settings checked.
    /// Every request for a grant goes through here (or [`Self::provider_app`]).
    pub fn connection_app(&self, connection: &Connection) -> Result<ProviderApp> {
        self.store.connection_app(connection)
    }

    /// One of this tenant's connections.
    pub fn connection(&self, id: &ConnectionId) -> Result<Connection> {
        self.store.connection(id)
    }

    /// Finds one of this tenant's connections by name.
    pub fn connection_named(&self, name: &str) -> Result<Connection> {
        self.store.connection_named(name)
    }
}

/// A relay page's URL: HTTPS (the provider redirects the browser there), or plain HTTP on this
/// machine's loopback address for a page served locally.
pub(crate) fn check_relay_url(url: &str) -> Result<()> {
    let ok = url::Url::parse(url).is_ok_and(|u| match (u.scheme(), u.host()) {
        ("https", Some(_)) => true,
        ("http", Some(url::Host::Ipv4(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Ipv6(ip))) => ip.is_loopback(),
        ("http", Some(url::Host::Domain(d))) => d == "localhost",
        _ => false,
    });
    if ok {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "'{url}' is not an HTTPS URL: the relay page must be served over HTTPS"
        )))
    }
}

/// A write refused for a UNIQUE constraint claimed a name already taken: the one place such a
/// refusal becomes [`crate::Error::AlreadyExists`].
fn unless_taken<T>(written: rusqlite::Result<T>, what: &'static str, name: &str) -> Result<T> {
    match written {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE =>
        {
            Err(crate::Error::AlreadyExists {
                what,
                name: name.to_owned(),
            })
        }
        other => Ok(other?),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("model types serialize")
}

fn from_json<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let s: String = r.get(idx)?;
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

#[cfg(test)]
mod tests;

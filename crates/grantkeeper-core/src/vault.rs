//! The vault: SQLite for records and encrypted secrets, the OS keychain for the master key and
//! refresh tokens, and the usage log for every operation on them.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde_json::json;

use crate::audit::{self, Actor, DailyCount, EventKind, NewEvent, UsageEvent, VerifyReport};
use crate::crypto::{Aad, DataKey, FingerprintKey, MasterKey, TenantKey, VaultKeys};
use crate::db;
use crate::error::{Error, Result};
use crate::keychain::{EntryName, Keychain};
use crate::model::*;
use crate::secret::{ClientSecret, TokenSet};

const DB_FILE: &str = "vault.db";
const LOCK_FILE: &str = "vault.lock";
/// Held while the keychain entry of the vault's keys is rewritten (a tenant added or removed).
const KEYS_LOCK_FILE: &str = "keys.lock";

/// An open vault.
pub struct Vault {
    pub(crate) http: crate::http::HttpClient,
    /// One gate per connection: threads of this process queue here for a refresh, so that only
    /// the first one takes the cross-process lock and the others find its fresh token.
    refresh_gates: Mutex<std::collections::HashMap<String, Arc<crate::grants::RefreshGate>>>,
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
    /// The usage history's MAC key and its checkpoint schedule (see [`audit`]).
    history: audit::HistoryKey,
    anchorer: audit::Anchorer,
}

impl Drop for Vault {
    /// A command that wrote events anchors them as it ends (see [`audit::Anchorer`]).
    fn drop(&mut self) {
        self.anchorer.close(&self.conn());
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
    /// Opens the vault in `home`, creating it on first use.
    ///
    /// The keychain is checked first: a new vault's master key is written to it and read back
    /// before any file is created, and an existing vault's master key is read before anything
    /// is written. When the keychain cannot be used the error says why, and nothing is written.
    ///
    /// An existing vault folder must be this user's; it is made 0700 and its files 0600 at each
    /// open (a vault made by an older version, or files copied in, are repaired with a warning).
    pub fn open(home: &Path, keychain: Arc<dyn Keychain>) -> Result<Self> {
        let db_path = home.join(DB_FILE);
        if db_path.exists() {
            make_private(home)?;
            return Self::open_existing(home, keychain);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let master = MasterKey::generate();
        let entry = EntryName::master_key(&id);
        keychain.set(&entry, &master.to_keychain_text())?;
        // Compared without copies: both texts are wiped when dropped.
        let read_back = keychain.get(&entry)?;
        if read_back.is_none_or(|t| t.expose() != master.to_keychain_text().expose()) {
            let _ = keychain.delete(&entry);
            return Err(crate::keychain::KeychainError::Other {
                detail: "the keychain did not return the value just stored".into(),
            }
            .into());
        }
        match create_db(home, &id) {
            Ok(true) => Self::finish_open(home, id, keychain, master),
            Ok(false) => {
                // Another process created the vault meanwhile: use theirs.
                let _ = keychain.delete(&entry);
                Self::open_existing(home, keychain)
            }
            Err(e) => {
                let _ = keychain.delete(&entry);
                Err(e)
            }
        }
    }

    fn open_existing(home: &Path, keychain: Arc<dyn Keychain>) -> Result<Self> {
        let db_path = home.join(DB_FILE);
        // The vault id is read through the same locking connection the vault then uses; nothing
        // is written (no migration) until the keychain has given the master key.
        let mut conn = db::connect(&db_path, false)?;
        let id: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'vault_id'", [], |r| {
                r.get(0)
            })?;
        let text =
            keychain
                .get(&EntryName::master_key(&id))?
                .ok_or_else(|| Error::MasterKeyMissing {
                    backend: keychain.describe(),
                    path: db_path.clone(),
                })?;
        let VaultKeys {
            master,
            tenants,
            adopting,
        } = VaultKeys::from_keychain_text(&text)?;
        db::migrate(&mut conn)?;
        audit::ensure_keyed(&mut conn, &master.history_key(), &*keychain, &id)?;
        let vault = Self::with_connection(home, id, conn, keychain, master);
        *vault.tenant_keys.lock().unwrap_or_else(|p| p.into_inner()) = (tenants, adopting);
        Ok(vault)
    }

    fn finish_open(
        home: &Path,
        id: String,
        keychain: Arc<dyn Keychain>,
        master: MasterKey,
    ) -> Result<Self> {
        let mut conn = db::open(&home.join(DB_FILE), false)?;
        audit::ensure_keyed(&mut conn, &master.history_key(), &*keychain, &id)?;
        Ok(Self::with_connection(home, id, conn, keychain, master))
    }

    fn with_connection(
        home: &Path,
        id: String,
        conn: rusqlite::Connection,
        keychain: Arc<dyn Keychain>,
        master: MasterKey,
    ) -> Self {
        let history = master.history_key();
        let anchorer = audit::Anchorer::new(
            home.join(DB_FILE),
            home.join(LOCK_FILE),
            keychain.clone(),
            history.clone(),
            id.clone(),
        );
        Self {
            history,
            anchorer,
            http: crate::http::HttpClient::default(),
            refresh_gates: Mutex::default(),
            data_keys: Mutex::default(),
            tenant_keys: Mutex::default(),
            home: home.to_owned(),
            fingerprints: master.fingerprint_key(),
            id,
            db: Mutex::new(conn),
            keychain,
            master,
        }
    }

    /// Changes the time allowed for each request to a provider (default 30 s).
    pub fn with_http_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.http = crate::http::HttpClient::new(timeout);
        self
    }

    /// The in-process refresh gate of a connection.
    pub(crate) fn refresh_gate(
        &self,
        connection: &ConnectionId,
    ) -> Arc<crate::grants::RefreshGate> {
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
        }
        Ok(out)
    }

    // ----- tenants -----

    /// Creates a tenant with its own data key. `slug` defaults to one derived from `name`.
    pub fn create_tenant(
        &self,
        name: &str,
        slug: Option<&str>,
        notes: &str,
        actor: &Actor,
    ) -> Result<Tenant> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("a tenant needs a name".into()));
        }
        let slug = match slug {
            Some(s) => validate_slug(s)?,
            None => validate_slug(&slugify(name))?,
        };
        let tenant = Tenant {
            id: TenantId::generate(),
            slug,
            name: name.to_owned(),
            notes: notes.to_owned(),
            created_at: now_ms(),
        };
        let _keys_lock = self.keys_lock()?;
        let tenant_key = TenantKey::generate();
        self.change_tenant_keys(|keys| {
            keys.tenants
                .insert(tenant.id.to_string(), tenant_key.clone());
        })?;
        let wrapped = tenant_key.wrap(
            &DataKey::generate(),
            &Aad::tenant_data_key(&self.id, tenant.id.as_str()),
        );
        let written = self.write(|tx| {
            let exists: bool = tx.query_row("SELECT EXISTS(SELECT 1 FROM tenants WHERE slug = ?1)", [&tenant.slug], |r| r.get(0))?;
            if exists {
                return Err(Error::AlreadyExists { what: "tenant", name: tenant.slug.clone() });
            }
            tx.execute(
                "INSERT INTO tenants (id, slug, name, notes, created_at, wrapped_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![tenant.id.as_str(), tenant.slug, tenant.name, tenant.notes, tenant.created_at, wrapped],
            )?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::TenantCreated, actor)
                    .tenant(&tenant.id)
                    .detail(json!({ "name": tenant.name, "slug": tenant.slug })),
            )?;
            Ok(())
        });
        if let Err(e) = written {
            let _ = self.change_tenant_keys(|keys| {
                keys.tenants.remove(tenant.id.as_str());
            });
            return Err(e);
        }
        tracing::info!(tenant = %tenant.id, slug = %tenant.slug, "tenant created");
        Ok(tenant)
    }

    /// All tenants with their connection counts, by name.
    pub fn list_tenants(&self) -> Result<Vec<TenantSummary>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.id, t.slug, t.name, t.notes, t.created_at,
                    COUNT(c.id), COALESCE(SUM(c.status IN ('needs_reconsent', 'error')), 0)
             FROM tenants t LEFT JOIN connections c ON c.tenant_id = t.id
             GROUP BY t.id ORDER BY t.name COLLATE NOCASE",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TenantSummary {
                tenant: row_to_tenant(r)?,
                connections: r.get(5)?,
                needs_attention: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Finds a tenant by slug or id.
    pub fn find_tenant(&self, slug_or_id: &str) -> Result<Tenant> {
        let conn = self.conn();
        let found = conn
            .prepare_cached(
                "SELECT id, slug, name, notes, created_at FROM tenants WHERE slug = ?1 OR id = ?1",
            )?
            .query_row([slug_or_id], row_to_tenant)
            .optional()?;
        found.ok_or_else(|| Error::NotFound {
            what: "tenant",
            name: slug_or_id.to_owned(),
        })
    }

    /// Renames a tenant (display name only; the slug stays).
    pub fn rename_tenant(&self, id: &TenantId, name: &str, actor: &Actor) -> Result<()> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::Invalid("a tenant needs a name".into()));
        }
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE tenants SET name = ?2 WHERE id = ?1",
                params![id.as_str(), name],
            )?;
            if n == 0 {
                return Err(Error::NotFound {
                    what: "tenant",
                    name: id.to_string(),
                });
            }
            audit::append(
                tx,
                &NewEvent::new(EventKind::ConfigChanged, actor)
                    .tenant(id)
                    .detail(json!({ "change": "tenant_renamed", "name": name })),
            )?;
            Ok(())
        })
    }

    /// Deletes a tenant: its refresh tokens leave the keychain, its rows and its data key leave
    /// the database (crypto-shredding what any backup still holds), and its events are redacted.
    pub fn delete_tenant(&self, id: &TenantId, actor: &Actor) -> Result<()> {
        let connections: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare("SELECT id FROM connections WHERE tenant_id = ?1")?;
            let rows = stmt.query_map([id.as_str()], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        self.find_tenant(id.as_str())?;
        for c in &connections {
            self.keychain
                .delete(&EntryName::refresh_token(&self.id, id.as_str(), c))?;
        }
        // Crypto-shredding: without its key, no copy of the database decrypts the tenant.
        {
            let _keys_lock = self.keys_lock()?;
            self.change_tenant_keys(|keys| {
                keys.tenants.remove(id.as_str());
                keys.adopting.remove(id.as_str());
            })?;
        }
        self.data_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.write(|tx| {
            audit::redact_tenant(tx, id)?;
            tx.execute(
                "DELETE FROM connections WHERE tenant_id = ?1",
                [id.as_str()],
            )?;
            tx.execute("DELETE FROM tenants WHERE id = ?1", [id.as_str()])?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::TenantDeleted, actor)
                    .tenant(id)
                    .detail(json!({ "connections": connections.len() })),
            )?;
            Ok(())
        })?;
        tracing::info!(tenant = %id, connections = connections.len(), "tenant deleted");
        // Push the deleted pages out of the write-ahead log too.
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Opens a tenant's scope: the only way to reach its secrets.
    pub fn tenant(&self, id: &TenantId) -> Result<TenantVault<'_>> {
        let (tenant, wrapped): (Tenant, Vec<u8>) = self
            .conn()
            .prepare_cached(
                "SELECT id, slug, name, notes, created_at, wrapped_key FROM tenants WHERE id = ?1",
            )?
            .query_row([id.as_str()], |r| Ok((row_to_tenant(r)?, r.get(5)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound {
                what: "tenant",
                name: id.to_string(),
            })?;
        let key = self.data_key(&tenant, &wrapped)?;
        Ok(TenantVault {
            vault: self,
            tenant,
            key,
        })
    }

    /// Held while the keychain entry of the vault's keys changes (see [`Self::change_tenant_keys`]).
    fn keys_lock(&self) -> Result<fs::File> {
        let path = self.home.join(KEYS_LOCK_FILE);
        let lock = crate::private::open_lock_file(&path)?;
        lock.lock().map_err(|e| Error::io(&path, e))?;
        Ok(lock)
    }

    /// Rewrites the keychain entry of the vault's keys with `change` applied, re-reading it first
    /// (another process may have added a tenant) and reading it back after. The caller holds
    /// [`Self::keys_lock`].
    fn change_tenant_keys(&self, change: impl FnOnce(&mut VaultKeys)) -> Result<()> {
        let entry = EntryName::master_key(&self.id);
        let text = self
            .keychain
            .get(&entry)?
            .ok_or_else(|| Error::MasterKeyMissing {
                backend: self.keychain.describe(),
                path: self.db_path(),
            })?;
        let mut keys = VaultKeys::from_keychain_text(&text)?;
        if !keys.master.same_as(&self.master) {
            return Err(Error::Tampered(
                "the vault's master key in the keychain changed while Grantkeeper ran; nothing was changed".into(),
            ));
        }
        change(&mut keys);
        let new = keys.to_keychain_text();
        self.keychain.set(&entry, &new)?;
        if self
            .keychain
            .get(&entry)?
            .is_none_or(|t| t.expose() != new.expose())
        {
            return Err(crate::keychain::KeychainError::Other {
                detail: "the keychain did not return the value just stored".into(),
            }
            .into());
        }
        *self.tenant_keys.lock().unwrap_or_else(|p| p.into_inner()) = (keys.tenants, keys.adopting);
        Ok(())
    }

    /// A tenant's wrapping key and whether its adoption is unfinished: from memory, else from
    /// the keychain (a tenant another process added since this vault was opened).
    fn tenant_key(&self, tenant: &TenantId) -> Result<Option<(TenantKey, bool)>> {
        let known = |keys: &TenantKeys| {
            keys.0
                .get(tenant.as_str())
                .map(|k| (k.clone(), keys.1.contains(tenant.as_str())))
        };
        if let Some(found) = known(&self.tenant_keys.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(Some(found));
        }
        let Some(text) = self.keychain.get(&EntryName::master_key(&self.id))? else {
            return Ok(None);
        };
        let keys = VaultKeys::from_keychain_text(&text)?;
        let mut held = self.tenant_keys.lock().unwrap_or_else(|p| p.into_inner());
        *held = (keys.tenants, keys.adopting);
        Ok(known(&held))
    }

    /// The tenant's data key, unwrapped by its tenant key from the keychain. A tenant from a
    /// vault made before tenant keys (its data key wrapped by the master key) is adopted first
    /// (see [`Vault::adopt_tenant`]); a record that matches neither is refused.
    fn data_key(&self, tenant: &Tenant, wrapped: &[u8]) -> Result<DataKey> {
        if let Some((blob, key)) = self
            .data_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&tenant.id)
        {
            if blob == wrapped {
                return Ok(key.clone());
            }
        }
        let v2 = Aad::tenant_data_key(&self.id, tenant.id.as_str());
        let refused = |why: &str| {
            Error::Tampered(format!(
                "the key of tenant '{}' {why}: its secrets cannot be decrypted. Restore the keychain or the vault from the same time, or delete the tenant",
                tenant.slug
            ))
        };
        let legacy = || {
            self.master
                .unwrap_key(wrapped, &Aad::data_key(&self.id, tenant.id.as_str()))
                .ok()
        };
        let key = match self.tenant_key(&tenant.id)? {
            Some((k, adopting)) => match k.unwrap_key(wrapped, &v2) {
                Ok(key) => {
                    if adopting {
                        // Adopted, but the keychain was not told before a crash: tell it now.
                        let _keys_lock = self.keys_lock()?;
                        self.change_tenant_keys(|keys| {
                            keys.adopting.remove(tenant.id.as_str());
                        })?;
                    }
                    key
                }
                // A crash before the adoption's commit: adopt again.
                Err(_) if adopting => {
                    let key = legacy().ok_or_else(|| refused("does not match its record"))?;
                    self.adopt_tenant(tenant, wrapped, &key)?;
                    key
                }
                // Put back from an older copy of the vault, or replaced.
                Err(_) => {
                    return Err(refused(
                        "does not match its record (the record was replaced, perhaps from an older copy of the vault)",
                    ))
                }
            },
            None => {
                let key = legacy().ok_or_else(|| {
                    refused(&format!(
                        "is not in {} (the tenant was deleted, or the keychain was reset)",
                        self.keychain.describe()
                    ))
                })?;
                self.adopt_tenant(tenant, wrapped, &key)?;
                key
            }
        };
        self.data_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.id.clone(), (wrapped.to_vec(), key.clone()));
        Ok(key)
    }

    /// Moves a tenant made before tenant keys over, under the keys lock: a new tenant key in the
    /// keychain marked `adopting`, the data key re-wrapped by it and MACs over the settings of
    /// its provider apps and connections (trusted as they are now: the one moment they cannot be
    /// checked) in one commit, then the mark removed. Its secrets are not re-encrypted. A crash
    /// before the commit leaves the old wrapping and the mark, and the next use adopts the
    /// tenant again; once the mark is gone, a record wrapped the old way is refused.
    fn adopt_tenant(&self, tenant: &Tenant, wrapped: &[u8], key: &DataKey) -> Result<()> {
        let _keys_lock = self.keys_lock()?;
        let current: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT wrapped_key FROM tenants WHERE id = ?1",
                [tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        if current.as_deref() != Some(wrapped) {
            return Ok(()); // Another process adopted it (or it is gone): nothing to do.
        }
        let tenant_key = TenantKey::generate();
        self.change_tenant_keys(|keys| {
            keys.tenants
                .insert(tenant.id.to_string(), tenant_key.clone());
            keys.adopting.insert(tenant.id.to_string());
        })?;
        let rewrapped = tenant_key.wrap(key, &Aad::tenant_data_key(&self.id, tenant.id.as_str()));
        let scope = TenantVault {
            vault: self,
            tenant: tenant.clone(),
            key: key.clone(),
        };
        self.write(|tx| {
            let apps: Vec<String> = {
                let mut stmt = tx.prepare("SELECT id FROM provider_apps WHERE tenant_id = ?1")?;
                let rows = stmt.query_map([tenant.id.as_str()], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for app in apps {
                let record = tx.query_row(
                    &format!("SELECT {PROVIDER_APP_COLUMNS} FROM provider_apps WHERE id = ?1"),
                    [&app],
                    row_to_provider_app,
                )?;
                tx.execute(
                    "UPDATE provider_apps SET settings_mac = ?2 WHERE id = ?1",
                    params![app, scope.app_mac(&record)],
                )?;
            }
            let links: Vec<(String, String)> = {
                let mut stmt =
                    tx.prepare("SELECT id, provider_app_id FROM connections WHERE tenant_id = ?1")?;
                let rows = stmt.query_map([tenant.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for (id, app) in links {
                tx.execute(
                    "UPDATE connections SET link_mac = ?2 WHERE id = ?1",
                    params![id, scope.link_mac(&id, &app)],
                )?;
            }
            tx.execute(
                "UPDATE tenants SET wrapped_key = ?2 WHERE id = ?1",
                params![tenant.id.as_str(), rewrapped],
            )?;
            Ok(())
        })?;
        self.change_tenant_keys(|keys| {
            keys.adopting.remove(tenant.id.as_str());
        })?;
        tracing::warn!(tenant = %tenant.id, "moved a tenant to its own keychain key; its settings are now authenticated");
        Ok(())
    }

    // ----- connections and history -----

    /// Connections across tenants, by tenant and name.
    pub fn connections(&self, filter: &ConnectionFilter) -> Result<Vec<Connection>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c JOIN tenants t ON t.id = c.tenant_id
             WHERE (?1 IS NULL OR c.tenant_id = ?1) AND (?2 IS NULL OR c.status = ?2)
             ORDER BY t.slug, c.name"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                filter.tenant.as_ref().map(TenantId::as_str),
                filter.status.map(ConnectionStatus::as_str)
            ],
            row_to_connection,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest events of one connection, newest first.
    pub fn connection_history(
        &self,
        id: &ConnectionId,
        before: Option<UnixMillis>,
        limit: u32,
    ) -> Result<Vec<UsageEvent>> {
        Ok(audit::connection_history(&self.conn(), id, before, limit)?)
    }

    /// The newest events of the whole vault.
    pub fn recent_events(&self, limit: u32) -> Result<Vec<UsageEvent>> {
        Ok(audit::recent(&self.conn(), limit)?)
    }

    /// The newest events of one connection or of the whole vault, optionally only those since
    /// a time, newest first.
    pub fn history(&self, filter: &audit::HistoryFilter) -> Result<Vec<UsageEvent>> {
        Ok(audit::events(&self.conn(), filter)?)
    }

    /// Per-day event counts of one connection since `since`.
    pub fn daily_counts(&self, id: &ConnectionId, since: UnixMillis) -> Result<Vec<DailyCount>> {
        Ok(audit::daily_counts(&self.conn(), id, since)?)
    }

    /// Verifies the whole usage history against its keyed chain and the keychain's checkpoint.
    pub fn verify_history(&self) -> Result<VerifyReport> {
        // The checkpoint first: every event it anchors was committed before it was written.
        let anchor = audit::read_anchor(&*self.keychain, &self.history, &self.id)?;
        Ok(audit::verify(&self.conn(), &self.history, &anchor)?)
    }

    /// Writes a checkpoint of the usage history to the keychain now, if it has new events that
    /// verify (the agent at lock and stop, the app when it quits).
    pub fn anchor_history(&self) -> Result<audit::AnchorOutcome> {
        self.anchorer.now(&self.conn())
    }

    /// Appends events in one transaction (imports, benchmarks).
    pub fn record_events(&self, events: &[NewEvent]) -> Result<i64> {
        self.write(|tx| Ok(audit::append_batch(tx, events)?))
    }
}

/// One tenant's view of the vault, holding its unwrapped data key. It reaches only this
/// tenant's rows and keychain entries.
pub struct TenantVault<'v> {
    pub(crate) vault: &'v Vault,
    pub(crate) tenant: Tenant,
    pub(crate) key: DataKey,
}

impl std::fmt::Debug for TenantVault<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantVault")
            .field("tenant", &self.tenant.slug)
            .finish_non_exhaustive()
    }
}

impl TenantVault<'_> {
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

    pub(crate) fn aad(&self, table: &str, column: &str, row: &str) -> Aad {
        Aad::column(&self.vault.id, self.tenant.id.as_str(), table, column, row)
    }

    /// The MAC over a provider app's settings: everything that decides where its grants' secrets
    /// go and how they are asked for.
    fn app_mac(&self, app: &ProviderApp) -> Vec<u8> {
        self.key.mac(
            &Aad::settings(
                &self.vault.id,
                self.tenant.id.as_str(),
                "provider_apps",
                app.id.as_str(),
            ),
            &app_settings(app),
        )
    }

    /// The MAC over a connection's link to its provider app.
    fn link_mac(&self, connection: &str, app: &str) -> Vec<u8> {
        self.key.mac(
            &Aad::settings(
                &self.vault.id,
                self.tenant.id.as_str(),
                "connections",
                connection,
            ),
            &[app.as_bytes()],
        )
    }

    /// Refuses a record changed outside Grantkeeper: records a `config_changed` event saying
    /// what was refused, and returns the error to report.
    fn refuse_outside_change(&self, what: String) -> Error {
        let message = format!(
            "{what} was changed outside Grantkeeper (its authentication does not match), so nothing was sent. Check the vault folder for other programs writing to it, then register the provider app again"
        );
        tracing::warn!(tenant = %self.tenant.id, what = %what, "refused settings changed outside Grantkeeper");
        let recorded = self.vault.write(|tx| {
            audit::append(
                tx,
                &NewEvent::new(
                    EventKind::ConfigChanged,
                    &Actor::new(audit::ActorKind::Background),
                )
                .tenant(&self.tenant.id)
                .detail(json!({ "change": "outside_change_refused", "what": what })),
            )?;
            Ok(())
        });
        recorded.err().unwrap_or(Error::Tampered(message))
    }

    /// The provider app a connection is linked to, both checked: the link's and the app's
    /// settings' MACs. Every request for a grant goes through here (or [`Self::provider_app`]).
    pub fn connection_app(&self, connection: &Connection) -> Result<ProviderApp> {
        let mac: Option<Vec<u8>> = self
            .vault
            .conn()
            .prepare_cached("SELECT link_mac FROM connections WHERE id = ?1 AND tenant_id = ?2")?
            .query_row(
                params![connection.id.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let app = connection.provider_app_id.as_str();
        let expected = self.link_mac(connection.id.as_str(), app);
        if mac.as_deref() != Some(expected.as_slice()) {
            return Err(self.refuse_outside_change(format!(
                "the link of connection '{}/{}' to its provider app",
                self.tenant.slug, connection.name
            )));
        }
        self.provider_app(app)
    }

    pub(crate) fn refresh_entry(&self, connection: &ConnectionId) -> EntryName {
        EntryName::refresh_token(&self.vault.id, self.tenant.id.as_str(), connection.as_str())
    }

    /// Registers a provider app; a client secret is stored encrypted.
    pub fn add_provider_app(&self, app: NewProviderApp, actor: &Actor) -> Result<ProviderApp> {
        validate_name("provider app", &app.name)?;
        if app.client_id.trim().is_empty() {
            return Err(Error::Invalid("a provider app needs a client id".into()));
        }
        let id = ProviderAppId::generate();
        let secret = app.client_secret.as_ref().map(|s| {
            self.key.seal(
                &self.aad("provider_apps", "client_secret", id.as_str()),
                s.expose(),
            )
        });
        let record = ProviderApp {
            id,
            tenant_id: self.tenant.id.clone(),
            name: app.name,
            preset: app.preset,
            endpoints: app.endpoints,
            client_id: app.client_id,
            has_client_secret: secret.is_some(),
            redirect_mode: app.redirect_mode,
            redirect_port: app.redirect_port,
            relay_url: app.relay_url,
            default_scopes: app.default_scopes,
            created_at: now_ms(),
        };
        self.vault.write(|tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM provider_apps WHERE tenant_id = ?1 AND name = ?2)",
                params![self.tenant.id.as_str(), record.name],
                |r| r.get(0),
            )?;
            if exists {
                return Err(Error::AlreadyExists { what: "provider app", name: record.name.clone() });
            }
            tx.execute(
                "INSERT INTO provider_apps (id, tenant_id, name, preset, endpoints, client_id, client_secret,
                     redirect_mode, redirect_port, relay_url, default_scopes, created_at, settings_mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    record.id.as_str(),
                    self.tenant.id.as_str(),
                    record.name,
                    record.preset,
                    to_json(&record.endpoints),
                    record.client_id,
                    secret,
                    to_json(&record.redirect_mode),
                    record.redirect_port,
                    record.relay_url,
                    to_json(&record.default_scopes),
                    record.created_at,
                    self.app_mac(&record),
                ],
            )?;
            audit::append(
                tx,
                &NewEvent::new(EventKind::ConfigChanged, actor)
                    .tenant(&self.tenant.id)
                    .detail(json!({ "change": "provider_app_added", "name": record.name, "preset": record.preset })),
            )?;
            Ok(())
        })?;
        Ok(record)
    }

    /// This tenant's provider apps.
    pub fn provider_apps(&self) -> Result<Vec<ProviderApp>> {
        let conn = self.vault.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PROVIDER_APP_COLUMNS} FROM provider_apps WHERE tenant_id = ?1 ORDER BY name"
        ))?;
        let rows = stmt.query_map([self.tenant.id.as_str()], row_to_provider_app)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One of this tenant's provider apps, by id or name, its settings checked against their
    /// MAC: a change made outside Grantkeeper is refused (and recorded) before any request.
    pub fn provider_app(&self, id_or_name: &str) -> Result<ProviderApp> {
        let found = self
            .vault
            .conn()
            .query_row(
                &format!("SELECT {PROVIDER_APP_COLUMNS}, settings_mac FROM provider_apps WHERE tenant_id = ?1 AND (id = ?2 OR name = ?2)"),
                params![self.tenant.id.as_str(), id_or_name],
                |r| Ok((row_to_provider_app(r)?, r.get::<_, Option<Vec<u8>>>(12)?)),
            )
            .optional()?;
        let (app, mac) = found.ok_or_else(|| Error::NotFound {
            what: "provider app",
            name: format!("{}/{id_or_name}", self.tenant.slug),
        })?;
        let aad = Aad::settings(
            &self.vault.id,
            self.tenant.id.as_str(),
            "provider_apps",
            app.id.as_str(),
        );
        if !mac.is_some_and(|m| self.key.verify_mac(&aad, &app_settings(&app), &m)) {
            return Err(self.refuse_outside_change(format!(
                "the settings of provider app '{}/{}'",
                self.tenant.slug, app.name
            )));
        }
        Ok(app)
    }

    /// The client secret of one of this tenant's provider apps.
    pub fn client_secret(&self, app: &ProviderAppId) -> Result<Option<ClientSecret>> {
        let blob: Option<Option<Vec<u8>>> = self
            .vault
            .conn()
            .query_row(
                "SELECT client_secret FROM provider_apps WHERE id = ?1 AND tenant_id = ?2",
                params![app.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(blob) = blob else {
            return Err(Error::NotFound {
                what: "provider app",
                name: app.to_string(),
            });
        };
        blob.map(|b| {
            let text = self.key.open(
                &self.aad("provider_apps", "client_secret", app.as_str()),
                &b,
            )?;
            Ok(ClientSecret::new(text.expose()))
        })
        .transpose()
    }

    /// Stores a new grant, all or nothing: the refresh token goes to the keychain, the access and
    /// ID tokens are encrypted into the connection row, and the `consented` event is appended.
    /// If any step fails, what was already written is removed.
    pub fn store_connection(
        &self,
        new: NewConnection,
        tokens: TokenSet,
        actor: &Actor,
    ) -> Result<Connection> {
        validate_name("connection", &new.name)?;
        let id = ConnectionId::generate();
        let entry = self.refresh_entry(&id);
        if let Some(rt) = &tokens.refresh_token {
            self.vault
                .keychain
                .set(&entry, &crate::secret::SecretText::new(rt.expose()))?;
        }
        let result = self.insert_connection(&id, &new, &tokens, actor);
        if result.is_err() && tokens.refresh_token.is_some() {
            let _ = self.vault.keychain.delete(&entry);
        }
        if let Err(e) = &result {
            tracing::warn!(tenant = %self.tenant.id, error = %e, "storing a connection failed; nothing kept");
        }
        result?;
        tracing::info!(tenant = %self.tenant.id, connection = %id, name = %new.name, "connection stored");
        self.connection(&id)
    }

    fn insert_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        actor: &Actor,
    ) -> Result<()> {
        let access = self.key.seal(
            &self.aad("connections", "access_token", id.as_str()),
            tokens.access_token.expose(),
        );
        let id_token = tokens.id_token.as_ref().map(|t| {
            self.key.seal(
                &self.aad("connections", "id_token", id.as_str()),
                t.expose(),
            )
        });
        let now = now_ms();
        let (granted, reported) = match &new.scopes_granted {
            Some(g) => (g.clone(), true),
            None => (new.scopes_requested.clone(), false),
        };
        self.vault.write(|tx| {
            let app_ok: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM provider_apps WHERE id = ?1 AND tenant_id = ?2)",
                params![new.provider_app_id.as_str(), self.tenant.id.as_str()],
                |r| r.get(0),
            )?;
            if !app_ok {
                return Err(Error::NotFound { what: "provider app", name: new.provider_app_id.to_string() });
            }
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM connections WHERE tenant_id = ?1 AND name = ?2)",
                params![self.tenant.id.as_str(), new.name],
                |r| r.get(0),
            )?;
            if exists {
                return Err(Error::AlreadyExists { what: "connection", name: new.name.clone() });
            }
            tx.execute(
                "INSERT INTO connections (id, tenant_id, provider_app_id, name, account_subject, account_username,
                     account_org_id, scopes_requested, scopes_granted, scopes_granted_reported, consented_at,
                     consented_by, status, access_expires_at, access_expiry_source, refresh_expires_at,
                     refresh_hard_expires_at, has_refresh_token, metadata, access_token, id_token, created_at,
                     link_mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'active', ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?11, ?21)",
                params![
                    id.as_str(),
                    self.tenant.id.as_str(),
                    new.provider_app_id.as_str(),
                    new.name,
                    new.account.subject,
                    new.account.username,
                    new.account.org_id,
                    to_json(&new.scopes_requested),
                    to_json(&granted),
                    reported,
                    now,
                    new.consented_by,
                    new.access_expiry.map(|(t, _)| t),
                    new.access_expiry.map(|(_, s)| to_json(&s)),
                    new.refresh_expires_at,
                    new.refresh_hard_expires_at,
                    tokens.refresh_token.is_some(),
                    to_json(&new.metadata),
                    access,
                    id_token,
                    self.link_mac(id.as_str(), new.provider_app_id.as_str()),
                ],
            )?;
            audit::append(
                tx,
                &self.event(EventKind::Consented, id, actor)
                    .fingerprint(self.vault.fingerprint(tokens.access_token.expose()))
                    .detail(json!({ "scopes_requested": new.scopes_requested, "scopes_granted": granted })),
            )?;
            Ok(())
        })
    }

    /// Renews a connection in place after a re-consent: new tokens (the refresh token replaced in
    /// the keychain first), scopes, account and expiries; status active; history kept. The
    /// `consented` event records which scopes were added or dropped.
    pub fn renew_connection(
        &self,
        id: &ConnectionId,
        new: NewConnection,
        tokens: TokenSet,
        actor: &Actor,
    ) -> Result<Connection> {
        let before = self.connection(id)?;
        if let Some(rt) = &tokens.refresh_token {
            self.vault.keychain.set(
                &self.refresh_entry(id),
                &crate::secret::SecretText::new(rt.expose()),
            )?;
        }
        let access = self.key.seal(
            &self.aad("connections", "access_token", id.as_str()),
            tokens.access_token.expose(),
        );
        let id_token = tokens.id_token.as_ref().map(|t| {
            self.key.seal(
                &self.aad("connections", "id_token", id.as_str()),
                t.expose(),
            )
        });
        let (granted, reported) = match &new.scopes_granted {
            Some(g) => (g.clone(), true),
            None => (new.scopes_requested.clone(), false),
        };
        let added: Vec<&String> = granted
            .iter()
            .filter(|s| !before.scopes_granted.contains(s))
            .collect();
        let dropped: Vec<&String> = before
            .scopes_granted
            .iter()
            .filter(|s| !granted.contains(s))
            .collect();
        let has_refresh = tokens.refresh_token.is_some() || before.has_refresh_token;
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET account_subject = ?2, account_username = ?3, account_org_id = ?4,
                        scopes_requested = ?5, scopes_granted = ?6, scopes_granted_reported = ?7, consented_at = ?8,
                        consented_by = ?9, status = 'active', status_detail = NULL, access_expires_at = ?10,
                        access_expiry_source = ?11, refresh_expires_at = ?12, refresh_hard_expires_at = ?13,
                        has_refresh_token = ?14, metadata = ?15, access_token = ?16, id_token = ?17
                 WHERE id = ?1 AND tenant_id = ?18",
                params![
                    id.as_str(),
                    new.account.subject,
                    new.account.username,
                    new.account.org_id,
                    to_json(&new.scopes_requested),
                    to_json(&granted),
                    reported,
                    now_ms(),
                    new.consented_by,
                    new.access_expiry.map(|(t, _)| t),
                    new.access_expiry.map(|(_, s)| to_json(&s)),
                    new.refresh_expires_at,
                    new.refresh_hard_expires_at,
                    has_refresh,
                    to_json(&new.metadata),
                    access,
                    id_token,
                    self.tenant.id.as_str(),
                ],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append(
                tx,
                &self
                    .event(EventKind::Consented, id, actor)
                    .fingerprint(self.vault.fingerprint(tokens.access_token.expose()))
                    .detail(json!({ "reconsent": true, "scopes_granted": granted, "scopes_added": added, "scopes_dropped": dropped })),
            )?;
            Ok(())
        })?;
        self.connection(id)
    }

    /// One of this tenant's connections.
    pub fn connection(&self, id: &ConnectionId) -> Result<Connection> {
        let conn = self.vault.conn();
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c WHERE c.id = ?1 AND c.tenant_id = ?2"
        );
        let found = conn
            .prepare_cached(&sql)?
            .query_row(
                params![id.as_str(), self.tenant.id.as_str()],
                row_to_connection,
            )
            .optional()?;
        found.ok_or_else(|| Error::NotFound {
            what: "connection",
            name: id.to_string(),
        })
    }

    /// Finds one of this tenant's connections by name.
    pub fn connection_named(&self, name: &str) -> Result<Connection> {
        let conn = self.vault.conn();
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c WHERE c.name = ?1 AND c.tenant_id = ?2"
        );
        let found = conn
            .prepare_cached(&sql)?
            .query_row(params![name, self.tenant.id.as_str()], row_to_connection)
            .optional()?;
        found.ok_or_else(|| Error::NotFound {
            what: "connection",
            name: format!("{}/{name}", self.tenant.slug),
        })
    }

    /// Deletes a connection: its refresh token leaves the keychain, its row the database.
    pub fn delete_connection(&self, id: &ConnectionId, actor: &Actor) -> Result<()> {
        self.connection(id)?;
        self.vault.keychain.delete(&self.refresh_entry(id))?;
        self.vault.write(|tx| {
            tx.execute(
                "DELETE FROM connections WHERE id = ?1 AND tenant_id = ?2",
                params![id.as_str(), self.tenant.id.as_str()],
            )?;
            audit::append(tx, &self.event(EventKind::Deleted, id, actor))?;
            Ok(())
        })
    }
}

/// Tenant wrapping keys by tenant id, and the tenants whose adoption is unfinished.
type TenantKeys = (
    BTreeMap<String, TenantKey>,
    std::collections::BTreeSet<String>,
);

/// The authenticated fields of a provider app (its id and tenant are in the MAC's binding).
fn app_settings(app: &ProviderApp) -> [Vec<u8>; 9] {
    [
        app.name.as_bytes().to_vec(),
        to_json(&app.preset).into_bytes(),
        to_json(&app.endpoints).into_bytes(),
        app.client_id.as_bytes().to_vec(),
        vec![u8::from(app.has_client_secret)],
        to_json(&app.redirect_mode).into_bytes(),
        to_json(&app.redirect_port).into_bytes(),
        to_json(&app.relay_url).into_bytes(),
        to_json(&app.default_scopes).into_bytes(),
    ]
}

const PROVIDER_APP_COLUMNS: &str =
    "id, tenant_id, name, preset, endpoints, client_id, client_secret IS NOT NULL,
    redirect_mode, redirect_port, relay_url, default_scopes, created_at";

fn row_to_provider_app(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProviderApp> {
    Ok(ProviderApp {
        id: ProviderAppId::from_string(r.get::<_, String>(0)?),
        tenant_id: TenantId::from_string(r.get::<_, String>(1)?),
        name: r.get(2)?,
        preset: r.get(3)?,
        endpoints: from_json(r, 4)?,
        client_id: r.get(5)?,
        has_client_secret: r.get(6)?,
        redirect_mode: from_json(r, 7)?,
        redirect_port: r.get(8)?,
        relay_url: r.get(9)?,
        default_scopes: from_json(r, 10)?,
        created_at: r.get(11)?,
    })
}

const CONNECTION_COLUMNS: &str = "c.id, c.tenant_id, c.provider_app_id, c.name, c.account_subject,
    c.account_username, c.account_org_id, c.scopes_requested, c.scopes_granted, c.scopes_granted_reported,
    c.consented_at, c.consented_by, c.status, c.status_detail, c.access_expires_at, c.access_expiry_source,
    c.refresh_expires_at, c.refresh_hard_expires_at, c.last_refresh_at, c.last_used_at, c.has_refresh_token,
    c.metadata, c.created_at";

fn row_to_connection(r: &rusqlite::Row<'_>) -> rusqlite::Result<Connection> {
    let status: String = r.get(12)?;
    let expiry_source: Option<String> = r.get(15)?;
    Ok(Connection {
        id: ConnectionId::from_string(r.get::<_, String>(0)?),
        tenant_id: TenantId::from_string(r.get::<_, String>(1)?),
        provider_app_id: ProviderAppId::from_string(r.get::<_, String>(2)?),
        name: r.get(3)?,
        account: AccountIdentity {
            subject: r.get(4)?,
            username: r.get(5)?,
            org_id: r.get(6)?,
        },
        scopes_requested: from_json(r, 7)?,
        scopes_granted: from_json(r, 8)?,
        scopes_granted_reported: r.get(9)?,
        consented_at: r.get(10)?,
        consented_by: r.get(11)?,
        status: ConnectionStatus::parse(&status).unwrap_or(ConnectionStatus::Error),
        status_detail: r.get(13)?,
        access_expires_at: r.get(14)?,
        access_expiry_source: expiry_source.and_then(|s| serde_json::from_str(&s).ok()),
        refresh_expires_at: r.get(16)?,
        refresh_hard_expires_at: r.get(17)?,
        last_refresh_at: r.get(18)?,
        last_used_at: r.get(19)?,
        has_refresh_token: r.get(20)?,
        metadata: from_json(r, 21)?,
        created_at: r.get(22)?,
    })
}

fn row_to_tenant(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: TenantId::from_string(r.get::<_, String>(0)?),
        slug: r.get(1)?,
        name: r.get(2)?,
        notes: r.get(3)?,
        created_at: r.get(4)?,
    })
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

/// Creates the database under the vault lock. Returns `false` if another process won the race.
fn create_db(home: &Path, vault_id: &str) -> Result<bool> {
    crate::private::ensure_dir(home)?;
    let lock_path = home.join(LOCK_FILE);
    let lock = crate::private::open_lock_file(&lock_path)?;
    lock.lock().map_err(|e| Error::io(&lock_path, e))?;
    let db_path = home.join(DB_FILE);
    if db_path.exists() {
        return Ok(false);
    }
    let tmp = home.join(format!("{DB_FILE}.creating-{}", std::process::id()));
    let build = || -> Result<()> {
        // Created 0600 before SQLite opens it; its -wal and -shm files take the same mode.
        drop(crate::private::open_lock_file(&tmp)?);
        let conn = db::open(&tmp, true)?;
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('vault_id', ?1), ('created_at', ?2)",
            params![vault_id, now_ms().to_string()],
        )?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        drop(conn);
        fs::rename(&tmp, &db_path).map_err(|e| Error::io(&db_path, e))
    };
    let result = build();
    if result.is_err() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = fs::remove_file(format!("{}{suffix}", tmp.display()));
        }
    }
    result.map(|()| true)
}

/// Makes an existing vault folder and its files private (see [`crate::private`]).
fn make_private(home: &Path) -> Result<()> {
    crate::private::ensure_dir(home)?;
    for name in [
        DB_FILE,
        "vault.db-wal",
        "vault.db-shm",
        LOCK_FILE,
        KEYS_LOCK_FILE,
    ] {
        crate::private::ensure_file(&home.join(name))?;
    }
    let locks = home.join(crate::grants::LOCKS_DIR);
    if locks.exists() {
        crate::private::ensure_dir(&locks)?;
    }
    Ok(())
}

fn slugify(name: &str) -> String {
    let mut out = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

fn validate_slug(slug: &str) -> Result<String> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-');
    if ok {
        Ok(slug.to_owned())
    } else {
        Err(Error::Invalid(format!(
            "'{slug}' is not a valid tenant slug: use 1-64 lowercase letters, digits and dashes"
        )))
    }
}

fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{name}' is not a valid {what} name: use letters, digits, '-', '_' and '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ActorKind;
    use crate::keychain::MemoryKeychain;
    use crate::secret::{AccessToken, RefreshToken};

    fn open() -> (tempfile::TempDir, Arc<MemoryKeychain>, Vault) {
        let dir = tempfile::tempdir().unwrap();
        let kc = Arc::new(MemoryKeychain::default());
        let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
        (dir, kc, v)
    }

    fn app(t: &TenantVault<'_>) -> ProviderApp {
        t.add_provider_app(
            NewProviderApp {
                name: "idp".into(),
                preset: None,
                endpoints: Endpoints::default(),
                client_id: "client".into(),
                client_secret: Some(ClientSecret::new("s3cret")),
                redirect_mode: RedirectMode::Loopback,
                redirect_port: None,
                relay_url: None,
                default_scopes: vec!["openid".into()],
            },
            &Actor::new(ActorKind::Cli),
        )
        .unwrap()
    }

    fn new_conn(app: &ProviderApp, name: &str) -> NewConnection {
        NewConnection {
            name: name.into(),
            provider_app_id: app.id.clone(),
            account: AccountIdentity::default(),
            scopes_requested: vec!["openid".into(), "email".into()],
            scopes_granted: Some(vec!["openid".into()]),
            consented_by: None,
            access_expiry: Some((now_ms() + 3_600_000, ExpirySource::Response)),
            refresh_expires_at: None,
            refresh_hard_expires_at: None,
            metadata: BTreeMap::from([("instance_url".into(), "https://x.example".into())]),
        }
    }

    fn tokens(tag: &str) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new(format!("at-{tag}")),
            refresh_token: Some(RefreshToken::new(format!("rt-{tag}"))),
            id_token: None,
        }
    }

    /// A public client's app whose token endpoint is on `base`.
    fn token_app(name: &str, base: &str) -> NewProviderApp {
        NewProviderApp {
            name: name.into(),
            preset: None,
            endpoints: Endpoints {
                token: Some(format!("{base}/token")),
                ..Endpoints::default()
            },
            client_id: "client".into(),
            client_secret: None,
            redirect_mode: RedirectMode::Loopback,
            redirect_port: None,
            relay_url: None,
            default_scopes: vec![],
        }
    }

    /// A provider app whose endpoints are on `base`, and a grant on it whose token expired.
    fn expired_grant(v: &Vault, base: &str) -> (TenantId, ConnectionId) {
        let a = Actor::new(ActorKind::Cli);
        let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        let app = scope.add_provider_app(token_app("idp", base), &a).unwrap();
        let mut conn = new_conn(&app, "crm");
        conn.access_expiry = Some((now_ms() - 60_000, ExpirySource::Response));
        let c = scope.store_connection(conn, tokens("1"), &a).unwrap();
        (t.id, c.id)
    }

    /// Endpoints, client id or a connection's link changed in vault.db by someone without the
    /// keychain: refused before any request, recorded, and the grant left as it was.
    #[test]
    fn settings_changed_outside_are_refused_before_any_request() {
        use crate::oauth::stub::{Stub, StubResponse};
        let good = Stub::start(|_| {
            StubResponse::json(
                200,
                r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600}"#,
            )
        });
        let evil = Stub::start(|_| StubResponse::json(400, r#"{"error":"invalid_grant"}"#));
        let (_dir, _kc, v) = open();
        let (tenant, id) = expired_grant(&v, &good.base);
        let a = Actor::new(ActorKind::Cli);
        let deadline = crate::deadline::Deadline::default();
        let min = crate::grants::DEFAULT_MIN_VALID;
        let edits = [
            format!(
                "UPDATE provider_apps SET endpoints = json_set(endpoints, '$.token', '{}/token')",
                evil.base
            ),
            "UPDATE provider_apps SET client_id = 'attacker'".to_owned(),
            "UPDATE provider_apps SET settings_mac = NULL".to_owned(),
        ];
        for edit in &edits {
            let before: Vec<(String, Option<Vec<u8>>)> = {
                let c = v.conn();
                let mut st = c
                    .prepare("SELECT endpoints, settings_mac FROM provider_apps")
                    .unwrap();
                let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
                rows.collect::<rusqlite::Result<_>>().unwrap()
            };
            v.conn().execute(edit, []).unwrap();
            let scope = v.tenant(&tenant).unwrap();
            let e = scope.access_token(&id, min, &deadline, &a).unwrap_err();
            assert!(matches!(e, Error::Tampered(_)), "{edit}: {e}");
            assert!(e.to_string().contains("changed outside Grantkeeper"), "{e}");
            // Put the row back as it was.
            let c = v.conn();
            c.execute(
                "UPDATE provider_apps SET endpoints = ?1, settings_mac = ?2",
                params![before[0].0, before[0].1],
            )
            .unwrap();
            c.execute("UPDATE provider_apps SET client_id = 'client'", [])
                .unwrap();
        }
        // A connection moved to another app of the tenant (here: a second, evil one).
        let scope = v.tenant(&tenant).unwrap();
        let other = scope
            .add_provider_app(token_app("other", &evil.base), &a)
            .unwrap();
        v.conn()
            .execute(
                "UPDATE connections SET provider_app_id = ?1",
                [other.id.as_str()],
            )
            .unwrap();
        let e = scope.access_token(&id, min, &deadline, &a).unwrap_err();
        assert!(
            e.to_string().contains("the link of connection 'acme/crm'"),
            "{e}"
        );
        assert!(
            evil.requests.lock().unwrap().is_empty(),
            "0 requests reached the other server"
        );
        assert!(good.requests.lock().unwrap().is_empty());
        assert_eq!(
            scope.connection(&id).unwrap().status,
            ConnectionStatus::Active
        );
        let refused = v
            .history(&audit::HistoryFilter {
                kind: Some(EventKind::ConfigChanged),
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.detail
                    .as_ref()
                    .is_some_and(|d| d["change"] == "outside_change_refused")
            })
            .count();
        assert_eq!(refused, edits.len() + 1);
        // Put back, the grant works: the request goes to the app as registered.
        v.conn()
            .execute(
                "UPDATE connections SET provider_app_id = (SELECT id FROM provider_apps WHERE name = 'idp')",
                [],
            )
            .unwrap();
        let tok = scope.access_token(&id, min, &deadline, &a).unwrap();
        assert_eq!(tok.token.expose(), "at-2");
        assert_eq!(good.requests.lock().unwrap().len(), 1);
    }

    /// Deleting a tenant deletes its key from the keychain: a copy of vault.db taken before
    /// cannot decrypt the tenant's secrets any more.
    #[test]
    fn deleting_a_tenant_crypto_shreds_old_copies() {
        let (dir, kc, v) = open();
        let a = Actor::new(ActorKind::Cli);
        let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        let app = app(&scope);
        let c = scope
            .store_connection(new_conn(&app, "crm"), tokens("1"), &a)
            .unwrap();
        drop(scope);
        v.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let home = dir.path().join("home");
        let copy = dir.path().join("before-delete.db");
        std::fs::copy(home.join(DB_FILE), &copy).unwrap();
        v.delete_tenant(&t.id, &a).unwrap();
        drop(v);
        std::fs::copy(&copy, home.join(DB_FILE)).unwrap();
        let _ = std::fs::remove_file(home.join("vault.db-wal"));
        let v = Vault::open(&home, kc.clone()).unwrap();
        let e = v.tenant(&t.id).unwrap_err().to_string();
        assert!(e.contains("its secrets cannot be decrypted"), "{e}");
        let keys =
            VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
                .unwrap();
        assert!(!keys.tenants.contains_key(t.id.as_str()));
        // The master key alone opens nothing of it either.
        let wrapped: Vec<u8> = v
            .conn()
            .query_row(
                "SELECT wrapped_key FROM tenants WHERE id = ?1",
                [t.id.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert!(v
            .master
            .unwrap_key(&wrapped, &Aad::data_key(&v.id, t.id.as_str()))
            .is_err());
        assert!(v
            .master
            .unwrap_key(&wrapped, &Aad::tenant_data_key(&v.id, t.id.as_str()))
            .is_err());
        let _ = c;
    }

    /// A tenant made before tenant keys (data key wrapped by the master key, no MACs) is moved
    /// over at its first use, its secrets kept.
    #[test]
    fn tenants_from_older_vaults_are_adopted() {
        let (dir, kc, v) = open();
        let a = Actor::new(ActorKind::Cli);
        let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        let app = app(&scope);
        scope
            .store_connection(new_conn(&app, "crm"), tokens("1"), &a)
            .unwrap();
        let dk = scope.key.clone();
        drop(scope);
        let legacy = v.master.wrap(&dk, &Aad::data_key(&v.id, t.id.as_str()));
        {
            let c = v.conn();
            c.execute("UPDATE tenants SET wrapped_key = ?1", [&legacy])
                .unwrap();
            c.execute("UPDATE provider_apps SET settings_mac = NULL", [])
                .unwrap();
            c.execute("UPDATE connections SET link_mac = NULL", [])
                .unwrap();
        }
        // The keychain entry as older versions wrote it: the master key alone.
        kc.set(&EntryName::master_key(&v.id), &v.master.to_keychain_text())
            .unwrap();
        drop(v);
        let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        let keys =
            VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
                .unwrap();
        assert!(keys.tenants.contains_key(t.id.as_str()), "a tenant key now");
        assert_eq!(
            scope.client_secret(&app.id).unwrap().unwrap().expose(),
            "s3cret"
        );
        let c = scope.connection_named("crm").unwrap();
        assert_eq!(scope.connection_app(&c).unwrap().id, app.id);
        let tok = scope
            .access_token(
                &c.id,
                crate::grants::DEFAULT_MIN_VALID,
                &crate::deadline::Deadline::default(),
                &a,
            )
            .unwrap();
        assert_eq!(tok.token.expose(), "at-1");
        drop(scope);

        // Put back as it was before the adoption (an older copy of the vault): refused now.
        {
            let c = v.conn();
            c.execute("UPDATE tenants SET wrapped_key = ?1", [&legacy])
                .unwrap();
            c.execute("UPDATE provider_apps SET settings_mac = NULL", [])
                .unwrap();
        }
        drop(v);
        let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
        let e = v.tenant(&t.id).unwrap_err();
        assert!(matches!(e, Error::Tampered(_)), "{e}");
        assert!(e.to_string().contains("older copy of the vault"), "{e}");

        // A crash in the middle of an adoption (keychain marked, database not yet committed):
        // the next use adopts again.
        let mut keys =
            VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
                .unwrap();
        keys.adopting.insert(t.id.to_string());
        kc.set(&EntryName::master_key(&v.id), &keys.to_keychain_text())
            .unwrap();
        drop(v);
        let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        assert_eq!(
            scope.client_secret(&app.id).unwrap().unwrap().expose(),
            "s3cret"
        );
        let keys =
            VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
                .unwrap();
        assert!(keys.adopting.is_empty(), "the adoption finished");
    }

    #[test]
    fn reopen_uses_the_same_master_key() {
        let (dir, kc, v) = open();
        let a = Actor::new(ActorKind::Cli);
        let t = v.create_tenant("Acme Corp", None, "", &a).unwrap();
        assert_eq!(t.slug, "acme-corp");
        drop(v);
        let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        let app = app(&scope);
        assert_eq!(
            scope.client_secret(&app.id).unwrap().unwrap().expose(),
            "s3cret"
        );
        assert_eq!(kc.refresh_tokens(), 0);
    }

    #[test]
    fn missing_master_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        Vault::open(&home, Arc::new(MemoryKeychain::default())).unwrap();
        let err = Vault::open(&home, Arc::new(MemoryKeychain::default())).unwrap_err();
        assert!(matches!(err, Error::MasterKeyMissing { .. }), "{err}");
        assert!(err.to_string().contains("master key"));
    }

    #[test]
    fn store_hand_out_delete() {
        let (_d, kc, v) = open();
        let a = Actor::new(ActorKind::Cli);
        let t = v.create_tenant("Acme", None, "", &a).unwrap();
        let scope = v.tenant(&t.id).unwrap();
        let app = app(&scope);
        let c = scope
            .store_connection(new_conn(&app, "crm"), tokens("1"), &a)
            .unwrap();
        assert_eq!(c.scopes_granted, vec!["openid"]);
        assert!(c.has_refresh_token);
        assert_eq!(kc.refresh_tokens(), 1);
        let tok = scope
            .access_token(
                &c.id,
                crate::grants::DEFAULT_MIN_VALID,
                &crate::deadline::Deadline::default(),
                &a.clone().with_hint(Some("sync".into())),
            )
            .unwrap();
        assert_eq!(tok.token.expose(), "at-1");
        let hist = v.connection_history(&c.id, None, 10).unwrap();
        assert_eq!(hist[0].kind, EventKind::HandedOut);
        assert_eq!(hist[0].app_hint.as_deref(), Some("sync"));
        assert_eq!(
            hist[0].fingerprint.as_deref(),
            Some(v.fingerprint("at-1").as_str())
        );
        assert_eq!(hist[1].kind, EventKind::Consented);
        assert!(scope.connection(&c.id).unwrap().last_used_at.is_some());
        let dup = scope
            .store_connection(new_conn(&app, "crm"), tokens("2"), &a)
            .unwrap_err();
        assert!(matches!(dup, Error::AlreadyExists { .. }));
        assert_eq!(
            kc.refresh_tokens(),
            1,
            "a failed store leaves no keychain entry"
        );
        scope.delete_connection(&c.id, &a).unwrap();
        assert_eq!(kc.refresh_tokens(), 0);
        assert!(v.verify_history().unwrap().is_intact());
    }

    #[test]
    fn other_tenant_cannot_reach_connection() {
        let (_d, _kc, v) = open();
        let a = Actor::new(ActorKind::Cli);
        let ta = v.create_tenant("A", None, "", &a).unwrap();
        let tb = v.create_tenant("B", None, "", &a).unwrap();
        let sa = v.tenant(&ta.id).unwrap();
        let sb = v.tenant(&tb.id).unwrap();
        let c = sa
            .store_connection(new_conn(&app(&sa), "crm"), tokens("a"), &a)
            .unwrap();
        assert!(matches!(
            sb.access_token(
                &c.id,
                crate::grants::DEFAULT_MIN_VALID,
                &crate::deadline::Deadline::default(),
                &a
            ),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(sb.connection(&c.id), Err(Error::NotFound { .. })));
        assert!(matches!(
            sb.delete_connection(&c.id, &a),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn slugs_and_names_are_validated() {
        let (_d, _kc, v) = open();
        let a = Actor::new(ActorKind::Cli);
        assert!(v.create_tenant("", None, "", &a).is_err());
        assert!(v.create_tenant("X", Some("Bad Slug"), "", &a).is_err());
        v.create_tenant("X", Some("x"), "", &a).unwrap();
        assert!(matches!(
            v.create_tenant("X2", Some("x"), "", &a),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(slugify("  Foo & Bar, Inc. "), "foo-bar-inc");
        assert!(validate_name("connection", "a/b").is_err());
    }
}

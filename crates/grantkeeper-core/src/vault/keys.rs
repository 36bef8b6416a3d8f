//! Tenant keys: each tenant's data key wrapped by its own key, kept with the master key in the keychain.

use std::collections::BTreeMap;
use std::fs;

use rusqlite::{params, OptionalExtension};

use crate::crypto::{Aad, DataKey, TenantKey, VaultKeys};
use crate::error::{Error, Result};
use crate::keychain::EntryName;
use crate::model::*;

use super::{row_to_provider_app, LocalStore, Vault, KEYS_LOCK_FILE, PROVIDER_APP_COLUMNS};

impl Vault {
    /// Held while the keychain entry of the vault's keys changes (see [`Self::change_tenant_keys`]).
    pub(super) fn keys_lock(&self) -> Result<fs::File> {
        let path = self.home.join(KEYS_LOCK_FILE);
        let lock = crate::private::open_lock_file(&path)?;
        lock.lock().map_err(|e| Error::io(&path, e))?;
        Ok(lock)
    }

    /// Rewrites the keychain entry of the vault's keys with `change` applied, re-reading it first
    /// (another process may have added a tenant) and reading it back after. The caller holds
    /// [`Self::keys_lock`].
    pub(super) fn change_tenant_keys(&self, change: impl FnOnce(&mut VaultKeys)) -> Result<()> {
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
        self.teams.load(keys.teams.as_ref())?;
        self.policy_versions.learn(&keys.policies);
        *self.tenant_keys.lock().unwrap_or_else(|p| p.into_inner()) = (keys.tenants, keys.adopting);
        Ok(())
    }

    /// Changes the team logins and shared tenants (kept with the vault's keys), re-read first.
    pub(crate) fn change_teams(
        &self,
        change: impl FnOnce(&mut crate::team::TeamConfig) -> Result<()>,
    ) -> Result<()> {
        let _keys_lock = self.keys_lock()?;
        let mut outcome = Ok(());
        self.change_tenant_keys(|keys| {
            match crate::team::TeamConfig::parse(keys.teams.as_ref()) {
                Ok(mut config) => {
                    outcome = change(&mut config);
                    if outcome.is_ok() {
                        keys.teams = Some(config.to_text());
                    }
                }
                Err(e) => outcome = Err(e),
            }
        })?;
        outcome
    }

    /// A tenant's wrapping key and whether its adoption is unfinished: from memory, else from
    /// the keychain (a tenant another process added since this vault was opened).
    pub(super) fn tenant_key(&self, tenant: &TenantId) -> Result<Option<(TenantKey, bool)>> {
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
    pub(super) fn data_key(&self, tenant: &Tenant, wrapped: &[u8]) -> Result<DataKey> {
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
    pub(super) fn adopt_tenant(
        &self,
        tenant: &Tenant,
        wrapped: &[u8],
        key: &DataKey,
    ) -> Result<()> {
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
        let scope = LocalStore {
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
}

/// Tenant wrapping keys by tenant id, and the tenants whose adoption is unfinished.
pub(super) type TenantKeys = (
    BTreeMap<String, TenantKey>,
    std::collections::BTreeSet<String>,
);

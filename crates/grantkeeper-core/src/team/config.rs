//! The vault's team logins and shared tenants, kept in one keychain entry (never in a file): a
//! file an attacker could write would otherwise decide where tokens are sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::bao::BaoClient;
use crate::crypto::{Aad, DataKey};
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::keychain::{EntryName, Keychain};
use crate::model::TenantId;
use crate::secret::SecretText;

use super::keys::MemberKey;

/// One team vault this member is logged in to.
#[derive(Clone, Serialize, Deserialize)]
pub struct TeamLogin {
    /// The server, e.g. `https://bao.example:8200`.
    pub url: String,
    /// The KV v2 mount holding the team's records.
    pub mount: String,
    /// This member's name in the team (`members/<member>`).
    pub member: String,
    /// The OpenBao token.
    token: String,
    /// This member's private key (see [`super::keys`]).
    member_key: String,
}

impl std::fmt::Debug for TeamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamLogin")
            .field("url", &self.url)
            .field("mount", &self.mount)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

impl TeamLogin {
    /// A login with a fresh member key.
    pub fn new(client: &BaoClient, member: &str) -> Self {
        Self {
            url: client.url().to_owned(),
            mount: client.mount().to_owned(),
            member: member.to_owned(),
            token: client.token().expose().to_owned(),
            member_key: MemberKey::generate().to_text().expose().to_owned(),
        }
    }

    /// The same login with another token (a new login), its member key kept.
    pub fn with_token(mut self, token: &SecretText) -> Self {
        token.expose().clone_into(&mut self.token);
        self
    }

    /// A client for the team vault.
    pub fn client(&self, http: HttpClient) -> Result<BaoClient> {
        Ok(BaoClient::new(
            http,
            &self.url,
            &self.mount,
            SecretText::new(&self.token),
        )?)
    }

    /// This member's private key.
    pub fn member_key(&self) -> Result<MemberKey> {
        Ok(MemberKey::from_text(&self.member_key)?)
    }
}

/// A tenant shared through a team: which team, and its data key wrapped for this member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedTenant {
    /// The team's name.
    pub team: String,
    /// The tenant's data key as wrapped for this member (not secret without the member key).
    pub wrapped_key: String,
}

/// Everything the keychain entry holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TeamConfig {
    /// Team logins by team name.
    pub teams: BTreeMap<String, TeamLogin>,
    /// Shared tenants by tenant id.
    pub tenants: BTreeMap<String, SharedTenant>,
}

/// The additional data a tenant's wrapped data key is bound to.
pub fn key_aad(tenant: &TenantId, member: &str) -> Aad {
    Aad::column("team", tenant.as_str(), "keys", "data_key", member)
}

impl TeamConfig {
    /// Reads the entry (empty when there is none).
    pub fn load(keychain: &dyn Keychain, vault: &str) -> Result<Self> {
        match keychain.get(&EntryName::teams(vault))? {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text.expose()).map_err(|_| {
                Error::Tampered("the keychain entry of the vault's teams is not readable; log in to the team again (grantkeeper team login)".into())
            }),
        }
    }

    /// Writes the entry.
    pub fn save(&self, keychain: &dyn Keychain, vault: &str) -> Result<()> {
        let text = SecretText::new(serde_json::to_string(self).expect("config serializes"));
        Ok(keychain.set(&EntryName::teams(vault), &text)?)
    }

    /// The team a tenant is shared through, with its login, if it is shared.
    pub fn shared(&self, tenant: &TenantId) -> Result<Option<(&SharedTenant, &TeamLogin)>> {
        let Some(shared) = self.tenants.get(tenant.as_str()) else {
            return Ok(None);
        };
        let login = self.teams.get(&shared.team).ok_or_else(|| {
            Error::Invalid(format!(
                "this tenant is shared through the team '{}', which this vault is not logged in to: run grantkeeper team login",
                shared.team
            ))
        })?;
        Ok(Some((shared, login)))
    }
}

/// The team configuration as this process last read it, with the data keys it unwrapped.
#[derive(Debug, Default)]
pub struct ConfigCache {
    held: Mutex<Option<Arc<TeamConfig>>>,
    keys: Mutex<BTreeMap<String, DataKey>>,
    /// When this process last looked at each shared grant in the team vault.
    synced: Mutex<BTreeMap<String, std::time::Instant>>,
}

impl ConfigCache {
    /// The configuration, read from the keychain once per process.
    pub fn get(&self, keychain: &dyn Keychain, vault: &str) -> Result<Arc<TeamConfig>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(TeamConfig::load(keychain, vault)?);
        *held = Some(c.clone());
        Ok(c)
    }

    /// Forgets what was read (after this process changed the entry).
    pub fn forget(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// When this process last looked at a shared grant in the team vault.
    pub fn synced_at(&self, connection: &str) -> Option<std::time::Instant> {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(connection)
            .copied()
    }

    /// Notes that this process just looked at a shared grant in the team vault.
    pub fn mark_synced(&self, connection: &str, at: std::time::Instant) {
        self.synced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(connection.to_owned(), at);
    }

    /// A shared tenant's data key, unwrapped once per process.
    pub fn data_key(
        &self,
        tenant: &TenantId,
        shared: &SharedTenant,
        login: &TeamLogin,
    ) -> Result<DataKey> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(tenant.as_str()) {
            return Ok(k.clone());
        }
        let key = login
            .member_key()?
            .unwrap(&shared.wrapped_key, &key_aad(tenant, &login.member))?;
        keys.insert(tenant.as_str().to_owned(), key.clone());
        Ok(key)
    }
}

//! The vault's team logins and shared tenants, kept in the keychain with the vault's keys (never
//! in a file: a file an attacker could write would otherwise decide where tokens are sent).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::bao::BaoClient;
use crate::crypto::{Aad, DataKey};
use crate::error::{Error, Result};
use crate::http::HttpClient;
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
    /// Reads the configuration kept with the vault's keys (empty when there is none).
    pub fn parse(text: Option<&SecretText>) -> Result<Self> {
        match text {
            None => Ok(Self::default()),
            Some(text) => serde_json::from_str(text.expose()).map_err(|_| {
                Error::Tampered("the vault's team logins in the keychain are not readable; log in to the team again (grantkeeper team login)".into())
            }),
        }
    }

    /// The text kept with the vault's keys.
    pub fn to_text(&self) -> SecretText {
        SecretText::new(serde_json::to_string(self).expect("config serializes"))
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
    /// The configuration as last read with the vault's keys.
    pub fn get(&self) -> Arc<TeamConfig> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Takes the configuration read with the vault's keys; the data keys unwrapped before are
    /// forgotten.
    pub fn load(&self, text: Option<&SecretText>) -> Result<()> {
        let config = Arc::new(TeamConfig::parse(text)?);
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(config);
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MasterKey, VaultKeys};

    #[test]
    fn the_team_configuration_travels_with_the_vaults_keys() {
        let mut config = TeamConfig::default();
        config.tenants.insert(
            "t1".into(),
            SharedTenant {
                team: "firm".into(),
                wrapped_key: "abc".into(),
            },
        );
        let keys = VaultKeys {
            master: MasterKey::generate(),
            tenants: Default::default(),
            adopting: Default::default(),
            teams: Some(config.to_text()),
            policies: Default::default(),
        };
        let back = VaultKeys::from_keychain_text(&keys.to_keychain_text()).unwrap();
        let parsed = TeamConfig::parse(back.teams.as_ref()).unwrap();
        assert_eq!(parsed.tenants["t1"].team, "firm");
        let without = VaultKeys {
            teams: None,
            ..back
        };
        let text = without.to_keychain_text();
        assert!(
            !text.expose().contains("teams"),
            "no line when there are no teams"
        );
        assert!(VaultKeys::from_keychain_text(&text)
            .unwrap()
            .teams
            .is_none());
    }
}

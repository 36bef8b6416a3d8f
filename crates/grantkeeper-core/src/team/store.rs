//! The team store: a shared tenant behind [`TenantStore`]. The local store stays the cache (the
//! records, and this member's cached access tokens sealed under the local tenant key), so a
//! hand-out from a cached token needs no request to the team vault; refresh tokens, the last
//! access token and the grant's state live in the team vault, sealed under the team data key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::audit::{Actor, ActorKind, EventKind, NewEvent};
use crate::bao::{BaoClient, BaoError};
use crate::error::{Error, Result};
use crate::keychain::{EntryName, Keychain};
use crate::model::{Connection, ConnectionId, ConnectionStatus, ProviderApp, ProviderAppId};
use crate::secret::{ClientSecret, SecretText, TokenSet};
use crate::store::{
    ConnectionStore, NewConnection, NewProviderApp, ProviderAppStore, Refreshed, SecretChange,
    TenantStore,
};

use super::config::ConfigCache;
use super::record::{grant_path, tenant_path, GrantRecord, Sealer};

/// How long a member's view of a shared grant counts as current: within it, hand-outs from the
/// local cache make no request to the team vault.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(5);

/// A held refresh lease: the record as written with it, and that write's version.
pub(super) struct Held {
    pub(super) version: u64,
    pub(super) record: GrantRecord,
}

/// Leases this store holds, by connection.
pub(super) type Leases = Arc<Mutex<HashMap<String, Held>>>;

/// A shared tenant's records: the local cache in front, the team vault behind.
pub struct TeamStore<'v> {
    pub(super) local: Box<dyn TenantStore + 'v>,
    pub(super) bao: BaoClient,
    pub(super) sealer: Sealer,
    pub(super) member: String,
    /// `member@vault-id`: the holder of this member's leases.
    pub(super) holder: String,
    pub(super) leases: Leases,
    pub(super) cache: &'v ConfigCache,
    keychain: Arc<dyn Keychain>,
    vault_id: String,
}

/// Where a team store finds what it needs from the vault that opens it.
pub struct TeamContext<'v> {
    /// The tenant's local store.
    pub local: Box<dyn TenantStore + 'v>,
    /// The team vault, logged in.
    pub bao: BaoClient,
    /// The tenant.
    pub tenant: crate::model::TenantId,
    /// The tenant's team data key.
    pub key: crate::crypto::DataKey,
    /// This member's name in the team.
    pub member: String,
    /// The vault's process-wide team state.
    pub cache: &'v ConfigCache,
    /// The vault's keychain.
    pub keychain: Arc<dyn Keychain>,
    /// The vault's id.
    pub vault_id: String,
}

impl<'v> TeamStore<'v> {
    /// A team store over a tenant's local store.
    pub fn new(cx: TeamContext<'v>) -> Self {
        Self {
            holder: format!("{}@{}", cx.member, cx.vault_id),
            local: cx.local,
            bao: cx.bao,
            sealer: Sealer {
                key: cx.key,
                tenant: cx.tenant,
            },
            member: cx.member,
            leases: Arc::default(),
            cache: cx.cache,
            keychain: cx.keychain,
            vault_id: cx.vault_id,
        }
    }

    /// The tenant's local store (the cache).
    pub(crate) fn local(&self) -> &dyn TenantStore {
        self.local.as_ref()
    }

    /// The tenant's id.
    pub(crate) fn tenant_id(&self) -> &crate::model::TenantId {
        &self.sealer.tenant
    }

    pub(super) fn tenant(&self) -> &crate::model::TenantId {
        &self.sealer.tenant
    }

    /// The actor of what team sync writes into this member's history.
    pub(super) fn sync_actor(&self) -> Actor {
        Actor::new(ActorKind::Background).with_hint(Some("team sync".into()))
    }

    pub(super) fn event(&self, kind: EventKind, id: &ConnectionId) -> NewEvent {
        NewEvent::new(kind, &self.sync_actor())
            .tenant(self.tenant())
            .connection(id)
    }

    /// A grant's record and its version.
    pub(super) fn read_grant(
        &self,
        bao: &BaoClient,
        id: &ConnectionId,
    ) -> Result<(GrantRecord, u64)> {
        let found = bao
            .read(&grant_path(self.tenant(), id))?
            .ok_or_else(|| Error::NotFound {
                what: "shared connection",
                name: id.to_string(),
            })?;
        Ok((GrantRecord::from_data(found.data)?, found.version))
    }

    /// Writes a grant's record with check-and-set on `version`, then its review metadata.
    pub(super) fn write_grant(
        &self,
        bao: &BaoClient,
        id: &ConnectionId,
        record: &GrantRecord,
        version: u64,
    ) -> Result<u64> {
        let path = grant_path(self.tenant(), id);
        let written = bao.write_cas(&path, &record.to_data(), version)?;
        bao.write_metadata(&path, &record.review_metadata())?;
        Ok(written)
    }

    /// Changes a grant's record (read, `change`, written with check-and-set), again on a conflict.
    pub(super) fn update_grant(
        &self,
        id: &ConnectionId,
        change: impl Fn(&mut GrantRecord),
    ) -> Result<()> {
        if let Some(held) = self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id.as_str())
        {
            let mut record = held.record;
            change(&mut record);
            record.lease = None;
            if self
                .write_grant(&self.bao, id, &record, held.version)
                .is_ok()
            {
                return Ok(());
            }
        }
        loop {
            let (mut record, version) = self.read_grant(&self.bao, id)?;
            change(&mut record);
            match self.write_grant(&self.bao, id, &record, version) {
                Err(Error::Team(BaoError::Conflict)) => continue,
                other => return other.map(|_| ()),
            }
        }
    }

    /// The record of a grant as this member's local store holds it, its secrets sealed for the
    /// team (the refresh token given, since the local store's copy is about to leave it).
    pub(super) fn record_of(&self, connection: Connection, tokens: &TokenSet) -> GrantRecord {
        let id = connection.id.clone();
        GrantRecord {
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| self.sealer.seal("refresh_token", &id, t.expose())),
            access_token: Some(
                self.sealer
                    .seal("access_token", &id, tokens.access_token.expose()),
            ),
            id_token: tokens
                .id_token
                .as_ref()
                .map(|t| self.sealer.seal("id_token", &id, t.expose())),
            access_expires_at: connection.access_expires_at,
            access_expiry_source: connection.access_expiry_source,
            status: connection.status,
            status_detail: connection.status_detail.clone(),
            lease: None,
            refreshed_at: connection.last_refresh_at,
            refreshed_by: Some(self.member.clone()),
            connection,
        }
    }

    /// Publishes a grant the local store holds (with `tokens`) to the team vault, then drops the
    /// local keychain's copy of its refresh token: the team vault's is the one in use from now.
    pub(crate) fn publish_grant(&self, id: &ConnectionId, tokens: &TokenSet) -> Result<()> {
        let record = self.record_of(self.local.connection(id)?, tokens);
        let version = self
            .bao
            .read(&grant_path(self.tenant(), id))?
            .map_or(0, |v| v.version);
        self.write_grant(&self.bao, id, &record, version)?;
        self.forget_local_refresh_token(id)
    }

    /// Deletes the local keychain's copy of a grant's refresh token (the team vault holds it).
    pub(super) fn forget_local_refresh_token(&self, id: &ConnectionId) -> Result<()> {
        Ok(self.keychain.delete(&EntryName::refresh_token(
            &self.vault_id,
            self.tenant().as_str(),
            id.as_str(),
        ))?)
    }

    /// Publishes a provider app (its client secret sealed for the team).
    pub(crate) fn publish_app(&self, app: &ProviderApp) -> Result<()> {
        let mut data = Map::new();
        data.insert(
            "app".into(),
            serde_json::to_value(app).expect("apps serialize"),
        );
        let secret = self.local.client_secret(&app.id)?;
        data.insert(
            "client_secret".into(),
            secret.map_or(Value::Null, |s| {
                json!(self.sealer.seal_app(app.id.as_str(), s.expose()))
            }),
        );
        let path = format!("{}/apps/{}", tenant_path(self.tenant()), app.id);
        let version = self.bao.read(&path)?.map_or(0, |v| v.version);
        self.bao.write_cas(&path, &data, version)?;
        Ok(())
    }

    /// Opens a provider app's client secret as published.
    pub(crate) fn open_app_secret(&self, app: &str, sealed: &str) -> Result<ClientSecret> {
        Ok(ClientSecret::new(
            self.sealer.open_app(app, sealed)?.expose(),
        ))
    }

    /// Opens one sealed secret of a grant's record.
    pub(crate) fn open_grant_secret(
        &self,
        column: &str,
        id: &ConnectionId,
        sealed: &str,
    ) -> Result<SecretText> {
        self.sealer.open(column, id, sealed)
    }

    /// Whether this process looked at the grant in the team vault within [`SYNC_INTERVAL`].
    pub(super) fn recently_synced(&self, id: &ConnectionId) -> bool {
        self.cache
            .synced_at(id.as_str())
            .is_some_and(|t| t.elapsed() < SYNC_INTERVAL)
    }

    pub(super) fn mark_synced(&self, id: &ConnectionId) {
        self.cache.mark_synced(id.as_str(), Instant::now());
    }

    /// Brings the local cache up to the team vault's record: a revocation or a lost grant, a
    /// newer access token (a teammate's refresh).
    pub(super) fn apply_remote(&self, id: &ConnectionId, record: &GrantRecord) -> Result<()> {
        let local = self.local.connection(id)?;
        let detail = record.status_detail.clone().unwrap_or_default();
        match record.status {
            ConnectionStatus::Revoked if local.status != ConnectionStatus::Revoked => {
                let detail = format!("revoked by a teammate: {detail}");
                self.local.forget_tokens(
                    id,
                    &detail,
                    self.event(EventKind::Revoked, id)
                        .detail(json!({ "by": "team" })),
                )?;
            }
            s @ (ConnectionStatus::NeedsReconsent | ConnectionStatus::Error)
                if local.status != s =>
            {
                let event = self
                    .event(EventKind::RefreshFailed, id)
                    .detail(json!({ "by": "team" }));
                self.local.record_failure(id, Some((s, &detail)), event)?;
            }
            ConnectionStatus::Active => {
                let newer = record.access_expires_at > local.access_expires_at
                    || local.status != ConnectionStatus::Active;
                if let (true, Some(sealed)) = (newer, &record.access_token) {
                    let access = self.sealer.open("access_token", id, sealed)?;
                    let id_token = record
                        .id_token
                        .as_ref()
                        .map(|t| self.sealer.open("id_token", id, t))
                        .transpose()?;
                    let tokens = TokenSet {
                        access_token: crate::secret::AccessToken::new(access.expose()),
                        refresh_token: None,
                        id_token: id_token.map(|t| crate::secret::IdToken::new(t.expose())),
                    };
                    let refreshed = Refreshed {
                        tokens: &tokens,
                        expiry: record.access_expires_at.zip(record.access_expiry_source),
                        scopes_granted: None,
                        refresh_expires_at: local.refresh_expires_at,
                        refresh_hard_expires_at: local.refresh_hard_expires_at,
                        at: record.refreshed_at.unwrap_or_else(crate::model::now_ms),
                    };
                    self.local.save_refreshed(id, &refreshed, &mut Vec::new)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl ConnectionStore for TeamStore<'_> {
    fn connection(&self, id: &ConnectionId) -> Result<Connection> {
        self.local.connection(id)
    }

    fn connection_named(&self, name: &str) -> Result<Connection> {
        self.local.connection_named(name)
    }

    fn insert_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()> {
        // Kept locally first (the refresh token in this member's keychain): if the team vault
        // fails now, nothing is lost and `tenant share` publishes it later.
        self.local.insert_connection(id, new, tokens, event)?;
        self.publish_grant(id, tokens)
    }

    fn renew_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()> {
        self.local.renew_connection(id, new, tokens, event)?;
        self.publish_grant(id, tokens)
    }

    fn connections_using(&self, app: &ProviderAppId) -> Result<Vec<Connection>> {
        self.local.connections_using(app)
    }

    fn delete_connection(&self, id: &ConnectionId, event: NewEvent) -> Result<()> {
        self.bao.delete(&grant_path(self.tenant(), id))?;
        self.local.delete_connection(id, event)
    }

    fn connection_app(&self, connection: &Connection) -> Result<ProviderApp> {
        self.local.connection_app(connection)
    }
}

impl ProviderAppStore for TeamStore<'_> {
    fn add_provider_app(&self, app: NewProviderApp, actor: &Actor) -> Result<ProviderApp> {
        let added = self.local.add_provider_app(app, actor)?;
        self.publish_app(&added)?;
        Ok(added)
    }

    fn provider_apps(&self) -> Result<Vec<ProviderApp>> {
        self.local.provider_apps()
    }

    fn provider_app(&self, id_or_name: &str) -> Result<ProviderApp> {
        self.local.provider_app(id_or_name)
    }

    fn client_secret(&self, app: &ProviderAppId) -> Result<Option<ClientSecret>> {
        self.local.client_secret(app)
    }

    fn client_key(&self, app: &ProviderAppId) -> Result<Option<SecretText>> {
        self.local.client_key(app)
    }

    fn update_provider_app(
        &self,
        app: &ProviderApp,
        secret: SecretChange<'_>,
        event: NewEvent,
    ) -> Result<()> {
        self.local.update_provider_app(app, secret, event)?;
        self.publish_app(app)
    }

    fn delete_provider_app(&self, id: &ProviderAppId, event: NewEvent) -> Result<()> {
        self.local.delete_provider_app(id, event)?;
        self.bao
            .delete(&format!("{}/apps/{id}", tenant_path(self.tenant())))?;
        Ok(())
    }
}

//! Connections: stored after consent, renewed at re-consent, listed, found, deleted.

use std::time::Duration;

use rusqlite::{params, OptionalExtension};
use serde_json::json;

use crate::audit::{self, Actor, EventKind};
use crate::error::{Error, Result};
use crate::model::*;
use crate::secret::TokenSet;

use crate::audit::NewEvent;
use crate::store::{ConnectionStore, NewConnection};

use super::{
    from_json, to_json, unless_taken, validate_name, ConnectionFilter, LocalStore, TenantVault,
    Vault,
};

impl Vault {
    /// Refresh tokens that expire within `within`, soonest first.
    pub fn expiry_warnings(&self, within: Duration) -> Result<Vec<ExpiryWarning>> {
        let horizon =
            now_ms().saturating_add(i64::try_from(within.as_millis()).unwrap_or(i64::MAX));
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, tenant_id, name, refresh_expires_at, refresh_hard_expires_at FROM connections
             WHERE status = ?2 AND has_refresh_token = 1
               AND (refresh_expires_at <= ?1 OR refresh_hard_expires_at <= ?1)",
        )?;
        let rows = stmt.query_map(params![horizon, ConnectionStatus::Active], |r| {
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
                tenant_id: TenantId::from_string(r.get::<_, String>(1)?),
                name: r.get(2)?,
                expires_at,
                hard: is_hard,
            })
        })?;
        let mut out: Vec<ExpiryWarning> = rows.collect::<rusqlite::Result<_>>()?;
        out.sort_by_key(|w| w.expires_at);
        Ok(out)
    }

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
}

impl TenantVault<'_> {
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
        let granted = new.scopes_granted.as_ref().unwrap_or(&new.scopes_requested);
        let event = self
            .event(EventKind::Consented, &id, actor)
            .fingerprint(self.vault.fingerprint(tokens.access_token.expose()))
            .detail(json!({ "scopes_requested": new.scopes_requested, "scopes_granted": granted }));
        if let Err(e) = self.store.insert_connection(&id, &new, &tokens, event) {
            tracing::warn!(tenant = %self.tenant.id, error = %e, "storing a connection failed; nothing kept");
            return Err(e);
        }
        tracing::info!(tenant = %self.tenant.id, connection = %id, name = %new.name, "connection stored");
        self.connection(&id)
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
        let granted = new.scopes_granted.as_ref().unwrap_or(&new.scopes_requested);
        let added: Vec<&String> = granted
            .iter()
            .filter(|s| !before.scopes_granted.contains(s))
            .collect();
        let dropped: Vec<&String> = before
            .scopes_granted
            .iter()
            .filter(|s| !granted.contains(s))
            .collect();
        let event = self
            .event(EventKind::Consented, id, actor)
            .fingerprint(self.vault.fingerprint(tokens.access_token.expose()))
            .detail(json!({ "reconsent": true, "scopes_granted": granted, "scopes_added": added, "scopes_dropped": dropped }));
        self.store.renew_connection(id, &new, &tokens, event)?;
        self.connection(id)
    }

    /// Deletes a connection: its refresh token leaves the keychain, its row the database.
    pub fn delete_connection(&self, id: &ConnectionId, actor: &Actor) -> Result<()> {
        self.connection(id)?;
        self.store
            .delete_connection(id, self.event(EventKind::Deleted, id, actor))
    }
}

impl ConnectionStore for LocalStore<'_> {
    fn insert_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()> {
        let entry = self.refresh_entry(id);
        if let Some(rt) = &tokens.refresh_token {
            self.vault
                .keychain
                .set(&entry, &crate::secret::SecretText::new(rt.expose()))?;
        }
        let key_entry = self.dpop_entry(id);
        let mut result = match &new.dpop_key {
            Some(key) => self.vault.keychain.set(&key_entry, key).map_err(Into::into),
            None => Ok(()),
        };
        if result.is_ok() {
            result = self.insert_row(id, new, tokens, &event);
        }
        if result.is_err() {
            if tokens.refresh_token.is_some() {
                let _ = self.vault.keychain.delete(&entry);
            }
            if new.dpop_key.is_some() {
                let _ = self.vault.keychain.delete(&key_entry);
            }
        }
        result
    }

    fn renew_connection(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: NewEvent,
    ) -> Result<()> {
        let before = self.connection(id)?;
        if let Some(rt) = &tokens.refresh_token {
            self.vault.keychain.set(
                &self.refresh_entry(id),
                &crate::secret::SecretText::new(rt.expose()),
            )?;
        }
        // The new tokens are bound to the new sign-in's key, or to none.
        match &new.dpop_key {
            Some(key) => self.vault.keychain.set(&self.dpop_entry(id), key)?,
            None => self.vault.keychain.delete(&self.dpop_entry(id))?,
        }
        let (access, id_token) = self.seal_tokens(id, tokens);
        let (granted, reported) = match &new.scopes_granted {
            Some(g) => (g.clone(), true),
            None => (new.scopes_requested.clone(), false),
        };
        let has_refresh = tokens.refresh_token.is_some() || before.has_refresh_token;
        self.vault.write(|tx| {
            tx.execute(
                "UPDATE connections SET account_subject = ?2, account_username = ?3, account_org_id = ?4,
                        scopes_requested = ?5, scopes_granted = ?6, scopes_granted_reported = ?7, consented_at = ?8,
                        consented_by = ?9, status = ?19, status_detail = NULL, access_expires_at = ?10,
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
                    ConnectionStatus::Active,
                ],
            )?;
            tx.execute("DELETE FROM refresh_journal WHERE connection_id = ?1", [id.as_str()])?;
            audit::append(tx, &event)?;
            Ok(())
        })
    }

    fn connection(&self, id: &ConnectionId) -> Result<Connection> {
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

    fn connections_using(&self, app: &ProviderAppId) -> Result<Vec<Connection>> {
        let conn = self.vault.conn();
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c
             WHERE c.tenant_id = ?1 AND c.provider_app_id = ?2 ORDER BY c.name"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![self.tenant.id.as_str(), app.as_str()],
            row_to_connection,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn connection_named(&self, name: &str) -> Result<Connection> {
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

    fn delete_connection(&self, id: &ConnectionId, event: NewEvent) -> Result<()> {
        self.vault.keychain.delete(&self.refresh_entry(id))?;
        self.vault.keychain.delete(&self.dpop_entry(id))?;
        self.vault.write(|tx| {
            tx.execute(
                "DELETE FROM connections WHERE id = ?1 AND tenant_id = ?2",
                params![id.as_str(), self.tenant.id.as_str()],
            )?;
            audit::append(tx, &event)?;
            Ok(())
        })
    }

    fn connection_app(&self, connection: &Connection) -> Result<ProviderApp> {
        self.linked_app(connection)
    }
}

impl LocalStore<'_> {
    fn insert_row(
        &self,
        id: &ConnectionId,
        new: &NewConnection,
        tokens: &TokenSet,
        event: &NewEvent,
    ) -> Result<()> {
        let (access, id_token) = self.seal_tokens(id, tokens);
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
            let inserted = tx.execute(
                "INSERT INTO connections (id, tenant_id, provider_app_id, name, account_subject, account_username,
                     account_org_id, scopes_requested, scopes_granted, scopes_granted_reported, consented_at,
                     consented_by, status, access_expires_at, access_expiry_source, refresh_expires_at,
                     refresh_hard_expires_at, has_refresh_token, metadata, access_token, id_token, created_at,
                     link_mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?22, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?11, ?21)",
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
                    ConnectionStatus::Active,
                ],
            );
            unless_taken(inserted, "connection", &new.name)?;
            audit::append(tx, event)?;
            Ok(())
        })
    }
}

pub(super) const CONNECTION_COLUMNS: &str = "c.id, c.tenant_id, c.provider_app_id, c.name, c.account_subject,
    c.account_username, c.account_org_id, c.scopes_requested, c.scopes_granted, c.scopes_granted_reported,
    c.consented_at, c.consented_by, c.status, c.status_detail, c.access_expires_at, c.access_expiry_source,
    c.refresh_expires_at, c.refresh_hard_expires_at, c.last_refresh_at, c.last_used_at, c.has_refresh_token,
    c.metadata, c.created_at";

pub(super) fn row_to_connection(r: &rusqlite::Row<'_>) -> rusqlite::Result<Connection> {
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
        status: r.get(12)?,
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

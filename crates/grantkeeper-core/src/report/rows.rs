//! The connections list's rows: of each connection only what the list shows, sorts, filters and
//! searches by. Scopes, metadata and the consent record stay out (the detail view has them), so a
//! list of 10,000 connections stays small on its way to a window and in it.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::Result;
use crate::model::{
    now_ms, AccountIdentity, Connection, ConnectionId, ConnectionStatus, ProviderAppId, TenantId,
    UnixMillis,
};
use crate::status::{StatusFacts, StatusStep};
use crate::{ConnectionFilter, Vault};

/// One connection in the connections list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ConnectionRow {
    /// Identifier.
    pub id: ConnectionId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The provider app it was made with.
    pub provider_app_id: ProviderAppId,
    /// Name, unique in the tenant.
    pub name: String,
    /// The account at the provider.
    pub account: AccountIdentity,
    /// Current state.
    pub status: ConnectionStatus,
    /// Why it is not active, in plain words.
    pub status_detail: Option<String>,
    /// The status computed from the facts, from now on (see [`crate::status`]).
    pub status_steps: Vec<StatusStep>,
    /// When the cached access token expires.
    #[ts(type = "number | null")]
    pub access_expires_at: Option<UnixMillis>,
    /// Whether a refresh token is held in the keychain.
    pub has_refresh_token: bool,
    /// Sliding refresh-token expiry (inactivity), where known.
    #[ts(type = "number | null")]
    pub refresh_expires_at: Option<UnixMillis>,
    /// Hard refresh-token expiry, where known.
    #[ts(type = "number | null")]
    pub refresh_hard_expires_at: Option<UnixMillis>,
    /// Last hand-out of a token.
    #[ts(type = "number | null")]
    pub last_used_at: Option<UnixMillis>,
}

impl From<Connection> for ConnectionRow {
    fn from(c: Connection) -> Self {
        let status_steps = StatusFacts::from(&c).steps(now_ms());
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            provider_app_id: c.provider_app_id,
            name: c.name,
            account: c.account,
            status_steps,
            status: c.status,
            status_detail: c.status_detail,
            access_expires_at: c.access_expires_at,
            has_refresh_token: c.has_refresh_token,
            refresh_expires_at: c.refresh_expires_at,
            refresh_hard_expires_at: c.refresh_hard_expires_at,
            last_used_at: c.last_used_at,
        }
    }
}

impl Vault {
    /// The connections list: a row for each connection `filter` selects, by tenant and name.
    /// Reads only.
    pub fn connection_rows(&self, filter: &ConnectionFilter) -> Result<Vec<ConnectionRow>> {
        Ok(self
            .connections(filter)?
            .into_iter()
            .map(ConnectionRow::from)
            .collect())
    }
}

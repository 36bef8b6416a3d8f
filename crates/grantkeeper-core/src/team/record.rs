//! What the team vault holds for one shared grant: its secrets sealed under the tenant's team
//! data key, its state, and the refresh lease; and the review metadata beside it.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::crypto::{Aad, DataKey};
use crate::error::{Error, Result};
use crate::model::{
    Connection, ConnectionId, ConnectionStatus, ExpirySource, TenantId, UnixMillis,
};
use crate::secret::SecretText;

/// How long a refresh lease lasts: longer than any refresh may take (its requests time out
/// after 30 s), short enough that a teammate whose process died blocks nobody for long.
pub const LEASE_MS: i64 = 60_000;

/// Who is refreshing a grant, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// `member@vault-id` of the refresher.
    pub holder: String,
    /// When the lease lapses if it is not released (Unix ms).
    pub until: UnixMillis,
}

/// One shared grant as stored at `tenants/<tenant>/grants/<connection>` (KV v2 data).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantRecord {
    /// The connection's record (no secrets), for teammates who join.
    pub connection: Connection,
    /// The refresh token, sealed (base64).
    pub refresh_token: Option<String>,
    /// The last access token, sealed (base64).
    pub access_token: Option<String>,
    /// The last ID token, sealed (base64).
    pub id_token: Option<String>,
    /// When the access token expires.
    pub access_expires_at: Option<UnixMillis>,
    /// How that expiry is known.
    pub access_expiry_source: Option<ExpirySource>,
    /// The grant's state for the whole team.
    pub status: ConnectionStatus,
    /// Why it is not active.
    pub status_detail: Option<String>,
    /// The refresh lease, while a member refreshes.
    pub lease: Option<Lease>,
    /// When it was last refreshed, and by which member.
    pub refreshed_at: Option<UnixMillis>,
    /// The member who refreshed last.
    pub refreshed_by: Option<String>,
}

impl GrantRecord {
    /// The KV v2 data.
    pub fn to_data(&self) -> Map<String, Value> {
        match serde_json::to_value(self).expect("records serialize") {
            Value::Object(m) => m,
            _ => unreachable!("a struct serializes to an object"),
        }
    }

    /// Reads KV v2 data.
    pub fn from_data(data: Map<String, Value>) -> Result<Self> {
        serde_json::from_value(Value::Object(data)).map_err(|e| {
            Error::Invalid(format!("a shared grant's record in the team vault is not readable ({e}); share the tenant again"))
        })
    }

    /// The review metadata (KV v2 custom metadata: strings, no secrets).
    pub fn review_metadata(&self) -> Map<String, Value> {
        let c = &self.connection;
        let clip = |s: String| s.chars().take(500).collect::<String>();
        let mut m = Map::new();
        m.insert("name".into(), json!(c.name));
        m.insert("provider_app".into(), json!(c.provider_app_id.as_str()));
        m.insert(
            "account".into(),
            json!(clip(
                c.account
                    .username
                    .clone()
                    .or_else(|| c.account.subject.clone())
                    .unwrap_or_default()
            )),
        );
        m.insert("scopes".into(), json!(clip(c.scopes_granted.join(" "))));
        m.insert("status".into(), json!(self.status.as_str()));
        let opt = |v: Option<i64>| v.map(|t| t.to_string()).unwrap_or_default();
        m.insert(
            "access_expires_at".into(),
            json!(opt(self.access_expires_at)),
        );
        m.insert("refreshed_at".into(), json!(opt(self.refreshed_at)));
        m.insert(
            "refreshed_by".into(),
            json!(self.refreshed_by.clone().unwrap_or_default()),
        );
        // OpenBao takes no empty values.
        m.retain(|_, v| v.as_str().is_some_and(|s| !s.is_empty()));
        m
    }
}

/// Seals and opens a shared tenant's secrets under its team data key, each bound to its tenant,
/// record, column and row.
pub struct Sealer {
    pub(super) key: DataKey,
    pub(super) tenant: TenantId,
}

impl Sealer {
    fn aad(&self, table: &str, column: &str, row: &str) -> Aad {
        Aad::column("team", self.tenant.as_str(), table, column, row)
    }

    /// Seals one secret of a grant.
    pub fn seal(&self, column: &str, id: &ConnectionId, text: &str) -> String {
        B64.encode(
            self.key
                .seal(&self.aad("grants", column, id.as_str()), text),
        )
    }

    /// Opens what [`Self::seal`] sealed.
    pub fn open(&self, column: &str, id: &ConnectionId, sealed: &str) -> Result<SecretText> {
        let blob = B64
            .decode(sealed)
            .map_err(|_| crate::crypto::CryptoError::Format)?;
        Ok(self
            .key
            .open(&self.aad("grants", column, id.as_str()), &blob)?)
    }

    /// Seals a provider app's client secret.
    pub fn seal_app(&self, app: &str, text: &str) -> String {
        B64.encode(self.key.seal(&self.aad("apps", "client_secret", app), text))
    }

    /// Opens what [`Self::seal_app`] sealed.
    pub fn open_app(&self, app: &str, sealed: &str) -> Result<SecretText> {
        let blob = B64
            .decode(sealed)
            .map_err(|_| crate::crypto::CryptoError::Format)?;
        Ok(self
            .key
            .open(&self.aad("apps", "client_secret", app), &blob)?)
    }
}

/// The path of a shared tenant's folder.
pub fn tenant_path(tenant: &TenantId) -> String {
    format!("tenants/{tenant}")
}

/// The path of a shared grant's record.
pub fn grant_path(tenant: &TenantId, id: &ConnectionId) -> String {
    format!("tenants/{tenant}/grants/{id}")
}

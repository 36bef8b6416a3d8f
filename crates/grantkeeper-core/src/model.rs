//! The vault's records: tenants, provider apps and connections. These types are shared with the
//! UI (TypeScript bindings are generated from them by ts-rs) and carry no secret values.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// Milliseconds since the Unix epoch (UTC).
pub type UnixMillis = i64;

/// The current time in [`UnixMillis`].
pub fn now_ms() -> UnixMillis {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
        #[ts(export)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random identifier.
            pub fn generate() -> Self {
                Self(uuid::Uuid::new_v4().to_string())
            }

            /// Wraps an identifier read from storage or from a caller.
            pub fn from_string(s: impl Into<String>) -> Self {
                Self(s.into())
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// Identifies a tenant.
    TenantId
);
id_type!(
    /// Identifies a provider app registration.
    ProviderAppId
);
id_type!(
    /// Identifies a connection (one consent grant).
    ConnectionId
);

/// A client workspace of the consultant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Tenant {
    /// Identifier.
    pub id: TenantId,
    /// Short unique name used on the command line (`acme` in `acme/salesforce`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Free-form notes.
    pub notes: String,
    /// When it was created.
    #[ts(type = "number")]
    pub created_at: UnixMillis,
}

/// A tenant with counts for the sidebar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct TenantSummary {
    /// The tenant.
    pub tenant: Tenant,
    /// Number of connections.
    pub connections: u32,
    /// Connections someone must act on now (see [`crate::status::StatusStep::attention`]).
    pub needs_attention: u32,
    /// Which states those are, with counts ("1 expired, 2 need re-consent"); empty when none.
    pub attention_label: String,
    /// When, with the facts unchanged, the count changes next: list the tenants again then.
    #[ts(type = "number | null")]
    pub recount_at: Option<UnixMillis>,
}

/// How the authorization response reaches Grantkeeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum RedirectMode {
    /// A listener on 127.0.0.1 (RFC 8252).
    Loopback,
    /// An HTTPS relay page that forwards to the app.
    Relay,
    /// The user pastes the redirect URL.
    Paste,
}

/// A provider's endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Endpoints {
    /// Issuer identifier (OIDC / RFC 8414).
    pub issuer: Option<String>,
    /// Authorization endpoint.
    pub authorization: Option<String>,
    /// Token endpoint.
    pub token: Option<String>,
    /// Revocation endpoint (RFC 7009).
    pub revocation: Option<String>,
    /// Introspection endpoint (RFC 7662).
    pub introspection: Option<String>,
    /// Device authorization endpoint (RFC 8628).
    pub device_authorization: Option<String>,
    /// JWKS URI for ID-token signatures.
    pub jwks: Option<String>,
    /// UserInfo endpoint.
    pub userinfo: Option<String>,
    /// PEM certificates of the CAs an enterprise's endpoints chain to, trusted for this app
    /// besides the public roots (`provider add --ca-file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub trusted_ca: Option<String>,
}

impl Endpoints {
    /// Takes each endpoint this one lacks from `found` (discovery), keeping those it has.
    pub fn fill_missing_from(&mut self, found: Endpoints) {
        for (slot, value) in [
            (&mut self.issuer, found.issuer),
            (&mut self.authorization, found.authorization),
            (&mut self.token, found.token),
            (&mut self.revocation, found.revocation),
            (&mut self.introspection, found.introspection),
            (&mut self.device_authorization, found.device_authorization),
            (&mut self.jwks, found.jwks),
            (&mut self.userinfo, found.userinfo),
        ] {
            if slot.is_none() {
                *slot = value;
            }
        }
    }
}

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret.
    ClientSecretBasic,
    /// Client id and secret in the form body.
    ClientSecretPost,
    /// Public client: client id only.
    None,
    /// A JWT signed with the provider app's own key (RFC 7523; OpenID Connect `private_key_jwt`).
    PrivateKeyJwt,
    /// A client certificate issued by a CA the provider trusts (RFC 8705 §2.1), its key in the
    /// keychain.
    TlsClientAuth,
    /// A self-signed client certificate Grantkeeper generates, registered at the provider
    /// (RFC 8705 §2.2), its key in the keychain.
    SelfSignedTlsClientAuth,
}

impl ClientAuth {
    /// OAuth's name of the method.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::TlsClientAuth => "tls_client_auth",
            Self::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Whether the app authenticates with a client certificate (mutual TLS, RFC 8705).
    pub fn uses_certificate(self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

/// A registration of Grantkeeper (or of the client) at a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ProviderApp {
    /// Identifier.
    pub id: ProviderAppId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// Display name, unique in the tenant.
    pub name: String,
    /// Catalog preset it was made from, if any.
    pub preset: Option<String>,
    /// Endpoints in use (preset values with overrides applied, or custom).
    pub endpoints: Endpoints,
    /// OAuth client id (public).
    pub client_id: String,
    /// Whether a client secret is stored (the secret itself never leaves the core).
    pub has_client_secret: bool,
    /// How it authenticates at the provider when chosen at registration; otherwise as its
    /// preset says (client secret basic without one), or as a public client without a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub client_auth: Option<ClientAuth>,
    /// Whether its grants are bound to a DPoP key (RFC 9449) when chosen at registration;
    /// otherwise whenever the provider's discovery offers DPoP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub dpop: Option<bool>,
    /// How the authorization response comes back.
    pub redirect_mode: RedirectMode,
    /// Fixed loopback port, when the registration requires one.
    pub redirect_port: Option<u16>,
    /// The HTTPS relay page registered as redirect URI, for providers that refuse loopback.
    pub relay_url: Option<String>,
    /// Scopes requested by default.
    pub default_scopes: Vec<String>,
    /// When it was created.
    #[ts(type = "number")]
    pub created_at: UnixMillis,
}

/// The state of a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Usable.
    Active,
    /// The provider rejected the refresh token; the user must consent again.
    NeedsReconsent,
    /// Revoked by the user.
    Revoked,
    /// A configuration or provider error stops it from working.
    Error,
}

impl ConnectionStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::NeedsReconsent => "needs_reconsent",
            Self::Revoked => "revoked",
            Self::Error => "error",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "needs_reconsent" => Self::NeedsReconsent,
            "revoked" => Self::Revoked,
            "error" => Self::Error,
            _ => return None,
        })
    }
}

/// Stored as its text form; a value no version wrote reads as [`ConnectionStatus::Error`], which
/// hands out nothing.
impl rusqlite::types::FromSql for ConnectionStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        value
            .as_str()
            .map(|s| Self::parse(s).unwrap_or(Self::Error))
    }
}

impl rusqlite::types::ToSql for ConnectionStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// Where an access token's expiry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ExpirySource {
    /// `expires_in` in the token response.
    Response,
    /// The `exp` claim of a JWT access token.
    JwtExp,
    /// The provider's introspection endpoint.
    Introspection,
    /// The catalog's default for the provider.
    CatalogDefault,
}

/// Who the grant belongs to at the provider.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AccountIdentity {
    /// Subject identifier (`sub`).
    pub subject: Option<String>,
    /// Username or email.
    pub username: Option<String>,
    /// Organisation, tenant, realm or instance id at the provider.
    pub org_id: Option<String>,
}

/// One consent grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Connection {
    /// Identifier.
    pub id: ConnectionId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The provider app it was made with.
    pub provider_app_id: ProviderAppId,
    /// Name, unique in the tenant (`salesforce-prod`).
    pub name: String,
    /// The account at the provider.
    pub account: AccountIdentity,
    /// Scopes asked for.
    pub scopes_requested: Vec<String>,
    /// Scopes granted, as reported by the provider (or the requested ones when it says nothing).
    pub scopes_granted: Vec<String>,
    /// Whether `scopes_granted` came from the provider's response.
    pub scopes_granted_reported: bool,
    /// When consent was given.
    #[ts(type = "number")]
    pub consented_at: UnixMillis,
    /// Who gave consent (the local user or the account's name).
    pub consented_by: Option<String>,
    /// Current state.
    pub status: ConnectionStatus,
    /// Why it is not active, in plain words.
    pub status_detail: Option<String>,
    /// When the cached access token expires.
    #[ts(type = "number | null")]
    pub access_expires_at: Option<UnixMillis>,
    /// Where that expiry came from.
    pub access_expiry_source: Option<ExpirySource>,
    /// Sliding refresh-token expiry (inactivity), where known.
    #[ts(type = "number | null")]
    pub refresh_expires_at: Option<UnixMillis>,
    /// Hard refresh-token expiry, where known.
    #[ts(type = "number | null")]
    pub refresh_hard_expires_at: Option<UnixMillis>,
    /// Last successful refresh.
    #[ts(type = "number | null")]
    pub last_refresh_at: Option<UnixMillis>,
    /// Last hand-out of a token.
    #[ts(type = "number | null")]
    pub last_used_at: Option<UnixMillis>,
    /// Whether a refresh token is held in the keychain.
    pub has_refresh_token: bool,
    /// Provider metadata (instance_url, realmId, team id, …).
    pub metadata: BTreeMap<String, String>,
    /// When the record was created.
    #[ts(type = "number")]
    pub created_at: UnixMillis,
}

/// What a connection's tokens are bound to, besides being held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum TokenBinding {
    /// A DPoP key of this device (RFC 9449), in the keychain: every use needs a proof signed
    /// with it.
    Dpop,
    /// The provider app's client certificate (RFC 8705 §3), its key in the keychain: every use
    /// must present it.
    Certificate,
}

impl TokenBinding {
    /// Where a connection records its binding, in its metadata.
    pub const METADATA_KEY: &'static str = "token_binding";

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dpop => "dpop",
            Self::Certificate => "certificate",
        }
    }

    /// What the binding means, in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Dpop => "DPoP-bound: bound to this device's key; useless without it",
            Self::Certificate => {
                "certificate-bound: bound to the provider app's client certificate, whose key is in this device's keychain; useless without it"
            }
        }
    }
}

impl Connection {
    /// What its tokens are bound to, if anything.
    pub fn binding(&self) -> Option<TokenBinding> {
        match self
            .metadata
            .get(TokenBinding::METADATA_KEY)
            .map(String::as_str)
        {
            Some("dpop") => Some(TokenBinding::Dpop),
            Some("certificate") => Some(TokenBinding::Certificate),
            _ => None,
        }
    }
}

/// A refresh token that will die soon unless something happens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ExpiryWarning {
    /// The connection.
    pub connection_id: ConnectionId,
    /// Its tenant.
    pub tenant_id: TenantId,
    /// Its name.
    pub name: String,
    /// When the refresh token expires.
    #[ts(type = "number")]
    pub expires_at: UnixMillis,
    /// Whether the expiry is a hard one (only re-consent helps) or from inactivity (a refresh
    /// renews it).
    pub hard: bool,
}

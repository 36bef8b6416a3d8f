//! Looking at a connection's tokens: offline decoding and RFC 7662 introspection.

use crate::error::{Error, Result};
use crate::model::ConnectionId;
use crate::oauth::jwt::DecodedJwt;
use crate::store::SecretColumn;
use crate::vault::TenantVault;
use serde::Serialize;
use serde_json::{Map, Value};
use ts_rs::TS;

impl TenantVault<'_> {
    /// Asks the provider about the cached access token (RFC 7662). Needs the network.
    pub fn introspect(&self, id: &ConnectionId) -> Result<Map<String, Value>> {
        let Some(at) = self.cached_access_token(id)? else {
            return Err(Error::NotUsable {
                status: self.row(id)?.status,
                message: "this connection holds no access token to introspect".into(),
            });
        };
        let ctx = self.grant_context(id)?;
        ctx.protocol(&ctx.http)
            .introspect(&at, "access_token")
            .map_err(Error::OAuth)
    }

    /// Decodes the cached access and ID tokens (when they are JWTs) with no network, and no
    /// token leaving the core: only headers and claims.
    pub fn inspect(&self, id: &ConnectionId) -> Result<TokenInspection> {
        let access = self.cached_access_token(id)?;
        let id_token = self.store.secret(id, SecretColumn::IdToken)?;
        let decode = |t: &str| {
            DecodedJwt::decode(t).map(|d| JwtView {
                header: d.header,
                claims: d.claims,
            })
        };
        Ok(TokenInspection {
            access_token: access.as_ref().and_then(|t| decode(t.expose())),
            access_token_is_jwt: access
                .as_ref()
                .is_some_and(|t| DecodedJwt::decode(t.expose()).is_some()),
            id_token: id_token.as_ref().and_then(|t| decode(t.expose())),
        })
    }
}

/// Decoded header and claims of a JWT.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct JwtView {
    /// The JOSE header.
    #[ts(type = "Record<string, unknown>")]
    pub header: Map<String, Value>,
    /// The claims.
    #[ts(type = "Record<string, unknown>")]
    pub claims: Map<String, Value>,
}

/// What offline inspection shows of a connection's tokens.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TokenInspection {
    /// The access token's claims, when it is a JWT.
    pub access_token: Option<JwtView>,
    /// Whether the access token is a JWT (opaque tokens cannot be decoded).
    pub access_token_is_jwt: bool,
    /// The ID token's claims.
    pub id_token: Option<JwtView>,
}

//! Authorization-server discovery: OpenID Connect Discovery and RFC 8414 metadata.

use serde::Deserialize;

use super::token::body_to_object;
use super::OAuthError;
use crate::http::{HttpClient, HttpResponse};
use crate::model::Endpoints;

/// The metadata Grantkeeper uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ServerMetadata {
    /// The issuer identifier; must equal the one asked for.
    pub issuer: String,
    /// Authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Revocation endpoint (RFC 7009).
    pub revocation_endpoint: Option<String>,
    /// Introspection endpoint (RFC 7662).
    pub introspection_endpoint: Option<String>,
    /// Device authorization endpoint (RFC 8628).
    pub device_authorization_endpoint: Option<String>,
    /// JWKS for ID-token signatures.
    pub jwks_uri: Option<String>,
    /// UserInfo endpoint.
    pub userinfo_endpoint: Option<String>,
    /// Scopes the server lists.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// PKCE methods supported.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// Token-endpoint client authentication methods.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The algorithms the server accepts for client assertions (`private_key_jwt`).
    #[serde(default)]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Whether the server sends `iss` in authorization responses (RFC 9207).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Pushed authorization request endpoint (RFC 9126).
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Whether the server accepts authorization requests only when pushed (RFC 9126).
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// The DPoP proof algorithms the server accepts (RFC 9449); Grantkeeper signs with ES256.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// The endpoints a client authenticating with a certificate uses instead (RFC 8705 §5).
    #[serde(default)]
    pub mtls_endpoint_aliases: MtlsAliases,
}

/// The endpoints of `mtls_endpoint_aliases` Grantkeeper uses.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MtlsAliases {
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// Introspection endpoint.
    pub introspection_endpoint: Option<String>,
    /// Device authorization endpoint.
    pub device_authorization_endpoint: Option<String>,
    /// Pushed authorization request endpoint.
    pub pushed_authorization_request_endpoint: Option<String>,
}

impl ServerMetadata {
    /// Whether the server takes Grantkeeper's DPoP proofs (ES256).
    pub fn offers_dpop(&self) -> bool {
        self.dpop_signing_alg_values_supported
            .iter()
            .any(|a| a == super::dpop::ALG)
    }
}

impl ServerMetadata {
    /// The endpoints a client uses: with a client certificate (`mtls`), each one
    /// `mtls_endpoint_aliases` names in place of the plain one.
    pub fn endpoints_for(&self, mtls: bool) -> Endpoints {
        let mut e = self.endpoints();
        if mtls {
            let a = &self.mtls_endpoint_aliases;
            for (slot, alias) in [
                (&mut e.token, &a.token_endpoint),
                (&mut e.revocation, &a.revocation_endpoint),
                (&mut e.introspection, &a.introspection_endpoint),
                (
                    &mut e.device_authorization,
                    &a.device_authorization_endpoint,
                ),
            ] {
                if alias.is_some() {
                    slot.clone_from(alias);
                }
            }
        }
        e
    }

    /// Where authorization requests are pushed (RFC 9126), its mTLS alias for `mtls`.
    pub fn par_endpoint_for(&self, mtls: bool) -> Option<String> {
        let alias = &self
            .mtls_endpoint_aliases
            .pushed_authorization_request_endpoint;
        match alias {
            Some(a) if mtls => Some(a.clone()),
            _ => self.pushed_authorization_request_endpoint.clone(),
        }
    }

    /// The endpoints, in the vault's form.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints {
            issuer: Some(self.issuer.clone()),
            authorization: self.authorization_endpoint.clone(),
            token: self.token_endpoint.clone(),
            revocation: self.revocation_endpoint.clone(),
            introspection: self.introspection_endpoint.clone(),
            device_authorization: self.device_authorization_endpoint.clone(),
            jwks: self.jwks_uri.clone(),
            userinfo: self.userinfo_endpoint.clone(),
            ..Endpoints::default()
        }
    }
}

/// Fetches the metadata of `issuer`: OpenID Connect discovery first, then RFC 8414. The
/// document's `issuer` must be `issuer` itself (a mismatch could be a mix-up attack).
pub fn discover(http: &HttpClient, issuer: &str) -> Result<ServerMetadata, OAuthError> {
    let issuer = issuer.trim_end_matches('/');
    let (url, _) = crate::http::check(issuer)?;
    let path = url.path().trim_end_matches('/');
    let origin = url.origin().ascii_serialization();
    let candidates = [
        format!("{issuer}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
    ];
    let mut last = None;
    for candidate in &candidates {
        let resp = http.get(candidate, &[("Accept", "application/json")])?;
        if resp.status != 200 {
            last = Some(OAuthError::Config(format!(
                "no discovery document at {candidate} (HTTP {})",
                resp.status
            )));
            continue;
        }
        return parse_document(issuer, &resp);
    }
    Err(last.unwrap_or(OAuthError::Config("discovery failed".into())))
}

/// Parses a discovery document fetched for `issuer` (without a trailing slash): its `issuer`
/// must be `issuer` itself, it must name a token endpoint, and every endpoint a secret goes to
/// must be an HTTPS (or loopback) URL.
pub fn parse_document(issuer: &str, resp: &HttpResponse) -> Result<ServerMetadata, OAuthError> {
    let body = body_to_object(resp)?;
    let meta: ServerMetadata = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| OAuthError::Malformed(format!("discovery document: {e}")))?;
    if meta.issuer.trim_end_matches('/') != issuer {
        return Err(OAuthError::IssuerMismatch {
            expected: issuer.to_owned(),
            got: meta.issuer,
        });
    }
    if meta.require_pushed_authorization_requests
        && meta.pushed_authorization_request_endpoint.is_none()
    {
        return Err(OAuthError::Config(
            "the provider requires pushed authorization requests but names no endpoint for them (pushed_authorization_request_endpoint)".into(),
        ));
    }
    if meta.token_endpoint.is_none() {
        return Err(OAuthError::Config(
            "the discovery document names no token endpoint".into(),
        ));
    }
    for ep in [
        &meta.authorization_endpoint,
        &meta.token_endpoint,
        &meta.revocation_endpoint,
        &meta.introspection_endpoint,
        &meta.jwks_uri,
        &meta.pushed_authorization_request_endpoint,
        &meta.mtls_endpoint_aliases.token_endpoint,
        &meta.mtls_endpoint_aliases.revocation_endpoint,
        &meta.mtls_endpoint_aliases.introspection_endpoint,
        &meta.mtls_endpoint_aliases.device_authorization_endpoint,
        &meta
            .mtls_endpoint_aliases
            .pushed_authorization_request_endpoint,
    ]
    .into_iter()
    .flatten()
    {
        crate::http::check(ep)?;
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(body: &str) -> Result<ServerMetadata, OAuthError> {
        let resp = HttpResponse {
            status: 200,
            content_type: Some("application/json".into()),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        };
        parse_document("https://idp.example", &resp)
    }

    #[test]
    fn documents_are_checked() {
        let meta = doc(r#"{"issuer":"https://idp.example/","token_endpoint":"https://idp.example/token","authorization_response_iss_parameter_supported":true}"#).unwrap();
        assert!(meta.authorization_response_iss_parameter_supported);
        assert_eq!(meta.pushed_authorization_request_endpoint, None);
        let par = doc(r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","pushed_authorization_request_endpoint":"https://idp.example/par","require_pushed_authorization_requests":true}"#).unwrap();
        assert_eq!(
            par.pushed_authorization_request_endpoint.as_deref(),
            Some("https://idp.example/par")
        );
        assert!(par.require_pushed_authorization_requests);
        assert!(matches!(
            doc(r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","require_pushed_authorization_requests":true}"#),
            Err(OAuthError::Config(m)) if m.contains("pushed authorization")
        ));
        assert!(matches!(
            doc(
                r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","pushed_authorization_request_endpoint":"http://idp.example/par"}"#
            ),
            Err(OAuthError::Http(_))
        ));
        assert!(matches!(
            doc(
                r#"{"issuer":"https://evil.example","token_endpoint":"https://idp.example/token"}"#
            ),
            Err(OAuthError::IssuerMismatch { .. })
        ));
        assert!(matches!(
            doc(r#"{"issuer":"https://idp.example"}"#),
            Err(OAuthError::Config(_))
        ));
        assert!(matches!(
            doc(r#"{"issuer":"https://idp.example","token_endpoint":"http://idp.example/token"}"#),
            Err(OAuthError::Http(_))
        ));
        assert!(matches!(
            doc(
                r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/t","scopes_supported":"x"}"#
            ),
            Err(OAuthError::Malformed(_))
        ));
    }

    #[test]
    fn mtls_aliases_replace_endpoints_for_certificate_clients() {
        let meta = doc(r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","revocation_endpoint":"https://idp.example/revoke","pushed_authorization_request_endpoint":"https://idp.example/par","mtls_endpoint_aliases":{"token_endpoint":"https://mtls.idp.example/token","pushed_authorization_request_endpoint":"https://mtls.idp.example/par"}}"#).unwrap();
        let plain = meta.endpoints_for(false);
        assert_eq!(plain.token.as_deref(), Some("https://idp.example/token"));
        let mtls = meta.endpoints_for(true);
        assert_eq!(
            mtls.token.as_deref(),
            Some("https://mtls.idp.example/token")
        );
        assert_eq!(
            mtls.revocation.as_deref(),
            Some("https://idp.example/revoke")
        );
        assert_eq!(
            meta.par_endpoint_for(true).as_deref(),
            Some("https://mtls.idp.example/par")
        );
        assert_eq!(
            meta.par_endpoint_for(false).as_deref(),
            Some("https://idp.example/par")
        );
        assert!(matches!(
            doc(
                r#"{"issuer":"https://idp.example","token_endpoint":"https://idp.example/token","mtls_endpoint_aliases":{"token_endpoint":"http://idp.example/token"}}"#
            ),
            Err(OAuthError::Http(_))
        ));
    }
}

//! OpenID Connect ID-token validation: signature against the provider's JWKS, `iss`, `aud`,
//! `exp` and the sign-in's `nonce`.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::OAuthError;
use crate::http::HttpClient;

/// What must hold for an ID token to be accepted.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The issuer the sign-in went to.
    pub issuer: &'a str,
    /// Our client id (the audience).
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: Option<&'a str>,
    /// The JWKS URI.
    pub jwks_uri: &'a str,
}

/// Validates `id_token` and returns its claims.
pub fn validate(
    http: &HttpClient,
    id_token: &str,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let bad = |m: &str| OAuthError::IdToken(m.to_owned());
    let header =
        jsonwebtoken::decode_header(id_token).map_err(|_| bad("it is not a signed JWT"))?;
    let alg = header.alg;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(bad("symmetric (HS*) signatures are not accepted"));
    }
    let resp = http.get(expect.jwks_uri, &[("Accept", "application/json")])?;
    if resp.status != 200 {
        return Err(bad(&format!(
            "the provider's key set could not be fetched (HTTP {})",
            resp.status
        )));
    }
    let jwks: JwkSet = serde_json::from_slice(&resp.body)
        .map_err(|_| bad("the provider's key set is malformed"))?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| bad("no key in the provider's key set matches the token"))?;
    let key =
        DecodingKey::from_jwk(jwk).map_err(|_| bad("the provider's signing key is unusable"))?;
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[expect.issuer]);
    validation.set_audience(&[expect.client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(id_token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            bad(match e.kind() {
                K::InvalidSignature => "its signature does not verify",
                K::ExpiredSignature => "it has expired",
                K::InvalidIssuer => "it was issued by another issuer",
                K::InvalidAudience => "it was issued to another client",
                K::MissingRequiredClaim(_) => "a required claim is missing",
                _ => "it does not decode",
            })
        })?;
    if let Some(nonce) = expect.nonce {
        let got = data
            .claims
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !super::pkce::constant_time_eq(got, nonce) {
            return Err(bad(
                "its nonce does not match this sign-in (possible replay)",
            ));
        }
    }
    Ok(data.claims)
}

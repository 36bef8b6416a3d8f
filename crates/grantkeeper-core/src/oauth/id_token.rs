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
    if matches!(
        header.alg,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(bad("symmetric (HS*) signatures are not accepted"));
    }
    let resp = http.get(expect.jwks_uri, &[("Accept", "application/json")])?;
    if resp.status != 200 {
        return Err(bad(&format!(
            "the provider's key set could not be fetched (HTTP {})",
            resp.status
        )));
    }
    validate_with_jwks(id_token, &resp.body, expect)
}

/// Validates `id_token` against the provider's key set `jwks` (the JSON document); what
/// [`validate`] does once the key set is fetched.
pub fn validate_with_jwks(
    id_token: &str,
    jwks: &[u8],
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let bad = |m: &str| OAuthError::IdToken(m.to_owned());
    let header =
        jsonwebtoken::decode_header(id_token).map_err(|_| bad("it is not a signed JWT"))?;
    let alg = header.alg;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(bad("symmetric (HS*) signatures are not accepted"));
    }
    let jwks: JwkSet =
        serde_json::from_slice(jwks).map_err(|_| bad("the provider's key set is malformed"))?;
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
        if !super::state::constant_time_eq(got, nonce) {
            return Err(bad(
                "its nonce does not match this sign-in (possible replay)",
            ));
        }
    }
    Ok(data.claims)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::oauth::stub::{Stub, StubResponse};

    /// A throwaway P-256 key used only by these tests.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg46KE+bSqYpFIGIHP
AGQc3qw91BxZYibDv5RqaqukYH+hRANCAAR+/5binu+COasQ65k+bbiELEpHVKm9
HI6GkwxAcVKuVnXOOxch2qBX7wi9ldt5+86/L9YXueaOHhWO+PolDeE+
-----END PRIVATE KEY-----";

    fn jwks() -> Stub {
        let set = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
            "x": "fv-W4p7vgjmrEOuZPm24hCxKR1SpvRyOhpMMQHFSrlY",
            "y": "dc47FyHaoFfvCL2V23n7zr8v1he55o4eFY74-iUN4T4",
        }]});
        Stub::start(move |req| {
            assert_eq!(req.method, "GET");
            StubResponse::json(200, &set.to_string())
        })
    }

    fn sign(claims: serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some("k1".into());
        use base64::Engine;
        let body: String = TEST_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        encode(&header, &claims, &EncodingKey::from_ec_der(&der)).unwrap()
    }

    fn claims() -> serde_json::Value {
        let now = crate::model::now_ms() / 1000;
        json!({ "iss": "https://idp.example", "aud": "cid", "sub": "u1", "exp": now + 600, "iat": now, "nonce": "n1" })
    }

    fn check(token: &str, stub: &Stub) -> Result<Map<String, Value>, OAuthError> {
        let jwks_uri = format!("{}/jwks", stub.base);
        let expect = Expectations {
            issuer: "https://idp.example",
            client_id: "cid",
            nonce: Some("n1"),
            jwks_uri: &jwks_uri,
        };
        validate(&HttpClient::default(), token, &expect)
    }

    fn rejected(token: &str, stub: &Stub, why: &str) {
        match check(token, stub) {
            Err(OAuthError::IdToken(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected rejection ({why}), got {other:?}"),
        }
    }

    #[test]
    fn a_valid_token_passes() {
        let stub = jwks();
        let c = check(&sign(claims()), &stub).unwrap();
        assert_eq!(c["sub"], "u1");
    }

    #[test]
    fn bad_tokens_are_rejected() {
        let stub = jwks();
        let with = |k: &str, v: serde_json::Value| {
            let mut c = claims();
            c[k] = v;
            sign(c)
        };
        rejected(&with("nonce", json!("other")), &stub, "nonce");
        rejected(&with("aud", json!("someone-else")), &stub, "another client");
        rejected(
            &with("iss", json!("https://evil.example")),
            &stub,
            "another issuer",
        );
        rejected(&with("exp", json!(1_000_000)), &stub, "expired");
        let good = sign(claims());
        let (head, sig) = good.rsplit_once('.').unwrap();
        let forged_claims = {
            use base64::Engine;
            let mut c = claims();
            c["sub"] = json!("admin");
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
        };
        let (h, _) = head.split_once('.').unwrap();
        rejected(&format!("{h}.{forged_claims}.{sig}"), &stub, "signature");
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"k").unwrap(),
        )
        .unwrap();
        rejected(&hs, &stub, "symmetric");
        rejected("not-a-jwt", &stub, "not a signed JWT");
    }
}

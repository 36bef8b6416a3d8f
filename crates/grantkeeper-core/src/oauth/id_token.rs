//! OpenID Connect ID-token validation: the signature (against the provider's JWKS, or for a
//! confidential client's HS256/384/512 tokens against its client secret, OpenID Connect Core
//! §10.1), `iss`, `aud`, `exp` and the sign-in's `nonce`.
//!
//! The key set is fetched at each validation (a sign-in), so a rotated key (a new `kid`) is seen
//! at the next sign-in without any cache to refresh.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::OAuthError;
use crate::http::HttpClient;
use crate::secret::ClientSecret;

/// What must hold for an ID token to be accepted.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The issuer the sign-in went to.
    pub issuer: &'a str,
    /// Our client id (the audience).
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: Option<&'a str>,
    /// The JWKS URI, for asymmetric signatures.
    pub jwks_uri: Option<&'a str>,
    /// The client secret of a confidential client, the key of HS256/384/512 signatures.
    pub client_secret: Option<&'a ClientSecret>,
}

fn bad(m: &str) -> OAuthError {
    OAuthError::IdToken(m.to_owned())
}

/// Whether `alg` is a MAC keyed by the client secret.
fn symmetric(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// Whether `id_token` says it is signed with the client secret (HS256/384/512): such a token
/// needs no key set to be verified.
pub fn signed_with_client_secret(id_token: &str) -> bool {
    jsonwebtoken::decode_header(id_token).is_ok_and(|h| symmetric(h.alg))
}

/// Validates `id_token` and returns its claims.
pub fn validate(
    http: &HttpClient,
    id_token: &str,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let header =
        jsonwebtoken::decode_header(id_token).map_err(|_| bad("it is not a signed JWT"))?;
    if symmetric(header.alg) {
        return verify(id_token, None, expect);
    }
    let jwks_uri = expect.jwks_uri.ok_or_else(|| {
        bad("the provider publishes no key set (jwks_uri) to verify its signature")
    })?;
    let resp = http.get(jwks_uri, &[("Accept", "application/json")])?;
    if resp.status != 200 {
        return Err(bad(&format!(
            "the provider's key set could not be fetched (HTTP {})",
            resp.status
        )));
    }
    verify(id_token, Some(&resp.body), expect)
}

/// Validates `id_token` against the provider's key set `jwks` (the JSON document), or for an
/// HS256/384/512 token against the client secret; what [`validate`] does once the key set is
/// fetched.
pub fn validate_with_jwks(
    id_token: &str,
    jwks: &[u8],
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    verify(id_token, Some(jwks), expect)
}

/// The validation itself; `jwks` is needed only for asymmetric signatures.
fn verify(
    id_token: &str,
    jwks: Option<&[u8]>,
    expect: &Expectations<'_>,
) -> Result<Map<String, Value>, OAuthError> {
    let header =
        jsonwebtoken::decode_header(id_token).map_err(|_| bad("it is not a signed JWT"))?;
    let alg = header.alg;
    let key = if symmetric(alg) {
        // Only the client secret keys a MAC: never a key from the set (algorithm confusion).
        let secret = expect.client_secret.ok_or_else(|| {
            bad("it is signed with a client secret (HS256/384/512), which a public client does not have: register the app as a confidential client with its secret, or have the provider sign ID tokens with an asymmetric key (RS256, ES256)")
        })?;
        DecodingKey::from_secret(secret.expose().as_bytes())
            .map_err(|_| bad("the client secret cannot key its signature"))?
    } else {
        let jwks = jwks.ok_or_else(|| bad("the provider's key set is missing"))?;
        let jwks: JwkSet =
            serde_json::from_slice(jwks).map_err(|_| bad("the provider's key set is malformed"))?;
        let jwk = match &header.kid {
            Some(kid) => jwks.find(kid),
            None if jwks.keys.len() == 1 => jwks.keys.first(),
            None => None,
        }
        .ok_or_else(|| bad("no key in the provider's key set matches the token"))?;
        DecodingKey::from_jwk(jwk).map_err(|_| bad("the provider's signing key is unusable"))?
    };
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::oauth::stub::{Stub, StubResponse};

    /// Throwaway keys used only by these tests (PKCS #8; the RSA key PKCS #1), with their
    /// public JWKs.
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg46KE+bSqYpFIGIHP
AGQc3qw91BxZYibDv5RqaqukYH+hRANCAAR+/5binu+COasQ65k+bbiELEpHVKm9
HI6GkwxAcVKuVnXOOxch2qBX7wi9ldt5+86/L9YXueaOHhWO+PolDeE+
-----END PRIVATE KEY-----";
    const ROTATED_P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpXIjZ/qPCovXtFd8
vFQLNV+lkHNvNEKm2Z+0KHdC0FyhRANCAASLrtf2sGgRpkbqeUuSovTTqdmjDg+E
qmGAGclpgXQfhQrTeL59ruLKejit5srgPGIc2WiRO9wU38spscPh8RBR
-----END PRIVATE KEY-----";
    const P384: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBqCee07ArnnR0aKayA
xXRiTnAGISuNcXhtKrQ1ft/9Zoh+pX9Bhsu4scCFicloSbShZANiAATZWF/7Vv+V
wPEdYX8kwuIVSQWJIDpvap7DkHXj2+oouoNPXtxFIBpCGvK8yzIAbmUEjPk1lhxa
3jmVUOl00QpBfyzHeOM9hsdpwA0QkAth5svWcw73KBhxUd+Vr7b9XQg=
-----END PRIVATE KEY-----";
    const RSA: &str = "-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEAoGkJ4y9ziE4sAYwckxJkk+B+Sr8zijg4lB/s0bZDOyRJOUur
vkvUjCmu4p9RKmcHpEDs7bEkKoAgkMalD7C0fQ/hzovmo2pgGPSHg/CU3dqrvObl
Ppz4DxrIC6dG6Qn/FaYZRni3g5yi0F65TzoToO2eFuXMMn3tyYY2pScZjqdn17Ml
O/OSYzftOFhYwJCXQsLCjUrOyxBBCAuM9Y6NBMdIgp1hEGnrJ5eN7fCcSebvMGS/
0JOb+hm5r/0i7H2wycRx75Nv50TWc/rbT1Ns40lMSg3VWvq1r50QNK2jjmXgnCPg
qYHiiOiWBFtOQaIUVRbx2wRot+6+Yd1derlIpQIDAQABAoIBAE0pCZEHH79WvvNF
lu8l30yEpatF2sBnd8vEqZFc520Y8MIHRMcmScjcOhwXv56ybaoUcwOI/JkXBdMu
QnLQMJmh3KASirBbuHr4kQEl5i3rhEW7GVWrguUdIFH+tmzdmp6qxaiw47GC1Ix/
rArQqGV2N1/TTQySp6GTFlEOBEyqNPo7RD9yeynJgawQ6k1t2uGfL7SP9a8GqqYu
SvPTHZU6RX+X/0D1fnEYA59GnvkvRzKxJUszWLYQWKX+nOvublu8Bt8gaK1SBw+f
LB2jUEIGNLTEVxPlN5jI+eIFgvfVdMFiXoY4sNII0XWybPrzCc4ajxmaS+RgTS+u
ZcxT1DcCgYEA4gisOaSpGaTgxhl+mT97SOnMtJQsuOtGRepKvD86sPvm+xpGl4cN
ooeM94yeLnPmRPqRCP8hJe4I8nCS0gst1RrMomFWbpLuHREs3lRSyqSgSlxczaYN
w9md0tIZWGh0Csq7YJbWSx2bX3qm3U49GTxVrHkvVNiCjIByWT0G4WsCgYEAta0t
mFo2qAUWGTWPL2ZyN1Vuor7saMlLw5adEjJCtqX86N7orzWv6kpr5D4qZ4DfIKJb
YM0dFMU3X8aESE7zRaUIhrt2zj6ZG4bufT97B4G6pM0GmEPQf3808L4CvzS8sV6j
Rjyesg2Yme9MpTyYEN8BhSTyzrQcBvBHNnQNMi8CgYEApU7mdjngmiqlYPwgRH/S
8F5dIewEUTFwcY2KHua3S9zO7vImkodpB2bPR/SFcz+8NtJx4/yDB7Rwwq5mEkuu
t14kLtW1WqUGlCeNgwR0kFOaDwhBrv00r/mlnRufAbNSutnN9DQcgU8j5M5U3yFr
OduQZNU0Mn8t6we9mVoygAUCgYEApTfozzS7n/GAN0zN+n1gQZIgG0EmHeVyUV0X
WwT6RsCNT/noAe8BHECx/c/LIHXCdRsxnsbqO4le4mrWwiuKcTu0lVLGqKmk87Oy
D5U7fYgtBNKvvKlvY4N70bP7K4f6UhOOyME4URSsQtGtElgYsr8b0snXRsPk+Spq
mMrRdWECgYEAsiQhWYAuNh9i5VmXCD3o5ZHbe0/W4QLPY+sxHEeOOTLjcfcs7NDJ
6l9JXyp1DiX6OjgOQ/hM8chLGV/hAKbHnt5Pcme9BlNk0YVaTtWZdzIbpdEAhTI2
ggdZOnZdjxnJhf9Q802zCOZOdtxhoTmXHufeZ2lgCRoHjfj9gXQ3Ulo=
-----END RSA PRIVATE KEY-----";
    const ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIOoZfIUiUM/y4gVwD7kjfxR9+xpvcN2Rgfi9wCqnoE72
-----END PRIVATE KEY-----";

    fn jwk(kid: &str) -> serde_json::Value {
        match kid {
            "k1" => json!({ "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
                "x": "fv-W4p7vgjmrEOuZPm24hCxKR1SpvRyOhpMMQHFSrlY",
                "y": "dc47FyHaoFfvCL2V23n7zr8v1he55o4eFY74-iUN4T4" }),
            "k2" => json!({ "kty": "EC", "crv": "P-256", "kid": "k2", "alg": "ES256", "use": "sig",
                "x": "i67X9rBoEaZG6nlLkqL006nZow4PhKphgBnJaYF0H4U",
                "y": "CtN4vn2u4sp6OK3myuA8YhzZaJE73BTfyymxw-HxEFE" }),
            "p384" => json!({ "kty": "EC", "crv": "P-384", "kid": "p384", "alg": "ES384",
                "x": "2Vhf-1b_lcDxHWF_JMLiFUkFiSA6b2qew5B149vqKLqDT17cRSAaQhryvMsyAG5l",
                "y": "BIz5NZYcWt45lVDpdNEKQX8sx3jjPYbHacANEJALYebL1nMO9ygYcVHfla-2_V0I" }),
            "ed" => json!({ "kty": "OKP", "crv": "Ed25519", "kid": "ed", "alg": "EdDSA",
                "x": "hTfRleDqXYug-MUbTE7m0jGESZ165odM35ArUNjxsos" }),
            // The RSA key, without an `alg`: the same key signs RS256 and PS256.
            "rsa" => json!({ "kty": "RSA", "kid": "rsa", "use": "sig", "e": "AQAB",
                "n": "oGkJ4y9ziE4sAYwckxJkk-B-Sr8zijg4lB_s0bZDOyRJOUurvkvUjCmu4p9RKmcHpEDs7bEkKoAgkMalD7C0fQ_hzovmo2pgGPSHg_CU3dqrvOblPpz4DxrIC6dG6Qn_FaYZRni3g5yi0F65TzoToO2eFuXMMn3tyYY2pScZjqdn17MlO_OSYzftOFhYwJCXQsLCjUrOyxBBCAuM9Y6NBMdIgp1hEGnrJ5eN7fCcSebvMGS_0JOb-hm5r_0i7H2wycRx75Nv50TWc_rbT1Ns40lMSg3VWvq1r50QNK2jjmXgnCPgqYHiiOiWBFtOQaIUVRbx2wRot-6-Yd1derlIpQ" }),
            _ => unreachable!(),
        }
    }

    /// A key set server; it serves `sets[i]` at its i-th fetch (the last one after that).
    fn serving(sets: Vec<Vec<&'static str>>) -> (Stub, Arc<AtomicUsize>) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let n = fetches.clone();
        let stub = Stub::start(move |req| {
            assert_eq!(req.method, "GET");
            let i = n.fetch_add(1, Ordering::SeqCst).min(sets.len() - 1);
            let keys: Vec<_> = sets[i].iter().map(|k| jwk(k)).collect();
            StubResponse::json(200, &json!({ "keys": keys }).to_string())
        });
        (stub, fetches)
    }

    fn jwks() -> Stub {
        serving(vec![vec!["k1", "p384", "ed", "rsa"]]).0
    }

    fn der(pem: &str) -> Vec<u8> {
        use base64::Engine;
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    fn sign_as(alg: Algorithm, kid: &str, pem: &str, claims: &serde_json::Value) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        let key = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_der(&der(pem)),
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_der(&der(pem)),
            _ => EncodingKey::from_ec_der(&der(pem)),
        };
        encode(&header, claims, &key).unwrap()
    }

    fn sign(claims: serde_json::Value) -> String {
        sign_as(Algorithm::ES256, "k1", TEST_KEY, &claims)
    }

    fn claims() -> serde_json::Value {
        let now = crate::model::now_ms() / 1000;
        json!({ "iss": "https://idp.example", "aud": "cid", "sub": "u1", "exp": now + 600, "iat": now, "nonce": "n1" })
    }

    fn check_with(
        token: &str,
        stub: &Stub,
        secret: Option<&ClientSecret>,
    ) -> Result<Map<String, Value>, OAuthError> {
        let jwks_uri = format!("{}/jwks", stub.base);
        let expect = Expectations {
            issuer: "https://idp.example",
            client_id: "cid",
            nonce: Some("n1"),
            jwks_uri: Some(&jwks_uri),
            client_secret: secret,
        };
        validate(&HttpClient::default(), token, &expect)
    }

    fn check(token: &str, stub: &Stub) -> Result<Map<String, Value>, OAuthError> {
        check_with(token, stub, None)
    }

    #[track_caller]
    fn refused(result: Result<Map<String, Value>, OAuthError>, why: &str) {
        match result {
            Err(OAuthError::IdToken(m)) => assert!(m.contains(why), "{m}"),
            other => panic!("expected rejection ({why}), got {other:?}"),
        }
    }

    #[track_caller]
    fn rejected(token: &str, stub: &Stub, why: &str) {
        refused(check(token, stub), why);
    }

    #[test]
    fn a_valid_token_passes() {
        let stub = jwks();
        let c = check(&sign(claims()), &stub).unwrap();
        assert_eq!(c["sub"], "u1");
    }

    #[test]
    fn rsa_pss_p384_and_ed25519_signatures_verify_through_the_key_set() {
        let stub = jwks();
        for (alg, kid, pem) in [
            (Algorithm::RS256, "rsa", RSA),
            (Algorithm::PS256, "rsa", RSA),
            (Algorithm::ES384, "p384", P384),
            (Algorithm::EdDSA, "ed", ED25519),
        ] {
            let token = sign_as(alg, kid, pem, &claims());
            assert_eq!(check(&token, &stub).unwrap()["sub"], "u1", "{alg:?}");
            // The same token claiming another key of the set does not verify.
            let wrong_kid = sign_as(alg, "k1", pem, &claims());
            assert!(check(&wrong_kid, &stub).is_err(), "{alg:?}");
        }
    }

    #[test]
    fn a_rotated_key_is_found_at_the_next_sign_in() {
        let (stub, fetches) = serving(vec![vec!["k1"], vec!["k2"]]);
        check(&sign(claims()), &stub).unwrap();
        // The provider rotated to k2: its token verifies, the retired key's no longer does.
        let rotated = sign_as(Algorithm::ES256, "k2", ROTATED_P256, &claims());
        assert_eq!(check(&rotated, &stub).unwrap()["sub"], "u1");
        rejected(&sign(claims()), &stub, "no key in the provider's key set");
        assert_eq!(fetches.load(Ordering::SeqCst), 3, "one fetch per sign-in");
    }

    #[test]
    fn hs_tokens_verify_with_a_confidential_clients_secret_only() {
        let (stub, fetches) = serving(vec![vec!["k1"]]);
        let secret = ClientSecret::new("confidential-test-secret-0123456789");
        let hs = |alg: Algorithm, key: &str, c: &serde_json::Value| {
            encode(
                &Header::new(alg),
                c,
                &EncodingKey::from_secret(key.as_bytes()).unwrap(),
            )
            .unwrap()
        };
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = hs(alg, secret.expose(), &claims());
            assert!(signed_with_client_secret(&token));
            let c = check_with(&token, &stub, Some(&secret)).unwrap();
            assert_eq!(c["sub"], "u1", "{alg:?}");
            // A public client has no secret: the same token is refused.
            refused(check(&token, &stub), "a public client does not have");
            // Another secret, or the claims checked as for any ID token.
            let other = hs(alg, "another-secret-of-the-same-length!!", &claims());
            refused(check_with(&other, &stub, Some(&secret)), "signature");
            let mut c = claims();
            c["nonce"] = json!("other");
            refused(
                check_with(&hs(alg, secret.expose(), &c), &stub, Some(&secret)),
                "nonce",
            );
            c = claims();
            c["aud"] = json!("someone-else");
            refused(
                check_with(&hs(alg, secret.expose(), &c), &stub, Some(&secret)),
                "another client",
            );
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 0, "no key set for a MAC");
        assert!(!signed_with_client_secret(&sign(claims())));
        // An asymmetric token is never checked with the secret.
        let es = sign(claims());
        assert!(check_with(&es, &stub, Some(&secret)).is_ok());
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
        rejected(&hs, &stub, "a public client does not have");
        rejected("not-a-jwt", &stub, "not a signed JWT");
    }
}

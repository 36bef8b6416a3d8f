//! DPoP (RFC 9449): a connection's own P-256 key pair proves, request by request, that whoever
//! presents its tokens holds the key. The private key stays in the keychain; each request carries
//! a fresh proof (a JWT naming the method and URL, signed with the key, its public half in the
//! header), and a resource request's proof also names the access token (`ath`). A token the
//! provider bound to the key (`token_type` `DPoP`) is useless to a thief without it.
//!
//! [`DpopKey::proof`] is the one proof function: token requests (through the normalizer),
//! `grantkeeper token --dpop-proof` and the authenticating proxy all call it.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::assertion::ClientKey;
use super::OAuthError;
use crate::secret::{AccessToken, SecretText};

/// The `token_type` of a DPoP-bound access token, and the authorization scheme it is sent with.
pub const TOKEN_TYPE: &str = "DPoP";

/// The signing algorithm of every proof.
pub const ALG: &str = "ES256";

/// A connection's DPoP key pair. `Debug` shows its thumbprint only.
#[derive(Clone)]
pub struct DpopKey {
    key: ClientKey,
    signing: SigningKey,
    /// The header of every proof, base64url: `typ`, `alg` and the public JWK.
    header: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.thumbprint())
            .finish()
    }
}

/// The two headers of a resource request with a DPoP-bound token: `Authorization: DPoP <token>`
/// and `DPoP: <proof>`. `Debug` names them only.
pub struct DpopHeaders {
    /// The `Authorization` header's value.
    pub authorization: SecretText,
    /// The `DPoP` header's value (a proof for this one request).
    pub proof: String,
}

impl std::fmt::Debug for DpopHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DpopHeaders(Authorization, DPoP)")
    }
}

impl DpopKey {
    /// A new key pair from the OS's random source.
    pub fn generate() -> Self {
        let kept = ClientKey::generate().to_secret();
        Self::from_secret(&kept)
            .unwrap_or_else(|_| unreachable!("a generated key is a valid P-256 key"))
    }

    /// The key kept by [`DpopKey::to_secret`].
    pub fn from_secret(text: &SecretText) -> Result<Self, OAuthError> {
        let unusable = || {
            OAuthError::Config("the connection's DPoP key in the keychain is unusable: connect the account again (delete, then connect)".into())
        };
        let der = Zeroizing::new(B64.decode(text.expose()).map_err(|_| unusable())?);
        let signing = SigningKey::from_pkcs8_der(&der).map_err(|_| unusable())?;
        let key = ClientKey::from_signing_key(&signing).map_err(|_| unusable())?;
        let jwk = key.public_jwk();
        let header = json!({
            "typ": "dpop+jwt", "alg": ALG,
            "jwk": { "kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"] },
        });
        let header = B64URL.encode(header.to_string());
        Ok(Self {
            key,
            signing,
            header,
        })
    }

    /// The private key as kept in the keychain (PKCS #8, base64).
    pub fn to_secret(&self) -> SecretText {
        self.key.to_secret()
    }

    /// The public key's RFC 7638 thumbprint (`jkt`), which a bound token names.
    pub fn thumbprint(&self) -> &str {
        self.key.kid()
    }

    /// A proof for one request: `method` to `url` (its query and fragment left out, RFC 9449
    /// §4.2), a fresh `jti`, `iat` now, the server's `nonce` when it gave one, and `ath` when an
    /// access token goes with the request.
    pub fn proof(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        access_token: Option<&AccessToken>,
    ) -> Result<String, OAuthError> {
        let mut htu = url::Url::parse(url)
            .map_err(|_| OAuthError::Config("a DPoP proof needs an absolute URL".into()))?;
        htu.set_query(None);
        htu.set_fragment(None);
        let mut jti = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut jti);
        let iat = crate::model::now_ms() / 1000;
        let mut claims = json!({
            "jti": B64URL.encode(jti), "htm": method.to_ascii_uppercase(),
            "htu": htu.as_str(), "iat": iat,
        });
        if let Some(n) = nonce {
            claims["nonce"] = n.into();
        }
        if let Some(token) = access_token {
            claims["ath"] = B64URL
                .encode(Sha256::digest(token.expose().as_bytes()))
                .into();
        }
        Ok(super::assertion::es256(
            &self.signing,
            &self.header,
            &claims,
        ))
    }

    /// The headers of one resource request with `token` bound to this key.
    pub fn resource_headers(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        token: &AccessToken,
    ) -> Result<DpopHeaders, OAuthError> {
        Ok(DpopHeaders {
            authorization: SecretText::new(format!("{TOKEN_TYPE} {}", token.expose())),
            proof: self.proof(method, url, nonce, Some(token))?,
        })
    }
}

/// The nonce a server asks for (RFC 9449 §8, §9): an error `use_dpop_nonce` (in the body at a
/// token endpoint, in `WWW-Authenticate` at a resource) with a `DPoP-Nonce` header.
pub fn nonce_asked(resp: &crate::http::HttpResponse) -> Option<String> {
    let nonce = resp.header("dpop-nonce")?;
    let in_body = std::str::from_utf8(&resp.body)
        .ok()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .is_some_and(|v| v["error"] == "use_dpop_nonce");
    let in_challenge = resp
        .header("www-authenticate")
        .is_some_and(|w| w.contains("use_dpop_nonce"));
    (in_body || in_challenge).then(|| nonce.to_owned())
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde_json::Value;

    use super::*;

    fn decoded(key: &DpopKey, proof: &str) -> (Value, serde_json::Map<String, Value>) {
        let header: Value =
            serde_json::from_slice(&B64URL.decode(proof.split('.').next().unwrap()).unwrap())
                .unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(header["jwk"].clone()).unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            proof,
            &DecodingKey::from_jwk(&jwk).unwrap(),
            &v,
        )
        .unwrap()
        .claims;
        assert_eq!(header["jwk"]["x"], key.key.public_jwk()["x"]);
        (header, claims)
    }

    #[test]
    fn proofs_verify_with_their_embedded_key_and_name_the_request() {
        let key = DpopKey::generate();
        let token = AccessToken::new("at-123");
        let a = key
            .proof("post", "https://idp.example/token?x=1#f", None, None)
            .unwrap();
        let b = key
            .proof("GET", "https://api.example/me", Some("n-1"), Some(&token))
            .unwrap();
        let (header, ca) = decoded(&key, &a);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert!(header["jwk"].get("d").is_none(), "{header}");
        assert_eq!(ca["htm"], "POST");
        assert_eq!(ca["htu"], "https://idp.example/token");
        assert!(ca.get("ath").is_none() && ca.get("nonce").is_none());
        let (_, cb) = decoded(&key, &b);
        assert_ne!(ca["jti"], cb["jti"], "a new jti per proof");
        assert_eq!(cb["nonce"], "n-1");
        // ath: base64url(SHA-256("at-123")), computed independently.
        assert_eq!(cb["ath"], "pZOyhFN0Z9eQivPyniH1Gg1OzUpcjUffjr7n0FzCLck");
        let now = crate::model::now_ms() / 1000;
        assert!((ca["iat"].as_i64().unwrap() - now).abs() <= 2);
    }

    #[test]
    fn the_kept_key_is_the_same_key_and_never_shown() {
        let key = DpopKey::generate();
        let kept = key.to_secret();
        let back = DpopKey::from_secret(&kept).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        let proof = key
            .proof("POST", "https://idp.example/t", None, None)
            .unwrap();
        let shown = format!("{key:?} {proof}");
        assert!(!shown.contains(kept.expose()), "{shown}");
        assert!(matches!(
            DpopKey::from_secret(&SecretText::new("bm90IGEga2V5")),
            Err(OAuthError::Config(m)) if m.contains("DPoP key")
        ));
        let headers = key
            .resource_headers(
                "GET",
                "https://api.example/x",
                None,
                &AccessToken::new("tok"),
            )
            .unwrap();
        assert_eq!(headers.authorization.expose(), "DPoP tok");
        assert!(!format!("{headers:?}").contains("tok"));
    }

    #[test]
    fn a_nonce_is_taken_only_when_the_server_asks_for_it() {
        let resp = |body: &str, headers: &[(&str, &str)]| crate::http::HttpResponse {
            status: 400,
            body: body.as_bytes().to_vec(),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        };
        let asked = resp(r#"{"error":"use_dpop_nonce"}"#, &[("DPoP-Nonce", "n1")]);
        assert_eq!(nonce_asked(&asked).as_deref(), Some("n1"));
        let challenge = resp(
            "",
            &[
                ("dpop-nonce", "n2"),
                ("www-authenticate", r#"DPoP error="use_dpop_nonce""#),
            ],
        );
        assert_eq!(nonce_asked(&challenge).as_deref(), Some("n2"));
        let other = resp(r#"{"error":"invalid_grant"}"#, &[("dpop-nonce", "n3")]);
        assert_eq!(nonce_asked(&other), None);
        assert_eq!(
            nonce_asked(&resp(r#"{"error":"use_dpop_nonce"}"#, &[])),
            None
        );
    }
}

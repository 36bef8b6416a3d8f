//! Offline JWT decoding (no signature check): header and claims of access and ID tokens, for
//! inspection and for the `exp` of tokens whose response gave no lifetime.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{Map, Value};

/// A decoded JWT. The signature is not checked.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJwt {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
}

impl DecodedJwt {
    /// Decodes a compact JWS; `None` if the token is not a JWT (opaque tokens are common).
    pub fn decode(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (h, c, _sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let part = |s: &str| -> Option<Map<String, Value>> {
            let bytes = B64URL.decode(s.trim_end_matches('=')).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(m) => Some(m),
                _ => None,
            }
        };
        Some(Self {
            header: part(h)?,
            claims: part(c)?,
        })
    }

    /// The `exp` claim in Unix milliseconds.
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.claims
            .get("exp")
            .and_then(Value::as_i64)
            .map(|s| s.saturating_mul(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        B64URL.encode(v)
    }

    #[test]
    fn decodes_claims_and_exp() {
        let t = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256","kid":"k1"}"#),
            b64(r#"{"sub":"u","exp":1800000000}"#)
        );
        let d = DecodedJwt::decode(&t).unwrap();
        assert_eq!(d.header["kid"], "k1");
        assert_eq!(d.expires_at_ms(), Some(1_800_000_000_000));
    }

    #[test]
    fn opaque_tokens_are_not_jwts() {
        assert!(DecodedJwt::decode("00Dxx0000001gPL!AR8AQJXg").is_none());
        assert!(DecodedJwt::decode("a.b.c").is_none());
        assert!(DecodedJwt::decode("a.b.c.d.e").is_none());
    }
}

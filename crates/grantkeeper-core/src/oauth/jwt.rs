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

    /// The `exp` claim in Unix milliseconds, within `[0, now + 10 years]` (see
    /// [`super::token::clamp_expiry`]): an absurd `exp` never overflows a later sum.
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.claims
            .get("exp")
            .and_then(Value::as_i64)
            .map(|s| super::token::clamp_expiry(crate::model::now_ms(), s.saturating_mul(1000)))
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
    fn absurd_exp_is_clamped() {
        let now = crate::model::now_ms();
        let ten_years = super::super::token::lifetime_ms(u64::MAX);
        for (exp, lo, hi) in [
            (
                i64::MAX.to_string(),
                now + ten_years - 5_000,
                now + ten_years + 5_000,
            ),
            (
                (i64::MAX / 1000 + 1).to_string(),
                now + ten_years - 5_000,
                now + ten_years + 5_000,
            ),
            (i64::MIN.to_string(), 0, 0),
            ("-5".to_owned(), 0, 0),
        ] {
            let t = format!(
                "{}.{}.s",
                b64(r#"{"alg":"none"}"#),
                b64(&format!(r#"{{"exp":{exp}}}"#))
            );
            let at = DecodedJwt::decode(&t).unwrap().expires_at_ms().unwrap();
            assert!((lo..=hi).contains(&at), "{exp}: {at}");
        }
        let huge = format!("{}.{}.s", b64(r#"{"alg":"none"}"#), b64(r#"{"exp":1e300}"#));
        assert_eq!(DecodedJwt::decode(&huge).unwrap().expires_at_ms(), None);
    }

    #[test]
    fn opaque_tokens_are_not_jwts() {
        assert!(DecodedJwt::decode("00Dxx0000001gPL!AR8AQJXg").is_none());
        assert!(DecodedJwt::decode("a.b.c").is_none());
        assert!(DecodedJwt::decode("a.b.c.d.e").is_none());
    }
}

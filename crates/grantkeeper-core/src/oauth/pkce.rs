//! PKCE (RFC 7636, S256 only) and the random `state` and `nonce` values of one sign-in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::secret::SecretText;

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    B64URL.encode(buf)
}

/// A PKCE code verifier (kept secret until the token request).
#[derive(Debug)]
pub struct PkceVerifier(SecretText);

impl PkceVerifier {
    /// 32 random bytes, base64url: 43 characters, the RFC's minimum length and maximum entropy.
    pub fn generate() -> Self {
        Self(SecretText::new(random_token(32)))
    }

    /// The S256 challenge sent in the authorization request.
    pub fn challenge(&self) -> String {
        B64URL.encode(Sha256::digest(self.0.expose().as_bytes()))
    }

    /// The verifier, for the token request body.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// The `state` value: 128 random bits, and the loopback port when a relay page must find the
/// app (`<random>~<port>`).
pub fn new_state(port: Option<u16>) -> String {
    let random = random_token(16);
    match port {
        Some(p) => format!("{random}~{p}"),
        None => random,
    }
}

/// A fresh OIDC `nonce`.
pub fn new_nonce() -> String {
    random_token(16)
}

/// Compares two strings in constant time.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = PkceVerifier(SecretText::new(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn fresh_values() {
        let v = PkceVerifier::generate();
        assert_eq!(v.expose().len(), 43);
        assert_ne!(v.expose(), PkceVerifier::generate().expose());
        assert!(new_state(Some(50123)).ends_with("~50123"));
        assert_ne!(new_nonce(), new_nonce());
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}

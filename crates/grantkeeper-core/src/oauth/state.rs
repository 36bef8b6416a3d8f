//! The random `state` and `nonce` values of one sign-in, and their constant-time comparison.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use oauth2::CsrfToken;
use rand::RngCore;

/// The `state` value: oauth2's random CSRF token (128 bits), and the loopback port when a relay
/// page must find the app (`<random>~<port>`).
pub fn new_state(port: Option<u16>) -> String {
    let random = CsrfToken::new_random().into_secret();
    match port {
        Some(p) => format!("{random}~{p}"),
        None => random,
    }
}

/// A fresh OIDC `nonce`: 128 random bits, base64url.
pub fn new_nonce() -> String {
    let mut buf = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    B64URL.encode(buf)
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
    fn fresh_values() {
        let state = new_state(None);
        assert_eq!(state.len(), 22, "16 random bytes, base64url");
        assert_ne!(state, new_state(None));
        let relayed = new_state(Some(50123));
        let (random, port) = relayed.split_once('~').unwrap();
        assert_eq!((random.len(), port), (22, "50123"));
        assert_ne!(new_nonce(), new_nonce());
        assert_eq!(new_nonce().len(), 22);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}

//! The proxy's own bearer: a random secret local clients present, so that other programs (and
//! other users) cannot spend the connection's token through the proxy.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use hyper::header::{HeaderMap, AUTHORIZATION, PROXY_AUTHORIZATION};
use rand::RngCore;

/// A per-proxy bearer; its Debug and Display never show it.
#[derive(Clone)]
pub struct Bearer(String);

impl Bearer {
    /// 32 random bytes, base64url.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The value clients send (`Proxy-Authorization: Bearer <value>`).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Writes it to a new file only its owner can read (mode 0600), replacing one there.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let _ = std::fs::remove_file(path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(self.0.as_bytes())?;
        file.write_all(b"\n")
    }

    /// Whether the request presents it, in `Proxy-Authorization` or `Authorization`.
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        [PROXY_AUTHORIZATION, AUTHORIZATION].iter().any(|name| {
            headers.get_all(name).iter().any(|v| {
                let v = v.as_bytes();
                v.len() > 7
                    && v[..7].eq_ignore_ascii_case(b"bearer ")
                    && same(&v[7..], self.0.as_bytes())
            })
        })
    }
}

/// Compares in time that does not depend on where the values differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl fmt::Debug for Bearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Bearer([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn accepts_only_its_own_value_in_either_header() {
        let b = Bearer::generate();
        let mut h = HeaderMap::new();
        assert!(!b.accepts(&h));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert!(!b.accepts(&h));
        h.insert(
            PROXY_AUTHORIZATION,
            HeaderValue::from_str(&format!("bearer {}", b.expose())).unwrap(),
        );
        assert!(b.accepts(&h));
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", b.expose())).unwrap(),
        );
        assert!(b.accepts(&h));
        assert_eq!(format!("{b:?}"), "Bearer([redacted])");
        assert_ne!(Bearer::generate().expose(), b.expose());
    }

    #[test]
    fn written_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bearer");
        std::fs::write(&path, "old").unwrap();
        let b = Bearer::generate();
        b.write_to(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), b.expose());
    }
}

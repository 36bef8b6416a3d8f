//! AES-256-GCM envelope encryption and keyed token fingerprints.
//!
//! The master key lives in the OS keychain, and so does each tenant's wrapping key, in the same
//! entry ([`VaultKeys`]: one keychain read opens everything). Each tenant has its own data key,
//! stored in SQLite wrapped (encrypted) by the tenant's wrapping key: removing that key from the
//! keychain crypto-shreds the tenant in every copy of the database. (Vaults
//! made before tenant keys had the data key wrapped by the master key; they are moved over at
//! the tenant's first use.) Every ciphertext is bound by associated data to the
//! vault, tenant, table, column and row it belongs to, so a ciphertext copied anywhere else fails
//! to decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::secret::SecretText;

/// Version byte that starts every ciphertext blob.
const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Decryption or key-format failures. Messages never contain key or plaintext bytes.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The tag did not verify: wrong key, wrong row or tenant, or edited bytes.
    #[error("a stored secret failed to decrypt: it belongs to another record or was altered")]
    Decrypt,
    /// The blob is too short or has an unknown version.
    #[error("a stored secret has an unknown format")]
    Format,
    /// A key stored in the keychain is not a valid key.
    #[error("the key stored in the keychain is malformed")]
    BadKey,
}

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// A fresh random key from the OS generator.
            pub fn generate() -> Self {
                let mut k = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut k);
                Self(k)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

key_type!(
    /// The vault's master key (held in the keychain); wraps tenant data keys.
    MasterKey
);
key_type!(
    /// A tenant's data key; encrypts that tenant's secrets in SQLite and authenticates the
    /// settings that decide where they are sent.
    DataKey
);
key_type!(
    /// A tenant's wrapping key (held in the keychain); wraps the tenant's data key.
    TenantKey
);

/// Key for token fingerprints (HMAC-SHA-256), derived from the master key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FingerprintKey([u8; 32]);

/// Keys kept in the keychain, which wrap data keys.
macro_rules! keychain_key {
    ($name:ident) => {
        impl $name {
            /// Encodes the key for storage in the keychain.
            pub fn to_keychain_text(&self) -> SecretText {
                SecretText::new(B64.encode(self.0))
            }

            /// Decodes a key read from the keychain.
            pub fn from_keychain_text(text: &SecretText) -> Result<Self, CryptoError> {
                let mut bytes = B64
                    .decode(text.expose().trim())
                    .map_err(|_| CryptoError::BadKey)?;
                let key: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::BadKey)?;
                bytes.zeroize();
                Ok(Self(key))
            }

            /// Wraps a tenant data key, bound to `aad`.
            pub fn wrap(&self, key: &DataKey, aad: &Aad) -> Vec<u8> {
                seal_raw(&self.0, aad, &key.0)
            }

            /// Unwraps a tenant data key.
            pub fn unwrap_key(&self, blob: &[u8], aad: &Aad) -> Result<DataKey, CryptoError> {
                let mut plain = open_raw(&self.0, aad, blob)?;
                let key: [u8; 32] = plain
                    .as_slice()
                    .try_into()
                    .map_err(|_| CryptoError::Format)?;
                plain.zeroize();
                Ok(DataKey(key))
            }
        }
    };
}

keychain_key!(MasterKey);
keychain_key!(TenantKey);

/// The vault's keys as one keychain entry: the master key on the first line (alone, the format
/// of vaults made before tenant keys), then one line `tenant <id> <key>` per tenant, or
/// `adopting <id> <key>` while an older tenant is being moved to its key.
pub struct VaultKeys {
    /// The master key.
    pub master: MasterKey,
    /// Each tenant's wrapping key, by tenant id.
    pub tenants: std::collections::BTreeMap<String, TenantKey>,
    /// Tenants whose move to their key is not finished (their database record may still be
    /// wrapped by the master key).
    pub adopting: std::collections::BTreeSet<String>,
    /// The vault's team logins and shared tenants (see `crate::team`), kept here so that one
    /// keychain read still opens everything; opaque to this module.
    pub teams: Option<SecretText>,
    /// Each tenant's hand-out policy version, by tenant id (see `crate::policy`): kept here so
    /// that a policy row deleted or rolled back in the database is detected.
    pub policies: std::collections::BTreeMap<String, u64>,
}

impl VaultKeys {
    /// Encodes the keys for the keychain.
    pub fn to_keychain_text(&self) -> SecretText {
        let mut text = self.master.to_keychain_text().expose().to_owned();
        for (id, key) in &self.tenants {
            let kind = if self.adopting.contains(id) {
                "adopting"
            } else {
                "tenant"
            };
            text.push_str(&format!(
                "\n{kind} {id} {}",
                key.to_keychain_text().expose()
            ));
        }
        if let Some(teams) = &self.teams {
            text.push_str(&format!("\nteams {}", B64.encode(teams.expose())));
        }
        for (id, version) in &self.policies {
            text.push_str(&format!("\npolicy {id} {version}"));
        }
        let out = SecretText::new(text.as_str());
        text.zeroize();
        out
    }

    /// Decodes the keychain entry.
    pub fn from_keychain_text(text: &SecretText) -> Result<Self, CryptoError> {
        let mut lines = text.expose().lines();
        let master =
            MasterKey::from_keychain_text(&SecretText::new(lines.next().unwrap_or_default()))?;
        let mut tenants = std::collections::BTreeMap::new();
        let mut adopting = std::collections::BTreeSet::new();
        let mut teams = None;
        let mut policies = std::collections::BTreeMap::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("teams"), Some(encoded), None, None) => {
                    let mut bytes = B64.decode(encoded).map_err(|_| CryptoError::BadKey)?;
                    let text = String::from_utf8(bytes.clone()).map_err(|_| CryptoError::BadKey);
                    bytes.zeroize();
                    teams = Some(SecretText::new(text?));
                }
                (Some("policy"), Some(id), Some(version), None) => {
                    let version = version.parse().map_err(|_| CryptoError::BadKey)?;
                    policies.insert(id.to_owned(), version);
                }
                (Some(kind @ ("tenant" | "adopting")), Some(id), Some(key), None) => {
                    tenants.insert(
                        id.to_owned(),
                        TenantKey::from_keychain_text(&SecretText::new(key))?,
                    );
                    if kind == "adopting" {
                        adopting.insert(id.to_owned());
                    }
                }
                _ => return Err(CryptoError::BadKey),
            }
        }
        Ok(Self {
            master,
            tenants,
            adopting,
            teams,
            policies,
        })
    }
}

impl MasterKey {
    /// Whether `other` is the same key (compared in constant time).
    pub fn same_as(&self, other: &MasterKey) -> bool {
        self.0
            .iter()
            .zip(&other.0)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl MasterKey {
    /// The fingerprint key derived from this master key.
    pub fn fingerprint_key(&self) -> FingerprintKey {
        FingerprintKey(self.derive(b"grantkeeper/fingerprint-key/v1"))
    }

    /// A key for one purpose, derived from this master key (HMAC-SHA-256 over `label`); the
    /// usage history's key is one ([`MasterKey::history_key`]).
    pub(crate) fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }
}

impl DataKey {
    /// A MAC (HMAC-SHA-256 under a key derived from this data key) over `fields`, bound to
    /// `aad`: authenticates settings stored in plain text, so a change made without the key is
    /// detected.
    pub fn mac<F: AsRef<[u8]>>(&self, aad: &Aad, fields: &[F]) -> Vec<u8> {
        self.settings_mac(aad, fields)
            .finalize()
            .into_bytes()
            .to_vec()
    }

    /// Whether `tag` is the [`DataKey::mac`] of `fields` (compared in constant time).
    pub fn verify_mac<F: AsRef<[u8]>>(&self, aad: &Aad, fields: &[F], tag: &[u8]) -> bool {
        self.settings_mac(aad, fields).verify_slice(tag).is_ok()
    }

    fn settings_mac<F: AsRef<[u8]>>(&self, aad: &Aad, fields: &[F]) -> Hmac<Sha256> {
        let mut sub = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        sub.update(b"grantkeeper/settings-key/v1");
        let mut key: [u8; 32] = sub.finalize().into_bytes().into();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        key.zeroize();
        mac.update(aad.0.as_bytes());
        for f in fields {
            let f = f.as_ref();
            mac.update(&(f.len() as u64).to_be_bytes());
            mac.update(f);
        }
        mac
    }

    /// Encrypts `plaintext`, bound to `aad`.
    pub fn seal(&self, aad: &Aad, plaintext: &str) -> Vec<u8> {
        seal_raw(&self.0, aad, plaintext.as_bytes())
    }

    /// Decrypts a blob made by [`DataKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &Aad, blob: &[u8]) -> Result<SecretText, CryptoError> {
        let plain = open_raw(&self.0, aad, blob)?;
        let text = String::from_utf8(plain).map_err(|e| {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            CryptoError::Format
        })?;
        Ok(SecretText::new(text))
    }
}

impl FingerprintKey {
    /// A token's fingerprint: `gkfp1:` and the first 128 bits of HMAC-SHA-256, in hex.
    /// It matches a leaked token to its history without storing the token.
    pub fn fingerprint(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("any key length");
        mac.update(token.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(6 + 32);
        out.push_str("gkfp1:");
        for b in &digest[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// Associated data that binds a ciphertext to where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aad(String);

impl Aad {
    /// For a tenant's wrapped data key.
    pub fn data_key(vault: &str, tenant: &str) -> Self {
        Self(format!("gk1|dek|{vault}|{tenant}"))
    }

    /// For a tenant's data key wrapped by its tenant key (in the keychain).
    pub fn tenant_data_key(vault: &str, tenant: &str) -> Self {
        Self(format!("gk2|dek|{vault}|{tenant}"))
    }

    /// For the settings of one row of a tenant's table (a MAC, not a ciphertext).
    pub fn settings(vault: &str, tenant: &str, table: &str, row: &str) -> Self {
        Self(format!("gk1|mac|{vault}|{tenant}|{table}|{row}"))
    }

    /// For a secret column of one row of a tenant's table.
    pub fn column(vault: &str, tenant: &str, table: &str, column: &str, row: &str) -> Self {
        Self(format!("gk1|col|{vault}|{tenant}|{table}|{column}|{row}"))
    }
}

fn seal_raw(key: &[u8; 32], aad: &Aad, plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: aad.0.as_bytes(),
            },
        )
        .expect("AES-GCM encryption cannot fail for in-memory buffers");
    let mut blob = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    blob.push(BLOB_VERSION);
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&ct);
    blob
}

fn open_raw(key: &[u8; 32], aad: &Aad, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < 1 + NONCE_LEN + 16 || blob[0] != BLOB_VERSION {
        return Err(CryptoError::Format);
    }
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(&blob[1..1 + NONCE_LEN]),
            Payload {
                msg: &blob[1 + NONCE_LEN..],
                aad: aad.0.as_bytes(),
            },
        )
        .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(row: &str) -> Aad {
        Aad::column("v", "t1", "connections", "access_token", row)
    }

    #[test]
    fn round_trip_and_binding() {
        let k = DataKey::generate();
        let blob = k.seal(&aad("r1"), "hello");
        assert_eq!(k.open(&aad("r1"), &blob).unwrap().expose(), "hello");
        assert!(matches!(
            k.open(&aad("r2"), &blob),
            Err(CryptoError::Decrypt)
        ));
        let other_tenant = Aad::column("v", "t2", "connections", "access_token", "r1");
        assert!(k.open(&other_tenant, &blob).is_err());
        assert!(DataKey::generate().open(&aad("r1"), &blob).is_err());
        let mut tampered = blob.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open(&aad("r1"), &tampered).is_err());
        assert!(matches!(
            k.open(&aad("r1"), &blob[..5]),
            Err(CryptoError::Format)
        ));
    }

    #[test]
    fn nonces_are_fresh() {
        let k = DataKey::generate();
        assert_ne!(k.seal(&aad("r"), "x"), k.seal(&aad("r"), "x"));
    }

    #[test]
    fn wrap_unwrap_and_keychain_text() {
        let m = MasterKey::generate();
        let d = DataKey::generate();
        let a = Aad::data_key("v", "t");
        let wrapped = m.wrap(&d, &a);
        let d2 = m.unwrap_key(&wrapped, &a).unwrap();
        assert_eq!(d.0, d2.0);
        assert!(m.unwrap_key(&wrapped, &Aad::data_key("v", "u")).is_err());
        let m2 = MasterKey::from_keychain_text(&m.to_keychain_text()).unwrap();
        assert_eq!(m.0, m2.0);
        assert!(MasterKey::from_keychain_text(&SecretText::new("short")).is_err());
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let m = MasterKey::generate();
        let f = m.fingerprint_key();
        assert_eq!(f.fingerprint("tok"), m.fingerprint_key().fingerprint("tok"));
        assert_ne!(f.fingerprint("tok"), f.fingerprint("tok2"));
        assert_ne!(
            f.fingerprint("tok"),
            MasterKey::generate().fingerprint_key().fingerprint("tok")
        );
        assert!(f.fingerprint("tok").starts_with("gkfp1:"));
    }
}

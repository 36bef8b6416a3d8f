//! Client certificates for mutual-TLS client authentication (RFC 8705): a provider app's
//! certificate chain and private key, kept together in the keychain. For
//! `self_signed_tls_client_auth` Grantkeeper generates a P-256 key and a self-signed certificate
//! (registered at the provider as a JWK with `x5c`); for `tls_client_auth` the user imports a
//! certificate issued by a CA the provider trusts, with its key (PEM).

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rand::RngCore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::assertion::ClientKey;
use super::OAuthError;
use crate::secret::SecretText;

/// How long a generated certificate is valid.
const VALID_DAYS: i64 = 3650;

/// A client certificate with its private key. `Debug` shows the certificate's thumbprint only;
/// the key is zeroized on drop.
#[derive(Clone)]
pub struct ClientCertificate {
    /// DER certificates, the client's own first.
    chain: Vec<Vec<u8>>,
    /// The private key as PEM (PKCS #8, SEC1 or PKCS #1).
    key_pem: Zeroizing<String>,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t#S256", &self.thumbprint())
            .finish()
    }
}

impl ClientCertificate {
    /// A new P-256 key and a self-signed certificate for it, naming `client_id`.
    pub fn generate_self_signed(client_id: &str) -> Result<Self, OAuthError> {
        let failed = |what: &str| OAuthError::Config(format!("cannot make a certificate: {what}"));
        let key = loop {
            let mut scalar = Zeroizing::new([0u8; 32]);
            rand::rngs::OsRng.fill_bytes(scalar.as_mut());
            if let Ok(k) = SigningKey::from_slice(scalar.as_ref()) {
                break k;
            }
        };
        let spki = key
            .verifying_key()
            .to_public_key_der()
            .map_err(|_| failed("the public key"))?;
        let now = chrono::Utc::now();
        let name: String = format!("grantkeeper {client_id}")
            .chars()
            .take(64)
            .collect();
        let cert = self_signed_der(
            &key,
            &name,
            spki.as_bytes(),
            now - chrono::Duration::hours(1),
            now + chrono::Duration::days(VALID_DAYS),
        );
        let pkcs8 = key.to_pkcs8_der().map_err(|_| failed("the private key"))?;
        let key_pem = Zeroizing::new(pem_block("PRIVATE KEY", pkcs8.as_bytes()));
        Self::checked(vec![cert], key_pem)
    }

    /// A certificate chain and key from PEM text (one file, or the certificate and key files
    /// joined): the client's certificate first, then any intermediates, and an unencrypted
    /// private key (PKCS #8, SEC1 or PKCS #1) that must belong to the certificate. Messages
    /// never hold any part of the key.
    pub fn from_pem(pem: &SecretText) -> Result<Self, OAuthError> {
        let text = pem.expose();
        let refuse =
            |why: &str| OAuthError::Config(format!("the certificate file cannot be used: {why}"));
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(refuse(
                "its key is encrypted; decrypt it first (openssl pkcs8 -in KEY.pem -out KEY-plain.pem)",
            ));
        }
        let chain: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(text.as_bytes())
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|_| refuse("a certificate in it cannot be read"))?;
        if chain.is_empty() {
            return Err(refuse(
                "it holds no certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(text.as_bytes())
            .map_err(|_| refuse("it holds no private key (-----BEGIN PRIVATE KEY-----); give the key file too (--key-file)"))?;
        let key_pem = Zeroizing::new(match &key {
            PrivateKeyDer::Pkcs1(k) => pem_block("RSA PRIVATE KEY", k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => pem_block("EC PRIVATE KEY", k.secret_sec1_der()),
            PrivateKeyDer::Pkcs8(k) => pem_block("PRIVATE KEY", k.secret_pkcs8_der()),
            _ => {
                return Err(refuse(
                    "its private key is of a kind Grantkeeper cannot use",
                ))
            }
        });
        Self::checked(chain, key_pem).map_err(|e| match e {
            OAuthError::Config(m) => refuse(&m),
            other => other,
        })
    }

    /// The certificate kept by [`ClientCertificate::to_secret`].
    pub fn from_secret(text: &SecretText) -> Result<Self, OAuthError> {
        Self::from_pem(text).map_err(|_| {
            OAuthError::Config("the provider app's client certificate in the keychain is unusable: register the app again (provider delete, then provider add)".into())
        })
    }

    /// `chain` and `key_pem` once rustls has loaded the key and found it is the certificate's.
    fn checked(chain: Vec<Vec<u8>>, key_pem: Zeroizing<String>) -> Result<Self, OAuthError> {
        let mismatch =
            || OAuthError::Config("its private key does not belong to its certificate".into());
        let cert = Self { chain, key_pem };
        let provider = rustls::crypto::ring::default_provider();
        let certified =
            rustls::sign::CertifiedKey::from_der(cert.chain_der(), cert.key_der()?, &provider)
                .map_err(|e| {
                    match e {
            rustls::Error::InconsistentKeys(_) => mismatch(),
            _ => OAuthError::Config(
                "its private key is not one TLS can sign with (RSA, P-256, P-384 or Ed25519)"
                    .into(),
            ),
        }
                })?;
        // `from_der` lets a key whose public half it cannot tell pass; this one must match.
        certified.keys_match().map_err(|_| mismatch())?;
        Ok(cert)
    }

    fn chain_der(&self) -> Vec<CertificateDer<'static>> {
        self.chain
            .iter()
            .map(|c| CertificateDer::from(c.clone()))
            .collect()
    }

    fn key_der(&self) -> Result<PrivateKeyDer<'static>, OAuthError> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| OAuthError::Config("the certificate's key cannot be read".into()))
    }

    /// What the keychain keeps: the chain and the key, PEM.
    pub fn to_secret(&self) -> SecretText {
        let mut text = self.certificate_pem();
        text.push_str(&self.key_pem);
        SecretText::new(text)
    }

    /// The certificate chain, PEM, to register at the provider (no key).
    pub fn certificate_pem(&self) -> String {
        self.chain
            .iter()
            .map(|c| pem_block("CERTIFICATE", c))
            .collect()
    }

    /// The client certificate's SHA-256 thumbprint (`x5t#S256`, RFC 8705 §3.1), which a
    /// certificate-bound token's `cnf` names.
    pub fn thumbprint(&self) -> String {
        B64URL.encode(Sha256::digest(&self.chain[0]))
    }

    /// The public JWK to register for `self_signed_tls_client_auth` (RFC 8705 §2.2): the key's
    /// coordinates with the certificate in `x5c`. `None` for a key that is not P-256.
    pub fn public_jwk(&self) -> Option<serde_json::Value> {
        let key = Zeroizing::new(self.key_der().ok()?.secret_der().to_vec());
        let signing = <SigningKey as p256::pkcs8::DecodePrivateKey>::from_pkcs8_der(&key).ok()?;
        let mut jwk = ClientKey::from_signing_key(&signing).ok()?.public_jwk();
        let obj = jwk.as_object_mut()?;
        obj.remove("alg");
        obj.insert(
            "x5c".into(),
            serde_json::json!([B64.encode(&self.chain[0])]),
        );
        Some(jwk)
    }

    /// The certificate and key as the HTTP client presents them ([`crate::http::HttpClient::for_app`]).
    pub fn tls_identity(&self) -> Result<ureq::tls::ClientCert, OAuthError> {
        use ureq::tls::{Certificate, PrivateKey};
        let chain: Vec<Certificate<'static>> = self
            .chain
            .iter()
            .map(|c| Certificate::from_der(c).to_owned())
            .collect();
        let key = PrivateKey::from_pem(self.key_pem.as_bytes())
            .map_err(|_| OAuthError::Config("the certificate's key cannot be read".into()))?;
        Ok(ureq::tls::ClientCert::new_with_certs(&chain, key))
    }
}

/// Whether an access token is bound to the certificate with `thumbprint` (RFC 8705 §3.1): the
/// `cnf` claim of the token itself when it is a JWT, else the `cnf` its introspection answers
/// (`introspect`, asked only then).
pub(crate) fn bound_to(
    thumbprint: &str,
    access_token: &str,
    introspect: impl FnOnce() -> Option<serde_json::Map<String, serde_json::Value>>,
) -> bool {
    let names = |claims: &serde_json::Map<String, serde_json::Value>| {
        claims
            .get("cnf")
            .and_then(|c| c.get("x5t#S256"))
            .and_then(serde_json::Value::as_str)
            == Some(thumbprint)
    };
    match super::jwt::DecodedJwt::decode(access_token) {
        Some(jwt) if jwt.claims.contains_key("cnf") => names(&jwt.claims),
        _ => introspect().is_some_and(|answer| names(&answer)),
    }
}

/// The DER certificates of a PEM text (a CA file), or why it cannot be used.
pub fn ca_certificates(pem: &str) -> Result<Arc<Vec<Vec<u8>>>, OAuthError> {
    let refuse = |why: &str| OAuthError::Config(format!("the CA file cannot be used: {why}"));
    let certs: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| refuse("a certificate in it cannot be read"))?;
    if certs.is_empty() {
        return Err(refuse(
            "it holds no certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    let mut store = rustls::RootCertStore::empty();
    let (_, ignored) =
        store.add_parsable_certificates(certs.iter().map(|c| CertificateDer::from(c.as_slice())));
    if ignored > 0 {
        return Err(refuse("a certificate in it is not a usable CA certificate"));
    }
    Ok(Arc::new(certs))
}

/// `der` as a PEM block labelled `label`.
fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A DER tag-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A UTCTime before 2050, a GeneralizedTime from then on (RFC 5280 §4.1.2.5).
fn time(t: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    use chrono::Datelike;
    if t.year() < 2050 {
        tlv(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes())
    } else {
        tlv(0x18, t.format("%Y%m%d%H%M%SZ").to_string().as_bytes())
    }
}

/// A self-signed X.509 v3 certificate for `key` with `name` as subject and issuer (CN).
fn self_signed_der(
    key: &SigningKey,
    name: &str,
    spki: &[u8],
    not_before: chrono::DateTime<chrono::Utc>,
    not_after: chrono::DateTime<chrono::Utc>,
) -> Vec<u8> {
    // ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters.
    let alg = seq(&[&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]]);
    // commonName (2.5.4.3) as a UTF8String.
    let cn = seq(&[&[0x06, 0x03, 0x55, 0x04, 0x03], &tlv(0x0c, name.as_bytes())]);
    let dn = seq(&[&tlv(0x31, &cn)]);
    let mut serial = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x40; // positive, 16 bytes long
    let version = tlv(0xa0, &tlv(0x02, &[2]));
    let tbs = seq(&[
        &version,
        &tlv(0x02, &serial),
        &alg,
        &dn,
        &seq(&[&time(not_before), &time(not_after)]),
        &dn,
        spki,
    ]);
    let signature: DerSignature = p256::ecdsa::signature::Signer::sign(key, &tbs);
    let mut bits = vec![0u8];
    bits.extend_from_slice(signature.as_bytes());
    seq(&[&tbs, &alg, &tlv(0x03, &bits)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_holds_its_key_and_round_trips_through_the_keychain_form() {
        let cert = ClientCertificate::generate_self_signed("gk-client").unwrap();
        let kept = cert.to_secret();
        assert!(kept.expose().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(kept.expose().contains("-----BEGIN PRIVATE KEY-----"));
        let back = ClientCertificate::from_secret(&kept).unwrap();
        assert_eq!(back.thumbprint(), cert.thumbprint());
        assert!(!cert.certificate_pem().contains("PRIVATE"));
        let jwk = cert.public_jwk().unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert!(jwk.get("d").is_none());
        let x5c = B64.decode(jwk["x5c"][0].as_str().unwrap()).unwrap();
        assert_eq!(B64URL.encode(Sha256::digest(&x5c)), cert.thumbprint());
        assert!(!format!("{cert:?}").contains("PRIVATE"));
        cert.tls_identity().unwrap();
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let a = ClientCertificate::generate_self_signed("a").unwrap();
        let b = ClientCertificate::generate_self_signed("b").unwrap();
        let mixed = format!("{}{}", a.certificate_pem(), b.key_pem.as_str());
        let e = ClientCertificate::from_pem(&SecretText::new(mixed))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not belong to its certificate"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
        let e = ClientCertificate::from_pem(&SecretText::new(a.certificate_pem()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no private key"), "{e}");
        let e = ClientCertificate::from_pem(&SecretText::new(b.key_pem.to_string()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    #[test]
    fn ca_files_must_hold_ca_certificates() {
        let a = ClientCertificate::generate_self_signed("a").unwrap();
        assert_eq!(ca_certificates(&a.certificate_pem()).unwrap().len(), 1);
        assert!(ca_certificates("nothing here").is_err());
    }
}

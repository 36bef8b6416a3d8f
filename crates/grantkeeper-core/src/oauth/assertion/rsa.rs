//! RSA keys for `private_key_jwt`: a user's own RSA key (PKCS #1 or PKCS #8, 2048 to 4096
//! bits) signs RS256 or PS256 assertions through `ring`; the public JWK is its modulus and
//! exponent.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use ring::rsa::PublicKeyComponents;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256, RSA_PSS_SHA256};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::oauth::OAuthError;

/// The JWS algorithm an RSA key signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 (MGF1 SHA-256, 32-byte salt).
    Ps256,
}

impl RsaAlg {
    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }

    /// The algorithm for a server that lists `supported`
    /// (`token_endpoint_auth_signing_alg_values_supported`): PS256 when listed (RFC 7518
    /// §3.5's probabilistic scheme with a security proof, and the one FAPI 2.0 profiles allow),
    /// else RS256 when listed or when the server lists nothing (every server that takes RSA
    /// assertions takes RS256). A list with neither is refused.
    pub fn for_server(supported: &[String]) -> Result<Self, OAuthError> {
        let lists = |alg: &str| supported.iter().any(|a| a == alg);
        if lists("PS256") {
            Ok(Self::Ps256)
        } else if lists("RS256") || supported.is_empty() {
            Ok(Self::Rs256)
        } else {
            Err(OAuthError::Config(format!(
                "the key file cannot be used: it is an RSA key, and the provider accepts client assertions signed with {} only, not RS256 or PS256; use a P-256 key (or leave out --key-file for a generated one)",
                supported.join(", ")
            )))
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            _ => None,
        }
    }
}

/// An RSA key pair with the algorithm it signs with. `Debug` shows the key id only.
#[derive(Clone)]
pub(super) struct RsaKey {
    /// The private key as given (PKCS #1 or PKCS #8 DER), zeroized on drop.
    der: Zeroizing<Vec<u8>>,
    /// The same key, ready to sign (ring zeroizes its private parts on drop).
    pair: Arc<RsaKeyPair>,
    pub(super) alg: RsaAlg,
    n: String,
    e: String,
    pub(super) kid: String,
}

impl RsaKey {
    /// A key from its DER (PKCS #8, else PKCS #1). `Err` holds why, never any part of the key.
    pub(super) fn from_der(der: &[u8], alg: RsaAlg) -> Result<Self, &'static str> {
        // PKCS #8 names rsaEncryption's OID; PKCS #1 is the bare key.
        let pkcs8 = der
            .windows(super::RSA_OID.len())
            .any(|w| w == super::RSA_OID);
        let pair = if pkcs8 {
            RsaKeyPair::from_pkcs8(der)
        } else {
            RsaKeyPair::from_der(der)
        };
        let pair = pair.map_err(|e| match e.to_string().as_str() {
                "TooSmall" => "it is an RSA key shorter than 2048 bits, too weak to sign with; make a longer one (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out KEY.pem)",
                "TooLarge" => "it is an RSA key longer than 4096 bits; use one of 2048 to 4096 bits",
                _ => "it is not a valid RSA private key",
            })?;
        let public: PublicKeyComponents<Vec<u8>> = pair.public().into();
        let (n, e) = (B64URL.encode(&public.n), B64URL.encode(&public.e));
        // RFC 7638 thumbprint: the required members in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        let kid = B64URL.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Self {
            der: Zeroizing::new(der.to_vec()),
            pair: Arc::new(pair),
            alg,
            n,
            e,
            kid,
        })
    }

    /// The kept form `ALG:base64(DER)` (base64 has no `:`, so it is told from a P-256 key's).
    pub(super) fn to_kept(&self) -> String {
        format!("{}:{}", self.alg.as_str(), B64.encode(self.der.as_slice()))
    }

    /// The key kept by [`RsaKey::to_kept`]; `None` if `text` is not one.
    pub(super) fn from_kept(text: &str) -> Option<Self> {
        let (alg, b64) = text.split_once(':')?;
        let alg = RsaAlg::parse(alg)?;
        let der = Zeroizing::new(B64.decode(b64).ok()?);
        Self::from_der(&der, alg).ok()
    }

    /// The public JWK.
    pub(super) fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA", "n": self.n, "e": self.e,
            "kid": self.kid, "use": "sig", "alg": self.alg.as_str(),
        })
    }

    /// The signature of `input` (RS256 is deterministic, PS256 salted from the OS's random
    /// source).
    pub(super) fn sign(&self, input: &[u8]) -> Result<Vec<u8>, OAuthError> {
        let padding: &'static dyn ring::signature::RsaEncoding = match self.alg {
            RsaAlg::Rs256 => &RSA_PKCS1_SHA256,
            RsaAlg::Ps256 => &RSA_PSS_SHA256,
        };
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        self.pair
            .sign(
                padding,
                &ring::rand::SystemRandom::new(),
                input,
                &mut signature,
            )
            .map_err(|_| {
                OAuthError::Config("signing the client assertion with the RSA key failed".into())
            })?;
        Ok(signature)
    }
}

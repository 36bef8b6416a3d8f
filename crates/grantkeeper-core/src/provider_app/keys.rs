//! A provider app's own keys: the public material it registers at its provider (JWK set,
//! certificate), and its private key or certificate from the keychain for its requests.

use ts_rs::TS;

use crate::catalog::ClientAuth;
use crate::error::{Error, Result};
use crate::model::ProviderApp;
use crate::oauth::assertion::ClientKey;
use crate::oauth::mtls::ClientCertificate;
use crate::secret::SecretText;
use crate::vault::TenantVault;

/// The PEM texts of a `private_key_jwt` key file or a `tls_client_auth` certificate file (with
/// its key in `key_file` when apart), as [`super::ProviderAppSpec`] takes them: with a
/// certificate, both files make one PEM. Nothing of a file is ever in an error.
pub fn read_key_files(
    key_file: Option<&std::path::Path>,
    cert_file: Option<&std::path::Path>,
) -> Result<(Option<SecretText>, Option<SecretText>)> {
    let read = |path: &std::path::Path, what: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            Error::Invalid(format!(
                "cannot read the {what} file {}: {e}",
                path.display()
            ))
        })
    };
    let mut key_pem = key_file
        .map(|p| read(p, "key").map(SecretText::new))
        .transpose()?;
    let cert_pem = match cert_file {
        Some(path) => {
            let mut text = read(path, "certificate")?;
            if let Some(key) = key_pem.take() {
                text.push('\n');
                text.push_str(key.expose());
            }
            Some(SecretText::new(text))
        }
        None => None,
    };
    Ok((key_pem, cert_pem))
}

/// The public material a provider app registers at its provider (never a private key).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, TS)]
#[ts(export)]
pub struct ClientPublicMaterial {
    /// Its public key as a JWK set (pretty JSON), for `private_key_jwt` and
    /// `self_signed_tls_client_auth`.
    pub jwks: Option<String>,
    /// Its client certificate (PEM), for `tls_client_auth` and `self_signed_tls_client_auth`.
    pub certificate_pem: Option<String>,
}

impl TenantVault<'_> {
    /// The public key a `private_key_jwt` or `self_signed_tls_client_auth` provider app
    /// registers at its provider, as a JWK set (`{"keys": [...]}`; for a certificate, the JWK
    /// with the certificate in `x5c`); the private key never leaves the keychain.
    pub fn client_jwk(&self, id_or_name: &str) -> Result<serde_json::Value> {
        let app = self.provider_app(id_or_name)?;
        if app.client_auth == Some(ClientAuth::SelfSignedTlsClientAuth) {
            let jwk = self.app_certificate(&app)?.public_jwk().ok_or_else(|| {
                Error::Invalid("the app's certificate key is not a P-256 key".into())
            })?;
            return Ok(serde_json::json!({ "keys": [jwk] }));
        }
        if app.client_auth != Some(ClientAuth::PrivateKeyJwt) {
            return Err(Error::Invalid(format!(
                "provider app '{}/{}' has no key of its own: only an app registered with private_key_jwt has one",
                self.tenant().slug,
                app.name
            )));
        }
        Ok(serde_json::json!({ "keys": [self.app_key(&app)?.public_jwk()] }))
    }

    /// The client certificate (PEM, no key) of an app that authenticates with one, to register
    /// at its provider.
    pub fn client_certificate(&self, id_or_name: &str) -> Result<String> {
        let app = self.provider_app(id_or_name)?;
        if !app.client_auth.is_some_and(ClientAuth::uses_certificate) {
            return Err(Error::Invalid(format!(
                "provider app '{}/{}' has no client certificate: only an app registered with tls_client_auth or self_signed_tls_client_auth has one",
                self.tenant().slug,
                app.name
            )));
        }
        Ok(self.app_certificate(&app)?.certificate_pem())
    }

    /// What an app authenticating with a key of its own registers at its provider, public
    /// material only (the same [`Self::client_jwk`] and [`Self::client_certificate`] the CLI's
    /// `provider jwk` and `provider certificate` print); nothing for any other app.
    pub fn client_public_material(&self, id_or_name: &str) -> Result<ClientPublicMaterial> {
        let app = self.provider_app(id_or_name)?;
        let auth = app.client_auth;
        let with_jwk = matches!(
            auth,
            Some(ClientAuth::PrivateKeyJwt | ClientAuth::SelfSignedTlsClientAuth)
        );
        let jwks = match with_jwk {
            true => Some(
                serde_json::to_string_pretty(&self.client_jwk(id_or_name)?)
                    .map_err(|e| Error::Invalid(format!("the public key cannot be shown: {e}")))?,
            ),
            false => None,
        };
        let certificate_pem = match auth.is_some_and(ClientAuth::uses_certificate) {
            true => Some(self.client_certificate(id_or_name)?),
            false => None,
        };
        Ok(ClientPublicMaterial {
            jwks,
            certificate_pem,
        })
    }

    /// A certificate app's certificate and key, from the keychain.
    pub(super) fn app_certificate(&self, app: &ProviderApp) -> Result<ClientCertificate> {
        let text = self.stored_client_key(app, "client certificate", "")?;
        Ok(ClientCertificate::from_secret(&text)?)
    }

    /// A `private_key_jwt` app's key, from the keychain.
    pub(super) fn app_key(&self, app: &ProviderApp) -> Result<ClientKey> {
        let text = self.stored_client_key(
            app,
            "private key",
            " and its new public key at the provider",
        )?;
        Ok(ClientKey::from_secret(&text)?)
    }

    /// The app's stored key material, or an error naming `what` is missing and how to register
    /// the app again (`and_then` adds what else to register).
    fn stored_client_key(
        &self,
        app: &ProviderApp,
        what: &str,
        and_then: &str,
    ) -> Result<SecretText> {
        self.client_key(&app.id)?.ok_or_else(|| {
            Error::Invalid(format!(
                "the {what} of provider app '{}/{}' is missing from the system keyring: register the app again (provider delete, then provider add){and_then}",
                self.tenant().slug,
                app.name
            ))
        })
    }
}

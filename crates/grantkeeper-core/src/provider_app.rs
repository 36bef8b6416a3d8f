//! Provider apps: registered from what a user knows (a catalog preset, an issuer URL, or
//! explicit endpoints; the CLI's `provider add` and the app's connect wizard both go through
//! [`TenantVault::register_provider_app`]), and used through one `AppContext` by sign-ins,
//! refreshes, revocation and introspection alike.

mod edit;
mod keys;
mod registration;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use ts_rs::TS;

use crate::audit::Actor;
use crate::catalog::{ApiSpec, ApiTarget, Catalog, ClientAuth, Preset, Revocation};
use crate::error::{Error, Result};
use crate::model::{Connection, Endpoints, ProviderApp, RedirectMode};
use crate::oauth::assertion::ClientKey;
use crate::oauth::dpop::DpopKey;
use crate::oauth::flow::{Client, Quirks};
use crate::oauth::mtls::{self, ClientCertificate};
use crate::oauth::normalize::Wire;
use crate::oauth::protocol::ProviderClient;
use crate::oauth::{discovery, OAuthError};
use crate::secret::{ClientSecret, SecretText};
use crate::vault::{NewProviderApp, TenantVault};

pub use edit::{ProviderAppEdit, ProviderAppEdited};
pub use keys::{read_key_files, ClientPublicMaterial};
pub use registration::{
    registration, ClientKind, Registration, RegistrationDraft, RegistrationField,
    RegistrationProblem, DEFAULT_FIXED_PORT,
};

/// Where a provider app's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, TS)]
#[ts(export)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EndpointSource {
    /// The preset's endpoints, its placeholders filled from `vars` (e.g. `domain`).
    Preset {
        /// Placeholder values.
        vars: BTreeMap<String, String>,
    },
    /// Discovered from the issuer (OIDC discovery, then RFC 8414). With a preset, its quirks
    /// and scopes still apply (a self-hosted server).
    Issuer {
        /// The issuer URL.
        issuer: String,
    },
    /// Given explicitly.
    Explicit {
        /// Authorization endpoint.
        authorization: String,
        /// Token endpoint.
        token: String,
        /// Revocation endpoint (RFC 7009), if any.
        revocation: Option<String>,
    },
}

/// A provider app to register.
#[derive(Debug, Deserialize, TS)]
#[ts(export)]
pub struct ProviderAppSpec {
    /// Display name, unique in the tenant.
    pub name: String,
    /// Catalog preset, if any.
    pub preset: Option<String>,
    /// Where the endpoints come from.
    pub endpoints: EndpointSource,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret, for confidential clients.
    #[ts(type = "string | null")]
    pub client_secret: Option<ClientSecret>,
    /// How the app authenticates at the provider: with its client secret
    /// (`client_secret_basic`, `client_secret_post`), as a public client (`none`), or with a
    /// key pair Grantkeeper generates (`private_key_jwt`; the public key to register is
    /// [`TenantVault::client_jwk`]). `None`: as the preset says (HTTP Basic without one), or a
    /// public client without a secret.
    #[serde(default)]
    #[ts(optional)]
    pub client_auth: Option<ClientAuth>,
    /// Whether its grants are bound to a DPoP key (RFC 9449): `None` when the provider's
    /// discovery offers DPoP (`dpop_signing_alg_values_supported`).
    #[serde(default)]
    #[ts(optional)]
    pub dpop: Option<bool>,
    /// For `private_key_jwt`: the user's own key pair (a PEM file's text: PKCS #8 P-256, or RSA)
    /// instead of a generated one. It moves to the keychain; the command line only.
    #[serde(skip)]
    #[ts(skip)]
    pub client_key_pem: Option<SecretText>,
    /// For `tls_client_auth`: the client certificate (and any intermediates) with its private
    /// key, PEM. The key moves to the keychain; the command line only.
    #[serde(skip)]
    #[ts(skip)]
    pub client_cert_pem: Option<SecretText>,
    /// PEM certificates of CAs the provider's endpoints chain to, trusted besides the public
    /// roots (an enterprise's own CA); the command line only.
    #[serde(skip)]
    #[ts(skip)]
    pub trusted_ca_pem: Option<String>,
    /// Scopes asked for by default; the preset's defaults (else `openid offline_access`) when
    /// `None`.
    pub scopes: Option<Vec<String>>,
    /// Redirect mode; when `None`, loopback unless the preset allows only HTTPS redirects
    /// (then relay when a relay page is given, else paste).
    pub redirect: Option<RedirectMode>,
    /// Fixed loopback port, if the registration needs one.
    pub port: Option<u16>,
    /// The HTTPS relay page registered as redirect URI, if any.
    pub relay_url: Option<String>,
}

impl TenantVault<'_> {
    /// Resolves `spec` (discovery needs the network) and registers the app.
    pub fn register_provider_app(
        &self,
        spec: ProviderAppSpec,
        actor: &Actor,
    ) -> Result<ProviderApp> {
        let preset = Catalog::preset_named(spec.preset.as_deref())?;
        let mut advertised = Vec::new();
        let mut signing_algs = Vec::new();
        let invalid = |e: crate::catalog::CatalogError| Error::Invalid(e.to_string());
        let roots = match &spec.trusted_ca_pem {
            Some(pem) => mtls::ca_certificates(pem)?,
            None => Default::default(),
        };
        let with_certificate = spec.client_auth.is_some_and(ClientAuth::uses_certificate);
        let mut endpoints = match (&spec.endpoints, preset) {
            (EndpointSource::Issuer { issuer }, _) => {
                let http = self.vault.http.for_app(None, &roots);
                let meta = discovery::discover(&http, issuer)?;
                advertised = meta.token_endpoint_auth_methods_supported.clone();
                signing_algs = meta
                    .token_endpoint_auth_signing_alg_values_supported
                    .clone();
                meta.endpoints_for(with_certificate)
            }
            (EndpointSource::Preset { vars }, Some(p)) => {
                let mut e = p.resolve(vars).map_err(invalid)?;
                e.revocation = p.revocation_url(vars, &spec.client_id).map_err(invalid)?;
                // A preset that names only its issuer: its endpoints are discovered now and
                // kept (authenticated with the rest), so refresh, revocation and
                // introspection reach them without another discovery. Offline, the app keeps
                // its issuer alone, and they are discovered when it is used.
                if e.token.is_none() {
                    if let Some(issuer) = e.issuer.clone() {
                        match self.vault.discover(&issuer) {
                            Ok(found) => e.fill_missing_from(found),
                            Err(err) => {
                                tracing::info!(error = %err, "discovery at registration failed; the endpoints will be discovered at first use")
                            }
                        }
                    }
                }
                e
            }
            (EndpointSource::Preset { .. }, None) => {
                return Err(Error::Invalid(
                    "choose a preset, an issuer URL, or explicit endpoints".into(),
                ))
            }
            (
                EndpointSource::Explicit {
                    authorization,
                    token,
                    revocation,
                },
                _,
            ) => Endpoints {
                authorization: Some(authorization.clone()),
                token: Some(token.clone()),
                revocation: revocation.clone(),
                ..Endpoints::default()
            },
        };
        // Revocation goes where the app was registered, in every style: with an issuer given
        // instead of the preset's hosts, to the preset's revocation path on the issuer's host
        // (unless discovery names an RFC 7009 endpoint), never to the preset's public host.
        if let (EndpointSource::Issuer { issuer }, Some(p)) = (&spec.endpoints, preset) {
            let rfc7009 = matches!(p.revocation, Revocation::Rfc7009);
            if !rfc7009 || endpoints.revocation.is_none() {
                let origin = url::Url::parse(issuer)
                    .map_err(|_| Error::Invalid(format!("'{issuer}' is not a valid URL")))?;
                endpoints.revocation = p.revocation_url_at(&origin, &spec.client_id);
            }
        }
        if let (Some(p), Some(method)) = (preset, spec.client_auth) {
            Catalog::check_auth_method(p, method).map_err(invalid)?;
        }
        let has_secret = spec.client_secret.is_some();
        let preset_auth = preset.map_or(ClientAuth::ClientSecretBasic, |p| p.client_auth);
        let client_auth = spec
            .client_auth
            .or_else(|| default_client_auth(preset_auth, has_secret, &advertised));
        endpoints.trusted_ca = spec.trusted_ca_pem.clone();
        let client_key = client_key_for(
            client_auth,
            has_secret,
            spec.client_key_pem.as_ref(),
            spec.client_cert_pem.as_ref(),
            &spec.client_id,
            &signing_algs,
        )?;
        let settings = registration(&RegistrationDraft {
            preset: spec.preset.clone(),
            redirect: spec.redirect,
            port: spec.port,
            relay_url: spec.relay_url.clone(),
            scopes: spec.scopes.clone(),
            has_client_secret: has_secret,
            client_auth,
        })?;
        self.add_provider_app(
            NewProviderApp {
                name: spec.name,
                preset: spec.preset,
                endpoints,
                client_id: spec.client_id,
                client_secret: spec.client_secret,
                client_auth,
                client_key,
                dpop: spec.dpop,
                redirect_mode: settings.redirect,
                redirect_port: settings.port,
                relay_url: spec.relay_url,
                default_scopes: settings.scopes,
            },
            actor,
        )
    }
}

/// When a provider app's issuer is asked for fresh metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discovery {
    /// At every sign-in: the RFC 9207 flag, the JWKS and any endpoint not stored. When the
    /// issuer cannot be reached, the stored endpoints are used (if they name a token endpoint).
    AtSignIn,
    /// Only when the token endpoint is not stored (an app registered with its issuer alone).
    WhenMissing,
}

/// A provider app as requests to its provider need it: the stored app, its endpoints completed
/// from its issuer when needed, its catalog preset with its quirks, and its client.
#[derive(Debug)]
pub(crate) struct AppContext {
    pub(crate) app: ProviderApp,
    pub(crate) preset: Option<&'static Preset>,
    pub(crate) quirks: Quirks,
    pub(crate) client: Client,
    /// The issuer puts `iss` in its redirects (RFC 9207), from the metadata of a sign-in.
    pub(crate) iss_required: bool,
    /// Where authorization requests are pushed (RFC 9126), from the metadata of a sign-in:
    /// whenever the issuer advertises the endpoint.
    pub(crate) par_endpoint: Option<String>,
    /// Whether the issuer takes DPoP proofs, from the metadata of a sign-in.
    pub(crate) dpop_offered: bool,
    /// The DPoP key of the grant the requests are for: a new one for a sign-in that binds its
    /// tokens, the connection's own for a bound grant.
    pub(crate) dpop: Option<DpopKey>,
    /// The app's client certificate, when it authenticates with one (mutual TLS).
    pub(crate) certificate: Option<ClientCertificate>,
    /// The client its requests go through: the vault's, presenting the app's certificate and
    /// trusting its CA when it has them.
    pub(crate) http: crate::http::HttpClient,
}

impl AppContext {
    /// The app's OAuth client, its requests sent through `http`.
    pub(crate) fn protocol<'a>(&'a self, http: &'a crate::http::HttpClient) -> ProviderClient<'a> {
        ProviderClient::new(
            &self.app.endpoints,
            &self.client,
            &self.quirks,
            Wire::Http(http),
        )
        .proving(self.dpop.as_ref())
    }

    /// Whether a new sign-in binds its tokens to a DPoP key: as the app says, else when the
    /// issuer offers DPoP.
    pub(crate) fn binds_with_dpop(&self) -> bool {
        self.app.dpop.unwrap_or(self.dpop_offered)
    }

    /// The context with a new DPoP key when a new sign-in binds its tokens to one.
    pub(crate) fn for_sign_in(mut self) -> Self {
        self.dpop = self.binds_with_dpop().then(DpopKey::generate);
        self
    }

    /// Where this app revokes grants: the URL stored at registration. Apps registered before
    /// Grantkeeper stored it for every style fall back to the preset's URL only while they use
    /// the preset's own hosts; any other app must be registered again.
    pub(crate) fn revocation_url(&self) -> Result<String, OAuthError> {
        if let Some(url) = &self.app.endpoints.revocation {
            return Ok(url.clone());
        }
        let none = std::collections::BTreeMap::new();
        let preset_default = self.preset.and_then(|p| {
            let defaults = p.resolve(&none).ok()?;
            (defaults.token == self.app.endpoints.token)
                .then(|| p.revocation_url(&none, &self.client.id).ok().flatten())
                .flatten()
        });
        preset_default.ok_or_else(|| {
            OAuthError::Config(
                "the provider app has no revocation endpoint: revoke the grant in the provider's own console, or register the app again with its revocation endpoint".into(),
            )
        })
    }

    /// Whether sign-ins are OpenID Connect (an issuer, and a preset that does not say otherwise).
    pub(crate) fn oidc(&self) -> bool {
        self.preset.is_none_or(|p| p.oidc) && self.app.endpoints.issuer.is_some()
    }

    /// The catalog's access-token lifetime for answers that give none.
    pub(crate) fn default_access_secs(&self) -> Option<u64> {
        self.preset.and_then(|p| p.expiry.access_default_secs)
    }
}

impl TenantVault<'_> {
    /// The context every request for `app` goes through: the one preset lookup, discovery as
    /// `when` says, the quirks and the client with its secret.
    pub(crate) fn app_context(&self, mut app: ProviderApp, when: Discovery) -> Result<AppContext> {
        let preset = Catalog::preset_named(app.preset.as_deref())?;
        let mut iss_required = false;
        let mut par_endpoint = None;
        let mut dpop_offered = false;
        let missing = app.endpoints.token.is_none();
        let certificate = match app.client_auth {
            Some(auth) if auth.uses_certificate() => Some(self.app_certificate(&app)?),
            _ => None,
        };
        let roots = match &app.endpoints.trusted_ca {
            Some(pem) => mtls::ca_certificates(pem)?,
            None => Default::default(),
        };
        let http = match &certificate {
            None if roots.is_empty() => self.vault.http.clone(),
            None => self.vault.http.for_app(None, &roots),
            Some(c) => self.vault.http.for_app(Some(c.tls_identity()?), &roots),
        };
        if let Some(issuer) = app.endpoints.issuer.clone() {
            if when == Discovery::AtSignIn || missing {
                match discovery::discover(&http, &issuer) {
                    Ok(meta) => {
                        let mtls = certificate.is_some();
                        iss_required = meta.authorization_response_iss_parameter_supported;
                        par_endpoint = meta.par_endpoint_for(mtls);
                        dpop_offered = meta.offers_dpop();
                        app.endpoints.fill_missing_from(meta.endpoints_for(mtls));
                    }
                    Err(e @ OAuthError::IssuerMismatch { .. }) => return Err(Error::OAuth(e)),
                    Err(e) if missing => return Err(Error::OAuth(e)),
                    Err(e) => {
                        tracing::warn!(error = %e, "discovery failed; using the stored endpoints")
                    }
                }
            }
        }
        let mut quirks = Quirks::new(preset, app.has_client_secret);
        if let Some(auth) = app.client_auth {
            quirks.client_auth = auth;
        }
        let key = match quirks.client_auth {
            ClientAuth::PrivateKeyJwt => Some(self.app_key(&app)?),
            _ => None,
        };
        let client = Client {
            id: app.client_id.clone(),
            secret: self.client_secret(&app.id)?,
            key,
        };
        Ok(AppContext {
            app,
            preset,
            quirks,
            client,
            iss_required,
            par_endpoint,
            dpop_offered,
            dpop: None,
            certificate,
            http,
        })
    }
}

impl TenantVault<'_> {
    /// What the catalog knows about a connection's API (nothing for a provider app without a
    /// preset).
    pub fn api_spec(&self, connection: &Connection) -> Result<ApiSpec> {
        let app = self.connection_app(connection)?;
        Ok(Catalog::preset_named(app.preset.as_deref())?
            .map(|p| p.api.clone())
            .unwrap_or_default())
    }

    /// Where a connection's API requests go, and the headers they need: see
    /// [`ApiSpec::resolve`].
    pub fn api_target(
        &self,
        connection: &Connection,
        base_override: Option<&str>,
        values: &BTreeMap<String, String>,
    ) -> Result<ApiTarget> {
        self.api_spec(connection)?
            .resolve(base_override, &connection.metadata, values)
            .map_err(|e| Error::Invalid(e.to_string()))
    }
}

/// How an app registered without a chosen method authenticates, when discovery says the
/// server does not take the default (the preset's method, or HTTP Basic with a secret; a
/// public client without one): with a secret, the secret method it lists; without one, and no
/// public clients taken, `private_key_jwt` (a key pair is generated; its public key must then be
/// registered). `None`: the default stands.
pub(crate) fn default_client_auth(
    preset: ClientAuth,
    has_secret: bool,
    advertised: &[String],
) -> Option<ClientAuth> {
    let lists = |m: &str| advertised.iter().any(|a| a == m);
    if advertised.is_empty() {
        return None;
    }
    if has_secret {
        let default = match preset {
            ClientAuth::ClientSecretPost => "client_secret_post",
            _ => "client_secret_basic",
        };
        if lists(default) {
            return None;
        }
        if lists("client_secret_basic") {
            return Some(ClientAuth::ClientSecretBasic);
        }
        return lists("client_secret_post").then_some(ClientAuth::ClientSecretPost);
    }
    (!lists("none") && lists("private_key_jwt")).then_some(ClientAuth::PrivateKeyJwt)
}

/// The key a registration with `auth` needs, as the keychain keeps it: for `private_key_jwt`
/// the user's `key_pem` when given (an RSA key signs as the server's `signing_algs` allow), else
/// a key pair generated now; for `tls_client_auth` the
/// user's `cert_pem` (certificate and key); for `self_signed_tls_client_auth` a key and a
/// certificate generated now. `auth` is checked against whether a client secret was given.
fn client_key_for(
    auth: Option<ClientAuth>,
    has_secret: bool,
    key_pem: Option<&SecretText>,
    cert_pem: Option<&SecretText>,
    client_id: &str,
    signing_algs: &[String],
) -> Result<Option<SecretText>> {
    let uses_secret = matches!(
        auth,
        Some(ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost)
    );
    if has_secret && auth.is_some() && !uses_secret {
        return Err(Error::Invalid(format!(
            "{} sends no client secret: leave it out",
            auth.map_or("none", ClientAuth::as_str)
        )));
    }
    if key_pem.is_some() && auth != Some(ClientAuth::PrivateKeyJwt) {
        return Err(Error::Invalid(
            "a key file is used only with --auth private_key_jwt (or with a certificate file)"
                .into(),
        ));
    }
    if cert_pem.is_some() && auth != Some(ClientAuth::TlsClientAuth) {
        return Err(Error::Invalid(
            "a certificate file is used only with --auth tls_client_auth".into(),
        ));
    }
    match auth {
        Some(ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost) if !has_secret => {
            Err(Error::Invalid(
                "client_secret_basic and client_secret_post need the client secret".into(),
            ))
        }
        Some(ClientAuth::PrivateKeyJwt) => Ok(Some(match key_pem {
            Some(pem) => ClientKey::from_pem(pem, signing_algs)?.to_secret(),
            None => ClientKey::generate().to_secret(),
        })),
        Some(ClientAuth::TlsClientAuth) => match cert_pem {
            Some(pem) => Ok(Some(ClientCertificate::from_pem(pem)?.to_secret())),
            None => Err(Error::Invalid(
                "tls_client_auth needs the client certificate and its key (--cert-file, PEM); for a certificate Grantkeeper makes, use self_signed_tls_client_auth".into(),
            )),
        },
        Some(ClientAuth::SelfSignedTlsClientAuth) => Ok(Some(
            ClientCertificate::generate_self_signed(client_id)?.to_secret(),
        )),
        _ => Ok(None),
    }
}

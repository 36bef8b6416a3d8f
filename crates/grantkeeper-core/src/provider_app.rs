//! Registering a provider app from what a user knows: a catalog preset, an issuer URL
//! (discovery), or explicit endpoints. The CLI's `provider add` and the app's connect wizard
//! both go through [`TenantVault::register_provider_app`].

use std::collections::BTreeMap;

use serde::Deserialize;
use ts_rs::TS;

use crate::audit::Actor;
use crate::catalog::{Catalog, Revocation};
use crate::error::{Error, Result};
use crate::model::{Endpoints, ProviderApp, RedirectMode};
use crate::secret::ClientSecret;
use crate::vault::{NewProviderApp, TenantVault};

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
        let invalid = |e: crate::catalog::CatalogError| Error::Invalid(e.to_string());
        let mut endpoints = match (&spec.endpoints, preset) {
            (EndpointSource::Issuer { issuer }, _) => self.vault.discover(issuer)?,
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
        let default_scopes = match (spec.scopes, preset) {
            (Some(s), _) => s,
            (None, Some(p)) => p.default_scopes.clone(),
            (None, None) => vec!["openid".into(), "offline_access".into()],
        };
        let redirect_mode = match (spec.redirect, preset) {
            (Some(r), _) => r,
            (None, Some(p)) if p.redirect.https_only && spec.relay_url.is_some() => {
                RedirectMode::Relay
            }
            (None, Some(p)) if p.redirect.https_only => RedirectMode::Paste,
            _ => RedirectMode::Loopback,
        };
        self.add_provider_app(
            NewProviderApp {
                name: spec.name,
                preset: spec.preset,
                endpoints,
                client_id: spec.client_id,
                client_secret: spec.client_secret,
                redirect_mode,
                redirect_port: spec.port,
                relay_url: spec.relay_url,
                default_scopes,
            },
            actor,
        )
    }
}

//! The provider catalog: what Grantkeeper knows about each provider, as data
//! (`catalog/providers.toml`), never as code branches.
//!
//! Endpoint URLs may hold `{variable}` placeholders (a My Domain host, an Entra tenant, a NetSuite
//! account, an Okta domain). [`Preset::resolve`] fills them in, so a preset's hosts can be
//! overridden for self-hosted and custom-domain deployments while its quirks stay.

mod api;

use std::collections::BTreeMap;

pub use api::{ApiError, ApiSpec, ApiTarget};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use crate::model::ClientAuth;
use crate::model::Endpoints;

/// The catalog file, compiled into the binary.
const CATALOG_TOML: &str = include_str!("../catalog/providers.toml");

/// Every preset, in file order.
#[derive(Debug, Clone, Deserialize)]
pub struct Catalog {
    /// The presets.
    #[serde(rename = "provider")]
    pub providers: Vec<Preset>,
}

/// How risky granting a scope is, for the review screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Identity or read-only access to little data.
    Low,
    /// Read access to business data, or narrow write access.
    Medium,
    /// Broad write, admin, or full-account access.
    High,
}

/// A well-known scope of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ScopeInfo {
    /// The scope string as sent to the provider.
    pub name: String,
    /// One line saying what it grants.
    pub meaning: String,
    /// Its risk level.
    pub risk: Risk,
}

/// A placeholder in a preset's URLs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Variable {
    /// Placeholder name (`domain` for `{domain}`).
    pub name: String,
    /// What to enter, with an example.
    pub description: String,
    /// Value used when none is given.
    #[serde(default)]
    pub default: Option<String>,
}

/// PKCE support at the provider. Grantkeeper always sends S256 unless `Unsupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Pkce {
    /// The provider requires PKCE.
    Required,
    /// The provider accepts PKCE.
    Supported,
    /// The provider rejects or ignores PKCE parameters.
    Unsupported,
}

/// Where things sit in the provider's token response. Paths are dot-separated JSON paths
/// (`authed_user.access_token`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ResponseShape {
    /// Path of the access token.
    #[serde(default = "default_access_token")]
    pub access_token: String,
    /// Path of the refresh token.
    #[serde(default = "default_refresh_token")]
    pub refresh_token: String,
    /// Path of the granted scopes.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// Separator of the granted scopes in the response (GitHub and Slack use a comma).
    #[serde(default = "default_separator")]
    pub scope_separator: String,
    /// Path of the access token's lifetime in seconds (number or string).
    #[serde(default = "default_expires_in")]
    pub expires_in: String,
    /// Path of the refresh token's lifetime in seconds, where the provider sends it.
    #[serde(default)]
    pub refresh_expires_in: Option<String>,
    /// Path of the seconds left before the refresh token's hard expiry (the end no use
    /// extends), where the provider sends it: Intuit's `x_refresh_token_hard_expires_in`.
    #[serde(default)]
    pub refresh_hard_expires_in: Option<String>,
    /// A boolean field that is `false` on errors sent with HTTP 200 (Slack's `ok`).
    #[serde(default)]
    pub ok_field: Option<String>,
    /// Expected `token_type` values (case-insensitive); empty accepts any.
    #[serde(default = "default_token_types")]
    pub token_types: Vec<String>,
    /// Metadata to keep: stored key → path in the token response.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Query parameters of the redirect to keep as metadata (Intuit's `realmId`).
    #[serde(default)]
    pub redirect_metadata: Vec<String>,
}

fn default_access_token() -> String {
    "access_token".into()
}
fn default_refresh_token() -> String {
    "refresh_token".into()
}
fn default_scope() -> String {
    "scope".into()
}
fn default_scope_param() -> String {
    "scope".into()
}
fn default_separator() -> String {
    " ".into()
}
fn default_expires_in() -> String {
    "expires_in".into()
}
fn default_token_types() -> Vec<String> {
    vec!["bearer".into()]
}

impl Default for ResponseShape {
    fn default() -> Self {
        Self {
            access_token: default_access_token(),
            refresh_token: default_refresh_token(),
            scope: default_scope(),
            scope_separator: default_separator(),
            expires_in: default_expires_in(),
            refresh_expires_in: None,
            refresh_hard_expires_in: None,
            ok_field: None,
            token_types: default_token_types(),
            metadata: BTreeMap::new(),
            redirect_metadata: Vec::new(),
        }
    }
}

/// What is known about token lifetimes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct ExpiryInfo {
    /// Access-token lifetime to assume when neither the response, a JWT nor introspection says.
    #[serde(default)]
    pub access_default_secs: Option<u64>,
    /// Refresh tokens die after this many days unused (Xero 60, QuickBooks 100, Google 180).
    #[serde(default)]
    pub refresh_idle_days: Option<u32>,
    /// Refresh tokens die this many days after consent, whatever their use.
    #[serde(default)]
    pub refresh_max_days: Option<u32>,
    /// Refresh tokens change on every refresh.
    #[serde(default)]
    pub refresh_rotates: bool,
    /// Seconds a replaced refresh token stays usable (Xero: 1800).
    #[serde(default)]
    pub rotation_grace_secs: Option<u64>,
    /// Refresh tokens of a provider app still in the provider's testing status end this many
    /// days after consent (Google: 7). Answers do not say so, so a refused refresh names it.
    #[serde(default)]
    pub testing_refresh_days: Option<u32>,
}

/// How tokens are revoked at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(tag = "style", rename_all = "snake_case")]
pub enum Revocation {
    /// RFC 7009 at the `revocation` endpoint.
    Rfc7009,
    /// POST to `url` with the access token as a bearer token (Slack `auth.revoke`).
    BearerPost {
        /// The endpoint (may hold placeholders).
        url: String,
    },
    /// DELETE to `url` with client credentials as HTTP Basic and the token in a JSON body
    /// field (GitHub's delete-an-app-authorization).
    BasicDeleteJson {
        /// The endpoint (may hold placeholders, including `{client_id}`).
        url: String,
        /// The JSON field that carries the token.
        field: String,
    },
    /// The provider offers no revocation an API client can call; the user is told where to
    /// revoke by hand.
    Manual {
        /// Where the user revokes access.
        instructions: String,
    },
}

/// Constraints on the redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct RedirectRules {
    /// `http://127.0.0.1:{port}` loopback redirects are accepted.
    #[serde(default = "yes")]
    pub loopback: bool,
    /// The loopback port must be registered exactly (no ephemeral ports).
    #[serde(default)]
    pub fixed_port: bool,
    /// Only `https://` redirects are accepted (Slack; Intuit production).
    #[serde(default)]
    pub https_only: bool,
    /// Why, for the user.
    #[serde(default)]
    pub note: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for RedirectRules {
    fn default() -> Self {
        Self {
            loopback: true,
            fixed_port: false,
            https_only: false,
            note: None,
        }
    }
}

/// One provider preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Preset {
    /// Stable identifier (`salesforce-sandbox`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Whether the provider speaks OpenID Connect (ID tokens, discovery).
    #[serde(default)]
    pub oidc: bool,
    /// The provider runs on this machine (the app's embedded demo): its endpoints are plain
    /// `http://127.0.0.1` URLs, which the HTTP client allows for loopback only.
    #[serde(default)]
    pub local: bool,
    /// Link to the provider's OAuth documentation.
    pub docs: String,
    /// Placeholders used in the URLs.
    #[serde(default)]
    pub variables: Vec<Variable>,
    /// Endpoints, possibly with placeholders.
    pub endpoints: Endpoints,
    /// Separator of scopes in the authorization request.
    #[serde(default = "default_separator")]
    pub scope_separator: String,
    /// Authorization-request parameter that carries the scopes (`scope`; Slack user tokens use
    /// `user_scope`).
    #[serde(default = "default_scope_param")]
    pub scope_param: String,
    /// PKCE support.
    pub pkce: Pkce,
    /// Token-endpoint client authentication.
    pub client_auth: ClientAuth,
    /// Every client authentication method the provider accepts (`client_auth` among them):
    /// `provider add --auth` and the window's wizard offer these only.
    pub auth_methods: Vec<ClientAuth>,
    /// Extra authorization-request parameters (Google's `access_type=offline`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// Extra headers on token requests (GitHub's `Accept: application/json`).
    #[serde(default)]
    pub token_headers: BTreeMap<String, String>,
    /// Scopes requested when the user picks none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// The device authorization grant (RFC 8628) is available.
    #[serde(default)]
    pub device_flow: bool,
    /// Shape of the token response.
    #[serde(default)]
    pub response: ResponseShape,
    /// Token lifetimes.
    #[serde(default)]
    pub expiry: ExpiryInfo,
    /// Revocation method.
    pub revocation: Revocation,
    /// Redirect constraints.
    #[serde(default)]
    pub redirect: RedirectRules,
    /// Well-known scopes with meaning and risk.
    #[serde(default)]
    pub scopes: Vec<ScopeInfo>,
    /// The provider's API (for the proxy and git), where it is known.
    #[serde(default)]
    pub api: ApiSpec,
}

/// Errors in the catalog or in filling its placeholders.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog file does not parse.
    #[error("the provider catalog is malformed: {0}")]
    Malformed(String),
    /// No preset has that id.
    #[error("no provider preset named '{0}' (see `grantkeeper provider list`)")]
    UnknownPreset(String),
    /// The provider does not accept that client authentication method.
    #[error("{provider} does not accept {method}; it accepts: {accepted}")]
    AuthMethodRefused {
        /// The preset's name.
        provider: String,
        /// The method asked for.
        method: &'static str,
        /// The methods it accepts.
        accepted: String,
    },
    /// A placeholder has no value and no default.
    #[error("the {preset} preset needs a value for '{variable}': {description}")]
    MissingVariable {
        /// The preset.
        preset: String,
        /// The placeholder.
        variable: String,
        /// What to enter.
        description: String,
    },
    /// A value would change more than the host: it holds something other than letters, digits,
    /// '.', '-', '_' and ':' (so no '/', '?', '#', '@', '\', '%' or spaces).
    #[error(
        "'{value}' is not a valid value for '{variable}': give a host name or identifier only"
    )]
    BadValue {
        /// The placeholder.
        variable: String,
        /// The value given.
        value: String,
    },
}

impl Catalog {
    /// The built-in catalog.
    pub fn builtin() -> &'static Catalog {
        static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
        CATALOG.get_or_init(|| {
            Catalog::parse(CATALOG_TOML).expect("the built-in catalog is valid (tested)")
        })
    }

    /// Parses a catalog file.
    pub fn parse(text: &str) -> Result<Catalog, CatalogError> {
        toml::from_str(text).map_err(|e| CatalogError::Malformed(e.to_string()))
    }

    /// Refuses `method` when `preset` says its provider does not accept it, naming the ones it
    /// does.
    pub fn check_auth_method(preset: &Preset, method: ClientAuth) -> Result<(), CatalogError> {
        if preset.auth_methods.contains(&method) {
            return Ok(());
        }
        let accepted: Vec<&str> = preset.auth_methods.iter().map(|m| m.as_str()).collect();
        Err(CatalogError::AuthMethodRefused {
            provider: preset.name.clone(),
            method: method.as_str(),
            accepted: accepted.join(", "),
        })
    }

    /// The preset with this id.
    pub fn get(&self, id: &str) -> Result<&Preset, CatalogError> {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| CatalogError::UnknownPreset(id.to_owned()))
    }

    /// The built-in preset a provider app names, if it names one: the one preset lookup of the
    /// core. A name the catalog does not know is an error (bad input to the core's callers).
    pub fn preset_named(name: Option<&str>) -> Result<Option<&'static Preset>, CatalogError> {
        name.map(|id| Self::builtin().get(id)).transpose()
    }
}

impl Preset {
    /// The endpoints with every `{variable}` filled from `values`, else from the variable's
    /// default. Values may only be hosts or identifiers, so an override changes where requests
    /// go but not the paths and quirks of the preset.
    pub fn resolve(&self, values: &BTreeMap<String, String>) -> Result<Endpoints, CatalogError> {
        let filled = self.values(values)?;
        let fill = |url: &Option<String>| url.as_deref().map(|u| substitute(u, &filled));
        let e = &self.endpoints;
        Ok(Endpoints {
            issuer: fill(&e.issuer),
            authorization: fill(&e.authorization),
            token: fill(&e.token),
            revocation: fill(&e.revocation),
            introspection: fill(&e.introspection),
            device_authorization: fill(&e.device_authorization),
            jwks: fill(&e.jwks),
            userinfo: fill(&e.userinfo),
            trusted_ca: None,
        })
    }

    /// Fills the preset's `{variable}` placeholders in another URL of the preset (a
    /// [`Revocation::BearerPost`] or [`Revocation::BasicDeleteJson`] URL), with the same values
    /// and checks as [`Preset::resolve`]. `{client_id}` is not a variable: it is left for the
    /// caller, who fills it percent-encoded.
    pub fn fill(
        &self,
        template: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<String, CatalogError> {
        Ok(substitute(template, &self.values(values)?))
    }

    /// The value of every variable, checked.
    fn values(
        &self,
        values: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, CatalogError> {
        let mut filled = BTreeMap::new();
        for v in &self.variables {
            let value = values
                .get(&v.name)
                .cloned()
                .or_else(|| v.default.clone())
                .ok_or_else(|| CatalogError::MissingVariable {
                    preset: self.id.clone(),
                    variable: v.name.clone(),
                    description: v.description.clone(),
                })?;
            let value = value
                .trim()
                .trim_start_matches("https://")
                .trim_end_matches('/')
                .to_owned();
            // An allow-list, not a deny-list: a '\' or a '%2F' must not sneak a path in either.
            let host_like =
                |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
            if value.is_empty() || !value.chars().all(host_like) {
                return Err(CatalogError::BadValue {
                    variable: v.name.clone(),
                    value,
                });
            }
            filled.insert(v.name.clone(), value);
        }
        Ok(filled)
    }

    /// The revocation URL as the preset writes it: the revocation method's own URL, else the
    /// RFC 7009 `revocation` endpoint.
    fn revocation_template(&self) -> Option<&str> {
        match &self.revocation {
            Revocation::BearerPost { url } | Revocation::BasicDeleteJson { url, .. } => Some(url),
            Revocation::Rfc7009 => self.endpoints.revocation.as_deref(),
            Revocation::Manual { .. } => None,
        }
    }

    /// Where an app of this preset revokes grants, for every revocation style: the preset's URL
    /// with its variables filled from `values` (checked as in [`Preset::resolve`]) and
    /// `{client_id}` percent-encoded. `None` when the preset has no revocation URL.
    pub fn revocation_url(
        &self,
        values: &BTreeMap<String, String>,
        client_id: &str,
    ) -> Result<Option<String>, CatalogError> {
        let Some(template) = self.revocation_template() else {
            return Ok(None);
        };
        Ok(Some(fill_client_id(
            &self.fill(template, values)?,
            client_id,
        )))
    }

    /// The preset's revocation path on another server: `origin` (scheme, host and port) of an
    /// issuer given instead of the preset's hosts (a self-hosted or regional server, GitHub
    /// Enterprise, a local test server). `None` when the preset has no revocation URL, or its
    /// path needs a value other than the client id.
    pub fn revocation_url_at(&self, origin: &url::Url, client_id: &str) -> Option<String> {
        let template = self.revocation_template()?;
        let rest = template.split_once("://")?.1;
        let path = fill_client_id(&rest[rest.find('/')?..], client_id);
        if path.contains('{') {
            return None;
        }
        Some(format!("{}{path}", origin.origin().ascii_serialization()))
    }

    /// What the catalog says about a scope, if it knows it.
    pub fn scope(&self, name: &str) -> Option<&ScopeInfo> {
        self.scopes.iter().find(|s| s.name == name)
    }
}

/// `url` with `{client_id}` replaced by the client id, percent-encoded as one path segment.
fn fill_client_id(url: &str, client_id: &str) -> String {
    let mut enc = String::new();
    for b in client_id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            enc.push(char::from(b));
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    url.replace("{client_id}", &enc)
}

/// `template` with each `{name}` replaced by its value.
fn substitute(template: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = template.to_owned();
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

#[cfg(test)]
mod tests;

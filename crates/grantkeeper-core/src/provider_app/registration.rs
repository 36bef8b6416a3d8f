//! What a provider app must be registered with at its provider, computed from the same rules a
//! sign-in follows: the exact redirect URI (loopback with its port and path, or the relay page),
//! the scopes, and whether it is a public or a confidential client. The window's wizard shows it
//! before the user leaves for the provider's console; `provider add` prints it.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::catalog::{Catalog, Preset, RedirectRules};
use crate::error::Result;
use crate::model::{ClientAuth, ProviderApp, RedirectMode};
use crate::oauth::loopback::CALLBACK_PATH;

/// The loopback port a provider app gets when its provider matches redirect URIs port included
/// and none was chosen.
pub const DEFAULT_FIXED_PORT: u16 = 8765;

/// The settings that decide what to register (a provider app, or one being added).
#[derive(Debug, Clone, Default, Deserialize, TS)]
#[ts(export)]
pub struct RegistrationDraft {
    /// Catalog preset, if any.
    pub preset: Option<String>,
    /// Redirect mode; `None`: the default for the preset.
    pub redirect: Option<RedirectMode>,
    /// Fixed loopback port, if chosen.
    pub port: Option<u16>,
    /// The relay page's address, if any.
    pub relay_url: Option<String>,
    /// Scopes; `None`: the preset's defaults.
    pub scopes: Option<Vec<String>>,
    /// Whether a client secret is (or will be) stored.
    pub has_client_secret: bool,
    /// Client authentication, when chosen.
    #[serde(default)]
    #[ts(optional)]
    pub client_auth: Option<ClientAuth>,
}

impl RegistrationDraft {
    /// The settings of a stored provider app.
    pub fn of(app: &ProviderApp) -> Self {
        Self {
            preset: app.preset.clone(),
            redirect: Some(app.redirect_mode),
            port: app.redirect_port,
            relay_url: app.relay_url.clone(),
            scopes: Some(app.default_scopes.clone()),
            has_client_secret: app.has_client_secret,
            client_auth: app.client_auth,
        }
    }
}

/// How the app proves who it is at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    /// No secret: PKCE protects the sign-in (a native, desktop or public app).
    Public,
    /// With a client secret.
    Confidential,
    /// With a key pair Grantkeeper generates (`private_key_jwt`).
    KeyPair,
}

/// The setting a problem is about (the window marks that field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationField {
    /// The redirect mode.
    Redirect,
    /// The relay page's address.
    RelayUrl,
}

/// Why the settings cannot sign in yet, and what to change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct RegistrationProblem {
    /// The setting to change.
    pub field: RegistrationField,
    /// What is wrong and what to do, in plain words.
    pub message: String,
}

/// What to register at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Registration {
    /// The redirect mode sign-ins use.
    pub redirect: RedirectMode,
    /// The fixed loopback port sign-ins listen on (a default one when the provider needs it).
    pub port: Option<u16>,
    /// The redirect URI to register, exactly; `None` until a problem is fixed.
    pub redirect_uri: Option<String>,
    /// What the app sends as redirect URI, and why that registration matches it.
    pub redirect_detail: String,
    /// The scopes sign-ins ask for (to enable on the provider's app).
    pub scopes: Vec<String>,
    /// Public or confidential.
    pub client: ClientKind,
    /// What that means for the registration.
    pub client_detail: String,
    /// What must change before a sign-in can work.
    pub problem: Option<RegistrationProblem>,
}

/// What the settings in `draft` must be registered with at the provider.
pub fn registration(draft: &RegistrationDraft) -> Result<Registration> {
    let preset = Catalog::preset_named(draft.preset.as_deref())?;
    let rules = preset.map(|p| p.redirect.clone()).unwrap_or_default();
    let relay = draft
        .relay_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty());
    let redirect = draft
        .redirect
        .unwrap_or(default_mode(&rules, relay.is_some()));
    let refuses_loopback = rules.https_only || !rules.loopback;
    // A pasted redirect sends a registered URI: a fixed port when there is no relay page.
    let needs_port = match redirect {
        RedirectMode::Loopback => rules.fixed_port,
        RedirectMode::Paste => relay.is_none() && !refuses_loopback,
        RedirectMode::Relay => false,
    };
    let port = draft.port.or(needs_port.then_some(DEFAULT_FIXED_PORT));
    let https_only = "This provider accepts only HTTPS redirect URIs: host Grantkeeper's relay page (the relay/ folder) on an HTTPS address and enter that address as the relay page";
    let (redirect_uri, redirect_detail, problem) = match redirect {
        RedirectMode::Loopback => {
            let problem = refuses_loopback.then(|| RegistrationProblem {
                field: RegistrationField::Redirect,
                message: format!("{https_only}, or sign in by pasting the address."),
            });
            let (uri, detail) = match port {
                Some(p) => (
                    loopback_uri(Some(p)),
                    format!("Grantkeeper listens on exactly this address (port {p}) during a sign-in."),
                ),
                None => (
                    loopback_uri(None),
                    format!(
                        "Grantkeeper listens on a free port for each sign-in and sends http://127.0.0.1:<port>{CALLBACK_PATH}; loopback redirect URIs match on any port (RFC 8252). Set a fixed port if the provider wants the port registered too."
                    ),
                ),
            };
            (Some(uri), detail, problem)
        }
        RedirectMode::Relay => match relay.map(|u| (u, crate::vault::check_relay_url(u))) {
            Some((url, Ok(()))) => (
                Some(url.to_owned()),
                "The provider sends the browser to your relay page, which passes the answer on to Grantkeeper on this computer.".to_owned(),
                None,
            ),
            Some((_, Err(e))) => (None, String::new(), Some(relay_problem(e.to_string()))),
            None => (
                None,
                String::new(),
                Some(relay_problem(
                    "Enter the HTTPS address where you host Grantkeeper's relay page (the relay/ folder): it is the redirect URI to register.".into(),
                )),
            ),
        },
        RedirectMode::Paste => match (relay, port) {
            (Some(url), _) => (
                Some(url.to_owned()),
                "After consent the browser shows your relay page; copy its address into Grantkeeper.".to_owned(),
                crate::vault::check_relay_url(url)
                    .err()
                    .map(|e| relay_problem(e.to_string())),
            ),
            (None, Some(p)) if !refuses_loopback => (
                Some(loopback_uri(Some(p))),
                "After consent the browser cannot reach this address (nothing listens there): copy it from the address bar into Grantkeeper.".to_owned(),
                None,
            ),
            _ => (
                None,
                String::new(),
                Some(relay_problem(format!("{https_only}; then paste the address it shows."))),
            ),
        },
    };
    let scopes = draft
        .scopes
        .clone()
        .unwrap_or_else(|| default_scopes(preset));
    let (client, client_detail) = client_kind(preset, draft);
    Ok(Registration {
        redirect,
        port: if redirect == RedirectMode::Relay {
            draft.port
        } else {
            port
        },
        redirect_uri,
        redirect_detail,
        scopes,
        client,
        client_detail,
        problem,
    })
}

/// The redirect mode of an app whose mode was not chosen: loopback unless the provider refuses
/// it (then the relay when a relay page is given, else a pasted address).
pub(crate) fn default_mode(rules: &RedirectRules, has_relay: bool) -> RedirectMode {
    match (rules.https_only || !rules.loopback, has_relay) {
        (false, _) => RedirectMode::Loopback,
        (true, true) => RedirectMode::Relay,
        (true, false) => RedirectMode::Paste,
    }
}

/// The scopes of an app registered without a choice: the preset's defaults, else OpenID
/// Connect's sign-in with a refresh token.
pub(crate) fn default_scopes(preset: Option<&Preset>) -> Vec<String> {
    preset.map_or_else(
        || vec!["openid".into(), "offline_access".into()],
        |p| p.default_scopes.clone(),
    )
}

fn loopback_uri(port: Option<u16>) -> String {
    match port {
        Some(p) => format!("http://127.0.0.1:{p}{CALLBACK_PATH}"),
        None => format!("http://127.0.0.1{CALLBACK_PATH}"),
    }
}

fn relay_problem(message: String) -> RegistrationProblem {
    RegistrationProblem {
        field: RegistrationField::RelayUrl,
        message,
    }
}

fn client_kind(preset: Option<&Preset>, draft: &RegistrationDraft) -> (ClientKind, String) {
    match (draft.client_auth, draft.has_client_secret) {
        (Some(ClientAuth::PrivateKeyJwt), _) => (
            ClientKind::KeyPair,
            "A confidential client with a key pair (private_key_jwt): register the public key Grantkeeper shows for the app (grantkeeper provider jwk).".into(),
        ),
        (Some(ClientAuth::SelfSignedTlsClientAuth), _) => (
            ClientKind::KeyPair,
            "A confidential client with a self-signed client certificate (self_signed_tls_client_auth): register the certificate Grantkeeper makes for the app (grantkeeper provider jwk, or provider certificate).".into(),
        ),
        (Some(ClientAuth::TlsClientAuth), _) => (
            ClientKind::KeyPair,
            "A confidential client with a client certificate from a CA the provider trusts (tls_client_auth): register the certificate's subject at the provider.".into(),
        ),
        (Some(ClientAuth::None), _) | (_, false) => {
            let usual = preset.is_some_and(|p| {
                matches!(
                    p.client_auth,
                    ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost
                )
            });
            let mut detail = "A public client without a secret (PKCE protects the sign-in): register a native, desktop or public app.".to_owned();
            if usual {
                detail.push_str(" This provider's apps usually have a client secret: enter it unless you registered a public app.");
            }
            (ClientKind::Public, detail)
        }
        (auth, true) => {
            let post = auth == Some(ClientAuth::ClientSecretPost)
                || (auth.is_none()
                    && preset.is_some_and(|p| p.client_auth == ClientAuth::ClientSecretPost));
            let how = if post {
                "in the request body (client_secret_post)"
            } else {
                "with HTTP Basic (client_secret_basic)"
            };
            (
                ClientKind::Confidential,
                format!("A confidential client: Grantkeeper sends the client secret {how}; it is stored encrypted and never shown again."),
            )
        }
    }
}

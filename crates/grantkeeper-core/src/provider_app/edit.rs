//! Editing provider apps: settings changed in place (and authenticated again). Every change is
//! a `config_changed` event naming what changed (never a secret's value). Deleting one is in
//! [`crate::grants`], which revokes its connections first.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use ts_rs::TS;

use crate::audit::{Actor, EventKind, NewEvent};
use crate::error::{Error, Result};
use crate::model::{ClientAuth, ProviderApp, RedirectMode};
use crate::secret::ClientSecret;
use crate::store::SecretChange;
use crate::vault::TenantVault;

/// What to change in a provider app; `None` (or a missing field) keeps a setting.
#[derive(Debug, Default, Deserialize, TS)]
#[ts(export)]
#[serde(default)]
pub struct ProviderAppEdit {
    /// A new client id (the app's grants were issued to the old one: they need a new consent).
    pub client_id: Option<String>,
    /// A new client secret.
    #[ts(type = "string | null")]
    pub client_secret: Option<ClientSecret>,
    /// Remove the client secret (a public client from now on).
    pub remove_client_secret: bool,
    /// New default scopes.
    pub scopes: Option<Vec<String>>,
    /// A new redirect mode.
    pub redirect: Option<RedirectMode>,
    /// A new fixed loopback port, or `Some(None)` (`null`) for none.
    #[serde(deserialize_with = "set_or_clear")]
    #[ts(optional, type = "number | null")]
    pub port: Option<Option<u16>>,
    /// A new relay page, or `Some(None)` (`null`) for none.
    #[serde(deserialize_with = "set_or_clear")]
    #[ts(optional, type = "string | null")]
    pub relay_url: Option<Option<String>>,
    /// Bind new sign-ins' tokens to a DPoP key (`true`) or not (`false`); grants already made
    /// keep their binding.
    pub dpop: Option<bool>,
}

/// What an edit did.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ProviderAppEdited {
    /// The app as it is now.
    pub app: ProviderApp,
    /// The settings that changed, in words ("client id", "scopes", …); empty when none did.
    pub changed: Vec<String>,
    /// Connections granted to the old client id, which need a new consent.
    pub reconsent: Vec<String>,
}

impl TenantVault<'_> {
    /// Changes a provider app's settings. A client id change leaves its connections in place,
    /// named in [`ProviderAppEdited::reconsent`]: their grants belong to the old client.
    pub fn edit_provider_app(
        &self,
        id_or_name: &str,
        edit: ProviderAppEdit,
        actor: &Actor,
    ) -> Result<ProviderAppEdited> {
        let before = self.provider_app(id_or_name)?;
        let mut app = before.clone();
        let mut changed = Vec::new();
        let mut note = |what: &str| changed.push(what.to_owned());
        if let Some(id) = edit.client_id.filter(|id| *id != app.client_id) {
            if id.trim().is_empty() {
                return Err(Error::Invalid("a provider app needs a client id".into()));
            }
            app.client_id = id;
            note("client id");
        }
        let secret = match (&edit.client_secret, edit.remove_client_secret) {
            (Some(_), true) => {
                return Err(Error::Invalid(
                    "give a new client secret or remove it, not both".into(),
                ))
            }
            (Some(s), false) => SecretChange::Set(s),
            (None, true) if before.has_client_secret => SecretChange::Remove,
            (None, _) => SecretChange::Keep,
        };
        if !matches!(secret, SecretChange::Keep) {
            note("client secret");
        }
        // The authentication method follows the secret: without one the app is a public
        // client; a secret given to a public client is sent (as its preset says).
        match (&secret, app.client_auth) {
            (
                SecretChange::Remove,
                Some(ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost),
            ) => app.client_auth = Some(ClientAuth::None),
            (SecretChange::Set(_), Some(ClientAuth::None)) => app.client_auth = None,
            (SecretChange::Set(_), Some(ClientAuth::PrivateKeyJwt)) => {
                return Err(Error::Invalid(
                    "this provider app signs in with its key pair (private_key_jwt) and sends no client secret".into(),
                ))
            }
            (SecretChange::Set(_), Some(a)) if a.uses_certificate() => {
                return Err(Error::Invalid(format!(
                    "this provider app authenticates with its client certificate ({}) and sends no client secret",
                    a.as_str()
                )))
            }
            _ => {}
        }
        if let Some(scopes) = edit.scopes.filter(|s| *s != app.default_scopes) {
            app.default_scopes = scopes;
            note("scopes");
        }
        if let Some(mode) = edit.redirect.filter(|m| *m != app.redirect_mode) {
            app.redirect_mode = mode;
            note("redirect");
        }
        if let Some(port) = edit.port.filter(|p| *p != app.redirect_port) {
            app.redirect_port = port;
            note("port");
        }
        if let Some(relay) = edit.relay_url.filter(|r| *r != app.relay_url) {
            if let Some(url) = &relay {
                crate::vault::check_relay_url(url)?;
            }
            app.relay_url = relay;
            note("relay URL");
        }
        if let Some(dpop) = edit.dpop.filter(|d| app.dpop != Some(*d)) {
            app.dpop = Some(dpop);
            note("DPoP");
        }
        if app.redirect_mode == RedirectMode::Relay && app.relay_url.is_none() {
            return Err(Error::Invalid(
                "a relay redirect needs the relay page's HTTPS address (the relay URL): give one"
                    .into(),
            ));
        }
        if changed.is_empty() {
            return Ok(ProviderAppEdited {
                app,
                changed,
                reconsent: Vec::new(),
            });
        }
        let event = NewEvent::new(EventKind::ConfigChanged, actor)
            .tenant(&self.tenant.id)
            .detail(
                json!({ "change": "provider_app_edited", "name": app.name, "changed": changed }),
            );
        self.store.update_provider_app(&app, secret, event)?;
        let reconsent = if app.client_id == before.client_id {
            Vec::new()
        } else {
            let using = self.store.connections_using(&app.id)?;
            using.into_iter().map(|c| c.name).collect()
        };
        Ok(ProviderAppEdited {
            app: self.provider_app(app.id.as_str())?,
            changed,
            reconsent,
        })
    }
}

/// A field that is missing keeps the setting (`None`), `null` clears it (`Some(None)`).
fn set_or_clear<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

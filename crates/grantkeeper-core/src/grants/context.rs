//! A connection's provider app as a refresh, revocation or introspection needs it.

use crate::catalog::Preset;
use crate::error::Result;
use crate::oauth::flow::{self, Client, Quirks, TokenEndpoint};
use crate::oauth::OAuthError;

/// A connection's provider app with its quirks and client.
pub(super) struct GrantContext {
    pub(super) app: crate::model::ProviderApp,
    pub(super) quirks: Quirks,
    pub(super) client: Client,
    pub(super) preset: Option<&'static Preset>,
}

impl GrantContext {
    /// The `which` endpoint ("token", "introspection") with client authentication.
    pub(super) fn endpoint<'a>(
        &'a self,
        which: &str,
        http: &'a crate::http::HttpClient,
    ) -> Result<TokenEndpoint<'a>, OAuthError> {
        Ok(self.endpoint_at(flow::require(&self.app.endpoints, which)?, http))
    }

    /// `url` with the app's client authentication.
    pub(super) fn endpoint_at<'a>(
        &'a self,
        url: &'a str,
        http: &'a crate::http::HttpClient,
    ) -> TokenEndpoint<'a> {
        TokenEndpoint {
            url,
            client: &self.client,
            quirks: &self.quirks,
            http,
        }
    }

    /// Where this app revokes grants: the URL stored at registration. Apps registered before
    /// Grantkeeper stored it for every style fall back to the preset's URL only while they use
    /// the preset's own hosts; any other app must be registered again.
    pub(super) fn revocation_url(&self) -> Result<String, OAuthError> {
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
                "the provider app has no revocation endpoint: revoke the grant in the provider's own console, or register the app again with its revocation URL (--revoke-url)".into(),
            )
        })
    }
}

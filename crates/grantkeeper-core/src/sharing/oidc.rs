//! Logging in to a team vault in the browser, through its OIDC auth method: OpenBao gives the
//! provider's sign-in URL for a loopback redirect, the member signs in, and the redirect's code
//! goes back to OpenBao (`auth/<mount>/oidc/callback`) for a token. The redirect is awaited by
//! the same loopback listener and checked by the same callback check as a provider sign-in.

use std::time::Duration;

use crate::bao::BaoClient;
use crate::error::{Error, Result};
use crate::oauth::flow::check_callback;
use crate::oauth::loopback::{CancelToken, LoopbackListener};
use crate::secret::SecretText;
use crate::Vault;

use super::Login;

/// The auth mount of OpenBao's OIDC method unless told otherwise.
pub const DEFAULT_OIDC_MOUNT: &str = "oidc";

/// An OIDC login waiting for the member's browser.
pub struct PendingTeamLogin {
    /// The provider's sign-in URL to open.
    pub url: String,
    state: String,
    listener: LoopbackListener,
    client: BaoClient,
    auth_mount: String,
}

impl std::fmt::Debug for PendingTeamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingTeamLogin")
            .field("auth_mount", &self.auth_mount)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Starts an OIDC login to the team vault at `place` (server, KV mount), or to the known
    /// team `name` when `place` is `None`: a loopback listener, and the sign-in URL OpenBao
    /// gives for it (`role`: the OIDC role, else the method's default one).
    pub fn begin_team_oidc(
        &self,
        name: &str,
        place: Option<(&str, &str)>,
        auth_mount: &str,
        role: Option<&str>,
    ) -> Result<PendingTeamLogin> {
        let config = self.teams.get();
        let (url, mount) = match (place, config.teams.get(name)) {
            (Some((u, m)), _) => (u.to_owned(), m.to_owned()),
            (None, Some(k)) => (k.url.clone(), k.mount.clone()),
            (None, None) => {
                return Err(Error::NotFound {
                    what: "team",
                    name: name.to_owned(),
                })
            }
        };
        let client = BaoClient::new(self.http.clone(), &url, &mount, SecretText::new(""))?;
        let listener = LoopbackListener::bind(None)?;
        let (url, state) = client.oidc_auth_url(auth_mount, role, &listener.redirect_uri())?;
        Ok(PendingTeamLogin {
            url,
            state,
            listener,
            client,
            auth_mount: auth_mount.to_owned(),
        })
    }
}

impl PendingTeamLogin {
    /// Waits for the browser's redirect (the listener closes when this returns), then trades
    /// its code at OpenBao for a token: the login to give [`Vault::team_login`].
    pub fn wait(self, timeout: Duration, cancel: &CancelToken) -> Result<Login> {
        let params = self.listener.wait(timeout, cancel, &self.state)?;
        let code = SecretText::new(check_callback(&params, &self.state, None, false)?);
        let client = self
            .client
            .oidc_callback(&self.auth_mount, &self.state, &code)?;
        Ok(Login::Token(client.token().clone()))
    }
}

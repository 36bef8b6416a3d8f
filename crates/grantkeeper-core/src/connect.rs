//! Connecting an account: a consent grant obtained in the system browser (authorization code +
//! PKCE, with a loopback, relay or pasted redirect), through the device flow, or with client
//! credentials, then stored all or nothing.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::audit::Actor;
use crate::error::{Error, Result};
use crate::model::{
    AccountIdentity, Connection, ConnectionId, ExpirySource, RedirectMode, TokenBinding, UnixMillis,
};
use crate::oauth::discovery;
use crate::oauth::flow;
use crate::oauth::jwt::DecodedJwt;
use crate::oauth::loopback::{CallbackParams, CancelToken, LoopbackListener};
use crate::oauth::protocol::{DeviceAuthorization, ProviderClient};
use crate::oauth::state::{new_nonce, new_state};
use crate::oauth::token::{clamp_expiry, expiry_after, TokenResponse};
use crate::oauth::{id_token, OAuthError};
use crate::provider_app::{AppContext, Discovery};
use crate::secret::SecretText;
use crate::vault::{NewConnection, TenantVault};

/// What to connect.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// Name of the new connection, unique in the tenant.
    pub name: String,
    /// Provider app (id or name) to connect with.
    pub provider_app: String,
    /// Scopes to ask for; the app's defaults when `None`.
    pub scopes: Option<Vec<String>>,
    /// Redirect mode; the app's own when `None`.
    pub redirect: Option<RedirectMode>,
}

/// A sign-in waiting for the user: open [`PendingConnect::url`] in the browser, call
/// [`PendingConnect::wait`], then [`TenantVault::finish_connect`] with what it returned.
#[derive(Debug)]
pub struct PendingConnect {
    /// The authorization URL to open.
    pub url: String,
    /// The redirect URI sent to the provider.
    pub redirect_uri: String,
    request: ConnectRequest,
    context: AppContext,
    state: String,
    /// The PKCE code verifier, kept secret until the code exchange.
    verifier: SecretText,
    nonce: Option<String>,
    listener: Option<LoopbackListener>,
    scopes: Vec<String>,
    /// The connection a re-consent renews in place.
    replaces: Option<ConnectionId>,
}

/// A redirect URL the user pasted, parsed (or why it could not be read).
pub type Pasted = std::result::Result<CallbackParams, OAuthError>;

impl PendingConnect {
    /// The one sign-in wait of every front end. In paste mode it waits for a URL sent on
    /// `pasted`; otherwise for the browser at the loopback listener (or relay), where a URL
    /// pasted meanwhile, followed by `cancel`, takes the redirect's place. It ends by `timeout`
    /// ([`OAuthError::TimedOut`]), or cancelled when `cancel` fires or, in paste mode, every
    /// sender of `pasted` is gone.
    pub fn wait(
        &mut self,
        timeout: Duration,
        cancel: &CancelToken,
        pasted: &mpsc::Receiver<Pasted>,
    ) -> std::result::Result<CallbackParams, OAuthError> {
        let pasted_instead = || pasted.try_recv().unwrap_or(Err(OAuthError::Cancelled));
        if self.redirect_mode() != RedirectMode::Paste {
            return match self.wait_for_redirect(timeout, cancel) {
                Err(OAuthError::Cancelled) => pasted_instead(),
                other => other,
            };
        }
        let until = Instant::now() + timeout;
        loop {
            if cancel.is_cancelled() {
                return pasted_instead();
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(OAuthError::TimedOut {
                    seconds: timeout.as_secs(),
                });
            }
            match pasted.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(p) => return p,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(OAuthError::Cancelled),
            }
        }
    }

    /// Waits for the browser to reach the loopback listener (default 5 minutes). The listener
    /// closes when this returns, whatever the outcome.
    pub fn wait_for_redirect(
        &mut self,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<CallbackParams, OAuthError> {
        let listener = self.listener.take().ok_or_else(|| {
            OAuthError::Config("this sign-in expects a pasted redirect URL".into())
        })?;
        listener.wait(timeout, cancel, &self.state)
    }

    /// The `state` this sign-in sent, in the URL or pushed with the request (RFC 9126); its
    /// redirect must carry it back.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The scopes asked for.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// How the redirect comes back: the request's mode, else the app's.
    pub fn redirect_mode(&self) -> RedirectMode {
        self.request
            .redirect
            .unwrap_or(self.context.app.redirect_mode)
    }
}

/// A provider app with its flow context, client and scopes.
struct Prepared {
    context: AppContext,
    scopes: Vec<String>,
}

/// Default time to wait for the browser.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);

impl TenantVault<'_> {
    /// Starts a browser sign-in: binds the loopback listener (unless the redirect is pasted)
    /// and builds the authorization URL. Nothing is stored yet.
    pub fn begin_connect(&self, request: ConnectRequest) -> Result<PendingConnect> {
        self.begin(request, None)
    }

    /// Starts a re-consent of an existing connection (after `invalid_grant`, or to change its
    /// scopes): the same connection is renewed in place, its history kept. `scopes` defaults to
    /// the scopes it asked for before.
    pub fn begin_reconsent(
        &self,
        id: &ConnectionId,
        scopes: Option<Vec<String>>,
        redirect: Option<RedirectMode>,
    ) -> Result<PendingConnect> {
        let c = self.connection(id)?;
        let request = ConnectRequest {
            name: c.name.clone(),
            provider_app: c.provider_app_id.to_string(),
            scopes: Some(scopes.unwrap_or(c.scopes_requested)),
            redirect,
        };
        self.begin(request, Some(c.id))
    }

    fn begin(
        &self,
        request: ConnectRequest,
        replaces: Option<ConnectionId>,
    ) -> Result<PendingConnect> {
        let context = self
            .app_context(
                self.provider_app(&request.provider_app)?,
                Discovery::AtSignIn,
            )?
            .for_sign_in();
        let app = &context.app;
        if replaces.is_none() && self.connection_named(&request.name).is_ok() {
            return Err(Error::AlreadyExists {
                what: "connection",
                name: format!("{}/{}", self.tenant().slug, request.name),
            });
        }
        let mode = request.redirect.unwrap_or(app.redirect_mode);
        let (listener, redirect_uri, state) = match mode {
            RedirectMode::Loopback => {
                let l = LoopbackListener::bind(app.redirect_port).map_err(oauth)?;
                let uri = l.redirect_uri();
                (Some(l), uri, new_state(None))
            }
            RedirectMode::Relay => {
                let relay = app.relay_url.clone().ok_or_else(|| {
                    Error::Invalid(
                        "this provider app has no relay page: give the HTTPS address of its relay page (the relay URL), or sign in by pasting the address".into(),
                    )
                })?;
                let l = LoopbackListener::bind(app.redirect_port).map_err(oauth)?;
                // The relay page reads the port from the state's suffix.
                let state = new_state(Some(l.port()));
                (Some(l), relay, state)
            }
            RedirectMode::Paste => {
                let uri = match (&app.relay_url, app.redirect_port) {
                    (Some(relay), _) => relay.clone(),
                    (None, Some(port)) => format!("http://127.0.0.1:{port}/callback"),
                    (None, None) => {
                        return Err(Error::Invalid(
                            "a pasted address needs a registered redirect URI: give the provider app a relay page (the relay URL) or a fixed port".into(),
                        ))
                    }
                };
                (None, uri, new_state(None))
            }
        };
        let scopes = request
            .scopes
            .clone()
            .unwrap_or_else(|| app.default_scopes.clone());
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let verifier = SecretText::new(verifier.into_secret());
        let nonce = (context.oidc() && scopes.iter().any(|s| s == "openid")).then(new_nonce);
        let client = context.protocol(&context.http);
        let mut url = client
            .authorization_url(&redirect_uri, &scopes, &state, challenge, nonce.as_deref())
            .map_err(oauth)?;
        if let Some(endpoint) = &context.par_endpoint {
            url = client.push_authorization(endpoint, &url).map_err(oauth)?;
        }
        Ok(PendingConnect {
            url,
            redirect_uri,
            request,
            context,
            state,
            verifier,
            nonce,
            listener,
            scopes,
            replaces,
        })
    }

    /// Finishes a browser sign-in with the redirect's parameters: checks state and issuer,
    /// exchanges the code, validates the ID token, and stores the grant all or nothing.
    pub fn finish_connect(
        &self,
        pending: PendingConnect,
        params: &CallbackParams,
        actor: &Actor,
    ) -> Result<Connection> {
        let issuer = pending.context.app.endpoints.issuer.as_deref();
        let code =
            flow::check_callback(params, &pending.state, issuer, pending.context.iss_required)
                .map_err(oauth)?;
        let client = pending.context.protocol(&pending.context.http);
        let response = client
            .exchange_code(code, &pending.redirect_uri, pending.verifier.expose())
            .map_err(oauth)?;
        let mut redirect_meta = BTreeMap::new();
        for key in &pending.context.quirks.shape.redirect_metadata {
            if let Some(v) = params.get(key) {
                redirect_meta.insert(key.clone(), v.clone());
            }
        }
        self.store_grant(
            pending.replaces.as_ref(),
            &pending.request.name,
            &pending.context,
            &client,
            pending.scopes.clone(),
            pending.nonce.as_deref(),
            response,
            redirect_meta,
            actor,
        )
    }

    /// Everything a grant request of `request` needs, read once.
    fn prepare(&self, request: &ConnectRequest) -> Result<Prepared> {
        let app = self.provider_app(&request.provider_app)?;
        let context = self.app_context(app, Discovery::AtSignIn)?.for_sign_in();
        let scopes = request
            .scopes
            .clone()
            .unwrap_or_else(|| context.app.default_scopes.clone());
        Ok(Prepared { context, scopes })
    }

    /// Starts the device authorization grant (RFC 8628): show the user code and verification
    /// URI, then call [`TenantVault::finish_device_connect`].
    pub fn begin_device_connect(&self, request: &ConnectRequest) -> Result<DeviceAuthorization> {
        let p = self.prepare(request)?;
        p.context
            .protocol(&p.context.http)
            .device_authorize(&p.scopes)
            .map_err(oauth)
    }

    /// Polls until the user approves the device authorization, then stores the grant.
    pub fn finish_device_connect(
        &self,
        request: &ConnectRequest,
        device: &DeviceAuthorization,
        cancel: &CancelToken,
        actor: &Actor,
    ) -> Result<Connection> {
        let p = self.prepare(request)?;
        let client = p.context.protocol(&p.context.http);
        let response = client.device_poll(device, cancel).map_err(oauth)?;
        self.store_prepared(&request.name, &p, &client, response, actor)
    }

    /// Obtains a service connection with the client-credentials grant.
    pub fn connect_client_credentials(
        &self,
        request: &ConnectRequest,
        actor: &Actor,
    ) -> Result<Connection> {
        let p = self.prepare(request)?;
        if !p.context.app.has_client_secret {
            return Err(Error::Invalid(
                "the client-credentials grant needs a client secret".into(),
            ));
        }
        let client = p.context.protocol(&p.context.http);
        let response = client.client_credentials(&p.scopes).map_err(oauth)?;
        self.store_prepared(&request.name, &p, &client, response, actor)
    }

    /// Stores a grant obtained without a browser redirect (no nonce, no redirect metadata).
    fn store_prepared(
        &self,
        name: &str,
        p: &Prepared,
        client: &ProviderClient<'_>,
        response: TokenResponse,
        actor: &Actor,
    ) -> Result<Connection> {
        self.store_grant(
            None,
            name,
            &p.context,
            client,
            p.scopes.clone(),
            None,
            response,
            BTreeMap::new(),
            actor,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn store_grant(
        &self,
        replaces: Option<&ConnectionId>,
        name: &str,
        context: &AppContext,
        client: &ProviderClient<'_>,
        scopes_requested: Vec<String>,
        nonce: Option<&str>,
        response: TokenResponse,
        mut metadata: BTreeMap<String, String>,
        actor: &Actor,
    ) -> Result<Connection> {
        let now = crate::model::now_ms();
        let mut account = AccountIdentity::default();
        if let Some(idt) = &response.tokens.id_token {
            let jwks_uri = context.app.endpoints.jwks.as_deref();
            // An HS256/384/512 token is checked with the client secret, or refused without
            // one (a public client), even when the provider publishes no key set.
            let verifiable =
                jwks_uri.is_some() || id_token::signed_with_client_secret(idt.expose());
            let claims = match context.app.endpoints.issuer.as_deref() {
                Some(issuer) if verifiable => {
                    let expect = id_token::Expectations {
                        issuer,
                        client_id: &context.app.client_id,
                        nonce,
                        jwks_uri,
                        client_secret: context.client.secret.as_ref(),
                    };
                    id_token::validate(&context.http, idt.expose(), &expect).map_err(oauth)?
                }
                _ => {
                    metadata.insert("id_token_verified".into(), "false".into());
                    DecodedJwt::decode(idt.expose())
                        .map(|d| d.claims)
                        .unwrap_or_default()
                }
            };
            let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
            account.subject = text("sub");
            account.username = text("email")
                .or_else(|| text("preferred_username"))
                .or_else(|| text("name"));
            account.org_id = text("tid").or_else(|| text("organization_id"));
        }
        metadata.extend(response.metadata.clone());
        metadata.remove(TokenBinding::METADATA_KEY);
        let dpop_key = match &context.dpop {
            Some(key) if response.dpop_bound => {
                metadata.insert(
                    TokenBinding::METADATA_KEY.into(),
                    TokenBinding::Dpop.as_str().into(),
                );
                Some(key.to_secret())
            }
            Some(_) => {
                tracing::info!("the provider issued a bearer token despite the DPoP proof; the grant is not bound");
                None
            }
            None => None,
        };
        if let Some(cert) = &context.certificate {
            let token = &response.tokens.access_token;
            let has_introspection = context.app.endpoints.introspection.is_some();
            let bound = crate::oauth::mtls::bound_to(&cert.thumbprint(), token.expose(), || {
                has_introspection
                    .then(|| client.introspect(token, "access_token").ok())
                    .flatten()
            });
            if bound {
                metadata.insert(
                    TokenBinding::METADATA_KEY.into(),
                    TokenBinding::Certificate.as_str().into(),
                );
            }
        }
        // Without an ID token, the catalog may name the account from the token response
        // (metadata keys `subject` and `username`).
        if account.subject.is_none() {
            account.subject = metadata.get("subject").cloned();
        }
        if account.username.is_none() {
            account.username = metadata.get("username").cloned();
        }
        if let Some(issuer) = &context.app.endpoints.issuer {
            metadata
                .entry("issuer".into())
                .or_insert_with(|| issuer.clone());
        }
        if let Some(id) = replaces {
            same_account(&self.connection(id)?, &account, &response).map_err(oauth)?;
        }
        let access_expiry = self.access_expiry(context, client, &response, now);
        let expiry = &context.quirks.expiry;
        let days = |d: u32| now + i64::from(d) * 86_400_000;
        let refresh_expires_at = response
            .refresh_expires_in
            .map(|s| expiry_after(now, s))
            .or(expiry.refresh_idle_days.map(days));
        let new = NewConnection {
            name: name.to_owned(),
            provider_app_id: context.app.id.clone(),
            consented_by: account.username.clone().or_else(|| account.subject.clone()),
            account,
            scopes_requested,
            scopes_granted: response.scopes.clone(),
            access_expiry,
            refresh_expires_at: response
                .tokens
                .refresh_token
                .as_ref()
                .and(refresh_expires_at),
            refresh_hard_expires_at: response.tokens.refresh_token.as_ref().and(
                response
                    .refresh_hard_expires_in
                    .map(|s| expiry_after(now, s))
                    .or(expiry.refresh_max_days.map(days)),
            ),
            metadata,
            dpop_key,
        };
        match replaces {
            Some(id) => self.renew_connection(id, new, response.tokens, actor),
            None => self.store_connection(new, response.tokens, actor),
        }
    }

    /// The access token's expiry: the response's `expires_in`, else the JWT's `exp`, else
    /// introspection, else the catalog's default — with the source recorded.
    fn access_expiry(
        &self,
        context: &AppContext,
        client: &ProviderClient<'_>,
        response: &TokenResponse,
        now: UnixMillis,
    ) -> Option<(UnixMillis, ExpirySource)> {
        if let Some(s) = response.expires_in {
            return Some((expiry_after(now, s), ExpirySource::Response));
        }
        let access = &response.tokens.access_token;
        if let Some(exp) = DecodedJwt::decode(access.expose()).and_then(|d| d.expires_at_ms()) {
            return Some((exp, ExpirySource::JwtExp));
        }
        if context.app.endpoints.introspection.is_some() {
            match client.introspect(access, "access_token") {
                Ok(body) => {
                    if let Some(exp) = body.get("exp").and_then(Value::as_i64) {
                        return Some((
                            clamp_expiry(now, exp.saturating_mul(1000)),
                            ExpirySource::Introspection,
                        ));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "introspection for the token's expiry failed"),
            }
        }
        context
            .default_access_secs()
            .map(|s| (expiry_after(now, s), ExpirySource::CatalogDefault))
    }
}

impl crate::Vault {
    /// Discovers an issuer's endpoints (OpenID Connect discovery, then RFC 8414).
    pub fn discover(&self, issuer: &str) -> Result<crate::model::Endpoints> {
        Ok(discovery::discover(&self.http, issuer)
            .map_err(oauth)?
            .endpoints())
    }
}

/// A re-consent must sign in as the connection's own account (its subject: the ID token's
/// `sub`, or the catalog's `subject` metadata), so another account's tokens never land on the
/// connection and the old refresh token is never kept beside them. When the connection has no
/// recorded subject, the answer must carry a new refresh token (the old one is then replaced)
/// unless the connection has none.
fn same_account(
    before: &Connection,
    account: &AccountIdentity,
    response: &TokenResponse,
) -> std::result::Result<(), OAuthError> {
    let name = |a: &AccountIdentity| {
        a.username
            .clone()
            .or_else(|| a.subject.clone())
            .unwrap_or_else(|| "an unknown account".into())
    };
    match (before.account.subject.as_deref(), account.subject.as_deref()) {
        (Some(old), Some(new)) if old == new => Ok(()),
        (Some(_), Some(_)) => Err(OAuthError::AccountMismatch {
            expected: name(&before.account),
            got: name(account),
        }),
        (Some(_), None) => Err(OAuthError::AccountUnconfirmed(format!(
            "the provider did not say which account signed in, so it cannot be confirmed as this connection's ({}); keep the openid scope, or connect the account as a new connection",
            name(&before.account)
        ))),
        (None, _) if before.has_refresh_token && response.tokens.refresh_token.is_none() => {
            Err(OAuthError::AccountUnconfirmed(
                "the provider sent no new refresh token and this connection records no account to compare with, so its refresh token could end up beside another account's access token; delete the connection and connect again".into(),
            ))
        }
        (None, _) => Ok(()),
    }
}

fn oauth(e: OAuthError) -> Error {
    Error::OAuth(e)
}

#[cfg(test)]
mod tests;

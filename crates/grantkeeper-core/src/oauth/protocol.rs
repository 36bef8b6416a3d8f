//! The OAuth protocol through the `oauth2` crate: the authorization URL with PKCE and `state`,
//! the code exchange, refresh, client credentials, the device flow (RFC 8628), revocation
//! (RFC 7009) and introspection (RFC 7662). Every request goes out through the core's hardened
//! HTTP client, and every answer reaches oauth2 in standard shape, by the normalizing layer (`oauth/normalize.rs`).

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use oauth2::basic::{BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenType};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, CsrfToken, DeviceAuthorizationUrl,
    ErrorResponseType, ExtraTokenFields, IntrospectionUrl, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, RevocationUrl, Scope, StandardDeviceAuthorizationResponse,
    StandardErrorResponse, StandardRevocableToken, StandardTokenIntrospectionResponse,
    StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::assertion::ClientAssertion;
use super::dpop::DpopKey;
use super::flow::{require, Client, Quirks};
use super::loopback::CancelToken;
use super::normalize::{
    Answer, Failed, Normalizer, Wire, REFRESH_EXPIRES_IN, REFRESH_HARD_EXPIRES_IN,
};
use super::token::{lookup, TokenResponse, MAX_LIFETIME, MAX_LIFETIME_SECS};
use super::OAuthError;
use crate::catalog::{ClientAuth, Pkce};
use crate::model::Endpoints;
use crate::secret::{AccessToken, IdToken, RefreshToken, TokenSet};

/// The fields of a token response besides the standard ones (`id_token`, `instance_url`,
/// `team`, …), as the provider sent them.
#[derive(Clone, Default, Deserialize, Serialize)]
pub(crate) struct TokenFields {
    #[serde(flatten)]
    fields: Map<String, Value>,
}

impl ExtraTokenFields for TokenFields {}

/// Names only: the fields may hold an ID token.
impl fmt::Debug for TokenFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.fields.keys()).finish()
    }
}

type TokenAnswer = StandardTokenResponse<TokenFields, BasicTokenType>;
type IntrospectionAnswer = StandardTokenIntrospectionResponse<TokenFields, BasicTokenType>;
type BaseClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    IntrospectionAnswer,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;

/// The client with its token endpoint set.
type TokenClient = oauth2::Client<
    BasicErrorResponse,
    TokenAnswer,
    IntrospectionAnswer,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// A token to revoke.
#[derive(Debug, Clone, Copy)]
pub enum Revocable<'t> {
    /// An access token.
    Access(&'t AccessToken),
    /// A refresh token.
    Refresh(&'t RefreshToken),
}

/// A device authorization (RFC 8628) in progress.
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    /// Code to poll with (not shown to the user).
    device_code: String,
    /// Code the user types.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same, with the code filled in, when the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Polling interval in seconds.
    pub interval: u64,
}

/// A code exchange answered by `resp` without the network, for a public client at a fixed token
/// endpoint whose answers have `shape`: the whole parsing path (the normalizer, then oauth2), for
/// fuzzing and the normalizer's tests.
pub(crate) fn exchange_answer(
    shape: &crate::catalog::ResponseShape,
    resp: crate::http::HttpResponse,
) -> Result<TokenResponse, OAuthError> {
    let mut quirks = Quirks::new(None, false);
    quirks.shape = shape.clone();
    let endpoints = Endpoints {
        token: Some("https://idp.example/token".into()),
        ..Endpoints::default()
    };
    let client = Client {
        id: "cid".into(),
        secret: None,
        key: None,
    };
    ProviderClient::new(&endpoints, &client, &quirks, Wire::Recorded(resp)).exchange_code(
        "c",
        "http://127.0.0.1:1/callback",
        "v",
    )
}

/// A provider app's OAuth client: its endpoints, its credentials, its quirks.
#[derive(Debug)]
pub(crate) struct ProviderClient<'a> {
    base: BaseClient,
    client: &'a Client,
    endpoints: &'a Endpoints,
    quirks: &'a Quirks,
    wire: Wire<'a>,
    /// The grant's DPoP key: token requests carry proofs made with it.
    dpop: Option<&'a DpopKey>,
}

impl<'a> ProviderClient<'a> {
    /// The client of `client` at `endpoints`, authenticating as the quirks say (HTTP Basic,
    /// the form body, or a public client's id alone), its requests sent over `wire`.
    pub(crate) fn new(
        endpoints: &'a Endpoints,
        client: &'a Client,
        quirks: &'a Quirks,
        wire: Wire<'a>,
    ) -> Self {
        let mut base = BaseClient::new(ClientId::new(client.id.clone()));
        base = match quirks.client_auth {
            // The client's id in the body; a certificate or assertion authenticates it.
            ClientAuth::ClientSecretPost
            | ClientAuth::PrivateKeyJwt
            | ClientAuth::TlsClientAuth
            | ClientAuth::SelfSignedTlsClientAuth => base.set_auth_type(AuthType::RequestBody),
            ClientAuth::ClientSecretBasic | ClientAuth::None => {
                base.set_auth_type(AuthType::BasicAuth)
            }
        };
        let sends_secret = matches!(
            quirks.client_auth,
            ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost
        );
        if let (Some(secret), true) = (&client.secret, sends_secret) {
            base = base.set_client_secret(oauth2::ClientSecret::new(secret.expose().to_owned()));
        }
        Self {
            base,
            client,
            endpoints,
            quirks,
            wire,
            dpop: None,
        }
    }

    /// The same client, its token requests proving possession of `key` (RFC 9449).
    pub(crate) fn proving(self, key: Option<&'a DpopKey>) -> Self {
        Self { dpop: key, ..self }
    }

    /// oauth2's HTTP client for one request: token, revocation and introspection requests carry
    /// the DPoP proof, every request the client assertion.
    fn normalizer(&self, answer: Answer) -> Normalizer<'_> {
        let dpop = self.dpop.filter(|_| answer != Answer::Device);
        Normalizer::new(self.wire.clone(), self.quirks, answer)
            .asserting(self.assertion())
            .proving(dpop)
    }

    /// The client assertion of `private_key_jwt`, addressed to the issuer (else the token
    /// endpoint), when the app authenticates that way.
    fn assertion(&self) -> Option<ClientAssertion<'_>> {
        if self.quirks.client_auth != ClientAuth::PrivateKeyJwt {
            return None;
        }
        let audience = self
            .endpoints
            .issuer
            .as_deref()
            .or(self.endpoints.token.as_deref())?;
        Some(ClientAssertion {
            key: self.client.key.as_ref()?,
            client_id: &self.client.id,
            audience,
        })
    }

    /// The `which` endpoint, checked against the HTTPS rule.
    fn url(&self, which: &str) -> Result<url::Url, OAuthError> {
        Ok(crate::http::check(require(self.endpoints, which)?)?.0)
    }

    /// The authorization URL: PKCE S256 (unless the provider refuses it), the sign-in's `state`,
    /// the scopes joined and named as the provider wants, the nonce and the catalog's extra
    /// parameters.
    pub(crate) fn authorization_url(
        &self,
        redirect_uri: &str,
        scopes: &[String],
        state: &str,
        challenge: PkceCodeChallenge,
        nonce: Option<&str>,
    ) -> Result<String, OAuthError> {
        let client = self
            .base
            .clone()
            .set_auth_uri(AuthUrl::from_url(self.url("authorization")?));
        let redirect = redirect_url(redirect_uri)?;
        let state = state.to_owned();
        let mut request = client
            .authorize_url(move || CsrfToken::new(state))
            .set_redirect_uri(Cow::Owned(redirect));
        if !scopes.is_empty() {
            let joined = scopes.join(&self.quirks.scope_separator);
            request = if self.quirks.scope_param == "scope" {
                request.add_scope(Scope::new(joined))
            } else {
                request.add_extra_param(self.quirks.scope_param.as_str(), joined)
            };
        }
        if self.quirks.pkce != Pkce::Unsupported {
            request = request.set_pkce_challenge(challenge);
        }
        if let Some(n) = nonce {
            request = request.add_extra_param("nonce", n);
        }
        for (k, v) in &self.quirks.authorize_params {
            request = request.add_extra_param(k.as_str(), v.as_str());
        }
        Ok(request.url().0.into())
    }

    /// The URL the browser opens for `authorization_url` (from [`Self::authorization_url`])
    /// once its parameters are pushed to `endpoint` (RFC 9126).
    pub(crate) fn push_authorization(
        &self,
        endpoint: &str,
        authorization_url: &str,
    ) -> Result<String, OAuthError> {
        super::par::push(
            &self.wire,
            endpoint,
            authorization_url,
            self.client,
            self.quirks,
            self.assertion().as_ref(),
            self.dpop,
        )
    }

    fn token_client(&self) -> Result<TokenClient, OAuthError> {
        Ok(self
            .base
            .clone()
            .set_token_uri(TokenUrl::from_url(self.url("token")?)))
    }

    /// Exchanges an authorization code (with its PKCE verifier) for tokens.
    pub(crate) fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.token_client()?;
        let wire = self.normalizer(Answer::Token);
        let result = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect_url(redirect_uri)?))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request(&wire);
        self.tokens(settle(&wire, result)?)
    }

    /// Redeems a refresh token.
    pub(crate) fn refresh(&self, rt: &RefreshToken) -> Result<TokenResponse, OAuthError> {
        let client = self.token_client()?;
        let wire = self.normalizer(Answer::Token);
        let rt = oauth2::RefreshToken::new(rt.expose().to_owned());
        let result = client.exchange_refresh_token(&rt).request(&wire);
        self.tokens(settle(&wire, result)?)
    }

    /// The client-credentials grant.
    pub(crate) fn client_credentials(
        &self,
        scopes: &[String],
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.token_client()?;
        let wire = self.normalizer(Answer::Token);
        let mut request = client.exchange_client_credentials();
        if !scopes.is_empty() {
            request = request.add_scope(Scope::new(scopes.join(&self.quirks.scope_separator)));
        }
        let result = request.request(&wire);
        self.tokens(settle(&wire, result)?)
    }

    /// Starts a device authorization.
    pub(crate) fn device_authorize(
        &self,
        scopes: &[String],
    ) -> Result<DeviceAuthorization, OAuthError> {
        let client =
            self.base
                .clone()
                .set_device_authorization_url(DeviceAuthorizationUrl::from_url(
                    self.url("device_authorization")?,
                ));
        let wire = self.normalizer(Answer::Device);
        let mut request = client.exchange_device_code();
        if !scopes.is_empty() {
            request = request.add_scope(Scope::new(scopes.join(&self.quirks.scope_separator)));
        }
        let result: Result<StandardDeviceAuthorizationResponse, _> = request.request(&wire);
        let d = settle(&wire, result)?;
        Ok(DeviceAuthorization {
            device_code: d.device_code().secret().clone(),
            user_code: d.user_code().secret().clone(),
            verification_uri: d.verification_uri().to_string(),
            verification_uri_complete: d.verification_uri_complete().map(|u| u.secret().clone()),
            expires_in: d.expires_in().as_secs(),
            interval: d.interval().as_secs(),
        })
    }

    /// Polls the token endpoint until the user approves, denies, or the codes expire; waits
    /// the interval before each poll, `slow_down` adding 5 s to it (oauth2's loop). Cancel ends
    /// the wait within 0.1 s; a failed request ends the polling with its reason.
    pub(crate) fn device_poll(
        &self,
        device: &DeviceAuthorization,
        cancel: &CancelToken,
    ) -> Result<TokenResponse, OAuthError> {
        let client = self.token_client()?;
        let start = Instant::now();
        // At most 10 years; far enough whatever the platform's Instant can hold.
        let far = start
            .checked_add(MAX_LIFETIME)
            .or_else(|| start.checked_add(Duration::from_secs(86_400 * 365)))
            .unwrap_or(start);
        let deadline = instant_after(start, device.expires_in, far);
        let interval = device.interval.clamp(1, MAX_LIFETIME_SECS);
        let wire = self.normalizer(Answer::Token);
        let stop = || cancel.is_cancelled() || wire.failed() || Instant::now() >= deadline;
        let pause = |secs: u64| {
            let until = instant_after(Instant::now(), secs, deadline);
            while Instant::now() < until && !stop() {
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        pause(interval);
        let result = if stop() {
            None
        } else {
            let details = device_details(device, interval)?;
            let request = client
                .exchange_device_access_token(&details)
                .set_time_fn(|| {
                    if stop() {
                        chrono::DateTime::<chrono::Utc>::MAX_UTC
                    } else {
                        chrono::Utc::now()
                    }
                });
            let left = deadline.saturating_duration_since(Instant::now());
            Some(request.request(&wire, |d| pause(d.as_secs()), Some(left)))
        };
        if let Some(failure) = wire.failure() {
            return Err(failure);
        }
        if cancel.is_cancelled() {
            return Err(OAuthError::Cancelled);
        }
        let timed_out = OAuthError::TimedOut {
            seconds: device.expires_in,
        };
        match result {
            Some(Ok(answer)) => self.tokens(answer),
            Some(Err(RequestTokenError::ServerResponse(e))) if Instant::now() < deadline => {
                let (error, description) = described(&e);
                if error == "access_denied" || error == "expired_token" {
                    Err(OAuthError::Denied { error, description })
                } else {
                    Err(OAuthError::Provider {
                        error,
                        description,
                        status: wire.status(),
                    })
                }
            }
            Some(Err(e)) if Instant::now() < deadline => Err(other_error(e)),
            _ => Err(timed_out),
        }
    }

    /// RFC 7662 introspection of a token; the answer's fields, standard ones as oauth2 read them.
    pub(crate) fn introspect(
        &self,
        token: &AccessToken,
        hint: &str,
    ) -> Result<Map<String, Value>, OAuthError> {
        let client = self
            .base
            .clone()
            .set_introspection_url(IntrospectionUrl::from_url(self.url("introspection")?));
        let wire = self.normalizer(Answer::Introspection);
        let token = oauth2::AccessToken::new(token.expose().to_owned());
        let result = client
            .introspect(&token)
            .set_token_type_hint(hint)
            .request(&wire);
        let answer = settle(&wire, result)?;
        match serde_json::to_value(&answer) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(OAuthError::Malformed(
                "the introspection answer cannot be read back".into(),
            )),
        }
    }

    /// RFC 7009 revocation of `token` at `url`. oauth2 sends revocations to https:// URLs only;
    /// a loopback http:// URL (allowed by the core's HTTPS rule) is handed to it as https:// and
    /// the request still goes to `url` as registered.
    pub(crate) fn revoke(&self, url: &str, token: Revocable<'_>) -> Result<(), OAuthError> {
        let (mut checked, _) = crate::http::check(url)?;
        if checked.scheme() == "http" {
            checked
                .set_scheme("https")
                .map_err(|()| OAuthError::Config("the revocation URL is not usable".into()))?;
        }
        let client = self
            .base
            .clone()
            .set_revocation_url(RevocationUrl::from_url(checked));
        let wire = self.normalizer(Answer::Revocation).sending_to(url);
        let token = match token {
            Revocable::Access(t) => {
                StandardRevocableToken::AccessToken(oauth2::AccessToken::new(t.expose().to_owned()))
            }
            Revocable::Refresh(t) => StandardRevocableToken::RefreshToken(
                oauth2::RefreshToken::new(t.expose().to_owned()),
            ),
        };
        let request = client
            .revoke_token(token)
            .map_err(|e| OAuthError::Config(format!("cannot revoke: {e}")))?;
        let result = request.request(&wire);
        settle(&wire, result)
    }

    /// Our token response from oauth2's: the tokens in their secret types, lifetimes, granted
    /// scopes and the metadata the preset names.
    fn tokens(&self, answer: TokenAnswer) -> Result<TokenResponse, OAuthError> {
        let extra = &answer.extra_fields().fields;
        let text = |k: &str| {
            extra
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let mut metadata = std::collections::BTreeMap::new();
        for (key, path) in &self.quirks.shape.metadata {
            match lookup(extra, path) {
                Some(Value::String(s)) => {
                    metadata.insert(key.clone(), s.clone());
                }
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    metadata.insert(key.clone(), v.to_string());
                }
                _ => {}
            }
        }
        Ok(TokenResponse {
            tokens: TokenSet {
                access_token: AccessToken::new(answer.access_token().secret().as_str()),
                refresh_token: answer
                    .refresh_token()
                    .map(|t| RefreshToken::new(t.secret().as_str())),
                id_token: text("id_token").map(IdToken::new),
            },
            dpop_bound: self.dpop.is_some()
                && answer
                    .token_type()
                    .as_ref()
                    .eq_ignore_ascii_case(super::dpop::TOKEN_TYPE),
            expires_in: answer.expires_in().map(|d| d.as_secs()),
            refresh_expires_in: extra.get(REFRESH_EXPIRES_IN).and_then(Value::as_u64),
            refresh_hard_expires_in: extra.get(REFRESH_HARD_EXPIRES_IN).and_then(Value::as_u64),
            scopes: answer.scopes().map(|s| {
                s.iter()
                    .map(|s| s.to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
            metadata,
        })
    }
}

fn redirect_url(uri: &str) -> Result<RedirectUrl, OAuthError> {
    RedirectUrl::new(uri.to_owned())
        .map_err(|_| OAuthError::Config("the redirect URI is not a URL".into()))
}

/// oauth2's form of a device authorization, to poll with.
fn device_details(
    device: &DeviceAuthorization,
    interval: u64,
) -> Result<StandardDeviceAuthorizationResponse, OAuthError> {
    serde_json::from_value(serde_json::json!({
        "device_code": device.device_code,
        "user_code": device.user_code,
        "verification_uri": device.verification_uri,
        "expires_in": device.expires_in.min(MAX_LIFETIME_SECS),
        "interval": interval,
    }))
    .map_err(|_| OAuthError::Malformed("the device authorization cannot be polled".into()))
}

/// `now + secs`, or `cap` when that is later (or not representable).
fn instant_after(now: Instant, secs: u64, cap: Instant) -> Instant {
    now.checked_add(Duration::from_secs(secs))
        .map_or(cap, |t| t.min(cap))
}

/// The error code and description of a provider's error answer.
fn described<T: ErrorResponseType + fmt::Display>(
    e: &StandardErrorResponse<T>,
) -> (String, Option<String>) {
    (e.error().to_string(), e.error_description().cloned())
}

/// oauth2's outcome as ours: the normalizer's reason for a failed request, the provider's
/// error with its HTTP status, or what oauth2 could not read.
fn settle<T, E: ErrorResponseType + fmt::Display + 'static>(
    wire: &Normalizer<'_>,
    result: Result<T, RequestTokenError<Failed, StandardErrorResponse<E>>>,
) -> Result<T, OAuthError> {
    result.map_err(|e| match e {
        RequestTokenError::Request(Failed) => wire
            .failure()
            .unwrap_or_else(|| OAuthError::Malformed("the request failed".into())),
        RequestTokenError::ServerResponse(e) => {
            let (error, description) = described(&e);
            OAuthError::Provider {
                error,
                description,
                status: wire.status(),
            }
        }
        other => other_error(other),
    })
}

/// What oauth2 could not read: the path of the field, never its value (it may be a token).
fn other_error<E: std::error::Error + 'static, R: oauth2::ErrorResponse + 'static>(
    e: RequestTokenError<E, R>,
) -> OAuthError {
    match e {
        RequestTokenError::Parse(e, _) => {
            OAuthError::Malformed(format!("oauth2 cannot read '{}'", e.path()))
        }
        RequestTokenError::Other(m) => OAuthError::Malformed(m),
        RequestTokenError::Request(_) => OAuthError::Malformed("the request failed".into()),
        RequestTokenError::ServerResponse(_) => {
            OAuthError::Malformed("the provider refused the request".into())
        }
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;

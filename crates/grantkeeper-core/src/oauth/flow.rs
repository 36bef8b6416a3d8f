//! The protocol steps of a grant, independent of storage: the authorization URL, checking the
//! redirect, and the token, introspection, device and client-credentials requests, each shaped
//! by the provider's quirks from the catalog.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::Value;
use url::Url;

use super::loopback::{CallbackParams, CancelToken};
use super::pkce::{constant_time_eq, PkceVerifier};
use super::token::{self, body_to_object, lookup, TokenResponse};
use super::OAuthError;
use crate::catalog::{ClientAuth, ExpiryInfo, Pkce, Preset, ResponseShape};
use crate::http::HttpClient;
use crate::model::Endpoints;
use crate::secret::ClientSecret;

/// How one provider app behaves: its preset's quirks, or plain-standard defaults.
#[derive(Debug, Clone)]
pub struct Quirks {
    /// Separator of scopes in requests.
    pub scope_separator: String,
    /// The authorization parameter that carries the scopes (`scope`; Slack user tokens: `user_scope`).
    pub scope_param: String,
    /// PKCE support.
    pub pkce: Pkce,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// Extra authorization parameters.
    pub authorize_params: BTreeMap<String, String>,
    /// Extra token-request headers.
    pub token_headers: BTreeMap<String, String>,
    /// Token-response shape.
    pub shape: ResponseShape,
    /// Lifetimes.
    pub expiry: ExpiryInfo,
}

impl Quirks {
    /// The quirks of `preset`, or standard behaviour for a custom provider. A client without a
    /// secret is a public client whatever the preset says.
    pub fn new(preset: Option<&Preset>, has_secret: bool) -> Self {
        let mut q = match preset {
            Some(p) => Self {
                scope_separator: p.scope_separator.clone(),
                scope_param: p.scope_param.clone(),
                pkce: p.pkce,
                client_auth: p.client_auth,
                authorize_params: p.authorize_params.clone(),
                token_headers: p.token_headers.clone(),
                shape: p.response.clone(),
                expiry: p.expiry.clone(),
            },
            None => Self {
                scope_separator: " ".into(),
                scope_param: "scope".into(),
                pkce: Pkce::Supported,
                client_auth: ClientAuth::ClientSecretBasic,
                authorize_params: BTreeMap::new(),
                token_headers: BTreeMap::new(),
                shape: ResponseShape::default(),
                expiry: ExpiryInfo::default(),
            },
        };
        if !has_secret {
            q.client_auth = ClientAuth::None;
        }
        q
    }
}

/// The client's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    /// Client id.
    pub id: String,
    /// Client secret, for confidential clients.
    pub secret: Option<ClientSecret>,
}

/// Everything a token request needs.
#[derive(Debug, Clone, Copy)]
pub struct TokenEndpoint<'a> {
    /// The endpoint URL.
    pub url: &'a str,
    /// The client.
    pub client: &'a Client,
    /// The provider's quirks.
    pub quirks: &'a Quirks,
    /// The HTTP client.
    pub http: &'a HttpClient,
}

impl TokenEndpoint<'_> {
    /// POSTs `params` with client authentication; returns the raw response.
    pub fn post(&self, params: &[(&str, &str)]) -> Result<crate::http::HttpResponse, OAuthError> {
        let mut form: Vec<(&str, &str)> = params.to_vec();
        let mut headers: Vec<(String, String)> = vec![("Accept".into(), "application/json".into())];
        for (k, v) in &self.quirks.token_headers {
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        match (&self.quirks.client_auth, &self.client.secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let basic =
                    B64.encode(format!("{}:{}", enc(&self.client.id), enc(secret.expose())));
                headers.push(("Authorization".into(), format!("Basic {basic}")));
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", &self.client.id));
                form.push(("client_secret", secret.expose()));
            }
            _ => form.push(("client_id", &self.client.id)),
        }
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Ok(self.http.post_form(self.url, &header_refs, &form)?)
    }

    /// A token request whose answer is a token response.
    pub fn request_tokens(&self, params: &[(&str, &str)]) -> Result<TokenResponse, OAuthError> {
        let resp = self.post(params)?;
        token::parse(&self.quirks.shape, &resp)
    }
}

/// Builds the authorization URL.
#[allow(clippy::too_many_arguments)]
pub fn authorization_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    verifier: &PkceVerifier,
    nonce: Option<&str>,
    quirks: &Quirks,
) -> Result<String, OAuthError> {
    crate::http::check(endpoint)?;
    let mut url = Url::parse(endpoint)
        .map_err(|_| OAuthError::Config("the authorization endpoint is not a URL".into()))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", client_id);
        q.append_pair("redirect_uri", redirect_uri);
        if !scopes.is_empty() {
            q.append_pair(&quirks.scope_param, &scopes.join(&quirks.scope_separator));
        }
        q.append_pair("state", state);
        if quirks.pkce != Pkce::Unsupported {
            q.append_pair("code_challenge", &verifier.challenge());
            q.append_pair("code_challenge_method", "S256");
        }
        if let Some(n) = nonce {
            q.append_pair("nonce", n);
        }
        for (k, v) in &quirks.authorize_params {
            q.append_pair(k, v);
        }
    }
    Ok(url.into())
}

/// Parses a redirect URL pasted by the user into its query parameters.
pub fn parse_pasted_redirect(pasted: &str) -> Result<CallbackParams, OAuthError> {
    let url = Url::parse(pasted.trim()).map_err(|_| {
        OAuthError::Config(
            "that is not a URL: paste the whole address from the browser's address bar".into(),
        )
    })?;
    let params: CallbackParams = url.query_pairs().into_owned().collect();
    if params.contains_key("code") || params.contains_key("error") {
        return Ok(params);
    }
    // Some providers answer in the fragment.
    let frag: CallbackParams = url::form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    if frag.contains_key("code") || frag.contains_key("error") {
        return Ok(frag);
    }
    Err(OAuthError::MissingCode)
}

/// Checks a redirect's `state`, error and `iss` (RFC 9207); returns the code.
pub fn check_callback<'p>(
    params: &'p CallbackParams,
    state: &str,
    issuer: Option<&str>,
    iss_required: bool,
) -> Result<&'p str, OAuthError> {
    let got_state = params.get("state").map(String::as_str).unwrap_or_default();
    if !constant_time_eq(got_state, state) {
        return Err(OAuthError::StateMismatch);
    }
    match (params.get("iss"), issuer) {
        (Some(got), Some(expected))
            if got.trim_end_matches('/') != expected.trim_end_matches('/') =>
        {
            return Err(OAuthError::IssuerMismatch {
                expected: expected.to_owned(),
                got: got.clone(),
            })
        }
        (None, Some(expected)) if iss_required => {
            return Err(OAuthError::IssuerMismatch {
                expected: expected.to_owned(),
                got: "(none)".into(),
            })
        }
        _ => {}
    }
    if let Some(error) = params.get("error") {
        return Err(OAuthError::Denied {
            error: error.chars().take(80).collect(),
            description: params
                .get("error_description")
                .map(|d| d.chars().take(200).collect()),
        });
    }
    params
        .get("code")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .ok_or(OAuthError::MissingCode)
}

/// RFC 7662 introspection of a token; returns the response object.
pub fn introspect(
    endpoint: &TokenEndpoint<'_>,
    token: &str,
    hint: &str,
) -> Result<serde_json::Map<String, Value>, OAuthError> {
    let resp = endpoint.post(&[("token", token), ("token_type_hint", hint)])?;
    let body = body_to_object(&resp)?;
    if !(200..300).contains(&resp.status) || body.contains_key("error") {
        return Err(token::provider_error(&body, resp.status));
    }
    if !body.get("active").is_some_and(Value::is_boolean) {
        return Err(OAuthError::Malformed(
            "the introspection answer has no 'active' field".into(),
        ));
    }
    Ok(body)
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

/// Starts a device authorization.
pub fn device_authorize(
    endpoint: &TokenEndpoint<'_>,
    device_url: &str,
    scopes: &[String],
) -> Result<DeviceAuthorization, OAuthError> {
    let scope = scopes.join(&endpoint.quirks.scope_separator);
    let ep = TokenEndpoint {
        url: device_url,
        ..*endpoint
    };
    let resp = ep.post(&[("scope", &scope)])?;
    let body = body_to_object(&resp)?;
    if !(200..300).contains(&resp.status) || body.contains_key("error") {
        return Err(token::provider_error(&body, resp.status));
    }
    let text = |k: &str| lookup(&body, k).and_then(Value::as_str).map(str::to_owned);
    // Lifetimes clamped to 10 years (see token::seconds); a malformed one takes the default.
    let num = |k: &str| token::seconds(lookup(&body, k), k).ok().flatten();
    Ok(DeviceAuthorization {
        device_code: text("device_code")
            .ok_or_else(|| OAuthError::Malformed("no device_code".into()))?,
        user_code: text("user_code").ok_or_else(|| OAuthError::Malformed("no user_code".into()))?,
        verification_uri: text("verification_uri")
            .or_else(|| text("verification_url"))
            .ok_or_else(|| OAuthError::Malformed("no verification_uri".into()))?,
        verification_uri_complete: text("verification_uri_complete"),
        expires_in: num("expires_in").unwrap_or(600),
        interval: num("interval").unwrap_or(5).max(1),
    })
}

/// `now + secs`, or `cap` when that is later (or not representable).
fn instant_after(now: Instant, secs: u64, cap: Instant) -> Instant {
    now.checked_add(Duration::from_secs(secs))
        .map_or(cap, |t| t.min(cap))
}

/// Polls the token endpoint until the user approves, denies, or the codes expire.
pub fn device_poll(
    endpoint: &TokenEndpoint<'_>,
    device: &DeviceAuthorization,
    cancel: &CancelToken,
) -> Result<TokenResponse, OAuthError> {
    let start = Instant::now();
    // At most 10 years; far enough whatever the platform's Instant can hold.
    let far = start
        .checked_add(token::MAX_LIFETIME)
        .or_else(|| start.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(start);
    let deadline = instant_after(start, device.expires_in, far);
    let mut interval = device.interval.clamp(1, token::MAX_LIFETIME_SECS);
    loop {
        let wait_until = instant_after(Instant::now(), interval, deadline);
        while Instant::now() < wait_until {
            if cancel.is_cancelled() {
                return Err(OAuthError::Cancelled);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if Instant::now() >= deadline {
            return Err(OAuthError::TimedOut {
                seconds: device.expires_in,
            });
        }
        match endpoint.request_tokens(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", &device.device_code),
        ]) {
            Ok(t) => return Ok(t),
            Err(OAuthError::Provider { error, .. }) if error == "authorization_pending" => {}
            Err(OAuthError::Provider { error, .. }) if error == "slow_down" => {
                interval = interval.saturating_add(5).min(token::MAX_LIFETIME_SECS)
            }
            Err(OAuthError::Provider {
                error, description, ..
            }) if error == "access_denied" || error == "expired_token" => {
                return Err(OAuthError::Denied { error, description })
            }
            Err(e) => return Err(e),
        }
    }
}

/// The resolved endpoints a flow needs, with a clear error for a missing one.
pub fn require<'e>(endpoints: &'e Endpoints, which: &str) -> Result<&'e str, OAuthError> {
    let v = match which {
        "authorization" => &endpoints.authorization,
        "token" => &endpoints.token,
        "device_authorization" => &endpoints.device_authorization,
        "introspection" => &endpoints.introspection,
        "revocation" => &endpoints.revocation,
        _ => &None,
    };
    v.as_deref()
        .ok_or_else(|| OAuthError::Config(format!("the provider app has no {which} endpoint")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpClient;

    fn params(pairs: &[(&str, &str)]) -> CallbackParams {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn authorization_url_has_pkce_s256_and_quirks() {
        let mut q = Quirks::new(None, false);
        q.authorize_params
            .insert("access_type".into(), "offline".into());
        q.scope_separator = ",".into();
        let v = PkceVerifier::generate();
        let url = authorization_url(
            "https://idp.example/authorize?tenant=x",
            "cid",
            "http://127.0.0.1:5000/callback",
            &["a".into(), "b".into()],
            "st",
            &v,
            Some("n1"),
            &q,
        )
        .unwrap();
        let u = Url::parse(&url).unwrap();
        let p: BTreeMap<_, _> = u.query_pairs().into_owned().collect();
        assert_eq!(p["tenant"], "x");
        assert_eq!(p["scope"], "a,b");
        assert_eq!(p["code_challenge_method"], "S256");
        assert_eq!(p["code_challenge"], v.challenge());
        assert_eq!(p["access_type"], "offline");
        assert_eq!(p["nonce"], "n1");
        assert!(
            !url.contains(v.expose()),
            "the verifier never travels in the URL"
        );
        assert!(authorization_url(
            "http://idp.example/authorize",
            "c",
            "r",
            &[],
            "s",
            &v,
            None,
            &q
        )
        .is_err());
    }

    #[test]
    fn callback_checks() {
        let ok = params(&[("code", "c1"), ("state", "s1"), ("iss", "https://idp")]);
        assert_eq!(
            check_callback(&ok, "s1", Some("https://idp/"), true).unwrap(),
            "c1"
        );
        assert!(matches!(
            check_callback(&ok, "s2", Some("https://idp"), true),
            Err(OAuthError::StateMismatch)
        ));
        assert!(matches!(
            check_callback(&ok, "s1", Some("https://evil"), false),
            Err(OAuthError::IssuerMismatch { .. })
        ));
        let no_iss = params(&[("code", "c1"), ("state", "s1")]);
        assert!(check_callback(&no_iss, "s1", Some("https://idp"), false).is_ok());
        assert!(matches!(
            check_callback(&no_iss, "s1", Some("https://idp"), true),
            Err(OAuthError::IssuerMismatch { .. })
        ));
        let denied = params(&[("error", "access_denied"), ("state", "s1")]);
        assert!(matches!(
            check_callback(&denied, "s1", None, false),
            Err(OAuthError::Denied { .. })
        ));
        let forged_denial = params(&[("error", "access_denied"), ("state", "zz")]);
        assert!(matches!(
            check_callback(&forged_denial, "s1", None, false),
            Err(OAuthError::StateMismatch)
        ));
        assert!(matches!(
            check_callback(&params(&[("state", "s1")]), "s1", None, false),
            Err(OAuthError::MissingCode)
        ));
    }

    #[test]
    fn device_lifetimes_are_clamped_and_never_overflow() {
        use crate::oauth::stub::{Stub, StubResponse};
        let stub = Stub::start(|req| match req.path.as_str() {
            "/device" => StubResponse::json(
                200,
                &format!(
                    r#"{{"device_code":"dc","user_code":"UC","verification_uri":"https://x/d","expires_in":{},"interval":"{}"}}"#,
                    u64::MAX,
                    u64::MAX
                ),
            ),
            _ => StubResponse::json(
                200,
                r#"{"access_token":"at","token_type":"Bearer","expires_in":18446744073709551615}"#,
            ),
        });
        let client = Client {
            id: "cid".into(),
            secret: None,
        };
        let quirks = Quirks::new(None, false);
        let http = HttpClient::default();
        let token_url = format!("{}/token", stub.base);
        let ep = TokenEndpoint {
            url: &token_url,
            client: &client,
            quirks: &quirks,
            http: &http,
        };
        let device = device_authorize(&ep, &format!("{}/device", stub.base), &[]).unwrap();
        assert_eq!(device.expires_in, token::MAX_LIFETIME_SECS);
        assert_eq!(device.interval, token::MAX_LIFETIME_SECS);
        // A ten-year interval: the wait is cut by Cancel, with no Instant overflow.
        let cancel = CancelToken::default();
        let c2 = cancel.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            c2.cancel();
        });
        assert!(matches!(
            device_poll(&ep, &device, &cancel),
            Err(OAuthError::Cancelled)
        ));
        t.join().unwrap();
        // u64::MAX straight in the struct (no clamp on the way in) does not panic either.
        let raw = DeviceAuthorization {
            interval: 1,
            expires_in: u64::MAX,
            ..device
        };
        let r = device_poll(&ep, &raw, &CancelToken::default()).unwrap();
        assert_eq!(r.expires_in, Some(token::MAX_LIFETIME_SECS));
        let none_left = DeviceAuthorization {
            interval: u64::MAX,
            expires_in: 0,
            ..raw
        };
        assert!(matches!(
            device_poll(&ep, &none_left, &CancelToken::default()),
            Err(OAuthError::TimedOut { .. })
        ));
    }

    #[test]
    fn pasted_redirects() {
        let p = parse_pasted_redirect(" https://relay.example/cb?code=abc&state=s~123&realmId=42 ")
            .unwrap();
        assert_eq!(p["realmId"], "42");
        assert!(parse_pasted_redirect("https://relay.example/cb#code=x&state=y").is_ok());
        assert!(matches!(
            parse_pasted_redirect("https://relay.example/cb?foo=1"),
            Err(OAuthError::MissingCode)
        ));
        assert!(parse_pasted_redirect("not a url").is_err());
    }
}

//! The one layer between oauth2 and the network: oauth2's requests go out through the core's
//! hardened [`HttpClient`] with the provider's token headers, and each provider's answer comes
//! back to oauth2 in standard shape (RFC 6749, 7009, 7662, 8628), as the catalog's response shape
//! says: form bodies become JSON, errors sent with HTTP 200 become HTTP 400 with a standard error
//! object, lifetimes sent as strings become numbers, nested tokens move to the top level, a
//! missing `token_type` becomes `Bearer`, scopes become space-separated. An answer that has no
//! standard shape (no access token, a token type the preset refuses, a body that is neither JSON
//! nor a form) is refused here with the precise reason, and oauth2 never sees it.

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::assertion::ClientAssertion;
use super::dpop::{self, DpopKey};
use super::flow::Quirks;
use super::token::{body_to_object, lookup, provider_error, seconds, split_scopes};
use super::OAuthError;
use crate::catalog::ResponseShape;
use crate::http::{HttpClient, HttpResponse};

/// Which kind of answer a request expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A token response (RFC 6749 5.1).
    Token,
    /// A device authorization response (RFC 8628 3.2).
    Device,
    /// An introspection response (RFC 7662 2.2).
    Introspection,
    /// A revocation response (RFC 7009 2.2): the status says it all.
    Revocation,
}

/// Where requests go: the hardened client, or one recorded answer (fuzzing replays bodies
/// through the whole path without a network).
#[derive(Debug, Clone)]
pub(crate) enum Wire<'a> {
    /// The network, through the hardened client.
    Http(&'a HttpClient),
    /// Every request gets this answer.
    Recorded(HttpResponse),
}

impl Wire<'_> {
    /// POSTs a form that oauth2 does not build (a pushed authorization request).
    pub(crate) fn post_form(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Result<HttpResponse, OAuthError> {
        match self {
            Wire::Http(http) => Ok(http.post_form(url, headers, form)?),
            Wire::Recorded(resp) => {
                crate::http::check(url)?;
                Ok(resp.clone())
            }
        }
    }
}

/// oauth2's HTTP client for one operation. What went wrong stays here ([`Normalizer::failure`]):
/// oauth2 only learns that the request failed.
#[derive(Debug)]
pub(crate) struct Normalizer<'a> {
    wire: Wire<'a>,
    quirks: &'a Quirks,
    answer: Answer,
    /// The URL requests really go to, when oauth2 was handed another (see `protocol::revoke`).
    target: Option<&'a str>,
    /// Signs a fresh client assertion into each request (`private_key_jwt`).
    assertion: Option<ClientAssertion<'a>>,
    /// Signs a DPoP proof into each request, and accepts `DPoP` tokens.
    dpop: Option<&'a DpopKey>,
    outcome: Mutex<Outcome>,
}

#[derive(Debug, Default)]
struct Outcome {
    /// The provider's HTTP status of the last answer.
    status: u16,
    /// Why the last request failed, when oauth2 was told only that it did.
    failure: Option<OAuthError>,
    /// The server's latest DPoP nonce, for the next proof.
    nonce: Option<String>,
}

/// The error oauth2 sees when a request fails; the reason is kept by the [`Normalizer`].
#[derive(Debug, thiserror::Error)]
#[error("the request failed")]
pub(crate) struct Failed;

impl<'a> Normalizer<'a> {
    pub(crate) fn new(wire: Wire<'a>, quirks: &'a Quirks, answer: Answer) -> Self {
        Self {
            wire,
            quirks,
            answer,
            target: None,
            assertion: None,
            dpop: None,
            outcome: Mutex::new(Outcome::default()),
        }
    }

    /// Requests go to `url` whatever oauth2 names.
    pub(crate) fn sending_to(self, url: &'a str) -> Self {
        Self {
            target: Some(url),
            ..self
        }
    }

    /// Each request carries a fresh client assertion (with a new `jti`: the device flow's
    /// polls are separate requests).
    pub(crate) fn asserting(self, assertion: Option<ClientAssertion<'a>>) -> Self {
        Self { assertion, ..self }
    }

    /// Each request carries a DPoP proof made with `key` (RFC 9449), and a `DPoP` token type is
    /// accepted.
    pub(crate) fn proving(self, dpop: Option<&'a DpopKey>) -> Self {
        Self { dpop, ..self }
    }

    fn outcome(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The provider's HTTP status of the last answer.
    pub(crate) fn status(&self) -> u16 {
        self.outcome().status
    }

    /// Whether a request failed (the device flow's polling stops on it).
    pub(crate) fn failed(&self) -> bool {
        self.outcome().failure.is_some()
    }

    /// Why the last request failed.
    pub(crate) fn failure(&self) -> Option<OAuthError> {
        self.outcome().failure.take()
    }

    fn send(&self, request: oauth2::HttpRequest) -> Result<HttpResponse, OAuthError> {
        let url = match self.target {
            Some(url) => url.to_owned(),
            None => request.uri().to_string(),
        };
        if request.method() != http::Method::POST {
            return Err(OAuthError::Config(format!(
                "oauth2 asked for a {} request; only POST is sent to provider endpoints",
                request.method()
            )));
        }
        let mut headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        for (k, v) in &self.quirks.token_headers {
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        let body = request.into_body();
        let resp = self.post(&url, &headers, &body)?;
        // A server that wants a nonce in the proof says which (RFC 9449 §8): once more with it.
        let Some(nonce) = self.dpop.and_then(|_| dpop::nonce_asked(&resp)) else {
            return Ok(resp);
        };
        self.outcome().nonce = Some(nonce);
        self.post(&url, &headers, &body)
    }

    /// One POST of `body` with a fresh client assertion and DPoP proof when the app uses them.
    fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<HttpResponse, OAuthError> {
        let mut body = body.to_vec();
        if let Some(assertion) = &self.assertion {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(assertion.form()?);
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(form.finish().as_bytes());
        }
        let proof = match self.dpop {
            Some(key) => {
                let nonce = self.outcome().nonce.clone();
                Some(key.proof("POST", url, nonce.as_deref(), None)?)
            }
            None => None,
        };
        let mut header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(p) = &proof {
            header_refs.push(("DPoP", p));
        }
        let resp = match &self.wire {
            Wire::Http(http) => http.post_bytes(url, &header_refs, body)?,
            Wire::Recorded(resp) => {
                crate::http::check(url)?;
                resp.clone()
            }
        };
        if let Some(n) = resp.header("dpop-nonce").filter(|_| self.dpop.is_some()) {
            self.outcome().nonce = Some(n.to_owned());
        }
        Ok(resp)
    }

    /// The provider's answer in standard shape: 200 with the JSON object, or 400 with a standard
    /// error object.
    fn normalize(&self, resp: &HttpResponse) -> Result<oauth2::HttpResponse, OAuthError> {
        let shaped = match self.answer {
            Answer::Token => token(&self.quirks.shape, self.dpop.is_some(), resp),
            Answer::Device => device(resp),
            Answer::Introspection => introspection(resp),
            Answer::Revocation => revocation(resp),
        };
        let (status, body) = match shaped {
            Ok(body) => (200, body),
            Err(OAuthError::Provider {
                error, description, ..
            }) => (
                400,
                json!({ "error": error, "error_description": description })
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            Err(other) => return Err(other),
        };
        let bytes = if self.answer == Answer::Revocation && status == 200 {
            Vec::new()
        } else {
            Value::Object(body).to_string().into_bytes()
        };
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .map_err(|e| OAuthError::Malformed(format!("cannot hand the answer to oauth2: {e}")))
    }
}

impl oauth2::SyncHttpClient for Normalizer<'_> {
    type Error = Failed;

    fn call(&self, request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, Failed> {
        let result = self.send(request).and_then(|resp| {
            self.outcome().status = resp.status;
            self.normalize(&resp)
        });
        result.map_err(|e| {
            self.outcome().failure = Some(e);
            Failed
        })
    }
}

/// A failed answer: an `error` field, the preset's `ok` field false, or a status other than 2xx.
fn refused(body: &Map<String, Value>, status: u16, ok_field: Option<&str>) -> bool {
    ok_field.is_some_and(|f| lookup(body, f).and_then(Value::as_bool) == Some(false))
        || body.contains_key("error")
        || !(200..300).contains(&status)
}

/// A token response in RFC 6749 shape; every other field of the answer is kept as it was, for
/// the metadata the preset names. A `DPoP` token is taken only when the request carried a proof.
pub(crate) fn token(
    shape: &ResponseShape,
    proved: bool,
    resp: &HttpResponse,
) -> Result<Map<String, Value>, OAuthError> {
    let mut body = body_to_object(resp)?;
    if refused(&body, resp.status, shape.ok_field.as_deref()) {
        return Err(provider_error(&body, resp.status));
    }
    let access = lookup(&body, &shape.access_token)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(OAuthError::MissingAccessToken)?
        .to_owned();
    // token_type sits beside the access token (Slack's user token: authed_user.token_type).
    let parent = shape.access_token.rsplit_once('.').map(|(p, _)| p);
    let type_path = parent.map_or_else(|| "token_type".to_owned(), |p| format!("{p}.token_type"));
    let token_type = lookup(&body, &type_path)
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(tt) = &token_type {
        let bound = proved && tt.eq_ignore_ascii_case(dpop::TOKEN_TYPE);
        if !bound
            && !shape.token_types.is_empty()
            && !shape.token_types.iter().any(|t| t.eq_ignore_ascii_case(tt))
        {
            return Err(OAuthError::WrongTokenType(tt.chars().take(40).collect()));
        }
    }
    let refresh = lookup(&body, &shape.refresh_token)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let expires_in = seconds(lookup(&body, &shape.expires_in), &shape.expires_in)?;
    let refresh_expires_in = match &shape.refresh_expires_in {
        Some(path) => seconds(lookup(&body, path), path)?,
        None => None,
    };
    let refresh_hard_expires_in = match &shape.refresh_hard_expires_in {
        Some(path) => seconds(lookup(&body, path), path)?,
        None => None,
    };
    let scope = match lookup(&body, &shape.scope) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(split_scopes(s, &shape.scope_separator).join(" ")),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some(_) => {
            return Err(OAuthError::Malformed(format!(
                "'{}' is neither a string nor a list",
                shape.scope
            )))
        }
    };
    let id_token = body
        .get("id_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut set = |key: &str, value: Option<Value>| match value {
        Some(v) => {
            body.insert(key.to_owned(), v);
        }
        None => {
            body.remove(key);
        }
    };
    set("access_token", Some(Value::String(access)));
    set(
        "token_type",
        Some(Value::String(token_type.unwrap_or_else(|| "Bearer".into()))),
    );
    set("refresh_token", refresh.map(Value::String));
    set("expires_in", expires_in.map(Value::from));
    set(REFRESH_EXPIRES_IN, refresh_expires_in.map(Value::from));
    set(
        REFRESH_HARD_EXPIRES_IN,
        refresh_hard_expires_in.map(Value::from),
    );
    set("scope", scope.map(Value::String));
    set("id_token", id_token.map(Value::String));
    Ok(body)
}

/// Where the normalized token response carries the refresh token's lifetime (the name Google
/// and GitHub use), whatever path the preset reads it from.
pub(crate) const REFRESH_EXPIRES_IN: &str = "refresh_token_expires_in";

/// Where the normalized token response carries the seconds left before the refresh token's hard
/// expiry, whatever path the preset reads them from (Intuit's `x_refresh_token_hard_expires_in`).
pub(crate) const REFRESH_HARD_EXPIRES_IN: &str = "refresh_token_hard_expires_in";

/// A device authorization response in RFC 8628 shape: lifetimes as numbers of seconds, clamped
/// to ten years (a malformed one takes the RFC's default), the interval at least 1 s.
fn device(resp: &HttpResponse) -> Result<Map<String, Value>, OAuthError> {
    let body = body_to_object(resp)?;
    if refused(&body, resp.status, None) {
        return Err(provider_error(&body, resp.status));
    }
    let text = |k: &str| lookup(&body, k).and_then(Value::as_str).map(str::to_owned);
    let num = |k: &str| seconds(lookup(&body, k), k).ok().flatten();
    let required = |k: &str| text(k).ok_or_else(|| OAuthError::Malformed(format!("no {k}")));
    let mut out = Map::new();
    out.insert("device_code".into(), required("device_code")?.into());
    out.insert("user_code".into(), required("user_code")?.into());
    let verification = text("verification_uri")
        .or_else(|| text("verification_url"))
        .ok_or_else(|| OAuthError::Malformed("no verification_uri".into()))?;
    out.insert("verification_uri".into(), verification.into());
    if let Some(complete) = text("verification_uri_complete") {
        out.insert("verification_uri_complete".into(), complete.into());
    }
    out.insert("expires_in".into(), num("expires_in").unwrap_or(600).into());
    out.insert(
        "interval".into(),
        num("interval").unwrap_or(5).max(1).into(),
    );
    Ok(out)
}

/// The latest time oauth2 can hold (9999-12-31T23:59:59Z), in Unix seconds.
const LATEST_TIME: i64 = 253_402_300_799;

/// An introspection response in RFC 7662 shape. `active` must be a boolean; a standard field of
/// another type than the RFC's is left out (times are kept within what oauth2 can hold), every
/// other field is kept as it was.
fn introspection(resp: &HttpResponse) -> Result<Map<String, Value>, OAuthError> {
    let mut body = body_to_object(resp)?;
    if refused(&body, resp.status, None) {
        return Err(provider_error(&body, resp.status));
    }
    if !body.get("active").is_some_and(Value::is_boolean) {
        return Err(OAuthError::Malformed(
            "the introspection answer has no 'active' field".into(),
        ));
    }
    for key in ["exp", "iat", "nbf"] {
        let time = match body.get(key) {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
            Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        match time {
            Some(t) => body.insert(key.into(), t.clamp(0, LATEST_TIME).into()),
            None => body.remove(key),
        };
    }
    for key in [
        "scope",
        "client_id",
        "username",
        "token_type",
        "sub",
        "iss",
        "jti",
    ] {
        if body.get(key).is_some_and(|v| !v.is_string()) {
            body.remove(key);
        }
    }
    let aud_ok = match body.get("aud") {
        None | Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    };
    if !aud_ok {
        body.remove("aud");
    }
    Ok(body)
}

/// A revocation answer: any 2xx is success (the body is ignored, RFC 7009 2.2); any other
/// status is the endpoint refusing.
fn revocation(resp: &HttpResponse) -> Result<Map<String, Value>, OAuthError> {
    if (200..300).contains(&resp.status) {
        Ok(Map::new())
    } else {
        Err(OAuthError::Provider {
            error: format!("http_{}", resp.status),
            description: Some("the revocation endpoint refused".into()),
            status: resp.status,
        })
    }
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;

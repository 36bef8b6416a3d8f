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
    outcome: Mutex<Outcome>,
}

#[derive(Debug, Default)]
struct Outcome {
    /// The provider's HTTP status of the last answer.
    status: u16,
    /// Why the last request failed, when oauth2 was told only that it did.
    failure: Option<OAuthError>,
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
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut body = request.into_body();
        if let Some(assertion) = &self.assertion {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(assertion.form()?);
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend_from_slice(form.finish().as_bytes());
        }
        match &self.wire {
            Wire::Http(http) => Ok(http.post_bytes(&url, &header_refs, body)?),
            Wire::Recorded(resp) => {
                crate::http::check(&url)?;
                Ok(resp.clone())
            }
        }
    }

    /// The provider's answer in standard shape: 200 with the JSON object, or 400 with a standard
    /// error object.
    fn normalize(&self, resp: &HttpResponse) -> Result<oauth2::HttpResponse, OAuthError> {
        let shaped = match self.answer {
            Answer::Token => token(&self.quirks.shape, resp),
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
/// the metadata the preset names.
pub(crate) fn token(
    shape: &ResponseShape,
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
        if !shape.token_types.is_empty()
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
mod tests {
    use std::collections::BTreeMap;

    use super::super::token::*;
    use super::*;

    /// A token endpoint's answer through the whole path: the normalizer, then oauth2.
    fn parse(shape: &ResponseShape, resp: &HttpResponse) -> Result<TokenResponse, OAuthError> {
        crate::oauth::protocol::exchange_answer(shape, resp.clone())
    }

    fn resp(status: u16, ct: &str, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            content_type: Some(ct.to_owned()),
            body: body.as_bytes().to_vec(),
        }
    }

    fn json(body: &str) -> HttpResponse {
        resp(200, "application/json", body)
    }

    #[test]
    fn standard_json() {
        let r = parse(
            &ResponseShape::default(),
            &json(r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt","scope":"openid email","id_token":"a.b.c"}"#),
        )
        .unwrap();
        assert_eq!(r.tokens.access_token.expose(), "at");
        assert_eq!(r.tokens.refresh_token.unwrap().expose(), "rt");
        assert_eq!(r.tokens.id_token.unwrap().expose(), "a.b.c");
        assert_eq!(r.expires_in, Some(3600));
        assert_eq!(r.scopes.unwrap(), vec!["openid", "email"]);
    }

    #[test]
    fn expires_in_as_string_or_absent() {
        let r = parse(
            &ResponseShape::default(),
            &json(r#"{"access_token":"at","token_type":"bearer","expires_in":"3599"}"#),
        )
        .unwrap();
        assert_eq!(r.expires_in, Some(3599));
        let r = parse(
            &ResponseShape::default(),
            &json(r#"{"access_token":"at","token_type":"bearer"}"#),
        )
        .unwrap();
        assert_eq!(r.expires_in, None);
        assert!(r.scopes.is_none());
        let e = parse(
            &ResponseShape::default(),
            &json(r#"{"access_token":"at","expires_in":"soon"}"#),
        )
        .unwrap_err();
        assert!(matches!(e, OAuthError::Malformed(_)));
    }

    #[test]
    fn absurd_lifetimes_are_clamped_to_ten_years() {
        let shape = ResponseShape {
            refresh_expires_in: Some("x_refresh_token_expires_in".into()),
            refresh_hard_expires_in: Some("x_refresh_token_hard_expires_in".into()),
            ..ResponseShape::default()
        };
        let ten_years = Some(MAX_LIFETIME_SECS);
        for v in [
            u64::MAX.to_string(),
            format!("\"{}\"", u64::MAX),
            i64::MAX.to_string(),
            "1e300".into(),
            "\"99999999999999999999999999999\"".into(),
            "315576001".into(),
        ] {
            let body = format!(
                r#"{{"access_token":"at","token_type":"bearer","expires_in":{v},"x_refresh_token_expires_in":{v},"x_refresh_token_hard_expires_in":{v}}}"#
            );
            let r = parse(&shape, &json(&body)).unwrap();
            assert_eq!(r.expires_in, ten_years, "{v}");
            assert_eq!(r.refresh_expires_in, ten_years, "{v}");
            assert_eq!(r.refresh_hard_expires_in, ten_years, "{v}");
        }
        for v in [
            "-1",
            "-1e300",
            "\"-5\"",
            "\"1.5e3\"",
            i64::MIN.to_string().as_str(),
        ] {
            let body = format!(r#"{{"access_token":"at","expires_in":{v}}}"#);
            assert!(
                matches!(parse(&shape, &json(&body)), Err(OAuthError::Malformed(_))),
                "{v}"
            );
        }
        assert_eq!(lifetime_ms(u64::MAX), 315_576_000_000);
        assert_eq!(expiry_after(i64::MAX - 5, u64::MAX), i64::MAX);
        assert_eq!(expiry_after(1_000, 2), 3_000);
        let now = 1_700_000_000_000;
        assert_eq!(clamp_expiry(now, i64::MAX), now + 315_576_000_000);
        assert_eq!(clamp_expiry(now, i64::MIN), 0);
        assert_eq!(clamp_expiry(now, now + 5), now + 5);
        assert_eq!(clamp_min_valid(std::time::Duration::MAX), MAX_LIFETIME);
    }

    #[test]
    fn form_encoded_body() {
        let r = parse(
            &ResponseShape {
                scope_separator: ",".into(),
                ..ResponseShape::default()
            },
            &resp(
                200,
                "application/x-www-form-urlencoded",
                "access_token=gho_x&scope=repo%2Cgist&token_type=bearer",
            ),
        )
        .unwrap();
        assert_eq!(r.tokens.access_token.expose(), "gho_x");
        assert_eq!(r.scopes.unwrap(), vec!["repo", "gist"]);
    }

    #[test]
    fn errors_with_http_200() {
        let e = parse(&ResponseShape::default(), &json(r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#)).unwrap_err();
        assert!(
            matches!(e, OAuthError::Provider { ref error, status: 200, .. } if error == "bad_verification_code")
        );
        let slack = ResponseShape {
            ok_field: Some("ok".into()),
            ..ResponseShape::default()
        };
        let e = parse(&slack, &json(r#"{"ok":false,"error":"invalid_code"}"#)).unwrap_err();
        assert!(matches!(e, OAuthError::Provider { ref error, .. } if error == "invalid_code"));
    }

    #[test]
    fn nested_tokens_and_metadata() {
        let shape = ResponseShape {
            access_token: "authed_user.access_token".into(),
            scope: "authed_user.scope".into(),
            scope_separator: ",".into(),
            ok_field: Some("ok".into()),
            token_types: vec!["user".into()],
            metadata: BTreeMap::from([
                ("team_id".into(), "team.id".into()),
                ("missing".into(), "nope.x".into()),
            ]),
            ..ResponseShape::default()
        };
        let r = parse(
            &shape,
            &json(r#"{"ok":true,"team":{"id":"T1","name":"Acme"},"authed_user":{"id":"U1","scope":"chat:write,users:read","access_token":"xoxp-1","token_type":"user"}}"#),
        )
        .unwrap();
        assert_eq!(r.tokens.access_token.expose(), "xoxp-1");
        assert_eq!(r.scopes.unwrap(), vec!["chat:write", "users:read"]);
        assert_eq!(r.metadata.get("team_id").map(String::as_str), Some("T1"));
        assert!(!r.metadata.contains_key("missing"));
    }

    #[test]
    fn faults_are_clear() {
        let d = ResponseShape::default();
        assert!(matches!(
            parse(&d, &json(r#"{"token_type":"bearer"}"#)),
            Err(OAuthError::MissingAccessToken)
        ));
        assert!(matches!(
            parse(&d, &json(r#"{"access_token":"","token_type":"bearer"}"#)),
            Err(OAuthError::MissingAccessToken)
        ));
        assert!(matches!(
            parse(&d, &json(r#"{"access_token":"at","token_type":"mac"}"#)),
            Err(OAuthError::WrongTokenType(_))
        ));
        let e = parse(&d, &json(r#"{"access_token": "at-secret", "#)).unwrap_err();
        assert!(matches!(e, OAuthError::Malformed(_)));
        assert!(!e.to_string().contains("at-secret"));
        assert!(matches!(
            parse(&d, &resp(500, "text/html", "<h1>oops</h1>")),
            Err(OAuthError::Malformed(_))
        ));
        let e = parse(
            &d,
            &resp(500, "application/json", r#"{"error":"server_error"}"#),
        )
        .unwrap_err();
        assert!(matches!(e, OAuthError::Provider { status: 500, .. }));
        assert!(matches!(
            parse(&d, &json("[1,2]")),
            Err(OAuthError::Malformed(_))
        ));
    }
}

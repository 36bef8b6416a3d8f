//! Token-endpoint responses, parsed leniently and per provider: JSON or form-encoded bodies,
//! errors sent with HTTP 200, `expires_in` as a number or a string, tokens nested in the
//! response, comma- or space-separated scopes, and provider metadata.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::OAuthError;
use crate::catalog::ResponseShape;
use crate::http::HttpResponse;
use crate::secret::{AccessToken, IdToken, RefreshToken, TokenSet};

/// The longest lifetime Grantkeeper believes (about 10 years): a provider's `expires_in`,
/// `refresh_expires_in`, a JWT's `exp`, a device code's life and a caller's `min_valid` are
/// clamped to it, so no lifetime overflows when it becomes a time.
pub const MAX_LIFETIME: std::time::Duration = std::time::Duration::from_secs(MAX_LIFETIME_SECS);

/// [`MAX_LIFETIME`] in seconds: 10 years of 365.25 days.
pub const MAX_LIFETIME_SECS: u64 = 315_576_000;

/// A lifetime in seconds as milliseconds, clamped to [`MAX_LIFETIME`].
pub fn lifetime_ms(secs: u64) -> i64 {
    // Cannot overflow: at most 315,576,000,000.
    secs.min(MAX_LIFETIME_SECS) as i64 * 1000
}

/// The time `secs` after `now` (Unix milliseconds), the lifetime clamped to [`MAX_LIFETIME`],
/// the sum saturating.
pub fn expiry_after(now: i64, secs: u64) -> i64 {
    now.saturating_add(lifetime_ms(secs))
}

/// An absolute expiry (a JWT's or introspection's `exp`, in Unix milliseconds) kept within
/// `[0, now + MAX_LIFETIME]`: an absurd future is the most Grantkeeper believes, a negative one
/// long past.
pub fn clamp_expiry(now: i64, at: i64) -> i64 {
    at.clamp(0, expiry_after(now.max(0), MAX_LIFETIME_SECS))
}

/// A caller's minimum validity clamped to [`MAX_LIFETIME`].
pub fn clamp_min_valid(min_valid: std::time::Duration) -> std::time::Duration {
    min_valid.min(MAX_LIFETIME)
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The tokens.
    pub tokens: TokenSet,
    /// The access token's lifetime in seconds, when the response gave it.
    pub expires_in: Option<u64>,
    /// The refresh token's lifetime in seconds, when the response gave it.
    pub refresh_expires_in: Option<u64>,
    /// The granted scopes, when the response listed them.
    pub scopes: Option<Vec<String>>,
    /// Provider metadata named by the preset (instance_url, team id, …).
    pub metadata: BTreeMap<String, String>,
}

/// Parses a token-endpoint response with the provider's `shape`.
pub fn parse(shape: &ResponseShape, resp: &HttpResponse) -> Result<TokenResponse, OAuthError> {
    let body = body_to_object(resp)?;
    if let Some(field) = &shape.ok_field {
        if lookup(&body, field).and_then(Value::as_bool) == Some(false) {
            return Err(provider_error(&body, resp.status));
        }
    }
    if body.contains_key("error") || !(200..300).contains(&resp.status) {
        return Err(provider_error(&body, resp.status));
    }

    let access = lookup(&body, &shape.access_token)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(OAuthError::MissingAccessToken)?;
    // token_type sits beside the access token (Slack's user token: authed_user.token_type).
    let parent = shape.access_token.rsplit_once('.').map(|(p, _)| p);
    let type_path = parent.map_or_else(|| "token_type".to_owned(), |p| format!("{p}.token_type"));
    if let Some(tt) = lookup(&body, &type_path).and_then(Value::as_str) {
        if !shape.token_types.is_empty()
            && !shape.token_types.iter().any(|t| t.eq_ignore_ascii_case(tt))
        {
            return Err(OAuthError::WrongTokenType(tt.chars().take(40).collect()));
        }
    }
    let refresh = lookup(&body, &shape.refresh_token)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let id_token = body
        .get("id_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());

    let expires_in = seconds(lookup(&body, &shape.expires_in), &shape.expires_in)?;
    let refresh_expires_in = match &shape.refresh_expires_in {
        Some(path) => seconds(lookup(&body, path), path)?,
        None => None,
    };
    let scopes = match lookup(&body, &shape.scope) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(split_scopes(s, &shape.scope_separator)),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(_) => {
            return Err(OAuthError::Malformed(format!(
                "'{}' is neither a string nor a list",
                shape.scope
            )))
        }
    };
    let mut metadata = BTreeMap::new();
    for (key, path) in &shape.metadata {
        match lookup(&body, path) {
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
            access_token: AccessToken::new(access),
            refresh_token: refresh.map(RefreshToken::new),
            id_token: id_token.map(IdToken::new),
        },
        expires_in,
        refresh_expires_in,
        scopes,
        metadata,
    })
}

/// Splits a scope string on the provider's separator (and on whitespace, which no scope holds).
pub fn split_scopes(s: &str, separator: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || separator.contains(c))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The body as a JSON object: JSON when it looks like JSON, else form-encoded.
pub fn body_to_object(resp: &HttpResponse) -> Result<Map<String, Value>, OAuthError> {
    let text = std::str::from_utf8(&resp.body)
        .map_err(|_| OAuthError::Malformed("the body is not UTF-8 text".into()))?;
    let trimmed = text.trim_start();
    let is_json = resp
        .content_type
        .as_deref()
        .is_some_and(|c| c.contains("json"))
        || trimmed.starts_with('{');
    if is_json {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(OAuthError::Malformed(
                "the JSON body is not an object".into(),
            )),
            Err(e) => Err(OAuthError::Malformed(format!(
                "invalid JSON at line {} column {} (HTTP {})",
                e.line(),
                e.column(),
                resp.status
            ))),
        };
    }
    let is_form = resp
        .content_type
        .as_deref()
        .is_some_and(|c| c.contains("x-www-form-urlencoded") || c.starts_with("text/plain"));
    if is_form && !trimmed.is_empty() {
        let map: Map<String, Value> = url::form_urlencoded::parse(text.trim().as_bytes())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect();
        if !map.is_empty() {
            return Ok(map);
        }
    }
    Err(OAuthError::Malformed(format!(
        "HTTP {} with a body that is neither JSON nor form-encoded ({})",
        resp.status,
        resp.content_type.as_deref().unwrap_or("no content type")
    )))
}

/// The OAuth error of a failed response.
pub fn provider_error(body: &Map<String, Value>, status: u16) -> OAuthError {
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(200).collect::<String>())
    };
    OAuthError::Provider {
        error: text("error").unwrap_or_else(|| format!("http_{status}")),
        description: text("error_description"),
        status,
    }
}

/// A dot-separated path into nested objects.
pub fn lookup<'a>(body: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = body.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// A lifetime in seconds (a number, or a string of digits), clamped to [`MAX_LIFETIME`]; a
/// negative or non-finite number is malformed.
pub fn seconds(v: Option<&Value>, name: &str) -> Result<Option<u64>, OAuthError> {
    let secs = match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .map(Some)
            .ok_or_else(|| OAuthError::Malformed(format!("'{name}' is not a positive number"))),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            let s = s.strip_prefix('+').unwrap_or(s);
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                // All digits: too many of them is still a (huge) number, clamped below.
                Ok(Some(s.parse::<u64>().unwrap_or(u64::MAX)))
            } else {
                Err(OAuthError::Malformed(format!("'{name}' is not a number")))
            }
        }
        Some(_) => Err(OAuthError::Malformed(format!("'{name}' is not a number"))),
    }?;
    Ok(secs.map(|s| s.min(MAX_LIFETIME_SECS)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
                r#"{{"access_token":"at","token_type":"bearer","expires_in":{v},"x_refresh_token_expires_in":{v}}}"#
            );
            let r = parse(&shape, &json(&body)).unwrap();
            assert_eq!(r.expires_in, ten_years, "{v}");
            assert_eq!(r.refresh_expires_in, ten_years, "{v}");
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

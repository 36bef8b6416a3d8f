//! Token responses as the rest of the core uses them, lifetimes and their clamping, and the
//! lenient readers of provider answers that the normalizing layer (`oauth/normalize.rs`) and discovery share (JSON or
//! form-encoded bodies, dotted paths, lifetimes as numbers or strings, scope lists).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::OAuthError;
use crate::http::HttpResponse;
use crate::secret::TokenSet;

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
    /// Whether the provider bound the access token to the request's DPoP key (`token_type`
    /// `DPoP`).
    pub dpop_bound: bool,
    /// The access token's lifetime in seconds, when the response gave it.
    pub expires_in: Option<u64>,
    /// The refresh token's lifetime in seconds, when the response gave it.
    pub refresh_expires_in: Option<u64>,
    /// Seconds left before the refresh token's hard expiry (no use extends it), when the
    /// response gave them.
    pub refresh_hard_expires_in: Option<u64>,
    /// The granted scopes, when the response listed them.
    pub scopes: Option<Vec<String>>,
    /// Provider metadata named by the preset (instance_url, team id, …).
    pub metadata: BTreeMap<String, String>,
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

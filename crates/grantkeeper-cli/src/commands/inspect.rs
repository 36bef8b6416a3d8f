//! `grantkeeper inspect`: what a token says (its JWT header and claims, or the provider's
//! introspection answer), never the token itself.

use std::io::Read;

use clap::Args;
use grantkeeper_core::grants::JwtView;
use grantkeeper_core::model::{now_ms, ConnectionStatus};
use grantkeeper_core::oauth::jwt::DecodedJwt;
use grantkeeper_core::timefmt::format_rfc3339;
use serde_json::{json, Map, Value};

use super::args::resolve;
use crate::exit::Failure;
use crate::output::{relative, Output};

/// The most `--token -` reads from stdin.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// `<tenant>/<connection>`: decode its stored access and ID tokens offline.
    #[arg(required_unless_present = "token", conflicts_with = "token")]
    target: Option<String>,
    /// Ask the provider about the connection's access token instead (RFC 7662 introspection;
    /// needs the network).
    #[arg(long, requires = "target")]
    introspect: bool,
    /// Decode a token read from standard input: give `-`. A token is never taken as an
    /// argument, where the shell history and the process list would keep it.
    #[arg(long, value_name = "-")]
    token: Option<String>,
}

pub fn run(args: &InspectArgs, out: &Output) -> Result<(), Failure> {
    match (&args.token, &args.target) {
        (Some(source), _) => inspect_stdin(source, out),
        (None, Some(target)) if args.introspect => introspect(target, out),
        (None, Some(target)) => inspect_stored(target, out),
        (None, None) => Err(Failure::invalid(
            "give <tenant>/<connection>, or --token - to decode a token from standard input",
        )),
    }
}

/// Offline: the stored tokens' headers and claims.
fn inspect_stored(target: &str, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, target)?;
    let ins = scope.inspect(&c.id)?;
    out.value(&ins, || {
        let mut lines = Vec::new();
        match &ins.access_token {
            Some(view) => {
                lines.push("access token: a JWT (signature not checked)".to_owned());
                describe_jwt(view, &mut lines);
            }
            None if c.status == ConnectionStatus::Revoked => {
                lines.push("access token: none held (the connection was revoked)".to_owned())
            }
            None => lines.push(format!(
                "access token: opaque (not a JWT), nothing to decode offline; \
                 'grantkeeper inspect {target} --introspect' asks the provider"
            )),
        }
        match &ins.id_token {
            Some(view) => {
                lines.push("ID token (decoded offline):".to_owned());
                describe_jwt(view, &mut lines);
            }
            None => lines.push("ID token: none".to_owned()),
        }
        lines.join("\n")
    })?;
    Ok(())
}

/// Online: the provider's introspection answer about the cached access token.
fn introspect(target: &str, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, target)?;
    let answer = scope.introspect(&c.id)?;
    out.value(&answer, || {
        let mut lines = vec![format!("{target}: the provider's introspection answer")];
        describe_claims(&answer, &mut lines);
        lines.join("\n")
    })?;
    Ok(())
}

/// Offline: a token from stdin, decoded as a JWT.
fn inspect_stdin(source: &str, out: &Output) -> Result<(), Failure> {
    if source != "-" {
        return Err(Failure::invalid(
            "--token takes '-' and reads the token from standard input; a token given as an argument would be kept in the shell history",
        ));
    }
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_TOKEN_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| Failure::invalid(format!("cannot read a token from standard input: {e}")))?;
    let token = strip_bearer(&text);
    if token.is_empty() {
        return Err(Failure::invalid("no token on standard input"));
    }
    let Some(jwt) = DecodedJwt::decode(token) else {
        return Err(Failure::invalid(if token.split('.').count() == 5 {
            "the token is an encrypted JWT (JWE): its claims cannot be read without the provider's key"
        } else {
            "the token is not a JWT: it is opaque, so nothing can be decoded offline (for a stored connection, 'grantkeeper inspect <tenant>/<connection> --introspect' asks the provider)"
        }));
    };
    let expires_at = jwt.expires_at_ms();
    let view = JwtView {
        header: jwt.header,
        claims: jwt.claims,
    };
    let summary = json!({
        "jwt": true,
        "signature_checked": false,
        "header": view.header,
        "claims": view.claims,
        "expires_at": expires_at,
        "expired": expires_at.map(|e| e <= now_ms()),
    });
    out.value(&summary, || {
        let mut lines = vec!["a JWT (decoded offline; the signature is not checked)".to_owned()];
        describe_jwt(&view, &mut lines);
        lines.join("\n")
    })?;
    Ok(())
}

/// The token in `Bearer <token>` or `Authorization: Bearer <token>`, or the text itself.
fn strip_bearer(text: &str) -> &str {
    fn strip<'a>(t: &'a str, prefix: &str) -> &'a str {
        match t.get(..prefix.len()) {
            Some(p) if p.eq_ignore_ascii_case(prefix) => t[prefix.len()..].trim_start(),
            _ => t,
        }
    }
    strip(strip(text.trim(), "authorization:"), "bearer ")
}

fn describe_jwt(view: &JwtView, lines: &mut Vec<String>) {
    lines.push("  header:".to_owned());
    describe_map(&view.header, "    ", lines);
    lines.push("  claims:".to_owned());
    describe_map(&view.claims, "    ", lines);
}

fn describe_claims(map: &Map<String, Value>, lines: &mut Vec<String>) {
    describe_map(map, "  ", lines);
}

/// `key: value` lines; the time claims get their date and distance from now.
fn describe_map(map: &Map<String, Value>, indent: &str, lines: &mut Vec<String>) {
    let now = now_ms();
    for (k, v) in map {
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let when = match (k.as_str(), v.as_i64()) {
            ("exp" | "iat" | "nbf" | "auth_time", Some(secs)) => {
                let ms = secs.saturating_mul(1000);
                format!(" ({}, {})", format_rfc3339(ms), relative(Some(ms), now))
            }
            _ => String::new(),
        };
        lines.push(format!("{indent}{k}: {text}{when}"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bearer_prefixes_are_stripped() {
        use super::strip_bearer;
        assert_eq!(strip_bearer("  abc.def.ghi\n"), "abc.def.ghi");
        assert_eq!(strip_bearer("Bearer abc"), "abc");
        assert_eq!(strip_bearer("Authorization: Bearer abc\r\n"), "abc");
        assert_eq!(strip_bearer("authorization:bearer abc"), "abc");
        assert_eq!(strip_bearer("Bearer"), "Bearer");
        assert_eq!(strip_bearer("ééééééééé"), "ééééééééé");
    }
}

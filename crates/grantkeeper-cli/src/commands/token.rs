//! `grantkeeper token`: a valid access token on stdout, from the agent when one runs.

use std::time::Duration;

use clap::{Args, ValueEnum};
use grantkeeper_core::deadline::{Deadline, DEFAULT_TIMEOUT};
use grantkeeper_core::grants::DEFAULT_MIN_VALID;
use grantkeeper_core::secret::AccessToken;
use serde_json::json;

use super::args::{parse_min_valid, parse_timeout, resolve, timeout_hint};
use super::{cli_actor, split_ref};
use crate::exit::Failure;
use crate::output::emit;

/// How `token` prints the access token.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// The token alone.
    Bare,
    /// `Authorization: Bearer <token>`.
    Header,
    /// JSON with the token and its expiry.
    Json,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Minimum remaining validity, e.g. `90s`, `5m`, `1h` (default 60s; at most 10 years).
    #[arg(long, value_parser = parse_min_valid)]
    min_valid: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value = "bare")]
    format: Format,
    /// Application hint recorded in the usage history.
    #[arg(long)]
    hint: Option<String>,
    /// Give up after this long in all, every retry included (default 30s); exit 8.
    #[arg(long, value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// For a DPoP-bound connection: print the two headers of one METHOD request to URL,
    /// `Authorization: DPoP <token>` and `DPoP: <proof>` (a new proof for each request).
    #[arg(long, num_args = 2, value_names = ["METHOD", "URL"])]
    dpop_proof: Option<Vec<String>>,
    /// The `DPoP-Nonce` the resource server asked for, put in the proof.
    #[arg(long, requires = "dpop_proof")]
    dpop_nonce: Option<String>,
}

pub fn token(args: &TokenArgs) -> Result<(), Failure> {
    token_inner(args).map_err(timeout_hint)
}

pub(super) fn token_inner(args: &TokenArgs) -> Result<(), Failure> {
    let min_valid = args.min_valid.unwrap_or(DEFAULT_MIN_VALID);
    let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let deadline = Deadline::within(timeout);
    if let Some([method, url]) = args.dpop_proof.as_deref() {
        // The proof needs the connection's key, from the keychain: the vault, not the agent.
        let vault = crate::open_vault()?;
        let (scope, c) = resolve(&vault, &args.target)?;
        // Refused before a token is handed out when the connection is not bound.
        scope.dpop_key(&c)?;
        let handed =
            scope.access_token(&c.id, min_valid, &deadline, &cli_actor(args.hint.clone()))?;
        let headers =
            scope.dpop_headers(&c, method, url, args.dpop_nonce.as_deref(), &handed.token)?;
        return match args.format {
            Format::Json => emit(&format!(
                "{}\n",
                json!({
                    "authorization": headers.authorization.expose(),
                    "dpop": headers.proof,
                    "expires_at": handed.expires_at,
                })
            )),
            _ => emit(&format!(
                "Authorization: {}\nDPoP: {}\n",
                headers.authorization.expose(),
                headers.proof
            )),
        };
    }
    // A running agent answers without a keychain read; else open the vault here.
    let (tenant, name) = split_ref(&args.target)?;
    let (tok, expires_at) =
        match super::agent::token_via_agent(tenant, name, min_valid, timeout, args.hint.clone()) {
            Some(answer) => {
                let answer = answer?;
                (
                    AccessToken::new(answer.token.unwrap_or_default()),
                    answer.expires_at,
                )
            }
            None => {
                let vault = crate::open_vault()?;
                let (scope, c) = resolve(&vault, &args.target)?;
                let handed = scope.access_token(
                    &c.id,
                    min_valid,
                    &deadline,
                    &cli_actor(args.hint.clone()),
                )?;
                (handed.token, handed.expires_at)
            }
        };
    print_token(args.format, &tok, expires_at)
}

/// The hot path of scripts: `grantkeeper token <tenant>/<name> [--min-valid D] [--format F]
/// [--hint H] [--timeout D]` answered by a running agent, before the full command line is even parsed.
/// Returns the exit code; `None` (the normal path takes over) for anything else: other
/// arguments, `--help`, `--json`, no agent, or an argument it does not know.
pub fn fast_token() -> Option<u8> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (first, rest) = args.split_first()?;
    if first != "token" {
        return None;
    }
    let mut target = None;
    let (mut min_valid, mut format, mut hint) = (DEFAULT_MIN_VALID, Format::Bare, None);
    let mut timeout = DEFAULT_TIMEOUT;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "--min-valid" => min_valid = parse_min_valid(&value()?).ok()?,
            "--format" => {
                format = match value()?.as_str() {
                    "bare" => Format::Bare,
                    "header" => Format::Header,
                    "json" => Format::Json,
                    _ => return None,
                }
            }
            "--hint" => hint = Some(value()?),
            "--timeout" => timeout = parse_timeout(&value()?).ok()?,
            f if f.starts_with('-') => return None,
            _ if target.is_none() => target = Some(a.clone()),
            _ => return None,
        }
    }
    let target = target?;
    let (tenant, name) = split_ref(&target).ok()?;
    let answer = super::agent::token_via_agent(tenant, name, min_valid, timeout, hint)?;
    Some(
        match answer.and_then(|a| {
            print_token(
                format,
                &AccessToken::new(a.token.unwrap_or_default()),
                a.expires_at,
            )
        }) {
            Ok(()) => 0,
            Err(f) => crate::output::report(&timeout_hint(f)),
        },
    )
}

pub(super) fn print_token(
    format: Format,
    tok: &AccessToken,
    expires_at: Option<i64>,
) -> Result<(), Failure> {
    match format {
        Format::Bare => emit(&format!("{}\n", tok.expose())),
        Format::Header => emit(&format!("Authorization: Bearer {}\n", tok.expose())),
        Format::Json => emit(&format!(
            "{}\n",
            json!({ "access_token": tok.expose(), "token_type": "Bearer", "expires_at": expires_at })
        )),
    }
}

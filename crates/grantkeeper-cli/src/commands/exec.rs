//! `grantkeeper exec`: a command run with a valid access token in its environment, with
//! `GRANTKEEPER_TOKEN_TYPE` (`Bearer`, or `DPoP` for a token bound to this device's key) and
//! `GRANTKEEPER_CONNECTION` (`<tenant>/<connection>`): a command using a DPoP-bound token gets
//! the headers of each request from `grantkeeper token "$GRANTKEEPER_CONNECTION" --dpop-proof
//! METHOD URL`, since a proof is good for one request only.

use std::process::Command as Process;
use std::time::Duration;

use clap::Args;
use grantkeeper_core::deadline::{Deadline, DEFAULT_TIMEOUT};
use grantkeeper_core::grants::DEFAULT_MIN_VALID;
use grantkeeper_core::model::TokenBinding;

use super::args::{parse_min_valid, parse_timeout, resolve, timeout_hint};
use super::cli_actor;
use crate::exit::Failure;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Environment variable that receives the token.
    #[arg(long, default_value = "ACCESS_TOKEN")]
    env: String,
    /// Minimum remaining validity (default 60s; at most 10 years).
    #[arg(long, value_parser = parse_min_valid)]
    min_valid: Option<Duration>,
    /// Application hint recorded in the usage history (default: the command's name).
    #[arg(long)]
    hint: Option<String>,
    /// Give up getting the token after this long, every retry included (default 30s); exit 8.
    #[arg(long, value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn exec(args: &ExecArgs) -> Result<(), Failure> {
    let deadline = Deadline::within(args.timeout.unwrap_or(DEFAULT_TIMEOUT));
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    let hint = args.hint.clone().or_else(|| args.command.first().cloned());
    let tok = scope
        .access_token(
            &c.id,
            args.min_valid.unwrap_or(DEFAULT_MIN_VALID),
            &deadline,
            &cli_actor(hint),
        )
        .map_err(|e| timeout_hint(e.into()))?
        .token;
    let token_type = match c.binding() {
        Some(TokenBinding::Dpop) => "DPoP",
        // Certificate-bound tokens are bearer tokens sent over a TLS connection with the cert.
        Some(TokenBinding::Certificate) | None => "Bearer",
    };
    let status = Process::new(&args.command[0])
        .args(&args.command[1..])
        .env(&args.env, tok.expose())
        .env("GRANTKEEPER_TOKEN_TYPE", token_type)
        .env("GRANTKEEPER_CONNECTION", &args.target)
        .status()
        .map_err(|e| Failure::other(format!("cannot run '{}': {e}", args.command[0])))?;
    drop(tok);
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure::new(
            u8::try_from(code).unwrap_or(1),
            format!("'{}' exited with status {code}", args.command[0]),
        )),
        None => Err(Failure::other(format!(
            "'{}' was killed by a signal",
            args.command[0]
        ))),
    }
}

//! `grantkeeper agent …`: the hand-out agent, and the fast path of `token` through it.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use grantkeeper_core::agent::{self, AgentClient, Request, Response};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::ErrorKind;
use grantkeeper_core::{paths, Vault};

use crate::exit::{self, Failure};
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Serve hand-outs in the foreground until interrupted. The agent locks itself after the
    /// idle time and when the keychain or the desktop session locks.
    Run {
        /// Lock after this long without a hand-out (90s, 15m, 1h; `off` never).
        #[arg(long, value_parser = parse_idle_lock, default_value = "15m")]
        idle_lock: IdleLock,
    },
    /// Whether an agent runs for this vault, and whether it is locked.
    Status,
    /// Make the running agent drop its keys.
    Lock,
    /// Make the running agent open the vault again from the keychain.
    Unlock,
}

/// `--idle-lock`: a duration, or `off`.
#[derive(Debug, Clone, Copy)]
pub struct IdleLock(Option<Duration>);

fn parse_idle_lock(s: &str) -> Result<IdleLock, String> {
    if s.trim() == "off" {
        return Ok(IdleLock(None));
    }
    match super::args::parse_duration(s)? {
        d if d.is_zero() => {
            Err("an idle lock of 0 would lock at once: use `off` or a duration".into())
        }
        d => Ok(IdleLock(Some(d))),
    }
}

fn home() -> Result<std::path::PathBuf, Failure> {
    paths::default_home()
        .ok_or_else(|| Failure::other("cannot find a data folder: set GRANTKEEPER_HOME"))
}

pub fn run(cmd: &AgentCommand, out: &Output) -> Result<(), Failure> {
    let home = home()?;
    match cmd {
        AgentCommand::Run { idle_lock } => {
            let opener_home = home.clone();
            let opener: Arc<agent::Opener> =
                Arc::new(move || Vault::open(&opener_home, Arc::new(OsKeychain::from_env())));
            eprintln!(
                "grantkeeper agent: serving {} on {}",
                home.display(),
                agent::socket_path(&home).display()
            );
            let locks = agent::LockPolicy {
                idle: idle_lock.0,
                ..agent::LockPolicy::default()
            };
            agent::serve_with(&home, opener, &CancelToken::default(), &locks)?;
            Ok(())
        }
        AgentCommand::Status | AgentCommand::Lock | AgentCommand::Unlock => {
            let Some(mut client) = AgentClient::connect(&home) else {
                return Err(Failure::new(
                    exit::NOT_FOUND,
                    "no agent runs for this vault (start one with `grantkeeper agent run`)",
                ));
            };
            let req = match cmd {
                AgentCommand::Lock => Request::Lock,
                AgentCommand::Unlock => Request::Unlock,
                _ => Request::Status,
            };
            // An unlock may wait for the keychain's own timeout.
            let resp = client
                .call(&req, std::time::Duration::from_secs(300))
                .map_err(|e| Failure::other(format!("the agent did not answer: {e}")))?;
            let resp = checked(resp)?;
            let locked = resp.locked.unwrap_or(false);
            let reason = resp.locked_by.filter(|_| locked);
            out.value(
                &serde_json::json!({ "running": true, "locked": locked, "locked_by": reason }),
                || match reason {
                    Some(r) => format!("agent running, locked ({})", r.describe()),
                    None if locked => "agent running, locked".into(),
                    None => "agent running, unlocked".into(),
                },
            )?;
            Ok(())
        }
    }
}

/// Turns a failed agent answer into the CLI's failure and exit code.
pub fn checked(resp: Response) -> Result<Response, Failure> {
    if resp.ok {
        return Ok(resp);
    }
    let code = exit::code(resp.kind.unwrap_or(ErrorKind::Other));
    Err(Failure::new(
        code,
        resp.error.unwrap_or_else(|| "the agent failed".into()),
    ))
}

/// A token through the running agent; `None` when no agent runs for this vault.
/// The agent works to `timeout`; its answer may take a moment longer to arrive.
pub fn token_via_agent(
    tenant: &str,
    connection: &str,
    min_valid: Duration,
    timeout: Duration,
    hint: Option<String>,
) -> Option<Result<Response, Failure>> {
    const GRACE: Duration = Duration::from_secs(2);
    let home = paths::default_home()?;
    let mut client = AgentClient::connect(&home)?;
    let req = Request::Token {
        tenant: tenant.to_owned(),
        connection: connection.to_owned(),
        min_valid_ms: u64::try_from(min_valid.as_millis()).unwrap_or(u64::MAX),
        hint,
        timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
    };
    Some(
        client
            .call(&req, timeout + GRACE)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Failure::new(
                    exit::TIMED_OUT,
                    format!(
                        "the agent gave no answer within the {} s allowed; nothing was stored",
                        timeout.as_secs_f64()
                    ),
                ),
                _ => Failure::other(format!("the agent did not answer: {e}")),
            })
            .and_then(checked),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use grantkeeper_core::keychain::KeychainError;
    use grantkeeper_core::oauth::OAuthError;
    use grantkeeper_core::Error;

    /// Every kind of failure exits alike alone and through the agent's wire. (A provider app not
    /// set up for the call once exited 2 alone and 6 through the agent.)
    #[test]
    fn the_agent_wire_keeps_the_exit_code() {
        let failures = [
            Error::NotFound {
                what: "connection",
                name: "acme/nope".into(),
            },
            Error::Invalid("bad".into()),
            Error::OAuth(OAuthError::Config("no token endpoint".into())),
            Error::OAuth(OAuthError::Malformed("not JSON".into())),
            Error::OAuth(OAuthError::Cancelled),
            Error::Cancelled,
            Error::TimedOut {
                seconds: 3.0,
                last: None,
            },
            Error::Tampered("changed".into()),
            Error::Keychain(KeychainError::TimedOut { seconds: 20 }),
        ];
        for e in failures {
            let alone = exit::code(e.kind());
            let wire = serde_json::json!({ "ok": false, "kind": e.kind(), "error": e.to_string() });
            let response: Response = serde_json::from_value(wire).unwrap();
            let through_agent = checked(response).unwrap_err();
            assert_eq!(through_agent.code, alone, "{e:?}");
            assert_eq!(through_agent.code, Failure::from(e).code);
        }
        assert_eq!(
            exit::code(Error::OAuth(OAuthError::Config(String::new())).kind()),
            exit::INVALID
        );
    }
}

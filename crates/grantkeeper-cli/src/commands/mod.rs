//! One module per command.

pub mod agent;
pub mod anomalies;
pub mod args;
pub mod audit;
pub mod connect;
pub mod delete;
pub mod exec;
pub mod export;
pub mod git_credential;
pub mod history;
pub mod inspect;
pub mod maintain;
pub mod notifications;
pub mod policy;
pub mod provider;
pub mod proxy;
pub mod refresh;
pub mod revoke;
pub mod show;
pub mod team;
pub mod tenant;
pub mod token;

use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::model::ConnectionStatus;

use crate::exit::Failure;

/// Splits `<tenant>/<name>`.
pub fn split_ref(s: &str) -> Result<(&str, &str), Failure> {
    match s.split_once('/') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() && !n.contains('/') => Ok((t, n)),
        _ => Err(Failure::invalid(format!(
            "'{s}' is not of the form <tenant>/<name>"
        ))),
    }
}

/// Parses a connection state as the core stores it.
pub fn parse_status(s: &str) -> Result<ConnectionStatus, Failure> {
    ConnectionStatus::parse(s).ok_or_else(|| {
        Failure::invalid(format!(
            "'{s}' is not a status: use active, needs_reconsent, revoked or error"
        ))
    })
}

/// The command line as the actor of the usage history, with the calling process.
pub fn cli_actor(hint: Option<String>) -> Actor {
    let mut a = Actor::new(ActorKind::Cli).with_hint(hint);
    // The program that ran this command (anomaly flags and the hand-out policy name it).
    a.caller = Some(grantkeeper_core::policy::Program::asking().to_caller());
    a
}

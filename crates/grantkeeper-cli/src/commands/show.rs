//! `grantkeeper show`: a connection with its scopes, expiries and metadata; never a secret.

use grantkeeper_core::model::now_ms;
use grantkeeper_core::status::step_at;

use super::args::{resolve, TargetArgs};
use crate::exit::Failure;
use crate::output::{relative, Output};

/// Prints the core's detail view of the connection (as the window shows it, with no history):
/// JSON with `--json`, else a summary.
pub fn show(args: &TargetArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    let view = vault.connection_detail(&scope.tenant().id, &c.id, 0)?;
    let (c, scopes) = (&view.connection, &view.scopes);
    out.value(&view, || {
        let now = now_ms();
        // The status as computed from the facts (the same steps the window shows).
        let step = step_at(&view.status_steps, now).copied();
        let mut lines = vec![
            format!(
                "{}  ({}, {}{})",
                args.target,
                view.provider_app,
                step.map_or(c.status.as_str(), |s| s.state.as_str()),
                if step.is_some_and(|s| s.attention) {
                    ", needs attention"
                } else {
                    ""
                }
            ),
            format!(
                "  account:        {}",
                c.account
                    .username
                    .clone()
                    .or(c.account.subject.clone())
                    .unwrap_or_else(|| "-".into())
            ),
            format!(
                "  access token:   expires {}",
                relative(c.access_expires_at, now)
            ),
            format!(
                "  bound to:       {}",
                c.binding().map_or(
                    "nothing (a bearer token: whoever holds it can use it)",
                    |b| b.describe()
                )
            ),
            format!(
                "  refresh token:  {}",
                if c.has_refresh_token {
                    "in the OS keychain"
                } else {
                    "none"
                }
            ),
            format!("  refresh expiry: {}", relative(c.refresh_expires_at, now)),
            format!("  last refresh:   {}", relative(c.last_refresh_at, now)),
            format!("  last use:       {}", relative(c.last_used_at, now)),
            "  scopes:".into(),
        ];
        for s in scopes {
            lines.push(format!(
                "    {} {:<40} {:<7} {}",
                if s.granted { "✓" } else { "✗" },
                s.scope,
                s.risk.map_or("?", |r| match r {
                    grantkeeper_core::catalog::Risk::Low => "low",
                    grantkeeper_core::catalog::Risk::Medium => "medium",
                    grantkeeper_core::catalog::Risk::High => "high",
                }),
                s.meaning.as_deref().unwrap_or("")
            ));
        }
        for (k, v) in &c.metadata {
            lines.push(format!("  {k}: {v}"));
        }
        if let Some(d) = &c.status_detail {
            lines.push(format!("  note: {d}"));
        }
        for a in &view.anomalies {
            lines.push(format!("  flag {}: {}", a.kind.as_str(), a.explanation));
        }
        lines.join("\n")
    })?;
    Ok(())
}

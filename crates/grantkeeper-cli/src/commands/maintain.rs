//! `grantkeeper maintain`: keep idle refresh tokens alive, warn about expiring ones.

use std::time::Duration;

use clap::Args;
use grantkeeper_core::model::now_ms;

use super::args::parse_duration;
use crate::exit::Failure;
use crate::output::{relative, Output};

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Refresh grants whose refresh token would die from inactivity within this time.
    #[arg(long, value_parser = parse_duration, default_value = "7d")]
    keep_alive: Duration,
    /// List refresh tokens that expire within this time.
    #[arg(long, value_parser = parse_duration, default_value = "14d")]
    warn: Duration,
}

/// `grantkeeper maintain`: one background pass (run it from a timer, or let the agent run it).
pub fn maintain(args: &MaintainArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let report = vault.maintain(args.keep_alive, args.warn)?;
    out.value(&report, || {
        let now = now_ms();
        let mut lines = vec![format!(
            "kept alive: {} refreshed, {} failed",
            report.refreshed.len(),
            report.failed.len()
        )];
        for w in &report.warnings {
            lines.push(format!(
                "warning: {} refresh token expires {}{}",
                w.name,
                relative(Some(w.expires_at), now),
                if w.hard {
                    " (hard limit: consent again before then)"
                } else {
                    ""
                }
            ));
        }
        lines.join("\n")
    })?;
    Ok(())
}

//! `grantkeeper history`: the usage history of a connection or of the whole vault.

use clap::Args;
use grantkeeper_core::audit::{EventKind, HistoryFilter};
use grantkeeper_core::model::now_ms;

use super::args::{parse_since, resolve};
use crate::exit::Failure;
use crate::output::{relative, Output};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// `<tenant>/<connection>`; the whole vault when absent.
    target: Option<String>,
    /// Only events since then: a duration back from now (`90m`, `2d`) or an RFC 3339 date or
    /// time (`2026-03-01`, `2026-03-01T09:00:00Z`).
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// Number of events (the newest).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only events of this kind (consented, refreshed, refresh_failed, handed_out, revealed,
    /// revoked, deleted, exported, …).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<EventKind>,
}

pub(super) fn parse_kind(s: &str) -> Result<EventKind, String> {
    EventKind::parse(s).ok_or_else(|| format!("'{s}' is not an event kind"))
}

pub fn history(args: &HistoryArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let connection = match &args.target {
        Some(t) => Some(resolve(&vault, t)?.1.id),
        None => None,
    };
    let events = vault.history(&HistoryFilter {
        connection,
        since: args.since,
        kind: args.kind,
        limit: args.limit,
    })?;
    let now = now_ms();
    out.table(
        &events,
        &["#", "WHEN", "EVENT", "BY", "HINT", "FINGERPRINT"],
        |e| {
            vec![
                e.seq.to_string(),
                relative(Some(e.ts), now),
                serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                e.actor
                    .map(|a| format!("{a:?}").to_lowercase())
                    .unwrap_or_default(),
                e.app_hint.clone().unwrap_or_default(),
                e.fingerprint.clone().unwrap_or_default(),
            ]
        },
    )?;
    Ok(())
}

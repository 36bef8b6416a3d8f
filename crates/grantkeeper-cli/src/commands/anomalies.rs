//! `grantkeeper anomalies`: where use looks wrong, each flag in one sentence.

use clap::Args;
use grantkeeper_core::anomaly::AnomalyKind;
use grantkeeper_core::model::now_ms;
use grantkeeper_core::ConnectionFilter;

use crate::exit::Failure;
use crate::output::{relative, Output};

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// Only this tenant's connections.
    #[arg(long)]
    tenant: Option<String>,
    /// Only flags of this kind: burst, new_program, off_hours, refresh_failures,
    /// refused_hand_outs, scopes_added, unused.
    #[arg(long, value_parser = parse_kind)]
    kind: Option<AnomalyKind>,
}

pub(super) fn parse_kind(s: &str) -> Result<AnomalyKind, String> {
    AnomalyKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            let all: Vec<_> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("'{s}' is not a flag: use {}", all.join(", "))
        })
}

pub fn anomalies(args: &AnomaliesArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let tenant = match &args.tenant {
        Some(t) => Some(vault.find_tenant(t)?.id),
        None => None,
    };
    let mut flags = vault.anomalies(&ConnectionFilter {
        tenant,
        status: None,
    })?;
    flags.retain(|f| args.kind.is_none_or(|k| f.kind == k));
    if flags.is_empty() && !out.is_json() {
        return out.message("No anomalies: every connection's use looks like its own past.");
    }
    let now = now_ms();
    out.table(&flags, &["CONNECTION", "FLAG", "SINCE", "WHY"], |f| {
        vec![
            f.target.clone(),
            f.kind.as_str().to_owned(),
            relative(Some(f.since), now),
            f.explanation.clone(),
        ]
    })
}

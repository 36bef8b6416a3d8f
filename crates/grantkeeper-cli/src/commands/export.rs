//! `grantkeeper export`: the grant report, without any secret, as CSV or JSON.

use clap::{Args, ValueEnum};
use grantkeeper_core::report::{self, FlagFilter, ReportFormat, ReviewFilter};
use grantkeeper_core::ConnectionFilter;

use super::{cli_actor, parse_status};
use crate::exit::Failure;
use crate::output::{emit, Output};

/// The report's format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header line (RFC 4180).
    Csv,
    /// A JSON array of grants.
    Json,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The report's format (default: csv, or json with --json).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Only this tenant's grants.
    #[arg(long)]
    tenant: Option<String>,
    /// Only grants in this state (active, needs_reconsent, revoked, error).
    #[arg(long, conflicts_with_all = ["high_risk", "unused_days", "refresh_expiring_days", "needs_reconsent", "flag"])]
    status: Option<String>,
    /// Review: only grants holding a granted scope of high risk.
    #[arg(long)]
    high_risk: bool,
    /// Review: only grants not used for this many days (never used: since consent).
    #[arg(long, value_name = "DAYS")]
    unused_days: Option<u32>,
    /// Review: only grants whose refresh token expires within this many days.
    #[arg(long, value_name = "DAYS")]
    refresh_expiring_days: Option<u32>,
    /// Review: only grants that need re-consent.
    #[arg(long)]
    needs_reconsent: bool,
    /// Review: only grants with this anomaly flag (a kind as `anomalies --kind` takes, or `any`).
    #[arg(long, value_name = "KIND", value_parser = parse_flag)]
    flag: Option<FlagFilter>,
}

fn parse_flag(s: &str) -> Result<FlagFilter, String> {
    if s == "any" {
        return Ok(FlagFilter::Any);
    }
    super::anomalies::parse_kind(s).map(FlagFilter::Kind)
}

/// `grantkeeper export`: records the export in the usage history, then prints the report.
pub fn run(args: &ExportArgs, out: &Output) -> Result<(), Failure> {
    let format = match args.format {
        Some(Format::Csv) => ReportFormat::Csv,
        Some(Format::Json) => ReportFormat::Json,
        None if out.is_json() => ReportFormat::Json,
        None => ReportFormat::Csv,
    };
    let status = args.status.as_deref().map(parse_status).transpose()?;
    let vault = crate::open_vault()?;
    let tenant = match &args.tenant {
        Some(t) => Some(vault.find_tenant(t)?.id),
        None => None,
    };
    let reviewing = args.high_risk
        || args.unused_days.is_some()
        || args.refresh_expiring_days.is_some()
        || args.needs_reconsent
        || args.flag.is_some();
    let rows = if reviewing {
        let review = ReviewFilter {
            tenant,
            high_risk: args.high_risk,
            unused_days: args.unused_days,
            refresh_expiring_days: args.refresh_expiring_days,
            needs_reconsent: args.needs_reconsent,
            flag: args.flag,
        };
        vault.export_review(&review, format, &cli_actor(None))?
    } else {
        vault.export_grant_report(
            &ConnectionFilter { tenant, status },
            format,
            &cli_actor(None),
        )?
    };
    match format {
        ReportFormat::Csv => emit(&report::to_csv(&rows)),
        ReportFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows)
                .map_err(|e| Failure::other(format!("cannot write the report: {e}")))?
        )),
    }
}

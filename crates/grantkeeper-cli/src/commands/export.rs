//! `grantkeeper export`: the grant report, without any secret, as CSV or JSON.

use clap::{Args, ValueEnum};
use grantkeeper_core::report::{self, ReportFormat};
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
    #[arg(long)]
    status: Option<String>,
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
    let rows = vault.export_grant_report(
        &ConnectionFilter { tenant, status },
        format,
        &cli_actor(None),
    )?;
    match format {
        ReportFormat::Csv => emit(&report::to_csv(&rows)),
        ReportFormat::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&rows)
                .map_err(|e| Failure::other(format!("cannot write the report: {e}")))?
        )),
    }
}

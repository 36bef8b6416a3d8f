//! `grantkeeper audit …`

use clap::Subcommand;
use grantkeeper_core::audit::{VerifyReport, ANCHOR_INTERVAL};
use grantkeeper_core::timefmt::format_rfc3339;

use crate::exit::{self, Failure};
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the usage history: its keyed chain and the checkpoint in the keychain.
    Verify,
}

pub fn run(cmd: &AuditCommand, out: &Output) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Verify => {
            let vault = crate::open_vault()?;
            let report = vault.verify_history()?;
            match &report.first_bad {
                None => out.value(&report, || intact(&report))?,
                Some(bad) => {
                    // Every problem on stdout, the first on the one failure line.
                    out.value(&report, || {
                        report
                            .problems
                            .iter()
                            .map(|p| format!("{}: {}", problem_name(p.problem), p.reason))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })?;
                    let more = match report.problems.len() {
                        1 => String::new(),
                        n => format!(" (and {} more problems, listed above)", n - 1),
                    };
                    return Err(Failure::new(
                        exit::AUDIT_BROKEN,
                        format!("usage history is not intact: {}{more}", bad.reason),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn intact(r: &VerifyReport) -> String {
    let verified = format!("usage history intact: {} events verified", r.checked);
    match &r.anchor {
        Some(a) if r.unanchored == 0 => format!(
            "{verified}, all anchored by the keychain's checkpoint of {}",
            format_rfc3339(a.at)
        ),
        Some(a) => format!(
            "{verified}; {} events after the last checkpoint of {} (event #{}) are not yet anchored: \
             removing them would go unnoticed until a checkpoint covers them (within {} s while \
             the agent or app runs, or when a command that records events ends)",
            r.unanchored,
            format_rfc3339(a.at),
            a.seq,
            ANCHOR_INTERVAL.as_secs()
        ),
        None => verified,
    }
}

fn problem_name(p: grantkeeper_core::audit::Problem) -> &'static str {
    use grantkeeper_core::audit::Problem as P;
    match p {
        P::Edited => "edited",
        P::Missing => "missing",
        P::Inserted => "inserted",
        P::Reordered => "reordered",
        P::Forged => "forged",
        P::Erased => "erased",
        P::Replaced => "replaced",
        P::BrokenBeforeKeyed => "broken before keyed",
        P::KeyRecord => "key record",
        P::Anchor => "anchor",
    }
}

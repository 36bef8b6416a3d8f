//! `grantkeeper audit …`

use clap::Subcommand;

use crate::exit::{self, Failure};
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of the usage history.
    Verify,
}

pub fn run(cmd: &AuditCommand, out: &Output) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Verify => {
            let vault = crate::open_vault()?;
            let report = vault.verify_history()?;
            match &report.first_bad {
                None => out.value(&report, || {
                    format!("usage history intact: {} events verified", report.checked)
                })?,
                Some(bad) => {
                    out.value(&report, String::new)?;
                    return Err(Failure::new(
                        exit::AUDIT_BROKEN,
                        format!("usage history is not intact: {}", bad.reason),
                    ));
                }
            }
        }
    }
    Ok(())
}

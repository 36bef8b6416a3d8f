//! `grantkeeper delete`: delete a connection, revoking it first.

use clap::Args;
use serde_json::json;

use super::args::resolve;
use super::cli_actor;
use super::revoke::confirmed;
use crate::exit::Failure;
use crate::output::Output;

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Do not revoke at the provider first.
    #[arg(long)]
    no_revoke: bool,
}

pub fn delete(args: &DeleteArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    let revoked = scope.revoke_and_delete(&c.id, !args.no_revoke, &cli_actor(None))?;
    let summary = json!({ "deleted": args.target, "revocation": revoked });
    out.value(&summary, || match &revoked {
        Some(r) => format!("deleted {}; {}\n{}", args.target, r.detail, r.caveat),
        None => format!("deleted {} (not revoked at the provider)", args.target),
    })?;
    match &revoked {
        Some(outcome) => confirmed(&args.target, outcome),
        None => Ok(()),
    }
}

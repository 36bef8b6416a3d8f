//! `grantkeeper revoke`: revoke a grant at the provider and forget its tokens.

use grantkeeper_core::grants::RevokeOutcome;

use super::args::{resolve, TargetArgs};
use super::cli_actor;
use crate::exit::Failure;
use crate::output::Output;

pub fn revoke(args: &TargetArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    let outcome = scope.revoke(&c.id, &cli_actor(None))?;
    out.value(&outcome, || {
        format!("{}: {}\n{}", args.target, outcome.detail, outcome.caveat)
    })?;
    confirmed(&args.target, &outcome)
}

/// Exit [`NOT_CONFIRMED`](crate::exit::NOT_CONFIRMED) when the provider did not confirm a
/// revocation, saying what is left to do.
pub(super) fn confirmed(target: &str, outcome: &RevokeOutcome) -> Result<(), Failure> {
    if outcome.revoked_at_provider {
        return Ok(());
    }
    Err(Failure::new(
        crate::exit::NOT_CONFIRMED,
        format!(
            "{target}: the tokens are forgotten here, but the grant may still be live at the provider ({}). Revoke it in the provider's own console",
            outcome.detail
        ),
    ))
}

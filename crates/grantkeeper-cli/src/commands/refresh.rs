//! `grantkeeper refresh`: refresh a connection's tokens now.

use grantkeeper_core::deadline::Deadline;
use grantkeeper_core::model::now_ms;

use super::args::{resolve, TargetArgs};
use super::cli_actor;
use crate::exit::Failure;
use crate::output::{relative, Output};

pub fn refresh(args: &TargetArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    drop(scope.refresh(&c.id, &Deadline::default(), &cli_actor(None))?);
    let c = scope.connection(&c.id)?;
    out.value(&c, || {
        format!(
            "refreshed {}; access token expires {}",
            args.target,
            relative(c.access_expires_at, now_ms())
        )
    })?;
    Ok(())
}

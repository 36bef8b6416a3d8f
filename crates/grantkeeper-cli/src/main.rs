//! `grantkeeper`: the command-line front end over the Grantkeeper core.

mod exit;
mod output;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::{paths, Error, Vault};

use crate::exit::Failure;

/// Grantkeeper: OAuth grants for many client accounts, kept in the OS keychain.
#[derive(Debug, Parser)]
#[command(name = "grantkeeper", version, after_help = EXAMPLES)]
struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  grantkeeper tenant add \"Acme Corp\"
  grantkeeper tenant list --json
  grantkeeper audit verify

Exit codes: 0 ok, 1 other failure, 2 bad input, 3 not found, 4 keychain unavailable,
7 usage history failed verification.
The vault lives in $GRANTKEEPER_HOME, else ~/.local/share/grantkeeper.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage tenants (client workspaces).
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Check the usage history.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Add {
        /// Display name.
        name: String,
        /// Short name for the command line (default: derived from the name).
        #[arg(long)]
        slug: Option<String>,
        /// Notes.
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// List tenants.
    List,
    /// Change a tenant's display name.
    Rename {
        /// Slug or id.
        tenant: String,
        /// New display name.
        name: String,
    },
    /// Delete a tenant, its connections, keychain entries and data key.
    Delete {
        /// Slug or id.
        tenant: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of the usage history.
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("grantkeeper: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn open_vault() -> Result<Vault, Failure> {
    let home = paths::default_home()
        .ok_or_else(|| Failure::other("cannot find a data folder: set GRANTKEEPER_HOME"))?;
    Ok(Vault::open(&home, Arc::new(OsKeychain::from_env()))?)
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let actor = Actor::new(ActorKind::Cli);
    let out = output::Output::new(cli.json);
    match &cli.command {
        Command::Tenant(cmd) => {
            let vault = open_vault()?;
            match cmd {
                TenantCommand::Add { name, slug, notes } => {
                    let t = vault.create_tenant(name, slug.as_deref(), notes, &actor)?;
                    out.value(&t, || format!("created tenant {} ({})", t.slug, t.name));
                }
                TenantCommand::List => {
                    let tenants = vault.list_tenants()?;
                    out.table(
                        &tenants,
                        &["SLUG", "NAME", "CONNECTIONS", "ATTENTION"],
                        |s| {
                            vec![
                                s.tenant.slug.clone(),
                                s.tenant.name.clone(),
                                s.connections.to_string(),
                                s.needs_attention.to_string(),
                            ]
                        },
                    );
                }
                TenantCommand::Rename { tenant, name } => {
                    let t = vault.find_tenant(tenant)?;
                    vault.rename_tenant(&t.id, name, &actor)?;
                    out.message(&format!("renamed tenant {}", t.slug));
                }
                TenantCommand::Delete { tenant, yes } => {
                    let t = vault.find_tenant(tenant)?;
                    if !yes {
                        return Err(Failure::invalid(format!(
                            "deleting tenant '{}' removes its connections and keys for good; add --yes to confirm",
                            t.slug
                        )));
                    }
                    vault.delete_tenant(&t.id, &actor)?;
                    out.message(&format!("deleted tenant {}", t.slug));
                }
            }
        }
        Command::Audit(AuditCommand::Verify) => {
            let vault = open_vault()?;
            let report = vault.verify_history()?;
            match &report.first_bad {
                None => out.value(&report, || {
                    format!("usage history intact: {} events verified", report.checked)
                }),
                Some(bad) => {
                    out.value(&report, String::new);
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

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Keychain(_) | Error::MasterKeyMissing { .. } => exit::KEYCHAIN,
            Error::NotFound { .. } => exit::NOT_FOUND,
            Error::Invalid(_) | Error::AlreadyExists { .. } => exit::INVALID,
            _ => exit::OTHER,
        };
        Failure::new(code, e.to_string())
    }
}

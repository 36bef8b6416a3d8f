//! `grantkeeper`: the command-line front end over the Grantkeeper core.

mod commands;
mod exit;
mod output;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::{paths, Vault};

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
  grantkeeper provider add acme/google --preset google --client-id ID --client-secret-stdin < secret.txt
  grantkeeper provider add acme/idp --issuer https://id.acme.example --client-id grantkeeper
  grantkeeper connect acme/gmail --provider google
  grantkeeper list --json
  grantkeeper audit verify

Exit codes: 0 ok, 1 other failure, 2 bad input, 3 not found, 4 keychain unavailable,
5 the provider refused (consent denied, invalid grant), 6 network or provider unreachable,
7 usage history failed verification, 8 timed out or cancelled.
The vault lives in $GRANTKEEPER_HOME, else ~/.local/share/grantkeeper.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage tenants (client workspaces).
    #[command(subcommand)]
    Tenant(commands::tenant::TenantCommand),
    /// Provider presets and a tenant's provider apps.
    #[command(subcommand)]
    Provider(commands::provider::ProviderCommand),
    /// Connect an account: consent in the system browser, then store the grant.
    Connect(commands::connect::ConnectArgs),
    /// Consent again for an existing connection (same connection, history kept).
    Reconsent(commands::connect::ReconsentArgs),
    /// List connections.
    List(commands::connect::ListArgs),
    /// Print a valid access token, refreshing it if needed (recorded in the usage history).
    Token(commands::token::TokenArgs),
    /// Run a command with a valid access token in its environment.
    Exec(commands::token::ExecArgs),
    /// Refresh a connection's tokens now.
    Refresh(commands::token::TargetArgs),
    /// Revoke a connection's grant at the provider and forget its tokens.
    Revoke(commands::token::TargetArgs),
    /// Delete a connection (revoking it at the provider first, unless --no-revoke).
    Delete(commands::token::DeleteArgs),
    /// Show a connection: scopes with meaning and risk, expiries, metadata. Never a secret.
    Show(commands::token::TargetArgs),
    /// Decode the connection's JWTs offline (claims only).
    Inspect(commands::token::TargetArgs),
    /// The usage history of a connection or of the whole vault.
    History(commands::token::HistoryArgs),
    /// Keep idle refresh tokens alive and warn about expiring ones (for a timer or cron).
    Maintain(commands::token::MaintainArgs),
    /// Check the usage history.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.json);
    let result = match &cli.command {
        Command::Tenant(cmd) => commands::tenant::run(cmd, &out),
        Command::Provider(cmd) => commands::provider::run(cmd, &out),
        Command::Connect(args) => commands::connect::connect(args, &out),
        Command::Reconsent(args) => commands::connect::reconsent(args, &out),
        Command::List(args) => commands::connect::list(args, &out),
        Command::Token(args) => commands::token::token(args),
        Command::Exec(args) => commands::token::exec(args),
        Command::Refresh(args) => commands::token::refresh(args, &out),
        Command::Revoke(args) => commands::token::revoke(args, &out),
        Command::Delete(args) => commands::token::delete(args, &out),
        Command::Show(args) => commands::token::show(args, &out),
        Command::Inspect(args) => commands::token::inspect(args, &out),
        Command::History(args) => commands::token::history(args, &out),
        Command::Maintain(args) => commands::token::maintain(args, &out),
        Command::Audit(cmd) => commands::audit::run(cmd, &out),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("grantkeeper: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// Opens the vault in `$GRANTKEEPER_HOME` or the platform's data folder.
pub fn open_vault() -> Result<Vault, Failure> {
    let home = paths::default_home()
        .ok_or_else(|| Failure::other("cannot find a data folder: set GRANTKEEPER_HOME"))?;
    Ok(Vault::open(&home, Arc::new(OsKeychain::from_env()))?)
}

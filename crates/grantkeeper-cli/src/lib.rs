//! The `grantkeeper` command line: a thin front end over the Grantkeeper core.
//!
//! Two binaries share this library: `grantkeeper-full` runs every command, and `grantkeeper`
//! answers `token` from a running agent itself (a small binary starts in about half the time)
//! and hands every other command line to `grantkeeper-full`.

pub mod commands;
pub mod exit;
pub mod output;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{ColorChoice, CommandFactory, Parser, Subcommand};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::{paths, Vault};

use crate::exit::Failure;

/// Grantkeeper: OAuth grants for many client accounts, kept in the OS keychain.
#[derive(Debug, Parser)]
#[command(name = "grantkeeper", version, after_help = EXAMPLES, color = ColorChoice::Never)]
struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  grantkeeper tenant add \"Acme Corp\"
  grantkeeper provider add acme/google --preset google --client-id ID --client-secret < secret.txt
  grantkeeper provider add acme/idp --issuer https://id.acme.example --client-id grantkeeper
  grantkeeper connect acme/gmail --provider google
  grantkeeper list --json
  grantkeeper exec acme/gmail --hint backup -- ./backup.sh
  grantkeeper history acme/gmail --since 2d
  grantkeeper anomalies --json
  grantkeeper policy set acme/gmail listed --allow /usr/bin/rclone
  grantkeeper export --format csv --tenant acme > grants.csv
  grantkeeper audit verify
  grantkeeper completions bash > /etc/bash_completion.d/grantkeeper

Exit codes: 0 ok, 1 other failure, 2 bad input, 3 not found, 4 keychain unavailable,
5 refused (consent denied, invalid grant; the connection needs re-consent or was revoked),
6 network or provider unreachable, 7 usage history failed verification, 8 timed out or
cancelled; exec exits with its command's status. A failure prints one line on stderr.
Output is plain text without colors or terminal escapes (NO_COLOR is always honoured).
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
    Exec(commands::exec::ExecArgs),
    /// Refresh a connection's tokens now.
    Refresh(commands::args::TargetArgs),
    /// Revoke a connection's grant at the provider and forget its tokens.
    Revoke(commands::args::TargetArgs),
    /// Delete a connection (revoking it at the provider first, unless --no-revoke).
    Delete(commands::delete::DeleteArgs),
    /// Show a connection: scopes with meaning and risk, expiries, metadata. Never a secret.
    Show(commands::args::TargetArgs),
    /// Decode a connection's JWTs offline, ask the provider about its token (--introspect), or
    /// decode a token read from stdin (--token -). Never prints a token.
    Inspect(commands::inspect::InspectArgs),
    /// The usage history of a connection or of the whole vault.
    History(commands::history::HistoryArgs),
    /// Where use looks wrong: bursts, new programs, unusual hours, unused grants, added scopes,
    /// failing refreshes; each flag explained in one sentence.
    Anomalies(commands::anomalies::AnomaliesArgs),
    /// Show or set what the window's desktop notifications warn about (expiring refresh tokens:
    /// within how many days).
    Notifications(commands::notifications::NotificationsArgs),
    /// A report of the grants (no secrets) as CSV or JSON; recorded in the usage history.
    Export(commands::export::ExportArgs),
    /// Keep idle refresh tokens alive and warn about expiring ones (for a timer or cron).
    Maintain(commands::maintain::MaintainArgs),
    /// Serve a connection's API on a loopback port, adding its token to every request (the
    /// token never reaches the calling program; every call is recorded).
    Proxy(commands::proxy::ProxyArgs),
    /// git's credential helper: a fresh access token for GitHub- and GitLab-style remotes
    /// (`git config --global credential.helper '!grantkeeper git-credential'`).
    GitCredential(commands::git_credential::GitCredentialArgs),
    /// Which programs may take a connection's tokens: any, listed, or ask in the window.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// The hand-out agent: serves tokens to local programs from memory (`agent run`).
    #[command(subcommand)]
    Agent(commands::agent::AgentCommand),
    /// Team vaults (OpenBao or HashiCorp Vault): connect, log in again, status.
    #[command(subcommand)]
    Team(commands::team::TeamCommand),
    /// Check the usage history.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// The whole command line's definition, for generated documentation (man pages, completions).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs the command line of this process and returns its exit code.
pub fn main() -> ExitCode {
    install_panic_hook();
    if let Some(code) = commands::token::fast_token() {
        return ExitCode::from(code);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(usage_error(e)),
    };
    if let Some(home) = grantkeeper_core::paths::default_home() {
        grantkeeper_core::logging::init(&home);
    }
    match std::panic::catch_unwind(|| run(&cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(f)) => ExitCode::from(output::report(&f)),
        // The panic hook has printed the one line.
        Err(_) => ExitCode::from(exit::OTHER),
    }
}

/// A panic prints the one `grantkeeper: internal error …` line instead of Rust's message.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        output::report(&Failure::other(format!(
            "internal error: {what}{at} (please report this)"
        )));
    }));
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let out = output::Output::new(cli.json);
    match &cli.command {
        Command::Tenant(cmd) => commands::tenant::run(cmd, &out),
        Command::Provider(cmd) => commands::provider::run(cmd, &out),
        Command::Connect(args) => commands::connect::connect(args, &out),
        Command::Reconsent(args) => commands::connect::reconsent(args, &out),
        Command::List(args) => commands::connect::list(args, &out),
        Command::Token(args) => commands::token::token(args),
        Command::Exec(args) => commands::exec::exec(args),
        Command::Refresh(args) => commands::refresh::refresh(args, &out),
        Command::Revoke(args) => commands::revoke::revoke(args, &out),
        Command::Delete(args) => commands::delete::delete(args, &out),
        Command::Show(args) => commands::show::show(args, &out),
        Command::Inspect(args) => commands::inspect::run(args, &out),
        Command::History(args) => commands::history::history(args, &out),
        Command::Anomalies(args) => commands::anomalies::anomalies(args, &out),
        Command::Policy(cmd) => commands::policy::run(cmd, &out),
        Command::Notifications(args) => commands::notifications::notifications(args, &out),
        Command::Export(args) => commands::export::run(args, &out),
        Command::Maintain(args) => commands::maintain::maintain(args, &out),
        Command::Proxy(args) => commands::proxy::proxy(args, &out),
        Command::GitCredential(args) => commands::git_credential::git_credential(args),
        Command::Agent(cmd) => commands::agent::run(cmd, &out),
        Command::Audit(cmd) => commands::audit::run(cmd, &out),
        Command::Team(cmd) => commands::team::run(cmd, &out),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "grantkeeper", &mut script);
            output::emit(&String::from_utf8_lossy(&script))
        }
    }
}

/// Help and version go to stdout as clap writes them; a usage error becomes the one
/// `grantkeeper: …` line with exit code 2.
fn usage_error(e: clap::Error) -> u8 {
    use clap::error::ErrorKind as K;
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion => match output::emit(&e.render().to_string()) {
            Ok(()) => 0,
            Err(f) => output::report(&f),
        },
        K::DisplayHelpOnMissingArgumentOrSubcommand | K::MissingSubcommand => output::report(
            &Failure::invalid("a command is required; add --help to see the choices"),
        ),
        _ => {
            // clap's first paragraph is the error; tips and usage follow after a blank line.
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let first = first.join(" ");
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            output::report(&Failure::invalid(format!("{first} (see --help)")))
        }
    }
}

/// Opens the vault in `$GRANTKEEPER_HOME` or the platform's data folder.
pub fn open_vault() -> Result<Vault, Failure> {
    let home = paths::default_home()
        .ok_or_else(|| Failure::other("cannot find a data folder: set GRANTKEEPER_HOME"))?;
    Vault::open(&home, Arc::new(OsKeychain::from_env())).map_err(|e| {
        let problem = grantkeeper_core::diagnosis::VaultProblem::of(&e, &home);
        Failure::new(exit::code(e.kind()), problem.one_line())
    })
}

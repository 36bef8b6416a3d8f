//! `grantkeeper team …`: logins to team vaults (OpenBao or HashiCorp Vault).

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use clap::{Args, Subcommand};
use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::oauth::browser;
use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::secret::SecretText;
use grantkeeper_core::sharing::{Login, TeamStatus, DEFAULT_OIDC_MOUNT};
use grantkeeper_core::Vault;

use crate::output::note;

use crate::exit::Failure;
use crate::output::Output;

#[derive(Debug, Subcommand)]
pub enum TeamCommand {
    /// Connect this vault to a team vault; the login is kept in the keychain.
    Connect {
        /// The server, e.g. https://bao.example:8200.
        url: String,
        /// The KV v2 mount holding the team's records.
        #[arg(long)]
        mount: String,
        /// The team's name here (default: the mount's).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Log in again to a team vault this vault knows (its login ended).
    Login {
        /// The team's name here.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// The team vaults this vault is connected to, whether they answer, and what is shared.
    Status,
    /// Print the OpenBao policy (HCL) that gives a member one tenant of the team.
    Policy {
        /// The tenant (slug or id).
        tenant: String,
        /// The team's name here.
        #[arg(long)]
        name: String,
    },
    /// Bring shared tenants up to their team vaults (grants teammates added) and append this
    /// member's new events to the teams' histories.
    Sync,
    /// Every grant shared through a team that your policy lets you see, from its review
    /// metadata (no secret is read).
    Review {
        /// The team's name here.
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read an OpenBao token from the first line of stdin.
    #[arg(long, conflicts_with_all = ["approle", "oidc"])]
    token_stdin: bool,
    /// Log in in the browser through the team vault's OIDC auth method.
    #[arg(long, conflicts_with = "approle")]
    oidc: bool,
    /// The OIDC role (default: the auth method's default role).
    #[arg(long, requires = "oidc")]
    role: Option<String>,
    /// Where the OIDC auth method is mounted.
    #[arg(long, requires = "oidc", default_value = DEFAULT_OIDC_MOUNT)]
    oidc_mount: String,
    /// How long to wait for the browser, in seconds.
    #[arg(long, requires = "oidc", default_value_t = 300)]
    timeout: u64,
    /// Log in with AppRole (for CI machines): the role id here, the secret id on stdin.
    #[arg(long, value_name = "ROLE_ID", requires = "secret_id_stdin")]
    approle: Option<String>,
    /// Read the AppRole secret id from the first line of stdin.
    #[arg(long)]
    secret_id_stdin: bool,
    /// This member's name in the team (default: the login's display name).
    #[arg(long)]
    member: Option<String>,
}

impl LoginArgs {
    /// The login asked for; in the browser (OIDC) for team `name` at `place`.
    fn login(
        &self,
        vault: &Vault,
        name: &str,
        place: Option<(&str, &str)>,
    ) -> Result<Login, Failure> {
        if self.oidc {
            return self.oidc_login(vault, name, place);
        }
        match (&self.approle, self.token_stdin) {
            (Some(role), false) => Ok(Login::AppRole {
                role_id: role.clone(),
                secret_id: stdin_line("secret id")?,
            }),
            (None, true) => Ok(Login::Token(stdin_line("token")?)),
            _ => Err(Failure::invalid(
                "say how to log in: --oidc, --token-stdin, or --approle ROLE_ID --secret-id-stdin",
            )),
        }
    }

    /// Opens the browser at the team vault's OIDC sign-in and waits for its redirect.
    fn oidc_login(
        &self,
        vault: &Vault,
        name: &str,
        place: Option<(&str, &str)>,
    ) -> Result<Login, Failure> {
        let pending = vault.begin_team_oidc(name, place, &self.oidc_mount, self.role.as_deref())?;
        let interactive = std::io::stderr().is_terminal();
        match browser::open(&pending.url) {
            Ok(()) if interactive => note(&format!(
                "Opened your browser to log in to the team vault. If it did not open, visit:\n  {}",
                pending.url
            )),
            Ok(()) => {}
            Err(e) => note(&format!(
                "Could not start a browser ({e}). Log in at:\n  {}",
                pending.url
            )),
        }
        Ok(pending.wait(Duration::from_secs(self.timeout), &CancelToken::default())?)
    }
}

fn stdin_line(what: &str) -> Result<SecretText, Failure> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::other(format!("cannot read the {what} from stdin: {e}")))?;
    let value = line.trim();
    if value.is_empty() {
        return Err(Failure::invalid(format!("the {what} on stdin is empty")));
    }
    Ok(SecretText::new(value))
}

pub fn run(cmd: &TeamCommand, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    match cmd {
        TeamCommand::Connect {
            url,
            mount,
            name,
            login,
        } => {
            let name = name.clone().unwrap_or_else(|| mount.clone());
            let place = Some((url.as_str(), mount.as_str()));
            let s = vault.team_login(
                &name,
                place,
                login.login(&vault, &name, place)?,
                login.member.as_deref(),
            )?;
            out.value(&s, || {
                format!("connected to team {} at {} as {}", s.name, s.url, s.member)
            })
        }
        TeamCommand::Login { name, login } => {
            let s = vault.team_login(
                name,
                None,
                login.login(&vault, name, None)?,
                login.member.as_deref(),
            )?;
            out.value(&s, || {
                format!("logged in to team {} as {}", s.name, s.member)
            })
        }
        TeamCommand::Policy { tenant, name } => {
            let t = vault.find_tenant(tenant)?;
            crate::output::emit(&vault.team_policy(name, &t.id)?)
        }
        TeamCommand::Sync => {
            let s = vault.team_sync(&Actor::new(ActorKind::Cli))?;
            out.value(&s, || {
                format!(
                    "{} shared connections added here; {} events appended to the team history; {} logins renewed",
                    s.connections_added, s.history_events_appended, s.logins_renewed
                )
            })
        }
        TeamCommand::Review { name } => {
            let grants = vault.team_review(name)?;
            let meta = |g: &grantkeeper_core::sharing::SharedGrant, k: &str| {
                g.metadata
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned()
            };
            out.table(
                &grants,
                &[
                    "TENANT",
                    "CONNECTION",
                    "STATUS",
                    "ACCOUNT",
                    "SCOPES",
                    "REFRESHED BY",
                ],
                |g| {
                    vec![
                        vault
                            .find_tenant(&g.tenant)
                            .map_or_else(|_| g.tenant.clone(), |t| t.slug),
                        meta(g, "name"),
                        meta(g, "status"),
                        meta(g, "account"),
                        meta(g, "scopes"),
                        meta(g, "refreshed_by"),
                    ]
                },
            )
        }
        TeamCommand::Status => {
            let teams = vault.team_status()?;
            out.table(
                &teams,
                &["TEAM", "URL", "MEMBER", "STATE", "TENANTS"],
                |t: &TeamStatus| {
                    vec![
                        t.name.clone(),
                        format!("{} ({})", t.url, t.mount),
                        t.member.clone(),
                        t.problem.clone().unwrap_or_else(|| "reachable".into()),
                        t.tenants.join(" "),
                    ]
                },
            )
        }
    }
}

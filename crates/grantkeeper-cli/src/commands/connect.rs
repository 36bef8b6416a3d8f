//! `grantkeeper connect` and `grantkeeper list`.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use grantkeeper_core::audit::{Actor, ActorKind};
use grantkeeper_core::connect::{ConnectRequest, DEFAULT_CONNECT_TIMEOUT};
use grantkeeper_core::model::{now_ms, Connection, RedirectMode};
use grantkeeper_core::oauth::flow::parse_pasted_redirect;
use grantkeeper_core::oauth::loopback::CancelToken;
use grantkeeper_core::oauth::{browser, OAuthError};
use grantkeeper_core::status::{GrantState, StatusFacts};
use grantkeeper_core::ConnectionFilter;

use super::provider::Redirect;
use super::split_ref;
use crate::exit::Failure;
use crate::output::{note, relative, Output};

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// `<tenant>/<connection-name>`.
    target: String,
    /// The tenant's provider app to connect with.
    #[arg(long)]
    provider: String,
    /// Scopes to ask for, space-separated (default: the app's).
    #[arg(long)]
    scopes: Option<String>,
    /// Override the app's redirect mode.
    #[arg(long, value_enum)]
    redirect: Option<Redirect>,
    /// Use the device authorization grant (enter a code on another device).
    #[arg(long, conflicts_with_all = ["redirect", "client_credentials"])]
    device: bool,
    /// Use the client-credentials grant (a service connection, no user).
    #[arg(long, conflicts_with = "redirect")]
    client_credentials: bool,
    /// Seconds to wait for the browser.
    #[arg(long, default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs())]
    timeout: u64,
}

pub fn connect(args: &ConnectArgs, out: &Output) -> Result<(), Failure> {
    let (tenant, name) = split_ref(&args.target)?;
    let vault = crate::open_vault()?;
    let t = vault.find_tenant(tenant)?;
    let scope = vault.tenant(&t.id)?;
    let actor = Actor::new(ActorKind::Cli);
    let request = ConnectRequest {
        name: name.to_owned(),
        provider_app: args.provider.clone(),
        scopes: args
            .scopes
            .as_ref()
            .map(|s| s.split_whitespace().map(str::to_owned).collect()),
        redirect: args.redirect.map(Into::into),
    };
    let connection = if args.client_credentials {
        scope.connect_client_credentials(&request, &actor)?
    } else if args.device {
        let device = scope.begin_device_connect(&request)?;
        note(&format!(
            "To sign in, open {} and enter the code {}",
            device.verification_uri, device.user_code
        ));
        if let Some(complete) = &device.verification_uri_complete {
            note(&format!("(or open {complete})"));
        }
        if std::io::stderr().is_terminal() {
            note("Waiting for approval…");
        }
        scope.finish_device_connect(&request, &device, &CancelToken::default(), &actor)?
    } else {
        let pending = scope.begin_connect(request.clone())?;
        browser_sign_in(&scope, pending, args.timeout, &actor)?
    };
    out.value(&connection, || describe(&t.slug, &connection))?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct ReconsentArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Scopes to ask for, space-separated (default: those asked for before).
    #[arg(long)]
    scopes: Option<String>,
    /// Override the app's redirect mode.
    #[arg(long, value_enum)]
    redirect: Option<Redirect>,
    /// Seconds to wait for the browser.
    #[arg(long, default_value_t = DEFAULT_CONNECT_TIMEOUT.as_secs())]
    timeout: u64,
}

/// `grantkeeper reconsent`: renews a connection in place, history kept.
pub fn reconsent(args: &ReconsentArgs, out: &Output) -> Result<(), Failure> {
    let (tenant, name) = split_ref(&args.target)?;
    let vault = crate::open_vault()?;
    let t = vault.find_tenant(tenant)?;
    let scope = vault.tenant(&t.id)?;
    let c = scope.connection_named(name)?;
    let scopes = args
        .scopes
        .as_ref()
        .map(|s| s.split_whitespace().map(str::to_owned).collect());
    let pending = scope.begin_reconsent(&c.id, scopes, args.redirect.map(Into::into))?;
    let connection = browser_sign_in(&scope, pending, args.timeout, &Actor::new(ActorKind::Cli))?;
    out.value(&connection, || describe(&t.slug, &connection))?;
    Ok(())
}

/// Opens the browser, waits for the redirect (or reads a pasted one), and finishes the grant.
fn browser_sign_in(
    scope: &grantkeeper_core::TenantVault<'_>,
    mut pending: grantkeeper_core::connect::PendingConnect,
    timeout: u64,
    actor: &Actor,
) -> Result<Connection, Failure> {
    // Progress goes to a terminal only, so that a script sees nothing on stderr but the one
    // failure line; the sign-in URL is always shown when no browser could be started.
    let interactive = std::io::stderr().is_terminal();
    match browser::open(&pending.url) {
        Ok(()) if interactive => note(&format!(
            "Opened your browser to sign in. If it did not open, visit:\n  {}",
            pending.url
        )),
        Ok(()) => {}
        Err(e) => note(&format!(
            "Could not start a browser ({e}). Sign in at:\n  {}",
            pending.url
        )),
    }
    // A pasted redirect comes from stdin, read on a thread so the wait keeps its timeout.
    let (paste, pasted) = mpsc::channel();
    if pending.redirect_mode() == RedirectMode::Paste {
        note(&format!(
            "After signing in, paste the address your browser shows (starting with {}):",
            pending.redirect_uri
        ));
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = match std::io::stdin().lock().read_line(&mut line) {
                Ok(0) => Err(OAuthError::Cancelled),
                Ok(_) => parse_pasted_redirect(&line),
                Err(e) => Err(OAuthError::Malformed(format!(
                    "cannot read the pasted URL: {e}"
                ))),
            };
            let _ = paste.send(read);
        });
    } else if interactive {
        note(&format!(
            "Waiting for the browser (up to {timeout} s; Ctrl+C cancels)…"
        ));
    }
    let params = pending
        .wait(
            Duration::from_secs(timeout),
            &CancelToken::default(),
            &pasted,
        )
        .map_err(grantkeeper_core::Error::from)?;
    Ok(scope.finish_connect(pending, &params, actor)?)
}

fn describe(tenant: &str, c: &Connection) -> String {
    let now = now_ms();
    let mut lines = vec![format!("connected {tenant}/{}", c.name)];
    let account = c
        .account
        .username
        .clone()
        .or_else(|| c.account.subject.clone());
    lines.push(format!(
        "  account:   {}",
        account.as_deref().unwrap_or("(not reported)")
    ));
    lines.push(format!("  requested: {}", c.scopes_requested.join(" ")));
    let granted = if c.scopes_granted_reported {
        c.scopes_granted.join(" ")
    } else {
        format!(
            "{} (not reported; assumed as requested)",
            c.scopes_granted.join(" ")
        )
    };
    lines.push(format!("  granted:   {granted}"));
    let missing: Vec<&String> = c
        .scopes_requested
        .iter()
        .filter(|s| !c.scopes_granted.contains(s))
        .collect();
    if !missing.is_empty() {
        lines.push(format!(
            "  not granted: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    let source = c
        .access_expiry_source
        .map(|s| {
            format!(
                " (from {})",
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            )
        })
        .unwrap_or_default();
    lines.push(format!(
        "  expires:   {}{source}",
        relative(c.access_expires_at, now)
    ));
    lines.push(format!(
        "  refresh:   {}",
        if c.has_refresh_token {
            "refresh token in the OS keychain"
        } else {
            "no refresh token"
        }
    ));
    lines.join("\n")
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this tenant's connections.
    #[arg(long)]
    tenant: Option<String>,
    /// Only connections in this state, computed now (active, expiring, expired,
    /// needs_reconsent, revoked, error).
    #[arg(long)]
    status: Option<String>,
}

/// A connection as `list --json` prints it: the record and its status computed now.
#[derive(serde::Serialize)]
struct Listed {
    #[serde(flatten)]
    connection: Connection,
    /// The status computed from the facts (what the STATUS column shows).
    state: GrantState,
    /// Someone must act on it.
    needs_attention: bool,
}

pub fn list(args: &ListArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let tenants: HashMap<_, _> = vault
        .list_tenants()?
        .into_iter()
        .map(|s| (s.tenant.id.clone(), s.tenant.slug))
        .collect();
    let tenant = match &args.tenant {
        Some(t) => Some(vault.find_tenant(t)?.id),
        None => None,
    };
    let wanted = args
        .status
        .as_deref()
        .map(|s| {
            GrantState::parse(s).ok_or_else(|| {
                let names: Vec<_> = GrantState::ALL.iter().map(|s| s.as_str()).collect();
                Failure::invalid(format!("'{s}' is not a status: use {}", names.join(", ")))
            })
        })
        .transpose()?;
    let now = now_ms();
    let rows: Vec<Listed> = vault
        .connections(&ConnectionFilter {
            tenant,
            status: None,
        })?
        .into_iter()
        .map(|c| {
            let step = StatusFacts::from(&c).at(now);
            Listed {
                connection: c,
                state: step.state,
                needs_attention: step.attention,
            }
        })
        .filter(|l| wanted.is_none_or(|w| w == l.state))
        .collect();
    out.table(
        &rows,
        &["CONNECTION", "ACCOUNT", "STATUS", "EXPIRES", "LAST USE"],
        |l| {
            let c = &l.connection;
            vec![
                format!(
                    "{}/{}",
                    tenants.get(&c.tenant_id).map(String::as_str).unwrap_or("?"),
                    c.name
                ),
                c.account
                    .username
                    .clone()
                    .or_else(|| c.account.subject.clone())
                    .unwrap_or_default(),
                l.state.as_str().to_owned(),
                relative(c.access_expires_at, now),
                relative(c.last_used_at, now),
            ]
        },
    )?;
    Ok(())
}

//! `grantkeeper git-credential get|store|erase`: git's credential-helper protocol, answering
//! `get` with a fresh access token of a GitHub- or GitLab-style connection.
//!
//! Which connection answers for a remote, first match wins:
//! 1. `--connection <tenant>/<connection>` on the helper's command line;
//! 2. `git config credential.<url>.grantkeeper-connection <tenant>/<connection>` (git's URL
//!    matching, so one setting can cover a host or a path prefix);
//! 3. the one connection whose provider's catalog entry lists the remote's host as a git host
//!    (`github.com` for the GitHub presets); several such connections are an error naming them.
//!
//! No match: `get` prints nothing, so git asks its other helpers or the user. A token goes only
//! over HTTPS, or plain HTTP to a loopback host. `store` and `erase` change nothing: Grantkeeper
//! keeps and refreshes the token itself.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::Command;
use std::time::Duration;

use clap::{Args, ValueEnum};
use grantkeeper_core::deadline::{Deadline, DEFAULT_TIMEOUT};
use grantkeeper_core::ConnectionFilter;

use super::args::resolve;
use super::{cli_actor, split_ref};
use crate::exit::Failure;

/// A token handed to git stays valid at least this long (a long clone or push).
const MIN_VALID: Duration = Duration::from_secs(300);
/// The user name sent with the token when the catalog names none (GitLab's convention).
const DEFAULT_USERNAME: &str = "oauth2";

/// The helper's operation, as git names it.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Operation {
    /// Answer with a credential.
    Get,
    /// Git saw the credential work (nothing to do).
    Store,
    /// Git saw the credential refused (nothing to do: the token is refreshed by Grantkeeper).
    Erase,
}

#[derive(Debug, Args)]
pub struct GitCredentialArgs {
    /// The connection to use for every remote this helper is configured for.
    #[arg(long, value_name = "TENANT/CONNECTION")]
    connection: Option<String>,
    /// What git asks.
    #[arg(value_enum)]
    operation: Operation,
}

pub fn git_credential(args: &GitCredentialArgs) -> Result<(), Failure> {
    let request = read_request(std::io::stdin().lock())?;
    let Operation::Get = args.operation else {
        return Ok(());
    };
    let protocol = request.get("protocol").map(String::as_str).unwrap_or("");
    let host = request.get("host").cloned().unwrap_or_default();
    let loopback = host_is_loopback(&host);
    if !(protocol == "https" || (protocol == "http" && loopback)) {
        return Ok(());
    }
    let url = format!(
        "{protocol}://{host}/{}",
        request.get("path").map(String::as_str).unwrap_or("")
    );
    let vault = crate::open_vault()?;
    let target = match &args.connection {
        Some(t) => Some(t.clone()),
        None => configured(&url).map_or_else(|| by_host(&vault, &host), |t| Ok(Some(t)))?,
    };
    let Some(target) = target else {
        return Ok(());
    };
    split_ref(&target)?;
    let (scope, c) = resolve(&vault, &target)?;
    let username = scope
        .api_spec(&c)?
        .git_username
        .unwrap_or_else(|| DEFAULT_USERNAME.to_owned());
    let handed = scope.access_token(
        &c.id,
        MIN_VALID,
        &Deadline::within(DEFAULT_TIMEOUT),
        &cli_actor(Some("git".into())),
    )?;
    let mut answer = format!("username={username}\npassword={}\n", handed.token.expose());
    if let Some(at) = handed.expires_at {
        answer.push_str(&format!("password_expiry_utc={}\n", at / 1000));
    }
    let mut out = std::io::stdout().lock();
    out.write_all(answer.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure::other(format!("cannot answer git: {e}")))
}

/// git's `key=value` lines up to an empty line or the end; `key[]` values are kept last-wins.
fn read_request(input: impl BufRead) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for line in input.lines() {
        let line = line.map_err(|e| Failure::other(format!("cannot read git's request: {e}")))?;
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once('=').ok_or_else(|| {
            Failure::invalid(format!(
                "git's request line '{}' is not key=value",
                line.chars().take(40).collect::<String>()
            ))
        })?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

fn host_is_loopback(host: &str) -> bool {
    let name = host
        .rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `credential.<url>.grantkeeper-connection` from git's configuration, matched against `url`.
fn configured(url: &str) -> Option<String> {
    let out = Command::new("git")
        .args([
            "config",
            "--get-urlmatch",
            "credential.grantkeeper-connection",
            url,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let value = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !value.is_empty()).then_some(value)
}

/// The one connection whose provider serves git on `host`.
fn by_host(vault: &grantkeeper_core::Vault, host: &str) -> Result<Option<String>, Failure> {
    let tenants: BTreeMap<_, _> = vault
        .list_tenants()?
        .into_iter()
        .map(|t| (t.tenant.id.clone(), t.tenant.slug))
        .collect();
    let mut found = Vec::new();
    for c in vault.connections(&ConnectionFilter::default())? {
        let scope = vault.tenant(&c.tenant_id)?;
        if scope.api_spec(&c)?.serves_git_host(host) {
            let slug = tenants.get(&c.tenant_id).cloned().unwrap_or_default();
            found.push(format!("{slug}/{}", c.name));
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Failure::invalid(format!(
            "several connections serve {host} ({}): pick one with git config --global credential.https://{host}.grantkeeper-connection TENANT/CONNECTION",
            found.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gits_request() {
        let r = read_request(
            "protocol=https\nhost=github.com\npath=acme/repo.git\ncapability[]=authtype\n\nignored=1\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r["protocol"], "https");
        assert_eq!(r["host"], "github.com");
        assert_eq!(r["path"], "acme/repo.git");
        assert!(!r.contains_key("ignored"));
        assert!(read_request("nonsense\n".as_bytes()).is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1:8080", "localhost", "[::1]:443", "127.0.0.1"] {
            assert!(host_is_loopback(h), "{h}");
        }
        for h in ["github.com", "10.0.0.1:80", "localhost.evil.example"] {
            assert!(!host_is_loopback(h), "{h}");
        }
    }
}

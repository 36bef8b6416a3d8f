//! `grantkeeper token`, `exec`, `refresh`, `revoke`, `delete`, `show`, `history`, `maintain`.

use std::process::Command as Process;
use std::time::Duration;

use clap::{Args, ValueEnum};
use grantkeeper_core::audit::{EventKind, HistoryFilter};
use grantkeeper_core::catalog::Catalog;
use grantkeeper_core::deadline::{Deadline, DEFAULT_TIMEOUT, MAX_TIMEOUT};
use grantkeeper_core::grants::{RevokeOutcome, DEFAULT_MIN_VALID};
use grantkeeper_core::model::{now_ms, Connection};
use grantkeeper_core::secret::AccessToken;
use grantkeeper_core::timefmt;
use grantkeeper_core::{TenantVault, Vault};
use serde_json::json;

use super::{cli_actor, split_ref};
use crate::exit::Failure;
use crate::output::{emit, relative, Output};

/// How `token` prints the access token.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// The token alone.
    Bare,
    /// `Authorization: Bearer <token>`.
    Header,
    /// JSON with the token and its expiry.
    Json,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Minimum remaining validity, e.g. `90s`, `5m`, `1h` (default 60s; at most 10 years).
    #[arg(long, value_parser = parse_min_valid)]
    min_valid: Option<Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value = "bare")]
    format: Format,
    /// Application hint recorded in the usage history.
    #[arg(long)]
    hint: Option<String>,
    /// Give up after this long in all, every retry included (default 30s); exit 8.
    #[arg(long, value_parser = parse_timeout)]
    timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Environment variable that receives the token.
    #[arg(long, default_value = "ACCESS_TOKEN")]
    env: String,
    /// Minimum remaining validity (default 60s; at most 10 years).
    #[arg(long, value_parser = parse_min_valid)]
    min_valid: Option<Duration>,
    /// Application hint recorded in the usage history (default: the command's name).
    #[arg(long)]
    hint: Option<String>,
    /// Give up getting the token after this long, every retry included (default 30s); exit 8.
    #[arg(long, value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `<tenant>/<connection>`.
    target: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `<tenant>/<connection>`.
    target: String,
    /// Do not revoke at the provider first.
    #[arg(long)]
    no_revoke: bool,
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Refresh grants whose refresh token would die from inactivity within this time.
    #[arg(long, value_parser = parse_duration, default_value = "7d")]
    keep_alive: Duration,
    /// List refresh tokens that expire within this time.
    #[arg(long, value_parser = parse_duration, default_value = "14d")]
    warn: Duration,
}

/// `grantkeeper maintain`: one background pass (run it from a timer, or let the agent run it).
pub fn maintain(args: &MaintainArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let report = vault.maintain(args.keep_alive, args.warn)?;
    out.value(&report, || {
        let now = now_ms();
        let mut lines = vec![format!(
            "kept alive: {} refreshed, {} failed",
            report.refreshed.len(),
            report.failed.len()
        )];
        for w in &report.warnings {
            lines.push(format!(
                "warning: {} refresh token expires {}{}",
                w.name,
                relative(Some(w.expires_at), now),
                if w.hard {
                    " (hard limit: consent again before then)"
                } else {
                    ""
                }
            ));
        }
        lines.join("\n")
    })?;
    Ok(())
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// `<tenant>/<connection>`; the whole vault when absent.
    target: Option<String>,
    /// Only events since then: a duration back from now (`90m`, `2d`) or an RFC 3339 date or
    /// time (`2026-03-01`, `2026-03-01T09:00:00Z`).
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// Number of events (the newest).
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Only events of this kind (consented, refreshed, refresh_failed, handed_out, revealed,
    /// revoked, deleted, exported, …).
    #[arg(long, value_parser = parse_kind)]
    kind: Option<EventKind>,
}

fn parse_kind(s: &str) -> Result<EventKind, String> {
    EventKind::parse(s).ok_or_else(|| format!("'{s}' is not an event kind"))
}

/// `--since`: a duration ago, or an RFC 3339 date or time; Unix milliseconds.
pub fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(d) = parse_duration(s) {
        return Ok(now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    }
    timefmt::parse_rfc3339(s).ok_or_else(|| {
        format!("'{s}' is neither a duration like 2d nor an RFC 3339 date like 2026-03-01 or 2026-03-01T09:00:00Z")
    })
}

/// `--timeout`: a duration from 1 s to 10 minutes.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err(format!("'{s}' is not between 1s and 10m"));
    }
    Ok(d)
}

/// Parses `90`, `90s`, `5m`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 90s, 5m, 1h or 7d"))?;
    let unit = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("'{s}' is not a duration like 90s, 5m, 1h or 7d")),
    };
    // A number too big for its unit is as long as a duration gets; callers bound it.
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}

/// `--min-valid`: a duration, at most 10 years (longer asks for the same).
pub fn parse_min_valid(s: &str) -> Result<Duration, String> {
    parse_duration(s).map(grantkeeper_core::oauth::token::clamp_min_valid)
}

pub(super) fn resolve<'v>(
    vault: &'v Vault,
    target: &str,
) -> Result<(TenantVault<'v>, Connection), Failure> {
    let (tenant, name) = split_ref(target)?;
    let t = vault.find_tenant(tenant)?;
    let scope = vault.tenant(&t.id)?;
    let c = scope.connection_named(name)?;
    Ok((scope, c))
}

/// A timed-out `token` or `exec` says how to allow more time.
fn timeout_hint(f: Failure) -> Failure {
    if f.code == crate::exit::TIMED_OUT {
        Failure::new(
            f.code,
            format!("{}, or allow more time with --timeout", f.message),
        )
    } else {
        f
    }
}

pub fn token(args: &TokenArgs) -> Result<(), Failure> {
    token_inner(args).map_err(timeout_hint)
}

fn token_inner(args: &TokenArgs) -> Result<(), Failure> {
    let min_valid = args.min_valid.unwrap_or(DEFAULT_MIN_VALID);
    let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let deadline = Deadline::within(timeout);
    // A running agent answers without a keychain read; else open the vault here.
    let (tenant, name) = split_ref(&args.target)?;
    let (tok, expires_at) =
        match super::agent::token_via_agent(tenant, name, min_valid, timeout, args.hint.clone()) {
            Some(answer) => {
                let answer = answer?;
                (
                    AccessToken::new(answer.token.unwrap_or_default()),
                    answer.expires_at,
                )
            }
            None => {
                let vault = crate::open_vault()?;
                let (scope, c) = resolve(&vault, &args.target)?;
                let handed = scope.access_token(
                    &c.id,
                    min_valid,
                    &deadline,
                    &cli_actor(args.hint.clone()),
                )?;
                (handed.token, handed.expires_at)
            }
        };
    print_token(args.format, &tok, expires_at)
}

/// The hot path of scripts: `grantkeeper token <tenant>/<name> [--min-valid D] [--format F]
/// [--hint H] [--timeout D]` answered by a running agent, before the full command line is even parsed.
/// Returns the exit code; `None` (the normal path takes over) for anything else: other
/// arguments, `--help`, `--json`, no agent, or an argument it does not know.
pub fn fast_token() -> Option<u8> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (first, rest) = args.split_first()?;
    if first != "token" {
        return None;
    }
    let mut target = None;
    let (mut min_valid, mut format, mut hint) = (DEFAULT_MIN_VALID, Format::Bare, None);
    let mut timeout = DEFAULT_TIMEOUT;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "--min-valid" => min_valid = parse_min_valid(&value()?).ok()?,
            "--format" => {
                format = match value()?.as_str() {
                    "bare" => Format::Bare,
                    "header" => Format::Header,
                    "json" => Format::Json,
                    _ => return None,
                }
            }
            "--hint" => hint = Some(value()?),
            "--timeout" => timeout = parse_timeout(&value()?).ok()?,
            f if f.starts_with('-') => return None,
            _ if target.is_none() => target = Some(a.clone()),
            _ => return None,
        }
    }
    let target = target?;
    let (tenant, name) = split_ref(&target).ok()?;
    let answer = super::agent::token_via_agent(tenant, name, min_valid, timeout, hint)?;
    Some(
        match answer.and_then(|a| {
            print_token(
                format,
                &AccessToken::new(a.token.unwrap_or_default()),
                a.expires_at,
            )
        }) {
            Ok(()) => 0,
            Err(f) => crate::output::report(&timeout_hint(f)),
        },
    )
}

fn print_token(format: Format, tok: &AccessToken, expires_at: Option<i64>) -> Result<(), Failure> {
    match format {
        Format::Bare => emit(&format!("{}\n", tok.expose())),
        Format::Header => emit(&format!("Authorization: Bearer {}\n", tok.expose())),
        Format::Json => emit(&format!(
            "{}\n",
            json!({ "access_token": tok.expose(), "token_type": "Bearer", "expires_at": expires_at })
        )),
    }
}

pub fn exec(args: &ExecArgs) -> Result<(), Failure> {
    let deadline = Deadline::within(args.timeout.unwrap_or(DEFAULT_TIMEOUT));
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    let hint = args.hint.clone().or_else(|| args.command.first().cloned());
    let tok = scope
        .access_token(
            &c.id,
            args.min_valid.unwrap_or(DEFAULT_MIN_VALID),
            &deadline,
            &cli_actor(hint),
        )
        .map_err(|e| timeout_hint(e.into()))?
        .token;
    let status = Process::new(&args.command[0])
        .args(&args.command[1..])
        .env(&args.env, tok.expose())
        .status()
        .map_err(|e| Failure::other(format!("cannot run '{}': {e}", args.command[0])))?;
    drop(tok);
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => Err(Failure::new(
            u8::try_from(code).unwrap_or(1),
            format!("'{}' exited with status {code}", args.command[0]),
        )),
        None => Err(Failure::other(format!(
            "'{}' was killed by a signal",
            args.command[0]
        ))),
    }
}

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
fn confirmed(target: &str, outcome: &RevokeOutcome) -> Result<(), Failure> {
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

pub fn show(args: &TargetArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let (scope, c) = resolve(&vault, &args.target)?;
    let app = scope.provider_app(c.provider_app_id.as_str())?;
    let preset = Catalog::preset_named(app.preset.as_deref()).ok().flatten();
    let scopes = grantkeeper_core::report::scope_views(&c, preset);
    let view = json!({ "connection": c, "provider_app": app.name, "preset": app.preset, "scopes": scopes });
    out.value(&view, || {
        let now = now_ms();
        let mut lines = vec![
            format!("{}  ({}, {})", args.target, app.name, c.status.as_str()),
            format!(
                "  account:        {}",
                c.account
                    .username
                    .clone()
                    .or(c.account.subject.clone())
                    .unwrap_or_else(|| "-".into())
            ),
            format!(
                "  access token:   expires {}",
                relative(c.access_expires_at, now)
            ),
            format!(
                "  refresh token:  {}",
                if c.has_refresh_token {
                    "in the OS keychain"
                } else {
                    "none"
                }
            ),
            format!("  refresh expiry: {}", relative(c.refresh_expires_at, now)),
            format!("  last refresh:   {}", relative(c.last_refresh_at, now)),
            format!("  last use:       {}", relative(c.last_used_at, now)),
            "  scopes:".into(),
        ];
        for s in &scopes {
            lines.push(format!(
                "    {} {:<40} {:<7} {}",
                if s.granted { "✓" } else { "✗" },
                s.scope,
                s.risk.map_or("?", |r| match r {
                    grantkeeper_core::catalog::Risk::Low => "low",
                    grantkeeper_core::catalog::Risk::Medium => "medium",
                    grantkeeper_core::catalog::Risk::High => "high",
                }),
                s.meaning.as_deref().unwrap_or("")
            ));
        }
        for (k, v) in &c.metadata {
            lines.push(format!("  {k}: {v}"));
        }
        if let Some(d) = &c.status_detail {
            lines.push(format!("  note: {d}"));
        }
        lines.join("\n")
    })?;
    Ok(())
}

pub fn history(args: &HistoryArgs, out: &Output) -> Result<(), Failure> {
    let vault = crate::open_vault()?;
    let connection = match &args.target {
        Some(t) => Some(resolve(&vault, t)?.1.id),
        None => None,
    };
    let events = vault.history(&HistoryFilter {
        connection,
        since: args.since,
        kind: args.kind,
        limit: args.limit,
    })?;
    let now = now_ms();
    out.table(
        &events,
        &["#", "WHEN", "EVENT", "BY", "HINT", "FINGERPRINT"],
        |e| {
            vec![
                e.seq.to_string(),
                relative(Some(e.ts), now),
                serde_json::to_value(e.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                e.actor
                    .map(|a| format!("{a:?}").to_lowercase())
                    .unwrap_or_default(),
                e.app_hint.clone().unwrap_or_default(),
                e.fingerprint.clone().unwrap_or_default(),
            ]
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("90").unwrap(),
            Duration::from_secs(90)
        );
        assert_eq!(
            super::parse_duration("5m").unwrap(),
            Duration::from_secs(300)
        );
        assert_eq!(
            super::parse_duration("2h").unwrap(),
            Duration::from_secs(7200)
        );
        assert!(super::parse_duration("soon").is_err());
        assert_eq!(
            super::parse_duration("2d").unwrap(),
            Duration::from_secs(172_800)
        );
        assert!(super::parse_duration("5w").is_err());
        // Huge values neither overflow nor pass 10 years as a minimum validity.
        let ten_years = Duration::from_secs(315_576_000);
        assert_eq!(
            super::parse_duration(&format!("{}d", u64::MAX)).unwrap(),
            Duration::from_secs(u64::MAX)
        );
        for huge in [
            "18446744073709551615",
            "18446744073709551615d",
            "999999999999h",
            "3653d",
        ] {
            assert_eq!(super::parse_min_valid(huge).unwrap(), ten_years, "{huge}");
        }
        assert!(super::parse_min_valid("99999999999999999999999").is_err());
        assert!(super::parse_min_valid("-5m").is_err());
        assert_eq!(
            super::parse_min_valid("5m").unwrap(),
            Duration::from_secs(300)
        );
        assert!(super::parse_timeout(&format!("{}d", u64::MAX)).is_err());
    }

    #[test]
    fn since_is_a_duration_ago_or_a_date() {
        let now = grantkeeper_core::model::now_ms();
        let two_days_ago = super::parse_since("2d").unwrap();
        assert!((now - 172_800_000 - two_days_ago).abs() < 5_000);
        assert_eq!(super::parse_since("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(super::parse_since("1970-01-01T01:00:00+01:00").unwrap(), 0);
        let err = super::parse_since("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}

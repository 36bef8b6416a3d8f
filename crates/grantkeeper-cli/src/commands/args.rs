//! Arguments and lookups the commands share: `<tenant>/<connection>` targets, durations, times.

use std::time::Duration;

use clap::Args;
use grantkeeper_core::deadline::MAX_TIMEOUT;
use grantkeeper_core::model::{now_ms, Connection};
use grantkeeper_core::timefmt;
use grantkeeper_core::{TenantVault, Vault};

use super::split_ref;
use crate::exit::Failure;

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// `<tenant>/<connection>`.
    pub(super) target: String,
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
pub(super) fn timeout_hint(f: Failure) -> Failure {
    if f.code == crate::exit::TIMED_OUT {
        Failure::new(
            f.code,
            format!("{}, or allow more time with --timeout", f.message),
        )
    } else {
        f
    }
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

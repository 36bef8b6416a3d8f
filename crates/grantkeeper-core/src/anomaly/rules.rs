//! The rules: one connection's profile against its own past.

use chrono::{Local, TimeZone};

use crate::audit::rollup::{local_hour, ProgramUse, UsageProfile};
use crate::model::UnixMillis;

use super::{Anomaly, AnomalyKind, Subject};

/// A burst is at least this many times the busiest hour of the 14 days before today…
pub const BURST_FACTOR: u32 = 3;
/// …and at least this many hand-outs in one hour.
pub const BURST_MIN: u32 = 20;
/// Hand-outs (over 7 days or more) before a connection has usual hours.
pub const OFF_HOURS_MIN: u64 = 100;
/// An active grant unused this long is flagged.
pub const UNUSED_DAYS: i64 = 30;
/// Refreshes failed in a row before they are flagged.
pub const FAILURES_MIN: u32 = 3;
/// Hand-outs refused by the hand-out policy within 24 hours before they are flagged.
pub const REFUSED_MIN: u32 = 3;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// The window in which a program counts as new, and a re-consent as recent.
const NEW_PROGRAM_DAYS: i64 = 7;
const SCOPES_ADDED_DAYS: i64 = 30;
/// An hour of the day is unusual when it saw less than 1/OFF_HOURS_SHARE of earlier hand-outs.
const OFF_HOURS_SHARE: u64 = 100;

/// Every flag on one connection at `now`.
pub fn flags(
    s: &Subject,
    profile: Option<&UsageProfile>,
    programs: &[ProgramUse],
    now: UnixMillis,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    let mut flag = |kind, since, explanation: String| {
        out.push(Anomaly {
            kind,
            tenant_id: s.tenant_id.clone(),
            connection_id: s.id.clone(),
            target: s.target.clone(),
            since,
            explanation,
        })
    };
    if let Some(p) = profile {
        if let Some((since, text)) = burst(p, now) {
            flag(AnomalyKind::Burst, since, text);
        }
        for (since, text) in new_programs(programs, now) {
            flag(AnomalyKind::NewProgram, since, text);
        }
        if let Some((since, text)) = off_hours(p, now) {
            flag(AnomalyKind::OffHours, since, text);
        }
        if p.failed_refreshes >= FAILURES_MIN {
            let since = p.failing_since.unwrap_or(now);
            let last = match p.last_failure.as_deref() {
                Some("transient") => "the provider was unreachable or failing",
                Some("needs_reconsent") => "the provider refused the grant",
                Some("configuration") => "the provider refused the client",
                _ => "an unknown error",
            };
            flag(
                AnomalyKind::RefreshFailures,
                since,
                format!(
                    "{} refreshes failed in a row since {} (last: {last}); check the provider app, or connect again if the grant was withdrawn.",
                    p.failed_refreshes,
                    when(since)
                ),
            );
        }
        if let Some((since, text)) = refused(p, now) {
            flag(AnomalyKind::RefusedHandOuts, since, text);
        }
        if let Some(added) = p
            .scopes_added
            .as_ref()
            .filter(|a| now - a.at <= SCOPES_ADDED_DAYS * DAY)
        {
            flag(
                AnomalyKind::ScopesAdded,
                added.at,
                format!(
                    "The re-consent on {} added {}: {}.",
                    when(added.at),
                    count(added.scopes.len(), "scope", "scopes"),
                    added.scopes.join(", ")
                ),
            );
        }
    }
    let last = s.last_used_at.unwrap_or(s.created_at);
    if s.active && now - last >= UNUSED_DAYS * DAY {
        let days = (now - last) / DAY;
        let text = match s.last_used_at {
            Some(at) => format!(
                "Not used for {days} days (last hand-out {}); revoke it if nobody needs it.",
                when(at)
            ),
            None => format!(
                "Never used in the {days} days since it was connected on {}; revoke it if nobody needs it.",
                when(s.created_at)
            ),
        };
        flag(AnomalyKind::Unused, last, text);
    }
    out
}

/// This hour or the last one against the busiest hour of the 14 days before today.
fn burst(p: &UsageProfile, now: UnixMillis) -> Option<(UnixMillis, String)> {
    let hour = now.div_euclid(HOUR);
    let recent = p
        .hours
        .iter()
        .filter(|h| h.hour >= hour - 1 && h.hour <= hour)
        .max_by_key(|h| h.handouts)?;
    let today = now.div_euclid(DAY);
    let before: Vec<_> = p
        .days
        .iter()
        .filter(|d| d.day < today && d.day >= today - 14)
        .collect();
    // Without three earlier days of use there is no baseline to be far above.
    if before.len() < 3 {
        return None;
    }
    let busiest = before.iter().map(|d| d.busiest_hour).max().unwrap_or(0);
    if recent.handouts < BURST_MIN || recent.handouts < busiest.saturating_mul(BURST_FACTOR) {
        return None;
    }
    let start = recent.hour * HOUR;
    Some((
        start,
        format!(
            "{} in the hour from {}; its busiest hour in the 14 days before had {}.",
            count(recent.handouts as usize, "hand-out", "hand-outs"),
            when(start),
            busiest
        ),
    ))
}

/// At least [`REFUSED_MIN`] hand-outs refused by the hand-out policy in the last 24 hours.
fn refused(p: &UsageProfile, now: UnixMillis) -> Option<(UnixMillis, String)> {
    let hour = now.div_euclid(HOUR);
    let recent: Vec<_> = p
        .refused
        .iter()
        .filter(|h| h.hour > hour - 24 && h.hour <= hour)
        .collect();
    let total: u32 = recent.iter().map(|h| h.handouts).sum();
    if total < REFUSED_MIN {
        return None;
    }
    let start = recent.first()?.hour * HOUR;
    Some((
        start,
        format!(
            "The hand-out policy refused {total} hand-outs in the last 24 hours, the first in the hour from {}; the history names the programs: list them with `grantkeeper policy set` if they are yours.",
            when(start)
        ),
    ))
}

/// Programs first seen in the last 7 days, when other programs used the connection before.
fn new_programs(programs: &[ProgramUse], now: UnixMillis) -> Vec<(UnixMillis, String)> {
    let cutoff = now - NEW_PROGRAM_DAYS * DAY;
    let mut known: Vec<&str> = programs
        .iter()
        .filter(|p| p.first_ts < cutoff)
        .map(|p| p.program.as_str())
        .collect();
    if known.is_empty() {
        return Vec::new();
    }
    known.sort_unstable();
    let before = match known.as_slice() {
        [one] => format!("only {one} had"),
        [a, b] => format!("only {a} and {b} had"),
        [a, rest @ ..] => format!("only {a} and {} other programs had", rest.len()),
        [] => unreachable!("not empty"),
    };
    let mut new: Vec<&ProgramUse> = programs.iter().filter(|p| p.first_ts >= cutoff).collect();
    new.sort_by_key(|p| p.first_ts);
    new.into_iter()
        .map(|p| {
            (
                p.first_ts,
                format!(
                    "{} took a token for the first time on {}; before that {before}.",
                    p.program,
                    when(p.first_ts)
                ),
            )
        })
        .collect()
}

/// Hand-outs in the last 24 hours at hours of the day that saw under 1% of the earlier ones.
fn off_hours(p: &UsageProfile, now: UnixMillis) -> Option<(UnixMillis, String)> {
    if now - p.first_ts < NEW_PROGRAM_DAYS * DAY {
        return None;
    }
    let hour = now.div_euclid(HOUR);
    let recent: Vec<_> = p.hours.iter().filter(|h| h.hour > hour - 24).collect();
    let mut earlier = p.hour_of_day;
    for h in &recent {
        let slot = &mut earlier[local_hour(h.hour * HOUR)];
        *slot = slot.saturating_sub(h.handouts);
    }
    let total: u64 = earlier.iter().map(|&n| u64::from(n)).sum();
    if total < OFF_HOURS_MIN {
        return None;
    }
    let odd: Vec<_> = recent
        .iter()
        .filter(|h| u64::from(earlier[local_hour(h.hour * HOUR)]) * OFF_HOURS_SHARE < total)
        .collect();
    let first = odd.first()?;
    let handouts: u32 = odd.iter().map(|h| h.handouts).sum();
    let hours: Vec<String> = odd
        .iter()
        .map(|h| {
            let from = Local.timestamp_millis_opt(h.hour * HOUR).single();
            let to = Local.timestamp_millis_opt((h.hour + 1) * HOUR).single();
            match (from, to) {
                (Some(f), Some(t)) => format!("{}–{}", f.format("%H:%M"), t.format("%H:%M")),
                _ => "an unknown hour".into(),
            }
        })
        .collect();
    Some((
        first.hour * HOUR,
        format!(
            "{} in the last 24 hours at {}, hours that saw under 1% of its {} earlier hand-outs.",
            count(handouts as usize, "hand-out", "hand-outs"),
            hours.join(", "),
            total
        ),
    ))
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time in the local zone, as flags say it (`30 Nov 09:12`).
fn when(ts: UnixMillis) -> String {
    Local.timestamp_millis_opt(ts).single().map_or_else(
        || ts.to_string(),
        |t| t.format("%-d %b %Y %H:%M").to_string(),
    )
}

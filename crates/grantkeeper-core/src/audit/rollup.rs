//! Usage profiles: each connection's use folded from the history into one small row, so that
//! anomaly flags ([`crate::anomaly`]) read a row per connection instead of every event. A use is
//! a hand-out of a token or a call through the authenticating proxy (counted as hand-outs here).
//!
//! Derived data only: [`catch_up`] folds the events after the newest one already folded (the
//! checkpoint thread calls it after each checkpoint, readers before they read), a tenant's rows
//! go with its events' content ([`forget_tenant`]), and all of them are rebuilt from the history
//! when the record of how far they were folded is missing. Hour-of-day counts use the local time
//! zone at the time an event is folded.

use std::collections::HashMap;

use chrono::{Local, TimeZone, Timelike};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::model::{ConnectionId, TenantId, UnixMillis};

use super::{ActorKind, EventKind};

/// Clock hours of hand-outs a profile keeps.
pub const HOURS_KEPT: i64 = 48;
/// Days of hand-outs a profile keeps.
pub const DAYS_KEPT: i64 = 15;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// `meta` key: the last event folded into the profiles.
const META_THROUGH: &str = "usage_through";
/// Events folded per transaction, so a first build does not hold the write lock for long.
const CHUNK: i64 = 50_000;

/// Hand-outs in one clock hour (hours since 1970, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourUse {
    /// Hours since 1970-01-01 00:00 UTC.
    pub hour: i64,
    /// Hand-outs in it.
    pub handouts: u32,
}

/// Hand-outs on one day (days since 1970, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayUse {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Hand-outs that day.
    pub handouts: u32,
    /// Hand-outs in that day's busiest clock hour.
    pub busiest_hour: u32,
}

/// The last re-consent that added scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopesAdded {
    /// When.
    pub at: UnixMillis,
    /// The scopes added.
    pub scopes: Vec<String>,
}

/// One connection's use, as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageProfile {
    /// Its first event.
    pub first_ts: UnixMillis,
    /// Hand-outs, all time.
    pub handouts: u64,
    /// Hand-outs per local hour of the day, all time.
    pub hour_of_day: [u32; 24],
    /// Hand-outs per clock hour, the newest [`HOURS_KEPT`] hours with any.
    pub hours: Vec<HourUse>,
    /// Hand-outs per day, the newest [`DAYS_KEPT`] days with any.
    pub days: Vec<DayUse>,
    /// Refreshes failed since the last one that succeeded (or the last consent).
    pub failed_refreshes: u32,
    /// When the first of those failed.
    pub failing_since: Option<UnixMillis>,
    /// The last failure's class (`transient`, `needs_reconsent`, `configuration`).
    pub last_failure: Option<String>,
    /// The last re-consent that added scopes.
    pub scopes_added: Option<ScopesAdded>,
    /// Hand-outs the hand-out policy refused, per clock hour, the newest [`HOURS_KEPT`] hours
    /// with any.
    pub refused: Vec<HourUse>,
}

impl UsageProfile {
    fn fold(&mut self, ts: UnixMillis, kind: EventKind, detail: Option<&str>, clock: &mut Clock) {
        if self.first_ts == 0 || ts < self.first_ts {
            self.first_ts = ts;
        }
        match kind {
            EventKind::HandedOut | EventKind::Proxied => self.hand_out(ts, clock.local_hour(ts)),
            EventKind::Refreshed => self.refresh_succeeded(),
            EventKind::HandOutRefused => self.refuse(ts),
            EventKind::RefreshFailed => {
                self.failed_refreshes += 1;
                self.failing_since.get_or_insert(ts);
                self.last_failure = detail
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|d| d.get("class")?.as_str().map(str::to_owned));
            }
            EventKind::Consented => {
                self.refresh_succeeded();
                let added = detail
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|d| {
                        serde_json::from_value::<Vec<String>>(d.get("scopes_added")?.clone()).ok()
                    })
                    .unwrap_or_default();
                if !added.is_empty() {
                    self.scopes_added = Some(ScopesAdded {
                        at: ts,
                        scopes: added,
                    });
                }
            }
            _ => {}
        }
    }

    fn refresh_succeeded(&mut self) {
        self.failed_refreshes = 0;
        self.failing_since = None;
        self.last_failure = None;
    }

    fn refuse(&mut self, ts: UnixMillis) {
        let hour = ts.div_euclid(HOUR);
        match self.refused.binary_search_by_key(&hour, |h| h.hour) {
            Ok(i) => self.refused[i].handouts += 1,
            Err(i) => self.refused.insert(i, HourUse { hour, handouts: 1 }),
        }
        let newest = self.refused.last().map_or(hour, |h| h.hour);
        self.refused.retain(|h| h.hour > newest - HOURS_KEPT);
    }

    fn hand_out(&mut self, ts: UnixMillis, local_hour: usize) {
        self.handouts += 1;
        self.hour_of_day[local_hour] += 1;
        let hour = ts.div_euclid(HOUR);
        let in_hour = match self.hours.binary_search_by_key(&hour, |h| h.hour) {
            Ok(i) => {
                self.hours[i].handouts += 1;
                self.hours[i].handouts
            }
            Err(i) => {
                self.hours.insert(i, HourUse { hour, handouts: 1 });
                1
            }
        };
        let newest = self.hours.last().map_or(hour, |h| h.hour);
        self.hours.retain(|h| h.hour > newest - HOURS_KEPT);
        let day = ts.div_euclid(DAY);
        match self.days.binary_search_by_key(&day, |d| d.day) {
            Ok(i) => {
                let d = &mut self.days[i];
                d.handouts += 1;
                d.busiest_hour = d.busiest_hour.max(in_hour);
            }
            Err(i) => self.days.insert(
                i,
                DayUse {
                    day,
                    handouts: 1,
                    busiest_hour: 1,
                },
            ),
        }
        let newest = self.days.last().map_or(day, |d| d.day);
        self.days.retain(|d| d.day > newest - DAYS_KEPT);
    }
}

/// Local hours of the day, looked up once per clock hour (events come in time order).
#[derive(Default)]
struct Clock {
    hour: Option<(i64, usize)>,
}

impl Clock {
    fn local_hour(&mut self, ts: UnixMillis) -> usize {
        let hour = ts.div_euclid(HOUR);
        match self.hour {
            Some((h, local)) if h == hour => local,
            _ => {
                let local = local_hour(ts);
                self.hour = Some((hour, local));
                local
            }
        }
    }
}

/// The local hour of the day (0–23) at `ts`.
pub fn local_hour(ts: UnixMillis) -> usize {
    Local
        .timestamp_millis_opt(ts)
        .single()
        .map_or(0, |t| t.hour() as usize)
}

/// Who took a token, as far as the event says: the calling program's path (from the peer's
/// credentials) when known, else the front end and the hint the caller gave.
pub fn program(actor: Option<ActorKind>, app_hint: Option<&str>, caller: Option<&str>) -> String {
    // `pid 4242 /usr/bin/python3`: the path is everything after the second space.
    if let Some(path) = caller
        .and_then(|c| c.strip_prefix("pid "))
        .and_then(|c| c.split_once(' '))
        .map(|(_, path)| path.trim())
        .filter(|p| !p.is_empty())
    {
        return path.to_owned();
    }
    let front = match actor {
        Some(ActorKind::App) => "the window",
        Some(ActorKind::Cli) => "the command line",
        Some(ActorKind::Agent) => "the agent",
        Some(ActorKind::Background) => "background refresh",
        Some(ActorKind::Proxy) => "the proxy",
        None => "unknown",
    };
    match app_hint {
        Some(hint) => format!("{front} (hint \"{hint}\")"),
        None => front.to_owned(),
    }
}

/// A program's use of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramUse {
    /// The connection.
    pub connection_id: ConnectionId,
    /// The program (see [`program`]).
    pub program: String,
    /// Its first hand-out.
    pub first_ts: UnixMillis,
    /// Its last hand-out.
    pub last_ts: UnixMillis,
    /// Its hand-outs.
    pub uses: u64,
}

/// Folds the events written since the last call into the profiles; returns how many events it
/// read. A plain read decides whether anything is new, so readers take the write lock only when
/// there is something to fold. Without the record of how far they were folded, the profiles are
/// rebuilt from the whole history rather than counting events twice.
pub fn catch_up(conn: &Connection) -> rusqlite::Result<u64> {
    let (through, newest) = progress(conn)?;
    if through.is_some_and(|t| newest <= t) {
        return Ok(0);
    }
    let mut read = 0;
    loop {
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        // Read again under the write lock: another process may have folded meanwhile.
        let (through, newest) = progress(&tx)?;
        let through = match through {
            Some(t) => t,
            None => {
                tx.execute_batch("DELETE FROM usage_profiles; DELETE FROM usage_programs;")?;
                0
            }
        };
        if newest <= through {
            tx.commit()?;
            return Ok(read);
        }
        let upto = newest.min(through + CHUNK);
        read += fold_range(&tx, through, upto)?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![META_THROUGH, upto.to_string()],
        )?;
        tx.commit()?;
    }
}

/// The last event folded (`None` when unrecorded) and the newest event.
fn progress(conn: &Connection) -> rusqlite::Result<(Option<i64>, i64)> {
    let through = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([META_THROUGH], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|v| v.parse().ok());
    Ok((through, super::query::newest_seq(conn)?))
}

type ProgramKey = (String, String);

fn fold_range(conn: &Connection, after: i64, upto: i64) -> rusqlite::Result<u64> {
    let mut profiles: HashMap<String, (String, UsageProfile)> = HashMap::new();
    let mut programs: HashMap<ProgramKey, (String, UnixMillis, UnixMillis, u64)> = HashMap::new();
    let mut clock = Clock::default();
    let mut load = conn.prepare_cached(&format!(
        "SELECT {PROFILE_COLUMNS} FROM usage_profiles WHERE connection_id = ?1"
    ))?;
    let mut stmt = conn.prepare_cached(
        "SELECT ts, kind, tenant_id, connection_id, actor, app_hint, caller, detail FROM events
         WHERE seq > ?1 AND seq <= ?2 AND connection_id IS NOT NULL AND tenant_id IS NOT NULL
         ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![after, upto])?;
    let mut read = 0;
    while let Some(r) = rows.next()? {
        read += 1;
        let ts: UnixMillis = r.get(0)?;
        let Some(kind) = EventKind::parse(r.get_ref(1)?.as_str()?) else {
            continue;
        };
        let connection: String = r.get(3)?;
        if !profiles.contains_key(&connection) {
            let stored = load.query_row([&connection], read_profile).optional()?;
            let profile = stored.map(|(_, p)| p).unwrap_or_default();
            profiles.insert(connection.clone(), (r.get(2)?, profile));
        }
        let detail = r.get_ref(7)?.as_str_or_null()?;
        let entry = profiles.get_mut(&connection).expect("loaded above");
        entry.1.fold(ts, kind, detail, &mut clock);
        if matches!(kind, EventKind::HandedOut | EventKind::Proxied) {
            let actor = r.get_ref(4)?.as_str_or_null()?.and_then(ActorKind::parse);
            let name = program(
                actor,
                r.get_ref(5)?.as_str_or_null()?,
                r.get_ref(6)?.as_str_or_null()?,
            );
            let p = programs
                .entry((connection, name))
                .or_insert_with(|| (entry.0.clone(), ts, ts, 0));
            p.1 = p.1.min(ts);
            p.2 = p.2.max(ts);
            p.3 += 1;
        }
    }
    let mut put = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO usage_profiles (tenant_id, {PROFILE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))?;
    for (connection, (tenant, p)) in &profiles {
        let added = p.scopes_added.as_ref();
        put.execute(params![
            tenant,
            connection,
            p.first_ts,
            p.handouts as i64,
            encode(p.hour_of_day.iter().map(|&n| (None, n, None))),
            encode(p.hours.iter().map(|h| (Some(h.hour), h.handouts, None))),
            encode(
                p.days
                    .iter()
                    .map(|d| (Some(d.day), d.handouts, Some(d.busiest_hour)))
            ),
            p.failed_refreshes,
            p.failing_since,
            p.last_failure,
            added.map(|a| a.at),
            added.map(|a| serde_json::to_string(&a.scopes).expect("strings serialize")),
            encode(p.refused.iter().map(|h| (Some(h.hour), h.handouts, None))),
        ])?;
    }
    let mut put = conn.prepare_cached(
        "INSERT INTO usage_programs (connection_id, program, tenant_id, first_ts, last_ts, uses)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (connection_id, program) DO UPDATE SET
             first_ts = min(first_ts, excluded.first_ts),
             last_ts = max(last_ts, excluded.last_ts),
             uses = uses + excluded.uses",
    )?;
    for ((connection, name), (tenant, first, last, uses)) in &programs {
        put.execute(params![connection, name, tenant, first, last, *uses as i64])?;
    }
    Ok(read)
}

const PROFILE_COLUMNS: &str = "connection_id, first_ts, handouts, hour_of_day, hours, days, \
    failed_refreshes, failing_since, last_failure, scopes_added_at, scopes_added, refused";

/// Packs records of an optional i64 and one or two u32 as little-endian bytes.
fn encode(items: impl Iterator<Item = (Option<i64>, u32, Option<u32>)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (a, b, c) in items {
        if let Some(a) = a {
            out.extend_from_slice(&a.to_le_bytes());
        }
        out.extend_from_slice(&b.to_le_bytes());
        if let Some(c) = c {
            out.extend_from_slice(&c.to_le_bytes());
        }
    }
    out
}

fn i64_at(b: &[u8]) -> i64 {
    i64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn read_profile(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, UsageProfile)> {
    let mut hour_of_day = [0u32; 24];
    for (slot, b) in hour_of_day
        .iter_mut()
        .zip(r.get_ref(3)?.as_blob()?.chunks_exact(4))
    {
        *slot = u32_at(b);
    }
    let hours = r.get_ref(4)?.as_blob()?.chunks_exact(12).map(|b| HourUse {
        hour: i64_at(b),
        handouts: u32_at(&b[8..]),
    });
    let days = r.get_ref(5)?.as_blob()?.chunks_exact(16).map(|b| DayUse {
        day: i64_at(b),
        handouts: u32_at(&b[8..]),
        busiest_hour: u32_at(&b[12..]),
    });
    let refused = r.get_ref(11)?.as_blob()?.chunks_exact(12).map(|b| HourUse {
        hour: i64_at(b),
        handouts: u32_at(&b[8..]),
    });
    let scopes_added = match (
        r.get::<_, Option<i64>>(9)?,
        r.get_ref(10)?.as_str_or_null()?,
    ) {
        (Some(at), Some(scopes)) => serde_json::from_str(scopes)
            .ok()
            .map(|scopes| ScopesAdded { at, scopes }),
        _ => None,
    };
    Ok((
        r.get(0)?,
        UsageProfile {
            first_ts: r.get(1)?,
            handouts: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
            hour_of_day,
            hours: hours.collect(),
            days: days.collect(),
            failed_refreshes: r.get(6)?,
            failing_since: r.get(7)?,
            last_failure: r.get(8)?,
            scopes_added,
            refused: refused.collect(),
        },
    ))
}

/// Every connection's profile (or `only` one's), after folding what is new.
pub fn profiles(
    conn: &Connection,
    only: Option<&ConnectionId>,
) -> rusqlite::Result<HashMap<ConnectionId, UsageProfile>> {
    catch_up(conn)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PROFILE_COLUMNS} FROM usage_profiles WHERE ?1 IS NULL OR connection_id = ?1"
    ))?;
    let rows = stmt.query_map([only.map(ConnectionId::as_str)], read_profile)?;
    rows.map(|r| r.map(|(id, p)| (ConnectionId::from_string(id), p)))
        .collect()
}

/// Every program's use of every connection (or of `only` one; call after [`profiles`]).
pub fn programs(
    conn: &Connection,
    only: Option<&ConnectionId>,
) -> rusqlite::Result<Vec<ProgramUse>> {
    let mut stmt = conn.prepare_cached(
        "SELECT connection_id, program, first_ts, last_ts, uses FROM usage_programs
         WHERE ?1 IS NULL OR connection_id = ?1",
    )?;
    let rows = stmt.query_map([only.map(ConnectionId::as_str)], |r| {
        Ok(ProgramUse {
            connection_id: ConnectionId::from_string(r.get::<_, String>(0)?),
            program: r.get(1)?,
            first_ts: r.get(2)?,
            last_ts: r.get(3)?,
            uses: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        })
    })?;
    rows.collect()
}

/// Removes a tenant's profiles and programs (with its events' content, see
/// [`super::redact_tenant`]).
pub(super) fn forget_tenant(conn: &Connection, tenant: &TenantId) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM usage_profiles WHERE tenant_id = ?1",
        [tenant.as_str()],
    )?;
    conn.execute(
        "DELETE FROM usage_programs WHERE tenant_id = ?1",
        [tenant.as_str()],
    )?;
    Ok(())
}

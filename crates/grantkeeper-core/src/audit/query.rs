//! Reading the history: a connection's events, filters, daily counts.

use rusqlite::{params, Connection};

use crate::model::{ConnectionId, TenantId, UnixMillis};

use super::{ActorKind, DailyCount, EventKind, UsageEvent};

pub(super) const EVENT_COLUMNS: &str = "seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller, detail, fingerprint, redacted";

pub(super) fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageEvent> {
    let kind: String = r.get(2)?;
    let actor: Option<String> = r.get(5)?;
    let detail: Option<String> = r.get(8)?;
    Ok(UsageEvent {
        seq: r.get(0)?,
        ts: r.get(1)?,
        kind: EventKind::parse(&kind).unwrap_or(EventKind::ConfigChanged),
        tenant_id: r.get::<_, Option<String>>(3)?.map(TenantId::from_string),
        connection_id: r
            .get::<_, Option<String>>(4)?
            .map(ConnectionId::from_string),
        actor: actor.as_deref().and_then(ActorKind::parse),
        app_hint: r.get(6)?,
        caller: r.get(7)?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        fingerprint: r.get(9)?,
        redacted: r.get(10)?,
    })
}

/// The newest `limit` events of one connection, newest first, optionally before a time.
pub fn connection_history(
    conn: &Connection,
    connection: &ConnectionId,
    before: Option<UnixMillis>,
    limit: u32,
) -> rusqlite::Result<Vec<UsageEvent>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE connection_id = ?1 AND ts < ?2 ORDER BY ts DESC, seq DESC LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![connection.as_str(), before.unwrap_or(i64::MAX), limit],
        row_to_event,
    )?;
    rows.collect()
}

/// The newest event's sequence number; 0 when there is none.
pub fn newest_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(max(seq), 0) FROM events")?
        .query_row([], |r| r.get(0))
}

/// The newest `limit` events of the whole vault, newest first.
pub fn recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<UsageEvent>> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([limit], row_to_event)?;
    rows.collect()
}

/// Which events [`events`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only this connection's events; the whole vault's when `None`.
    pub connection: Option<ConnectionId>,
    /// Only events at or after this time.
    pub since: Option<UnixMillis>,
    /// Only events of this kind.
    pub kind: Option<EventKind>,
    /// At most this many events (the newest).
    pub limit: u32,
}

impl Default for HistoryFilter {
    fn default() -> Self {
        Self {
            connection: None,
            since: None,
            kind: None,
            limit: 50,
        }
    }
}

/// The newest events matching `filter`, newest first.
pub fn events(conn: &Connection, filter: &HistoryFilter) -> rusqlite::Result<Vec<UsageEvent>> {
    let since = filter.since.unwrap_or(i64::MIN);
    let kind = filter.kind.map(EventKind::as_str);
    match &filter.connection {
        Some(id) => {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE connection_id = ?1 AND ts >= ?2 AND (?4 IS NULL OR kind = ?4)
                 ORDER BY ts DESC, seq DESC LIMIT ?3"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![id.as_str(), since, filter.limit, kind],
                row_to_event,
            )?;
            rows.collect()
        }
        None => {
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE ts >= ?1 AND (?3 IS NULL OR kind = ?3)
                 ORDER BY seq DESC LIMIT ?2"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![since, filter.limit, kind], row_to_event)?;
            rows.collect()
        }
    }
}

/// A tenant's events after `seq`, oldest first, at most `limit` (the team history's batches).
pub fn tenant_events_after(
    conn: &Connection,
    tenant: &TenantId,
    seq: i64,
    limit: u32,
) -> rusqlite::Result<Vec<UsageEvent>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![tenant.as_str(), seq, limit], row_to_event)?;
    rows.collect()
}

/// Per-day, per-kind event counts of one connection since `since` (UTC days).
pub fn daily_counts(
    conn: &Connection,
    connection: &ConnectionId,
    since: UnixMillis,
) -> rusqlite::Result<Vec<DailyCount>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts / 86400000 AS day, kind, COUNT(*) FROM events
         WHERE connection_id = ?1 AND ts >= ?2 GROUP BY day, kind ORDER BY day, kind",
    )?;
    let rows = stmt.query_map(params![connection.as_str(), since], |r| {
        let kind: String = r.get(1)?;
        Ok((r.get::<_, i64>(0)?, kind, r.get::<_, i64>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (day, kind, count) = row?;
        if let Some(kind) = EventKind::parse(&kind) {
            out.push(DailyCount {
                day,
                kind,
                count: u64::try_from(count).unwrap_or(0),
            });
        }
    }
    Ok(out)
}

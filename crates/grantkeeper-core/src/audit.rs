//! The usage history: an append-only, hash-chained event log.
//!
//! Each event's content is hashed (`body_hash`, SHA-256 over a canonical length-prefixed encoding
//! that includes a random salt), and each event's `chain_hash` is SHA-256 over the previous
//! event's `chain_hash`, its own sequence number and its `body_hash`. [`verify`] recomputes both
//! and names the first event where an edit, deletion, insertion or reordering broke the chain.
//!
//! Tokens never enter an event; a keyed fingerprint does (see [`crate::crypto::FingerprintKey`]).
//!
//! Deleting a tenant redacts its events: their content (and salt) is erased and only the hashes,
//! time and kind stay, so the chain still verifies while nothing of the tenant can be read back.
//! A redacted event is accepted only when a later `tenant_deleted` event names its tenant.

use std::collections::HashSet;

use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;

use crate::model::{now_ms, ConnectionId, TenantId, UnixMillis};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A grant was obtained (consent).
    Consented,
    /// Tokens were refreshed.
    Refreshed,
    /// A refresh failed.
    RefreshFailed,
    /// An access token was handed to a caller.
    HandedOut,
    /// A secret was shown or copied at the user's request.
    Revealed,
    /// A grant was revoked.
    Revoked,
    /// A connection was deleted.
    Deleted,
    /// Data was exported.
    Exported,
    /// Configuration changed (tenant renamed, provider app added, …).
    ConfigChanged,
    /// A tenant was created.
    TenantCreated,
    /// A tenant was deleted (and its events redacted).
    TenantDeleted,
}

impl EventKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consented => "consented",
            Self::Refreshed => "refreshed",
            Self::RefreshFailed => "refresh_failed",
            Self::HandedOut => "handed_out",
            Self::Revealed => "revealed",
            Self::Revoked => "revoked",
            Self::Deleted => "deleted",
            Self::Exported => "exported",
            Self::ConfigChanged => "config_changed",
            Self::TenantCreated => "tenant_created",
            Self::TenantDeleted => "tenant_deleted",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Consented,
            Self::Refreshed,
            Self::RefreshFailed,
            Self::HandedOut,
            Self::Revealed,
            Self::Revoked,
            Self::Deleted,
            Self::Exported,
            Self::ConfigChanged,
            Self::TenantCreated,
            Self::TenantDeleted,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Which front end acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The desktop app.
    App,
    /// The command line.
    Cli,
    /// The hand-out agent, on behalf of a local program.
    Agent,
    /// A background job (proactive refresh).
    Background,
}

impl ActorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Cli => "cli",
            Self::Agent => "agent",
            Self::Background => "background",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "app" => Self::App,
            "cli" => Self::Cli,
            "agent" => Self::Agent,
            "background" => Self::Background,
            _ => return None,
        })
    }
}

/// Who asked for an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The front end.
    pub kind: ActorKind,
    /// The application hint the caller gave (`--hint nightly-sync`).
    pub app_hint: Option<String>,
    /// The calling process, when known (`pid 4242 /usr/bin/python3`).
    pub caller: Option<String>,
}

impl Actor {
    /// An actor with no hint or caller details.
    pub fn new(kind: ActorKind) -> Self {
        Self {
            kind,
            app_hint: None,
            caller: None,
        }
    }

    /// Adds an application hint.
    pub fn with_hint(mut self, hint: Option<String>) -> Self {
        self.app_hint = hint;
        self
    }
}

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    ts: UnixMillis,
    kind: EventKind,
    tenant_id: Option<TenantId>,
    connection_id: Option<ConnectionId>,
    actor: Actor,
    detail: Option<String>,
    fingerprint: Option<String>,
}

impl NewEvent {
    /// An event of `kind` by `actor`, stamped now.
    pub fn new(kind: EventKind, actor: &Actor) -> Self {
        Self {
            ts: now_ms(),
            kind,
            tenant_id: None,
            connection_id: None,
            actor: actor.clone(),
            detail: None,
            fingerprint: None,
        }
    }

    /// The tenant concerned.
    pub fn tenant(mut self, id: &TenantId) -> Self {
        self.tenant_id = Some(id.clone());
        self
    }

    /// The connection concerned.
    pub fn connection(mut self, id: &ConnectionId) -> Self {
        self.connection_id = Some(id.clone());
        self
    }

    /// Structured, secret-free details.
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// The fingerprint of the token concerned.
    pub fn fingerprint(mut self, fingerprint: String) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Overrides the time stamp (imports, benchmarks).
    pub fn at(mut self, ts: UnixMillis) -> Self {
        self.ts = ts;
        self
    }
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct UsageEvent {
    /// Position in the chain, from 1.
    #[ts(type = "number")]
    pub seq: i64,
    /// When it happened.
    #[ts(type = "number")]
    pub ts: UnixMillis,
    /// What happened.
    pub kind: EventKind,
    /// Tenant concerned.
    pub tenant_id: Option<TenantId>,
    /// Connection concerned.
    pub connection_id: Option<ConnectionId>,
    /// Which front end acted.
    pub actor: Option<ActorKind>,
    /// The caller's application hint.
    pub app_hint: Option<String>,
    /// The calling process.
    pub caller: Option<String>,
    /// Structured details.
    #[ts(type = "unknown")]
    pub detail: Option<serde_json::Value>,
    /// Keyed fingerprint of the token concerned.
    pub fingerprint: Option<String>,
    /// Whether the content was erased with its tenant.
    pub redacted: bool,
}

/// Events of one kind on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct DailyCount {
    /// Days since 1970-01-01 (UTC).
    #[ts(type = "number")]
    pub day: i64,
    /// Event kind.
    pub kind: EventKind,
    /// Number of events.
    #[ts(type = "number")]
    pub count: u64,
}

/// The first event where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BadEvent {
    /// Its sequence number.
    #[ts(type = "number")]
    pub seq: i64,
    /// What is wrong, in plain words.
    pub reason: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VerifyReport {
    /// Events checked.
    #[ts(type = "number")]
    pub checked: u64,
    /// The first bad event, if any.
    pub first_bad: Option<BadEvent>,
}

impl VerifyReport {
    /// Whether the whole chain verified.
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

const GENESIS: [u8; 32] = [0; 32];

struct Body<'a> {
    ts: UnixMillis,
    kind: &'a str,
    tenant_id: Option<&'a str>,
    connection_id: Option<&'a str>,
    actor: Option<&'a str>,
    app_hint: Option<&'a str>,
    caller: Option<&'a str>,
    detail: Option<&'a str>,
    fingerprint: Option<&'a str>,
    salt: &'a [u8],
}

impl Body<'_> {
    /// SHA-256 over a canonical encoding: a domain tag, then each field as a presence byte and,
    /// when present, a big-endian u64 length and the bytes.
    fn hash(&self) -> [u8; 32] {
        fn field(h: &mut Sha256, v: Option<&[u8]>) {
            match v {
                None => h.update([0u8]),
                Some(b) => {
                    h.update([1u8]);
                    h.update((b.len() as u64).to_be_bytes());
                    h.update(b);
                }
            }
        }
        let mut h = Sha256::new();
        h.update(b"grantkeeper/event/v1");
        field(&mut h, Some(&self.ts.to_be_bytes()));
        field(&mut h, Some(self.kind.as_bytes()));
        for v in [
            self.tenant_id,
            self.connection_id,
            self.actor,
            self.app_hint,
            self.caller,
            self.detail,
            self.fingerprint,
        ] {
            field(&mut h, v.map(str::as_bytes));
        }
        field(&mut h, Some(self.salt));
        h.finalize().into()
    }
}

fn chain_hash(prev: &[u8], seq: i64, body_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"grantkeeper/chain/v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body_hash);
    h.finalize().into()
}

fn tail(conn: &Connection) -> rusqlite::Result<(i64, Vec<u8>)> {
    Ok(conn
        .prepare_cached("SELECT seq, chain_hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, GENESIS.to_vec())))
}

/// Appends one event. Call inside the write transaction of the operation it records, so that
/// the operation fails when its event cannot be written.
pub fn append(conn: &Connection, event: &NewEvent) -> rusqlite::Result<i64> {
    append_batch(conn, std::slice::from_ref(event))
}

/// Appends events in order; returns the last sequence number. Call inside a write transaction.
pub fn append_batch(conn: &Connection, events: &[NewEvent]) -> rusqlite::Result<i64> {
    let (mut seq, mut prev) = tail(conn)?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events (seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller,
                             detail, fingerprint, salt, body_hash, chain_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut rng = rand::thread_rng();
    for ev in events {
        seq += 1;
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let body = Body {
            ts: ev.ts,
            kind: ev.kind.as_str(),
            tenant_id: ev.tenant_id.as_ref().map(TenantId::as_str),
            connection_id: ev.connection_id.as_ref().map(ConnectionId::as_str),
            actor: Some(ev.actor.kind.as_str()),
            app_hint: ev.actor.app_hint.as_deref(),
            caller: ev.actor.caller.as_deref(),
            detail: ev.detail.as_deref(),
            fingerprint: ev.fingerprint.as_deref(),
            salt: &salt,
        };
        let body_hash = body.hash();
        let chain = chain_hash(&prev, seq, &body_hash);
        stmt.execute(params![
            seq,
            body.ts,
            body.kind,
            body.tenant_id,
            body.connection_id,
            body.actor,
            body.app_hint,
            body.caller,
            body.detail,
            body.fingerprint,
            &salt[..],
            &body_hash[..],
            &chain[..],
        ])?;
        prev = chain.to_vec();
    }
    Ok(seq)
}

/// Erases the content of a tenant's events, keeping their hashes so the chain still verifies.
/// Call in the transaction that deletes the tenant, before appending its `tenant_deleted` event.
pub fn redact_tenant(conn: &Connection, tenant: &TenantId) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE events SET connection_id = NULL, actor = NULL, app_hint = NULL, caller = NULL,
                detail = NULL, fingerprint = NULL, salt = NULL, redacted = 1
         WHERE tenant_id = ?1 AND redacted = 0",
        [tenant.as_str()],
    )
}

/// Walks the whole chain and names the first event that does not verify.
pub fn verify(conn: &Connection) -> rusqlite::Result<VerifyReport> {
    let deleted_tenants: HashSet<String> = conn
        .prepare("SELECT tenant_id FROM events WHERE kind = 'tenant_deleted' AND redacted = 0 AND tenant_id IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(
        "SELECT seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller, detail,
                fingerprint, salt, redacted, body_hash, chain_hash
         FROM events ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut prev = GENESIS.to_vec();
    let mut expected_seq = 1i64;
    let mut checked = 0u64;
    let bad = |checked: u64, seq: i64, reason: String| VerifyReport {
        checked,
        first_bad: Some(BadEvent { seq, reason }),
    };
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let redacted: bool = r.get(11)?;
        let stored_body: Vec<u8> = r.get(12)?;
        let stored_chain: Vec<u8> = r.get(13)?;
        let tenant_id: Option<String> = r.get(3)?;
        if seq != expected_seq {
            return Ok(bad(
                checked,
                seq,
                format!(
                    "event #{seq} follows event #{}: events are missing or were inserted",
                    expected_seq - 1
                ),
            ));
        }
        if redacted {
            let justified = tenant_id
                .as_ref()
                .is_some_and(|t| deleted_tenants.contains(t));
            if !justified {
                return Ok(bad(
                    checked,
                    seq,
                    format!("event #{seq} was erased without its tenant being deleted"),
                ));
            }
        } else {
            let salt: Option<Vec<u8>> = r.get(10)?;
            let Some(salt) = salt else {
                return Ok(bad(checked, seq, format!("event #{seq} has lost its salt")));
            };
            let strings: Vec<Option<String>> = (3..=9)
                .map(|i| r.get::<_, Option<String>>(i))
                .collect::<rusqlite::Result<_>>()?;
            let kind: String = r.get(2)?;
            let body = Body {
                ts: r.get(1)?,
                kind: &kind,
                tenant_id: strings[0].as_deref(),
                connection_id: strings[1].as_deref(),
                actor: strings[2].as_deref(),
                app_hint: strings[3].as_deref(),
                caller: strings[4].as_deref(),
                detail: strings[5].as_deref(),
                fingerprint: strings[6].as_deref(),
                salt: &salt,
            };
            if body.hash()[..] != stored_body[..] {
                return Ok(bad(
                    checked,
                    seq,
                    format!("event #{seq} was edited: its content does not match its hash"),
                ));
            }
        }
        if chain_hash(&prev, seq, &stored_body)[..] != stored_chain[..] {
            return Ok(bad(
                checked,
                seq,
                format!("event #{seq} does not link to event #{}: events were deleted, inserted or reordered", seq - 1),
            ));
        }
        prev = stored_chain;
        expected_seq += 1;
        checked += 1;
    }
    Ok(VerifyReport {
        checked,
        first_bad: None,
    })
}

const EVENT_COLUMNS: &str = "seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller, detail, fingerprint, redacted";

fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<UsageEvent> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::db::open(&dir.path().join("t.db"), true).unwrap();
        std::mem::forget(dir);
        c
    }

    fn fill(c: &Connection, n: usize) -> (TenantId, ConnectionId) {
        let t = TenantId::generate();
        let k = ConnectionId::generate();
        let actor = Actor::new(ActorKind::Cli).with_hint(Some("nightly".into()));
        let evs: Vec<_> = (0..n)
            .map(|i| {
                NewEvent::new(EventKind::HandedOut, &actor)
                    .tenant(&t)
                    .connection(&k)
                    .detail(serde_json::json!({ "i": i }))
                    .fingerprint(format!("gkfp1:{i:032x}"))
            })
            .collect();
        append_batch(c, &evs).unwrap();
        (t, k)
    }

    fn first_bad(c: &Connection) -> Option<i64> {
        verify(c).unwrap().first_bad.map(|b| b.seq)
    }

    #[test]
    fn events_filter_by_connection_and_time() {
        let c = db();
        let actor = Actor::new(ActorKind::Cli);
        let (k1, k2) = (ConnectionId::generate(), ConnectionId::generate());
        let evs: Vec<_> = [(&k1, 1_000), (&k2, 2_000), (&k1, 3_000), (&k1, 4_000)]
            .into_iter()
            .map(|(k, ts)| {
                let kind = if ts == 3_000 {
                    EventKind::Refreshed
                } else {
                    EventKind::HandedOut
                };
                NewEvent::new(kind, &actor).connection(k).at(ts)
            })
            .collect();
        append_batch(&c, &evs).unwrap();
        let ts = |f: HistoryFilter| -> Vec<i64> {
            events(&c, &f).unwrap().iter().map(|e| e.ts).collect()
        };
        assert_eq!(
            ts(HistoryFilter::default()),
            vec![4_000, 3_000, 2_000, 1_000]
        );
        assert_eq!(
            ts(HistoryFilter {
                since: Some(2_000),
                ..HistoryFilter::default()
            }),
            vec![4_000, 3_000, 2_000],
            "since is inclusive"
        );
        assert_eq!(
            ts(HistoryFilter {
                connection: Some(k1.clone()),
                since: Some(2_000),
                kind: None,
                limit: 50,
            }),
            vec![4_000, 3_000]
        );
        assert_eq!(
            ts(HistoryFilter {
                connection: Some(k1.clone()),
                since: None,
                kind: None,
                limit: 1,
            }),
            vec![4_000],
            "the newest first"
        );
        assert_eq!(
            ts(HistoryFilter {
                connection: Some(k1),
                kind: Some(EventKind::HandedOut),
                ..HistoryFilter::default()
            }),
            vec![4_000, 1_000],
            "one kind of one connection"
        );
        assert_eq!(
            ts(HistoryFilter {
                kind: Some(EventKind::Refreshed),
                ..HistoryFilter::default()
            }),
            vec![3_000],
            "one kind of the vault"
        );
    }

    #[test]
    fn intact_chain_verifies() {
        let c = db();
        fill(&c, 20);
        let r = verify(&c).unwrap();
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.checked, 20);
    }

    #[test]
    fn edit_is_detected() {
        let c = db();
        fill(&c, 20);
        c.execute(
            "UPDATE events SET app_hint = 'someone-else' WHERE seq = 7",
            [],
        )
        .unwrap();
        let r = verify(&c).unwrap();
        assert_eq!(r.first_bad.as_ref().unwrap().seq, 7);
        assert!(r.first_bad.unwrap().reason.contains("edited"));
        let c = db();
        fill(&c, 20);
        c.execute("UPDATE events SET ts = ts + 1 WHERE seq = 3", [])
            .unwrap();
        assert_eq!(first_bad(&c), Some(3));
    }

    #[test]
    fn deletion_is_detected() {
        let c = db();
        fill(&c, 20);
        c.execute("DELETE FROM events WHERE seq = 12", []).unwrap();
        assert_eq!(first_bad(&c), Some(13));
        // Deleting and renumbering the rest still breaks the chain.
        let c = db();
        fill(&c, 20);
        c.execute("DELETE FROM events WHERE seq = 5", []).unwrap();
        c.execute("UPDATE events SET seq = seq - 1 WHERE seq > 5", [])
            .unwrap();
        assert_eq!(first_bad(&c), Some(5));
    }

    #[test]
    fn insertion_is_detected() {
        let c = db();
        fill(&c, 10);
        // Make room at seq 4 and copy a genuine row into it.
        c.execute("UPDATE events SET seq = seq + 100 WHERE seq >= 4", [])
            .unwrap();
        c.execute("UPDATE events SET seq = seq - 99 WHERE seq >= 104", [])
            .unwrap();
        c.execute(
            "INSERT INTO events SELECT 4, ts, kind, tenant_id, connection_id, actor, app_hint, caller,
                    detail, fingerprint, salt, redacted, body_hash, chain_hash FROM events WHERE seq = 2",
            [],
        )
        .unwrap();
        assert_eq!(first_bad(&c), Some(4));
    }

    #[test]
    fn reordering_is_detected() {
        let c = db();
        fill(&c, 10);
        c.execute("UPDATE events SET seq = -6 WHERE seq = 6", [])
            .unwrap();
        c.execute("UPDATE events SET seq = 6 WHERE seq = 7", [])
            .unwrap();
        c.execute("UPDATE events SET seq = 7 WHERE seq = -6", [])
            .unwrap();
        assert_eq!(first_bad(&c), Some(6));
    }

    #[test]
    fn redaction_keeps_the_chain_and_needs_a_tenant_deletion() {
        let c = db();
        let (t, _) = fill(&c, 5);
        let (_t2, k2) = fill(&c, 5);
        redact_tenant(&c, &t).unwrap();
        assert_eq!(
            first_bad(&c),
            Some(1),
            "redaction without tenant_deleted is flagged"
        );
        append(
            &c,
            &NewEvent::new(EventKind::TenantDeleted, &Actor::new(ActorKind::Cli)).tenant(&t),
        )
        .unwrap();
        assert!(verify(&c).unwrap().is_intact());
        let leftover: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM events WHERE detail LIKE '%\"i\"%' AND tenant_id = ?1",
                [t.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(leftover, 0);
        assert_eq!(connection_history(&c, &k2, None, 100).unwrap().len(), 5);
    }

    #[test]
    fn history_and_daily_counts() {
        let c = db();
        let t = TenantId::generate();
        let k = ConnectionId::generate();
        let a = Actor::new(ActorKind::App);
        let day = 86_400_000;
        let evs: Vec<_> = (0..30)
            .map(|i| {
                let kind = if i % 3 == 0 {
                    EventKind::Refreshed
                } else {
                    EventKind::HandedOut
                };
                NewEvent::new(kind, &a)
                    .tenant(&t)
                    .connection(&k)
                    .at(day * 100 + (i / 10) * day + i)
            })
            .collect();
        append_batch(&c, &evs).unwrap();
        let page = connection_history(&c, &k, None, 5).unwrap();
        assert_eq!(page.len(), 5);
        assert_eq!(page[0].seq, 30);
        assert!(page.windows(2).all(|w| w[0].ts >= w[1].ts));
        let older = connection_history(&c, &k, Some(page[4].ts), 100).unwrap();
        assert_eq!(older.len(), 25);
        let counts = daily_counts(&c, &k, day * 101).unwrap();
        let total: u64 = counts.iter().map(|d| d.count).sum();
        assert_eq!(total, 20);
        assert!(counts.iter().all(|d| d.day == 101 || d.day == 102));
    }
}

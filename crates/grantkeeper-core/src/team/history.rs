//! The team's history: each member's events on shared tenants, appended in batches to
//! `tenants/<tenant>/history/<member>/` in the team vault, so an admin's review shows who used
//! which grant and when. Each member's own chain stays the tamper-evident record; events carry
//! keyed fingerprints, never tokens.
//!
//! Batches are pushed off the hand-out path: by a thread [`PUSH_INTERVAL`] after the first new
//! event (long-running processes: the agent, the app), and when a command ends if no process of
//! this vault tried within the interval (so a burst of `grantkeeper token` calls makes one push,
//! not one per call). A failed push (the team vault unreachable) leaves the events to the next.
//!
//! Exactly once: a batch is written at `<first seq>` with check-and-set 0, then the member's
//! `head` (the last seq pushed) with check-and-set on the version read. A batch already there
//! (an earlier push that stopped before its head) is taken as it is and the head moved past it.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};

use crate::audit::tenant_events_after;
use crate::bao::BaoError;
use crate::error::Result;
use crate::http::HttpClient;
use crate::model::{now_ms, TenantId};

use super::config::TeamConfig;

/// Events per batch record.
const BATCH: u32 = 500;
/// How long new events wait to be pushed together; also how often an unreachable team vault is
/// tried again.
pub const PUSH_INTERVAL: Duration = Duration::from_secs(5);
/// The longest a command's exit waits for the team vault.
const CLOSE_BUDGET: Duration = Duration::from_secs(2);
/// The `meta` key of the last push attempt by any process of this vault (Unix ms).
const ATTEMPT_KEY: &str = "team_history_attempt";

/// The `meta` key of how far this vault pushed a tenant's events (a hint: the head in the team
/// vault decides).
fn mark_key(tenant: &str) -> String {
    format!("team_history_pushed/{tenant}")
}

/// Appends this vault's events on every shared tenant that its member's team history lacks;
/// returns how many. Stops early (without error) when another process is pushing the same.
pub fn push(conn: &Connection, config: &TeamConfig, http: &HttpClient) -> Result<usize> {
    let mut pushed = 0;
    for (tenant, shared) in &config.tenants {
        let Some(login) = config.teams.get(&shared.team) else {
            continue;
        };
        let id = TenantId::from_string(tenant);
        if tenant_events_after(conn, &id, local_mark(conn, tenant)?, 1)?.is_empty() {
            continue;
        }
        let client = login.client(http.clone())?;
        let folder = format!("tenants/{tenant}/history/{}", login.member);
        let head = client.read(&format!("{folder}/head"))?;
        let (mut last, mut version) = head.map_or((0, 0), |h| (seq_of(&h.data), h.version));
        loop {
            let events = tenant_events_after(conn, &id, last, BATCH)?;
            let Some(first) = events.first().map(|e| e.seq) else {
                break;
            };
            let rows: Vec<Value> = events
                .iter()
                .map(|e| {
                    json!({
                        "seq": e.seq, "ts": e.ts, "kind": e.kind.as_str(),
                        "connection": e.connection_id, "actor": e.actor,
                        "app_hint": e.app_hint, "fingerprint": e.fingerprint,
                    })
                })
                .collect();
            let mut end = events.last().map_or(first, |e| e.seq);
            let n = rows.len();
            let batch: Map<String, Value> = [("events", json!(rows)), ("seq", json!(end))]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
            let path = format!("{folder}/{first:012}");
            let count = match client.write_cas(&path, &batch, 0) {
                Ok(_) => n,
                // Written by an earlier push that stopped before its head: it stands as it is.
                Err(BaoError::Conflict) => match client.read(&path)? {
                    Some(found) => {
                        end = seq_of(&found.data);
                        0
                    }
                    None => return Err(BaoError::Conflict.into()),
                },
                Err(e) => return Err(e.into()),
            };
            let head: Map<String, Value> = [("seq".to_owned(), json!(end))].into_iter().collect();
            match client.write_cas(&format!("{folder}/head"), &head, version) {
                Ok(v) => version = v,
                Err(BaoError::Conflict) => return Ok(pushed),
                Err(e) => return Err(e.into()),
            }
            set_local_mark(conn, tenant, end)?;
            last = end;
            pushed += count;
        }
    }
    Ok(pushed)
}

fn seq_of(data: &Map<String, Value>) -> i64 {
    data.get("seq").and_then(Value::as_i64).unwrap_or(0)
}

fn local_mark(conn: &Connection, tenant: &str) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([mark_key(tenant)], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn set_local_mark(conn: &Connection, tenant: &str, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value
         WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
        params![mark_key(tenant), seq.to_string()],
    )?;
    Ok(())
}

/// Claims the next push for this process: true when no process of this vault tried within
/// [`PUSH_INTERVAL`] (the attempt's time is written in the same statement).
fn claim(conn: &Connection) -> rusqlite::Result<bool> {
    let now = now_ms();
    let before = now - i64::try_from(PUSH_INTERVAL.as_millis()).unwrap_or(i64::MAX);
    let changed = conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value
         WHERE CAST(meta.value AS INTEGER) <= ?3",
        params![ATTEMPT_KEY, now.to_string(), before],
    )?;
    Ok(changed == 1)
}

/// Whether any shared tenant has events this vault has not pushed.
fn pending(conn: &Connection, config: &TeamConfig) -> rusqlite::Result<bool> {
    for tenant in config.tenants.keys() {
        let id = TenantId::from_string(tenant);
        if !tenant_events_after(conn, &id, local_mark(conn, tenant)?, 1)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A push when one is due: events pending and no attempt within the interval. Failures are
/// logged (the events wait for the next push); returns whether events are still pending.
fn push_if_due(conn: &Connection, config: &TeamConfig, http: &HttpClient) -> bool {
    let due = pending(conn, config).and_then(|p| Ok(p && claim(conn)?));
    match due {
        Ok(true) => {}
        Ok(false) => return pending(conn, config).unwrap_or(false),
        Err(e) => {
            tracing::warn!(error = %e, "cannot tell whether the team history is behind");
            return false;
        }
    }
    match push(conn, config, http) {
        Ok(n) => tracing::debug!(events = n, "team history pushed"),
        Err(e) => tracing::info!(error = %e, "the team history will be pushed later"),
    }
    pending(conn, config).unwrap_or(false)
}

/// Schedules the team history's pushes for one open vault (see the module's notes).
pub(crate) struct HistoryPusher {
    db_path: PathBuf,
    schedule: Arc<(Mutex<Schedule>, Condvar)>,
}

#[derive(Default)]
struct Schedule {
    /// When this vault first wrote an event not yet pushed, and the team configuration then.
    dirty: Option<(Instant, Arc<TeamConfig>)>,
    started: bool,
    stop: bool,
}

impl HistoryPusher {
    pub(crate) fn new(db_path: PathBuf) -> Self {
        Self {
            db_path,
            schedule: Arc::default(),
        }
    }

    /// Notes that this vault appended events while `config` shares tenants.
    pub(crate) fn appended(&self, config: Arc<TeamConfig>, http: &HttpClient) {
        if config.tenants.is_empty() {
            return;
        }
        let (lock, wake) = &*self.schedule;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        let since = s.dirty.take().map_or_else(Instant::now, |(t, _)| t);
        s.dirty = Some((since, config));
        if !s.started && !s.stop {
            s.started = true;
            let (db_path, http, schedule) =
                (self.db_path.clone(), http.clone(), self.schedule.clone());
            let spawned = std::thread::Builder::new()
                .name("team-history".into())
                .spawn(move || push_loop(&db_path, &http, &schedule));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the team history's thread");
            }
        }
        wake.notify_all();
    }

    /// Stops the thread; if this vault wrote events, pushes them when a push is due, within
    /// [`CLOSE_BUDGET`].
    pub(crate) fn close(&self, conn: &Connection, http: &HttpClient) {
        let dirty = {
            let (lock, wake) = &*self.schedule;
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            s.stop = true;
            wake.notify_all();
            s.dirty.take()
        };
        if let Some((_, config)) = dirty {
            let http = http.bounded_by(Instant::now() + CLOSE_BUDGET);
            push_if_due(conn, &config, &http);
        }
    }
}

fn push_loop(db_path: &std::path::Path, http: &HttpClient, schedule: &(Mutex<Schedule>, Condvar)) {
    let (lock, wake) = schedule;
    let mut conn = None;
    loop {
        let config = {
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if s.stop {
                    return;
                }
                match &s.dirty {
                    Some((since, _)) if since.elapsed() >= PUSH_INTERVAL => break,
                    Some((since, _)) => {
                        let wait = PUSH_INTERVAL.saturating_sub(since.elapsed());
                        s = wake
                            .wait_timeout(s, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    None => s = wake.wait(s).unwrap_or_else(|p| p.into_inner()),
                }
            }
            s.dirty.take().map(|(_, c)| c).expect("dirty")
        };
        if conn.is_none() {
            match crate::db::connect(db_path, false) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the team history's thread cannot open the vault");
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            if push_if_due(c, &config, http) {
                // Still behind (unreachable, or another process pushing): again after an interval.
                let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                s.dirty.get_or_insert_with(|| (Instant::now(), config));
            }
        }
    }
}

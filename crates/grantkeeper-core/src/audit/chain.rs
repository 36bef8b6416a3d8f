//! The keyed chain: the history key, each event's digest and MAC, and appending.

use std::cell::Cell;

use hmac::{Hmac, Mac};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::model::{ConnectionId, TenantId, UnixMillis};

use super::{EventKind, NewEvent, META_RECORD};

pub(super) type HmacSha256 = Hmac<Sha256>;

/// The key that MACs the usage history, derived from the master key
/// ([`crate::crypto::MasterKey::history_key`]): without the keychain nobody can write an event
/// that verifies.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HistoryKey([u8; 32]);

impl crate::crypto::MasterKey {
    /// The usage history's MAC key, derived from this master key.
    pub fn history_key(&self) -> HistoryKey {
        HistoryKey(self.derive(b"grantkeeper/history-key/v1"))
    }
}

impl HistoryKey {
    pub(super) fn hmac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(&self.0).expect("any key length")
    }
}

impl std::fmt::Debug for HistoryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryKey([redacted])")
    }
}

/// Feeds one field of a canonical encoding: a presence byte and, when present, a big-endian u64
/// length and the bytes.
pub(super) fn put(out: &mut impl FnMut(&[u8]), v: Option<&[u8]>) {
    match v {
        None => out(&[0]),
        Some(b) => {
            out(&[1]);
            out(&(b.len() as u64).to_be_bytes());
            out(b);
        }
    }
}

/// The part of an event that erasure (tenant deletion) removes. Its SHA-256 digest is stored with
/// the event and covered by the event's MAC, so an erased event keeps verifying its number, time,
/// kind and tenant, while its content cannot be guessed from the digest (the salt goes too).
pub(super) struct Erasable<'a> {
    pub(super) connection_id: Option<&'a str>,
    pub(super) actor: Option<&'a str>,
    pub(super) app_hint: Option<&'a str>,
    pub(super) caller: Option<&'a str>,
    pub(super) detail: Option<&'a str>,
    pub(super) fingerprint: Option<&'a str>,
    pub(super) salt: Option<&'a [u8]>,
}

impl Erasable<'_> {
    pub(super) fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"grantkeeper/event-content/v2");
        {
            let mut f = |b: &[u8]| h.update(b);
            for v in [
                self.connection_id,
                self.actor,
                self.app_hint,
                self.caller,
                self.detail,
                self.fingerprint,
            ] {
                put(&mut f, v.map(str::as_bytes));
            }
            put(&mut f, self.salt);
        }
        h.finalize().into()
    }

    pub(super) fn is_erased(&self) -> bool {
        [
            self.connection_id,
            self.actor,
            self.app_hint,
            self.caller,
            self.detail,
            self.fingerprint,
        ]
        .iter()
        .all(Option::is_none)
            && self.salt.is_none()
    }
}

/// An event's MAC, chained: over the previous event's MAC, its own sequence number, time, kind
/// and tenant (which stay when it is erased) and the digest of its erasable part.
#[allow(clippy::too_many_arguments)]
pub(super) fn link(
    base: &HmacSha256,
    prev: &[u8],
    seq: i64,
    ts: UnixMillis,
    kind: &str,
    tenant: Option<&str>,
    digest: &[u8],
) -> [u8; 32] {
    let mut m = base.clone();
    m.update(b"grantkeeper/event/v2");
    {
        let mut f = |b: &[u8]| m.update(b);
        put(&mut f, Some(prev));
        put(&mut f, Some(&seq.to_be_bytes()));
        put(&mut f, Some(&ts.to_be_bytes()));
        put(&mut f, Some(kind.as_bytes()));
        put(&mut f, tenant.map(str::as_bytes));
        put(&mut f, Some(digest));
    }
    m.finalize().into_bytes().into()
}

/// Where the chain starts: a MAC over the record of when the history was keyed, so that record
/// cannot be changed or removed without breaking event #1.
pub(super) fn genesis(base: &HmacSha256, record: &str) -> [u8; 32] {
    let mut m = base.clone();
    m.update(b"grantkeeper/history-genesis/v1");
    m.update(&(record.len() as u64).to_be_bytes());
    m.update(record.as_bytes());
    m.finalize().into_bytes().into()
}

pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The record of when the history was keyed (`meta.history`), as stored.
pub(super) fn record(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([META_RECORD], |r| r.get(0))
        .optional()
}

/// The record's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct KeyedRecord {
    /// When the history was keyed.
    pub(super) keyed_at: UnixMillis,
    /// The last event written before (re-chained then, with its number, time and content kept).
    pub(super) through_seq: i64,
    /// Where the old unkeyed chain failed, if it did.
    pub(super) old_chain_broken: Option<OldBreak>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OldBreak {
    pub(super) seq: i64,
    pub(super) reason: String,
}

/// One stored event, as verification reads it.
pub(super) struct Row {
    pub(super) seq: i64,
    pub(super) ts: UnixMillis,
    pub(super) kind: String,
    pub(super) tenant: Option<String>,
    pub(super) erasable: [Option<String>; 6],
    pub(super) salt: Option<Vec<u8>>,
    pub(super) redacted: bool,
    pub(super) digest: Vec<u8>,
    pub(super) mac: Vec<u8>,
}

pub(super) const ROW_COLUMNS: &str =
    "seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller, \
                           detail, fingerprint, salt, redacted, digest, mac";

impl Row {
    pub(super) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            seq: r.get(0)?,
            ts: r.get(1)?,
            kind: r.get(2)?,
            tenant: r.get(3)?,
            erasable: [
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ],
            salt: r.get(10)?,
            redacted: r.get(11)?,
            digest: r.get(12)?,
            mac: r.get(13)?,
        })
    }

    pub(super) fn erasable(&self) -> Erasable<'_> {
        let [connection_id, actor, app_hint, caller, detail, fingerprint] =
            self.erasable.each_ref().map(Option::as_deref);
        Erasable {
            connection_id,
            actor,
            app_hint,
            caller,
            detail,
            fingerprint,
            salt: self.salt.as_deref(),
        }
    }

    /// Whether this event's MAC is the one written at `seq` after an event whose MAC is `prev`.
    pub(super) fn links(&self, base: &HmacSha256, prev: &[u8], seq: i64) -> bool {
        let mac = link(
            base,
            prev,
            seq,
            self.ts,
            &self.kind,
            self.tenant.as_deref(),
            &self.digest,
        );
        same(&mac, &self.mac)
    }
}

pub(super) fn rows_between(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<Vec<Row>> {
    let sql = format!("SELECT {ROW_COLUMNS} FROM events WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([from, to], Row::read)?;
    rows.collect()
}

/// A write transaction that can append to the usage history: it carries the history key, so
/// events can only be written through an open vault ([`crate::Vault`]'s writes make one).
pub struct HistoryTx<'c> {
    tx: Transaction<'c>,
    key: &'c HistoryKey,
    appended: Cell<u64>,
    /// Whether an event other than a hand-out was appended.
    notable: Cell<bool>,
}

impl<'c> HistoryTx<'c> {
    /// Wraps a write transaction (begun `IMMEDIATE`, so the chain's order is the commit order).
    pub fn new(tx: Transaction<'c>, key: &'c HistoryKey) -> Self {
        Self {
            tx,
            key,
            appended: Cell::new(0),
            notable: Cell::new(false),
        }
    }

    /// Commits; returns how many events were appended.
    pub fn commit(self) -> rusqlite::Result<u64> {
        Ok(self.commit_noting()?.0)
    }

    /// Commits; returns how many events were appended, and whether any was not a hand-out.
    pub(crate) fn commit_noting(self) -> rusqlite::Result<(u64, bool)> {
        let noted = (self.appended.get(), self.notable.get());
        self.tx.commit()?;
        Ok(noted)
    }
}

impl<'c> std::ops::Deref for HistoryTx<'c> {
    type Target = Transaction<'c>;

    fn deref(&self) -> &Transaction<'c> {
        &self.tx
    }
}

pub(super) fn tail(conn: &Connection) -> rusqlite::Result<Option<(i64, Vec<u8>)>> {
    conn.prepare_cached("SELECT seq, mac FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

/// Appends one event. Call inside the write transaction of the operation it records, so that
/// the operation fails when its event cannot be written.
pub fn append(tx: &HistoryTx<'_>, event: &NewEvent) -> rusqlite::Result<i64> {
    append_batch(tx, std::slice::from_ref(event))
}

/// Appends events in order; returns the last sequence number.
pub fn append_batch(tx: &HistoryTx<'_>, events: &[NewEvent]) -> rusqlite::Result<i64> {
    let base = tx.key.hmac();
    let (mut seq, mut prev) = match tail(tx)? {
        Some(t) => t,
        None => (0, genesis(&base, &record(tx)?.unwrap_or_default()).to_vec()),
    };
    let mut stmt = tx.prepare_cached(
        "INSERT INTO events (seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller,
                             detail, fingerprint, salt, digest, mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut rng = rand::thread_rng();
    for ev in events {
        seq += 1;
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let erasable = Erasable {
            connection_id: ev.connection_id.as_ref().map(ConnectionId::as_str),
            actor: Some(ev.actor.kind.as_str()),
            app_hint: ev.actor.app_hint.as_deref(),
            caller: ev.actor.caller.as_deref(),
            detail: ev.detail.as_deref(),
            fingerprint: ev.fingerprint.as_deref(),
            salt: Some(&salt),
        };
        let digest = erasable.digest();
        let tenant = ev.tenant_id.as_ref().map(TenantId::as_str);
        let mac = link(&base, &prev, seq, ev.ts, ev.kind.as_str(), tenant, &digest);
        stmt.execute(params![
            seq,
            ev.ts,
            ev.kind.as_str(),
            tenant,
            erasable.connection_id,
            erasable.actor,
            erasable.app_hint,
            erasable.caller,
            erasable.detail,
            erasable.fingerprint,
            &salt[..],
            &digest[..],
            &mac[..],
        ])?;
        prev = mac.to_vec();
    }
    tx.appended.set(tx.appended.get() + events.len() as u64);
    if events.iter().any(|e| e.kind != EventKind::HandedOut) {
        tx.notable.set(true);
    }
    Ok(seq)
}

/// Erases the content of a tenant's events (the erasable fields) and its usage profiles; the
/// events' digests and MACs stay, so the chain still verifies. Call in the transaction that deletes the tenant, before appending
/// its `tenant_deleted` event: an erased event verifies only when such an event follows it.
pub fn redact_tenant(conn: &Connection, tenant: &TenantId) -> rusqlite::Result<usize> {
    super::rollup::forget_tenant(conn, tenant)?;
    conn.execute(
        "UPDATE events SET connection_id = NULL, actor = NULL, app_hint = NULL, caller = NULL,
                detail = NULL, fingerprint = NULL, salt = NULL, redacted = 1
         WHERE tenant_id = ?1 AND redacted = 0",
        [tenant.as_str()],
    )
}

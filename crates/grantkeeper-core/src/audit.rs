//! The usage history: an append-only event log that whoever can write the database cannot
//! rewrite unnoticed.
//!
//! - **Keyed chain.** Each event stores `digest`, SHA-256 over its erasable part (connection,
//!   actor, hint, caller, detail, fingerprint and a random salt), and `mac`, HMAC-SHA-256 under
//!   the history key ([`crate::crypto::MasterKey::history_key`], derived from the master key in
//!   the keychain) over the previous event's MAC, its sequence number, time, kind, tenant and
//!   digest. The chain starts from a MAC over the record of when the history was keyed. Without
//!   the keychain nobody can write, re-number or re-chain an event that verifies.
//! - **Anchor.** A checkpoint (a sequence number and that event's MAC, itself MACed) lives in the
//!   keychain ([`anchor`]): events at or before it cannot be removed unnoticed, the newest ones
//!   and all of them included. It is written [`ANCHOR_INTERVAL`] after a running agent or app
//!   writes events, when a command that wrote events ends (unless the last checkpoint is younger
//!   than that interval), at agent lock and stop, and when the app quits; never on the hand-out
//!   path. Events after it verify but could be removed unnoticed: [`verify`] counts them.
//! - **Erasure.** Deleting a tenant erases its events' erasable part; their digest stays, so
//!   their number, time, kind and tenant still verify. An erased event is accepted only when a
//!   later `tenant_deleted` event names its tenant.
//!
//! [`verify`] names each problem: what is missing (a range), edited, inserted, reordered, forged
//! without the key, wrongly erased, or not what the checkpoint anchored.
//!
//! Tokens never enter an event; a keyed fingerprint does (see [`crate::crypto::FingerprintKey`]).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ts_rs::TS;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::keychain::{EntryName, Keychain, KeychainError};
use crate::model::{now_ms, ConnectionId, TenantId, UnixMillis};
use crate::secret::SecretText;

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

/// What is wrong with the history at one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// An event's content, time, kind or tenant was changed.
    Edited,
    /// Events are gone: a gap in the numbering, events deleted and the later ones renumbered, or
    /// fewer events than the keychain's checkpoint anchors (the newest, or all of them).
    Missing,
    /// An event Grantkeeper did not write (or a copy of one it did) sits among the others.
    Inserted,
    /// Events are not in the order they were written.
    Reordered,
    /// Events were not written with this vault's key: the chain was recomputed or forged.
    Forged,
    /// An event's erasure does not match a tenant deletion, or its `redacted` mark was changed.
    Erased,
    /// The history up to the checkpoint is not the one the checkpoint anchored.
    Replaced,
    /// The history was already broken when it was first keyed (its old unkeyed chain failed).
    BrokenBeforeKeyed,
    /// The record of when the history was keyed is missing or was changed.
    KeyRecord,
    /// The checkpoint in the keychain is missing or does not verify.
    Anchor,
}

/// One place where the history does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct BadEvent {
    /// The first sequence number concerned (0 for the history as a whole).
    #[ts(type = "number")]
    pub seq: i64,
    /// The last sequence number concerned (`seq` for one event).
    #[ts(type = "number")]
    pub through: i64,
    /// What kind of problem it is.
    pub problem: Problem,
    /// What is wrong, in plain words.
    pub reason: String,
}

/// The keychain checkpoint a verification measured the history against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct AnchorInfo {
    /// The last event it anchors.
    #[ts(type = "number")]
    pub seq: i64,
    /// When it was written.
    #[ts(type = "number")]
    pub at: UnixMillis,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct VerifyReport {
    /// Events checked.
    #[ts(type = "number")]
    pub checked: u64,
    /// The first problem, if any (the first of `problems`).
    pub first_bad: Option<BadEvent>,
    /// Every problem found, by sequence number (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<BadEvent>,
    /// The checkpoint in the keychain, when there is a valid one.
    pub anchor: Option<AnchorInfo>,
    /// Events after the checkpoint: they verify, but deleting them would not be noticed.
    #[ts(type = "number")]
    pub unanchored: u64,
}

impl VerifyReport {
    /// Whether the whole history verified.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// How long events written by a running agent or app wait at most for a checkpoint; a command
/// that recorded events writes one when it ends unless the last one is younger than this.
pub const ANCHOR_INTERVAL: Duration = Duration::from_secs(30);

/// A verification stops after this many problems.
pub const MAX_PROBLEMS: usize = 20;

/// How far (in sequence numbers) a moved event is looked for.
const SEARCH: i64 = 8;

/// `meta` keys: the record of when the history was keyed, and the last checkpoint's time.
const META_RECORD: &str = "history";
const META_HINT: &str = "history_anchor";
/// The record's value until the history is keyed (set by the schema migration).
const UNKEYED: &str = "unkeyed";

type HmacSha256 = Hmac<Sha256>;

/// The key that MACs the usage history, derived from the master key
/// ([`crate::crypto::MasterKey::history_key`]): without the keychain nobody can write an event
/// that verifies.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct HistoryKey([u8; 32]);

impl HistoryKey {
    /// Wraps derived key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn hmac(&self) -> HmacSha256 {
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
fn put(out: &mut impl FnMut(&[u8]), v: Option<&[u8]>) {
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
struct Erasable<'a> {
    connection_id: Option<&'a str>,
    actor: Option<&'a str>,
    app_hint: Option<&'a str>,
    caller: Option<&'a str>,
    detail: Option<&'a str>,
    fingerprint: Option<&'a str>,
    salt: Option<&'a [u8]>,
}

impl Erasable<'_> {
    fn digest(&self) -> [u8; 32] {
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

    fn is_erased(&self) -> bool {
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
fn link(
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
fn genesis(base: &HmacSha256, record: &str) -> [u8; 32] {
    let mut m = base.clone();
    m.update(b"grantkeeper/history-genesis/v1");
    m.update(&(record.len() as u64).to_be_bytes());
    m.update(record.as_bytes());
    m.finalize().into_bytes().into()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The record of when the history was keyed (`meta.history`), as stored.
fn record(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([META_RECORD], |r| r.get(0))
        .optional()
}

/// The record's content.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyedRecord {
    /// When the history was keyed.
    keyed_at: UnixMillis,
    /// The last event written before (re-chained then, with its number, time and content kept).
    through_seq: i64,
    /// Where the old unkeyed chain failed, if it did.
    old_chain_broken: Option<OldBreak>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OldBreak {
    seq: i64,
    reason: String,
}

/// One stored event, as verification reads it.
struct Row {
    seq: i64,
    ts: UnixMillis,
    kind: String,
    tenant: Option<String>,
    erasable: [Option<String>; 6],
    salt: Option<Vec<u8>>,
    redacted: bool,
    digest: Vec<u8>,
    mac: Vec<u8>,
}

const ROW_COLUMNS: &str = "seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller, \
                           detail, fingerprint, salt, redacted, digest, mac";

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
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

    fn erasable(&self) -> Erasable<'_> {
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
    fn links(&self, base: &HmacSha256, prev: &[u8], seq: i64) -> bool {
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

fn rows_between(conn: &Connection, from: i64, to: i64) -> rusqlite::Result<Vec<Row>> {
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

fn tail(conn: &Connection) -> rusqlite::Result<Option<(i64, Vec<u8>)>> {
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

/// Erases the content of a tenant's events (see [`Erasable`]); their digests and MACs stay, so
/// the chain still verifies. Call in the transaction that deletes the tenant, before appending
/// its `tenant_deleted` event: an erased event verifies only when such an event follows it.
pub fn redact_tenant(conn: &Connection, tenant: &TenantId) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE events SET connection_id = NULL, actor = NULL, app_hint = NULL, caller = NULL,
                detail = NULL, fingerprint = NULL, salt = NULL, redacted = 1
         WHERE tenant_id = ?1 AND redacted = 0",
        [tenant.as_str()],
    )
}

// ----- checkpoints (the anchor in the keychain) -----

/// A checkpoint: the history's head (the MAC of event `seq`) at a time, MACed and kept in the
/// keychain, where whoever can only write the database cannot reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last event anchored (0: the history was empty).
    pub seq: i64,
    /// When the checkpoint was written.
    pub at: UnixMillis,
    /// That event's MAC (the chain's start when `seq` is 0).
    pub head: Vec<u8>,
}

impl Checkpoint {
    fn mac(&self, key: &HistoryKey, vault: &str) -> [u8; 32] {
        let mut m = key.hmac();
        m.update(b"grantkeeper/history-checkpoint/v1");
        {
            let mut f = |b: &[u8]| m.update(b);
            put(&mut f, Some(vault.as_bytes()));
            put(&mut f, Some(&self.seq.to_be_bytes()));
            put(&mut f, Some(&self.at.to_be_bytes()));
            put(&mut f, Some(&self.head));
        }
        m.finalize().into_bytes().into()
    }

    /// The keychain text: `gkcp1 <seq> <at> <head> <mac>`.
    pub fn encode(&self, key: &HistoryKey, vault: &str) -> String {
        format!(
            "gkcp1 {} {} {} {}",
            self.seq,
            self.at,
            hex(&self.head),
            hex(&self.mac(key, vault))
        )
    }

    /// Reads the keychain text; an error says why it does not verify.
    pub fn decode(text: &str, key: &HistoryKey, vault: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.trim().split(' ').collect();
        let [tag, seq, at, head, mac] = parts[..] else {
            return Err("it is not in checkpoint format".into());
        };
        let parsed = (|| {
            Some((
                (tag == "gkcp1").then_some(())?,
                seq.parse::<i64>().ok()?,
                at.parse::<i64>().ok()?,
                unhex(head)?,
                unhex(mac)?,
            ))
        })();
        let Some(((), seq, at, head, mac)) = parsed else {
            return Err("it is not in checkpoint format".into());
        };
        let cp = Self { seq, at, head };
        if !same(&cp.mac(key, vault), &mac) {
            return Err("its MAC does not verify under this vault's key".into());
        }
        Ok(cp)
    }
}

/// What the keychain holds for a vault's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// No checkpoint.
    Missing,
    /// A checkpoint that does not verify, and why.
    Invalid(String),
    /// A valid checkpoint.
    Found(Checkpoint),
}

/// Reads the vault's checkpoint from the keychain.
pub fn read_anchor(
    keychain: &dyn Keychain,
    key: &HistoryKey,
    vault: &str,
) -> Result<Anchor, KeychainError> {
    Ok(match keychain.get(&EntryName::history_checkpoint(vault))? {
        None => Anchor::Missing,
        Some(text) => match Checkpoint::decode(text.expose(), key, vault) {
            Ok(cp) => Anchor::Found(cp),
            Err(why) => Anchor::Invalid(why),
        },
    })
}

fn write_anchor(
    keychain: &dyn Keychain,
    key: &HistoryKey,
    vault: &str,
    cp: &Checkpoint,
) -> Result<(), KeychainError> {
    keychain.set(
        &EntryName::history_checkpoint(vault),
        &SecretText::new(cp.encode(key, vault)),
    )
}

/// The MAC of the note (`meta.history_anchor`) of when this vault last wrote a checkpoint.
fn hint_mac(key: &HistoryKey, seq: i64, at: UnixMillis) -> [u8; 32] {
    let mut m = key.hmac();
    m.update(b"grantkeeper/history-anchor-hint/v1");
    m.update(&seq.to_be_bytes());
    m.update(&at.to_be_bytes());
    m.finalize().into_bytes().into()
}

/// Whether a checkpoint is due: the last one (from the MACed note in the database, so no
/// keychain call is needed to decide) is older than [`ANCHOR_INTERVAL`] or unknown.
pub fn anchor_due(conn: &Connection, key: &HistoryKey, now: UnixMillis) -> rusqlite::Result<bool> {
    let hint: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([META_HINT], |r| r.get(0))
        .optional()?;
    let last = hint.and_then(|h| {
        let mut parts = h.split(' ');
        let seq: i64 = parts.next()?.parse().ok()?;
        let at: i64 = parts.next()?.parse().ok()?;
        let mac = unhex(parts.next()?)?;
        same(&hint_mac(key, seq, at), &mac).then_some(at)
    });
    Ok(match last {
        Some(at) if at <= now => now - at >= ANCHOR_INTERVAL.as_millis() as i64,
        _ => true,
    })
}

/// What [`anchor`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorOutcome {
    /// The keychain's checkpoint already covers the head.
    Unchanged(i64),
    /// A new checkpoint was written.
    Written(Checkpoint),
    /// Nothing was written: the events after the last checkpoint do not verify (why).
    Refused(String),
}

/// Writes a checkpoint of the history's head to the keychain when the head moved past the last
/// checkpoint and every event since verifies (so a history cut short or rewritten in the
/// database is never anchored). Checkpoints of all processes are written under `lock_path`,
/// read-compare-write, so the anchor never moves backwards.
pub fn anchor(
    conn: &Connection,
    key: &HistoryKey,
    keychain: &dyn Keychain,
    vault: &str,
    lock_path: &Path,
) -> crate::Result<AnchorOutcome> {
    let lock = crate::private::open_lock_file(lock_path)?;
    lock.lock().map_err(|e| crate::Error::io(lock_path, e))?;
    let current = read_anchor(keychain, key, vault)?;
    let base = key.hmac();
    let head = {
        let snapshot = conn
            .is_autocommit()
            .then(|| conn.unchecked_transaction())
            .transpose()?;
        let tx = conn;
        let Some((head_seq, head_mac)) = tail(tx)? else {
            return Ok(AnchorOutcome::Unchanged(0));
        };
        let (from, mut prev) = match &current {
            Anchor::Invalid(why) => {
                return Ok(AnchorOutcome::Refused(format!(
                    "the checkpoint in the keychain does not verify: {why}"
                )))
            }
            Anchor::Found(cp) if cp.seq >= head_seq => {
                return Ok(AnchorOutcome::Unchanged(cp.seq));
            }
            Anchor::Found(cp) => {
                let at_cp = if cp.seq == 0 {
                    Some(genesis(&base, &record(tx)?.unwrap_or_default()).to_vec())
                } else {
                    rows_between(tx, cp.seq, cp.seq)?.pop().map(|r| r.mac)
                };
                if !at_cp.is_some_and(|m| same(&m, &cp.head)) {
                    return Ok(AnchorOutcome::Refused(format!(
                        "event #{} is not the one the last checkpoint anchored",
                        cp.seq
                    )));
                }
                (cp.seq, cp.head.clone())
            }
            Anchor::Missing => (0, genesis(&base, &record(tx)?.unwrap_or_default()).to_vec()),
        };
        let sql = format!("SELECT {ROW_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq");
        let mut stmt = tx.prepare(&sql)?;
        let mut rows = stmt.query([from])?;
        let mut expected = from + 1;
        while let Some(r) = rows.next()? {
            let row = Row::read(r)?;
            let content_ok = row.redacted || same(&row.erasable().digest(), &row.digest);
            if row.seq != expected || !content_ok || !row.links(&base, &prev, row.seq) {
                return Ok(AnchorOutcome::Refused(format!(
                    "event #{} does not verify",
                    row.seq.min(expected)
                )));
            }
            prev = row.mac;
            expected += 1;
        }
        drop(rows);
        drop(stmt);
        drop(snapshot);
        (head_seq, head_mac)
    };
    let cp = Checkpoint {
        seq: head.0,
        at: now_ms(),
        head: head.1,
    };
    write_anchor(keychain, key, vault, &cp)?;
    let note = format!(
        "{} {} {}",
        cp.seq,
        cp.at,
        hex(&hint_mac(key, cp.seq, cp.at))
    );
    if let Err(e) = conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        params![META_HINT, note],
    ) {
        tracing::warn!(error = %e, "cannot note the usage history's checkpoint time");
    }
    tracing::debug!(seq = cp.seq, "usage history anchored");
    Ok(AnchorOutcome::Written(cp))
}

// ----- keying an existing history (the migration) -----

/// What [`ensure_keyed`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// Events re-chained under the key (written before it existed).
    pub events: i64,
    /// Where the old unkeyed chain failed, if it did: (sequence number, reason).
    pub old_chain_broken: Option<(i64, String)>,
}

/// Keys the history once, when the master key is first available: a vault made by an older
/// version (its events chained with plain SHA-256) has its old chain verified, then every
/// event MACed in order (numbers, times and content unchanged), then its first checkpoint
/// written to the keychain before the change commits. An old chain that does not verify is
/// recorded (`audit verify` reports it) and its events kept. Never runs again once a
/// checkpoint exists, so resetting the record in the database cannot get forged events keyed.
pub fn ensure_keyed(
    conn: &mut Connection,
    key: &HistoryKey,
    keychain: &dyn Keychain,
    vault: &str,
) -> crate::Result<Option<Keyed>> {
    if record(conn)?.as_deref() != Some(UNKEYED) {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have keyed it meanwhile.
    if record(&tx)?.as_deref() != Some(UNKEYED) {
        return Ok(None);
    }
    if !matches!(read_anchor(keychain, key, vault)?, Anchor::Missing) {
        tracing::error!("the usage history is marked unkeyed but the keychain holds its checkpoint: not keying it again");
        return Ok(None);
    }
    let old = verify_unkeyed(&tx)?;
    let through_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let rec = serde_json::to_string(&KeyedRecord {
        keyed_at: now_ms(),
        through_seq,
        old_chain_broken: old.clone().map(|(seq, reason)| OldBreak { seq, reason }),
    })
    .expect("the record serializes");
    tx.execute(
        "UPDATE meta SET value = ?2 WHERE key = ?1",
        params![META_RECORD, rec],
    )?;
    let base = key.hmac();
    let mut prev = genesis(&base, &rec).to_vec();
    let mut done = 0i64;
    let mut from = i64::MIN;
    loop {
        // In slices, so no statement reads the table while it is updated.
        let sql =
            format!("SELECT {ROW_COLUMNS} FROM events WHERE seq > ?1 ORDER BY seq LIMIT 10000");
        let slice: Vec<Row> = {
            let mut stmt = tx.prepare_cached(&sql)?;
            let rows = stmt.query_map([from], Row::read)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some(last) = slice.last() else { break };
        from = last.seq;
        let mut update =
            tx.prepare_cached("UPDATE events SET digest = ?2, mac = ?3 WHERE seq = ?1")?;
        for row in &slice {
            // An erased event keeps its old hash as its digest: its content is gone.
            let digest = if row.redacted {
                row.digest.clone()
            } else {
                row.erasable().digest().to_vec()
            };
            let mac = link(
                &base,
                &prev,
                row.seq,
                row.ts,
                &row.kind,
                row.tenant.as_deref(),
                &digest,
            );
            update.execute(params![row.seq, digest, &mac[..]])?;
            prev = mac.to_vec();
            done += 1;
        }
    }
    let cp = Checkpoint {
        seq: through_seq,
        at: now_ms(),
        head: prev,
    };
    write_anchor(keychain, key, vault, &cp)?;
    if let Err(e) = tx.commit() {
        let _ = keychain.delete(&EntryName::history_checkpoint(vault));
        return Err(e.into());
    }
    if let Some((seq, reason)) = &old {
        tracing::error!(seq, %reason, "the usage history's old chain was broken when it was keyed");
    } else if done > 0 {
        tracing::info!(events = done, "usage history keyed");
    }
    Ok(Some(Keyed {
        events: done,
        old_chain_broken: old,
    }))
}

/// The old unkeyed chain's body hash (SHA-256 over the whole event and its salt).
struct V1Body<'a> {
    ts: UnixMillis,
    kind: &'a str,
    tenant_id: Option<&'a str>,
    rest: Erasable<'a>,
}

impl V1Body<'_> {
    fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"grantkeeper/event/v1");
        {
            let mut f = |b: &[u8]| h.update(b);
            put(&mut f, Some(&self.ts.to_be_bytes()));
            put(&mut f, Some(self.kind.as_bytes()));
            for v in [
                self.tenant_id,
                self.rest.connection_id,
                self.rest.actor,
                self.rest.app_hint,
                self.rest.caller,
                self.rest.detail,
                self.rest.fingerprint,
            ] {
                put(&mut f, v.map(str::as_bytes));
            }
            put(&mut f, Some(self.rest.salt.unwrap_or_default()));
        }
        h.finalize().into()
    }
}

fn v1_chain(prev: &[u8], seq: i64, body_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"grantkeeper/chain/v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body_hash);
    h.finalize().into()
}

/// Verifies the old unkeyed chain (before keying, `digest` and `mac` hold its body and chain
/// hashes); returns where it first fails.
fn verify_unkeyed(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
    let deleted: HashSet<String> = conn
        .prepare("SELECT tenant_id FROM events WHERE kind = 'tenant_deleted' AND redacted = 0 AND tenant_id IS NOT NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM events ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut prev = [0u8; 32].to_vec();
    let mut expected = 1;
    while let Some(r) = rows.next()? {
        let row = Row::read(r)?;
        let s = row.seq;
        if s != expected {
            return Ok(Some((
                s,
                format!(
                    "event #{s} follows event #{}: events are missing or were inserted",
                    expected - 1
                ),
            )));
        }
        if row.redacted {
            if !row.tenant.as_ref().is_some_and(|t| deleted.contains(t)) {
                return Ok(Some((
                    s,
                    format!("event #{s} was erased without its tenant being deleted"),
                )));
            }
        } else {
            let body = V1Body {
                ts: row.ts,
                kind: &row.kind,
                tenant_id: row.tenant.as_deref(),
                rest: row.erasable(),
            };
            if row.salt.is_none() || !same(&body.hash(), &row.digest) {
                return Ok(Some((
                    s,
                    format!("event #{s} was edited: its content does not match its hash"),
                )));
            }
        }
        if !same(&v1_chain(&prev, s, &row.digest), &row.mac) {
            return Ok(Some((
                s,
                format!("event #{s} does not link to event #{}: events were deleted, inserted or reordered", s - 1),
            )));
        }
        prev = row.mac;
        expected += 1;
    }
    Ok(None)
}

// ----- verification -----

/// Walks the whole history and names what is missing or altered: each event's content against
/// its digest, each MAC against the chain, the record of when the history was keyed, and the
/// keychain's checkpoint (events at or before it must all be there, unchanged). Events after
/// the checkpoint verify too, but their removal cannot be seen: the report counts them.
pub fn verify(
    conn: &Connection,
    key: &HistoryKey,
    anchor: &Anchor,
) -> rusqlite::Result<VerifyReport> {
    // One snapshot for the whole walk (unless the caller already holds one).
    let snapshot = conn
        .is_autocommit()
        .then(|| conn.unchecked_transaction())
        .transpose()?;
    let tx = conn;
    let base = key.hmac();
    let mut w = Walk {
        conn: tx,
        base: base.clone(),
        problems: Vec::new(),
        shift: None,
        bridge: None,
        prev_ok: true,
    };
    let rec = record(tx)?;
    let start = genesis(&base, rec.as_deref().unwrap_or_default());
    match rec.as_deref() {
        None => w.push(
            Problem::KeyRecord,
            0,
            0,
            "the record of when the history was keyed is missing from the database".into(),
        ),
        Some(UNKEYED) => w.push(
            Problem::KeyRecord,
            0,
            0,
            if matches!(anchor, Anchor::Missing) {
                "the history has not been keyed yet: open the vault with Grantkeeper to key it".into()
            } else {
                "the history is marked as not keyed yet, but the keychain holds its checkpoint: the record was reset".into()
            },
        ),
        Some(text) => match serde_json::from_str::<KeyedRecord>(text) {
            Err(_) => w.push(
                Problem::KeyRecord,
                0,
                0,
                "the record of when the history was keyed is not readable".into(),
            ),
            Ok(KeyedRecord {
                keyed_at,
                through_seq,
                old_chain_broken: Some(b),
            }) => w.push(
                Problem::BrokenBeforeKeyed,
                b.seq,
                b.seq,
                format!(
                    "when the history was keyed ({}, events #1–#{through_seq}), its old unkeyed chain already failed: {}",
                    crate::timefmt::format_rfc3339(keyed_at),
                    b.reason
                ),
            ),
            Ok(_) => {}
        },
    }
    match anchor {
        Anchor::Missing if rec.as_deref().is_some_and(|r| r != UNKEYED) => w.push(
            Problem::Anchor,
            0,
            0,
            "the keychain holds no checkpoint of this history: whether its newest events were removed cannot be shown".into(),
        ),
        Anchor::Invalid(why) => w.push(
            Problem::Anchor,
            0,
            0,
            format!("the checkpoint in the keychain does not verify: {why}"),
        ),
        _ => {}
    }
    let deleted: HashMap<String, i64> = tx
        .prepare("SELECT tenant_id, MAX(seq) FROM events WHERE kind = 'tenant_deleted' AND redacted = 0 AND tenant_id IS NOT NULL GROUP BY tenant_id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;

    let mut stmt = tx.prepare(&format!("SELECT {ROW_COLUMNS} FROM events ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut checked = 0u64;
    let mut prev = start.to_vec();
    let mut prev_seq = 0i64;
    let mut next = rows.next()?.map(Row::read).transpose()?;
    while let Some(row) = next.take() {
        next = rows.next()?.map(Row::read).transpose()?;
        if w.problems.len() >= MAX_PROBLEMS {
            break;
        }
        checked += 1;
        w.check(&row, next.as_ref(), &prev, prev_seq, &deleted)?;
        prev_seq = prev_seq.max(row.seq);
        prev = row.mac;
    }
    drop(rows);
    drop(stmt);
    let last_seq: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let mut unanchored = u64::try_from(last_seq).unwrap_or(0);
    let mut anchor_info = None;
    if let Anchor::Found(cp) = anchor {
        let when = crate::timefmt::format_rfc3339(cp.at);
        anchor_info = Some(AnchorInfo {
            seq: cp.seq,
            at: cp.at,
        });
        unanchored = u64::try_from(last_seq - cp.seq).unwrap_or(0);
        if last_seq < cp.seq {
            let reason = if last_seq == 0 {
                format!(
                    "all {} events are missing: the checkpoint of {when} anchors events #1–#{}",
                    cp.seq, cp.seq
                )
            } else {
                format!(
                    "{}: the checkpoint of {when} anchors events up to #{}, the history ends at #{last_seq}",
                    range_text(last_seq + 1, cp.seq, "missing (deleted)"),
                    cp.seq
                )
            };
            w.push(Problem::Missing, last_seq + 1, cp.seq, reason);
        } else if !w.problems.iter().any(|p| p.seq <= cp.seq && p.seq > 0) {
            let at_cp = if cp.seq == 0 {
                Some(start.to_vec())
            } else {
                rows_between(tx, cp.seq, cp.seq)?.pop().map(|r| r.mac)
            };
            if !at_cp.is_some_and(|m| same(&m, &cp.head)) {
                w.push(
                    Problem::Replaced,
                    cp.seq.max(1),
                    cp.seq.max(1),
                    format!("the history up to event #{} is not the one the checkpoint of {when} anchored: it was replaced by another copy", cp.seq),
                );
            }
        }
    }
    let mut problems = w.finish();
    drop(snapshot);
    problems.sort_by_key(|p| p.seq);
    problems.truncate(MAX_PROBLEMS);
    Ok(VerifyReport {
        checked,
        first_bad: problems.first().cloned(),
        problems,
        anchor: anchor_info,
        unanchored,
    })
}

fn range_text(from: i64, to: i64, what: &str) -> String {
    if from == to {
        format!("event #{from} is {what}")
    } else {
        format!("events #{from}–#{to} are {what}")
    }
}

/// The state of one verification walk.
struct Walk<'a> {
    conn: &'a Connection,
    base: HmacSha256,
    problems: Vec<BadEvent>,
    /// Events are being found renumbered: the one now at #s was written as #(s + shift).
    shift: Option<i64>,
    /// The MAC the next event links to instead of its stored predecessor's (after an insertion).
    bridge: Option<Vec<u8>>,
    /// Whether the previous event linked as written.
    prev_ok: bool,
}

impl Walk<'_> {
    fn push(&mut self, problem: Problem, seq: i64, through: i64, reason: String) {
        if let Some(last) = self.problems.last_mut() {
            if last.problem == problem
                && matches!(problem, Problem::Forged | Problem::Reordered)
                && last.through + 1 >= seq
                && seq > 0
            {
                last.through = last.through.max(through);
                return;
            }
        }
        self.problems.push(BadEvent {
            seq,
            through,
            problem,
            reason,
        });
    }

    /// Final wording of merged problems.
    fn finish(mut self) -> Vec<BadEvent> {
        for p in &mut self.problems {
            match p.problem {
                Problem::Forged => {
                    p.reason = format!(
                        "{} not written with this vault's key: {} forged, or the chain recomputed, without it",
                        if p.seq == p.through {
                            format!("event #{} was", p.seq)
                        } else {
                            format!("events #{}–#{} were", p.seq, p.through)
                        },
                        if p.seq == p.through { "it was" } else { "they were" }
                    )
                }
                Problem::Reordered if p.through > p.seq => {
                    p.reason = format!(
                        "events #{}–#{} are not in the order they were written ({})",
                        p.seq, p.through, p.reason
                    )
                }
                _ => {}
            }
        }
        self.problems
    }

    fn check(
        &mut self,
        row: &Row,
        next: Option<&Row>,
        prev: &[u8],
        prev_seq: i64,
        deleted: &HashMap<String, i64>,
    ) -> rusqlite::Result<()> {
        let s = row.seq;
        let expected = prev_seq + 1;
        if s < expected {
            self.push(
                Problem::Inserted,
                s,
                s,
                format!("event #{s} has no place in the history: numbers start at 1"),
            );
            self.prev_ok = false;
            return Ok(());
        }
        let gap = s > expected;
        if gap {
            self.push(
                Problem::Missing,
                expected,
                s - 1,
                range_text(expected, s - 1, "missing (deleted)"),
            );
            self.shift = None;
            self.bridge = None;
        }
        let content = self.content_problem(row, deleted);
        let bridge = self.bridge.take();
        let ok = match (&bridge, self.shift) {
            (Some(b), Some(d)) => row.links(&self.base, b, s + d),
            (None, Some(d)) => row.links(&self.base, prev, s + d) || row.links(&self.base, prev, s),
            _ => row.links(&self.base, prev, s),
        };
        if ok {
            if row.links(&self.base, prev, s) {
                self.shift = None;
            }
            self.prev_ok = true;
            self.emit(content);
            return Ok(());
        }
        self.shift = None;
        // Its predecessor is gone: the gap explains it.
        if gap {
            self.prev_ok = true;
            self.emit(content);
            return Ok(());
        }
        let was_ok = std::mem::replace(&mut self.prev_ok, false);
        let forged_run = self.problems.last().is_some_and(|p| {
            p.problem == Problem::Forged && p.through == s - 1 && p.through > p.seq
        });
        let next = next.filter(|n| n.seq == s + 1);
        let next_links_here = next.is_some_and(|n| n.links(&self.base, &row.mac, n.seq));
        // It follows an event that did not verify; the next one links to it as written.
        if !was_ok && next_links_here {
            self.emit(content);
            return Ok(());
        }
        if !forged_run {
            // Written at another place: look for where among its neighbours.
            if let Some((orig, after)) = self.locate(row)? {
                let rows = rows_between(self.conn, orig, orig)?;
                if orig != s && rows.first().is_some_and(|r| same(&r.mac, &row.mac)) {
                    self.push(
                        Problem::Inserted,
                        s,
                        s,
                        format!("event #{s} was inserted: it is a copy of event #{orig}"),
                    );
                    self.bridge = Some(prev.to_vec());
                    self.shift = Some(-1);
                } else if orig == s {
                    self.emit(content);
                    self.push(
                        Problem::Reordered,
                        s,
                        s,
                        format!("event #{s} was written after the event now at #{after}"),
                    );
                } else {
                    self.emit(content);
                    self.push(
                        Problem::Reordered,
                        s,
                        s,
                        format!("event #{s} was written as #{orig}"),
                    );
                }
                return Ok(());
            }
        }
        if let Some(n) = next {
            // Its own number, time, kind or tenant changed: the next event links to it.
            if next_links_here {
                let reason = if s == 1 {
                    "event #1 does not follow the start of the history: its time, kind or tenant, or the record of when the history was keyed, was changed".to_owned()
                } else {
                    format!(
                        "event #{s} was edited: its time, kind or tenant no longer match its MAC"
                    )
                };
                self.emit(content);
                self.push(Problem::Edited, s, s, reason);
                return Ok(());
            }
            // Inserted: the next event was written right after the previous one.
            if n.links(&self.base, prev, s) {
                self.push(
                    Problem::Inserted,
                    s,
                    s,
                    format!("event #{s} was inserted (Grantkeeper did not write it) and the events after it renumbered"),
                );
                self.bridge = Some(prev.to_vec());
                self.shift = Some(-1);
                return Ok(());
            }
            // Deleted before it, the rest renumbered: the next event links to it, written later.
            if let Some(k) = (1..=SEARCH).find(|k| n.links(&self.base, &row.mac, n.seq + k)) {
                let what = if k == 1 {
                    format!("1 event before event #{s} was deleted")
                } else {
                    format!("{k} events before event #{s} were deleted")
                };
                self.push(
                    Problem::Missing,
                    s,
                    s + k - 1,
                    format!("{what} and the events after renumbered to hide it (event #{s} was written as #{})", s + k),
                );
                self.shift = Some(k);
                self.prev_ok = true;
                self.emit(content);
                return Ok(());
            }
        }
        // Not written by Grantkeeper: what its content says does not matter.
        self.push(Problem::Forged, s, s, String::new());
        Ok(())
    }

    fn emit(&mut self, problem: Option<BadEvent>) {
        if let Some(p) = problem {
            self.push(p.problem, p.seq, p.through, p.reason);
        }
    }

    /// What is wrong with an event's content or its erasure, if anything.
    fn content_problem(&self, row: &Row, deleted: &HashMap<String, i64>) -> Option<BadEvent> {
        let s = row.seq;
        let content = row.erasable();
        let (problem, reason) = if row.redacted {
            let tenant_deleted_after = row
                .tenant
                .as_ref()
                .and_then(|t| deleted.get(t))
                .is_some_and(|&d| d > s);
            if !tenant_deleted_after {
                (
                    Problem::Erased,
                    format!("event #{s} is marked erased, but its tenant was not deleted after it"),
                )
            } else if !content.is_erased() {
                (
                    Problem::Erased,
                    format!("event #{s} is marked erased but holds content no MAC covers"),
                )
            } else {
                return None;
            }
        } else if same(&content.digest(), &row.digest) {
            return None;
        } else if content.is_erased() {
            (
                Problem::Erased,
                format!("event #{s} has lost its content but is not marked erased (its mark was removed)"),
            )
        } else {
            (
                Problem::Edited,
                format!("event #{s} was edited: its connection, actor, hint, caller, detail or fingerprint no longer match"),
            )
        };
        Some(BadEvent {
            seq: s,
            through: s,
            problem,
            reason,
        })
    }

    /// Where `row` was written: a sequence number and the event it followed (by its current
    /// number; 0 for the start), among the neighbours within [`SEARCH`].
    fn locate(&self, row: &Row) -> rusqlite::Result<Option<(i64, i64)>> {
        let s = row.seq;
        let near = rows_between(self.conn, (s - SEARCH).max(1), s + SEARCH)?;
        let rec = record(self.conn)?;
        let mut preds: Vec<(i64, Vec<u8>)> = vec![(
            0,
            genesis(&self.base, rec.as_deref().unwrap_or_default()).to_vec(),
        )];
        preds.extend(
            near.iter()
                .filter(|r| r.seq != s)
                .map(|r| (r.seq, r.mac.clone())),
        );
        for orig in (s - SEARCH).max(1)..=s + SEARCH {
            for (after, mac) in &preds {
                if orig == s && *after == s - 1 {
                    continue;
                }
                if row.links(&self.base, mac, orig) {
                    return Ok(Some((orig, *after)));
                }
            }
        }
        Ok(None)
    }
}

// ----- when checkpoints are written -----

/// Schedules checkpoints for one open vault: [`ANCHOR_INTERVAL`] after the first event it wrote
/// that is not yet anchored (on a thread of its own, never on the hand-out path), and when the
/// vault closes (a command ends): always after events other than hand-outs, after hand-outs
/// only when the last checkpoint is older than the interval (so `grantkeeper token` without the
/// agent does not pay a keychain write per call).
pub(crate) struct Anchorer {
    target: Arc<AnchorTarget>,
    schedule: Arc<(Mutex<Schedule>, Condvar)>,
}

struct AnchorTarget {
    interval: Duration,
    db_path: PathBuf,
    lock_path: PathBuf,
    keychain: Arc<dyn Keychain>,
    key: HistoryKey,
    vault: String,
}

#[derive(Default)]
struct Schedule {
    /// When this vault first wrote an event not yet anchored.
    dirty_since: Option<Instant>,
    /// Whether one of those was not a hand-out.
    notable: bool,
    started: bool,
    stop: bool,
}

impl Anchorer {
    pub(crate) fn new(
        db_path: PathBuf,
        lock_path: PathBuf,
        keychain: Arc<dyn Keychain>,
        key: HistoryKey,
        vault: String,
    ) -> Self {
        Self {
            target: Arc::new(AnchorTarget {
                interval: ANCHOR_INTERVAL,
                db_path,
                lock_path,
                keychain,
                key,
                vault,
            }),
            schedule: Arc::default(),
        }
    }

    /// The same with another interval (tests).
    #[cfg(test)]
    fn with_interval(mut self, interval: Duration) -> Self {
        Arc::get_mut(&mut self.target)
            .expect("not shared yet")
            .interval = interval;
        self
    }

    /// Notes that this vault appended events (`notable`: not only hand-outs).
    pub(crate) fn appended(&self, notable: bool) {
        let (lock, wake) = &*self.schedule;
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        s.notable |= notable;
        if s.dirty_since.is_none() {
            s.dirty_since = Some(Instant::now());
        }
        if !s.started && !s.stop {
            s.started = true;
            let (target, schedule) = (self.target.clone(), self.schedule.clone());
            let spawned = std::thread::Builder::new()
                .name("history-anchor".into())
                .spawn(move || anchor_loop(&target, &schedule));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the usage history's checkpoint thread");
            }
        }
        wake.notify_all();
    }

    /// Writes a checkpoint now (agent lock and stop, app exit).
    pub(crate) fn now(&self, conn: &Connection) -> crate::Result<AnchorOutcome> {
        {
            // Cleared first: events appended meanwhile stay to anchor.
            let mut s = self.schedule.0.lock().unwrap_or_else(|p| p.into_inner());
            s.dirty_since = None;
            s.notable = false;
        }
        let t = &self.target;
        anchor(conn, &t.key, &*t.keychain, &t.vault, &t.lock_path)
    }

    /// Stops the thread; if this vault wrote events not yet anchored, writes a checkpoint when
    /// one was not a hand-out or the last checkpoint is older than [`ANCHOR_INTERVAL`].
    /// Failures are logged.
    pub(crate) fn close(&self, conn: &Connection) {
        let (dirty, notable) = {
            let (lock, wake) = &*self.schedule;
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            s.stop = true;
            wake.notify_all();
            (
                s.dirty_since.take().is_some(),
                std::mem::take(&mut s.notable),
            )
        };
        if !dirty {
            return;
        }
        let t = &self.target;
        if notable || anchor_due(conn, &t.key, now_ms()).unwrap_or(true) {
            log_outcome(anchor(conn, &t.key, &*t.keychain, &t.vault, &t.lock_path));
        }
    }
}

fn log_outcome(out: crate::Result<AnchorOutcome>) {
    match out {
        Ok(AnchorOutcome::Refused(why)) => {
            tracing::warn!(%why, "the usage history was not anchored: run `grantkeeper audit verify`")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "the usage history could not be anchored"),
    }
}

fn anchor_loop(target: &AnchorTarget, schedule: &(Mutex<Schedule>, Condvar)) {
    let (lock, wake) = schedule;
    let mut conn = None;
    loop {
        {
            let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if s.stop {
                    return;
                }
                match s.dirty_since {
                    Some(since) if since.elapsed() >= target.interval => break,
                    Some(since) => {
                        let wait = target.interval.saturating_sub(since.elapsed());
                        s = wake
                            .wait_timeout(s, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    None => s = wake.wait(s).unwrap_or_else(|p| p.into_inner()),
                }
            }
            s.dirty_since = None;
            s.notable = false;
        }
        if conn.is_none() {
            match crate::db::connect(&target.db_path, false) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "the usage history's checkpoint thread cannot open the vault");
                    continue;
                }
            }
        }
        if let Some(c) = &conn {
            let out = anchor(
                c,
                &target.key,
                &*target.keychain,
                &target.vault,
                &target.lock_path,
            );
            if out.is_err() {
                // Try again after another interval (the keychain may be locked for a while).
                let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
                s.dirty_since.get_or_insert_with(Instant::now);
            }
            log_outcome(out);
        }
    }
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
mod tests;

//! Keying a history written before the chain was keyed (the migration).

use std::collections::HashSet;

use rusqlite::{params, Connection, TransactionBehavior};
use sha2::{Digest, Sha256};

use crate::keychain::{EntryName, Keychain};
use crate::model::{now_ms, UnixMillis};

use super::{
    genesis, link, put, read_anchor, record, same, write_anchor, Anchor, Checkpoint, Erasable,
    HistoryKey, KeyedRecord, OldBreak, Row, META_RECORD, ROW_COLUMNS, UNKEYED,
};

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
pub(super) struct V1Body<'a> {
    pub(super) ts: UnixMillis,
    pub(super) kind: &'a str,
    pub(super) tenant_id: Option<&'a str>,
    pub(super) rest: Erasable<'a>,
}

impl V1Body<'_> {
    pub(super) fn hash(&self) -> [u8; 32] {
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

pub(super) fn v1_chain(prev: &[u8], seq: i64, body_hash: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"grantkeeper/chain/v1");
    h.update(prev);
    h.update(seq.to_be_bytes());
    h.update(body_hash);
    h.finalize().into()
}

/// Verifies the old unkeyed chain (before keying, `digest` and `mac` hold its body and chain
/// hashes); returns where it first fails.
pub(super) fn verify_unkeyed(conn: &Connection) -> rusqlite::Result<Option<(i64, String)>> {
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

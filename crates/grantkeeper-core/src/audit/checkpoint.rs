//! Checkpoints: the history's head, MACed and kept in the keychain (the anchor).

use std::path::Path;

use hmac::Mac;
use rusqlite::{params, Connection, OptionalExtension};

use crate::keychain::{EntryName, Keychain, KeychainError};
use crate::model::{now_ms, UnixMillis};
use crate::secret::SecretText;

use super::{
    genesis, hex, put, record, rows_between, same, tail, unhex, HistoryKey, Row, ANCHOR_INTERVAL,
    META_HINT, ROW_COLUMNS,
};

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

pub(super) fn write_anchor(
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
pub(super) fn hint_mac(key: &HistoryKey, seq: i64, at: UnixMillis) -> [u8; 32] {
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

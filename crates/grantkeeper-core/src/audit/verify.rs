//! Verification: walking the whole history and naming what is missing or altered.

use std::collections::HashMap;

use rusqlite::Connection;

use super::{
    genesis, record, rows_between, same, Anchor, AnchorInfo, BadEvent, HistoryKey, HmacSha256,
    KeyedRecord, Problem, Row, VerifyReport, MAX_PROBLEMS, ROW_COLUMNS, SEARCH, UNKEYED,
};

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

pub(super) fn range_text(from: i64, to: i64, what: &str) -> String {
    if from == to {
        format!("event #{from} is {what}")
    } else {
        format!("events #{from}–#{to} are {what}")
    }
}

/// The state of one verification walk.
pub(super) struct Walk<'a> {
    pub(super) conn: &'a Connection,
    pub(super) base: HmacSha256,
    pub(super) problems: Vec<BadEvent>,
    /// Events are being found renumbered: the one now at #s was written as #(s + shift).
    pub(super) shift: Option<i64>,
    /// The MAC the next event links to instead of its stored predecessor's (after an insertion).
    pub(super) bridge: Option<Vec<u8>>,
    /// Whether the previous event linked as written.
    pub(super) prev_ok: bool,
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

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::migrate::{v1_chain, V1Body};
use super::*;
use crate::keychain::{EntryName, Keychain, MemoryKeychain};
use crate::model::{now_ms, ConnectionId, TenantId};
use crate::secret::SecretText;

const VAULT: &str = "test-vault";

/// A keyed history in a temporary database, with an in-memory keychain for its checkpoint.
struct History {
    dir: tempfile::TempDir,
    conn: Connection,
    key: HistoryKey,
    kc: Arc<MemoryKeychain>,
}

impl History {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = crate::db::open(&dir.path().join("t.db"), true).unwrap();
        let key = crate::crypto::MasterKey::generate().history_key();
        let kc = Arc::new(MemoryKeychain::default());
        let keyed = ensure_keyed(&mut conn, &key, &*kc, VAULT).unwrap().unwrap();
        assert_eq!(keyed.events, 0);
        Self { dir, conn, key, kc }
    }

    fn append(&mut self, events: &[NewEvent]) -> i64 {
        let tx = HistoryTx::new(
            self.conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap(),
            &self.key,
        );
        let last = append_batch(&tx, events).unwrap();
        assert_eq!(tx.commit().unwrap(), events.len() as u64);
        last
    }

    /// `n` hand-outs of one connection of a new tenant.
    fn fill(&mut self, n: usize) -> (TenantId, ConnectionId) {
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
        self.append(&evs);
        (t, k)
    }

    fn anchor(&self) -> AnchorOutcome {
        anchor(
            &self.conn,
            &self.key,
            &*self.kc,
            VAULT,
            &self.dir.path().join("vault.lock"),
        )
        .unwrap()
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        match read_anchor(&*self.kc, &self.key, VAULT).unwrap() {
            Anchor::Found(cp) => Some(cp),
            _ => None,
        }
    }

    fn report(&self) -> VerifyReport {
        let anchor = read_anchor(&*self.kc, &self.key, VAULT).unwrap();
        verify(&self.conn, &self.key, &anchor).unwrap()
    }

    /// Each problem as (kind, first, last).
    fn problems(&self) -> Vec<(Problem, i64, i64)> {
        self.report()
            .problems
            .iter()
            .map(|p| (p.problem, p.seq, p.through))
            .collect()
    }

    fn sql(&self, sql: &str) {
        self.conn.execute_batch(sql).unwrap();
    }

    /// 20 events, anchored.
    fn anchored20() -> Self {
        let mut h = Self::new();
        h.fill(20);
        assert!(matches!(h.anchor(), AnchorOutcome::Written(_)));
        h
    }
}

fn first(r: &VerifyReport) -> &BadEvent {
    r.first_bad.as_ref().expect("a problem")
}

/// Rewrites every event's digest and MAC the way someone without the key could: `mac_of`
/// computes the new MAC from the previous one, the number and the new digest.
fn rechain(h: &History, mac_of: impl Fn(&[u8], &Row, &[u8]) -> Vec<u8>) {
    let rows = rows_between(&h.conn, 1, i64::MAX).unwrap();
    let mut prev = vec![0u8; 32];
    for row in rows {
        let digest = row.erasable().digest().to_vec();
        let mac = mac_of(&prev, &row, &digest);
        h.conn
            .execute(
                "UPDATE events SET digest = ?2, mac = ?3 WHERE seq = ?1",
                params![row.seq, digest, mac],
            )
            .unwrap();
        prev = mac;
    }
}

#[test]
fn intact_history_verifies_and_names_the_unanchored_window() {
    let mut h = History::new();
    let r = h.report();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!(r.anchor.as_ref().map(|a| a.seq), Some(0));
    h.fill(20);
    let r = h.report();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.checked, r.unanchored), (20, 20));
    let AnchorOutcome::Written(cp) = h.anchor() else {
        panic!("not anchored")
    };
    assert_eq!(cp.seq, 20);
    assert_eq!(h.anchor(), AnchorOutcome::Unchanged(20));
    h.fill(3);
    let r = h.report();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!(r.anchor.map(|a| a.seq), Some(20));
    assert_eq!((r.checked, r.unanchored), (23, 3));
}

#[test]
fn an_edit_of_any_field_is_named() {
    let other = TenantId::generate();
    let edits = [
        "kind = 'revealed'".to_owned(),
        "ts = ts + 1".to_owned(),
        format!("tenant_id = '{other}'"),
        "connection_id = 'elsewhere'".to_owned(),
        "actor = 'app'".to_owned(),
        "app_hint = 'someone-else'".to_owned(),
        "caller = 'pid 1 /usr/bin/evil'".to_owned(),
        "detail = '{\"i\":99}'".to_owned(),
        "fingerprint = 'gkfp1:00000000000000000000000000000000'".to_owned(),
        "salt = x'00'".to_owned(),
    ];
    for edit in edits {
        let h = History::anchored20();
        h.sql(&format!("UPDATE events SET {edit} WHERE seq = 7"));
        let r = h.report();
        assert_eq!(
            h.problems(),
            vec![(Problem::Edited, 7, 7)],
            "{edit}: {:?}",
            r.problems
        );
        assert!(first(&r).reason.contains("event #7 was edited"), "{r:?}");
    }
}

#[test]
fn an_insertion_is_named() {
    // A copy of a genuine event, the later ones renumbered to make room.
    let h = History::anchored20();
    h.sql(
        "UPDATE events SET seq = seq + 100 WHERE seq >= 4;
         UPDATE events SET seq = seq - 99 WHERE seq >= 104;
         INSERT INTO events SELECT 4, ts, kind, tenant_id, connection_id, actor, app_hint, caller,
                detail, fingerprint, salt, redacted, digest, mac FROM events WHERE seq = 2;",
    );
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Inserted, 4, 4)], "{r:?}");
    assert!(first(&r).reason.contains("copy of event #2"), "{r:?}");

    // An event written without the key, the later ones renumbered.
    let h = History::anchored20();
    h.sql(
        "UPDATE events SET seq = seq + 100 WHERE seq >= 4;
         UPDATE events SET seq = seq - 99 WHERE seq >= 104;
         INSERT INTO events (seq, ts, kind, tenant_id, connection_id, actor, salt, digest, mac)
         SELECT 4, ts, 'handed_out', tenant_id, connection_id, 'cli', x'01', randomblob(32),
                randomblob(32) FROM events WHERE seq = 3;",
    );
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Inserted, 4, 4)], "{r:?}");
    assert!(first(&r).reason.contains("Grantkeeper did not write it"));

    // One added after the newest.
    let h = History::anchored20();
    h.sql(
        "INSERT INTO events (seq, ts, kind, actor, salt, digest, mac)
         VALUES (21, 1, 'revealed', 'cli', x'01', randomblob(32), randomblob(32))",
    );
    assert_eq!(h.problems(), vec![(Problem::Forged, 21, 21)]);
}

#[test]
fn a_reordering_is_named() {
    let h = History::anchored20();
    h.sql(
        "UPDATE events SET seq = -6 WHERE seq = 6;
         UPDATE events SET seq = 6 WHERE seq = 7;
         UPDATE events SET seq = 7 WHERE seq = -6;",
    );
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Reordered, 6, 7)], "{r:?}");
    assert!(
        first(&r).reason.contains("event #6 was written as #7"),
        "{r:?}"
    );
}

#[test]
fn deleting_one_event_is_named() {
    let h = History::anchored20();
    h.sql("DELETE FROM events WHERE seq = 12");
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Missing, 12, 12)], "{r:?}");
    assert!(first(&r).reason.contains("event #12 is missing"));

    // Deleting one and renumbering the rest to close the gap.
    let h = History::anchored20();
    h.sql(
        "DELETE FROM events WHERE seq = 5;
         UPDATE events SET seq = seq - 1 WHERE seq > 5;",
    );
    let r = h.report();
    assert_eq!(
        h.problems(),
        vec![(Problem::Missing, 5, 5), (Problem::Missing, 20, 20)],
        "{r:?}"
    );
    assert!(first(&r)
        .reason
        .contains("1 event before event #5 was deleted"));
}

#[test]
fn deleting_the_newest_events_is_named() {
    let h = History::anchored20();
    h.sql("DELETE FROM events WHERE seq > 17");
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Missing, 18, 20)], "{r:?}");
    assert!(
        first(&r).reason.contains("events #18–#20 are missing"),
        "{r:?}"
    );
    assert!(first(&r).reason.contains("checkpoint of"));
}

#[test]
fn deleting_every_event_is_named() {
    let h = History::anchored20();
    h.sql("DELETE FROM events");
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Missing, 1, 20)], "{r:?}");
    assert!(
        first(&r).reason.contains("all 20 events are missing"),
        "{r:?}"
    );
}

#[test]
fn deleting_one_tenants_events_is_named() {
    let mut h = History::new();
    let actor = Actor::new(ActorKind::Agent);
    let tenants: Vec<TenantId> = (0..3).map(|_| TenantId::generate()).collect();
    let evs: Vec<_> = (0..30)
        .map(|i| NewEvent::new(EventKind::HandedOut, &actor).tenant(&tenants[i % 3]))
        .collect();
    h.append(&evs);
    h.anchor();
    // Tenant 1's events are #2, #5, …, #29; tenant 2's #3, …, #30 (the newest).
    for (t, expected) in [
        (&tenants[1], (2..=29).step_by(3).collect::<Vec<i64>>()),
        (&tenants[2], (3..=30).step_by(3).collect()),
    ] {
        let h2 = History {
            dir: tempfile::tempdir().unwrap(),
            conn: crate::db::connect(&h.dir.path().join("t.db"), false).unwrap(),
            key: h.key.clone(),
            kc: h.kc.clone(),
        };
        h2.sql("SAVEPOINT s");
        h2.conn
            .execute("DELETE FROM events WHERE tenant_id = ?1", [t.as_str()])
            .unwrap();
        let problems = h2.problems();
        assert!(
            problems.iter().all(|p| p.0 == Problem::Missing),
            "{problems:?}"
        );
        let named: Vec<i64> = problems.iter().flat_map(|p| p.1..=p.2).collect();
        assert_eq!(named, expected);
        h2.sql("ROLLBACK TO s; RELEASE s");
    }
}

#[test]
fn a_chain_recomputed_without_the_key_is_named() {
    // With plain SHA-256, as the unkeyed chain was.
    let h = History::anchored20();
    rechain(&h, |prev, row, digest| {
        v1_chain(prev, row.seq, digest).to_vec()
    });
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Forged, 1, 20)], "{r:?}");
    assert!(
        first(&r)
            .reason
            .contains("events #1–#20 were not written with this vault's key"),
        "{r:?}"
    );
    // With a key of the attacker's, from the chain's start as the database records it.
    let h = History::anchored20();
    let wrong = crate::crypto::MasterKey::generate().history_key();
    let start = genesis(&wrong.hmac(), &record(&h.conn).unwrap().unwrap());
    rechain(&h, |prev, row, digest| {
        let prev = if row.seq == 1 { &start[..] } else { prev };
        link(
            &wrong.hmac(),
            prev,
            row.seq,
            row.ts,
            &row.kind,
            row.tenant.as_deref(),
            digest,
        )
        .to_vec()
    });
    // … and an edit hidden that way: what unkeyed events say does not count.
    h.sql("UPDATE events SET app_hint = 'x' WHERE seq = 3");
    assert_eq!(h.problems(), vec![(Problem::Forged, 1, 20)]);
}

#[test]
fn erasure_is_checked_and_a_flipped_mark_is_named() {
    let mut h = History::new();
    let (t, _) = h.fill(5);
    let (t2, k2) = h.fill(5);
    h.sql("SAVEPOINT s");
    redact_tenant(&h.conn, &t).unwrap();
    let r = h.report();
    assert_eq!(r.problems.len(), 5, "{r:?}");
    assert_eq!(first(&r).problem, Problem::Erased);
    assert!(first(&r)
        .reason
        .contains("event #1 is marked erased, but its tenant was not deleted"));
    h.sql("ROLLBACK TO s; RELEASE s");

    // A deleted tenant's erased events verify their number, time, kind and tenant.
    let tx = HistoryTx::new(h.conn.unchecked_transaction().unwrap(), &h.key);
    redact_tenant(&tx, &t).unwrap();
    append(
        &tx,
        &NewEvent::new(EventKind::TenantDeleted, &Actor::new(ActorKind::Cli)).tenant(&t),
    )
    .unwrap();
    tx.commit().unwrap();
    h.anchor();
    let r = h.report();
    assert!(r.is_intact(), "{r:?}");
    let leftover: i64 = h
        .conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE tenant_id = ?1 AND kind != 'tenant_deleted' AND (detail IS NOT NULL OR salt IS NOT NULL)",
            [t.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leftover, 0);
    assert_eq!(
        connection_history(&h.conn, &k2, None, 100).unwrap().len(),
        5
    );

    for (tamper, expected, words) in [
        // The mark removed from an erased event.
        ("UPDATE events SET redacted = 0 WHERE seq = 2", (Problem::Erased, 2, 2), "not marked erased"),
        // The mark set on an event of a tenant still there.
        ("UPDATE events SET redacted = 1 WHERE seq = 7", (Problem::Erased, 7, 7), "its tenant was not deleted"),
        // Its content erased too.
        ("UPDATE events SET redacted = 1, detail = NULL, salt = NULL, fingerprint = NULL, actor = NULL, app_hint = NULL, connection_id = NULL WHERE seq = 8", (Problem::Erased, 8, 8), "its tenant was not deleted"),
        // An erased event's time changed.
        ("UPDATE events SET ts = ts - 1000 WHERE seq = 3", (Problem::Edited, 3, 3), "its time, kind or tenant"),
        // An erased event moved to the other tenant.
        (&*format!("UPDATE events SET tenant_id = '{t2}' WHERE seq = 4"), (Problem::Erased, 4, 4), "its tenant was not deleted"),
    ] {
        h.sql("SAVEPOINT s");
        h.sql(tamper);
        let r = h.report();
        assert_eq!(
            r.problems.first().map(|p| (p.problem, p.seq, p.through)),
            Some(expected),
            "{tamper}: {r:?}"
        );
        assert!(first(&r).reason.contains(words), "{tamper}: {r:?}");
        h.sql("ROLLBACK TO s; RELEASE s");
    }
    assert!(h.report().is_intact());
}

#[test]
fn a_history_replaced_by_an_older_copy_is_named_and_never_anchored() {
    let mut h = History::new();
    h.fill(10);
    h.sql("CREATE TABLE old_copy AS SELECT * FROM events");
    h.fill(5);
    h.anchor();
    // The older copy comes back, and genuine events are written on top of it.
    h.sql("DELETE FROM events; INSERT INTO events SELECT * FROM old_copy;");
    h.fill(8);
    assert!(matches!(h.anchor(), AnchorOutcome::Refused(why) if why.contains("event #15")));
    assert_eq!(h.checkpoint().unwrap().seq, 15, "the anchor stays");
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Replaced, 15, 15)], "{r:?}");

    // The newest anchored events deleted, then new ones written: not anchored either.
    let mut h = History::anchored20();
    h.sql("DELETE FROM events WHERE seq > 17");
    h.fill(5);
    assert!(matches!(h.anchor(), AnchorOutcome::Refused(_)));
    assert_eq!(h.problems(), vec![(Problem::Replaced, 20, 20)]);
}

#[test]
fn the_anchor_never_moves_backwards_across_processes() {
    let h = History::anchored20();
    let path = h.dir.path().join("t.db");
    let lock = h.dir.path().join("vault.lock");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (path, lock, key, kc) = (path.clone(), lock.clone(), h.key.clone(), h.kc.clone());
            std::thread::spawn(move || {
                let mut conn = crate::db::connect(&path, false).unwrap();
                let mut seen = Vec::new();
                for i in 0..25 {
                    let tx = HistoryTx::new(
                        conn.transaction_with_behavior(TransactionBehavior::Immediate)
                            .unwrap(),
                        &key,
                    );
                    append(
                        &tx,
                        &NewEvent::new(EventKind::HandedOut, &Actor::new(ActorKind::Agent))
                            .detail(serde_json::json!({ "i": i })),
                    )
                    .unwrap();
                    tx.commit().unwrap();
                    if i % 3 == 0 {
                        let out = anchor(&conn, &key, &*kc, VAULT, &lock).unwrap();
                        assert!(!matches!(out, AnchorOutcome::Refused(_)), "{out:?}");
                    }
                    if let Anchor::Found(cp) = read_anchor(&*kc, &key, VAULT).unwrap() {
                        seen.push(cp.seq);
                    }
                }
                seen
            })
        })
        .collect();
    for t in threads {
        let seen = t.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    }
    h.anchor();
    let r = h.report();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.checked, r.unanchored), (120, 0));
}

#[test]
fn the_key_record_and_the_checkpoint_are_checked() {
    // The record of when the history was keyed, edited: event #1 no longer follows it.
    let h = History::anchored20();
    h.sql("UPDATE meta SET value = replace(value, '\"through_seq\":0', '\"through_seq\":5') WHERE key = 'history'");
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Edited, 1, 1)], "{r:?}");
    assert!(first(&r)
        .reason
        .contains("record of when the history was keyed"));

    // Removed.
    let h = History::anchored20();
    h.sql("DELETE FROM meta WHERE key = 'history'");
    assert_eq!(h.problems()[0], (Problem::KeyRecord, 0, 0));

    // Reset to 'unkeyed' and the chain recomputed the old way: it is not keyed again.
    let mut h = History::anchored20();
    h.sql("UPDATE meta SET value = 'unkeyed' WHERE key = 'history'");
    rechain(&h, |prev, row, digest| {
        v1_chain(prev, row.seq, digest).to_vec()
    });
    assert_eq!(
        ensure_keyed(&mut h.conn, &h.key, &*h.kc, VAULT).unwrap(),
        None
    );
    let r = h.report();
    assert_eq!(first(&r).problem, Problem::KeyRecord);
    assert!(first(&r).reason.contains("the record was reset"));
    assert!(r.problems.iter().any(|p| p.problem == Problem::Forged));

    // The checkpoint altered or removed.
    let h = History::anchored20();
    let entry = EntryName::history_checkpoint(VAULT);
    let text = h.kc.get(&entry).unwrap().unwrap();
    let forged = text.expose().replacen("gkcp1 20 ", "gkcp1 17 ", 1);
    h.kc.set(&entry, &SecretText::new(forged)).unwrap();
    let r = h.report();
    assert_eq!(h.problems(), vec![(Problem::Anchor, 0, 0)], "{r:?}");
    assert!(first(&r).reason.contains("does not verify"));
    assert!(matches!(h.anchor(), AnchorOutcome::Refused(_)));
    h.kc.delete(&entry).unwrap();
    assert_eq!(h.problems(), vec![(Problem::Anchor, 0, 0)]);
}

#[test]
fn a_checkpoint_is_due_after_the_interval() {
    let mut h = History::new();
    assert!(
        anchor_due(&h.conn, &h.key, now_ms()).unwrap(),
        "never written"
    );
    h.fill(2);
    let AnchorOutcome::Written(cp) = h.anchor() else {
        panic!()
    };
    let interval = ANCHOR_INTERVAL.as_millis() as i64;
    assert!(!anchor_due(&h.conn, &h.key, cp.at + 1000).unwrap());
    assert!(anchor_due(&h.conn, &h.key, cp.at + interval).unwrap());
    // A note not written with the key (one that would put checkpoints off) is ignored.
    h.sql(&format!(
        "UPDATE meta SET value = '2 {} 00' WHERE key = 'history_anchor'",
        i64::MAX / 2
    ));
    assert!(anchor_due(&h.conn, &h.key, cp.at + 1000).unwrap());
}

// ----- keying a history written by an older version -----

/// Appends events the way versions before the keyed history did (plain SHA-256 chain).
fn append_unkeyed(conn: &Connection, events: &[(EventKind, Option<&TenantId>, i64)]) {
    let mut prev: Vec<u8> = conn
        .query_row(
            "SELECT chain_hash FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
        .unwrap_or_else(|| vec![0; 32]);
    let mut seq: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))
        .unwrap();
    for (i, (kind, tenant, ts)) in events.iter().enumerate() {
        seq += 1;
        let salt = [i as u8; 16];
        let detail = format!("{{\"i\":{i}}}");
        let body = V1Body {
            ts: *ts,
            kind: kind.as_str(),
            tenant_id: tenant.map(TenantId::as_str),
            rest: Erasable {
                connection_id: Some("conn-1"),
                actor: Some("cli"),
                app_hint: Some("nightly"),
                caller: None,
                detail: Some(&detail),
                fingerprint: Some("gkfp1:ab"),
                salt: Some(&salt),
            },
        };
        let hash = body.hash();
        let chain = v1_chain(&prev, seq, &hash);
        conn.execute(
            "INSERT INTO events (seq, ts, kind, tenant_id, connection_id, actor, app_hint, caller,
                                 detail, fingerprint, salt, body_hash, chain_hash)
             VALUES (?1, ?2, ?3, ?4, 'conn-1', 'cli', 'nightly', NULL, ?5, 'gkfp1:ab', ?6, ?7, ?8)",
            params![
                seq,
                ts,
                kind.as_str(),
                body.tenant_id,
                detail,
                &salt[..],
                &hash[..],
                &chain[..]
            ],
        )
        .unwrap();
        prev = chain.to_vec();
    }
}

/// An older version's database with 12 events, one tenant deleted (its events erased).
fn old_vault(dir: &Path) -> Connection {
    old_vault_at(&dir.join("old.db"))
}

fn old_vault_at(path: &Path) -> Connection {
    let conn = crate::db::open_before(path, "RENAME COLUMN body_hash").unwrap();
    let (a, b) = (TenantId::generate(), TenantId::generate());
    let evs: Vec<_> = (0..10)
        .map(|i| {
            let t = if i % 2 == 0 { &a } else { &b };
            (EventKind::HandedOut, Some(t), 1_700_000_000_000 + i * 1000)
        })
        .collect();
    append_unkeyed(&conn, &evs);
    conn.execute(
        "UPDATE events SET connection_id = NULL, actor = NULL, app_hint = NULL, caller = NULL,
                detail = NULL, fingerprint = NULL, salt = NULL, redacted = 1 WHERE tenant_id = ?1",
        [a.as_str()],
    )
    .unwrap();
    append_unkeyed(
        &conn,
        &[
            (EventKind::TenantDeleted, Some(&a), 1_700_000_100_000),
            (EventKind::Exported, None, 1_700_000_200_000),
        ],
    );
    conn
}

type Snapshot = Vec<(i64, i64, String, Option<String>, Option<String>, bool)>;

fn snapshot(conn: &Connection) -> Snapshot {
    let mut stmt = conn
        .prepare("SELECT seq, ts, kind, tenant_id, detail, redacted FROM events ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

#[test]
fn an_older_history_is_keyed_without_losing_or_redating_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = old_vault(dir.path());
    let before = snapshot(&conn);
    assert_eq!(before.len(), 12);
    crate::db::migrate(&mut conn).unwrap();
    let key = crate::crypto::MasterKey::generate().history_key();
    let kc = MemoryKeychain::default();
    let keyed = ensure_keyed(&mut conn, &key, &kc, VAULT).unwrap();
    assert_eq!(
        keyed,
        Some(Keyed {
            events: 12,
            old_chain_broken: None
        })
    );
    assert_eq!(snapshot(&conn), before, "numbers, times and content kept");
    let anchor = read_anchor(&kc, &key, VAULT).unwrap();
    assert!(matches!(&anchor, Anchor::Found(cp) if cp.seq == 12));
    let r = verify(&conn, &key, &anchor).unwrap();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.checked, r.unanchored), (12, 0));
    // Once only.
    assert_eq!(ensure_keyed(&mut conn, &key, &kc, VAULT).unwrap(), None);
    // Keyed, the old events are as protected as new ones.
    conn.execute("DELETE FROM events WHERE seq = 12", [])
        .unwrap();
    let r = verify(&conn, &key, &anchor).unwrap();
    assert_eq!(first(&r).problem, Problem::Missing);
    assert_eq!((first(&r).seq, first(&r).through), (12, 12));
}

#[test]
fn an_older_history_already_broken_is_keyed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut conn = old_vault(dir.path());
    conn.execute("DELETE FROM events WHERE seq = 6", [])
        .unwrap();
    crate::db::migrate(&mut conn).unwrap();
    let key = crate::crypto::MasterKey::generate().history_key();
    let kc = MemoryKeychain::default();
    let keyed = ensure_keyed(&mut conn, &key, &kc, VAULT).unwrap().unwrap();
    assert_eq!(keyed.events, 11, "every remaining event kept");
    assert_eq!(keyed.old_chain_broken.as_ref().map(|b| b.0), Some(7));
    let anchor = read_anchor(&kc, &key, VAULT).unwrap();
    let r = verify(&conn, &key, &anchor).unwrap();
    let named: Vec<_> = r.problems.iter().map(|p| (p.problem, p.seq)).collect();
    assert_eq!(
        named,
        vec![(Problem::Missing, 6), (Problem::BrokenBeforeKeyed, 7)],
        "{r:?}"
    );
    assert!(r.problems[1]
        .reason
        .contains("old unkeyed chain already failed"));
    assert!(r.problems[1].reason.contains("events #1–#12"));
}

#[test]
fn events_filter_by_connection_and_time() {
    let mut h = History::new();
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
    h.append(&evs);
    let ts = |f: HistoryFilter| -> Vec<i64> {
        events(&h.conn, &f).unwrap().iter().map(|e| e.ts).collect()
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
fn history_and_daily_counts() {
    let mut h = History::new();
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
    h.append(&evs);
    let page = connection_history(&h.conn, &k, None, 5).unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(page[0].seq, 30);
    assert!(page.windows(2).all(|w| w[0].ts >= w[1].ts));
    let older = connection_history(&h.conn, &k, Some(page[4].ts), 100).unwrap();
    assert_eq!(older.len(), 25);
    let counts = daily_counts(&h.conn, &k, day * 101).unwrap();
    let total: u64 = counts.iter().map(|d| d.count).sum();
    assert_eq!(total, 20);
    assert!(counts.iter().all(|d| d.day == 101 || d.day == 102));
}

#[test]
fn opening_an_older_vault_keys_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let conn = old_vault_at(&home.join("vault.db"));
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('vault_id', 'v-old'), ('created_at', '0')",
        [],
    )
    .unwrap();
    let before = snapshot(&conn);
    drop(conn);
    let kc = Arc::new(MemoryKeychain::default());
    let master = crate::crypto::MasterKey::generate();
    kc.set(&EntryName::master_key("v-old"), &master.to_keychain_text())
        .unwrap();
    let v = crate::Vault::open(&home, kc.clone()).unwrap();
    let r = v.verify_history().unwrap();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.checked, r.unanchored), (12, 0));
    assert_eq!(r.anchor.as_ref().map(|a| a.seq), Some(12));
    assert_eq!(snapshot(&v.conn())[..12], before[..]);
    drop(v);
    // Opening again does not key it again.
    let v = crate::Vault::open(&home, kc.clone()).unwrap();
    assert!(v.verify_history().unwrap().is_intact());
}

#[test]
fn a_vault_anchors_when_it_closes_but_hand_outs_only_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let kc = Arc::new(MemoryKeychain::default());
    let actor = Actor::new(ActorKind::Cli);
    let v = crate::Vault::open(&home, kc.clone()).unwrap();
    v.create_tenant("A", None, "", &actor).unwrap();
    drop(v);
    let v = crate::Vault::open(&home, kc.clone()).unwrap();
    let r = v.verify_history().unwrap();
    assert_eq!((r.anchor.map(|a| a.seq), r.unanchored), (Some(1), 0));
    // Another command: anchored as it ends.
    v.create_tenant("B", None, "", &actor).unwrap();
    drop(v);
    let v = crate::Vault::open(&home, kc.clone()).unwrap();
    let r = v.verify_history().unwrap();
    assert_eq!((r.anchor.map(|a| a.seq), r.unanchored), (Some(2), 0));
    // A command that only handed out tokens, within the interval: left to the next checkpoint.
    v.record_events(&[NewEvent::new(EventKind::HandedOut, &actor)])
        .unwrap();
    drop(v);
    let v = crate::Vault::open(&home, kc.clone()).unwrap();
    let r = v.verify_history().unwrap();
    assert!(r.is_intact(), "{r:?}");
    assert_eq!((r.anchor.map(|a| a.seq), r.unanchored), (Some(2), 1));
    // Agent lock and stop, app exit.
    assert!(matches!(v.anchor_history().unwrap(), AnchorOutcome::Written(cp) if cp.seq == 3));
    assert_eq!(v.verify_history().unwrap().unanchored, 0);
}

#[test]
fn a_running_vault_anchors_within_the_interval() {
    let mut h = History::new();
    let anchorer = Anchorer::new(
        h.dir.path().join("t.db"),
        h.dir.path().join("vault.lock"),
        h.kc.clone(),
        h.key.clone(),
        VAULT.into(),
    )
    .with_interval(Duration::from_millis(200));
    h.fill(5);
    anchorer.appended(false);
    assert_eq!(h.checkpoint().unwrap().seq, 0, "not on the write path");
    let t0 = Instant::now();
    while h.checkpoint().unwrap().seq != 5 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never anchored");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(t0.elapsed() >= Duration::from_millis(150));
    h.fill(2);
    anchorer.appended(false);
    anchorer.close(&h.conn);
    // Closing within the interval of the last checkpoint leaves the two to the next one.
    assert_eq!(h.report().unanchored, 2);
}

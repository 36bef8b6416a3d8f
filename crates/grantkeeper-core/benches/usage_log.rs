//! Usage-log benchmark at 1,000,000 events. Prints figures; run with
//! `cargo bench -p grantkeeper-core --bench usage_log` (`GK_BENCH_EVENTS` changes the size).
//!
//! Targets (issue 2): >= 50,000 appends/s batched, <= 1 ms for one audited append,
//! <= 10 ms for the newest 100 events of one connection, <= 100 ms for 90 days of per-day counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use grantkeeper_core::audit::{self, Actor, ActorKind, EventKind, HistoryTx, NewEvent};
use grantkeeper_core::crypto::MasterKey;
use grantkeeper_core::db;
use grantkeeper_core::keychain::{EntryName, Keychain, KeychainError};
use grantkeeper_core::model::{now_ms, ConnectionId, TenantId};
use grantkeeper_core::secret::SecretText;
use rusqlite::TransactionBehavior;

/// The checkpoint's keychain, in memory: this benchmark measures the database side.
#[derive(Default)]
struct MemoryKeychain(Mutex<HashMap<String, String>>);

impl Keychain for MemoryKeychain {
    fn get(&self, name: &EntryName) -> Result<Option<SecretText>, KeychainError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(name.user())
            .cloned()
            .map(SecretText::new))
    }
    fn set(&self, name: &EntryName, value: &SecretText) -> Result<(), KeychainError> {
        self.0
            .lock()
            .unwrap()
            .insert(name.user().to_owned(), value.expose().to_owned());
        Ok(())
    }
    fn delete(&self, name: &EntryName) -> Result<(), KeychainError> {
        self.0.lock().unwrap().remove(name.user());
        Ok(())
    }
    fn describe(&self) -> &'static str {
        "memory"
    }
}

const DAY: i64 = 86_400_000;

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn main() {
    let total: usize = std::env::var("GK_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut conn = db::open(&dir.path().join("bench.db"), true).unwrap();
    let key = MasterKey::generate().history_key();
    let keychain = MemoryKeychain::default();
    audit::ensure_keyed(&mut conn, &key, &keychain, "bench").unwrap();
    let tenants: Vec<TenantId> = (0..50).map(|_| TenantId::generate()).collect();
    let connections: Vec<ConnectionId> = (0..1000).map(|_| ConnectionId::generate()).collect();
    let hot = connections[0].clone();
    let actor = Actor::new(ActorKind::Agent).with_hint(Some("nightly-sync".into()));
    let start_ts = now_ms() - 90 * DAY;
    let step = (90 * DAY) / total as i64;

    // 1. Batched appends: 10,000 events per transaction; a tenth of all events hit one connection.
    let batch = 10_000;
    let t0 = Instant::now();
    let mut i = 0usize;
    while i < total {
        let n = batch.min(total - i);
        let events: Vec<NewEvent> = (i..i + n)
            .map(|k| {
                let c = if k % 10 == 0 {
                    0
                } else {
                    k % connections.len()
                };
                let kind = if k % 7 == 0 {
                    EventKind::Refreshed
                } else {
                    EventKind::HandedOut
                };
                NewEvent::new(kind, &actor)
                    .at(start_ts + k as i64 * step)
                    .tenant(&tenants[c % tenants.len()])
                    .connection(&connections[c])
                    .fingerprint(format!("gkfp1:{k:032x}"))
            })
            .collect();
        let tx = HistoryTx::new(
            conn.transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap(),
            &key,
        );
        audit::append_batch(&tx, &events).unwrap();
        tx.commit().unwrap();
        i += n;
    }
    let elapsed = t0.elapsed();
    println!(
        "batched append: {total} events in {:.2} s = {:.0} events/s (target >= 50000)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64()
    );

    // 2. One audited append: its own immediate transaction, committed, at full size.
    let mut samples = Vec::new();
    for _ in 0..2000 {
        let ev = NewEvent::new(EventKind::HandedOut, &actor)
            .tenant(&tenants[0])
            .connection(&hot)
            .fingerprint("gkfp1:00".into());
        let t = Instant::now();
        let tx = HistoryTx::new(
            conn.transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap(),
            &key,
        );
        audit::append(&tx, &ev).unwrap();
        tx.commit().unwrap();
        samples.push(t.elapsed());
    }
    let (med, p99) = median(samples);
    println!(
        "one audited append: median {:.3} ms, p99 {:.3} ms (target <= 1 ms)",
        ms(med),
        ms(p99)
    );

    // 3. The newest 100 events of one connection.
    let mut samples = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let page = audit::connection_history(&conn, &hot, None, 100).unwrap();
        samples.push(t.elapsed());
        assert_eq!(page.len(), 100);
    }
    let (med, p99) = median(samples);
    println!(
        "newest 100 events of one connection: median {:.3} ms, p99 {:.3} ms (target <= 10 ms)",
        ms(med),
        ms(p99)
    );

    // 4. Per-day counts of one connection over 90 days.
    let mut samples = Vec::new();
    let mut hot_events = 0;
    for _ in 0..50 {
        let t = Instant::now();
        let counts = audit::daily_counts(&conn, &hot, now_ms() - 90 * DAY).unwrap();
        samples.push(t.elapsed());
        hot_events = counts.iter().map(|c| c.count).sum::<u64>();
    }
    let (med, p99) = median(samples);
    println!(
        "per-day counts over 90 days ({hot_events} events of one connection): median {:.3} ms, p99 {:.3} ms (target <= 100 ms)",
        ms(med),
        ms(p99)
    );

    // 5. A checkpoint of the 2,000 events since the last one (verified first), with the
    // keychain in memory: what a checkpoint costs besides the keychain's own write.
    let lock = dir.path().join("vault.lock");
    audit::anchor(&conn, &key, &keychain, "bench", &lock).unwrap();
    for _ in 0..2000 {
        let tx = HistoryTx::new(
            conn.transaction_with_behavior(TransactionBehavior::Immediate)
                .unwrap(),
            &key,
        );
        audit::append(&tx, &NewEvent::new(EventKind::HandedOut, &actor)).unwrap();
        tx.commit().unwrap();
    }
    let t = Instant::now();
    let out = audit::anchor(&conn, &key, &keychain, "bench", &lock).unwrap();
    assert!(matches!(out, audit::AnchorOutcome::Written(_)), "{out:?}");
    println!(
        "checkpoint after 2000 events (keychain in memory): {:.3} ms",
        ms(t.elapsed())
    );

    // 6. Full verification, for information.
    let t = Instant::now();
    let anchor = audit::read_anchor(&keychain, &key, "bench").unwrap();
    let report = audit::verify(&conn, &key, &anchor).unwrap();
    assert!(report.is_intact(), "{report:?}");
    println!(
        "verify whole chain: {} events in {:.2} s",
        report.checked,
        t.elapsed().as_secs_f64()
    );
    let size = std::fs::metadata(dir.path().join("bench.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!("database size: {:.1} MiB", size as f64 / 1048576.0);
    drop(conn);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

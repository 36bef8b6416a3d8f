//! Anomaly-flag benchmark at 10,000 connections and 1,000,000 events. Prints figures; run under
//! the test session (the vault's keys are in the real keychain):
//!
//!   scripts/with-test-session cargo bench -p grantkeeper-core --bench anomalies
//!
//! Target (issue 14): `anomalies` over a 1,000,000-event history in at most 200 ms. Also printed:
//! the one-time fold of that history into the usage profiles (after an upgrade), and a reading
//! that first folds 1,000 new events (what a busy agent writes between two checkpoints).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use grantkeeper_core::audit::{rollup, Actor, ActorKind, EventKind, NewEvent};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::model::{
    now_ms, AccountIdentity, ConnectionId, Endpoints, ExpirySource, RedirectMode, TenantId,
};
use grantkeeper_core::secret::{AccessToken, TokenSet};
use grantkeeper_core::{ConnectionFilter, NewConnection, NewProviderApp, Vault};

const DAY: i64 = 86_400_000;
const PROGRAMS: [&str; 5] = [
    "/usr/bin/python3",
    "/usr/bin/node",
    "/usr/local/bin/sync-job",
    "/usr/bin/curl",
    "/opt/etl/bin/etl",
];

fn seed(vault: &Vault, connections: usize) -> Vec<(TenantId, ConnectionId)> {
    let cli = Actor::new(ActorKind::Cli);
    let tenants = 50;
    let mut ids = Vec::with_capacity(connections);
    for t in 0..tenants {
        let tenant = vault
            .create_tenant(&format!("Tenant {t:02}"), None, "", &cli)
            .unwrap();
        let tv = vault.tenant(&tenant.id).unwrap();
        let app = tv
            .add_provider_app(
                NewProviderApp {
                    name: "idp".into(),
                    preset: None,
                    endpoints: Endpoints::default(),
                    client_id: "cid".into(),
                    client_secret: None,
                    redirect_mode: RedirectMode::Loopback,
                    client_auth: None,
                    client_key: None,
                    dpop: None,
                    redirect_port: None,
                    relay_url: None,
                    default_scopes: vec![],
                },
                &cli,
            )
            .unwrap();
        for i in 0..connections / tenants {
            let c = tv
                .store_connection(
                    NewConnection {
                        name: format!("c{i:04}"),
                        provider_app_id: app.id.clone(),
                        account: AccountIdentity::default(),
                        scopes_requested: vec![],
                        scopes_granted: None,
                        consented_by: None,
                        access_expiry: Some((now_ms() + 3_600_000, ExpirySource::Response)),
                        refresh_expires_at: None,
                        refresh_hard_expires_at: None,
                        metadata: BTreeMap::new(),
                        dpop_key: None,
                    },
                    TokenSet {
                        access_token: AccessToken::new(format!("bench-at-{t}-{i}")),
                        refresh_token: None,
                        id_token: None,
                    },
                    &cli,
                )
                .unwrap();
            ids.push((tenant.id.clone(), c.id));
        }
    }
    ids
}

fn events(
    ids: &[(TenantId, ConnectionId)],
    from: usize,
    n: usize,
    start: i64,
    step: i64,
) -> Vec<NewEvent> {
    (from..from + n)
        .map(|k| {
            let c = if k % 10 == 0 { 0 } else { k % ids.len() };
            let kind = match k % 97 {
                0 => EventKind::RefreshFailed,
                k if k % 7 == 0 => EventKind::Refreshed,
                _ => EventKind::HandedOut,
            };
            let mut actor = Actor::new(ActorKind::Agent);
            actor.caller = Some(format!(
                "pid {} {}",
                1000 + k % 30_000,
                PROGRAMS[k % PROGRAMS.len()]
            ));
            NewEvent::new(kind, &actor)
                .at(start + k as i64 * step)
                .tenant(&ids[c].0)
                .connection(&ids[c].1)
                .detail(serde_json::json!({ "class": "transient" }))
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let total: usize = std::env::var("GK_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(&dir.path().join("vault"), Arc::new(OsKeychain::from_env())).unwrap();
    let ids = seed(&vault, 10_000);
    let start = now_ms() - 90 * DAY;
    let step = (90 * DAY) / total as i64;
    let mut i = 0;
    while i < total {
        let n = 10_000.min(total - i);
        vault
            .record_events(&events(&ids, i, n, start, step))
            .unwrap();
        i += n;
    }
    println!("seeded {} connections and {total} events", ids.len());
    // Closed and opened again, so the checkpoint thread that folded while seeding has stopped.
    drop(vault);
    let vault = Vault::open(&dir.path().join("vault"), Arc::new(OsKeychain::from_env())).unwrap();

    let conn = vault_conn(&dir);
    // Folded by the checkpoint thread while seeding: start again from nothing, as after an
    // upgrade.
    conn.execute_batch(
        "DELETE FROM usage_profiles; DELETE FROM usage_programs;
         DELETE FROM meta WHERE key = 'usage_through';",
    )
    .unwrap();
    let t = Instant::now();
    let folded = rollup::catch_up(&conn).unwrap();
    println!(
        "first fold of the history into usage profiles (once, after an upgrade): {folded} events in {:.0} ms",
        ms(t.elapsed())
    );

    let all = ConnectionFilter::default();
    for _ in 0..3 {
        let t = Instant::now();
        let n = vault.connections(&all).unwrap().len();
        let t1 = t.elapsed();
        let p = rollup::profiles(&conn, None).unwrap().len();
        let t2 = t.elapsed();
        let q = rollup::programs(&conn, None).unwrap().len();
        let t3 = t.elapsed();
        println!(
            "  parts: {n} connections {:.1} ms, {p} profiles {:.1} ms, {q} programs {:.1} ms",
            ms(t1),
            ms(t2 - t1),
            ms(t3 - t2)
        );
    }
    let mut runs = Vec::new();
    let mut flags = 0;
    for _ in 0..11 {
        let t = Instant::now();
        flags = vault.anomalies(&all).unwrap().len();
        runs.push(t.elapsed());
    }
    runs.sort();
    println!(
        "anomalies over {total} events, {} connections: median {:.1} ms, slowest {:.1} ms of 11 ({flags} flags; target <= 200 ms)",
        ids.len(),
        ms(runs[runs.len() / 2]),
        ms(runs[runs.len() - 1])
    );

    let mut runs = Vec::new();
    for r in 0..5 {
        let now = now_ms();
        vault
            .record_events(&events(&ids, total + r * 1000, 1000, now - 1000, 1))
            .unwrap();
        let t = Instant::now();
        vault.anomalies(&all).unwrap();
        runs.push(t.elapsed());
    }
    runs.sort();
    println!(
        "anomalies folding 1,000 new events first: median {:.1} ms, slowest {:.1} ms of 5",
        ms(runs[runs.len() / 2]),
        ms(runs[runs.len() - 1])
    );
}

/// A second connection to the vault's database, for the fold's timing alone.
fn vault_conn(dir: &tempfile::TempDir) -> rusqlite::Connection {
    grantkeeper_core::db::connect(&dir.path().join("vault").join("vault.db"), false).unwrap()
}

//! Team vault benchmarks (issue 13), against a real `bao server -dev`, the real test IdP and
//! Secret Service:
//! - a hand-out from a locally cached token, shared tenant against local tenant (target: as
//!   fast);
//! - a refresh, shared against local: the extra time a shared refresh takes (lease, rotated
//!   refresh token and result written with check-and-set);
//! - listing 1,000 shared connections (target <= 500 ms): an admin's review from the team
//!   vault's metadata, and the member's local list.
//!
//!   scripts/with-test-session cargo bench -p grantkeeper-core --bench team

#[path = "../../grantkeeper-cli/tests/support/bao.rs"]
#[allow(dead_code)]
mod bao;
#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use grantkeeper_core::deadline::Deadline;
use grantkeeper_core::grants::DEFAULT_MIN_VALID;
use grantkeeper_core::keychain::{EntryName, Keychain, KeychainError};
use grantkeeper_core::model::ConnectionId;
use grantkeeper_core::secret::SecretText;
use grantkeeper_core::sharing::Login;
use grantkeeper_core::{ConnectionFilter, TenantVault, Vault};

/// A keychain in memory, to seed 1,000 connections quickly (the listing reads no keychain).
#[derive(Default)]
struct SeedKeychain(Mutex<HashMap<String, String>>);

impl Keychain for SeedKeychain {
    fn get(&self, name: &EntryName) -> Result<Option<SecretText>, KeychainError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(name.user())
            .map(|v| SecretText::new(v.as_str())))
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
        "memory (benchmark seeding)"
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() * 99 / 100]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn join_team(vault: &Vault, bao: &bao::Bao, member: &str) {
    vault
        .team_login(
            "firm",
            Some((&bao.url, bao::MOUNT)),
            Login::Token(SecretText::new(&bao.root)),
            Some(member),
        )
        .unwrap();
}

fn hand_out(t: &TenantVault<'_>, id: &ConnectionId) -> Duration {
    let start = Instant::now();
    let tok = t
        .access_token(id, DEFAULT_MIN_VALID, &Deadline::default(), &actor())
        .unwrap();
    let d = start.elapsed();
    drop(tok);
    d
}

fn main() {
    let idp = Idp::start(&serde_json::json!({}));
    let bao = bao::Bao::start();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (local, local_id) = connected_vault(dirs[0].path(), &idp);
    let (shared, shared_id) = connected_vault(dirs[1].path(), &idp);
    join_team(&shared, &bao, "bench");
    let acme = shared.find_tenant("acme").unwrap().id;
    shared.share_tenant(&acme, "firm", &actor()).unwrap();
    let lt = local
        .tenant(&local.find_tenant("acme").unwrap().id)
        .unwrap();
    let st = shared.tenant(&acme).unwrap();

    // 1. Cached hand-outs, interleaved in rounds so that the machine's load hits both alike.
    let (mut l, mut s) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        hand_out(&lt, &local_id);
        hand_out(&st, &shared_id);
    }
    for _ in 0..10 {
        l.extend((0..500).map(|_| hand_out(&lt, &local_id)));
        s.extend((0..500).map(|_| hand_out(&st, &shared_id)));
    }
    println!(
        "cached hand-out, local tenant:  median {:.1} us, p99 {:.1} us",
        us(median(l.clone())),
        us(p99(l))
    );
    println!(
        "cached hand-out, shared tenant: median {:.1} us, p99 {:.1} us (target: as fast; one team vault read per grant every 5 s at most)",
        us(median(s.clone())),
        us(p99(s))
    );

    // 2. Refreshes, alternating.
    let (mut l, mut s) = (Vec::new(), Vec::new());
    for _ in 0..25 {
        let start = Instant::now();
        lt.refresh(&local_id, &Deadline::default(), &actor())
            .unwrap();
        l.push(start.elapsed());
        let start = Instant::now();
        st.refresh(&shared_id, &Deadline::default(), &actor())
            .unwrap();
        s.push(start.elapsed());
    }
    let (lm, sm) = (median(l), median(s));
    println!(
        "refresh, local tenant: median {:.1} ms; shared tenant: median {:.1} ms; extra {:.1} ms",
        ms(lm),
        ms(sm),
        ms(sm.saturating_sub(lm))
    );

    // 3. 1,000 shared connections (a vault on a memory keychain, to seed quickly).
    let dir = tempfile::tempdir().unwrap();
    let many = Vault::open(dir.path(), Arc::new(SeedKeychain::default())).unwrap();
    join_team(&many, &bao, "reviewer");
    let big = many
        .create_tenant("Big", Some("big"), "", &actor())
        .unwrap();
    many.share_tenant(&big.id, "firm", &actor()).unwrap();
    let bt = many.tenant(&big.id).unwrap();
    let app = app(&bt, "bench-client-secret");
    let seeding = Instant::now();
    for i in 0..1000 {
        bt.store_connection(
            new_conn(&app, &format!("c{i:04}")),
            tokens(
                &format!("at-bench-{i:04}"),
                &format!("rt-bench-{i:04}"),
                None,
            ),
            &actor(),
        )
        .unwrap();
    }
    println!(
        "seeded 1,000 shared connections in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let reviews: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            let found = many.team_review("firm").unwrap();
            assert_eq!(
                found.len(),
                1001,
                "1,000 here and the shared grant of the first vault"
            );
            start.elapsed()
        })
        .collect();
    let filter = ConnectionFilter {
        tenant: Some(big.id.clone()),
        status: None,
    };
    let lists: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(many.connections(&filter).unwrap().len(), 1000);
            start.elapsed()
        })
        .collect();
    println!(
        "listing 1,001 shared connections from the team vault (team review): median {:.1} ms (target <= 500 ms); the member's local list of 1,000: median {:.1} ms",
        ms(median(reviews)),
        ms(median(lists))
    );
}

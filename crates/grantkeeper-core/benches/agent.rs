//! The hand-out agent's serving, against the real Secret Service and oidc-provider: a caller
//! that connects, asks for a valid cached token and hangs up, as `grantkeeper token` does,
//! - one after another (median and p99 per call);
//! - 200 callers at once, started over 20 ms, 25 calls each (all served, time per call, total).
//!
//!   scripts/with-test-session cargo bench -p grantkeeper-core --bench agent

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use grantkeeper_core::agent::{self, AgentClient, Opener, Request};
use grantkeeper_core::oauth::loopback::CancelToken;

fn token(home: &std::path::Path) -> Result<Duration, String> {
    let start = Instant::now();
    let mut client = AgentClient::connect(home).ok_or("no agent")?;
    let req = Request::Token {
        tenant: "acme".into(),
        connection: "main".into(),
        min_valid_ms: 60_000,
        hint: None,
        timeout_ms: None,
    };
    let answer = client
        .call(&req, Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    if !answer.ok {
        return Err(answer.error.unwrap_or_default());
    }
    Ok(start.elapsed())
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6
}

fn main() {
    let runtime = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", runtime.path());
    let idp = Idp::start(&serde_json::json!({}));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_path_buf();
    drop(connected_vault(&home, &idp));
    let open: Arc<Opener> = {
        let home = home.clone();
        Arc::new(move || grantkeeper_core::Vault::open(&home, keychain()))
    };
    let stop = CancelToken::default();
    let server = {
        let (home, stop) = (home.clone(), stop.clone());
        std::thread::spawn(move || agent::serve(&home, open, &stop))
    };
    let ready = Instant::now();
    while token(&home).is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "the agent did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // 1. One caller after another.
    for _ in 0..200 {
        token(&home).unwrap();
    }
    let mut one: Vec<Duration> = (0..3000).map(|_| token(&home).unwrap()).collect();
    one.sort();
    println!(
        "agent, one caller at a time: median {:.0} us, p99 {:.0} us per call over {}",
        quantile(&one, 0.5),
        quantile(&one, 0.99),
        one.len()
    );

    // 2. 200 callers at once, their starts spread over 20 ms.
    let start = Instant::now();
    let results: Vec<Result<Duration, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                let home = &home;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_micros(i * 100));
                    (0..25).map(|_| token(home)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let total = start.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    let mut why = std::collections::BTreeMap::<String, usize>::new();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        *why.entry(e.clone()).or_default() += 1;
    }
    let mut served: Vec<Duration> = results.into_iter().filter_map(Result::ok).collect();
    served.sort();
    println!(
        "agent, 200 callers at once: {} calls served, {failed} not, in {:.0} ms ({:.0} calls/s); per call median {:.0} us, p99 {:.0} us",
        served.len(),
        total.as_secs_f64() * 1e3,
        served.len() as f64 / total.as_secs_f64(),
        quantile(&served, 0.5),
        quantile(&served, 0.99)
    );
    for (e, n) in why {
        println!("  not served: {n} × {e}");
    }
    stop.cancel();
    server.join().unwrap().unwrap();
}

//! Keeping a grant alive with real processes: the `grantkeeper` binary against the real
//! oidc-provider (tests/idp/server.mjs, refresh-token rotation on) and the real Secret Service.
//!
//! - 200 concurrent `token` processes share one refresh request (strict rotation, so a second
//!   request with the same refresh token would be reuse and kill the grant).
//! - 50 refreshes killed with SIGKILL at random moments and at the crash points of
//!   `grantkeeper_core::lifecycle` (after the journal, after the keychain, after the commit):
//!   the next `token` succeeds every time. The IdP models Xero's 30-minute grace for a rotated
//!   refresh token (`refreshTokenReuseGraceSecs`), which the lifecycle relies on for a kill
//!   between sending the request and storing the answer; a test shows that knob at work, and
//!   strict reuse detection once the grace period is over.
//! - A grant revoked behind Grantkeeper's back means re-consent; an unreachable provider is
//!   transient and changes nothing; `revoke` makes the access token inactive at the provider.
//!
//! Each test starts its own IdP and vault, bounds every process it starts, and kills what is
//! left on the way out. The tests run one at a time, so the timings they print mean something.
//!
//!   timeout 900 scripts/with-test-session cargo test -p grantkeeper-cli --test lifecycle_e2e -- --nocapture

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TARGET: &str = "acme/main";

/// One test at a time: they measure, and a 200-process burst needs both cores.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A vault with tenant `acme`, provider app `idp` (discovered from the test IdP, public client
/// `grantkeeper-test`) and connection `acme/main`, consented in headless Chromium.
struct Setup {
    gk: Gk,
    idp: Idp,
    _tmp: tempfile::TempDir,
}

fn setup(idp_config: Value) -> Setup {
    require_test_session();
    let idp = Idp::start(&idp_config);
    let tmp = tempfile::tempdir().unwrap();
    let gk = Gk::new(tmp.path().join("vault"));
    gk.run(&["tenant", "add", "Acme", "--slug", "acme"])
        .expect_ok("tenant add");
    gk.run(&[
        "provider",
        "add",
        "acme/idp",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "grantkeeper-test",
        "--scopes",
        "openid offline_access api:read",
    ])
    .expect_ok("provider add");
    gk.connect_in_browser(TARGET, "idp");
    assert!(
        gk.keychain_refresh_token("main").is_some(),
        "the connection has a refresh token in the keychain"
    );
    Setup { gk, idp, _tmp: tmp }
}

fn token_json(gk: &Gk) -> String {
    let r = gk
        .run(&["token", TARGET, "--format", "json"])
        .expect_ok("token");
    r.json()["access_token"].as_str().unwrap().to_owned()
}

fn last_seq(gk: &Gk) -> i64 {
    gk.history(TARGET)
        .last()
        .and_then(|e| e["seq"].as_i64())
        .unwrap_or(0)
}

fn kinds_after(gk: &Gk, seq: i64) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in gk.history(TARGET) {
        if e["seq"].as_i64().unwrap() > seq {
            *out.entry(e["kind"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    out
}

fn assert_audit_intact(gk: &Gk) {
    let r = gk.run(&["audit", "verify"]);
    assert!(
        r.succeeded(),
        "audit verify: exit {:?}: {}{}",
        r.code,
        r.stdout,
        r.stderr
    );
}

/// A failure is one `grantkeeper: …` line on stderr, nothing on stdout, and the given code.
fn assert_one_line_failure(r: &Run, code: i32) -> String {
    assert_eq!(
        r.code,
        Some(code),
        "exit code; stderr: {}; stdout bytes: {}",
        r.stderr,
        r.stdout.len()
    );
    let lines: Vec<&str> = r.stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", r.stderr);
    assert!(lines[0].starts_with("grantkeeper: "), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing on stdout");
    lines[0].to_owned()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

// ----- 200 concurrent callers, one refresh -----

#[test]
fn two_hundred_concurrent_processes_share_one_refresh() {
    const CALLERS: usize = 200;
    let _serial = serial();
    // Strict rotation: a second refresh with the same refresh token would be reuse.
    let s = setup(json!({}));
    let old = token_json(&s.gk);
    s.gk.expire_access_tokens();
    let seq = last_seq(&s.gk);
    s.idp.reset_stats();

    let started = Instant::now();
    let started_ms = now_ms();
    let mut kids: Vec<Kid> = (0..CALLERS)
        .map(|_| {
            s.gk.spawn(&mut s.gk.command(&["token", TARGET, "--format", "json"]))
        })
        .collect();
    let spawned = started.elapsed();
    let mut finished: Vec<Option<Duration>> = vec![None; CALLERS];
    let deadline = started + Duration::from_secs(120);
    while finished.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "the burst did not finish within 120 s ({} of {CALLERS} done)",
            finished.iter().filter(|f| f.is_some()).count()
        );
        for (kid, done) in kids.iter_mut().zip(finished.iter_mut()) {
            if done.is_none() && kid.child().try_wait().unwrap().is_some() {
                *done = Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let wall = started.elapsed();

    let mut failures = Vec::new();
    let mut tokens = BTreeSet::new();
    for kid in kids {
        let out = kid.into_child().wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let v: Value = serde_json::from_slice(&out.stdout).expect("token --format json");
        tokens.insert(v["access_token"].as_str().unwrap().to_owned());
    }
    assert!(
        failures.is_empty(),
        "{} of {CALLERS} callers failed, first: {}",
        failures.len(),
        failures[0]
    );
    assert_eq!(tokens.len(), 1, "every caller got the same access token");
    assert!(!tokens.contains(&old), "and it is a new one");

    let stats = s.idp.stats();
    assert_eq!(
        stats["token_requests"]["refresh_token"], 1,
        "exactly one refresh request reached the server: {stats}"
    );
    assert_eq!(stats["token_errors"]["refresh_token"], 0, "{stats}");
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");
    assert_eq!(stats["grants_revoked"], 0, "{stats}");

    assert_audit_intact(&s.gk);
    let kinds = kinds_after(&s.gk, seq);
    assert_eq!(kinds.get("refreshed"), Some(&1), "{kinds:?}");
    assert_eq!(kinds.get("handed_out"), Some(&CALLERS), "{kinds:?}");
    assert_eq!(kinds.len(), 2, "nothing else happened: {kinds:?}");

    let refreshed_at =
        s.gk.history(TARGET)
            .iter()
            .find(|e| e["seq"].as_i64().unwrap() > seq && e["kind"] == "refreshed")
            .and_then(|e| e["ts"].as_i64())
            .unwrap();
    let latencies: Vec<f64> = finished.iter().map(|d| ms(d.unwrap())).collect();
    println!(
        "burst: {CALLERS} `token` processes, wall time {:.0} ms (spawning took {:.0} ms); \
         per process exit after median {:.0} ms, max {:.0} ms; the refresh was stored {} ms after \
         the first spawn; the server answered the one refresh request in {} ms",
        ms(wall),
        ms(spawned),
        median(latencies.clone()),
        latencies.iter().copied().fold(0.0, f64::max),
        refreshed_at - started_ms,
        stats["refresh_durations_ms"][0]
    );
}

// ----- kill -9 during refreshes -----

/// Where a kill landed, from what it left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// No refresh request reached the server (starting up, reading the keychain, locking).
    BeforeRequest,
    /// The request reached the server, nothing of the answer was stored: the rotated refresh
    /// token is lost, the keychain's one was consumed (recovered by the grace period).
    RequestInFlight,
    /// The rotated refresh token is in the journal, not yet in the keychain.
    AfterJournal,
    /// The keychain holds the rotated refresh token, the database the old access token.
    AfterKeychain,
    /// The new access token is stored.
    AfterCommit,
    /// The process had already finished: the kill came too late.
    Finished,
}

/// A small xorshift generator: the seed is printed, and `GK_CRASH_SEED` replays a sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kill {
    /// SIGKILL this long after spawning.
    After(Duration),
    /// SIGKILL when the process announces this crash point (it pauses there).
    At(&'static str),
}

#[test]
fn killed_refreshes_never_lose_the_grant() {
    const RUNS: usize = 50;
    const PER_POINT: usize = 6;
    let _serial = serial();
    // Xero-like: a rotated refresh token stays usable for 30 minutes.
    let s = setup(json!({ "refreshTokenReuseGraceSecs": 1800 }));
    let gk = &s.gk;

    // How long a refreshing `token` process lives, spawn to exit.
    let mut refresh_ms = Vec::new();
    for _ in 0..5 {
        gk.expire_access_tokens();
        let r = gk.run(&["token", TARGET]).expect_ok("token (refresh)");
        refresh_ms.push(ms(r.elapsed));
    }
    let fast_ms = ms(gk.run(&["token", TARGET]).expect_ok("token").elapsed);
    let window = median(refresh_ms.clone()).ceil() as u64;
    println!(
        "a refreshing `token` process takes {window} ms (median of {refresh_ms:.0?}); \
         one with a valid cached token {fast_ms:.0} ms; random kills land 0-{window} ms after spawn"
    );

    let seed = std::env::var("GK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (now_ms() as u64) | 1);
    println!("crash schedule seed: {seed} (set GK_CRASH_SEED to replay)");
    let mut rng = Rng(seed);
    let mut plan: Vec<Kill> = Vec::new();
    for point in ["after_journal", "after_keychain", "after_commit"] {
        plan.extend(std::iter::repeat_n(Kill::At(point), PER_POINT));
    }
    while plan.len() < RUNS {
        plan.push(Kill::After(Duration::from_millis(rng.below(window + 1))));
    }
    for i in (1..plan.len()).rev() {
        plan.swap(i, rng.below(i as u64 + 1) as usize);
    }

    s.idp.reset_stats();
    let mut landed: BTreeMap<(&'static str, Landed), usize> = BTreeMap::new();
    let mut recovery_ms = Vec::new();
    for (run, kill) in plan.iter().enumerate() {
        gk.expire_access_tokens();
        assert_eq!(gk.journal_rows(), 0, "run {run}: no journal row left over");
        let refreshes = s.idp.refresh_requests();
        let rt = gk.keychain_refresh_token("main");

        let mut cmd = gk.command(&["token", TARGET]);
        let finished = match *kill {
            Kill::After(delay) => {
                let mut kid = gk.spawn(&mut cmd);
                std::thread::sleep(delay);
                let finished = kid.child().try_wait().unwrap().is_some();
                kid.kill();
                finished
            }
            Kill::At(point) => {
                cmd.env("GRANTKEEPER_TEST_CRASH_AT", point)
                    .env("GRANTKEEPER_TEST_CRASH_PAUSE_MS", "30000");
                let mut kid = gk.spawn(&mut cmd);
                let lines = line_reader(kid.child().stderr.take().unwrap());
                let announced = format!("grantkeeper: crash point {point}");
                let deadline = Instant::now() + Duration::from_secs(20);
                loop {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match lines.recv_timeout(left) {
                        Ok(line) if line == announced => break,
                        Ok(_) => {}
                        Err(_) => {
                            kid.kill();
                            panic!("run {run}: the process never reached crash point {point}");
                        }
                    }
                }
                kid.kill();
                false
            }
        };
        // A request the killed process sent may still be in the server's hands.
        std::thread::sleep(Duration::from_millis(150));

        let committed = gk
            .access_expires_at("main")
            .is_some_and(|t| t > now_ms() + 60_000);
        let journal = gk.journal_rows();
        let rt_now = gk.keychain_refresh_token("main");
        let place = if finished {
            Landed::Finished
        } else if committed {
            Landed::AfterCommit
        } else if rt_now != rt {
            Landed::AfterKeychain
        } else if journal > 0 {
            Landed::AfterJournal
        } else if s.idp.refresh_requests() > refreshes {
            Landed::RequestInFlight
        } else {
            Landed::BeforeRequest
        };
        let mode = match *kill {
            Kill::After(_) => "random delay",
            Kill::At(point) => {
                let expected = match point {
                    "after_journal" => Landed::AfterJournal,
                    "after_keychain" => Landed::AfterKeychain,
                    _ => Landed::AfterCommit,
                };
                assert_eq!(place, expected, "run {run}: the state left by {point}");
                if expected != Landed::AfterCommit {
                    assert_eq!(journal, 1, "run {run}: {point} leaves the journal row");
                }
                "crash point"
            }
        };
        *landed.entry((mode, place)).or_default() += 1;

        // The next caller must get a token, whatever the kill left behind.
        let r = gk.run_with(gk.command(&["token", TARGET]), Duration::from_secs(60));
        assert!(
            r.succeeded() && !r.stdout.trim().is_empty(),
            "run {run} ({kill:?}, landed {place:?}): the next `token` failed: exit {:?}: {}",
            r.code,
            r.stderr
        );
        recovery_ms.push(ms(r.elapsed));
        assert_eq!(gk.journal_rows(), 0, "run {run}: the journal was cleared");
        assert!(
            gk.access_expires_at("main").unwrap() > now_ms() + 60_000,
            "run {run}: a fresh access token is cached"
        );
    }

    let stats = s.idp.stats();
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");
    assert_eq!(stats["grants_revoked"], 0, "{stats}");
    assert_eq!(
        gk.status(TARGET),
        "active",
        "the connection is still active"
    );
    assert_audit_intact(gk);

    println!("{RUNS} kill -9 runs; where the kills landed:");
    for ((mode, place), n) in &landed {
        println!("  {mode:<13} {place:?}: {n}");
    }
    println!(
        "server: {} refresh requests, {} with a consumed refresh token accepted within the grace \
         period, 0 reuse detections; the recovering `token` took median {:.0} ms, max {:.0} ms",
        stats["token_requests"]["refresh_token"],
        stats["refresh_reuse_within_grace"],
        median(recovery_ms.clone()),
        recovery_ms.iter().copied().fold(0.0, f64::max)
    );
}

/// What the crash test relies on, shown at the IdP: within `refreshTokenReuseGraceSecs` a rotated
/// refresh token is accepted again (and rotated again); after it, presenting it is reuse and
/// the provider revokes the grant, which Grantkeeper then reports as needing re-consent.
#[test]
fn the_idp_grace_period_accepts_a_rotated_refresh_token_until_it_ends() {
    const GRACE_SECS: u64 = 2;
    let _serial = serial();
    let s = setup(json!({ "refreshTokenReuseGraceSecs": GRACE_SECS }));
    let rotated = s.gk.keychain_refresh_token("main").unwrap();
    s.gk.run(&["refresh", TARGET]).expect_ok("refresh");
    assert_ne!(
        s.gk.keychain_refresh_token("main").as_deref(),
        Some(rotated.as_str()),
        "the refresh rotated the refresh token"
    );
    let meta = s.idp.metadata();
    let present = || {
        let (status, body) = http(
            "POST",
            meta["token_endpoint"].as_str().unwrap(),
            Some(&[
                ("client_id", "grantkeeper-test"),
                ("grant_type", "refresh_token"),
                ("refresh_token", rotated.trim()),
            ]),
        );
        (status, serde_json::from_str::<Value>(&body).unwrap())
    };
    let (status, body) = present();
    assert_eq!(status, 200, "accepted within the grace period");
    assert!(body["access_token"].is_string() && body["refresh_token"].is_string());
    let stats = s.idp.stats();
    assert_eq!(stats["refresh_reuse_within_grace"], 1, "{stats}");
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");

    std::thread::sleep(Duration::from_secs(GRACE_SECS + 1));
    let (status, body) = present();
    assert_eq!(status, 400);
    assert_eq!(
        body["error"], "invalid_grant",
        "reuse after the grace period"
    );
    let stats = s.idp.stats();
    assert_eq!(stats["refresh_reuse_detected"], 1, "{stats}");
    assert_eq!(stats["grants_revoked"], 1, "the provider revoked the grant");

    s.gk.expire_access_tokens();
    assert_one_line_failure(&s.gk.run(&["token", TARGET]), 5);
    assert_eq!(s.gk.status(TARGET), "needs_reconsent");
}

// ----- failures -----

#[test]
fn a_grant_revoked_at_the_provider_needs_reconsent() {
    let _serial = serial();
    let s = setup(json!({}));
    // Revoke the grant behind Grantkeeper's back, with the refresh token from the keychain.
    let rt = s.gk.keychain_refresh_token("main").unwrap();
    let meta = s.idp.metadata();
    let (status, _) = http(
        "POST",
        meta["revocation_endpoint"].as_str().unwrap(),
        Some(&[
            ("client_id", "grantkeeper-test"),
            ("token", rt.trim()),
            ("token_type_hint", "refresh_token"),
        ]),
    );
    assert_eq!(status, 200, "revoked at the provider");
    s.gk.expire_access_tokens();

    let r = s.gk.run(&["token", TARGET]);
    let line = assert_one_line_failure(&r, 5);
    println!("invalid_grant: {line}");
    assert!(line.contains("invalid_grant"), "{line}");
    assert_eq!(s.gk.status(TARGET), "needs_reconsent");
    let listed = s.gk.run(&["list", "--json"]).expect_ok("list").json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "main"),
        "the connection still exists: {listed}"
    );
    let kinds = kinds_after(&s.gk, 0);
    assert_eq!(kinds.get("refresh_failed"), Some(&1), "{kinds:?}");

    // No further requests while it needs re-consent.
    s.idp.reset_stats();
    let again = s.gk.run(&["token", TARGET]);
    assert_ne!(again.code, Some(0));
    assert_eq!(s.idp.refresh_requests(), 0, "no request for a dead grant");
    assert_audit_intact(&s.gk);
}

#[test]
fn an_unreachable_provider_is_transient() {
    let _serial = serial();
    let mut s = setup(json!({}));
    let rt = s.gk.keychain_refresh_token("main").unwrap();
    s.idp.stop();
    s.gk.expire_access_tokens();

    let r = s.gk.run(&["token", TARGET]);
    let line = assert_one_line_failure(&r, 6);
    println!(
        "provider down: exit 6 after {:.0} ms (with retries): {line}",
        ms(r.elapsed)
    );
    assert_eq!(s.gk.status(TARGET), "active", "still active");
    assert_eq!(
        s.gk.keychain_refresh_token("main").as_deref(),
        Some(rt.as_str()),
        "the keychain's refresh token is unchanged"
    );
    assert_eq!(s.gk.journal_rows(), 0);
    assert_audit_intact(&s.gk);
}

/// `revoke` and `delete` exit 9 when the provider does not confirm the revocation: the tokens
/// are forgotten here, and the one line on stderr says the grant may still be live there.
#[test]
fn a_revocation_the_provider_does_not_confirm_exits_9() {
    let _serial = serial();
    let mut s = setup(json!({}));
    let mut connect = s.gk.command(&[
        "connect",
        "acme/second",
        "--provider",
        "idp",
        "--timeout",
        "90",
    ]);
    connect
        .env("BROWSER", test_browser())
        .env("GK_TEST_BROWSER_ACTION", "approve")
        .env("GK_TEST_BROWSER_TIMEOUT_MS", "30000");
    s.gk.run_with(connect, Duration::from_secs(120))
        .expect_ok("connect a second grant");
    s.idp.stop();

    for (args, target) in [
        (vec!["revoke", TARGET], TARGET),
        (vec!["delete", "acme/second"], "acme/second"),
    ] {
        let r = s.gk.run(&args);
        assert_eq!(r.code, Some(9), "{args:?}: {}", r.stderr);
        let lines: Vec<&str> = r.stderr.trim_end().lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {}", r.stderr);
        assert!(
            lines[0].starts_with(&format!(
                "grantkeeper: {target}: the tokens are forgotten here"
            )) && lines[0].contains("may still be live at the provider")
                && lines[0].contains("cannot reach 127.0.0.1"),
            "{}",
            lines[0]
        );
        assert!(
            r.stdout.contains("not revoked at the provider"),
            "{}",
            r.stdout
        );
        println!("{args:?}: exit 9: {}", lines[0]);
    }
    assert_eq!(s.gk.status(TARGET), "revoked");
    assert!(s.gk.keychain_refresh_token("main").is_none());
    let left = s.gk.run(&["list", "--json"]).expect_ok("list").json();
    assert_eq!(left.as_array().unwrap().len(), 1, "acme/second is deleted");
    let revoked = s.gk.history(TARGET);
    let event = revoked
        .iter()
        .rev()
        .find(|e| e["kind"] == "revoked")
        .unwrap();
    assert_eq!(event["detail"]["at_provider"], false);
    assert_audit_intact(&s.gk);
}

#[test]
fn revoke_makes_the_access_token_inactive_at_the_provider() {
    let _serial = serial();
    let s = setup(json!({}));
    let at =
        s.gk.run(&["token", TARGET])
            .expect_ok("token")
            .stdout
            .trim()
            .to_owned();
    let meta = s.idp.metadata();
    let introspect = |token: &str| -> Value {
        let (status, body) = http(
            "POST",
            meta["introspection_endpoint"].as_str().unwrap(),
            Some(&[("client_id", "grantkeeper-test"), ("token", token)]),
        );
        assert_eq!(status, 200, "introspection");
        serde_json::from_str(&body).unwrap()
    };
    assert_eq!(introspect(&at)["active"], true, "live before revoking");

    let r = s.gk.run(&["revoke", TARGET]).expect_ok("revoke");
    assert!(!r.stdout.contains(&at), "revoke prints no token");
    assert_eq!(introspect(&at)["active"], false, "inactive after revoking");
    assert!(s.idp.stats()["revocations"].as_i64().unwrap() >= 1);

    assert_eq!(s.gk.status(TARGET), "revoked");
    assert!(
        s.gk.keychain_refresh_token("main").is_none(),
        "the refresh token left the keychain"
    );
    let kinds = kinds_after(&s.gk, 0);
    assert_eq!(kinds.get("revoked"), Some(&1), "{kinds:?}");
    let after = s.gk.run(&["token", TARGET]);
    assert_ne!(
        after.code,
        Some(0),
        "a revoked connection hands out nothing"
    );
    assert!(after.stdout.is_empty());
    assert_audit_intact(&s.gk);
}

//! The hand-out agent end to end: `grantkeeper agent run` serves `grantkeeper token` from
//! memory (no keychain read), records the calling program in the history, can be locked and
//! unlocked, and `token` falls back to the keychain when no agent runs; the hand-out policy
//! refuses programs not listed, alone and through the agent, and fails closed when its record
//! is changed outside Grantkeeper. Real IdP, Chromium and Secret Service (run inside
//! `scripts/with-test-session`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_grantkeeper");

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(cli: &Cli) -> Agent {
    let child = Command::new(BIN)
        .args(["agent", "run"])
        .env("GRANTKEEPER_HOME", cli.home())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = Agent(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cli.run(&["agent", "status"]).code != Some(0) {
        assert!(Instant::now() < deadline, "the agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    agent
}

#[test]
fn token_through_the_agent() {
    let mut idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    let direct = cli.token(&["acme/main"]);

    let agent = start_agent(&cli);
    let status = cli.run(&["agent", "status", "--json"]).ok().json();
    assert_eq!(status["locked"], false);
    // The agent hands out the same cached token, and records who asked.
    let via_agent = cli.token(&["acme/main", "--hint", "via-agent"]);
    assert_eq!(via_agent, direct);
    let history = cli
        .run(&["history", "acme/main", "--json", "--limit", "1"])
        .ok()
        .json();
    let last = &history[0];
    assert_eq!(last["kind"], "handed_out");
    assert_eq!(last["actor"], "agent");
    assert_eq!(last["app_hint"], "via-agent");
    // The command line asked the agent for this test: the test is the calling program.
    assert_eq!(last["caller"], this_program());
    // Errors come back with the documented exit codes.
    cli.run(&["token", "acme/nope"]).fails(3, "no connection");
    // Locked: the agent refuses until unlocked from the keychain.
    cli.run(&["agent", "lock"]).ok();
    cli.run(&["token", "acme/main"]).fails(4, "locked");
    cli.run(&["agent", "unlock"]).ok();
    assert_eq!(cli.token(&["acme/main"]), direct);
    // Without the agent, token reads the keychain itself.
    drop(agent);
    assert_eq!(cli.token(&["acme/main"]), direct);
    cli.run(&["agent", "status"]).fails(3, "no agent");
    // A valid cached token needs no network: with the provider gone, token still answers.
    let requests = idp.stats()["token_requests"].clone();
    idp.stop();
    assert_eq!(cli.token(&["acme/main"]), direct);
    let agent = start_agent(&cli);
    assert_eq!(cli.token(&["acme/main"]), direct);
    drop(agent);
    assert_eq!(requests["refresh_token"], 0);
    cli.run(&["audit", "verify"]).ok();
    cli.assert_no_secret_leaked();
}

/// A failure exits with the same code and says the same line whether `token` opened the vault
/// itself or asked the running agent: both sort the core's error by its one `kind()`.
#[test]
fn failures_exit_alike_alone_and_through_the_agent() {
    let mut idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    cli.run(&["connect", "acme/gone", "--provider", "idp"]).ok();
    cli.run(&["revoke", "acme/gone"]).ok();
    let _agent = start_agent(&cli);
    // A runtime folder of its own hides the agent's socket: `token` opens the vault itself.
    let alone_dir = tempfile::tempdir().unwrap();
    let alone = [("XDG_RUNTIME_DIR", alone_dir.path().to_str().unwrap())];

    let same = |args: &[&str], code: i32, expect: &str| {
        let direct = cli.run_with(args, &alone, None);
        direct.fails(code, expect);
        let via_agent = cli.run(args);
        via_agent.fails(code, expect);
        assert_eq!(direct.stderr, via_agent.stderr, "{args:?}");
    };
    // The two paths are really two: the history names who handed the token out.
    let last_actor = |cli: &Cli| {
        cli.run(&["history", "acme/main", "--json", "--limit", "1"])
            .ok()
            .json()[0]["actor"]
            .clone()
    };
    cli.run_with(&["token", "acme/main"], &alone, None).ok();
    assert_eq!(last_actor(&cli), "cli");
    cli.run(&["token", "acme/main"]).ok();
    assert_eq!(last_actor(&cli), "agent");

    same(&["token", "acme/nope"], 3, "no connection");
    same(&["token", "acme/gone"], 5, "revoked");
    // One-hour tokens: asking for two hours of validity refreshes, and the provider is gone.
    idp.stop();
    same(&["token", "acme/main", "--min-valid", "2h"], 6, "refresh");
    cli.run(&["audit", "verify"]).ok();
}

/// This test process as the history names a calling program: `grantkeeper` runs as its child.
fn this_program() -> String {
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    format!("pid {} {}", std::process::id(), exe.display())
}

/// `listed` refuses a program not on the list (alone and through the agent) and records the
/// refusal; a listed program gets its token; a policy row deleted or rolled back in `vault.db`
/// refuses every hand-out until the policy is set again; three refusals raise the flag.
#[test]
fn hand_out_policy_listed_and_tampered() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    let direct = cli.token(&["acme/main"]);
    let alone_dir = tempfile::tempdir().unwrap();
    let alone = [("XDG_RUNTIME_DIR", alone_dir.path().to_str().unwrap())];
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let me = me.to_str().unwrap();
    let refused_events = |cli: &Cli| {
        let h = cli.run(&["history", "acme/main", "--json"]).ok().json();
        h.as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "hand_out_refused")
            .cloned()
            .collect::<Vec<_>>()
    };

    // Not on the list: refused with what to do, and the refusal is an event naming the program.
    cli.run(&[
        "policy",
        "set",
        "acme/main",
        "listed",
        "--allow",
        "/usr/bin/env",
    ])
    .ok();
    let refused = cli.run_with(&["token", "acme/main"], &alone, None);
    refused.fails(5, "is not a listed program");
    assert!(
        refused.stderr.contains(me)
            && refused
                .stderr
                .contains("grantkeeper policy set acme/main listed"),
        "{}",
        refused.stderr
    );
    let events = refused_events(&cli);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["caller"], this_program());
    assert_eq!(events[0]["actor"], "cli");
    // Listed: the token comes, alone and through the agent (which names the same program).
    cli.run(&[
        "policy",
        "set",
        "acme/main",
        "listed",
        "--allow",
        me,
        "--allow",
        "/usr/bin/env",
    ])
    .ok();
    let shown = cli
        .run(&["policy", "show", "acme/main", "--json"])
        .ok()
        .json();
    assert_eq!(shown[0]["mode"], "listed");
    assert_eq!(shown[0]["from"], "connection");
    assert_eq!(
        cli.run_with(&["token", "acme/main"], &alone, None)
            .ok()
            .stdout
            .trim(),
        direct
    );
    let agent = start_agent(&cli);
    assert_eq!(cli.token(&["acme/main"]), direct);
    // The running agent follows a change made by another process at its next hand-out.
    cli.run(&["policy", "set", "acme", "listed", "--allow", "/usr/bin/env"])
        .ok();
    cli.run(&["policy", "set", "acme/main", "default"]).ok();
    cli.run(&["token", "acme/main"])
        .fails(5, "is not a listed program");
    let events = refused_events(&cli);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["actor"], "agent");
    assert_eq!(events[0]["caller"], this_program());
    drop(agent);

    // Three refusals within 24 hours raise the flag, which explains itself.
    cli.run_with(&["token", "acme/main"], &alone, None)
        .fails(5, "not a listed program");
    let flags = cli
        .run(&["anomalies", "--kind", "refused_hand_outs", "--json"])
        .ok()
        .json();
    assert_eq!(flags.as_array().unwrap().len(), 1, "{flags}");
    assert!(flags[0]["explanation"]
        .as_str()
        .unwrap()
        .starts_with("The hand-out policy refused 3 hand-outs in the last 24 hours"));

    // Changed outside Grantkeeper: each way fails closed, never a silent `any`.
    let db = rusqlite::Connection::open(cli.home().join("vault.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (i64, String, Vec<u8>) {
        db.query_row(
            "SELECT version, body, mac FROM hand_out_policies",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let put = |db: &rusqlite::Connection, (v, body, mac): &(i64, String, Vec<u8>)| {
        db.execute(
            "UPDATE hand_out_policies SET version = ?1, body = ?2, mac = ?3",
            rusqlite::params![v, body, mac],
        )
        .unwrap();
    };
    cli.run(&["policy", "set", "acme", "any"]).ok();
    let loose = row(&db);
    cli.run(&["policy", "set", "acme", "listed", "--allow", "/usr/bin/env"])
        .ok();
    let strict = row(&db);
    let tampered = |why: &str| {
        let run = cli.run_with(&["token", "acme/main"], &alone, None);
        run.fails(7, "was changed outside Grantkeeper");
        assert!(
            run.stderr.contains(why) && run.stderr.contains("grantkeeper policy set acme"),
            "{}",
            run.stderr
        );
        cli.run(&["policy", "show", "acme"]).fails(7, why);
    };
    // Edited: the default loosened in place.
    put(
        &db,
        &(
            strict.0,
            strict.1.replace("listed", "any"),
            strict.2.clone(),
        ),
    );
    tampered("does not authenticate");
    // Replaced with the older, looser record.
    put(&db, &loose);
    tampered("an older record was put back");
    // Deleted.
    db.execute("DELETE FROM hand_out_policies", []).unwrap();
    tampered("its record was deleted");
    // Through the agent too (a new agent learns the version from the keychain).
    let agent = start_agent(&cli);
    cli.run(&["token", "acme/main"])
        .fails(7, "was changed outside Grantkeeper");
    drop(agent);
    // Setting it again restores hand-outs.
    cli.run(&["policy", "set", "acme", "listed", "--allow", me])
        .ok();
    assert_eq!(
        cli.run_with(&["token", "acme/main"], &alone, None)
            .ok()
            .stdout
            .trim(),
        direct
    );
    let changes = cli
        .run(&["history", "--json", "--limit", "200"])
        .ok()
        .json();
    let changes: Vec<_> = changes
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "policy_changed")
        .collect();
    assert_eq!(changes.len(), 7, "every change is an event");
    cli.run(&["audit", "verify"]).ok();
    cli.assert_no_secret_leaked();
}

//! The hand-out agent end to end: `grantkeeper agent run` serves `grantkeeper token` from
//! memory (no keychain read), records the calling program in the history, can be locked and
//! unlocked, and `token` falls back to the keychain when no agent runs. Real IdP, Chromium
//! and Secret Service (run inside `scripts/with-test-session`).

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
    let caller = last["caller"].as_str().unwrap();
    assert!(
        caller.starts_with("pid ") && caller.contains("grantkeeper"),
        "{caller}"
    );
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

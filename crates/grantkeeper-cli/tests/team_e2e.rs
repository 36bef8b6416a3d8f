//! Team vaults end to end: two members (separate vault folders, so separate keychain entries)
//! share a tenant through a real `bao server -dev`, the real test IdP with strict refresh-token
//! rotation, and the real CLI.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{now_ms, require_test_session, Bao, Gk, Idp, Kid, MOUNT};

const TARGET: &str = "acme/crm";

/// A member: a vault folder of its own, and the CLI on it.
struct Member {
    gk: Gk,
    _tmp: tempfile::TempDir,
}

impl Member {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Self {
            gk: Gk::new(tmp.path().join("vault")),
            _tmp: tmp,
        }
    }

    fn run(&self, args: &[&str]) -> support::Run {
        self.gk.run(args)
    }

    fn run_fed(&self, args: &[&str], stdin: &str) -> support::Run {
        self.gk
            .run_fed(self.gk.command(args), Some(stdin), Duration::from_secs(60))
    }

    /// `team connect` to the team `firm` with `token`.
    fn connect_team(&self, bao: &Bao, token: &str) -> Value {
        self.run_fed(
            &[
                "team",
                "connect",
                &bao.url,
                "--mount",
                MOUNT,
                "--name",
                "firm",
                "--token-stdin",
                "--json",
            ],
            &format!("{token}\n"),
        )
        .expect_ok("team connect")
        .json()
    }

    fn token(&self) -> String {
        self.run(&["token", TARGET, "--format", "json"])
            .expect_ok("token")
            .json()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn kinds_after(&self, seq: i64) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for e in self.gk.history(TARGET) {
            if e["seq"].as_i64().unwrap() > seq {
                *out.entry(e["kind"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        out
    }

    fn last_seq(&self) -> i64 {
        self.gk
            .history(TARGET)
            .last()
            .and_then(|e| e["seq"].as_i64())
            .unwrap_or(0)
    }
}

/// A member's policy written by hand: KV v2 data and metadata under each tenant's folder, no
/// `detailed-metadata` (reviews then read each grant's metadata).
fn tenants_policy(tenants: &[&str]) -> String {
    let mut hcl = String::new();
    let kinds = ["data", "metadata"];
    for t in tenants {
        for kind in kinds {
            hcl.push_str(&format!(
                "path \"{MOUNT}/{kind}/tenants/{t}/*\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }}\n"
            ));
        }
    }
    if hcl.is_empty() {
        hcl.push_str(&format!(
            "path \"{MOUNT}/data/nothing\" {{ capabilities = [\"deny\"] }}\n"
        ));
    }
    hcl
}

/// What every member may do: publish their key, read the others', list the shared tenants.
const BASE_POLICY: &str = r#"
path "grantkeeper/data/members/*" { capabilities = ["create", "read", "update"] }
path "grantkeeper/metadata/members/*" { capabilities = ["read", "list"] }
path "grantkeeper/metadata/tenants/" { capabilities = ["list"] }
"#;

/// Moves the team record's access-token expiry to a minute ago, as root (a cached token that
/// has expired for everyone).
fn expire_in_team_vault(bao: &Bao, tenant: &str, connection: &str) {
    let path = format!("tenants/{tenant}/grants/{connection}");
    let got: Value = serde_json::from_str(&bao.cli(
        &[
            "kv",
            "get",
            "-format=json",
            &format!("-mount={MOUNT}"),
            &path,
        ],
        None,
    ))
    .unwrap();
    let mut data = got["data"]["data"].clone();
    data["access_expires_at"] = json!(now_ms() - 60_000);
    bao.cli(
        &["kv", "put", &format!("-mount={MOUNT}"), &path, "-"],
        Some(&data.to_string()),
    );
}

/// `(seq, kind)` of every event a member appended to the team's history of a tenant, in
/// order; fails on an event pushed twice.
fn team_history(bao: &Bao, tenant: &str, member: &str) -> Vec<(i64, String)> {
    let mut events: Vec<(i64, String)> = bao
        .dump()
        .into_iter()
        .filter(|(p, _)| {
            p.starts_with(&format!("tenants/{tenant}/history/{member}/")) && !p.ends_with("/head")
        })
        .flat_map(|(_, text)| {
            let data: Value = serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .next()
                .unwrap()
                .unwrap();
            data["data"]["data"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["seq"].as_i64().unwrap(),
                        e["kind"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    events.sort();
    let mut unique = events.clone();
    unique.dedup();
    assert_eq!(
        events.len(),
        unique.len(),
        "an event pushed twice: {events:?}"
    );
    events
}

/// Every hand-out in a member's own history is in the team's history, once.
fn hand_outs_all_in_team(bao: &Bao, m: &Member, tenant: &str, name: &str) -> usize {
    let in_team = team_history(bao, tenant, name);
    let mine: Vec<i64> =
        m.gk.history(TARGET)
            .iter()
            .filter(|e| e["kind"] == "handed_out")
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
    for seq in &mine {
        assert!(
            in_team.contains(&(*seq, "handed_out".to_owned())),
            "{name}'s hand-out {seq} is in the team history"
        );
    }
    mine.len()
}

/// The first file under `dir` whose bytes contain `needle`.
fn file_containing(dir: &std::path::Path, needle: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if let Some(found) = file_containing(&path, needle) {
                return Some(found);
            }
        } else if std::fs::read(&path)
            .unwrap_or_default()
            .windows(needle.len())
            .any(|w| w == needle.as_bytes())
        {
            return Some(path);
        }
    }
    None
}

fn ids(m: &Member) -> (String, String) {
    m.gk.db()
        .query_row(
            "SELECT tenant_id, id FROM connections WHERE name = 'crm'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// One caller of the burst: which member, what it runs, and whether it hands out a token.
struct Caller {
    member: usize,
    kind: &'static str,
    kid: Kid,
}

fn spawn_caller(m: &Member, kind: &'static str) -> Kid {
    let args: Vec<&str> = match kind {
        "token" => vec!["token", TARGET, "--format", "json"],
        "token-min-valid" => vec!["token", TARGET, "--min-valid", "10m"],
        "exec" => vec![
            "exec",
            TARGET,
            "--env",
            "GK_T",
            "--",
            "sh",
            "-c",
            "test -n \"$GK_T\" && echo ok",
        ],
        _ => vec!["show", TARGET, "--json"],
    };
    m.gk.spawn(&mut m.gk.command(&args))
}

#[test]
fn a_shared_grant_is_refreshed_once_for_the_whole_team() {
    require_test_session();
    // Strict rotation: a refresh token presented twice is reuse, and kills the grant.
    let idp = Idp::start(&json!({}));
    let mut bao = Bao::start();
    let (a, b) = (Member::new(), Member::new());

    // A signs in through the browser as usual, in a tenant of their own.
    a.run(&["tenant", "add", "Acme", "--slug", "acme"])
        .expect_ok("tenant add");
    a.run(&[
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
    a.gk.connect_in_browser(TARGET, "idp");
    let (tenant, connection) = ids(&a);
    let first_refresh_token =
        a.gk.keychain_refresh_token("crm")
            .expect("A's refresh token");
    let first_access = a.token();

    // The team: a policy per tenant path; each member's token carries theirs.
    bao.policy("base", BASE_POLICY);
    let alice = bao.token("alice", &["base", "alice-tenants"], "2h");
    let bob = bao.token("bob", &["base", "bob-tenants"], "2h");
    assert_eq!(a.connect_team(&bao, &alice)["member"], "alice");
    assert_eq!(b.connect_team(&bao, &bob)["member"], "bob");
    // Alice's policy is the template Grantkeeper prints; Bob's leaves out detailed-metadata.
    let template = a
        .run(&["team", "policy", "acme", "--name", "firm"])
        .expect_ok("team policy")
        .stdout;
    assert!(
        template.contains(&format!("{MOUNT}/data/tenants/{tenant}/*")),
        "{template}"
    );
    bao.policy("alice-tenants", &template);
    bao.policy("bob-tenants", &tenants_policy(&[&tenant]));

    let shared = a
        .run(&["tenant", "share", "acme", "--team", "firm", "--json"])
        .expect_ok("tenant share")
        .json();
    assert_eq!(shared["connections"], 1, "{shared}");
    assert_eq!(shared["members"], json!(["alice", "bob"]), "{shared}");
    assert_eq!(
        a.gk.keychain_refresh_token("crm"),
        None,
        "the refresh token left A's keychain for the team vault"
    );

    // B joins and gets a token without consenting.
    b.run(&["tenant", "join", "acme", "--team", "firm"])
        .expect_ok("tenant join");
    assert_eq!(
        ids(&b),
        (tenant.clone(), connection.clone()),
        "the same tenant and grant"
    );
    assert_eq!(
        b.token(),
        first_access,
        "B is handed the grant's current token"
    );
    let status = b
        .run(&["team", "status", "--json"])
        .expect_ok("team status")
        .json();
    assert_eq!(status[0]["reachable"], true, "{status}");
    assert_eq!(status[0]["tenants"], json!(["acme"]), "{status}");
    // What the window shows for the tenant: shared through firm with whom, the vault answering.
    let sharing = &status[0]["shared"][0];
    assert_eq!(sharing["tenant_id"], tenant.as_str(), "{status}");
    assert_eq!(sharing["members"], json!(["alice", "bob"]), "{status}");
    assert_eq!(sharing["member"], "bob", "{status}");
    assert_eq!(sharing["reachable"], true, "{status}");

    late_joiner(&a, &b, &bao, &tenant);
    oidc_member(&a, &bao, &idp, &tenant);

    // Expired everywhere: in both members' caches and in the team vault.
    a.gk.expire_access_tokens();
    b.gk.expire_access_tokens();
    expire_in_team_vault(&bao, &tenant, &connection);
    let seqs = [a.last_seq(), b.last_seq()];
    idp.reset_stats();

    // 200 callers split across A and B, started staggered, mixing hand-outs and reads.
    const CALLERS: usize = 200;
    let kinds = ["token", "token", "exec", "token-min-valid", "show"];
    let members = [&a, &b];
    let started = Instant::now();
    let mut callers: Vec<Caller> = (0..CALLERS)
        .map(|i| {
            let (member, kind) = (i % 2, kinds[(i / 2) % kinds.len()]);
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis((i % 7) as u64));
            }
            Caller {
                member,
                kind,
                kid: spawn_caller(members[member], kind),
            }
        })
        .collect();
    let deadline = started + Duration::from_secs(180);
    let mut tokens = BTreeSet::new();
    let mut failures = Vec::new();
    let mut handed = [0usize; 2];
    for c in callers.iter_mut() {
        while c.kid.child().try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "the burst did not finish within 180 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let wall = started.elapsed();
    for c in callers {
        let out = c.kid.into_child().wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "{} {}: {}",
                c.member,
                c.kind,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match c.kind {
            "token" => {
                tokens.insert(
                    serde_json::from_str::<Value>(&stdout).unwrap()["access_token"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            "token-min-valid" => {
                tokens.insert(stdout);
            }
            "exec" => assert_eq!(stdout, "ok"),
            _ => {}
        }
        if c.kind != "show" {
            handed[c.member] += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CALLERS} callers failed, first: {}",
        failures.len(),
        failures[0]
    );
    assert_eq!(
        tokens.len(),
        1,
        "every caller of both members got the same token"
    );
    assert!(!tokens.contains(&first_access), "a new one");
    let stats = idp.stats();
    eprintln!("{CALLERS} callers across 2 members: {wall:?}; IdP: {stats}");
    assert_eq!(
        stats["token_requests"]["refresh_token"], 1,
        "exactly one refresh at the IdP: {stats}"
    );
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");
    assert_eq!(stats["token_errors"]["refresh_token"], 0, "{stats}");

    // Every hand-out is in its member's history; one refresh between them.
    let (ka, kb) = (a.kinds_after(seqs[0]), b.kinds_after(seqs[1]));
    assert_eq!(
        ka.get("handed_out").copied().unwrap_or(0),
        handed[0],
        "A: {ka:?}"
    );
    assert_eq!(
        kb.get("handed_out").copied().unwrap_or(0),
        handed[1],
        "B: {kb:?}"
    );
    assert_eq!(
        ka.get("refreshed").copied().unwrap_or(0) + kb.get("refreshed").copied().unwrap_or(0),
        1,
        "one refresh in the team: A {ka:?}, B {kb:?}"
    );
    for m in members {
        m.run(&["audit", "verify"]).expect_ok("audit verify");
    }

    // What OpenBao holds, read back with the root token: no token in plaintext.
    let new_access = tokens.into_iter().next().unwrap();
    let dump = bao.dump();
    assert!(
        dump.iter().any(|(p, _)| p.ends_with(&connection)),
        "the grant is there: {:?}",
        dump.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    for (path, text) in &dump {
        for (what, secret) in [
            ("refresh token", &first_refresh_token),
            ("access token", &first_access),
            ("new access token", &new_access),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "the {what} in plaintext at {path}"
            );
        }
    }
    // Nor do the members' vault folders, and the OpenBao tokens stay in the keychains.
    for (m, login) in [(&a, &alice), (&b, &bob)] {
        for (what, secret) in [
            ("refresh token", first_refresh_token.as_str()),
            ("access token", first_access.as_str()),
            ("new access token", new_access.as_str()),
            ("OpenBao token", login.as_str()),
        ] {
            if let Some(file) = file_containing(&m.gk.home, secret) {
                panic!("the {what} in plaintext in {}", file.display());
            }
        }
    }
    let record: Value = serde_json::from_str(
        bao.cli(
            &[
                "kv",
                "get",
                "-format=json",
                &format!("-mount={MOUNT}"),
                &format!("tenants/{tenant}/grants/{connection}"),
            ],
            None,
        )
        .as_str(),
    )
    .unwrap();
    let record = &record["data"]["data"];
    assert!(
        record["refresh_token"]
            .as_str()
            .is_some_and(|s| s.len() > 60),
        "a sealed refresh token: {record}"
    );
    assert_eq!(record["lease"], Value::Null, "the lease was released");
    let meta = bao.cli(
        &[
            "kv",
            "metadata",
            "get",
            "-format=json",
            &format!("-mount={MOUNT}"),
            &format!("tenants/{tenant}/grants/{connection}"),
        ],
        None,
    );
    let meta: Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(
        meta["data"]["custom_metadata"]["status"], "active",
        "{meta}"
    );
    assert_eq!(meta["data"]["custom_metadata"]["name"], "crm", "{meta}");

    // The team's history holds every hand-out of both members (pushed on their own as the
    // commands ended, the rest by team sync); the review needs no secret.
    for (m, name) in [(&a, "alice"), (&b, "bob")] {
        m.run(&["team", "sync", "--json"]).expect_ok("team sync");
        assert!(hand_outs_all_in_team(&bao, m, &tenant, name) > 0);
        assert_eq!(
            m.run(&["team", "sync", "--json"])
                .expect_ok("team sync")
                .json()["history_events_appended"],
            0,
            "nothing twice"
        );
    }
    // A's policy lists a folder's metadata in one request (OpenBao's detailed-metadata), B's
    // reads each grant's: both see the same.
    let review = a
        .run(&["team", "review", "--name", "firm", "--json"])
        .expect_ok("team review")
        .json();
    assert_eq!(review.as_array().unwrap().len(), 1, "{review}");
    assert_eq!(review[0]["metadata"]["status"], "active", "{review}");
    assert!(
        ["alice", "bob"].contains(&review[0]["metadata"]["refreshed_by"].as_str().unwrap()),
        "{review}"
    );
    let by_b = b
        .run(&["team", "review", "--name", "firm", "--json"])
        .expect_ok("team review")
        .json();
    assert_eq!(by_b, review, "the same review without detailed-metadata");

    offline_then_back(&a, &b, &mut bao, &idp);
    history_catches_up(&a, &b, &bao, &tenant);
    access_ends(&a, &b, &bao, &tenant, &bob);

    // A stopped server (connection refused) is reported as unreachable, not as an error of ours.
    bao.stop();
    let status = a
        .run(&["team", "status", "--json"])
        .expect_ok("team status")
        .json();
    assert_eq!(status[0]["reachable"], false, "{status}");
    let sharing = &status[0]["shared"][0];
    assert_eq!(sharing["reachable"], false, "{status}");
    assert_eq!(sharing["members"], json!([]), "{status}");
    assert!(
        sharing["problem"]
            .as_str()
            .unwrap()
            .contains("the team vault is unreachable"),
        "{status}"
    );
    assert!(
        status[0]["problem"]
            .as_str()
            .unwrap()
            .contains("the team vault is unreachable"),
        "{status}"
    );
}

/// The team vault sealed (unavailable): cached tokens are still handed out, a refresh fails
/// clearly and loses nothing; unsealed, the refresh goes through and the teammate sees it.
fn offline_then_back(a: &Member, b: &Member, bao: &mut Bao, idp: &Idp) {
    let cached = a.token();
    bao.seal();
    assert_eq!(
        a.token(),
        cached,
        "A's cached token while the team vault is sealed"
    );
    assert_eq!(b.token(), cached, "B's too");
    let before = idp.refresh_requests();
    a.run(&["refresh", TARGET])
        .fails(6, "the team vault is unreachable");
    assert_eq!(
        idp.refresh_requests(),
        before,
        "no refresh reached the provider"
    );
    bao.unseal();
    a.run(&["refresh", TARGET])
        .expect_ok("refresh once the team vault is back");
    assert_eq!(idp.refresh_requests(), before + 1);
    let fresh = a.token();
    assert_ne!(fresh, cached);
    assert_eq!(b.token(), fresh, "B syncs A's refresh");
    assert_eq!(idp.stats()["refresh_reuse_detected"], 0);

    // The team vault goes away while the provider rotates the refresh token: the new one is
    // kept in A's keychain, not lost, and A's next refresh moves it to the team vault.
    let stalled = idp.stats()["token_requests_stalled"].as_i64().unwrap();
    stall(idp, 3000);
    let mut refresh = a.gk.spawn(&mut a.gk.command(&["refresh", TARGET]));
    let until = Instant::now() + Duration::from_secs(30);
    while idp.stats()["token_requests_stalled"].as_i64().unwrap() == stalled {
        assert!(
            Instant::now() < until,
            "the refresh never reached the provider"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    bao.seal();
    refresh.wait_for(Duration::from_secs(60), "refresh");
    let out = refresh.into_child().wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("the team vault is unreachable"), "{stderr}");
    stall(idp, 0);
    assert_eq!(
        idp.refresh_requests(),
        before + 2,
        "the provider did rotate"
    );
    assert!(
        a.gk.keychain_refresh_token("crm").is_some(),
        "the new refresh token is kept in A's keychain"
    );
    bao.unseal();
    a.run(&["refresh", TARGET])
        .expect_ok("refresh with the kept refresh token");
    assert_eq!(
        a.gk.keychain_refresh_token("crm"),
        None,
        "moved to the team vault"
    );
    let stats = idp.stats();
    assert_eq!(stats["refresh_reuse_detected"], 0, "{stats}");
    assert_eq!(stats["token_errors"]["refresh_token"], 0, "{stats}");
    assert_eq!(b.token(), a.token(), "B uses A's result");
}

/// A member who connects after the tenant was shared is given its key by a teammate who holds
/// it, without sharing it again; then joins and uses the grant.
fn late_joiner(a: &Member, b: &Member, bao: &Bao, tenant: &str) {
    let c = Member::new();
    bao.policy("carol-tenants", &tenants_policy(&[tenant]));
    let carol = bao.token("carol", &["base", "carol-tenants"], "2h");
    assert_eq!(c.connect_team(bao, &carol)["member"], "carol");
    c.run(&["tenant", "join", "acme", "--team", "firm"]).fails(
        2,
        "ask a teammate who uses it to run grantkeeper tenant share acme --member carol",
    );
    a.run(&["tenant", "share", "acme", "--member", "dave"])
        .fails(2, "the team has no member 'dave' yet");
    // B (who joined) can give it as well as A (who shared): either holds the key.
    let given = b
        .run(&["tenant", "share", "acme", "--member", "carol", "--json"])
        .expect_ok("tenant share --member")
        .json();
    assert_eq!(
        given["members"],
        json!(["alice", "bob", "carol"]),
        "{given}"
    );
    c.run(&["tenant", "join", "acme", "--team", "firm"])
        .expect_ok("tenant join after being given the key");
    assert_eq!(
        c.token(),
        a.token(),
        "C is handed the grant's current token"
    );
}

/// A member logs in to the team vault in the browser: OpenBao's OIDC auth method against the
/// test IdP (its confidential client; the role allows the loopback redirect on any port).
fn oidc_member(a: &Member, bao: &Bao, idp: &Idp, tenant: &str) {
    bao.cli(&["auth", "enable", "oidc"], None);
    bao.cli(
        &[
            "write",
            "auth/oidc/config",
            &format!("oidc_discovery_url={}", idp.issuer),
            "oidc_client_id=grantkeeper-confidential",
            "oidc_client_secret=confidential-test-secret",
            "default_role=member",
        ],
        None,
    );
    bao.policy("erin-tenants", &tenants_policy(&[tenant]));
    bao.cli(
        &[
            "write",
            "auth/oidc/role/member",
            "role_type=oidc",
            "user_claim=sub",
            "allowed_redirect_uris=http://127.0.0.1/callback",
            "token_policies=base,erin-tenants",
            "token_ttl=1h",
        ],
        None,
    );
    let e = Member::new();
    let mut cmd = e.gk.command(&[
        "team",
        "connect",
        &bao.url,
        "--mount",
        MOUNT,
        "--name",
        "firm",
        "--oidc",
        "--member",
        "erin",
        "--timeout",
        "90",
        "--json",
    ]);
    cmd.env("BROWSER", support::test_browser())
        .env("GK_TEST_BROWSER_ACTION", "approve")
        .env("GK_TEST_BROWSER_TIMEOUT_MS", "30000");
    let connected =
        e.gk.run_with(cmd, Duration::from_secs(120))
            .expect_ok("team connect --oidc")
            .json();
    assert_eq!(connected["member"], "erin", "{connected}");
    assert_eq!(connected["reachable"], true, "{connected}");
    assert!(
        connected["login_ttl_secs"].as_u64().unwrap() > 3000,
        "{connected}"
    );
    // The token works: Erin is given the tenant's key, joins, and is handed the grant's token.
    a.run(&["tenant", "share", "acme", "--member", "erin"])
        .expect_ok("tenant share --member erin");
    e.run(&["tenant", "join", "acme", "--team", "firm"])
        .expect_ok("tenant join with the OIDC login");
    assert_eq!(e.token(), a.token());
    // Kept in the keychain and renewed like the other logins.
    let synced = e
        .run(&["team", "sync", "--json"])
        .expect_ok("team sync")
        .json();
    assert_eq!(synced["logins_renewed"], 1, "{synced}");
}

/// Without `team sync`: hand-outs made while the team vault is away reach the team history
/// once it is back, each once, pushed in a batch as a later command ends.
fn history_catches_up(a: &Member, b: &Member, bao: &Bao, tenant: &str) {
    bao.seal();
    let since = [a.last_seq(), b.last_seq()];
    for _ in 0..3 {
        a.token();
        b.token();
    }
    bao.unseal();
    let unpushed = |m: &Member, name: &str, since: i64| -> Vec<i64> {
        let in_team = team_history(bao, tenant, name);
        m.gk.history(TARGET)
            .iter()
            .filter(|e| e["kind"] == "handed_out" && e["seq"].as_i64().unwrap() > since)
            .map(|e| e["seq"].as_i64().unwrap())
            .filter(|seq| !in_team.contains(&(*seq, "handed_out".to_owned())))
            .collect()
    };
    assert_eq!(
        unpushed(a, "alice", since[0]).len(),
        3,
        "not pushed while sealed"
    );
    assert_eq!(
        unpushed(b, "bob", since[1]).len(),
        3,
        "not pushed while sealed"
    );
    // Past the push interval (5 s since the last attempt), the next command pushes them.
    std::thread::sleep(Duration::from_millis(5_100));
    a.token();
    b.token();
    for (m, name, since) in [(a, "alice", since[0]), (b, "bob", since[1])] {
        assert_eq!(unpushed(m, name, since), Vec::<i64>::new(), "{name}");
        hand_outs_all_in_team(bao, m, tenant, name);
    }
}

/// Holds every token request at the IdP for `ms` (0: no more).
fn stall(idp: &Idp, ms: u64) {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "10",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data-binary",
        ])
        .arg(format!("{{\"ms\": {ms}}}"))
        .arg(format!("{}/__test/stall-token", idp.issuer))
        .output()
        .unwrap();
    assert!(out.status.success(), "stall-token");
}

/// Policy removal, an ended login, and a revocation reach the teammate at their next call.
fn access_ends(a: &Member, b: &Member, bao: &Bao, tenant: &str, bob: &str) {
    bao.policy("bob-tenants", &tenants_policy(&[]));
    let refused = b.run(&["token", TARGET]);
    refused.fails(5, "not shared with you");
    assert!(
        refused.stdout.is_empty(),
        "and nothing else: {:?}",
        refused.stdout
    );

    // B's login is revoked by an admin, then a short one expires: a clear re-login message.
    bao.policy("bob-tenants", &tenants_policy(&[tenant]));
    bao.cli(&["token", "revoke", bob], None);
    b.run(&["token", TARGET])
        .fails(5, "log in again: grantkeeper team login");
    let login = |token: &str| {
        b.run_fed(
            &["team", "login", "--name", "firm", "--token-stdin"],
            &format!("{token}\n"),
        )
        .expect_ok("team login");
    };
    login(&bao.token("bob", &["base", "bob-tenants"], "4s"));
    b.token();
    std::thread::sleep(Duration::from_secs(5));
    b.run(&["token", TARGET])
        .fails(5, "log in again: grantkeeper team login");
    login(&bao.token("bob", &["base", "bob-tenants"], "2h"));
    b.token();

    a.run(&["revoke", TARGET]).expect_ok("revoke");
    b.run(&["token", TARGET]).fails(5, "revoked");
}

#[test]
fn a_ci_machine_connects_with_approle_and_bad_logins_say_why() {
    require_test_session();
    let bao = Bao::start();
    bao.policy("base", BASE_POLICY);
    bao.cli(&["auth", "enable", "approle"], None);
    bao.cli(
        &[
            "write",
            "auth/approle/role/ci",
            "token_policies=default,base",
            "token_ttl=1h",
            "token_max_ttl=4h",
        ],
        None,
    );
    let role: Value = serde_json::from_str(&bao.cli(
        &["read", "-format=json", "auth/approle/role/ci/role-id"],
        None,
    ))
    .unwrap();
    let role_id = role["data"]["role_id"].as_str().unwrap().to_owned();
    let secret: Value = serde_json::from_str(&bao.cli(
        &[
            "write",
            "-format=json",
            "-f",
            "auth/approle/role/ci/secret-id",
        ],
        None,
    ))
    .unwrap();
    let secret_id = secret["data"]["secret_id"].as_str().unwrap().to_owned();

    let ci = Member::new();
    let args = |role: &str| -> Vec<String> {
        [
            "team",
            "connect",
            &bao.url,
            "--mount",
            MOUNT,
            "--name",
            "firm",
            "--approle",
            role,
            "--secret-id-stdin",
            "--member",
            "ci-runner",
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |a: &[String], stdin: &str| {
        ci.run_fed(&a.iter().map(String::as_str).collect::<Vec<_>>(), stdin)
    };
    run(&args(&role_id), "not-the-secret-id\n").fails(5, "the team vault refused the request");
    let connected = run(&args(&role_id), &format!("{secret_id}\n"))
        .expect_ok("approle connect")
        .json();
    assert_eq!(connected["member"], "ci-runner", "{connected}");
    assert_eq!(connected["reachable"], true, "{connected}");
    assert!(
        connected["login_ttl_secs"].as_u64().unwrap() > 3000,
        "{connected}"
    );
    // The AppRole token is renewable: team sync renews it.
    let synced = ci
        .run(&["team", "sync", "--json"])
        .expect_ok("team sync")
        .json();
    assert_eq!(synced["logins_renewed"], 1, "{synced}");
    // The member's key is published for whoever shares next.
    let member: Value = serde_json::from_str(&bao.cli(
        &[
            "kv",
            "get",
            "-format=json",
            &format!("-mount={MOUNT}"),
            "members/ci-runner",
        ],
        None,
    ))
    .unwrap();
    assert!(
        member["data"]["data"]["public_key"]
            .as_str()
            .is_some_and(|k| k.len() > 80),
        "{member}"
    );
    // The secret id is not in the vault folder.
    assert!(file_containing(&ci.gk.home, &secret_id).is_none());

    // Nothing listening: unreachable, exit 6; a token the server does not know: log in again.
    let closed = format!("http://127.0.0.1:{}", support::closed_port());
    ci.run_fed(
        &[
            "team",
            "connect",
            &closed,
            "--mount",
            MOUNT,
            "--name",
            "other",
            "--token-stdin",
        ],
        "x\n",
    )
    .fails(6, "the team vault is unreachable");
    ci.run_fed(
        &[
            "team",
            "connect",
            &bao.url,
            "--mount",
            MOUNT,
            "--name",
            "other",
            "--token-stdin",
        ],
        "not-a-token\n",
    )
    .fails(5, "log in again");
    ci.run(&[
        "team", "connect", &bao.url, "--mount", MOUNT, "--name", "other",
    ])
    .fails(2, "--token-stdin");
}

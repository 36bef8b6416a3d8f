//! The real `grantkeeper` binary end to end: against the test identity provider
//! (oidc-provider on 127.0.0.1), with headless Chromium as `$BROWSER` playing the user, and the
//! real Secret Service of `scripts/with-test-session`.
//!
//! Every failure must be one line `grantkeeper: …` on stderr with its documented exit code and
//! no panic, and no token or secret may appear in any output except `token`'s own stdout: each
//! test collects the tokens it was handed (and the keychain's secrets) and scans the output of
//! every run for them at the end.
//!
//!   scripts/with-test-session cargo test -p grantkeeper-cli --test cli_e2e

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use support::now_ms;
use support::{closed_port, keychain_secrets, Cli, Idp};

/// A JWT signed by nobody, for offline decoding.
fn unsigned_jwt(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk",
        b64(&json!({ "alg": "RS256", "typ": "JWT", "kid": "k1" })),
        b64(claims)
    )
}

fn kinds(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn find<'a>(rows: &'a Value, key: &str, value: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {rows}"))
}

#[test]
fn the_whole_lifecycle_through_the_cli() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    let issuer = idp.issuer.as_str();

    // Tenants: add, list, rename.
    cli.run(&["tenant", "add", "Acme Corp", "--slug", "acme"])
        .ok();
    let globex = cli.run(&["tenant", "add", "Globex"]).ok().stdout.clone();
    assert!(globex.contains("created tenant globex"), "{globex}");
    let tenants = cli.run(&["tenant", "list", "--json"]).ok().json();
    let slugs: Vec<_> = tenants
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"]["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme", "globex"]);
    cli.run(&["tenant", "rename", "acme", "Acme Corporation"])
        .ok();
    let table = cli.run(&["tenant", "list"]).ok().stdout.clone();
    assert!(table.starts_with("SLUG"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("acme ") && l.contains("Acme Corporation")),
        "{table}"
    );

    // The catalog.
    let presets = cli.run(&["provider", "list", "--json"]).ok().json();
    for id in ["generic-oidc", "google", "salesforce"] {
        find(&presets, "id", id);
    }
    assert!(cli
        .run(&["provider", "list"])
        .ok()
        .stdout
        .contains("generic-oidc"));

    // Provider apps: a preset with discovery, discovery alone, a preset's template, and a
    // confidential client whose secret comes on stdin.
    let scopes = "openid email offline_access api:read";
    cli.run(&[
        "provider",
        "add",
        "acme/idp",
        "--preset",
        "generic-oidc",
        "--issuer",
        issuer,
        "--client-id",
        "grantkeeper-test",
        "--scopes",
        scopes,
    ])
    .ok();
    cli.run(&[
        "provider",
        "add",
        "acme/plain",
        "--issuer",
        issuer,
        "--client-id",
        "grantkeeper-test",
    ])
    .ok();
    let unused_host = format!("127.0.0.1:{}", closed_port());
    cli.run(&[
        "provider",
        "add",
        "acme/templated",
        "--preset",
        "generic-oidc",
        "--var",
        &format!("issuer_host={unused_host}"),
        "--client-id",
        "someone",
    ])
    .ok();
    cli.run(&[
        "provider",
        "add",
        "acme/templated2",
        "--preset",
        "generic-oidc",
        "--client-id",
        "someone",
    ])
    .fails(2, "issuer_host");
    let client_secret = "confidential-test-secret";
    cli.secret(client_secret);
    cli.run_with(
        &[
            "provider",
            "add",
            "acme/conf",
            "--issuer",
            issuer,
            "--client-id",
            "grantkeeper-confidential",
            "--client-secret",
        ],
        &[],
        Some(&format!("{client_secret}\n")),
    )
    .ok();
    let apps = cli.run(&["provider", "apps", "acme", "--json"]).ok().json();
    assert_eq!(apps.as_array().unwrap().len(), 4, "{apps}");
    let idp_app = find(&apps, "name", "idp");
    assert_eq!(idp_app["preset"], "generic-oidc");
    assert_eq!(idp_app["endpoints"]["issuer"], issuer);
    assert_eq!(
        find(&apps, "name", "plain")["endpoints"]["introspection"],
        format!("{issuer}/token/introspection")
    );
    assert_eq!(
        find(&apps, "name", "templated")["endpoints"]["issuer"],
        format!("https://{unused_host}")
    );
    assert_eq!(find(&apps, "name", "conf")["has_client_secret"], true);

    // Connect through the browser.
    let c = cli
        .run(&["connect", "acme/main", "--provider", "idp", "--json"])
        .ok()
        .json();
    assert_eq!(c["name"], "main");
    assert_eq!(c["status"], "active");
    assert_eq!(c["account"]["subject"], "ada");
    assert_eq!(c["has_refresh_token"], true);
    let granted: Vec<_> = c["scopes_granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(
        granted.contains(&"api:read") && granted.contains(&"openid"),
        "{c}"
    );
    let second = cli
        .run(&[
            "connect",
            "acme/second",
            "--provider",
            "plain",
            "--scopes",
            "openid api:read",
        ])
        .ok()
        .stdout
        .clone();
    assert!(second.starts_with("connected acme/second"), "{second}");
    assert!(second.contains("granted:   "), "{second}");

    // List and show.
    let list = cli.run(&["list", "--json"]).ok().json();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let table = cli.run(&["list", "--tenant", "acme"]).ok().stdout.clone();
    assert!(
        table.contains("acme/main") && table.contains("acme/second"),
        "{table}"
    );
    let show = cli.run(&["show", "acme/main", "--json"]).ok().json();
    assert_eq!(show["preset"], "generic-oidc");
    // The core's detail view, as the window gets it: tenant, app, offline token inspection.
    assert_eq!(
        (&show["tenant"], &show["provider_app"]),
        (&json!("acme"), &json!("idp"))
    );
    assert_eq!(
        show["inspection"]["id_token"]["claims"]["sub"], "ada",
        "{show}"
    );
    assert_eq!(show["connection"]["name"], "main");
    let openid = find(&show["scopes"], "scope", "openid");
    assert_eq!(
        (&openid["granted"], &openid["risk"]),
        (&json!(true), &json!("low"))
    );
    let api = find(&show["scopes"], "scope", "api:read");
    assert_eq!(
        (&api["granted"], &api["risk"]),
        (&json!(true), &Value::Null)
    );
    let human = cli.run(&["show", "acme/main"]).ok().stdout.clone();
    assert!(human.contains("✓ api:read"), "{human}");
    assert!(
        human.contains("refresh token:  in the OS keychain"),
        "{human}"
    );

    // Tokens in every format; each is remembered for the final scan.
    let token = cli.token(&["acme/main"]);
    cli.secret(&token);
    assert!(
        token.len() >= 20 && !token.contains(char::is_whitespace),
        "{}",
        token.len()
    );
    assert_eq!(
        cli.token(&["acme/main", "--format", "header"]),
        format!("Authorization: Bearer {token}")
    );
    let as_json: Value =
        serde_json::from_str(&cli.token(&["acme/main", "--format", "json"])).unwrap();
    assert_eq!(as_json["access_token"], token.as_str());
    assert_eq!(as_json["token_type"], "Bearer");
    assert!(as_json["expires_at"].as_i64().unwrap() > now_ms());
    assert_eq!(
        cli.token(&["acme/main", "--hint", "nightly-sync", "--min-valid", "5m"]),
        token
    );
    let history = cli.run(&["history", "acme/main", "--json"]).ok().json();
    let newest = &history[0];
    assert_eq!(newest["kind"], "handed_out");
    assert_eq!(newest["app_hint"], "nightly-sync");
    assert_eq!(newest["actor"], "cli");
    assert!(newest["fingerprint"].as_str().unwrap().starts_with("gkfp"));

    // exec: the token in the child's environment only.
    cli.run(&[
        "exec",
        "acme/main",
        "--",
        "sh",
        "-c",
        "test -n \"$ACCESS_TOKEN\"",
    ])
    .ok();
    cli.run(&[
        "exec",
        "acme/main",
        "--env",
        "API_TOKEN",
        "--hint",
        "reports",
        "--",
        "sh",
        "-c",
        "test ${#API_TOKEN} -ge 20 && test -z \"$ACCESS_TOKEN\"",
    ])
    .ok();
    cli.run(&["exec", "acme/main", "--", "sh", "-c", "exit 9"])
        .fails(9, "'sh' exited with status 9");
    let history = cli.run(&["history", "acme/main", "--json"]).ok().json();
    let hints: Vec<_> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["app_hint"].as_str())
        .collect();
    assert!(hints.starts_with(&["sh", "reports", "sh"]), "{hints:?}");

    // Refresh rotates the tokens.
    let refreshes = idp.stats()["token_requests"]["refresh_token"]
        .as_u64()
        .unwrap();
    let refreshed = cli.run(&["refresh", "acme/main"]).ok().stdout.clone();
    assert!(refreshed.starts_with("refreshed acme/main"), "{refreshed}");
    assert_eq!(
        idp.stats()["token_requests"]["refresh_token"]
            .as_u64()
            .unwrap(),
        refreshes + 1
    );
    let new_token = cli.token(&["acme/main"]);
    cli.secret(&new_token);
    assert_ne!(new_token, token);

    // Inspect: offline (opaque access token, ID token claims), online, and from stdin.
    let ins = cli.run(&["inspect", "acme/main", "--json"]).ok().json();
    assert_eq!(ins["access_token_is_jwt"], false);
    assert_eq!(ins["id_token"]["claims"]["sub"], "ada");
    assert_eq!(ins["id_token"]["claims"]["iss"], issuer);
    let human = cli.run(&["inspect", "acme/main"]).ok().stdout.clone();
    assert!(
        human.contains("access token: opaque (not a JWT)"),
        "{human}"
    );
    assert!(human.contains("sub: ada"), "{human}");
    let live = cli
        .run(&["inspect", "acme/main", "--introspect", "--json"])
        .ok()
        .json();
    assert_eq!(live["active"], true, "{live}");
    assert!(
        live["scope"].as_str().unwrap().contains("api:read"),
        "{live}"
    );
    assert_eq!(live["client_id"], "grantkeeper-test");
    let human = cli
        .run(&["inspect", "acme/main", "--introspect"])
        .ok()
        .stdout
        .clone();
    assert!(
        human.contains("active: true") && human.contains("exp: "),
        "{human}"
    );
    cli.run_with(
        &["inspect", "--token", "-"],
        &[],
        Some(&format!("{new_token}\n")),
    )
    .fails(2, "not a JWT");
    let jwt = unsigned_jwt(&json!({ "sub": "robot", "exp": 4_102_444_800_i64, "scope": "a b" }));
    cli.secret(&jwt);
    let decoded = cli
        .run_with(&["inspect", "--token", "-", "--json"], &[], Some(&jwt))
        .ok()
        .json();
    assert_eq!(decoded["claims"]["sub"], "robot");
    assert_eq!(decoded["header"]["kid"], "k1");
    assert_eq!(decoded["signature_checked"], false);
    assert_eq!(decoded["expired"], false);
    let human = cli
        .run_with(
            &["inspect", "--token", "-"],
            &[],
            Some(&format!("Authorization: Bearer {jwt}\r\n")),
        )
        .ok()
        .stdout
        .clone();
    assert!(human.contains("signature is not checked"), "{human}");
    assert!(
        human.contains("exp: 4102444800 (2100-01-01T00:00:00Z"),
        "{human}"
    );

    // History with --since, as JSON and as a table.
    let hour = cli
        .run(&["history", "acme/main", "--since", "1h", "--json"])
        .ok()
        .json();
    let seen = kinds(&hour);
    for k in ["consented", "handed_out", "refreshed"] {
        assert!(seen.iter().any(|s| s == k), "{k} in {seen:?}");
    }
    let an_hour_ago = now_ms() - 3_600_000;
    assert!(hour
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["ts"].as_i64().unwrap() >= an_hour_ago));
    let future = cli
        .run(&["history", "--since", "2999-01-01", "--json"])
        .ok()
        .json();
    assert_eq!(future, json!([]));
    let table = cli
        .run(&[
            "history",
            "acme/main",
            "--since",
            "2020-01-01T00:00:00Z",
            "--limit",
            "3",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(table.lines().count(), 4, "a header and 3 events: {table}");
    assert!(table.lines().next().unwrap().contains("EVENT"), "{table}");
    cli.run(&["history", "--since", "last tuesday"])
        .fails(2, "RFC 3339");

    // The usage history verifies.
    let verify = cli.run(&["audit", "verify"]).ok().stdout.clone();
    assert!(verify.contains("usage history intact"), "{verify}");

    // Export: CSV and JSON, recorded in the history.
    let csv = cli.run(&["export", "--format", "csv"]).ok().stdout.clone();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(
        lines.len(),
        4,
        "header, two grants, final line end: {csv:?}"
    );
    assert!(lines[0].starts_with("tenant,tenant_name,connection,provider_app,preset,account,"));
    let main_row = lines.iter().find(|l| l.contains(",main,")).unwrap();
    assert!(
        main_row.starts_with("acme,Acme Corporation,main,idp,generic-oidc,"),
        "{main_row}"
    );
    assert!(main_row.contains(",active,"), "{main_row}");
    assert!(main_row.contains("openid=low"), "{main_row}");
    assert!(main_row.contains("api:read=?"), "{main_row}");
    let rows = cli
        .run(&["export", "--format", "json", "--tenant", "acme"])
        .ok()
        .json();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let row = find(&rows, "connection", "main");
    assert_eq!(row["provider_app"], "idp");
    assert_eq!(row["status"], "active");
    assert!(row["consented_at"].as_i64().is_some());
    assert!(row["last_used_at"].as_i64().is_some());
    assert!(row["last_refresh_at"].as_i64().is_some());
    assert_eq!(find(&row["scopes"], "scope", "email")["risk"], "low");
    let via_flag = cli.run(&["export", "--json"]).ok().json();
    assert_eq!(via_flag.as_array().unwrap().len(), 2);
    let recent = cli.run(&["history", "--json", "--limit", "3"]).ok().json();
    assert_eq!(kinds(&recent), ["exported", "exported", "exported"]);
    assert_eq!(recent[1]["detail"]["format"], "json");

    // The keychain's secrets (master key, refresh tokens) must not show up anywhere either.
    let stored = keychain_secrets();
    assert!(stored.len() >= 3, "master key and two refresh tokens");
    for s in &stored {
        cli.secret(s);
    }

    // Revoke: at the provider, then the connection refuses to hand out tokens (exit 5).
    let revocations = idp.stats()["revocations"].as_u64().unwrap();
    let out = cli.run(&["revoke", "acme/main"]).ok().stdout.clone();
    assert!(out.contains("the provider revoked"), "{out}");
    assert!(idp.stats()["revocations"].as_u64().unwrap() > revocations);
    cli.run(&["token", "acme/main"])
        .fails(5, "this connection was revoked");
    cli.run(&["exec", "acme/main", "--", "true"])
        .fails(5, "revoked");
    cli.run(&["inspect", "acme/main", "--introspect"])
        .fails(5, "no access token");
    let revoked = cli
        .run(&["list", "--status", "revoked", "--json"])
        .ok()
        .json();
    assert_eq!(revoked[0]["name"], "main");

    // Delete, revoking first.
    let revocations = idp.stats()["revocations"].as_u64().unwrap();
    let out = cli.run(&["delete", "acme/second"]).ok().stdout.clone();
    assert!(
        out.starts_with("deleted acme/second; the provider revoked"),
        "{out}"
    );
    assert!(idp.stats()["revocations"].as_u64().unwrap() > revocations);
    cli.run(&["token", "acme/second"])
        .fails(3, "no connection named 'acme/second'");
    cli.run(&["delete", "acme/main", "--no-revoke"]).ok();
    assert_eq!(cli.run(&["list", "--json"]).ok().json(), json!([]));
    cli.run(&["audit", "verify"]).ok();

    // Completions and help.
    let bash = cli.run(&["completions", "bash"]).ok().stdout.clone();
    assert!(
        bash.contains("_grantkeeper()") && bash.contains("complete -F"),
        "bash"
    );
    let zsh = cli.run(&["completions", "zsh"]).ok().stdout.clone();
    assert!(zsh.starts_with("#compdef grantkeeper"), "zsh");
    let fish = cli.run(&["completions", "fish"]).ok().stdout.clone();
    assert!(fish.contains("complete -c grantkeeper"), "fish");
    assert!(fish.contains("export") && fish.contains("inspect"), "fish");
    let help = cli.run(&["--help"]).ok().stdout.clone();
    assert!(
        help.contains("NO_COLOR") && help.contains("Exit codes"),
        "{help}"
    );

    assert!(cli.secrets() >= 7);
    let scanned = cli.assert_no_secret_leaked();
    assert!(scanned >= 55, "{scanned} runs");
}

#[test]
fn failures_are_one_line_with_the_documented_exit_code() {
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();

    // Not found: 3.
    cli.run(&["token", "acme/nope"])
        .fails(3, "no connection named 'acme/nope'");
    cli.run(&["show", "acme/nope"]).fails(3, "acme/nope");
    cli.run(&["history", "acme/nope"]).fails(3, "acme/nope");
    cli.run(&["exec", "acme/nope", "--", "true"])
        .fails(3, "acme/nope");
    cli.run(&["token", "globex/main"])
        .fails(3, "no tenant named 'globex'");
    cli.run(&["export", "--tenant", "globex"])
        .fails(3, "no tenant named 'globex'");
    cli.run(&["provider", "apps", "globex"]).fails(3, "globex");

    // Bad input: 2, from the command line parser too.
    for bad in ["acme", "acme/", "/main", "acme/main/extra"] {
        cli.run(&["token", bad])
            .fails(2, "is not of the form <tenant>/<name>");
    }
    cli.run(&["exec", "acme", "--", "true"])
        .fails(2, "<tenant>/<name>");
    cli.run(&["connect", "acme", "--provider", "idp"])
        .fails(2, "<tenant>/<name>");
    cli.run(&["revoke", "acme:main"])
        .fails(2, "<tenant>/<name>");
    cli.run(&[]).fails(2, "a command is required");
    cli.run(&["tenant"]).fails(2, "a command is required");
    cli.run(&["frobnicate"])
        .fails(2, "unrecognized subcommand 'frobnicate'");
    cli.run(&["token"]).fails(2, "required arguments");
    cli.run(&["token", "acme/main", "--format", "yaml"])
        .fails(2, "invalid value 'yaml'");
    cli.run(&["token", "acme/main", "--min-valid", "soon"])
        .fails(2, "duration");
    cli.run(&["export", "--status", "sleeping"])
        .fails(2, "not a status");
    cli.run(&["export", "--format", "xml"])
        .fails(2, "invalid value 'xml'");
    cli.run(&["completions", "cmd.exe"])
        .fails(2, "invalid value");
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"])
        .fails(2, "already exists");
    cli.run(&["tenant", "add", "X", "--slug", "Not A Slug"])
        .fails(2, "not a valid tenant slug");
    cli.run(&["tenant", "delete", "acme"]).fails(2, "--yes");
    cli.run(&["inspect", "--token", "eyJhbGciOi.e30.sig"])
        .fails(2, "standard input");
    cli.run_with(&["inspect", "--token", "-"], &[], Some(" \n"))
        .fails(2, "no token on standard input");
    cli.run_with(&["inspect", "--token", "-"], &[], Some("a.b.c.d.e"))
        .fails(2, "encrypted JWT");
    cli.run(&["inspect", "acme/main", "--token", "-"])
        .fails(2, "cannot be used with");
    cli.run(&["provider", "add", "acme/x", "--client-id", "y"])
        .fails(2, "--preset, --issuer");

    // No keychain: 4, and nothing written.
    let bus = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")];
    cli.run_with(&["list"], &bus, None)
        .fails(4, "No D-Bus session bus");
    cli.run_with(&["tenant", "add", "Other"], &bus, None)
        .fails(4, "D-Bus");

    // A vault folder that is a file: which variable, what is wrong, what to do; the same
    // lines as the window's error screen.
    let file = cli.home().with_extension("file");
    std::fs::write(&file, "").unwrap();
    let file_home = [("GRANTKEEPER_HOME", file.to_str().unwrap())];
    cli.run_with(&["list"], &file_home, None).fails(
        1,
        &format!("GRANTKEEPER_HOME={} is not a folder", file.display()),
    );

    // No network: 6. Nothing listens on these ports; nothing is stored.
    let port = closed_port();
    cli.run(&[
        "provider",
        "add",
        "acme/gone",
        "--issuer",
        &format!("http://127.0.0.1:{port}"),
        "--client-id",
        "x",
    ])
    .fails(6, "cannot reach 127.0.0.1");
    cli.secret("service-test-secret");
    cli.run_with(
        &[
            "provider",
            "add",
            "acme/dead",
            "--authorize-url",
            &format!("http://127.0.0.1:{port}/auth"),
            "--token-url",
            &format!("http://127.0.0.1:{port}/token"),
            "--client-id",
            "grantkeeper-service",
            "--client-secret",
        ],
        &[],
        Some("service-test-secret\n"),
    )
    .ok();
    cli.run(&[
        "connect",
        "acme/svc",
        "--provider",
        "dead",
        "--client-credentials",
    ])
    .fails(6, "cannot reach 127.0.0.1");
    assert_eq!(cli.run(&["list", "--json"]).ok().json(), json!([]));
    assert_eq!(
        cli.run(&["tenant", "list", "--json"]).ok().json()[0]["tenant"]["slug"],
        "acme"
    );

    cli.run(&["audit", "verify"]).ok();
    cli.assert_no_secret_leaked();
}

#[test]
fn refusals_and_unreachable_providers() {
    // Refresh tokens that die after 5 s, so a grant can need re-consent within the test.
    let mut idp = Idp::start(&json!({ "refreshTokenTtl": 5 }));
    let cli = Cli::new();
    let issuer = idp.issuer.clone();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    cli.run(&[
        "provider",
        "add",
        "acme/idp",
        "--issuer",
        &issuer,
        "--client-id",
        "grantkeeper-test",
        "--scopes",
        "openid api:read",
    ])
    .ok();

    // Consent denied in the browser: 5, nothing stored.
    cli.run_with(
        &["connect", "acme/denied", "--provider", "idp"],
        &[("GK_TEST_BROWSER_ACTION", "deny")],
        None,
    )
    .fails(5, "consent was not given at the provider (access_denied");
    assert_eq!(cli.run(&["list", "--json"]).ok().json(), json!([]));

    // Consent given, but the token endpoint cannot be reached for the code exchange: 6.
    let port = closed_port();
    cli.run(&[
        "provider",
        "add",
        "acme/half",
        "--authorize-url",
        &format!("{issuer}/auth"),
        "--token-url",
        &format!("http://127.0.0.1:{port}/token"),
        "--client-id",
        "grantkeeper-test",
        "--scopes",
        "openid api:read",
    ])
    .ok();
    cli.run(&["connect", "acme/broken", "--provider", "half"])
        .fails(6, "cannot reach 127.0.0.1");
    assert_eq!(cli.run(&["list", "--json"]).ok().json(), json!([]));

    // The refresh token expires at the provider: the refresh is refused and the connection
    // needs re-consent; from then on it refuses to hand out tokens (5), without asking again.
    cli.run(&["connect", "acme/short", "--provider", "idp"])
        .ok();
    let connected = Instant::now();
    let token = cli.token(&["acme/short"]);
    cli.secret(&token);
    for s in keychain_secrets() {
        cli.secret(&s);
    }
    std::thread::sleep(Duration::from_secs(7).saturating_sub(connected.elapsed()));
    cli.run(&["refresh", "acme/short"])
        .fails(5, "invalid_grant");
    let refreshes = idp.stats()["token_requests"]["refresh_token"]
        .as_u64()
        .unwrap();
    cli.run(&["token", "acme/short"])
        .fails(5, "needs re-consent");
    cli.run(&["exec", "acme/short", "--", "true"])
        .fails(5, "needs re-consent");
    assert_eq!(
        idp.stats()["token_requests"]["refresh_token"]
            .as_u64()
            .unwrap(),
        refreshes,
        "no request while it needs re-consent"
    );
    let attention = cli
        .run(&["list", "--status", "needs_reconsent", "--json"])
        .ok()
        .json();
    assert_eq!(attention[0]["name"], "short");
    let show = cli.run(&["show", "acme/short"]).ok().stdout.clone();
    assert!(
        show.contains("needs_reconsent") && show.contains("Consent again"),
        "{show}"
    );
    let csv = cli
        .run(&["export", "--status", "needs_reconsent"])
        .ok()
        .stdout
        .clone();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(",needs_reconsent,"), "{csv}");
    // The same question as an admin's review, and others that select nothing here.
    let review = cli
        .run(&["export", "--needs-reconsent", "--json"])
        .ok()
        .json();
    assert_eq!(review.as_array().unwrap().len(), 1, "{review}");
    assert_eq!(review[0]["connection"], "short");
    for filter in [["--high-risk", ""], ["--unused-days", "1"]] {
        let args: Vec<&str> = ["export", "--json"]
            .into_iter()
            .chain(filter.into_iter().filter(|a| !a.is_empty()))
            .collect();
        assert_eq!(
            cli.run(&args).ok().json(),
            serde_json::json!([]),
            "{filter:?}"
        );
    }
    let recorded = cli
        .run(&["history", "--kind", "exported", "--json", "--limit", "1"])
        .ok()
        .json();
    assert_eq!(recorded[0]["detail"]["what"], "grant_review");
    cli.run(&["export", "--status", "active", "--high-risk"])
        .fails(2, "cannot be used with");
    let tenants = cli.run(&["tenant", "list", "--json"]).ok().json();
    assert_eq!(tenants[0]["needs_attention"], 1);

    // The provider goes away: refreshing and introspecting fail as unreachable (6) and leave
    // the connection as it was.
    cli.run(&["connect", "acme/later", "--provider", "idp"])
        .ok();
    idp.stop();
    cli.run(&["token", "acme/later", "--min-valid", "2h"])
        .fails(6, "cannot reach 127.0.0.1");
    cli.run(&["refresh", "acme/later"])
        .fails(6, "cannot reach 127.0.0.1");
    cli.run(&["inspect", "acme/later", "--introspect"])
        .fails(6, "cannot reach 127.0.0.1");
    let show = cli.run(&["show", "acme/later", "--json"]).ok().json();
    assert_eq!(show["connection"]["status"], "active");
    // The cached token is still handed out while it is valid.
    let cached = cli.token(&["acme/later"]);
    cli.secret(&cached);
    // A sign-in nobody completes: 8.
    cli.run_with(
        &[
            "connect",
            "acme/never",
            "--provider",
            "idp",
            "--timeout",
            "3",
        ],
        &[("GK_TEST_BROWSER_ACTION", "ignore")],
        None,
    )
    .fails(8, "no sign-in completed within 3 s");

    let history = cli
        .run(&["history", "--json", "--limit", "200"])
        .ok()
        .json();
    let seen = kinds(&history);
    assert!(seen.iter().any(|k| k == "refresh_failed"), "{seen:?}");
    cli.run(&["audit", "verify"]).ok();
    cli.assert_no_secret_leaked();
}

/// Paste mode reads the browser's final address from stdin, within the sign-in's timeout, and
/// checks it like any redirect: a forged state is refused (5), text that is no URL is bad input
/// (2), a closed stdin cancels (8). Nothing is stored.
#[test]
fn a_pasted_redirect_is_read_from_stdin_and_checked() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    let port = closed_port().to_string();
    cli.acme_with_idp(
        &idp,
        &["--redirect", "paste", "--port", &port, "--scopes", "openid"],
    );
    let no_browser = [("BROWSER", "/bin/false")];
    let connect = |stdin: &str| {
        cli.run_with(
            &[
                "connect",
                "acme/pasted",
                "--provider",
                "idp",
                "--timeout",
                "20",
            ],
            &no_browser,
            Some(stdin),
        )
    };
    let forged = format!("http://127.0.0.1:{port}/callback?code=c&state=forged\n");
    for (stdin, code, expect) in [
        (forged.as_str(), 5, "state mismatch"),
        ("not a url\n", 2, "not a URL"),
        ("", 8, "cancelled"),
    ] {
        let run = connect(stdin);
        assert_eq!(run.code, Some(code), "{stdin:?}: {}", run.stderr);
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("grantkeeper: ") && last.contains(expect),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains("paste the address"), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    assert_eq!(cli.run(&["list", "--json"]).ok().json(), json!([]));
}

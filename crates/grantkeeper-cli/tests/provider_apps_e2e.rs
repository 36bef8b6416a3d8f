//! `grantkeeper provider edit` and `provider delete` against the test IdP: settings changed in
//! place, a new client id naming the connections that need a new consent, a deletion that
//! revokes the connections it takes with it, and no secret in any output.

mod support;

use serde_json::{json, Value};
use support::{Cli, Idp};

#[test]
fn provider_apps_are_edited_and_deleted_with_their_connections() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &[]);
    cli.run(&["connect", "acme/crm", "--provider", "idp"]).ok();

    // Nothing to change, then a new client id: the connection is named for a new consent.
    let same = cli.run(&[
        "provider",
        "edit",
        "acme/idp",
        "--client-id",
        "grantkeeper-test",
    ]);
    assert!(
        same.ok().stdout.contains("nothing changed"),
        "{}",
        same.stdout
    );
    let edited = cli
        .run(&[
            "provider",
            "edit",
            "acme/idp",
            "--client-id",
            "other",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(edited["changed"], json!(["client id"]));
    assert_eq!(edited["reconsent"], json!(["crm"]));
    assert_eq!(edited["app"]["client_id"], "other");
    let text = cli
        .run(&[
            "provider",
            "edit",
            "acme/idp",
            "--client-id",
            "grantkeeper-test",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        text.contains("updated provider app acme/idp: client id"),
        "{text}"
    );
    assert!(text.contains("grantkeeper reconsent acme/crm"), "{text}");

    // A secret from stdin, scopes, a fixed port; then the secret removed again.
    let secret = "edited-client-secret-0042";
    cli.secret(secret);
    let with_secret = cli.run_with(
        &[
            "provider",
            "edit",
            "acme/idp",
            "--client-secret",
            "--scopes",
            "openid offline_access api:read",
            "--port",
            "8765",
            "--json",
        ],
        &[],
        Some(&format!("{secret}\n")),
    );
    let v = with_secret.ok().json();
    assert_eq!(v["changed"], json!(["client secret", "scopes", "port"]));
    assert_eq!(v["app"]["has_client_secret"], true);
    assert_eq!(v["app"]["redirect_port"], 8765);
    let public = cli
        .run(&[
            "provider",
            "edit",
            "acme/idp",
            "--no-client-secret",
            "--no-port",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(public["app"]["has_client_secret"], false);
    assert_eq!(public["app"]["redirect_port"], Value::Null);

    // Settings that cannot work are refused, and change nothing.
    cli.run(&["provider", "edit", "acme/idp", "--redirect", "relay"])
        .fails(2, "relay page");
    cli.run(&[
        "provider",
        "edit",
        "acme/idp",
        "--relay-url",
        "http://relay.example/",
    ])
    .fails(2, "HTTPS");
    cli.run(&["provider", "edit", "acme/nope", "--scopes", "x"])
        .fails(3, "no provider app named 'acme/nope'");

    // Deleting asks for --yes, and for --with-connections while connections use the app.
    cli.run(&["provider", "delete", "acme/idp"])
        .fails(2, "--yes");
    cli.run(&["provider", "delete", "acme/idp", "--yes"])
        .fails(2, "1 connection(s) (crm)");
    cli.run(&["show", "acme/crm"]).ok();
    let revoked_before = idp.stats()["grants_revoked"].as_i64().unwrap();
    let deleted = cli
        .run(&[
            "provider",
            "delete",
            "acme/idp",
            "--yes",
            "--with-connections",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(deleted["deleted"], "acme/idp");
    assert_eq!(deleted["connections"][0]["name"], "crm");
    assert_eq!(
        deleted["connections"][0]["revocation"]["revoked_at_provider"],
        true
    );
    assert!(idp.stats()["grants_revoked"].as_i64().unwrap() > revoked_before);
    cli.run(&["show", "acme/crm"])
        .fails(3, "no connection named 'acme/crm'");
    let apps = cli.run(&["provider", "apps", "acme", "--json"]).ok().json();
    assert_eq!(apps, json!([]));

    // Every change is in the history, without the secret.
    let events = cli
        .run(&["history", "--kind", "config_changed", "--json"])
        .ok()
        .json();
    let changes: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["detail"]["change"].as_str())
        .collect();
    assert_eq!(
        changes
            .iter()
            .filter(|c| **c == "provider_app_edited")
            .count(),
        4,
        "{changes:?}"
    );
    assert!(changes.contains(&"provider_app_deleted"), "{changes:?}");
    assert!(cli.assert_no_secret_leaked() > 10);
}

#[test]
fn provider_add_says_what_to_register_and_tenant_delete_revokes_first() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    let added = cli
        .run(&[
            "provider",
            "add",
            "acme/idp",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "grantkeeper-test",
            "--scopes",
            "openid offline_access",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        added.contains("register this redirect URI: http://127.0.0.1/callback"),
        "{added}"
    );
    assert!(
        added.contains("scopes to allow: openid offline_access"),
        "{added}"
    );
    assert!(added.contains("A public client"), "{added}");
    // A provider matching the port too gets a fixed one; an HTTPS-only one is told about the relay.
    let fixed = cli
        .run(&[
            "provider",
            "add",
            "acme/sf",
            "--preset",
            "salesforce",
            "--client-id",
            "x",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        fixed.contains("register this redirect URI: http://127.0.0.1:8765/callback"),
        "{fixed}"
    );
    let https_only = cli
        .run(&[
            "provider",
            "add",
            "acme/slack",
            "--preset",
            "slack",
            "--client-id",
            "x",
        ])
        .ok()
        .stdout
        .clone();
    assert!(https_only.contains("before signing in:"), "{https_only}");
    assert!(https_only.contains("relay/"), "{https_only}");

    // Deleting the tenant revokes its grant at the provider first, and says so.
    cli.run(&["connect", "acme/crm", "--provider", "idp"]).ok();
    let revoked_before = idp.stats()["grants_revoked"].as_i64().unwrap();
    let deleted = cli
        .run(&["tenant", "delete", "acme", "--yes", "--json"])
        .ok()
        .json();
    assert_eq!(deleted["deleted"], "acme");
    assert_eq!(deleted["connections"][0]["name"], "crm");
    assert_eq!(
        deleted["connections"][0]["revocation"]["revoked_at_provider"],
        true
    );
    assert!(idp.stats()["grants_revoked"].as_i64().unwrap() > revoked_before);
    assert_eq!(
        cli.run(&["tenant", "list", "--json"]).ok().json(),
        json!([])
    );
}

//! `grantkeeper anomalies` with real processes: the `grantkeeper` binary, the real test IdP
//! (tests/idp/server.mjs) and the real Secret Service (run under `scripts/with-test-session`).
//! The rules themselves are tested on seeded histories in the core (`anomaly/tests.rs`); here a
//! real failing provider raises the refresh-failures flag and consenting again clears it.
//!
//!   timeout 900 scripts/with-test-session cargo test -p grantkeeper-cli --test anomalies_e2e

mod support;

use serde_json::json;
use support::*;

const TARGET: &str = "acme/main";

#[test]
fn failing_refreshes_raise_a_flag_that_consenting_again_clears() {
    require_test_session();
    let mut idp = Idp::start(&json!({}));
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

    let quiet = gk.run(&["anomalies"]).expect_ok("anomalies");
    assert_eq!(
        quiet.stdout.trim(),
        "No anomalies: every connection's use looks like its own past."
    );
    assert_eq!(
        gk.run(&["anomalies", "--json"])
            .expect_ok("anomalies")
            .json(),
        json!([])
    );

    // A hand-out names the program that ran `grantkeeper` (this test), by its path.
    gk.run(&["token", TARGET]).expect_ok("token");
    let handed = gk
        .history(TARGET)
        .into_iter()
        .find(|e| e["kind"] == "handed_out")
        .expect("a hand-out event");
    let exe = std::env::current_exe().unwrap();
    assert_eq!(
        handed["caller"].as_str().unwrap(),
        format!("pid {} {}", std::process::id(), exe.display())
    );

    idp.stop();
    for _ in 0..3 {
        gk.run(&["refresh", TARGET]).fails(6, "");
    }
    let flagged = gk
        .run(&["anomalies", "--json"])
        .expect_ok("anomalies")
        .json();
    let flags = flagged.as_array().unwrap();
    assert_eq!(flags.len(), 1, "{flagged}");
    assert_eq!(flags[0]["kind"], "refresh_failures");
    assert_eq!(flags[0]["target"], TARGET);
    let why = flags[0]["explanation"].as_str().unwrap();
    assert!(
        why.starts_with("3 refreshes failed in a row since ")
            && why.contains("(last: the provider was unreachable or failing)"),
        "{why}"
    );
    let show = gk.run(&["show", TARGET]).expect_ok("show");
    assert!(
        show.stdout
            .contains(&format!("  flag refresh_failures: {why}")),
        "{}",
        show.stdout
    );
    let table = gk
        .run(&["anomalies", "--kind", "refresh_failures"])
        .expect_ok("anomalies");
    assert!(table.stdout.starts_with("CONNECTION"), "{}", table.stdout);
    assert!(
        table.stdout.contains("acme/main") && table.stdout.contains(why),
        "{}",
        table.stdout
    );
    assert_eq!(
        gk.run(&["anomalies", "--kind", "burst"])
            .expect_ok("anomalies")
            .stdout
            .trim(),
        "No anomalies: every connection's use looks like its own past."
    );

    // The restarted IdP forgot the grant: a fourth failure, refused this time; consenting again
    // ends the series.
    idp.restart(&json!({}));
    gk.run(&["refresh", TARGET])
        .fails(5, "run `grantkeeper reconsent`");
    let flagged = gk
        .run(&["anomalies", "--json"])
        .expect_ok("anomalies")
        .json();
    let why = flagged[0]["explanation"].as_str().unwrap();
    assert!(
        why.starts_with("4 refreshes failed in a row since ")
            && why.contains("(last: the provider refused the grant)"),
        "{why}"
    );
    gk.reconsent_in_browser(TARGET);
    assert_eq!(
        gk.run(&["anomalies", "--json"])
            .expect_ok("anomalies")
            .json(),
        json!([])
    );

    gk.run(&["anomalies", "--kind", "odd"])
        .fails(2, "'odd' is not a flag: use burst, new_program");

    // Deleting the tenant takes its usage profiles with its events' content.
    gk.run(&["tenant", "delete", "acme", "--yes"])
        .expect_ok("tenant delete");
    let db = gk.db();
    for table in ["usage_profiles", "usage_programs"] {
        let n: i64 = db
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "{table} after the tenant is deleted");
    }
}

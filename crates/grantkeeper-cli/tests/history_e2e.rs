//! The usage history against someone who can write `vault.db` but not read the keychain: the
//! real CLI, the real Secret Service (run under `scripts/with-test-session`).

mod support;

use sha2::{Digest, Sha256};
use support::{require_test_session, Gk, Run};

/// A vault with 8 events (tenants created and renamed), each command's anchored as it ends.
fn vault_with_events() -> (tempfile::TempDir, Gk) {
    require_test_session();
    let dir = tempfile::tempdir().unwrap();
    let gk = Gk::new(dir.path().join("vault"));
    for name in ["acme", "globex", "initech", "umbrella"] {
        gk.run(&["tenant", "add", name, "--slug", name])
            .expect_ok("tenant add");
    }
    for name in ["acme", "globex", "initech", "umbrella"] {
        gk.run(&["tenant", "rename", name, &format!("{name} Ltd")])
            .expect_ok("tenant rename");
    }
    let verify = gk.run(&["audit", "verify"]).expect_ok("audit verify");
    assert!(
        verify
            .stdout
            .contains("usage history intact: 8 events verified, all anchored"),
        "{}",
        verify.stdout
    );
    (dir, gk)
}

fn broken(run: &Run) {
    assert_eq!(
        run.code,
        Some(7),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("grantkeeper: usage history is not intact: "),
        "{}",
        run.stderr
    );
}

#[test]
fn deleting_the_newest_events_is_named() {
    let (_dir, gk) = vault_with_events();
    let deleted = gk
        .db()
        .execute("DELETE FROM events WHERE seq > 5", [])
        .unwrap();
    assert_eq!(deleted, 3);
    let run = gk.run(&["audit", "verify"]);
    broken(&run);
    assert!(
        run.stderr.contains("events #6–#8 are missing (deleted)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("missing: events #6–#8"),
        "{}",
        run.stdout
    );
    let json = gk.run(&["audit", "verify", "--json"]);
    assert_eq!(json.code, Some(7));
    let report = json.json();
    assert_eq!(report["first_bad"]["problem"], "missing");
    assert_eq!(report["first_bad"]["seq"], 6);
    assert_eq!(report["first_bad"]["through"], 8);
    assert_eq!(report["anchor"]["seq"], 8);

    // New commands do not get the shortened history anchored.
    for name in ["hooli", "pied-piper", "aviato", "bachman"] {
        gk.run(&["tenant", "add", name, "--slug", name])
            .expect_ok("tenant add");
    }
    let run = gk.run(&["audit", "verify"]);
    broken(&run);
    assert!(
        run.stderr.contains("not the one the checkpoint of"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_chain_recomputed_with_plain_sha256_is_caught() {
    let (_dir, gk) = vault_with_events();
    let db = gk.db();
    // Edit an event, then recompute every digest and MAC the way the unkeyed chain was made.
    db.execute(
        "UPDATE events SET detail = '{\"name\":\"someone else\"}' WHERE seq = 5",
        [],
    )
    .unwrap();
    let rows: Vec<(i64, Vec<u8>)> = db
        .prepare("SELECT seq, COALESCE(detail, '') || kind || ts FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?.into_bytes())))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut prev = [0u8; 32].to_vec();
    for (seq, content) in rows {
        let digest = Sha256::digest(&content).to_vec();
        let mut h = Sha256::new();
        h.update(b"grantkeeper/chain/v1");
        h.update(&prev);
        h.update(seq.to_be_bytes());
        h.update(&digest);
        let mac = h.finalize().to_vec();
        db.execute(
            "UPDATE events SET digest = ?2, mac = ?3 WHERE seq = ?1",
            rusqlite::params![seq, digest, mac],
        )
        .unwrap();
        prev = mac;
    }
    let run = gk.run(&["audit", "verify"]);
    broken(&run);
    assert!(
        run.stderr
            .contains("events #1–#8 were not written with this vault's key"),
        "{}",
        run.stderr
    );
}

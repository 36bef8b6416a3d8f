//! Tests against the real Secret Service (gnome-keyring on a private D-Bus session bus).
//! `scripts/run-tests` starts that session and sets `GRANTKEEPER_TEST_SECRET_SERVICE=1`; these
//! tests refuse to run against a desktop user's own keychain.

mod common;

use grantkeeper_core::audit::EventKind;
use grantkeeper_core::keychain::{EntryName, Keychain};
use grantkeeper_core::{Error, Vault};
use std::process::Command;

use common::*;

#[test]
fn refresh_token_round_trip_through_the_real_keychain() {
    let kc = keychain();
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), kc.clone()).unwrap();
    let t = vault.create_tenant("Acme", None, "", &actor()).unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let app = app(&scope, "cs-roundtrip");
    let c = scope
        .store_connection(
            new_conn(&app, "crm"),
            tokens("at-rt-1", "rt-rt-1", None),
            &actor(),
        )
        .unwrap();

    let entry = EntryName::refresh_token(vault.id(), t.id.as_str(), c.id.as_str());
    assert_eq!(kc.get(&entry).unwrap().unwrap().expose(), "rt-rt-1");
    // Another program sees the same entry through the Secret Service.
    let out = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            entry.service(),
            "username",
            entry.user(),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "rt-rt-1");

    // Reopening the vault in a new process-like instance reads the same master key.
    drop(scope);
    drop(vault);
    let vault = Vault::open(dir.path(), kc.clone()).unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    assert_eq!(
        scope
            .access_token(
                &c.id,
                grantkeeper_core::grants::DEFAULT_MIN_VALID,
                &grantkeeper_core::deadline::Deadline::default(),
                &actor()
            )
            .unwrap()
            .token
            .expose(),
        "at-rt-1"
    );
    assert_eq!(
        scope.client_secret(&app.id).unwrap().unwrap().expose(),
        "cs-roundtrip"
    );

    scope.delete_connection(&c.id, &actor()).unwrap();
    assert!(kc.get(&entry).unwrap().is_none());
}

#[test]
fn tenants_are_isolated() {
    let kc = keychain();
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), kc.clone()).unwrap();
    let ta = vault.create_tenant("Tenant A", None, "", &actor()).unwrap();
    let tb = vault.create_tenant("Tenant B", None, "", &actor()).unwrap();
    let sa = vault.tenant(&ta.id).unwrap();
    let sb = vault.tenant(&tb.id).unwrap();
    let app_a = app(&sa, "cs-a");
    let app_b = app(&sb, "cs-b");
    let a1 = sa
        .store_connection(
            new_conn(&app_a, "one"),
            tokens("at-a1", "rt-a1", None),
            &actor(),
        )
        .unwrap();
    let a2 = sa
        .store_connection(
            new_conn(&app_a, "two"),
            tokens("at-a2", "rt-a2", None),
            &actor(),
        )
        .unwrap();
    let b1 = sb
        .store_connection(
            new_conn(&app_b, "one"),
            tokens("at-b1", "rt-b1", None),
            &actor(),
        )
        .unwrap();

    // B's scope cannot name A's connection or its provider app.
    assert!(matches!(sb.connection(&a1.id), Err(Error::NotFound { .. })));
    assert!(matches!(
        sb.access_token(
            &a1.id,
            grantkeeper_core::grants::DEFAULT_MIN_VALID,
            &grantkeeper_core::deadline::Deadline::default(),
            &actor()
        ),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        sb.client_secret(&app_a.id),
        Err(Error::NotFound { .. })
    ));
    // A keychain entry name built in B's namespace for A's connection holds nothing.
    let crossed = EntryName::refresh_token(vault.id(), tb.id.as_str(), a1.id.as_str());
    assert!(kc.get(&crossed).unwrap().is_none());

    // Ciphertexts moved between rows or tenants fail to decrypt.
    let db = rusqlite::Connection::open(vault.db_path()).unwrap();
    let copy = |from: &str, to: &str| {
        db.execute(
            "UPDATE connections SET access_token = (SELECT access_token FROM connections WHERE id = ?1) WHERE id = ?2",
            [from, to],
        )
        .unwrap();
    };
    copy(a1.id.as_str(), b1.id.as_str());
    let err = sb
        .access_token(
            &b1.id,
            grantkeeper_core::grants::DEFAULT_MIN_VALID,
            &grantkeeper_core::deadline::Deadline::default(),
            &actor(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Crypto(_)), "{err}");
    copy(a1.id.as_str(), a2.id.as_str());
    let err = sa
        .access_token(
            &a2.id,
            grantkeeper_core::grants::DEFAULT_MIN_VALID,
            &grantkeeper_core::deadline::Deadline::default(),
            &actor(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Crypto(_)), "{err}");
    // The original row still decrypts, and failures wrote no hand-out events.
    assert_eq!(
        sa.access_token(
            &a1.id,
            grantkeeper_core::grants::DEFAULT_MIN_VALID,
            &grantkeeper_core::deadline::Deadline::default(),
            &actor()
        )
        .unwrap()
        .token
        .expose(),
        "at-a1"
    );
    let handed: Vec<_> = vault
        .recent_events(100)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::HandedOut)
        .collect();
    assert_eq!(handed.len(), 1);
    // A client secret moved to another tenant's app fails too.
    db.execute(
        "UPDATE provider_apps SET client_secret = (SELECT client_secret FROM provider_apps WHERE id = ?1) WHERE id = ?2",
        [app_a.id.as_str(), app_b.id.as_str()],
    )
    .unwrap();
    assert!(matches!(sb.client_secret(&app_b.id), Err(Error::Crypto(_))));
    // A tenant data key moved to another tenant fails to unwrap.
    db.execute(
        "UPDATE tenants SET wrapped_key = (SELECT wrapped_key FROM tenants WHERE id = ?1) WHERE id = ?2",
        [ta.id.as_str(), tb.id.as_str()],
    )
    .unwrap();
    drop(sb);
    assert!(matches!(vault.tenant(&tb.id), Err(Error::Tampered(_))));
}

#[test]
fn deleting_a_tenant_leaves_nothing() {
    let kc = keychain();
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), kc.clone()).unwrap();
    let gone = vault
        .create_tenant(
            "Vanishing Client Ltd",
            Some("vanishing"),
            "notes-vanishing",
            &actor(),
        )
        .unwrap();
    let kept = vault.create_tenant("Kept", None, "", &actor()).unwrap();
    let (gone_ids, kept_conn) = {
        let sg = vault.tenant(&gone.id).unwrap();
        let sk = vault.tenant(&kept.id).unwrap();
        let ag = app(&sg, "cs-vanishing");
        let ak = app(&sk, "cs-kept");
        let c1 = sg
            .store_connection(
                new_conn(&ag, "crm"),
                tokens("at-vanishing-1", "rt-vanishing-1", Some("idt-vanishing")),
                &actor(),
            )
            .unwrap();
        let c2 = sg
            .store_connection(
                new_conn(&ag, "erp"),
                tokens("at-vanishing-2", "rt-vanishing-2", None),
                &actor(),
            )
            .unwrap();
        sg.access_token(
            &c1.id,
            grantkeeper_core::grants::DEFAULT_MIN_VALID,
            &grantkeeper_core::deadline::Deadline::default(),
            &actor().with_hint(Some("hint-vanishing".into())),
        )
        .unwrap();
        let kc1 = sk
            .store_connection(
                new_conn(&ak, "crm"),
                tokens("at-kept", "rt-kept", None),
                &actor(),
            )
            .unwrap();
        (vec![c1.id, c2.id], kc1.id)
    };
    let before = secret_tool_items(gone.id.as_str());
    assert_eq!(
        before.len(),
        3,
        "two refresh tokens and the tenant key: {before:?}"
    );

    vault.delete_tenant(&gone.id, &actor()).unwrap();

    // No keychain entry of the tenant is left; the other tenant's is.
    assert!(secret_tool_items(gone.id.as_str()).is_empty());
    for c in &gone_ids {
        assert!(kc
            .get(&EntryName::refresh_token(
                vault.id(),
                gone.id.as_str(),
                c.as_str()
            ))
            .unwrap()
            .is_none());
    }
    assert!(kc
        .get(&EntryName::refresh_token(
            vault.id(),
            kept.id.as_str(),
            kept_conn.as_str()
        ))
        .unwrap()
        .is_some());
    // No row refers to it, and none of its names, notes or hints is anywhere in the files.
    let db = rusqlite::Connection::open(vault.db_path()).unwrap();
    for (table, col) in [
        ("tenants", "id"),
        ("provider_apps", "tenant_id"),
        ("connections", "tenant_id"),
    ] {
        let n: i64 = db
            .query_row(
                &format!("SELECT COUNT(*) FROM {table} WHERE {col} = ?1"),
                [gone.id.as_str()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
    drop(db);
    for needle in [
        "Vanishing Client",
        "notes-vanishing",
        "hint-vanishing",
        "vanishing",
    ] {
        for suffix in ["", "-wal"] {
            let p = dir.path().join(format!("vault.db{suffix}"));
            assert!(
                !file_contains(&p, needle),
                "{needle} found in {}",
                p.display()
            );
        }
    }
    // The history still verifies, and says a tenant was deleted.
    assert!(vault.verify_history().unwrap().is_intact());
    assert_eq!(
        vault.recent_events(1).unwrap()[0].kind,
        EventKind::TenantDeleted
    );
    assert!(matches!(
        vault.tenant(&gone.id),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn keychain_labels_and_attributes_carry_no_token() {
    let kc = keychain();
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), kc).unwrap();
    let t = vault.create_tenant("Labels", None, "", &actor()).unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let a = app(&scope, "PLANTED-client-secret-label");
    scope
        .store_connection(
            new_conn(&a, "crm"),
            tokens(
                "PLANTED-access-label",
                "PLANTED-refresh-label",
                Some("PLANTED-id-label"),
            ),
            &actor(),
        )
        .unwrap();
    let items = secret_tool_items(vault.id());
    let keys = items
        .iter()
        .filter(|(meta, _)| !meta.iter().any(|l| l.contains("history-checkpoint")))
        .count();
    assert_eq!(keys, 2, "the vault's keys and one refresh token");
    assert!(items
        .iter()
        .any(|(_, secret)| secret == "PLANTED-refresh-label"));
    for (meta, _) in &items {
        for line in meta {
            assert!(
                !line.contains("PLANTED"),
                "token in keychain metadata: {line}"
            );
        }
    }
}

/// Entries written by earlier versions (through the `keyring` crate: its label and attributes)
/// are read, replaced in place and deleted.
#[test]
fn entries_written_by_earlier_versions_are_used() {
    let kc = keychain();
    let entry = EntryName::master_key(&format!("compat-{}", std::process::id()));
    let mut store = Command::new("secret-tool")
        .args([
            "store",
            "--label",
            "old@grantkeeper:default (keyring v3.6.3)",
        ])
        .args(["service", entry.service(), "username", entry.user()])
        .args(["target", "default", "application", "rust-keyring"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    store
        .stdin
        .take()
        .unwrap()
        .write_all(b"written-by-keyring")
        .unwrap();
    assert!(store.wait().unwrap().success());

    assert_eq!(
        kc.get(&entry).unwrap().unwrap().expose(),
        "written-by-keyring"
    );
    kc.set(
        &entry,
        &grantkeeper_core::secret::SecretText::new("replaced"),
    )
    .unwrap();
    let search = Command::new("secret-tool")
        .args(["search", "--all", "--unlock"])
        .args(["service", entry.service(), "username", entry.user()])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&search.stdout).into_owned()
        + &String::from_utf8_lossy(&search.stderr);
    assert_eq!(listing.matches("secret = ").count(), 1, "{listing}");
    assert!(listing.contains("secret = replaced"), "{listing}");

    kc.delete(&entry).unwrap();
    assert!(kc.get(&entry).unwrap().is_none());
    kc.delete(&entry).unwrap();
}

/// Every keychain call of a process shares one D-Bus connection: a connection (and a key
/// exchange) per call is what gnome-keyring 42 does not survive under load.
#[test]
fn one_bus_connection_per_process() {
    let kc = keychain();
    let entry = EntryName::master_key(&format!("connections-{}", std::process::id()));
    std::thread::scope(|s| {
        for i in 0..4 {
            let (kc, entry) = (&kc, &entry);
            s.spawn(move || {
                for j in 0..10 {
                    let value = grantkeeper_core::secret::SecretText::new(format!("v{i}-{j}"));
                    kc.set(entry, &value).unwrap();
                    assert!(kc.get(entry).unwrap().is_some());
                }
            });
        }
    });
    kc.delete(&entry).unwrap();
    assert_eq!(bus_connections_of(std::process::id()), 1);
}

/// How many connections the given process holds on the session bus.
fn bus_connections_of(pid: u32) -> usize {
    let bus = |args: &[&str]| {
        let out = Command::new("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus"])
            .args(["/org/freedesktop/DBus"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let names = bus(&["org.freedesktop.DBus.ListNames"]);
    names
        .lines()
        .filter_map(|l| l.trim().strip_prefix("string \"")?.strip_suffix('"'))
        .filter(|name| name.starts_with(':'))
        .filter(|name| {
            let reply = bus(&[
                "org.freedesktop.DBus.GetConnectionUnixProcessID",
                &format!("string:{name}"),
            ]);
            reply.split_whitespace().last() == Some(&pid.to_string())
        })
        .count()
}

/// A Secret Service that exits (gnome-keyring 42 can abort under load) is reached again through
/// the daemon the bus starts in its place: the process's connection is replaced and the call
/// succeeds. (The test session's bus starts it unlocked; a desktop's would ask for the password.)
#[test]
fn a_restarted_secret_service_is_reached_again() {
    let kc = keychain();
    let entry = EntryName::master_key(&format!("restart-{}", std::process::id()));
    let value = grantkeeper_core::secret::SecretText::new("kept across the restart");
    kc.set(&entry, &value).unwrap();
    let daemon = secret_service_pid();
    assert!(Command::new("kill")
        .args(["-KILL", &daemon.to_string()])
        .status()
        .unwrap()
        .success());
    // Gone before the next call.
    let gone = std::time::Instant::now();
    while std::path::Path::new(&format!("/proc/{daemon}/status")).exists()
        && gone.elapsed() < std::time::Duration::from_secs(5)
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    assert_eq!(kc.get(&entry).unwrap().unwrap().expose(), value.expose());
    assert_ne!(secret_service_pid(), daemon, "the bus started a new daemon");
    kc.delete(&entry).unwrap();
}

fn secret_service_pid() -> u32 {
    let out = Command::new("dbus-send")
        .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus"])
        .args([
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
        ])
        .arg("string:org.freedesktop.secrets")
        .output()
        .unwrap();
    let reply = String::from_utf8_lossy(&out.stdout).into_owned();
    reply
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no Secret Service pid in {reply:?}"))
}

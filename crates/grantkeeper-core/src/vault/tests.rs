use rusqlite::params;

use super::tenants::slugify;
use super::*;
use crate::audit::ActorKind;
use crate::crypto::Aad;
use crate::crypto::VaultKeys;
use crate::error::Error;
use crate::keychain::EntryName;
use crate::keychain::MemoryKeychain;
use crate::test_support::{public_app, temp_vault, tokens};
use std::collections::BTreeMap;

fn app(t: &TenantVault<'_>) -> ProviderApp {
    let app = NewProviderApp {
        client_secret: Some(ClientSecret::new("s3cret")),
        default_scopes: vec!["openid".into()],
        ..public_app("idp", Endpoints::default())
    };
    t.add_provider_app(app, &Actor::new(ActorKind::Cli))
        .unwrap()
}

fn token_app(name: &str, base: &str) -> NewProviderApp {
    public_app(
        name,
        Endpoints {
            token: Some(format!("{base}/token")),
            ..Endpoints::default()
        },
    )
}

fn new_conn(app: &ProviderApp, name: &str) -> NewConnection {
    NewConnection {
        name: name.into(),
        provider_app_id: app.id.clone(),
        account: AccountIdentity::default(),
        scopes_requested: vec!["openid".into(), "email".into()],
        scopes_granted: Some(vec!["openid".into()]),
        consented_by: None,
        access_expiry: Some((now_ms() + 3_600_000, ExpirySource::Response)),
        refresh_expires_at: None,
        refresh_hard_expires_at: None,
        metadata: BTreeMap::from([("instance_url".into(), "https://x.example".into())]),
        dpop_key: None,
    }
}

/// A public client's app whose token endpoint is on `base`.
/// A provider app whose endpoints are on `base`, and a grant on it whose token expired.
fn expired_grant(v: &Vault, base: &str) -> (TenantId, ConnectionId) {
    let a = Actor::new(ActorKind::Cli);
    let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let app = scope.add_provider_app(token_app("idp", base), &a).unwrap();
    let mut conn = new_conn(&app, "crm");
    conn.access_expiry = Some((now_ms() - 60_000, ExpirySource::Response));
    let c = scope.store_connection(conn, tokens("1"), &a).unwrap();
    (t.id, c.id)
}

/// Bytes of page cache the vault's connection holds (SQLite's own count).
fn page_cache_bytes(v: &Vault) -> i32 {
    let conn = v.conn();
    let (mut current, mut highest) = (0, 0);
    // SAFETY: the handle is open for the guard's lifetime; the two out-pointers are valid.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_status(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
            &mut current,
            &mut highest,
            0,
        )
    };
    assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
    current
}

/// The desktop app frees the page cache when idle: it shrinks, and the next read still sees
/// every connection (filled again from the file).
#[test]
fn releasing_memory_empties_the_page_cache_and_loses_nothing() {
    let (_dir, _keychain, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let app = app(&scope);
    for i in 0..200 {
        scope
            .store_connection(new_conn(&app, &format!("crm-{i}")), tokens("1"), &a)
            .unwrap();
    }
    let count = || {
        v.connection_rows(&ConnectionFilter::default())
            .unwrap()
            .len()
    };
    assert_eq!(count(), 200);
    let full = page_cache_bytes(&v);
    v.release_memory().unwrap();
    let freed = page_cache_bytes(&v);
    assert!(
        freed * 4 < full,
        "page cache {full} bytes before, {freed} after"
    );
    assert_eq!(count(), 200);
    assert!(page_cache_bytes(&v) > freed);
}

/// Endpoints, client id or a connection's link changed in vault.db by someone without the
/// keychain: refused before any request, recorded, and the grant left as it was.
#[test]
fn settings_changed_outside_are_refused_before_any_request() {
    use crate::oauth::stub::{Stub, StubResponse};
    let good = Stub::start(|_| {
        StubResponse::json(
            200,
            r#"{"access_token":"at-2","token_type":"Bearer","expires_in":3600}"#,
        )
    });
    let evil = Stub::start(|_| StubResponse::json(400, r#"{"error":"invalid_grant"}"#));
    let (_dir, _kc, v) = temp_vault();
    let (tenant, id) = expired_grant(&v, &good.base);
    let a = Actor::new(ActorKind::Cli);
    let deadline = crate::deadline::Deadline::default();
    let min = crate::grants::DEFAULT_MIN_VALID;
    let edits = [
        format!(
            "UPDATE provider_apps SET endpoints = json_set(endpoints, '$.token', '{}/token')",
            evil.base
        ),
        "UPDATE provider_apps SET client_id = 'attacker'".to_owned(),
        "UPDATE provider_apps SET settings_mac = NULL".to_owned(),
        // DPoP turned off (or on) behind the app's back.
        "UPDATE provider_apps SET dpop = 0".to_owned(),
    ];
    for edit in &edits {
        let before: Vec<(String, Option<Vec<u8>>)> = {
            let c = v.conn();
            let mut st = c
                .prepare("SELECT endpoints, settings_mac FROM provider_apps")
                .unwrap();
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.collect::<rusqlite::Result<_>>().unwrap()
        };
        v.conn().execute(edit, []).unwrap();
        let scope = v.tenant(&tenant).unwrap();
        let e = scope.access_token(&id, min, &deadline, &a).unwrap_err();
        assert!(matches!(e, Error::Tampered(_)), "{edit}: {e}");
        assert!(e.to_string().contains("changed outside Grantkeeper"), "{e}");
        // Put the row back as it was.
        let c = v.conn();
        c.execute(
            "UPDATE provider_apps SET endpoints = ?1, settings_mac = ?2",
            params![before[0].0, before[0].1],
        )
        .unwrap();
        c.execute(
            "UPDATE provider_apps SET client_id = 'cid', dpop = NULL",
            [],
        )
        .unwrap();
    }
    // A connection moved to another app of the tenant (here: a second, evil one).
    let scope = v.tenant(&tenant).unwrap();
    let other = scope
        .add_provider_app(token_app("other", &evil.base), &a)
        .unwrap();
    v.conn()
        .execute(
            "UPDATE connections SET provider_app_id = ?1",
            [other.id.as_str()],
        )
        .unwrap();
    let e = scope.access_token(&id, min, &deadline, &a).unwrap_err();
    assert!(
        e.to_string().contains("the link of connection 'acme/crm'"),
        "{e}"
    );
    assert!(
        evil.requests.lock().unwrap().is_empty(),
        "0 requests reached the other server"
    );
    assert!(good.requests.lock().unwrap().is_empty());
    assert_eq!(
        scope.connection(&id).unwrap().status,
        ConnectionStatus::Active
    );
    let refused = v
        .history(&audit::HistoryFilter {
            kind: Some(EventKind::ConfigChanged),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.detail
                .as_ref()
                .is_some_and(|d| d["change"] == "outside_change_refused")
        })
        .count();
    assert_eq!(refused, edits.len() + 1);
    // Put back, the grant works: the request goes to the app as registered.
    v.conn()
        .execute(
            "UPDATE connections SET provider_app_id = (SELECT id FROM provider_apps WHERE name = 'idp')",
            [],
        )
        .unwrap();
    let tok = scope.access_token(&id, min, &deadline, &a).unwrap();
    assert_eq!(tok.token.expose(), "at-2");
    assert_eq!(good.requests.lock().unwrap().len(), 1);
}

/// Deleting a tenant deletes its key from the keychain: a copy of vault.db taken before
/// cannot decrypt the tenant's secrets any more.
#[test]
fn deleting_a_tenant_crypto_shreds_old_copies() {
    let (dir, kc, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let app = app(&scope);
    let c = scope
        .store_connection(new_conn(&app, "crm"), tokens("1"), &a)
        .unwrap();
    drop(scope);
    v.conn()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let home = dir.path().join("home");
    let copy = dir.path().join("before-delete.db");
    std::fs::copy(home.join(DB_FILE), &copy).unwrap();
    v.delete_tenant(&t.id, &a).unwrap();
    drop(v);
    std::fs::copy(&copy, home.join(DB_FILE)).unwrap();
    let _ = std::fs::remove_file(home.join("vault.db-wal"));
    let v = Vault::open(&home, kc.clone()).unwrap();
    let e = v.tenant(&t.id).unwrap_err().to_string();
    assert!(e.contains("its secrets cannot be decrypted"), "{e}");
    let keys =
        VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
            .unwrap();
    assert!(!keys.tenants.contains_key(t.id.as_str()));
    // The master key alone opens nothing of it either.
    let wrapped: Vec<u8> = v
        .conn()
        .query_row(
            "SELECT wrapped_key FROM tenants WHERE id = ?1",
            [t.id.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert!(v
        .master
        .unwrap_key(&wrapped, &Aad::data_key(&v.id, t.id.as_str()))
        .is_err());
    assert!(v
        .master
        .unwrap_key(&wrapped, &Aad::tenant_data_key(&v.id, t.id.as_str()))
        .is_err());
    let _ = c;
}

/// A tenant made before tenant keys (data key wrapped by the master key, no MACs) is moved
/// over at its first use, its secrets kept.
#[test]
fn tenants_from_older_vaults_are_adopted() {
    let (dir, kc, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    let t = v.create_tenant("Acme", Some("acme"), "", &a).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let app = app(&scope);
    scope
        .store_connection(new_conn(&app, "crm"), tokens("1"), &a)
        .unwrap();
    let dk = v.local_store(&t.id).unwrap().key.clone();
    drop(scope);
    let legacy = v.master.wrap(&dk, &Aad::data_key(&v.id, t.id.as_str()));
    {
        let c = v.conn();
        c.execute("UPDATE tenants SET wrapped_key = ?1", [&legacy])
            .unwrap();
        c.execute("UPDATE provider_apps SET settings_mac = NULL", [])
            .unwrap();
        c.execute("UPDATE connections SET link_mac = NULL", [])
            .unwrap();
    }
    // The keychain entry as older versions wrote it: the master key alone.
    kc.set(&EntryName::master_key(&v.id), &v.master.to_keychain_text())
        .unwrap();
    drop(v);
    let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let keys =
        VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
            .unwrap();
    assert!(keys.tenants.contains_key(t.id.as_str()), "a tenant key now");
    assert_eq!(
        scope.client_secret(&app.id).unwrap().unwrap().expose(),
        "s3cret"
    );
    let c = scope.connection_named("crm").unwrap();
    assert_eq!(scope.connection_app(&c).unwrap().id, app.id);
    let tok = scope
        .access_token(
            &c.id,
            crate::grants::DEFAULT_MIN_VALID,
            &crate::deadline::Deadline::default(),
            &a,
        )
        .unwrap();
    assert_eq!(tok.token.expose(), "at-1");
    drop(scope);

    // Put back as it was before the adoption (an older copy of the vault): refused now.
    {
        let c = v.conn();
        c.execute("UPDATE tenants SET wrapped_key = ?1", [&legacy])
            .unwrap();
        c.execute("UPDATE provider_apps SET settings_mac = NULL", [])
            .unwrap();
    }
    drop(v);
    let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
    let e = v.tenant(&t.id).unwrap_err();
    assert!(matches!(e, Error::Tampered(_)), "{e}");
    assert!(e.to_string().contains("older copy of the vault"), "{e}");

    // A crash in the middle of an adoption (keychain marked, database not yet committed):
    // the next use adopts again.
    let mut keys =
        VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
            .unwrap();
    keys.adopting.insert(t.id.to_string());
    kc.set(&EntryName::master_key(&v.id), &keys.to_keychain_text())
        .unwrap();
    drop(v);
    let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    assert_eq!(
        scope.client_secret(&app.id).unwrap().unwrap().expose(),
        "s3cret"
    );
    let keys =
        VaultKeys::from_keychain_text(&kc.get(&EntryName::master_key(&v.id)).unwrap().unwrap())
            .unwrap();
    assert!(keys.adopting.is_empty(), "the adoption finished");
}

#[test]
fn reopen_uses_the_same_master_key() {
    let (dir, kc, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    let t = v.create_tenant("Acme Corp", None, "", &a).unwrap();
    assert_eq!(t.slug, "acme-corp");
    drop(v);
    let v = Vault::open(&dir.path().join("home"), kc.clone()).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let app = app(&scope);
    assert_eq!(
        scope.client_secret(&app.id).unwrap().unwrap().expose(),
        "s3cret"
    );
    assert_eq!(kc.refresh_tokens(), 0);
}

#[test]
fn missing_master_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    Vault::open(&home, Arc::new(MemoryKeychain::default())).unwrap();
    let err = Vault::open(&home, Arc::new(MemoryKeychain::default())).unwrap_err();
    assert!(matches!(err, Error::MasterKeyMissing { .. }), "{err}");
    assert!(err.to_string().contains("master key"));
}

#[test]
fn store_hand_out_delete() {
    let (_d, kc, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    let t = v.create_tenant("Acme", None, "", &a).unwrap();
    let scope = v.tenant(&t.id).unwrap();
    let app = app(&scope);
    let c = scope
        .store_connection(new_conn(&app, "crm"), tokens("1"), &a)
        .unwrap();
    assert_eq!(c.scopes_granted, vec!["openid"]);
    assert!(c.has_refresh_token);
    assert_eq!(kc.refresh_tokens(), 1);
    let tok = scope
        .access_token(
            &c.id,
            crate::grants::DEFAULT_MIN_VALID,
            &crate::deadline::Deadline::default(),
            &a.clone().with_hint(Some("sync".into())),
        )
        .unwrap();
    assert_eq!(tok.token.expose(), "at-1");
    let hist = v.connection_history(&c.id, None, 10).unwrap();
    assert_eq!(hist[0].kind, EventKind::HandedOut);
    assert_eq!(hist[0].app_hint.as_deref(), Some("sync"));
    assert_eq!(
        hist[0].fingerprint.as_deref(),
        Some(v.fingerprint("at-1").as_str())
    );
    assert_eq!(hist[1].kind, EventKind::Consented);
    assert!(scope.connection(&c.id).unwrap().last_used_at.is_some());
    let dup = scope
        .store_connection(new_conn(&app, "crm"), tokens("2"), &a)
        .unwrap_err();
    assert!(matches!(&dup, Error::AlreadyExists { what: "connection", name } if name == "crm"));
    assert_eq!(
        kc.refresh_tokens(),
        1,
        "a failed store leaves no keychain entry"
    );
    scope.delete_connection(&c.id, &a).unwrap();
    assert_eq!(kc.refresh_tokens(), 0);
    assert!(v.verify_history().unwrap().is_intact());
}

#[test]
fn other_tenant_cannot_reach_connection() {
    let (_d, _kc, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    let ta = v.create_tenant("A", None, "", &a).unwrap();
    let tb = v.create_tenant("B", None, "", &a).unwrap();
    let sa = v.tenant(&ta.id).unwrap();
    let sb = v.tenant(&tb.id).unwrap();
    let c = sa
        .store_connection(new_conn(&app(&sa), "crm"), tokens("a"), &a)
        .unwrap();
    assert!(matches!(
        sb.access_token(
            &c.id,
            crate::grants::DEFAULT_MIN_VALID,
            &crate::deadline::Deadline::default(),
            &a
        ),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(sb.connection(&c.id), Err(Error::NotFound { .. })));
    assert!(matches!(
        sb.delete_connection(&c.id, &a),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn slugs_and_names_are_validated() {
    let (_d, _kc, v) = temp_vault();
    let a = Actor::new(ActorKind::Cli);
    assert!(v.create_tenant("", None, "", &a).is_err());
    assert!(v.create_tenant("X", Some("Bad Slug"), "", &a).is_err());
    v.create_tenant("X", Some("x"), "", &a).unwrap();
    assert!(matches!(
        v.create_tenant("X2", Some("x"), "", &a),
        Err(Error::AlreadyExists { what: "tenant", .. })
    ));
    let scope = v.tenant(&v.find_tenant("x").unwrap().id).unwrap();
    app(&scope);
    let again = scope.add_provider_app(public_app("idp", Endpoints::default()), &a);
    assert!(
        matches!(&again, Err(Error::AlreadyExists { what: "provider app", name }) if name == "idp"),
        "{again:?}"
    );
    assert_eq!(slugify("  Foo & Bar, Inc. "), "foo-bar-inc");
    assert!(validate_name("connection", "a/b").is_err());
}

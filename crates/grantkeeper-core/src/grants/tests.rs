use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;
use crate::audit::ActorKind;
use crate::audit::EventKind;
use crate::catalog::{Catalog, Revocation};
use crate::deadline::Deadline;
use crate::error::Error;
use crate::error::FailureClass;
use crate::keychain::{Keychain, MemoryKeychain};
use crate::model::Endpoints;
use crate::model::{now_ms, ConnectionId, ConnectionStatus, ExpirySource};
use crate::oauth::flow::{Client, Quirks};
use crate::oauth::stub::{Stub, StubRequest, StubResponse};
use crate::test_support::cli;
use crate::test_support::{acme, new_connection, public_app, temp_vault, tokens};
use crate::vault::NewConnection;
use crate::vault::TenantVault;
use crate::vault::LOCKS_DIR;
use crate::Vault;
use rusqlite::params;
use serde_json::json;

pub(super) struct Fx {
    pub(super) _dir: tempfile::TempDir,
    pub(super) kc: Arc<MemoryKeychain>,
    pub(super) vault: Vault,
    pub(super) stub: Stub,
    pub(super) id: ConnectionId,
}

/// A connection whose access token expired a minute ago, with refresh token `rt-0`.
pub(super) fn fx(handler: impl Fn(&StubRequest) -> StubResponse + Send + Sync + 'static) -> Fx {
    let stub = Stub::start(handler);
    let (dir, kc, vault) = temp_vault();
    let vault = vault.with_http_timeout(Duration::from_secs(2));
    let id = {
        let scope = acme(&vault);
        let endpoints = Endpoints {
            token: Some(format!("{}/token", stub.base)),
            revocation: Some(format!("{}/revoke", stub.base)),
            ..Endpoints::default()
        };
        let app = scope
            .add_provider_app(public_app("stub", endpoints), &cli())
            .unwrap();
        store_grant(&scope, &app.id, "c", true)
    };
    Fx {
        _dir: dir,
        kc,
        vault,
        stub,
        id,
    }
}

pub(super) fn scope(f: &Fx) -> TenantVault<'_> {
    f.vault
        .tenant(&f.vault.find_tenant("acme").unwrap().id)
        .unwrap()
}

pub(super) fn local(f: &Fx) -> crate::vault::LocalStore<'_> {
    f.vault
        .local_store(&f.vault.find_tenant("acme").unwrap().id)
        .unwrap()
}

fn stored_rt(f: &Fx) -> String {
    let t = local(f);
    f.kc.get(&t.refresh_entry(&f.id))
        .unwrap()
        .map(|s| s.expose().to_owned())
        .unwrap_or_default()
}

pub(super) fn refresh_requests(f: &Fx) -> Vec<String> {
    f.stub
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/token")
        .map(|r| r.body.clone())
        .collect()
}

pub(super) fn rotating() -> impl Fn(&StubRequest) -> StubResponse + Send + Sync + 'static {
    let n = AtomicUsize::new(0);
    move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        StubResponse::json(
            200,
            &format!(
                r#"{{"access_token":"at-{i}","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-{i}"}}"#
            ),
        )
    }
}

#[test]
fn a_valid_token_needs_no_request() {
    let f = fx(rotating());
    let t = scope(&f);
    t.access_token(&f.id, Duration::ZERO, &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(refresh_requests(&f).len(), 1, "expired: one refresh");
    let tok = t
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(tok.token.expose(), "at-1");
    assert_eq!(refresh_requests(&f).len(), 1, "valid: no request");
}

/// A hand-out carries its own token's expiry: from the fast path, from the refresh that made
/// it, and not a later token's.
#[test]
fn a_hand_out_carries_its_tokens_expiry() {
    let f = fx(rotating());
    let t = scope(&f);
    let refreshed = t
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    let stored = t.connection(&f.id).unwrap().access_expires_at;
    assert!(stored.is_some());
    assert_eq!(refreshed.expires_at, stored);
    let cached = t
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    assert_eq!((cached.token.expose(), cached.expires_at), ("at-1", stored));
    std::thread::sleep(Duration::from_millis(5));
    let forced = t.refresh(&f.id, &Deadline::default(), &cli()).unwrap();
    assert_eq!(forced.token.expose(), "at-2");
    assert!(forced.expires_at > stored, "the new token's expiry");
    assert_eq!(
        forced.expires_at,
        t.connection(&f.id).unwrap().access_expires_at
    );
    assert_eq!(
        cached.expires_at, stored,
        "the earlier hand-out keeps its own"
    );
}

#[test]
fn rotation_stores_the_new_refresh_token_first() {
    let f = fx(rotating());
    let t = scope(&f);
    let tok = t
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(tok.token.expose(), "at-1");
    assert_eq!(stored_rt(&f), "rt-1");
    assert!(refresh_requests(&f)[0].contains("refresh_token=rt-0"));
    let kinds: Vec<_> = f
        .vault
        .connection_history(&f.id, None, 3)
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::HandedOut,
            EventKind::Refreshed,
            EventKind::Consented
        ]
    );
    let journal: i64 = f
        .vault
        .conn()
        .query_row("SELECT COUNT(*) FROM refresh_journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, 0);
    let c = t.connection(&f.id).unwrap();
    assert!(c.last_refresh_at.is_some());
    assert!(c.access_expires_at.unwrap() > now_ms() + 3_500_000);
}

#[test]
fn absurd_lifetimes_and_min_valid_are_clamped_without_overflow() {
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let ten_years = crate::oauth::token::lifetime_ms(u64::MAX);
    let jwt_max = format!(
        "{}.{}.s",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"exp":{}}}"#, i64::MAX))
    );
    let jwt_neg = format!(
        "{}.{}.s",
        b64(r#"{"alg":"none"}"#),
        b64(&format!(r#"{{"exp":{}}}"#, i64::MIN))
    );
    let answers = [
        format!(
            r#"{{"access_token":"at-1","token_type":"Bearer","expires_in":{}}}"#,
            u64::MAX
        ),
        format!(
            r#"{{"access_token":"at-2","token_type":"Bearer","expires_in":"{}"}}"#,
            i64::MAX
        ),
        format!(r#"{{"access_token":"{jwt_max}","token_type":"Bearer"}}"#),
        format!(r#"{{"access_token":"{jwt_neg}","token_type":"Bearer"}}"#),
    ];
    let n = Arc::new(AtomicUsize::new(0));
    let (n2, answers2) = (n.clone(), answers.clone());
    let f = fx(move |_| {
        let i = n2.fetch_add(1, Ordering::SeqCst).min(3);
        StubResponse::json(200, &answers2[i])
    });
    let t = scope(&f);
    for (i, expected) in [Some(ten_years), Some(ten_years), Some(ten_years), None]
        .into_iter()
        .enumerate()
    {
        // A token valid for exactly 10 years satisfies a 10-year min_valid in the same ms.
        std::thread::sleep(Duration::from_millis(3));
        let before = now_ms();
        // min_valid of u64::MAX seconds: clamped to 10 years, so a refresh, never a panic.
        t.access_token(&f.id, Duration::MAX, &Deadline::default(), &cli())
            .unwrap();
        let at = t.connection(&f.id).unwrap().access_expires_at.unwrap();
        match expected {
            Some(life) => assert!(
                at >= before + life && at <= now_ms() + life,
                "answer {i}: {at}"
            ),
            None => assert_eq!(at, 0, "a negative exp is long past"),
        }
    }
    assert_eq!(n.load(Ordering::SeqCst), 4, "each call refreshed");
    // The long-expired token is refreshed again, even for a small min_valid.
    t.access_token(&f.id, Duration::from_secs(1), &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 5);
}

#[test]
fn without_a_new_refresh_token_the_old_one_stays() {
    let f = fx(|_| {
        StubResponse::json(
            200,
            r#"{"access_token":"at-new","token_type":"Bearer","expires_in":60}"#,
        )
    });
    scope(&f)
        .access_token(&f.id, Duration::from_secs(1), &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(stored_rt(&f), "rt-0");
}

#[test]
fn invalid_grant_means_reconsent_and_keeps_the_connection() {
    let f = fx(|_| {
        StubResponse::json(
            400,
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
        )
    });
    let t = scope(&f);
    let err = t
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refresh {
                class: FailureClass::NeedsReconsent,
                ..
            }
        ),
        "{err}"
    );
    let c = t.connection(&f.id).unwrap();
    assert_eq!(c.status, ConnectionStatus::NeedsReconsent);
    assert!(c.status_detail.unwrap().contains("Consent again"));
    assert_eq!(stored_rt(&f), "rt-0", "kept for review");
    assert_eq!(
        f.vault.connection_history(&f.id, None, 1).unwrap()[0].kind,
        EventKind::RefreshFailed
    );
    // No further requests while it needs re-consent, and a typed error says why.
    assert!(matches!(
        t.access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli()),
        Err(Error::NotUsable {
            status: ConnectionStatus::NeedsReconsent,
            ..
        })
    ));
    assert_eq!(refresh_requests(&f).len(), 1);
}

#[test]
fn invalid_client_is_a_configuration_error() {
    let f = fx(|_| StubResponse::json(401, r#"{"error":"invalid_client"}"#));
    let err = scope(&f)
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refresh {
                class: FailureClass::Configuration,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        scope(&f).connection(&f.id).unwrap().status,
        ConnectionStatus::Error
    );
}

#[test]
fn server_errors_are_retried_then_leave_state_unchanged() {
    let f = fx(|_| StubResponse::json(503, r#"{"error":"temporarily_unavailable"}"#));
    let t = scope(&f);
    let before = t.connection(&f.id).unwrap();
    let err = t
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Refresh {
                class: FailureClass::Transient,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        refresh_requests(&f).len(),
        ATTEMPTS as usize,
        "bounded retries"
    );
    let after = t.connection(&f.id).unwrap();
    assert_eq!(before.status, after.status);
    assert_eq!(before.access_expires_at, after.access_expires_at);
    assert_eq!(stored_rt(&f), "rt-0");
}

#[test]
fn a_journaled_refresh_token_is_recovered() {
    let f = fx(rotating());
    let t = local(&f);
    // A crash after the journal write, before the keychain write.
    let blob = t.seal(
        crate::vault::Sealed::JournaledRefreshToken,
        f.id.as_str(),
        "rt-journaled",
    );
    f.vault
        .conn()
        .execute(
            "INSERT INTO refresh_journal VALUES (?1, ?2, 0)",
            params![f.id.as_str(), blob],
        )
        .unwrap();
    scope(&f)
        .access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    assert!(refresh_requests(&f)[0].contains("refresh_token=rt-journaled"));
    assert_eq!(stored_rt(&f), "rt-1");
}

#[test]
fn concurrent_callers_share_one_refresh() {
    let f = fx(rotating());
    let vault = &f.vault;
    let id = &f.id;
    let tokens: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(move || {
                    let t = vault
                        .tenant(&vault.find_tenant("acme").unwrap().id)
                        .unwrap();
                    t.access_token(id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
                        .unwrap()
                        .token
                        .expose()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(refresh_requests(&f).len(), 1);
    assert!(tokens.iter().all(|t| t == "at-1"), "{tokens:?}");
    let handed = f
        .vault
        .connection_history(id, None, 100)
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::HandedOut)
        .count();
    assert_eq!(handed, 16, "every caller recorded");
}

#[test]
fn revoke_rfc7009_forgets_the_tokens() {
    let f = fx(|req| match req.path.as_str() {
        "/revoke" => StubResponse::json(200, "{}"),
        _ => StubResponse::json(500, "{}"),
    });
    let t = scope(&f);
    let out = t.revoke(&f.id, &cli()).unwrap();
    assert!(out.revoked_at_provider, "{}", out.detail);
    assert!(out.caveat.contains("until they expire"));
    let reqs = f.stub.requests.lock().unwrap().clone();
    assert!(reqs.iter().any(|r| r.path == "/revoke"
        && r.body.contains("token=rt-0")
        && r.body.contains("token_type_hint=refresh_token")));
    assert!(reqs
        .iter()
        .any(|r| r.path == "/revoke" && r.body.contains("token=at-0")));
    assert_eq!(stored_rt(&f), "");
    let c = t.connection(&f.id).unwrap();
    assert_eq!(c.status, ConnectionStatus::Revoked);
    assert!(!c.has_refresh_token);
    assert!(matches!(
        t.access_token(&f.id, DEFAULT_MIN_VALID, &Deadline::default(), &cli()),
        Err(Error::NotUsable {
            status: ConnectionStatus::Revoked,
            ..
        })
    ));
    assert!(matches!(
        t.introspect(&f.id),
        Err(Error::NotUsable {
            status: ConnectionStatus::Revoked,
            ..
        })
    ));
    assert_eq!(
        f.vault.connection_history(&f.id, None, 1).unwrap()[0].kind,
        EventKind::Revoked
    );
}

/// A server on 127.0.0.1 that plays any provider: discovery without a revocation endpoint
/// (so the preset's revocation path applies), and 200 to everything else.
fn any_provider() -> Stub {
    Stub::start(|req| {
        if req.path == "/.well-known/openid-configuration" {
            let host = req
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let base = format!("http://{host}");
            StubResponse::json(
                200,
                &json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                })
                .to_string(),
            )
        } else {
            StubResponse::json(200, "{}")
        }
    })
}

/// A grant with tokens `at-0` / `rt-0` on a newly registered app.
fn grant_on(
    vault: &Vault,
    spec: crate::provider_app::ProviderAppSpec,
) -> (TenantVault<'_>, crate::model::ProviderApp, ConnectionId) {
    let t = vault
        .find_tenant("acme")
        .or_else(|_| vault.create_tenant("Acme", Some("acme"), "", &cli()))
        .unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let app = scope.register_provider_app(spec, &cli()).unwrap();
    let id = store_grant(&scope, &app.id, &app.name, false);
    (scope, app, id)
}

/// A public client's app with these endpoints.
/// A grant on `app` with tokens `at-0` / `rt-0`, its access token expired a minute ago when
/// `expired`, else without a known expiry.
fn store_grant(
    scope: &TenantVault<'_>,
    app: &crate::model::ProviderAppId,
    name: &str,
    expired: bool,
) -> ConnectionId {
    let grant = NewConnection {
        access_expiry: expired.then(|| (now_ms() - 60_000, ExpirySource::Response)),
        ..new_connection(app, name)
    };
    scope
        .store_connection(grant, tokens("0"), &cli())
        .unwrap()
        .id
}

fn spec(
    name: &str,
    preset: &str,
    endpoints: crate::provider_app::EndpointSource,
) -> crate::provider_app::ProviderAppSpec {
    crate::provider_app::ProviderAppSpec {
        name: name.into(),
        preset: Some(preset.into()),
        endpoints,
        client_id: "cid 1".into(),
        client_secret: Some(crate::secret::ClientSecret::new("sec")),
        client_auth: None,
        dpop: None,
        client_key_pem: None,
        client_cert_pem: None,
        trusted_ca_pem: None,
        scopes: Some(vec![]),
        redirect: None,
        port: None,
        relay_url: None,
    }
}

/// An app stored with its issuer only (as the demo preset was): refresh, introspection and
/// revocation find their endpoints through the issuer instead of failing.
#[test]
fn an_issuer_only_app_discovers_its_endpoints() {
    let stub = Stub::start(|req| {
        let host = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let base = format!("http://{host}");
        match req.path.as_str() {
            "/.well-known/openid-configuration" => StubResponse::json(
                200,
                &json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/authorize"),
                    "token_endpoint": format!("{base}/token"),
                    "revocation_endpoint": format!("{base}/revoke"),
                })
                .to_string(),
            ),
            "/token" => StubResponse::json(
                200,
                r#"{"access_token":"at-1","token_type":"Bearer","expires_in":3600}"#,
            ),
            _ => StubResponse::json(200, "{}"),
        }
    });
    let (_dir, _kc, vault) = temp_vault();
    let t = vault
        .create_tenant("Acme", Some("acme"), "", &cli())
        .unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let issuer_only = Endpoints {
        issuer: Some(stub.base.clone()),
        ..Endpoints::default()
    };
    let app = scope
        .add_provider_app(public_app("demo", issuer_only), &cli())
        .unwrap();
    let id = store_grant(&scope, &app.id, "c", true);
    let tok = scope
        .access_token(&id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(tok.token.expose(), "at-1");
    assert!(scope.revoke(&id, &cli()).unwrap().revoked_at_provider);
    let paths: Vec<String> = stub
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        paths.contains(&"/token".to_owned()) && paths.contains(&"/revoke".to_owned()),
        "{paths:?}"
    );
}

/// Every preset that revokes through an API, registered with a local server as its issuer:
/// the revocation reaches that server in the preset's style, never the preset's public host
/// (which this machine could not reach: the outcome would then be "not confirmed").
#[test]
fn every_revocation_style_goes_to_the_issuer_given() {
    let stub = any_provider();
    let (_dir, _kc, vault) = temp_vault();
    let vault = vault.with_http_timeout(Duration::from_secs(2));
    let origin = url::Url::parse(&stub.base).unwrap();
    let mut styles = BTreeMap::<&str, usize>::new();
    for preset in &Catalog::builtin().providers {
        let Some(expected) = preset.revocation_url_at(&origin, "cid 1") else {
            continue;
        };
        let source = crate::provider_app::EndpointSource::Issuer {
            issuer: stub.base.clone(),
        };
        let (scope, app, id) = grant_on(&vault, spec(&preset.id, &preset.id, source));
        assert_eq!(app.endpoints.revocation.as_deref(), Some(expected.as_str()));
        let before = stub.requests.lock().unwrap().len();
        let out = scope.revoke(&id, &cli()).unwrap();
        assert!(out.revoked_at_provider, "{}: {}", preset.id, out.detail);
        let reqs = stub.requests.lock().unwrap()[before..].to_vec();
        let path = &expected[stub.base.len()..];
        let header = |r: &StubRequest, k: &str| {
            r.headers
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let style = match &preset.revocation {
            Revocation::Rfc7009 => {
                assert!(reqs.iter().any(|r| r.method == "POST"
                    && r.path == path
                    && r.body.contains("token=rt-0")));
                "rfc7009"
            }
            Revocation::BearerPost { .. } => {
                assert!(reqs.iter().any(|r| r.method == "POST"
                    && r.path == path
                    && header(r, "authorization") == "Bearer at-0"));
                "bearer_post"
            }
            Revocation::BasicDeleteJson { field, .. } => {
                assert!(path.contains("/cid%201/"), "{path}");
                assert!(reqs.iter().any(|r| r.method == "DELETE"
                    && r.path == path
                    && header(r, "authorization").starts_with("Basic ")
                    && r.body.contains(&format!("\"{field}\":\"at-0\""))));
                "basic_delete_json"
            }
            Revocation::Manual { .. } => unreachable!("no URL"),
        };
        *styles.entry(style).or_default() += 1;
    }
    for style in ["rfc7009", "bearer_post", "basic_delete_json"] {
        assert!(
            styles.get(style).is_some_and(|n| *n > 0),
            "{style}: {styles:?}"
        );
    }
}

/// Explicit endpoints with a preset, and `--var` overrides: the app's own URL is used.
#[test]
fn explicit_and_variable_revocation_urls_are_kept() {
    let stub = any_provider();
    let (_dir, _kc, vault) = temp_vault();
    let explicit = crate::provider_app::EndpointSource::Explicit {
        authorization: format!("{}/authorize", stub.base),
        token: format!("{}/token", stub.base),
        revocation: Some(format!("{}/ghes/grant", stub.base)),
    };
    let (scope, _, id) = grant_on(&vault, spec("gh", "github", explicit));
    assert!(scope.revoke(&id, &cli()).unwrap().revoked_at_provider);
    assert!(stub
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.method == "DELETE" && r.path == "/ghes/grant"));

    let vars = |pairs: &[(&str, &str)]| crate::provider_app::EndpointSource::Preset {
        vars: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let (scope, app, _) = grant_on(
        &vault,
        spec(
            "ghes",
            "github-enterprise-server",
            vars(&[("host", "ghe.acme.example")]),
        ),
    );
    assert_eq!(
        app.endpoints.revocation.as_deref(),
        Some("https://ghe.acme.example/api/v3/applications/cid%201/grant")
    );
    let (_, app, _) = grant_on(&vault, spec("slack", "slack", vars(&[])));
    assert_eq!(
        app.endpoints.revocation.as_deref(),
        Some("https://slack.com/api/auth.revoke")
    );
    // An app stored before revocation URLs were kept for every style: the preset's URL
    // only while the app uses the preset's own hosts.
    let ctx = |app_id: &str, token: &str| {
        let mut app = scope.provider_app(app_id).unwrap();
        app.endpoints.revocation = None;
        app.endpoints.token = Some(token.into());
        crate::provider_app::AppContext {
            preset: Catalog::builtin().get("slack").ok(),
            quirks: Quirks::new(None, false),
            client: Client {
                id: "cid".into(),
                secret: None,
                key: None,
            },
            app,
            iss_required: false,
            par_endpoint: None,
            dpop_offered: false,
            dpop: None,
            certificate: None,
            http: crate::http::HttpClient::default(),
        }
    };
    let slack_token = Catalog::builtin()
        .get("slack")
        .unwrap()
        .resolve(&BTreeMap::new())
        .unwrap()
        .token
        .unwrap();
    assert_eq!(
        ctx(app.id.as_str(), &slack_token).revocation_url().unwrap(),
        "https://slack.com/api/auth.revoke"
    );
    let moved = ctx(app.id.as_str(), &format!("{}/token", stub.base));
    assert!(moved
        .revocation_url()
        .unwrap_err()
        .to_string()
        .contains("no revocation endpoint"));
}

/// An id from a caller never becomes a path unless it is a well-formed id.
#[test]
fn malformed_ids_never_reach_the_file_system() {
    let f = fx(|_| StubResponse::json(200, "{}"));
    let t = scope(&f);
    for bad in ["../../../tmp/gk-evil", "a/b", "", &"x".repeat(5000)] {
        let id = ConnectionId::from_string(bad);
        assert!(matches!(t.revoke(&id, &cli()), Err(Error::NotFound { .. })));
        assert!(matches!(
            t.refresh(&id, &Deadline::default(), &cli()),
            Err(Error::NotFound { .. })
        ));
    }
    assert!(!std::path::Path::new("/tmp/gk-evil.lock").exists());
    let locks = f.vault.home().join(LOCKS_DIR);
    let names: Vec<_> = std::fs::read_dir(&locks)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn a_failed_revocation_is_recorded_as_such() {
    let f = fx(|_| StubResponse::json(503, "{}"));
    let out = scope(&f).revoke(&f.id, &cli()).unwrap();
    assert!(!out.revoked_at_provider);
    assert!(out.detail.contains("not revoked at the provider"));
    let ev = &f.vault.connection_history(&f.id, None, 1).unwrap()[0];
    assert_eq!(ev.detail.as_ref().unwrap()["at_provider"], false);
}

#[test]
fn maintenance_keeps_idle_refresh_tokens_alive_and_warns() {
    let f = fx(|_| {
        StubResponse::json(
            200,
            r#"{"access_token":"at-k","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-k","refresh_token_expires_in":5184000}"#,
        )
    });
    let day = 86_400_000;
    let db = f.vault.conn();
    db.execute(
        "UPDATE connections SET refresh_expires_at = ?1",
        [now_ms() + 2 * day],
    )
    .unwrap();
    drop(db);
    let report = f
        .vault
        .maintain(
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(30 * 86_400),
        )
        .unwrap();
    assert_eq!(report.refreshed, vec![f.id.clone()]);
    assert!(report.failed.is_empty());
    assert_eq!(stored_rt(&f), "rt-k");
    let last = &f.vault.connection_history(&f.id, None, 2).unwrap()[1];
    assert_eq!(last.kind, EventKind::Refreshed);
    assert_eq!(last.actor, Some(ActorKind::Background));
    // The refresh reset the inactivity clock (this provider states no window).
    assert_eq!(
        scope(&f).connection(&f.id).unwrap().refresh_expires_at,
        None
    );
    // A hard expiry is warned about, not refreshed.
    f.vault
        .conn()
        .execute(
            "UPDATE connections SET refresh_hard_expires_at = ?1",
            [now_ms() + 3 * day],
        )
        .unwrap();
    let report = f
        .vault
        .maintain(
            Duration::from_secs(7 * 86_400),
            Duration::from_secs(30 * 86_400),
        )
        .unwrap();
    assert!(report.refreshed.is_empty());
    assert_eq!(report.warnings.len(), 1);
    assert!(report.warnings[0].hard);
}

#[test]
fn inspection_decodes_jwts_offline() {
    let f = fx(rotating());
    let ins = scope(&f).inspect(&f.id).unwrap();
    assert!(!ins.access_token_is_jwt, "at-0 is opaque");
    assert!(ins.id_token.is_none());
}

/// Explicit endpoints at `stub` for a preset's app.
fn at_stub(stub: &Stub) -> crate::provider_app::EndpointSource {
    crate::provider_app::EndpointSource::Explicit {
        authorization: format!("{}/authorize", stub.base),
        token: format!("{}/token", stub.base),
        revocation: None,
    }
}

/// A refused refresh names the cut-off the catalog knows but the answer does not say: Google
/// ends the refresh tokens of apps in testing status 7 days after consent.
#[test]
fn a_refused_refresh_names_the_testing_status_cut_off() {
    let stub = Stub::start(|_| {
        StubResponse::json(
            400,
            r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        )
    });
    let (_dir, _kc, vault) = temp_vault();
    let detail = |preset: &str| {
        let (scope, app, _) = grant_on(&vault, spec(preset, preset, at_stub(&stub)));
        let id = store_grant(&scope, &app.id, &format!("{preset}-expired"), true);
        let err = scope
            .access_token(&id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Refresh {
                    class: FailureClass::NeedsReconsent,
                    ..
                }
            ),
            "{err}"
        );
        scope.connection(&id).unwrap().status_detail.unwrap()
    };
    let google = detail("google");
    assert!(google.contains("Consent again"), "{google}");
    assert!(
        google.contains("testing status, its refresh tokens end 7 days after consent"),
        "{google}"
    );
    let xero = detail("xero");
    assert!(!xero.contains("testing status"), "{xero}");
}

/// Intuit reports the refresh token's 5-year hard expiry when asked: the refresh asks, keeps the
/// reported end, and keeps the stored one when an answer leaves it out.
#[test]
fn a_refresh_keeps_the_hard_expiry_the_provider_reports() {
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    let stub = Stub::start(move |_| {
        let hard = if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            r#","x_refresh_token_hard_expires_in":86400"#
        } else {
            ""
        };
        StubResponse::json(
            200,
            &format!(
                r#"{{"token_type":"bearer","access_token":"at-1","expires_in":3600,"refresh_token":"rt-1","x_refresh_token_expires_in":8640000{hard}}}"#
            ),
        )
    });
    let (_dir, _kc, vault) = temp_vault();
    let (scope, app, _) = grant_on(&vault, spec("qb", "quickbooks", at_stub(&stub)));
    let id = store_grant(&scope, &app.id, "qb-expired", true);
    let before = now_ms();
    scope
        .access_token(&id, DEFAULT_MIN_VALID, &Deadline::default(), &cli())
        .unwrap();
    let after = now_ms();
    let c = scope.connection(&id).unwrap();
    let hard = c.refresh_hard_expires_at.expect("a hard expiry");
    assert!(
        (before + 86_400_000..=after + 86_400_000).contains(&hard),
        "{hard}"
    );
    let sliding = c.refresh_expires_at.expect("a sliding expiry");
    assert!((before + 8_640_000_000..=after + 8_640_000_000).contains(&sliding));
    // The next answer has no hard expiry: the stored one stays.
    scope
        .access_token(&id, Duration::from_secs(7200), &Deadline::default(), &cli())
        .unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 2);
    assert_eq!(
        scope.connection(&id).unwrap().refresh_hard_expires_at,
        Some(hard)
    );
    let requests = stub.requests.lock().unwrap();
    assert!(requests.iter().all(|r| r.headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("x-include-refresh-token-hard-expires-in") && v == "true"
    })));
}

/// Every failed refresh is an event, also one that could not be sent (here: the provider app
/// has no token endpoint), so the History chart's refreshes include it; the state stays.
#[test]
fn a_refresh_that_cannot_be_sent_is_recorded_as_failed() {
    let (_dir, _kc, vault) = temp_vault();
    let t = vault
        .create_tenant("Acme", Some("acme"), "", &cli())
        .unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let app = scope
        .add_provider_app(public_app("no-token", Endpoints::default()), &cli())
        .unwrap();
    let id = store_grant(&scope, &app.id, "c", true);
    for _ in 0..2 {
        let err = scope
            .refresh(&id, &Deadline::default(), &cli())
            .unwrap_err();
        assert!(err.to_string().contains("token endpoint"), "{err}");
    }
    let failed: Vec<_> = vault
        .connection_history(&id, None, 10)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::RefreshFailed)
        .collect();
    assert_eq!(failed.len(), 2, "one event per failed refresh");
    let detail = failed[0].detail.as_ref().unwrap();
    assert_eq!(detail["class"], "configuration");
    assert_eq!(detail["sent"], false);
    let daily = vault.daily_counts(&id, 0).unwrap();
    assert_eq!(
        daily
            .iter()
            .filter(|d| d.kind == EventKind::RefreshFailed)
            .map(|d| d.count)
            .sum::<u64>(),
        2
    );
    assert_eq!(
        scope.connection(&id).unwrap().status,
        ConnectionStatus::Active
    );
}

/// A tenant is marked when one of its grants is past its expiry with nothing left to renew it:
/// counted, named in the label, and the next change of the count is announced.
#[test]
fn tenants_count_grants_that_need_someone_from_their_computed_status() {
    let (_dir, _kc, vault) = temp_vault();
    let t = vault
        .create_tenant("Acme", Some("acme"), "", &cli())
        .unwrap();
    vault
        .create_tenant("Quiet", Some("quiet"), "", &cli())
        .unwrap();
    let scope = vault.tenant(&t.id).unwrap();
    let app = scope
        .add_provider_app(public_app("idp", Endpoints::default()), &cli())
        .unwrap();
    let now = now_ms();
    let grant = |name: &str, access: i64, hard: Option<i64>| {
        let c = NewConnection {
            access_expiry: Some((access, ExpirySource::Response)),
            refresh_hard_expires_at: hard,
            ..new_connection(&app.id, name)
        };
        scope.store_connection(c, tokens("0"), &cli()).unwrap().id
    };
    // Expired with a dead refresh token: someone must connect again.
    let dead = grant("dead", now - 60_000, Some(now - 1_000));
    // Expired, but the next use renews it: no mark.
    grant("renewable", now - 60_000, None);
    // Live now, dead in an hour: the count changes then.
    grant("later", now + 600_000, Some(now + 3_600_000));
    let tenants = vault.list_tenants().unwrap();
    let acme = tenants.iter().find(|s| s.tenant.slug == "acme").unwrap();
    assert_eq!(acme.needs_attention, 1);
    assert_eq!(acme.attention_label, "1 expired");
    assert_eq!(acme.recount_at, Some(now + 3_600_000));
    let quiet = tenants.iter().find(|s| s.tenant.slug == "quiet").unwrap();
    assert_eq!((quiet.needs_attention, quiet.recount_at), (0, None));
    // The connection rows carry the same computed status.
    let rows = vault
        .connection_rows(&crate::ConnectionFilter::default())
        .unwrap();
    let row = rows.iter().find(|r| r.id == dead).unwrap();
    assert_eq!(row.status, ConnectionStatus::Active, "the stored state");
    assert_eq!(
        row.status_steps[0].state,
        crate::status::GrantState::Expired
    );
    assert!(row.status_steps[0].attention);
}

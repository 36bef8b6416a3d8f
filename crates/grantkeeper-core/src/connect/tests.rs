use std::sync::Arc;

use super::*;
use crate::audit::ActorKind;
use crate::keychain::MemoryKeychain;
use crate::model::Endpoints;
use crate::oauth::stub::{Stub, StubResponse};
use crate::test_support::{acme, cli, public_app, temp_vault};
use crate::vault::NewProviderApp;
use crate::Vault;

struct Fixture {
    _dir: tempfile::TempDir,
    kc: Arc<MemoryKeychain>,
    vault: Vault,
}

fn fixture(token_response: StubResponse) -> (Fixture, Stub) {
    fixture_with(None, move |_| token_response.clone(), false)
}

fn fixture_with(
    preset: Option<&str>,
    handler: impl Fn(&crate::oauth::stub::StubRequest) -> StubResponse + Send + Sync + 'static,
    introspection: bool,
) -> (Fixture, Stub) {
    let stub = Stub::start(handler);
    let (dir, kc, vault) = temp_vault();
    let vault = vault.with_http_timeout(Duration::from_secs(1));
    let app = NewProviderApp {
        preset: preset.map(str::to_owned),
        redirect_mode: RedirectMode::Paste,
        client_auth: None,
        dpop: None,
        client_key: None,
        redirect_port: Some(9),
        default_scopes: vec!["read".into()],
        ..public_app(
            "stub",
            Endpoints {
                authorization: Some(format!("{}/authorize", stub.base)),
                token: Some(format!("{}/token", stub.base)),
                introspection: introspection.then(|| format!("{}/introspect", stub.base)),
                ..Endpoints::default()
            },
        )
    };
    acme(&vault).add_provider_app(app, &cli()).unwrap();
    (
        Fixture {
            _dir: dir,
            kc,
            vault,
        },
        stub,
    )
}

fn run(f: &Fixture) -> Result<Connection> {
    let t = f
        .vault
        .tenant(&f.vault.find_tenant("acme").unwrap().id)
        .unwrap();
    let pending = t
        .begin_connect(ConnectRequest {
            name: "c".into(),
            provider_app: "stub".into(),
            scopes: None,
            redirect: None,
        })
        .unwrap();
    answer_with_code(&t, pending)
}

/// Finishes a sign-in as the provider's redirect would: code `the-code` and the sign-in's state.
fn answer_with_code(t: &TenantVault<'_>, pending: PendingConnect) -> Result<Connection> {
    let params = CallbackParams::from([
        ("code".to_owned(), "the-code".to_owned()),
        ("state".to_owned(), pending.state().to_owned()),
    ]);
    t.finish_connect(pending, &params, &Actor::new(ActorKind::Cli))
}

fn assert_nothing_stored(f: &Fixture) {
    assert!(f.vault.connections(&Default::default()).unwrap().is_empty());
    assert_eq!(f.kc.refresh_tokens(), 0, "no refresh token kept");
    assert!(f
        .vault
        .recent_events(10)
        .unwrap()
        .iter()
        .all(|e| e.kind != crate::audit::EventKind::Consented));
}

fn fails_cleanly(resp: StubResponse, check: impl Fn(&OAuthError) -> bool) {
    let (f, stub) = fixture(resp);
    let err = run(&f).unwrap_err();
    match &err {
        Error::OAuth(o) => assert!(check(o), "unexpected error: {err}"),
        other => panic!("unexpected error: {other}"),
    }
    assert!(!err.to_string().contains("the-code"));
    assert_nothing_stored(&f);
    let reqs = stub.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1, "one token request");
    assert!(
        reqs[0].body.contains("code_verifier="),
        "PKCE verifier sent in the body"
    );
    assert!(!reqs[0].path.contains("code"), "nothing secret in the URL");
}

/// Re-consents connection `c` through a pasted redirect.
fn reconsent(f: &Fixture) -> Result<Connection> {
    let t = f
        .vault
        .tenant(&f.vault.find_tenant("acme").unwrap().id)
        .unwrap();
    let id = t.connection_named("c").unwrap().id;
    let pending = t.begin_reconsent(&id, None, None).unwrap();
    answer_with_code(&t, pending)
}

/// A token response for `sub` (an unverified ID token: the stub app has no JWKS), with
/// refresh token `rt` when given.
fn answer_for(sub: Option<&str>, at: &str, rt: Option<&str>) -> String {
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let mut body =
        serde_json::json!({ "access_token": at, "token_type": "Bearer", "expires_in": 600 });
    if let Some(sub) = sub {
        body["id_token"] = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(&format!(r#"{{"sub":"{sub}","email":"{sub}@example.com"}}"#))
        )
        .into();
    }
    if let Some(rt) = rt {
        body["refresh_token"] = rt.into();
    }
    body.to_string()
}

fn scripted() -> (Fixture, Stub, Arc<std::sync::Mutex<String>>) {
    let next = Arc::new(std::sync::Mutex::new(String::new()));
    let n2 = next.clone();
    let (f, stub) = fixture_with(
        None,
        move |_| StubResponse::json(200, &n2.lock().unwrap()),
        false,
    );
    (f, stub, next)
}

fn stored(f: &Fixture) -> (Connection, String, String) {
    let t = f
        .vault
        .tenant(&f.vault.find_tenant("acme").unwrap().id)
        .unwrap();
    let c = t.connection_named("c").unwrap();
    let local = f.vault.local_store(&t.tenant().id).unwrap();
    let rt = crate::keychain::Keychain::get(&*f.kc, &local.refresh_entry(&c.id))
        .unwrap()
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let at = t
        .disclose_access_token(
            &c.id,
            crate::grants::Disclosure::Reveal,
            &crate::deadline::Deadline::default(),
            &Actor::new(ActorKind::Cli),
        )
        .unwrap()
        .token
        .expose()
        .to_owned();
    (c, rt, at)
}

#[test]
fn reconsent_as_another_account_is_refused_and_changes_nothing() {
    let (f, _stub, next) = scripted();
    *next.lock().unwrap() = answer_for(Some("alice"), "at-alice", Some("rt-alice"));
    run(&f).unwrap();
    // Bob signs in instead: refused, Alice's tokens and identity stay.
    *next.lock().unwrap() = answer_for(Some("bob"), "at-bob", Some("rt-bob"));
    let err = reconsent(&f).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("signed in as a different account (bob@example.com)")
            && msg.contains("alice@example.com")
            && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert!(matches!(
        err,
        Error::OAuth(OAuthError::AccountMismatch { .. })
    ));
    let (c, rt, at) = stored(&f);
    assert_eq!(c.account.subject.as_deref(), Some("alice"));
    assert_eq!((rt.as_str(), at.as_str()), ("rt-alice", "at-alice"));
    // Bob without a refresh token: refused too (never Alice's refresh token beside Bob's).
    *next.lock().unwrap() = answer_for(Some("bob"), "at-bob", None);
    assert!(reconsent(&f)
        .unwrap_err()
        .to_string()
        .contains("different account"));
    // No identity in the answer: cannot be confirmed, refused.
    *next.lock().unwrap() = answer_for(None, "at-anon", Some("rt-anon"));
    let msg = reconsent(&f).unwrap_err().to_string();
    assert!(
        msg.contains("cannot be confirmed") && msg.contains("nothing was changed"),
        "{msg}"
    );
    let (c, rt, at) = stored(&f);
    assert_eq!(c.account.subject.as_deref(), Some("alice"));
    assert_eq!((rt.as_str(), at.as_str()), ("rt-alice", "at-alice"));
    // Alice again, without a new refresh token: renewed, her own refresh token kept.
    *next.lock().unwrap() = answer_for(Some("alice"), "at-alice-2", None);
    reconsent(&f).unwrap();
    let (c, rt, at) = stored(&f);
    assert_eq!(c.account.subject.as_deref(), Some("alice"));
    assert_eq!((rt.as_str(), at.as_str()), ("rt-alice", "at-alice-2"));
    // Alice with a new refresh token: replaced.
    *next.lock().unwrap() = answer_for(Some("alice"), "at-alice-3", Some("rt-alice-3"));
    reconsent(&f).unwrap();
    let (_, rt, at) = stored(&f);
    assert_eq!((rt.as_str(), at.as_str()), ("rt-alice-3", "at-alice-3"));
}

#[test]
fn reconsent_without_a_recorded_account_needs_a_new_refresh_token() {
    let (f, _stub, next) = scripted();
    *next.lock().unwrap() = answer_for(None, "at-1", Some("rt-1"));
    run(&f).unwrap();
    // Nothing to compare with, and no new refresh token: the old one could be another
    // account's, so the re-consent is refused.
    *next.lock().unwrap() = answer_for(None, "at-2", None);
    let msg = reconsent(&f).unwrap_err().to_string();
    assert!(
        msg.contains("no new refresh token") && msg.contains("nothing was changed"),
        "{msg}"
    );
    let (_, rt, at) = stored(&f);
    assert_eq!((rt.as_str(), at.as_str()), ("rt-1", "at-1"));
    // With a new refresh token, the whole grant is replaced: accepted.
    *next.lock().unwrap() = answer_for(Some("carol"), "at-3", Some("rt-3"));
    let c = reconsent(&f).unwrap();
    assert_eq!(c.account.subject.as_deref(), Some("carol"));
    let (_, rt, at) = stored(&f);
    assert_eq!((rt.as_str(), at.as_str()), ("rt-3", "at-3"));
}

#[test]
fn absurd_lifetimes_are_stored_clamped() {
    let (f, _stub) = fixture(StubResponse::json(
        200,
        &format!(
            r#"{{"access_token":"at","token_type":"Bearer","expires_in":{},"refresh_token":"rt","refresh_token_expires_in":"{}"}}"#,
            u64::MAX,
            u64::MAX
        ),
    ));
    let before = crate::model::now_ms();
    let c = run(&f).unwrap();
    let life = crate::oauth::token::lifetime_ms(u64::MAX);
    let at = c.access_expires_at.unwrap();
    assert!(
        at >= before + life && at <= crate::model::now_ms() + life,
        "{at}"
    );
}

#[test]
fn good_response_is_stored() {
    let (f, _stub) = fixture(StubResponse::json(
        200,
        r#"{"access_token":"at-1","token_type":"Bearer","expires_in":"600","refresh_token":"rt-1","scope":"read"}"#,
    ));
    let c = run(&f).unwrap();
    assert_eq!(c.access_expiry_source, Some(ExpirySource::Response));
    assert_eq!(f.kc.refresh_tokens(), 1);
}

#[test]
fn expiry_from_jwt_introspection_or_catalog() {
    use base64::Engine;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let exp = crate::model::now_ms() / 1000 + 900;
    let jwt = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"RS256"}"#),
        b64(&format!(r#"{{"exp":{exp}}}"#))
    );
    let body = format!(r#"{{"access_token":"{jwt}","token_type":"Bearer"}}"#);
    let (f, _s) = fixture(StubResponse::json(200, &body));
    let c = run(&f).unwrap();
    assert_eq!(c.access_expiry_source, Some(ExpirySource::JwtExp));
    assert_eq!(c.access_expires_at, Some(exp * 1000));

    let (f, stub) = fixture_with(
        None,
        move |req| match req.path.as_str() {
            "/introspect" => StubResponse::json(200, &format!(r#"{{"active":true,"exp":{exp}}}"#)),
            _ => StubResponse::json(200, r#"{"access_token":"opaque","token_type":"Bearer"}"#),
        },
        true,
    );
    let c = run(&f).unwrap();
    assert_eq!(c.access_expiry_source, Some(ExpirySource::Introspection));
    assert_eq!(c.access_expires_at, Some(exp * 1000));
    let reqs = stub.requests.lock().unwrap();
    assert!(reqs
        .iter()
        .any(|r| r.path == "/introspect" && r.body.contains("token=opaque")));

    // Salesforce sends no expires_in and opaque tokens: the catalog's default applies.
    let (f, _s) = fixture_with(
        Some("salesforce"),
        |_| {
            StubResponse::json(
                200,
                r#"{"access_token":"00D!x","instance_url":"https://acme.my.salesforce.com","token_type":"Bearer","issued_at":"1700000000000"}"#,
            )
        },
        false,
    );
    let before = crate::model::now_ms();
    let c = run(&f).unwrap();
    assert_eq!(c.access_expiry_source, Some(ExpirySource::CatalogDefault));
    let at = c.access_expires_at.unwrap();
    assert!(at >= before + 7_200_000 && at <= crate::model::now_ms() + 7_200_000);
    assert_eq!(
        c.metadata.get("instance_url").map(String::as_str),
        Some("https://acme.my.salesforce.com")
    );
}

#[test]
fn token_endpoint_redirects_are_not_followed() {
    let mut redirect = StubResponse::raw(302, "text/plain", Vec::new());
    redirect.content_type = "text/plain\r\nLocation: http://127.0.0.1:1/elsewhere".into();
    fails_cleanly(redirect, |e| {
        matches!(e, OAuthError::Http(crate::http::HttpError::Redirect { .. }))
    });
}

#[test]
fn slow_token_endpoint_times_out() {
    let mut slow = StubResponse::json(200, r#"{"access_token":"at","token_type":"bearer"}"#);
    slow.delay = Duration::from_secs(3);
    fails_cleanly(slow, |e| {
        matches!(e, OAuthError::Http(crate::http::HttpError::Timeout { .. }))
    });
}

#[test]
fn http_500_is_a_clear_error() {
    fails_cleanly(
        StubResponse::raw(500, "text/html", b"<h1>Internal Server Error</h1>".to_vec()),
        |e| matches!(e, OAuthError::Malformed(m) if m.contains("HTTP 500")),
    );
    fails_cleanly(
        StubResponse::json(500, r#"{"error":"server_error"}"#),
        |e| matches!(e, OAuthError::Provider { status: 500, .. }),
    );
}

#[test]
fn malformed_json_is_a_clear_error() {
    fails_cleanly(
        StubResponse::json(200, r#"{"access_token":"at-secret","#),
        |e| matches!(e, OAuthError::Malformed(m) if !m.contains("at-secret")),
    );
}

#[test]
fn ten_megabyte_body_is_refused() {
    let mut body = br#"{"access_token":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    body.extend(br#"","token_type":"bearer"}"#);
    fails_cleanly(StubResponse::raw(200, "application/json", body), |e| {
        matches!(e, OAuthError::Http(crate::http::HttpError::TooLarge { .. }))
    });
}

#[test]
fn wrong_token_type_is_refused() {
    fails_cleanly(
        StubResponse::json(
            200,
            r#"{"access_token":"at","token_type":"mac","refresh_token":"rt"}"#,
        ),
        |e| matches!(e, OAuthError::WrongTokenType(t) if t == "mac"),
    );
}

#[test]
fn missing_access_token_is_refused() {
    fails_cleanly(
        StubResponse::json(200, r#"{"token_type":"bearer","refresh_token":"rt"}"#),
        |e| matches!(e, OAuthError::MissingAccessToken),
    );
}

/// Intuit's 5-year hard expiry: the answer's x_refresh_token_hard_expires_in when it is sent,
/// else the catalog's maximum counted from consent.
#[test]
fn hard_expiry_from_the_answer_or_the_catalog() {
    let quickbooks = |hard: &'static str| {
        fixture_with(
            Some("quickbooks"),
            move |_| {
                StubResponse::json(
                    200,
                    &format!(
                        r#"{{"access_token":"at","token_type":"bearer","expires_in":3600,"refresh_token":"rt","x_refresh_token_expires_in":8640000{hard}}}"#
                    ),
                )
            },
            false,
        )
    };
    let (f, _s) = quickbooks(r#","x_refresh_token_hard_expires_in":86400"#);
    let before = crate::model::now_ms();
    let c = run(&f).unwrap();
    let after = crate::model::now_ms();
    let hard = c.refresh_hard_expires_at.expect("a hard expiry");
    assert!((before + 86_400_000..=after + 86_400_000).contains(&hard));
    let sliding = c.refresh_expires_at.expect("a sliding expiry");
    assert!((before + 8_640_000_000..=after + 8_640_000_000).contains(&sliding));

    let (f, _s) = quickbooks("");
    let before = crate::model::now_ms();
    let c = run(&f).unwrap();
    let after = crate::model::now_ms();
    let five_years = 1825 * 86_400_000;
    let hard = c.refresh_hard_expires_at.expect("the catalog's maximum");
    assert!((before + five_years..=after + five_years).contains(&hard));
}

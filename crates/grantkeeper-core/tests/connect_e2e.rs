//! Connecting an account end to end: the real oidc-provider on 127.0.0.1, Debian's Chromium
//! (headless, through playwright-core) as `$BROWSER` playing the user, and the real Secret
//! Service. Needs the session of `scripts/with-test-session`.

mod common;

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

use common::*;
use grantkeeper_core::audit::EventKind;
use grantkeeper_core::connect::{ConnectRequest, PendingConnect};
use grantkeeper_core::keychain::{EntryName, Keychain};
use grantkeeper_core::model::{ExpirySource, RedirectMode};
use grantkeeper_core::oauth::loopback::{CallbackParams, CancelToken};
use grantkeeper_core::oauth::{browser, OAuthError};
use grantkeeper_core::{Error, NewProviderApp, TenantVault, Vault};
use url::Url;

/// `$BROWSER` and the browser's action are process-wide: one test at a time.
static BROWSER_LOCK: Mutex<()> = Mutex::new(());

struct Setup {
    _dir: tempfile::TempDir,
    vault: Vault,
    idp: Idp,
}

fn setup() -> Setup {
    setup_with(serde_json::json!({}))
}

fn setup_with(idp_config: serde_json::Value) -> Setup {
    let kc = keychain();
    let idp = Idp::start(&idp_config);
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), kc).unwrap();
    let t = vault
        .create_tenant("Acme", Some("acme"), "", &actor())
        .unwrap();
    let endpoints = vault.discover(&idp.issuer).unwrap();
    vault
        .tenant(&t.id)
        .unwrap()
        .add_provider_app(
            NewProviderApp {
                name: "idp".into(),
                preset: Some("generic-oidc".into()),
                endpoints,
                client_id: "grantkeeper-test".into(),
                client_secret: None,
                redirect_mode: RedirectMode::Loopback,
                client_auth: None,
                dpop: None,
                client_key: None,
                redirect_port: None,
                relay_url: None,
                default_scopes: ["openid", "profile", "email", "offline_access", "api:read"]
                    .map(String::from)
                    .to_vec(),
            },
            &actor(),
        )
        .unwrap();
    Setup {
        _dir: dir,
        vault,
        idp,
    }
}

fn tenant(s: &Setup) -> TenantVault<'_> {
    let t = s.vault.find_tenant("acme").unwrap();
    s.vault.tenant(&t.id).unwrap()
}

fn request(name: &str) -> ConnectRequest {
    ConnectRequest {
        name: name.into(),
        provider_app: "idp".into(),
        scopes: None,
        redirect: None,
    }
}

/// Opens the URL with `$BROWSER` set to the test browser playing `action`, and waits.
fn sign_in(
    pending: &mut PendingConnect,
    action: &str,
    timeout: Duration,
) -> Result<CallbackParams, OAuthError> {
    std::env::set_var("BROWSER", test_browser());
    std::env::set_var("GK_TEST_BROWSER_ACTION", action);
    std::env::set_var("GK_TEST_BROWSER_TIMEOUT_MS", "30000");
    browser::open(&pending.url).unwrap();
    pending.wait_for_redirect(timeout, &CancelToken::default())
}

/// The sign-in's `state`: the test IdP offers pushed authorization requests (RFC 9126), so the
/// URL carries only `client_id` and `request_uri`, and the state went with the pushed request.
fn state_of(pending: &PendingConnect) -> String {
    let params: Vec<String> = Url::parse(&pending.url)
        .unwrap()
        .query_pairs()
        .map(|(k, _)| k.into_owned())
        .collect();
    assert_eq!(params, ["client_id", "request_uri"], "{}", pending.url);
    pending.state().to_owned()
}

/// Nothing of a failed sign-in is kept: no connection, no refresh token in the keychain, and the
/// history still verifies.
fn assert_nothing_stored(s: &Setup, expected_connections: usize) {
    assert_eq!(
        s.vault.connections(&Default::default()).unwrap().len(),
        expected_connections
    );
    let refresh_tokens = secret_tool_items(s.vault.id())
        .iter()
        .filter(|(meta, _)| meta.iter().any(|l| l.contains("/refresh-token")))
        .count();
    assert_eq!(refresh_tokens, expected_connections);
    assert!(s.vault.verify_history().unwrap().is_intact());
}

#[test]
fn happy_path_stores_tokens_in_keychain_and_vault() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut pending = t.begin_connect(request("main")).unwrap();
    assert!(pending.redirect_uri.starts_with("http://127.0.0.1:"));
    let params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
    assert_eq!(
        params.get("iss"),
        Some(&s.idp.issuer),
        "RFC 9207 iss came back"
    );
    let c = t.finish_connect(pending, &params, &actor()).unwrap();

    assert_eq!(c.account.subject.as_deref(), Some("ada"));
    assert!(c.scopes_granted_reported);
    assert!(
        c.scopes_granted.contains(&"api:read".to_owned()),
        "{:?}",
        c.scopes_granted
    );
    assert_eq!(c.access_expiry_source, Some(ExpirySource::Response));
    assert!(c.has_refresh_token);
    let entry = EntryName::refresh_token(s.vault.id(), c.tenant_id.as_str(), c.id.as_str());
    let rt = keychain()
        .get(&entry)
        .unwrap()
        .expect("refresh token in the real keychain");
    assert!(rt.expose().len() > 20);
    let at = t
        .access_token(
            &c.id,
            grantkeeper_core::grants::DEFAULT_MIN_VALID,
            &grantkeeper_core::deadline::Deadline::default(),
            &actor(),
        )
        .unwrap();
    assert!(!at.token.expose().is_empty());
    let history = s.vault.connection_history(&c.id, None, 10).unwrap();
    let kinds: Vec<_> = history.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::HandedOut, EventKind::Consented]);
    assert_eq!(
        history[1].fingerprint.as_deref(),
        Some(s.vault.fingerprint(at.token.expose()).as_str())
    );
    assert!(s.vault.verify_history().unwrap().is_intact());
    assert_eq!(s.idp.stats()["token_requests"]["authorization_code"], 1);
}

#[test]
fn deny_stores_nothing() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut pending = t.begin_connect(request("main")).unwrap();
    let params = sign_in(&mut pending, "deny", Duration::from_secs(60)).unwrap();
    let err = t.finish_connect(pending, &params, &actor()).unwrap_err();
    assert!(
        matches!(&err, Error::OAuth(OAuthError::Denied { error, .. }) if error == "access_denied"),
        "{err}"
    );
    assert_nothing_stored(&s, 0);
}

#[test]
fn state_mismatch_is_rejected() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut pending = t.begin_connect(request("main")).unwrap();
    let mut params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
    params.insert("state".into(), "forged-state".into());
    let err = t.finish_connect(pending, &params, &actor()).unwrap_err();
    assert!(
        matches!(err, Error::OAuth(OAuthError::StateMismatch)),
        "{err}"
    );
    assert_eq!(
        s.idp.stats()["token_requests"]["authorization_code"],
        0,
        "no code was sent to the server"
    );
    assert_nothing_stored(&s, 0);
}

#[test]
fn replayed_code_is_rejected() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut first = t.begin_connect(request("first")).unwrap();
    let params = sign_in(&mut first, "approve", Duration::from_secs(60)).unwrap();
    t.finish_connect(first, &params, &actor()).unwrap();
    // The same code, replayed into a second sign-in (its own state, so only the code is stale).
    let second = t.begin_connect(request("second")).unwrap();
    let mut replay: CallbackParams = params.clone();
    replay.insert("state".into(), state_of(&second));
    let err = t.finish_connect(second, &replay, &actor()).unwrap_err();
    assert!(
        matches!(&err, Error::OAuth(OAuthError::Provider { error, .. }) if error == "invalid_grant"),
        "{err}"
    );
    assert_nothing_stored(&s, 1);
}

#[test]
fn issuer_mismatch_is_rejected() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    for tamper in [Some("http://127.0.0.1:1/evil"), None] {
        let mut pending = t.begin_connect(request("main")).unwrap();
        let mut params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
        match tamper {
            Some(iss) => params.insert("iss".into(), iss.into()),
            // The server advertises RFC 9207, so a missing iss is rejected too.
            None => params.remove("iss"),
        };
        let err = t.finish_connect(pending, &params, &actor()).unwrap_err();
        assert!(
            matches!(err, Error::OAuth(OAuthError::IssuerMismatch { .. })),
            "{err}"
        );
    }
    assert_eq!(s.idp.stats()["token_requests"]["authorization_code"], 0);
    assert_nothing_stored(&s, 0);
}

#[test]
fn timeout_closes_the_listener_and_frees_the_port() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut pending = t.begin_connect(request("main")).unwrap();
    let port: u16 = Url::parse(&pending.redirect_uri).unwrap().port().unwrap();
    std::env::set_var("GK_TEST_BROWSER_TIMEOUT_MS", "8000");
    let started = std::time::Instant::now();
    let err = sign_in(&mut pending, "ignore", Duration::from_secs(3)).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, OAuthError::TimedOut { seconds: 3 }));
    assert!(err.to_string().contains("listener was closed"));
    TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    drop(pending);
    assert_nothing_stored(&s, 0);
}

#[test]
fn metadata_and_pasted_redirect() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut req = request("pasted");
    req.redirect = Some(RedirectMode::Loopback);
    let mut pending = t.begin_connect(req).unwrap();
    let params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
    // The user pastes the browser's final address instead (remote sessions).
    let mut url = Url::parse(&pending.redirect_uri).unwrap();
    url.query_pairs_mut().extend_pairs(params.iter());
    let pasted = grantkeeper_core::oauth::flow::parse_pasted_redirect(url.as_str()).unwrap();
    let c = t.finish_connect(pending, &pasted, &actor()).unwrap();
    assert_eq!(c.metadata.get("issuer"), Some(&s.idp.issuer));
}

#[test]
fn device_flow_and_client_credentials() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut req = request("device");
    req.scopes = Some(vec!["openid".into(), "offline_access".into()]);
    let device = t.begin_device_connect(&req).unwrap();
    assert!(!device.user_code.is_empty());
    let url = device.verification_uri_complete.clone().unwrap();
    std::env::set_var("GK_TEST_BROWSER_ACTION", "approve");
    std::process::Command::new(test_browser())
        .arg(&url)
        .status()
        .unwrap();
    let c = t
        .finish_device_connect(&req, &device, &CancelToken::default(), &actor())
        .unwrap();
    assert!(c.has_refresh_token);
    assert_eq!(c.account.subject.as_deref(), Some("ada"));

    // A service connection with the client-credentials grant (HTTP Basic client auth).
    let endpoints = s.vault.discover(&s.idp.issuer).unwrap();
    t.add_provider_app(
        NewProviderApp {
            name: "service".into(),
            preset: None,
            endpoints,
            client_id: "grantkeeper-service".into(),
            client_secret: Some(grantkeeper_core::secret::ClientSecret::new(
                "service-test-secret",
            )),
            redirect_mode: RedirectMode::Loopback,
            client_auth: None,
            dpop: None,
            client_key: None,
            redirect_port: None,
            relay_url: None,
            default_scopes: vec!["api:read".into()],
        },
        &actor(),
    )
    .unwrap();
    let svc = t
        .connect_client_credentials(
            &ConnectRequest {
                name: "svc".into(),
                provider_app: "service".into(),
                scopes: None,
                redirect: None,
            },
            &actor(),
        )
        .unwrap();
    assert!(!svc.has_refresh_token);
    assert_eq!(svc.scopes_granted, vec!["api:read"]);
    assert_eq!(s.idp.stats()["token_requests"]["client_credentials"], 1);
}

/// Serves the repository's relay/ folder on 127.0.0.1, like any static host would.
fn serve_relay() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let dir = repo_root().join("relay");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let path = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .to_owned();
            let file = match path.as_str() {
                "/relay/" | "/relay/index.html" => "index.html",
                "/relay/relay.js" => "relay.js",
                "/relay/relay.css" => "relay.css",
                _ => "",
            };
            let mut out = &stream;
            match std::fs::read(dir.join(file))
                .ok()
                .filter(|_| !file.is_empty())
            {
                Some(body) => {
                    let ct = match file.rsplit('.').next() {
                        Some("js") => "text/javascript",
                        Some("css") => "text/css",
                        _ => "text/html",
                    };
                    let _ = write!(out, "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = out.write_all(&body);
                }
                None => {
                    let _ = out.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    format!("{base}/relay/index.html")
}

#[test]
fn relay_page_forwards_to_the_app() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let relay = serve_relay();
    // A client whose only registered redirect is the relay page (as with Slack or Intuit).
    let s = setup_with(serde_json::json!({ "extraClients": [{
        "client_id": "grantkeeper-relay",
        "application_type": "native",
        "token_endpoint_auth_method": "none",
        "redirect_uris": ["http://127.0.0.1/relay/index.html"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }]}));
    let t = tenant(&s);
    let endpoints = s.vault.discover(&s.idp.issuer).unwrap();
    t.add_provider_app(
        NewProviderApp {
            name: "relayed".into(),
            preset: Some("generic-oidc".into()),
            endpoints,
            client_id: "grantkeeper-relay".into(),
            client_secret: None,
            redirect_mode: RedirectMode::Relay,
            client_auth: None,
            dpop: None,
            client_key: None,
            redirect_port: None,
            relay_url: Some(relay.clone()),
            default_scopes: vec!["openid".into(), "offline_access".into()],
        },
        &actor(),
    )
    .unwrap();
    let mut pending = t
        .begin_connect(ConnectRequest {
            name: "via-relay".into(),
            provider_app: "relayed".into(),
            scopes: None,
            redirect: None,
        })
        .unwrap();
    assert_eq!(pending.redirect_uri, relay);
    assert!(
        state_of(&pending).contains('~'),
        "the state carries the loopback port for the relay page"
    );
    let params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
    let c = t.finish_connect(pending, &params, &actor()).unwrap();
    assert!(c.has_refresh_token);
}

#[test]
fn reconsent_renews_the_same_connection() {
    let _lock = BROWSER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let s = setup();
    let t = tenant(&s);
    let mut req = request("main");
    req.scopes = Some(
        ["openid", "offline_access", "api:read"]
            .map(String::from)
            .to_vec(),
    );
    let mut pending = t.begin_connect(req).unwrap();
    let params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
    let before = t.finish_connect(pending, &params, &actor()).unwrap();
    // The grant went bad (e.g. invalid_grant on refresh).
    rusqlite::Connection::open(s.vault.db_path())
        .unwrap()
        .execute(
            "UPDATE connections SET status = 'needs_reconsent' WHERE id = ?1",
            [before.id.as_str()],
        )
        .unwrap();
    // Another user signs in at the re-consent: refused, nothing changed.
    std::env::set_var("GK_TEST_BROWSER_LOGIN", "grace");
    let mut pending = t.begin_reconsent(&before.id, None, None).unwrap();
    let params = sign_in(&mut pending, "approve", Duration::from_secs(60));
    std::env::remove_var("GK_TEST_BROWSER_LOGIN");
    let err = t
        .finish_connect(pending, &params.unwrap(), &actor())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("signed in as a different account (grace)")
            && msg.contains("nothing was changed"),
        "{msg}"
    );
    let unchanged = t.connection(&before.id).unwrap();
    assert_eq!(unchanged.account, before.account);
    assert_eq!(
        unchanged.status,
        grantkeeper_core::model::ConnectionStatus::NeedsReconsent
    );
    let scopes = ["openid", "offline_access", "api:write"]
        .map(String::from)
        .to_vec();
    let mut pending = t.begin_reconsent(&before.id, Some(scopes), None).unwrap();
    let params = sign_in(&mut pending, "approve", Duration::from_secs(60)).unwrap();
    let after = t.finish_connect(pending, &params, &actor()).unwrap();
    assert_eq!(after.id, before.id, "renewed in place");
    assert_eq!(
        after.status,
        grantkeeper_core::model::ConnectionStatus::Active
    );
    assert!(after.scopes_granted.contains(&"api:write".to_owned()));
    let history = s.vault.connection_history(&after.id, None, 10).unwrap();
    let consents: Vec<_> = history
        .iter()
        .filter(|e| e.kind == EventKind::Consented)
        .collect();
    assert_eq!(consents.len(), 2, "history kept");
    let detail = consents[0].detail.as_ref().unwrap();
    assert_eq!(detail["scopes_added"], serde_json::json!(["api:write"]));
    assert_eq!(detail["scopes_dropped"], serde_json::json!(["api:read"]));
    assert_nothing_stored(&s, 1);
}

/// The one sign-in wait of the CLI and the window (`PendingConnect::wait`): a pasted URL takes
/// the redirect's place (loopback: with a cancel; paste mode: by itself), a cancel or a gone
/// paste channel cancels, and nothing at all times out. No browser needed.
#[test]
fn the_sign_in_wait_takes_a_paste_a_cancel_or_the_timeout() {
    let s = setup();
    let t = tenant(&s);
    let pasted_params = |state: &str| {
        CallbackParams::from([("code".into(), "c".into()), ("state".into(), state.into())])
    };
    let short = Duration::from_millis(300);

    // Loopback: a pasted URL, then the cancel that ends the listener's wait.
    let mut pending = t.begin_connect(request("wait-a")).unwrap();
    let (paste, pasted) = std::sync::mpsc::channel();
    let cancel = CancelToken::default();
    paste.send(Ok(pasted_params("s1"))).unwrap();
    cancel.cancel();
    assert_eq!(
        pending
            .wait(Duration::from_secs(60), &cancel, &pasted)
            .unwrap(),
        pasted_params("s1")
    );
    // Loopback: a cancel alone; nothing at all.
    let mut pending = t.begin_connect(request("wait-b")).unwrap();
    let cancel = CancelToken::default();
    cancel.cancel();
    let (_paste, pasted) = std::sync::mpsc::channel();
    assert!(matches!(
        pending.wait(short, &cancel, &pasted),
        Err(OAuthError::Cancelled)
    ));
    let mut pending = t.begin_connect(request("wait-c")).unwrap();
    assert!(matches!(
        pending.wait(short, &CancelToken::default(), &pasted),
        Err(OAuthError::TimedOut { .. })
    ));

    // Paste mode (an app with a registered port): the paste, a bad paste, a gone channel, the
    // timeout.
    let endpoints = s.vault.discover(&s.idp.issuer).unwrap();
    t.add_provider_app(
        NewProviderApp {
            name: "idp-paste".into(),
            preset: Some("generic-oidc".into()),
            endpoints,
            client_id: "grantkeeper-test".into(),
            client_secret: None,
            redirect_mode: RedirectMode::Paste,
            client_auth: None,
            dpop: None,
            client_key: None,
            redirect_port: Some(
                TcpListener::bind("127.0.0.1:0")
                    .unwrap()
                    .local_addr()
                    .unwrap()
                    .port(),
            ),
            relay_url: None,
            default_scopes: vec!["openid".into()],
        },
        &actor(),
    )
    .unwrap();
    let paste_request = |name: &str| ConnectRequest {
        provider_app: "idp-paste".into(),
        ..request(name)
    };
    let mut pending = t.begin_connect(paste_request("wait-d")).unwrap();
    let (paste, pasted) = std::sync::mpsc::channel();
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        paste.send(Ok(pasted_params("s2"))).unwrap();
    });
    assert_eq!(
        pending
            .wait(Duration::from_secs(60), &CancelToken::default(), &pasted)
            .unwrap(),
        pasted_params("s2")
    );
    later.join().unwrap();
    let mut pending = t.begin_connect(paste_request("wait-e")).unwrap();
    let (paste, pasted) = std::sync::mpsc::channel();
    paste.send(Err(OAuthError::MissingCode)).unwrap();
    let none = CancelToken::default();
    assert!(matches!(
        pending.wait(short, &none, &pasted),
        Err(OAuthError::MissingCode)
    ));
    drop(paste);
    assert!(matches!(
        pending.wait(short, &none, &pasted),
        Err(OAuthError::Cancelled)
    ));
    let (_paste, pasted) = std::sync::mpsc::channel();
    assert!(matches!(
        pending.wait(short, &none, &pasted),
        Err(OAuthError::TimedOut { .. })
    ));
}

//! Tests of the protocol through oauth2: the authorization URL and the device flow.

use std::collections::BTreeMap;

use url::Url;

use super::*;
use crate::http::HttpClient;
use crate::oauth::stub::{Stub, StubResponse};

fn endpoints(base: &str) -> Endpoints {
    Endpoints {
        authorization: Some(format!("{base}/authorize?tenant=x")),
        token: Some(format!("{base}/token")),
        device_authorization: Some(format!("{base}/device")),
        introspection: Some(format!("{base}/introspect")),
        ..Endpoints::default()
    }
}

fn public_client() -> Client {
    Client {
        id: "cid".into(),
        secret: None,
        key: None,
    }
}

#[test]
fn rfc7636_appendix_b_vector() {
    let v = PkceCodeVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
    assert_eq!(
        PkceCodeChallenge::from_code_verifier_sha256(&v).as_str(),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    assert_eq!(verifier.secret().len(), 43);
    assert_eq!(challenge.method().as_str(), "S256");
}

#[test]
fn authorization_url_has_pkce_s256_and_quirks() {
    let mut q = Quirks::new(None, false);
    q.authorize_params
        .insert("access_type".into(), "offline".into());
    q.scope_separator = ",".into();
    let e = endpoints("https://idp.example");
    let http = HttpClient::default();
    let client = public_client();
    let c = ProviderClient::new(&e, &client, &q, Wire::Http(&http));
    let (challenge, v) = PkceCodeChallenge::new_random_sha256();
    let expected_challenge = challenge.as_str().to_owned();
    let url = c
        .authorization_url(
            "http://127.0.0.1:5000/callback",
            &["a".into(), "b".into()],
            "st",
            challenge,
            Some("n1"),
        )
        .unwrap();
    let u = Url::parse(&url).unwrap();
    let p: BTreeMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(p["tenant"], "x");
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], "cid");
    assert_eq!(p["redirect_uri"], "http://127.0.0.1:5000/callback");
    assert_eq!(p["state"], "st");
    assert_eq!(p["scope"], "a,b");
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"], expected_challenge);
    assert_eq!(p["access_type"], "offline");
    assert_eq!(p["nonce"], "n1");
    assert!(
        !url.contains(v.secret()),
        "the verifier never travels in the URL"
    );
    // Slack's user tokens: the scopes under another name; no PKCE where it is refused.
    q.scope_param = "user_scope".into();
    q.pkce = Pkce::Unsupported;
    let c = ProviderClient::new(&e, &client, &q, Wire::Http(&http));
    let url = c
        .authorization_url(
            "https://relay.example/cb",
            &["a".into()],
            "st",
            PkceCodeChallenge::new_random_sha256().0,
            None,
        )
        .unwrap();
    let p: BTreeMap<_, _> = Url::parse(&url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(p.get("user_scope").map(String::as_str), Some("a"));
    assert!(!p.contains_key("scope") && !p.contains_key("code_challenge"));
    // The HTTPS rule holds for the authorization endpoint too.
    let plain = endpoints("http://idp.example");
    let c = ProviderClient::new(&plain, &client, &q, Wire::Http(&http));
    assert!(c
        .authorization_url(
            "r",
            &[],
            "s",
            PkceCodeChallenge::new_random_sha256().0,
            None
        )
        .is_err());
}

#[test]
fn device_lifetimes_are_clamped_and_never_overflow() {
    let stub = Stub::start(|req| match req.path.as_str() {
        "/device" => StubResponse::json(
            200,
            &format!(
                r#"{{"device_code":"dc","user_code":"UC","verification_uri":"https://x/d","expires_in":{},"interval":"{}"}}"#,
                u64::MAX,
                u64::MAX
            ),
        ),
        _ => StubResponse::json(
            200,
            r#"{"access_token":"at","token_type":"Bearer","expires_in":18446744073709551615}"#,
        ),
    });
    let client = public_client();
    let quirks = Quirks::new(None, false);
    let http = HttpClient::default();
    let e = endpoints(&stub.base);
    let c = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http));
    let device = c.device_authorize(&[]).unwrap();
    assert_eq!(device.expires_in, MAX_LIFETIME_SECS);
    assert_eq!(device.interval, MAX_LIFETIME_SECS);
    // A ten-year interval: the wait is cut by Cancel, with no Instant overflow.
    let cancel = CancelToken::default();
    let c2 = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c2.cancel();
    });
    assert!(matches!(
        c.device_poll(&device, &cancel),
        Err(OAuthError::Cancelled)
    ));
    t.join().unwrap();
    // u64::MAX straight in the struct (no clamp on the way in) does not panic either.
    let raw = DeviceAuthorization {
        interval: 1,
        expires_in: u64::MAX,
        ..device
    };
    let r = c.device_poll(&raw, &CancelToken::default()).unwrap();
    assert_eq!(r.expires_in, Some(MAX_LIFETIME_SECS));
    let none_left = DeviceAuthorization {
        interval: u64::MAX,
        expires_in: 0,
        ..raw
    };
    assert!(matches!(
        c.device_poll(&none_left, &CancelToken::default()),
        Err(OAuthError::TimedOut { .. })
    ));
}

#[test]
fn device_polling_waits_out_pending_and_slow_down_then_reports_denial() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let polls = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = polls.clone();
    let stub = Stub::start(move |req| match req.path.as_str() {
        "/device" => StubResponse::json(
            200,
            r#"{"device_code":"dc","user_code":"UC","verification_url":"https://x/d","expires_in":"60","interval":1}"#,
        ),
        _ => match seen.fetch_add(1, Ordering::SeqCst) {
            0 => StubResponse::json(400, r#"{"error":"authorization_pending"}"#),
            // GitHub's style: the error with HTTP 200, form-encoded.
            1 => StubResponse::raw(
                200,
                "application/x-www-form-urlencoded",
                b"error=authorization_pending".to_vec(),
            ),
            _ => StubResponse::json(
                400,
                r#"{"error":"access_denied","error_description":"the user said no"}"#,
            ),
        },
    });
    let (client, quirks, http) = (
        public_client(),
        Quirks::new(None, false),
        HttpClient::default(),
    );
    let e = endpoints(&stub.base);
    let c = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http));
    let device = c.device_authorize(&["s1".into()]).unwrap();
    assert_eq!(device.verification_uri, "https://x/d");
    assert_eq!((device.expires_in, device.interval), (60, 1));
    let started = Instant::now();
    match c.device_poll(&device, &CancelToken::default()) {
        Err(OAuthError::Denied { error, description }) => {
            assert_eq!(error, "access_denied");
            assert_eq!(description.as_deref(), Some("the user said no"));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(polls.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "one interval before each poll"
    );
    let requests = stub.requests.lock().unwrap();
    let poll = requests.iter().find(|r| r.path == "/token").unwrap();
    assert!(poll.body.contains("device_code=dc"), "{}", poll.body);
    assert!(poll.body.contains("client_id=cid"), "{}", poll.body);
}

#[test]
fn a_failed_poll_ends_the_polling_with_its_reason() {
    let stub = Stub::start(|req| match req.path.as_str() {
        "/device" => StubResponse::json(
            200,
            r#"{"device_code":"dc","user_code":"UC","verification_uri":"https://x/d","interval":1}"#,
        ),
        _ => StubResponse::raw(500, "text/html", b"<h1>down</h1>".to_vec()),
    });
    let (client, quirks, http) = (
        public_client(),
        Quirks::new(None, false),
        HttpClient::default(),
    );
    let e = endpoints(&stub.base);
    let c = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http));
    let device = c.device_authorize(&[]).unwrap();
    assert_eq!(device.expires_in, 600, "the RFC's default when absent");
    let started = Instant::now();
    assert!(matches!(
        c.device_poll(&device, &CancelToken::default()),
        Err(OAuthError::Malformed(m)) if m.contains("HTTP 500")
    ));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no retries after a failure"
    );
}

#[test]
fn revocation_and_introspection_go_through_oauth2_to_the_registered_url() {
    let stub = Stub::start(|req| match req.path.as_str() {
        "/revoke" if req.body.contains("token=rt-1") => {
            StubResponse::raw(200, "text/plain", vec![])
        }
        "/revoke" => StubResponse::json(503, r#"{"error":"temporarily_unavailable"}"#),
        _ if req.body.contains("token=at-live") => StubResponse::json(
            200,
            r#"{"active":true,"exp":"1700000000","scope":"a b","aud":7,"team":{"id":"T1"}}"#,
        ),
        _ if req.body.contains("token=at-odd") => StubResponse::json(200, r#"{"exp":1}"#),
        _ => StubResponse::json(
            200,
            r#"{"error":"invalid_client","error_description":"who?"}"#,
        ),
    });
    let client = Client {
        id: "cid".into(),
        secret: Some(crate::secret::ClientSecret::new("s3cret")),
        key: None,
    };
    let (quirks, http) = (Quirks::new(None, true), HttpClient::default());
    let e = endpoints(&stub.base);
    let c = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http));
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "the client's Debug redacts its secret"
    );
    let revoke_url = format!("{}/revoke", stub.base);
    c.revoke(&revoke_url, Revocable::Refresh(&RefreshToken::new("rt-1")))
        .unwrap();
    match c.revoke(&revoke_url, Revocable::Access(&AccessToken::new("at-1"))) {
        Err(OAuthError::Provider { error, status, .. }) => {
            assert_eq!((error.as_str(), status), ("http_503", 503));
        }
        other => panic!("expected the endpoint's refusal, got {other:?}"),
    }
    assert!(matches!(
        c.revoke(
            "http://example.com/revoke",
            Revocable::Access(&AccessToken::new("x"))
        ),
        Err(OAuthError::Http(crate::http::HttpError::Insecure(_)))
    ));
    let answer = c
        .introspect(&AccessToken::new("at-live"), "access_token")
        .unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["exp"], 1_700_000_000);
    assert_eq!(answer["scope"], "a b");
    assert_eq!(answer["team"]["id"], "T1");
    assert!(
        !answer.contains_key("aud"),
        "an aud of no RFC type is left out"
    );
    assert!(matches!(
        c.introspect(&AccessToken::new("at-odd"), "access_token"),
        Err(OAuthError::Malformed(m)) if m.contains("active")
    ));
    match c.introspect(&AccessToken::new("at-other"), "access_token") {
        Err(OAuthError::Provider {
            error,
            description,
            status,
        }) => {
            assert_eq!(error, "invalid_client");
            assert_eq!(description.as_deref(), Some("who?"));
            assert_eq!(status, 200);
        }
        other => panic!("expected the provider's error, got {other:?}"),
    }
    let requests = stub.requests.lock().unwrap();
    let revocation = &requests[0];
    assert_eq!(revocation.path, "/revoke");
    assert!(revocation.body.contains("token_type_hint=refresh_token"));
    assert!(revocation
        .headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.starts_with("Basic ")));
    assert!(!revocation.body.contains("s3cret"));
    let introspection = requests.iter().find(|r| r.path == "/introspect").unwrap();
    assert!(introspection.body.contains("token_type_hint=access_token"));
}

#[test]
fn extra_token_fields_print_their_names_only() {
    let fields: TokenFields =
        serde_json::from_str(r#"{"id_token":"planted-id-token","instance_url":"https://x"}"#)
            .unwrap();
    let shown = format!("{fields:?}");
    assert!(shown.contains("id_token") && shown.contains("instance_url"));
    assert!(!shown.contains("planted"), "{shown}");
}

/// `private_key_jwt`: every request to the provider (token, refresh, revocation, introspection,
/// pushed authorization) carries a fresh assertion to the issuer, and no client secret.
#[test]
fn private_key_jwt_signs_a_fresh_assertion_into_every_request() {
    let stub = Stub::start(|req| match req.path.as_str() {
        "/par" => StubResponse::json(201, r#"{"request_uri":"urn:x:1","expires_in":60}"#),
        "/revoke" => StubResponse::json(200, "{}"),
        "/introspect" => StubResponse::json(200, r#"{"active":true}"#),
        _ => StubResponse::json(200, r#"{"access_token":"at","token_type":"Bearer"}"#),
    });
    let key = crate::oauth::assertion::ClientKey::generate();
    let client = Client {
        id: "cid".into(),
        secret: None,
        key: Some(key.clone()),
    };
    let mut quirks = Quirks::new(None, false);
    quirks.client_auth = ClientAuth::PrivateKeyJwt;
    let http = HttpClient::default();
    let mut e = endpoints(&stub.base);
    e.issuer = Some("https://idp.example".into());
    let c = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http));
    c.exchange_code("code-1", "http://127.0.0.1:5000/callback", "verifier")
        .unwrap();
    c.refresh(&RefreshToken::new("rt-1")).unwrap();
    c.revoke(
        &format!("{}/revoke", stub.base),
        Revocable::Refresh(&RefreshToken::new("rt-1")),
    )
    .unwrap();
    c.introspect(&AccessToken::new("at"), "access_token")
        .unwrap();
    let front = c
        .authorization_url(
            "http://127.0.0.1:5000/callback",
            &[],
            "st",
            PkceCodeChallenge::new_random_sha256().0,
            None,
        )
        .unwrap();
    c.push_authorization(&format!("{}/par", stub.base), &front)
        .unwrap();

    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk()).unwrap();
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["https://idp.example"]);
    v.set_issuer(&["cid"]);
    let requests = stub.requests.lock().unwrap();
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/token", "/token", "/revoke", "/introspect", "/par"]
    );
    let mut jtis = std::collections::BTreeSet::new();
    for r in requests.iter() {
        let form: BTreeMap<String, String> = url::form_urlencoded::parse(r.body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            form.get("client_assertion_type").map(String::as_str),
            Some(crate::oauth::assertion::ASSERTION_TYPE),
            "{}",
            r.path
        );
        assert_eq!(form.get("client_id").map(String::as_str), Some("cid"));
        assert!(!form.contains_key("client_secret"), "{}", r.path);
        assert!(
            !r.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization")),
            "{}",
            r.path
        );
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(&form["client_assertion"], &decoding, &v)
                .unwrap()
                .claims;
        assert_eq!(claims["sub"], "cid");
        jtis.insert(claims["jti"].as_str().unwrap().to_owned());
    }
    assert_eq!(jtis.len(), requests.len(), "a new jti for each request");
}

/// With a DPoP key, every token request carries a fresh proof naming it; a `use_dpop_nonce`
/// answer is retried once with the server's nonce, a `DPoP` token is taken and marked bound.
/// Without a key, a `DPoP` token is refused, and no proof is sent.
#[test]
fn dpop_proofs_go_with_token_requests_and_honour_the_servers_nonce() {
    let stub = Stub::start(|req| {
        let proof = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("dpop"))
            .map(|(_, v)| v.clone());
        let has_nonce = proof.as_deref().is_some_and(|p| {
            let claims = p.split('.').nth(1).unwrap();
            let claims =
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims)
                    .unwrap();
            String::from_utf8(claims)
                .unwrap()
                .contains(r#""nonce":"srv-1""#)
        });
        match (proof, has_nonce) {
            (Some(_), false) => StubResponse::json(400, r#"{"error":"use_dpop_nonce"}"#)
                .with_header("DPoP-Nonce", "srv-1"),
            _ => StubResponse::json(200, r#"{"access_token":"at","token_type":"DPoP"}"#),
        }
    });
    let key = crate::oauth::dpop::DpopKey::generate();
    let (client, quirks, http) = (
        public_client(),
        Quirks::new(None, false),
        HttpClient::default(),
    );
    let e = endpoints(&stub.base);
    let c = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http)).proving(Some(&key));
    let got = c
        .exchange_code("code-1", "http://127.0.0.1:5000/callback", "verifier")
        .unwrap();
    assert!(got.dpop_bound);
    // The nonce is remembered for the next request of the same operation only; a refresh
    // (a new operation) is asked again.
    assert!(c.refresh(&RefreshToken::new("rt-1")).unwrap().dpop_bound);
    {
        let requests = stub.requests.lock().unwrap();
        assert_eq!(requests.len(), 4, "each request once more with the nonce");
        let proofs: Vec<&str> = requests
            .iter()
            .map(|r| {
                r.headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("dpop"))
                    .map(|(_, v)| v.as_str())
                    .expect("a proof on every token request")
            })
            .collect();
        let distinct: std::collections::BTreeSet<&&str> = proofs.iter().collect();
        assert_eq!(distinct.len(), 4, "a new proof (new jti) for each request");
    }
    let unbound = ProviderClient::new(&e, &client, &quirks, Wire::Http(&http));
    assert!(matches!(
        unbound.refresh(&RefreshToken::new("rt-1")),
        Err(OAuthError::WrongTokenType(t)) if t == "DPoP"
    ));
    let last = stub.requests.lock().unwrap().last().unwrap().clone();
    assert!(!last
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("dpop")));
}

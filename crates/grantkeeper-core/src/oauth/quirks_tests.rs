//! Quirk tests for the token-response shape of every catalog preset.
//!
//! `catalog/token_response_fixtures.toml` holds token-endpoint responses as each provider
//! documents them, with what Grantkeeper must make of them. Each fixture is served by a local
//! [`Stub`] standing in for the preset's token endpoint; the code exchange goes the way of every
//! sign-in, [`ProviderClient::exchange_code`] (oauth2 over the hardened HTTP client, the answer
//! normalized by the preset's quirks), and both the parsed result and the request the stub
//! received are checked against the preset.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use super::flow::{Client, Quirks};
use super::normalize::Wire;
use super::protocol::ProviderClient;
use super::stub::{Stub, StubRequest, StubResponse};
use super::token::TokenResponse;
use super::OAuthError;
use crate::catalog::{Catalog, ClientAuth, Preset};
use crate::http::HttpClient;
use crate::model::Endpoints;
use crate::secret::ClientSecret;

const FIXTURES_TOML: &str = include_str!("../../catalog/token_response_fixtures.toml");

const CLIENT_ID: &str = "gk-client.0123";
/// Characters that must be encoded in HTTP Basic (RFC 6749 2.3.1) and in a form body.
const CLIENT_SECRET: &str = "s3cr3t+/=:&%x y";
const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";
/// The form fields of the code exchange.
const GRANT: &[(&str, &str)] = &[
    ("grant_type", "authorization_code"),
    ("code", "c"),
    ("redirect_uri", REDIRECT_URI),
    ("code_verifier", "v"),
];

/// The code exchange of `client` with `quirks` at `url`.
fn exchange_code(url: &str, client: &Client, quirks: &Quirks) -> Result<TokenResponse, OAuthError> {
    let endpoints = Endpoints {
        token: Some(url.to_owned()),
        ..Endpoints::default()
    };
    let http = HttpClient::new(Duration::from_secs(5));
    ProviderClient::new(&endpoints, client, quirks, Wire::Http(&http)).exchange_code(
        "c",
        REDIRECT_URI,
        "v",
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixtures {
    fixture: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    preset: String,
    name: String,
    source: String,
    #[serde(default)]
    note: Option<String>,
    status: u16,
    content_type: String,
    body: String,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    access_token: Option<String>,
    refresh_token: Option<String>,
    id_token: Option<String>,
    expires_in: Option<u64>,
    refresh_expires_in: Option<u64>,
    refresh_hard_expires_in: Option<u64>,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    error: Option<ExpectedError>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedError {
    kind: ErrorKind,
    code: Option<String>,
    status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ErrorKind {
    Provider,
    MissingAccessToken,
    WrongTokenType,
    Malformed,
}

impl Fixture {
    fn label(&self) -> String {
        format!("{} / {}", self.preset, self.name)
    }
}

fn fixtures() -> Vec<Fixture> {
    let parsed: Fixtures = toml::from_str(FIXTURES_TOML).expect("the fixture file parses");
    parsed.fixture
}

fn catalog() -> &'static Catalog {
    Catalog::builtin()
}

/// Header values by case-insensitive name.
fn header_values<'r>(req: &'r StubRequest, name: &str) -> Vec<&'r str> {
    req.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The form body as ordered pairs.
fn form(req: &StubRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.body.as_bytes())
        .into_owned()
        .collect()
}

fn form_values<'f>(form: &'f [(String, String)], key: &str) -> Vec<&'f str> {
    form.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The preset's endpoints resolved with each variable's default, or a test host where there is
/// none; the token URL a real exchange would use.
fn resolved_token_url(p: &Preset) -> Result<Option<String>, String> {
    let values: BTreeMap<String, String> = p
        .variables
        .iter()
        .filter(|v| v.default.is_none())
        .map(|v| (v.name.clone(), "acme.example.com".to_owned()))
        .collect();
    let e = p
        .resolve(&values)
        .map_err(|e| format!("does not resolve: {e}"))?;
    Ok(e.token)
}

/// Runs one fixture: the exchange against a stub serving it, and the request the stub got.
fn exchange(f: &Fixture, p: &Preset) -> (Result<TokenResponse, OAuthError>, Vec<StubRequest>) {
    let response = StubResponse::raw(f.status, &f.content_type, f.body.as_bytes().to_vec());
    let stub = Stub::start(move |_| response.clone());
    let url = format!("{}/token", stub.base);
    let client = Client {
        id: CLIENT_ID.into(),
        secret: Some(ClientSecret::new(CLIENT_SECRET)),
        key: None,
    };
    let quirks = Quirks::new(Some(p), true);
    let result = exchange_code(&url, &client, &quirks);
    let requests = stub.requests.lock().unwrap().clone();
    (result, requests)
}

/// Checks the parsed result against the fixture's expectation.
fn check_result(f: &Fixture, result: Result<TokenResponse, OAuthError>, out: &mut Vec<String>) {
    let label = f.label();
    let e = &f.expect;
    match (&e.error, result) {
        (None, Ok(r)) => {
            let mut eq = |what: &str, got: String, want: String| {
                if got != want {
                    out.push(format!("{label}: {what} is {got}, expected {want}"));
                }
            };
            eq(
                "access_token",
                format!("{:?}", Some(r.tokens.access_token.expose())),
                format!("{:?}", e.access_token.as_deref()),
            );
            eq(
                "refresh_token",
                format!("{:?}", r.tokens.refresh_token.as_ref().map(|t| t.expose())),
                format!("{:?}", e.refresh_token.as_deref()),
            );
            eq(
                "id_token",
                format!("{:?}", r.tokens.id_token.as_ref().map(|t| t.expose())),
                format!("{:?}", e.id_token.as_deref()),
            );
            eq(
                "expires_in",
                format!("{:?}", r.expires_in),
                format!("{:?}", e.expires_in),
            );
            eq(
                "refresh_expires_in",
                format!("{:?}", r.refresh_expires_in),
                format!("{:?}", e.refresh_expires_in),
            );
            eq(
                "refresh_hard_expires_in",
                format!("{:?}", r.refresh_hard_expires_in),
                format!("{:?}", e.refresh_hard_expires_in),
            );
            eq(
                "scopes",
                format!("{:?}", r.scopes),
                format!("{:?}", e.scopes),
            );
            eq(
                "metadata",
                format!("{:?}", r.metadata),
                format!("{:?}", e.metadata),
            );
        }
        (None, Err(err)) => out.push(format!("{label}: expected tokens, got error: {err}")),
        (Some(want), Ok(_)) => out.push(format!(
            "{label}: expected a {:?} error, got tokens",
            want.kind
        )),
        (Some(want), Err(err)) => {
            let kind = match &err {
                OAuthError::Provider { .. } => Some(ErrorKind::Provider),
                OAuthError::MissingAccessToken => Some(ErrorKind::MissingAccessToken),
                OAuthError::WrongTokenType(_) => Some(ErrorKind::WrongTokenType),
                OAuthError::Malformed(_) => Some(ErrorKind::Malformed),
                _ => None,
            };
            if kind != Some(want.kind) {
                out.push(format!(
                    "{label}: expected a {:?} error, got: {err}",
                    want.kind
                ));
                return;
            }
            if let OAuthError::Provider { error, status, .. } = &err {
                if want.code.as_deref() != Some(error.as_str()) {
                    out.push(format!(
                        "{label}: error code is '{error}', expected {:?}",
                        want.code
                    ));
                }
                if want.status != Some(*status) {
                    out.push(format!(
                        "{label}: error status is {status}, expected {:?}",
                        want.status
                    ));
                }
            }
            if err.to_string().contains(CLIENT_SECRET) {
                out.push(format!(
                    "{label}: the error message holds the client secret"
                ));
            }
        }
    }
}

/// Checks the request the stub received against the preset: a POSTed form with the grant, the
/// preset's client authentication and token headers, and nothing secret in the path.
fn check_request(f: &Fixture, p: &Preset, requests: &[StubRequest], out: &mut Vec<String>) {
    let label = f.label();
    let [req] = requests else {
        out.push(format!(
            "{label}: the stub got {} requests, expected 1",
            requests.len()
        ));
        return;
    };
    if req.method != "POST" {
        out.push(format!("{label}: method is {}, expected POST", req.method));
    }
    if req.path != "/token" {
        out.push(format!("{label}: path is '{}', expected /token", req.path));
    }
    let encoded_secret: String =
        url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    for needle in [CLIENT_SECRET, encoded_secret.as_str(), "client_secret"] {
        if req.path.contains(needle) {
            out.push(format!("{label}: the request path carries the secret"));
        }
    }
    let content_type = header_values(req, "Content-Type");
    if !matches!(content_type.as_slice(), [ct] if ct.starts_with("application/x-www-form-urlencoded"))
    {
        out.push(format!(
            "{label}: Content-Type is {content_type:?}, expected a form"
        ));
    }

    let body = form(req);
    for (k, v) in GRANT {
        if form_values(&body, k) != [*v] {
            out.push(format!(
                "{label}: form field {k} is {:?}, expected [\"{v}\"]",
                form_values(&body, k)
            ));
        }
    }

    let authorization = header_values(req, "Authorization");
    match p.client_auth {
        ClientAuth::ClientSecretBasic => {
            match authorization.as_slice() {
                [value] => match basic_credentials(value) {
                    Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
                    Some((id, _)) => out.push(format!(
                        "{label}: Basic credentials are for '{id}' or carry the wrong secret"
                    )),
                    None => out.push(format!(
                        "{label}: Authorization is not well-formed HTTP Basic"
                    )),
                },
                other => out.push(format!(
                    "{label}: client_secret_basic sent {} Authorization headers",
                    other.len()
                )),
            }
            if !form_values(&body, "client_secret").is_empty()
                || req.body.contains(CLIENT_SECRET)
                || req.body.contains(&encoded_secret)
            {
                out.push(format!(
                    "{label}: client_secret_basic also put the secret in the body"
                ));
            }
        }
        ClientAuth::ClientSecretPost => {
            if !authorization.is_empty() {
                out.push(format!(
                    "{label}: client_secret_post sent an Authorization header"
                ));
            }
            if form_values(&body, "client_id") != [CLIENT_ID] {
                out.push(format!(
                    "{label}: client_secret_post form client_id is {:?}",
                    form_values(&body, "client_id")
                ));
            }
            if form_values(&body, "client_secret") != [CLIENT_SECRET] {
                out.push(format!(
                    "{label}: client_secret_post did not send the secret once in the body"
                ));
            }
        }
        ClientAuth::None => {
            if !authorization.is_empty() || !form_values(&body, "client_secret").is_empty() {
                out.push(format!("{label}: a public client sent a secret"));
            }
            if form_values(&body, "client_id") != [CLIENT_ID] {
                out.push(format!("{label}: a public client sent no client_id"));
            }
        }
        ClientAuth::PrivateKeyJwt
        | ClientAuth::TlsClientAuth
        | ClientAuth::SelfSignedTlsClientAuth => out.push(format!(
            "{label}: a preset cannot name {}: the key is the provider app's own",
            p.client_auth.as_str()
        )),
    }

    // The preset's headers, each once; Accept defaults to JSON.
    let mut expected = BTreeMap::from([("accept".to_owned(), "application/json".to_owned())]);
    for (k, v) in &p.token_headers {
        expected.insert(k.to_ascii_lowercase(), v.clone());
    }
    for (name, value) in &expected {
        let got = header_values(req, name);
        if got != [value.as_str()] {
            out.push(format!(
                "{label}: header {name} is {got:?}, expected [\"{value}\"]"
            ));
        }
    }
}

/// The client id and secret of an HTTP Basic header, form-decoded (RFC 6749 2.3.1).
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(B64.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

#[test]
fn every_preset_has_a_token_response_fixture() {
    let fixtures = fixtures();
    for p in &catalog().providers {
        assert!(
            fixtures.iter().any(|f| f.preset == p.id),
            "preset '{}' has no fixture in catalog/token_response_fixtures.toml",
            p.id
        );
    }
    let mut labels = std::collections::BTreeSet::new();
    for f in &fixtures {
        assert!(
            catalog().get(&f.preset).is_ok(),
            "fixture '{}' names an unknown preset",
            f.label()
        );
        assert!(labels.insert(f.label()), "fixture '{}' twice", f.label());
        assert!(
            f.source.starts_with("https://"),
            "fixture '{}' has no source link",
            f.label()
        );
        let e = &f.expect;
        let success_fields = e.access_token.is_some()
            || e.refresh_token.is_some()
            || e.id_token.is_some()
            || e.expires_in.is_some()
            || e.refresh_expires_in.is_some()
            || e.refresh_hard_expires_in.is_some()
            || e.scopes.is_some()
            || !e.metadata.is_empty();
        match &e.error {
            None => assert!(
                e.access_token.is_some(),
                "fixture '{}' expects neither tokens nor an error",
                f.label()
            ),
            Some(err) => {
                assert!(
                    !success_fields,
                    "fixture '{}' expects an error and tokens",
                    f.label()
                );
                assert_eq!(
                    err.kind == ErrorKind::Provider,
                    err.code.is_some() && err.status.is_some(),
                    "fixture '{}': a provider error names its code and status, others neither",
                    f.label()
                );
            }
        }
    }
}

#[test]
fn error_fixtures_cover_the_providers_known_to_send_them() {
    let fixtures = fixtures();
    let has_error = |preset: &str, code: &str, status: u16| {
        fixtures.iter().any(|f| {
            f.preset == preset
                && f.status == status
                && f.expect.error.as_ref().is_some_and(|e| {
                    e.kind == ErrorKind::Provider && e.code.as_deref() == Some(code)
                })
        })
    };
    assert!(has_error("github", "bad_verification_code", 200));
    assert!(has_error("slack", "invalid_code", 200));
    assert!(has_error("generic-oauth2", "invalid_grant", 400));
    assert!(has_error("generic-oidc", "invalid_grant", 400));
    // GitHub's form-encoded body, for both tokens and errors.
    let form_encoded = |want_error: bool| {
        fixtures.iter().any(|f| {
            f.preset == "github"
                && f.content_type
                    .starts_with("application/x-www-form-urlencoded")
                && f.expect.error.is_some() == want_error
        })
    };
    assert!(form_encoded(false) && form_encoded(true));
}

#[test]
fn token_responses_of_every_preset_parse_as_documented() {
    let mut failures = Vec::new();
    let fixtures = fixtures();
    for f in &fixtures {
        let p = catalog()
            .get(&f.preset)
            .unwrap_or_else(|_| panic!("fixture '{}' names an unknown preset", f.label()));
        match resolved_token_url(p) {
            Err(e) => failures.push(format!("{}: {e}", f.label())),
            // Discovery-only presets (generic-oidc, generic-oauth2) learn it from metadata.
            Ok(None) if p.endpoints.authorization.is_some() => {
                failures.push(format!("{}: the preset has no token endpoint", f.label()))
            }
            Ok(_) => {}
        }
        let before = failures.len();
        let (result, requests) = exchange(f, p);
        check_result(f, result, &mut failures);
        check_request(f, p, &requests, &mut failures);
        if let (true, Some(note)) = (failures.len() > before, &f.note) {
            failures.push(format!("{}: note: {note}", f.label()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n  {}",
        failures.len(),
        fixtures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn a_public_client_sends_its_id_and_no_secret() {
    // Any preset used without a secret is a public client, whatever its client_auth says.
    let p = catalog().get("okta").unwrap();
    assert_eq!(p.client_auth, ClientAuth::ClientSecretBasic);
    let body = r#"{"access_token":"at-fake","token_type":"Bearer","expires_in":3600}"#;
    let response = StubResponse::json(200, body);
    let stub = Stub::start(move |_| response.clone());
    let url = format!("{}/token", stub.base);
    let client = Client {
        id: CLIENT_ID.into(),
        secret: None,
        key: None,
    };
    let quirks = Quirks::new(Some(p), false);
    let r = exchange_code(&url, &client, &quirks).unwrap();
    assert_eq!(r.tokens.access_token.expose(), "at-fake");
    let requests = stub.requests.lock().unwrap();
    let [req] = requests.as_slice() else {
        panic!("expected one request, got {}", requests.len())
    };
    assert_eq!(req.method, "POST");
    assert!(header_values(req, "Authorization").is_empty());
    let body = form(req);
    assert_eq!(form_values(&body, "client_id"), [CLIENT_ID]);
    assert!(form_values(&body, "client_secret").is_empty());
}

#[test]
fn request_checks_catch_a_misplaced_secret() {
    // The checks above must fail a request that breaks the preset's rules.
    let f = fixtures()
        .into_iter()
        .find(|f| f.preset == "slack")
        .unwrap();
    let p = catalog().get("slack").unwrap();
    assert_eq!(p.client_auth, ClientAuth::ClientSecretBasic);
    let secret: String = url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    let bad = StubRequest {
        method: "GET".into(),
        path: format!("/token?client_secret={secret}"),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: format!(
            "grant_type=authorization_code&code=c&redirect_uri=http%3A%2F%2F127.0.0.1%3A1%2Fcallback\
             &code_verifier=v&client_id={CLIENT_ID}&client_secret={secret}"
        ),
    };
    let mut out = Vec::new();
    check_request(&f, p, &[bad], &mut out);
    let all = out.join("\n");
    for expected in [
        "expected POST",
        "expected /token",
        "path carries the secret",
        "Authorization headers",
        "secret in the body",
        "header accept",
    ] {
        assert!(all.contains(expected), "missed '{expected}' in:\n{all}");
    }
}

//! One function per fuzz target (`fuzz/fuzz_targets/*.rs` call them with libFuzzer's input,
//! and `tests/fuzz_corpora.rs` replays the committed corpora and crash inputs through them in
//! every `cargo test`). Each feeds arbitrary bytes to a parser of untrusted input and checks
//! what must hold of its answer; any panic is a bug.
//!
//! Not part of the API: the input formats are the fuzzers' own.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, ResponseShape};
use crate::http::HttpResponse;
use crate::oauth::{discovery, id_token, jwt::DecodedJwt, loopback, token};

/// A fuzz target's function.
pub type Target = fn(&[u8]);

/// The fuzz targets: their names (the folders under `fuzz/corpus/`) and functions.
pub const TARGETS: &[(&str, Target)] = &[
    ("callback_request", callback_request),
    ("token_response", token_response),
    ("jwt", jwt),
    ("discovery", discovery),
    ("catalog", catalog),
    ("agent_request", agent_request),
];

/// The loopback listener's request parsing and its answer: a callback ends the wait only with
/// the sign-in's own `state`.
pub fn callback_request(data: &[u8]) {
    let head = match loopback::parse_request_head(data) {
        Ok(head) => head,
        Err(loopback::HeadError::TooLarge) => {
            assert!(data.len() >= loopback::MAX_HEAD);
            return;
        }
        Err(_) => return,
    };
    for done in [false, true] {
        let answer = loopback::classify(&head, loopback::CALLBACK_PATH, "the-state", done);
        if matches!(
            answer,
            loopback::Answer::SignedIn
                | loopback::Answer::Denied
                | loopback::Answer::AlreadyReceived
        ) {
            assert_eq!(head.path, loopback::CALLBACK_PATH);
            assert_eq!(head.method, "GET");
            assert_eq!(
                head.params.get("state").map(String::as_str),
                Some("the-state")
            );
        }
        assert_ne!(
            loopback::classify(&head, loopback::CALLBACK_PATH, "", done),
            loopback::Answer::SignedIn,
            "an empty expected state matches nothing"
        );
    }
}

/// Content types a token endpoint answers with ([`token_response`]'s second byte).
pub const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    Some("text/plain"),
    Some("text/html"),
    None,
    Some("text/plain;charset=UTF-8"),
];

/// HTTP statuses ([`token_response`]'s third byte).
pub const STATUSES: &[u16] = &[200, 201, 400, 401, 403, 500, 503, 302];

/// Builds a [`token_response`] input: the preset's index in the built-in catalog (its number
/// of presets for the standard shape), a content type and a status from the lists above, then
/// the body.
pub fn token_response_input(
    preset: usize,
    content_type: usize,
    status: usize,
    body: &[u8],
) -> Vec<u8> {
    let mut v = vec![preset as u8, content_type as u8, status as u8];
    v.extend_from_slice(body);
    v
}

/// Token-endpoint responses read with every preset's response shape, through the normalizer and
/// oauth2 as a code exchange gets them: a parsed lifetime is
/// at most 10 years and becomes a time without overflow.
pub fn token_response(data: &[u8]) {
    let [p, ct, st, body @ ..] = data else {
        return;
    };
    let presets = &Catalog::builtin().providers;
    let default = ResponseShape::default();
    let shape = presets
        .get(usize::from(*p) % (presets.len() + 1))
        .map_or(&default, |preset| &preset.response);
    let resp = HttpResponse {
        status: STATUSES[usize::from(*st) % STATUSES.len()],
        content_type: CONTENT_TYPES[usize::from(*ct) % CONTENT_TYPES.len()].map(str::to_owned),
        body: body.to_vec(),
        ..Default::default()
    };
    let _ = token::body_to_object(&resp);
    let answer = crate::oauth::protocol::exchange_answer(shape, resp);
    if let Ok(r) = answer {
        assert!(!r.tokens.access_token.expose().is_empty());
        for life in [r.expires_in, r.refresh_expires_in].into_iter().flatten() {
            assert!(life <= token::MAX_LIFETIME_SECS);
            for now in [0, crate::model::now_ms(), i64::MAX] {
                assert!(token::expiry_after(now, life) >= now);
            }
        }
        if let Some(at) =
            DecodedJwt::decode(r.tokens.access_token.expose()).and_then(|d| d.expires_at_ms())
        {
            assert!(at >= 0);
        }
    }
}

/// The key set [`jwt`] validates ID tokens against when its input brings none: the P-256 test
/// key of `oauth::id_token`'s tests (kid `k1`).
pub const TEST_JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":"fv-W4p7vgjmrEOuZPm24hCxKR1SpvRyOhpMMQHFSrlY","y":"dc47FyHaoFfvCL2V23n7zr8v1he55o4eFY74-iUN4T4"}]}"#;

/// The expectations [`jwt`] validates ID tokens with.
pub const TEST_ISSUER: &str = "https://idp.example";
/// The audience [`jwt`] expects.
pub const TEST_CLIENT_ID: &str = "cid";
/// The nonce [`jwt`] expects.
pub const TEST_NONCE: &str = "n1";
/// The client secret that keys the HS256/384/512 ID tokens [`jwt`] accepts.
pub const TEST_CLIENT_SECRET: &str = "fuzz-client-secret";

/// JWT decoding (offline, for inspection and `exp`) and ID-token validation. The input is a
/// token, optionally followed by a newline and the key set to validate it with.
pub fn jwt(data: &[u8]) {
    let (tok, jwks) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, TEST_JWKS.as_bytes()),
    };
    let Ok(tok) = std::str::from_utf8(tok) else {
        return;
    };
    if let Some(d) = DecodedJwt::decode(tok) {
        if let Some(at) = d.expires_at_ms() {
            let max = token::expiry_after(crate::model::now_ms(), token::MAX_LIFETIME_SECS);
            assert!((0..=max + 1000).contains(&at));
        }
    }
    let secret = crate::secret::ClientSecret::new(TEST_CLIENT_SECRET);
    let expect = id_token::Expectations {
        issuer: TEST_ISSUER,
        client_id: TEST_CLIENT_ID,
        nonce: Some(TEST_NONCE),
        jwks_uri: Some("https://idp.example/jwks"),
        client_secret: Some(&secret),
    };
    if let Ok(claims) = id_token::validate_with_jwks(tok, jwks, &expect) {
        assert_eq!(
            claims.get("nonce").and_then(|n| n.as_str()),
            Some(TEST_NONCE)
        );
    }
}

/// Discovery documents, as fetched for issuer `https://idp.example`.
pub fn discovery(data: &[u8]) {
    let resp = HttpResponse {
        status: 200,
        content_type: Some("application/json".into()),
        body: data.to_vec(),
        ..Default::default()
    };
    if let Ok(meta) = discovery::parse_document(TEST_ISSUER, &resp) {
        assert_eq!(meta.issuer.trim_end_matches('/'), TEST_ISSUER);
        let e = meta.endpoints();
        assert!(e.token.is_some());
        for url in [
            &e.authorization,
            &e.token,
            &e.revocation,
            &e.introspection,
            &e.jwks,
        ]
        .into_iter()
        .flatten()
        {
            assert!(crate::http::check(url).is_ok());
        }
    }
}

/// Catalog files: parsed, then every preset's endpoints and revocation URL resolved.
pub fn catalog(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(catalog) = Catalog::parse(text) else {
        return;
    };
    let origin = url::Url::parse("https://other.example:8443").expect("a URL");
    for p in catalog.providers.iter().take(64) {
        let values: BTreeMap<String, String> = p
            .variables
            .iter()
            .map(|v| (v.name.clone(), "host.example".to_owned()))
            .collect();
        let _ = p.resolve(&values);
        let _ = p.resolve(&BTreeMap::new());
        let _ = p.revocation_url(&values, "client id/1");
        let _ = p.revocation_url_at(&origin, "cid");
        let _ = crate::oauth::flow::Quirks::new(Some(p), true);
        let _ = catalog.get(&p.id);
    }
}

/// The agent's request lines: bytes as they arrive (in chunks of the first byte's size), split
/// into lines of at most 8 KiB and decoded; a decoded request is within bounds and encodes back
/// to itself.
pub fn agent_request(data: &[u8]) {
    use crate::agent::{decode_request, next_line, LineError, Request, MAX_LINE};
    let [chunk, rest @ ..] = data else {
        return;
    };
    let chunk = usize::from(*chunk).max(1);
    let mut pending = Vec::new();
    for piece in rest.chunks(chunk) {
        pending.extend_from_slice(piece);
        loop {
            match next_line(&mut pending) {
                Ok(Some(line)) => {
                    assert!(line.len() <= MAX_LINE);
                    match decode_request(&line) {
                        Ok(req) => {
                            if let Request::Token {
                                min_valid_ms,
                                timeout_ms,
                                ..
                            } = &req
                            {
                                assert!(
                                    u128::from(*min_valid_ms) <= token::MAX_LIFETIME.as_millis()
                                );
                                assert!(timeout_ms
                                    .is_none_or(|t| u128::from(t)
                                        <= crate::deadline::MAX_TIMEOUT.as_millis()));
                            }
                            let again = serde_json::to_string(&req).expect("requests serialize");
                            let back = decode_request(again.as_bytes()).expect("round trip");
                            assert_eq!(
                                serde_json::to_string(&back).expect("requests serialize"),
                                again
                            );
                        }
                        Err(LineError::TooLong) => unreachable!("lines are at most MAX_LINE"),
                        Err(LineError::Invalid(_)) => {}
                    }
                }
                Ok(None) => break,
                Err(LineError::TooLong) => {
                    assert!(pending.len() > MAX_LINE);
                    return;
                }
                Err(LineError::Invalid(_)) => unreachable!("next_line only splits"),
            }
        }
    }
}

//! Replays the fuzz corpora and crash inputs (`fuzz/corpus/<target>/`, `fuzz/artifacts/<target>/`)
//! through the same functions the `cargo fuzz` targets call, so every `cargo test` checks that
//! no input the fuzzers ever kept makes a parser panic again.
//!
//! `cargo test -p grantkeeper-core --test fuzz_corpora -- --ignored write_seeds` writes the
//! hand-made seeds (from the catalog and its token-response fixtures) into the corpora.

use std::path::{Path, PathBuf};

use grantkeeper_core::fuzzing::{self, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable folder").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn corpora_and_crash_inputs_replay_without_a_panic() {
    for (name, run) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: write the seeds (see this file's header)"
        );
        let crashes = files(&fuzz_dir().join("artifacts").join(name));
        for input in corpus.iter().chain(&crashes) {
            let data = std::fs::read(input).expect("a readable input");
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name} panics on {}", input.display());
        }
    }
}

// ── Seeds ───────────────────────────────────────────────────────────────────────────────────

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn b64(v: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// The P-256 key whose public half is [`fuzzing::TEST_JWKS`] (the one of `oauth::id_token`'s
/// tests).
const TEST_KEY_DER_B64: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg46KE+bSqYpFIGIHPAGQc3qw91BxZYibDv5RqaqukYH+hRANCAAR+/5binu+COasQ65k+bbiELEpHVKm9HI6GkwxAcVKuVnXOOxch2qBX7wi9ldt5+86/L9YXueaOHhWO+PolDeE+";

fn signed(claims: serde_json::Value) -> String {
    use base64::Engine;
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    let der = base64::engine::general_purpose::STANDARD
        .decode(TEST_KEY_DER_B64)
        .unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    encode(&header, &claims, &EncodingKey::from_ec_der(&der)).unwrap()
}

#[test]
#[ignore = "writes the seed corpora; run by hand"]
fn write_seeds() {
    // The callback request parser.
    for (i, req) in [
        "GET /callback?code=abc&state=the-state&iss=https%3A%2F%2Fidp HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUser-Agent: Mozilla/5.0\r\nAccept: text/html\r\n\r\n",
        "GET /callback?error=access_denied&error_description=no&state=the-state HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /callback?code=abc&state=other HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /callback?code=abc HTTP/1.0\n\n",
        "GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "POST /callback HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        "GET /callback?code=a%20b+c&state=the-state&state=x#frag HTTP/1.1\r\n\r\n",
        "GET /callback HTTP/1.1\r\nno colon here\r\n\r\n",
    ]
    .iter()
    .enumerate()
    {
        write("callback_request", &i.to_string(), req.as_bytes());
    }

    // Token responses: every fixture of the catalog with its preset's shape.
    let presets = &grantkeeper_core::catalog::Catalog::builtin().providers;
    let fixtures: toml::Value = toml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/token_response_fixtures.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    for (i, f) in fixtures["fixture"].as_array().unwrap().iter().enumerate() {
        let preset = presets
            .iter()
            .position(|p| p.id == f["preset"].as_str().unwrap())
            .unwrap();
        let ct = f["content_type"].as_str().unwrap();
        let ct = fuzzing::CONTENT_TYPES
            .iter()
            .position(|c| *c == Some(ct))
            .unwrap_or(0);
        let status = f["status"].as_integer().unwrap() as u16;
        let status = fuzzing::STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(2);
        let body = f["body"].as_str().unwrap().as_bytes();
        let input = fuzzing::token_response_input(preset, ct, status, body);
        write(
            "token_response",
            &format!("{i:02}-{}", f["preset"].as_str().unwrap()),
            &input,
        );
    }
    let huge = format!(
        r#"{{"access_token":"at","token_type":"Bearer","expires_in":{},"refresh_token_expires_in":"{}","x_refresh_token_expires_in":-1}}"#,
        u64::MAX,
        i64::MAX
    );
    write(
        "token_response",
        "huge",
        &fuzzing::token_response_input(presets.len(), 0, 0, huge.as_bytes()),
    );

    // JWTs and ID tokens.
    let claims = serde_json::json!({ "iss": fuzzing::TEST_ISSUER, "aud": fuzzing::TEST_CLIENT_ID, "sub": "u1", "exp": 4_102_444_800u64, "iat": 1_700_000_000, "nonce": fuzzing::TEST_NONCE, "email": "a@b.example" });
    let good = signed(claims.clone());
    write("jwt", "id-token", good.as_bytes());
    write(
        "jwt",
        "id-token-with-jwks",
        format!("{good}\n{}", fuzzing::TEST_JWKS).as_bytes(),
    );
    let mut expired = claims.clone();
    expired["exp"] = 1_000_000.into();
    write("jwt", "id-token-expired", signed(expired).as_bytes());
    let mut aud_list = claims;
    aud_list["aud"] = serde_json::json!(["cid", "other"]);
    write("jwt", "id-token-aud-list", signed(aud_list).as_bytes());
    for (name, header, body) in [
        (
            "rs256",
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"sub":"u","exp":1800000000,"scp":["a","b"]}"#,
        ),
        (
            "exp-max",
            r#"{"alg":"none"}"#,
            r#"{"exp":9223372036854775807}"#,
        ),
        (
            "exp-neg",
            r#"{"alg":"none"}"#,
            r#"{"exp":-9223372036854775808}"#,
        ),
        (
            "hs256",
            r#"{"alg":"HS256"}"#,
            r#"{"sub":"u","exp":1800000000}"#,
        ),
    ] {
        write(
            "jwt",
            name,
            format!("{}.{}.c2ln", b64(header), b64(body)).as_bytes(),
        );
    }
    write("jwt", "opaque", b"00Dxx0000001gPL!AR8AQJXg");

    // Discovery documents.
    let doc = serde_json::json!({
        "issuer": "https://idp.example",
        "authorization_endpoint": "https://idp.example/authorize",
        "token_endpoint": "https://idp.example/token",
        "revocation_endpoint": "https://idp.example/revoke",
        "introspection_endpoint": "https://idp.example/introspect",
        "device_authorization_endpoint": "https://idp.example/device",
        "jwks_uri": "https://idp.example/jwks",
        "userinfo_endpoint": "https://idp.example/me",
        "scopes_supported": ["openid", "email", "offline_access"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "authorization_response_iss_parameter_supported": true,
        "response_types_supported": ["code"]
    });
    write("discovery", "full", doc.to_string().as_bytes());
    write(
        "discovery",
        "minimal",
        br#"{"issuer":"https://idp.example/","token_endpoint":"http://127.0.0.1:8080/token"}"#,
    );
    write(
        "discovery",
        "mismatch",
        br#"{"issuer":"https://evil.example","token_endpoint":"https://idp.example/token"}"#,
    );
    write(
        "discovery",
        "insecure",
        br#"{"issuer":"https://idp.example","token_endpoint":"http://idp.example/token","scopes_supported":"x"}"#,
    );

    // Catalog files: each preset of the built-in catalog on its own.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/providers.toml"),
    )
    .unwrap();
    for (i, part) in text.split("\n[[provider]]").skip(1).enumerate() {
        write(
            "catalog",
            &format!("{i:02}"),
            format!("[[provider]]{part}").as_bytes(),
        );
    }

    // Agent request lines (the first byte: the size of the chunks they arrive in).
    let mut lines = b"\x07".to_vec();
    lines.extend_from_slice(
        br#"{"op":"status"}
{"op":"lock"}
{"op":"unlock"}
{"op":"token","tenant":"acme","connection":"crm","min_valid_ms":60000,"hint":"nightly","timeout_ms":30000}
{"op":"token","tenant":"acme","connection":"crm","min_valid_ms":18446744073709551615,"hint":null}
{"op":"nope"}
"#,
    );
    write("agent_request", "lines", &lines);
    write(
        "agent_request",
        "crlf",
        b"\xff{\"op\":\"token\",\"tenant\":\"t\",\"connection\":\"c\",\"min_valid_ms\":1,\"hint\":null,\"timeout_ms\":18446744073709551615}\r\n",
    );
}

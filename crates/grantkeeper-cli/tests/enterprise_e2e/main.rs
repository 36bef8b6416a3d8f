//! Enterprise identity-provider set-ups against the test IdP: ID tokens signed with the client
//! secret (HS256, OpenID Connect Core §10.1), accepted for a confidential client and refused for
//! a public one; pushed authorization requests (RFC 9126) on a server that requires them;
//! private_key_jwt (RFC 7523) with a key pair Grantkeeper generates, whose private key is in the
//! keychain only; DPoP-bound grants (RFC 9449, `dpop.rs`). Each connection refreshes and revokes.

#[path = "../support/mod.rs"]
mod support;

mod dpop;
mod imported_key;
mod mtls;
mod rsa_key;

use std::sync::{Mutex, MutexGuard};

use serde_json::{json, Value};
use support::{http, keychain_secrets, Cli, Idp};

/// One test at a time: each runs an IdP and a browser, and the machine has two cores.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A client of the test IdP whose ID tokens are HS256 under `secret`.
fn hs256_client(id: &str, secret: &str, auth: &str) -> Value {
    json!({
        "client_id": id,
        "client_secret": secret,
        "application_type": "native",
        "token_endpoint_auth_method": auth,
        "id_token_signed_response_alg": "HS256",
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    })
}

/// A connection that refreshes, then revokes at the provider.
fn refreshes_and_revokes(cli: &Cli, idp: &Idp, target: &str) {
    let before = idp.refresh_requests();
    let out = cli.run(&["refresh", target]).ok().stdout.clone();
    assert!(out.contains("refreshed"), "{out}");
    assert_eq!(idp.refresh_requests(), before + 1);
    let token = cli.token(&[target]);
    assert!(!token.is_empty());
    let revocations = idp.stats()["revocations"].as_u64().unwrap();
    let out = cli.run(&["revoke", target]).ok().stdout.clone();
    assert!(out.contains("the provider revoked"), "{out}");
    assert!(idp.stats()["revocations"].as_u64().unwrap() > revocations);
    cli.run(&["token", target])
        .fails(5, "this connection was revoked");
}

#[test]
fn hs256_id_tokens_need_a_confidential_client() {
    let _serial = serial();
    let secret = "hs256-confidential-secret-0123456789abcdef";
    let public_secret = "hs256-public-client-secret-0123456789abcd";
    let idp = Idp::start(&json!({
        "idTokenSigningAlgValues": ["RS256", "HS256"],
        "extraClients": [
            hs256_client("gk-hs256", secret, "client_secret_post"),
            hs256_client("gk-hs256-public", public_secret, "none"),
        ],
    }));
    assert!(idp.metadata()["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("HS256")));
    let cli = Cli::new();
    cli.secret(secret);
    cli.secret(public_secret);
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    cli.run_with(
        &[
            "provider",
            "add",
            "acme/hs",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "gk-hs256",
            "--client-secret",
        ],
        &[],
        Some(&format!("{secret}\n")),
    )
    .ok();
    cli.run(&[
        "provider",
        "add",
        "acme/hs-public",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "gk-hs256-public",
    ])
    .ok();

    // The confidential client verifies its HS256 ID token with its secret: the account is known.
    let c = cli
        .run(&["connect", "acme/crm", "--provider", "hs", "--json"])
        .ok()
        .json();
    assert_eq!(c["account"]["subject"], "ada", "{c}");
    assert_eq!(c["has_refresh_token"], true);
    let shown = cli.run(&["show", "acme/crm", "--json"]).ok().json();
    let id_token = &shown["inspection"]["id_token"];
    assert_eq!(id_token["header"]["alg"], "HS256", "{shown}");
    assert_eq!(id_token["claims"]["aud"], "gk-hs256", "{shown}");
    let metadata = &shown["connection"]["metadata"];
    assert_eq!(metadata["issuer"], idp.issuer.as_str(), "{shown}");
    assert_eq!(
        metadata.get("id_token_verified"),
        None,
        "the ID token was verified: {shown}"
    );

    // The public client holds no secret: the same kind of token is refused, nothing is stored.
    let codes = idp.stats()["token_requests"]["authorization_code"]
        .as_i64()
        .unwrap();
    cli.run(&["connect", "acme/pub", "--provider", "hs-public"])
        .fails(5, "a public client does not have");
    assert_eq!(
        idp.stats()["token_requests"]["authorization_code"]
            .as_i64()
            .unwrap(),
        codes + 1,
        "refused after the code exchange, at the ID token"
    );
    cli.run(&["show", "acme/pub"])
        .fails(3, "no connection named 'acme/pub'");

    refreshes_and_revokes(&cli, &idp, "acme/crm");
    assert!(cli.assert_no_secret_leaked() > 8);
}

#[test]
fn authorization_requests_are_pushed_where_the_server_requires_it() {
    let _serial = serial();
    let idp = Idp::start(&json!({ "requirePushedAuthorizationRequests": true }));
    let meta = idp.metadata();
    assert_eq!(meta["require_pushed_authorization_requests"], true);
    // Unpushed, the server refuses an authorization request (back to the client's redirect).
    let front = format!(
        "{}/auth?client_id=grantkeeper-test&response_type=code&scope=openid&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        idp.issuer
    );
    let (status, body) = http("GET", &front, None);
    assert_eq!(status, 303, "{body}");
    assert!(
        body.contains("error=invalid_request")
            && body.contains("Pushed+Authorization+Request+must+be+used"),
        "{body}"
    );

    let cli = Cli::new();
    cli.acme_with_idp(&idp, &[]);
    let secret = "confidential-test-secret";
    cli.secret(secret);
    cli.run_with(
        &[
            "provider",
            "add",
            "acme/conf",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "grantkeeper-confidential",
            "--client-secret",
        ],
        &[],
        Some(&format!("{secret}\n")),
    )
    .ok();

    // A public client and a confidential one (authenticated at the PAR endpoint) connect.
    for (name, app, pushed) in [("acme/crm", "idp", 1), ("acme/svc", "conf", 2)] {
        let c = cli
            .run(&["connect", name, "--provider", app, "--json"])
            .ok()
            .json();
        assert_eq!(c["account"]["subject"], "ada", "{c}");
        let stats = idp.stats();
        assert_eq!(stats["pushed_authorization_requests"], pushed, "{stats}");
        // The refused one above, then one per sign-in.
        assert_eq!(stats["authorization_requests"], pushed + 1, "{stats}");
    }
    refreshes_and_revokes(&cli, &idp, "acme/crm");
    refreshes_and_revokes(&cli, &idp, "acme/svc");
    assert!(cli.assert_no_secret_leaked() > 8);
}

/// Files under `dir` (recursively) holding `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

/// The keychain's P-256 private keys (PKCS #8, base64) of every vault in this session.
fn keychain_private_keys() -> Vec<String> {
    // The DER prefix of a P-256 PKCS #8 key, base64; an RSA key after its algorithm.
    keychain_secrets()
        .into_iter()
        .filter(|s| {
            s.starts_with("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEH")
                || s.starts_with("RS256:")
                || s.starts_with("PS256:")
        })
        .collect()
}

#[test]
fn private_key_jwt_apps_sign_their_requests_with_a_key_only_the_keychain_holds() {
    let _serial = serial();
    let keys_before = keychain_private_keys();
    let mut idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    // A key, not a secret: both at once is refused.
    cli.secret("pkjwt-needs-no-secret");
    cli.run_with(
        &[
            "provider",
            "add",
            "acme/pk",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "gk-pkjwt",
            "--client-secret",
            "--auth",
            "private_key_jwt",
        ],
        &[],
        Some("pkjwt-needs-no-secret\n"),
    )
    .fails(2, "leave it out");
    let added = cli
        .run(&[
            "provider",
            "add",
            "acme/pk",
            "--issuer",
            &idp.issuer,
            "--client-id",
            "gk-pkjwt",
            "--auth",
            "private_key_jwt",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        added.contains("grantkeeper provider jwk acme/pk"),
        "{added}"
    );
    let app = cli.run(&["provider", "apps", "acme", "--json"]).ok().json();
    assert_eq!(app[0]["client_auth"], "private_key_jwt", "{app}");
    assert_eq!(app[0]["has_client_secret"], false);

    // The public key, to register; no private part.
    let jwks = cli.run(&["provider", "jwk", "acme/pk"]).ok().json();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (&jwk["kty"], &jwk["crv"], &jwk["alg"]),
        (&json!("EC"), &json!("P-256"), &json!("ES256"))
    );
    assert!(jwk.get("d").is_none(), "{jwks}");
    cli.run(&["provider", "jwk", "acme/nope"])
        .fails(3, "no provider app named 'acme/nope'");

    // The private key is in the keychain, and nowhere in the vault's files or any output.
    let new_keys: Vec<String> = keychain_private_keys()
        .into_iter()
        .filter(|k| !keys_before.contains(k))
        .collect();
    assert_eq!(new_keys.len(), 1, "one private key in the keychain");
    let key = new_keys[0].clone();
    cli.secret(&key);
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .unwrap();

    // The provider learns the public key (the same issuer: the same port).
    idp.restart(&json!({ "extraClients": [{
        "client_id": "gk-pkjwt",
        "application_type": "native",
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": jwks,
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }]}));
    let c = cli
        .run(&["connect", "acme/crm", "--provider", "pk", "--json"])
        .ok()
        .json();
    assert_eq!(c["account"]["subject"], "ada", "{c}");
    let stats = idp.stats();
    // The authorization request was pushed with an assertion too (the IdP offers PAR).
    assert_eq!(stats["pushed_authorization_requests"], 1, "{stats}");
    assert_eq!(stats["token_errors"]["authorization_code"], 0, "{stats}");
    let introspections = stats["introspections"].as_i64().unwrap();
    let inspected = cli
        .run(&["inspect", "acme/crm", "--introspect", "--json"])
        .ok()
        .json();
    assert_eq!(inspected["active"], true, "{inspected}");
    assert_eq!(inspected["client_id"], "gk-pkjwt", "{inspected}");
    assert_eq!(
        idp.stats()["introspections"].as_i64().unwrap(),
        introspections + 1
    );
    refreshes_and_revokes(&cli, &idp, "acme/crm");

    for needle in [key.as_bytes(), der.as_slice()] {
        assert_eq!(
            files_holding(&cli.home(), needle),
            Vec::<std::path::PathBuf>::new()
        );
    }
    // Deleted with its app.
    cli.run(&[
        "provider",
        "delete",
        "acme/pk",
        "--yes",
        "--with-connections",
    ])
    .ok();
    assert!(!keychain_private_keys().contains(&key));
    cli.run(&["provider", "jwk", "acme/pk"])
        .fails(3, "no provider app named 'acme/pk'");
    assert!(cli.assert_no_secret_leaked() > 10);
}

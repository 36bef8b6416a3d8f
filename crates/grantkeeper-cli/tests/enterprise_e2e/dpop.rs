//! DPoP (RFC 9449) against the test IdP with nonces required: a connection whose tokens are bound
//! to a key of this device, used at a DPoP-protected resource (tests/idp/dpop-resource.mjs) with
//! the headers `token --dpop-proof` prints; the same token without its proof, or as a bearer
//! token, refused; the refresh token useless without the key; the key in the keychain only, and
//! gone with its connection. The pushed authorization request and the revocation carry proofs
//! too.

use serde_json::{json, Value};

use super::support::{http, http_with_headers, Cli, Idp};
use super::{files_holding, keychain_private_keys, serial};

/// `token TARGET --dpop-proof GET URL [--dpop-nonce N]`: the two header lines it printed.
fn proof_headers(cli: &Cli, target: &str, url: &str, nonce: Option<&str>) -> Vec<(String, String)> {
    let mut args = vec!["token", target, "--dpop-proof", "GET", url];
    if let Some(n) = nonce {
        args.extend(["--dpop-nonce", n]);
    }
    let run = cli.run(&args);
    run.ok();
    let headers: Vec<(String, String)> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(
        headers.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        ["Authorization", "DPoP"],
        "{}",
        run.stdout
    );
    assert!(headers[0].1.starts_with("DPoP "), "{}", run.stdout);
    headers
}

/// One GET of the resource with `headers`: (status, the `dpop-nonce` it sent, its JSON body).
fn get(url: &str, headers: &[(String, String)]) -> (u16, Option<String>, Value) {
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, received, body) = http_with_headers("GET", url, &refs);
    let nonce = received
        .iter()
        .find(|(k, _)| k == "dpop-nonce")
        .map(|(_, v)| v.clone());
    (
        status,
        nonce,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    )
}

/// The resource answers the proof `token --dpop-proof` makes once it carries the resource's
/// nonce (a proof without one gets a `use_dpop_nonce` challenge naming it); the same proof
/// replayed is refused. Returns the thumbprint of the key the token is bound to.
fn resource_accepts(cli: &Cli, target: &str, url: &str) -> String {
    let (status, nonce, body) = get(url, &proof_headers(cli, target, url, None));
    assert_eq!(
        (status, &body["error"]),
        (401, &json!("use_dpop_nonce")),
        "{body}"
    );
    let nonce = nonce.expect("the challenge names a nonce");
    let headers = proof_headers(cli, target, url, Some(&nonce));
    let (status, _, body) = get(url, &headers);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], "ada", "{body}");
    assert_eq!(body["client_id"], "grantkeeper-test", "{body}");
    let (replayed, _, again) = get(url, &headers);
    assert_eq!(replayed, 401, "a proof is good for one request: {again}");
    body["jkt"].as_str().expect("a thumbprint").to_owned()
}

#[test]
fn dpop_bound_grants_are_useless_without_this_devices_key() {
    let _serial = serial();
    let keys_before = keychain_private_keys();
    let idp = Idp::start(&json!({ "dpop": { "requireNonce": true } }));
    let meta = idp.metadata();
    assert!(
        meta["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256")),
        "{meta}"
    );
    let resource = format!("{}/dpop/api", idp.issuer);
    let cli = Cli::new();
    // Discovery offers DPoP: on by default. An app can turn it off.
    cli.acme_with_idp(&idp, &[]);
    cli.run(&[
        "provider",
        "add",
        "acme/plain",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "grantkeeper-test",
        "--dpop",
        "off",
    ])
    .ok();

    let c = cli
        .run(&["connect", "acme/api", "--provider", "idp", "--json"])
        .ok()
        .json();
    assert_eq!(c["metadata"]["token_binding"], "dpop", "{c}");
    let stats = idp.stats();
    // The first code exchange was answered use_dpop_nonce, the second (with the nonce) served.
    assert_eq!(stats["token_requests"]["authorization_code"], 2, "{stats}");
    assert_eq!(stats["token_errors"]["authorization_code"], 1, "{stats}");
    // The pushed authorization request proved the key too (RFC 9449 §10.1), with the nonce.
    assert_eq!(
        stats["dpop_proofs"]["pushed_authorization_request"], 1,
        "{stats}"
    );
    let shown = cli.run(&["show", "acme/api"]).ok().stdout.clone();
    assert!(
        shown
            .contains("bound to:       DPoP-bound: bound to this device's key; useless without it"),
        "{shown}"
    );
    let detail = cli.run(&["show", "acme/api", "--json"]).ok().json();
    assert_eq!(detail["binding"], "dpop", "{detail}");

    // The key: in the keychain, nowhere else.
    let new_keys: Vec<String> = keychain_private_keys()
        .into_iter()
        .filter(|k| !keys_before.contains(k))
        .collect();
    assert_eq!(new_keys.len(), 1, "one DPoP key in the keychain");
    let key = new_keys[0].clone();
    cli.secret(&key);

    // The token alone is refused, as a bearer token or as a DPoP token without its proof.
    let token = cli.token(&["acme/api"]);
    for scheme in ["Bearer", "DPoP"] {
        let (status, _, body) = get(
            &resource,
            &[("Authorization".into(), format!("{scheme} {token}"))],
        );
        assert_eq!(status, 401, "{scheme}: {body}");
    }
    let jkt = resource_accepts(&cli, "acme/api", &resource);
    assert_eq!(jkt.len(), 43, "{jkt}");

    // exec tells its command the token is DPoP-bound, and which connection makes its proofs.
    let env = cli
        .run(&[
            "exec",
            "acme/api",
            "--",
            "sh",
            "-c",
            "echo \"$GRANTKEEPER_TOKEN_TYPE $GRANTKEEPER_CONNECTION\"",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(env.trim(), "DPoP acme/api");

    // The refresh token is bound too: sent without a proof, the provider refuses it.
    let rt = cli
        .gk()
        .keychain_refresh_token("api")
        .expect("a refresh token");
    cli.secret(&rt);
    let (status, body) = http(
        "POST",
        &format!("{}/token", idp.issuer),
        Some(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", "grantkeeper-test"),
        ]),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("invalid_grant") || body.contains("invalid_dpop_proof"),
        "{body}"
    );

    // Grantkeeper's refresh proves possession (with the provider's nonce); the new token is
    // bound to the same key.
    let before = idp.refresh_requests();
    let out = cli.run(&["refresh", "acme/api"]).ok().stdout.clone();
    assert!(out.contains("refreshed"), "{out}");
    assert!(idp.refresh_requests() > before);
    assert_eq!(resource_accepts(&cli, "acme/api", &resource), jkt);

    // An app with DPoP off gets a bearer token; asking it for a proof is refused.
    cli.run(&["connect", "acme/bearer", "--provider", "plain", "--json"])
        .ok();
    assert!(!cli
        .run(&["show", "acme/bearer"])
        .ok()
        .stdout
        .contains("DPoP-bound"));
    let env = cli
        .run(&[
            "exec",
            "acme/bearer",
            "--",
            "sh",
            "-c",
            "echo \"$GRANTKEEPER_TOKEN_TYPE\"",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(env.trim(), "Bearer");
    cli.run(&["token", "acme/bearer", "--dpop-proof", "GET", &resource])
        .fails(2, "is not DPoP-bound");

    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&key)
        .unwrap();
    for needle in [key.as_bytes(), der.as_slice()] {
        assert_eq!(
            files_holding(&cli.home(), needle),
            Vec::<std::path::PathBuf>::new()
        );
    }
    // Revoked: the key leaves the keychain with the tokens.
    let revocations = idp.stats()["revocations"].as_u64().unwrap();
    let out = cli.run(&["revoke", "acme/api"]).ok().stdout.clone();
    assert!(out.contains("the provider revoked"), "{out}");
    let stats = idp.stats();
    assert!(stats["revocations"].as_u64().unwrap() > revocations);
    // With a proof of the key the tokens are bound to.
    assert!(
        stats["dpop_proofs"]["revocation"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(!keychain_private_keys().contains(&key));

    // Deleted: a second bound connection's key goes with it.
    cli.run(&["connect", "acme/api2", "--provider", "idp"]).ok();
    let second: Vec<String> = keychain_private_keys()
        .into_iter()
        .filter(|k| !keys_before.contains(k))
        .collect();
    assert_eq!(second.len(), 1, "{}", second.len());
    cli.secret(&second[0]);
    cli.run(&["delete", "acme/api2"]).ok();
    assert!(!keychain_private_keys().contains(&second[0]));
    assert!(cli.assert_no_secret_leaked() > 15);
}

//! private_key_jwt with the user's own key pair: `provider add --key-file` takes a PKCS #8
//! P-256 PEM file (made here with openssl), the key moves into the keychain, and the provider,
//! registered with the public key computed from the file by openssl (not by Grantkeeper),
//! accepts the app's assertions. Other key files are refused with how to convert them (RSA
//! keys: `rsa_key.rs`).

use std::process::Command;

use base64::Engine;
use serde_json::json;

use super::support::{Cli, Idp};
use super::{files_holding, keychain_private_keys, refreshes_and_revokes, serial};

/// Runs openssl with `args`, asserting success; its stdout.
pub(super) fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The public JWK of a P-256 PEM private key, from openssl's SubjectPublicKeyInfo (its last 65
/// bytes are the uncompressed point 04 || x || y), its `kid` the RFC 7638 thumbprint.
fn public_jwk(pem: &std::path::Path) -> serde_json::Value {
    let der = openssl(&[
        "pkey",
        "-in",
        pem.to_str().unwrap(),
        "-pubout",
        "-outform",
        "DER",
    ]);
    let point = &der[der.len() - 65..];
    assert_eq!(point[0], 4);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let (x, y) = (b64(&point[1..33]), b64(&point[33..]));
    // Its key id as providers select it: the RFC 7638 thumbprint.
    use sha2::Digest;
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = b64(&sha2::Sha256::digest(canonical.as_bytes()));
    json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig" })
}

#[test]
fn an_imported_key_file_signs_the_apps_assertions_from_the_keychain() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("client-key.pem");
    let path = pem.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        path,
    ]);
    let sec1 = dir.path().join("sec1.pem");
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        sec1.to_str().unwrap(),
    ]);
    let jwk = public_jwk(&pem);

    let mut idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    let add = |name: &str, file: &str| {
        let target = format!("acme/{name}");
        cli.run(&[
            "provider",
            "add",
            &target,
            "--issuer",
            &idp.issuer,
            "--client-id",
            "gk-own-key",
            "--auth",
            "private_key_jwt",
            "--key-file",
            file,
        ])
    };
    add("sec1", sec1.to_str().unwrap()).fails(2, "openssl pkcs8 -topk8");
    add("missing", "/nonexistent/key.pem").fails(2, "cannot read the key file");
    cli.run(&[
        "provider",
        "add",
        "acme/x",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "c",
        "--auth",
        "none",
        "--key-file",
        path,
    ])
    .fails(2, "only with --auth private_key_jwt");
    assert!(cli
        .run(&["provider", "apps", "acme", "--json"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .is_empty());

    let keys_before = keychain_private_keys();
    let added = add("own", path).ok().stdout.clone();
    assert!(added.contains("is now in the keychain"), "{added}");
    // The file's key is the one kept (its PKCS #8 body, base64), and the one Grantkeeper shows.
    let body: String = std::fs::read_to_string(&pem)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    cli.secret(&body);
    let new_keys: Vec<String> = keychain_private_keys()
        .into_iter()
        .filter(|k| !keys_before.contains(k))
        .collect();
    assert_eq!(new_keys, std::slice::from_ref(&body));
    let shown = cli.run(&["provider", "jwk", "acme/own"]).ok().json();
    assert_eq!(
        shown["keys"][0], jwk,
        "the file's public key, as Grantkeeper shows it"
    );

    // The provider knows only the public key openssl derived from the file.
    idp.restart(&json!({ "extraClients": [{
        "client_id": "gk-own-key",
        "application_type": "native",
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": "ES256",
        "jwks": { "keys": [jwk] },
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }]}));
    let c = cli
        .run(&["connect", "acme/crm", "--provider", "own", "--json"])
        .ok()
        .json();
    assert_eq!(c["account"]["subject"], "ada", "{c}");
    assert_eq!(idp.stats()["token_errors"]["authorization_code"], 0);
    refreshes_and_revokes(&cli, &idp, "acme/crm");

    let der = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .unwrap();
    for needle in [body.as_bytes(), der.as_slice()] {
        assert_eq!(
            files_holding(&cli.home(), needle),
            Vec::<std::path::PathBuf>::new()
        );
    }
    cli.run(&[
        "provider",
        "delete",
        "acme/own",
        "--yes",
        "--with-connections",
    ])
    .ok();
    assert!(!keychain_private_keys().contains(&body));
    assert!(cli.assert_no_secret_leaked() > 10);
}

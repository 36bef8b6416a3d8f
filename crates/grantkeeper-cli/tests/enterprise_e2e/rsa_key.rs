//! private_key_jwt with the user's own RSA key: `provider add --key-file` takes PKCS #8 and
//! PKCS #1 PEM files (made here with openssl), refuses one under 2048 bits, and signs PS256 when
//! the server's discovery lists it, else RS256. The provider, registered with the public key
//! computed from the file by openssl (not by Grantkeeper) and the one algorithm it must see,
//! accepts the app's assertions; the key is in the keychain only and gone with its app.

use base64::Engine;
use serde_json::json;

use super::imported_key::openssl;
use super::support::{Cli, Idp};
use super::{files_holding, keychain_private_keys, refreshes_and_revokes, serial};

/// The public JWK of an RSA PEM private key from openssl's modulus, its `kid` the RFC 7638
/// thumbprint.
fn public_jwk(pem: &std::path::Path, alg: &str) -> serde_json::Value {
    let out = openssl(&["rsa", "-in", pem.to_str().unwrap(), "-noout", "-modulus"]);
    let hex = String::from_utf8(out).unwrap();
    let hex = hex.trim().strip_prefix("Modulus=").unwrap();
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let (n, e) = (b64(&n), b64(&[1, 0, 1]));
    use sha2::Digest;
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = b64(&sha2::Sha256::digest(canonical.as_bytes()));
    json!({ "kty": "RSA", "n": n, "e": e, "kid": kid, "alg": alg, "use": "sig" })
}

/// A private_key_jwt client of the test IdP that takes only `alg` assertions under `jwk`.
fn client(id: &str, alg: &str, jwk: &serde_json::Value) -> serde_json::Value {
    json!({
        "client_id": id,
        "application_type": "native",
        "token_endpoint_auth_method": "private_key_jwt",
        "token_endpoint_auth_signing_alg": alg,
        "jwks": { "keys": [jwk] },
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    })
}

/// The base64 body of a PEM file (what the keychain keeps after the algorithm).
fn pem_body(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

#[test]
fn imported_rsa_keys_sign_ps256_or_rs256_as_the_server_allows() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name);
    let (pkcs8, pkcs1, short) = (file("rsa.pem"), file("rsa-pkcs1.pem"), file("short.pem"));
    for (path, bits) in [(&pkcs8, "2048"), (&short, "1024")] {
        let bits = format!("rsa_keygen_bits:{bits}");
        let out = path.to_str().unwrap();
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            &bits,
            "-out",
            out,
        ]);
    }
    let pkcs1_out = pkcs1.to_str().unwrap();
    let pkcs1_in = file("rsa1-source.pem");
    let pkcs1_src = pkcs1_in.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:3072",
        "-out",
        pkcs1_src,
    ]);
    openssl(&["rsa", "-in", pkcs1_src, "-traditional", "-out", pkcs1_out]);
    assert!(std::fs::read_to_string(&pkcs1)
        .unwrap()
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));

    // A server that takes RS256 (and ES256) assertions only.
    let mut idp = Idp::start(&json!({ "clientAuthSigningAlgValues": ["RS256", "ES256"] }));
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    let add = |cli: &Cli, idp: &Idp, name: &str, client_id: &str, path: &std::path::Path| {
        cli.run(&[
            "provider",
            "add",
            &format!("acme/{name}"),
            "--issuer",
            &idp.issuer,
            "--client-id",
            client_id,
            "--auth",
            "private_key_jwt",
            "--key-file",
            path.to_str().unwrap(),
        ])
        .stdout
        .clone()
    };
    let keys_before = keychain_private_keys();
    cli.run(&[
        "provider",
        "add",
        "acme/short",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "c",
        "--auth",
        "private_key_jwt",
        "--key-file",
        short.to_str().unwrap(),
    ])
    .fails(2, "shorter than 2048 bits");
    let added = add(&cli, &idp, "rs", "gk-rsa-rs256", &pkcs1);
    assert!(added.contains("is now in the keychain"), "{added}");
    let rs_jwk = public_jwk(&pkcs1, "RS256");
    let shown = cli.run(&["provider", "jwk", "acme/rs"]).ok().json();
    assert_eq!(
        shown["keys"][0], rs_jwk,
        "the PKCS #1 file's public key, RS256"
    );
    assert!(shown["keys"][0].get("d").is_none());

    // The default server lists PS256 too: an app added now signs PS256.
    let ps_jwk = public_jwk(&pkcs8, "PS256");
    idp.restart(&json!({ "extraClients": [
        client("gk-rsa-ps256", "PS256", &ps_jwk),
        client("gk-rsa-rs256", "RS256", &rs_jwk),
    ]}));
    assert!(
        idp.metadata()["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("PS256"))
    );
    add(&cli, &idp, "ps", "gk-rsa-ps256", &pkcs8);
    let shown = cli.run(&["provider", "jwk", "acme/ps"]).ok().json();
    assert_eq!(
        shown["keys"][0], ps_jwk,
        "the PKCS #8 file's public key, PS256"
    );

    // Each key is kept once (after its algorithm), and nowhere in the vault's files.
    let bodies = [("PS256", pem_body(&pkcs8)), ("RS256", pem_body(&pkcs1))];
    let new_keys: Vec<String> = keychain_private_keys()
        .into_iter()
        .filter(|k| !keys_before.contains(k))
        .collect();
    for (alg, body) in &bodies {
        cli.secret(body);
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let kept = format!(
            "{alg}:{}",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        assert!(new_keys.contains(&kept), "{alg} key kept as given");
        cli.secret(&kept);
    }
    assert_eq!(new_keys.len(), 2);

    // The provider checks each assertion against the registered key and algorithm.
    for (conn, app) in [("acme/ps-conn", "ps"), ("acme/rs-conn", "rs")] {
        let c = cli
            .run(&["connect", conn, "--provider", app, "--json"])
            .ok()
            .json();
        assert_eq!(c["account"]["subject"], "ada", "{c}");
    }
    assert_eq!(idp.stats()["token_errors"]["authorization_code"], 0);
    refreshes_and_revokes(&cli, &idp, "acme/ps-conn");
    refreshes_and_revokes(&cli, &idp, "acme/rs-conn");

    for (_, body) in &bodies {
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        for needle in [body.as_bytes(), der.as_slice()] {
            assert_eq!(
                files_holding(&cli.home(), needle),
                Vec::<std::path::PathBuf>::new()
            );
        }
    }
    for app in ["acme/ps", "acme/rs"] {
        cli.run(&["provider", "delete", app, "--yes", "--with-connections"])
            .ok();
    }
    let left = keychain_private_keys();
    assert!(
        new_keys.iter().all(|k| !left.contains(k)),
        "deleted with their apps"
    );
    assert!(cli.assert_no_secret_leaked() > 10);
}

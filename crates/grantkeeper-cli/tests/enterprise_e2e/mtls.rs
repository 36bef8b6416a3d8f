//! Client certificates (mutual TLS, RFC 8705) against the test IdP's TLS listener, whose server
//! certificate is signed by a CA this test makes with openssl: `tls_client_auth` with a
//! certificate from that CA (its RSA key imported from a PEM file into the keychain) and
//! `self_signed_tls_client_auth` with a certificate Grantkeeper makes. Discovery's
//! `mtls_endpoint_aliases` send the token, PAR, introspection and revocation requests to the TLS
//! listener, trusted through `--ca-file` only; the tokens are bound to the certificate
//! (`cnf.x5t#S256`; the test resource refuses such a token without the certificate), and each
//! connection refreshes and revokes. The keys are in the keychain,
//! nowhere in the vault's files, and leave it with their apps.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;

use super::support::{closed_port, Cli, Idp};
use super::{files_holding, refreshes_and_revokes, serial};

/// The test's CA, the TLS listener's certificate, and a client certificate from the CA.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
        pki.openssl(
            &[
                &["req", "-x509", "-nodes", "-days", "2"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-subj",
                    "/CN=Grantkeeper Test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            pki.path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        std::fs::write(
            pki.path("client.ext"),
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        pki.issue("server", &ec, "/CN=127.0.0.1");
        pki.issue("client", &["-newkey", "rsa:2048"], "/CN=gk-mtls-client");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// A key and certificate `name` signed by the CA.
    fn issue(&self, name: &str, newkey: &[&str], subject: &str) {
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        self.openssl(
            &[
                &["req", "-new", "-nodes"][..],
                newkey,
                &["-keyout", &key, "-out", &csr, "-subj", subject],
            ]
            .concat(),
        );
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The test IdP's configuration: its TLS listener on `port`.
    fn idp_config(&self, port: u16, clients: Value) -> Value {
        json!({
            "mtls": {
                "port": port,
                "key": self.arg("server.key"),
                "cert": self.arg("server.pem"),
                "ca": self.arg("ca.pem"),
            },
            "extraClients": clients,
        })
    }
}

/// A confidential client of the test IdP that authenticates with `auth`, its tokens bound to
/// its certificate.
fn mtls_client(id: &str, auth: &str, extra: Value) -> Value {
    let mut client = json!({
        "client_id": id,
        "application_type": "native",
        "token_endpoint_auth_method": auth,
        "tls_client_certificate_bound_access_tokens": true,
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    client
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    client
}

/// Every secret of the session's keychain, as secret-tool prints them (PEM texts whole).
fn keychain_dump() -> String {
    let out = Command::new("timeout")
        .args([
            "30",
            "secret-tool",
            "search",
            "--all",
            "service",
            "grantkeeper",
        ])
        .output()
        .expect("secret-tool runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The base64 lines of the PEM private keys in `text`.
fn private_key_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim().trim_start_matches("secret = ");
        if line.starts_with("-----BEGIN") && line.contains("PRIVATE KEY") {
            inside = true;
        } else if line.starts_with("-----END") {
            inside = false;
        } else if inside && line.len() >= 40 {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// The SHA-256 thumbprint (`x5t#S256`) of a PEM certificate.
fn thumbprint(pem: &str) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

/// The status of a GET of `url` on the TLS listener with `token` (from a private header
/// file, never on a command line), presenting `cert` (certificate and key files) if given.
fn resource_status(pki: &Pki, url: &str, token: &str, cert: Option<(&str, &str)>) -> u16 {
    let headers = pki.path("headers");
    std::fs::write(&headers, format!("Authorization: Bearer {token}\n")).unwrap();
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "10",
    ])
    .args(["--cacert", &pki.arg("ca.pem"), "-H"])
    .arg(format!("@{}", headers.display()));
    if let Some((c, k)) = cert {
        cmd.args(["--cert", &pki.arg(c), "--key", &pki.arg(k)]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    std::fs::remove_file(&headers).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn files_holding_any(home: &Path, needles: &[String]) -> Vec<PathBuf> {
    needles
        .iter()
        .flat_map(|n| files_holding(home, n.as_bytes()))
        .collect()
}

#[test]
fn client_certificates_authenticate_over_tls_with_a_test_ca() {
    let _serial = serial();
    let pki = Pki::new();
    let tls_port = closed_port();
    let pki_client = mtls_client(
        "gk-mtls-pki",
        "tls_client_auth",
        json!({ "tls_client_auth_subject_dn": "CN=gk-mtls-client" }),
    );
    let mut idp = Idp::start(&pki.idp_config(tls_port, json!([pki_client.clone()])));
    let tls = format!("https://127.0.0.1:{tls_port}");
    let meta = idp.metadata();
    assert_eq!(
        meta["mtls_endpoint_aliases"]["token_endpoint"],
        format!("{tls}/token"),
        "{meta}"
    );
    let keys_before = private_key_lines(&keychain_dump());
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    let imported: Vec<String> =
        private_key_lines(&std::fs::read_to_string(pki.path("client.key")).unwrap());
    assert!(imported.len() > 10, "an RSA key");
    for line in &imported {
        cli.secret(line);
    }
    let add = |name: &str, client: &str, auth: &str, extra: &[&str]| {
        let ca = pki.arg("ca.pem");
        let mut args = vec![
            "provider",
            "add",
            name,
            "--issuer",
            &idp.issuer,
            "--client-id",
            client,
            "--auth",
            auth,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--ca-file", &ca]);
        cli.run(&args).ok().stdout.clone()
    };
    // tls_client_auth without a certificate, or with a key of another certificate: refused.
    cli.run(&[
        "provider",
        "add",
        "acme/pki",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "gk-mtls-pki",
        "--auth",
        "tls_client_auth",
    ])
    .fails(2, "--cert-file");
    cli.run(&[
        "provider",
        "add",
        "acme/pki",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "gk-mtls-pki",
        "--auth",
        "tls_client_auth",
        "--cert-file",
        &pki.arg("client.pem"),
        "--key-file",
        &pki.arg("server.key"),
    ])
    .fails(2, "does not belong to its certificate");
    let out = add(
        "acme/pki",
        "gk-mtls-pki",
        "tls_client_auth",
        &[
            "--cert-file",
            &pki.arg("client.pem"),
            "--key-file",
            &pki.arg("client.key"),
        ],
    );
    assert!(
        out.contains("is now in the keychain") && out.contains("shred -u"),
        "{out}"
    );
    let out = add(
        "acme/self",
        "gk-mtls-self",
        "self_signed_tls_client_auth",
        &[],
    );
    assert!(out.contains("grantkeeper provider jwk acme/self"), "{out}");
    // The app's endpoints are the TLS listener's (the aliases), and its CA is kept with them.
    let apps = cli.run(&["provider", "apps", "acme", "--json"]).ok().json();
    for app in apps.as_array().unwrap() {
        assert_eq!(app["endpoints"]["token"], format!("{tls}/token"), "{app}");
        assert_eq!(
            app["endpoints"]["revocation"],
            format!("{tls}/token/revocation")
        );
        assert!(app["endpoints"]["trusted_ca"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
    }

    // The self-signed certificate to register: a JWK with x5c, and the same as PEM.
    let jwks = cli.run(&["provider", "jwk", "acme/self"]).ok().json();
    let jwk = &jwks["keys"][0];
    assert_eq!((&jwk["kty"], &jwk["crv"]), (&json!("EC"), &json!("P-256")));
    assert!(jwk.get("d").is_none(), "{jwks}");
    let pem = cli
        .run(&["provider", "certificate", "acme/self"])
        .ok()
        .stdout
        .clone();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----") && !pem.contains("PRIVATE"));
    let pem_body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(jwk["x5c"][0], pem_body.as_str());
    let self_print = thumbprint(&pem);
    let pki_print = thumbprint(&std::fs::read_to_string(pki.path("client.pem")).unwrap());
    cli.run(&["provider", "certificate", "acme/nope"])
        .fails(3, "no provider app named 'acme/nope'");

    // The keychain holds both keys, the imported one whole.
    let dump = keychain_dump();
    assert!(imported.iter().all(|l| dump.contains(l.as_str())));
    let new_keys: Vec<String> = private_key_lines(&dump)
        .into_iter()
        .filter(|l| !keys_before.contains(l) && !imported.contains(l))
        .collect();
    assert!(!new_keys.is_empty(), "the generated key is in the keychain");
    for line in &new_keys {
        cli.secret(line);
    }

    // The provider learns the self-signed certificate (same ports: the same issuer and aliases).
    let self_client = mtls_client(
        "gk-mtls-self",
        "self_signed_tls_client_auth",
        json!({ "jwks": jwks }),
    );
    idp.restart(&pki.idp_config(tls_port, json!([pki_client, self_client])));
    for (name, app, print) in [
        ("acme/crm", "pki", &pki_print),
        ("acme/ops", "self", &self_print),
    ] {
        let c = cli
            .run(&["connect", name, "--provider", app, "--json"])
            .ok()
            .json();
        assert_eq!(c["account"]["subject"], "ada", "{c}");
        let shown = cli.run(&["show", name]).ok().stdout.clone();
        assert!(shown.contains("certificate-bound"), "{shown}");
        let inspected = cli
            .run(&["inspect", name, "--introspect", "--json"])
            .ok()
            .json();
        assert_eq!(inspected["active"], true, "{inspected}");
        assert_eq!(inspected["cnf"]["x5t#S256"], print.as_str(), "{inspected}");
    }
    // The certificate-bound token is refused at the resource without its certificate.
    let token = cli.token(&["acme/crm"]);
    let api = format!("{tls}/resource/echo");
    assert_eq!(resource_status(&pki, &api, &token, None), 401);
    assert_eq!(
        resource_status(&pki, &api, &token, Some(("client.pem", "client.key"))),
        200
    );
    let stats = idp.stats();
    // Both sign-ins pushed their authorization requests to the TLS listener's PAR endpoint.
    assert_eq!(stats["pushed_authorization_requests"], 2, "{stats}");
    assert_eq!(stats["token_errors"]["authorization_code"], 0, "{stats}");
    refreshes_and_revokes(&cli, &idp, "acme/crm");
    refreshes_and_revokes(&cli, &idp, "acme/ops");

    // No key in the vault's files; each leaves the keychain with its app.
    let all_keys: Vec<String> = imported.iter().chain(&new_keys).cloned().collect();
    assert_eq!(
        files_holding_any(&cli.home(), &all_keys),
        Vec::<PathBuf>::new()
    );
    for app in ["acme/pki", "acme/self"] {
        cli.run(&["provider", "delete", app, "--yes", "--with-connections"])
            .ok();
    }
    let dump = keychain_dump();
    assert!(all_keys.iter().all(|l| !dump.contains(l.as_str())));
    assert!(cli.assert_no_secret_leaked() > 10);
}

#[test]
fn a_provider_behind_an_unknown_ca_is_refused_without_its_ca_file() {
    let _serial = serial();
    let pki = Pki::new();
    let idp = Idp::start(&pki.idp_config(0, json!([])));
    let cli = Cli::new();
    cli.run(&["tenant", "add", "Acme", "--slug", "acme"]).ok();
    cli.run(&[
        "provider",
        "add",
        "acme/self",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "gk-x",
        "--auth",
        "self_signed_tls_client_auth",
    ])
    .ok();
    // The device authorization goes to the TLS listener first: its certificate is not trusted.
    let run = cli.run(&["connect", "acme/crm", "--provider", "self", "--device"]);
    run.fails(6, "cannot reach 127.0.0.1");
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
    let out = cli.run(&[
        "provider",
        "add",
        "acme/x",
        "--issuer",
        &idp.issuer,
        "--client-id",
        "gk-x",
        "--ca-file",
        &pki.arg("client.key"),
    ]);
    out.fails(2, "the CA file cannot be used");
}

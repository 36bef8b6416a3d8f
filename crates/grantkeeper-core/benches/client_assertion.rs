//! The extra work `private_key_jwt` adds to each token request: signing a fresh client
//! assertion (ES256, a new `jti`), and loading the app's key from its kept form once per
//! request context; and the same for DPoP (RFC 9449): signing a proof (ES256, its public key in
//! the header, with `ath` for a resource request) and loading the connection's key. Prints
//! figures; run with
//! `cargo bench -p grantkeeper-core --bench client_assertion` (`GK_BENCH_ROUNDS` changes the
//! number of rounds). Target (issue 16): under 1 ms per assertion. For a client certificate
//! (mutual TLS), loading it from its kept form (the key checked against the certificate) and
//! making it ready for the HTTP client, once per request context; the TLS handshake itself is
//! not measured here.
//!
//! The keychain read of the key (one per request context, like a refresh token's) is not
//! counted here: it is the OS keychain's time, the same for any secret.

use std::hint::black_box;
use std::time::{Duration, Instant};

use grantkeeper_core::oauth::assertion::ClientKey;
use grantkeeper_core::oauth::dpop::DpopKey;
use grantkeeper_core::oauth::mtls::ClientCertificate;
use grantkeeper_core::secret::{AccessToken, SecretText};

fn per_op(rounds: u32, mut op: impl FnMut()) -> Duration {
    for _ in 0..rounds.min(100) {
        op();
    }
    let start = Instant::now();
    for _ in 0..rounds {
        op();
    }
    start.elapsed() / rounds
}

/// The target per token request (issue 16).
const TARGET: Duration = Duration::from_millis(1);

fn verdict(d: Duration) -> &'static str {
    if d < TARGET {
        "met"
    } else {
        "NOT met"
    }
}

/// Measures and prints what `key` adds to a token request: signing an assertion and loading the
/// key from its kept form.
fn assertion_costs(key: &ClientKey, rounds: u32) {
    let kept = key.to_secret();
    let sign = per_op(rounds, || {
        black_box(
            key.assertion("grantkeeper-client", "https://idp.example")
                .unwrap(),
        );
    });
    let load = per_op(rounds, || {
        black_box(ClientKey::from_secret(&kept).unwrap());
    });
    println!("  sign one client assertion (per request): {sign:?}");
    println!("  load the key from its kept form (per request context): {load:?}");
    println!("  both, per token request: {:?}", sign + load);
    println!("  target under 1 ms per request: {}", verdict(sign + load));
}

fn main() {
    let rounds: u32 = std::env::var("GK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    println!("private_key_jwt, {rounds} rounds (debug builds are much slower: use cargo bench)");
    assertion_costs(&ClientKey::generate(), rounds);
    let generate = per_op(rounds.min(500), || {
        black_box(ClientKey::generate());
    });
    println!("  generate a key pair (once, at registration): {generate:?}");

    // An imported RSA-2048 key (the unit tests' test-only key), signing PS256 and RS256.
    let rsa_pem = SecretText::new(include_str!(
        "../src/oauth/assertion/testdata/rsa-2048-pkcs8.pem"
    ));
    for server in ["PS256", "RS256"] {
        let rsa = ClientKey::from_pem(&rsa_pem, &[server.to_owned()]).unwrap();
        let rsa_rounds = rounds.min(1_000);
        println!(
            "private_key_jwt with an RSA-2048 key ({}), {rsa_rounds} rounds",
            rsa.alg()
        );
        assertion_costs(&rsa, rsa_rounds);
    }

    let dpop = DpopKey::generate();
    let dpop_kept = dpop.to_secret();
    let token = AccessToken::new("an-access-token-of-typical-length-0123456789abcdef0123456789");
    let proof = per_op(rounds, || {
        black_box(
            dpop.proof("POST", "https://idp.example/token", Some("nonce-1"), None)
                .unwrap(),
        );
    });
    let resource = per_op(rounds, || {
        black_box(
            dpop.proof("GET", "https://api.example/v1/me", None, Some(&token))
                .unwrap(),
        );
    });
    let dpop_load = per_op(rounds, || {
        black_box(DpopKey::from_secret(&dpop_kept).unwrap());
    });
    println!("DPoP, {rounds} rounds");
    println!("  sign one proof for a token request: {proof:?}");
    println!("  sign one proof for a resource request (with ath): {resource:?}");
    println!("  load the connection's key from its kept form (per request context): {dpop_load:?}");
    println!(
        "  proof and key load, per token request: {:?}",
        proof + dpop_load
    );
    println!(
        "  target under 1 ms per request: {}",
        verdict(proof + dpop_load)
    );

    let cert = ClientCertificate::generate_self_signed("grantkeeper-client").unwrap();
    let cert_kept = cert.to_secret();
    let cert_load = per_op(rounds, || {
        let c = ClientCertificate::from_secret(&cert_kept).unwrap();
        black_box(c.tls_identity().unwrap());
    });
    let cert_generate = per_op(rounds.min(500), || {
        black_box(ClientCertificate::generate_self_signed("grantkeeper-client").unwrap());
    });
    println!("client certificate (mutual TLS), {rounds} rounds");
    println!(
        "  load it and make it ready for the HTTP client (per request context): {cert_load:?}"
    );
    println!(
        "  generate a key and self-signed certificate (once, at registration): {cert_generate:?}"
    );
}

//! The extra work `private_key_jwt` adds to each token request: signing a fresh client
//! assertion (ES256, a new `jti`), and loading the app's key from its kept form once per
//! request context. Prints figures; run with
//! `cargo bench -p grantkeeper-core --bench client_assertion` (`GK_BENCH_ROUNDS` changes the
//! number of rounds). Target (issue 16): under 1 ms per assertion.
//!
//! The keychain read of the key (one per request context, like a refresh token's) is not
//! counted here: it is the OS keychain's time, the same for any secret.

use std::hint::black_box;
use std::time::{Duration, Instant};

use grantkeeper_core::oauth::assertion::ClientKey;

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

fn main() {
    let rounds: u32 = std::env::var("GK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let key = ClientKey::generate();
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
    let generate = per_op(rounds.min(500), || {
        black_box(ClientKey::generate());
    });
    println!("private_key_jwt, {rounds} rounds (debug builds are much slower: use cargo bench)");
    println!("  sign one client assertion (per request): {sign:?}");
    println!("  load the key from its kept form (per request context): {load:?}");
    println!("  both, per token request: {:?}", sign + load);
    println!("  generate a key pair (once, at registration): {generate:?}");
    let target = Duration::from_millis(1);
    println!(
        "  target under 1 ms per request: {}",
        if sign + load < target {
            "met"
        } else {
            "NOT met"
        }
    );
}

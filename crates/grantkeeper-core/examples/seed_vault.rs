//! Seeds a vault for the desktop benchmark (scripts/bench-app): tenants, provider apps,
//! connections (every 50th with a refresh token in the real keychain) and a usage history; one
//! connection, `aaa-hot` in the first tenant, gets a tenth of all events. The usage profiles are
//! folded at the end, as the app and the agent keep them while events come.
//!
//!   cargo run --release -p grantkeeper-core --example seed_vault -- HOME [CONNECTIONS] [EVENTS]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use grantkeeper_core::audit::{Actor, ActorKind, EventKind, NewEvent};
use grantkeeper_core::keychain::OsKeychain;
use grantkeeper_core::model::{
    now_ms, AccountIdentity, ConnectionId, Endpoints, ExpirySource, RedirectMode, TenantId,
};
use grantkeeper_core::secret::{AccessToken, RefreshToken, TokenSet};
use grantkeeper_core::{ConnectionFilter, NewConnection, NewProviderApp, Vault};

const DAY: i64 = 86_400_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let home = std::path::PathBuf::from(args.next().expect("usage: seed_vault HOME [N] [EVENTS]"));
    let n: usize = args.next().map_or(10_000, |s| s.parse().expect("a number"));
    let events: usize = args
        .next()
        .map_or(1_000_000, |s| s.parse().expect("a number"));
    let t0 = Instant::now();
    let vault = Vault::open(&home, Arc::new(OsKeychain::from_env())).expect("vault");
    let actor = Actor::new(ActorKind::Cli);
    let presets = ["salesforce", "google", "xero", "hubspot", "slack"];
    let mut ids: Vec<(TenantId, ConnectionId)> = Vec::with_capacity(n);
    let tenants = 50;
    let now = now_ms();
    for t in 0..tenants {
        let tenant = vault
            .create_tenant(&format!("Client {t:02}"), None, "", &actor)
            .expect("tenant");
        let scope = vault.tenant(&tenant.id).expect("scope");
        let app = scope
            .add_provider_app(
                NewProviderApp {
                    name: "app".into(),
                    preset: Some(presets[t % presets.len()].into()),
                    endpoints: Endpoints {
                        authorization: Some("https://auth.example.com/authorize".into()),
                        token: Some("https://auth.example.com/token".into()),
                        ..Endpoints::default()
                    },
                    client_id: format!("client-{t}"),
                    client_secret: None,
                    redirect_mode: RedirectMode::Loopback,
                    client_auth: None,
                    dpop: None,
                    client_key: None,
                    redirect_port: None,
                    relay_url: None,
                    default_scopes: vec!["openid".into()],
                },
                &actor,
            )
            .expect("app");
        let per = n / tenants + usize::from(t < n % tenants);
        for k in 0..per {
            let i = ids.len();
            let name = if i == 0 {
                "aaa-hot".to_owned()
            } else {
                format!("conn-{i:05}")
            };
            let c = scope
                .store_connection(
                    NewConnection {
                        name,
                        provider_app_id: app.id.clone(),
                        account: AccountIdentity {
                            subject: Some(format!("user-{i}")),
                            username: Some(format!("user{i}@client{t:02}.example")),
                            org_id: None,
                        },
                        scopes_requested: vec![
                            "openid".into(),
                            "api".into(),
                            "refresh_token".into(),
                        ],
                        scopes_granted: None,
                        consented_by: Some(format!("user{i}@client{t:02}.example")),
                        access_expiry: Some((
                            now + ((i as i64 * 7_919) % (4 * 3_600_000)) - 600_000,
                            ExpirySource::Response,
                        )),
                        refresh_expires_at: k
                            .is_multiple_of(3)
                            .then_some(now + (10 + i as i64 % 80) * DAY),
                        refresh_hard_expires_at: None,
                        metadata: BTreeMap::new(),
                        dpop_key: None,
                    },
                    TokenSet {
                        access_token: AccessToken::new(format!("seed-access-{i}")),
                        refresh_token: i
                            .is_multiple_of(50)
                            .then(|| RefreshToken::new(format!("seed-refresh-{i}"))),
                        id_token: None,
                    },
                    &actor,
                )
                .expect("connection");
            ids.push((tenant.id.clone(), c.id));
        }
    }
    println!(
        "{} connections in {:.1} s",
        ids.len(),
        t0.elapsed().as_secs_f64()
    );

    // The usage history: batched appends through the same keyed chain, spread over 90 days.
    let t1 = Instant::now();
    let agent = Actor::new(ActorKind::Agent).with_hint(Some("nightly-sync".into()));
    let start = now - 90 * DAY;
    let step = (90 * DAY) / events.max(1) as i64;
    let mut i = 0;
    while i < events {
        let batch: Vec<NewEvent> = (i..(i + 10_000).min(events))
            .map(|k| {
                let c = if k.is_multiple_of(10) {
                    0
                } else {
                    k % ids.len()
                };
                let kind = if k.is_multiple_of(7) {
                    EventKind::Refreshed
                } else {
                    EventKind::HandedOut
                };
                NewEvent::new(kind, &agent)
                    .at(start + k as i64 * step)
                    .tenant(&ids[c].0)
                    .connection(&ids[c].1)
                    .fingerprint(format!("gkfp1:{k:032x}"))
            })
            .collect();
        vault.record_events(&batch).expect("append");
        i += batch.len();
    }
    vault.anchor_history().expect("checkpoint");
    println!("{events} events in {:.1} s", t1.elapsed().as_secs_f64());

    // A vault in use has its usage profiles folded as events come (the app's and the agent's
    // checkpoint threads); events written here in bulk are folded once, as a first reading
    // (an upgraded vault's, say) would, and the time it takes is said.
    let t2 = Instant::now();
    vault
        .anomalies(&ConnectionFilter::default())
        .expect("usage profiles");
    println!(
        "usage profiles: {events} events folded in {:.1} s",
        t2.elapsed().as_secs_f64()
    );
}

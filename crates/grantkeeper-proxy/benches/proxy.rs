//! The proxy beside direct requests, on loopback: a small upstream answering `200 ok`, a
//! vault with a connection holding a valid token (real Secret Service), and hyper clients.
//! - latency: one keep-alive connection, requests one after another, direct and through the
//!   proxy (median and p99; the proxy's added median latency, target at most 0.5 ms);
//! - throughput: 32 keep-alive connections for 5 s each way (requests/s; target at least 5,000
//!   through the proxy on a 2-core machine). Client, proxy and upstream share the machine's
//!   cores, and every call through the proxy is written to the usage history (checked at the end).
//!
//!   scripts/with-test-session cargo bench -p grantkeeper-proxy --bench proxy

#[path = "../../grantkeeper-core/tests/common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use grantkeeper_core::catalog::ApiTarget;
use grantkeeper_core::Vault;
use grantkeeper_proxy::{Grant, Options, Proxy};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// The upstream: `200 ok` to everything, on its own thread.
fn upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    addr
}

fn client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(http)
}

async fn get(client: &HttpClient, url: &hyper::Uri) {
    let resp = client
        .request(Request::get(url.clone()).body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
}

async fn latencies(client: &HttpClient, url: &hyper::Uri, n: usize) -> Vec<Duration> {
    for _ in 0..500 {
        get(client, url).await;
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        get(client, url).await;
        out.push(t.elapsed());
    }
    out.sort();
    out
}

async fn throughput(url: &hyper::Uri, connections: usize, for_: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (url, done) = (url.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            // One client per task: one keep-alive connection each.
            let client = client();
            while start.elapsed() < for_ {
                get(&client, &url).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn us(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(Vault::open(dir.path(), keychain()).unwrap());
    let (tenant, connection) = {
        let t = vault
            .create_tenant("Acme", Some("acme"), "", &actor())
            .unwrap();
        let scope = vault.tenant(&t.id).unwrap();
        let app = app(&scope, "client-secret");
        let c = scope
            .store_connection(
                new_conn(&app, "main"),
                tokens("bench-access-token-0123456789", "bench-refresh", None),
                &actor(),
            )
            .unwrap();
        (t.id, c.id)
    };
    let up = upstream();
    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proxy = proxy_rt
        .block_on(Proxy::start(
            Grant {
                vault: vault.clone(),
                tenant,
                connection,
                api: ApiTarget {
                    base: format!("http://{up}/api").parse().unwrap(),
                    headers: vec![],
                },
            },
            &Options {
                listen: "127.0.0.1:0".parse().unwrap(),
                require_bearer: false,
            },
        ))
        .unwrap();
    let direct: hyper::Uri = format!("http://{up}/api/items/1").parse().unwrap();
    let proxied: hyper::Uri = format!("http://{}/items/1", proxy.local_addr())
        .parse()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("load average before: {} (2 cores, shared)", loadavg());
    let n = 5000;
    let (d, p) = client_rt.block_on(async {
        let c = client();
        let d = latencies(&c, &direct, n).await;
        let c = client();
        let p = latencies(&c, &proxied, n).await;
        (d, p)
    });
    println!(
        "latency, one connection, {n} requests each: direct median {:.0} us (p99 {:.0}); through the proxy median {:.0} us (p99 {:.0}); added at the median {:.0} us (target <= 500 us)",
        us(&d, 0.5),
        us(&d, 0.99),
        us(&p, 0.5),
        us(&p, 0.99),
        us(&p, 0.5) - us(&d, 0.5)
    );
    let secs = Duration::from_secs(5);
    let (rd, rp) = client_rt.block_on(async {
        (
            throughput(&direct, 32, secs).await,
            throughput(&proxied, 32, secs).await,
        )
    });
    println!(
        "throughput, 32 keep-alive connections for {} s: direct {rd:.0} requests/s; through the proxy {rp:.0} requests/s (target >= 5000)",
        secs.as_secs()
    );
    let calls = proxy.stats().calls.load(Ordering::Relaxed);
    proxy_rt.block_on(proxy.stop());
    println!(
        "history: {calls} proxied calls answered, {} recorded",
        vault
            .history(&grantkeeper_core::audit::HistoryFilter {
                connection: None,
                since: None,
                kind: Some(grantkeeper_core::audit::EventKind::Proxied),
                limit: u32::MAX,
            })
            .map(|e| e.len())
            .unwrap_or(0)
    );
    println!("load average after: {}", loadavg());
}

//! The authenticating proxy end to end: the real `grantkeeper proxy` in front of the test IdP's
//! protected API (tests/idp/resource.mjs), with a grant consented in the real browser and the
//! real Secret Service (run inside `scripts/with-test-session`). This test is the local client.

#[path = "support/http_client.rs"]
mod http_client;
mod support;

use std::io::{BufRead, BufReader};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_client::{client, send, Answer, ClientBody};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::*;

const MB100: u64 = 100 * 1024 * 1024;

/// A running `grantkeeper proxy`, stopped with SIGTERM (or killed when dropped).
struct Proxy {
    kid: Kid,
    started: Value,
    stderr: std::thread::JoinHandle<String>,
}

impl Proxy {
    fn start(cli: &Cli, args: &[&str]) -> Self {
        let mut all = vec!["proxy", "acme/main", "--json"];
        all.extend_from_slice(args);
        let mut cmd = cli.command(&all);
        let mut kid = Kid(Some(cmd.spawn().expect("the proxy starts")));
        let stdout = kid.child().stdout.take().unwrap();
        let mut stderr = kid.child().stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
            s
        });
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let started: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the proxy's first line ({e}): {line:?}"));
        Proxy {
            kid,
            started,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.started["listen"].as_str().unwrap())
    }

    /// The peak resident memory of the proxy process so far, in kB (`VmHWM`).
    fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.kid.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// SIGTERM; the proxy writes its last calls and exits 0. Returns its stderr.
    fn stop(mut self) -> String {
        let status = Command::new("kill")
            .args(["-TERM", &self.kid.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self
            .kid
            .wait_for(Duration::from_secs(20), "the proxy stops");
        assert_eq!(exit.code(), Some(0), "the proxy exits 0 on SIGTERM");
        self.stderr.join().unwrap()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn post(url: &str) -> Value {
    let (status, body) = http("POST", url, None);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pattern_sha256(len: u64) -> String {
    let mut h = Sha256::new();
    let chunk: Vec<u8> = (0..251 * 256).map(|i| (i % 251) as u8).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    hex(&h.finalize())
}

#[test]
fn proxy_forwards_with_the_token_refreshes_after_401_streams_and_records() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    let resource = format!("{}/resource", idp.issuer);

    // Loopback only, with a clear error before anything starts.
    for bad in ["0.0.0.0:0", "192.0.2.1:8080", "[::]:0"] {
        cli.run(&["proxy", "acme/main", "--listen", bad])
            .fails(2, "loopback only");
    }
    // A generic provider needs its API base.
    cli.run(&["proxy", "acme/main"]).fails(2, "--api-base");

    let proxy = Proxy::start(&cli, &["--api-base", &resource]);
    assert_eq!(proxy.started["bearer"], Value::Null);
    let rt = rt();
    let hc = client();
    let mut answers: Vec<Answer> = Vec::new();
    let mut calls = 0usize;

    // 1. A request with a client-sent Authorization and a query: forwarded with the grant's token.
    let a = rt.block_on(send(
        &hc,
        "GET",
        &proxy.url("/echo/items?filter=secret-query-value"),
        &[("authorization", "Bearer client-sent-credential")],
        ClientBody::empty(),
        false,
    ));
    calls += 1;
    assert_eq!(a.status, 200, "{}", a.text());
    let echo = a.json();
    assert_eq!(echo["path"], "/resource/echo/items");
    assert_eq!(echo["query"], "filter=secret-query-value");
    assert!(
        echo["scope"].as_str().unwrap().contains("api:read"),
        "{echo}"
    );
    answers.push(a);

    // 2. The API refuses the current token once: one refresh, and the buffered request is sent
    //    again and succeeds.
    let refreshes = idp.refresh_requests();
    assert_eq!(
        post(&format!("{}/__test/refuse-tokens", idp.issuer))["refused"],
        1
    );
    let body = "{\"invoice\": 42}";
    let a = rt.block_on(send(
        &hc,
        "POST",
        &proxy.url("/echo/invoices"),
        &[("content-type", "application/json")],
        ClientBody::bytes(body),
        false,
    ));
    calls += 1;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.json()["body_sha256"],
        hex(&Sha256::digest(body.as_bytes()))
    );
    assert_eq!(idp.refresh_requests(), refreshes + 1, "exactly one refresh");
    assert_eq!(resource_stats(&idp)["refused"], 1);
    answers.push(a);

    // 3. A streamed body (chunked, not buffered) cannot be sent again: the 401 is passed through.
    post(&format!("{}/__test/refuse-tokens", idp.issuer));
    let a = rt.block_on(send(
        &hc,
        "POST",
        &proxy.url("/upload"),
        &[],
        ClientBody::pattern(2 * 1024 * 1024, false),
        false,
    ));
    calls += 1;
    assert_eq!(a.status, 401, "{}", a.text());
    answers.push(a);
    // The token was refused once only; the next request goes through.
    let a = rt.block_on(send(
        &hc,
        "GET",
        &proxy.url("/echo"),
        &[],
        ClientBody::empty(),
        false,
    ));
    calls += 1;
    assert_eq!(a.status, 200, "{}", a.text());
    answers.push(a);

    // 4. 100 MB each way, streamed: the proxy's memory stays far below the body's size.
    let rss_before = proxy.peak_rss_kb();
    let started = Instant::now();
    let down = rt.block_on(send(
        &hc,
        "GET",
        &proxy.url(&format!("/download?bytes={MB100}")),
        &[],
        ClientBody::empty(),
        true,
    ));
    calls += 1;
    let down_time = started.elapsed();
    assert_eq!(down.status, 200);
    assert_eq!(down.bytes, MB100);
    assert!(
        down.pattern_ok,
        "every downloaded byte is the one the API sent"
    );
    let started = Instant::now();
    let up = rt.block_on(send(
        &hc,
        "PUT",
        &proxy.url("/upload"),
        &[],
        ClientBody::pattern(MB100, true),
        false,
    ));
    calls += 1;
    let up_time = started.elapsed();
    assert_eq!(up.status, 200, "{}", up.text());
    assert_eq!(up.json()["bytes"], MB100);
    assert_eq!(up.json()["sha256"], pattern_sha256(MB100));
    let rss_peak = proxy.peak_rss_kb();
    eprintln!(
        "proxy: 100 MB down in {:.2} s, up in {:.2} s; proxy peak RSS {} kB before, {} kB after",
        down_time.as_secs_f64(),
        up_time.as_secs_f64(),
        rss_before,
        rss_peak
    );
    assert!(
        rss_peak < 64 * 1024,
        "the proxy streams: peak RSS {rss_peak} kB for 200 MB moved"
    );
    answers.push(up);

    // Upstream connections were kept alive: fewer connections than requests.
    let sequential = resource_stats(&idp);
    eprintln!("proxy: sequential part: {sequential}");
    let seq_requests = sequential["requests"].as_u64().unwrap();
    assert!(
        sequential["connections"].as_u64().unwrap() * 2 <= seq_requests,
        "{sequential}"
    );

    // 5. 500 requests at once (started five per millisecond), mixed: all succeed, each answer its own.
    let http = Arc::new(hc);
    let started = Instant::now();
    let results: Vec<(usize, Answer)> = rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..500usize {
            let http = http.clone();
            let url = match i % 3 {
                0 => proxy.url(&format!("/echo/n/{i}?i={i}")),
                1 => proxy.url(&format!("/echo/post/{i}")),
                _ => proxy.url("/download?bytes=65536"),
            };
            tasks.push(tokio::spawn(async move {
                let (method, body, pattern) = match i % 3 {
                    0 => ("GET", ClientBody::empty(), false),
                    1 => ("POST", ClientBody::bytes(format!("body {i}")), false),
                    _ => ("GET", ClientBody::empty(), true),
                };
                (i, send(&http, method, &url, &[], body, pattern).await)
            }));
            if i % 5 == 4 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    calls += 500;
    let elapsed = started.elapsed();
    let ok = results.iter().filter(|(_, a)| a.status == 200).count();
    let failed: Vec<String> = results
        .iter()
        .filter(|(_, a)| a.status != 200)
        .take(3)
        .map(|(i, a)| format!("#{i}: {}", a.text()))
        .collect();
    assert_eq!(ok, 500, "every concurrent request succeeds: {failed:?}");
    for (i, a) in &results {
        match i % 3 {
            0 => assert_eq!(a.json()["path"], format!("/resource/echo/n/{i}")),
            1 => assert_eq!(a.json()["body_bytes"], format!("body {i}").len()),
            _ => assert!(a.bytes == 65536 && a.pattern_ok),
        }
    }
    let after = resource_stats(&idp);
    let connections =
        after["connections"].as_u64().unwrap() - sequential["connections"].as_u64().unwrap();
    eprintln!(
        "proxy: 500 concurrent requests in {:.2} s over {connections} upstream connections",
        elapsed.as_secs_f64()
    );
    assert_eq!(after["requests"].as_u64().unwrap() - seq_requests, 500);
    assert!(
        connections < 500,
        "upstream connections are reused: {connections}"
    );

    // The token never reached the client: not in any answer, header or error.
    let token = cli.token(&["acme/main"]);
    cli.secret(&token);
    for a in answers.iter().chain(results.iter().map(|(_, a)| a)) {
        assert!(!a.text().contains(&token), "the token reached the client");
    }
    let stderr = proxy.stop();
    assert!(!stderr.contains(&token), "the token in the proxy's stderr");

    // Every call is in the history, with its fields and never its query.
    let history = cli
        .run(&[
            "history",
            "acme/main",
            "--kind",
            "proxied",
            "--limit",
            "5000",
            "--json",
        ])
        .ok()
        .json();
    let events = history.as_array().unwrap();
    assert_eq!(events.len(), calls, "one proxied event per call");
    let text = history.to_string();
    assert!(!text.contains("secret-query-value") && !text.contains(&token));
    let me = std::env::current_exe().unwrap();
    let me = me.file_name().unwrap().to_string_lossy();
    for e in events {
        assert_eq!(e["actor"], "proxy");
        let caller = e["caller"].as_str().unwrap_or_default();
        assert!(
            caller.starts_with(&format!("pid {} ", std::process::id())) && caller.contains(&*me),
            "{caller}"
        );
        let d = &e["detail"];
        assert!(
            d["path"].as_str().unwrap().starts_with('/')
                && !d["path"].as_str().unwrap().contains('?')
        );
        assert!(d["host"] == "127.0.0.1" && d["method"].is_string() && d["status"].is_u64());
        assert!(d["bytes_in"].is_u64() && d["bytes_out"].is_u64() && d["duration_ms"].is_number());
        assert!(e["fingerprint"].is_string());
    }
    let find = |method: &str, path: &str| {
        events
            .iter()
            .find(|e| e["detail"]["method"] == method && e["detail"]["path"] == path)
            .unwrap_or_else(|| panic!("no event for {method} {path}"))
    };
    assert_eq!(find("GET", "/echo/items")["detail"]["status"], 200);
    let retried = find("POST", "/echo/invoices");
    assert_eq!(retried["detail"]["retried"], true);
    assert_eq!(retried["detail"]["bytes_in"], body.len());
    assert_eq!(find("POST", "/upload")["detail"]["status"], 401);
    assert!(events.iter().any(|e| e["detail"]["path"] == "/download"
        && e["detail"]["bytes_out"] == MB100
        && e["detail"]["status"] == 200));
    assert_eq!(find("PUT", "/upload")["detail"]["bytes_in"], MB100);
    cli.run(&["audit", "verify"]).ok();
    cli.assert_no_secret_leaked();
}

#[test]
fn require_bearer_refuses_clients_without_it() {
    let idp = Idp::start(&json!({}));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    let resource = format!("{}/resource", idp.issuer);
    let proxy = Proxy::start(&cli, &["--api-base", &resource, "--require-bearer"]);
    let bearer = proxy.started["bearer"].as_str().unwrap().to_owned();
    assert!(bearer.len() >= 40);
    let rt = rt();
    let http = client();
    let get = |proxy: &Proxy, headers: &[(&str, &str)]| {
        rt.block_on(send(
            &http,
            "GET",
            &proxy.url("/echo"),
            headers,
            ClientBody::empty(),
            false,
        ))
    };
    let refused = get(&proxy, &[]);
    assert_eq!(refused.status, 407);
    assert!(refused.headers.contains("proxy-authenticate: Bearer"));
    assert_eq!(
        get(&proxy, &[("proxy-authorization", "Bearer wrong")]).status,
        407
    );
    assert_eq!(
        get(&proxy, &[("authorization", "Bearer wrong")]).status,
        407
    );
    let proxy_auth = format!("Bearer {bearer}");
    assert_eq!(
        get(&proxy, &[("proxy-authorization", &proxy_auth)]).status,
        200
    );
    // In Authorization it is taken off and replaced by the grant's token.
    let a = get(&proxy, &[("authorization", &proxy_auth)]);
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(!a.text().contains(&bearer));
    proxy.stop();
    let history = cli
        .run(&["history", "acme/main", "--kind", "proxied", "--json"])
        .ok()
        .json();
    let statuses: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 407).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2);

    // With --bearer-file, the bearer goes to a file only its owner can read, not to stdout.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bearer");
    let proxy = Proxy::start(
        &cli,
        &[
            "--api-base",
            &resource,
            "--require-bearer",
            "--bearer-file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(proxy.started["bearer"], Value::Null);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let from_file = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    let auth = format!("Bearer {from_file}");
    assert_eq!(get(&proxy, &[("proxy-authorization", &auth)]).status, 200);
    proxy.stop();
}

/// Tokens that live 70 s: the proxy takes a new one when the current one has less than a minute
/// left, before any request is refused.
#[test]
fn proxy_refreshes_before_expiry() {
    let mut idp = Idp::start(&json!({ "accessTokenTtl": 70 }));
    let cli = Cli::new();
    cli.acme_with_idp(&idp, &["--scopes", "openid offline_access api:read"]);
    cli.run(&["connect", "acme/main", "--provider", "idp"]).ok();
    let resource = format!("{}/resource", idp.issuer);
    let proxy = Proxy::start(&cli, &["--api-base", &resource]);
    let rt = rt();
    let http = client();
    let get = || {
        rt.block_on(send(
            &http,
            "GET",
            &proxy.url("/echo"),
            &[],
            ClientBody::empty(),
            false,
        ))
    };
    // The first request already asks for two minutes of validity: one refresh.
    let before = idp.refresh_requests();
    assert_eq!(get().status, 200);
    let first = idp.refresh_requests();
    assert_eq!(first, before + 1);
    assert_eq!(get().status, 200);
    assert_eq!(idp.refresh_requests(), first, "a fresh token is reused");
    // Eleven seconds later the token has less than a minute left: refreshed before use.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(get().status, 200);
    assert_eq!(idp.refresh_requests(), first + 1);
    assert_eq!(
        resource_stats(&idp)["unauthorized"],
        0,
        "no request was refused"
    );
    // With the provider and its API gone, the client gets the proxy's own error (a 502, or a 503
    // when a new token was due), never the token.
    let token = cli.token(&["acme/main", "--min-valid", "1s"]);
    cli.secret(&token);
    idp.stop();
    let gone = get();
    assert!(matches!(gone.status, 502 | 503), "{}", gone.text());
    assert!(
        gone.text().contains("grantkeeper proxy: "),
        "{}",
        gone.text()
    );
    assert!(!gone.text().contains(&token));
    let stderr = proxy.stop();
    assert!(!stderr.contains(&token));
    cli.assert_no_secret_leaked();
}

/// The protected API's counters (tests/idp/resource.mjs).
fn resource_stats(idp: &Idp) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}/__test/resource-stats", idp.issuer),
        None,
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

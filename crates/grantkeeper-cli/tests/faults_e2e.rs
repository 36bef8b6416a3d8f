//! Fault tests with the deadline (issue 10): the real `grantkeeper` binary and the real Secret
//! Service against a small programmable OAuth provider written here (std `TcpListener` on
//! 127.0.0.1, a thread per connection, HTTP/1.1 by hand).
//!
//! For each fault of the token endpoint (HTTP 500, a 200 with truncated JSON, a 10 MB body, a
//! 40 s stall, a connection reset after the provider committed a rotation), an expired access
//! token makes `grantkeeper token` refresh, and the test checks:
//!
//! - one `grantkeeper: …` line on stderr, nothing on stdout, the documented exit code (6 for a
//!   provider or network failure, 8 past the deadline), within the deadline plus process start;
//! - the requests that reached the provider (retries of 5xx and network failures only) all left
//!   within the deadline;
//! - nothing lost: the connection is still active, the keychain holds the same refresh token,
//!   no journal row is left, the usage history verifies and records the failure, no hand-out;
//! - once the provider is healthy again, the next call succeeds, wherever the provider allows
//!   it: no rotation, or rotation with a reuse grace (a rotated refresh token the client never
//!   received is recovered by presenting the consumed one again). Strict single use after a
//!   lost answer is the documented limit (crash-safety notes of `grantkeeper_core::lifecycle`,
//!   step 2): one test shows it ends in re-consent, said in one line;
//! - no token, refresh token or code the provider issued appears on any stderr.
//!
//! `exec --timeout 3s` and `token --timeout 3s` through a running agent are checked against the
//! stall as well. The faults run in parallel, each with its own provider and vault.
//!
//!   scripts/with-test-session timeout 900 cargo test -p grantkeeper-cli --test faults_e2e -- --nocapture

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

const TARGET: &str = "t/c";
/// `grantkeeper_core::deadline::DEFAULT_TIMEOUT`.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// Process start, vault open and keychain reads on top of a deadline.
const START_MARGIN: Duration = Duration::from_millis(1500);
/// How long the stalling token endpoint waits before it answers.
const STALL: Duration = Duration::from_secs(40);
/// The oversized answer.
const HUGE: usize = 10 * 1024 * 1024;
/// A Xero-like reuse grace for a consumed refresh token.
const GRACE: Duration = Duration::from_secs(1800);
/// Prefixes of everything secret the provider issues: none may appear on stderr.
const SECRET_PREFIXES: [&str; 3] = ["gkat_", "gkrt_", "gkcode_"];

// ----- the programmable provider -----

/// How the token endpoint answers refresh requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Refreshes as it should.
    Healthy,
    /// HTTP 500 with an HTML page; nothing changes.
    ServerError,
    /// Refreshes (rotation committed), then answers 200 with the JSON cut in the middle.
    Truncated,
    /// Refreshes (rotation committed), then answers 200 with a 10 MB JSON body.
    Huge,
    /// Waits [`STALL`] before answering 503; the request is never processed.
    Stall,
    /// Refreshes (rotation committed), then resets the connection without answering.
    CommitThenReset,
}

struct State {
    mode: Mode,
    rotate: bool,
    grace: Option<Duration>,
    /// Every refresh token issued, with when it was consumed by a rotation.
    refresh: HashMap<String, Option<Instant>>,
    codes: HashSet<String>,
    /// Every secret issued (access tokens, refresh tokens, codes).
    secrets: Vec<String>,
    /// The last access token issued.
    access: String,
    /// The refresh token the client should hold after the last refresh.
    current_refresh: String,
    /// When each refresh request arrived (since the last [`Provider::switch`]).
    arrivals: Vec<Instant>,
    /// Consumed refresh tokens accepted again within the grace.
    grace_reuses: usize,
    /// Consumed refresh tokens refused (`invalid_grant`).
    reuse_refused: usize,
}

impl State {
    fn issue(&mut self, prefix: &str) -> String {
        let s = new_secret(prefix);
        self.secrets.push(s.clone());
        s
    }

    /// A successful token answer for a new grant.
    fn grant(&mut self) -> Value {
        let access = self.issue("gkat_");
        let rt = self.issue("gkrt_");
        self.refresh.insert(rt.clone(), None);
        self.access = access.clone();
        self.current_refresh = rt.clone();
        json!({ "access_token": access, "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": rt, "scope": "api" })
    }

    /// Processes a refresh: the answer's JSON, or `None` for `invalid_grant`. With rotation the
    /// presented refresh token is consumed (and stays usable for the grace, if any).
    fn refresh(&mut self, rt: &str) -> Option<Value> {
        let consumed = *self.refresh.get(rt)?;
        if let Some(at) = consumed {
            if self.grace.is_some_and(|g| at.elapsed() < g) {
                self.grace_reuses += 1;
            } else {
                self.reuse_refused += 1;
                return None;
            }
        }
        let access = self.issue("gkat_");
        self.access = access.clone();
        let mut body = json!({ "access_token": access, "token_type": "Bearer",
                               "expires_in": 3600, "scope": "api" });
        if self.rotate {
            let next = self.issue("gkrt_");
            self.refresh.insert(next.clone(), None);
            if consumed.is_none() {
                self.refresh.insert(rt.to_owned(), Some(Instant::now()));
            }
            self.current_refresh = next.clone();
            body["refresh_token"] = next.into();
        }
        Some(body)
    }
}

fn new_secret(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        );
        h.finish()
    };
    format!("{prefix}{:016x}{:016x}", word(1), word(2))
}

/// A small OAuth provider on 127.0.0.1: `/authorize` redirects straight back with a code,
/// `/token` answers per [`Mode`], `/revoke` accepts anything.
#[derive(Clone)]
struct Provider {
    base: String,
    state: Arc<Mutex<State>>,
}

impl Provider {
    fn start(rotate: bool, grace: Option<Duration>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Healthy,
            rotate,
            grace,
            refresh: HashMap::new(),
            codes: HashSet::new(),
            secrets: Vec::new(),
            access: String::new(),
            current_refresh: String::new(),
            arrivals: Vec::new(),
            grace_reuses: 0,
            reuse_refused: 0,
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || handle(stream, &state));
            }
        });
        Self { base, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches the token endpoint's behaviour and starts counting requests afresh.
    fn switch(&self, mode: Mode) {
        let mut st = self.lock();
        st.mode = mode;
        st.arrivals.clear();
        st.grace_reuses = 0;
        st.reuse_refused = 0;
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.lock().arrivals.clone()
    }

    fn access(&self) -> String {
        self.lock().access.clone()
    }

    fn current_refresh(&self) -> String {
        self.lock().current_refresh.clone()
    }

    fn secrets(&self) -> Vec<String> {
        self.lock().secrets.clone()
    }
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    form: HashMap<String, String>,
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&stream) else {
        return;
    };
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/authorize") => {
            let redirect = req.query.get("redirect_uri").cloned().unwrap_or_default();
            let st8 = req.query.get("state").cloned().unwrap_or_default();
            let code = {
                let mut st = lock();
                let code = st.issue("gkcode_");
                st.codes.insert(code.clone());
                code
            };
            let sep = if redirect.contains('?') { '&' } else { '?' };
            let location = format!("{redirect}{sep}code={code}&state={}", enc(&st8));
            respond(&stream, "302 Found", &[("Location", &location)], b"");
        }
        ("POST", "/token") => token(stream, &req, state),
        ("POST", "/revoke") => respond(&stream, "200 OK", &[], b""),
        _ => respond(&stream, "404 Not Found", &[], b""),
    }
}

fn token(stream: TcpStream, req: &Request, state: &Mutex<State>) {
    let lock = || state.lock().unwrap_or_else(|e| e.into_inner());
    let form = |k: &str| req.form.get(k).map_or("", String::as_str);
    let json_type = [("Content-Type", "application/json")];
    let invalid_grant =
        br#"{"error":"invalid_grant","error_description":"the refresh token is not valid"}"#;
    match form("grant_type") {
        "authorization_code" => {
            let body = {
                let mut st = lock();
                st.codes.remove(form("code")).then(|| st.grant())
            };
            match body {
                Some(b) => respond(&stream, "200 OK", &json_type, b.to_string().as_bytes()),
                None => respond(&stream, "400 Bad Request", &json_type, invalid_grant),
            }
        }
        "refresh_token" => {
            let mode = {
                let mut st = lock();
                st.arrivals.push(Instant::now());
                st.mode
            };
            match mode {
                Mode::ServerError => respond(
                    &stream,
                    "500 Internal Server Error",
                    &[("Content-Type", "text/html")],
                    b"<html><body><h1>500 Internal Server Error</h1></body></html>",
                ),
                Mode::Stall => {
                    std::thread::sleep(STALL);
                    respond(
                        &stream,
                        "503 Service Unavailable",
                        &json_type,
                        br#"{"error":"temporarily_unavailable"}"#,
                    );
                }
                Mode::Healthy | Mode::Truncated | Mode::Huge | Mode::CommitThenReset => {
                    let Some(body) = lock().refresh(form("refresh_token")) else {
                        return respond(&stream, "400 Bad Request", &json_type, invalid_grant);
                    };
                    let text = body.to_string();
                    match mode {
                        Mode::Truncated => {
                            // Cut in the middle of the rotated refresh token (or near the end).
                            let cut = body["refresh_token"]
                                .as_str()
                                .and_then(|rt| text.find(rt).map(|at| at + rt.len() / 2))
                                .unwrap_or(text.len() - 6);
                            respond(&stream, "200 OK", &json_type, &text.as_bytes()[..cut]);
                        }
                        Mode::Huge => {
                            // The tokens first, then padding up to 10 MB.
                            let mut big = text.into_bytes();
                            big.pop();
                            big.extend_from_slice(br#","padding":""#);
                            big.resize(HUGE, b'x');
                            big.extend_from_slice(br#""}"#);
                            respond(&stream, "200 OK", &json_type, &big);
                        }
                        Mode::CommitThenReset => reset(stream),
                        _ => respond(&stream, "200 OK", &json_type, text.as_bytes()),
                    }
                }
            }
        }
        _ => respond(
            &stream,
            "400 Bad Request",
            &json_type,
            br#"{"error":"unsupported_grant_type"}"#,
        ),
    }
}

/// Closes the connection with a TCP reset (SO_LINGER 0), no answer sent.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    #[repr(C)]
    struct Linger {
        onoff: i32,
        seconds: i32,
    }
    extern "C" {
        fn setsockopt(fd: i32, level: i32, name: i32, value: *const Linger, len: u32) -> i32;
    }
    const SOL_SOCKET: i32 = 1;
    const SO_LINGER: i32 = 13;
    let linger = Linger {
        onoff: 1,
        seconds: 0,
    };
    // SAFETY: a valid, open socket descriptor and a correctly sized `struct linger`.
    let rc = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            &linger,
            std::mem::size_of::<Linger>() as u32,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(stream);
}

fn read_request(mut s: &TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = std::str::from_utf8(&buf[head_end..head_end + len]).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_owned(),
        query: parse_form(query),
        form: parse_form(body),
    })
}

fn respond(mut s: &TcpStream, status: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The client may have gone (a deadline, a refused body): write errors are expected.
    let _ = s.write_all(head.as_bytes());
    let _ = s.write_all(body);
    let _ = s.flush();
}

fn parse_form(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

fn dec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(v)) => {
                out.push(v);
                i += 2;
            }
            (c, _) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ----- a vault connected to the provider -----

/// A vault with tenant `t`, provider app `t/p` (explicit endpoints of the provider, public
/// client `x`) and connection `t/c`, consented through the loopback redirect.
struct Fx {
    gk: Gk,
    p: Provider,
    tmp: tempfile::TempDir,
}

/// `$BROWSER`: fetches the authorization URL, following the provider's redirect to the loopback
/// listener.
fn write_browser(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("browser");
    std::fs::write(
        &path,
        "#!/bin/sh\nexec curl -sL --max-time 20 -o /dev/null \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn setup(rotate: bool, grace: Option<Duration>) -> Fx {
    require_test_session();
    let p = Provider::start(rotate, grace);
    let tmp = tempfile::tempdir().unwrap();
    let gk = Gk::new(tmp.path().join("vault"));
    let fx = Fx { gk, p, tmp };
    fx.run(&["tenant", "add", "T", "--slug", "t"])
        .expect_ok("tenant add");
    fx.run(&[
        "provider",
        "add",
        "t/p",
        "--authorize-url",
        &fx.p.url("/authorize"),
        "--token-url",
        &fx.p.url("/token"),
        "--revoke-url",
        &fx.p.url("/revoke"),
        "--client-id",
        "x",
        "--scopes",
        "api",
    ])
    .expect_ok("provider add");
    fx.consent(&["connect", TARGET, "--provider", "p", "--timeout", "30"]);
    fx
}

impl Fx {
    /// Runs `grantkeeper args…` (killed after 60 s); its stderr never holds a secret.
    fn run(&self, args: &[&str]) -> Run {
        self.checked(self.gk.run(args))
    }

    fn checked(&self, r: Run) -> Run {
        assert_no_secrets(&self.p, &r.stderr, &format!("stderr of {r:?}"));
        r
    }

    /// `connect` / `reconsent` through the loopback redirect and the curl browser.
    fn consent(&self, args: &[&str]) {
        let mut cmd = self.gk.command(args);
        cmd.env("BROWSER", write_browser(self.tmp.path()));
        self.checked(self.gk.run_with(cmd, Duration::from_secs(60)))
            .expect_ok(args[0]);
        assert_eq!(
            self.refresh_token(),
            self.p.current_refresh(),
            "the keychain holds the refresh token the provider issued"
        );
        assert_eq!(
            self.token(),
            self.p.access(),
            "token hands out the new grant"
        );
    }

    fn token(&self) -> String {
        let r = self.run(&["token", TARGET]).expect_ok("token");
        assert!(r.stderr.is_empty(), "{}", r.stderr);
        r.stdout.trim_end().to_owned()
    }

    /// The connection's refresh token in the keychain.
    fn refresh_token(&self) -> String {
        self.gk
            .keychain_refresh_token("c")
            .expect("a refresh token in the keychain")
            .trim_end()
            .to_owned()
    }

    fn status(&self) -> String {
        self.gk.status(TARGET)
    }

    fn last_seq(&self) -> i64 {
        self.gk
            .history(TARGET)
            .last()
            .and_then(|e| e["seq"].as_i64())
            .unwrap_or(0)
    }

    fn events_after(&self, seq: i64) -> Vec<Value> {
        self.gk
            .history(TARGET)
            .into_iter()
            .filter(|e| e["seq"].as_i64().unwrap() > seq)
            .collect()
    }

    fn assert_audit_intact(&self) {
        let r = self.run(&["audit", "verify"]);
        assert!(
            r.succeeded(),
            "audit verify: exit {:?}: {}{}",
            r.code,
            r.stdout,
            r.stderr
        );
    }
}

fn assert_no_secrets(p: &Provider, text: &str, what: &str) {
    for prefix in SECRET_PREFIXES {
        assert!(!text.contains(prefix), "a provider secret in {what}");
    }
    for s in p.secrets() {
        assert!(!text.contains(&s), "a provider secret in {what}");
    }
}

/// A failure is one `grantkeeper: …` line on stderr, nothing on stdout, and the given code.
fn assert_one_line_failure(r: &Run, code: i32) -> String {
    assert_eq!(
        r.code,
        Some(code),
        "exit code; stderr: {}; stdout bytes: {}",
        r.stderr,
        r.stdout.len()
    );
    let lines: Vec<&str> = r.stderr.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", r.stderr);
    assert!(lines[0].starts_with("grantkeeper: "), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing on stdout");
    lines[0].to_owned()
}

fn kinds(events: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e["kind"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    out
}

/// What a fault did.
struct Outcome {
    line: String,
    elapsed: Duration,
    /// When each refresh request reached the provider, from the start of the call.
    arrivals: Vec<Duration>,
    requests: usize,
    events: Vec<Value>,
}

/// With `mode` switched on and the access token expired, `args` fails with `code` within
/// `allowed` (plus process start) and loses nothing.
fn fault(fx: &Fx, mode: Mode, args: &[&str], code: i32, allowed: Duration) -> Outcome {
    let rt_before = fx.refresh_token();
    fx.gk.expire_access_tokens();
    let seq = fx.last_seq();
    fx.p.switch(mode);
    let started = Instant::now();
    let r = fx.run(args);
    let line = assert_one_line_failure(&r, code);
    assert!(
        r.elapsed < allowed + START_MARGIN,
        "{mode:?}: took {:?}, allowed {allowed:?}: {line}",
        r.elapsed
    );
    let arrivals: Vec<Duration> =
        fx.p.arrivals()
            .iter()
            .map(|a| a.duration_since(started))
            .collect();
    assert!(
        !arrivals.is_empty(),
        "{mode:?}: no request reached the provider"
    );
    for a in &arrivals {
        assert!(
            *a < allowed,
            "{mode:?}: a request left {a:?} after the start, past the {allowed:?} allowed"
        );
    }
    if code == 8 {
        let secs = allowed.as_secs();
        assert!(
            line.starts_with(&format!(
                "grantkeeper: no answer within the {secs} s allowed"
            )) && line.contains("nothing was stored"),
            "{line}"
        );
    }

    // Nothing lost, nothing handed out, the failure recorded.
    let events = fx.events_after(seq);
    let k = kinds(&events);
    assert_eq!(k.get("refresh_failed"), Some(&1), "{mode:?}: {k:?}");
    for not in ["handed_out", "refreshed", "revealed"] {
        assert!(!k.contains_key(not), "{mode:?}: {k:?}");
    }
    assert_eq!(fx.gk.journal_rows(), 0, "{mode:?}: no journal row left");
    assert_eq!(
        fx.refresh_token(),
        rt_before,
        "{mode:?}: the keychain's refresh token is unchanged"
    );
    fx.assert_audit_intact();
    Outcome {
        line,
        elapsed: r.elapsed,
        requests: arrivals.len(),
        arrivals,
        events,
    }
}

/// The provider is healthy again: `args` succeeds, the keychain holds the refresh token the
/// provider issued last, and `token` hands out the access token it issued last.
fn recover(fx: &Fx, args: &[&str]) -> Run {
    fx.p.switch(Mode::Healthy);
    let r = fx.run(args).expect_ok("the call after recovery");
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert_eq!(fx.refresh_token(), fx.p.current_refresh());
    assert_eq!(fx.token(), fx.p.access());
    assert_eq!(fx.status(), "active");
    assert_eq!(fx.gk.journal_rows(), 0);
    fx.assert_audit_intact();
    r
}

fn report(name: &str, o: &Outcome, recovery: &Run, grace_reuses: usize) {
    println!(
        "{name}: exit after {:.0} ms, {} token request(s) to the provider (at {:?} ms); \
         recovery {:.0} ms{}\n    {}",
        o.elapsed.as_secs_f64() * 1000.0,
        o.requests,
        o.arrivals
            .iter()
            .map(Duration::as_millis)
            .collect::<Vec<_>>(),
        recovery.elapsed.as_secs_f64() * 1000.0,
        if grace_reuses > 0 {
            " (the consumed refresh token accepted within the grace)"
        } else {
            ""
        },
        o.line
    );
}

// ----- the faults -----

#[test]
fn server_error_is_retried_within_the_deadline_then_one_line() {
    let fx = setup(true, Some(GRACE));
    let o = fault(
        &fx,
        Mode::ServerError,
        &["token", TARGET],
        6,
        DEFAULT_DEADLINE,
    );
    assert_eq!(o.requests, 3, "three attempts for a 5xx");
    assert_eq!(fx.status(), "active");
    let r = recover(&fx, &["token", TARGET]);
    assert_eq!(r.stdout.trim_end(), fx.p.access());
    report("HTTP 500", &o, &r, 0);
}

#[test]
fn truncated_json_after_a_rotation_is_recovered_by_the_grace() {
    let fx = setup(true, Some(GRACE));
    let o = fault(
        &fx,
        Mode::Truncated,
        &["token", TARGET],
        6,
        DEFAULT_DEADLINE,
    );
    assert_eq!(o.requests, 1, "an answer that was read is not sent again");
    assert_eq!(fx.status(), "active");
    let r = recover(&fx, &["token", TARGET]);
    let reuses = fx.p.lock().grace_reuses;
    assert_eq!(
        reuses, 1,
        "the provider's rotation was lost; the grace recovers it"
    );
    report("HTTP 200, truncated JSON", &o, &r, reuses);
}

#[test]
fn a_ten_megabyte_body_is_refused() {
    let fx = setup(true, Some(GRACE));
    let o = fault(&fx, Mode::Huge, &["token", TARGET], 6, DEFAULT_DEADLINE);
    assert_eq!(o.requests, 1);
    assert!(o.line.contains("larger than 1 MiB"), "{}", o.line);
    assert_eq!(fx.status(), "active");
    let r = recover(&fx, &["token", TARGET]);
    let reuses = fx.p.lock().grace_reuses;
    assert_eq!(reuses, 1);
    report("10 MB body", &o, &r, reuses);
}

#[test]
fn a_forty_second_stall_ends_at_the_default_deadline() {
    let fx = setup(true, Some(GRACE));
    let o = fault(&fx, Mode::Stall, &["token", TARGET], 8, DEFAULT_DEADLINE);
    assert!(
        o.elapsed < Duration::from_secs(35),
        "past the 30 s deadline: {:?}",
        o.elapsed
    );
    assert_eq!(o.requests, 1, "the one request had the whole deadline");
    assert_eq!(fx.status(), "active");
    let r = recover(&fx, &["token", TARGET]);
    report("40 s stall, default deadline", &o, &r, 0);
}

#[test]
fn commit_then_reset_with_rotation_and_grace() {
    let fx = setup(true, Some(GRACE));
    let o = fault(
        &fx,
        Mode::CommitThenReset,
        &["token", TARGET],
        6,
        DEFAULT_DEADLINE,
    );
    assert_eq!(o.requests, 3, "a reset is retried");
    assert_eq!(
        fx.p.lock().grace_reuses,
        2,
        "the retries presented the consumed refresh token within the grace"
    );
    assert_eq!(fx.status(), "active");
    let r = recover(&fx, &["token", TARGET]);
    let reuses = fx.p.lock().grace_reuses;
    assert_eq!(reuses, 1);
    report("commit then reset (rotation, grace)", &o, &r, reuses);
}

#[test]
fn commit_then_reset_without_rotation() {
    let fx = setup(false, None);
    let rt = fx.refresh_token();
    let o = fault(
        &fx,
        Mode::CommitThenReset,
        &["token", TARGET],
        6,
        DEFAULT_DEADLINE,
    );
    assert_eq!(o.requests, 3, "a reset is retried");
    assert_eq!(fx.status(), "active");
    let r = recover(&fx, &["token", TARGET]);
    assert_eq!(
        fx.refresh_token(),
        rt,
        "no rotation: the same refresh token"
    );
    report("commit then reset (no rotation)", &o, &r, 0);
}

/// The documented limit (grants/mod.rs, crash safety step 2): strict single use and an answer
/// lost after the provider rotated. The retry presents the consumed token, which is refused:
/// one line, exit 5, re-consent, the history intact; `reconsent` restores the grant.
#[test]
fn commit_then_reset_with_strict_single_use_needs_reconsent() {
    let fx = setup(true, None);
    let rt_before = fx.refresh_token();
    fx.gk.expire_access_tokens();
    fx.p.switch(Mode::CommitThenReset);
    let r = fx.run(&["token", TARGET]);
    let line = assert_one_line_failure(&r, 5);
    assert!(line.contains("reconsent"), "{line}");
    assert!(r.elapsed < DEFAULT_DEADLINE + START_MARGIN);
    assert_eq!(
        fx.p.arrivals().len(),
        2,
        "the lost rotation, then the refused reuse"
    );
    assert_eq!(fx.p.lock().reuse_refused, 1);
    assert_eq!(fx.status(), "needs_reconsent");
    assert_eq!(fx.refresh_token(), rt_before);
    fx.assert_audit_intact();
    fx.p.switch(Mode::Healthy);
    assert_one_line_failure(&fx.run(&["token", TARGET]), 5);
    fx.consent(&["reconsent", TARGET]);
    assert_eq!(fx.status(), "active");
    println!(
        "commit then reset (rotation, strict single use): exit 5 after {:.0} ms, 2 token requests; \
         reconsent restores\n    {line}",
        r.elapsed.as_secs_f64() * 1000.0
    );
}

#[test]
fn exec_with_a_3s_timeout_against_a_stall() {
    let fx = setup(true, Some(GRACE));
    let o = fault(
        &fx,
        Mode::Stall,
        &["exec", "--timeout", "3s", TARGET, "--", "true"],
        8,
        Duration::from_secs(3),
    );
    assert_eq!(o.requests, 1);
    let r = recover(&fx, &["exec", TARGET, "--", "true"]);
    report("40 s stall, exec --timeout 3s", &o, &r, 0);
}

#[test]
fn agent_token_with_a_3s_timeout_against_a_stall() {
    let fx = setup(true, Some(GRACE));
    let mut agent = fx.gk.spawn(&mut fx.gk.command(&["agent", "run"]));
    let agent_err = line_reader(agent.child().stderr.take().unwrap());
    let ready = Instant::now() + Duration::from_secs(20);
    while fx.run(&["agent", "status"]).code != Some(0) {
        assert!(Instant::now() < ready, "the agent did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = fault(
        &fx,
        Mode::Stall,
        &["token", TARGET, "--timeout", "3s"],
        8,
        Duration::from_secs(3),
    );
    assert_eq!(o.requests, 1);
    let failed = o.events.iter().find(|e| e["kind"] == "refresh_failed");
    assert_eq!(failed.unwrap()["actor"], "agent", "the agent refreshed");
    let seq = fx.last_seq();
    let r = recover(&fx, &["token", TARGET]);
    let events = fx.events_after(seq);
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "refreshed" && e["actor"] == "agent"),
        "the agent refreshed after recovery: {events:?}"
    );
    agent.kill();
    let mut agent_stderr = Vec::new();
    while let Ok(line) = agent_err.recv_timeout(Duration::from_secs(5)) {
        agent_stderr.push(line);
    }
    assert_no_secrets(&fx.p, &agent_stderr.join("\n"), "the agent's stderr");
    report(
        "40 s stall, token --timeout 3s through the agent",
        &o,
        &r,
        0,
    );
}

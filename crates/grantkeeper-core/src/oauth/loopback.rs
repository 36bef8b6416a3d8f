//! The loopback redirect listener (RFC 8252 §7.3): 127.0.0.1 only, an ephemeral port unless the
//! registration needs a fixed one, several connections served at once (browsers open idle
//! speculative sockets), only the callback path answered, closed when the flow ends.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::OAuthError;

/// The query parameters of a redirect.
pub type CallbackParams = BTreeMap<String, String>;

/// Lets another thread (a Cancel button, Ctrl+C) end a wait.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// Asks the wait to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancel was asked.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A bound listener waiting for one redirect.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    port: u16,
    path: String,
}

/// Path of the callback on the loopback listener.
pub const CALLBACK_PATH: &str = "/callback";

impl LoopbackListener {
    /// Binds 127.0.0.1 on `port` (0 or `None` for an ephemeral port).
    pub fn bind(port: Option<u16>) -> Result<Self, OAuthError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port.unwrap_or(0)));
        let listener = TcpListener::bind(addr).map_err(|e| {
            OAuthError::Listener(match port {
                Some(p) => {
                    format!("port {p} is not free ({e}); the provider app needs that exact port")
                }
                None => e.to_string(),
            })
        })?;
        let port = listener
            .local_addr()
            .map_err(|e| OAuthError::Listener(e.to_string()))?
            .port();
        Ok(Self {
            listener,
            port,
            path: CALLBACK_PATH.to_owned(),
        })
    }

    /// The port in use.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The redirect URI to register and send: `http://127.0.0.1:<port>/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }

    /// Waits for a request to the callback path carrying `code` or `error` and this sign-in's
    /// `state`, serving every connection on its own thread (at most [`MAX_CONNECTIONS`] at
    /// once). A redirect with a wrong or missing `state` gets an error page and the wait goes
    /// on, so another local process cannot end the sign-in. The listener closes when this
    /// returns.
    pub fn wait(
        self,
        timeout: Duration,
        cancel: &CancelToken,
        state: &str,
    ) -> Result<CallbackParams, OAuthError> {
        self.listener
            .set_nonblocking(true)
            .map_err(|e| OAuthError::Listener(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<CallbackParams>();
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        let done = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let expect: Arc<Expected> = Arc::new(Expected {
            path: self.path.clone(),
            state: state.to_owned(),
        });
        loop {
            if let Ok(params) = rx.try_recv() {
                done.store(true, Ordering::SeqCst);
                return Ok(params);
            }
            if cancel.is_cancelled() {
                return Err(OAuthError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(OAuthError::TimedOut {
                    seconds: timeout.as_secs(),
                });
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // Past the cap the connection is closed at once: no thread, no buffer.
                    let Some(slot) = Slot::take(&active, MAX_CONNECTIONS) else {
                        drop(stream);
                        continue;
                    };
                    let (tx, expect, done) = (tx.clone(), expect.clone(), done.clone());
                    std::thread::spawn(move || {
                        let _slot = slot;
                        serve(stream, &expect, &tx, &done, HEAD_TIMEOUT);
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(OAuthError::Listener(e.to_string())),
            }
        }
    }
}

/// The longest request head (request line and headers) the listener reads: 8 KiB.
pub const MAX_HEAD: usize = 8 * 1024;

/// The most connections the listener serves at once; more are closed unanswered.
pub const MAX_CONNECTIONS: usize = 16;

/// The time a connection has to send its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What a callback must match.
#[derive(Debug)]
struct Expected {
    path: String,
    state: String,
}

/// A place among at most `max` concurrent users of `count`, given back on drop.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Slot {
    /// A slot, or `None` when `max` are taken.
    pub(crate) fn take(count: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a request head was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// The head has not ended yet (no blank line); read more.
    Incomplete,
    /// The head is longer than [`MAX_HEAD`] (answered 431).
    TooLarge,
    /// Not an HTTP/1 request head (answered 400).
    Malformed,
}

/// A parsed request head: the method, the path and the query's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, …
    pub method: String,
    /// The target's path, without its query.
    pub path: String,
    /// The query's parameters (the last of a repeated name wins).
    pub params: CallbackParams,
}

/// Parses the head of an HTTP/1 request: the bytes read so far from a connection (a head
/// ends with an empty line; anything after it is ignored). At most [`MAX_HEAD`] bytes are
/// looked at: a longer head is [`HeadError::TooLarge`], a shorter one without its empty line
/// [`HeadError::Incomplete`].
pub fn parse_request_head(buf: &[u8]) -> Result<RequestHead, HeadError> {
    let Some(end) = head_end(&buf[..buf.len().min(MAX_HEAD)]) else {
        return Err(if buf.len() >= MAX_HEAD {
            HeadError::TooLarge
        } else {
            HeadError::Incomplete
        });
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| HeadError::Malformed)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().ok_or(HeadError::Malformed)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(method)
        || !target.starts_with('/')
        || target
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b >= 0x7f)
        || !matches!(version, "HTTP/1.0" | "HTTP/1.1")
    {
        return Err(HeadError::Malformed);
    }
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, _) = line.split_once(':').ok_or(HeadError::Malformed)?;
        if !token(name) {
            return Err(HeadError::Malformed);
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        params: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    })
}

/// The length of the head up to and including its empty line (`\r\n\r\n` or `\n\n`).
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + nl;
        let rest = &buf[at + 1..];
        if rest.first() == Some(&b'\n') {
            return Some(at + 2);
        }
        if rest.starts_with(b"\r\n") {
            return Some(at + 3);
        }
        i = at + 1;
    }
    None
}

/// How the listener answers a request (pure, so it is tested and fuzzed without sockets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not the callback path, or not GET: 404.
    NotFound,
    /// The callback path without `code` or `error`.
    NothingToDo,
    /// A callback whose `state` is not this sign-in's: an error page; the wait goes on.
    WrongState,
    /// This sign-in's callback, when an answer was already taken.
    AlreadyReceived,
    /// This sign-in's callback: the provider's error, which ends the wait.
    Denied,
    /// This sign-in's callback with a code, which ends the wait.
    SignedIn,
}

/// Classifies a parsed request against the callback `path` and the sign-in's `state`.
pub fn classify(head: &RequestHead, path: &str, state: &str, done: bool) -> Answer {
    if head.method != "GET" || head.path != path {
        return Answer::NotFound;
    }
    if !head.params.contains_key("code") && !head.params.contains_key("error") {
        return Answer::NothingToDo;
    }
    let got = head.params.get("state").map(String::as_str).unwrap_or("");
    if state.is_empty() || !super::state::constant_time_eq(got, state) {
        return Answer::WrongState;
    }
    if done {
        Answer::AlreadyReceived
    } else if head.params.contains_key("error") {
        Answer::Denied
    } else {
        Answer::SignedIn
    }
}

/// Reads a request head: at most [`MAX_HEAD`] bytes (one more tells it is too long), within
/// `timeout` in all (a client that sends a byte now and then is cut off too).
fn read_head(stream: &TcpStream, timeout: Duration) -> Result<Vec<u8>, Option<HeadError>> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        match parse_request_head(&buf) {
            Err(HeadError::Incomplete) => {}
            Err(e) => return Err(Some(e)),
            Ok(_) => return Ok(buf),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(None);
        }
        let _ = stream.set_read_timeout(Some(left));
        let want = (MAX_HEAD + 1 - buf.len()).min(chunk.len());
        match (&*stream).read(&mut chunk[..want]) {
            Ok(0) => return Err(None), // An idle speculative connection, or a client that went away.
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(None), // Timed out, or reset.
        }
    }
}

fn serve(
    stream: TcpStream,
    expect: &Expected,
    tx: &mpsc::Sender<CallbackParams>,
    done: &AtomicBool,
    timeout: Duration,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut out = &stream;
    let head = match read_head(&stream, timeout) {
        Ok(buf) => parse_request_head(&buf).expect("read_head returns a parsed head"),
        Err(None) => return,
        Err(Some(e)) => {
            let status = if e == HeadError::TooLarge {
                "431 Request Header Fields Too Large"
            } else {
                "400 Bad Request"
            };
            let _ = write!(
                out,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
    };
    let (status, page) = match classify(&head, &expect.path, &expect.state, done.load(Ordering::SeqCst)) {
        Answer::NotFound => {
            let _ = out
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            return;
        }
        Answer::NothingToDo => ("200 OK", page(
            "Nothing to do here",
            "This address only receives sign-in redirects for Grantkeeper.",
        )),
        Answer::WrongState => ("400 Bad Request", page(
            "Not this sign-in",
            "This answer does not belong to the sign-in Grantkeeper is waiting for, so it was ignored. Go back to Grantkeeper.",
        )),
        Answer::AlreadyReceived => ("200 OK", page(
            "Already received",
            "Grantkeeper already has an answer for this sign-in. You can close this tab.",
        )),
        Answer::Denied => {
            let _ = tx.send(head.params);
            ("200 OK", page(
                "Sign-in not completed",
                "The provider did not grant access. You can close this tab and go back to Grantkeeper.",
            ))
        }
        Answer::SignedIn => {
            let _ = tx.send(head.params);
            ("200 OK", page("Signed in", "Grantkeeper received the authorization. You can close this tab and go back to Grantkeeper."))
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
        page.len()
    );
    let _ = out.write_all(head.as_bytes());
    let _ = out.write_all(page.as_bytes());
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — Grantkeeper</title>\
<style>body{{font-family:system-ui,sans-serif;display:grid;place-items:center;height:90vh;margin:0;color:#1b1f24}}\
main{{max-width:28rem;text-align:center}}h1{{font-size:1.4rem}}</style></head>\
<body><main><h1>{title}</h1><p>{text}</p></main></body></html>"
    )
}

#[cfg(test)]
mod tests;

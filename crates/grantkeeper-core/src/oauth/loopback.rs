//! The loopback redirect listener (RFC 8252 §7.3): 127.0.0.1 only, an ephemeral port unless the
//! registration needs a fixed one, several connections served at once (browsers open idle
//! speculative sockets), only the callback path answered, closed when the flow ends.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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

    /// Waits for a request to the callback path carrying `code` or `error`, serving every
    /// connection on its own thread. The listener closes when this returns.
    pub fn wait(
        self,
        timeout: Duration,
        cancel: &CancelToken,
    ) -> Result<CallbackParams, OAuthError> {
        self.listener
            .set_nonblocking(true)
            .map_err(|e| OAuthError::Listener(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<CallbackParams>();
        let deadline = Instant::now() + timeout;
        let done = Arc::new(AtomicBool::new(false));
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
                    let (tx, path, done) = (tx.clone(), self.path.clone(), done.clone());
                    std::thread::spawn(move || serve(stream, &path, &tx, &done));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(OAuthError::Listener(e.to_string())),
            }
        }
    }
}

fn serve(stream: TcpStream, path: &str, tx: &mpsc::Sender<CallbackParams>, done: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || request_line.is_empty() {
        return; // An idle speculative connection, or a client that went away.
    }
    // Drain the headers (bounded) so the browser sees a clean response.
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(n) if n > 2 => continue,
            _ => break,
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (req_path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut out = &stream;
    if method != "GET" || req_path != path {
        let _ = out
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let params: CallbackParams = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let is_callback = params.contains_key("code") || params.contains_key("error");
    let page = if !is_callback {
        page(
            "Nothing to do here",
            "This address only receives sign-in redirects for Grantkeeper.",
        )
    } else if done.load(Ordering::SeqCst) {
        page(
            "Already received",
            "Grantkeeper already has an answer for this sign-in. You can close this tab.",
        )
    } else if params.contains_key("error") {
        let _ = tx.send(params);
        page(
            "Sign-in not completed",
            "The provider did not grant access. You can close this tab and go back to Grantkeeper.",
        )
    } else {
        let _ = tx.send(params);
        page("Signed in", "Grantkeeper received the authorization. You can close this tab and go back to Grantkeeper.")
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n\r\n",
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
mod tests {
    use super::*;
    use std::io::Read;

    fn get(port: u16, target: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_idle_sockets_and_the_callback() {
        let l = LoopbackListener::bind(None).unwrap();
        let port = l.port();
        assert!(l.redirect_uri().starts_with("http://127.0.0.1:"));
        let h =
            std::thread::spawn(move || l.wait(Duration::from_secs(10), &CancelToken::default()));
        // Idle speculative connections must not block the real one.
        let _idle1 = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let _idle2 = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert!(get(port, "/favicon.ico").starts_with("HTTP/1.1 404"));
        let page = get(port, "/callback?code=abc&state=xyz&iss=https%3A%2F%2Fidp");
        assert!(page.contains("go back to Grantkeeper"));
        let params = h.join().unwrap().unwrap();
        assert_eq!(params["code"], "abc");
        assert_eq!(params["iss"], "https://idp");
        // The port is free again.
        std::thread::sleep(Duration::from_millis(50));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn timeout_and_cancel_close_the_listener() {
        let l = LoopbackListener::bind(None).unwrap();
        let port = l.port();
        let e = l
            .wait(Duration::from_millis(200), &CancelToken::default())
            .unwrap_err();
        assert!(matches!(e, OAuthError::TimedOut { .. }));
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        let again = LoopbackListener::bind(Some(port)).unwrap();
        let cancel = CancelToken::default();
        cancel.cancel();
        assert!(matches!(
            again.wait(Duration::from_secs(5), &cancel),
            Err(OAuthError::Cancelled)
        ));
    }

    #[test]
    fn a_taken_fixed_port_is_a_clear_error() {
        let l = LoopbackListener::bind(None).unwrap();
        let e = LoopbackListener::bind(Some(l.port())).unwrap_err();
        assert!(e.to_string().contains("not free"));
    }
}

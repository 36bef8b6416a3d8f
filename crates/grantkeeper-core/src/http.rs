//! The only HTTP client the core uses to talk to providers: rustls, HTTPS required except for
//! loopback addresses, no redirects followed, bounded time and response size. Errors name the
//! host, never the URL's query or any request body.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ureq::Agent;
use url::Url;

/// Responses larger than this are refused.
pub const MAX_BODY: u64 = 1024 * 1024;
/// Default time allowed for one request, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The URL does not parse.
    #[error("'{0}' is not a valid URL")]
    BadUrl(String),
    /// A non-loopback URL that is not HTTPS.
    #[error("refusing to send to {0}: provider endpoints must use https:// (plain http is allowed only on 127.0.0.1 / localhost)")]
    Insecure(String),
    /// No answer in time.
    #[error("{host} did not answer within {seconds} s")]
    Timeout {
        /// The host.
        host: String,
        /// The time allowed.
        seconds: u64,
    },
    /// The endpoint answered with a redirect.
    #[error("{host} answered with a redirect; Grantkeeper does not follow redirects from token, revocation or introspection endpoints")]
    Redirect {
        /// The host.
        host: String,
    },
    /// The response exceeded [`MAX_BODY`].
    #[error("{host} sent a response larger than 1 MiB; refused")]
    TooLarge {
        /// The host.
        host: String,
    },
    /// The network failed (DNS, connection refused, TLS).
    #[error("cannot reach {host}: {detail}")]
    Network {
        /// The host.
        host: String,
        /// What failed.
        detail: String,
    },
}

/// A response: status, content type, headers and body (at most [`MAX_BODY`] bytes).
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    /// HTTP status.
    pub status: u16,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// Every header with a text value, names in lower case (`dpop-nonce`, `www-authenticate`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The hardened client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    agent: Agent,
    timeout: Duration,
    /// No request may run past this instant (a caller's [`crate::deadline::Deadline`]).
    until: Option<Instant>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

impl HttpClient {
    /// A client whose requests each get `timeout` in all.
    pub fn new(timeout: Duration) -> Self {
        Self {
            agent: agent(timeout, ureq::tls::TlsConfig::default()),
            timeout,
            until: None,
        }
    }

    /// The same client for one provider app: presenting `client_cert` to servers that ask for
    /// one (mutual TLS, RFC 8705), and trusting the CA certificates `extra_roots` (DER) besides
    /// the public roots. Every other rule stays; server certificates are always verified.
    pub fn for_app(
        &self,
        client_cert: Option<ureq::tls::ClientCert>,
        extra_roots: &[Vec<u8>],
    ) -> Self {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let mut tls = TlsConfig::builder().client_cert(client_cert);
        if !extra_roots.is_empty() {
            let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()))
                .chain(
                    extra_roots
                        .iter()
                        .map(|c| Certificate::from_der(c).to_owned()),
                );
            tls = tls.root_certs(RootCerts::Specific(std::sync::Arc::new(roots.collect())));
        }
        Self {
            agent: agent(self.timeout, tls.build()),
            ..self.clone()
        }
    }

    /// The same client, its requests also cut off at `until` (a caller's deadline).
    pub fn bounded_by(&self, until: std::time::Instant) -> Self {
        Self {
            until: Some(until),
            ..self.clone()
        }
    }

    /// The time this request may take: the client's timeout, or less when the deadline is near.
    fn allowance(&self, host: &str) -> Result<Duration, HttpError> {
        let left = self.until.map_or(self.timeout, |u| {
            u.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return Err(HttpError::Timeout {
                host: host.to_owned(),
                seconds: 0,
            });
        }
        Ok(left.min(self.timeout))
    }

    /// POSTs an `application/x-www-form-urlencoded` body.
    pub fn post_form(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Result<HttpResponse, HttpError> {
        self.send(url, headers, Method::Post(Body::Form(owned(form))))
    }

    /// POSTs `body` as it is, its content type among `headers` (oauth2's requests).
    pub fn post_bytes(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError> {
        self.send(url, headers, Method::Post(Body::Bytes(body)))
    }

    /// Sends a request without a body.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, HttpError> {
        self.send(url, headers, Method::Get)
    }

    /// Sends a JSON body with `method` (POST or DELETE).
    pub fn send_json(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<HttpResponse, HttpError> {
        let body = Body::Json(body.to_string());
        let method = if method == "DELETE" {
            Method::Delete(body)
        } else {
            Method::Post(body)
        };
        self.send(url, headers, method)
    }

    /// Every request: the URL checked, the time it may take bounded, the body sent as given.
    fn send(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        method: Method,
    ) -> Result<HttpResponse, HttpError> {
        let (url, host) = check(url)?;
        let allowed = self.allowance(&host)?;
        let (agent, headers) = (self.agent.clone(), owned(headers));
        within(host, allowed, move |host| {
            let started = Instant::now();
            let (req, body) = match method {
                Method::Get => {
                    let result = prepared(agent.get(url.as_str()), allowed, &headers).call();
                    return finish(host, allowed, started, result);
                }
                Method::Post(body) => (agent.post(url.as_str()), body),
                Method::Delete(body) => (agent.delete(url.as_str()).force_send_body(), body),
            };
            let req = prepared(req, allowed, &headers);
            let result = match body {
                Body::Form(form) => {
                    req.send_form(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                }
                Body::Bytes(bytes) => req.send(&bytes[..]),
                Body::Json(text) => req.content_type("application/json").send(text.as_bytes()),
            };
            finish(host, allowed, started, result)
        })
    }
}

/// The agent every client uses: no redirects, statuses as answers, `timeout` per request.
fn agent(timeout: Duration, tls: ureq::tls::TlsConfig) -> Agent {
    Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .user_agent(concat!("grantkeeper/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}

/// The requests Grantkeeper sends: GET without a body, POST and DELETE with one.
enum Method {
    Get,
    Post(Body),
    Delete(Body),
}

/// A request's body.
enum Body {
    Form(Vec<(String, String)>),
    Bytes(Vec<u8>),
    Json(String),
}

/// A request bounded to `allowed` in all, with `headers`.
fn prepared<B>(
    req: ureq::RequestBuilder<B>,
    allowed: Duration,
    headers: &[(String, String)],
) -> ureq::RequestBuilder<B> {
    let mut req = req.config().timeout_global(Some(allowed)).build();
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    req
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs one request (its body read included) and returns its outcome, or a timeout once
/// `allowed` has passed, on time. ureq bounds its reads and writes with socket timeouts, which
/// Linux runs on its coarse timer wheel: a 30 s read timeout may fire up to 1/8 later (2 s at
/// HZ=250), past the caller's deadline. So the request runs on a thread of its own and the caller
/// waits on a precise timer; an abandoned request ends by its own timeout soon after.
fn within<F>(host: String, allowed: Duration, request: F) -> Result<HttpResponse, HttpError>
where
    F: FnOnce(&str) -> Result<HttpResponse, HttpError> + Send + 'static,
{
    use std::sync::mpsc::{sync_channel, RecvTimeoutError};
    let (tx, rx) = sync_channel(1);
    let name = host.clone();
    std::thread::Builder::new()
        .name("grantkeeper-http".into())
        .spawn(move || {
            let _ = tx.send(request(&name));
        })
        .map_err(|e| HttpError::Network {
            host: host.clone(),
            detail: format!("cannot start the request: {e}"),
        })?;
    match rx.recv_timeout(allowed) {
        Ok(outcome) => outcome,
        Err(RecvTimeoutError::Timeout) => Err(HttpError::Timeout {
            host,
            seconds: whole_seconds(allowed),
        }),
        Err(RecvTimeoutError::Disconnected) => Err(HttpError::Network {
            host,
            detail: "the request failed".into(),
        }),
    }
}

/// `d` rounded to whole seconds, for messages (29.96 s allowed reads "30 s").
fn whole_seconds(d: Duration) -> u64 {
    (d + Duration::from_millis(500)).as_secs()
}

fn finish(
    host: &str,
    allowed: Duration,
    started: Instant,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<HttpResponse, HttpError> {
    let mut resp = result.map_err(|e| map_err(host, allowed, e))?;
    let status = resp.status().as_u16();
    if (300..400).contains(&status) {
        return Err(HttpError::Redirect {
            host: host.to_owned(),
        });
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map_err(|e| map_err(host, allowed, e))?;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(target: "grantkeeper::http", host, status, micros, "provider request");
    Ok(HttpResponse {
        status,
        content_type,
        headers,
        body,
    })
}

fn map_err(host: &str, allowed: Duration, e: ureq::Error) -> HttpError {
    let host = host.to_owned();
    let seconds = whole_seconds(allowed);
    match e {
        ureq::Error::Timeout(_) => HttpError::Timeout { host, seconds },
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => HttpError::Redirect { host },
        ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge { host },
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            HttpError::Timeout { host, seconds }
        }
        other => HttpError::Network {
            host,
            detail: other.to_string(),
        },
    }
}

/// Whether `url` may be used: HTTPS, or plain HTTP to a loopback address.
pub fn check(url: &str) -> Result<(Url, String), HttpError> {
    let parsed = Url::parse(url).map_err(|_| HttpError::BadUrl(redact_query(url)))?;
    let host = parsed.host_str().unwrap_or_default().to_owned();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok((parsed, host)),
        "http" if is_loopback(&parsed) => Ok((parsed, host)),
        _ => Err(HttpError::Insecure(redact_query(url))),
    }
}

/// Whether the URL's host is a loopback address (127.0.0.0/8, ::1, localhost).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A URL with its query and fragment removed, for messages.
pub fn redact_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback() {
        assert!(check("https://login.salesforce.com/services/oauth2/token").is_ok());
        assert!(check("http://127.0.0.1:8080/token").is_ok());
        assert!(check("http://127.1.2.3/token").is_ok());
        assert!(check("http://[::1]:9/token").is_ok());
        assert!(check("http://localhost:3000/token").is_ok());
        assert!(matches!(
            check("http://example.com/token"),
            Err(HttpError::Insecure(_))
        ));
        assert!(matches!(
            check("http://10.0.0.1/token"),
            Err(HttpError::Insecure(_))
        ));
        assert!(matches!(
            check("ftp://example.com/x"),
            Err(HttpError::Insecure(_))
        ));
        assert!(matches!(check("not a url"), Err(HttpError::BadUrl(_))));
        let e = check("http://example.com/t?code=secret")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("secret"), "{e}");
    }
}

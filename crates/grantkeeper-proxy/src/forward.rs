//! Forwarding one request: check the client, rewrite the target and headers, add the token,
//! send, refresh and retry once after a 401, and stream the answer back.

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use grantkeeper_core::model::now_ms;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::body::{BoxError, Counted, Finish};
use crate::record::{Call, Recorder};
use crate::token::{Current, Tokens};
use crate::{Bearer, Grant, ProxyError, MAX_REPLAY};

/// A body sent or answered by the proxy.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;
type Upstream = Client<HttpsConnector<HttpConnector>, ProxyBody>;

/// Requests in flight at the API at most: a burst of clients waits here rather than opening
/// hundreds of connections to the API at once.
const MAX_UPSTREAM: usize = 128;

/// Headers that describe one hop, never forwarded either way.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What every request of one proxy shares.
pub(crate) struct Shared {
    /// `scheme://authority/base-path`, without a trailing `/`.
    prefix: String,
    host: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    client: Upstream,
    tokens: Tokens,
    upstream: Arc<tokio::sync::Semaphore>,
    pub(crate) recorder: Recorder,
    bearer: Option<Bearer>,
}

impl Shared {
    pub(crate) fn new(
        grant: Grant,
        bearer: Option<Bearer>,
        recorder: Recorder,
    ) -> Result<Self, ProxyError> {
        let base = &grant.api.base;
        // HTTPS, or plain HTTP to a loopback API only: the core's HTTP rule.
        grantkeeper_core::http::check(base.as_str())
            .map_err(|e| ProxyError::Setup(e.to_string()))?;
        let host = base.host_str().unwrap_or_default().to_owned();
        let authority = match base.port() {
            Some(p) => format!("{}:{p}", base.host_str().unwrap_or_default()),
            None => base.host_str().unwrap_or_default().to_owned(),
        };
        let headers = grant
            .api
            .headers
            .iter()
            .map(|(k, v)| {
                Ok((
                    HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| ProxyError::Setup(format!("bad header name '{k}'")))?,
                    HeaderValue::from_str(v)
                        .map_err(|_| ProxyError::Setup(format!("bad value for header '{k}'")))?,
                ))
            })
            .collect::<Result<Vec<_>, ProxyError>>()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Self {
            prefix: format!(
                "{}://{authority}{}",
                base.scheme(),
                base.path().trim_end_matches('/')
            ),
            host,
            headers,
            client,
            tokens: Tokens::new(grant),
            upstream: Arc::new(tokio::sync::Semaphore::new(MAX_UPSTREAM)),
            recorder,
            bearer,
        })
    }
}

/// Answers one request from a local client.
pub(crate) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    caller: Arc<Option<String>>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let mut call = Call {
        at: now_ms(),
        method: req.method().as_str().to_owned(),
        host: shared.host.clone(),
        path: req.uri().path().to_owned(),
        status: 0,
        bytes_in: 0,
        bytes_out: 0,
        duration: Duration::ZERO,
        caller: (*caller).clone(),
        fingerprint: None,
        retried: false,
    };
    let refuse = |call: &mut Call, status: StatusCode, message: String| {
        call.status = status.as_u16();
        call.duration = started.elapsed();
        shared.recorder.record(call.clone());
        plain(status, message)
    };
    if shared.recorder.is_broken() {
        return Ok(refuse(
            &mut call,
            StatusCode::SERVICE_UNAVAILABLE,
            "the usage history cannot be written, so the proxy forwards nothing (see Grantkeeper's log)".into(),
        ));
    }
    if let Some(bearer) = &shared.bearer {
        if !bearer.accepts(req.headers()) {
            let mut resp = refuse(
                &mut call,
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                "this proxy requires its bearer: send 'Proxy-Authorization: Bearer <the bearer grantkeeper proxy printed>'".into(),
            );
            resp.headers_mut().insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"grantkeeper-proxy\""),
            );
            return Ok(resp);
        }
    }
    if req.method() == Method::CONNECT {
        return Ok(refuse(
            &mut call,
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "the proxy forwards plain HTTP requests to {}; it does not tunnel (CONNECT)",
                shared.host
            ),
        ));
    }
    let uri = match upstream_uri(&shared.prefix, req.uri()) {
        Ok(u) => u,
        Err(why) => return Ok(refuse(&mut call, StatusCode::BAD_REQUEST, why)),
    };
    let (parts, body) = req.into_parts();
    let headers = forward_headers(&parts.headers, &shared.headers);
    let bytes_in = Arc::new(AtomicU64::new(0));
    // Small bodies are read whole, so the request can be sent again after a refresh.
    let (replay, mut stream) = if body.is_end_stream() {
        (Some(Bytes::new()), None)
    } else if body.size_hint().upper().is_some_and(|n| n <= MAX_REPLAY) {
        match Limited::new(body, MAX_REPLAY as usize).collect().await {
            Ok(b) => (Some(b.to_bytes()), None),
            Err(e) => {
                return Ok(refuse(
                    &mut call,
                    StatusCode::BAD_REQUEST,
                    format!("the request body could not be read: {e}"),
                ))
            }
        }
    } else {
        (None, Some(body))
    };
    // At most MAX_UPSTREAM requests (and so connections) at the API at once; a permit is held
    // until the answer's body is read.
    let permit = shared
        .upstream
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    let token = match shared.tokens.current().await {
        Ok(t) => t,
        Err(e) => {
            return Ok(refuse(
                &mut call,
                StatusCode::SERVICE_UNAVAILABLE,
                format!("grantkeeper has no usable token for this connection: {e}"),
            ))
        }
    };
    let send = |token: &Current, body: ProxyBody| {
        let mut up = Request::builder()
            .method(parts.method.clone())
            .uri(uri.clone())
            .body(body)
            .expect("method and URI are valid");
        *up.headers_mut() = headers.clone();
        up.headers_mut()
            .insert(header::AUTHORIZATION, token.header.clone());
        shared.client.request(up)
    };
    let request_body = |replay: &Option<Bytes>, stream: &mut Option<Incoming>| -> ProxyBody {
        match (replay, stream.take()) {
            (Some(bytes), _) => {
                bytes_in.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
                Full::new(bytes.clone()).map_err(|e| match e {}).boxed()
            }
            (None, Some(incoming)) => Counted::new(incoming, bytes_in.clone(), None).boxed(),
            (None, None) => Full::new(Bytes::new()).map_err(|e| match e {}).boxed(),
        }
    };
    let mut used = token;
    let mut answer = send(&used, request_body(&replay, &mut stream)).await;
    if matches!(&answer, Ok(r) if r.status() == StatusCode::UNAUTHORIZED) {
        if let Some(fresh) = shared.tokens.after_unauthorized(used.generation).await {
            if replay.is_some() {
                bytes_in.store(0, std::sync::atomic::Ordering::Relaxed);
                used = fresh;
                call.retried = true;
                answer = send(&used, request_body(&replay, &mut stream)).await;
            }
        }
    }
    call.fingerprint = Some(used.fingerprint.clone());
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            call.bytes_in = bytes_in.load(std::sync::atomic::Ordering::Relaxed);
            return Ok(refuse(
                &mut call,
                StatusCode::BAD_GATEWAY,
                format!(
                    "the API at {} did not answer: {}",
                    shared.host,
                    describe(&e)
                ),
            ));
        }
    };
    call.status = response.status().as_u16();
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    scrub(&mut parts.headers, used.token.expose().as_bytes());
    let bytes_out = Arc::new(AtomicU64::new(0));
    let finish = Finish {
        _permit: permit,
        shared: shared.clone(),
        call,
        started,
        bytes_in,
        bytes_out: bytes_out.clone(),
    };
    let body = Counted::new(body, bytes_out, Some(finish)).boxed();
    Ok(Response::from_parts(parts, body))
}

/// The API's URL for a client's request target: the base path, then the client's path and
/// query. `.` and `..` segments are refused, so a client stays under the base path.
fn upstream_uri(prefix: &str, target: &Uri) -> Result<Uri, String> {
    let path = target.path();
    let dots = path.split('/').any(|seg| {
        let lower = seg.to_ascii_lowercase().replace("%2e", ".");
        lower == "." || lower == ".."
    });
    if !path.starts_with('/') || dots || path.contains('\\') {
        return Err(format!(
            "'{path}' is not a path the proxy forwards: give an absolute path without '.' or '..' segments"
        ));
    }
    let query = target.query().map(|q| format!("?{q}")).unwrap_or_default();
    format!("{prefix}{path}{query}")
        .parse()
        .map_err(|_| format!("'{path}' is not a valid request path"))
}

/// The client's headers minus hop-by-hop ones, `Host`, `Expect` (the proxy has already agreed to
/// read the body) and any `Authorization`, plus the provider's required headers.
fn forward_headers(from: &HeaderMap, required: &[(HeaderName, HeaderValue)]) -> HeaderMap {
    let mut out = from.clone();
    strip_hop_by_hop(&mut out);
    out.remove(header::HOST);
    out.remove(header::EXPECT);
    out.remove(header::AUTHORIZATION);
    for (name, value) in required {
        out.insert(name.clone(), value.clone());
    }
    out
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every response header that carries the token.
fn scrub(headers: &mut HeaderMap, token: &[u8]) {
    let leaking: Vec<HeaderName> = headers
        .iter()
        .filter(|(_, v)| contains(v.as_bytes(), token))
        .map(|(k, _)| k.clone())
        .collect();
    for name in leaking {
        tracing::warn!(header = %name, "proxy: removed a response header that echoed the token");
        headers.remove(name);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// A client error with its causes, one line.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A short plain-text answer of the proxy itself.
fn plain(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from(format!("grantkeeper proxy: {message}\n")))
            .map_err(|e| match e {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_client_authorization_are_not_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer mine"),
        );
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9"));
        h.insert("proxy-authorization", HeaderValue::from_static("Bearer p"));
        h.insert("accept", HeaderValue::from_static("application/json"));
        h.insert("xero-tenant-id", HeaderValue::from_static("client-sent"));
        let required = [(
            HeaderName::from_static("xero-tenant-id"),
            HeaderValue::from_static("t-1"),
        )];
        let out = forward_headers(&h, &required);
        let names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(out["accept"], "application/json");
        assert_eq!(out["xero-tenant-id"], "t-1");
    }

    #[test]
    fn requests_stay_under_the_base_path() {
        let prefix = "https://quickbooks.api.intuit.com/v3/company/42";
        let up = |t: &str| upstream_uri(prefix, &t.parse().unwrap());
        assert_eq!(
            up("/query?select=1").unwrap().to_string(),
            "https://quickbooks.api.intuit.com/v3/company/42/query?select=1"
        );
        // An absolute-form target (a client using it as an HTTP proxy) keeps only its path.
        assert_eq!(
            up("http://elsewhere.example/invoice/7")
                .unwrap()
                .to_string(),
            "https://quickbooks.api.intuit.com/v3/company/42/invoice/7"
        );
        // Encoded slashes are left to the API (GitLab's project ids), dot segments are not.
        assert!(up("/projects/group%2Fproject").is_ok());
        for bad in ["/../43/query", "/a/%2e%2e/b", "/./x", "/a/.."] {
            assert!(up(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_that_echo_the_token_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("x-echo", HeaderValue::from_static("Bearer tok-123 seen"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        scrub(&mut h, b"tok-123");
        assert!(h.get("x-echo").is_none());
        assert!(h.get("content-type").is_some());
    }
}

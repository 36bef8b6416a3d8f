//! A local HTTP/1.1 client for the proxy's tests (hyper, keep-alive), with bodies generated and
//! checked as they stream: byte i of a pattern body is i % 251, as tests/idp/resource.mjs sends.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpConnector, ClientBody>;

pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build_http()
}

/// A request body: bytes in memory, or `len` bytes of the pattern streamed in 64 KiB chunks
/// (chunked when `sized` is false).
pub enum ClientBody {
    Bytes(Option<Bytes>),
    Pattern { left: u64, sent: u64, sized: bool },
}

impl ClientBody {
    pub fn empty() -> Self {
        Self::Bytes(None)
    }
    pub fn bytes(b: impl Into<Bytes>) -> Self {
        Self::Bytes(Some(b.into()))
    }
    pub fn pattern(len: u64, sized: bool) -> Self {
        Self::Pattern {
            left: len,
            sent: 0,
            sized,
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match &mut *self {
            Self::Bytes(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Pattern { left, sent, .. } => {
                if *left == 0 {
                    return Poll::Ready(None);
                }
                let n = (*left).min(64 * 1024);
                let chunk: Vec<u8> = (*sent..*sent + n).map(|i| (i % 251) as u8).collect();
                *left -= n;
                *sent += n;
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Bytes(b) => b.as_ref().is_none_or(|b| b.is_empty()),
            Self::Pattern { left, .. } => *left == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Bytes(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Pattern {
                left, sized: true, ..
            } => SizeHint::with_exact(*left),
            Self::Pattern { .. } => SizeHint::default(),
        }
    }
}

/// An answer: status, headers as text, and the body (whole, or only counted and checked
/// against the pattern when `pattern` is set).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
    pub bytes: u64,
    pub pattern_ok: bool,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Everything the client received, as text, for scanning.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.headers, String::from_utf8_lossy(&self.body))
    }
}

pub async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: ClientBody,
    pattern: bool,
) -> Answer {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(body).unwrap())
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
        .collect::<Vec<_>>()
        .join("\n");
    let mut body = resp.into_body();
    let (mut kept, mut bytes, mut pattern_ok) = (Vec::new(), 0u64, true);
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
        if let Some(data) = frame.data_ref() {
            if pattern {
                pattern_ok &= data
                    .iter()
                    .enumerate()
                    .all(|(i, b)| u64::from(*b) == (bytes + i as u64) % 251);
            } else {
                kept.extend_from_slice(data);
            }
            bytes += data.len() as u64;
        }
    }
    Answer {
        status,
        headers,
        body: kept,
        bytes,
        pattern_ok,
    }
}

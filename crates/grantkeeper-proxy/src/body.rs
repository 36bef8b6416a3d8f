//! Bodies that count their bytes as they stream, and record the call when the response body
//! ends (or the client goes away).

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::forward::Shared;
use crate::record::Call;

/// Any error a body may end with.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body that adds the length of each data frame to `count`; when `finish` is set, the call is
/// recorded as the body ends or is dropped.
pub(crate) struct Counted<B> {
    inner: B,
    count: Arc<AtomicU64>,
    finish: Option<Finish>,
}

impl<B> Counted<B> {
    pub(crate) fn new(inner: B, count: Arc<AtomicU64>, finish: Option<Finish>) -> Self {
        Self {
            inner,
            count,
            finish,
        }
    }
}

impl<B> Body for Counted<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => {
                self.finish.take();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Records its call when dropped, with the bytes counted by then.
pub(crate) struct Finish {
    /// The turn at the API, given back with the call's end.
    pub _permit: tokio::sync::OwnedSemaphorePermit,
    pub shared: Arc<Shared>,
    pub call: Call,
    pub started: Instant,
    pub bytes_in: Arc<AtomicU64>,
    pub bytes_out: Arc<AtomicU64>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let mut call = self.call.clone();
        call.duration = self.started.elapsed();
        call.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        call.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        self.shared.recorder.record(call);
    }
}

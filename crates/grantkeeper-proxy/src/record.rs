//! Every call as a `proxied` event, written in batches by one thread: a batch is written when
//! 1,000 calls are waiting or 100 ms after its first call, whichever comes first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grantkeeper_core::audit::{Actor, ActorKind, EventKind, NewEvent};
use grantkeeper_core::model::UnixMillis;
use serde_json::json;

use crate::Grant;

const BATCH: usize = 1000;
const WAIT: Duration = Duration::from_millis(100);
/// Calls waiting to be written at most; beyond that the proxy stops forwarding.
const QUEUE: usize = 100_000;

/// One call through the proxy. Never a body, a query string or a header value.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub at: UnixMillis,
    pub method: String,
    pub host: String,
    pub path: String,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Duration,
    pub caller: Option<String>,
    pub fingerprint: Option<Arc<str>>,
    pub retried: bool,
}

/// Counters of a running proxy.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Calls answered.
    pub calls: AtomicU64,
    /// Calls written to the history.
    pub recorded: AtomicU64,
    /// Requests sent again after a 401 and a refresh.
    pub retried: AtomicU64,
}

/// The sending side; [`Recorder::spawn`] starts the writer.
pub(crate) struct Recorder {
    tx: SyncSender<Call>,
    broken: Arc<AtomicBool>,
    stats: Arc<ProxyStats>,
}

impl Recorder {
    /// The recorder, a signal sent once everything was written (after every sender is gone),
    /// and the counters.
    pub(crate) fn spawn(
        grant: &Grant,
    ) -> (Self, tokio::sync::oneshot::Receiver<()>, Arc<ProxyStats>) {
        let (tx, rx) = sync_channel(QUEUE);
        let broken = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ProxyStats::default());
        let (done, written) = tokio::sync::oneshot::channel();
        let writer = Writer {
            grant: grant.clone(),
            broken: broken.clone(),
            stats: stats.clone(),
        };
        std::thread::spawn(move || {
            writer.run(&rx);
            let _ = done.send(());
        });
        (
            Self {
                tx,
                broken,
                stats: stats.clone(),
            },
            written,
            stats,
        )
    }

    /// Whether calls can no longer be recorded (then nothing is forwarded).
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, call: Call) {
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if call.retried {
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
        }
        match self.tx.try_send(call) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                tracing::error!("proxy: the usage history cannot keep up; forwarding stops");
                self.broken.store(true, Ordering::Relaxed);
            }
        }
    }
}

struct Writer {
    grant: Grant,
    broken: Arc<AtomicBool>,
    stats: Arc<ProxyStats>,
}

impl Writer {
    fn run(&self, rx: &Receiver<Call>) {
        while let Ok(first) = rx.recv() {
            let until = Instant::now() + WAIT;
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                    Ok(call) => batch.push(call),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                }
            }
            self.write(&batch);
        }
    }

    fn write(&self, batch: &[Call]) {
        let events: Vec<NewEvent> = batch.iter().map(|c| self.event(c)).collect();
        match self.grant.vault.record_events(&events) {
            Ok(_) => {
                self.stats
                    .recorded
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::error!(error = %e, calls = batch.len(), "proxy: cannot write calls to the usage history; forwarding stops");
                self.broken.store(true, Ordering::Relaxed);
            }
        }
    }

    fn event(&self, c: &Call) -> NewEvent {
        let actor = Actor {
            kind: ActorKind::Proxy,
            app_hint: None,
            caller: c.caller.clone(),
        };
        let event = NewEvent::new(EventKind::Proxied, &actor)
            .at(c.at)
            .tenant(&self.grant.tenant)
            .connection(&self.grant.connection)
            .detail(json!({
                "method": c.method,
                "host": c.host,
                "path": c.path,
                "status": c.status,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "duration_ms": (c.duration.as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
                "retried": c.retried,
            }));
        match &c.fingerprint {
            Some(f) => event.fingerprint(f.to_string()),
            None => event,
        }
    }
}

//! One tap session: an `Observe` stream to every target proxy, re-issued
//! every second, multiplexed into one stream of NDJSON lines.
//!
//! ```text
//! per proxy (one task each):
//!   loop: window starts ─► Observe{limit = rps per proxy, match} ─► events ─► JSON line ─┐
//!         the proxy ends the stream at `limit` requests (or fails) ─► sleep to window + 1 s
//!                                                                                        ▼
//! client ◄── NDJSON body ◄── mpsc (bounded) ◄─────────────────────────────────────── lines
//! ```
//!
//! The body owns the tasks: when the client disconnects the body is dropped,
//! the [`JoinSet`] with it, and every Observe stream is cancelled.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use futures::Stream;
use linkerd2_proxy_api::tap::ObserveRequest;
use linkerd2_proxy_api::tap::tap_client::TapClient;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::TapMetrics;
use super::events::{EventContext, to_json};
use super::targets::{Peers, TapTarget};

/// The rate window: each Observe may report `limit` requests per window.
const WINDOW: Duration = Duration::from_secs(1);
/// How long connecting to a proxy's tap port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lines waiting for a slow client before the proxies' streams are held back.
const LINE_QUEUE: usize = 1024;

/// A running session: the NDJSON body of `/api/tap`.
pub struct TapSession {
    lines: mpsc::Receiver<Bytes>,
    /// Dropped with the body: aborts every Observe loop.
    _tasks: JoinSet<()>,
    metrics: TapMetrics,
}

impl std::fmt::Debug for TapSession {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TapSession")
            .field("proxies", &self._tasks.len())
            .finish_non_exhaustive()
    }
}

impl TapSession {
    /// Starts observing every target with `observe` (its limit is already
    /// each proxy's share).
    pub fn start(
        targets: Vec<TapTarget>,
        observe: ObserveRequest,
        peers: Arc<Peers>,
        metrics: TapMetrics,
    ) -> Self {
        let (sender, lines) = mpsc::channel(LINE_QUEUE);
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for target in targets {
            tasks.spawn(observe_loop(ObserveLoop {
                target,
                observe: observe.clone(),
                peers: Arc::clone(&peers),
                calls: Arc::clone(&calls),
                sender: sender.clone(),
                metrics: metrics.clone(),
            }));
        }
        metrics.sessions.inc();
        Self {
            lines,
            _tasks: tasks,
            metrics,
        }
    }
}

impl Drop for TapSession {
    fn drop(&mut self) {
        self.metrics.sessions.dec();
    }
}

impl Stream for TapSession {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.lines.poll_recv(context).map(|line| line.map(Ok))
    }
}

/// What one proxy's loop needs.
struct ObserveLoop {
    target: TapTarget,
    observe: ObserveRequest,
    peers: Arc<Peers>,
    calls: Arc<AtomicU64>,
    sender: mpsc::Sender<Bytes>,
    metrics: TapMetrics,
}

async fn observe_loop(state: ObserveLoop) {
    let ObserveLoop {
        target,
        observe,
        peers,
        calls,
        sender,
        metrics,
    } = state;
    let endpoint =
        match tonic::transport::Endpoint::from_shared(format!("http://{}", target.tap_addr)) {
            Ok(endpoint) => endpoint.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true),
            Err(error) => {
                tracing::warn!(address = %target.tap_addr, %error, "tap: bad proxy address");
                return;
            }
        };
    let mut client = TapClient::new(endpoint.connect_lazy());
    loop {
        let window = Instant::now();
        let call = calls.fetch_add(1, Ordering::Relaxed) + 1;
        let context = EventContext {
            tapped: &target.workload,
            call,
            peers: &peers,
        };
        match client.observe(observe.clone()).await {
            Ok(response) => {
                let mut events = response.into_inner();
                loop {
                    match events.message().await {
                        Ok(Some(event)) => {
                            let Some(json) = to_json(&event, context) else {
                                continue;
                            };
                            let mut line = json.to_string();
                            line.push('\n');
                            metrics.events.inc();
                            if sender.send(Bytes::from(line)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(address = %target.tap_addr, %status, "tap: Observe stream failed");
                            metrics.proxy_errors.inc();
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::debug!(address = %target.tap_addr, %status, "tap: Observe refused or unreachable");
                metrics.proxy_errors.inc();
            }
        }
        if sender.is_closed() {
            return;
        }
        tokio::time::sleep_until(window + WINDOW).await;
    }
}

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
//!
//! With identity on, a proxy is reached over mutual TLS ([`ProxyConnector`]):
//! the controller presents its own certificate (the proxy serves tap only to
//! `WEFT_PROXY_TAP_SVC_NAME`) and verifies the proxy's identity
//! `<sa>.<ns>.serviceaccount.identity.…` as SNI; `--tap-tls auto` keeps
//! loopback proxies in plaintext ([`uses_tls`]).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
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
use tonic::transport::{Channel, Endpoint, Uri};

use crate::config::TapTls;
use crate::identity::serving::ServingTls;
use crate::identity::{IdentityDomain, WorkloadIdentity};

use super::TapMetrics;
use super::events::{EventContext, tap_event};
use super::targets::{Peers, TapTarget};

/// The rate window: each Observe may report `limit` requests per window.
const WINDOW: Duration = Duration::from_secs(1);
/// How long connecting to a proxy's tap port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Lines waiting for a slow client before the proxies' streams are held back.
const LINE_QUEUE: usize = 1024;

/// How the controller connects to proxies' tap ports.
#[derive(Debug, Clone)]
pub struct ProxyConnector {
    /// `--tap-tls`.
    pub mode: TapTls,
    /// The controller's certificate and the identity names' suffix, when
    /// identity is on.
    pub identity: Option<(ServingTls, IdentityDomain)>,
}

/// Whether to connect to a proxy at `ip` with TLS: never without a
/// certificate; `auto` except to loopback.
pub fn uses_tls(mode: TapTls, has_certificate: bool, ip: IpAddr) -> bool {
    has_certificate
        && match mode {
            TapTls::Never => false,
            TapTls::Always => true,
            TapTls::Auto => !ip.is_loopback(),
        }
}

impl ProxyConnector {
    /// A lazily connecting channel to `target`'s tap port.
    fn channel(&self, target: &TapTarget) -> Result<Channel, tonic::transport::Error> {
        let endpoint = Endpoint::from_shared(format!("http://{}", target.tap_addr))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        let tls = self
            .identity
            .as_ref()
            .filter(|_| uses_tls(self.mode, self.identity.is_some(), target.tap_addr.ip()));
        let Some((serving, domain)) = tls else {
            return Ok(endpoint.connect_lazy());
        };
        let serving = serving.clone();
        let address = target.tap_addr;
        let name = domain.dns_name(&WorkloadIdentity::new(
            target.workload.namespace.clone(),
            target.service_account.clone(),
        ));
        Ok(
            endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let (serving, name) = (serving.clone(), name.clone());
                async move {
                    connect_tls(address, &serving, &name)
                        .await
                        .map(hyper_util::rt::TokioIo::new)
                }
            })),
        )
    }
}

/// TCP, then TLS with the controller's current certificate; the proxy must
/// prove `name`.
async fn connect_tls(
    address: SocketAddr,
    serving: &ServingTls,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let server_name = rustls_pki_types::ServerName::try_from(name.to_string())
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let tcp = tokio::net::TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    tokio_rustls::TlsConnector::from(serving.client_config())
        .connect(server_name, tcp)
        .await
}

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
        connector: &ProxyConnector,
        metrics: TapMetrics,
    ) -> Self {
        let (sender, lines) = mpsc::channel(LINE_QUEUE);
        let calls = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        for target in targets {
            let channel = match connector.channel(&target) {
                Ok(channel) => channel,
                Err(error) => {
                    tracing::warn!(address = %target.tap_addr, %error, "tap: bad proxy address");
                    continue;
                }
            };
            tasks.spawn(observe_loop(ObserveLoop {
                channel,
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
    channel: Channel,
    target: TapTarget,
    observe: ObserveRequest,
    peers: Arc<Peers>,
    calls: Arc<AtomicU64>,
    sender: mpsc::Sender<Bytes>,
    metrics: TapMetrics,
}

async fn observe_loop(state: ObserveLoop) {
    let ObserveLoop {
        channel,
        target,
        observe,
        peers,
        calls,
        sender,
        metrics,
    } = state;
    let mut client = TapClient::new(channel);
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
                            let Some(line) = tap_event(&event, context) else {
                                continue;
                            };
                            let Ok(mut line) = serde_json::to_string(&line) else {
                                continue;
                            };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_decision_table() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let loopback6: IpAddr = "::1".parse().unwrap();
        let remote: IpAddr = "10.0.0.7".parse().unwrap();
        let cases = [
            (TapTls::Auto, true, remote, true),
            (TapTls::Auto, true, loopback, false),
            (TapTls::Auto, true, loopback6, false),
            (TapTls::Auto, false, remote, false),
            (TapTls::Always, true, loopback, true),
            (TapTls::Always, false, remote, false),
            (TapTls::Never, true, remote, false),
        ];
        for (mode, has_certificate, ip, expected) in cases {
            assert_eq!(
                uses_tls(mode, has_certificate, ip),
                expected,
                "{mode:?} {has_certificate} {ip}"
            );
        }
    }
}

//! Request load through a proxy's outbound listener used as an explicit
//! HTTP proxy.
//!
//! ```text
//!  client 1 ─┐  keep-alive HTTP/1.1, absolute-form   ┌─► backend a
//!  client 2 ─┼──► GET http://web.shop.svc.cluster.local/ ──► proxy ─┼─► backend b
//!  client N ─┘                                       └─► backend c
//! ```
//!
//! - [`ProxyClient`]: one keep-alive connection to the proxy that reconnects
//!   when the proxy closes it; every request is recorded as an [`Outcome`].
//! - [`run`]: a fixed number of requests over N concurrent clients, blocking.
//! - [`BackgroundLoad`]: steady traffic on its own thread until stopped, so a
//!   test can kill things meanwhile.
//! - [`get`], [`request`]: one request on a fresh connection, blocking.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BoxError;

/// Longest any single request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How one request ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The status code, when a response arrived.
    pub status: Option<u16>,
    /// The `l5d-proxy-error` response header, if any.
    pub proxy_error: Option<String>,
    /// Why no (complete) response arrived: connect, I/O or timeout error.
    pub error: Option<String>,
    /// From sending the request to the end of the response body.
    pub latency: Duration,
    /// The response body (empty when none arrived).
    pub body: Bytes,
}

impl Outcome {
    /// A 2xx response with its whole body.
    pub fn is_success(&self) -> bool {
        matches!(self.status, Some(200..=299)) && self.error.is_none()
    }

    /// `200`, `503 (fail-fast ...)`, `error: ...` — for grouping failures.
    pub fn summary(&self) -> String {
        match (&self.error, self.status, &self.proxy_error) {
            (Some(error), _, _) => format!("error: {error}"),
            (None, Some(status), Some(reason)) => format!("{status} ({reason})"),
            (None, Some(status), None) => status.to_string(),
            (None, None, _) => "no response".to_string(),
        }
    }
}

/// Every outcome of a load run, in completion order.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The outcomes.
    pub outcomes: Vec<Outcome>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Requests sent.
    pub fn total(&self) -> usize {
        self.outcomes.len()
    }

    /// Requests that did not end in a 2xx response.
    pub fn failures(&self) -> usize {
        self.outcomes.iter().filter(|o| !o.is_success()).count()
    }

    /// Share of 2xx responses (1.0 for an empty run).
    pub fn success_rate(&self) -> f64 {
        if self.outcomes.is_empty() {
            return 1.0;
        }
        (self.total() - self.failures()) as f64 / self.total() as f64
    }

    /// How many requests ended each way ([`Outcome::summary`]).
    pub fn summary(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for outcome in &self.outcomes {
            *counts.entry(outcome.summary()).or_insert(0) += 1;
        }
        counts
    }
}

/// One keep-alive HTTP/1.1 connection to a proxy, reopened when it closes.
#[derive(Debug)]
pub struct ProxyClient {
    proxy: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl ProxyClient {
    /// A client for the explicit proxy at `proxy`; connects on first use.
    pub fn new(proxy: SocketAddr) -> Self {
        Self {
            proxy,
            sender: None,
        }
    }

    /// `GET url` (absolute, e.g. `http://web.shop.svc.cluster.local/`)
    /// through the proxy; the body is read to the end.
    pub async fn get(&mut self, url: &str) -> Outcome {
        self.send(Method::GET, url, Bytes::new()).await
    }

    /// `method url` with `body` (sent with a `content-length`) through the
    /// proxy; the response body is read to the end.
    pub async fn send(&mut self, method: Method, url: &str, body: Bytes) -> Outcome {
        let started = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.try_send(method, url, body)).await;
        let latency = started.elapsed();
        match result {
            Ok(Ok((status, proxy_error, body))) => Outcome {
                status: Some(status),
                proxy_error,
                error: None,
                latency,
                body,
            },
            Ok(Err((status, error))) => {
                self.sender = None;
                Outcome {
                    status,
                    proxy_error: None,
                    error: Some(error.to_string()),
                    latency,
                    body: Bytes::new(),
                }
            }
            Err(_) => {
                self.sender = None;
                Outcome {
                    status: None,
                    proxy_error: None,
                    error: Some(format!("no response within {REQUEST_TIMEOUT:?}")),
                    latency,
                    body: Bytes::new(),
                }
            }
        }
    }

    async fn try_send(
        &mut self,
        method: Method,
        url: &str,
        body: Bytes,
    ) -> Result<(u16, Option<String>, Bytes), (Option<u16>, BoxError)> {
        let uri: Uri = url.parse().map_err(|e| (None, BoxError::from(e)))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_string())
            .ok_or_else(|| (None, BoxError::from(format!("{url}: not absolute"))))?;
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_LENGTH, body.len())
            .body(Full::new(body))
            .map_err(|e| (None, BoxError::from(e)))?;
        let sender = self.ready_sender().await.map_err(|e| (None, e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| (None, BoxError::from(e)))?;
        let status = response.status().as_u16();
        let proxy_error = response
            .headers()
            .get("l5d-proxy-error")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| (Some(status), BoxError::from(e)))?
            .to_bytes();
        Ok((status, proxy_error, body))
    }

    /// The open connection if it can take a request now, else a new one.
    /// Nothing has been sent when this fails, so reconnecting is safe.
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, BoxError> {
        let reusable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            let stream = TcpStream::connect(self.proxy).await?;
            stream.set_nodelay(true)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("just set"))
    }
}

/// Sends `total` requests for `url` through `proxy` over `concurrency`
/// keep-alive clients; blocks until all have ended.
pub fn run(proxy: SocketAddr, url: &str, total: usize, concurrency: usize) -> LoadReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("load runtime");
    runtime.block_on(run_async(proxy, url, total, concurrency))
}

/// [`run`] on the caller's runtime.
pub async fn run_async(
    proxy: SocketAddr,
    url: &str,
    total: usize,
    concurrency: usize,
) -> LoadReport {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let clients: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (next, outcomes, url) = (next.clone(), outcomes.clone(), url.to_string());
            tokio::spawn(async move {
                let mut client = ProxyClient::new(proxy);
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let outcome = client.get(&url).await;
                    outcomes
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(outcome);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("load client task");
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(PoisonError::into_inner));
    LoadReport {
        outcomes,
        elapsed: started.elapsed(),
    }
}

/// One `GET url` through `proxy` on a fresh connection; blocks.
pub fn get(proxy: SocketAddr, url: &str) -> Outcome {
    request(proxy, Method::GET, url, Bytes::new())
}

/// One `method url` with `body` through `proxy` on a fresh connection; blocks.
pub fn request(proxy: SocketAddr, method: Method, url: &str, body: Bytes) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    runtime.block_on(ProxyClient::new(proxy).send(method, url, body))
}

/// Steady traffic on a background thread until [`BackgroundLoad::stop`].
///
/// Each of `concurrency` clients sends a request, waits `pause`, and repeats.
pub struct BackgroundLoad {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    started: Instant,
    thread: Option<JoinHandle<()>>,
}

impl BackgroundLoad {
    /// Starts the clients.
    pub fn start(proxy: SocketAddr, url: &str, concurrency: usize, pause: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let (stop_flag, shared, url) = (stop.clone(), outcomes.clone(), url.to_string());
        let thread = std::thread::Builder::new()
            .name("background-load".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("load runtime");
                runtime.block_on(async move {
                    let clients: Vec<_> = (0..concurrency.max(1))
                        .map(|_| {
                            let (stop, outcomes, url) =
                                (stop_flag.clone(), shared.clone(), url.clone());
                            tokio::spawn(async move {
                                let mut client = ProxyClient::new(proxy);
                                while !stop.load(Ordering::Relaxed) {
                                    let outcome = client.get(&url).await;
                                    outcomes
                                        .lock()
                                        .unwrap_or_else(PoisonError::into_inner)
                                        .push(outcome);
                                    tokio::time::sleep(pause).await;
                                }
                            })
                        })
                        .collect();
                    for client in clients {
                        let _ = client.await;
                    }
                });
            })
            .expect("spawn load thread");
        Self {
            stop,
            outcomes,
            started: Instant::now(),
            thread: Some(thread),
        }
    }

    /// Requests ended so far.
    pub fn completed(&self) -> usize {
        self.outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Failed requests so far.
    pub fn failures(&self) -> usize {
        let outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        outcomes.iter().filter(|o| !o.is_success()).count()
    }

    /// Waits until at least `n` more requests have ended than now; panics
    /// after `timeout`.
    pub fn wait_for_more(&self, n: usize, timeout: Duration) {
        let target = self.completed() + n;
        let deadline = Instant::now() + timeout;
        while self.completed() < target {
            assert!(
                Instant::now() < deadline,
                "background load: fewer than {n} requests ended within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the clients (each finishes its request in flight) and reports.
    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("load thread");
        }
        let outcomes =
            std::mem::take(&mut *self.outcomes.lock().unwrap_or_else(PoisonError::into_inner));
        LoadReport {
            outcomes,
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for BackgroundLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

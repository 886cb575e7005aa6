//! The scraper: every `--scrape-interval`, GET every meshed proxy's
//! `/metrics` (concurrently, each bounded by a timeout), keep what the
//! queries need in the [`Store`], and record each target's status.
//!
//! ```text
//! catalog.map_workloads() ─► meshed, with an admin address ─► GET http://admin/metrics (≤ timeout,
//!     one connection per scrape, closed when it ends or times out)
//!     ok  ─► parse ─► store.ingest(namespace, workload, serviceaccount + samples) ─► status up
//!     err ─► status down with the error
//! then store.trim(retention); statuses of workloads gone from the catalog are forgotten
//! ```

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpStream;

use super::parse::parse_scrape;
use super::store::Store;
use super::{ScrapeStatus, ScrapeStatuses, WorkloadKey};
use crate::catalog::SharedCatalog;
use crate::proxy_address::proxy_listeners;

/// How many proxies are scraped at once.
const CONCURRENT_SCRAPES: usize = 32;
/// How long connecting to a proxy (or Prometheus) may take: an unreachable
/// one (a SYN never answered) is given up on after this, not after the
/// kernel's SYN retries (minutes; hyper's pooled client even finishes a
/// connect in the background after its request timed out).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest `/metrics` body read (a proxy's is tens of KiB).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// An HTTP client for plaintext GETs (proxies' admin ports, Prometheus).
pub type HttpClient = Client<HttpConnector, Empty<Bytes>>;

/// A new plaintext HTTP/1 client.
pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Why a GET failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not one hyper takes.
    #[error("bad URL {0}")]
    Url(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connecting or the exchange failed.
    #[error("{0}")]
    Request(#[from] hyper_util::client::legacy::Error),
    /// The TCP connection could not be made.
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    /// The HTTP/1.1 exchange failed.
    #[error("{0}")]
    Exchange(hyper::Error),
    /// The body could not be read.
    #[error("reading the body: {0}")]
    Body(#[from] hyper::Error),
    /// Not a 2xx.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// Too big or not UTF-8.
    #[error("the body is {0}")]
    BadBody(&'static str),
}

/// GETs `path` from `address` on a connection of its own and returns the
/// body as text, within `timeout`. The connection is closed when the GET
/// ends, answered or not: a proxy that accepts and never answers (hung, or
/// an address some network middlebox accepts for everyone) costs nothing
/// after its timeout — a pooled client would keep each such connection open
/// (thousands, with their buffers, in a big mesh).
pub async fn get_once(
    address: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<String, HttpError> {
    let mut connection = None;
    let exchange = async {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| HttpError::Timeout(CONNECT_TIMEOUT))?
            .map_err(HttpError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(HttpError::Exchange)?;
        connection = Some(tokio::spawn(driver));
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, address.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(|_| HttpError::Url(path.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(HttpError::Exchange)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|_| HttpError::BadBody("too large or cut short"))?
            .to_bytes();
        Ok::<_, HttpError>((status, body))
    };
    let outcome = tokio::time::timeout(timeout, exchange).await;
    if let Some(connection) = connection {
        connection.abort();
    }
    let (status, body) = outcome.map_err(|_| HttpError::Timeout(timeout))??;
    text_of(status, &body)
}

/// The body as text, or why not (not UTF-8, not a 2xx).
fn text_of(status: hyper::StatusCode, body: &[u8]) -> Result<String, HttpError> {
    let text = String::from_utf8(body.to_vec()).map_err(|_| HttpError::BadBody("not UTF-8"))?;
    if !status.is_success() {
        return Err(HttpError::Status {
            status: status.as_u16(),
            body: text.chars().take(200).collect(),
        });
    }
    Ok(text)
}

/// GETs `url` and returns its body as text, within `timeout`.
pub async fn get_text(
    client: &HttpClient,
    url: &str,
    timeout: Duration,
) -> Result<String, HttpError> {
    let uri: hyper::Uri = url.parse().map_err(|_| HttpError::Url(url.to_string()))?;
    let exchange = async {
        let response = client.get(uri).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok::<_, HttpError>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout(timeout))??;
    if body.len() > MAX_BODY_BYTES {
        return Err(HttpError::BadBody("too large"));
    }
    text_of(status, &body)
}

/// Labels of `scrapes_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// The scraper's own metrics, on the controller's registry.
#[derive(Debug, Clone, Default)]
pub struct ScrapeMetrics {
    scrapes: Family<ResultLabels, Counter>,
    series: Gauge,
    samples: Gauge,
    targets: Gauge,
}

impl ScrapeMetrics {
    /// Creates and registers the scraper's metrics.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "metrics_scrapes",
            "Scrapes of proxies' /metrics, by result (ok, error)",
            metrics.scrapes.clone(),
        );
        registry.register(
            "metrics_series",
            "Series held in the scrape store",
            metrics.series.clone(),
        );
        registry.register(
            "metrics_samples",
            "Samples held in the scrape store",
            metrics.samples.clone(),
        );
        registry.register(
            "metrics_scrape_targets",
            "Meshed proxies scraped in the last round",
            metrics.targets.clone(),
        );
        metrics
    }
}

/// One proxy to scrape.
#[derive(Debug, Clone)]
struct Target {
    key: WorkloadKey,
    service_account: String,
    admin: SocketAddr,
}

/// Scrapes every meshed proxy into the store on an interval.
#[derive(Debug)]
pub struct Scraper {
    /// Where targets come from.
    pub catalog: SharedCatalog,
    /// Where samples go.
    pub store: Arc<Mutex<Store>>,
    /// Where each target's status goes.
    pub statuses: ScrapeStatuses,
    /// How often.
    pub interval: Duration,
    /// The scraper's metrics.
    pub metrics: ScrapeMetrics,
}

/// Now, in Unix seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

impl Scraper {
    /// Scrapes every interval until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticker.tick() => self.scrape_all().await,
            }
        }
    }

    fn targets(&self) -> Vec<Target> {
        self.catalog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map_workloads(|workload| {
                Some(Target {
                    key: WorkloadKey {
                        namespace: workload
                            .metadata
                            .namespace
                            .clone()
                            .unwrap_or_else(|| "default".to_string()),
                        name: workload.metadata.name.clone()?,
                    },
                    service_account: workload.service_account().to_string(),
                    admin: proxy_listeners(workload)?.admin,
                })
            })
    }

    /// One round: every target concurrently, then trim.
    async fn scrape_all(&self) {
        let targets = self.targets();
        let timeout = self.interval.mul_f64(0.8).min(Duration::from_secs(10));
        let round = unix_now();
        let results: Vec<(Target, Result<String, HttpError>)> =
            futures::stream::iter(targets.iter().cloned())
                .map(|target| async move {
                    let result = get_once(target.admin, "/metrics", timeout).await;
                    (target, result)
                })
                .buffer_unordered(CONCURRENT_SCRAPES)
                .collect()
                .await;
        let finished = unix_now();
        {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            for (target, result) in results {
                let parsed = result
                    .map_err(|error| error.to_string())
                    .and_then(|text| parse_scrape(&text).map_err(|error| error.to_string()));
                let status = match parsed {
                    Ok(parsed) => {
                        store.ingest(
                            &[
                                ("namespace", &target.key.namespace),
                                ("workload", &target.key.name),
                                ("serviceaccount", &target.service_account),
                            ],
                            &parsed.samples,
                            round,
                        );
                        ScrapeStatus {
                            up: true,
                            last_unix: Some(finished),
                            error: None,
                            cert_expiry_unix: parsed.cert_expiry_unix,
                        }
                    }
                    Err(error) => {
                        tracing::debug!(target = %target.admin, %error, "scrape failed");
                        ScrapeStatus {
                            up: false,
                            last_unix: Some(finished),
                            error: Some(error),
                            cert_expiry_unix: None,
                        }
                    }
                };
                let result = if status.up { "ok" } else { "error" };
                self.metrics
                    .scrapes
                    .get_or_create(&ResultLabels { result })
                    .inc();
                self.statuses.set(target.key, status);
            }
            store.trim(finished);
            self.metrics
                .series
                .set(i64::try_from(store.series_count()).unwrap_or(i64::MAX));
            self.metrics
                .samples
                .set(i64::try_from(store.sample_count()).unwrap_or(i64::MAX));
        }
        self.metrics
            .targets
            .set(i64::try_from(targets.len()).unwrap_or(i64::MAX));
        self.statuses
            .retain(|key| targets.iter().any(|target| &target.key == key));
    }
}

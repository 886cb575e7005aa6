//! Golden metrics for the HTTP API: where they come from and what the last
//! scrape of every proxy said.
//!
//! ```text
//! --prometheus-url absent:  catalog ─► scrape (every proxy's /metrics) ─► store (bounded window) ─► query
//! --prometheus-url URL:     PromQL instant queries against that Prometheus ──────────────────────► rows
//! ```
//!
//! The web layer ([`crate::api`]) asks [`MetricsApi`] and never knows which
//! backend answers: both evaluate the same [`query::Query`] values.
//!
//! | module | what it is |
//! |--------|------------|
//! | [`parse`] | a proxy's text → the kept samples (families and labels the queries need) |
//! | [`store`] | the bounded window of samples; evaluates queries |
//! | [`scrape`] | the scrape loop, its HTTP client and metrics |
//! | [`query`] | queries as data, PromQL rendering, increase and histogram_quantile |
//! | [`golden`] | stat/routes/edges: selections and rows (pure) |
//! | [`prometheus`] | the `--prometheus-url` backend |

pub mod golden;
pub mod parse;
pub mod prometheus;
pub mod query;
pub mod scrape;
pub mod store;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use self::prometheus::{PrometheusClient, PrometheusError};
use self::query::{Group, Query};
use self::store::Store;

/// Which backend answers golden-metrics queries (`/api/version`'s `metrics_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsSource {
    /// The controller scrapes the proxies itself.
    Scrape,
    /// An existing Prometheus (`--prometheus-url`).
    Prometheus,
}

impl MetricsSource {
    /// Its name in `/api/version` (`scrape`, `prometheus`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scrape => "scrape",
            Self::Prometheus => "prometheus",
        }
    }
}

/// A workload, as metrics name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadKey {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What the last scrape of one proxy said.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScrapeStatus {
    /// Whether the last scrape succeeded.
    pub up: bool,
    /// When the last scrape finished (Unix seconds).
    pub last_unix: Option<f64>,
    /// Why the last scrape failed.
    pub error: Option<String>,
    /// The proxy's `identity_cert_expiration_timestamp_seconds`, when it has one.
    #[serde(skip)]
    pub cert_expiry_unix: Option<f64>,
}

/// The scrape status of every target, shared by the scraper and the web layer.
#[derive(Debug, Clone, Default)]
pub struct ScrapeStatuses(Arc<Mutex<BTreeMap<WorkloadKey, ScrapeStatus>>>);

impl ScrapeStatuses {
    /// The status of one workload's proxy, if it was scraped.
    pub fn get(&self, key: &WorkloadKey) -> Option<ScrapeStatus> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Records the result of a scrape.
    pub fn set(&self, key: WorkloadKey, status: ScrapeStatus) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, status);
    }

    /// Keeps only the targets `keep` says are still meshed.
    pub fn retain(&self, mut keep: impl FnMut(&WorkloadKey) -> bool) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|key, _| keep(key));
    }
}

/// Where queries are evaluated.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The controller's own scrape store.
    Scrape(Arc<Mutex<Store>>),
    /// A Prometheus.
    Prometheus(Box<PrometheusClient>),
}

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Prometheus failed or refused.
    #[error(transparent)]
    Prometheus(#[from] PrometheusError),
}

/// The golden-metrics side of the API: the backend and the scrape statuses.
#[derive(Debug, Clone)]
pub struct MetricsApi {
    /// Which backend answers.
    pub source: MetricsSource,
    /// The last scrape of every proxy (empty with Prometheus).
    pub statuses: ScrapeStatuses,
    /// Where queries go.
    pub backend: Backend,
}

impl MetricsApi {
    /// Evaluates one query now.
    pub async fn evaluate(&self, query: &Query) -> Result<Vec<Group>, MetricsError> {
        match &self.backend {
            Backend::Scrape(store) => Ok(store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .evaluate(query, scrape::unix_now())),
            Backend::Prometheus(client) => Ok(client.evaluate(query).await?),
        }
    }

    /// Evaluates queries concurrently, results in the same order.
    pub async fn evaluate_all(&self, queries: &[Query]) -> Result<Vec<Vec<Group>>, MetricsError> {
        futures::future::try_join_all(queries.iter().map(|query| self.evaluate(query))).await
    }
}

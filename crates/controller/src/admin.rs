//! The admin server (`--admin-addr`): `/metrics` (OpenMetrics text of the
//! one registry), `/ready` (200 once the first good load is serving; the
//! body shows the mesh file's status, including the current file's error
//! while the last good version serves, and the identity issuer's) and
//! `/live`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::identity::issuer_files::{IssuerPaths, IssuerStatus};
use crate::kubernetes::SharedKubernetesStatus;
use crate::mesh_file::MeshFileStatus;

/// The admin routes, with their state.
pub fn router(admin: Arc<AdminState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/ready", get(ready))
        .route("/live", get(|| async { "live\n" }))
        .with_state(admin)
}

/// Mesh-file metrics, refreshed from its status at each scrape.
#[derive(Debug, Clone, Default)]
struct MeshFileMetrics {
    good_loads: Counter,
    failed_loads: Counter,
    parses: Counter,
    last_good_load_seconds: Gauge,
    current: Gauge,
}

impl MeshFileMetrics {
    fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "mesh_file_good_loads",
            "Mesh-file versions loaded into the catalog",
            metrics.good_loads.clone(),
        );
        registry.register(
            "mesh_file_failed_loads",
            "Mesh-file versions rejected (the last good one kept serving)",
            metrics.failed_loads.clone(),
        );
        registry.register(
            "mesh_file_parses",
            "Mesh-file versions parsed (a rewrite with the same content is not parsed again)",
            metrics.parses.clone(),
        );
        registry.register(
            "mesh_file_last_good_load_timestamp_seconds",
            "When the catalog last took a version of the mesh file (Unix time)",
            metrics.last_good_load_seconds.clone(),
        );
        registry.register(
            "mesh_file_current",
            "1 when the file on disk is the version serving, 0 while it is broken",
            metrics.current.clone(),
        );
        metrics
    }

    fn refresh(&self, status: &MeshFileStatus) {
        self.good_loads
            .inc_by(status.good_loads.saturating_sub(self.good_loads.get()));
        self.failed_loads
            .inc_by(status.failed_loads.saturating_sub(self.failed_loads.get()));
        self.parses
            .inc_by(status.parses.saturating_sub(self.parses.get()));
        let seconds = status
            .last_good_load
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs());
        self.last_good_load_seconds
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.current.set(i64::from(status.is_current()));
    }
}

/// Where the issuer comes from, as `/ready` shows it: its files' paths, or
/// the Secret and ConfigMap (`namespace/name`) on Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerOrigin {
    /// The issuer (`issuer_dir` in `/ready`).
    pub issuer: String,
    /// The trust anchors.
    pub trust_anchors: String,
}

impl From<&IssuerPaths> for IssuerOrigin {
    fn from(paths: &IssuerPaths) -> Self {
        Self {
            issuer: paths.issuer_dir.display().to_string(),
            trust_anchors: paths.trust_anchors.display().to_string(),
        }
    }
}

/// What the admin server reads.
pub struct AdminState {
    registry: Registry,
    mesh_file_metrics: MeshFileMetrics,
    mesh_file_path: PathBuf,
    mesh_file_status: Arc<Mutex<MeshFileStatus>>,
    /// Where the issuer comes from and its status, when identity is enabled.
    issuer: Option<(IssuerOrigin, Arc<Mutex<IssuerStatus>>)>,
    /// The Kubernetes source's status, in `--kubernetes` mode (then the
    /// mesh file plays no part in readiness).
    kubernetes: Option<SharedKubernetesStatus>,
    ready: AtomicBool,
}

impl AdminState {
    /// The admin state over the one `registry` (to which the mesh file's
    /// metrics are added), not ready yet.
    pub fn new(
        mut registry: Registry,
        mesh_file_path: PathBuf,
        mesh_file_status: Arc<Mutex<MeshFileStatus>>,
        issuer: Option<(IssuerOrigin, Arc<Mutex<IssuerStatus>>)>,
    ) -> Self {
        let mesh_file_metrics = MeshFileMetrics::new(&mut registry);
        Self {
            registry,
            mesh_file_metrics,
            mesh_file_path,
            mesh_file_status,
            issuer,
            kubernetes: None,
            ready: AtomicBool::new(false),
        }
    }

    /// The same state reading readiness from the Kubernetes source's
    /// status (ready once every resource's first list completed) when given.
    pub fn with_kubernetes(mut self, status: Option<SharedKubernetesStatus>) -> Self {
        self.kubernetes = status;
        self
    }

    /// Marks the controller ready (`/ready` answers 200 once the mesh file
    /// has loaded) or not (shutting down).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    fn status(&self) -> MeshFileStatus {
        self.mesh_file_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn issuer_status(&self) -> Option<(&IssuerOrigin, IssuerStatus)> {
        self.issuer.as_ref().map(|(origin, status)| {
            let status = status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            (origin, status)
        })
    }
}

async fn metrics(State(admin): State<Arc<AdminState>>) -> impl IntoResponse {
    admin.mesh_file_metrics.refresh(&admin.status());
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &admin.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode metrics: {error}\n"),
        ),
    }
}

async fn ready(State(admin): State<Arc<AdminState>>) -> impl IntoResponse {
    let status = admin.status();
    let kubernetes = admin
        .kubernetes
        .as_ref()
        .map(|status| crate::kubernetes::status::lock_status(status).clone());
    let source_ready = match &kubernetes {
        Some(kubernetes) => kubernetes.is_ready(),
        None => status.last_good_load.is_some(),
    };
    let is_ready = admin.ready.load(Ordering::Acquire) && source_ready;
    let seconds = |time: Option<SystemTime>| {
        time.and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_secs())
    };
    let problems: Vec<serde_json::Value> = status
        .last_problems
        .iter()
        .map(|problem| {
            serde_json::json!({
                "document": problem.document,
                "line": problem.line,
                "reason": problem.reason,
            })
        })
        .collect();
    let identity = admin.issuer_status().map(|(origin, issuer)| {
        serde_json::json!({
            "issuer_dir": origin.issuer,
            "trust_anchors": origin.trust_anchors,
            "current": issuer.is_current(),
            "issuer": issuer.issuer,
            "issuer_not_after_seconds": issuer.issuer_not_after.map(|time| time.unix_timestamp()),
            "good_loads": issuer.good_loads,
            "failed_loads": issuer.failed_loads,
            "last_good_load_seconds": seconds(issuer.last_good_load),
            "last_error": issuer.last_error,
            "last_error_seconds": seconds(issuer.last_error_at),
        })
    });
    let body = serde_json::json!({
        "ready": is_ready,
        "identity": identity,
        "kubernetes": kubernetes.as_ref().map(crate::kubernetes::KubernetesStatus::to_json),
        "mesh_file": {
            "path": admin.mesh_file_path.display().to_string(),
            "current": status.is_current(),
            "objects": status.objects,
            "good_loads": status.good_loads,
            "failed_loads": status.failed_loads,
            "parses": status.parses,
            "last_good_load_seconds": seconds(status.last_good_load),
            "last_load_ms": status
                .last_load_duration
                .map(|duration| duration.as_secs_f64() * 1000.0),
            "last_error": status.last_error,
            "last_problems": problems,
            "last_error_seconds": seconds(status.last_error_at),
        },
    });
    let code = if is_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

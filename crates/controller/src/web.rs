//! The controller's HTTP API (`--web-addr`): the JSON contract of
//! `docs/api.md`, read by the CLI and the dashboard.
//!
//! ```text
//! --web-addr ─► axum::Router
//!                ├─ /api/...   this module: version, workloads, stat, routes,
//!                │             edges, identity, mesh, sd (read-only)
//!                └─ extra      routes other modules merge in (tap, the
//!                              dashboard at `/` and `/assets/...`)
//! ```
//!
//! Handlers are thin: they parse the query, read the catalog and ask
//! [`MetricsApi`]; every error is `{"error": "..."}` with a 4xx/5xx status.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use weft_core::workload::Workload;

use crate::catalog::SharedCatalog;
use crate::identity::{IdentityDomain, WorkloadIdentity};
use crate::mesh_file::MeshFileStatus;
use crate::metrics_api::{MetricsApi, WorkloadKey};

/// The version `/api/version` reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the API handlers read.
#[derive(Debug)]
pub struct WebState {
    /// The mesh model.
    pub catalog: SharedCatalog,
    /// Golden metrics and scrape statuses.
    pub metrics: MetricsApi,
    /// The identity names' suffix, when identity is enabled.
    pub identity_domain: Option<IdentityDomain>,
    /// The mesh file.
    pub mesh_file_path: PathBuf,
    /// Its last load.
    pub mesh_file_status: Arc<Mutex<MeshFileStatus>>,
}

/// An API error: a status and `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the caller.
    pub message: String,
}

impl ApiError {
    /// A 400 for a bad query parameter.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

/// The `/api/` routes of this module, with their state.
pub fn api_router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/api/version", get(version))
        .route("/api/workloads", get(workloads))
        .route("/api/mesh", get(mesh))
        .route("/api/sd", get(service_discovery))
        .with_state(state)
}

/// Serves the API merged with `extra` (routes other modules add: tap, the
/// dashboard) on `listener` until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<WebState>,
    extra: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = api_router(state).merge(extra);
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

async fn version(State(state): State<Arc<WebState>>) -> Json<Value> {
    Json(json!({ "version": VERSION, "metrics_source": state.metrics.source }))
}

/// `?namespace=`: limits a listing to one namespace.
#[derive(Debug, Default, Deserialize)]
struct NamespaceQuery {
    namespace: Option<String>,
}

fn namespace_of(workload: &Workload) -> &str {
    workload.metadata.namespace.as_deref().unwrap_or("default")
}

fn name_of(workload: &Workload) -> &str {
    workload.metadata.name.as_deref().unwrap_or_default()
}

/// The catalog's workloads, sorted by namespace and name, optionally of one namespace.
fn sorted_workloads(state: &WebState, namespace: Option<&str>) -> Vec<Workload> {
    let mut workloads: Vec<Workload> = state
        .catalog
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .workloads()
        .into_iter()
        .filter(|workload| namespace.is_none_or(|wanted| namespace_of(workload) == wanted))
        .collect();
    workloads.sort_by(|a, b| (namespace_of(a), name_of(a)).cmp(&(namespace_of(b), name_of(b))));
    workloads
}

/// The proxy's admin address of a meshed workload (what is scraped).
pub fn admin_address(workload: &Workload) -> Option<SocketAddr> {
    let proxy = workload.proxy_settings()?;
    let ip = proxy
        .address
        .or_else(|| workload.spec.addresses.first().copied())?;
    Some(SocketAddr::new(ip, proxy.admin_port))
}

async fn workloads(
    State(state): State<Arc<WebState>>,
    Query(query): Query<NamespaceQuery>,
) -> Json<Value> {
    let rows: Vec<Value> = sorted_workloads(&state, query.namespace.as_deref())
        .iter()
        .map(|workload| workload_row(&state, workload))
        .collect();
    Json(json!({ "workloads": rows }))
}

fn workload_row(state: &WebState, workload: &Workload) -> Value {
    let namespace = namespace_of(workload);
    let service_account = workload.service_account();
    let identity = state
        .identity_domain
        .as_ref()
        .map(|domain| domain.dns_name(&WorkloadIdentity::new(namespace, service_account)));
    let labels: BTreeMap<&String, &String> = workload.labels().iter().collect();
    let proxy = workload.proxy_settings().map(|proxy| {
        let ip = proxy
            .address
            .or_else(|| workload.spec.addresses.first().copied());
        let at = |port: u16| ip.map(|ip| SocketAddr::new(ip, port).to_string());
        json!({
            "admin": at(proxy.admin_port),
            "tap": at(proxy.tap_port),
            "inbound": at(proxy.inbound_port),
        })
    });
    let status = state.metrics.statuses.get(&WorkloadKey {
        namespace: namespace.to_string(),
        name: name_of(workload).to_string(),
    });
    json!({
        "namespace": namespace,
        "name": name_of(workload),
        "service_account": service_account,
        "identity": identity,
        "labels": labels,
        "addresses": workload.spec.addresses,
        "meshed": workload.spec.meshed,
        "proxy": proxy,
        "scrape": status.as_ref().map(|status| json!({
            "up": status.up,
            "last_unix": status.last_unix,
            "error": status.error,
        })),
        "cert_expiry_unix": status.and_then(|status| status.cert_expiry_unix),
    })
}

fn unix_seconds(time: Option<SystemTime>) -> Option<f64> {
    time.and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs_f64())
}

async fn mesh(State(state): State<Arc<WebState>>) -> Json<Value> {
    let status = state
        .mesh_file_status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(json!({
        "path": state.mesh_file_path.display().to_string(),
        "valid": status.is_current(),
        "error": status.last_error,
        "last_load_unix": unix_seconds(status.last_good_load),
    }))
}

/// Prometheus HTTP service discovery: one target group per meshed
/// workload's proxy admin address.
async fn service_discovery(State(state): State<Arc<WebState>>) -> Json<Value> {
    let groups: Vec<Value> = sorted_workloads(&state, None)
        .iter()
        .filter_map(|workload| {
            let admin = admin_address(workload)?;
            let mut labels: BTreeMap<String, String> = workload
                .labels()
                .iter()
                .map(|(key, value)| (sanitize_label(key), value.clone()))
                .collect();
            labels.insert("namespace".into(), namespace_of(workload).to_string());
            labels.insert("workload".into(), name_of(workload).to_string());
            labels.insert(
                "serviceaccount".into(),
                workload.service_account().to_string(),
            );
            Some(json!({ "targets": [admin.to_string()], "labels": labels }))
        })
        .collect();
    Json(Value::Array(groups))
}

/// A label key as Prometheus accepts it: `[a-zA-Z_][a-zA-Z0-9_]*`
/// (`app.kubernetes.io/name` → `app_kubernetes_io_name`).
pub fn sanitize_label(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '_' {
                character
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with(|character: char| character.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_are_sanitized() {
        let cases = [
            ("app", "app"),
            ("app.kubernetes.io/name", "app_kubernetes_io_name"),
            ("9lives", "_9lives"),
            ("", "_"),
        ];
        for (key, expected) in cases {
            assert_eq!(sanitize_label(key), expected, "{key}");
        }
    }
}

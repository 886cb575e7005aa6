//! The controller's HTTP API (`--web-addr`): the JSON contract of
//! `docs/api.md`, whose types are the `weft-api` crate; read by the CLI and
//! the dashboard.
//!
//! ```text
//! --web-addr ─► axum::Router
//!                ├─ /api/version, /api/mesh      mesh.rs
//!                ├─ /api/workloads, /api/sd      workloads.rs
//!                ├─ /api/stat, /routes, /edges   golden_metrics.rs
//!                ├─ /api/trafficsplits           traffic_splits.rs
//!                ├─ /api/identity                identity.rs
//!                ├─ /api/authz                   authz.rs
//!                └─ extra      routes other modules merge in (tap, the
//!                              dashboard at `/` and `/assets/...`)
//! ```
//!
//! Handlers are thin: they parse the query, read the catalog and ask
//! [`MetricsApi`]; they answer `weft-api` types, and every error is
//! [`weft_api::ErrorBody`] with a 4xx/5xx status. This file holds what the
//! endpoint groups share: their state, the error, the router, the window.

pub mod authz;
pub mod golden_metrics;
pub mod identity;
pub mod mesh;
pub mod traffic_splits;
pub mod workloads;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use weft_api::ErrorBody;
use weft_core::workload::Workload;

use crate::catalog::SharedCatalog;
use crate::identity::IdentityDomain;
use crate::identity::issuer_files::AuthorityHandle;
use crate::mesh_file::MeshFileStatus;
use crate::metrics_api::golden::SelectionError;
use crate::metrics_api::{MetricsApi, MetricsError};

/// The shortest and longest `window`.
pub const WINDOW_RANGE: (Duration, Duration) = (Duration::from_secs(15), Duration::from_secs(900));
/// `window` when absent.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

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
    /// The issuer and trust anchors, when identity is enabled.
    pub identity_authority: Option<AuthorityHandle>,
    /// Lifetime of issued leaf certificates.
    pub leaf_lifetime: Option<Duration>,
    /// The mesh file.
    pub mesh_file_path: PathBuf,
    /// Its last load.
    pub mesh_file_status: Arc<Mutex<MeshFileStatus>>,
    /// With `--kubernetes`, the watches' status instead (`/api/mesh`
    /// describes the source that serves).
    pub kubernetes: Option<crate::kubernetes::SharedKubernetesStatus>,
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

impl ApiError {
    /// A 404: what the query names is not in the mesh.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

impl From<SelectionError> for ApiError {
    fn from(error: SelectionError) -> Self {
        ApiError::bad_request(error.to_string())
    }
}

impl From<MetricsError> for ApiError {
    fn from(error: MetricsError) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            message: error.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// The `/api/` routes of this module, with their state.
pub fn api_router(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/api/version", get(mesh::version))
        .route("/api/workloads", get(workloads::workloads))
        .route("/api/stat", get(golden_metrics::stat))
        .route("/api/trafficsplits", get(traffic_splits::traffic_splits))
        .route("/api/routes", get(golden_metrics::routes))
        .route("/api/edges", get(golden_metrics::edges))
        .route("/api/identity", get(identity::identity))
        .route("/api/mesh", get(mesh::mesh))
        .route("/api/sd", get(workloads::service_discovery))
        .route("/api/authz", get(authz::authz))
        .with_state(state)
}

/// Serves the API merged with `extra` (routes other modules add: tap, the
/// dashboard) on `listener` until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<WebState>,
    extra: Router,
    guard: impl FnOnce(Router) -> Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = guard(api_router(state).merge(extra));
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

/// A workload's namespace (`default` when it names none).
fn namespace_of(workload: &Workload) -> &str {
    workload.metadata.namespace.as_deref().unwrap_or("default")
}

/// A workload's name.
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

/// `namespace=`, when given, must hold some object of the mesh file: a
/// misspelt namespace is a 404 that says so, not an empty answer that reads
/// as "no traffic".
fn check_namespace(state: &WebState, namespace: Option<&str>) -> Result<(), ApiError> {
    let Some(namespace) = namespace else {
        return Ok(());
    };
    let exists = state
        .catalog
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .namespace_exists(namespace);
    if exists {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "namespace {namespace:?} does not exist: no Service, Workload, ServiceProfile or TrafficSplit of the mesh file is in it"
        )))
    }
}

/// `window=`: a Go duration within [`WINDOW_RANGE`]; [`DEFAULT_WINDOW`] when absent.
pub fn parse_window(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_WINDOW);
    };
    let window = weft_core::duration::parse_duration(text)
        .map_err(|error| ApiError::bad_request(format!("bad window {text:?}: {error}")))?;
    if window < WINDOW_RANGE.0 || window > WINDOW_RANGE.1 {
        return Err(ApiError::bad_request(format!(
            "window {text} is outside 15s … 15m"
        )));
    }
    Ok(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_bounded() {
        let cases = [
            (None, Ok(60)),
            (Some("15s"), Ok(15)),
            (Some("15m"), Ok(900)),
            (Some("10s"), Err(())),
            (Some("1h"), Err(())),
            (Some("soon"), Err(())),
        ];
        for (text, expected) in cases {
            let got = parse_window(text)
                .map(|window| window.as_secs())
                .map_err(|_| ());
            assert_eq!(got, expected, "{text:?}");
        }
    }
}

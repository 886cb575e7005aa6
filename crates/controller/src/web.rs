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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;
use weft_api::{
    Certificate, EdgesResponse, ErrorBody, IdentityInfo, IssuerCertificate, MeshStatus,
    ProxyAddresses, RoutesResponse, Scrape, StatResponse, StatRow, TargetGroup, Version,
    WorkloadInfo, WorkloadsResponse,
};
use weft_core::names::{DEFAULT_CLUSTER_DOMAIN, ServiceName};
use weft_core::service::selects;
use weft_core::workload::Workload;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::catalog::SharedCatalog;
use crate::identity::issuer_files::AuthorityHandle;
use crate::identity::{IdentityDomain, WorkloadIdentity};
use crate::mesh_file::MeshFileStatus;
use crate::metrics_api::golden::{
    self, EdgeEnd, Resource, ResourceKind, SelectionError, StatRequest,
};
use crate::metrics_api::query::Matcher;
use crate::metrics_api::{MetricsApi, MetricsError, MetricsSource, WorkloadKey};

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
        .route("/api/version", get(version))
        .route("/api/workloads", get(workloads))
        .route("/api/stat", get(stat))
        .route("/api/routes", get(routes))
        .route("/api/edges", get(edges))
        .route("/api/identity", get(identity))
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
    guard: impl FnOnce(Router) -> Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = guard(api_router(state).merge(extra));
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

async fn version(State(state): State<Arc<WebState>>) -> Json<Version> {
    Json(Version {
        version: VERSION.to_string(),
        metrics_source: state.metrics.source.as_str().to_string(),
    })
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
) -> Json<WorkloadsResponse> {
    let workloads = sorted_workloads(&state, query.namespace.as_deref())
        .iter()
        .map(|workload| workload_row(&state, workload))
        .collect();
    Json(WorkloadsResponse { workloads })
}

fn workload_row(state: &WebState, workload: &Workload) -> WorkloadInfo {
    let namespace = namespace_of(workload);
    let service_account = workload.service_account();
    let identity = state
        .identity_domain
        .as_ref()
        .map(|domain| domain.dns_name(&WorkloadIdentity::new(namespace, service_account)));
    let labels: BTreeMap<String, String> = workload
        .labels()
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let proxy = workload.proxy_settings().map(|proxy| {
        let ip = proxy
            .address
            .or_else(|| workload.spec.addresses.first().copied());
        let at = |port: u16| ip.map(|ip| SocketAddr::new(ip, port).to_string());
        ProxyAddresses {
            admin: at(proxy.admin_port),
            tap: at(proxy.tap_port),
            inbound: at(proxy.inbound_port),
        }
    });
    let status = state.metrics.statuses.get(&WorkloadKey {
        namespace: namespace.to_string(),
        name: name_of(workload).to_string(),
    });
    WorkloadInfo {
        namespace: namespace.to_string(),
        name: name_of(workload).to_string(),
        service_account: service_account.to_string(),
        identity,
        labels,
        addresses: workload
            .spec
            .addresses
            .iter()
            .map(ToString::to_string)
            .collect(),
        meshed: workload.spec.meshed,
        proxy,
        scrape: status.as_ref().map(|status| Scrape {
            up: status.up,
            last_unix: status.last_unix,
            error: status.error.clone(),
        }),
        cert_expiry_unix: status.and_then(|status| status.cert_expiry_unix),
    }
}

fn unix_seconds(time: Option<SystemTime>) -> Option<f64> {
    time.and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs_f64())
}

async fn mesh(State(state): State<Arc<WebState>>) -> Json<MeshStatus> {
    let status = state
        .mesh_file_status
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(MeshStatus {
        path: state.mesh_file_path.display().to_string(),
        valid: status.is_current(),
        error: status.last_error.clone(),
        last_load_unix: unix_seconds(status.last_good_load),
    })
}

/// Prometheus HTTP service discovery: one target group per meshed
/// workload's proxy admin address.
async fn service_discovery(State(state): State<Arc<WebState>>) -> Json<Vec<TargetGroup>> {
    let groups = sorted_workloads(&state, None)
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
            Some(TargetGroup {
                targets: vec![admin.to_string()],
                labels,
            })
        })
        .collect();
    Json(groups)
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

/// `window=`: a Go duration within [`WINDOW_RANGE`]; [`DEFAULT_WINDOW`] when absent.
pub fn parse_window(text: Option<&str>) -> Result<Duration, ApiError> {
    let Some(text) = text else {
        return Ok(DEFAULT_WINDOW);
    };
    let window = weft_core::duration::parse_go_duration(text)
        .map_err(|error| ApiError::bad_request(format!("bad window {text:?}: {error}")))?;
    if window < WINDOW_RANGE.0 || window > WINDOW_RANGE.1 {
        return Err(ApiError::bad_request(format!(
            "window {text} is outside 15s … 15m"
        )));
    }
    Ok(window)
}

/// `/api/stat`'s query string.
#[derive(Debug, Default, Deserialize)]
struct StatQuery {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn parse_kind(text: Option<&str>) -> Result<ResourceKind, ApiError> {
    let text = text.ok_or_else(|| ApiError::bad_request("kind is required"))?;
    ResourceKind::parse(text).ok_or_else(|| {
        ApiError::bad_request(format!(
            "unknown kind {text:?}: namespace, workload, service or authority"
        ))
    })
}

fn parse_resource(text: Option<&str>) -> Result<Option<Resource>, ApiError> {
    Ok(text.map(Resource::parse).transpose()?)
}

async fn stat(
    State(state): State<Arc<WebState>>,
    Query(query): Query<StatQuery>,
) -> Result<Json<StatResponse>, ApiError> {
    let request = StatRequest {
        kind: parse_kind(query.kind.as_deref())?,
        namespace: query.namespace.filter(|namespace| !namespace.is_empty()),
        name: query.name.filter(|name| !name.is_empty()),
        window: parse_window(query.window.as_deref())?,
        from: parse_resource(query.from.as_deref())?,
        to: parse_resource(query.to.as_deref())?,
    };
    let selection = golden::stat_selection(&request)?;
    let queries = golden::stat_queries(&selection, request.window);
    let results = state.metrics.evaluate_all(&queries).await?;
    let mut rows = golden::stat_rows(&selection, &results, request.window);
    // The inbound view of workloads and namespaces lists every one the
    // catalog has, with or without traffic.
    let workloads = sorted_workloads(&state, request.namespace.as_deref());
    if request.from.is_none() && request.to.is_none() {
        for workload in workloads.iter().filter(|workload| workload.spec.meshed) {
            let namespace = namespace_of(workload).to_string();
            let key = match request.kind {
                ResourceKind::Workload => (namespace, name_of(workload).to_string()),
                ResourceKind::Namespace => (namespace.clone(), namespace),
                _ => continue,
            };
            if request.name.as_ref().is_none_or(|name| *name == key.1) {
                rows.entry(key).or_default();
            }
        }
    }
    let rows = rows
        .into_iter()
        .map(|((namespace, name), golden)| {
            let (meshed, running) = instance_counts(&state, request.kind, &namespace, &name);
            StatRow {
                kind: request.kind,
                namespace,
                name,
                meshed,
                running,
                success: golden.success,
                failure: golden.failure,
                success_rate: golden.success_rate,
                rps: golden.rps,
                latency_ms: golden.latency_ms,
                tcp_connections: golden.tcp_connections,
                read_bytes_per_sec: golden.read_bytes_per_sec,
                write_bytes_per_sec: golden.write_bytes_per_sec,
            }
        })
        .collect();
    Ok(Json(StatResponse {
        window_seconds: request.window.as_secs(),
        rows,
    }))
}

/// How many of a row's workload instances are meshed, and how many of
/// those answered the last scrape (`None` for authorities).
fn instance_counts(
    state: &WebState,
    kind: ResourceKind,
    namespace: &str,
    name: &str,
) -> (Option<u64>, Option<u64>) {
    let workloads = sorted_workloads(state, Some(namespace));
    let service = (kind == ResourceKind::Service).then(|| {
        state
            .catalog
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .service(&ServiceName::new(namespace, name))
            .cloned()
    });
    let selected: Vec<&Workload> = workloads
        .iter()
        .filter(|workload| match kind {
            ResourceKind::Workload => name_of(workload) == name,
            ResourceKind::Namespace => true,
            ResourceKind::Service => service
                .as_ref()
                .and_then(Option::as_ref)
                .is_some_and(|service| selects(service, workload)),
            ResourceKind::Authority => false,
        })
        .collect();
    if kind == ResourceKind::Authority {
        return (None, None);
    }
    let meshed: Vec<&&Workload> = selected
        .iter()
        .filter(|workload| workload.spec.meshed)
        .collect();
    let running = meshed
        .iter()
        .filter(|workload| {
            state
                .metrics
                .statuses
                .get(&WorkloadKey {
                    namespace: namespace_of(workload).to_string(),
                    name: name_of(workload).to_string(),
                })
                .is_some_and(|status| status.up)
        })
        .count();
    // Prometheus scrapes, not the controller: it does not know who answered.
    let running = (state.metrics.source == MetricsSource::Scrape).then_some(running as u64);
    (Some(meshed.len() as u64), running)
}

/// `/api/routes`'s query string.
#[derive(Debug, Default, Deserialize)]
struct RoutesQuery {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    window: Option<String>,
    to: Option<String>,
}

fn service_host(namespace: &str, name: &str) -> String {
    ServiceName::new(namespace, name).fully_qualified(DEFAULT_CLUSTER_DOMAIN)
}

async fn routes(
    State(state): State<Arc<WebState>>,
    Query(query): Query<RoutesQuery>,
) -> Result<Json<RoutesResponse>, ApiError> {
    let kind = parse_kind(query.kind.as_deref())?;
    let window = parse_window(query.window.as_deref())?;
    let namespace = query
        .namespace
        .filter(|namespace| !namespace.is_empty())
        .ok_or_else(|| ApiError::bad_request("namespace is required"))?;
    let name = query
        .name
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    let to = parse_resource(query.to.as_deref())?;
    let mut matchers = Vec::new();
    match (&to, kind) {
        (Some(target), _) => {
            if target.kind != ResourceKind::Service {
                return Err(ApiError::bad_request("routes: to= must be a service"));
            }
            matchers.push(Matcher::equal("direction", "outbound"));
            if kind == ResourceKind::Workload {
                matchers.push(Matcher::equal("namespace", &namespace));
                matchers.push(Matcher::equal("workload", &name));
            }
            matchers.push(Matcher::Host(
                "dst".into(),
                service_host(&target.namespace, &target.name),
            ));
        }
        (None, ResourceKind::Workload) => {
            matchers.push(Matcher::equal("direction", "inbound"));
            matchers.push(Matcher::equal("namespace", &namespace));
            matchers.push(Matcher::equal("workload", &name));
        }
        (None, ResourceKind::Service) => {
            matchers.push(Matcher::equal("direction", "inbound"));
            matchers.push(Matcher::Host("dst".into(), service_host(&namespace, &name)));
        }
        (None, _) => {
            return Err(ApiError::bad_request(
                "routes: kind must be workload or service",
            ));
        }
    }
    let queries = golden::route_queries(&matchers, window);
    let results = state.metrics.evaluate_all(&queries).await?;
    Ok(Json(RoutesResponse {
        window_seconds: window.as_secs(),
        rows: golden::route_rows(&results, window),
    }))
}

/// `/api/edges`'s query string.
#[derive(Debug, Default, Deserialize)]
struct EdgesQuery {
    kind: Option<String>,
    namespace: Option<String>,
    window: Option<String>,
}

async fn edges(
    State(state): State<Arc<WebState>>,
    Query(query): Query<EdgesQuery>,
) -> Result<Json<EdgesResponse>, ApiError> {
    if let Some(kind) = query.kind.as_deref()
        && ResourceKind::parse(kind) != Some(ResourceKind::Workload)
    {
        return Err(ApiError::bad_request("edges: kind must be workload"));
    }
    let window = parse_window(query.window.as_deref())?;
    let namespace = query.namespace.filter(|namespace| !namespace.is_empty());
    let groups = state
        .metrics
        .evaluate(&golden::edge_query(namespace.as_deref(), window))
        .await?;
    let workloads = sorted_workloads(&state, None);
    let identity_of = |end: &EdgeEnd| {
        let domain = state.identity_domain.as_ref()?;
        let workload = workloads.iter().find(|workload| {
            namespace_of(workload) == end.namespace && name_of(workload) == end.name
        })?;
        Some(domain.dns_name(&WorkloadIdentity::new(
            end.namespace.clone(),
            workload.service_account(),
        )))
    };
    Ok(Json(EdgesResponse {
        window_seconds: window.as_secs(),
        rows: golden::edge_rows(&groups, window, identity_of),
    }))
}

/// Subject and validity of a DER certificate.
fn certificate_summary(der: &[u8]) -> Option<(String, i64, i64, X509Certificate<'_>)> {
    let (_, certificate) = X509Certificate::from_der(der).ok()?;
    let validity = certificate.validity();
    Some((
        certificate.subject().to_string(),
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
        certificate,
    ))
}

async fn identity(State(state): State<Arc<WebState>>) -> Json<IdentityInfo> {
    let (Some(domain), Some(authority)) = (&state.identity_domain, &state.identity_authority)
    else {
        return Json(IdentityInfo::default());
    };
    let Some(current) = authority.current() else {
        return Json(IdentityInfo {
            enabled: true,
            trust_domain: Some(domain.trust_domain.to_string()),
            ..IdentityInfo::default()
        });
    };
    let anchors: Vec<_> = current
        .trust_anchors_der()
        .iter()
        .filter_map(|der| certificate_summary(der))
        .collect();
    let issuer =
        certificate_summary(current.issuer_der()).map(|(subject, from, to, certificate)| {
            let issued_by_anchor = anchors.iter().any(|(_, _, _, anchor)| {
                certificate
                    .verify_signature(Some(anchor.public_key()))
                    .is_ok()
            });
            IssuerCertificate {
                subject,
                not_before_unix: from,
                not_after_unix: to,
                issued_by_anchor,
            }
        });
    let trust_anchors = anchors
        .into_iter()
        .map(|(subject, from, to, _)| Certificate {
            subject,
            not_before_unix: from,
            not_after_unix: to,
        })
        .collect();
    Json(IdentityInfo {
        enabled: true,
        trust_domain: Some(domain.trust_domain.to_string()),
        trust_anchors,
        issuer,
        leaf_lifetime_seconds: state.leaf_lifetime.map(|lifetime| lifetime.as_secs()),
    })
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

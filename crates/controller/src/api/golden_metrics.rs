//! `GET /api/stat`, `/api/routes` and `/api/edges`: golden metrics per
//! resource, per ServiceProfile route and per edge, from
//! [`crate::metrics_api`] (its pure `golden` module builds the queries and
//! rows; this file parses the query string and adds what the catalog knows).

use std::sync::{Arc, PoisonError};

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use weft_api::{EdgesResponse, RouteProfile, RoutesResponse, StatResponse, StatRow};
use weft_core::names::{DEFAULT_CLUSTER_DOMAIN, ServiceName};
use weft_core::service::selects;
use weft_core::workload::Workload;

use super::{
    ApiError, WebState, check_namespace, name_of, namespace_of, parse_window, sorted_workloads,
    traffic_splits,
};
use crate::identity::WorkloadIdentity;
use crate::metrics_api::golden::{self, EdgeEnd, Resource, ResourceKind, StatRequest};
use crate::metrics_api::query::Matcher;
use crate::metrics_api::{MetricsSource, WorkloadKey};

/// `/api/stat`'s query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StatQuery {
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

/// `GET /api/stat`: golden metrics per resource (inbound view, `to=` or `from=`).
pub(super) async fn stat(
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
    check_namespace(&state, request.namespace.as_deref())?;
    let mut selection = golden::stat_selection(&request)?;
    if let Some(target) = &request.to {
        address_apex(&state, target, &mut selection);
    }
    let queries = golden::stat_queries(&selection, request.window);
    let results = state.metrics.evaluate_all(&queries).await?;
    let mut rows = golden::stat_rows(&selection, &results, request.window);
    // A TrafficSplit's apex is never a `dst_service`: its row is what its
    // callers addressed to it, whichever leaf served them.
    if request.kind == ResourceKind::Service && request.from.is_none() && request.to.is_none() {
        rows.extend(
            traffic_splits::apex_rows(
                &state,
                request.namespace.as_deref(),
                request.name.as_deref(),
                request.window,
            )
            .await?,
        );
    }
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
                authz_allowed: golden.authz_allowed,
                authz_denied: golden.authz_denied,
            }
        })
        .collect();
    Ok(Json(StatResponse {
        window_seconds: request.window.as_secs(),
        rows,
    }))
}

/// `to=service/NS/APEX` of a TrafficSplit's apex: the sources' traffic
/// addressed to it (`authority`), not to a `dst_service` none of it has.
fn address_apex(state: &WebState, target: &Resource, selection: &mut golden::Selection) {
    if target.kind != ResourceKind::Service {
        return;
    }
    let catalog = state.catalog.lock().unwrap_or_else(PoisonError::into_inner);
    let is_apex = catalog
        .traffic_splits(Some(&target.namespace))
        .iter()
        .any(|split| split.spec.service == target.name);
    if !is_apex {
        return;
    }
    let host =
        ServiceName::new(&target.namespace, &target.name).fully_qualified(catalog.cluster_domain());
    selection
        .matchers
        .retain(|matcher| !matches!(matcher.label(), "dst_namespace" | "dst_service"));
    selection
        .matchers
        .push(Matcher::Host("authority".into(), host));
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
pub(super) struct RoutesQuery {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    window: Option<String>,
    to: Option<String>,
}

fn service_host(namespace: &str, name: &str) -> String {
    ServiceName::new(namespace, name).fully_qualified(DEFAULT_CLUSTER_DOMAIN)
}

/// `GET /api/routes`: golden metrics per ServiceProfile route.
pub(super) async fn routes(
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
    check_namespace(&state, Some(&namespace))?;
    let profiles = route_profiles(&state, kind, &namespace, &name, to.as_ref())?;
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
        profiles,
    }))
}

/// The ServiceProfiles a routes query reads, as Linkerd picks them: with
/// `to=` the target service's (the caller's namespace first, then the
/// service's); a service's own; a workload's: those of the services that
/// select it. A resource the mesh file does not have is a 404.
fn route_profiles(
    state: &WebState,
    kind: ResourceKind,
    namespace: &str,
    name: &str,
    to: Option<&Resource>,
) -> Result<Vec<RouteProfile>, ApiError> {
    let catalog = state.catalog.lock().unwrap_or_else(PoisonError::into_inner);
    let domain = catalog.cluster_domain().to_string();
    let profile = |namespaces: &[&str], service: &ServiceName| {
        let fqdn = service.fully_qualified(&domain);
        namespaces.iter().find_map(|profile_namespace| {
            catalog
                .service_profile(profile_namespace, &fqdn)
                .map(|profile| RouteProfile {
                    namespace: profile_namespace.to_string(),
                    name: fqdn.clone(),
                    routes: profile
                        .spec
                        .routes
                        .iter()
                        .map(|route| route.name.clone())
                        .collect(),
                })
        })
    };
    let service_must_exist = |service: &ServiceName| {
        if catalog.service_exists(service) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "service {}/{} does not exist in the mesh file",
                service.namespace, service.name
            )))
        }
    };
    let workload = catalog
        .workloads()
        .into_iter()
        .find(|workload| namespace_of(workload) == namespace && name_of(workload) == name);
    match kind {
        ResourceKind::Workload if workload.is_none() => {
            return Err(ApiError::not_found(format!(
                "workload {namespace}/{name} does not exist in the mesh file"
            )));
        }
        ResourceKind::Service => service_must_exist(&ServiceName::new(namespace, name))?,
        _ => {}
    }
    if let Some(target) = to {
        if target.kind != ResourceKind::Service {
            return Ok(Vec::new());
        }
        let service = ServiceName::new(&target.namespace, &target.name);
        service_must_exist(&service)?;
        return Ok(profile(&[namespace, &target.namespace], &service)
            .into_iter()
            .collect());
    }
    let services: Vec<ServiceName> = match (kind, &workload) {
        (ResourceKind::Workload, Some(workload)) => catalog
            .services_in(namespace)
            .iter()
            .filter(|service| selects(service, workload))
            .filter_map(|service| service.metadata.name.clone())
            .map(|service| ServiceName::new(namespace, &service))
            .collect(),
        _ => vec![ServiceName::new(namespace, name)],
    };
    Ok(services
        .iter()
        .filter_map(|service| profile(&[namespace], service))
        .collect())
}

/// `/api/edges`'s query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct EdgesQuery {
    kind: Option<String>,
    namespace: Option<String>,
    window: Option<String>,
}

/// `GET /api/edges`: who talks to whom, from the sources' outbound metrics.
pub(super) async fn edges(
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
    check_namespace(&state, namespace.as_deref())?;
    let results = state
        .metrics
        .evaluate_all(&golden::edge_queries(namespace.as_deref(), window))
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
        rows: golden::edge_rows(&results, window, identity_of),
    }))
}

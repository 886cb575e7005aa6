//! `GET /api/trafficsplits` (what `weft stat ts` shows: apex, leaf, weight,
//! success, rps, latency) and the apex service's row of `/api/stat`.
//!
//! ```text
//! catalog TrafficSplits ─► per split: apex FQDN ─► golden::apex_selection(apex, by leaf)
//!   ─► stat_queries ─► backend ─► stat_rows keyed (dst_namespace, dst_service)
//!   ─► one row per backend of the split, its weight from the split
//! ```
//!
//! The proxies label traffic to a split's apex with the apex as `authority`
//! and the leaf that served it as `dst_service` (the leaf's endpoints' set
//! labels). So `kind=service` rows, read by `dst_service`, never name the
//! apex: [`apex_rows`] gives it its own row, the sum of what its leaves
//! received from callers addressing it.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use weft_api::{TrafficSplitRow, TrafficSplitsResponse};
use weft_core::names::ServiceName;
use weft_core::split::TrafficSplit;

use super::{ApiError, WebState, check_namespace, parse_window};
use crate::metrics_api::golden::{self, Golden, RowKey};

/// `/api/trafficsplits`'s query string.
#[derive(Debug, Default, Deserialize)]
pub(super) struct TrafficSplitsQuery {
    namespace: Option<String>,
    name: Option<String>,
    window: Option<String>,
}

/// The catalog's splits, of one namespace and name when given.
fn splits(state: &WebState, namespace: Option<&str>, name: Option<&str>) -> Vec<TrafficSplit> {
    state
        .catalog
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .traffic_splits(namespace)
        .into_iter()
        .filter(|split| name.is_none_or(|wanted| split.metadata.name.as_deref() == Some(wanted)))
        .collect()
}

/// A split's namespace and its apex service's FQDN.
fn apex_of(state: &WebState, split: &TrafficSplit) -> (String, String) {
    let namespace = split
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let domain = state
        .catalog
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .cluster_domain()
        .to_string();
    let host = ServiceName::new(&namespace, &split.spec.service).fully_qualified(&domain);
    (namespace, host)
}

/// Golden metrics of traffic addressed to `apex_host`, per leaf (`by_leaf`)
/// or in all (keyed by namespace).
async fn apex_golden(
    state: &WebState,
    apex_host: &str,
    by_leaf: bool,
    window: Duration,
) -> Result<BTreeMap<RowKey, Golden>, ApiError> {
    let selection = golden::apex_selection(apex_host, by_leaf);
    let queries = golden::stat_queries(&selection, window);
    let results = state.metrics.evaluate_all(&queries).await?;
    Ok(golden::stat_rows(&selection, &results, window))
}

/// `GET /api/trafficsplits`: one row per split and leaf.
pub(super) async fn traffic_splits(
    State(state): State<Arc<WebState>>,
    Query(query): Query<TrafficSplitsQuery>,
) -> Result<Json<TrafficSplitsResponse>, ApiError> {
    let window = parse_window(query.window.as_deref())?;
    let namespace = query.namespace.filter(|namespace| !namespace.is_empty());
    let name = query.name.filter(|name| !name.is_empty());
    check_namespace(&state, namespace.as_deref())?;
    let mut rows = Vec::new();
    for split in splits(&state, namespace.as_deref(), name.as_deref()) {
        let (split_namespace, apex_host) = apex_of(&state, &split);
        let leaves = apex_golden(&state, &apex_host, true, window).await?;
        for backend in &split.spec.backends {
            let golden = leaves
                .get(&(split_namespace.clone(), backend.service.clone()))
                .cloned()
                .unwrap_or_default();
            rows.push(TrafficSplitRow {
                namespace: split_namespace.clone(),
                name: split.metadata.name.clone().unwrap_or_default(),
                apex: split.spec.service.clone(),
                leaf: backend.service.clone(),
                weight: backend.weight.to_string(),
                success: golden.success,
                failure: golden.failure,
                success_rate: golden.success_rate,
                rps: golden.rps,
                latency_ms: golden.latency_ms,
            });
        }
    }
    Ok(Json(TrafficSplitsResponse {
        window_seconds: window.as_secs(),
        rows,
    }))
}

/// The rows of the apex services of the splits in `namespace` (all when
/// absent), `name` only when given: each the total its callers sent to it,
/// whichever leaf served them.
pub(super) async fn apex_rows(
    state: &WebState,
    namespace: Option<&str>,
    name: Option<&str>,
    window: Duration,
) -> Result<BTreeMap<RowKey, Golden>, ApiError> {
    let mut rows = BTreeMap::new();
    for split in splits(state, namespace, None) {
        if name.is_some_and(|wanted| wanted != split.spec.service) {
            continue;
        }
        let (split_namespace, apex_host) = apex_of(state, &split);
        let total = apex_golden(state, &apex_host, false, window).await?;
        let golden = total
            .get(&(split_namespace.clone(), split_namespace.clone()))
            .cloned()
            .unwrap_or_default();
        rows.insert((split_namespace, split.spec.service.clone()), golden);
    }
    Ok(rows)
}

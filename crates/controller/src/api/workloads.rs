//! `GET /api/workloads` and `GET /api/sd`: what the controller knows of
//! every workload and its proxy, and the proxies as Prometheus HTTP service
//! discovery targets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use weft_api::{ProxyAddresses, Scrape, TargetGroup, WorkloadInfo, WorkloadsResponse};
use weft_core::workload::Workload;

use super::{WebState, name_of, namespace_of, sorted_workloads};
use crate::identity::WorkloadIdentity;
use crate::metrics_api::WorkloadKey;
use crate::proxy_address::proxy_listeners;

/// `?namespace=`: limits a listing to one namespace.
#[derive(Debug, Default, Deserialize)]
pub(super) struct NamespaceQuery {
    namespace: Option<String>,
}

/// `GET /api/workloads`: every workload, its proxy and its last scrape.
pub(super) async fn workloads(
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
    // A meshed workload without an address still has a proxy, listening nowhere known.
    let proxy = workload.proxy_settings().map(|_| {
        let listeners = proxy_listeners(workload);
        ProxyAddresses {
            admin: listeners.map(|listeners| listeners.admin.to_string()),
            tap: listeners.map(|listeners| listeners.tap.to_string()),
            inbound: listeners.map(|listeners| listeners.inbound.to_string()),
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

/// Prometheus HTTP service discovery: one target group per meshed
/// workload's proxy admin address.
pub(super) async fn service_discovery(
    State(state): State<Arc<WebState>>,
) -> Json<Vec<TargetGroup>> {
    let groups = sorted_workloads(&state, None)
        .iter()
        .filter_map(|workload| {
            let admin = proxy_listeners(workload)?.admin;
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

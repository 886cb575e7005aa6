//! `GET /api/authz?namespace=NS&workload=NAME`: who may reach each port of a
//! workload, computed by the same catalog answer that feeds
//! InboundServerPolicies (the workload's declared ports and the ports its
//! Servers select).

use std::sync::{Arc, PoisonError};

use axum::Json;
use axum::extract::{Query, State};
use weft_api::{AuthzEntry, AuthzResponse, PortAuthz};
use weft_core::policy::authentication::{IdentityMatch, NetworkMatch};
use weft_core::policy::effective::{
    Authorization, AuthorizationRef, ClientAuthentication, ServerRef, workload_default_policy,
};
use weft_core::policy::network::Cidr;

use super::{ApiError, WebState};
use crate::catalog::PortTarget;

/// The query.
#[derive(Debug, serde::Deserialize)]
pub(super) struct AuthzQuery {
    namespace: Option<String>,
    workload: Option<String>,
}

/// `GET /api/authz`.
pub(super) async fn authz(
    State(state): State<Arc<WebState>>,
    Query(query): Query<AuthzQuery>,
) -> Result<Json<AuthzResponse>, ApiError> {
    let (Some(namespace), Some(workload)) = (query.namespace, query.workload) else {
        return Err(ApiError::bad_request(
            "namespace and workload are required (/api/authz?namespace=NS&workload=NAME)",
        ));
    };
    let catalog = state.catalog.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(found) = catalog.workload(&namespace, &workload) else {
        return Err(ApiError::not_found(format!(
            "workload {namespace}/{workload} does not exist"
        )));
    };
    let controller_default = catalog.policy_settings().default_policy;
    let default_policy = workload_default_policy(Some(found), controller_default, &mut Vec::new());
    let from_annotation = found
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|annotations| {
            annotations
                .get(weft_core::policy::default_policy::DEFAULT_INBOUND_POLICY_ANNOTATION)
                .is_some_and(|text| text.trim() == default_policy.as_str())
        });
    let port_names: Vec<(u16, Option<String>)> = found
        .spec
        .ports
        .iter()
        .map(|port| (port.port, port.name.clone()))
        .collect();
    let ports = catalog
        .inbound_ports(&namespace, &workload)
        .into_iter()
        .map(|port| {
            let answer = catalog.inbound_policy(&PortTarget {
                namespace: namespace.clone(),
                workload: workload.clone(),
                port,
            });
            let policy = &answer.policy;
            let mut authorizations: Vec<AuthzEntry> = policy
                .authorizations
                .iter()
                .map(|authorization| entry(authorization, None))
                .collect();
            for route in &policy.routes {
                authorizations.extend(
                    route
                        .authorizations
                        .iter()
                        .map(|authorization| entry(authorization, Some(route.name.clone()))),
                );
            }
            PortAuthz {
                port,
                port_name: port_names
                    .iter()
                    .find(|(number, _)| *number == port)
                    .and_then(|(_, name)| name.clone()),
                server: match &policy.server {
                    ServerRef::Server(name) => Some(name.clone()),
                    ServerRef::Default(_) => None,
                },
                protocol: policy.protocol.as_str().to_string(),
                authorizations,
                routes: policy
                    .routes
                    .iter()
                    .map(|route| route.name.clone())
                    .collect(),
            }
        })
        .collect();
    Ok(Json(AuthzResponse {
        namespace,
        workload,
        default_policy: if from_annotation {
            format!("{default_policy} (annotation)")
        } else {
            format!("{default_policy} (controller default)")
        },
        ports,
    }))
}

/// One authorization as `/api/authz` shows it.
fn entry(authorization: &Authorization, route: Option<String>) -> AuthzEntry {
    let (kind, name) = match &authorization.reference {
        AuthorizationRef::Policy(name) => ("AuthorizationPolicy".to_string(), name.clone()),
        AuthorizationRef::Default(policy) => ("default".to_string(), policy.as_str().to_string()),
    };
    AuthzEntry {
        kind,
        name,
        route,
        clients: clients(authorization),
    }
}

/// `identity <name>`, `authenticated`, `unauthenticated`, and
/// `network <cidr> [except <cidr>,...]` unless every network is admitted.
fn clients(authorization: &Authorization) -> Vec<String> {
    let mut clients: Vec<String> = match &authorization.authentication {
        ClientAuthentication::Unauthenticated => vec!["unauthenticated".to_string()],
        ClientAuthentication::MeshTls(matches) => matches
            .iter()
            .map(|pattern| match pattern {
                IdentityMatch::Suffix(parts) if parts.is_empty() => "authenticated".to_string(),
                other => format!("identity {other}"),
            })
            .collect(),
    };
    let everywhere = [
        NetworkMatch::all(Cidr::ALL_V4),
        NetworkMatch::all(Cidr::ALL_V6),
    ];
    if authorization.networks != everywhere {
        clients.extend(authorization.networks.iter().map(|network| {
            if network.except.is_empty() {
                format!("network {}", network.net)
            } else {
                let except: Vec<String> = network.except.iter().map(ToString::to_string).collect();
                format!("network {} except {}", network.net, except.join(","))
            }
        }));
    }
    clients
}

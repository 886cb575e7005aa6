//! Inbound HTTP authorization, per request: the port's current policy
//! (read for every request, so a change applies to open connections at
//! once) decides whether the client may send this request. Denied: the
//! request never reaches the app; the caller answers 403 (gRPC:
//! `grpc-status: 7`) with `l5d-proxy-error: unauthorized request on route`,
//! through the tap like any response.
//!
//! Requests are authorized by the Server's authorizations. Per-route
//! authorizations need the route matcher; until it is wired in, the route
//! label is the policy's only route when it has exactly one, else
//! Linkerd's `default` route, and route-level authorizations grant nothing
//! (fail closed).

use crate::context::ConnectionContext;
use crate::http::errors::ProxyError;
use crate::metrics::authz::{AuthzEvent, AuthzLabels};
use crate::metrics::labels::TargetLabels;
use crate::policy::inbound::server::default_route_labels;
use crate::policy::inbound::{Client, ClientTls, Decision, authorize};
use std::sync::Arc;

/// Authorizes one inbound request to `target`; counts the decision.
/// `Ok` without a policy (outbound connections).
pub(crate) fn request(
    context: &ConnectionContext,
    target: &Arc<TargetLabels>,
) -> Result<(), ProxyError> {
    let Some(watch) = context.inbound_policy.as_ref() else {
        return Ok(());
    };
    let policy = watch.borrow().clone();
    let client = Client {
        addr: context.client_addr.ip(),
        tls: ClientTls::from_identity(context.client_identity.as_deref()),
    };
    let route = match policy.routes.as_slice() {
        [only] => only.labels.clone(),
        _ => default_route_labels(),
    };
    let metrics = &context.proxy.metrics.authz;
    match authorize(&policy.authorizations, &client) {
        Decision::Allow {
            authorization,
            audit,
        } => {
            let labels = AuthzLabels {
                target: target.clone(),
                server: policy.labels.clone(),
                route: Some(route),
                authz: Some(authorization.labels.clone()),
            };
            metrics.record(AuthzEvent::HttpAllow, &labels);
            if audit {
                context.proxy.log_traffic_error(
                    context.direction,
                    context.client_addr,
                    "request allowed by audit",
                    &format_args!("server {}", policy.labels.resource.name),
                );
            }
            Ok(())
        }
        Decision::Deny => {
            let labels = AuthzLabels {
                target: target.clone(),
                server: policy.labels.clone(),
                route: Some(route),
                authz: None,
            };
            metrics.record(AuthzEvent::HttpDeny, &labels);
            Err(ProxyError::Unauthorized)
        }
    }
}

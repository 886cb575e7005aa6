//! Inbound HTTP authorization, per request: the port's current policy
//! (read for every request, so a change applies to open connections at
//! once) picks the request's route (HTTPRoute or GRPCRoute by the shared
//! matcher; Linkerd's default route, with the Server's authorizations, when
//! the policy lists none) and the route's authorizations decide. Denied:
//! 403 (gRPC: `grpc-status: 7`) with `l5d-proxy-error: unauthorized request
//! on route`; no route: 404 (gRPC: 5). Either way the request never reaches
//! the app, and the answer goes through the tap like any response.

use crate::context::ConnectionContext;
use crate::http::errors::ProxyError;
use crate::metrics::authz::{AuthzEvent, AuthzLabels};
use crate::metrics::labels::TargetLabels;
use crate::policy::inbound::{Client, ClientTls, RequestDecision, authorize_request};
use crate::policy::route_match::RequestView;
use std::sync::Arc;

/// Authorizes one inbound request to `target`; counts the decision.
/// `Ok` without a policy (outbound connections).
pub(crate) fn request<B>(
    context: &ConnectionContext,
    request: &http::Request<B>,
    target: &Arc<TargetLabels>,
) -> Result<(), ProxyError> {
    let Some(port) = context.inbound_policy.as_ref() else {
        return Ok(());
    };
    let policy = port.watch.borrow().clone();
    let client = Client {
        addr: context.client_addr.ip(),
        tls: ClientTls::from_identity(context.client_identity.as_deref()),
    };
    let metrics = &context.proxy.metrics.authz;
    match authorize_request(&policy, &RequestView::of(request), &client) {
        RequestDecision::Allow {
            route,
            authorization,
            audit,
        } => {
            let labels = AuthzLabels {
                target: target.clone(),
                server: policy.labels.clone(),
                route: Some(route.clone()),
                authz: Some(authorization.labels.clone()),
            };
            metrics.record_cached(&port.allowed, AuthzEvent::HttpAllow, &labels);
            if audit {
                context.proxy.log_traffic_error(
                    context.direction,
                    context.client_addr,
                    "request allowed by audit",
                    &format_args!(
                        "server {} route {}",
                        policy.labels.resource.name, route.name
                    ),
                );
            }
            Ok(())
        }
        RequestDecision::Deny { route } => {
            let labels = AuthzLabels {
                target: target.clone(),
                server: policy.labels.clone(),
                route: Some(route.clone()),
                authz: None,
            };
            metrics.record(AuthzEvent::HttpDeny, &labels);
            Err(ProxyError::Unauthorized)
        }
        RequestDecision::NoRoute => Err(ProxyError::NoRoute),
    }
}

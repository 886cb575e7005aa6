//! Inbound policy: who may reach each inbound port (Linkerd's
//! `io.linkerd.proxy.inbound.InboundServerPolicies`), and the decision for
//! one client.
//!
//! ```text
//! watch (WatchPort per port, default policy until answered)
//!   └─► convert (protobuf → ServerPolicy, once per answer)
//!         └─► authorize (client address, TLS, identity × authorizations → allow | deny)
//! ```
//!
//! Enforced by [`crate::inbound_authz`] (TCP, at accept and on policy
//! changes) and [`crate::http::authorize`] (HTTP, per request).

pub(crate) mod authorize;
pub(crate) mod convert;
pub(crate) mod server;
pub(crate) mod watch;

#[cfg(test)]
mod tests;

pub(crate) use authorize::{
    Client, ClientTls, Decision, RequestDecision, authorize, authorize_request,
};
pub(crate) use server::{Protocol, ServerPolicy};
pub(crate) use watch::{InboundPolicies, PolicyWatch};

use crate::metrics::HandleCache;
use crate::metrics::authz::AuthzLabels;
use prometheus_client::metrics::counter::Counter;

/// One HTTP connection's view of its port's policy: the policy as it
/// changes (read per request), and the allow counter its requests last
/// used.
pub(crate) struct PortPolicy {
    /// The port's policy.
    pub watch: PolicyWatch,
    /// The `inbound_http_authz_allow_total` handle last used.
    pub allowed: HandleCache<AuthzLabels, Counter>,
}

impl PortPolicy {
    /// A connection's view of `watch`.
    pub(crate) fn new(watch: PolicyWatch) -> PortPolicy {
        PortPolicy {
            watch,
            allowed: HandleCache::default(),
        }
    }
}

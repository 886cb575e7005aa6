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

//! The policy gRPC services linkerd2-proxy (and weft-proxy) ask:
//! `io.linkerd.proxy.inbound.InboundServerPolicies` (GetPort, WatchPort)
//! and `io.linkerd.proxy.outbound.OutboundPolicies` (Get, Watch) over the
//! catalog's answers — the only modules that speak policy protobuf.
//!
//! ```text
//! proxy ──PortSpec{workload: {"ns":..,"pod":..}, port}──► inbound.rs (tonic service)
//!        translate::port_target (malformed: INVALID_ARGUMENT)
//!        catalog.subscribe_inbound(ns, workload, port) ─► watch: a new answer only when it changed
//!        translate::server (pure) ─► inbound::Server, first at once, then one per change
//! proxy ──TrafficSpec──► outbound.rs ─► outbound_translate (pure) ─► OutboundPolicy
//! ```
//!
//! Served on the Destination listener (one tonic server for Destination and
//! the policy services) and, with `--policy-addr`, on a listener of its own.
//! Streams count against the same limiter as Destination streams
//! (`--destination-max-streams-per-client`, `--destination-max-streams`).
//!
//! | module                 | what it is |
//! |------------------------|------------|
//! | [`translate`]          | pure: workload string → port target, catalog answer → `inbound::Server` |
//! | [`inbound`]            | InboundServerPolicies: GetPort, WatchPort streams, metrics |
//! | [`outbound`]           | `io.linkerd.proxy.outbound.OutboundPolicies` (Get, Watch): the tonic service |
//! | [`outbound_translate`] | pure: TrafficSpec → target, catalog answer → `OutboundPolicy` |
//! | [`route_proto`]        | pure: route matches, header modifiers, redirects as protobuf (both answers) |

pub mod inbound;
pub mod outbound;
pub mod outbound_translate;
pub mod route_proto;
pub mod translate;

use std::future::Future;

use tonic::transport::server::Router;

pub use inbound::{InboundPolicyMetrics, InboundPolicyService};
pub use outbound::OutboundPolicyService;

use crate::incoming::{GrpcLimits, GrpcListener};

/// The policy services' gRPC bounds: the Destination server's (a request
/// is one small PortSpec or TrafficSpec).
pub const GRPC_LIMITS: GrpcLimits = GrpcLimits {
    streams_per_connection: 1_000,
    header_list_bytes: 16 * 1024,
    message_bytes: 16 * 1024,
};

/// Why the `--policy-addr` server stopped.
#[derive(Debug, thiserror::Error)]
pub enum PolicyServerError {
    /// The gRPC transport failed (accepting connections).
    #[error("policy server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The policy services, added to the Destination listener's server and
/// served on `--policy-addr`.
#[derive(Debug, Clone)]
pub struct PolicyServices {
    /// InboundServerPolicies.
    pub inbound: InboundPolicyService,
    /// OutboundPolicies.
    pub outbound: OutboundPolicyService,
}

impl PolicyServices {
    /// Adds the policy services to a tonic server.
    pub fn add_to(self, router: Router) -> Router {
        router
            .add_service(self.inbound.into_server())
            .add_service(self.outbound.server(GRPC_LIMITS.message_bytes))
    }

    /// Serves only the policy services on `listener` (`--policy-addr`)
    /// until `shutdown` completes.
    pub async fn serve(
        self,
        listener: GrpcListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), PolicyServerError> {
        let incoming = listener.incoming();
        let router = GRPC_LIMITS.server().add_service(self.inbound.into_server());
        router
            .add_service(self.outbound.server(GRPC_LIMITS.message_bytes))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }
}

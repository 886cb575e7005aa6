//! The policy gRPC services: `io.linkerd.proxy.inbound.InboundServerPolicies`
//! (GetPort, WatchPort) over the catalog's inbound answers — the only
//! module that speaks policy protobuf.
//!
//! ```text
//! proxy ──PortSpec{workload: {"ns":..,"pod":..}, port}──► inbound.rs (tonic service)
//!        translate::port_target (malformed: INVALID_ARGUMENT)
//!        catalog.subscribe_inbound(ns, workload, port) ─► watch: a new answer only when it changed
//!        translate::server (pure) ─► inbound::Server, first at once, then one per change
//! ```
//!
//! Served on the Destination listener (one tonic server for Destination and
//! the policy services) and, with `--policy-addr`, on a listener of its own.
//! Streams count against the same limiter as Destination streams
//! (`--destination-max-streams-per-client`, `--destination-max-streams`).
//!
//! | module        | what it is |
//! |---------------|------------|
//! | [`translate`] | pure: workload string → port target, catalog answer → `inbound::Server` |
//! | [`inbound`]   | the tonic service: GetPort, WatchPort streams, metrics |

pub mod inbound;
pub mod translate;

use std::future::Future;

use tonic::transport::server::Router;

pub use inbound::{InboundPolicyMetrics, InboundPolicyService};

use crate::incoming::{GrpcLimits, GrpcListener};

/// The policy services' gRPC bounds: the Destination server's (a request
/// is one small PortSpec).
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
}

impl PolicyServices {
    /// Adds the policy services to a tonic server.
    pub fn add_to(self, router: Router) -> Router {
        router.add_service(self.inbound.into_server())
    }

    /// Serves only the policy services on `listener` (`--policy-addr`)
    /// until `shutdown` completes.
    pub async fn serve(
        self,
        listener: GrpcListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), PolicyServerError> {
        let incoming = listener.incoming();
        GRPC_LIMITS
            .server()
            .add_service(self.inbound.into_server())
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }
}

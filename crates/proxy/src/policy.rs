//! The policy APIs' channel: where the proxy asks
//! `io.linkerd.proxy.inbound.InboundServerPolicies` (who may reach each
//! inbound port, and its routes) and `io.linkerd.proxy.outbound.OutboundPolicies`
//! (HTTPRoute/GRPCRoute routing of a target), and as which workload.
//!
//! ```text
//! WEFT_PROXY_POLICY_WORKLOAD + WEFT_PROXY_POLICY_SVC_ADDR (else the Destination
//! address) ─► PolicyChannel (lazy gRPC channel, mutual TLS as Destination)
//!   └─ shared by the inbound and outbound policy clients
//! ```
//!
//! Without a workload there is no channel: every inbound port gets
//! `WEFT_PROXY_INBOUND_DEFAULT_POLICY`, and outbound routing is by
//! ServiceProfiles alone.

use std::time::Duration;

use tonic::transport::Channel;

use crate::config::PolicyConfig;
use crate::control::ControlTls;

pub(crate) mod outbound;
pub(crate) mod route_match;

/// The channel to the policy service and the workload the proxy asks for.
#[derive(Clone, Debug)]
pub(crate) struct PolicyChannel {
    /// The lazily connected gRPC channel.
    pub channel: Channel,
    /// The workload string sent with every request
    /// (`{"ns":"<namespace>","pod":"<name>"}`).
    pub workload: String,
}

/// Why the policy channel could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PolicyChannelError {
    /// The policy address is not a `host:port` URI authority.
    #[error("WEFT_PROXY_POLICY_SVC_ADDR {address:?}: {reason}")]
    InvalidAddress {
        /// The address as configured.
        address: String,
        /// Why it was refused.
        reason: String,
    },
}

impl PolicyChannel {
    /// A channel to `config.addr`, connected lazily (the proxy serves while
    /// the controller is down), over `tls` when given. Call it inside a
    /// tokio runtime.
    pub(crate) fn new(
        config: &PolicyConfig,
        tls: Option<ControlTls>,
    ) -> Result<PolicyChannel, PolicyChannelError> {
        let endpoint = crate::control::streaming_endpoint(&config.addr, Duration::from_secs(1))
            .map_err(|reason| PolicyChannelError::InvalidAddress {
                address: config.addr.clone(),
                reason,
            })?;
        Ok(PolicyChannel {
            channel: crate::control::connect_lazy(endpoint, tls),
            workload: config.workload.clone(),
        })
    }
}

pub(crate) mod inbound;

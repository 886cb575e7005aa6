//! The policy gRPC services linkerd2-proxy (and weft-proxy) ask, served on
//! the Destination listener next to Destination (and on `--policy-addr`).
//!
//! | module                 | what it is |
//! |------------------------|------------|
//! | [`outbound`]           | `io.linkerd.proxy.outbound.OutboundPolicies` (Get, Watch): the tonic service |
//! | [`outbound_translate`] | pure: TrafficSpec → target, catalog answer → `OutboundPolicy` |

pub mod outbound;
pub mod outbound_translate;

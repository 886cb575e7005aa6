//! Discovery: what the controller's Destination service says about a target.
//!
//! ```text
//! DiscoveryCache ─► DiscoveryClient ─► one task per lookup, one gRPC stream each
//!   profile(ip:port)      GetProfile ─► convert ─► ProfileWatch   (Lookup<Profile>)
//!   endpoints(fqdn:port)  Get        ─► convert ─► EndpointsWatch (Lookup<KnownEndpoints>
//!                                                                 + Balancer<EndpointMeta>)
//! ```
//!
//! [`convert`] turns protobuf into plain types (the only module reading
//! them), [`client`] runs the streams (reconnecting with [`backoff`], never
//! blocking a caller past the initial timeout), [`cache`] shares lookups per
//! target and drops them when idle. The outbound path
//! ([`crate::routing`]) asks the cache for a target's profile and picks
//! endpoints from the balancer of its `Get` lookups; each endpoint carries
//! its metric labels (`dst_*`) ready for the request metrics.

pub mod backoff;
pub mod cache;
pub mod client;
pub mod convert;
pub mod endpoints;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub use backoff::ExponentialBackoff;
pub use cache::{DEFAULT_IDLE_TIMEOUT, DiscoveryCache};
pub use client::{
    DiscoveryClient, DiscoveryConfig, EndpointMeta, EndpointsWatch, KnownEndpoints, Lookup,
    LookupWatch, ProfileWatch,
};
pub use endpoints::{Endpoint, EndpointLabels, Update};

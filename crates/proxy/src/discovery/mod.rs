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

pub(crate) mod backoff;
pub(crate) mod cache;
pub(crate) mod client;
pub(crate) mod convert;
pub(crate) mod endpoints;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

pub(crate) use cache::DiscoveryCache;
pub(crate) use client::{
    DiscoveryClient, DiscoveryConfig, EndpointMeta, EndpointsWatch, Lookup, ProfileWatch,
};
pub(crate) use endpoints::{Endpoint, EndpointLabels};

//! The profile answer for a `service:port`: fully-qualified name, the
//! ServiceProfile's routes and retry budget (Linkerd's defaults when absent)
//! and the weighted destinations from a TrafficSplit (pure: [`profile_of`]).

use weft_core::names::ServiceName;
use weft_core::profile::{RetryBudget, RouteSpec, ServiceProfile};
use weft_core::split::{TrafficSplit, WeightedDestination, dst_overrides};

/// What the catalog knows about traffic to a `service:port`.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// `<service>.<namespace>.svc.<cluster domain>`.
    pub fully_qualified_name: String,
    /// The service.
    pub service: ServiceName,
    /// The requested port.
    pub port: u16,
    /// Routes in order (first match wins); empty without a ServiceProfile.
    pub routes: Vec<RouteSpec>,
    /// The ServiceProfile's budget, or ratio 0.2, 10/s, ttl 10s.
    pub retry_budget: RetryBudget,
    /// Weighted destinations: the split's backends, the profile's
    /// `dstOverrides`, or the service itself.
    pub dst_overrides: Vec<WeightedDestination>,
    /// Whether the port is opaque (no protocol detection): listed in the
    /// ServiceProfile's `opaquePorts` or the service's
    /// `config.linkerd.io/opaque-ports` annotation.
    pub opaque_protocol: bool,
}

/// The service annotation listing opaque ports, as Linkerd names it.
pub use weft_core::policy::effective::OPAQUE_PORTS_ANNOTATION;

/// The inputs of one profile answer.
#[derive(Debug, Clone, Copy)]
pub struct ProfileSources<'objects> {
    /// The service.
    pub service: &'objects ServiceName,
    /// The requested port.
    pub port: u16,
    /// The ServiceProfile named after the service, if any.
    pub profile: Option<&'objects ServiceProfile>,
    /// The TrafficSplit whose apex is the service, if any.
    pub split: Option<&'objects TrafficSplit>,
    /// The cluster domain (`cluster.local`).
    pub cluster_domain: &'objects str,
    /// The service's `config.linkerd.io/opaque-ports` annotation, if any.
    pub opaque_ports_annotation: Option<&'objects str>,
}

/// Builds the profile answer from its sources.
pub fn profile_of(sources: ProfileSources<'_>) -> Profile {
    let spec = sources.profile.map(|profile| &profile.spec);
    Profile {
        fully_qualified_name: sources.service.fully_qualified(sources.cluster_domain),
        service: sources.service.clone(),
        port: sources.port,
        routes: spec.map(|spec| spec.routes.clone()).unwrap_or_default(),
        retry_budget: spec
            .and_then(|spec| spec.retry_budget.clone())
            .unwrap_or_default(),
        dst_overrides: dst_overrides(
            sources.service,
            sources.port,
            sources.split,
            spec.map(|spec| spec.dst_overrides.as_slice())
                .unwrap_or_default(),
            sources.cluster_domain,
        ),
        opaque_protocol: spec
            .into_iter()
            .flat_map(|spec| spec.opaque_ports.iter().map(String::as_str))
            .chain(sources.opaque_ports_annotation)
            .any(|list| lists_port(list, sources.port)),
    }
}

/// Whether a port list such as `3306,5432`, `4000-4100` or `443` contains
/// `port` (weft-core's, shared with the inbound policy's opaque ports).
pub use weft_core::policy::effective::lists_port;

#[cfg(test)]
mod tests {
    use super::lists_port;

    #[test]
    fn port_lists() {
        let cases: &[(&str, u16, bool)] = &[
            ("3306", 3306, true),
            ("3306", 3307, false),
            ("80, 3306", 3306, true),
            ("4000-4100", 4050, true),
            ("4000-4100", 4101, false),
            ("", 80, false),
            ("http", 80, false),
        ];
        for (list, port, expected) in cases {
            assert_eq!(lists_port(list, *port), *expected, "{list} {port}");
        }
    }
}

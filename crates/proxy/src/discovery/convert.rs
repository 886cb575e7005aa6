//! Pure conversions from Destination protobuf messages to weft's own types.
//!
//! ```text
//! DestinationProfile ─► Profile { name, routes, retry budget, overrides, endpoint }
//! Update             ─► Update::{Add, Remove, NoEndpoints}
//! ```
//!
//! The plain types live where they are used: a profile's routing rules in
//! [`crate::routing::profile`], endpoints in [`super::endpoints`].
//! This is the only place that reads the wire types of `GetProfile` and `Get`
//! answers; everything past it sees plain structs. Rules follow Linkerd
//! (reference §3.2, §3.3, §8.1): route path regexes are anchored, invalid
//! routes are dropped (the rest of the profile still applies), an invalid
//! retry budget is discarded, zero-weight overrides are dropped, and an
//! endpoint's labels are the set-level labels overlaid by its own.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::request_match::Match as ProtoRequestMatch;
use linkerd2_proxy_api::destination::response_match::Match as ProtoResponseMatch;
use linkerd2_proxy_api::destination::update::Update as ProtoUpdate;
use linkerd2_proxy_api::meta;
use linkerd2_proxy_api::net::TcpAddress;
use regex::Regex;

use super::endpoints::{Endpoint, EndpointLabels, Update};
use crate::routing::profile::{
    DstOverride, Profile, RequestMatch, ResponseClass, ResponseMatch, RetryBudget, Route,
};

/// Why a Destination message could not be converted.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// An `Update` without its `add`/`remove`/`no_endpoints` body.
    #[error("update has no body")]
    MissingUpdate,
    /// An endpoint or removal without an address.
    #[error("address is missing")]
    MissingAddress,
    /// An address whose IP is missing or malformed.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    /// A route, request match or response class without its condition.
    #[error("{0} has no condition")]
    MissingCondition(&'static str),
    /// A route path regex that does not compile.
    #[error("invalid path regex {regex:?}: {reason}")]
    InvalidRegex {
        /// The regex as sent (before anchoring).
        regex: String,
        /// The compiler's reason.
        reason: String,
    },
    /// A route method that is not an HTTP method.
    #[error("invalid method: {0}")]
    InvalidMethod(String),
    /// A negative or out-of-range duration.
    #[error("invalid duration for {0}")]
    InvalidDuration(&'static str),
    /// A status range outside 100–599 or with `min > max`.
    #[error("invalid status range {min}-{max}")]
    InvalidStatusRange {
        /// Lower bound as sent.
        min: u32,
        /// Upper bound as sent.
        max: u32,
    },
}

impl TryFrom<proto::Update> for Update {
    type Error = ConvertError;

    fn try_from(update: proto::Update) -> Result<Update, ConvertError> {
        match update.update.ok_or(ConvertError::MissingUpdate)? {
            ProtoUpdate::Add(set) => {
                let endpoints = set
                    .addrs
                    .into_iter()
                    .map(|weighted| endpoint(weighted, &set.metric_labels))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Update::Add(endpoints))
            }
            ProtoUpdate::Remove(set) => {
                let addresses = set
                    .addrs
                    .into_iter()
                    .map(socket_addr)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Update::Remove(addresses))
            }
            ProtoUpdate::NoEndpoints(no_endpoints) => Ok(Update::NoEndpoints {
                exists: no_endpoints.exists,
            }),
        }
    }
}

impl TryFrom<proto::DestinationProfile> for Profile {
    type Error = ConvertError;

    /// Converts a profile. Invalid routes and an invalid retry budget are
    /// dropped (logged), as Linkerd does; only a bad `endpoint` fails.
    fn try_from(profile: proto::DestinationProfile) -> Result<Profile, ConvertError> {
        let name = profile.fully_qualified_name.trim_end_matches('.');
        let endpoint = profile
            .endpoint
            .map(|weighted| endpoint(weighted, &HashMap::new()))
            .transpose()?;
        let routes = profile
            .routes
            .into_iter()
            .filter_map(|route| match Route::try_from(route) {
                Ok(route) => Some(route),
                Err(error) => {
                    tracing::warn!(%error, "dropping an invalid profile route");
                    None
                }
            })
            .collect();
        let retry_budget = match profile.retry_budget.map(RetryBudget::try_from).transpose() {
            Ok(budget) => budget,
            Err(error) => {
                tracing::warn!(%error, "discarding an invalid retry budget");
                None
            }
        };
        let dst_overrides = profile
            .dst_overrides
            .into_iter()
            .filter(|weighted| weighted.weight > 0)
            .map(|weighted| DstOverride {
                authority: weighted.authority,
                weight: weighted.weight,
            })
            .collect();
        Ok(Profile {
            fully_qualified_name: (!name.is_empty()).then(|| name.to_string()),
            routes,
            retry_budget,
            dst_overrides,
            opaque_protocol: profile.opaque_protocol,
            endpoint,
        })
    }
}

impl TryFrom<proto::Route> for Route {
    type Error = ConvertError;

    fn try_from(route: proto::Route) -> Result<Route, ConvertError> {
        let condition = route
            .condition
            .ok_or(ConvertError::MissingCondition("route"))?;
        let response_classes = route
            .response_classes
            .into_iter()
            .map(|class| {
                let condition = class
                    .condition
                    .ok_or(ConvertError::MissingCondition("response class"))?;
                Ok(ResponseClass {
                    condition: ResponseMatch::try_from(condition)?,
                    is_failure: class.is_failure,
                })
            })
            .collect::<Result<Vec<_>, ConvertError>>()?;
        let timeout = route
            .timeout
            .map(|timeout| duration(timeout, "route timeout"))
            .transpose()?;
        Ok(Route {
            name: route
                .metrics_labels
                .get("route")
                .cloned()
                .unwrap_or_default(),
            condition: RequestMatch::try_from(condition)?,
            response_classes,
            is_retryable: route.is_retryable,
            timeout,
        })
    }
}

impl TryFrom<proto::RequestMatch> for RequestMatch {
    type Error = ConvertError;

    fn try_from(condition: proto::RequestMatch) -> Result<RequestMatch, ConvertError> {
        let list = |seq: proto::request_match::Seq| {
            seq.matches
                .into_iter()
                .map(RequestMatch::try_from)
                .collect::<Result<Vec<_>, _>>()
        };
        match condition
            .r#match
            .ok_or(ConvertError::MissingCondition("request match"))?
        {
            ProtoRequestMatch::All(seq) => Ok(RequestMatch::All(list(seq)?)),
            ProtoRequestMatch::Any(seq) => Ok(RequestMatch::Any(list(seq)?)),
            ProtoRequestMatch::Not(inner) => {
                Ok(RequestMatch::Not(Box::new(RequestMatch::try_from(*inner)?)))
            }
            ProtoRequestMatch::Path(path) => Ok(RequestMatch::Path(anchored(&path.regex)?)),
            ProtoRequestMatch::Method(method) => {
                let text = format!("{method:?}");
                http::Method::try_from(method)
                    .map(RequestMatch::Method)
                    .map_err(|_| ConvertError::InvalidMethod(text))
            }
        }
    }
}

impl TryFrom<proto::ResponseMatch> for ResponseMatch {
    type Error = ConvertError;

    fn try_from(condition: proto::ResponseMatch) -> Result<ResponseMatch, ConvertError> {
        let list = |seq: proto::response_match::Seq| {
            seq.matches
                .into_iter()
                .map(ResponseMatch::try_from)
                .collect::<Result<Vec<_>, _>>()
        };
        match condition
            .r#match
            .ok_or(ConvertError::MissingCondition("response match"))?
        {
            ProtoResponseMatch::All(seq) => Ok(ResponseMatch::All(list(seq)?)),
            ProtoResponseMatch::Any(seq) => Ok(ResponseMatch::Any(list(seq)?)),
            ProtoResponseMatch::Not(inner) => Ok(ResponseMatch::Not(Box::new(
                ResponseMatch::try_from(*inner)?,
            ))),
            ProtoResponseMatch::Status(range) => {
                let (min, max) = (range.min, range.max);
                let valid = (100..=599).contains(&min) && (100..=599).contains(&max) && min <= max;
                match (valid, u16::try_from(min), u16::try_from(max)) {
                    (true, Ok(min), Ok(max)) => Ok(ResponseMatch::Status { min, max }),
                    _ => Err(ConvertError::InvalidStatusRange { min, max }),
                }
            }
        }
    }
}

impl TryFrom<proto::RetryBudget> for RetryBudget {
    type Error = ConvertError;

    fn try_from(budget: proto::RetryBudget) -> Result<RetryBudget, ConvertError> {
        let ttl = budget
            .ttl
            .map(|ttl| duration(ttl, "retry budget ttl"))
            .transpose()?
            .ok_or(ConvertError::InvalidDuration("retry budget ttl"))?;
        let ttl_valid = (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl);
        let ratio_valid = (0.0..=1000.0).contains(&budget.retry_ratio);
        let minimum_valid = i32::try_from(budget.min_retries_per_second).is_ok();
        if !ttl_valid {
            return Err(ConvertError::InvalidDuration("retry budget ttl"));
        }
        if !ratio_valid || !minimum_valid {
            return Err(ConvertError::InvalidDuration(
                "retry budget ratio or minimum",
            ));
        }
        Ok(RetryBudget {
            retry_ratio: budget.retry_ratio,
            min_retries_per_second: budget.min_retries_per_second,
            ttl,
        })
    }
}

/// Anchors a route regex at both ends, as Linkerd does, and compiles it.
pub(crate) fn anchored(regex: &str) -> Result<Regex, ConvertError> {
    let start = if regex.starts_with('^') { "" } else { "^" };
    let end = if regex.ends_with('$') { "" } else { "$" };
    Regex::new(&format!("{start}{regex}{end}")).map_err(|error| ConvertError::InvalidRegex {
        regex: regex.to_string(),
        reason: error.to_string(),
    })
}

fn endpoint(
    weighted: proto::WeightedAddr,
    set_labels: &HashMap<String, String>,
) -> Result<Endpoint, ConvertError> {
    let addr = socket_addr(weighted.addr.ok_or(ConvertError::MissingAddress)?)?;
    let mut labels: BTreeMap<String, String> = set_labels
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    // The address's own labels win over the set's.
    labels.extend(weighted.metric_labels);
    let identity = weighted.tls_identity.and_then(|tls| {
        let dns = match tls.strategy {
            Some(proto::tls_identity::Strategy::DnsLikeIdentity(dns)) => Some(dns.name),
            _ => None,
        };
        tls.server_name.map(|server| server.name).or(dns)
    });
    let hint = weighted.protocol_hint.unwrap_or_default();
    let h2 = matches!(hint.protocol, Some(proto::protocol_hint::Protocol::H2(_)));
    let opaque_transport_port = hint
        .opaque_transport
        .and_then(|transport| u16::try_from(transport.inbound_port).ok())
        .filter(|port| *port != 0);
    Ok(Endpoint {
        addr,
        labels: EndpointLabels::new(labels),
        identity: identity.filter(|name| !name.is_empty()),
        h2,
        opaque_transport_port,
        weft_proxy: is_weft_proxy(weighted.resource_ref.as_ref()),
    })
}

/// The API group of weft's kinds; with kind `Workload` in an endpoint's
/// `resource_ref`, the weft controller's hint that a weft proxy fronts it.
const WEFT_GROUP: &str = "weft.dev";

/// Whether an endpoint's `resource_ref` says a weft proxy fronts it: a
/// `weft.dev` `Workload`. The weft controller sets it only for workloads
/// whose proxy is weft; linkerd2-proxy ignores the field, so the hint
/// changes nothing for it. Anything else (no reference, a Pod, a default)
/// is a proxy that may not understand weft's extensions.
pub(crate) fn is_weft_proxy(resource_ref: Option<&meta::Metadata>) -> bool {
    matches!(
        resource_ref.and_then(|reference| reference.kind.as_ref()),
        Some(meta::metadata::Kind::Resource(resource))
            if resource.group == WEFT_GROUP && resource.kind == "Workload"
    )
}

fn socket_addr(address: TcpAddress) -> Result<SocketAddr, ConvertError> {
    let port = u16::try_from(address.port)
        .map_err(|_| ConvertError::InvalidAddress(format!("port {}", address.port)))?;
    let ip = address.ip.ok_or(ConvertError::MissingAddress)?;
    let ip = IpAddr::try_from(ip)
        .map_err(|_| ConvertError::InvalidAddress("the ip has neither v4 nor v6".to_string()))?;
    Ok(SocketAddr::new(ip, port))
}

fn duration(value: prost_types::Duration, field: &'static str) -> Result<Duration, ConvertError> {
    Duration::try_from(value).map_err(|_| ConvertError::InvalidDuration(field))
}

#[cfg(test)]
mod tests;

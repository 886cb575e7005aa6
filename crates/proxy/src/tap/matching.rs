//! Which requests a tap reports: an `ObserveRequest.match` converted once
//! (and validated) into a [`Match`], then evaluated per request against plain
//! [`RequestFacts`]. Both steps are pure and table-tested.
//!
//! ```text
//! proto Match ─► Match::try_from (INVALID_ARGUMENT on error) ─► Match::matches(facts)
//!   all / any / not, source / destination (netmask prefix length, port range),
//!   http (scheme, method, authority / path exact | prefix),
//!   destination_label / route_label (exact key and value)
//! ```

use crate::config::IpNetwork;
use linkerd2_proxy_api::tap::observe_request::r#match as proto;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

/// Why a match cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MatchError {
    /// A match (or one of its parts) has no value.
    #[error("match is missing its {0}")]
    Missing(&'static str),
    /// A netmask's address is not an IP address.
    #[error("netmask address is not an IP address")]
    InvalidAddress,
    /// A netmask's prefix length is 0 or too long for its address.
    #[error("netmask prefix length {mask} must be 1-{max}")]
    InvalidMask {
        /// The prefix length given.
        mask: u32,
        /// The longest prefix for the address family.
        max: u32,
    },
    /// A port range is empty, reversed or beyond 65535.
    #[error(
        "port range {min}-{max} is invalid (0 means the other bound; max <= 65535, min <= max)"
    )]
    InvalidPorts {
        /// The lower bound given.
        min: u32,
        /// The upper bound given.
        max: u32,
    },
    /// An HTTP method or scheme that cannot be compared.
    #[error("invalid HTTP {0}")]
    InvalidHttp(&'static str),
    /// A label match without key or value.
    #[error("label matches need a non-empty key and value")]
    EmptyLabel,
}

/// A validated match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Match {
    /// Every inner match holds (none: always).
    All(Vec<Match>),
    /// At least one inner match holds (none: never).
    Any(Vec<Match>),
    /// The inner match does not hold.
    Not(Box<Match>),
    /// The client's address.
    Source(TcpMatch),
    /// The address the request goes to.
    Destination(TcpMatch),
    /// The request URI's scheme (lower-case; `http` when the URI has none).
    Scheme(String),
    /// The request method.
    Method(http::Method),
    /// The request authority.
    Authority(StringMatch),
    /// The request URI's path.
    Path(StringMatch),
    /// A destination metadata label equals a value.
    DestinationLabel {
        /// Label name.
        key: String,
        /// Label value.
        value: String,
    },
    /// A route metadata label equals a value.
    RouteLabel {
        /// Label name.
        key: String,
        /// Label value.
        value: String,
    },
}

/// A socket address test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TcpMatch {
    /// The IP is in the network.
    Network(IpNetwork),
    /// The port is in the range.
    Ports(RangeInclusive<u16>),
}

/// A string test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StringMatch {
    /// Equal.
    Exact(String),
    /// Starts with.
    Prefix(String),
}

/// What a match is evaluated against: one request as the proxy sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestFacts<'a> {
    /// The client's address.
    pub source: SocketAddr,
    /// Where the request goes (inbound: the app; outbound: the endpoint).
    pub destination: SocketAddr,
    /// The request method.
    pub method: &'a http::Method,
    /// The URI scheme, `http` when the URI has none.
    pub scheme: &'a str,
    /// The request authority (empty when none).
    pub authority: &'a str,
    /// The URI path.
    pub path: &'a str,
    /// Destination metadata labels.
    pub destination_labels: &'a HashMap<String, String>,
    /// Route metadata labels.
    pub route_labels: &'a HashMap<String, String>,
}

impl Match {
    /// Whether the request is reported.
    pub(crate) fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        match self {
            Match::All(matches) => matches.iter().all(|inner| inner.matches(facts)),
            Match::Any(matches) => matches.iter().any(|inner| inner.matches(facts)),
            Match::Not(inner) => !inner.matches(facts),
            Match::Source(tcp) => tcp.matches(facts.source),
            Match::Destination(tcp) => tcp.matches(facts.destination),
            Match::Scheme(scheme) => facts.scheme.eq_ignore_ascii_case(scheme),
            Match::Method(method) => facts.method == method,
            Match::Authority(authority) => authority.matches(facts.authority),
            Match::Path(path) => path.matches(facts.path),
            Match::DestinationLabel { key, value } => {
                facts.destination_labels.get(key) == Some(value)
            }
            Match::RouteLabel { key, value } => facts.route_labels.get(key) == Some(value),
        }
    }
}

impl TcpMatch {
    fn matches(&self, addr: SocketAddr) -> bool {
        match self {
            TcpMatch::Network(network) => network.contains(addr.ip()),
            TcpMatch::Ports(ports) => ports.contains(&addr.port()),
        }
    }
}

impl StringMatch {
    fn matches(&self, text: &str) -> bool {
        match self {
            StringMatch::Exact(exact) => text == exact,
            StringMatch::Prefix(prefix) => text.starts_with(prefix.as_str()),
        }
    }
}

impl TryFrom<linkerd2_proxy_api::tap::observe_request::Match> for Match {
    type Error = MatchError;

    fn try_from(
        proto: linkerd2_proxy_api::tap::observe_request::Match,
    ) -> Result<Match, MatchError> {
        let inner = proto.r#match.ok_or(MatchError::Missing("match"))?;
        Ok(match inner {
            proto::Match::All(seq) => Match::All(convert_all(seq.matches)?),
            proto::Match::Any(seq) => Match::Any(convert_all(seq.matches)?),
            proto::Match::Not(inner) => Match::Not(Box::new(Match::try_from(*inner)?)),
            proto::Match::Source(tcp) => Match::Source(TcpMatch::try_from(tcp)?),
            proto::Match::Destination(tcp) => Match::Destination(TcpMatch::try_from(tcp)?),
            proto::Match::Http(http) => convert_http(http)?,
            proto::Match::DestinationLabel(label) => {
                let (key, value) = convert_label(label)?;
                Match::DestinationLabel { key, value }
            }
            proto::Match::RouteLabel(label) => {
                let (key, value) = convert_label(label)?;
                Match::RouteLabel { key, value }
            }
        })
    }
}

fn convert_all(
    matches: Vec<linkerd2_proxy_api::tap::observe_request::Match>,
) -> Result<Vec<Match>, MatchError> {
    matches.into_iter().map(Match::try_from).collect()
}

fn convert_label(label: proto::Label) -> Result<(String, String), MatchError> {
    if label.key.is_empty() || label.value.is_empty() {
        return Err(MatchError::EmptyLabel);
    }
    Ok((label.key, label.value))
}

impl TryFrom<proto::Tcp> for TcpMatch {
    type Error = MatchError;

    fn try_from(tcp: proto::Tcp) -> Result<TcpMatch, MatchError> {
        match tcp.r#match.ok_or(MatchError::Missing("tcp match"))? {
            proto::tcp::Match::Netmask(netmask) => {
                let ip = netmask.ip.ok_or(MatchError::Missing("netmask address"))?;
                let ip = IpAddr::try_from(ip).map_err(|_| MatchError::InvalidAddress)?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if netmask.mask == 0 || netmask.mask > max {
                    return Err(MatchError::InvalidMask {
                        mask: netmask.mask,
                        max,
                    });
                }
                let prefix = u8::try_from(netmask.mask).map_err(|_| MatchError::InvalidMask {
                    mask: netmask.mask,
                    max,
                })?;
                Ok(TcpMatch::Network(IpNetwork::new(ip, prefix)))
            }
            proto::tcp::Match::Ports(ports) => {
                port_range(ports.min, ports.max).map(TcpMatch::Ports)
            }
        }
    }
}

/// A port range from its bounds; 0 means "the same as the other bound".
pub(crate) fn port_range(min: u32, max: u32) -> Result<RangeInclusive<u16>, MatchError> {
    let invalid = || MatchError::InvalidPorts { min, max };
    let (low, high) = match (min, max) {
        (0, 0) => return Err(invalid()),
        (0, only) | (only, 0) => (only, only),
        (low, high) => (low, high),
    };
    let low = u16::try_from(low).map_err(|_| invalid())?;
    let high = u16::try_from(high).map_err(|_| invalid())?;
    if low > high {
        return Err(invalid());
    }
    Ok(low..=high)
}

fn convert_http(http: proto::Http) -> Result<Match, MatchError> {
    use proto::http::Match as HttpMatch;
    Ok(
        match http.r#match.ok_or(MatchError::Missing("http match"))? {
            HttpMatch::Scheme(scheme) => {
                let scheme = scheme.r#type.ok_or(MatchError::InvalidHttp("scheme"))?;
                let scheme: std::borrow::Cow<'static, str> = (&scheme)
                    .try_into()
                    .map_err(|_| MatchError::InvalidHttp("scheme"))?;
                if scheme.is_empty() {
                    return Err(MatchError::InvalidHttp("scheme"));
                }
                Match::Scheme(scheme.to_ascii_lowercase())
            }
            HttpMatch::Method(method) => Match::Method(
                http::Method::try_from(method).map_err(|_| MatchError::InvalidHttp("method"))?,
            ),
            HttpMatch::Authority(authority) => Match::Authority(convert_string(authority)?),
            HttpMatch::Path(path) => Match::Path(convert_string(path)?),
        },
    )
}

fn convert_string(string: proto::http::StringMatch) -> Result<StringMatch, MatchError> {
    use proto::http::string_match::Match as Text;
    match string.r#match.ok_or(MatchError::Missing("string match"))? {
        Text::Exact(exact) => Ok(StringMatch::Exact(exact)),
        Text::Prefix(prefix) => Ok(StringMatch::Prefix(prefix)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linkerd2_proxy_api::http_types;
    use linkerd2_proxy_api::tap::observe_request::Match as ProtoMatch;

    fn wrap(inner: proto::Match) -> ProtoMatch {
        ProtoMatch {
            r#match: Some(inner),
        }
    }

    fn netmask(ip: &str, mask: u32) -> ProtoMatch {
        let ip: IpAddr = ip.parse().unwrap();
        wrap(proto::Match::Destination(proto::Tcp {
            r#match: Some(proto::tcp::Match::Netmask(proto::tcp::Netmask {
                ip: Some(ip.into()),
                mask,
            })),
        }))
    }

    fn ports(min: u32, max: u32) -> ProtoMatch {
        wrap(proto::Match::Source(proto::Tcp {
            r#match: Some(proto::tcp::Match::Ports(proto::tcp::PortRange { min, max })),
        }))
    }

    fn path_prefix(prefix: &str) -> ProtoMatch {
        http_match(proto::http::Match::Path(proto::http::StringMatch {
            r#match: Some(proto::http::string_match::Match::Prefix(prefix.to_string())),
        }))
    }

    fn authority_exact(authority: &str) -> ProtoMatch {
        http_match(proto::http::Match::Authority(proto::http::StringMatch {
            r#match: Some(proto::http::string_match::Match::Exact(
                authority.to_string(),
            )),
        }))
    }

    fn http_match(inner: proto::http::Match) -> ProtoMatch {
        wrap(proto::Match::Http(proto::Http {
            r#match: Some(inner),
        }))
    }

    fn method(method: http::Method) -> ProtoMatch {
        http_match(proto::http::Match::Method(method.into()))
    }

    fn scheme(scheme: &str) -> ProtoMatch {
        http_match(proto::http::Match::Scheme(http_types::Scheme::from(scheme)))
    }

    fn label(key: &str, value: &str, route: bool) -> ProtoMatch {
        let label = proto::Label {
            key: key.to_string(),
            value: value.to_string(),
        };
        wrap(if route {
            proto::Match::RouteLabel(label)
        } else {
            proto::Match::DestinationLabel(label)
        })
    }

    fn all(matches: Vec<ProtoMatch>) -> ProtoMatch {
        wrap(proto::Match::All(proto::Seq { matches }))
    }

    fn any(matches: Vec<ProtoMatch>) -> ProtoMatch {
        wrap(proto::Match::Any(proto::Seq { matches }))
    }

    fn not(inner: ProtoMatch) -> ProtoMatch {
        wrap(proto::Match::Not(Box::new(inner)))
    }

    #[test]
    fn invalid_matches_are_refused() {
        let cases: Vec<(&str, ProtoMatch, MatchError)> = vec![
            (
                "empty",
                ProtoMatch { r#match: None },
                MatchError::Missing("match"),
            ),
            (
                "mask 0",
                netmask("10.0.0.0", 0),
                MatchError::InvalidMask { mask: 0, max: 32 },
            ),
            (
                "mask 33 on IPv4",
                netmask("10.0.0.0", 33),
                MatchError::InvalidMask { mask: 33, max: 32 },
            ),
            (
                "mask 129 on IPv6",
                netmask("fd00::", 129),
                MatchError::InvalidMask {
                    mask: 129,
                    max: 128,
                },
            ),
            (
                "ports 0-0",
                ports(0, 0),
                MatchError::InvalidPorts { min: 0, max: 0 },
            ),
            (
                "ports reversed",
                ports(90, 80),
                MatchError::InvalidPorts { min: 90, max: 80 },
            ),
            (
                "port too large",
                ports(1, 65536),
                MatchError::InvalidPorts { min: 1, max: 65536 },
            ),
            (
                "empty label key",
                label("", "web", false),
                MatchError::EmptyLabel,
            ),
            (
                "empty label value",
                label("rt_route", "", true),
                MatchError::EmptyLabel,
            ),
            (
                "empty http match",
                wrap(proto::Match::Http(proto::Http { r#match: None })),
                MatchError::Missing("http match"),
            ),
            (
                "invalid inside all",
                all(vec![path_prefix("/"), ports(0, 0)]),
                MatchError::InvalidPorts { min: 0, max: 0 },
            ),
            (
                "invalid inside not",
                not(ProtoMatch { r#match: None }),
                MatchError::Missing("match"),
            ),
        ];
        for (name, proto, expected) in cases {
            assert_eq!(Match::try_from(proto), Err(expected), "{name}");
        }
    }

    #[test]
    fn port_ranges_take_zero_as_the_other_bound() {
        let cases = [
            (80, 0, Ok(80..=80)),
            (0, 443, Ok(443..=443)),
            (8000, 8100, Ok(8000..=8100)),
            (0, 0, Err(())),
            (2, 1, Err(())),
            (70000, 0, Err(())),
        ];
        for (min, max, expected) in cases {
            assert_eq!(
                port_range(min, max).map_err(|_| ()),
                expected,
                "{min}-{max}"
            );
        }
    }

    #[test]
    fn matches_evaluate_against_request_facts() {
        let destination_labels: HashMap<String, String> =
            [("workload", "web"), ("namespace", "shop"), ("tls", "true")]
                .into_iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect();
        let route_labels: HashMap<String, String> = [("rt_route", "GET /books")]
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let get = http::Method::GET;
        let facts = RequestFacts {
            source: "10.1.2.3:51000".parse().unwrap(),
            destination: "10.9.0.7:8080".parse().unwrap(),
            method: &get,
            scheme: "http",
            authority: "web.shop.svc.cluster.local:8080",
            path: "/books/42",
            destination_labels: &destination_labels,
            route_labels: &route_labels,
        };
        let cases: Vec<(&str, ProtoMatch, bool)> = vec![
            ("path prefix", path_prefix("/books"), true),
            ("path prefix other", path_prefix("/authors"), false),
            (
                "path exact is not prefix",
                http_match(proto::http::Match::Path(proto::http::StringMatch {
                    r#match: Some(proto::http::string_match::Match::Exact(
                        "/books".to_string(),
                    )),
                })),
                false,
            ),
            (
                "authority exact",
                authority_exact("web.shop.svc.cluster.local:8080"),
                true,
            ),
            (
                "authority exact without port",
                authority_exact("web.shop.svc.cluster.local"),
                false,
            ),
            ("method GET", method(http::Method::GET), true),
            ("method POST", method(http::Method::POST), false),
            ("scheme http", scheme("http"), true),
            ("scheme https", scheme("https"), false),
            ("destination network /16", netmask("10.9.0.0", 16), true),
            (
                "destination network /32 other",
                netmask("10.9.0.8", 32),
                false,
            ),
            ("destination IPv6 network", netmask("fd00::", 8), false),
            ("source port range", ports(50000, 52000), true),
            ("source port single", ports(51001, 0), false),
            ("destination label", label("workload", "web", false), true),
            (
                "destination label other value",
                label("workload", "api", false),
                false,
            ),
            ("route label", label("rt_route", "GET /books", true), true),
            (
                "route label missing",
                label("rt_route", "GET /books", false),
                false,
            ),
            ("all of none", all(vec![]), true),
            ("any of none", any(vec![]), false),
            (
                "all both",
                all(vec![path_prefix("/books"), method(http::Method::GET)]),
                true,
            ),
            (
                "all one fails",
                all(vec![path_prefix("/books"), method(http::Method::PUT)]),
                false,
            ),
            (
                "any one holds",
                any(vec![path_prefix("/x"), method(http::Method::GET)]),
                true,
            ),
            ("not", not(path_prefix("/books")), false),
            ("not not", not(not(path_prefix("/books"))), true),
        ];
        for (name, proto, expected) in cases {
            let parsed = Match::try_from(proto).unwrap_or_else(|error| panic!("{name}: {error}"));
            assert_eq!(parsed.matches(&facts), expected, "{name}");
        }
    }
}

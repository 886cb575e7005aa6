//! The value types of the proxy's configuration (networks, port sets, log
//! formats) and the parsers that read each variable's text into them.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use weft_core::policy::{Cidr, DefaultPolicy};

/// An IP network (`10.0.0.0/8`, `fd00::/8`): weft-core's [`Cidr`] (one
/// parser, one mask), except that an IPv4-mapped IPv6 client counts as IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNetwork(Cidr);

impl IpNetwork {
    /// The network of `address` with a `prefix`-bit mask (cut to 32 bits
    /// for IPv4, 128 for IPv6).
    pub fn new(address: IpAddr, prefix: u8) -> IpNetwork {
        let max = if address.is_ipv4() { 32 } else { 128 };
        IpNetwork(Cidr {
            address,
            prefix: prefix.min(max),
        })
    }

    /// Parses `ADDRESS/PREFIX` (a bare address is a single-address network).
    pub fn parse(text: &str) -> Result<IpNetwork, String> {
        Cidr::parse(text)
            .map(IpNetwork)
            .map_err(|error| error.to_string())
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip.to_canonical())
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, formatter)
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// A set of ports written as a comma list of ports and inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortSet {
    ranges: Vec<RangeInclusive<u16>>,
}

impl PortSet {
    /// The ports in the set, in the order they were written.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|range| range.clone())
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|range| range.contains(&port))
    }

    /// Whether the set has no port.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl fmt::Display for PortSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|range| {
                if range.start() == range.end() {
                    range.start().to_string()
                } else {
                    format!("{}-{}", range.start(), range.end())
                }
            })
            .collect();
        formatter.write_str(&parts.join(","))
    }
}

/// A controller identity: a DNS name (what TLS puts in SNI and verifies).
pub(super) fn parse_server_name(value: &str) -> Result<String, String> {
    let value = value.trim();
    rustls_pki_types::DnsName::try_from(value)
        .map(|_| value.to_ascii_lowercase())
        .map_err(|_| "expected a DNS name, e.g. weft-controller.weft.serviceaccount.identity.weft.cluster.local".to_string())
}

/// Parses PEM certificates (empty text: none); each must be an X.509 certificate.
pub(super) fn parse_certificates(value: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut certificates = Vec::new();
    for pem in x509_parser::pem::Pem::iter_from_buffer(value.as_bytes()) {
        let pem = pem.map_err(|error| format!("not PEM: {error}"))?;
        if pem.label != "CERTIFICATE" {
            return Err(format!("expected CERTIFICATE blocks, found {}", pem.label));
        }
        pem.parse_x509()
            .map_err(|error| format!("not an X.509 certificate: {error}"))?;
        certificates.push(pem.contents);
    }
    if certificates.is_empty() && !value.trim().is_empty() {
        return Err("no PEM certificate found".to_string());
    }
    Ok(certificates)
}

/// `HOST:PORT`, or `None` for an empty value.
pub(super) fn parse_optional_host_port(value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match value.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0) =>
        {
            Ok(Some(value.to_string()))
        }
        _ => Err("expected HOST:PORT, e.g. 127.0.0.1:8080".to_string()),
    }
}

pub(super) fn parse_socket_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:4140 or [::]:4143".to_string())
}

/// Parses one or two comma-separated listen addresses.
pub(super) fn parse_listen_addrs(value: &str) -> Result<Vec<SocketAddr>, String> {
    let addrs = value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(parse_socket_addr)
        .collect::<Result<Vec<_>, _>>()?;
    match addrs.len() {
        1 | 2 => Ok(addrs),
        0 => Err("expected an address, e.g. 127.0.0.1:4140".to_string()),
        _ => Err("at most two addresses (one IPv4, one IPv6)".to_string()),
    }
}

/// Parses `500ms`, `10s`, `2m`, `1h`, `1d`, `1m30s`, `1.5s`; a unit is
/// required except for `0` (weft-core's one duration parser). The error is the
/// reason alone: the config error around it names the variable and its value.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    weft_core::duration::parse_duration(value).map_err(|error| error.reason().to_string())
}

pub(super) fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(duration)
}

/// Parses a delay that may be switched off: `off`, empty or `0` is `None`.
pub(super) fn parse_optional_delay(value: &str) -> Result<Option<Duration>, String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let duration = parse_duration(value).map_err(|reason| format!("{reason}, or off"))?;
    Ok((!duration.is_zero()).then_some(duration))
}

/// Parses `25,587,8000-8100`; blanks are ignored, an empty value is the empty set.
pub fn parse_port_set(value: &str) -> Result<PortSet, String> {
    let mut ranges = Vec::new();
    for part in value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
    {
        let parse_port = |text: &str| -> Result<u16, String> {
            match text.trim().parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(format!("{text:?} is not a port (1-65535)")),
            }
        };
        let range = match part.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (parse_port(low)?, parse_port(high)?);
                if low > high {
                    return Err(format!("range {part:?} runs backwards"));
                }
                low..=high
            }
            None => {
                let port = parse_port(part)?;
                port..=port
            }
        };
        ranges.push(range);
    }
    Ok(PortSet { ranges })
}

pub(super) fn parse_cores(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(cores) if cores >= 1 => Ok(cores),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}

/// A connection limit: a whole number of at least 1.
pub(super) fn parse_connection_limit(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(limit) if limit >= 1 => Ok(limit),
        _ => Err("expected a whole number of connections, at least 1".to_string()),
    }
}

/// Writes a duration the way it is configured (`10s`, `500ms`), so that
/// [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    weft_core::duration::format_duration(duration)
}

/// What happens to an inbound connection whose protocol was not detected
/// before the detect timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectTimeoutAction {
    /// Relay the bytes read so far and the rest as opaque TCP.
    Forward,
    /// Close the connection.
    Close,
}

impl DetectTimeoutAction {
    /// Parses `WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION` (empty: `None`, the
    /// default for the identity setting).
    pub fn parse(value: &str) -> Result<Option<DetectTimeoutAction>, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "forward" => Ok(Some(DetectTimeoutAction::Forward)),
            "close" => Ok(Some(DetectTimeoutAction::Close)),
            _ => Err("expected forward or close (or empty for the default)".to_string()),
        }
    }

    /// The value as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectTimeoutAction::Forward => "forward",
            DetectTimeoutAction::Close => "close",
        }
    }
}

/// The action on an inbound detect timeout: the configured one, else close
/// when identity is on (a plaintext client could otherwise smuggle
/// `l5d-client-id` past the HTTP server to the app), forward without.
pub fn detect_timeout_action(
    configured: Option<DetectTimeoutAction>,
    identity_on: bool,
) -> DetectTimeoutAction {
    match (configured, identity_on) {
        (Some(action), _) => action,
        (None, true) => DetectTimeoutAction::Close,
        (None, false) => DetectTimeoutAction::Forward,
    }
}

/// `WEFT_PROXY_INBOUND_DEFAULT_POLICY`: who may reach an inbound port for
/// which the controller has no policy (or before its first answer, or with
/// no controller at all): one of Linkerd's default policies, in any case.
pub(super) fn parse_default_policy(value: &str) -> Result<DefaultPolicy, String> {
    DefaultPolicy::parse(&value.to_ascii_lowercase()).map_err(|_| {
        let names: Vec<&str> = DefaultPolicy::ALL
            .iter()
            .map(|policy| policy.as_str())
            .collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Comma-separated CIDRs (`10.0.0.0/8,fd00::/8`); empty = none.
pub(super) fn parse_networks(value: &str) -> Result<Vec<IpNetwork>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(IpNetwork::parse)
        .collect()
}

/// `WEFT_PROXY_POLICY_WORKLOAD`: `{"ns":"<namespace>","pod":"<name>"}`, as
/// Linkerd's `LINKERD2_PROXY_POLICY_WORKLOAD`; empty = no policy client.
/// The text is sent as written; both fields must be non-empty strings.
pub(super) fn parse_policy_workload(value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let expected = "expected {\"ns\":\"<namespace>\",\"pod\":\"<name>\"}";
    let parsed: serde_json::Value =
        serde_json::from_str(value).map_err(|error| format!("{expected}: {error}"))?;
    let field = |name: &str| {
        parsed
            .get(name)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|text| !text.is_empty())
    };
    if !field("ns") || !field("pod") {
        return Err(format!("{expected}: ns and pod must be non-empty strings"));
    }
    Ok(Some(value.to_string()))
}

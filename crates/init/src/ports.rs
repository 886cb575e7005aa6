//! The flags' values: port lists (`4190,4191,9000-9010`) and networks
//! (`10.0.0.0/8,192.168.1.7`), parsed with errors that name the flag, and
//! the whole command line checked into a [`Config`] at once (every bad flag
//! reported together).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::args::Args;

/// One bad flag value: which flag, what it held, why it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag}: {reason} (got {value:?})")]
pub struct InputError {
    /// The flag, without its leading dashes (`skip-inbound-ports`).
    pub flag: &'static str,
    /// The offending part of the value (one list item, or the whole value).
    pub value: String,
    /// What is wrong, in a few words.
    pub reason: String,
}

impl InputError {
    fn new(flag: &'static str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            flag,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Every bad flag value of a command line, in flag order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct InputErrors(pub Vec<InputError>);

/// A TCP port or an inclusive range of them (`low == high` for one port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The first port (1–65535).
    pub low: u16,
    /// The last port, `>= low`.
    pub high: u16,
}

impl PortRange {
    /// How many of multiport's 15 slots this entry takes: a range takes two.
    pub fn slots(self) -> usize {
        if self.low == self.high { 1 } else { 2 }
    }
}

/// As iptables writes it: `8080`, or `9000:9010` for a range.
impl fmt::Display for PortRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(formatter, "{}", self.low)
        } else {
            write!(formatter, "{}:{}", self.low, self.high)
        }
    }
}

/// An IPv4 network, its host bits cleared (`10.1.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Network {
    /// The network address (host bits zero).
    pub address: Ipv4Addr,
    /// The prefix length, 0–32.
    pub prefix: u8,
}

/// As iptables writes it: `10.1.0.0/16`.
impl fmt::Display for Ipv4Network {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.address, self.prefix)
    }
}

/// The skipped networks: IPv4 ones become rules; IPv6 ones are only
/// counted (weft-init redirects IPv4 only, so IPv6 traffic already bypasses
/// the proxy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    /// IPv4 networks, in the order given.
    pub ipv4: Vec<Ipv4Network>,
    /// IPv6 networks given (nothing to do for them).
    pub ipv6: Vec<String>,
}

/// A comma-separated list of ports and `LOW-HIGH` ranges (spaces around
/// items allowed; an empty value is an empty list).
pub fn parse_ports(flag: &'static str, value: &str) -> Result<Vec<PortRange>, InputError> {
    items(flag, value)
        .map(|item| parse_port_item(flag, item?))
        .collect()
}

fn parse_port_item(flag: &'static str, item: &str) -> Result<PortRange, InputError> {
    let port = |text: &str| match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(InputError::new(
            flag,
            item,
            "not a port: expected 1-65535, or a LOW-HIGH range",
        )),
        Ok(port) => Ok(port),
    };
    match item.split_once('-') {
        None => {
            let single = port(item)?;
            Ok(PortRange {
                low: single,
                high: single,
            })
        }
        Some((low, high)) => {
            let (low, high) = (port(low)?, port(high)?);
            if low > high {
                return Err(InputError::new(
                    flag,
                    item,
                    "a range's first port is above its last",
                ));
            }
            Ok(PortRange { low, high })
        }
    }
}

/// A comma-separated list of networks: `A.B.C.D/N`, a bare address (one
/// host), or IPv6 ones (kept aside, see [`Networks`]).
pub fn parse_networks(flag: &'static str, value: &str) -> Result<Networks, InputError> {
    let mut networks = Networks::default();
    for item in items(flag, value) {
        let item = item?;
        let (address, prefix) = match item.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (item, None),
        };
        let invalid = || InputError::new(flag, item, "not a network: expected A.B.C.D/N");
        match address.parse::<IpAddr>().map_err(|_| invalid())? {
            IpAddr::V4(address) => {
                let prefix = match prefix {
                    None => 32,
                    Some(prefix) => prefix
                        .parse::<u8>()
                        .ok()
                        .filter(|prefix| *prefix <= 32)
                        .ok_or_else(|| {
                            InputError::new(flag, item, "an IPv4 prefix length is 0-32")
                        })?,
                };
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                networks.ipv4.push(Ipv4Network {
                    address: Ipv4Addr::from(u32::from(address) & mask),
                    prefix,
                });
            }
            IpAddr::V6(_) => {
                let valid_prefix = prefix
                    .is_none_or(|prefix| prefix.parse::<u8>().is_ok_and(|prefix| prefix <= 128));
                if !valid_prefix {
                    return Err(InputError::new(
                        flag,
                        item,
                        "an IPv6 prefix length is 0-128",
                    ));
                }
                networks.ipv6.push(item.to_string());
            }
        }
    }
    Ok(networks)
}

/// The trimmed items of a comma-separated value; an empty item (`80,,81`)
/// is an error, an empty value is no items.
fn items<'value>(
    flag: &'static str,
    value: &'value str,
) -> impl Iterator<Item = Result<&'value str, InputError>> {
    let value = value.trim();
    value
        .split(',')
        .filter(move |_| !value.is_empty())
        .map(move |item| {
            let item = item.trim();
            if item.is_empty() {
                Err(InputError::new(flag, value, "an empty item in the list"))
            } else {
                Ok(item)
            }
        })
}

/// The iptables implementation to drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// The one already holding rules here, else nft if it works, else legacy.
    Auto,
    /// `iptables-nft`.
    Nft,
    /// `iptables-legacy`.
    Legacy,
}

/// What to install, checked: the command line with its lists parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The proxy's inbound port (PREROUTING's REDIRECT target).
    pub inbound_proxy_port: u16,
    /// The proxy's outbound port (OUTPUT's REDIRECT target).
    pub outbound_proxy_port: u16,
    /// The proxy's UID: its connections are never redirected.
    pub proxy_uid: u32,
    /// Inbound ports left alone.
    pub skip_inbound_ports: Vec<PortRange>,
    /// Outbound ports left alone.
    pub skip_outbound_ports: Vec<PortRange>,
    /// Outbound destinations left alone.
    pub skip_networks: Networks,
    /// No OUTPUT redirect at all (ingress mode).
    pub inbound_only: bool,
    /// Which iptables.
    pub backend: BackendChoice,
    /// Print the commands, run nothing.
    pub dry_run: bool,
    /// Remove instead of install.
    pub remove: bool,
}

impl Config {
    /// Checks every flag; all bad values are returned together.
    pub fn from_args(args: &Args) -> Result<Self, InputErrors> {
        let mut errors = Vec::new();
        let inbound_proxy_port = keep(
            &mut errors,
            "inbound-proxy-port",
            nonzero_port(args.inbound_proxy_port),
        );
        let outbound_proxy_port = keep(
            &mut errors,
            "outbound-proxy-port",
            nonzero_port(args.outbound_proxy_port),
        );
        let skip_inbound_ports = keep(
            &mut errors,
            "skip-inbound-ports",
            parse_ports("skip-inbound-ports", &args.skip_inbound_ports),
        );
        let skip_outbound_ports = keep(
            &mut errors,
            "skip-outbound-ports",
            parse_ports("skip-outbound-ports", &args.skip_outbound_ports),
        );
        let skip_networks = keep(
            &mut errors,
            "skip-subnets",
            parse_networks("skip-subnets", &args.skip_subnets),
        );
        let backend = keep(&mut errors, "backend", parse_backend(&args.backend));
        match (
            inbound_proxy_port,
            outbound_proxy_port,
            skip_inbound_ports,
            skip_outbound_ports,
            skip_networks,
            backend,
        ) {
            (
                Some(inbound_proxy_port),
                Some(outbound_proxy_port),
                Some(skip_inbound_ports),
                Some(skip_outbound_ports),
                Some(skip_networks),
                Some(backend),
            ) if errors.is_empty() => Ok(Self {
                inbound_proxy_port,
                outbound_proxy_port,
                proxy_uid: args.proxy_uid,
                skip_inbound_ports,
                skip_outbound_ports,
                skip_networks,
                inbound_only: args.inbound_only,
                backend,
                dry_run: args.dry_run,
                remove: args.remove,
            }),
            _ => Err(InputErrors(errors)),
        }
    }
}

/// The value, or `None` with the error (named `flag`) added to `errors`.
fn keep<T>(
    errors: &mut Vec<InputError>,
    flag: &'static str,
    result: Result<T, InputError>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(error) => {
            errors.push(InputError { flag, ..error });
            None
        }
    }
}

fn nonzero_port(port: u16) -> Result<u16, InputError> {
    if port == 0 {
        Err(InputError::new("", "0", "not a port: expected 1-65535"))
    } else {
        Ok(port)
    }
}

fn parse_backend(value: &str) -> Result<BackendChoice, InputError> {
    match value.trim() {
        "auto" => Ok(BackendChoice::Auto),
        "nft" => Ok(BackendChoice::Nft),
        "legacy" => Ok(BackendChoice::Legacy),
        _ => Err(InputError::new("", value, "expected auto, nft or legacy")),
    }
}

#[cfg(test)]
mod tests;

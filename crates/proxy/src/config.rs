//! The proxy's configuration: read once from `WEFT_PROXY_*` environment
//! variables into a typed [`Config`].
//!
//! Every variable is parsed even after an earlier one failed, so one start-up
//! reports every mistake together (name, value, reason); `main` then exits 64.
//! The same table of variables drives parsing, `weft-proxy --help` and the
//! admin server's `/config`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

pub use crate::control::ControlPlaneTls;

/// Ports that are opaque by default: protocols where the server speaks first
/// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached), so
/// waiting for the client's first bytes would stall the connection.
pub const DEFAULT_OPAQUE_PORTS: &str = "25,587,3306,4444,5432,6379,9300,11211";

/// The controller's identity: the service account `weft-controller` in the
/// control namespace `weft`, trust domain `cluster.local`.
pub const DEFAULT_CONTROLLER_NAME: &str =
    "weft-controller.weft.serviceaccount.identity.weft.cluster.local";

/// One documented variable: its name, its default and what it means.
pub struct Variable {
    /// The environment variable's name.
    pub name: &'static str,
    /// The value used when the variable is unset, as it would be written.
    pub default: &'static str,
    /// What the variable controls.
    pub meaning: &'static str,
}

/// Every variable the proxy reads, in the order `--help` shows them.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "WEFT_PROXY_INBOUND_LISTEN_ADDR",
        default: "0.0.0.0:4143",
        meaning: "where peers' connections arrive (the iptables REDIRECT target in transparent mode)",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
        default: "127.0.0.1:4140",
        meaning: "where the app's outbound connections arrive: redirected by iptables, or explicit HTTP proxy requests and CONNECT; up to two addresses, comma-separated (e.g. 127.0.0.1:4140,[::1]:4140 for IPv4 and IPv6)",
    },
    Variable {
        name: "WEFT_PROXY_ADMIN_LISTEN_ADDR",
        default: "127.0.0.1:4191",
        meaning: "admin server: /metrics /ready /live /config POST /shutdown",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_FORWARD_ADDR",
        default: "",
        meaning: "explicit inbound mode: send every inbound connection to this address (the app); unset = transparent, use the original destination",
    },
    Variable {
        name: "WEFT_PROXY_OPAQUE_PORTS",
        default: DEFAULT_OPAQUE_PORTS,
        meaning: "target ports forwarded as opaque TCP without protocol detection (list of ports and LOW-HIGH ranges)",
    },
    Variable {
        name: "WEFT_PROXY_DETECT_TIMEOUT",
        default: "10s",
        meaning: "how long to wait for a client's first bytes before forwarding the connection as opaque TCP",
    },
    Variable {
        name: "WEFT_PROXY_INBOUND_CONNECT_TIMEOUT",
        default: "300ms",
        meaning: "connect timeout to the local app",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_CONNECT_TIMEOUT",
        default: "1s",
        meaning: "connect timeout to remote targets",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_SVC_ADDR",
        default: "",
        meaning: "the controller's Destination service (host:port); unset = no discovery: every target is forwarded to its original destination",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_SVC_NAME",
        default: DEFAULT_CONTROLLER_NAME,
        meaning: "the identity the Destination service's TLS certificate must carry (used only with identity, when the connection is TLS)",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_CONTEXT",
        default: "",
        meaning: "context token sent with every discovery lookup, e.g. {\"ns\":\"shop\",\"pod\":\"web-1\"}",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES",
        default: "svc.cluster.local.",
        meaning: "names looked up in discovery (comma-separated suffixes; \".\" = every name)",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
        default: "",
        meaning: "IP networks whose addresses are looked up in discovery (comma-separated CIDRs, e.g. 10.0.0.0/8,fd00::/8); empty = none",
    },
    Variable {
        name: "WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT",
        default: "500ms",
        meaning: "how long a new target waits for its first discovery answer before being forwarded to its original destination",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_SVC_ADDR",
        default: "",
        meaning: "the controller's identity service (host:port); unset = no identity. When set, the proxy is ready only once it holds a certificate",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_TOKEN_FILE",
        default: "",
        meaning: "file with the token proving the workload's identity (read at every renewal); required with the identity service",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_LOCAL_NAME",
        default: "",
        meaning: "the identity to request, e.g. web.shop.serviceaccount.identity.weft.cluster.local; required with the identity service",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
        default: "",
        meaning: "PEM certificates of the mesh's trust anchors; required with the identity service",
    },
    Variable {
        name: "WEFT_PROXY_IDENTITY_SVC_NAME",
        default: DEFAULT_CONTROLLER_NAME,
        meaning: "the identity the identity service's TLS certificate must carry (used only when the connection is TLS)",
    },
    Variable {
        name: "WEFT_PROXY_CONTROL_PLANE_TLS",
        default: "auto",
        meaning: "TLS to the controller (with identity): auto = TLS unless the address is a loopback IP or localhost; always; never. Identity: the controller verified, no client certificate; Destination: mutual TLS with the proxy's certificate",
    },
    Variable {
        name: "WEFT_PROXY_TAP_LISTEN_ADDR",
        default: "127.0.0.1:4190",
        meaning: "tap server (gRPC io.linkerd.proxy.tap.Tap/Observe: live request events): plaintext clients on loopback, or TLS clients whose certificate names WEFT_PROXY_TAP_SVC_NAME; off or empty = no tap. At the default, a taken port (several proxies on one host) disables tap with a warning; a set address that cannot be bound fails start-up",
    },
    Variable {
        name: "WEFT_PROXY_TAP_SVC_NAME",
        default: DEFAULT_CONTROLLER_NAME,
        meaning: "the identity a TLS tap client's certificate must carry (TLS on the tap port needs the WEFT_PROXY_IDENTITY_* variables)",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT",
        default: "5s",
        meaning: "discovery lookups unused for this long are dropped",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT",
        default: "3s",
        meaning: "a service with no ready endpoint for this long answers 503 instead of holding requests",
    },
    Variable {
        name: "WEFT_PROXY_OUTBOUND_MAX_PENDING",
        default: "10000",
        meaning: "requests and connections that may wait for endpoints at once; more are refused with 503",
    },
    Variable {
        name: "WEFT_PROXY_HTTP1_POOL_IDLE_TIMEOUT",
        default: "3s",
        meaning: "idle HTTP/1.1 upstream connections are closed after this",
    },
    Variable {
        name: "WEFT_PROXY_HTTP1_POOL_MAX_IDLE",
        default: "100",
        meaning: "idle HTTP/1.1 connections kept per endpoint",
    },
    Variable {
        name: "WEFT_PROXY_METRICS_RETAIN_IDLE",
        default: "10m",
        meaning: "metric label sets not updated for this long are dropped",
    },
    Variable {
        name: "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD",
        default: "30s",
        meaning: "on SIGTERM, SIGINT or POST /shutdown: how long in-flight requests and connections may take to finish",
    },
    Variable {
        name: "WEFT_PROXY_CORES",
        default: "1",
        meaning: "worker threads for the data path (1 = single-threaded runtime)",
    },
    Variable {
        name: "WEFT_PROXY_LOG",
        default: "warn,weft_proxy=info",
        meaning: "log filter (tracing env-filter syntax)",
    },
    Variable {
        name: "WEFT_PROXY_LOG_FORMAT",
        default: "plain",
        meaning: "log format: plain or json",
    },
];

/// The proxy's effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listener for peers' connections.
    pub inbound_listen_addr: SocketAddr,
    /// Listeners for the app's outbound connections (one or two: IPv4 and IPv6).
    pub outbound_listen_addrs: Vec<SocketAddr>,
    /// Listener for the admin server.
    pub admin_listen_addr: SocketAddr,
    /// Where inbound connections go in explicit mode; `None` = transparent.
    pub inbound_forward_addr: Option<SocketAddr>,
    /// Target ports that skip protocol detection.
    pub opaque_ports: PortSet,
    /// Bound on protocol detection.
    pub detect_timeout: Duration,
    /// Connect timeout towards the local app.
    pub inbound_connect_timeout: Duration,
    /// Connect timeout towards remote targets.
    pub outbound_connect_timeout: Duration,
    /// Discovery settings; `None` when no Destination service is configured.
    pub destination: Option<DestinationConfig>,
    /// Identity settings; `None` when no identity service is configured.
    pub identity: Option<IdentityConfig>,
    /// When connections to the control plane use TLS (with identity only).
    pub control_plane_tls: ControlPlaneTls,
    /// The tap server; `None` when turned off.
    pub tap: Option<TapConfig>,
    /// Unused discovery lookups are dropped after this.
    pub discovery_idle_timeout: Duration,
    /// How long a backend may have no ready endpoint before requests fail.
    pub failfast_timeout: Duration,
    /// Requests and connections allowed to wait for endpoints at once.
    pub max_pending: usize,
    /// Idle timeout of pooled HTTP/1.1 upstream connections.
    pub http1_pool_idle_timeout: Duration,
    /// Idle HTTP/1.1 connections kept per endpoint.
    pub http1_pool_max_idle: usize,
    /// How long an unused metric label set is kept.
    pub metrics_retain_idle: Duration,
    /// Upper bound on a graceful shutdown.
    pub shutdown_grace_period: Duration,
    /// Data-path worker threads.
    pub cores: usize,
    /// Log filter.
    pub log: String,
    /// Log output format.
    pub log_format: LogFormat,
}

/// Where and what the proxy asks the Destination service.
#[derive(Clone, Debug)]
pub struct DestinationConfig {
    /// `host:port` of the Destination service.
    pub addr: String,
    /// The identity its TLS certificate must carry.
    pub svc_name: String,
    /// The context token sent with every lookup.
    pub context_token: String,
    /// Names with one of these suffixes are looked up.
    pub profile_suffixes: Vec<String>,
    /// Addresses in these networks are looked up.
    pub profile_networks: Vec<IpNetwork>,
    /// A lookup's first answer is awaited at most this long.
    pub initial_timeout: Duration,
}

/// Where the tap server listens and whom it serves.
#[derive(Clone, Debug)]
pub struct TapConfig {
    /// The tap listener's address.
    pub listen_addr: SocketAddr,
    /// Whether the address was set (a taken default only disables tap).
    pub listen_addr_set: bool,
    /// The identity a TLS tap client must present.
    pub svc_name: String,
}

/// Where the proxy gets its certificate and which roots it trusts.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// `host:port` of the identity service.
    pub svc_addr: String,
    /// The identity its TLS certificate must carry.
    pub svc_name: String,
    /// The token file.
    pub token_file: std::path::PathBuf,
    /// The identity to request.
    pub local_name: String,
    /// The trust anchors, each DER.
    pub trust_anchors: Vec<Vec<u8>>,
}

/// An IP network (`10.0.0.0/8`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// The network of `address` with a `prefix`-bit mask (cut to 32 bits
    /// for IPv4, 128 for IPv6).
    pub fn new(address: IpAddr, prefix: u8) -> IpNetwork {
        let max = if address.is_ipv4() { 32 } else { 128 };
        IpNetwork {
            address,
            prefix: prefix.min(max),
        }
    }

    /// Parses `ADDRESS/PREFIX` (a bare address is a single-address network).
    pub fn parse(text: &str) -> Result<IpNetwork, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not a network: expected e.g. 10.0.0.0/8"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(prefix) if prefix <= max => prefix,
                _ => return Err(format!("{text:?}: prefix must be 0-{max}")),
            },
        };
        Ok(IpNetwork { address, prefix })
    }

    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.address, self.prefix)
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
    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|range| range.contains(&port))
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

/// One bad variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidVariable {
    /// The variable's name.
    pub name: String,
    /// The value it had.
    pub value: String,
    /// Why it was refused.
    pub reason: String,
}

/// Every bad variable found while reading the environment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The bad variables, in the order they were read.
    pub invalid: Vec<InvalidVariable>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            formatter,
            "invalid configuration ({} variable{}):",
            self.invalid.len(),
            if self.invalid.len() == 1 { "" } else { "s" }
        )?;
        for invalid in &self.invalid {
            writeln!(
                formatter,
                "  {}={:?}: {}",
                invalid.name, invalid.value, invalid.reason
            )?;
        }
        Ok(())
    }
}

/// Reads variables, remembering every failure instead of stopping at the first.
struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    invalid: Vec<InvalidVariable>,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> String {
        (self.lookup)(name).unwrap_or_else(|| default_of(name).to_string())
    }

    /// The variable's parsed value. A bad value is remembered and the
    /// documented default stands in, so reading goes on and every mistake is
    /// reported together.
    fn value<T>(&mut self, name: &str, parse: impl Fn(&str) -> Result<T, String>) -> T {
        let value = self.raw(name);
        match parse(&value) {
            Ok(parsed) => parsed,
            Err(reason) => {
                self.refuse(name, &value, reason);
                parse(default_of(name)).expect("every documented default parses")
            }
        }
    }

    fn refuse(&mut self, name: &str, value: &str, reason: String) {
        self.invalid.push(InvalidVariable {
            name: name.to_string(),
            value: value.to_string(),
            reason,
        });
    }
}

fn default_of(name: &str) -> &'static str {
    VARIABLES
        .iter()
        .find(|variable| variable.name == name)
        .map(|variable| variable.default)
        .unwrap_or("")
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads the configuration from any name → value lookup (tests use a map).
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut reader = Reader {
            lookup,
            invalid: Vec::new(),
        };
        let config = Config {
            inbound_listen_addr: reader.value("WEFT_PROXY_INBOUND_LISTEN_ADDR", parse_socket_addr),
            outbound_listen_addrs: reader
                .value("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", parse_listen_addrs),
            admin_listen_addr: reader.value("WEFT_PROXY_ADMIN_LISTEN_ADDR", parse_socket_addr),
            inbound_forward_addr: reader.value("WEFT_PROXY_INBOUND_FORWARD_ADDR", |value| {
                if value.trim().is_empty() {
                    Ok(None)
                } else {
                    parse_socket_addr(value).map(Some)
                }
            }),
            opaque_ports: reader.value("WEFT_PROXY_OPAQUE_PORTS", parse_port_set),
            detect_timeout: reader.value("WEFT_PROXY_DETECT_TIMEOUT", parse_positive_duration),
            inbound_connect_timeout: reader.value(
                "WEFT_PROXY_INBOUND_CONNECT_TIMEOUT",
                parse_positive_duration,
            ),
            outbound_connect_timeout: reader.value(
                "WEFT_PROXY_OUTBOUND_CONNECT_TIMEOUT",
                parse_positive_duration,
            ),
            destination: read_destination(&mut reader),
            identity: read_identity(&mut reader),
            control_plane_tls: reader.value("WEFT_PROXY_CONTROL_PLANE_TLS", ControlPlaneTls::parse),
            tap: read_tap(&mut reader),
            discovery_idle_timeout: reader.value(
                "WEFT_PROXY_OUTBOUND_DISCOVERY_IDLE_TIMEOUT",
                parse_positive_duration,
            ),
            failfast_timeout: reader.value(
                "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT",
                parse_positive_duration,
            ),
            max_pending: reader.value("WEFT_PROXY_OUTBOUND_MAX_PENDING", |value| {
                match value.trim().parse::<usize>() {
                    Ok(count) if count >= 1 => Ok(count),
                    _ => Err("expected a whole number of at least 1".to_string()),
                }
            }),
            http1_pool_idle_timeout: reader
                .value("WEFT_PROXY_HTTP1_POOL_IDLE_TIMEOUT", parse_duration),
            http1_pool_max_idle: reader.value("WEFT_PROXY_HTTP1_POOL_MAX_IDLE", |value| {
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| "expected a whole number".to_string())
            }),
            metrics_retain_idle: reader
                .value("WEFT_PROXY_METRICS_RETAIN_IDLE", parse_positive_duration),
            shutdown_grace_period: reader.value("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", parse_duration),
            cores: reader.value("WEFT_PROXY_CORES", parse_cores),
            log: reader.value("WEFT_PROXY_LOG", |value| {
                tracing_subscriber::EnvFilter::try_new(value)
                    .map(|_| value.to_string())
                    .map_err(|error| format!("not a log filter: {error}"))
            }),
            log_format: reader.value("WEFT_PROXY_LOG_FORMAT", |value| {
                match value.trim().to_ascii_lowercase().as_str() {
                    "plain" => Ok(LogFormat::Plain),
                    "json" => Ok(LogFormat::Json),
                    _ => Err("expected plain or json".to_string()),
                }
            }),
        };
        config.validate(&mut reader);
        if reader.invalid.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                invalid: reader.invalid,
            })
        }
    }

    /// Checks that hold between variables.
    fn validate(&self, reader: &mut Reader<'_>) {
        let mut listeners = vec![("WEFT_PROXY_INBOUND_LISTEN_ADDR", self.inbound_listen_addr)];
        for addr in &self.outbound_listen_addrs {
            listeners.push(("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", *addr));
        }
        listeners.push(("WEFT_PROXY_ADMIN_LISTEN_ADDR", self.admin_listen_addr));
        if let Some(tap) = &self.tap {
            listeners.push(("WEFT_PROXY_TAP_LISTEN_ADDR", tap.listen_addr));
        }
        for (index, (name, addr)) in listeners.iter().enumerate() {
            for (other_name, other_addr) in &listeners[..index] {
                if addr.port() != 0 && addr == other_addr {
                    reader.refuse(
                        name,
                        &addr.to_string(),
                        format!("same address as {other_name}"),
                    );
                }
            }
        }
        if self.control_plane_tls == ControlPlaneTls::Always && self.identity.is_none() {
            reader.refuse(
                "WEFT_PROXY_CONTROL_PLANE_TLS",
                self.control_plane_tls.as_str(),
                "needs the WEFT_PROXY_IDENTITY_* variables (their trust anchors verify the controller)"
                    .to_string(),
            );
        }
        if let Some(forward) = self.inbound_forward_addr
            && forward == self.inbound_listen_addr
        {
            reader.refuse(
                "WEFT_PROXY_INBOUND_FORWARD_ADDR",
                &forward.to_string(),
                "would forward inbound traffic back to the inbound listener".to_string(),
            );
        }
    }

    /// The effective configuration as JSON, served on `/config`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "inbound_listen_addr": self.inbound_listen_addr.to_string(),
            "outbound_listen_addr": self
                .outbound_listen_addrs
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(","),
            "admin_listen_addr": self.admin_listen_addr.to_string(),
            "inbound_forward_addr": self.inbound_forward_addr.map(|addr| addr.to_string()),
            "mode": if self.inbound_forward_addr.is_some() { "explicit" } else { "transparent" },
            "opaque_ports": self.opaque_ports.to_string(),
            "detect_timeout": format_duration(self.detect_timeout),
            "inbound_connect_timeout": format_duration(self.inbound_connect_timeout),
            "outbound_connect_timeout": format_duration(self.outbound_connect_timeout),
            "destination_svc_addr": self.destination.as_ref().map(|destination| destination.addr.clone()),
            "destination_svc_name": self.destination.as_ref().map(|destination| destination.svc_name.clone()),
            "destination_context": self.destination.as_ref().map(|destination| destination.context_token.clone()),
            "destination_profile_suffixes": self.destination.as_ref().map(|destination| destination.profile_suffixes.join(",")),
            "destination_profile_networks": self.destination.as_ref().map(|destination| {
                destination.profile_networks.iter().map(IpNetwork::to_string).collect::<Vec<_>>().join(",")
            }),
            "destination_initial_timeout": self.destination.as_ref().map(|destination| format_duration(destination.initial_timeout)),
            "identity_svc_addr": self.identity.as_ref().map(|identity| identity.svc_addr.clone()),
            "identity_token_file": self.identity.as_ref().map(|identity| identity.token_file.display().to_string()),
            "identity_local_name": self.identity.as_ref().map(|identity| identity.local_name.clone()),
            "identity_trust_anchors": self.identity.as_ref().map(|identity| format!("{} certificate(s)", identity.trust_anchors.len())),
            "identity_svc_name": self.identity.as_ref().map(|identity| identity.svc_name.clone()),
            "control_plane_tls": self.control_plane_tls.as_str(),
            "tap_listen_addr": self.tap.as_ref().map_or("off".to_string(), |tap| tap.listen_addr.to_string()),
            "tap_svc_name": self.tap.as_ref().map(|tap| tap.svc_name.clone()),
            "outbound_discovery_idle_timeout": format_duration(self.discovery_idle_timeout),
            "outbound_failfast_timeout": format_duration(self.failfast_timeout),
            "outbound_max_pending": self.max_pending,
            "http1_pool_idle_timeout": format_duration(self.http1_pool_idle_timeout),
            "http1_pool_max_idle": self.http1_pool_max_idle,
            "metrics_retain_idle": format_duration(self.metrics_retain_idle),
            "shutdown_grace_period": format_duration(self.shutdown_grace_period),
            "cores": self.cores,
            "log": self.log,
            "log_format": match self.log_format { LogFormat::Plain => "plain", LogFormat::Json => "json" },
        })
    }
}

/// The text of `weft-proxy --help`.
pub fn help_text() -> String {
    let mut text = String::from(
        "weft-proxy: the weft service mesh's sidecar proxy\n\n\
         Usage: weft-proxy            (configured only by environment variables)\n\n\
         Durations are written 500ms, 10s, 2m, 1h; port sets as 25,587,8000-8100.\n\
         Invalid variables are all reported at once and the process exits 64.\n\n",
    );
    for variable in VARIABLES {
        let default = if variable.default.is_empty() {
            "unset"
        } else {
            variable.default
        };
        text.push_str(&format!(
            "  {}\n      {} (default: {})\n",
            variable.name, variable.meaning, default
        ));
    }
    text
}

/// Reads the `WEFT_PROXY_DESTINATION_*` variables (all of them, so every
/// mistake is reported); `None` when no Destination address is set.
fn read_destination(reader: &mut Reader<'_>) -> Option<DestinationConfig> {
    let addr = reader.value("WEFT_PROXY_DESTINATION_SVC_ADDR", parse_optional_host_port);
    let svc_name = reader.value("WEFT_PROXY_DESTINATION_SVC_NAME", parse_server_name);
    let context_token = reader.raw("WEFT_PROXY_DESTINATION_CONTEXT");
    let profile_suffixes = reader.value("WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES", |value| {
        Ok(value
            .split(',')
            .map(|suffix| suffix.trim().to_ascii_lowercase())
            .filter(|suffix| !suffix.is_empty())
            .collect::<Vec<_>>())
    });
    let profile_networks = reader.value("WEFT_PROXY_DESTINATION_PROFILE_NETWORKS", |value| {
        value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(IpNetwork::parse)
            .collect::<Result<Vec<_>, _>>()
    });
    let initial_timeout = reader.value(
        "WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT",
        parse_positive_duration,
    );
    addr.map(|addr| DestinationConfig {
        addr,
        svc_name,
        context_token,
        profile_suffixes,
        profile_networks,
        initial_timeout,
    })
}

/// Reads the `WEFT_PROXY_TAP_*` variables; `None` when tap is off.
fn read_tap(reader: &mut Reader<'_>) -> Option<TapConfig> {
    let listen_addr_set = (reader.lookup)("WEFT_PROXY_TAP_LISTEN_ADDR").is_some();
    let listen_addr = reader.value("WEFT_PROXY_TAP_LISTEN_ADDR", |value| {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("off") {
            Ok(None)
        } else {
            parse_socket_addr(value)
                .map(Some)
                .map_err(|reason| format!("{reason}, or off"))
        }
    });
    let svc_name = reader.value("WEFT_PROXY_TAP_SVC_NAME", parse_server_name);
    listen_addr.map(|listen_addr| TapConfig {
        listen_addr,
        listen_addr_set,
        svc_name,
    })
}

/// Reads the `WEFT_PROXY_IDENTITY_*` variables: none or all of them.
fn read_identity(reader: &mut Reader<'_>) -> Option<IdentityConfig> {
    let svc_addr = reader.value("WEFT_PROXY_IDENTITY_SVC_ADDR", parse_optional_host_port);
    let token_file = reader.raw("WEFT_PROXY_IDENTITY_TOKEN_FILE");
    let local_name = reader.raw("WEFT_PROXY_IDENTITY_LOCAL_NAME");
    let trust_anchors = reader.value("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", parse_certificates);
    let svc_name = reader.value("WEFT_PROXY_IDENTITY_SVC_NAME", parse_server_name);
    let svc_addr = svc_addr?;
    let mut complete = true;
    for (name, missing) in [
        (
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            token_file.trim().is_empty(),
        ),
        (
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            local_name.trim().is_empty(),
        ),
        (
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
            reader
                .raw("WEFT_PROXY_IDENTITY_TRUST_ANCHORS")
                .trim()
                .is_empty(),
        ),
    ] {
        if missing {
            reader.refuse(
                name,
                "",
                "required when WEFT_PROXY_IDENTITY_SVC_ADDR is set".to_string(),
            );
            complete = false;
        }
    }
    (complete && !trust_anchors.is_empty()).then(|| IdentityConfig {
        svc_addr,
        svc_name,
        token_file: token_file.trim().into(),
        local_name: local_name.trim().to_string(),
        trust_anchors,
    })
}

/// A controller identity: a DNS name (what TLS puts in SNI and verifies).
fn parse_server_name(value: &str) -> Result<String, String> {
    let value = value.trim();
    rustls_pki_types::DnsName::try_from(value)
        .map(|_| value.to_ascii_lowercase())
        .map_err(|_| "expected a DNS name, e.g. weft-controller.weft.serviceaccount.identity.weft.cluster.local".to_string())
}

/// Parses PEM certificates (empty text: none); each must be an X.509 certificate.
fn parse_certificates(value: &str) -> Result<Vec<Vec<u8>>, String> {
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
fn parse_optional_host_port(value: &str) -> Result<Option<String>, String> {
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

fn parse_socket_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:4140 or [::]:4143".to_string())
}

/// Parses one or two comma-separated listen addresses.
fn parse_listen_addrs(value: &str) -> Result<Vec<SocketAddr>, String> {
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

/// Parses `500ms`, `10s`, `2m`, `1h`, `1d`; a unit is required except for `0`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let digits_end = value
        .find(|character: char| !character.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(digits_end);
    if digits.is_empty() {
        return Err("expected a whole number with a unit: ms, s, m, h or d (e.g. 10s)".to_string());
    }
    let amount: u64 = digits.parse().map_err(|_| "number too large".to_string())?;
    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "" if amount == 0 => 0,
        "" => return Err("missing unit: write ms, s, m, h or d (e.g. 10s)".to_string()),
        _ => return Err(format!("unknown unit {unit:?}: use ms, s, m, h or d")),
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| "duration too large".to_string())
}

fn parse_positive_duration(value: &str) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration.is_zero() {
        return Err("must be greater than zero".to_string());
    }
    Ok(duration)
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

fn parse_cores(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(cores) if cores >= 1 => Ok(cores),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}

/// Writes a duration the way it is configured (`10s`, `500ms`).
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis == 0 {
        "0".to_string()
    } else if millis.is_multiple_of(3_600_000) {
        format!("{}h", millis / 3_600_000)
    } else if millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        Config::from_lookup(&move |name| map.get(name).cloned())
    }

    #[test]
    fn durations() {
        let table: &[(&str, Result<u64, ()>)] = &[
            ("10s", Ok(10_000)),
            ("500ms", Ok(500)),
            (" 2m ", Ok(120_000)),
            ("1h", Ok(3_600_000)),
            ("1d", Ok(86_400_000)),
            ("0", Ok(0)),
            ("10", Err(())),
            ("1.5s", Err(())),
            ("s", Err(())),
            ("", Err(())),
            ("10 s", Err(())),
            ("10sec", Err(())),
            ("-1s", Err(())),
        ];
        for (input, expected) in table {
            let parsed = parse_duration(input).map(|duration| duration.as_millis() as u64);
            assert_eq!(parsed.map_err(|_| ()), *expected, "input {input:?}");
        }
    }

    #[test]
    fn port_sets() {
        let set = parse_port_set("25, 587,8000-8100,,").unwrap();
        let table = [
            (25, true),
            (587, true),
            (8000, true),
            (8050, true),
            (8100, true),
            (8101, false),
            (26, false),
        ];
        for (port, expected) in table {
            assert_eq!(set.contains(port), expected, "port {port}");
        }
        assert_eq!(set.to_string(), "25,587,8000-8100");
        assert!(parse_port_set("").unwrap().ranges.is_empty());
        for bad in ["0", "70000", "9-3", "http", "1-2-3"] {
            assert!(parse_port_set(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn networks() {
        let table: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.3.4.5", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.1.1.1", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "192.168.1.1", true),
            ("0.0.0.0/0", "fd00::1", false),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
        ];
        for (network, ip, expected) in table {
            let parsed = IpNetwork::parse(network).unwrap();
            assert_eq!(
                parsed.contains(ip.parse().unwrap()),
                *expected,
                "{network} ∋ {ip}"
            );
        }
        for bad in ["10.0.0.0/33", "fd00::/129", "ten/8", "10.0.0.0/x", ""] {
            assert!(IpNetwork::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn destination_variables() {
        let config = config_from(&[]).unwrap();
        assert!(
            config.destination.is_none(),
            "no discovery unless configured"
        );
        let config = config_from(&[
            ("WEFT_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
            (
                "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
                "10.0.0.0/8, fd00::/8",
            ),
            (
                "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES",
                "svc.cluster.local.,Example.COM",
            ),
            ("WEFT_PROXY_DESTINATION_CONTEXT", "{\"ns\":\"shop\"}"),
        ])
        .unwrap();
        let destination = config.destination.unwrap();
        assert_eq!(destination.addr, "127.0.0.1:8086");
        assert_eq!(destination.profile_networks.len(), 2);
        assert_eq!(
            destination.profile_suffixes,
            vec!["svc.cluster.local.".to_string(), "example.com".to_string()]
        );
        assert_eq!(destination.context_token, "{\"ns\":\"shop\"}");
        assert_eq!(destination.initial_timeout, Duration::from_millis(500));
        let error = config_from(&[
            ("WEFT_PROXY_DESTINATION_SVC_ADDR", "controller"),
            ("WEFT_PROXY_DESTINATION_PROFILE_NETWORKS", "10.0.0.0/40"),
            ("WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT", "0"),
        ])
        .unwrap_err();
        let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "WEFT_PROXY_DESTINATION_SVC_ADDR",
                "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
                "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT"
            ]
        );
    }

    #[test]
    fn identity_variables_come_together() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let anchor = rcgen::CertificateParams::new(vec!["root.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let config = config_from(&[
            ("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080"),
            ("WEFT_PROXY_IDENTITY_TOKEN_FILE", "/var/run/weft/token"),
            (
                "WEFT_PROXY_IDENTITY_LOCAL_NAME",
                "web.shop.serviceaccount.identity.weft.cluster.local",
            ),
            ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", &anchor),
        ])
        .unwrap();
        let identity = config.identity.unwrap();
        assert_eq!(identity.trust_anchors.len(), 1);
        assert!(config_from(&[]).unwrap().identity.is_none());

        let error = config_from(&[("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080")]).unwrap_err();
        let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "WEFT_PROXY_IDENTITY_TOKEN_FILE",
                "WEFT_PROXY_IDENTITY_LOCAL_NAME",
                "WEFT_PROXY_IDENTITY_TRUST_ANCHORS"
            ]
        );
        let error = config_from(&[
            ("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080"),
            ("WEFT_PROXY_IDENTITY_TOKEN_FILE", "/t"),
            ("WEFT_PROXY_IDENTITY_LOCAL_NAME", "a.b"),
            ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", "not a certificate"),
        ])
        .unwrap_err();
        assert_eq!(error.invalid.len(), 1, "{error}");
        assert_eq!(error.invalid[0].name, "WEFT_PROXY_IDENTITY_TRUST_ANCHORS");
    }

    #[test]
    fn control_plane_tls_variables() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let anchor = rcgen::CertificateParams::new(vec!["root.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        let identity = [
            ("WEFT_PROXY_IDENTITY_SVC_ADDR", "10.0.0.1:8080"),
            ("WEFT_PROXY_IDENTITY_TOKEN_FILE", "/t"),
            ("WEFT_PROXY_IDENTITY_LOCAL_NAME", "a.b"),
            ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", anchor.as_str()),
            ("WEFT_PROXY_DESTINATION_SVC_ADDR", "10.0.0.1:8086"),
        ];
        let config = config_from(&identity).unwrap();
        assert_eq!(config.control_plane_tls, ControlPlaneTls::Auto);
        assert_eq!(config.identity.unwrap().svc_name, DEFAULT_CONTROLLER_NAME);
        assert_eq!(
            config.destination.unwrap().svc_name,
            DEFAULT_CONTROLLER_NAME
        );

        let mut named = identity.to_vec();
        named.extend([
            ("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
            ("WEFT_PROXY_IDENTITY_SVC_NAME", "Identity.Weft.Example"),
            ("WEFT_PROXY_DESTINATION_SVC_NAME", "dst.weft.example"),
        ]);
        let config = config_from(&named).unwrap();
        assert_eq!(config.control_plane_tls, ControlPlaneTls::Always);
        assert_eq!(config.identity.unwrap().svc_name, "identity.weft.example");
        assert_eq!(config.destination.unwrap().svc_name, "dst.weft.example");

        // Every mistake, each with its name, value and reason.
        let mut bad = identity.to_vec();
        bad.extend([
            ("WEFT_PROXY_CONTROL_PLANE_TLS", "sometimes"),
            ("WEFT_PROXY_IDENTITY_SVC_NAME", "not a name"),
            ("WEFT_PROXY_DESTINATION_SVC_NAME", "10.0.0.1:8086"),
        ]);
        let error = config_from(&bad).unwrap_err();
        let found: Vec<(&str, &str)> = error
            .invalid
            .iter()
            .map(|bad| (bad.name.as_str(), bad.value.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("WEFT_PROXY_DESTINATION_SVC_NAME", "10.0.0.1:8086"),
                ("WEFT_PROXY_IDENTITY_SVC_NAME", "not a name"),
                ("WEFT_PROXY_CONTROL_PLANE_TLS", "sometimes"),
            ],
            "{error}"
        );
        assert!(error.to_string().contains("expected auto, always or never"));

        // `always` needs trust anchors to verify the controller with.
        let error = config_from(&[
            ("WEFT_PROXY_DESTINATION_SVC_ADDR", "10.0.0.1:8086"),
            ("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
        ])
        .unwrap_err();
        assert_eq!(error.invalid.len(), 1, "{error}");
        assert_eq!(error.invalid[0].name, "WEFT_PROXY_CONTROL_PLANE_TLS");
        assert!(
            config_from(&[("WEFT_PROXY_CONTROL_PLANE_TLS", "never")]).is_ok(),
            "never needs nothing"
        );
    }

    #[test]
    fn defaults() {
        let config = config_from(&[]).unwrap();
        assert_eq!(config.inbound_listen_addr.to_string(), "0.0.0.0:4143");
        assert_eq!(
            config.outbound_listen_addrs,
            ["127.0.0.1:4140".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(config.admin_listen_addr.to_string(), "127.0.0.1:4191");
        assert_eq!(config.inbound_forward_addr, None);
        assert!(config.opaque_ports.contains(6379));
        assert!(!config.opaque_ports.contains(80));
        assert_eq!(config.detect_timeout, Duration::from_secs(10));
        assert_eq!(config.cores, 1);
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let error = config_from(&[
            ("WEFT_PROXY_INBOUND_LISTEN_ADDR", "nowhere"),
            ("WEFT_PROXY_DETECT_TIMEOUT", "10"),
            ("WEFT_PROXY_OPAQUE_PORTS", "99999"),
            ("WEFT_PROXY_CORES", "0"),
            ("WEFT_PROXY_LOG_FORMAT", "xml"),
        ])
        .unwrap_err();
        let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "WEFT_PROXY_INBOUND_LISTEN_ADDR",
                "WEFT_PROXY_OPAQUE_PORTS",
                "WEFT_PROXY_DETECT_TIMEOUT",
                "WEFT_PROXY_CORES",
                "WEFT_PROXY_LOG_FORMAT"
            ]
        );
        let text = error.to_string();
        assert!(
            text.contains("WEFT_PROXY_DETECT_TIMEOUT=\"10\": missing unit"),
            "{text}"
        );
    }

    #[test]
    fn one_or_two_outbound_listeners() {
        let config = config_from(&[(
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
            "127.0.0.1:4140, [::1]:4140",
        )])
        .unwrap();
        assert_eq!(config.outbound_listen_addrs.len(), 2);
        for bad in ["", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "127.0.0.1:1,x"] {
            assert!(
                config_from(&[("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", bad)]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cross_field_checks() {
        let error = config_from(&[
            ("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:5000"),
            ("WEFT_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:5000"),
            ("WEFT_PROXY_INBOUND_FORWARD_ADDR", "0.0.0.0:4143"),
        ])
        .unwrap_err();
        let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "WEFT_PROXY_ADMIN_LISTEN_ADDR",
                "WEFT_PROXY_INBOUND_FORWARD_ADDR"
            ]
        );
    }

    #[test]
    fn tap_variables() {
        let tap = config_from(&[]).unwrap().tap.unwrap();
        assert_eq!(tap.listen_addr.to_string(), "127.0.0.1:4190");
        assert!(!tap.listen_addr_set);
        assert_eq!(tap.svc_name, DEFAULT_CONTROLLER_NAME);
        for off in ["off", "OFF", "", " "] {
            let config = config_from(&[("WEFT_PROXY_TAP_LISTEN_ADDR", off)]).unwrap();
            assert!(config.tap.is_none(), "{off:?}");
            assert_eq!(config.to_json()["tap_listen_addr"], "off");
        }
        let tap = config_from(&[
            ("WEFT_PROXY_TAP_LISTEN_ADDR", "0.0.0.0:14190"),
            ("WEFT_PROXY_TAP_SVC_NAME", "Tap.Weft.Example"),
        ])
        .unwrap()
        .tap
        .unwrap();
        assert_eq!(tap.listen_addr.to_string(), "0.0.0.0:14190");
        assert!(tap.listen_addr_set);
        assert_eq!(tap.svc_name, "tap.weft.example");
        let error = config_from(&[
            ("WEFT_PROXY_TAP_LISTEN_ADDR", "sometimes"),
            ("WEFT_PROXY_TAP_SVC_NAME", "not a name"),
        ])
        .unwrap_err();
        let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
        assert_eq!(
            names,
            ["WEFT_PROXY_TAP_LISTEN_ADDR", "WEFT_PROXY_TAP_SVC_NAME"]
        );
        let error = config_from(&[
            ("WEFT_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:5000"),
            ("WEFT_PROXY_TAP_LISTEN_ADDR", "127.0.0.1:5000"),
        ])
        .unwrap_err();
        assert_eq!(error.invalid[0].name, "WEFT_PROXY_TAP_LISTEN_ADDR");
    }

    #[test]
    fn help_lists_every_variable() {
        let help = help_text();
        for variable in VARIABLES {
            assert!(help.contains(variable.name));
        }
    }
}

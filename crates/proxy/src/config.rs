//! The proxy's configuration: read once from `WEFT_PROXY_*` environment
//! variables into a typed [`Config`].
//!
//! Every variable is parsed even after an earlier one failed, so one start-up
//! reports every mistake together (name, value, reason); `main` then exits 64.
//! The same table of variables drives parsing, `weft-proxy --help` and the
//! admin server's `/config`.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub use crate::control::ControlPlaneTls;

mod values;
mod variables;

#[cfg(test)]
mod tests;

pub use values::{
    DetectTimeoutAction, IpNetwork, LogFormat, PortSet, detect_timeout_action, format_duration,
    parse_duration, parse_port_set,
};
use values::{
    parse_certificates, parse_connection_limit, parse_cores, parse_default_policy,
    parse_listen_addrs, parse_networks, parse_optional_delay, parse_optional_host_port,
    parse_policy_workload, parse_positive_duration, parse_server_name, parse_socket_addr,
};
pub use variables::{DEFAULT_CONTROLLER_NAME, DEFAULT_OPAQUE_PORTS, VARIABLES, Variable};
pub use weft_core::policy::DefaultPolicy;

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
    /// The ports a transport header may name (the workload's app ports);
    /// `None` when unset (see `inbound_policy`).
    pub inbound_ports: Option<PortSet>,
    /// Ports a transport header may never name, beyond the defaults.
    pub inbound_deny_ports: PortSet,
    /// What an inbound detect timeout does; `None`: by identity.
    pub inbound_detect_timeout_action: Option<DetectTimeoutAction>,
    /// Bound on protocol detection.
    pub detect_timeout: Duration,
    /// How long a client may stay silent before the proxy connects to a
    /// known target to let a server speak first; `None`: never.
    pub server_first_delay: Option<Duration>,
    /// Bound on reading an HTTP/1 request head (or the HTTP/2 preface).
    pub http_header_read_timeout: Duration,
    /// HTTP connections with no request open for this long are closed.
    pub http_idle_timeout: Duration,
    /// Accepted inbound connections open at once.
    pub inbound_max_connections: usize,
    /// Accepted outbound connections open at once.
    pub outbound_max_connections: usize,
    /// Connect timeout towards the local app.
    pub inbound_connect_timeout: Duration,
    /// Connect timeout towards remote targets.
    pub outbound_connect_timeout: Duration,
    /// Discovery settings; `None` when no Destination service is configured.
    pub destination: Option<DestinationConfig>,
    /// Identity settings; `None` when no identity service is configured.
    pub identity: Option<IdentityConfig>,
    /// Policy API settings; `None` without `WEFT_PROXY_POLICY_WORKLOAD` or
    /// without a policy (or Destination) address.
    pub policy: Option<PolicyConfig>,
    /// Inbound policy of a port the controller has no policy for, and of
    /// every port before its first answer or without a controller.
    pub inbound_default_policy: DefaultPolicy,
    /// The networks `cluster-*` default policies admit.
    pub policy_cluster_networks: Vec<IpNetwork>,
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
    /// HTTP/1.1 connections per meshed endpoint that takes HTTP/2, used
    /// while free before requests travel upgraded.
    pub meshed_http1_connections: usize,
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

/// Where and as whom the proxy asks the policy APIs
/// (`io.linkerd.proxy.inbound.InboundServerPolicies`,
/// `io.linkerd.proxy.outbound.OutboundPolicies`).
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// `host:port` of the policy service (the Destination address unless
    /// `WEFT_PROXY_POLICY_SVC_ADDR` says otherwise).
    pub addr: String,
    /// The identity its TLS certificate must carry.
    pub svc_name: String,
    /// The workload the proxy serves, sent with every request:
    /// `{"ns":"<namespace>","pod":"<name>"}`.
    pub workload: String,
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
        let mut config = Config {
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
            inbound_ports: reader.value("WEFT_PROXY_INBOUND_PORTS", |value| {
                parse_port_set(value).map(|ports| (!ports.is_empty()).then_some(ports))
            }),
            inbound_deny_ports: reader.value("WEFT_PROXY_INBOUND_DENY_PORTS", parse_port_set),
            inbound_detect_timeout_action: reader.value(
                "WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION",
                DetectTimeoutAction::parse,
            ),
            detect_timeout: reader.value("WEFT_PROXY_DETECT_TIMEOUT", parse_positive_duration),
            server_first_delay: reader.value("WEFT_PROXY_SERVER_FIRST_DELAY", parse_optional_delay),
            http_header_read_timeout: reader.value(
                "WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT",
                parse_positive_duration,
            ),
            http_idle_timeout: reader
                .value("WEFT_PROXY_HTTP_IDLE_TIMEOUT", parse_positive_duration),
            inbound_max_connections: reader
                .value("WEFT_PROXY_INBOUND_MAX_CONNECTIONS", parse_connection_limit),
            outbound_max_connections: reader.value(
                "WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS",
                parse_connection_limit,
            ),
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
            policy: None,
            inbound_default_policy: reader
                .value("WEFT_PROXY_INBOUND_DEFAULT_POLICY", parse_default_policy),
            policy_cluster_networks: reader
                .value("WEFT_PROXY_POLICY_CLUSTER_NETWORKS", parse_networks),
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
            meshed_http1_connections: reader.value(
                "WEFT_PROXY_MESHED_HTTP1_CONNECTIONS",
                |value| {
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| "expected a whole number".to_string())
                },
            ),
            metrics_retain_idle: reader
                .value("WEFT_PROXY_METRICS_RETAIN_IDLE", parse_positive_duration),
            shutdown_grace_period: reader.value("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", parse_duration),
            cores: reader.value("WEFT_PROXY_CORES", parse_cores),
            log: reader.value("WEFT_PROXY_LOG", |value| {
                // The filter parser slices a directive that starts with white
                // space at shifted byte offsets, and panics when one falls
                // inside a multi-byte character.
                if !value.is_ascii() {
                    return Err("not a log filter: only ASCII is allowed".to_string());
                }
                // A field value (`[span{field=value}]`) is compiled into a
                // DFA whose size can grow exponentially with the pattern:
                // `{f=a.........................b}` takes minutes.
                let field_value = value.split('{').skip(1).any(|fields| {
                    fields
                        .split('}')
                        .next()
                        .is_some_and(|fields| fields.contains('='))
                });
                if field_value {
                    return Err(
                        "not a log filter: span field values ({field=value}) are not supported"
                            .to_string(),
                    );
                }
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
        config.policy = read_policy(&mut reader, config.destination.as_ref());
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

    /// What an inbound detect timeout does (the variable, else by identity).
    pub fn inbound_detect_timeout_action(&self) -> DetectTimeoutAction {
        detect_timeout_action(self.inbound_detect_timeout_action, self.identity.is_some())
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
            "inbound_ports": self.inbound_ports.as_ref().map(PortSet::to_string),
            "inbound_deny_ports": self.inbound_deny_ports.to_string(),
            "inbound_detect_timeout_action": self.inbound_detect_timeout_action().as_str(),
            "detect_timeout": format_duration(self.detect_timeout),
            "server_first_delay": self.server_first_delay.map_or("off".to_string(), format_duration),
            "http_header_read_timeout": format_duration(self.http_header_read_timeout),
            "http_idle_timeout": format_duration(self.http_idle_timeout),
            "inbound_max_connections": self.inbound_max_connections,
            "outbound_max_connections": self.outbound_max_connections,
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
            "policy_svc_addr": self.policy.as_ref().map(|policy| policy.addr.clone()),
            "policy_svc_name": self.policy.as_ref().map(|policy| policy.svc_name.clone()),
            "policy_workload": self.policy.as_ref().map(|policy| policy.workload.clone()),
            "inbound_default_policy": self.inbound_default_policy.as_str(),
            "policy_cluster_networks": self.policy_cluster_networks.iter().map(IpNetwork::to_string).collect::<Vec<_>>().join(","),
            "control_plane_tls": self.control_plane_tls.as_str(),
            "tap_listen_addr": self.tap.as_ref().map_or("off".to_string(), |tap| tap.listen_addr.to_string()),
            "tap_svc_name": self.tap.as_ref().map(|tap| tap.svc_name.clone()),
            "outbound_discovery_idle_timeout": format_duration(self.discovery_idle_timeout),
            "outbound_failfast_timeout": format_duration(self.failfast_timeout),
            "outbound_max_pending": self.max_pending,
            "http1_pool_idle_timeout": format_duration(self.http1_pool_idle_timeout),
            "http1_pool_max_idle": self.http1_pool_max_idle,
            "meshed_http1_connections": self.meshed_http1_connections,
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
         Durations are written 500ms, 10s, 2m, 1h, 1d, 1m30s; port sets as 25,587,8000-8100.\n\
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
    let profile_networks = reader.value("WEFT_PROXY_DESTINATION_PROFILE_NETWORKS", parse_networks);
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

/// Reads the `WEFT_PROXY_POLICY_*` variables; `None` without a workload
/// name or without an address (its own, else the Destination service's).
fn read_policy(
    reader: &mut Reader<'_>,
    destination: Option<&DestinationConfig>,
) -> Option<PolicyConfig> {
    let addr = reader.value("WEFT_PROXY_POLICY_SVC_ADDR", parse_optional_host_port);
    let svc_name = reader.value("WEFT_PROXY_POLICY_SVC_NAME", |value| {
        if value.trim().is_empty() {
            Ok(None)
        } else {
            parse_server_name(value).map(Some)
        }
    });
    let workload = reader.value("WEFT_PROXY_POLICY_WORKLOAD", parse_policy_workload)?;
    let addr = addr.or_else(|| destination.map(|destination| destination.addr.clone()))?;
    let svc_name = svc_name
        .or_else(|| destination.map(|destination| destination.svc_name.clone()))
        .unwrap_or_else(|| DEFAULT_CONTROLLER_NAME.to_string());
    Some(PolicyConfig {
        addr,
        svc_name,
        workload,
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

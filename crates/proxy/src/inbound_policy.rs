//! What the inbound side accepts, and from whom: pure decisions, table-tested.
//!
//! ```text
//! TLS for our identity, ALPN transport.l5d.io/v1, transport header names port P
//!   no verified client certificate ─────────────► refused (no client certificate)
//!   P ∉ allowed ports (see InboundPorts) ───────► refused (port not allowed)
//!   otherwise ──────────────────────────────────► served on the workload's port P
//! detection timed out (client silent, or a request line never finished)
//!   WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION, or by default: close with
//!   identity on, forward without ───────────────► closed (detect timeout) | relayed
//! ```
//!
//! The detect-timeout action is a configuration value
//! ([`crate::config::DetectTimeoutAction`], its default decided with the
//! rest of the effective configuration); the inbound stage applies it.
//!
//! Which ports a transport header may name:
//!
//! - `WEFT_PROXY_INBOUND_PORTS` set: only those (the workload's app ports).
//! - else, `WEFT_PROXY_INBOUND_FORWARD_ADDR` set: only the forward address's
//!   port (explicit mode has one app port the proxy knows of).
//! - else (transparent mode): any port except the proxy's own listeners,
//!   the well-known proxy and controller ports ([`DEFAULT_DENIED_PORTS`]) and
//!   `WEFT_PROXY_INBOUND_DENY_PORTS`.
//!
//! The proxy's own listener ports are refused in every mode.

use crate::config::PortSet;

/// Ports a transport header may never name in transparent mode: Linkerd's
/// and weft's proxy ports (outbound 4140, inbound 4143, tap 4190, admin
/// 4191) and the control plane's (weft's web API 8084, Destination 8086,
/// admin 9990; Linkerd's policy 8090 and admin 9995-9997). The identity port
/// 8080 is left out: it is the most common app port of all. Add it (or any
/// other) with `WEFT_PROXY_INBOUND_DENY_PORTS`.
pub(crate) const DEFAULT_DENIED_PORTS: &[u16] = &[
    4140, 4143, 4190, 4191, 8084, 8086, 8090, 9990, 9995, 9996, 9997,
];

/// Why an inbound connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// A transport header from a client without a verified mesh certificate.
    #[error("direct connections must be mutually authenticated: no client certificate")]
    NoClientCertificate,
    /// The transport header names a port the workload does not serve.
    #[error("transport header names port {0}, which is not one of the workload's ports")]
    PortNotAllowed(u16),
    /// The transport header names one of the proxy's own listeners.
    #[error("transport header names port {0}, one of the proxy's own listeners")]
    OwnListener(u16),
    /// A connection to the inbound port itself without a transport header.
    #[error("direct connections to the inbound port need mutual TLS with a transport header")]
    DirectWithoutTransportHeader,
    /// The client sent no complete request before the detect timeout.
    #[error("no protocol detected before the detect timeout")]
    DetectTimeout,
    /// The request line did not fit in the detection buffer.
    #[error("request line longer than the detection buffer")]
    RequestLineTooLong,
    /// A first line naming `HTTP/` that the proxy's parser refuses.
    #[error("malformed HTTP request line")]
    MalformedRequestLine,
}

impl Refusal {
    /// The `inbound_tcp_errors_total` `error` label.
    pub(crate) fn metric_label(self) -> &'static str {
        match self {
            Refusal::NoClientCertificate => "no client certificate",
            Refusal::PortNotAllowed(_) => "port not allowed",
            Refusal::OwnListener(_) => "own listener",
            Refusal::DirectWithoutTransportHeader => "direct without transport header",
            Refusal::DetectTimeout => "detect timeout",
            Refusal::RequestLineTooLong => "request line too long",
            Refusal::MalformedRequestLine => "malformed request line",
        }
    }
}

/// The port rules for transport headers, from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InboundPorts<'a> {
    /// `WEFT_PROXY_INBOUND_PORTS`, when set.
    pub allowed: Option<&'a PortSet>,
    /// The port of `WEFT_PROXY_INBOUND_FORWARD_ADDR`, when set.
    pub forward_port: Option<u16>,
    /// `WEFT_PROXY_INBOUND_DENY_PORTS`.
    pub denied: &'a PortSet,
    /// The proxy's own listener ports (inbound, outbound, admin, tap).
    pub own_ports: &'a [u16],
}

/// Whether a transport header from a client with `client_identity` may
/// name `port`.
pub(crate) fn transport_header_allowed(
    client_identity: Option<&str>,
    port: u16,
    ports: &InboundPorts<'_>,
) -> Result<(), Refusal> {
    if client_identity.is_none() {
        return Err(Refusal::NoClientCertificate);
    }
    inbound_port_allowed(port, ports)
}

/// Whether a transport header may name `port` (see the module docs).
pub(crate) fn inbound_port_allowed(port: u16, ports: &InboundPorts<'_>) -> Result<(), Refusal> {
    if ports.own_ports.contains(&port) {
        return Err(Refusal::OwnListener(port));
    }
    let allowed = match (ports.allowed, ports.forward_port) {
        (Some(allowed), _) => allowed.contains(port),
        (None, Some(forward_port)) => port == forward_port,
        (None, None) => !DEFAULT_DENIED_PORTS.contains(&port) && !ports.denied.contains(port),
    };
    if allowed {
        Ok(())
    } else {
        Err(Refusal::PortNotAllowed(port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DetectTimeoutAction, detect_timeout_action, parse_port_set};

    #[test]
    fn transport_header_table() {
        let app_ports = parse_port_set("8080,9000-9001").unwrap();
        let denied = parse_port_set("6000").unwrap();
        let nothing = PortSet::default();
        let own = [4143, 4140, 4191, 4190, 14143];
        let listed = InboundPorts {
            allowed: Some(&app_ports),
            forward_port: Some(8080),
            denied: &nothing,
            own_ports: &own,
        };
        let forward_only = InboundPorts {
            allowed: None,
            forward_port: Some(8080),
            denied: &nothing,
            own_ports: &own,
        };
        let transparent = InboundPorts {
            allowed: None,
            forward_port: None,
            denied: &denied,
            own_ports: &own,
        };
        let mesh = Some("web.shop.serviceaccount.identity.weft.cluster.local");
        use Refusal::*;
        type Case<'a> = (
            &'a InboundPorts<'a>,
            Option<&'a str>,
            u16,
            Result<(), Refusal>,
        );
        let table: &[Case<'_>] = &[
            (&listed, None, 8080, Err(NoClientCertificate)),
            (&listed, None, 4191, Err(NoClientCertificate)),
            (&listed, mesh, 8080, Ok(())),
            (&listed, mesh, 9001, Ok(())),
            (&listed, mesh, 9002, Err(PortNotAllowed(9002))),
            (&listed, mesh, 4191, Err(OwnListener(4191))),
            (&listed, mesh, 14143, Err(OwnListener(14143))),
            (&forward_only, mesh, 8080, Ok(())),
            (&forward_only, mesh, 9000, Err(PortNotAllowed(9000))),
            (&forward_only, mesh, 8086, Err(PortNotAllowed(8086))),
            (&forward_only, None, 8080, Err(NoClientCertificate)),
            (&transparent, mesh, 8080, Ok(())),
            (&transparent, mesh, 5432, Ok(())),
            (&transparent, mesh, 6000, Err(PortNotAllowed(6000))),
            (&transparent, mesh, 8086, Err(PortNotAllowed(8086))),
            (&transparent, mesh, 9990, Err(PortNotAllowed(9990))),
            (&transparent, mesh, 4143, Err(OwnListener(4143))),
            (&transparent, mesh, 14143, Err(OwnListener(14143))),
            (&transparent, None, 8080, Err(NoClientCertificate)),
        ];
        for (ports, identity, port, expected) in table {
            assert_eq!(
                transport_header_allowed(*identity, *port, ports),
                *expected,
                "{identity:?} port {port} with {ports:?}"
            );
        }
    }

    #[test]
    fn the_variables_are_read_and_bad_values_named() {
        use crate::config::Config;
        let lookup = |values: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                values
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let config = Config::from_lookup(&lookup(&[
            ("WEFT_PROXY_INBOUND_PORTS", "8080,9000-9001"),
            ("WEFT_PROXY_INBOUND_DENY_PORTS", "6000"),
            ("WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION", "forward"),
        ]))
        .unwrap();
        assert_eq!(
            config.inbound_ports.as_ref().map(PortSet::to_string),
            Some("8080,9000-9001".to_string())
        );
        assert!(config.inbound_deny_ports.contains(6000));
        assert_eq!(
            config.inbound_detect_timeout_action(),
            DetectTimeoutAction::Forward
        );
        let defaults = Config::from_lookup(&lookup(&[])).unwrap();
        assert_eq!(defaults.inbound_ports, None);
        assert!(defaults.inbound_deny_ports.is_empty());
        assert_eq!(
            defaults.inbound_detect_timeout_action(),
            DetectTimeoutAction::Forward,
            "without identity"
        );
        let error = Config::from_lookup(&lookup(&[
            ("WEFT_PROXY_INBOUND_PORTS", "80,x"),
            ("WEFT_PROXY_INBOUND_DENY_PORTS", "0"),
            ("WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION", "drop"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = error
            .invalid
            .iter()
            .map(|invalid| invalid.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "WEFT_PROXY_INBOUND_PORTS",
                "WEFT_PROXY_INBOUND_DENY_PORTS",
                "WEFT_PROXY_INBOUND_DETECT_TIMEOUT_ACTION"
            ]
        );
    }

    #[test]
    fn detect_timeout_table() {
        use DetectTimeoutAction::*;
        let table = [
            (None, true, Close),
            (None, false, Forward),
            (Some(Forward), true, Forward),
            (Some(Close), false, Close),
        ];
        for (configured, identity_on, expected) in table {
            assert_eq!(
                detect_timeout_action(configured, identity_on),
                expected,
                "{configured:?} identity {identity_on}"
            );
        }
        assert_eq!(DetectTimeoutAction::parse(" Close "), Ok(Some(Close)));
        assert_eq!(DetectTimeoutAction::parse(""), Ok(None));
        assert!(DetectTimeoutAction::parse("drop").is_err());
    }
}

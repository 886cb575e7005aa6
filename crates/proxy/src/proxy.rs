//! The state every connection of the process shares ([`Proxy`]): the
//! effective configuration, metrics, the HTTP clients of both directions,
//! the router, TLS and taps, with the few questions every stage asks of it
//! (which client, which connect timeout, mutual TLS for an endpoint, whether
//! an address is one of the proxy's own listeners). Built once by
//! [`crate::app`]; it names no stage.

use crate::config::Config;
use crate::direction::Direction;
use crate::http::client::HttpClient;
use crate::http::header_case::CaseMaps;
use crate::log_limit::LogLimit;
use crate::metrics::ProxyMetrics;
use crate::policy::PolicyChannel;
use crate::policy::inbound::InboundPolicies;
use crate::routing::Router;
use crate::tap::Taps;
use crate::tls::config::TlsStore;
use crate::tls::transport::{ClientTls, NoIdentity};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// State shared by every connection of the process.
pub(crate) struct Proxy {
    /// The effective configuration.
    pub config: Arc<Config>,
    /// The data path's metrics.
    pub metrics: ProxyMetrics,
    /// Client towards local apps.
    pub inbound_client: HttpClient,
    /// Client towards remote targets.
    pub outbound_client: HttpClient,
    /// The addresses the proxy's own listeners are bound to.
    pub listener_addrs: Vec<SocketAddr>,
    /// Budget for log lines caused by traffic.
    pub log_limit: LogLimit,
    /// Discovery-driven outbound routing; `None` without a Destination service.
    pub router: Option<Router>,
    /// The policy APIs' channel; `None` without `WEFT_PROXY_POLICY_WORKLOAD`.
    pub policy: Option<PolicyChannel>,
    /// Each inbound port's authorization policy (watched, or the default).
    pub inbound_policies: InboundPolicies,
    /// TLS made from the proxy's identity; `None` without an identity.
    pub tls: Option<Arc<TlsStore>>,
    /// hyper case maps for `l5d-orig-header-case` values (inbound).
    pub case_maps: CaseMaps,
    /// Active taps: every HTTP request is offered to them.
    pub taps: Arc<Taps>,
}

impl Proxy {
    /// The HTTP client for a direction.
    pub(crate) fn client(&self, direction: Direction) -> &HttpClient {
        match direction {
            Direction::Inbound => &self.inbound_client,
            Direction::Outbound => &self.outbound_client,
        }
    }

    /// The connect timeout for a direction.
    pub(crate) fn connect_timeout(&self, direction: Direction) -> Duration {
        match direction {
            Direction::Inbound => self.config.inbound_connect_timeout,
            Direction::Outbound => self.config.outbound_connect_timeout,
        }
    }

    /// Logs a problem caused by traffic (a malformed request, an unreachable
    /// target) at info level, within the log budget.
    pub(crate) fn log_traffic_error(
        &self,
        direction: Direction,
        peer: SocketAddr,
        what: &str,
        error: &dyn std::fmt::Display,
    ) {
        if let Some(allowed) = self.log_limit.allow() {
            tracing::info!(
                direction = direction.as_str(),
                %peer,
                held_back = allowed.held_back,
                "{what}: {error}"
            );
        }
    }

    /// Mutual TLS for an endpoint whose proxy has `identity`; `None` for a
    /// plaintext endpoint. Fails when the identity is known but this proxy
    /// has no certificate yet (never falls back to plaintext).
    pub(crate) fn client_tls(
        &self,
        identity: Option<&Arc<str>>,
        transport_port: Option<u16>,
    ) -> Result<Option<ClientTls>, NoIdentity> {
        let Some(identity) = identity else {
            return Ok(None);
        };
        let configs = self
            .tls
            .as_ref()
            .and_then(|store| store.current())
            .ok_or(NoIdentity)?;
        let config = match transport_port {
            Some(_) => configs.client_transport.clone(),
            None => configs.client.clone(),
        };
        Ok(Some(ClientTls {
            server_name: identity.clone(),
            config,
            transport_port,
        }))
    }

    /// Whether connecting to `target` would reach one of the proxy's own
    /// listeners (a forwarding loop).
    pub(crate) fn is_own_listener(&self, target: SocketAddr) -> bool {
        self.listener_addrs
            .iter()
            .any(|listener| targets_listener(target, *listener))
    }
}

/// Whether a connection to `target` lands on `listener`. Connecting to the
/// unspecified address (`0.0.0.0`, `::`) reaches the host itself, so such a
/// target lands on every listener of its port.
pub(crate) fn targets_listener(target: SocketAddr, listener: SocketAddr) -> bool {
    if target.port() != listener.port() {
        return false;
    }
    let target_ip = target.ip().to_canonical();
    let listener_ip = listener.ip().to_canonical();
    target_ip == listener_ip
        || target_ip.is_unspecified()
        || (listener_ip.is_unspecified() && target_ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_detection_table() {
        let table = [
            ("127.0.0.1:4140", "127.0.0.1:4140", true),
            ("127.0.0.1:4143", "0.0.0.0:4143", true),
            ("[::1]:4143", "[::]:4143", true),
            ("10.0.0.5:4143", "0.0.0.0:4143", false),
            ("127.0.0.1:8080", "0.0.0.0:4143", false),
            ("[::ffff:127.0.0.1]:4140", "127.0.0.1:4140", true),
            // The unspecified address connects to the host itself.
            ("0.0.0.0:4191", "127.0.0.1:4191", true),
            ("0.0.0.0:4143", "0.0.0.0:4143", true),
            ("[::]:4191", "127.0.0.1:4191", true),
            ("[::]:4140", "[::1]:4140", true),
            ("[::ffff:0.0.0.0]:4190", "127.0.0.1:4190", true),
            ("0.0.0.0:4192", "127.0.0.1:4191", false),
        ];
        for (target, listener, expected) in table {
            assert_eq!(
                targets_listener(target.parse().unwrap(), listener.parse().unwrap()),
                expected,
                "{target} vs {listener}"
            );
        }
    }
}

//! gRPC channels to the control plane (Destination, Identity): plaintext
//! HTTP/2, or TLS that verifies the controller's identity against the mesh's
//! trust anchors.
//!
//! ```text
//! WEFT_PROXY_CONTROL_PLANE_TLS + service address ─► uses_tls (pure)
//!   plaintext ─► tonic's own connector (h2c)
//!   TLS       ─► connector: TCP connect ─► TCP_NODELAY ─► rustls, SNI = the service
//!                name (WEFT_PROXY_*_SVC_NAME), ALPN h2, the controller's certificate
//!                must name it
//!       Identity:    no client certificate (the proxy is asking for its first one)
//!       Destination: mutual TLS with the proxy's current certificate, read from
//!                    the TlsStore at each connect; none yet ─► the connect fails
//!                    and discovery retries with backoff (never plaintext)
//! ```

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::tls::config::TlsStore;

/// `WEFT_PROXY_CONTROL_PLANE_TLS`: when to use TLS to the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlPlaneTls {
    /// TLS unless the address is a loopback IP literal or `localhost`.
    Auto,
    /// Always TLS.
    Always,
    /// Never TLS.
    Never,
}

impl ControlPlaneTls {
    /// Parses `auto`, `always` or `never` (any case).
    pub fn parse(value: &str) -> Result<ControlPlaneTls, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ControlPlaneTls::Auto),
            "always" => Ok(ControlPlaneTls::Always),
            "never" => Ok(ControlPlaneTls::Never),
            _ => Err("expected auto, always or never".to_string()),
        }
    }

    /// The value as written.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlPlaneTls::Auto => "auto",
            ControlPlaneTls::Always => "always",
            ControlPlaneTls::Never => "never",
        }
    }
}

/// Whether a control-plane service at `addr` (`host:port`) is reached over
/// TLS: `auto` keeps loopback IP literals and `localhost` in plaintext.
pub(crate) fn uses_tls(mode: ControlPlaneTls, addr: &str) -> bool {
    match mode {
        ControlPlaneTls::Always => true,
        ControlPlaneTls::Never => false,
        ControlPlaneTls::Auto => !is_loopback_host(host_of(addr)),
    }
}

/// The host of `host:port` (IPv6 brackets removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Which client configuration a TLS connection to the control plane uses.
#[derive(Clone, Debug)]
pub(crate) enum ControlClientConfig {
    /// The controller verified, no client certificate (Identity).
    ServerOnly(Arc<ClientConfig>),
    /// Mutual TLS with the proxy's current certificate (Destination).
    Mutual(Arc<TlsStore>),
}

/// TLS to one control-plane service.
#[derive(Clone, Debug)]
pub(crate) struct ControlTls {
    /// The controller's expected identity: the SNI, and the name its
    /// certificate must carry.
    pub server_name: ServerName<'static>,
    /// The client side of the handshake.
    pub config: ControlClientConfig,
}

/// Why a connection to the control plane could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ControlConnectError {
    /// The address in the channel's URI has no host or port.
    #[error("no host and port in {0}")]
    BadUri(Uri),
    /// Mutual TLS is required and the proxy has no certificate yet.
    #[error("no certificate yet for mutual TLS to {0}")]
    NoCertificate(String),
    /// TCP connect failed.
    #[error("connect to {addr} failed: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// The TLS handshake failed (the controller's certificate did not verify,
    /// or does not name the expected identity).
    #[error("TLS handshake with {name} at {addr} failed: {source}")]
    Handshake {
        /// The expected identity.
        name: String,
        /// `host:port`.
        addr: String,
        /// rustls' error.
        source: io::Error,
    },
}

/// The endpoint of a streaming control-plane API (Destination, policy) at
/// `addr`, which must be `host:port`: HTTP/2 keep-alive pings every 10 s,
/// answered within 3 s. `Err`: why `addr` was refused.
pub(crate) fn streaming_endpoint(
    addr: &str,
    connect_timeout: Duration,
) -> Result<Endpoint, String> {
    let authority: http::uri::Authority = addr
        .parse()
        .map_err(|error: http::uri::InvalidUri| error.to_string())?;
    if authority.port_u16().is_none() {
        return Err("a port is required".to_string());
    }
    let endpoint =
        Endpoint::from_shared(format!("http://{authority}")).map_err(|error| error.to_string())?;
    Ok(endpoint
        .connect_timeout(connect_timeout)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(3)))
}

/// A lazily connecting channel through `endpoint`: plaintext without `tls`,
/// else through the TLS connector (see the module header).
pub(crate) fn connect_lazy(endpoint: Endpoint, tls: Option<ControlTls>) -> Channel {
    let Some(tls) = tls else {
        return endpoint.connect_lazy();
    };
    endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: Uri| {
        let tls = tls.clone();
        async move { connect_tls(uri, &tls).await.map(TokioIo::new) }
    }))
}

async fn connect_tls(
    uri: Uri,
    tls: &ControlTls,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ControlConnectError> {
    let name = tls.server_name.to_str().into_owned();
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        return Err(ControlConnectError::BadUri(uri));
    };
    let host = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host);
    let addr = format!("{host}:{port}");
    // The certificate is taken now, so a renewed one serves the next connection.
    let config = match &tls.config {
        ControlClientConfig::ServerOnly(config) => config.clone(),
        ControlClientConfig::Mutual(store) => match store.current() {
            Some(configs) => configs.control.clone(),
            None => return Err(ControlConnectError::NoCertificate(name)),
        },
    };
    let tcp =
        TcpStream::connect((host, port))
            .await
            .map_err(|source| ControlConnectError::Connect {
                addr: addr.clone(),
                source,
            })?;
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "cannot set TCP_NODELAY");
    }
    tokio_rustls::TlsConnector::from(config)
        .connect(tls.server_name.clone(), tcp)
        .await
        .map_err(|source| {
            let error = ControlConnectError::Handshake { name, addr, source };
            tracing::warn!(%error, "control plane TLS failed");
            error
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_the_control_plane_is_reached_over_tls() {
        use ControlPlaneTls::{Always, Auto, Never};
        let cases = [
            (Auto, "127.0.0.1:8086", false),
            (Auto, "127.1.2.3:8086", false),
            (Auto, "[::1]:8086", false),
            (Auto, "localhost:8086", false),
            (Auto, "LocalHost.:8086", false),
            (Auto, "10.0.0.5:8086", true),
            (Auto, "[fd00::5]:8086", true),
            (Auto, "weft-controller.weft.svc.cluster.local:8086", true),
            (Auto, "localhost.example:8086", true),
            (Always, "127.0.0.1:8086", true),
            (Always, "localhost:8080", true),
            (Never, "10.0.0.5:8086", false),
            (Never, "weft-controller.weft.svc.cluster.local:8086", false),
        ];
        for (mode, addr, expected) in cases {
            assert_eq!(uses_tls(mode, addr), expected, "{mode:?} {addr}");
        }
    }

    #[test]
    fn modes_parse() {
        for (text, expected) in [
            ("auto", Ok(ControlPlaneTls::Auto)),
            (" Always ", Ok(ControlPlaneTls::Always)),
            ("never", Ok(ControlPlaneTls::Never)),
        ] {
            assert_eq!(ControlPlaneTls::parse(text), expected);
        }
        assert!(ControlPlaneTls::parse("yes").is_err());
        assert!(ControlPlaneTls::parse("").is_err());
    }
}

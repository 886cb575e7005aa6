//! Opening connections to targets: name resolution with the system resolver,
//! a connect timeout, `TCP_NODELAY`, and errors that say which of these failed.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The target answered with a reset: nothing listens there.
    #[error("connection refused by {0}")]
    Refused(SocketAddr),
    /// No answer within the connect timeout.
    #[error("connect to {addr} timed out after {}", crate::config::format_duration(*.timeout))]
    TimedOut {
        /// The target.
        addr: SocketAddr,
        /// The timeout that passed.
        timeout: Duration,
    },
    /// Any other failure (unreachable network, no local ports, …).
    #[error("connect to {addr} failed: {source}")]
    Failed {
        /// The target.
        addr: SocketAddr,
        /// The operating system's error.
        source: io::Error,
    },
}

impl ConnectError {
    /// The `*_errors_total` label for this error.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            ConnectError::Refused(_) => "connect refused",
            ConnectError::TimedOut { .. } => "connect timeout",
            ConnectError::Failed { .. } => "connect error",
        }
    }
}

/// Why a host name could not be turned into an address.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub(crate) struct ResolveError {
    /// The name that was looked up.
    pub host: String,
    /// What the resolver said.
    pub reason: String,
}

/// Connects to `addr` within `timeout`, with `TCP_NODELAY` set.
pub(crate) async fn connect(
    addr: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, ConnectError> {
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
            return Err(ConnectError::Refused(addr));
        }
        Ok(Err(source)) => return Err(ConnectError::Failed { addr, source }),
        Err(_) => return Err(ConnectError::TimedOut { addr, timeout }),
    };
    stream
        .set_nodelay(true)
        .map_err(|source| ConnectError::Failed { addr, source })?;
    Ok(stream)
}

/// Resolves `host` (a name or an IP literal, IPv6 with or without brackets)
/// with the system resolver and returns the first address.
pub(crate) async fn resolve(host: &str, port: u16) -> Result<SocketAddr, ResolveError> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let failure = |reason: String| ResolveError {
        host: host.to_string(),
        reason,
    };
    let mut addresses = tokio::net::lookup_host((bare, port))
        .await
        .map_err(|error| failure(error.to_string()))?;
    addresses
        .next()
        .ok_or_else(|| failure("no addresses".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_and_literal_addresses() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = connect(addr, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(error, ConnectError::Refused(_)), "{error}");
        assert_eq!(error.metric_label(), "connect refused");

        assert_eq!(
            resolve("127.0.0.1", 80).await.unwrap(),
            "127.0.0.1:80".parse().unwrap()
        );
        assert_eq!(
            resolve("[::1]", 80).await.unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert_eq!(resolve("localhost", 81).await.unwrap().port(), 81);
        assert!(resolve("no-such-host.invalid", 80).await.is_err());
    }
}

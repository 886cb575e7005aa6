//! Label sets with Linkerd's label names and values, so `linkerd viz`-style
//! PromQL works on weft's metrics unchanged.

pub(crate) use crate::direction::Direction;
use crate::discovery::EndpointLabels;
use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use std::net::SocketAddr;
use std::sync::Arc;

/// Which side of the proxy a TCP connection is on.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Peer {
    /// A connection the proxy accepted.
    Source,
    /// A connection the proxy opened.
    Destination,
}

/// The TLS status of a connection: plaintext with a reason, or mutual TLS
/// with the peer's identity.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) enum TlsStatus {
    /// Accepted plaintext from a peer.
    NoTlsFromRemote,
    /// Connected in plaintext because discovery named no identity.
    NotProvidedByServiceDiscovery,
    /// A connection over loopback (the local app, the app's own calls).
    Loopback,
    /// TLS the proxy originated to a server with this identity.
    ToServer(Arc<str>),
    /// TLS the proxy terminated, with the client's identity if it presented one.
    FromClient(Option<Arc<str>>),
}

impl TlsStatus {
    /// The `no_tls_reason` label value; `None` for TLS.
    pub(crate) fn no_tls_reason(&self) -> Option<&'static str> {
        match self {
            TlsStatus::NoTlsFromRemote => Some("no_tls_from_remote"),
            TlsStatus::NotProvidedByServiceDiscovery => Some("not_provided_by_service_discovery"),
            TlsStatus::Loopback => Some("loopback"),
            TlsStatus::ToServer(_) | TlsStatus::FromClient(_) => None,
        }
    }
}

impl EncodeLabelSet for TlsStatus {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        if let Some(reason) = self.no_tls_reason() {
            ("tls", "no_identity").encode(encoder.encode_label())?;
            return ("no_tls_reason", reason).encode(encoder.encode_label());
        }
        ("tls", "true").encode(encoder.encode_label())?;
        match self {
            TlsStatus::ToServer(server) => ("server_id", &**server).encode(encoder.encode_label()),
            TlsStatus::FromClient(Some(client)) => {
                ("client_id", &**client).encode(encoder.encode_label())
            }
            _ => Ok(()),
        }
    }
}

/// Where a connection goes, shared by every metric about it.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct TargetLabels {
    addr: Arc<str>,
    ip: Arc<str>,
    port: u16,
    tls: TlsStatus,
    /// Discovery's metric labels for the endpoint, written `dst_<name>`.
    destination: EndpointLabels,
}

impl TargetLabels {
    /// Labels for a connection to `target` with the given TLS status.
    pub(crate) fn new(target: SocketAddr, tls: TlsStatus) -> Arc<TargetLabels> {
        TargetLabels::discovered(target, tls, EndpointLabels::default())
    }

    /// Labels for a connection to an endpoint discovery described.
    pub(crate) fn discovered(
        target: SocketAddr,
        tls: TlsStatus,
        destination: EndpointLabels,
    ) -> Arc<TargetLabels> {
        Arc::new(TargetLabels {
            addr: target.to_string().into(),
            ip: target.ip().to_string().into(),
            port: target.port(),
            tls,
            destination,
        })
    }

    /// The same labels with another TLS status.
    pub(crate) fn with_tls(&self, tls: TlsStatus) -> Arc<TargetLabels> {
        Arc::new(TargetLabels {
            tls,
            ..self.clone()
        })
    }

    /// Discovery's metric labels for the endpoint.
    pub(crate) fn destination(&self) -> &EndpointLabels {
        &self.destination
    }

    /// The TLS status.
    pub(crate) fn tls(&self) -> &TlsStatus {
        &self.tls
    }
}

impl EncodeLabelSet for TargetLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("target_addr", &*self.addr).encode(encoder.encode_label())?;
        ("target_ip", &*self.ip).encode(encoder.encode_label())?;
        ("target_port", self.port).encode(encoder.encode_label())?;
        self.tls.encode(encoder)?;
        for (name, value) in self.destination.iter() {
            (destination_label_name(name), value).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

/// `dst_<name>`, with characters a Prometheus label name cannot hold
/// replaced by `_`.
fn destination_label_name(name: &str) -> String {
    let mut label = String::with_capacity(4 + name.len());
    label.push_str("dst_");
    label.extend(name.chars().map(|character| {
        if character.is_ascii_alphanumeric() {
            character
        } else {
            '_'
        }
    }));
    label
}

/// Labels of `request_total` (and the prefix of the response families).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct HttpLabels {
    /// Traffic direction.
    pub direction: Direction,
    /// The request's authority (`Host` or `:authority`), as `host:port`.
    pub authority: Arc<str>,
    /// The endpoint the request was sent to.
    pub target: Arc<TargetLabels>,
}

impl EncodeLabelSet for HttpLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("direction", self.direction.as_str()).encode(encoder.encode_label())?;
        ("authority", &*self.authority).encode(encoder.encode_label())?;
        self.target.encode(encoder)
    }
}

/// How a response is classified for success rates.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Classification {
    /// Counted as a success.
    Success,
    /// Counted as a failure.
    Failure,
}

impl Classification {
    /// Linkerd's rule: 5xx, a non-zero gRPC status or a stream error fail;
    /// everything else succeeds.
    pub(crate) fn of(
        status_code: u16,
        grpc_status: Option<u32>,
        error: Option<&str>,
    ) -> Classification {
        let failed = error.is_some()
            || status_code >= 500
            || grpc_status.is_some_and(|grpc_status| grpc_status != 0);
        if failed {
            Classification::Failure
        } else {
            Classification::Success
        }
    }

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Classification::Success => "success",
            Classification::Failure => "failure",
        }
    }
}

/// Labels of `response_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct ResponseLabels {
    /// The request's labels.
    pub http: HttpLabels,
    /// The HTTP status sent to the client.
    pub status_code: u16,
    /// Success or failure.
    pub classification: Classification,
    /// The gRPC status, for gRPC responses.
    pub grpc_status: Option<u32>,
    /// Why the response stream failed, if it did.
    pub error: &'static str,
}

impl EncodeLabelSet for ResponseLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.http.encode(encoder)?;
        ("status_code", self.status_code).encode(encoder.encode_label())?;
        ("classification", self.classification.as_str()).encode(encoder.encode_label())?;
        match self.grpc_status {
            Some(grpc_status) => ("grpc_status", grpc_status).encode(encoder.encode_label())?,
            None => ("grpc_status", "").encode(encoder.encode_label())?,
        }
        ("error", self.error).encode(encoder.encode_label())
    }
}

/// Labels of `response_latency_ms`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct LatencyLabels {
    /// The request's labels.
    pub http: HttpLabels,
    /// The HTTP status sent to the client.
    pub status_code: u16,
}

impl EncodeLabelSet for LatencyLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.http.encode(encoder)?;
        ("status_code", self.status_code).encode(encoder.encode_label())
    }
}

/// Labels of the `tcp_*` families.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct TcpLabels {
    /// Traffic direction.
    pub direction: Direction,
    /// Accepted or opened by the proxy.
    pub peer: Peer,
    /// The connection's target.
    pub target: Arc<TargetLabels>,
}

impl EncodeLabelSet for TcpLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("direction", self.direction.as_str()).encode(encoder.encode_label())?;
        let peer = match self.peer {
            Peer::Source => "src",
            Peer::Destination => "dst",
        };
        ("peer", peer).encode(encoder.encode_label())?;
        self.target.encode(encoder)
    }
}

/// Labels of `tcp_close_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct TcpCloseLabels {
    /// The connection's labels.
    pub tcp: TcpLabels,
    /// The errno name of the error that ended the connection, or empty.
    pub errno: &'static str,
}

impl EncodeLabelSet for TcpCloseLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.tcp.encode(encoder)?;
        ("errno", self.errno).encode(encoder.encode_label())
    }
}

/// Labels of `tcp_detect_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct DetectLabels {
    /// Traffic direction.
    pub direction: Direction,
    /// What detection concluded.
    pub result: &'static str,
}

impl EncodeLabelSet for DetectLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("direction", self.direction.as_str()).encode(encoder.encode_label())?;
        ("result", self.result).encode(encoder.encode_label())
    }
}

/// Labels of the `*_errors_total` families.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(crate) struct ErrorLabels {
    /// The error's metric label.
    pub error: &'static str,
}

impl EncodeLabelSet for ErrorLabels {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        ("error", self.error).encode(encoder.encode_label())
    }
}

/// The errno name for an I/O error, as Linkerd labels `tcp_close_total`.
pub(crate) fn errno_name(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionReset => "ECONNRESET",
        ErrorKind::ConnectionRefused => "ECONNREFUSED",
        ErrorKind::ConnectionAborted => "ECONNABORTED",
        ErrorKind::BrokenPipe => "EPIPE",
        ErrorKind::TimedOut => "ETIMEDOUT",
        ErrorKind::HostUnreachable => "EHOSTUNREACH",
        ErrorKind::NetworkUnreachable => "ENETUNREACH",
        ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
        _ => "EIO",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let table: &[(u16, Option<u32>, Option<&str>, Classification)] = &[
            (200, None, None, Classification::Success),
            (404, None, None, Classification::Success),
            (499, None, None, Classification::Success),
            (500, None, None, Classification::Failure),
            (503, None, None, Classification::Failure),
            (200, Some(0), None, Classification::Success),
            (200, Some(14), None, Classification::Failure),
            (200, None, Some("reset"), Classification::Failure),
        ];
        for (status, grpc, error, expected) in table {
            assert_eq!(
                Classification::of(*status, *grpc, *error),
                *expected,
                "{status} {grpc:?} {error:?}"
            );
        }
    }
}

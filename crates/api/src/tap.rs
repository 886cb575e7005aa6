//! `GET /api/tap`: newline-delimited JSON, one [`TapEvent`] a line.

use serde::{Deserialize, Serialize};

/// Which part of a request an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TapEventKind {
    /// The request's head.
    #[serde(rename = "req")]
    Request,
    /// The response's head.
    #[serde(rename = "rsp")]
    Response,
    /// The end of the response.
    #[serde(rename = "end")]
    End,
}

impl TapEventKind {
    /// Its name on the wire (`req`, `rsp`, `end`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "req",
            Self::Response => "rsp",
            Self::End => "end",
        }
    }
}

/// One tap event. Every event carries the fields up to `dst`; the others
/// belong to one kind (`req`, `rsp` or `end`) and are left out of the
/// others' lines, and out of their own when they have no value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct TapEvent {
    /// `req`, `rsp` or `end`.
    #[serde(rename = "type")]
    pub kind: TapEventKind,
    /// `<n>:<stream>`: `n` numbers the controller's Observe calls of this
    /// response, so ids are unique across the tapped proxies.
    pub id: String,
    /// `in` or `out`.
    pub proxy: String,
    /// The client's address.
    pub source: Option<String>,
    /// The server's address.
    pub destination: Option<String>,
    /// The TLS status of the peer (`true`, `disabled`, `no_identity` …).
    pub tls: String,
    /// The client's workload, when known.
    pub src: Option<TapPeer>,
    /// The server's workload, when known.
    pub dst: Option<TapPeer>,
    /// `req`: the method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `req`: the scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// `req`: the authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// `req`: the path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `req`: the ServiceProfile route, if one matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// `rsp`: the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `rsp`: request start to response headers, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// `end`: response headers to end of stream, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_us: Option<u64>,
    /// `end`: response body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_bytes: Option<u64>,
    /// `end`: the gRPC status, for gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status: Option<u32>,
    /// `end`: the HTTP/2 reset reason (`CANCEL`), when reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_error: Option<String>,
}

impl TapEvent {
    /// An event with the fields every kind carries and none of the others.
    pub fn new(kind: TapEventKind, id: String, proxy: &str, tls: String) -> Self {
        Self {
            kind,
            id,
            proxy: proxy.to_string(),
            source: None,
            destination: None,
            tls,
            src: None,
            dst: None,
            method: None,
            scheme: None,
            authority: None,
            path: None,
            route: None,
            status: None,
            latency_us: None,
            duration_us: None,
            response_bytes: None,
            grpc_status: None,
            reset_error: None,
        }
    }
}

/// A tap event's workload: `workload` is `None` when only its namespace is
/// known (from its identity).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "strict", serde(deny_unknown_fields))]
pub struct TapPeer {
    /// Its namespace.
    pub namespace: String,
    /// Its workload.
    pub workload: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_specific_fields_are_left_out_of_other_kinds() {
        let mut event = TapEvent::new(TapEventKind::Response, "3:1".into(), "in", "true".into());
        event.status = Some(200);
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"type":"rsp","id":"3:1","proxy":"in","source":null,"destination":null,"tls":"true","src":null,"dst":null,"status":200}"#
        );
        assert_eq!(serde_json::from_str::<TapEvent>(&json).unwrap(), event);
    }
}

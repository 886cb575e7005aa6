//! Builds the `TapEvent` protobufs: a template per tapped request (addresses,
//! metadata labels, direction) completed by each of its three events.

use super::{Metadata, TapRequest};
use crate::direction::Direction;
use http::{HeaderMap, Method, Version};
use linkerd2_proxy_api::http_types;
use linkerd2_proxy_api::tap::tap_event::{self, http as http_event};
use linkerd2_proxy_api::tap::{Eos, TapEvent, eos};
use std::time::Duration;

/// `StreamId{base, stream}`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StreamId {
    /// The tap's number in this process.
    pub base: u32,
    /// The request's number within the tap.
    pub stream: u64,
}

/// The request fields of `RequestInit`.
pub(crate) struct RequestHead<'a> {
    /// Method.
    pub method: &'a Method,
    /// URI scheme (`http` when none).
    pub scheme: &'a str,
    /// Authority (empty when none).
    pub authority: &'a str,
    /// Path.
    pub path: &'a str,
    /// Headers (sent only when the tap extracts them).
    pub headers: &'a HeaderMap,
    /// Version: HTTP/2 requests get their pseudo-headers with the headers.
    pub version: Version,
}

/// The fields of `ResponseInit`.
pub(crate) struct ResponseHead<'a> {
    /// Time since the request was dispatched.
    pub since_request_init: Duration,
    /// HTTP status.
    pub status: u16,
    /// Headers (sent only when the tap extracts them).
    pub headers: &'a HeaderMap,
}

/// The fields of `ResponseEnd`.
pub(crate) struct ResponseTail<'a> {
    /// Time since the request was dispatched.
    pub since_request_init: Duration,
    /// Time since the response head; `None` when there was no response.
    pub since_response_init: Option<Duration>,
    /// Body bytes passed on.
    pub response_bytes: u64,
    /// `grpc-status` from trailers or a trailers-only response.
    pub grpc_status: Option<u32>,
    /// HTTP/2 reason when the stream ended with an error.
    pub reset: Option<u32>,
    /// Trailers (sent only when the tap extracts headers).
    pub trailers: Option<&'a HeaderMap>,
}

/// The fields every event of a request shares.
pub(crate) fn template(request: &TapRequest<'_>, metadata: Metadata) -> TapEvent {
    TapEvent {
        source: Some(request.source.into()),
        source_meta: Some(tap_event::EndpointMeta {
            labels: metadata.source,
        }),
        route_meta: Some(tap_event::RouteMeta {
            labels: metadata.route,
        }),
        destination: Some(request.destination.into()),
        destination_meta: Some(tap_event::EndpointMeta {
            labels: metadata.destination,
        }),
        proxy_direction: match request.direction {
            Direction::Inbound => tap_event::ProxyDirection::Inbound,
            Direction::Outbound => tap_event::ProxyDirection::Outbound,
        } as i32,
        event: None,
    }
}

fn with_event(template: &TapEvent, event: http_event::Event) -> TapEvent {
    let mut tap_event = template.clone();
    tap_event.event = Some(tap_event::Event::Http(tap_event::Http {
        event: Some(event),
    }));
    tap_event
}

fn stream_id(id: StreamId) -> Option<http_event::StreamId> {
    Some(http_event::StreamId {
        base: id.base,
        stream: id.stream,
    })
}

fn duration(duration: Duration) -> Option<prost_types::Duration> {
    prost_types::Duration::try_from(duration).ok()
}

/// `RequestInit`.
pub(crate) fn request_init(
    template: &TapEvent,
    id: StreamId,
    head: &RequestHead<'_>,
    extract_headers: bool,
) -> TapEvent {
    let headers = extract_headers.then(|| {
        let mut pseudo = Vec::new();
        if head.version == Version::HTTP_2 {
            pseudo.push((":method", head.method.as_str().as_bytes().to_vec()));
            pseudo.push((":scheme", head.scheme.as_bytes().to_vec()));
            pseudo.push((":authority", head.authority.as_bytes().to_vec()));
            pseudo.push((":path", head.path.as_bytes().to_vec()));
        }
        headers_of(pseudo, head.headers)
    });
    with_event(
        template,
        http_event::Event::RequestInit(http_event::RequestInit {
            id: stream_id(id),
            method: Some(head.method.clone().into()),
            scheme: Some(http_types::Scheme::from(head.scheme)),
            authority: head.authority.to_string(),
            path: head.path.to_string(),
            headers,
        }),
    )
}

/// `ResponseInit`.
pub(crate) fn response_init(
    template: &TapEvent,
    id: StreamId,
    head: &ResponseHead<'_>,
    extract_headers: bool,
) -> TapEvent {
    with_event(
        template,
        http_event::Event::ResponseInit(http_event::ResponseInit {
            id: stream_id(id),
            since_request_init: duration(head.since_request_init),
            http_status: u32::from(head.status),
            headers: extract_headers.then(|| headers_of(Vec::new(), head.headers)),
        }),
    )
}

/// `ResponseEnd`.
pub(crate) fn response_end(
    template: &TapEvent,
    id: StreamId,
    tail: &ResponseTail<'_>,
    extract_headers: bool,
) -> TapEvent {
    let end = match (tail.grpc_status, tail.reset) {
        (Some(code), _) => Some(eos::End::GrpcStatusCode(code)),
        (None, Some(reason)) => Some(eos::End::ResetErrorCode(reason)),
        (None, None) => None,
    };
    with_event(
        template,
        http_event::Event::ResponseEnd(http_event::ResponseEnd {
            id: stream_id(id),
            since_request_init: duration(tail.since_request_init),
            since_response_init: tail.since_response_init.and_then(duration),
            response_bytes: tail.response_bytes,
            eos: end.map(|end| Eos { end: Some(end) }),
            trailers: match (extract_headers, tail.trailers) {
                (true, Some(trailers)) => Some(headers_of(Vec::new(), trailers)),
                _ => None,
            },
        }),
    )
}

fn headers_of(pseudo: Vec<(&str, Vec<u8>)>, headers: &HeaderMap) -> http_types::Headers {
    let mut list: Vec<http_types::headers::Header> = pseudo
        .into_iter()
        .map(|(name, value)| http_types::headers::Header {
            name: name.to_string(),
            value,
        })
        .collect();
    list.extend(
        headers
            .iter()
            .map(|(name, value)| http_types::headers::Header {
                name: name.as_str().to_string(),
                value: value.as_bytes().to_vec(),
            }),
    );
    http_types::Headers { headers: list }
}

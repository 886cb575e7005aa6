//! A proxy's `TapEvent` as the JSON line of `docs/api.md` (pure): ids made
//! unique across the proxies of one session, and both ends named.
//!
//! ```text
//! OUTBOUND event of proxy P:  src = P's workload
//!                             dst = destination labels (namespace, workload)
//!                                   or the workload serving at the destination address
//! INBOUND event of proxy P:   dst = P's workload
//!                             src = the client identity (<sa>.<ns>.serviceaccount…)
//!                                   or the workload at the source address
//! ```

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use linkerd2_proxy_api::net::TcpAddress;
use linkerd2_proxy_api::tap::TapEvent;
use linkerd2_proxy_api::tap::eos::End;
use linkerd2_proxy_api::tap::tap_event::http::Event as HttpEvent;
use linkerd2_proxy_api::tap::tap_event::{EndpointMeta, Event, ProxyDirection};
use weft_api::{TapEventKind, TapPeer};

use super::targets::{Peers, WorkloadName};

/// What translating one proxy's events needs.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    /// The tapped proxy's workload.
    pub tapped: &'a WorkloadName,
    /// The session-wide number of the Observe call the event came from
    /// (the `id`'s first half).
    pub call: u64,
    /// The catalog's workloads.
    pub peers: &'a Peers,
}

/// The API's event for `event` (one JSON line of `/api/tap`); `None` for an
/// event that is not HTTP.
pub fn tap_event(event: &TapEvent, context: EventContext<'_>) -> Option<weft_api::TapEvent> {
    let Some(Event::Http(http)) = &event.event else {
        return None;
    };
    let http_event = http.event.as_ref()?;
    let inbound = event.proxy_direction == ProxyDirection::Inbound as i32;
    let source = event.source.as_ref().and_then(socket_address);
    let destination = event.destination.as_ref().and_then(socket_address);
    let source_labels = event.source_meta.as_ref();
    let destination_labels = event.destination_meta.as_ref();
    let (src, dst, tls) = if inbound {
        let src = label(source_labels, "client_id")
            .and_then(|identity| context.peers.by_identity(identity))
            .or_else(|| source.and_then(|address| context.peers.by_address(address)));
        let tls = label(source_labels, "tls");
        (src, Some(context.tapped.clone()), tls)
    } else {
        let dst = labelled_workload(destination_labels)
            .or_else(|| destination.and_then(|address| context.peers.by_address(address)));
        let tls = label(destination_labels, "tls");
        (Some(context.tapped.clone()), dst, tls)
    };
    let (kind, id) = match http_event {
        HttpEvent::RequestInit(init) => (TapEventKind::Request, init.id),
        HttpEvent::ResponseInit(init) => (TapEventKind::Response, init.id),
        HttpEvent::ResponseEnd(end) => (TapEventKind::End, end.id),
    };
    let stream = id.map_or(0, |id| id.stream);
    let mut line = weft_api::TapEvent::new(
        kind,
        format!("{}:{stream}", context.call),
        if inbound { "in" } else { "out" },
        tls.unwrap_or("no_identity").to_string(),
    );
    line.source = source.map(|address| address.to_string());
    line.destination = destination.map(|address| address.to_string());
    line.src = src.as_ref().map(tap_peer);
    line.dst = dst.as_ref().map(tap_peer);
    match http_event {
        HttpEvent::RequestInit(init) => {
            line.method = init
                .method
                .clone()
                .and_then(|method| axum::http::Method::try_from(method).ok())
                .map(|method| method.to_string());
            let scheme = init
                .scheme
                .as_ref()
                .and_then(|scheme| scheme.r#type.as_ref())
                .and_then(|scheme| TryInto::<Cow<'static, str>>::try_into(scheme).ok())
                .map(Cow::into_owned);
            line.scheme = Some(scheme.unwrap_or_else(|| "http".into()));
            line.authority = Some(init.authority.clone());
            line.path = Some(init.path.clone());
            // The proxy names the profile route `rt_route` (Linkerd's tap label).
            line.route = event
                .route_meta
                .as_ref()
                .and_then(|meta| {
                    meta.labels
                        .get("rt_route")
                        .or_else(|| meta.labels.get("route"))
                })
                .cloned();
        }
        HttpEvent::ResponseInit(init) => {
            line.status = u16::try_from(init.http_status).ok();
            line.latency_us = micros(init.since_request_init.as_ref());
        }
        HttpEvent::ResponseEnd(end) => {
            match end.eos.and_then(|eos| eos.end) {
                Some(End::GrpcStatusCode(code)) => line.grpc_status = Some(code),
                Some(End::ResetErrorCode(code)) => line.reset_error = Some(reset_reason(code)),
                None => {}
            }
            line.duration_us = micros(end.since_response_init.as_ref());
            line.response_bytes = Some(end.response_bytes);
        }
    }
    Some(line)
}

fn label<'a>(meta: Option<&'a EndpointMeta>, key: &str) -> Option<&'a str> {
    meta.and_then(|meta| meta.labels.get(key))
        .map(String::as_str)
        .filter(|value| !value.is_empty())
}

/// `namespace` + `workload` from destination labels (with or without the
/// `dst_` prefix the proxy's metrics add).
fn labelled_workload(meta: Option<&EndpointMeta>) -> Option<WorkloadName> {
    let either = |key: &str| label(meta, key).or_else(|| label(meta, &format!("dst_{key}")));
    Some(WorkloadName {
        namespace: either("namespace")?.to_string(),
        name: either("workload")?.to_string(),
    })
}

fn tap_peer(name: &WorkloadName) -> TapPeer {
    TapPeer {
        namespace: name.namespace.clone(),
        workload: (!name.name.is_empty()).then(|| name.name.clone()),
    }
}

fn socket_address(address: &TcpAddress) -> Option<SocketAddr> {
    let ip = IpAddr::try_from(address.ip?).ok()?;
    let port = u16::try_from(address.port).ok()?;
    Some(SocketAddr::new(ip, port))
}

fn micros(duration: Option<&prost_types::Duration>) -> Option<u64> {
    let duration = duration?;
    let seconds = u64::try_from(duration.seconds).ok()?;
    let nanos = u64::try_from(duration.nanos).ok()?;
    Some(seconds * 1_000_000 + nanos / 1_000)
}

/// The name of an HTTP/2 error code, as Linkerd's CLI prints it.
fn reset_reason(code: u32) -> String {
    let name = match code {
        0 => "NO_ERROR",
        1 => "PROTOCOL_ERROR",
        2 => "INTERNAL_ERROR",
        3 => "FLOW_CONTROL_ERROR",
        4 => "SETTINGS_TIMEOUT",
        5 => "STREAM_CLOSED",
        6 => "FRAME_SIZE_ERROR",
        7 => "REFUSED_STREAM",
        8 => "CANCEL",
        9 => "COMPRESSION_ERROR",
        10 => "CONNECT_ERROR",
        11 => "ENHANCE_YOUR_CALM",
        12 => "INADEQUATE_SECURITY",
        13 => "HTTP_1_1_REQUIRED",
        other => return format!("UNKNOWN_{other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use linkerd2_proxy_api::http_types::{HttpMethod, Scheme};
    use linkerd2_proxy_api::tap::Eos;
    use linkerd2_proxy_api::tap::tap_event::http::{
        RequestInit, ResponseEnd, ResponseInit, StreamId,
    };
    use linkerd2_proxy_api::tap::tap_event::{Http, RouteMeta};
    use weft_core::workload::Workload;

    use serde_json::{Value, json};

    use super::*;

    /// The event as the JSON line the API sends.
    fn to_json(event: &TapEvent, context: EventContext<'_>) -> Option<Value> {
        tap_event(event, context).map(|line| serde_json::to_value(line).unwrap())
    }

    fn peers() -> Peers {
        let traffic: Workload = serde_saphyr::from_str(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: traffic, namespace: demo}\nspec:\n  serviceAccount: traffic\n  addresses: [127.0.0.2]\n  meshed: true\n",
        )
        .unwrap();
        let books: Workload = serde_saphyr::from_str(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: books, namespace: demo}\nspec:\n  addresses: [127.0.0.3]\n  ports: [{port: 7002}]\n  meshed: true\n",
        )
        .unwrap();
        Peers::new(&[traffic, books])
    }

    fn address(text: &str) -> TcpAddress {
        let address: SocketAddr = text.parse().unwrap();
        TcpAddress {
            ip: Some(address.ip().into()),
            port: u32::from(address.port()),
        }
    }

    fn meta(pairs: &[(&str, &str)]) -> EndpointMeta {
        EndpointMeta {
            labels: pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect::<HashMap<_, _>>(),
        }
    }

    fn event(
        direction: ProxyDirection,
        http: HttpEvent,
        metas: (EndpointMeta, EndpointMeta),
    ) -> TapEvent {
        TapEvent {
            source: Some(address("127.0.0.2:51000")),
            source_meta: Some(metas.0),
            route_meta: Some(RouteMeta {
                labels: HashMap::from([("rt_route".to_string(), "GET /books/{id}".to_string())]),
            }),
            destination: Some(address("127.0.0.3:7002")),
            destination_meta: Some(metas.1),
            proxy_direction: direction as i32,
            event: Some(Event::Http(Http { event: Some(http) })),
        }
    }

    fn id() -> Option<StreamId> {
        Some(StreamId {
            base: 99,
            stream: 4,
        })
    }

    #[test]
    fn translates_the_three_events() {
        let peers = peers();
        let web = WorkloadName {
            namespace: "demo".into(),
            name: "web".into(),
        };
        let context = EventContext {
            tapped: &web,
            call: 3,
            peers: &peers,
        };
        let request = event(
            ProxyDirection::Inbound,
            HttpEvent::RequestInit(RequestInit {
                id: id(),
                method: Some(HttpMethod::from(axum::http::Method::POST)),
                scheme: Some(Scheme::from("http")),
                authority: "web.demo:80".into(),
                path: "/books/1".into(),
                headers: None,
            }),
            (
                meta(&[
                    ("tls", "true"),
                    (
                        "client_id",
                        "traffic.demo.serviceaccount.identity.weft.cluster.local",
                    ),
                ]),
                meta(&[("tls", "loopback")]),
            ),
        );
        assert_eq!(
            to_json(&request, context).unwrap(),
            json!({"type": "req", "id": "3:4", "proxy": "in", "source": "127.0.0.2:51000",
                   "destination": "127.0.0.3:7002", "tls": "true",
                   "src": {"namespace": "demo", "workload": "traffic"},
                   "dst": {"namespace": "demo", "workload": "web"},
                   "method": "POST", "scheme": "http", "authority": "web.demo:80",
                   "path": "/books/1", "route": "GET /books/{id}"})
        );

        let response = event(
            ProxyDirection::Outbound,
            HttpEvent::ResponseInit(ResponseInit {
                id: id(),
                since_request_init: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 2_500_000,
                }),
                http_status: 503,
                headers: None,
            }),
            (
                meta(&[]),
                meta(&[
                    ("dst_namespace", "shop"),
                    ("dst_workload", "cart"),
                    ("tls", "no_identity"),
                ]),
            ),
        );
        let json = to_json(&response, context).unwrap();
        assert_eq!(json["proxy"], "out");
        assert_eq!(json["src"], json!({"namespace": "demo", "workload": "web"}));
        assert_eq!(
            json["dst"],
            json!({"namespace": "shop", "workload": "cart"})
        );
        assert_eq!(json["status"], 503);
        assert_eq!(json["latency_us"], 1_002_500);
        assert_eq!(json["tls"], "no_identity");

        // No destination labels: the workload serving at the destination address.
        let end = event(
            ProxyDirection::Outbound,
            HttpEvent::ResponseEnd(ResponseEnd {
                id: id(),
                since_request_init: None,
                since_response_init: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 7_000,
                }),
                response_bytes: 1200,
                eos: Some(Eos {
                    end: Some(End::ResetErrorCode(8)),
                }),
                trailers: None,
            }),
            (meta(&[]), meta(&[])),
        );
        let json = to_json(&end, context).unwrap();
        assert_eq!(json["type"], "end");
        assert_eq!(
            json["dst"],
            json!({"namespace": "demo", "workload": "books"})
        );
        assert_eq!(json["duration_us"], 7);
        assert_eq!(json["response_bytes"], 1200);
        assert_eq!(json["grpc_status"], Value::Null);
        assert_eq!(json["reset_error"], "CANCEL");
        assert!(json.get("method").is_none());
    }

    #[test]
    fn inbound_without_identity_falls_back_to_the_address() {
        let peers = peers();
        let web = WorkloadName {
            namespace: "demo".into(),
            name: "web".into(),
        };
        let context = EventContext {
            tapped: &web,
            call: 1,
            peers: &peers,
        };
        let end = event(
            ProxyDirection::Inbound,
            HttpEvent::ResponseEnd(ResponseEnd {
                id: id(),
                since_request_init: None,
                since_response_init: None,
                response_bytes: 0,
                eos: Some(Eos {
                    end: Some(End::GrpcStatusCode(14)),
                }),
                trailers: None,
            }),
            (meta(&[("tls", "no_identity")]), meta(&[])),
        );
        let json = to_json(&end, context).unwrap();
        assert_eq!(
            json["src"],
            json!({"namespace": "demo", "workload": "traffic"})
        );
        assert_eq!(json["grpc_status"], 14);
        assert_eq!(json["duration_us"], Value::Null);
        let nothing = TapEvent::default();
        assert_eq!(to_json(&nothing, context), None);
    }
}

//! Live tap: a real `weft-proxy`, a real backend, curl (or a gRPC client)
//! for traffic and a tonic `Tap` client on the proxy's tap port.
//!
//! ```text
//! curl ─► weft-proxy (inbound forward | outbound explicit) ─► HttpTestServer
//!             └─ tap port ◄── tonic TapClient: Observe{limit, match} ─► TapEvents
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use linkerd2_proxy_api::http_types::{self, http_method};
use linkerd2_proxy_api::tap::observe_request::r#match as proto;
use linkerd2_proxy_api::tap::tap_client::TapClient;
use linkerd2_proxy_api::tap::tap_event::{self, http::Event as HttpEvent};
use linkerd2_proxy_api::tap::{ObserveRequest, TapEvent, eos, observe_request};
use tonic::Code;
use weft_e2e::{curl, within};
use weft_test_support::grpc::{GrpcEchoClient, GrpcEchoServer};
use weft_test_support::{HttpTestServer, ProxyProcess, free_port};

const TIMEOUT: Duration = Duration::from_secs(30);

fn path_prefix(prefix: &str) -> observe_request::Match {
    observe_request::Match {
        r#match: Some(proto::Match::Http(proto::Http {
            r#match: Some(proto::http::Match::Path(proto::http::StringMatch {
                r#match: Some(proto::http::string_match::Match::Prefix(
                    prefix.to_string(),
                )),
            })),
        })),
    }
}

fn observe(limit: u32, matcher: Option<observe_request::Match>) -> ObserveRequest {
    ObserveRequest {
        limit,
        r#match: matcher,
        extract: None,
    }
}

async fn tap_client(addr: SocketAddr) -> TapClient<tonic::transport::Channel> {
    within(
        "connect to the tap port",
        TIMEOUT,
        TapClient::connect(format!("http://{addr}")),
    )
    .await
    .expect("connect to the tap port")
}

/// Reads every event until the proxy ends the stream.
async fn collect(mut stream: tonic::Streaming<TapEvent>) -> Vec<TapEvent> {
    let mut events = Vec::new();
    while let Some(event) = within("the next tap event", TIMEOUT, stream.message())
        .await
        .expect("a tap event or the end of the stream")
    {
        events.push(event);
    }
    events
}

fn http_event(event: &TapEvent) -> &HttpEvent {
    match &event.event {
        Some(tap_event::Event::Http(tap_event::Http { event: Some(event) })) => event,
        other => panic!("not an HTTP tap event: {other:?}"),
    }
}

/// The events of each stream id, in order.
fn by_stream(events: &[TapEvent]) -> HashMap<u64, Vec<&HttpEvent>> {
    let mut streams: HashMap<u64, Vec<&HttpEvent>> = HashMap::new();
    for event in events {
        let event = http_event(event);
        let id = match event {
            HttpEvent::RequestInit(init) => init.id,
            HttpEvent::ResponseInit(init) => init.id,
            HttpEvent::ResponseEnd(end) => end.id,
        };
        streams
            .entry(id.expect("every event has a stream id").stream)
            .or_default()
            .push(event);
    }
    streams
}

async fn curl_async(args: Vec<String>) -> weft_e2e::CurlOutput {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args)
    })
    .await
    .expect("curl task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_reports_limit_matching_requests_then_ends() {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder().inbound_forward(app.addr()).spawn();
    let mut client = tap_client(proxy.tap_addr()).await;
    let stream = within(
        "Observe",
        TIMEOUT,
        client.observe(observe(3, Some(path_prefix("/bytes/")))),
    )
    .await
    .expect("Observe is served to a loopback client")
    .into_inner();
    let events = tokio::spawn(collect(stream));

    let inbound = proxy.inbound_addr();
    // Not matching: never reported.
    for path in ["/", "/status/404"] {
        curl_async(vec![format!("http://{inbound}{path}")]).await;
    }
    // Matching: the first three are reported, the fourth is past the limit.
    for size in [10, 2000, 70000, 5] {
        let output = curl_async(vec![format!("http://{inbound}/bytes/{size}")]).await;
        assert_eq!(output.http_code, 200, "{output:?}");
    }

    let events = within("the tap stream's end", TIMEOUT, events)
        .await
        .expect("collect task");
    assert_eq!(events.len(), 9, "3 requests x 3 events: {events:#?}");
    for event in &events {
        assert_eq!(
            event.proxy_direction,
            tap_event::ProxyDirection::Inbound as i32
        );
        let source = event.source.clone().expect("source address");
        assert!(source.port > 0);
        let destination: SocketAddr = event
            .destination
            .clone()
            .expect("destination address")
            .try_into()
            .expect("a socket address");
        assert_eq!(destination, app.addr());
    }
    let streams = by_stream(&events);
    let mut sizes = Vec::new();
    for stream in 0..3u64 {
        let events = &streams[&stream];
        let [
            HttpEvent::RequestInit(request),
            HttpEvent::ResponseInit(response),
            HttpEvent::ResponseEnd(end),
        ] = events.as_slice()
        else {
            panic!("stream {stream}: {events:#?}");
        };
        assert_eq!(
            request.method.as_ref().and_then(|method| method.r#type.clone()),
            Some(http_method::Type::Registered(
                http_method::Registered::Get as i32
            ))
        );
        assert_eq!(request.authority, inbound.to_string());
        assert!(request.headers.is_none(), "headers only when extracted");
        assert_eq!(response.http_status, 200);
        assert!(response.since_request_init.is_some());
        assert!(end.since_response_init.is_some());
        let size: u64 = request
            .path
            .strip_prefix("/bytes/")
            .expect("a matching path")
            .parse()
            .unwrap();
        assert_eq!(end.response_bytes, size, "{request:?}");
        sizes.push(size);
    }
    sizes.sort_unstable();
    assert_eq!(sizes, [10, 2000, 70000]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_requests_are_tapped_with_their_status() {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder().spawn();
    let mut client = tap_client(proxy.tap_addr()).await;
    let stream = within(
        "Observe",
        TIMEOUT,
        client.observe(observe(1, Some(path_prefix("/status/")))),
    )
    .await
    .expect("Observe")
    .into_inner();
    let events = tokio::spawn(collect(stream));
    let output = curl_async(vec![
        "-x".to_string(),
        format!("http://{}", proxy.outbound_addr()),
        format!("http://{}/status/503", app.addr()),
    ])
    .await;
    assert_eq!(output.http_code, 503, "{output:?}");
    let events = within("the tap stream's end", TIMEOUT, events)
        .await
        .expect("collect task");
    assert_eq!(events.len(), 3, "{events:#?}");
    assert!(events.iter().all(|event| event.proxy_direction
        == tap_event::ProxyDirection::Outbound as i32));
    let HttpEvent::RequestInit(request) = http_event(&events[0]) else {
        panic!("{events:#?}")
    };
    assert_eq!(request.path, "/status/503");
    assert_eq!(
        request.scheme,
        Some(http_types::Scheme::from("http")),
        "{request:?}"
    );
    let HttpEvent::ResponseInit(response) = http_event(&events[1]) else {
        panic!("{events:#?}")
    };
    assert_eq!(response.http_status, 503);
    let source_labels = &events[0].source_meta.as_ref().unwrap().labels;
    assert_eq!(source_labels.get("tls").map(String::as_str), Some("loopback"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_status_is_reported_at_the_end() {
    let server = GrpcEchoServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(server.addr())
        .spawn();
    let mut client = tap_client(proxy.tap_addr()).await;
    let stream = within(
        "Observe",
        TIMEOUT,
        client.observe(observe(2, Some(path_prefix("/")))),
    )
    .await
    .expect("Observe")
    .into_inner();
    let events = tokio::spawn(collect(stream));
    let mut echo = within(
        "connect",
        TIMEOUT,
        GrpcEchoClient::connect(proxy.inbound_addr()),
    )
    .await
    .expect("connect through the proxy");
    within("OK call", TIMEOUT, echo.unary("fine", Code::Ok))
        .await
        .expect("an OK reply");
    let failed = within("NOT_FOUND call", TIMEOUT, echo.unary("gone", Code::NotFound)).await;
    assert_eq!(failed.expect_err("NOT_FOUND").code(), Code::NotFound);

    let events = within("the tap stream's end", TIMEOUT, events)
        .await
        .expect("collect task");
    let streams = by_stream(&events);
    let grpc_status = |stream: u64| match streams[&stream].last() {
        Some(HttpEvent::ResponseEnd(end)) => end.eos.as_ref().and_then(|eos| eos.end.clone()),
        other => panic!("stream {stream} ends with {other:?}"),
    };
    assert_eq!(grpc_status(0), Some(eos::End::GrpcStatusCode(Code::Ok as u32)));
    assert_eq!(
        grpc_status(1),
        Some(eos::End::GrpcStatusCode(Code::NotFound as u32))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_observe_requests_are_refused() {
    let proxy = ProxyProcess::builder().spawn();
    let mut client = tap_client(proxy.tap_addr()).await;
    let no_match = ObserveRequest {
        r#match: Some(observe_request::Match { r#match: None }),
        ..observe(3, None)
    };
    for (what, request) in [
        ("limit 0", observe(0, Some(path_prefix("/")))),
        ("no match", observe(3, None)),
        ("empty match", no_match),
    ] {
        let status = within(what, TIMEOUT, client.observe(request))
            .await
            .expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    }
}

/// An address of this host other than loopback, if it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    ["192.0.2.1:9", "10.255.255.1:9", "8.8.8.8:53"]
        .iter()
        .find_map(|target| {
            let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
            socket.connect(target).ok()?;
            let ip = socket.local_addr().ok()?.ip();
            (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_off_loopback_are_refused() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("SKIPPED: this host has no non-loopback address to connect from");
        return;
    };
    let port = free_port();
    let proxy = ProxyProcess::builder()
        .tap_addr(SocketAddr::new("0.0.0.0".parse().unwrap(), port))
        .spawn();
    // Served on loopback ...
    let mut local = tap_client(SocketAddr::new("127.0.0.1".parse().unwrap(), port)).await;
    within(
        "loopback Observe",
        TIMEOUT,
        local.observe(observe(1, Some(path_prefix("/")))),
    )
    .await
    .expect("a loopback client is served");
    // ... refused from the host's other address.
    let mut remote = tap_client(SocketAddr::new(ip, port)).await;
    let status = within(
        "remote Observe",
        TIMEOUT,
        remote.observe(observe(1, Some(path_prefix("/")))),
    )
    .await
    .expect_err("a plaintext client off loopback is refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("unauthorized client"),
        "{status:?}"
    );
    drop(proxy);
}

//! Live tap: a real `weft-proxy`, a real backend, curl (or a gRPC client)
//! for traffic and a tonic `Tap` client on the proxy's tap port.
//!
//! ```text
//! curl ─► weft-proxy (inbound forward | outbound explicit) ─► HttpTestServer
//!             └─ tap port ◄── tonic TapClient: Observe{limit, match} ─► TapEvents
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use linkerd2_proxy_api::http_types::{self, http_method};
use linkerd2_proxy_api::tap::observe_request::r#match as proto;
use linkerd2_proxy_api::tap::tap_client::TapClient;
use linkerd2_proxy_api::tap::tap_event::{self, http::Event as HttpEvent};
use linkerd2_proxy_api::tap::{ObserveRequest, TapEvent, eos, observe_request};
use tonic::Code;
use weft_e2e::{curl, within};
use weft_test_support::grpc::{GrpcEchoClient, GrpcEchoServer};
use weft_test_support::{ControllerProcess, HttpTestServer, MeshFile, ProxyProcess, free_port};

const TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn path_prefix(prefix: &str) -> observe_request::Match {
    observe_request::Match {
        r#match: Some(proto::Match::Http(proto::Http {
            r#match: Some(proto::http::Match::Path(proto::http::StringMatch {
                r#match: Some(proto::http::string_match::Match::Prefix(prefix.to_string())),
            })),
        })),
    }
}

pub(crate) fn observe(limit: u32, matcher: Option<observe_request::Match>) -> ObserveRequest {
    ObserveRequest {
        limit,
        r#match: matcher,
        extract: None,
    }
}

pub(crate) async fn tap_client(addr: SocketAddr) -> TapClient<tonic::transport::Channel> {
    within(
        "connect to the tap port",
        TIMEOUT,
        TapClient::connect(format!("http://{addr}")),
    )
    .await
    .expect("connect to the tap port")
}

/// Reads every event until the proxy ends the stream.
pub(crate) async fn collect(mut stream: tonic::Streaming<TapEvent>) -> Vec<TapEvent> {
    let mut events = Vec::new();
    while let Some(event) = within("the next tap event", TIMEOUT, stream.message())
        .await
        .expect("a tap event or the end of the stream")
    {
        events.push(event);
    }
    events
}

pub(crate) fn http_event(event: &TapEvent) -> &HttpEvent {
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
        let source = event.source.expect("source address");
        assert!(source.port > 0);
        let destination: SocketAddr = event
            .destination
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
            request
                .method
                .as_ref()
                .and_then(|method| method.r#type.clone()),
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
    assert!(
        events
            .iter()
            .all(|event| event.proxy_direction == tap_event::ProxyDirection::Outbound as i32)
    );
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
    assert_eq!(
        source_labels.get("tls").map(String::as_str),
        Some("loopback")
    );
}

fn label_match(key: &str, value: &str, route: bool) -> observe_request::Match {
    let label = proto::Label {
        key: key.to_string(),
        value: value.to_string(),
    };
    observe_request::Match {
        r#match: Some(if route {
            proto::Match::RouteLabel(label)
        } else {
            proto::Match::DestinationLabel(label)
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_endpoints_carry_their_labels_and_route() {
    let backend = HttpTestServer::start();
    let mesh = MeshFile::new()
        .service("shop", "web", &[("app", "web")])
        .workload("shop", "web-1", &[("app", "web")], backend.addr())
        .profile(
            "shop",
            "web",
            "  routes:\n  - name: bytes\n    condition: {pathRegex: /bytes/.*}\n",
        );
    let controller = ControllerProcess::start(&mesh.render());
    let proxy = ProxyProcess::builder()
        .env(
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            controller.destination_addr().to_string(),
        )
        .spawn();
    let via_proxy = |path: &str| {
        vec![
            "-x".to_string(),
            format!("http://{}", proxy.outbound_addr()),
            format!("http://web.shop.svc.cluster.local{path}"),
        ]
    };
    // Resolved before the tap starts.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while curl_async(via_proxy("/")).await.http_code != 200 {
        assert!(std::time::Instant::now() < deadline, "web never resolved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut client = tap_client(proxy.tap_addr()).await;
    let matcher = observe_request::Match {
        r#match: Some(proto::Match::All(proto::Seq {
            matches: vec![
                label_match("workload", "web-1", false),
                label_match("rt_route", "bytes", true),
            ],
        })),
    };
    let stream = within(
        "Observe",
        TIMEOUT,
        client.observe(observe(2, Some(matcher))),
    )
    .await
    .expect("Observe")
    .into_inner();
    let events = tokio::spawn(collect(stream));
    // The default route: not reported.
    assert_eq!(curl_async(via_proxy("/status/200")).await.http_code, 200);
    for _ in 0..2 {
        assert_eq!(curl_async(via_proxy("/bytes/3")).await.http_code, 200);
    }
    let events = within("the tap stream's end", TIMEOUT, events)
        .await
        .expect("collect task");
    assert_eq!(events.len(), 6, "{events:#?}");
    for event in &events {
        assert_eq!(
            event.proxy_direction,
            tap_event::ProxyDirection::Outbound as i32
        );
        let destination: SocketAddr = event
            .destination
            .expect("destination")
            .try_into()
            .expect("a socket address");
        assert_eq!(destination, backend.addr());
        let labels = &event
            .destination_meta
            .as_ref()
            .expect("destination meta")
            .labels;
        assert_eq!(
            labels.get("workload").map(String::as_str),
            Some("web-1"),
            "{labels:?}"
        );
        assert_eq!(
            labels.get("namespace").map(String::as_str),
            Some("shop"),
            "{labels:?}"
        );
        let route = &event.route_meta.as_ref().expect("route meta").labels;
        assert_eq!(
            route.get("rt_route").map(String::as_str),
            Some("bytes"),
            "{route:?}"
        );
    }
    let HttpEvent::RequestInit(request) = http_event(&events[0]) else {
        panic!("{events:#?}")
    };
    assert_eq!(request.path, "/bytes/3");
    assert_eq!(request.authority, "web.shop.svc.cluster.local");
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
    let failed = within(
        "NOT_FOUND call",
        TIMEOUT,
        echo.unary("gone", Code::NotFound),
    )
    .await;
    assert_eq!(failed.expect_err("NOT_FOUND").code(), Code::NotFound);

    let events = within("the tap stream's end", TIMEOUT, events)
        .await
        .expect("collect task");
    let streams = by_stream(&events);
    let grpc_status = |stream: u64| match streams[&stream].last() {
        Some(HttpEvent::ResponseEnd(end)) => end.eos.as_ref().and_then(|eos| eos.end),
        other => panic!("stream {stream} ends with {other:?}"),
    };
    assert_eq!(
        grpc_status(0),
        Some(eos::End::GrpcStatusCode(Code::Ok as u32))
    );
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_off_loopback_are_refused() {
    let Some(ip) = weft_test_support::non_loopback_ip() else {
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

/// Over TLS with identity: the tap port terminates TLS with the proxy's own
/// certificate and serves only a client whose certificate names
/// `WEFT_PROXY_TAP_SVC_NAME`.
mod tls {
    use super::*;
    use std::sync::Arc;

    use hyper_util::rt::TokioIo;
    use linkerd2_proxy_api::identity::CertifyRequest;
    use linkerd2_proxy_api::identity::identity_client::IdentityClient;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    const NAMESPACE: &str = "shop";

    fn identity_of(service_account: &str) -> String {
        format!("{service_account}.{NAMESPACE}.serviceaccount.identity.weft.cluster.local")
    }

    /// A certificate for `workload`'s identity from the controller's
    /// identity service (its token, a fresh key), as a rustls client
    /// configuration trusting the mesh's anchors (ALPN h2).
    async fn client_config(controller: &ControllerProcess, workload: &str) -> rustls::ClientConfig {
        let identity = identity_of(workload);
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec![identity.clone()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key).expect("CSR").der().to_vec();
        let token = std::fs::read(controller.token_path(NAMESPACE, workload)).expect("token");
        let addr = controller.identity_addr().expect("identity on");
        let mut identity_client = within(
            "connect to the identity service",
            TIMEOUT,
            IdentityClient::connect(format!("http://{addr}")),
        )
        .await
        .expect("connect to the identity service");
        let certified = within(
            "Certify",
            TIMEOUT,
            identity_client.certify(CertifyRequest {
                identity,
                token,
                certificate_signing_request: csr,
            }),
        )
        .await
        .expect("a certificate")
        .into_inner();
        let mut chain = vec![CertificateDer::from(certified.leaf_certificate)];
        chain.extend(
            certified
                .intermediate_certificates
                .into_iter()
                .map(CertificateDer::from),
        );
        let mut roots = rustls::RootCertStore::empty();
        for anchor in CertificateDer::pem_slice_iter(controller.trust_anchors_pem().as_bytes()) {
            roots.add(anchor.expect("PEM anchor")).expect("anchor");
        }
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client certificate");
        config.alpn_protocols = vec![b"h2".to_vec()];
        config
    }

    /// A tap client speaking TLS to `addr`, verifying `server_identity`.
    async fn tls_tap_client(
        addr: SocketAddr,
        server_identity: &str,
        config: rustls::ClientConfig,
    ) -> TapClient<tonic::transport::Channel> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = ServerName::try_from(server_identity.to_string()).expect("server name");
        let channel = within(
            "TLS connection to the tap port",
            TIMEOUT,
            tonic::transport::Endpoint::from_static("http://tap.invalid").connect_with_connector(
                tower::service_fn(move |_: http::Uri| {
                    let (connector, name) = (connector.clone(), name.clone());
                    async move {
                        let tcp = tokio::net::TcpStream::connect(addr).await?;
                        let tls = connector.connect(name, tcp).await?;
                        Ok::<_, std::io::Error>(TokioIo::new(tls))
                    }
                }),
            ),
        )
        .await
        .expect("a TLS connection to the tap port");
        TapClient::new(channel)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_tap_identity_is_served_over_tls() {
        let app = HttpTestServer::start();
        let mesh = MeshFile::new()
            .meshed_workload(
                NAMESPACE,
                "web-1",
                &[("app", "web")],
                app.addr(),
                free_port(),
            )
            .meshed_workload(
                NAMESPACE,
                "tapper",
                &[("app", "tapper")],
                "127.0.0.1:9".parse().unwrap(),
                free_port(),
            )
            .meshed_workload(
                NAMESPACE,
                "intruder",
                &[("app", "intruder")],
                "127.0.0.1:9".parse().unwrap(),
                free_port(),
            )
            .render();
        let controller = ControllerProcess::start_with_identity(&mesh);
        let server_identity = identity_of("web-1");
        let proxy = controller
            .proxy_identity(
                ProxyProcess::builder().inbound_forward(app.addr()),
                NAMESPACE,
                "web-1",
                &server_identity,
            )
            .env("WEFT_PROXY_TAP_SVC_NAME", identity_of("tapper"))
            .spawn();

        // Another identity: refused.
        let config = client_config(&controller, "intruder").await;
        let mut intruder = tls_tap_client(proxy.tap_addr(), &server_identity, config).await;
        let status = within(
            "Observe as intruder",
            TIMEOUT,
            intruder.observe(observe(1, Some(path_prefix("/")))),
        )
        .await
        .expect_err("another identity is refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
        assert!(
            status.message().contains(&identity_of("intruder")),
            "{status:?}"
        );

        // The tap identity: served, and sees a request.
        let config = client_config(&controller, "tapper").await;
        let mut tapper = tls_tap_client(proxy.tap_addr(), &server_identity, config).await;
        let stream = within(
            "Observe as tapper",
            TIMEOUT,
            tapper.observe(observe(1, Some(path_prefix("/bytes/")))),
        )
        .await
        .expect("the tap identity is served")
        .into_inner();
        let events = tokio::spawn(collect(stream));
        let output = curl_async(vec![format!("http://{}/bytes/7", proxy.inbound_addr())]).await;
        assert_eq!(output.http_code, 200, "{output:?}");
        let events = within("the tap stream's end", TIMEOUT, events)
            .await
            .expect("collect task");
        assert_eq!(events.len(), 3, "{events:#?}");
        let HttpEvent::ResponseEnd(end) = http_event(&events[2]) else {
            panic!("{events:#?}")
        };
        assert_eq!(end.response_bytes, 7);
    }
}

//! Inbound trust: what a client that is not a verified mesh peer can make a
//! proxy's inbound side do.
//!
//! ```text
//! attacker ─TLS (SNI = web-1's identity, ALPN transport.l5d.io/v1, no client cert)─┐
//! mesh client (real certificate from the controller) ─TLS + transport header ──────┤
//! attacker ─plaintext HTTP (forged l5d-*, overlong, silent, smuggling) ─────────────┤
//!                                                                                  ▼
//!                                            web-1's proxy (inbound, identity on) ─► app
//!                                                   ╳ another proxy's admin, the controller
//! attacker ─► a proxy's outbound listener: http://0.0.0.0:<admin>/, CONNECT 0.0.0.0:<admin>
//! ```
//!
//! The apps record what reached them: a forged `l5d-client-id` must never.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use linkerd2_proxy_api::identity::CertifyRequest;
use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_test_support::http_client::{self, raw_exchange};
use weft_test_support::{ControllerProcess, HeadersEcho, HttpTestServer, MeshFile, ProxyProcess};

const NAMESPACE: &str = "shop";
pub(crate) const SERVER_IDENTITY: &str = "web-1.shop.serviceaccount.identity.weft.cluster.local";
const CLIENT_IDENTITY: &str = "client.shop.serviceaccount.identity.weft.cluster.local";
const FORGED_IDENTITY: &str = "admin.shop.serviceaccount.identity.weft.cluster.local";
const TRANSPORT_ALPN: &[u8] = b"transport.l5d.io/v1";
const TRANSPORT_PREFACE: &[u8] = b"transport.l5d.io/v1\r\n\r\n";
/// Generous bound on any one exchange.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A plaintext app that records every byte it receives and answers each
/// request head with `200 ok` (requests without bodies only).
pub(crate) struct RecordingApp {
    pub(crate) addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
}

impl RecordingApp {
    pub(crate) fn start() -> RecordingApp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let recorded = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let recorded = recorded.clone();
                std::thread::spawn(move || answer_heads(stream, &recorded));
            }
        });
        RecordingApp { addr, received }
    }

    pub(crate) fn received(&self) -> String {
        String::from_utf8_lossy(&self.received.lock().unwrap_or_else(PoisonError::into_inner))
            .into_owned()
    }
}

fn answer_heads(mut stream: TcpStream, recorded: &Mutex<Vec<u8>>) {
    let mut seen = Vec::new();
    let mut answered = 0;
    let mut buffer = [0u8; 16 * 1024];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            return;
        }
        recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(&buffer[..read]);
        seen.extend_from_slice(&buffer[..read]);
        let heads = seen
            .windows(4)
            .filter(|window| window == b"\r\n\r\n")
            .count();
        while answered < heads {
            let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if stream.write_all(ok).is_err() {
                return;
            }
            answered += 1;
        }
    }
}

/// A controller with identity, `web-1` (served by the proxies under test)
/// and `client` (whose certificate the mesh client uses).
pub(crate) fn controller() -> ControllerProcess {
    let mesh = MeshFile::new()
        .service(NAMESPACE, "web", &[("app", "web")])
        .unserved_workload(NAMESPACE, "web-1", &[("app", "web")])
        .unserved_workload(NAMESPACE, "client", &[("app", "client")])
        .render();
    ControllerProcess::start_with_identity(&mesh)
}

/// web-1's proxy with identity, forwarding inbound to `app`.
pub(crate) fn server_proxy(
    controller: &ControllerProcess,
    app: SocketAddr,
    env: &[(&str, &str)],
) -> ProxyProcess {
    let mut builder = controller.proxy_identity(
        ProxyProcess::builder().inbound_forward(app),
        NAMESPACE,
        "web-1",
        SERVER_IDENTITY,
    );
    for (name, value) in env {
        builder = builder.env(*name, *value);
    }
    builder.spawn()
}

pub(crate) fn roots(controller: &ControllerProcess) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for anchor in CertificateDer::pem_slice_iter(controller.trust_anchors_pem().as_bytes()) {
        roots.add(anchor.unwrap()).unwrap();
    }
    roots
}

pub(crate) fn tls_builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
}

/// The attacker: trusts the mesh's (public) anchors, has no certificate,
/// asks for the transport header.
pub(crate) fn attacker_tls(controller: &ControllerProcess) -> rustls::ClientConfig {
    let mut config = tls_builder()
        .with_root_certificates(roots(controller))
        .with_no_client_auth();
    config.alpn_protocols = vec![TRANSPORT_ALPN.to_vec()];
    config
}

/// A mesh client: `client`'s certificate from the controller's identity
/// service (its token, a fresh key), asking for the transport header.
pub(crate) async fn mesh_client_tls(controller: &ControllerProcess) -> rustls::ClientConfig {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![CLIENT_IDENTITY.to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).unwrap().der().to_vec();
    let token = std::fs::read(controller.token_path(NAMESPACE, "client")).unwrap();
    let addr = controller.identity_addr().unwrap();
    let mut identity = IdentityClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let certified = identity
        .certify(CertifyRequest {
            identity: CLIENT_IDENTITY.to_string(),
            token,
            certificate_signing_request: csr,
        })
        .await
        .unwrap()
        .into_inner();
    let mut chain = vec![CertificateDer::from(certified.leaf_certificate)];
    chain.extend(
        certified
            .intermediate_certificates
            .into_iter()
            .map(CertificateDer::from),
    );
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = tls_builder()
        .with_root_certificates(roots(controller))
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![TRANSPORT_ALPN.to_vec()];
    config
}

/// Linkerd's transport header, hand-encoded: preface, u32 length, protobuf
/// `{ port = 1; session_protocol = 3 { http1 = 1 {} } }`.
fn transport_header(port: u16, http1: bool) -> Vec<u8> {
    let mut message = vec![0x08];
    let mut value = u64::from(port);
    while value >= 0x80 {
        message.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    message.push(value as u8);
    if http1 {
        message.extend_from_slice(&[0x1a, 0x02, 0x0a, 0x00]);
    }
    let mut header = TRANSPORT_PREFACE.to_vec();
    header.extend_from_slice(&(message.len() as u32).to_be_bytes());
    header.extend_from_slice(&message);
    header
}

/// A TLS session to `inbound` for web-1's identity with `config`; panics
/// when the handshake fails or takes longer than [`TIMEOUT`].
pub(crate) async fn tls_to_web(
    inbound: SocketAddr,
    config: rustls::ClientConfig,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(inbound).await.unwrap();
    let name = ServerName::try_from(SERVER_IDENTITY.to_string()).unwrap();
    tokio::time::timeout(TIMEOUT, connector.connect(name, tcp))
        .await
        .expect("the handshake ends in time")
        .expect("web-1's proxy terminates TLS for its identity")
}

/// Writes `bytes` on `tls` (a failed write is an answer too), then reads
/// whatever comes back until close, reset or [`TIMEOUT`].
pub(crate) async fn exchange(
    mut tls: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    bytes: &[u8],
) -> String {
    let _ = tls.write_all(bytes).await;
    let mut received = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut received)).await;
    String::from_utf8_lossy(&received).into_owned()
}

/// TLS to `inbound` for web-1's identity, a transport header naming `port`,
/// then `request`: whatever comes back until close, reset or the timeout.
async fn through_transport_header(
    inbound: SocketAddr,
    config: rustls::ClientConfig,
    port: u16,
    http1: bool,
    request: &[u8],
) -> String {
    let tls = tls_to_web(inbound, config).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(TRANSPORT_ALPN));
    let mut written = transport_header(port, http1);
    written.extend_from_slice(request);
    exchange(tls, &written).await
}

/// Waits (generously) until `proxy`'s metric reaches at least `want`.
fn wait_metric(proxy: &ProxyProcess, name: &str, labels: &[(&str, &str)], want: f64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let value = proxy.metric_or_zero(name, labels);
        if value >= want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}{labels:?} = {value}, expected ≥ {want}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn refused(proxy: &ProxyProcess, error: &str, want: f64) {
    wait_metric(proxy, "inbound_tcp_errors_total", &[("error", error)], want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_header_without_a_client_certificate_is_refused() {
    let app = HttpTestServer::start();
    let controller = controller();
    let server = server_proxy(&controller, app.addr(), &[]);
    let mut victim = ProxyProcess::builder().spawn();
    let attacker = attacker_tls(&controller);
    let inbound = server.inbound_addr();

    // Another proxy's admin port: POST /shutdown.
    let shutdown =
        b"POST /shutdown HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let answer = through_transport_header(
        inbound,
        attacker.clone(),
        victim.admin_addr().port(),
        false,
        shutdown,
    )
    .await;
    assert_eq!(answer, "", "the victim's admin answered the attacker");
    // The controller's HTTP API.
    let api = b"GET /api/workloads HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let answer = through_transport_header(
        inbound,
        attacker.clone(),
        controller.web_addr().port(),
        true,
        api,
    )
    .await;
    assert_eq!(answer, "", "the controller's API answered the attacker");
    // Even the app's own port needs a verified client.
    let headers = b"GET /headers HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n";
    let answer =
        through_transport_header(inbound, attacker, app.addr().port(), true, headers).await;
    assert_eq!(
        answer, "",
        "the app answered an unauthenticated transport header"
    );

    refused(&server, "no client certificate", 3.0);
    assert_eq!(app.requests_seen(), 0);
    assert!(victim.try_exit_status().is_none(), "the victim shut down");
    assert_eq!(victim.admin_get("/ready").unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_client_may_name_only_the_workloads_ports() {
    let app = HttpTestServer::start();
    let second_app = HttpTestServer::start();
    let controller = controller();
    let ports = format!("{},{}", app.addr().port(), second_app.addr().port());
    let listed = server_proxy(
        &controller,
        app.addr(),
        &[("WEFT_PROXY_INBOUND_PORTS", ports.as_str())],
    );
    // Without WEFT_PROXY_INBOUND_PORTS: the forward address's port only.
    let forward_only = server_proxy(&controller, app.addr(), &[]);
    let victim = ProxyProcess::builder().spawn();
    let mesh_client = mesh_client_tls(&controller).await;
    let headers = b"GET /headers HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n";

    // The app's ports are served, with the client's verified identity.
    for (proxy, port) in [
        (&listed, app.addr().port()),
        (&listed, second_app.addr().port()),
        (&forward_only, app.addr().port()),
    ] {
        let answer = through_transport_header(
            proxy.inbound_addr(),
            mesh_client.clone(),
            port,
            true,
            headers,
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "port {port}: {answer}");
        let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
        let echo = HeadersEcho::from_json(body).unwrap();
        assert_eq!(echo.header("l5d-client-id"), Some(CLIENT_IDENTITY));
    }
    // Anything else is refused: another proxy's admin, the proxy's own
    // admin, a port the forward-only proxy does not know.
    let ready = b"GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    for (proxy, port, reason) in [
        (&listed, victim.admin_addr().port(), "port not allowed"),
        (&listed, controller.web_addr().port(), "port not allowed"),
        (&listed, listed.admin_addr().port(), "own listener"),
        (&forward_only, second_app.addr().port(), "port not allowed"),
    ] {
        let answer = through_transport_header(
            proxy.inbound_addr(),
            mesh_client.clone(),
            port,
            false,
            ready,
        )
        .await;
        assert_eq!(answer, "", "port {port} answered a mesh client");
        refused(proxy, reason, 1.0);
    }
    assert_eq!(second_app.requests_seen(), 1);
}

/// A request whose forged `l5d-client-id` follows a request line longer
/// than the detection buffer.
fn overlong_request() -> Vec<u8> {
    format!(
        "GET /{} HTTP/1.1\r\nhost: web\r\nl5d-client-id: {FORGED_IDENTITY}\r\nconnection: close\r\n\r\n",
        "a".repeat(9000)
    )
    .into_bytes()
}

#[test]
fn a_forged_client_id_after_an_overlong_request_line_never_reaches_the_app() {
    let app = RecordingApp::start();
    let controller = controller();
    let server = server_proxy(&controller, app.addr, &[]);
    let exchange = raw_exchange(server.inbound_addr(), &overlong_request(), TIMEOUT);
    assert_eq!(exchange.status(), Some(431), "{}", exchange.text());
    refused(&server, "request line too long", 1.0);
    assert!(
        !app.received().contains(FORGED_IDENTITY),
        "the app saw the forged identity"
    );
}

#[test]
fn a_forged_client_id_behind_a_sloppy_request_line_never_reaches_the_app() {
    // Lenient app servers (Python's http.server splits the line on any
    // whitespace) read these as requests; the proxy's parser does not.
    let app = RecordingApp::start();
    let controller = controller();
    let server = server_proxy(&controller, app.addr, &[]);
    let lines = [" GET / HTTP/1.1", "GET  / HTTP/1.1", "GET /\tHTTP/1.1"];
    for line in lines {
        let request = format!(
            "{line}\r\nhost: web\r\nl5d-client-id: {FORGED_IDENTITY}\r\nconnection: close\r\n\r\n"
        );
        let exchange = raw_exchange(server.inbound_addr(), request.as_bytes(), TIMEOUT);
        assert_eq!(
            exchange.status(),
            Some(400),
            "{line:?}: {}",
            exchange.text()
        );
    }
    refused(&server, "malformed request line", lines.len() as f64);
    assert_eq!(app.received(), "", "the app saw the requests");
}

#[test]
fn a_forged_client_id_after_the_detect_timeout_never_reaches_the_app() {
    let app = RecordingApp::start();
    let controller = controller();
    let server = server_proxy(
        &controller,
        app.addr,
        &[("WEFT_PROXY_DETECT_TIMEOUT", "300ms")],
    );
    let mut stream = TcpStream::connect(server.inbound_addr()).unwrap();
    // Silent well past the detect timeout, then the request.
    std::thread::sleep(Duration::from_secs(2));
    let request = format!(
        "GET / HTTP/1.1\r\nhost: web\r\nl5d-client-id: {FORGED_IDENTITY}\r\nconnection: close\r\n\r\n"
    );
    let _ = stream.write_all(request.as_bytes());
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert_eq!(String::from_utf8_lossy(&answer), "", "the app answered");
    assert!(
        !app.received().contains(FORGED_IDENTITY),
        "the app saw the forged identity"
    );
    refused(&server, "detect timeout", 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_clients_cannot_send_the_meshs_headers() {
    let recording = RecordingApp::start();
    let app = HttpTestServer::start();
    let controller = controller();
    let http1 = server_proxy(&controller, recording.addr, &[]);
    let http2 = server_proxy(&controller, app.addr(), &[]);

    let forged = format!(
        "GET / HTTP/1.1\r\nhost: web\r\nl5d-client-id: {FORGED_IDENTITY}\r\n\
         l5d-dst-override: admin.shop.svc.cluster.local:4191\r\nl5d-orig-proto: HTTP/1.1\r\n\
         l5d-orig-header-case: X-Forged\r\nconnection: close\r\n\r\n"
    );
    let exchange = raw_exchange(http1.inbound_addr(), forged.as_bytes(), TIMEOUT);
    assert_eq!(exchange.status(), Some(200), "{}", exchange.text());
    let received = recording.received().to_ascii_lowercase();
    assert!(received.contains("get / http/1.1"), "{received}");
    assert!(!received.contains("l5d-"), "the app saw: {received}");

    // HTTP/2: the forged l5d-orig-proto must not turn it into HTTP/1.1.
    let request = http::Request::builder()
        .version(http::Version::HTTP_2)
        .uri(format!("http://{}/headers", http2.inbound_addr()))
        .header("l5d-client-id", FORGED_IDENTITY)
        .header("l5d-dst-override", "admin.shop.svc.cluster.local:4191")
        .header("l5d-orig-proto", "HTTP/1.1")
        .header("l5d-orig-header-case", "X-Forged")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = tokio::time::timeout(TIMEOUT, http_client::send(http2.inbound_addr(), request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status, 200);
    let echo = HeadersEcho::from_json(std::str::from_utf8(&response.body).unwrap()).unwrap();
    assert_eq!(echo.version, "HTTP/2.0");
    for name in [
        "l5d-client-id",
        "l5d-dst-override",
        "l5d-orig-proto",
        "l5d-orig-header-case",
    ] {
        assert_eq!(echo.header(name), None, "the app saw {name}");
    }
}

#[test]
fn two_host_headers_are_refused() {
    let app = RecordingApp::start();
    let controller = controller();
    let server = server_proxy(&controller, app.addr, &[]);
    let request = b"GET / HTTP/1.1\r\nhost: web\r\nhost: admin\r\nconnection: close\r\n\r\n";
    let exchange = raw_exchange(server.inbound_addr(), request, TIMEOUT);
    assert_eq!(exchange.status(), Some(400), "{}", exchange.text());
    assert_eq!(app.received(), "", "the app saw the request");
}

#[test]
fn unspecified_addresses_do_not_reach_the_proxys_own_ports() {
    let proxy = ProxyProcess::builder().spawn();
    let admin = proxy.admin_addr().port();
    for target in [format!("0.0.0.0:{admin}"), format!("[::]:{admin}")] {
        let absolute = format!(
            "GET http://{target}/ready HTTP/1.1\r\nhost: {target}\r\nconnection: close\r\n\r\n"
        );
        let exchange = raw_exchange(proxy.outbound_addr(), absolute.as_bytes(), TIMEOUT);
        assert_eq!(
            exchange.status(),
            Some(502),
            "{target}: {}",
            exchange.text()
        );
        assert!(
            exchange.text().contains("loop"),
            "{target}: {}",
            exchange.text()
        );

        let connect = format!(
            "CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\nGET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        );
        let exchange = raw_exchange(proxy.outbound_addr(), connect.as_bytes(), TIMEOUT);
        assert_eq!(
            exchange.status(),
            Some(502),
            "{target}: {}",
            exchange.text()
        );
        assert!(
            !exchange.text().contains("200 OK"),
            "{target}: {}",
            exchange.text()
        );
    }
    assert!(proxy.metric_or_zero("outbound_http_errors_total", &[("error", "loop")]) >= 4.0);
}

/// Request smuggling: framing two hops could read differently. Each variant
/// hides `GET /smuggled` where a lenient parser would see a second request,
/// with what hyper (the proxy's server) answers: 400 for ambiguous framing;
/// Content-Length beside chunked is read as chunked and the connection
/// closed after the one response (RFC 9112 §6.1); bare LF heads are
/// accepted but a bare-LF chunk line is not: the client's body fails, a 400.
const SMUGGLING: &[(&str, &str, u16)] = &[
    (
        "Content-Length with Transfer-Encoding: chunked",
        "POST / HTTP/1.1\r\nhost: web\r\ncontent-length: 40\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: web\r\n\r\n",
        200,
    ),
    (
        "two different Content-Lengths",
        "POST / HTTP/1.1\r\nhost: web\r\ncontent-length: 0\r\ncontent-length: 38\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: web\r\n\r\n",
        400,
    ),
    (
        "Transfer-Encoding: chunked, identity",
        "POST / HTTP/1.1\r\nhost: web\r\ntransfer-encoding: chunked, identity\r\ncontent-length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: web\r\n\r\n",
        400,
    ),
    (
        "obs-fold Transfer-Encoding",
        "POST / HTTP/1.1\r\nhost: web\r\ncontent-length: 5\r\ntransfer-encoding:\r\n chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nhost: web\r\n\r\n",
        400,
    ),
    (
        "bare LF line endings",
        "POST / HTTP/1.1\nhost: web\ncontent-length: 5\ntransfer-encoding: chunked\n\n0\n\nGET /smuggled HTTP/1.1\nhost: web\n\n",
        400,
    ),
];

#[test]
fn request_smuggling_variants_never_become_two_requests_at_the_app() {
    let app = HttpTestServer::start();
    let controller = controller();
    let proxy = server_proxy(&controller, app.addr(), &[]);
    for (name, request, status) in SMUGGLING {
        let before = app.requests_seen();
        let exchange = raw_exchange(proxy.inbound_addr(), request.as_bytes(), TIMEOUT);
        let seen = app.requests_seen() - before;
        let text = exchange.text();
        println!("{name}: the app saw {seen} request(s); the client got {text:?}");
        assert_eq!(exchange.status(), Some(*status), "{name}: {text}");
        assert_eq!(
            text.matches("HTTP/1.1 ").count(),
            1,
            "{name}: one response: {text}"
        );
        assert!(
            matches!(exchange.end, http_client::RawEnd::Closed),
            "{name}: closed after it"
        );
        assert!(seen <= 1, "{name}: the app saw {seen} requests");
        assert!(!text.contains("not found"), "{name}: /smuggled was served");
    }
}

//! Inbound authorization: a weft-proxy in front of an app, its ports'
//! policies from a fake `InboundServerPolicies` server (or its default
//! policy), clients with and without mesh identities.
//!
//! ```text
//! client-a proxy ═mTLS═╗
//! client-b proxy ═mTLS═╬═► server proxy (inbound) ─► app     fake InboundServerPolicies
//! curl / gRPC / raw TCP╝        │ WatchPort{web-1, app port} ◄──────────┘
//!                               └ Certify, and clients' discovery: weft-controller
//! ```
//!
//! Checked: who gets 200 and who 403 (gRPC: PERMISSION_DENIED), that a
//! denied request never reaches the app, the authz counters equal the
//! clients' own counts, `deny` and `audit` defaults without a controller,
//! the admin port's probes, and policy changes on open connections.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_test_support::inbound_policy_server::{InboundPolicyServer, answers};
use weft_test_support::load;
use weft_test_support::{
    ControllerProcess, HttpTestServer, MeshFile, ProxyBuilder, ProxyProcess, free_port,
};

use crate::{assert_metric_settles, raw_unary_inbound};

const NAMESPACE: &str = "shop";
const SERVER_IDENTITY: &str = "web-1.shop.serviceaccount.identity.weft.cluster.local";
const IDENTITY_A: &str = "client-a.shop.serviceaccount.identity.weft.cluster.local";
const IDENTITY_B: &str = "client-b.shop.serviceaccount.identity.weft.cluster.local";
const URL: &str = "http://web.shop.svc.cluster.local/headers";
const WORKLOAD: &str = r#"{"ns":"shop","pod":"web-1"}"#;

/// The meshed setup: an app behind a server proxy that asks the fake
/// policy server, and two client proxies with identities A and B.
struct Mesh {
    /// The app (an HTTP test server, unless the mesh was made around another).
    app: Option<HttpTestServer>,
    app_addr: SocketAddr,
    policy: InboundPolicyServer,
    _controller: ControllerProcess,
    server: ProxyProcess,
    client_a: ProxyProcess,
    client_b: ProxyProcess,
}

impl Mesh {
    fn start() -> Mesh {
        let app = HttpTestServer::start();
        let mut mesh = Mesh::around(app.addr());
        mesh.app = Some(app);
        mesh
    }

    /// The mesh in front of an app listening on `app_addr`.
    fn around(app_addr: SocketAddr) -> Mesh {
        let policy = InboundPolicyServer::start();
        let server_inbound: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mesh = MeshFile::new()
            .web_service_and_web_1(NAMESPACE, app_addr, server_inbound.port())
            .unserved_workload(NAMESPACE, "client-a", &[("app", "client-a")])
            .unserved_workload(NAMESPACE, "client-b", &[("app", "client-b")])
            .render();
        let controller = ControllerProcess::start_with_identity(&mesh);
        let server = controller
            .proxy_identity(
                ProxyProcess::builder()
                    .inbound_addr(server_inbound)
                    .inbound_forward(app_addr),
                NAMESPACE,
                "web-1",
                SERVER_IDENTITY,
            )
            .env("WEFT_PROXY_POLICY_WORKLOAD", WORKLOAD)
            .env("WEFT_PROXY_POLICY_SVC_ADDR", policy.addr().to_string())
            .env("WEFT_PROXY_INBOUND_PORTS", app_addr.port().to_string())
            // Until the policy answers, nobody.
            .env("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "deny")
            .spawn();
        let client = |workload: &str, identity: &str| {
            controller
                .proxy_identity(
                    ProxyProcess::builder().env(
                        "WEFT_PROXY_DESTINATION_SVC_ADDR",
                        controller.destination_addr().to_string(),
                    ),
                    NAMESPACE,
                    workload,
                    identity,
                )
                .spawn()
        };
        let client_a = client("client-a", IDENTITY_A);
        let client_b = client("client-b", IDENTITY_B);
        Mesh {
            app: None,
            app_addr,
            policy,
            _controller: controller,
            server,
            client_a,
            client_b,
        }
    }

    /// Waits until client A's requests are allowed (the policy answered).
    fn wait_until_a_allowed(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let outcome = load::get(self.client_a.outbound_addr(), URL);
            if outcome.status == Some(200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "client A never allowed: {}\n{}",
                outcome.summary(),
                self.server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_server_allowing_only_identity_a_denies_everyone_else() {
    let mesh = Mesh::start();
    let app = mesh.app.as_ref().unwrap();
    let port = app.addr().port();
    mesh.policy.set(
        port,
        answers::server(
            "web-http",
            vec![answers::identities("only-a", &[IDENTITY_A])],
        ),
    );
    mesh.wait_until_a_allowed();
    let seen_before = app.requests_seen();
    let allowed_before = mesh.server.metric_or_zero(
        "inbound_http_authz_allow_total",
        &[("srv_name", "web-http"), ("client_id", IDENTITY_A)],
    );

    // A: 200, and the app sees A's verified identity.
    let mut a_ok = 0;
    for _ in 0..5 {
        let outcome = load::get(mesh.client_a.outbound_addr(), URL);
        assert_eq!(outcome.status, Some(200), "{}", outcome.summary());
        let echo =
            weft_test_support::HeadersEcho::from_json(std::str::from_utf8(&outcome.body).unwrap())
                .unwrap();
        assert_eq!(echo.header("l5d-client-id"), Some(IDENTITY_A));
        a_ok += 1;
    }
    // B: 403 with Linkerd's message.
    let mut b_denied = 0;
    for _ in 0..3 {
        let outcome = load::get(mesh.client_b.outbound_addr(), URL);
        assert_eq!(outcome.status, Some(403), "{}", outcome.summary());
        assert_eq!(
            outcome.proxy_error.as_deref(),
            Some("unauthorized request on route")
        );
        b_denied += 1;
    }
    // An unmeshed plaintext client straight to the inbound port: 403; a
    // forged l5d-client-id counts for nothing.
    let plain = weft_e2e::curl(&[
        "-H",
        &format!("l5d-client-id: {IDENTITY_A}"),
        &format!("http://{}/headers", mesh.server.inbound_addr()),
    ]);
    assert_eq!(plain.http_code, 403);
    // A plaintext gRPC client: PERMISSION_DENIED.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let grpc = runtime.block_on(raw_unary_inbound(&mesh.server, "hi", tonic::Code::Ok));
    assert_eq!(grpc.status, 200u16);
    assert_eq!(grpc.header_or_trailer("grpc-status").as_deref(), Some("7"));

    // Denied requests never reached the app.
    assert_eq!(app.requests_seen() - seen_before, a_ok);
    // The counters equal the clients' own counts.
    assert_metric_settles(
        &mesh.server,
        "inbound_http_authz_allow_total",
        &[
            ("srv_name", "web-http"),
            ("srv_kind", "server"),
            ("srv_group", "policy.linkerd.io"),
            ("authz_name", "only-a"),
            ("authz_kind", "authorizationpolicy"),
            ("client_id", IDENTITY_A),
            ("tls", "true"),
        ],
        allowed_before + a_ok as f64,
    );
    assert_metric_settles(
        &mesh.server,
        "inbound_http_authz_deny_total",
        &[("srv_name", "web-http"), ("client_id", IDENTITY_B)],
        f64::from(b_denied),
    );
    assert_metric_settles(
        &mesh.server,
        "inbound_http_authz_deny_total",
        &[("srv_name", "web-http"), ("tls", "no_identity")],
        2.0,
    );
    // The proxy asked for its workload and the app's port.
    assert!(
        mesh.policy
            .requests()
            .contains(&(WORKLOAD.to_string(), u32::from(port)))
    );
}

/// An HTTP/1.1 keep-alive connection sending requests one at a time.
struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    fn connect(addr: SocketAddr) -> KeepAlive {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        KeepAlive { stream }
    }

    /// Sends `GET /` and returns the status (`None`: the connection closed).
    fn get(&mut self) -> Option<u16> {
        self.stream
            .write_all(b"GET / HTTP/1.1\r\nhost: web\r\n\r\n")
            .ok()?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.stream.read(&mut byte).ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let status = head.get(9..12)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap_or(0));
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).ok()?;
        Some(status)
    }
}

/// A proxy asking the fake policy server, without identity.
fn policy_proxy(policy: &InboundPolicyServer, app: SocketAddr) -> ProxyProcess {
    policy_proxy_builder(policy, app).spawn()
}

/// [`policy_proxy`] before it is spawned: forwarding inbound to `app`,
/// whose port it declares, and asking `policy` as web-1.
fn policy_proxy_builder(policy: &InboundPolicyServer, app: SocketAddr) -> ProxyBuilder {
    ProxyProcess::builder()
        .inbound_forward(app)
        .env("WEFT_PROXY_POLICY_WORKLOAD", WORKLOAD)
        .env("WEFT_PROXY_POLICY_SVC_ADDR", policy.addr().to_string())
        .env("WEFT_PROXY_INBOUND_PORTS", app.port().to_string())
}

#[test]
fn a_policy_change_applies_to_an_open_keep_alive_connection_within_a_second() {
    let app = HttpTestServer::start();
    let policy = InboundPolicyServer::start();
    policy.set(
        app.addr().port(),
        answers::server("web-http", vec![answers::unauthenticated("everyone")]),
    );
    let proxy = policy_proxy(&policy, app.addr());
    let mut connection = KeepAlive::connect(proxy.inbound_addr());
    let deadline = Instant::now() + Duration::from_secs(10);
    // The answer (everyone) replaces the default (everyone) : wait for it
    // to be counted under its own name.
    while connection.get() == Some(200)
        && proxy.metric_or_zero(
            "inbound_http_authz_allow_total",
            &[("authz_name", "everyone")],
        ) == 0.0
    {
        assert!(Instant::now() < deadline, "the policy never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(connection.get(), Some(200));

    policy.set(
        app.addr().port(),
        answers::server(
            "web-http",
            vec![answers::identities("only-a", &[IDENTITY_A])],
        ),
    );
    let changed = Instant::now();
    let mut status = connection.get();
    while status == Some(200) && changed.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
        status = connection.get();
    }
    let took = changed.elapsed();
    println!("policy change applied to an open HTTP connection after {took:?}");
    assert_eq!(status, Some(403), "the same connection is now denied");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

/// A TCP echo server counting the bytes it received.
fn echo_server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(read) = stream.read(&mut buffer) {
                    // Counted before the echo, so a client that read it
                    // sees the count.
                    counted.fetch_add(read as u64, Ordering::Relaxed);
                    if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, received)
}

#[test]
fn a_revoked_authorization_closes_an_open_tcp_connection() {
    let (echo, received) = echo_server();
    let policy = InboundPolicyServer::start();
    policy.set(
        echo.port(),
        answers::opaque_server("redis", vec![answers::unauthenticated("everyone")]),
    );
    let proxy = policy_proxy(&policy, echo);
    // Wait for the answer: until then the port is detected (and "ping"
    // would wait in detection); the opaque policy makes it TCP at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while policy.open_streams(echo.port()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the proxy never watched the port"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut stream = loop {
        let mut stream = TcpStream::connect(proxy.inbound_addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(b"ping").unwrap();
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"ping");
        if proxy.metric_or_zero(
            "inbound_tcp_authz_allow_total",
            &[("authz_name", "everyone")],
        ) > 0.0
        {
            break stream;
        }
        assert!(Instant::now() < deadline, "the policy never answered");
        std::thread::sleep(Duration::from_millis(50));
    };

    policy.set(
        echo.port(),
        answers::opaque_server("redis", vec![answers::identities("only-a", &[IDENTITY_A])]),
    );
    let changed = Instant::now();
    let mut buffer = [0u8; 16];
    let read = stream.read(&mut buffer);
    let took = changed.elapsed();
    println!("revoked TCP connection closed after {took:?}");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_metric_settles(
        &proxy,
        "inbound_tcp_authz_terminate_total",
        &[("srv_name", "redis"), ("authz_name", "everyone")],
        1.0,
    );

    // A new connection is refused before reaching the app.
    let before = received.load(Ordering::Relaxed);
    let mut refused = TcpStream::connect(proxy.inbound_addr()).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = refused.write_all(b"hello");
    assert!(matches!(refused.read(&mut buffer), Ok(0) | Err(_)));
    assert_eq!(received.load(Ordering::Relaxed), before);
    assert_metric_settles(
        &proxy,
        "inbound_tcp_authz_deny_total",
        &[("srv_name", "redis"), ("tls", "no_identity")],
        1.0,
    );
}

#[test]
fn deny_without_a_controller_refuses_everything_but_the_probes() {
    let app = HttpTestServer::start();
    let (echo, received) = echo_server();
    let admin_port = free_port();
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .admin_addr(format!("0.0.0.0:{admin_port}").parse().unwrap())
        .env("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "deny")
        .spawn();
    // HTTP: 403, never at the app.
    let outcome = weft_e2e::curl(&[&format!("http://{}/", proxy.inbound_addr())]);
    assert_eq!(outcome.http_code, 403);
    assert_eq!(app.requests_seen(), 0);
    assert_metric_settles(
        &proxy,
        "inbound_http_authz_deny_total",
        &[("srv_kind", "default"), ("srv_name", "deny")],
        1.0,
    );

    // TCP (an opaque port): closed before a byte reaches the app.
    let tcp_proxy = ProxyProcess::builder()
        .inbound_forward(echo)
        .env("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "deny")
        .env("WEFT_PROXY_OPAQUE_PORTS", echo.port().to_string())
        .spawn();
    let mut stream = TcpStream::connect(tcp_proxy.inbound_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.write_all(b"hello");
    let mut buffer = [0u8; 8];
    assert!(matches!(stream.read(&mut buffer), Ok(0) | Err(_)));
    assert_eq!(received.load(Ordering::Relaxed), 0);
    assert_metric_settles(
        &tcp_proxy,
        "inbound_tcp_authz_deny_total",
        &[("srv_name", "deny"), ("srv_port", &echo.port().to_string())],
        1.0,
    );

    // The admin port from a non-loopback address: probes only.
    let host = non_loopback_address();
    let Some(host) = host else {
        println!("no non-loopback address: the admin port is checked from loopback only");
        return;
    };
    let remote = SocketAddr::new(host, admin_port);
    for (path, status) in [
        ("/live", 200),
        ("/ready", 200),
        ("/metrics", 403),
        ("/config", 403),
    ] {
        let response = weft_test_support::proxy::admin_request(remote, "GET", path).unwrap();
        assert_eq!(response.status, status, "{path} from {host}");
    }
    // From loopback (the host's own scraper): everything.
    assert_eq!(proxy.admin_get("/metrics").unwrap().status, 200);
}

/// An address of this host other than loopback, if it has one.
fn non_loopback_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.200:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn audit_allows_everyone_and_counts_audit() {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "audit")
        .spawn();
    for _ in 0..4 {
        let outcome = weft_e2e::curl(&[&format!("http://{}/", proxy.inbound_addr())]);
        assert_eq!(outcome.http_code, 200);
    }
    assert_eq!(app.requests_seen(), 4);
    assert_metric_settles(
        &proxy,
        "inbound_http_authz_allow_total",
        &[
            ("authz_name", "audit"),
            ("authz_kind", "default"),
            ("srv_name", "audit"),
        ],
        4.0,
    );
    assert_eq!(
        proxy.metric_or_zero("inbound_http_authz_deny_total", &[]),
        0.0
    );
    assert!(proxy.log().contains("allowed by audit"), "{}", proxy.log());
}

#[test]
fn routes_carry_their_own_authorizations() {
    let app = HttpTestServer::start();
    let policy = InboundPolicyServer::start();
    policy.set(
        app.addr().port(),
        answers::server_with_routes(
            "web-http",
            // Nothing Server-wide: it would also admit on every route.
            Vec::new(),
            vec![
                answers::http_route(
                    "public",
                    "/headers",
                    vec![answers::unauthenticated("everyone")],
                ),
                answers::http_route(
                    "admin",
                    "/echo",
                    vec![answers::identities("only-a", &[IDENTITY_A])],
                ),
            ],
        ),
    );
    let proxy = policy_proxy(&policy, app.addr());
    let url = |path: &str| format!("http://{}{path}", proxy.inbound_addr());
    // Wait for the answer (the default policy admits everyone on any
    // path): the proxy's own 404 for a path no route matches.
    let deadline = Instant::now() + Duration::from_secs(10);
    while weft_e2e::curl(&[&url("/status/200")]).header("l5d-proxy-error")
        != Some("no route found for request")
    {
        assert!(Instant::now() < deadline, "the policy never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = app.requests_seen();
    assert_eq!(weft_e2e::curl(&[&url("/headers")]).http_code, 200);
    let admin = weft_e2e::curl(&[&url("/echo")]);
    assert_eq!(admin.http_code, 403);
    assert_eq!(
        admin.header("l5d-proxy-error"),
        Some("unauthorized request on route")
    );
    let other = weft_e2e::curl(&[&url("/status/200")]);
    assert_eq!(other.http_code, 404);
    assert_eq!(
        other.header("l5d-proxy-error"),
        Some("no route found for request")
    );
    assert_eq!(
        app.requests_seen() - seen,
        1,
        "only /headers reached the app"
    );
    assert_metric_settles(
        &proxy,
        "inbound_http_authz_allow_total",
        &[
            ("route_name", "public"),
            ("route_kind", "HTTPRoute"),
            ("authz_name", "everyone"),
        ],
        1.0,
    );
    assert_metric_settles(
        &proxy,
        "inbound_http_authz_deny_total",
        &[("route_name", "admin"), ("srv_name", "web-http")],
        1.0,
    );
}

#[test]
fn the_last_answer_stays_when_the_policy_server_goes_away() {
    let app = HttpTestServer::start();
    let policy = InboundPolicyServer::start();
    policy.set(
        app.addr().port(),
        answers::server(
            "web-http",
            vec![answers::identities("only-a", &[IDENTITY_A])],
        ),
    );
    let proxy = policy_proxy(&policy, app.addr());
    let url = format!("http://{}/", proxy.inbound_addr());
    // Until the answer applies, the default policy (everyone) serves.
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric_or_zero("inbound_http_authz_deny_total", &[("srv_name", "web-http")]) == 0.0
    {
        assert!(Instant::now() < deadline, "the policy never answered");
        weft_e2e::curl(&[&url]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = app.requests_seen();
    drop(policy);
    // Reconnecting (with backoff) keeps the last answer, not the default
    // (which would admit everyone).
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(weft_e2e::curl(&[&url]).http_code, 403);
    }
    assert_eq!(app.requests_seen(), seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_request_shows_in_the_tap_as_a_403() {
    use linkerd2_proxy_api::tap::tap_event::http::Event as HttpEvent;

    use crate::tap::{collect, http_event, observe, path_prefix, tap_client};

    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "deny")
        .spawn();
    let mut client = tap_client(proxy.tap_addr()).await;
    let stream = weft_e2e::within(
        "Observe",
        Duration::from_secs(30),
        client.observe(observe(1, Some(path_prefix("/headers")))),
    )
    .await
    .expect("Observe is served to a loopback client")
    .into_inner();
    let events = tokio::spawn(collect(stream));
    let url = format!("http://{}/headers", proxy.inbound_addr());
    let output = tokio::task::spawn_blocking(move || weft_e2e::curl(&[&url]))
        .await
        .unwrap();
    assert_eq!(output.http_code, 403);
    let events = weft_e2e::within("the tap stream's end", Duration::from_secs(30), events)
        .await
        .expect("collect task");
    let statuses: Vec<u32> = events
        .iter()
        .filter_map(|event| match http_event(event) {
            HttpEvent::ResponseInit(init) => Some(init.http_status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, [403], "{events:#?}");
    assert_eq!(app.requests_seen(), 0);
}

#[test]
fn other_ports_are_watched_at_their_first_connection() {
    let app = HttpTestServer::start();
    let policy = InboundPolicyServer::start();
    policy.set(
        app.addr().port(),
        answers::server("web-http", vec![answers::unauthenticated("everyone")]),
    );
    // No WEFT_PROXY_INBOUND_PORTS: nothing is watched at start.
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_POLICY_WORKLOAD", WORKLOAD)
        .env("WEFT_PROXY_POLICY_SVC_ADDR", policy.addr().to_string())
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    assert!(policy.requests().is_empty(), "{:?}", policy.requests());
    // The first connection starts the watch (and is served by the default
    // policy, all-unauthenticated, until the answer comes).
    let url = format!("http://{}/headers", proxy.inbound_addr());
    assert_eq!(weft_e2e::curl(&[&url]).http_code, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.metric_or_zero(
        "inbound_http_authz_allow_total",
        &[("authz_name", "everyone")],
    ) == 0.0
    {
        assert!(Instant::now() < deadline, "the answer never applied");
        let output = weft_e2e::curl(&[&url]);
        assert_eq!(output.http_code, 200);
    }
    // A forged l5d-client-id from a plaintext client never reaches the app.
    let forged = weft_e2e::curl(&[&url, "-H", &format!("l5d-client-id: {IDENTITY_A}")]);
    let echo = weft_test_support::HeadersEcho::from_json(&forged.body_text()).expect("echo");
    assert_eq!(echo.header("l5d-client-id"), None);
    assert_eq!(
        policy.requests(),
        [(WORKLOAD.to_string(), u32::from(app.addr().port()))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opaque_port_admits_only_identity_a_over_the_mesh() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (echo, received) = echo_server();
    let mesh = tokio::task::spawn_blocking(move || Mesh::around(echo))
        .await
        .unwrap();
    mesh.policy.set(
        mesh.app_addr.port(),
        answers::opaque_server("echo", vec![answers::identities("only-a", &[IDENTITY_A])]),
    );
    let target = "web.shop.svc.cluster.local:80";
    const PAYLOAD: &[u8] = b"\x00\x01opaque";
    // A CONNECT tunnel from a client proxy: mutual TLS and a transport
    // header to the server proxy, which authorizes the client's identity.
    async fn exchange(proxy: SocketAddr, target: &str) -> Vec<u8> {
        let Ok(mut tunnel) = weft_test_support::http_client::connect_tunnel(proxy, target).await
        else {
            return Vec::new();
        };
        // Not HTTP from the first byte: the client proxy relays it at once.
        let _ = tunnel.write_all(PAYLOAD).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            (&mut tunnel)
                .take(PAYLOAD.len() as u64)
                .read_to_end(&mut answer),
        )
        .await;
        answer
    }
    // Until the answer applies the port has the default policy (deny).
    let deadline = Instant::now() + Duration::from_secs(20);
    while exchange(mesh.client_a.outbound_addr(), target).await != PAYLOAD {
        assert!(
            Instant::now() < deadline,
            "client A never reached the app\n{}\n--- client A ---\n{}\n--- server metrics ---\n{}",
            mesh.server.log(),
            mesh.client_a.log(),
            mesh.server.metrics_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = received.load(Ordering::Relaxed);
    let answer_b = exchange(mesh.client_b.outbound_addr(), target).await;
    assert_eq!(
        answer_b,
        b"",
        "B got {:?}\n--- server ---\n{}\n--- client B ---\n{}",
        String::from_utf8_lossy(&answer_b),
        mesh.server.log(),
        mesh.client_b.log()
    );
    assert_eq!(
        received.load(Ordering::Relaxed),
        before,
        "B's bytes reached the app"
    );
    let server = &mesh.server;
    assert!(
        server.metric_or_zero(
            "inbound_tcp_authz_allow_total",
            &[
                ("srv_name", "echo"),
                ("authz_name", "only-a"),
                ("client_id", IDENTITY_A)
            ],
        ) >= 1.0,
        "{}",
        server.metrics_text()
    );
    assert_eq!(
        server.metric_or_zero(
            "inbound_tcp_authz_deny_total",
            &[("srv_name", "echo"), ("client_id", IDENTITY_B)],
        ),
        1.0,
        "{}",
        server.metrics_text()
    );
}

#[test]
fn the_proxy_is_ready_only_once_its_ports_policy_has_arrived() {
    let app = HttpTestServer::start();
    // No answer yet: the policy server holds the stream open, silent.
    let policy = InboundPolicyServer::start();
    let proxy = policy_proxy_builder(&policy, app.addr()).spawn_unready();
    let ready = || {
        proxy
            .admin_get("/ready")
            .map(|response| response.status)
            .ok()
    };
    // Not ready while the declared port's policy is on its way (the wait is
    // bounded by 5 s; a second is well inside it).
    std::thread::sleep(Duration::from_secs(1));
    assert_ne!(ready(), Some(200), "ready before the policy arrived");
    policy.set(
        app.addr().port(),
        answers::server(
            "web-http",
            vec![answers::identities("only-a", &[IDENTITY_A])],
        ),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready() != Some(200) {
        assert!(Instant::now() < deadline, "never ready: {}", proxy.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Ready means the Server's policy is in force: the first plaintext
    // request is refused, never served under the default policy.
    let url = format!("http://{}/", proxy.inbound_addr());
    assert_eq!(weft_e2e::curl(&[&url]).http_code, 403);
    assert_eq!(app.requests_seen(), 0);
}

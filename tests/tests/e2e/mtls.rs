//! Mutual TLS between meshed workloads: a real `weft-controller` with its
//! Identity service issues both proxies' certificates and names the server
//! workload's identity in discovery; the client proxy originates TLS to the
//! server proxy's inbound port, which terminates it and hands plain HTTP to
//! the app.
//!
//! ```text
//! curl / load ─► client proxy (outbound, explicit) ══TLS══► relay ══► server proxy (inbound) ─► app
//!                      │ Certify, GetProfile, Get                         │ Certify
//!                      └──────────────► weft-controller ◄─────────────────┘
//! ```
//!
//! The relay between the proxies records the bytes on the wire, so the tests
//! check that no plaintext HTTP crosses it, and counts its connections. With
//! `WEFT_PROXY_CONTROL_PLANE_TLS=always`, relays in front of the controller's
//! ports show that Certify and discovery travel over TLS too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use weft_e2e::curl;
use weft_test_support::load;
use weft_test_support::{ControllerProcess, HttpTestServer, MeshFile, ProxyProcess, free_port};

use crate::assert_metric_settles;

const NAMESPACE: &str = "shop";
pub(crate) const SERVER_IDENTITY: &str = "web-1.shop.serviceaccount.identity.weft.cluster.local";
const CLIENT_IDENTITY: &str = "client.shop.serviceaccount.identity.weft.cluster.local";
const URL: &str = "http://web.shop.svc.cluster.local/headers";

/// A TCP relay that records what the client side sends and counts connections.
struct Relay {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (recorded, counted) = (sent.clone(), connections.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                counted.fetch_add(1, Ordering::Relaxed);
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let recorded = recorded.clone();
                let (mut client_read, mut server_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(read) = client_read.read(&mut buffer) {
                        if read == 0 || server_write.write_all(&buffer[..read]).is_err() {
                            break;
                        }
                        recorded
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .extend_from_slice(&buffer[..read]);
                    }
                    let _ = server_write.shutdown(std::net::Shutdown::Write);
                });
                let (mut server_read, mut client_write) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client_write);
                    let _ = client_write.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Relay {
            addr,
            sent,
            connections,
        }
    }

    fn sent(&self) -> Vec<u8> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Two meshed workloads: `client` (only its proxy) and `web-1` (app + proxy).
pub(crate) struct Mesh {
    app: Option<HttpTestServer>,
    relay: Relay,
    /// Recording relays in front of the controller, when asked for.
    control: Option<ControlRelays>,
    controller: ControllerProcess,
    pub(crate) client: ProxyProcess,
    pub(crate) server: ProxyProcess,
}

/// Relays in front of the controller's gRPC ports, recording what the
/// proxies send.
struct ControlRelays {
    destination: Relay,
    identity: Relay,
}

/// How the mesh is set up beyond its workloads.
#[derive(Clone, Copy, Default)]
struct Options {
    /// How the proxies reach the controller.
    path: ControlPath,
    /// web-1's `proxy.implementation` in the mesh file (default: none, a
    /// weft proxy). Its proxy is a weft proxy either way: declared
    /// `linkerd2-proxy`, it stands in for one that would hand
    /// `l5d-orig-header-case` to its app.
    server_proxy: Option<&'static str>,
    /// The client proxy sends every HTTP/1 request upgraded
    /// (`WEFT_PROXY_MESHED_HTTP1_CONNECTIONS=0`), as Linkerd does.
    always_upgrade: bool,
}

/// How the proxies reach the controller.
#[derive(Clone, Copy, Default)]
struct ControlPath {
    /// `WEFT_PROXY_CONTROL_PLANE_TLS`, when set.
    tls: Option<&'static str>,
    /// Through recording relays.
    record: bool,
}

/// Where the proxies send Certify and discovery, and how.
struct ControlAddrs {
    identity: SocketAddr,
    destination: SocketAddr,
    tls: Option<&'static str>,
}

impl ControlAddrs {
    fn direct(controller: &ControllerProcess) -> ControlAddrs {
        ControlAddrs {
            identity: controller.identity_addr().unwrap(),
            destination: controller.destination_addr(),
            tls: None,
        }
    }
}

fn identity_env(
    builder: weft_test_support::ProxyBuilder,
    controller: &ControllerProcess,
    control: &ControlAddrs,
    workload: &str,
    identity: &str,
) -> weft_test_support::ProxyBuilder {
    let builder = match control.tls {
        Some(mode) => builder.env("WEFT_PROXY_CONTROL_PLANE_TLS", mode),
        None => builder,
    };
    // The identity address may be another listener (a TLS front) than the
    // controller's own: it is set after the shared settings.
    controller
        .proxy_identity(builder, NAMESPACE, workload, identity)
        .env("WEFT_PROXY_IDENTITY_SVC_ADDR", control.identity.to_string())
}

impl Mesh {
    /// The mesh, with the server proxy claiming `server_identity` using the
    /// token of `server_workload` (normally web-1's own).
    fn start_with(server_workload: &str, server_identity: &str) -> Mesh {
        Mesh::start_full(server_workload, server_identity, &[])
    }

    /// The mesh with more controller arguments.
    fn start_full(server_workload: &str, server_identity: &str, controller_args: &[&str]) -> Mesh {
        let app = HttpTestServer::start();
        let app_addr = app.addr();
        Mesh::around(
            app_addr,
            Some(app),
            server_workload,
            server_identity,
            controller_args,
        )
    }

    /// The mesh with the proxies reaching the controller as `path` says.
    fn start_control(path: ControlPath) -> Mesh {
        Mesh::start_options(Options {
            path,
            ..Options::default()
        })
    }

    /// The mesh with web-1's proxy declared as `implementation`.
    fn start_declaring(implementation: &'static str) -> Mesh {
        Mesh::start_options(Options {
            server_proxy: Some(implementation),
            ..Options::default()
        })
    }

    /// The mesh whose client proxy sends every HTTP/1 request upgraded to
    /// HTTP/2, with web-1's proxy declared as `implementation` if given.
    fn start_upgrading(implementation: Option<&'static str>) -> Mesh {
        Mesh::start_options(Options {
            server_proxy: implementation,
            always_upgrade: true,
            ..Options::default()
        })
    }

    fn start_options(options: Options) -> Mesh {
        let app = HttpTestServer::start();
        let app_addr = app.addr();
        Mesh::around_with(app_addr, Some(app), "web-1", SERVER_IDENTITY, &[], options)
    }

    /// The mesh around an app listening on `app_addr`.
    pub(crate) fn around(
        app_addr: SocketAddr,
        app: Option<HttpTestServer>,
        server_workload: &str,
        server_identity: &str,
        controller_args: &[&str],
    ) -> Mesh {
        Mesh::around_with(
            app_addr,
            app,
            server_workload,
            server_identity,
            controller_args,
            Options::default(),
        )
    }

    /// The mesh around an app, set up as `options` say.
    fn around_with(
        app_addr: SocketAddr,
        app: Option<HttpTestServer>,
        server_workload: &str,
        server_identity: &str,
        controller_args: &[&str],
        options: Options,
    ) -> Mesh {
        let path = options.path;
        let server_inbound: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let relay = Relay::start(server_inbound);
        let client_app: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mesh = MeshFile::new()
            .web_service_and_web_1(NAMESPACE, app_addr, relay.addr.port())
            .meshed_workload(
                NAMESPACE,
                "client",
                &[("app", "client")],
                client_app,
                free_port(),
            )
            .render();
        let mesh = match options.server_proxy {
            Some(implementation) => {
                let port = relay.addr.port();
                let weft = format!("proxy: {{inboundPort: {port}}}");
                assert!(mesh.contains(&weft), "{mesh}");
                mesh.replace(
                    &weft,
                    &format!("proxy: {{inboundPort: {port}, implementation: {implementation}}}"),
                )
            }
            None => mesh,
        };
        let controller = ControllerProcess::start_with_identity_args(&mesh, controller_args);
        let control = path.record.then(|| ControlRelays {
            destination: Relay::start(controller.destination_addr()),
            identity: Relay::start(controller.identity_addr().unwrap()),
        });
        let addrs = match &control {
            Some(relays) => ControlAddrs {
                identity: relays.identity.addr,
                destination: relays.destination.addr,
                tls: path.tls,
            },
            None => ControlAddrs {
                tls: path.tls,
                ..ControlAddrs::direct(&controller)
            },
        };
        let server = identity_env(
            ProxyProcess::builder()
                .inbound_addr(server_inbound)
                .inbound_forward(app_addr),
            &controller,
            &addrs,
            server_workload,
            server_identity,
        )
        .spawn();
        let client = ProxyProcess::builder().env(
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            addrs.destination.to_string(),
        );
        let client = match options.always_upgrade {
            true => client.env("WEFT_PROXY_MESHED_HTTP1_CONNECTIONS", "0"),
            false => client,
        };
        let client = identity_env(client, &controller, &addrs, "client", CLIENT_IDENTITY).spawn();
        Mesh {
            app,
            relay,
            control,
            controller,
            client,
            server,
        }
    }

    /// What the client proxy sent the server proxy, as the wire carried it.
    pub(crate) fn wire_sent(&self) -> Vec<u8> {
        self.relay.sent()
    }

    pub(crate) fn start() -> Mesh {
        Mesh::start_with("web-1", SERVER_IDENTITY)
    }

    /// What the app saw of one request sent through the client proxy.
    fn app_headers(&self) -> weft_test_support::HeadersEcho {
        let echo = load::get(self.client.outbound_addr(), URL);
        weft_test_support::HeadersEcho::from_json(std::str::from_utf8(&echo.body).unwrap()).unwrap()
    }
}

#[test]
fn traffic_between_meshed_workloads_is_mutual_tls() {
    let mesh = Mesh::start();
    // One at a time: all on one connection (the HTTP/1.1 one).
    let report = load::run(mesh.client.outbound_addr(), URL, 40, 1);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());

    // The wire between the proxies: TLS records only, no plaintext HTTP.
    let wire = mesh.relay.sent();
    assert!(!wire.is_empty());
    assert_eq!(
        &wire[..2],
        &[0x16, 0x03],
        "starts with a TLS handshake record"
    );
    for plaintext in ["GET /", "HTTP/1.1", "headers", "l5d-", "web.shop"] {
        assert!(
            !wire
                .windows(plaintext.len())
                .any(|window| window == plaintext.as_bytes()),
            "{plaintext:?} crossed the wire in plaintext"
        );
    }
    // The app saw plain HTTP/1.1 and the client's verified identity.
    let headers = mesh.app_headers();
    assert_eq!(headers.version, "HTTP/1.1");
    assert_eq!(headers.header("l5d-client-id"), Some(CLIENT_IDENTITY));

    // Both proxies' metrics name the other side.
    assert_metric_settles(
        &mesh.client,
        "request_total",
        &[
            ("direction", "outbound"),
            ("tls", "true"),
            ("server_id", SERVER_IDENTITY),
            ("dst_workload", "web-1"),
        ],
        41.0,
    );
    assert_metric_settles(
        &mesh.server,
        "request_total",
        &[
            ("direction", "inbound"),
            ("tls", "true"),
            ("client_id", CLIENT_IDENTITY),
        ],
        41.0,
    );
    // The connections themselves: accepted with the client's identity,
    // opened with the server's.
    assert_metric_settles(
        &mesh.server,
        "tcp_open_total",
        &[
            ("direction", "inbound"),
            ("peer", "src"),
            ("tls", "true"),
            ("client_id", CLIENT_IDENTITY),
        ],
        1.0,
    );
    assert_metric_settles(
        &mesh.client,
        "tcp_open_total",
        &[
            ("direction", "outbound"),
            ("peer", "dst"),
            ("tls", "true"),
            ("server_id", SERVER_IDENTITY),
        ],
        1.0,
    );
    println!(
        "mTLS: 41 requests, {} bytes on the wire, {} connection(s) between the proxies",
        wire.len(),
        mesh.relay.connections.load(Ordering::Relaxed)
    );
    drop(mesh.controller);
}

/// Sends `requests` HTTP/1.1 requests from `concurrency` clients through the
/// client proxy, all answered; the connections opened between the proxies
/// so far.
fn connections_after(mesh: &Mesh, requests: usize, concurrency: usize) -> usize {
    let report = load::run(mesh.client.outbound_addr(), URL, requests, concurrency);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    let connections = mesh.relay.connections.load(Ordering::Relaxed);
    println!(
        "{concurrency} concurrent HTTP/1.1 clients, {requests} requests: {connections} connection(s) between the proxies so far"
    );
    connections
}

#[test]
fn http1_clients_share_one_http2_connection_between_the_proxies() {
    let mesh = Mesh::start_upgrading(None);
    let connections = connections_after(&mesh, 500, 50);
    assert_eq!(connections, 1, "one multiplexed HTTP/2 connection");
    assert!(mesh.app.as_ref().unwrap().requests_seen() >= 500);
}

#[test]
fn one_at_a_time_http1_crosses_on_one_http1_connection_and_concurrent_requests_also_on_http2() {
    // web-1 declared linkerd2-proxy: an upgraded request would reach its
    // app with lowercase names (no l5d-orig-header-case for it), so names
    // in the client's case show the request crossed as HTTP/1.1.
    let mesh = Mesh::start_declaring("linkerd2-proxy");
    assert_case_kept(&names_the_app_saw(&mesh));
    assert_eq!(
        connections_after(&mesh, 40, 1),
        1,
        "one request at a time: one HTTP/1.1 connection"
    );
    // Concurrent requests find it busy and share one HTTP/2 connection.
    assert_eq!(
        connections_after(&mesh, 500, 50),
        2,
        "the HTTP/1.1 connection and one HTTP/2"
    );
    // Every request, either way, was mutual TLS with the client's identity.
    assert_metric_settles(
        &mesh.server,
        "request_total",
        &[
            ("direction", "inbound"),
            ("tls", "true"),
            ("client_id", CLIENT_IDENTITY),
        ],
        541.0,
    );
    let wire = mesh.relay.sent();
    assert_eq!(&wire[..2], &[0x16, 0x03], "TLS on the wire");
    assert!(
        !wire.windows(8).any(|window| window == b"HTTP/1.1"),
        "no plaintext HTTP between the proxies"
    );
}

#[test]
fn without_the_h2_upgrade_http1_crosses_in_mutual_tls_http1_connections() {
    let mesh = Mesh::start_full("web-1", SERVER_IDENTITY, &["--disable-h2-upgrade"]);
    let connections = connections_after(&mesh, 200, 20);
    // No HTTP/2 connection preface inside: each connection carries one
    // HTTP/1.1 exchange at a time, so concurrent clients need several.
    assert!(
        connections > 1,
        "pooled HTTP/1.1 connections, not one HTTP/2"
    );
    let wire = mesh.relay.sent();
    assert_eq!(&wire[..2], &[0x16, 0x03], "TLS on the wire");
    assert!(
        !wire.windows(8).any(|window| window == b"HTTP/1.1"),
        "no plaintext HTTP between the proxies"
    );
    let headers = mesh.app_headers();
    assert_eq!(headers.version, "HTTP/1.1");
    assert_eq!(headers.header("l5d-client-id"), Some(CLIENT_IDENTITY));
    assert_eq!(headers.header("l5d-orig-proto"), None);
    assert_metric_settles(
        &mesh.server,
        "request_total",
        &[
            ("direction", "inbound"),
            ("tls", "true"),
            ("client_id", CLIENT_IDENTITY),
        ],
        201.0,
    );
}

#[test]
fn the_app_sees_the_header_case_the_client_wrote() {
    let mesh = Mesh::start_upgrading(None);
    let proxy = format!("http://{}", mesh.client.outbound_addr());
    let output = curl(&[
        "-sS",
        "-x",
        &proxy,
        "-H",
        "X-Custom-HEADER: one",
        "-H",
        "x-lower-case: two",
        "-H",
        "Content-Type: text/plain",
        URL,
    ]);
    let headers = weft_test_support::HeadersEcho::from_json(&output.body_text()).unwrap();
    assert_eq!(headers.version, "HTTP/1.1", "downgraded for the app");
    let names: Vec<&str> = headers
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    for expected in [
        "X-Custom-HEADER",
        "x-lower-case",
        "Content-Type",
        "User-Agent",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|name| name.eq_ignore_ascii_case("l5d-orig-header-case")),
        "{names:?}"
    );
    // It did cross the mesh as HTTP/2 over mutual TLS.
    assert_eq!(&mesh.relay.sent()[..2], &[0x16, 0x03]);
}

/// Sends a request with mixed-case header names through the client proxy;
/// the names the app saw.
fn names_the_app_saw(mesh: &Mesh) -> Vec<String> {
    let proxy = format!("http://{}", mesh.client.outbound_addr());
    let output = curl(&[
        "-sS",
        "-x",
        &proxy,
        "-H",
        "X-Custom-HEADER: one",
        "-H",
        "Content-Type: text/plain",
        URL,
    ]);
    let headers = weft_test_support::HeadersEcho::from_json(&output.body_text()).unwrap();
    assert_eq!(headers.version, "HTTP/1.1", "downgraded for the app");
    assert_eq!(headers.header("l5d-client-id"), Some(CLIENT_IDENTITY));
    headers.headers.into_iter().map(|(name, _)| name).collect()
}

/// The names [`names_the_app_saw`] sends arrived in the client's case.
fn assert_case_kept(names: &[String]) {
    for expected in ["X-Custom-HEADER", "Content-Type"] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn a_workload_declared_weft_gets_the_header_case_restored() {
    let mesh = Mesh::start_upgrading(Some("weft"));
    let names = names_the_app_saw(&mesh);
    assert_case_kept(&names);
    assert!(
        !names
            .iter()
            .any(|name| name.eq_ignore_ascii_case("l5d-orig-header-case")),
        "{names:?}"
    );
}

#[test]
fn a_workload_declared_linkerd2_proxy_is_not_sent_the_header_case() {
    // web-1's proxy is a weft proxy that would restore the case if it got
    // l5d-orig-header-case: the names arriving lowercase show the client
    // proxy did not send it to an endpoint without the weft hint.
    let mesh = Mesh::start_upgrading(Some("linkerd2-proxy"));
    let names = names_the_app_saw(&mesh);
    for lowercased in ["x-custom-header", "content-type"] {
        assert!(
            names.iter().any(|name| name == lowercased),
            "{lowercased} missing from {names:?}"
        );
    }
    assert!(
        !names
            .iter()
            .any(|name| name == "X-Custom-HEADER" || name == "Content-Type"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|name| name.eq_ignore_ascii_case("l5d-orig-header-case")),
        "{names:?}"
    );
    // Still mutual TLS between the proxies.
    assert_eq!(&mesh.relay.sent()[..2], &[0x16, 0x03]);
}

#[test]
fn a_spoofed_client_id_never_reaches_the_app() {
    let mesh = Mesh::start();
    let proxy = format!("http://{}", mesh.client.outbound_addr());
    let output = curl(&[
        "-sS",
        "-x",
        &proxy,
        "-H",
        "l5d-client-id: admin.kube-system.serviceaccount.identity.weft.cluster.local",
        URL,
    ]);
    let headers = weft_test_support::HeadersEcho::from_json(&output.body_text()).unwrap();
    assert_eq!(
        headers.header_values("l5d-client-id"),
        vec![CLIENT_IDENTITY]
    );
}

#[test]
fn a_server_proving_another_identity_is_refused() {
    // The server proxy holds the client workload's certificate instead of web-1's.
    let mesh = Mesh::start_with("client", CLIENT_IDENTITY);
    let outcome = load::get(mesh.client.outbound_addr(), URL);
    println!("server with the wrong identity: {}", outcome.summary());
    assert_eq!(outcome.status, Some(502), "{}", outcome.summary());
    assert_eq!(
        mesh.app.as_ref().unwrap().requests_seen(),
        0,
        "nothing reached the app"
    );
}

#[test]
fn a_token_for_another_service_account_gets_no_certificate() {
    let controller = ControllerProcess::start_with_identity(
        &MeshFile::new()
            .meshed_workload(
                NAMESPACE,
                "client",
                &[("app", "client")],
                "127.0.0.1:9".parse().unwrap(),
                free_port(),
            )
            .render(),
    );
    // The client's token, asking for web-1's identity.
    let proxy = identity_env(
        ProxyProcess::builder(),
        &controller,
        &ControlAddrs::direct(&controller),
        "client",
        SERVER_IDENTITY,
    )
    .spawn_unready();
    weft_test_support::eventually(Duration::from_secs(10), || {
        proxy.metric_or_zero("identity_cert_refresh_total", &[("result", "error")]) >= 1.0
    });
    let ready = proxy.admin_get("/ready").unwrap();
    assert_eq!(ready.status, 503, "not ready without a certificate");
    assert!(
        proxy
            .log()
            .contains("requested identity did not match provided token"),
        "{}",
        proxy.log()
    );
}

/// Renewals seen by a proxy.
fn renewals(proxy: &ProxyProcess) -> f64 {
    proxy.metric_or_zero("identity_cert_refresh_total", &[("result", "ok")])
}

#[test]
fn certificates_rotate_under_load_without_failures() {
    // Leaves live 5 s (+1 s skew): each proxy renews about every 4 s. Tokens
    // live 3 s: every renewal must present a token the controller rewrote
    // since the last one.
    let mesh = Mesh::start_full(
        "web-1",
        SERVER_IDENTITY,
        &[
            "--identity-issuance-lifetime",
            "5s",
            "--identity-clock-skew-allowance",
            "1s",
            "--identity-token-lifetime",
            "3s",
        ],
    );
    let load = load::BackgroundLoad::start(
        mesh.client.outbound_addr(),
        URL,
        4,
        Duration::from_millis(20),
    );
    weft_test_support::eventually(Duration::from_secs(40), || {
        renewals(&mesh.client) >= 5.0 && renewals(&mesh.server) >= 5.0
    });
    let report = load.stop();
    println!(
        "rotation: {} requests, {} failed; certificates issued: client {}, server {}",
        report.total(),
        report.failures(),
        renewals(&mesh.client),
        renewals(&mesh.server)
    );
    assert!(report.total() > 100);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
}

#[test]
fn a_new_issuer_takes_over_without_failures() {
    let mesh = Mesh::start_full(
        "web-1",
        SERVER_IDENTITY,
        &[
            "--identity-issuance-lifetime",
            "4s",
            "--identity-clock-skew-allowance",
            "1s",
        ],
    );
    let load = load::BackgroundLoad::start(
        mesh.client.outbound_addr(),
        URL,
        2,
        Duration::from_millis(20),
    );
    load.wait_for_more(50, Duration::from_secs(10));
    let before = (renewals(&mesh.client), renewals(&mesh.server));
    mesh.controller.rotate_issuer();
    // Both proxies renew at least twice after the issuer changed.
    weft_test_support::eventually(Duration::from_secs(30), || {
        renewals(&mesh.client) >= before.0 + 2.0 && renewals(&mesh.server) >= before.1 + 2.0
    });
    let report = load.stop();
    let reloads = mesh
        .controller
        .metrics_text()
        .lines()
        .filter(|line| line.contains("issuer") && line.contains("reload"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    println!(
        "issuer rotation: {} requests, {} failed; controller: {reloads:?}",
        report.total(),
        report.failures()
    );
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_crosses_the_mesh() {
    let echo = weft_test_support::grpc::GrpcEchoServer::start();
    let addr = echo.addr();
    let mesh = tokio::task::spawn_blocking(move || {
        Mesh::around(addr, None, "web-1", SERVER_IDENTITY, &[])
    })
    .await
    .unwrap();
    let send = |message: &str, code: tonic::Code| {
        weft_test_support::http_client::send(
            mesh.client.outbound_addr(),
            weft_test_support::grpc::raw_unary_request("web.shop.svc.cluster.local", message, code),
        )
    };
    let ok = send("hello", tonic::Code::Ok).await.expect("a response");
    assert_eq!(
        ok.header_or_trailer("grpc-status").as_deref(),
        Some("0"),
        "{ok:?}"
    );
    let failed = send("nope", tonic::Code::Unavailable)
        .await
        .expect("a response");
    assert_eq!(
        failed.header_or_trailer("grpc-status").as_deref(),
        Some("14"),
        "{failed:?}"
    );
    let wire = mesh.relay.sent();
    assert_eq!(&wire[..2], &[0x16, 0x03]);
    assert!(!wire.windows(5).any(|window| window == b"hello"));
    drop(echo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_crosses_the_mesh_in_a_connect_tunnel() {
    use weft_test_support::websocket::{WsEchoServer, echo_roundtrips, handshake};
    let server = WsEchoServer::start();
    let addr = server.addr();
    let mesh = tokio::task::spawn_blocking(move || {
        Mesh::around(addr, None, "web-1", SERVER_IDENTITY, &[])
    })
    .await
    .unwrap();
    let tunnel = weft_test_support::http_client::connect_tunnel(
        mesh.client.outbound_addr(),
        "web.shop.svc.cluster.local:80",
    )
    .await
    .expect("CONNECT tunnel to the service");
    let mut ws = handshake(tunnel, "web.shop.svc.cluster.local", "/chat")
        .await
        .expect("websocket upgrade inside the tunnel");
    echo_roundtrips(&mut ws, 10)
        .await
        .expect("echoes across the mesh");
    let wire = mesh.relay.sent();
    assert_eq!(
        &wire[..2],
        &[0x16, 0x03],
        "the tunnel crossed over mutual TLS"
    );
    assert!(!wire.windows(7).any(|window| window == b"Upgrade"));
    drop(server);
}

/// Whether `needle` appears anywhere in `haystack`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

const CONTROLLER_NAME: &str = "weft-controller.weft.serviceaccount.identity.weft.cluster.local";

#[test]
fn certificates_and_discovery_travel_over_tls_to_the_controller() {
    // The controller listens on loopback, where `auto` would stay plaintext.
    let mesh = Mesh::start_control(ControlPath {
        tls: Some("always"),
        record: true,
    });
    let report = load::run(mesh.client.outbound_addr(), URL, 20, 2);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    // Discovery answered: the client proxy reached web-1 by its identity.
    assert_metric_settles(
        &mesh.client,
        "request_total",
        &[
            ("direction", "outbound"),
            ("tls", "true"),
            ("server_id", SERVER_IDENTITY),
        ],
        20.0,
    );

    let control = mesh.control.as_ref().unwrap();
    for (service, wire) in [
        ("identity", control.identity.sent()),
        ("destination", control.destination.sent()),
    ] {
        assert!(!wire.is_empty(), "{service}: nothing sent");
        assert_eq!(
            &wire[..2],
            &[0x16, 0x03],
            "{service}: starts with a TLS handshake record"
        );
        for plaintext in [
            "PRI * HTTP/2.0",
            "/io.linkerd.proxy",
            "web.shop.svc.cluster.local",
            SERVER_IDENTITY,
            CLIENT_IDENTITY,
            "weft1.",
        ] {
            assert!(
                !contains(&wire, plaintext),
                "{service}: {plaintext:?} crossed the wire in plaintext"
            );
        }
        // Only the SNI names the controller in clear.
        assert!(contains(&wire, CONTROLLER_NAME), "{service}: SNI");
    }

    // The controller saw Certify over TLS without a client certificate and
    // Destination over mutual TLS, and nothing in plaintext.
    let connections = |server: &str, transport: &str| {
        mesh.controller
            .metric(
                "weft_controller_grpc_connections_total",
                &[("server", server), ("transport", transport)],
            )
            .unwrap_or(0.0)
    };
    assert!(connections("identity", "tls") >= 2.0);
    assert!(connections("destination", "mtls") >= 1.0);
    for server in ["identity", "destination"] {
        assert_eq!(connections(server, "plaintext"), 0.0, "{server}");
        assert_eq!(connections(server, "failed"), 0.0, "{server}");
    }
    println!(
        "control plane over TLS: identity {} bytes, destination {} bytes sent",
        control.identity.sent().len(),
        control.destination.sent().len()
    );
}

#[test]
fn a_controller_that_is_not_the_expected_identity_is_refused() {
    let controller = ControllerProcess::start_with_identity(
        &MeshFile::new()
            .meshed_workload(
                NAMESPACE,
                "client",
                &[("app", "client")],
                "127.0.0.1:9".parse().unwrap(),
                free_port(),
            )
            .render(),
    );
    let wrong = "weft-destination.weft.serviceaccount.identity.weft.cluster.local";
    let proxy = identity_env(
        ProxyProcess::builder().env("WEFT_PROXY_IDENTITY_SVC_NAME", wrong),
        &controller,
        &ControlAddrs {
            tls: Some("always"),
            ..ControlAddrs::direct(&controller)
        },
        "client",
        CLIENT_IDENTITY,
    )
    .spawn_unready();
    weft_test_support::eventually(Duration::from_secs(10), || {
        proxy.metric_or_zero("identity_cert_refresh_total", &[("result", "error")]) >= 2.0
    });
    let ready = proxy.admin_get("/ready").unwrap();
    assert_eq!(ready.status, 503, "not ready without a certificate");
    assert_eq!(
        proxy.metric_or_zero("identity_cert_refresh_total", &[("result", "ok")]),
        0.0
    );
    let log = proxy.log();
    assert!(
        log.contains(&format!("TLS handshake with {wrong}")) && log.contains("certificate"),
        "{log}"
    );
    println!(
        "{}",
        log.lines()
            .find(|line| line.contains("TLS handshake with"))
            .unwrap_or_default()
    );
}

#[test]
fn auto_keeps_a_loopback_controller_in_plaintext() {
    let mesh = Mesh::start_control(ControlPath {
        tls: Some("auto"),
        record: false,
    });
    let report = load::run(mesh.client.outbound_addr(), URL, 5, 1);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    let connections = |server: &str, transport: &str| {
        mesh.controller
            .metric(
                "weft_controller_grpc_connections_total",
                &[("server", server), ("transport", transport)],
            )
            .unwrap_or(0.0)
    };
    assert!(connections("identity", "plaintext") >= 2.0);
    assert!(connections("destination", "plaintext") >= 1.0);
    for server in ["identity", "destination"] {
        for transport in ["tls", "mtls"] {
            assert_eq!(connections(server, transport), 0.0, "{server} {transport}");
        }
    }
}

//! A server that speaks first (a MySQL-like banner) on a port not declared
//! in `WEFT_PROXY_OPAQUE_PORTS`: the proxy connects once the client has
//! been silent for `WEFT_PROXY_SERVER_FIRST_DELAY` and relays the banner at
//! once, instead of waiting the detect timeout (10 s) for the client.
//!
//! ```text
//! client (silent) ─► weft-proxy ──(after the delay)──► banner server: "220 hello\r\n", then echo
//!   inbound (explicit forward) │ outbound (CONNECT tunnel) │ outbound ══mTLS══► inbound (meshed)
//! ```
//!
//! Clients that speak first (HTTP/1, HTTP/2, TLS) on such a port are
//! detected as before and cost no early connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weft_e2e::curl;
use weft_test_support::{HttpTestServer, ProxyProcess, RunningProxy};

use crate::assert_metric_settles;
use crate::mtls::{Mesh, SERVER_IDENTITY};

const BANNER: &[u8] = b"220 hello\r\n";

/// Well within the default 10 s detect timeout: a functional bound (the
/// banner came without waiting for it), not a timing benchmark.
const BANNER_WITHIN: Duration = Duration::from_secs(5);

/// A server that writes [`BANNER`] as soon as it accepts, then echoes.
struct BannerServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl BannerServer {
    fn start() -> BannerServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    if stream.write_all(BANNER).is_err() {
                        return;
                    }
                    let mut buffer = [0u8; 4096];
                    while let Ok(read) = stream.read(&mut buffer) {
                        if read == 0 || stream.write_all(&buffer[..read]).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        BannerServer { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads exactly `expected.len()` bytes (within `within`) and returns them
/// with how long they took.
fn read_exact_within(
    stream: &mut TcpStream,
    length: usize,
    within: Duration,
) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut received = vec![0u8; length];
    stream
        .read_exact(&mut received)
        .unwrap_or_else(|error| panic!("nothing within {within:?}: {error}"));
    (received, started.elapsed())
}

/// The banner arrives without the client saying anything, then what the
/// client sends is echoed.
fn assert_banner_then_echo(stream: &mut TcpStream) -> Duration {
    let (banner, took) = read_exact_within(stream, BANNER.len(), BANNER_WITHIN);
    assert_eq!(banner, BANNER, "{:?}", String::from_utf8_lossy(&banner));
    stream.write_all(b"ping\n").expect("send");
    let (echo, _) = read_exact_within(stream, 5, BANNER_WITHIN);
    assert_eq!(echo, b"ping\n");
    took
}

/// Opens a `CONNECT` tunnel to `target` through the explicit outbound
/// listener, reading the answer's head byte by byte (so nothing after it).
fn connect_tunnel(proxy: SocketAddr, target: &str) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"
    )
    .expect("CONNECT");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("CONNECT answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

fn detected(proxy: &impl RunningProxy, direction: &str, result: &str) -> f64 {
    proxy.metric_or_zero(
        "tcp_detect_total",
        &[("direction", direction), ("result", result)],
    )
}

#[test]
fn a_banner_crosses_the_inbound_proxy_without_waiting() {
    let server = BannerServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(server.addr)
        .env("WEFT_PROXY_DETECT_TIMEOUT", "10s")
        .spawn();
    let mut client = TcpStream::connect(proxy.inbound_addr()).expect("connect");
    let took = assert_banner_then_echo(&mut client);
    println!("inbound banner after {took:?}");
    drop(client);
    assert_metric_settles(
        &proxy,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "server_first")],
        1.0,
    );
    let target = server.addr.to_string();
    assert_metric_settles(
        &proxy,
        "tcp_open_total",
        &[
            ("direction", "inbound"),
            ("peer", "dst"),
            ("target_addr", &target),
        ],
        1.0,
    );
    // Relayed as TCP: the bytes both ways are counted.
    assert_metric_settles(
        &proxy,
        "tcp_read_bytes_total",
        &[
            ("direction", "inbound"),
            ("peer", "dst"),
            ("target_addr", &target),
        ],
        (BANNER.len() + 5) as f64,
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn switched_off_the_client_is_waited_for() {
    let server = BannerServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(server.addr)
        .env("WEFT_PROXY_SERVER_FIRST_DELAY", "off")
        .spawn();
    let mut client = TcpStream::connect(proxy.inbound_addr()).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    let error = client
        .read(&mut byte)
        .expect_err("no banner while the proxy waits for the client");
    assert!(
        matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{error}"
    );
    assert_eq!(server.connections(), 0, "nothing connected early");
    // The client's bytes start the forward; the banner comes first.
    client.write_all(b"ping\n").expect("send");
    let (received, _) = read_exact_within(&mut client, BANNER.len() + 5, BANNER_WITHIN);
    assert_eq!(received, b"220 hello\r\nping\n");
    assert_eq!(detected(&proxy, "inbound", "server_first"), 0.0);
}

#[test]
fn a_banner_crosses_an_outbound_connect_tunnel_without_waiting() {
    let server = BannerServer::start();
    let proxy = ProxyProcess::builder().spawn();
    let mut tunnel = connect_tunnel(proxy.outbound_addr(), &server.addr.to_string());
    let took = assert_banner_then_echo(&mut tunnel);
    println!("outbound banner after {took:?}");
    drop(tunnel);
    assert_metric_settles(
        &proxy,
        "tcp_detect_total",
        &[("direction", "outbound"), ("result", "server_first")],
        1.0,
    );
    assert_eq!(server.connections(), 1);
}

#[test]
fn client_first_traffic_is_detected_as_before() {
    let app = HttpTestServer::start();
    let banner = BannerServer::start();
    let http = ProxyProcess::builder().inbound_forward(app.addr()).spawn();
    let base = format!("http://{}/", http.inbound_addr());
    for _ in 0..3 {
        let out = curl(&[&base]);
        assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    }
    let out = curl(&["--http2-prior-knowledge", &base]);
    assert_eq!((out.exit_code, out.http_code), (0, 200), "{}", out.stderr);
    assert_metric_settles(
        &http,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "http/1")],
        3.0,
    );
    assert_metric_settles(
        &http,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "h2")],
        1.0,
    );
    assert_eq!(detected(&http, "inbound", "server_first"), 0.0);

    // A TLS client speaks first even to a banner server: detected as TLS
    // (no identity here: relayed as TCP), the banner follows.
    let proxy = ProxyProcess::builder().inbound_forward(banner.addr).spawn();
    let mut client = TcpStream::connect(proxy.inbound_addr()).expect("connect");
    let client_hello = [0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00];
    client.write_all(&client_hello).expect("send");
    let (received, _) = read_exact_within(
        &mut client,
        BANNER.len() + client_hello.len(),
        BANNER_WITHIN,
    );
    assert_eq!(&received[..BANNER.len()], BANNER);
    assert_eq!(&received[BANNER.len()..], client_hello);
    assert_metric_settles(
        &proxy,
        "tcp_detect_total",
        &[("direction", "inbound"), ("result", "tls")],
        1.0,
    );
    assert_eq!(detected(&proxy, "inbound", "server_first"), 0.0);
    assert_eq!(banner.connections(), 1, "no early connection beside it");
}

#[test]
fn a_banner_crosses_the_mesh_over_mutual_tls() {
    let server = BannerServer::start();
    let mesh = Mesh::around(server.addr, None, "web-1", SERVER_IDENTITY, &[]);
    let mut tunnel = connect_tunnel(mesh.client.outbound_addr(), "web.shop.svc.cluster.local:80");
    let took = assert_banner_then_echo(&mut tunnel);
    println!("meshed banner after {took:?}");
    drop(tunnel);
    // The early connection went the meshed way: mutual TLS to the server
    // proxy, nothing in the clear.
    let wire = mesh.wire_sent();
    assert_eq!(&wire[..2], &[0x16, 0x03], "TLS on the wire");
    assert!(!wire.windows(4).any(|window| window == b"ping"));
    assert_metric_settles(
        &mesh.client,
        "tcp_detect_total",
        &[("direction", "outbound"), ("result", "server_first")],
        1.0,
    );
    assert_metric_settles(
        &mesh.client,
        "tcp_open_total",
        &[("direction", "outbound"), ("peer", "dst"), ("tls", "true")],
        1.0,
    );
    // The server proxy authorized the meshed client's opaque connection.
    assert_metric_settles(
        &mesh.server,
        "inbound_tcp_authz_allow_total",
        &[(
            "client_id",
            "client.shop.serviceaccount.identity.weft.cluster.local",
        )],
        1.0,
    );
    assert_eq!(server.connections(), 1);
}

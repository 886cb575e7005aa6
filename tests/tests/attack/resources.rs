//! Resource exhaustion against real proxies: slow clients, idle
//! connections, connection floods and descriptor exhaustion. Each attack
//! must end in a bounded outcome (the connection closed, the flood refused
//! and counted) while the proxy keeps serving.
//!
//! ```text
//! slowloris / partial h2 preface ─► closed after the header-read timeout
//! idle keep-alive (h1, h2)        ─► closed after the idle timeout (h2: GOAWAY)
//! N+1 connections                 ─► refused, tcp_connections_refused_total
//! flood at a low open-file limit  ─► outbound and admin still serve, logs bounded
//! flood of request lines          ─► RSS back near the baseline afterwards
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weft_test_support::http_client::raw_exchange;
use weft_test_support::{HttpTestServer, ProxyProcess};

/// No outcome within this is a hang.
const HANG: Duration = Duration::from_secs(20);

/// A proxy in front of `app` with short HTTP timeouts.
fn short_timeouts_proxy(app: &HttpTestServer) -> ProxyProcess {
    ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "1s")
        .env("WEFT_PROXY_HTTP_IDLE_TIMEOUT", "2s")
        .spawn()
}

/// Waits until the server closes `stream` (EOF or reset), reading and
/// discarding what it sends, while `feed` may write to it every 100 ms.
/// Returns what was read, or `None` if it was still open at the deadline.
fn wait_closed(
    stream: &mut TcpStream,
    deadline: Instant,
    mut feed: impl FnMut(&mut TcpStream),
) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(received),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                feed(stream)
            }
            Err(_) => return Some(received),
        }
    }
    None
}

/// Waits until `metric(name, labels)` is at least `minimum`.
fn assert_metric_reaches(proxy: &ProxyProcess, name: &str, labels: &[(&str, &str)], minimum: f64) {
    let deadline = Instant::now() + HANG;
    loop {
        let value = proxy.metric_or_zero(name, labels);
        if value >= minimum {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "metric {name}{labels:?}: expected >= {minimum}, got {value}\n--- metrics ---\n{}",
            proxy.metrics_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `condition` holds; panics naming `what` otherwise.
fn assert_eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + HANG;
    while !condition() {
        assert!(Instant::now() < deadline, "not observed: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The proxy still answers a request on the inbound listener.
fn assert_serves_inbound(proxy: &ProxyProcess) {
    let exchange = raw_exchange(
        proxy.inbound_addr(),
        b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
        HANG,
    );
    assert_eq!(exchange.status(), Some(200), "{}", exchange.text());
}

#[test]
fn slowloris_connections_are_closed_after_the_header_timeout() {
    let app = HttpTestServer::start();
    let proxy = short_timeouts_proxy(&app);
    // Each sends its request line at once (so detection is done) and then
    // one header byte every 100 ms, never finishing the head.
    let mut clients: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = TcpStream::connect(proxy.inbound_addr()).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: app\r\nX-Slow: ")
                .unwrap();
            stream
        })
        .collect();
    let deadline = Instant::now() + HANG;
    for (index, client) in clients.iter_mut().enumerate() {
        let closed = wait_closed(client, deadline, |stream| {
            let _ = stream.write_all(b"a");
        });
        assert!(
            closed.is_some(),
            "slowloris client {index} still open after {HANG:?}"
        );
    }
    assert_metric_reaches(
        &proxy,
        "inbound_tcp_errors_total",
        &[("error", "header read timeout")],
        20.0,
    );
    assert_serves_inbound(&proxy);
}

#[test]
fn slowloris_on_the_admin_port_is_closed() {
    let app = HttpTestServer::start();
    let proxy = short_timeouts_proxy(&app);
    // The admin server's header timeout is fixed (10 s): a local client
    // that never finishes its head is closed, and probes still answer.
    let mut slow = TcpStream::connect(proxy.admin_addr()).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        .unwrap();
    let deadline = Instant::now() + HANG;
    let closed = wait_closed(&mut slow, deadline, |stream| {
        let _ = stream.write_all(b"a");
    });
    assert!(
        closed.is_some(),
        "admin slowloris still open after {HANG:?}"
    );
    assert_eq!(proxy.admin_get("/ready").expect("/ready").status, 200);
}

#[test]
fn partial_http2_preface_is_closed() {
    let app = HttpTestServer::start();
    let proxy = short_timeouts_proxy(&app);
    // Enough for detection to say HTTP/2, not the whole preface.
    let mut partial = TcpStream::connect(proxy.inbound_addr()).unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n\r\nSM").unwrap();
    // The whole preface, but no SETTINGS frame.
    let mut no_settings = TcpStream::connect(proxy.inbound_addr()).unwrap();
    no_settings
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + HANG;
    assert!(
        wait_closed(&mut partial, deadline, |_| {}).is_some(),
        "a partial HTTP/2 preface held its connection open for {HANG:?}"
    );
    assert!(
        wait_closed(&mut no_settings, deadline, |_| {}).is_some(),
        "a preface without SETTINGS held its connection open for {HANG:?}"
    );
    assert_serves_inbound(&proxy);
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let app = HttpTestServer::start();
    let proxy = short_timeouts_proxy(&app);
    // HTTP/1.1: one request answered, then nothing.
    let mut http1 = TcpStream::connect(proxy.inbound_addr()).unwrap();
    http1
        .write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + HANG;
    let received = wait_closed(&mut http1, deadline, |_| {})
        .expect("an idle HTTP/1.1 keep-alive connection stayed open");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // HTTP/2: a complete handshake, then nothing; the proxy sends GOAWAY.
    let mut http2 = TcpStream::connect(proxy.inbound_addr()).unwrap();
    http2
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    http2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
    let deadline = Instant::now() + HANG;
    let received =
        wait_closed(&mut http2, deadline, |_| {}).expect("an idle HTTP/2 connection stayed open");
    assert!(
        crate::h2_floods::frame_types(&received).contains(&crate::h2_floods::GOAWAY),
        "no GOAWAY before the close: {received:?}"
    );
    assert_serves_inbound(&proxy);
}

#[test]
fn connection_limit_refuses_the_next_connection() {
    let app = HttpTestServer::start();
    const LIMIT: usize = 5;
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_INBOUND_MAX_CONNECTIONS", LIMIT.to_string())
        .env("WEFT_PROXY_DETECT_TIMEOUT", "60s")
        .spawn();
    // Silent clients: each holds its connection in detection.
    let held: Vec<TcpStream> = (0..LIMIT)
        .map(|_| TcpStream::connect(proxy.inbound_addr()).unwrap())
        .collect();
    assert_metric_reaches(
        &proxy,
        "tcp_accepted_connections",
        &[("direction", "inbound")],
        LIMIT as f64,
    );
    let mut extra = TcpStream::connect(proxy.inbound_addr()).unwrap();
    let deadline = Instant::now() + HANG;
    assert!(
        wait_closed(&mut extra, deadline, |_| {}).is_some(),
        "connection {} was not refused",
        LIMIT + 1
    );
    assert_metric_reaches(
        &proxy,
        "tcp_connections_refused_total",
        &[("direction", "inbound"), ("reason", "limit")],
        1.0,
    );
    // The admin server and the outbound listener answer meanwhile.
    assert_eq!(proxy.admin_get("/ready").unwrap().status, 200);
    assert_serves_outbound(&proxy, app.addr());
    // Once a held connection closes, a new one is served.
    drop(held);
    assert_eventually("a connection is served again", || {
        raw_exchange(
            proxy.inbound_addr(),
            b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
            HANG,
        )
        .status()
            == Some(200)
    });
}

/// The outbound listener serves an explicit proxy request to `app`.
fn assert_serves_outbound(proxy: &ProxyProcess, app: SocketAddr) {
    let request = format!("GET http://{app}/ HTTP/1.1\r\nHost: {app}\r\nConnection: close\r\n\r\n");
    let exchange = raw_exchange(proxy.outbound_addr(), request.as_bytes(), HANG);
    assert_eq!(exchange.status(), Some(200), "{}", exchange.text());
}

/// Lines of the proxy's log about refused or failed accepts.
fn accept_lines(proxy: &ProxyProcess) -> usize {
    proxy
        .log()
        .lines()
        .filter(|line| line.contains("accept failed") || line.contains("refused a connection"))
        .count()
}

#[test]
fn inbound_flood_leaves_descriptors_for_outbound_and_admin() {
    let app = HttpTestServer::start();
    // 256 descriptors: the limits are fitted to (256 - 128) / 2 = 64
    // connections, 32 a direction.
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_DETECT_TIMEOUT", "60s")
        .open_file_limit(256)
        .spawn();
    let started = Instant::now();
    // A proxy that stops accepting leaves its backlog full: connects then
    // wait for SYN retries, so the flood stops at the first that times out.
    let flood: Vec<TcpStream> = (0..400)
        .map_while(|_| {
            TcpStream::connect_timeout(&proxy.inbound_addr(), Duration::from_secs(5)).ok()
        })
        .collect();
    // Let the proxy work through its backlog for a while.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(proxy.admin_get("/ready").unwrap().status, 200);
    assert_serves_outbound(&proxy, app.addr());
    let refused =
        proxy.metric_or_zero("tcp_connections_refused_total", &[("direction", "inbound")]);
    assert!(refused >= 300.0, "refused {refused} of {}", flood.len());
    let seconds = started.elapsed().as_secs() + 1;
    let lines = accept_lines(&proxy);
    println!(
        "flood of {}: {refused} refused, {lines} log lines in {seconds}s",
        flood.len()
    );
    // The log budget: 10 traffic lines a second.
    assert!(
        lines as u64 <= 10 * seconds + 10,
        "{lines} accept log lines in {seconds}s:\n{}",
        proxy.log()
    );
    drop(flood);
    assert_serves_inbound(&proxy);
}

#[test]
fn memory_returns_after_a_flood() {
    let app = HttpTestServer::start();
    let proxy = ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "60s")
        .spawn();
    assert_serves_inbound(&proxy);
    let baseline = proxy.rss_kib();
    const CONNECTIONS: usize = 3000;
    // Half idle (in detection), half with a request line only.
    let mut flood = Vec::with_capacity(CONNECTIONS);
    for index in 0..CONNECTIONS {
        let mut stream = TcpStream::connect(proxy.inbound_addr()).unwrap();
        if index % 2 == 1 {
            stream.write_all(b"GET /flood HTTP/1.1\r\n").unwrap();
        }
        flood.push(stream);
    }
    assert_metric_reaches(
        &proxy,
        "tcp_accepted_connections",
        &[("direction", "inbound")],
        CONNECTIONS as f64,
    );
    std::thread::sleep(Duration::from_millis(500));
    let during = proxy.rss_kib();
    drop(flood);
    assert_eventually("the flood's connections closed", || {
        proxy.metric_or_zero("tcp_accepted_connections", &[("direction", "inbound")]) == 0.0
    });
    // Freed memory is returned to the system while the proxy goes on
    // serving (a request every half second, as a live proxy would).
    const NEAR: u64 = 16 * 1024;
    let deadline = Instant::now() + HANG;
    let mut after = proxy.rss_kib();
    while after > baseline + NEAR && Instant::now() < deadline {
        assert_serves_inbound(&proxy);
        std::thread::sleep(Duration::from_millis(500));
        after = proxy.rss_kib();
    }
    println!(
        "RSS KiB: baseline {baseline}, during {during} ({} B per connection), after {after}",
        (during.saturating_sub(baseline)) * 1024 / CONNECTIONS as u64
    );
    assert!(
        after <= baseline + NEAR,
        "RSS {after} KiB after the flood, baseline {baseline} KiB, during {during} KiB"
    );
    assert_serves_inbound(&proxy);
}

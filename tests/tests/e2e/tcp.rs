//! Opaque TCP forwarding keeps half-close: a client that shuts down its
//! sending side still reads the server's answer, and the server sees the
//! end of the request stream.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use weft_e2e::InProcessProxy;
use weft_test_support::RunningProxy;

use crate::assert_metric_settles;

/// A server that reads until the client's end of stream, then answers with
/// how many bytes it read and closes.
fn count_until_eof_server() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut received = Vec::new();
        stream
            .read_to_end(&mut received)
            .expect("the client's end of stream reaches the server");
        stream
            .write_all(format!("received {} bytes", received.len()).as_bytes())
            .expect("answer");
    });
    (addr, server)
}

#[test]
fn half_close_crosses_the_proxy() {
    let (server_addr, server) = count_until_eof_server();
    let proxy = InProcessProxy::builder()
        .inbound_forward(server_addr)
        .env("WEFT_PROXY_OPAQUE_PORTS", server_addr.port().to_string())
        .start();
    let mut client = TcpStream::connect(proxy.inbound_addr()).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    client.write_all(&[7u8; 100_000]).expect("send");
    client.shutdown(Shutdown::Write).expect("half-close");
    let mut answer = String::new();
    client
        .read_to_string(&mut answer)
        .expect("the answer arrives after the half-close");
    assert_eq!(answer, "received 100000 bytes");
    server.join().expect("server thread");
    let target = server_addr.to_string();
    assert_metric_settles(
        &proxy,
        "tcp_read_bytes_total",
        &[("peer", "src"), ("target_addr", &target)],
        100_000.0,
    );
    assert_metric_settles(
        &proxy,
        "tcp_write_bytes_total",
        &[("peer", "src"), ("target_addr", &target)],
        answer.len() as f64,
    );
}

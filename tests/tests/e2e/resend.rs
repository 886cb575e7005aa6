//! A pooled connection lost under a request: an app that answers the first
//! request of each connection (keep-alive) and closes the connection when
//! the next one arrives, without answering it. The proxy, forwarding to it
//! without discovery, sends a bodiless GET once more on a fresh connection;
//! a POST with a body is not sent again (its 502 is the app's).
//!
//! ```text
//! curl ─GET─► weft-proxy inbound ─pooled conn─► app: reads, closes  ✗
//!                                 └fresh conn─► app: 200            ✓
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use weft_e2e::curl;
use weft_test_support::ProxyProcess;

use crate::url;

/// Reads one request head (and a Content-Length body); `false` at EOF.
fn read_request(reader: &mut BufReader<TcpStream>) -> bool {
    let mut content_length = 0usize;
    let mut seen_any = false;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if line == "\r\n" && seen_any {
            break;
        }
        seen_any = true;
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body).is_ok()
}

/// The app: answers one request per connection, then closes the connection
/// when the next request arrives. Returns its address and how many
/// requests it dropped so.
fn one_request_per_connection_app() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let counted = dropped.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                if !read_request(&mut reader) {
                    return;
                }
                let _ = writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
                if read_request(&mut reader) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, dropped)
}

#[test]
fn a_get_on_a_pooled_connection_closed_under_it_is_sent_again() {
    let (app, dropped) = one_request_per_connection_app();
    let proxy = ProxyProcess::builder().inbound_forward(app).spawn();
    let mut failures = Vec::new();
    for attempt in 0..10 {
        let out = curl(&[&url(proxy.inbound_addr(), "/")]);
        if out.http_code != 200 {
            failures.push(format!("#{attempt}: {} {:?}", out.http_code, out.headers));
        }
    }
    println!(
        "10 GETs, {} dropped by the app on reused connections, {} failed",
        dropped.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(
        dropped.load(Ordering::Relaxed) >= 1,
        "the proxy reused a connection"
    );
    assert!(failures.is_empty(), "{failures:?}");
}

#[test]
fn a_post_with_a_body_is_not_sent_again() {
    let (app, dropped) = one_request_per_connection_app();
    let proxy = ProxyProcess::builder().inbound_forward(app).spawn();
    let first = curl(&[&url(proxy.inbound_addr(), "/")]);
    assert_eq!(first.http_code, 200, "{}", first.stderr);
    let post = curl(&["-d", "payload", &url(proxy.inbound_addr(), "/")]);
    assert_eq!(post.http_code, 502, "{:?}", post.headers);
    assert_eq!(dropped.load(Ordering::Relaxed), 1, "sent once");
}

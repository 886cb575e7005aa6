//! HTTP/2 floods, written frame by frame over raw TCP to the inbound
//! listener: rapid reset, CONTINUATION without end, SETTINGS and PING
//! floods, and an HPACK bomb. Each must end with the proxy closing the
//! connection (GOAWAY) or staying bounded: its RSS stays near where it was
//! and a normal request is still served afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use weft_test_support::http_client::raw_exchange;
use weft_test_support::{HttpTestServer, ProxyProcess};

/// No outcome within this is a hang.
const HANG: Duration = Duration::from_secs(20);
/// How much the proxy's RSS may grow through one flood.
const RSS_GROWTH_KIB: u64 = 64 * 1024;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame types.
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;
/// Flags.
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// RST_STREAM CANCEL.
const CANCEL: u32 = 0x8;

/// One frame: 9-byte header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    let mut bytes = vec![
        (length >> 16) as u8,
        (length >> 8) as u8,
        length as u8,
        kind,
        flags,
    ];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// The types of the whole frames in `bytes`, in order.
pub fn frame_types(bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let length = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        types.push(rest[3]);
        if rest.len() < 9 + length {
            break;
        }
        rest = &rest[9 + length..];
    }
    types
}

/// HPACK: a GET of `/` on `app` over http (static-table indexes, then a
/// literal authority).
fn get_request_block() -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x84, 0x01, 3];
    block.extend_from_slice(b"app");
    block
}

/// Connects and sends the preface and an empty SETTINGS.
fn handshake(proxy: &ProxyProcess) -> TcpStream {
    let mut stream = TcpStream::connect(proxy.inbound_addr()).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(PREFACE).unwrap();
    stream.write_all(&frame(SETTINGS, 0, 0, &[])).unwrap();
    stream
}

/// Reads until the proxy closes the connection, a GOAWAY arrives, or
/// `wait` passes; returns the frame types seen.
fn read_frames(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + wait;
    let mut received = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let closed = loop {
        if Instant::now() >= deadline {
            break false;
        }
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(read) => {
                received.extend_from_slice(&buffer[..read]);
                if frame_types(&received).contains(&GOAWAY) {
                    break true;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break true,
        }
    };
    (frame_types(&received), closed)
}

/// Writes `frames` until `count` are sent or writing fails (the proxy
/// closed, or stopped reading for 5 s); returns how many were sent.
fn flood(stream: &mut TcpStream, count: usize, mut frames: impl FnMut(usize) -> Vec<u8>) -> usize {
    for index in 0..count {
        if stream.write_all(&frames(index)).is_err() {
            return index;
        }
    }
    count
}

fn proxy_for(app: &HttpTestServer) -> ProxyProcess {
    ProxyProcess::builder().inbound_forward(app.addr()).spawn()
}

/// The proxy's RSS grew by less than [`RSS_GROWTH_KIB`] and it still
/// serves a normal request.
fn assert_bounded(proxy: &ProxyProcess, baseline_kib: u64, attack: &str) {
    let rss = proxy.rss_kib();
    println!("{attack}: RSS {baseline_kib} KiB before, {rss} KiB after");
    assert!(
        rss <= baseline_kib + RSS_GROWTH_KIB,
        "{attack}: RSS grew from {baseline_kib} KiB to {rss} KiB"
    );
    let exchange = raw_exchange(
        proxy.inbound_addr(),
        b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n",
        HANG,
    );
    assert_eq!(
        exchange.status(),
        Some(200),
        "{attack}: not serving afterwards: {}",
        exchange.text()
    );
}

#[test]
fn rapid_reset() {
    let app = HttpTestServer::start();
    let proxy = proxy_for(&app);
    let baseline = proxy.rss_kib();
    let mut stream = handshake(&proxy);
    let block = get_request_block();
    let sent = flood(&mut stream, 20_000, |index| {
        let id = 2 * index as u32 + 1;
        let mut bytes = frame(HEADERS, END_HEADERS | END_STREAM, id, &block);
        bytes.extend(frame(RST_STREAM, 0, id, &CANCEL.to_be_bytes()));
        bytes
    });
    let (types, closed) = read_frames(&mut stream, Duration::from_secs(2));
    println!(
        "rapid reset: {sent} streams sent and reset, GOAWAY {}, closed {closed}",
        types.contains(&GOAWAY)
    );
    assert_bounded(&proxy, baseline, "rapid reset");
}

#[test]
fn continuation_flood_is_closed() {
    let app = HttpTestServer::start();
    let proxy = proxy_for(&app);
    let baseline = proxy.rss_kib();
    let mut stream = handshake(&proxy);
    stream
        .write_all(&frame(HEADERS, END_STREAM, 1, &get_request_block()))
        .unwrap();
    // Literal headers without indexing, 1 KiB a frame, never END_HEADERS.
    let mut fragment = vec![0x00, 0x05];
    fragment.extend_from_slice(b"x-pad");
    fragment.extend_from_slice(&[0x7f, 0x81, 0x07]); // value length 1024 (7-bit prefix + 897)
    fragment.extend(std::iter::repeat_n(b'a', 1024));
    let sent = flood(&mut stream, 50_000, |_| {
        frame(CONTINUATION, 0, 1, &fragment)
    });
    let (types, closed) = read_frames(&mut stream, HANG);
    println!("CONTINUATION flood: {sent} frames sent, frames back {types:?}, closed {closed}");
    assert!(
        closed,
        "the proxy kept a connection open through {sent} CONTINUATION frames"
    );
    assert_bounded(&proxy, baseline, "CONTINUATION flood");
}

#[test]
fn settings_flood() {
    let app = HttpTestServer::start();
    let proxy = proxy_for(&app);
    let baseline = proxy.rss_kib();
    let mut stream = handshake(&proxy);
    // SETTINGS_MAX_CONCURRENT_STREAMS = 100, again and again, ACKs unread.
    let payload = [0x00, 0x03, 0x00, 0x00, 0x00, 0x64];
    let sent = flood(&mut stream, 200_000, |_| frame(SETTINGS, 0, 0, &payload));
    let (types, closed) = read_frames(&mut stream, Duration::from_secs(2));
    println!(
        "SETTINGS flood: {sent} frames sent, GOAWAY {}, closed {closed}",
        types.contains(&GOAWAY)
    );
    assert_bounded(&proxy, baseline, "SETTINGS flood");
}

#[test]
fn ping_flood() {
    let app = HttpTestServer::start();
    let proxy = proxy_for(&app);
    let baseline = proxy.rss_kib();
    let mut stream = handshake(&proxy);
    let sent = flood(&mut stream, 200_000, |index| {
        frame(PING, 0, 0, &(index as u64).to_be_bytes())
    });
    let (types, closed) = read_frames(&mut stream, Duration::from_secs(2));
    println!(
        "PING flood: {sent} frames sent, GOAWAY {}, closed {closed}",
        types.contains(&GOAWAY)
    );
    assert_bounded(&proxy, baseline, "PING flood");
}

#[test]
fn hpack_bomb_is_refused() {
    let app = HttpTestServer::start();
    let proxy = proxy_for(&app);
    let baseline = proxy.rss_kib();
    let mut stream = handshake(&proxy);
    // One 4000-byte header added to the dynamic table (literal with
    // incremental indexing, new name), then referenced by index (62)
    // 12,000 times: 48 MB of headers from a 16 KB block.
    let mut block = get_request_block();
    block.extend_from_slice(&[0x40, 0x05]);
    block.extend_from_slice(b"x-big");
    block.extend_from_slice(&[0x7f, 0xa1, 0x1e]); // value length 4000 (127 + 3873)
    block.extend(std::iter::repeat_n(b'b', 4000));
    let header = block.len();
    block.extend(std::iter::repeat_n(0xbe, 16_384 - header));
    stream
        .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    let (types, closed) = read_frames(&mut stream, HANG);
    println!("HPACK bomb: frames back {types:?}, closed {closed}");
    assert!(
        closed || types.contains(&RST_STREAM) || types.contains(&HEADERS),
        "no answer to an HPACK bomb: {types:?}"
    );
    assert_bounded(&proxy, baseline, "HPACK bomb");
}

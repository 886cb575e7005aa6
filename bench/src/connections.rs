//! Holding many client connections open through a setup, to measure proxy
//! memory under connection load: each connection completes one HTTP/1.1
//! keep-alive request and then stays open, idle, until dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::load::Target;

/// Opens `count` connections to `target`, sends one request on each (all
/// written before any is read, so the proxy holds them concurrently), reads
/// every response head, and returns the still-open connections.
pub fn open_idle(target: &Target, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    let connect_to = target.connect_addr()?;
    let request_uri = match target.via_proxy {
        Some(_) => format!("http://{}/", target.authority),
        None => "/".to_string(),
    };
    let request = format!(
        "GET {request_uri} HTTP/1.1\r\nHost: {}\r\nUser-Agent: weft-bench\r\n\r\n",
        target.authority
    );
    let mut connections = Vec::with_capacity(count);
    for i in 0..count {
        let stream = TcpStream::connect_timeout(&connect_to, Duration::from_secs(2))
            .with_context(|| format!("opening connection {i} to {connect_to}"))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        connections.push(stream);
    }
    for stream in &mut connections {
        stream.write_all(request.as_bytes())?;
    }
    for (i, stream) in connections.iter_mut().enumerate() {
        read_head(stream).with_context(|| format!("response on connection {i}"))?;
    }
    Ok(connections)
}

/// Reads until the end of a response head and checks for status 200.
fn read_head(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before a response");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    if !buffer.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&buffer);
        bail!(
            "unexpected response: {}",
            head.lines().next().unwrap_or_default()
        );
    }
    Ok(())
}

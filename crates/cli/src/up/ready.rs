//! Small HTTP/1.1 GETs against admin servers (`/ready`, `/metrics`),
//! waiting until one answers 200, and waiting until an app listens.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one GET may take.
const GET_TIMEOUT: Duration = Duration::from_secs(3);
/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(100);

/// `GET path` on `addr` over a new connection: the status code and the body.
pub async fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    tokio::time::timeout(GET_TIMEOUT, get_inner(addr, path))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))?
}

async fn get_inner(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: weft\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    parse_response(&response)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP response"))
}

/// The status and body of a `Connection: close` response (chunked bodies
/// are de-chunked).
pub fn parse_response(response: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(response);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("transfer-encoding:") && line.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Polls `GET /ready` until it answers 200; `false` after `timeout`.
pub async fn wait_ready(addr: SocketAddr, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if matches!(get(addr, "/ready").await, Ok((200, _))) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every address accepts a TCP connection (an app is
/// listening); `false` after `timeout`.
pub async fn wait_listening(addrs: &[SocketAddr], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    for addr in addrs {
        loop {
            let attempt = tokio::time::timeout(GET_TIMEOUT, TcpStream::connect(addr)).await;
            if matches!(attempt, Ok(Ok(_))) {
                break;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        for (raw, expected) in [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nready",
                Some((200, "ready")),
            ),
            (
                "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n4\r\n yet\r\n0\r\n\r\n",
                Some((503, "not yet")),
            ),
            ("garbage", None),
        ] {
            let parsed = parse_response(raw.as_bytes());
            assert_eq!(
                parsed,
                expected.map(|(status, body)| (status, body.to_string())),
                "{raw:?}"
            );
        }
    }
}

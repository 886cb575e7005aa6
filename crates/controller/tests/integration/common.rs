//! Helpers shared by the controller's wire tests.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bare HTTP/1.1 GET: (status, body).
pub async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(address, path, &address.to_string(), "").await
}

/// A bare HTTP/1.1 GET with this `Host` and `extra` header lines (each
/// ending in CRLF): (status, body).
pub async fn http_get_with(
    address: SocketAddr,
    path: &str,
    host: &str,
    extra: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The identity name the controller issues for a service account (written
/// out here, independently of `weft_core::names`, so a changed format fails).
pub fn identity_of(namespace: &str, service_account: &str) -> String {
    format!("{service_account}.{namespace}.serviceaccount.identity.weft.cluster.local")
}

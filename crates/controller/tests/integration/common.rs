//! Helpers shared by the controller's wire tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory named after the test.
    pub fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "weft-controller-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// A path inside the directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }

    /// Replaces a file atomically (write, then rename), as editors do.
    pub fn replace(&self, relative: &str, contents: &[u8]) {
        let target = self.path(relative);
        let staging = target.with_extension("staging");
        std::fs::write(&staging, contents).unwrap();
        std::fs::rename(&staging, &target).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls the controller's `/ready` on `admin` until it answers 200, within
/// `patience`; panics if the process exits first or time runs out.
pub async fn wait_until_ready(child: &mut Child, admin: SocketAddr, patience: Duration) {
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = http_get(admin, "/ready").await {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("weft-controller exited early: {status}");
        }
        assert!(
            started.elapsed() < patience,
            "controller never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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

//! `weft-proxy` as a real child process.
//!
//! [`ProxyBuilder`] picks free loopback ports for the inbound, outbound,
//! admin and tap listeners (unless given), starts the binary with a clean
//! `WEFT_PROXY_*` environment plus the extra variables, sends its output to a
//! log file in a temporary directory and waits until `GET /ready` answers 200.
//! [`ProxyProcess`] then exposes the addresses, the admin endpoints, parsed
//! metrics and process facts (pid, RSS); it kills the child on drop and prints
//! the log when the test is failing.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{bin_path, free_addr, prom};

/// How long [`ProxyBuilder::spawn`] waits for `/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Builds and starts a `weft-proxy` child process.
#[derive(Debug, Default, Clone)]
pub struct ProxyBuilder {
    env: Vec<(String, String)>,
    inbound: Option<SocketAddr>,
    outbound: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    tap: Option<SocketAddr>,
    open_file_limit: Option<u64>,
}

impl ProxyBuilder {
    /// A builder with no extra environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an environment variable (later values win).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Explicit inbound mode: every inbound connection goes to `app`.
    pub fn inbound_forward(self, app: SocketAddr) -> Self {
        self.env("WEFT_PROXY_INBOUND_FORWARD_ADDR", app.to_string())
    }

    /// Uses this inbound listen address instead of a free port.
    pub fn inbound_addr(mut self, addr: SocketAddr) -> Self {
        self.inbound = Some(addr);
        self
    }

    /// Uses this outbound listen address instead of a free port.
    pub fn outbound_addr(mut self, addr: SocketAddr) -> Self {
        self.outbound = Some(addr);
        self
    }

    /// Uses this admin listen address instead of a free port.
    pub fn admin_addr(mut self, addr: SocketAddr) -> Self {
        self.admin = Some(addr);
        self
    }

    /// Uses this tap listen address instead of a free loopback port.
    pub fn tap_addr(mut self, addr: SocketAddr) -> Self {
        self.tap = Some(addr);
        self
    }

    /// Starts the proxy under this open-file limit (soft and hard, set by
    /// `prlimit`, which then runs the proxy in its place).
    pub fn open_file_limit(mut self, limit: u64) -> Self {
        self.open_file_limit = Some(limit);
        self
    }

    /// Starts the proxy and waits until `/ready` answers 200.
    ///
    /// Panics (printing the proxy's log) if it exits or is not ready in time.
    pub fn spawn(self) -> ProxyProcess {
        // A port picked free may be taken (e.g. by a client's ephemeral port)
        // before the proxy binds it; then retry with fresh ports.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut proxy = self.start_child();
            match proxy.wait_ready() {
                Ok(()) => return proxy,
                Err(why) => {
                    let log = proxy.log();
                    let ports_picked = self.inbound.is_none()
                        || self.outbound.is_none()
                        || self.admin.is_none()
                        || self.tap.is_none();
                    if attempt < ATTEMPTS && ports_picked && log.contains("Address already in use")
                    {
                        continue;
                    }
                    // Keep the directory: the log is printed here.
                    proxy.keep_dir = true;
                    panic!(
                        "{why}\n--- weft-proxy log ({}) ---\n{log}",
                        proxy.log_path.display()
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts the proxy without waiting for `/ready` (a proxy that should
    /// not become ready); waits only until its admin port answers.
    pub fn spawn_unready(self) -> ProxyProcess {
        let proxy = self.start_child();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while proxy.admin_get("/live").is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the admin port never answered:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        proxy
    }

    fn start_child(&self) -> ProxyProcess {
        let inbound = self.inbound.unwrap_or_else(free_addr);
        let outbound = self.outbound.unwrap_or_else(free_addr);
        let admin = self.admin.unwrap_or_else(free_addr);
        let tap = self.tap.unwrap_or_else(free_addr);
        let dir = temp_dir();
        let log_path = dir.join("weft-proxy.log");
        let log = File::create(&log_path).expect("create proxy log");
        let mut command = base_command(&self.env, self.open_file_limit);
        command
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", inbound.to_string())
            .env("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", outbound.to_string())
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", admin.to_string())
            .env("WEFT_PROXY_TAP_LISTEN_ADDR", tap.to_string());
        // Extra variables last so a test can override the listen addresses.
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log));
        let child = command.spawn().expect("spawn weft-proxy");
        ProxyProcess {
            child,
            inbound,
            outbound,
            admin,
            tap,
            dir,
            log_path,
            exited: None,
            keep_dir: false,
        }
    }

    /// Runs the proxy with only the extra environment (no listen addresses are
    /// added unless given) and waits for it to exit; panics after `timeout`.
    pub fn run_to_exit(self, timeout: Duration) -> Output {
        let mut command = base_command(&self.env, self.open_file_limit);
        for (name, addr) in [
            ("WEFT_PROXY_INBOUND_LISTEN_ADDR", self.inbound),
            ("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", self.outbound),
            ("WEFT_PROXY_ADMIN_LISTEN_ADDR", self.admin),
            ("WEFT_PROXY_TAP_LISTEN_ADDR", self.tap),
        ] {
            if let Some(addr) = addr {
                command.env(name, addr.to_string());
            }
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn weft-proxy");
        let deadline = Instant::now() + timeout;
        while child.try_wait().expect("try_wait").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let output = child.wait_with_output().expect("wait_with_output");
                panic!(
                    "weft-proxy did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("wait_with_output")
    }
}

/// The binary with every inherited `WEFT_PROXY_*` variable removed, run by
/// `prlimit` when an open-file limit is asked for.
fn base_command(extra: &[(String, String)], open_file_limit: Option<u64>) -> Command {
    let mut command = match open_file_limit {
        Some(limit) => {
            let mut command = Command::new("prlimit");
            command
                .arg(format!("--nofile={limit}:{limit}"))
                .arg("--")
                .arg(bin_path("weft-proxy"));
            command
        }
        None => Command::new(bin_path("weft-proxy")),
    };
    for (name, _) in std::env::vars() {
        if name.starts_with("WEFT_PROXY_") && !extra.iter().any(|(n, _)| *n == name) {
            command.env_remove(name);
        }
    }
    command
}

/// A fresh directory under the system temp dir for one child process's files.
pub(crate) fn temp_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("weft-e2e-{}-{n}", std::process::id()));
    // A directory by this name is left over from an earlier test process
    // with the same (reused) pid: it is stale, start afresh.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// What a test asks of a running proxy, however it runs: as a child process
/// ([`ProxyProcess`]) or on a thread of the test process (weft-e2e's
/// `InProcessProxy`). Helpers written against this trait serve both.
pub trait RunningProxy {
    /// Inbound listener address.
    fn inbound_addr(&self) -> SocketAddr;

    /// Outbound listener address (explicit HTTP proxy / `CONNECT`).
    fn outbound_addr(&self) -> SocketAddr;

    /// Admin server address.
    fn admin_addr(&self) -> SocketAddr;

    /// Tap listener address.
    fn tap_addr(&self) -> SocketAddr;

    /// `GET path` on the admin server.
    fn admin_get(&self, path: &str) -> std::io::Result<AdminResponse> {
        admin_request(self.admin_addr(), "GET", path)
    }

    /// `POST path` (empty body) on the admin server.
    fn admin_post(&self, path: &str) -> std::io::Result<AdminResponse> {
        admin_request(self.admin_addr(), "POST", path)
    }

    /// The `/metrics` text; panics if it cannot be fetched.
    fn metrics_text(&self) -> String {
        let response = self.admin_get("/metrics").expect("GET /metrics");
        assert_eq!(response.status, 200, "GET /metrics: {}", response.body);
        response.body
    }

    /// Sum of every sample `name` whose labels include `labels`; `None` when
    /// no series matches.
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        prom::sum(&prom::parse(&self.metrics_text()), name, labels)
    }

    /// Like [`RunningProxy::metric`] but 0 when no series matches.
    fn metric_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.metric(name, labels).unwrap_or(0.0)
    }
}

impl RunningProxy for ProxyProcess {
    fn inbound_addr(&self) -> SocketAddr {
        self.inbound
    }

    fn outbound_addr(&self) -> SocketAddr {
        self.outbound
    }

    fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    fn tap_addr(&self) -> SocketAddr {
        self.tap
    }
}

/// A running `weft-proxy` child process; killed on drop.
#[derive(Debug)]
pub struct ProxyProcess {
    child: Child,
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
    tap: SocketAddr,
    dir: PathBuf,
    log_path: PathBuf,
    exited: Option<ExitStatus>,
    /// Keep the log directory on drop (start-up failed and was reported).
    keep_dir: bool,
}

/// A plain HTTP response from the admin server.
#[derive(Debug, Clone)]
pub struct AdminResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl ProxyProcess {
    /// A builder; same as [`ProxyBuilder::new`].
    pub fn builder() -> ProxyBuilder {
        ProxyBuilder::new()
    }

    /// Inbound listener address.
    pub fn inbound_addr(&self) -> SocketAddr {
        self.inbound
    }

    /// Outbound listener address (explicit HTTP proxy / `CONNECT`).
    pub fn outbound_addr(&self) -> SocketAddr {
        self.outbound
    }

    /// Admin server address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// Tap listener address (as configured; an extra
    /// `WEFT_PROXY_TAP_LISTEN_ADDR` given with [`ProxyBuilder::env`] wins
    /// over it).
    pub fn tap_addr(&self) -> SocketAddr {
        self.tap
    }

    /// Process id of the child.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Directory holding the log file.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the proxy wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET path` on the admin server.
    pub fn admin_get(&self, path: &str) -> std::io::Result<AdminResponse> {
        RunningProxy::admin_get(self, path)
    }

    /// `POST path` (empty body) on the admin server.
    pub fn admin_post(&self, path: &str) -> std::io::Result<AdminResponse> {
        RunningProxy::admin_post(self, path)
    }

    /// The `/metrics` text; panics if it cannot be fetched.
    pub fn metrics_text(&self) -> String {
        RunningProxy::metrics_text(self)
    }

    /// Sum of every sample `name` whose labels include `labels`; `None` when
    /// no series matches.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        RunningProxy::metric(self, name, labels)
    }

    /// Like [`ProxyProcess::metric`] but 0 when no series matches.
    pub fn metric_or_zero(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        RunningProxy::metric_or_zero(self, name, labels)
    }

    /// Resident set size in KiB (`VmRSS` in `/proc/PID/status`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/PID/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let pid = i32::try_from(self.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let pid = pid.expect("valid pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("kill -TERM");
    }

    /// Waits for the child to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status if the child has exited.
    pub fn try_exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().expect("try_wait");
        }
        self.exited
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit_status() {
                return Err(format!("weft-proxy exited before ready ({status})"));
            }
            if matches!(self.admin_get("/ready"), Ok(r) if r.status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("weft-proxy not ready within {READY_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        if self.try_exit_status().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if self.keep_dir {
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "--- weft-proxy log (pid {}, {}) ---\n{}--- end of log ---",
                self.child.id(),
                self.log_path.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One HTTP/1.1 request with `Connection: close` over a blocking socket.
pub fn admin_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<AdminResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad admin response"))
}

fn parse_response(raw: &[u8]) -> Option<AdminResponse> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(raw).ok()? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return None,
    };
    let status = response.code?;
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body_raw = &raw[head_len..];
    let body = if chunked {
        decode_chunked(body_raw)?
    } else {
        body_raw.to_vec()
    };
    Some(AdminResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn decode_chunked(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_plain_responses() {
        let plain = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (200, "ready"));
        let chunked = parse_response(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n ready\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((chunked.status, chunked.body.as_str()), (503, "not ready"));
    }
}

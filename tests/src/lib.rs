//! weft-e2e: helpers for the process-level end-to-end tests in `tests/e2e/`.
//!
//! The tests start real `weft-proxy` processes (see
//! [`weft_test_support::ProxyProcess`]) and drive them with real clients:
//! the system `curl`, `redis-server` + `redis-cli`, and the in-process gRPC
//! and WebSocket clients from `weft-test-support`. This crate holds what
//! only those tests need: running external tools and failing clearly when a
//! tool is missing, and [`InProcessProxy`], the proxy library's `app::run`
//! on a thread of the test process for tests that need no separate process.

pub mod in_process;

pub use in_process::{InProcessBuilder, InProcessProxy};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_test_support::{ProxyProcess, free_port};

/// How tools are installed where they are missing (CI installs them with apt).
const INSTALL_HINT: &str =
    "install with: apt-get update && apt-get install -y redis-server redis-tools curl";

/// Full path of the external tool `name`; panics with an install hint when
/// it is not on `PATH`, so a missing tool fails the test instead of skipping it.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("required tool `{name}` not found on PATH; {INSTALL_HINT}"))
}

/// A fresh scratch directory under the system temp dir.
pub fn scratch_dir(label: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("weft-e2e-{label}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// What one `curl` run produced.
#[derive(Debug, Clone)]
pub struct CurlOutput {
    /// curl's exit code (0 = transfer completed).
    pub exit_code: i32,
    /// `%{http_code}` (0 when no response arrived).
    pub http_code: u16,
    /// `%{size_download}`.
    pub size_download: u64,
    /// Headers of the last response (after any `CONNECT` response), names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Response body (empty when the arguments send it elsewhere with `-o`).
    pub body: Vec<u8>,
    /// curl's stderr (errors, with `-sS`).
    pub stderr: String,
}

impl CurlOutput {
    /// Body as text.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// First value of response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Builds a `curl` command: `-sS --max-time 60`, headers dumped to a file,
/// body to a file unless the arguments contain `-o`, status and size written
/// with `-w`, then `args`.
pub fn curl_command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(require_tool("curl"));
    command
        .args(["-sS", "--max-time", "60", "-D"])
        .arg(dir.join("headers"))
        .args(["-w", "%{http_code} %{size_download}"]);
    if !args.contains(&"-o") {
        command.arg("-o").arg(dir.join("body"));
    }
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs `curl` with [`curl_command`] and collects the outcome.
pub fn curl(args: &[&str]) -> CurlOutput {
    require_tool("curl");
    let dir = scratch_dir("curl");
    let output = curl_command(args, &dir).output().expect("run curl");
    let result = collect_curl(&dir, output);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Starts `curl` in the background; finish with [`finish_curl`].
pub fn spawn_curl(args: &[&str]) -> (Child, PathBuf) {
    require_tool("curl");
    let dir = scratch_dir("curl");
    let child = curl_command(args, &dir).spawn().expect("spawn curl");
    (child, dir)
}

/// Waits for a curl started by [`spawn_curl`] and collects the outcome.
pub fn finish_curl(child: Child, dir: PathBuf) -> CurlOutput {
    let output = child.wait_with_output().expect("wait for curl");
    let result = collect_curl(&dir, output);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn collect_curl(dir: &Path, output: std::process::Output) -> CurlOutput {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut written = stdout.split_whitespace();
    let http_code = written.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let size_download = written.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let header_text = std::fs::read_to_string(dir.join("headers")).unwrap_or_default();
    // With --proxytunnel the dump holds the CONNECT response first; keep the last block.
    let last_block = header_text
        .split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .last()
        .unwrap_or_default();
    let headers = last_block
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    CurlOutput {
        exit_code: output.status.code().unwrap_or(-1),
        http_code,
        size_download,
        headers,
        body: std::fs::read(dir.join("body")).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Waits for `child` while sampling the proxy's RSS every 20 ms; returns the
/// child's output and the largest RSS seen, in KiB.
pub fn wait_sampling_rss(child: &mut Child, proxy: &ProxyProcess) -> u64 {
    let mut max_kib = proxy.rss_kib();
    while child.try_wait().expect("try_wait").is_none() {
        max_kib = max_kib.max(proxy.rss_kib());
        std::thread::sleep(Duration::from_millis(20));
    }
    max_kib
}

/// A `redis-server` child process on a free loopback port; killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` (no persistence) and waits until it answers PING.
    pub fn start() -> Self {
        let binary = require_tool("redis-server");
        require_tool("redis-cli");
        let port = free_port();
        let child = Command::new(binary)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args([
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
                "--daemonize",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis_cli(server.addr(), "PING\n").trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The address redis listens on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `redis-cli -h IP -p PORT` with `commands` (one per line) on stdin
/// and returns its stdout (one raw reply per line).
pub fn redis_cli(addr: SocketAddr, commands: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(require_tool("redis-cli"))
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    let mut stdin = child.stdin.take().expect("stdin");
    let commands = commands.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(commands.as_bytes());
    });
    let output = child.wait_with_output().expect("wait for redis-cli");
    let _ = writer.join();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Awaits `future`, panicking with `what` if it takes longer than `timeout`.
pub async fn within<T>(what: &str, timeout: Duration, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no result within {timeout:?} (hang)"),
    }
}

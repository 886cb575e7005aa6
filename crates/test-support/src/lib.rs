//! Shared test fixtures for weft.
//!
//! Everything a process-level test needs to drive a real `weft-proxy`:
//!
//! ```text
//!  test ──► client (curl, gRPC, WebSocket, raw TCP) ──► ProxyProcess ──► test server
//!                                                         │
//!                                  admin: /ready /metrics ┘ (parsed by `prom`)
//! ```
//!
//! - [`proxy`]: spawn `weft-proxy` as a child process on free loopback ports,
//!   wait for readiness, read and parse its metrics, signal it, kill on drop.
//! - [`controller`]: spawn `weft-controller` on a mesh file in a temp dir, edit
//!   the file, kill and restart it on the same ports; [`controller::MeshFile`]
//!   builds mesh files.
//! - [`http_server`]: an HTTP/1.1 + h2c test app (optionally slowed down or
//!   failing a share of requests) and a raw "reset mid-response" server.
//! - [`load`]: keep-alive load through a proxy's outbound listener as an
//!   explicit HTTP proxy, with every outcome recorded.
//! - [`grpc`]: a hand-written gRPC echo service (unary + bidi streaming), server and client.
//! - [`websocket`]: WebSocket echo server and client helpers.
//! - [`http_client`]: one-shot HTTP/1.1 and HTTP/2 requests and `CONNECT` tunnels.
//! - [`prom`]: a small Prometheus text-format parser.
//! - [`tls_client`]: a blocking TLS client trusting only given anchors (as
//!   the API server dials a webhook with its `caBundle`).
//! - [`kubelet`]: a container's environment resolved as the kubelet does.
//! - [`golden`]: golden files compared, or rewritten under `WEFT_UPDATE_GOLDEN`.
//! - [`kube_api`]: a test Kubernetes API server (list, watch, CRUD,
//!   TokenReview) for the real `kube` client over HTTP.
//! - [`k8s_tools`]: the Kubernetes validators of `scripts/k8s-tools.sh`
//!   (`kubernetes-validate --strict` on manifests), skipped when absent outside CI.
//! - [`metrics_target`]: a fake proxy admin endpoint serving a `/metrics`
//!   text the test sets (the authorization counters, for the controller).
//!
//! All servers run on their own background runtime thread, so they keep
//! serving while a test blocks (for example in [`proxy::ProxyProcess::wait_exit`]).

pub mod background;
pub mod controller;
pub mod golden;
pub mod grpc;
pub mod http_client;
pub mod http_server;
pub mod inbound_policy_server;
pub mod k8s_tools;
pub mod kube_api;
pub mod kubelet;
pub mod load;
pub mod metrics_target;
pub mod outbound_policy_server;
pub mod prom;
pub mod proxy;
pub mod tls_client;
pub mod websocket;

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use controller::{ControllerProcess, MeshFile};
pub use http_server::{Behavior, HeadersEcho, HttpTestServer, ResetServer};
pub use proxy::{ProxyBuilder, ProxyProcess, RunningProxy};

/// Boxed error type used by the fixtures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Path of a workspace binary built into the same target directory as the
/// running test executable (`target/debug/deps/x` → `target/debug/NAME`).
///
/// Panics with "build it first: cargo build --bins" when it is missing.
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test executable has a parent")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "binary `{name}` not found at {}: build it first: cargo build --bins",
            path.display()
        );
    }
    path
}

/// Ports handed out by [`free_port`] in this process, never handed out twice.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A currently free TCP port on 127.0.0.1, not returned before by this process.
///
/// The port is free when checked; another process may still take it before
/// the caller binds it, which is rare enough for tests (and
/// [`ProxyBuilder::spawn`] retries with fresh ports when that happens). It
/// is drawn below the kernel's ephemeral range, so no client connection of
/// any process (the attack tests open thousands) takes it in between.
pub fn free_port() -> u16 {
    let (low, high) = (10_000u32, ephemeral_low().max(10_001));
    let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = guard.get_or_insert_with(HashSet::new);
    loop {
        let port = (low + random_u32() % (high - low)) as u16;
        if !seen.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            seen.insert(port);
            return port;
        }
    }
}

/// The first port of the kernel's ephemeral range (32768 when unknown).
fn ephemeral_low() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// A random number from std's per-process hasher keys and a counter.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.finish() as u32
}

/// Binds `127.0.0.1:0` until the port is one this process never handed out
/// (by [`free_port`] or to a test server), and records it.
pub(crate) fn bind_unique() -> TcpListener {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let seen = guard.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        if seen.insert(port) {
            return listener;
        }
    }
}

/// `127.0.0.1:<free port>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The ports a meshed workload's proxy listens on (loopback), as a mesh file
/// names them (`proxy: {inboundPort, adminPort, tapPort}`).
#[derive(Debug, Clone, Copy)]
pub struct ProxyPorts {
    /// Inbound listener.
    pub inbound: SocketAddr,
    /// Admin server (scraped by the controller).
    pub admin: SocketAddr,
    /// Tap server.
    pub tap: SocketAddr,
}

impl ProxyPorts {
    /// Three free loopback ports.
    pub fn free() -> Self {
        Self {
            inbound: free_addr(),
            admin: free_addr(),
            tap: free_addr(),
        }
    }

    /// A proxy builder listening on these ports.
    pub fn builder(self) -> ProxyBuilder {
        ProxyProcess::builder()
            .inbound_addr(self.inbound)
            .admin_addr(self.admin)
            .tap_addr(self.tap)
    }

    /// The Workload spec's `proxy:` value for these ports.
    pub fn mesh_yaml(&self) -> String {
        format!(
            "{{inboundPort: {}, adminPort: {}, tapPort: {}}}",
            self.inbound.port(),
            self.admin.port(),
            self.tap.port()
        )
    }
}

/// An address of this host other than loopback, if it has one (a UDP
/// `connect` only picks the route; nothing is sent).
pub fn non_loopback_ip() -> Option<std::net::IpAddr> {
    ["192.0.2.1:9", "10.255.255.1:9"].iter().find_map(|target| {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        socket.connect(target).ok()?;
        let ip = socket.local_addr().ok()?.ip();
        (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
    })
}

/// Polls `condition` every 50 ms until it returns true; panics after `timeout`.
pub fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("condition not met within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

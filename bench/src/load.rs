//! What one load-generator run is asked to do and what it reports back,
//! shared by the two generators (`oha` for HTTP/1.1 and HTTP/2, our own
//! gRPC client) so the rest of the harness never knows which one ran.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The protocol a run speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// HTTP/1.1 keep-alive GETs with a tiny response body.
    Http1,
    /// HTTP/2 with prior knowledge (h2c), GETs with a tiny response body.
    Http2,
    /// gRPC unary calls with a tiny message.
    Grpc,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 3] = [Workload::Http1, Workload::Http2, Workload::Grpc];

    /// Short name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Http1 => "http1",
            Workload::Http2 => "http2",
            Workload::Grpc => "grpc",
        }
    }

    /// Parses [`Workload::name`].
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How load is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadPoint {
    /// Closed loop: this many requests in flight, each sent as soon as the
    /// previous one on its slot completes (measures max throughput).
    Closed {
        /// Requests in flight.
        concurrency: u32,
    },
    /// Open loop: requests scheduled at a constant rate; latency counts from
    /// the scheduled send time (coordinated-omission correction).
    Open {
        /// Requests per second.
        rate: u32,
    },
}

impl fmt::Display for LoadPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadPoint::Closed { concurrency } => write!(f, "c={concurrency}"),
            LoadPoint::Open { rate } => write!(f, "{rate}rps"),
        }
    }
}

/// Where the load generator sends its requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The authority the requests name (`http://{authority}/`): `ip:port`,
    /// or (through a proxy only) `name:port` for the proxy to resolve.
    pub authority: String,
    /// An explicit HTTP proxy to connect to instead of `authority`: HTTP/1.1
    /// requests are sent in absolute form, HTTP/2 ones carry `:authority`.
    pub via_proxy: Option<SocketAddr>,
}

impl Target {
    /// Requests sent straight to `addr`.
    pub fn direct(addr: SocketAddr) -> Target {
        Target {
            authority: addr.to_string(),
            via_proxy: None,
        }
    }

    /// Requests naming `authority`, sent through the explicit proxy `proxy`.
    pub fn via(proxy: SocketAddr, authority: impl fmt::Display) -> Target {
        Target {
            authority: authority.to_string(),
            via_proxy: Some(proxy),
        }
    }

    /// The address the client connects to: the proxy, else the authority.
    pub fn connect_addr(&self) -> anyhow::Result<SocketAddr> {
        match self.via_proxy {
            Some(proxy) => Ok(proxy),
            None => self.authority.parse().map_err(|_| {
                anyhow::anyhow!("{:?} is not ip:port and no proxy is set", self.authority)
            }),
        }
    }
}

/// One run for a load generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSpec {
    /// Protocol.
    pub workload: Workload,
    /// Closed or open loop.
    pub point: LoadPoint,
    /// Where requests go.
    pub target: Target,
    /// Fixed run length.
    pub duration: Duration,
    /// In-flight capacity of an open-loop run (it only queues beyond this).
    pub open_loop_slots: u32,
    /// HTTP/1.1: a new client connection for every request (no keep-alive).
    pub new_connections: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
}

/// What a load generator measured in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadResult {
    /// Requests answered successfully (HTTP 200 / gRPC OK).
    pub ok: u64,
    /// Requests that failed (transport error or non-success status),
    /// excluding those cut off by the end of the run.
    pub errors: u64,
    /// Wall time of the run in seconds.
    pub seconds: f64,
    /// Latency of successful requests.
    pub latency: Latency,
    /// A sample of the error messages, if any.
    pub error_sample: Option<String>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        }
    }
}

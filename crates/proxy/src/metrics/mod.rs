//! The proxy's metrics, registered in one explicit registry.
//!
//! Names, labels and latency buckets follow Linkerd's proxy (`request_total`,
//! `response_total`, `response_latency_ms`, `tcp_*`), so existing dashboards
//! and PromQL work. Label sets that go idle expire (see [`family`]).

pub(crate) mod authz;
pub(crate) mod control;
pub(crate) mod family;
pub(crate) mod identity;
pub(crate) mod labels;
pub(crate) mod limits;
pub(crate) mod process;
pub(crate) mod route;

use family::{Expire, IdleFamily, Tracked};
use labels::{
    Classification, DetectLabels, Direction, ErrorLabels, HttpLabels, LatencyLabels,
    ResponseLabels, TcpCloseLabels, TcpLabels,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Linkerd's `response_latency_ms` buckets.
pub(crate) const LATENCY_BUCKETS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0,
    1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_MS)
}

/// Every metric the data path records.
#[derive(Clone)]
pub(crate) struct ProxyMetrics {
    /// HTTP request and response metrics.
    pub http: HttpMetrics,
    /// TCP connection metrics.
    pub tcp: TcpMetrics,
    /// Service-profile route metrics.
    pub route: route::RouteMetrics,
    /// Protocol detection outcomes.
    pub detect: Family<DetectLabels, Counter>,
    /// `inbound_http_errors_total` and `outbound_http_errors_total`.
    pub http_errors: DirectionalErrors,
    /// `inbound_tcp_errors_total` and `outbound_tcp_errors_total`.
    pub tcp_errors: DirectionalErrors,
    /// Connections refused at accept, and the connection limits.
    pub limits: limits::LimitMetrics,
    /// Inbound authorization decisions.
    pub authz: authz::AuthzMetrics,
    expiring: Arc<Vec<Box<dyn Expire>>>,
}

impl ProxyMetrics {
    /// Creates every family and registers it in `registry`.
    pub(crate) fn new(registry: &mut Registry) -> ProxyMetrics {
        let http = HttpMetrics {
            requests: IdleFamily::new(Counter::default),
            responses: IdleFamily::new(Counter::default),
            latency: IdleFamily::new(latency_histogram),
        };
        registry.register("request", "HTTP requests received.", http.requests.clone());
        registry.register(
            "response",
            "HTTP responses completed, by status and classification.",
            http.responses.clone(),
        );
        registry.register(
            "response_latency_ms",
            "Time from a request's headers to the end of its response stream, in milliseconds.",
            http.latency.clone(),
        );

        let tcp = TcpMetrics {
            open: IdleFamily::new(Counter::default),
            close: IdleFamily::new(Counter::default),
            open_connections: IdleFamily::new(Gauge::default),
            read_bytes: IdleFamily::new(Counter::default),
            write_bytes: IdleFamily::new(Counter::default),
        };
        registry.register("tcp_open", "TCP connections opened.", tcp.open.clone());
        registry.register("tcp_close", "TCP connections closed.", tcp.close.clone());
        registry.register(
            "tcp_open_connections",
            "TCP connections currently open.",
            tcp.open_connections.clone(),
        );
        registry.register(
            "tcp_read_bytes",
            "Bytes read from the peer.",
            tcp.read_bytes.clone(),
        );
        registry.register(
            "tcp_write_bytes",
            "Bytes written to the peer.",
            tcp.write_bytes.clone(),
        );

        let detect = Family::default();
        registry.register(
            "tcp_detect",
            "Protocol detection outcomes of accepted connections.",
            detect.clone(),
        );
        let http_errors = DirectionalErrors::default();
        registry.register(
            "inbound_http_errors",
            "Inbound HTTP requests answered with a proxy error, by reason.",
            http_errors.inbound.clone(),
        );
        registry.register(
            "outbound_http_errors",
            "Outbound HTTP requests answered with a proxy error, by reason.",
            http_errors.outbound.clone(),
        );
        let tcp_errors = DirectionalErrors::default();
        registry.register(
            "inbound_tcp_errors",
            "Inbound connections closed by the proxy because of an error, by reason.",
            tcp_errors.inbound.clone(),
        );
        registry.register(
            "outbound_tcp_errors",
            "Outbound connections closed by the proxy because of an error, by reason.",
            tcp_errors.outbound.clone(),
        );

        let limits = limits::LimitMetrics::new(registry);
        let (route, route_expiring) = route::RouteMetrics::new(registry);
        let (authz, authz_expiring) = authz::AuthzMetrics::new(registry);
        let mut expiring: Vec<Box<dyn Expire>> = vec![
            Box::new(http.requests.clone()),
            Box::new(http.responses.clone()),
            Box::new(http.latency.clone()),
            Box::new(tcp.open.clone()),
            Box::new(tcp.close.clone()),
            Box::new(tcp.open_connections.clone()),
            Box::new(tcp.read_bytes.clone()),
            Box::new(tcp.write_bytes.clone()),
        ];
        expiring.extend(route_expiring);
        expiring.extend(authz_expiring);
        ProxyMetrics {
            http,
            tcp,
            route,
            detect,
            http_errors,
            tcp_errors,
            limits,
            authz,
            expiring: Arc::new(expiring),
        }
    }

    /// Counts one protocol detection outcome.
    pub(crate) fn detected(&self, direction: Direction, result: &'static str) {
        self.detect
            .get_or_create(&DetectLabels { direction, result })
            .inc();
    }

    /// Drops label sets idle for longer than `retain`; returns how many.
    pub(crate) fn expire_idle(&self, retain: Duration) -> usize {
        self.expiring
            .iter()
            .map(|family| family.expire_idle(retain))
            .sum()
    }
}

/// A counter family per direction, labelled by error reason.
#[derive(Clone, Default)]
pub(crate) struct DirectionalErrors {
    inbound: Family<ErrorLabels, Counter>,
    outbound: Family<ErrorLabels, Counter>,
}

impl DirectionalErrors {
    /// Counts one error.
    pub(crate) fn record(&self, direction: Direction, error: &'static str) {
        let family = match direction {
            Direction::Inbound => &self.inbound,
            Direction::Outbound => &self.outbound,
        };
        family.get_or_create(&ErrorLabels { error }).inc();
    }
}

/// HTTP families.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: IdleFamily<HttpLabels, Counter>,
    responses: IdleFamily<ResponseLabels, Counter>,
    latency: IdleFamily<LatencyLabels, Histogram>,
}

/// How a response ended, for `response_total`.
#[derive(Debug)]
pub(crate) struct ResponseOutcome {
    /// The status sent to the client.
    pub status_code: u16,
    /// The gRPC status, from trailers or a trailers-only response.
    pub grpc_status: Option<u32>,
    /// Why the stream failed, if it did.
    pub error: Option<&'static str>,
    /// Request headers to end of response stream.
    pub latency: Duration,
}

impl HttpMetrics {
    /// Counts a request as it arrives.
    pub(crate) fn request(&self, labels: &HttpLabels, cache: &HttpHandleCache) {
        cache.requests.get(&self.requests, labels).inc();
    }

    /// Records a completed response.
    pub(crate) fn response(
        &self,
        labels: &HttpLabels,
        outcome: &ResponseOutcome,
        cache: &HttpHandleCache,
    ) {
        let classification =
            Classification::of(outcome.status_code, outcome.grpc_status, outcome.error);
        let response_labels = ResponseLabels {
            http: labels.clone(),
            status_code: outcome.status_code,
            classification,
            grpc_status: outcome.grpc_status,
            error: outcome.error.unwrap_or(""),
        };
        cache.responses.get(&self.responses, &response_labels).inc();
        let latency_labels = LatencyLabels {
            http: response_labels.http,
            status_code: outcome.status_code,
        };
        cache
            .latency
            .get(&self.latency, &latency_labels)
            .observe(outcome.latency.as_secs_f64() * 1000.0);
    }
}

/// The metrics last used by one client connection. Requests on a connection
/// nearly always carry the same labels, so this spares the family lookup
/// (hashing every label) on the hot path; holding the handles also keeps
/// the connection's label sets from expiring while it is open.
#[derive(Default)]
pub(crate) struct HttpHandleCache {
    requests: HandleCache<HttpLabels, Counter>,
    responses: HandleCache<ResponseLabels, Counter>,
    latency: HandleCache<LatencyLabels, Histogram>,
}

/// The handle of the label set a connection last used in one family.
pub(crate) struct HandleCache<L, M> {
    last: std::sync::Mutex<Option<(L, Arc<Tracked<M>>)>>,
}

impl<L, M> Default for HandleCache<L, M> {
    fn default() -> Self {
        HandleCache {
            last: std::sync::Mutex::new(None),
        }
    }
}

impl<L: Clone + std::hash::Hash + Eq, M> HandleCache<L, M> {
    pub(crate) fn get(&self, family: &IdleFamily<L, M>, labels: &L) -> Arc<Tracked<M>> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((last_labels, handle)) = last.as_ref()
            && last_labels == labels
        {
            return handle.clone();
        }
        let handle = family.get(labels);
        *last = Some((labels.clone(), handle.clone()));
        handle
    }
}

/// TCP families.
#[derive(Clone)]
pub(crate) struct TcpMetrics {
    open: IdleFamily<TcpLabels, Counter>,
    close: IdleFamily<TcpCloseLabels, Counter>,
    open_connections: IdleFamily<TcpLabels, Gauge>,
    read_bytes: IdleFamily<TcpLabels, Counter>,
    write_bytes: IdleFamily<TcpLabels, Counter>,
}

impl TcpMetrics {
    /// Records a connection opening; the returned guard records its bytes
    /// and its close.
    pub(crate) fn open(&self, labels: TcpLabels) -> TcpConnectionMetrics {
        let metrics = self.open_unsettled(labels);
        metrics.settle(None);
        metrics
    }

    /// A connection whose TLS status is not known yet (an accepted inbound
    /// connection that may turn out to be mutual TLS): nothing is recorded
    /// until [`TcpConnectionMetrics::settle`] (or the close); bytes seen
    /// before are kept and recorded then.
    pub(crate) fn open_unsettled(&self, labels: TcpLabels) -> TcpConnectionMetrics {
        TcpConnectionMetrics {
            handles: OnceLock::new(),
            pending_read: AtomicU64::new(0),
            pending_written: AtomicU64::new(0),
            family: self.clone(),
            errno: AtomicU64::new(NO_ERRNO),
            labels: Mutex::new(labels),
        }
    }
}

const NO_ERRNO: u64 = u64::MAX;
const ERRNO_NAMES: [&str; 9] = [
    "ECONNRESET",
    "ECONNREFUSED",
    "ECONNABORTED",
    "EPIPE",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EADDRNOTAVAIL",
    "EIO",
];

/// The metrics of one open connection; records the close when dropped.
pub(crate) struct TcpConnectionMetrics {
    /// Set once the connection's labels are final.
    handles: OnceLock<ConnectionHandles>,
    pending_read: AtomicU64,
    pending_written: AtomicU64,
    family: TcpMetrics,
    errno: AtomicU64,
    labels: Mutex<TcpLabels>,
}

struct ConnectionHandles {
    read_bytes: Arc<Tracked<Counter>>,
    write_bytes: Arc<Tracked<Counter>>,
    open_connections: Arc<Tracked<Gauge>>,
}

impl TcpConnectionMetrics {
    /// Fixes the connection's labels (with the TLS status `tls`, if given)
    /// and records its opening and the bytes seen so far. Later calls do
    /// nothing.
    pub(crate) fn settle(&self, tls: Option<labels::TlsStatus>) {
        if self.handles.get().is_some() {
            return;
        }
        let mut labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tls) = tls {
            labels.target = labels.target.with_tls(tls);
        }
        let family = &self.family;
        family.open.get(&labels).inc();
        let handles = ConnectionHandles {
            read_bytes: family.read_bytes.get(&labels),
            write_bytes: family.write_bytes.get(&labels),
            open_connections: family.open_connections.get(&labels),
        };
        handles.open_connections.inc();
        handles
            .read_bytes
            .inc_by(self.pending_read.swap(0, Ordering::Relaxed));
        handles
            .write_bytes
            .inc_by(self.pending_written.swap(0, Ordering::Relaxed));
        let _ = self.handles.set(handles);
    }

    /// Counts bytes read from the peer.
    pub(crate) fn read(&self, bytes: usize) {
        match self.handles.get() {
            Some(handles) => {
                handles.read_bytes.inc_by(bytes as u64);
            }
            None => {
                self.pending_read.fetch_add(bytes as u64, Ordering::Relaxed);
            }
        }
    }

    /// Counts bytes written to the peer.
    pub(crate) fn wrote(&self, bytes: usize) {
        match self.handles.get() {
            Some(handles) => {
                handles.write_bytes.inc_by(bytes as u64);
            }
            None => {
                self.pending_written
                    .fetch_add(bytes as u64, Ordering::Relaxed);
            }
        }
    }

    /// Remembers the first I/O error, reported as `errno` at close.
    pub(crate) fn failed(&self, error: &std::io::Error) {
        let name = labels::errno_name(error);
        let index = ERRNO_NAMES
            .iter()
            .position(|known| *known == name)
            .unwrap_or(ERRNO_NAMES.len() - 1) as u64;
        let _ = self
            .errno
            .compare_exchange(NO_ERRNO, index, Ordering::Relaxed, Ordering::Relaxed);
    }
}

impl Drop for TcpConnectionMetrics {
    fn drop(&mut self) {
        self.settle(None);
        if let Some(handles) = self.handles.get() {
            handles.open_connections.dec();
        }
        let errno = match self.errno.load(Ordering::Relaxed) {
            NO_ERRNO => "",
            index => ERRNO_NAMES[index as usize],
        };
        let labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        self.family
            .close
            .get(&TcpCloseLabels {
                tcp: labels.clone(),
                errno,
            })
            .inc();
    }
}

/// Encodes the registry as Prometheus text, with histogram bounds written as
/// Linkerd writes them (`le="1"`, not `le="1.0"`).
///
/// prometheus-client writes a bound through its `f64` label-value encoding
/// (`1.0`) and offers no hook for it (the text encoder's `encode_histogram`
/// formats `le` itself; a custom metric cannot write the `_bucket` suffix), so
/// the text passes through [`WholeNumberBounds`] on its way into the buffer:
/// one pass, no second buffer.
pub(crate) fn encode(registry: &Registry) -> String {
    let mut text = String::with_capacity(16 * 1024);
    let mut writer = WholeNumberBounds::new(&mut text);
    prometheus_client::encoding::text::encode(&mut writer, registry)
        .expect("writing to a String cannot fail");
    writer.finish().expect("writing to a String cannot fail");
    text
}

/// A [`fmt::Write`](std::fmt::Write) that passes text through, except that
/// the value of an `le` label (`{le="` or `,le="`) made of digits and `.0`
/// loses the `.0`. Any other value (`0.5`, `+Inf`) is written as it came.
/// Works however the text is cut into `write_str` calls: at most a few digits
/// of a bound are held back, in a fixed array.
struct WholeNumberBounds<'a, W: std::fmt::Write> {
    out: &'a mut W,
    /// Bytes of `le="` matched so far after a `{` or `,`.
    matched: usize,
    /// Whether the last byte was `{` or `,` (a label name may start next).
    after_separator: bool,
    /// Inside a bound: the digits and dots read so far.
    bound: Option<BoundDigits>,
}

/// The digits of a bound held back until its closing quote.
struct BoundDigits {
    bytes: [u8; 24],
    length: usize,
}

impl BoundDigits {
    fn as_str(&self) -> &str {
        // Only ASCII digits and dots are ever stored.
        std::str::from_utf8(&self.bytes[..self.length]).unwrap_or_default()
    }
}

impl<'a, W: std::fmt::Write> WholeNumberBounds<'a, W> {
    const LABEL: &'static [u8] = b"le=\"";

    fn new(out: &'a mut W) -> Self {
        Self {
            out,
            matched: 0,
            after_separator: false,
            bound: None,
        }
    }

    /// Writes out a bound still held back (text that ended inside one).
    fn finish(mut self) -> std::fmt::Result {
        match self.bound.take() {
            Some(bound) => self.out.write_str(bound.as_str()),
            None => Ok(()),
        }
    }
}

impl<W: std::fmt::Write> std::fmt::Write for WholeNumberBounds<'_, W> {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        let bytes = text.as_bytes();
        // text[pending..index] is passed through unchanged when flushed.
        let mut pending = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if let Some(bound) = &mut self.bound {
                if (byte.is_ascii_digit() || byte == b'.') && bound.length < bound.bytes.len() {
                    bound.bytes[bound.length] = byte;
                    bound.length += 1;
                    pending = index + 1;
                    continue;
                }
                let digits = bound.as_str();
                let whole = digits
                    .strip_suffix(".0")
                    .filter(|whole| !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()));
                // The closing quote shortens a whole number; anything else
                // means this was not a bound to rewrite.
                let written = if byte == b'"' {
                    whole.unwrap_or(digits)
                } else {
                    digits
                };
                self.out.write_str(written)?;
                self.bound = None;
                pending = index;
            }
            if self.matched > 0 && byte == Self::LABEL[self.matched] {
                self.matched += 1;
                if self.matched == Self::LABEL.len() {
                    self.out.write_str(&text[pending..=index])?;
                    pending = index + 1;
                    self.matched = 0;
                    self.bound = Some(BoundDigits {
                        bytes: [0; 24],
                        length: 0,
                    });
                }
            } else {
                self.matched = usize::from(self.after_separator && byte == Self::LABEL[0]);
            }
            self.after_separator = matches!(byte, b'{' | b',');
        }
        if self.bound.is_none() {
            self.out.write_str(&text[pending..])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::labels::{Peer, TargetLabels, TlsStatus};
    use super::*;

    fn scrape(registry: &Registry) -> String {
        encode(registry)
    }

    #[test]
    fn http_families_use_linkerd_names_and_labels() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::new(&mut registry);
        let labels = HttpLabels {
            direction: Direction::Outbound,
            authority: "web.example:80".into(),
            target: TargetLabels::new(
                "10.1.2.3:8080".parse().unwrap(),
                TlsStatus::NotProvidedByServiceDiscovery,
            ),
        };
        let cache = HttpHandleCache::default();
        metrics.http.request(&labels, &cache);
        metrics.http.response(
            &labels,
            &ResponseOutcome {
                status_code: 503,
                grpc_status: None,
                error: None,
                latency: Duration::from_millis(7),
            },
            &cache,
        );
        let text = scrape(&registry);
        let request_labels = "direction=\"outbound\",authority=\"web.example:80\",target_addr=\"10.1.2.3:8080\",target_ip=\"10.1.2.3\",target_port=\"8080\",tls=\"no_identity\",no_tls_reason=\"not_provided_by_service_discovery\"";
        assert!(
            text.contains(&format!("request_total{{{request_labels}}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "response_total{{{request_labels},status_code=\"503\",classification=\"failure\",grpc_status=\"\",error=\"\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "response_latency_ms_bucket{{le=\"10\",{request_labels},status_code=\"503\"}} 1"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "response_latency_ms_bucket{{le=\"5\",{request_labels},status_code=\"503\"}} 0"
            )),
            "{text}"
        );
    }

    #[test]
    fn tcp_connection_records_bytes_and_close() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::new(&mut registry);
        let connection = metrics.tcp.open(TcpLabels {
            direction: Direction::Inbound,
            peer: Peer::Source,
            target: TargetLabels::new(
                "127.0.0.1:6379".parse().unwrap(),
                TlsStatus::NoTlsFromRemote,
            ),
        });
        connection.read(10);
        connection.wrote(4);
        assert!(scrape(&registry).contains("tcp_open_connections{direction=\"inbound\",peer=\"src\",target_addr=\"127.0.0.1:6379\",target_ip=\"127.0.0.1\",target_port=\"6379\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 1"));
        connection.failed(&std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        drop(connection);
        let text = scrape(&registry);
        assert!(text.contains("tcp_read_bytes_total{direction=\"inbound\",peer=\"src\",target_addr=\"127.0.0.1:6379\",target_ip=\"127.0.0.1\",target_port=\"6379\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 10"), "{text}");
        assert!(text.contains("errno=\"ECONNRESET\"} 1"), "{text}");
        assert!(text.contains("tcp_open_connections{direction=\"inbound\",peer=\"src\",target_addr=\"127.0.0.1:6379\",target_ip=\"127.0.0.1\",target_port=\"6379\",tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"} 0"), "{text}");
    }

    /// Writes `input` through [`WholeNumberBounds`] cut into `write_str`
    /// calls at `cuts`.
    fn whole_number_bounds(input: &str, cuts: &[usize]) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let mut writer = WholeNumberBounds::new(&mut out);
        let mut start = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            writer.write_str(&input[start..cut]).unwrap();
            start = cut;
        }
        writer.finish().unwrap();
        out
    }

    #[test]
    fn bounds_are_written_as_whole_numbers() {
        let table = [
            ("x_bucket{le=\"1.0\"} 3", "x_bucket{le=\"1\"} 3"),
            (
                "x_bucket{a=\"b\",le=\"50000.0\"} 3",
                "x_bucket{a=\"b\",le=\"50000\"} 3",
            ),
            ("x_bucket{le=\"0.5\"} 3", "x_bucket{le=\"0.5\"} 3"),
            ("x_bucket{le=\"+Inf\"} 3", "x_bucket{le=\"+Inf\"} 3"),
            ("no bounds here", "no bounds here"),
            ("x{dst_role=\"1.0\"} 3", "x{dst_role=\"1.0\"} 3"),
            (
                "x_bucket{le=\"2.0\"} 1\nx_bucket{le=\"10.0\"} 2\n",
                "x_bucket{le=\"2\"} 1\nx_bucket{le=\"10\"} 2\n",
            ),
            ("x{a=\"é,le=\"} 1.0", "x{a=\"é,le=\"} 1.0"),
            ("x_bucket{le=\".0\"} 3", "x_bucket{le=\".0\"} 3"),
            ("x_bucket{le=\"1.0", "x_bucket{le=\"1.0"),
            (
                "x_bucket{le=\"12345678901234567890123456789.0\"} 3",
                "x_bucket{le=\"12345678901234567890123456789.0\"} 3",
            ),
        ];
        for (input, expected) in table {
            assert_eq!(whole_number_bounds(input, &[]), expected, "{input:?}");
            // Cut anywhere (on character boundaries), once and everywhere.
            let boundaries: Vec<usize> = (1..input.len())
                .filter(|&cut| input.is_char_boundary(cut))
                .collect();
            for &cut in &boundaries {
                assert_eq!(
                    whole_number_bounds(input, &[cut]),
                    expected,
                    "{input:?} at {cut}"
                );
            }
            assert_eq!(
                whole_number_bounds(input, &boundaries),
                expected,
                "{input:?}"
            );
        }
    }
}

//! A stand-in for a proxy's admin endpoint: `GET /metrics` answers the text
//! the test last set, so a controller scraping it sees exactly the series a
//! test wants (for example the authorization counters of [`authz_text`]),
//! and the test changes them between scrapes. Every other path is a 404.
//!
//! ```text
//! test ──set_text──► MetricsTarget (127.0.0.1:port) ◄── GET /metrics ── weft-controller's scraper
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::ProxyPorts;
use crate::background::BackgroundServer;

/// What the endpoint answers, and how often it was asked.
#[derive(Debug, Default)]
struct Shared {
    text: Mutex<String>,
    scrapes: AtomicU64,
}

/// A fake proxy admin endpoint serving a settable `/metrics` text; stops
/// when dropped.
pub struct MetricsTarget {
    server: BackgroundServer,
    shared: Arc<Shared>,
}

impl MetricsTarget {
    /// Starts serving `text` on a free loopback port.
    pub fn start(text: &str) -> Self {
        let shared = Arc::new(Shared {
            text: Mutex::new(text.to_string()),
            scrapes: AtomicU64::new(0),
        });
        let server = BackgroundServer::http1("metrics-target", shared.clone(), answer);
        Self { server, shared }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Ports for a Workload's `proxy:` whose admin port is this endpoint
    /// (inbound and tap: free ports nothing listens on).
    pub fn proxy_ports(&self) -> ProxyPorts {
        ProxyPorts {
            admin: self.addr(),
            ..ProxyPorts::free()
        }
    }

    /// Answers `text` from now on.
    pub fn set_text(&self, text: &str) {
        *self
            .shared
            .text
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = text.to_string();
    }

    /// How many times `/metrics` was fetched.
    pub fn scrapes(&self) -> u64 {
        self.shared.scrapes.load(Ordering::Relaxed)
    }
}

fn answer(shared: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        let mut response = Response::new(Full::new(Bytes::from_static(b"not found\n")));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    }
    shared.scrapes.fetch_add(1, Ordering::Relaxed);
    let text = shared
        .text
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// The inbound authorization counters as linkerd2-proxy writes them
/// (Prometheus text format): `http_allowed` requests allowed by the
/// AuthorizationPolicy `web-clients` on the Server `web-http` (port 8080),
/// `http_denied` requests denied there (no route matched, so no `route_*`
/// or `authz_*` labels), and `tcp_denied` connections denied on port 5432
/// under the default policy `deny`.
pub fn authz_text(http_allowed: u64, http_denied: u64, tcp_denied: u64) -> String {
    let target = |port: u16| {
        format!("target_addr=\"127.0.0.1:{port}\",target_ip=\"127.0.0.1\",target_port=\"{port}\"")
    };
    let server = "srv_group=\"policy.linkerd.io\",srv_kind=\"server\",srv_name=\"web-http\",srv_port=\"8080\"";
    let allowed = format!(
        "{},{server},route_group=\"\",route_kind=\"default\",route_name=\"default\",\
         authz_group=\"policy.linkerd.io\",authz_kind=\"authorizationpolicy\",authz_name=\"web-clients\",\
         tls=\"true\",client_id=\"traffic.demo.serviceaccount.identity.weft.cluster.local\"",
        target(8080)
    );
    let denied = format!(
        "{},{server},tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"",
        target(8080)
    );
    let tcp_denied_labels = format!(
        "{},srv_group=\"\",srv_kind=\"default\",srv_name=\"deny\",srv_port=\"5432\",\
         tls=\"no_identity\",no_tls_reason=\"no_tls_from_remote\"",
        target(5432)
    );
    format!(
        "# HELP inbound_http_authz_allow_total The total number of inbound HTTP requests that were authorized\n\
         # TYPE inbound_http_authz_allow_total counter\n\
         inbound_http_authz_allow_total{{{allowed}}} {http_allowed}\n\
         # HELP inbound_http_authz_deny_total The total number of inbound HTTP requests that could not be processed due to a proxy error.\n\
         # TYPE inbound_http_authz_deny_total counter\n\
         inbound_http_authz_deny_total{{{denied}}} {http_denied}\n\
         # HELP inbound_tcp_authz_deny_total The total number of inbound TCP connections that were denied\n\
         # TYPE inbound_tcp_authz_deny_total counter\n\
         inbound_tcp_authz_deny_total{{{tcp_denied_labels}}} {tcp_denied}\n"
    )
}

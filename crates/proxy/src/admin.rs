//! The admin server, apart from the data path on a thread and runtime of its
//! own so probes and scrapes answer even when the data path is saturated.
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | the registry in Prometheus/OpenMetrics text |
//! | `/ready` | 200 while serving, 503 once draining |
//! | `/live` | 200 |
//! | `/config` | the effective configuration as JSON |
//! | `POST /shutdown` | loopback clients only: starts a graceful shutdown |
//!
//! Who may ask: `/live` and `/ready` anyone (probes). `/metrics`, `/config`
//! and `/shutdown` loopback clients (the host's own scraper), and others
//! the default inbound policy (`WEFT_PROXY_INBOUND_DEFAULT_POLICY`) admits
//! as plaintext clients (the admin port has no TLS, so `*-authenticated`
//! and `deny` admit nobody remote); refused: 403. The admin port's policy is
//! the default, never the controller's (it is the proxy's own port).

use crate::policy::inbound::{Client, ClientTls, Decision, ServerPolicy, authorize};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

/// What the admin server reads and controls.
pub(crate) struct AdminState {
    /// Every metric of the process.
    pub registry: Arc<Registry>,
    /// The effective configuration, as served on `/config`.
    pub config_json: serde_json::Value,
    /// Whether the data path is serving.
    pub ready: AtomicBool,
    /// Set by `POST /shutdown`.
    pub shutdown: watch::Sender<bool>,
    /// Who other than loopback clients may use the paths beyond the probes.
    pub policy: Arc<ServerPolicy>,
}

/// Runs the admin server on its own thread until the process exits.
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    state: Arc<AdminState>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("admin".to_string())
        .spawn(move || runtime.block_on(serve(listener, state)))?;
    Ok(())
}

async fn serve(listener: std::net::TcpListener, state: Arc<AdminState>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "admin listener unusable");
            return;
        }
    };
    // Accept errors (out of descriptors under a flood) are logged within a
    // budget of their own.
    let log_limit = crate::log_limit::LogLimit::new();
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                if let Some(allowed) = log_limit.allow() {
                    tracing::warn!(%error, held_back = allowed.held_back, "admin accept failed");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, client, &request)) }
            });
            // A client gets ADMIN_HEADER_READ_TIMEOUT for each request head,
            // and as long to send the next one on a kept-alive connection.
            let _ = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(ADMIN_HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// How long the admin server waits for a request head (probes and scrapes
/// send theirs at once).
const ADMIN_HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}

/// The admin server's routing: a pure function of the request and state.
pub(crate) fn respond(
    state: &AdminState,
    client: SocketAddr,
    request: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    route(state, client, request.method(), request.uri().path())
}

/// Whether `client` may use the admin paths beyond the probes: loopback,
/// or admitted by the default policy as a plaintext client.
fn admitted(state: &AdminState, client: SocketAddr) -> bool {
    let ip = client.ip().to_canonical();
    if ip.is_loopback() {
        return true;
    }
    let client = Client {
        addr: ip,
        tls: ClientTls::Plaintext,
    };
    authorize(&state.policy.authorizations, &client) != Decision::Deny
}

fn route(
    state: &AdminState,
    client: SocketAddr,
    method: &Method,
    path: &str,
) -> Response<Full<Bytes>> {
    if !matches!(path, "/live" | "/ready") && !admitted(state, client) {
        return text(StatusCode::FORBIDDEN, "unauthorized request\n");
    }
    match path {
        "/metrics" => {
            let body = crate::metrics::encode(&state.registry);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "/ready" if state.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n"),
        "/ready" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/live" => text(StatusCode::OK, "live\n"),
        "/config" => {
            let body = serde_json::to_vec_pretty(&state.config_json).unwrap_or_default();
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        "/shutdown" if method != Method::POST => {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            response
        }
        "/shutdown" if !client.ip().to_canonical().is_loopback() => text(
            StatusCode::FORBIDDEN,
            "requests are only permitted from localhost\n",
        ),
        "/shutdown" => {
            let _ = state.shutdown.send(true);
            text(StatusCode::OK, "shutdown\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_table() {
        let (shutdown, shutdown_seen) = watch::channel(false);
        let state = AdminState {
            registry: Arc::new(Registry::default()),
            config_json: serde_json::json!({"cores": 1}),
            ready: AtomicBool::new(true),
            shutdown,
            policy: Arc::new(ServerPolicy::default_for(
                crate::config::DefaultPolicy::AllUnauthenticated,
                4191,
                &[],
            )),
        };
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let table = [
            (Method::GET, "/live", local, 200),
            (Method::GET, "/ready", local, 200),
            (Method::GET, "/metrics", local, 200),
            (Method::GET, "/config", local, 200),
            (Method::GET, "/shutdown", local, 405),
            (Method::POST, "/shutdown", remote, 403),
            (Method::GET, "/nope", local, 404),
        ];
        for (method, path, client, status) in table {
            assert_eq!(
                route(&state, client, &method, path).status().as_u16(),
                status,
                "{method} {path}"
            );
        }
        assert!(!*shutdown_seen.borrow());
        assert_eq!(
            route(&state, local, &Method::POST, "/shutdown").status(),
            200
        );
        assert!(*shutdown_seen.borrow());
        state.ready.store(false, Ordering::Relaxed);
        assert_eq!(route(&state, local, &Method::GET, "/ready").status(), 503);
    }

    #[test]
    fn admin_policy_table() {
        use crate::config::{DefaultPolicy, IpNetwork};
        let cluster = [IpNetwork::parse("10.0.0.0/8").unwrap()];
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let inside: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let outside: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        // (policy, client, path, status)
        let table = [
            (DefaultPolicy::Deny, outside, "/live", 200),
            (DefaultPolicy::Deny, outside, "/ready", 200),
            (DefaultPolicy::Deny, outside, "/metrics", 403),
            (DefaultPolicy::Deny, outside, "/config", 403),
            (DefaultPolicy::Deny, outside, "/nope", 403),
            (DefaultPolicy::Deny, local, "/metrics", 200),
            (DefaultPolicy::Deny, mapped, "/config", 200),
            (DefaultPolicy::AllAuthenticated, inside, "/metrics", 403),
            (DefaultPolicy::AllAuthenticated, inside, "/live", 200),
            (
                DefaultPolicy::ClusterUnauthenticated,
                inside,
                "/metrics",
                200,
            ),
            (
                DefaultPolicy::ClusterUnauthenticated,
                outside,
                "/metrics",
                403,
            ),
            (DefaultPolicy::ClusterAuthenticated, inside, "/metrics", 403),
            (DefaultPolicy::AllUnauthenticated, outside, "/metrics", 200),
            (DefaultPolicy::Audit, outside, "/metrics", 200),
        ];
        for (policy, client, path, status) in table {
            let (shutdown, _seen) = watch::channel(false);
            let state = AdminState {
                registry: Arc::new(Registry::default()),
                config_json: serde_json::json!({}),
                ready: AtomicBool::new(true),
                shutdown,
                policy: Arc::new(ServerPolicy::default_for(policy, 4191, &cluster)),
            };
            assert_eq!(
                route(&state, client, &Method::GET, path).status().as_u16(),
                status,
                "{} {client} {path}",
                policy.as_str()
            );
        }
    }
}

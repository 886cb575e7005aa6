//! Helpers for the tap and dashboard tests: a small meshed demo (a real
//! controller with identity, real proxies with tap, an app and traffic), an
//! HTTP client for the controller's JSON API, and a reader of `/api/tap`'s
//! NDJSON stream.
//!
//! ```text
//! load ─► traffic proxy (outbound) ══mTLS══► web proxy (inbound) ─► app (HttpTestServer)
//!              │ tap :T1  admin :A1                │ tap :T2  admin :A2
//!              └───────── weft-controller (Destination, Identity, scrape, /api, tap) ──┘
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
pub use weft_test_support::ProxyPorts;
use weft_test_support::load::BackgroundLoad;
use weft_test_support::{ControllerProcess, HttpTestServer, ProxyProcess};

/// The demo's namespace.
pub const NAMESPACE: &str = "demo";
/// The controller's identity (what the proxies serve tap to).
pub const CONTROLLER_IDENTITY: &str =
    "weft-controller.weft.serviceaccount.identity.weft.cluster.local";
/// What the traffic generator asks for.
pub const WEB_URL: &str = "http://web.demo.svc.cluster.local/";

/// A scratch directory for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "weft-{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A meshed workload document: app on `app_port` (0: none), proxy at `ports`.
pub fn workload_yaml(name: &str, app: &str, app_port: u16, ports: ProxyPorts) -> String {
    let app_ports = if app_port == 0 {
        String::new()
    } else {
        format!("  ports: [{{name: http, port: {app_port}}}]\n")
    };
    format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n  \
         labels: {{app: {app}}}\nspec:\n  serviceAccount: {name}\n  addresses: [127.0.0.1]\n{app_ports}  \
         meshed: true\n  proxy: {}\n",
        ports.mesh_yaml()
    )
}

/// The demo running: keep it alive for the test's duration. The app, the
/// proxies and the load are held, not read: dropping them stops them.
#[allow(dead_code)]
pub struct DemoMesh {
    /// The API token.
    pub token: String,
    /// The controller.
    pub controller: ControllerProcess,
    /// The web app.
    pub app: HttpTestServer,
    /// `demo/web`'s proxy.
    pub web: ProxyProcess,
    /// `demo/traffic`'s proxy.
    pub traffic: ProxyProcess,
    /// Requests from traffic to web, until dropped.
    pub load: Option<BackgroundLoad>,
}

impl DemoMesh {
    /// Starts everything and waits until requests succeed.
    pub fn start(name: &str) -> Self {
        Self::start_with(name, &[], CONTROLLER_IDENTITY)
    }

    /// Like [`DemoMesh::start`], with more controller arguments and the
    /// identity the proxies serve tap to (`WEFT_PROXY_TAP_SVC_NAME`).
    pub fn start_with(name: &str, controller_args: &[&str], tap_client: &str) -> Self {
        let dir = scratch(name);
        let token_file = dir.join("api-token");
        let app = HttpTestServer::start();
        let web_ports = ProxyPorts::free();
        let traffic_ports = ProxyPorts::free();
        let mesh = [
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: {NAMESPACE}\nspec:\n  \
                 selector: {{app: web}}\n  ports:\n  - {{name: http, port: 80, targetPort: http}}\n"
            ),
            workload_yaml("web", "web", app.addr().port(), web_ports),
            workload_yaml("traffic", "traffic", 0, traffic_ports),
        ]
        .iter()
        .map(|document| format!("---\n{document}"))
        .collect::<String>();
        let token_arg = token_file.display().to_string();
        let mut args = vec!["--api-token-file", &token_arg, "--scrape-interval", "1s"];
        args.extend_from_slice(controller_args);
        let controller = ControllerProcess::start_with_identity_args(&mesh, &args);
        let token = std::fs::read_to_string(&token_file)
            .expect("the controller created the token file")
            .trim()
            .to_string();
        let web = meshed_proxy(&controller, "web", web_ports, tap_client)
            .inbound_forward(app.addr())
            .spawn();
        let traffic = meshed_proxy(&controller, "traffic", traffic_ports, tap_client)
            .env(
                "WEFT_PROXY_DESTINATION_SVC_ADDR",
                controller.destination_addr().to_string(),
            )
            .spawn();
        let load = BackgroundLoad::start(
            traffic.outbound_addr(),
            WEB_URL,
            2,
            Duration::from_millis(40),
        );
        load.wait_for_more(5, Duration::from_secs(20));
        Self {
            token,
            controller,
            app,
            web,
            traffic,
            load: Some(load),
        }
    }

    /// The controller's web listener.
    pub fn web_addr(&self) -> SocketAddr {
        self.controller.web_addr()
    }
}

fn meshed_proxy(
    controller: &ControllerProcess,
    workload: &str,
    ports: ProxyPorts,
    tap_client: &str,
) -> weft_test_support::ProxyBuilder {
    let identity = format!("{workload}.{NAMESPACE}.serviceaccount.identity.weft.cluster.local");
    let builder = ports.builder().env("WEFT_PROXY_TAP_SVC_NAME", tap_client);
    controller.proxy_identity(builder, NAMESPACE, workload, &identity)
}

/// One HTTP/1.1 request to `address`; the response head and body stream.
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> hyper::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let mut builder = hyper::Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        builder = builder.header("host", format!("localhost:{}", address.port()));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .unwrap(),
        None => builder
            .body(
                Empty::<Bytes>::new()
                    .map_err(|never| match never {})
                    .boxed(),
            )
            .unwrap(),
    };
    sender.send_request(request).await.expect("response")
}

/// A whole response: status and body parsed as JSON (`Null` if it is not).
pub async fn json_request(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = request(
        address,
        method,
        path,
        &[],
        body.map(|body| body.to_string().into_bytes()),
    )
    .await;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `/api/tap`'s body, read line by line.
pub struct TapStream {
    body: Incoming,
    buffer: Vec<u8>,
}

impl TapStream {
    /// Opens `/api/tap?{query}`; the status and, when 200, the stream; else the JSON error.
    pub async fn open(
        address: SocketAddr,
        query: &str,
        token: Option<&str>,
    ) -> Result<Self, (u16, Value)> {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        let response = request(address, "GET", &format!("/api/tap?{query}"), &headers, None).await;
        let status = response.status().as_u16();
        if status != 200 {
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            return Err((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ));
        }
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/x-ndjson"
        );
        Ok(Self {
            body: response.into_body(),
            buffer: Vec::new(),
        })
    }

    /// The next event, or `None` when none comes within `patience` (or the stream ends).
    pub async fn next(&mut self, patience: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).expect("each line is JSON"));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??;
            if let Ok(data) = frame.expect("body frame").into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }

    /// Every event arriving within `span`.
    pub async fn collect_for(&mut self, span: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + span;
        let mut events = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return events;
            }
            match self.next(left).await {
                Some(event) => events.push(event),
                None => return events,
            }
        }
    }
}

//! Proxies certified from their ServiceAccount tokens: a real
//! `weft-controller --kubernetes` whose issuer is a `kubernetes.io/tls`
//! Secret and whose anchors are a ConfigMap on the test API server
//! (`weft_test_support::kube_api`), which also reviews the tokens. Two real
//! `weft-proxy` processes read a token file (as a projected ServiceAccount
//! token), get their certificates and talk mutual TLS.
//!
//! ```text
//! curl-like load ─► client proxy ══mTLS══► server proxy ─► app
//!                    │ Certify(token)           │ Certify(token), over TLS (the controller verified)
//!                    ▼                          ▼
//!             weft-controller --kubernetes ── TokenReview, watch Secret/ConfigMap ──► KubeApiServer
//!                    (discovery for the client proxy: a mesh-file controller naming the
//!                     server's identity, so this test depends on the identity path only)
//! ```
//!
//! Run with: `cargo build -p weft-controller -p weft-proxy --bins && cargo test -p weft-e2e --test kubernetes_identity`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_test_support::kube_api::{KubeApiServer, TokenReviewAnswer};
use weft_test_support::{
    ControllerProcess, HeadersEcho, HttpTestServer, MeshFile, ProxyBuilder, ProxyProcess, bin_path,
    free_addr, free_port, load,
};

const NAMESPACE: &str = "shop";
const SERVER_IDENTITY: &str = "web-1.shop.serviceaccount.identity.weft.cluster.local";
const CLIENT_IDENTITY: &str = "client.shop.serviceaccount.identity.weft.cluster.local";
const URL: &str = "http://web.shop.svc.cluster.local/headers";
const PATIENCE: Duration = Duration::from_secs(20);

/// A scratch directory, removed on drop unless the test failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "weft-e2e-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `weft-controller --kubernetes` with identity from the issuer Secret; killed on drop.
struct KubeController {
    child: Child,
    identity: SocketAddr,
    destination: SocketAddr,
    log: PathBuf,
}

impl KubeController {
    fn start(scratch: &Scratch, api: &KubeApiServer) -> Self {
        let kubeconfig = scratch.path("kubeconfig");
        api.write_kubeconfig(&kubeconfig);
        let identity = free_addr();
        let admin = free_addr();
        let destination = free_addr();
        let log = scratch.path("controller.log");
        let child = Command::new(bin_path("weft-controller"))
            .env("RUST_LOG", "info")
            .env_remove("KUBECONFIG")
            .arg("--kubernetes")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--identity-issuer-secret", "weft-identity-issuer"])
            .args(["--identity-addr", &identity.to_string()])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--destination-addr", &destination.to_string()])
            .args(["--web-addr", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn weft-controller");
        let mut controller = Self {
            child,
            identity,
            destination,
            log,
        };
        let started = Instant::now();
        loop {
            if let Ok(response) = weft_test_support::proxy::admin_request(admin, "GET", "/ready")
                && response.status == 200
            {
                return controller;
            }
            if let Some(status) = controller.child.try_wait().unwrap() {
                panic!("weft-controller exited: {status}\n{}", controller.log());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "weft-controller never ready\n{}",
                controller.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for KubeController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- weft-controller --kubernetes log ---\n{}--- end ---",
                self.log()
            );
        }
    }
}

/// Standard base64 (the Secret's `data` encoding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |value, (index, byte)| {
            value | u32::from(*byte) << (16 - 8 * index)
        });
        for index in 0..4 {
            if index <= chunk.len() {
                text.push(char::from(
                    ALPHABET[(value >> (18 - 6 * index)) as usize & 63],
                ));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// The issuer Secret and anchor ConfigMap from `identity init` in `state`.
fn credentials_yaml(state: &std::path::Path) -> (String, String) {
    let read = |file: &str| std::fs::read(state.join(file)).expect(file);
    let anchor = String::from_utf8(read("trust-anchor.pem")).unwrap();
    let indented: String = anchor.lines().map(|line| format!("    {line}\n")).collect();
    let yaml = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: weft-identity-issuer, namespace: weft}}\n\
         type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: weft-identity-trust-roots, namespace: weft}}\n\
         data:\n  ca-bundle.crt: |\n{indented}",
        base64(&read("issuer/crt.pem")),
        base64(&read("issuer/key.pem")),
    );
    (yaml, anchor)
}

/// `builder` taking `identity` from the Kubernetes controller with the
/// ServiceAccount token in `token_file`.
fn with_identity(
    builder: ProxyBuilder,
    controller: &KubeController,
    token_file: &std::path::Path,
    identity: &str,
    anchor: &str,
) -> ProxyBuilder {
    builder
        .env(
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            controller.identity.to_string(),
        )
        .env(
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        )
        .env("WEFT_PROXY_IDENTITY_LOCAL_NAME", identity)
        .env("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", anchor)
}

/// Waits until `metric(name, labels)` reaches `expected`.
fn assert_metric_settles(proxy: &ProxyProcess, name: &str, labels: &[(&str, &str)], expected: f64) {
    let started = Instant::now();
    let mut value = proxy.metric(name, labels);
    while value.unwrap_or(0.0) < expected && started.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(50));
        value = proxy.metric(name, labels);
    }
    assert_eq!(
        value,
        Some(expected),
        "{name}{labels:?}\n{}",
        proxy.metrics_text()
    );
}

/// The API with the issuer Secret, the anchors and token reviews (a
/// projected token names its ServiceAccount; the audience is echoed), the
/// controller on it, and a token file per ServiceAccount:
/// (scratch, API, controller, anchor PEM).
fn cluster() -> (Scratch, KubeApiServer, KubeController, String) {
    let scratch = Scratch::new("kubernetes-identity");
    let init = Command::new(bin_path("weft-controller"))
        .args(["identity", "init", "--dir"])
        .arg(scratch.path("state"))
        .output()
        .expect("identity init runs");
    assert!(init.status.success(), "{init:?}");
    let (credentials, anchor) = credentials_yaml(&scratch.path("state"));
    let api = KubeApiServer::start();
    api.apply_yaml(&credentials);
    api.set_token_review(
        |request| match request.token.strip_prefix("projected-token/") {
            Some(service_account) => TokenReviewAnswer::Authenticated {
                username: format!("system:serviceaccount:{NAMESPACE}:{service_account}"),
                audiences: request.audiences.clone(),
            },
            None => TokenReviewAnswer::Unauthenticated {
                error: "invalid bearer token".into(),
            },
        },
    );
    let controller = KubeController::start(&scratch, &api);
    for service_account in ["web-1", "client"] {
        std::fs::write(
            scratch.path(&format!("{service_account}.token")),
            format!("projected-token/{service_account}\n"),
        )
        .unwrap();
    }
    (scratch, api, controller, anchor)
}

/// Sends traffic from `client` to web and checks both sides saw mutual TLS
/// with the other's identity, and that tokens were reviewed.
fn assert_mutual_tls(api: &KubeApiServer, client: &ProxyProcess, server: &ProxyProcess) {
    let report = load::run(client.outbound_addr(), URL, 20, 2);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());
    let echo = load::get(client.outbound_addr(), URL);
    let headers = HeadersEcho::from_json(std::str::from_utf8(&echo.body).unwrap()).unwrap();
    assert_eq!(
        headers.header("l5d-client-id"),
        Some(CLIENT_IDENTITY),
        "the server proxy verified the client's certificate"
    );
    assert_metric_settles(
        client,
        "request_total",
        &[
            ("direction", "outbound"),
            ("tls", "true"),
            ("server_id", SERVER_IDENTITY),
        ],
        21.0,
    );
    assert_metric_settles(
        server,
        "request_total",
        &[
            ("direction", "inbound"),
            ("tls", "true"),
            ("client_id", CLIENT_IDENTITY),
        ],
        21.0,
    );
    // Each certificate came from a TokenReview.
    let reviews = api
        .requests()
        .into_iter()
        .filter(|request| {
            request.method == "POST"
                && request.path == "/apis/authentication.k8s.io/v1/tokenreviews"
        })
        .count();
    assert!(reviews >= 2, "{:?}", api.requests());
}

#[test]
fn proxies_certified_from_service_account_tokens_talk_mutual_tls() {
    let (scratch, api, controller, anchor) = cluster();

    // Discovery for the client proxy names web-1's identity.
    let app = HttpTestServer::start();
    let server_inbound: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mesh = MeshFile::new()
        .service(NAMESPACE, "web", &[("app", "web")])
        .meshed_workload(
            NAMESPACE,
            "web-1",
            &[("app", "web")],
            app.addr(),
            server_inbound.port(),
        )
        .unserved_workload(NAMESPACE, "client", &[("app", "client")])
        .render();
    let discovery = ControllerProcess::start_with_identity(&mesh);

    // The server proxy asks for its certificate over TLS, verifying the
    // controller's own certificate (signed by the Secret's issuer).
    let server = with_identity(
        ProxyProcess::builder()
            .inbound_addr(server_inbound)
            .inbound_forward(app.addr())
            .env("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
        &controller,
        &scratch.path("web-1.token"),
        SERVER_IDENTITY,
        &anchor,
    )
    .spawn();
    let client = with_identity(
        ProxyProcess::builder().env(
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            discovery.destination_addr().to_string(),
        ),
        &controller,
        &scratch.path("client.token"),
        CLIENT_IDENTITY,
        &anchor,
    )
    .spawn();

    // Both proxies are ready: each holds a certificate from the controller.
    assert_mutual_tls(&api, &client, &server);
    drop(discovery);
}

/// Pod `name` (ServiceAccount `name`, label app=`app`) on 127.0.0.1 with its
/// app's port `http` and a `weft-proxy` container taking mesh traffic on
/// `inbound_port`.
fn meshed_pod(name: &str, app: &str, http_port: u16, inbound_port: u16) -> String {
    let app_container =
        format!("{{name: app, ports: [{{name: http, containerPort: {http_port}}}]}}");
    let proxy_container = format!(
        "{{name: weft-proxy, env: [{{name: WEFT_PROXY_INBOUND_LISTEN_ADDR, value: \"127.0.0.1:{inbound_port}\"}}]}}"
    );
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {NAMESPACE}, labels: {{app: {app}}}}}\n\
         spec: {{serviceAccountName: {name}, containers: [{app_container}, {proxy_container}]}}\n\
         status: {{phase: Running, podIP: 127.0.0.1, podIPs: [{{ip: 127.0.0.1}}]}}\n"
    )
}

#[test]
fn proxies_discovered_from_kubernetes_objects_talk_mutual_tls() {
    let (scratch, api, controller, anchor) = cluster();
    let app = HttpTestServer::start();
    let app_port = app.addr().port();
    let server_inbound: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    // The shop as a cluster holds it: Service web, its EndpointSlice, the
    // meshed pods (web-1 serving, client calling).
    api.apply_yaml(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n\
         ---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {NAMESPACE}}}\n\
         spec:\n  selector: {{app: web}}\n  clusterIP: 10.96.0.10\n\
         \x20 ports: [{{name: http, port: 80, targetPort: http}}]\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-1a, namespace: {NAMESPACE}, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {app_port}, protocol: TCP}}]\n\
         endpoints:\n- addresses: [127.0.0.1]\n  conditions: {{ready: true, serving: true, terminating: false}}\n\
         \x20 targetRef: {{kind: Pod, name: web-1, namespace: {NAMESPACE}}}\n\
         ---\n{}---\n{}",
        meshed_pod("web-1", "web", app_port, server_inbound.port()),
        meshed_pod("client", "client", free_port(), free_port()),
    ));

    let server = with_identity(
        ProxyProcess::builder()
            .inbound_addr(server_inbound)
            .inbound_forward(app.addr()),
        &controller,
        &scratch.path("web-1.token"),
        SERVER_IDENTITY,
        &anchor,
    )
    .spawn();
    let client = with_identity(
        // Discovery over mutual TLS with the controller's own certificate.
        ProxyProcess::builder()
            .env(
                "WEFT_PROXY_DESTINATION_SVC_ADDR",
                controller.destination.to_string(),
            )
            .env("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
        &controller,
        &scratch.path("client.token"),
        CLIENT_IDENTITY,
        &anchor,
    )
    .spawn();
    assert_mutual_tls(&api, &client, &server);
}

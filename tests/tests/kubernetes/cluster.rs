//! What the Kubernetes tests share: a scratch directory, the real
//! `weft-controller --kubernetes` on the test API server (identity from the
//! issuer Secret and anchor ConfigMap, tokens reviewed by the API), token
//! files standing for projected ServiceAccount tokens, and meshed pods.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weft_test_support::kube_api::{KubeApiServer, TokenReviewAnswer};
use weft_test_support::{ProxyBuilder, ProxyProcess, bin_path, free_addr};

pub(crate) const NAMESPACE: &str = "shop";
/// The identities of the ServiceAccounts web-1 and client (written out, so
/// a changed format fails).
pub(crate) const SERVER_IDENTITY: &str = "web-1.shop.serviceaccount.identity.weft.cluster.local";
pub(crate) const CLIENT_IDENTITY: &str = "client.shop.serviceaccount.identity.weft.cluster.local";
pub(crate) const URL: &str = "http://web.shop.svc.cluster.local/headers";
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// A scratch directory, removed on drop unless the test failed.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "weft-e2e-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
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
pub(crate) struct KubeController {
    child: Child,
    pub(crate) identity: SocketAddr,
    pub(crate) destination: SocketAddr,
    pub(crate) web: SocketAddr,
    log: PathBuf,
}

impl KubeController {
    pub(crate) fn start(scratch: &Scratch, api: &KubeApiServer) -> Self {
        Self::start_with(scratch, api, "controller", &identity_flags())
    }

    /// A controller named `name` (its log file) with `extra` flags
    /// ([`identity_flags`] for identity).
    pub(crate) fn start_with(
        scratch: &Scratch,
        api: &KubeApiServer,
        name: &str,
        extra: &[String],
    ) -> Self {
        let kubeconfig = scratch.path("kubeconfig");
        api.write_kubeconfig(&kubeconfig);
        let identity = free_addr();
        let admin = free_addr();
        let destination = free_addr();
        let web = free_addr();
        let log = scratch.path(&format!("{name}.log"));
        let child = Command::new(bin_path("weft-controller"))
            .env("RUST_LOG", "info")
            .env_remove("KUBECONFIG")
            .arg("--kubernetes")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["--identity-addr", &identity.to_string()])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--destination-addr", &destination.to_string()])
            .args(["--web-addr", &web.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .expect("spawn weft-controller");
        let mut controller = Self {
            child,
            identity,
            destination,
            web,
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

    pub(crate) fn log(&self) -> String {
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

/// The flags of identity from the issuer Secret [`cluster_api`] writes.
pub(crate) fn identity_flags() -> Vec<String> {
    vec![
        "--identity-issuer-secret".to_string(),
        "weft-identity-issuer".to_string(),
    ]
}

/// Standard base64 (the Secret's `data` encoding).
pub(crate) fn base64(bytes: &[u8]) -> String {
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
pub(crate) fn credentials_yaml(state: &std::path::Path) -> (String, String) {
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

/// The identity the controller issues to `service_account` of [`NAMESPACE`].
pub(crate) fn identity_of(service_account: &str) -> String {
    format!("{service_account}.{NAMESPACE}.serviceaccount.identity.weft.cluster.local")
}

/// `builder` taking the identity of `service_account` from the Kubernetes
/// `controller` with that ServiceAccount's token file in `scratch` (see
/// [`cluster_api`]), trusting `anchor`.
pub(crate) fn with_identity(
    builder: ProxyBuilder,
    controller: &KubeController,
    scratch: &Scratch,
    service_account: &str,
    anchor: &str,
) -> ProxyBuilder {
    let token_file = scratch.path(&format!("{service_account}.token"));
    builder
        .env(
            "WEFT_PROXY_IDENTITY_SVC_ADDR",
            controller.identity.to_string(),
        )
        .env(
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        )
        .env(
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            identity_of(service_account),
        )
        .env("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", anchor)
}

/// `builder` discovering through the Destination service at `destination`.
pub(crate) fn discovering_from(builder: ProxyBuilder, destination: SocketAddr) -> ProxyBuilder {
    builder.env("WEFT_PROXY_DESTINATION_SVC_ADDR", destination.to_string())
}

/// The shop as a cluster holds it: its Namespace, Service `web` (port 80 →
/// `http`), the EndpointSlice of `web` naming pod web-1 on 127.0.0.1 at
/// `app_port`, then the pods `web_1` and `client` (from [`meshed_pod`]).
pub(crate) fn shop_yaml(app_port: u16, web_1: &str, client: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NAMESPACE}}}\n\
         ---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {NAMESPACE}}}\n\
         spec:\n  selector: {{app: web}}\n  clusterIP: 10.96.0.10\n\
         \x20 ports: [{{name: http, port: 80, targetPort: http}}]\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: web-1a, namespace: {NAMESPACE}, labels: {{kubernetes.io/service-name: web}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: {app_port}, protocol: TCP}}]\n\
         endpoints:\n- addresses: [127.0.0.1]\n  conditions: {{ready: true, serving: true, terminating: false}}\n\
         \x20 targetRef: {{kind: Pod, name: web-1, namespace: {NAMESPACE}}}\n\
         ---\n{web_1}---\n{client}"
    )
}

/// Waits until `metric(name, labels)` reaches `expected`.
pub(crate) fn assert_metric_settles(
    proxy: &ProxyProcess,
    name: &str,
    labels: &[(&str, &str)],
    expected: f64,
) {
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
pub(crate) fn cluster() -> (Scratch, KubeApiServer, KubeController, String) {
    let scratch = Scratch::new("kubernetes-identity");
    let (api, anchor) = cluster_api(&scratch);
    let controller = KubeController::start(&scratch, &api);
    (scratch, api, controller, anchor)
}

/// The API server of [`cluster`] without a controller: credentials from
/// `identity init`, token reviews, and token files `<sa>.token` for the
/// ServiceAccounts web-1 and client in `scratch`; returns it and the anchor PEM.
pub(crate) fn cluster_api(scratch: &Scratch) -> (KubeApiServer, String) {
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
    for service_account in ["web-1", "client"] {
        std::fs::write(
            scratch.path(&format!("{service_account}.token")),
            format!("projected-token/{service_account}\n"),
        )
        .unwrap();
    }
    (api, anchor)
}

/// Pod `name` (ServiceAccount `name`, label app=`app`) on 127.0.0.1 with its
/// app's port `http` and a `weft-proxy` container taking mesh traffic on
/// `inbound_port`.
pub(crate) fn meshed_pod(name: &str, app: &str, http_port: u16, inbound_port: u16) -> String {
    meshed_pod_with(
        name,
        app,
        http_port,
        &[("INBOUND", SocketAddr::from(([127, 0, 0, 1], inbound_port)))],
    )
}

/// [`meshed_pod`] whose proxy container declares where each of its
/// `listeners` is (`("ADMIN", addr)` → `WEFT_PROXY_ADMIN_LISTEN_ADDR`), as
/// the controller reads them from the pod.
pub(crate) fn meshed_pod_with(
    name: &str,
    app: &str,
    http_port: u16,
    listeners: &[(&str, SocketAddr)],
) -> String {
    let app_container =
        format!("{{name: app, ports: [{{name: http, containerPort: {http_port}}}]}}");
    let env: Vec<String> = listeners
        .iter()
        .map(|(listener, address)| {
            format!("{{name: WEFT_PROXY_{listener}_LISTEN_ADDR, value: \"{address}\"}}")
        })
        .collect();
    let proxy_container = format!("{{name: weft-proxy, env: [{}]}}", env.join(", "));
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {NAMESPACE}, labels: {{app: {app}}}}}\n\
         spec: {{serviceAccountName: {name}, containers: [{app_container}, {proxy_container}]}}\n\
         status: {{phase: Running, podIP: 127.0.0.1, podIPs: [{{ip: 127.0.0.1}}]}}\n"
    )
}

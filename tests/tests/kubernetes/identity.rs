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
//! ```

use std::net::SocketAddr;

use weft_test_support::kube_api::KubeApiServer;
use weft_test_support::{
    ControllerProcess, HeadersEcho, HttpTestServer, MeshFile, ProxyBuilder, ProxyProcess,
    free_port, load,
};

use crate::cluster::{
    CLIENT_IDENTITY, KubeController, NAMESPACE, SERVER_IDENTITY, Scratch, URL,
    assert_metric_settles, cluster, discovering_from, meshed_pod, shop_yaml, with_identity,
};

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
    let reviews = api.token_reviews();
    assert!(reviews >= 2, "{:?}", api.requests());
}

/// web-1's proxy in front of `app`, taking mesh traffic on `inbound`.
fn server_proxy(app: &HttpTestServer, inbound: SocketAddr) -> ProxyBuilder {
    ProxyProcess::builder()
        .inbound_addr(inbound)
        .inbound_forward(app.addr())
}

/// Spawns `server` as web-1 and `client` as client, each certified by the
/// cluster's controller from its ServiceAccount token; once both are ready
/// (each holds a certificate), [`assert_mutual_tls`] between them.
fn certify_and_assert_mutual_tls(
    (scratch, api, controller, anchor): &(Scratch, KubeApiServer, KubeController, String),
    server: ProxyBuilder,
    client: ProxyBuilder,
) {
    let server = with_identity(server, controller, scratch, "web-1", anchor).spawn();
    let client = with_identity(client, controller, scratch, "client", anchor).spawn();
    assert_mutual_tls(api, &client, &server);
}

#[test]
fn proxies_certified_from_service_account_tokens_talk_mutual_tls() {
    let cluster = cluster();

    // Discovery for the client proxy names web-1's identity.
    let app = HttpTestServer::start();
    let server_inbound: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mesh = MeshFile::new()
        .web_service_and_web_1(NAMESPACE, app.addr(), server_inbound.port())
        .unserved_workload(NAMESPACE, "client", &[("app", "client")])
        .render();
    let discovery = ControllerProcess::start_with_identity(&mesh);

    // The server proxy asks for its certificate over TLS, verifying the
    // controller's own certificate (signed by the Secret's issuer).
    certify_and_assert_mutual_tls(
        &cluster,
        server_proxy(&app, server_inbound).env("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
        discovering_from(ProxyProcess::builder(), discovery.destination_addr()),
    );
    drop(discovery);
}

#[test]
fn proxies_discovered_from_kubernetes_objects_talk_mutual_tls() {
    let cluster = cluster();
    let (_, api, controller, _) = &cluster;
    let app = HttpTestServer::start();
    let app_port = app.addr().port();
    let server_inbound: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();

    // The shop as a cluster holds it: Service web, its EndpointSlice, the
    // meshed pods (web-1 serving, client calling).
    api.apply_yaml(&shop_yaml(
        app_port,
        &meshed_pod("web-1", "web", app_port, server_inbound.port()),
        &meshed_pod("client", "client", free_port(), free_port()),
    ));

    certify_and_assert_mutual_tls(
        &cluster,
        server_proxy(&app, server_inbound),
        // Discovery over mutual TLS with the controller's own certificate.
        discovering_from(ProxyProcess::builder(), controller.destination)
            .env("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
    );
}

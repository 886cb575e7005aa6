//! Inbound authorization under attack: a port whose policy admits only
//! verified mesh identities (`all-authenticated`), or nobody (`deny`).
//!
//! ```text
//! attacker ─TLS for web-1's identity, no client certificate─┐
//! attacker ─plaintext HTTP (forged l5d-client-id), raw bytes─┼─► web-1's proxy (inbound) ─╳─► app
//! mesh client (real certificate) ─TLS────────────────────────┘              └──────────────► app
//! ```
//!
//! The app records every byte it receives: an attacker's must never arrive.

use std::time::Duration;

use weft_test_support::http_client::raw_exchange;

use crate::inbound::{
    RecordingApp, attacker_tls, controller, exchange, mesh_client_tls, server_proxy, tls_to_web,
};

const TIMEOUT: Duration = Duration::from_secs(20);
const FORGED: &[u8] = b"GET /secret HTTP/1.1\r\nhost: web\r\n\
l5d-client-id: admin.shop.serviceaccount.identity.weft.cluster.local\r\n\
connection: close\r\n\r\n";

/// TLS to `inbound` for web-1's identity with `config` (no transport
/// header), then `request`: what comes back until close or the timeout.
async fn over_tls(
    inbound: std::net::SocketAddr,
    mut config: rustls::ClientConfig,
    request: &[u8],
) -> String {
    config.alpn_protocols.clear();
    exchange(tls_to_web(inbound, config).await, request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_verified_mesh_clients_reach_an_all_authenticated_port() {
    let app = RecordingApp::start();
    let controller = controller();
    let server = server_proxy(
        &controller,
        app.addr,
        &[("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "all-authenticated")],
    );
    let inbound = server.inbound_addr();

    // TLS without a client certificate: 403 inside the TLS session.
    let answer = over_tls(inbound, attacker_tls(&controller), FORGED).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("unauthorized request on route"), "{answer}");
    // Plaintext with a forged identity: 403.
    let plain = raw_exchange(inbound, FORGED, TIMEOUT);
    assert_eq!(plain.status(), Some(403), "{}", plain.text());
    // Raw bytes that are not HTTP: held until the detect timeout, then
    // refused as TCP (or closed) — never forwarded.
    let raw = raw_exchange(
        inbound,
        b"\x00\x01\x02 not http at all",
        Duration::from_secs(3),
    );
    assert_eq!(raw.status(), None, "{}", raw.text());
    assert_eq!(app.received(), "", "an attacker's bytes reached the app");

    // A verified mesh client: allowed, and the app gets its identity.
    let request = b"GET /ok HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n";
    let answer = over_tls(inbound, mesh_client_tls(&controller).await, request).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let received = app.received();
    assert!(received.contains("GET /ok"), "{received}");
    assert!(
        received.contains("l5d-client-id: client.shop.serviceaccount"),
        "{received}"
    );
    assert!(!received.contains("secret"), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_port_refuses_even_verified_clients() {
    let app = RecordingApp::start();
    let controller = controller();
    let server = server_proxy(
        &controller,
        app.addr,
        &[("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "deny")],
    );
    let inbound = server.inbound_addr();
    let request = b"GET /ok HTTP/1.1\r\nhost: web\r\nconnection: close\r\n\r\n";
    for config in [
        attacker_tls(&controller),
        mesh_client_tls(&controller).await,
    ] {
        let answer = over_tls(inbound, config, request).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }
    let plain = raw_exchange(inbound, FORGED, TIMEOUT);
    assert_eq!(plain.status(), Some(403), "{}", plain.text());
    assert_eq!(app.received(), "", "a request reached the app");
}

//! Two controller replicas on one API server, as `weft install --ha` runs
//! them: nothing lives in a replica, so every one serves discovery,
//! identity, tap and the metrics API for every proxy, whichever replica the
//! proxy itself talks to.
//!
//! ```text
//!                 replica A ◄─── Destination ─── client proxy ─── Certify ───► replica B
//! server proxy ── Certify ──► replica A            │ (mutual TLS)
//!   ▲                                              ▼
//!   └────────────── 20 requests ───────────── server proxy ─► app
//! then: /api/stat on A and on B counts the same 20 (each scrapes the pods' proxies);
//!       /api/tap on B shows live requests; a second client on B's Destination + A's identity works
//! ```

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_test_support::{HeadersEcho, HttpTestServer, ProxyProcess, free_addr, load};

use crate::cluster::{
    CLIENT_IDENTITY, KubeController, NAMESPACE, PATIENCE, Scratch, URL, cluster_api,
    discovering_from, meshed_pod_with, shop_yaml, with_identity,
};

/// The tap token both replicas read (as the `weft-api-token` Secret mounted in each).
const API_TOKEN: &str = "ha-test-token-0123456789";

/// `GET http://<web><path>` with the API token, by curl: (status, body).
fn api_get(web: SocketAddr, path: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {API_TOKEN}"))
        .arg(format!("http://{web}{path}"))
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// The inbound `success` count of workload web-1 in `/api/stat` (with
/// `running` ≥ 1), once the replica has scraped it; `None` before.
fn web_successes(web: SocketAddr) -> Option<(u64, u64)> {
    let (status, body) = api_get(
        web,
        &format!("/api/stat?kind=workload&namespace={NAMESPACE}&window=1m"),
    );
    if status != 200 {
        return None;
    }
    let stat: Value = serde_json::from_str(&body).ok()?;
    let row = stat["rows"]
        .as_array()?
        .iter()
        .find(|row| row["name"] == "web-1")?
        .clone();
    Some((row["running"].as_u64()?, row["success"].as_u64()?))
}

/// Waits until `probe` returns what `done` accepts; the last value either way.
fn poll<T: std::fmt::Debug>(mut probe: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let started = Instant::now();
    let mut value = probe();
    while !done(&value) && started.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(200));
        value = probe();
    }
    value
}

#[test]
fn every_replica_serves_discovery_identity_tap_and_metrics() {
    let scratch = Scratch::new("kubernetes-ha");
    let (api, anchor) = cluster_api(&scratch);
    let token_file = scratch.path("api-token");
    std::fs::write(&token_file, API_TOKEN).unwrap();
    let replica_flags = [
        crate::cluster::identity_flags(),
        vec![
            "--api-token-file".to_string(),
            token_file.display().to_string(),
            "--scrape-interval".to_string(),
            "1s".to_string(),
        ],
    ]
    .concat();
    let replica_a = KubeController::start_with(&scratch, &api, "replica-a", &replica_flags);
    let replica_b = KubeController::start_with(&scratch, &api, "replica-b", &replica_flags);

    // The shop: Service web, its slice, the meshed pods web-1 and client,
    // each pod declaring where its proxy's admin and tap listeners are.
    let app = HttpTestServer::start();
    let app_port = app.addr().port();
    let (server_inbound, server_admin, server_tap) = (free_addr(), free_addr(), free_addr());
    let (client_admin, client_tap) = (free_addr(), free_addr());
    api.apply_yaml(&shop_yaml(
        app_port,
        &meshed_pod_with(
            "web-1",
            "web",
            app_port,
            &[
                ("INBOUND", server_inbound),
                ("ADMIN", server_admin),
                ("TAP", server_tap),
            ],
        ),
        &meshed_pod_with(
            "client",
            "client",
            free_addr().port(),
            &[("ADMIN", client_admin), ("TAP", client_tap)],
        ),
    ));

    // web-1's proxy is certified by A; the client's discovery is A's and its
    // certificate B's.
    let server = with_identity(
        ProxyProcess::builder()
            .inbound_addr(server_inbound)
            .inbound_forward(app.addr())
            .admin_addr(server_admin)
            .tap_addr(server_tap),
        &replica_a,
        &scratch,
        "web-1",
        &anchor,
    )
    .spawn();
    let client = with_identity(
        discovering_from(
            ProxyProcess::builder()
                .admin_addr(client_admin)
                .tap_addr(client_tap),
            replica_a.destination,
        ),
        &replica_b,
        &scratch,
        "client",
        &anchor,
    )
    .spawn();

    // Each replica describes its source as the Kubernetes API, valid.
    for replica in [&replica_a, &replica_b] {
        let (status, body) = api_get(replica.web, "/api/mesh");
        let mesh: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(status, 200, "{body}");
        assert_eq!(mesh["path"], "kubernetes", "{mesh}");
        assert_eq!(mesh["valid"], true, "{mesh}");
    }

    // Both replicas scrape web-1's proxy before any traffic, so the window
    // holds the whole count.
    for replica in [&replica_a, &replica_b] {
        let scraped = poll(
            || web_successes(replica.web),
            |found| matches!(found, Some((1, _))),
        );
        assert_eq!(scraped, Some((1, 0)), "{}", replica.log());
    }

    // 20 requests over mutual TLS: the server proxy saw the client's identity.
    let report = load::run(client.outbound_addr(), URL, 20, 2);
    assert_eq!(report.failures(), 0, "{:?}", report.summary());

    // The metrics API of either replica counts what the client counted:
    // at least the 20, and no more than Prometheus' `increase` extrapolates
    // to the window's edges (the first scrape is within a second of them).
    for replica in [&replica_a, &replica_b] {
        let counted = poll(
            || web_successes(replica.web),
            |found| matches!(found, Some((_, 20..))),
        );
        let (running, successes) = counted.expect("web-1's row");
        assert_eq!(running, 1, "{}", replica.log());
        assert!(
            (20..=30).contains(&successes),
            "{successes} successes for 20 requests\n{}",
            replica.log()
        );
        println!(
            "replica at {}: {successes} successes counted for 20 sent",
            replica.web
        );
    }

    // Tap through B while requests flow: B reaches the proxy on its own.
    let mut tap = Command::new("curl")
        .args(["-sSN", "--max-time", "8", "-H"])
        .arg(format!("Authorization: Bearer {API_TOKEN}"))
        .arg(format!(
            "http://{}/api/tap?kind=workload&namespace={NAMESPACE}&name=web-1",
            replica_b.web
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl runs");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        let echo = load::get(client.outbound_addr(), URL);
        assert_eq!(echo.status, Some(200), "{echo:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = tap.wait();
    let mut events = String::new();
    tap.stdout
        .take()
        .unwrap()
        .read_to_string(&mut events)
        .unwrap();
    let requests: Vec<Value> = events
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["type"] == "req")
        .collect();
    assert!(
        !requests.is_empty(),
        "no tapped request through B: {events}"
    );
    assert_eq!(requests[0]["dst"]["workload"], "web-1", "{}", requests[0]);

    // A second client: B's discovery, A's certificate.
    let second = with_identity(
        discovering_from(ProxyProcess::builder(), replica_b.destination),
        &replica_a,
        &scratch,
        "client",
        &anchor,
    )
    .spawn();
    let echo = load::get(second.outbound_addr(), URL);
    assert_eq!(echo.status, Some(200), "{echo:?}");
    let headers = HeadersEcho::from_json(std::str::from_utf8(&echo.body).unwrap()).unwrap();
    assert_eq!(headers.header("l5d-client-id"), Some(CLIENT_IDENTITY));
    drop((server, client, second));
}

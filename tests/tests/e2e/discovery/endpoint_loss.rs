//! An endpoint killed under load: requests whose connection to it was lost
//! before any response (refused, or closed under a pooled connection or
//! under a bodiless GET in flight) go to the other endpoint, so the clients
//! see no failure at all.
//!
//! ```text
//! 8 keep-alive clients ─GET─► weft-proxy ─┬─► web-1 (stays)
//!                                         └─► web-2 (killed mid-way: listener and
//!                                                    connections closed at once)
//! ```
//!
//! Meshed, the endpoint lost is a server proxy killed with SIGKILL, its
//! multiplexed HTTP/2 connection (mutual TLS) going down with it:
//!
//! ```text
//! clients ─► client proxy ══h2/mTLS══╦═► web-1 proxy ─► app
//!                                    ╚═► web-2 proxy (kill -9) ─► app
//! ```

use std::time::Duration;

use std::net::SocketAddr;

use weft_test_support::load::BackgroundLoad;
use weft_test_support::{
    Behavior, ControllerProcess, HttpTestServer, MeshFile, ProxyProcess, eventually, free_port,
};

use super::{NAMESPACE, failure_summary, meshed_proxy, wait_resolved, web_mesh, web_url};

#[test]
fn requests_to_a_killed_endpoint_go_to_the_other_one() {
    // 50 ms per request, like an app doing work: at the kill, about four
    // GETs are in flight on the doomed endpoint's connections.
    let app = || HttpTestServer::start_with(Behavior::new().delay(Duration::from_millis(50)));
    let survivor = app();
    let doomed = app();
    let controller = ControllerProcess::start(&web_mesh(&[&survivor, &doomed]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(proxy.outbound_addr(), &web_url("/"), 8, Duration::ZERO);
    traffic.wait_for_more(150, Duration::from_secs(20));
    eventually(Duration::from_secs(5), || doomed.requests_seen() > 0);
    let killed_at = traffic.completed();
    let doomed_served = doomed.requests_seen();
    drop(doomed);
    traffic.wait_for_more(250, Duration::from_secs(20));
    let report = traffic.stop();

    let after_kill = &report.outcomes[killed_at..];
    let failures = report.failures();
    println!(
        "endpoint killed after {killed_at} requests (it had served {doomed_served}): \
         {failures} of {} requests failed {:?}",
        report.total(),
        failure_summary(&report.outcomes)
    );
    assert_eq!(
        failures,
        0,
        "{failures} of {} failed ({} after the kill): {:?}",
        report.total(),
        after_kill.len(),
        failure_summary(&report.outcomes)
    );
}

/// `name.shop.serviceaccount.identity.weft.cluster.local`.
fn identity_of(workload: &str) -> String {
    format!("{workload}.{NAMESPACE}.serviceaccount.identity.weft.cluster.local")
}

#[test]
fn requests_to_a_killed_meshed_proxy_go_to_the_other_one() {
    let app = || HttpTestServer::start_with(Behavior::new().delay(Duration::from_millis(50)));
    let apps = [app(), app()];
    let inbound_ports = [free_port(), free_port()];
    let client_app: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut mesh = MeshFile::new().service(NAMESPACE, "web", &[("app", "web")]);
    for (index, (app, port)) in apps.iter().zip(inbound_ports).enumerate() {
        let name = format!("web-{}", index + 1);
        mesh = mesh.meshed_workload(NAMESPACE, &name, &[("app", "web")], app.addr(), port);
    }
    let mesh = mesh
        .meshed_workload(
            NAMESPACE,
            "client",
            &[("app", "client")],
            client_app,
            free_port(),
        )
        .render();
    let controller = ControllerProcess::start_with_identity(&mesh);
    let servers: Vec<ProxyProcess> = apps
        .iter()
        .zip(inbound_ports)
        .enumerate()
        .map(|(index, (app, port))| {
            let name = format!("web-{}", index + 1);
            let builder = ProxyProcess::builder()
                .inbound_addr(format!("127.0.0.1:{port}").parse().unwrap())
                .inbound_forward(app.addr());
            controller
                .proxy_identity(builder, NAMESPACE, &name, &identity_of(&name))
                .spawn()
        })
        .collect();
    let client = controller
        .proxy_identity(
            ProxyProcess::builder().env(
                "WEFT_PROXY_DESTINATION_SVC_ADDR",
                controller.destination_addr().to_string(),
            ),
            NAMESPACE,
            "client",
            &identity_of("client"),
        )
        .spawn();
    wait_resolved(&client, &web_url("/"));

    let traffic = BackgroundLoad::start(client.outbound_addr(), &web_url("/"), 8, Duration::ZERO);
    traffic.wait_for_more(150, Duration::from_secs(30));
    eventually(Duration::from_secs(5), || apps[1].requests_seen() > 0);
    let killed_at = traffic.completed();
    let status = std::process::Command::new("kill")
        .args(["-9", &servers[1].pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    traffic.wait_for_more(250, Duration::from_secs(30));
    let report = traffic.stop();

    let failures = report.failures();
    println!(
        "meshed proxy killed (-9) after {killed_at} requests: {failures} of {} requests failed {:?}",
        report.total(),
        failure_summary(&report.outcomes)
    );
    assert!(
        client.metric_or_zero("response_total", &[("tls", "true"), ("status_code", "200")]) > 0.0,
        "the requests crossed the mesh over mutual TLS"
    );
    assert_eq!(
        failures,
        0,
        "{failures} of {} failed: {:?}",
        report.total(),
        failure_summary(&report.outcomes)
    );
}

//! The admin server's endpoints answer as the contract says.

use weft_e2e::InProcessProxy;
use weft_test_support::{HttpTestServer, RunningProxy};

#[test]
fn admin_endpoints_answer() {
    let app = HttpTestServer::start();
    let proxy = InProcessProxy::builder()
        .inbound_forward(app.addr())
        .start();

    let ready = proxy.admin_get("/ready").expect("GET /ready");
    assert_eq!((ready.status, ready.body.trim()), (200, "ready"));
    let live = proxy.admin_get("/live").expect("GET /live");
    assert_eq!((live.status, live.body.trim()), (200, "live"));

    let config = proxy.admin_get("/config").expect("GET /config");
    assert_eq!(config.status, 200, "{}", config.body);
    for addr in [
        proxy.inbound_addr(),
        proxy.outbound_addr(),
        proxy.admin_addr(),
        app.addr(),
    ] {
        assert!(
            config.body.contains(&addr.to_string()),
            "/config does not show {addr}:\n{}",
            config.body
        );
    }

    let metrics = proxy.admin_get("/metrics").expect("GET /metrics");
    assert_eq!(metrics.status, 200);
    for family in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
    ] {
        assert!(
            proxy.metric(family, &[]).is_some(),
            "{family} missing from /metrics:\n{}",
            metrics.body
        );
    }
}

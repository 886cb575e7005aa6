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

use std::time::Duration;

use weft_test_support::load::BackgroundLoad;
use weft_test_support::{Behavior, ControllerProcess, HttpTestServer, eventually};

use super::{failure_summary, meshed_proxy, wait_resolved, web_mesh, web_url};

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

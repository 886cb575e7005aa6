//! Things changing under traffic: a backend dying, the mesh file gaining a
//! workload or a broken document, the controller restarting or starting late.

use std::time::{Duration, Instant};

use weft_test_support::load::{self, BackgroundLoad};
use weft_test_support::{Behavior, ControllerProcess, HttpTestServer, eventually};

use super::{
    assert_no_failures, failure_summary, meshed_proxy, received_since, seen, wait_resolved,
    web_mesh, web_url, with_workload,
};

#[test]
fn a_killed_backend_costs_few_requests_and_none_once_removed() {
    let survivors = [HttpTestServer::start(), HttpTestServer::start()];
    let doomed = HttpTestServer::start();
    let controller =
        ControllerProcess::start(&web_mesh(&[&survivors[0], &survivors[1], &doomed]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        4,
        Duration::from_millis(2),
    );
    traffic.wait_for_more(100, Duration::from_secs(10));
    eventually(Duration::from_secs(5), || doomed.requests_seen() > 0);

    // Killed mid-traffic: its listener and open connections go away.
    let killed_at = traffic.completed();
    let doomed_served = doomed.requests_seen();
    drop(doomed);
    traffic.wait_for_more(300, Duration::from_secs(20));

    // Then removed from the mesh file; once the controller has loaded the
    // edit and a second has passed for it to reach the proxy, nothing fails.
    controller.rewrite_mesh(&web_mesh(&[&survivors[0], &survivors[1]]).render());
    controller.wait_good_loads(2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_secs(1));
    let removed_at = traffic.completed();
    traffic.wait_for_more(300, Duration::from_secs(20));
    let report = traffic.stop();

    let while_dead = &report.outcomes[killed_at..removed_at];
    let dead_failures = while_dead.iter().filter(|o| !o.is_success()).count();
    let after = &report.outcomes[removed_at..];
    let after_failures = after.iter().filter(|o| !o.is_success()).count();
    println!(
        "killed backend (had served {doomed_served} of {killed_at}): {dead_failures} of {} \
         requests failed before its removal {:?}; {after_failures} of {} failed after",
        while_dead.len(),
        failure_summary(while_dead),
        after.len()
    );
    assert!(
        dead_failures * 20 <= while_dead.len(),
        "more than 5% failed while a backend was dead: {dead_failures} of {}: {:?}",
        while_dead.len(),
        failure_summary(while_dead)
    );
    assert_eq!(
        after_failures,
        0,
        "failures after the dead backend was removed: {:?}",
        failure_summary(after)
    );
}

#[test]
fn a_controller_restart_under_traffic_fails_nothing() {
    let backends = [HttpTestServer::start(), HttpTestServer::start()];
    let third = HttpTestServer::start();
    let mut controller =
        ControllerProcess::start(&web_mesh(&[&backends[0], &backends[1]]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        2,
        Duration::from_millis(5),
    );
    traffic.wait_for_more(50, Duration::from_secs(10));
    controller.kill();
    let down = Instant::now();
    traffic.wait_for_more(100, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    controller.restart();
    println!(
        "controller restart: down for {:?}, {} requests so far, {} failed",
        down.elapsed(),
        traffic.completed(),
        traffic.failures()
    );
    traffic.wait_for_more(100, Duration::from_secs(10));

    // The streams came back: an edit after the restart reaches the proxy.
    let edited = with_workload(
        web_mesh(&[&backends[0], &backends[1]]),
        "web-3",
        third.addr(),
    );
    controller.rewrite_mesh(&edited.render());
    let edited_at = Instant::now();
    let deadline = edited_at + Duration::from_secs(10);
    while third.requests_seen() == 0 {
        assert!(
            Instant::now() < deadline,
            "an endpoint added after the controller restart got no traffic within 10s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "controller restart: endpoint added after the restart used after {:?}",
        edited_at.elapsed()
    );
    let report = traffic.stop();
    println!(
        "controller restart: {} requests, {} failed",
        report.total(),
        report.failures()
    );
    assert_no_failures(&report, "controller restart");
}

#[test]
fn an_added_endpoint_is_used_within_a_second() {
    let first = HttpTestServer::start();
    let added = HttpTestServer::start();
    let controller = ControllerProcess::start(&web_mesh(&[&first]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        2,
        Duration::from_millis(2),
    );
    traffic.wait_for_more(20, Duration::from_secs(10));
    controller.rewrite_mesh(&web_mesh(&[&first, &added]).render());
    let edited = Instant::now();
    // The bound is 1 s; allow 2 s on a busy machine.
    let deadline = edited + Duration::from_secs(2);
    while added.requests_seen() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let used_after = edited.elapsed();
    let report = traffic.stop();
    println!(
        "added endpoint: first request after {used_after:?} ({} requests, {} failed)",
        report.total(),
        report.failures()
    );
    assert!(
        added.requests_seen() > 0,
        "the added endpoint got no request within 2s of the edit"
    );
    assert_no_failures(&report, "adding an endpoint");
}

#[test]
fn a_broken_mesh_edit_is_reported_and_traffic_continues() {
    let backends = [HttpTestServer::start(), HttpTestServer::start()];
    let backends: Vec<&HttpTestServer> = backends.iter().collect();
    let good = web_mesh(&backends).render();
    let controller = ControllerProcess::start(&good);
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let traffic = BackgroundLoad::start(
        proxy.outbound_addr(),
        &web_url("/"),
        2,
        Duration::from_millis(5),
    );
    traffic.wait_for_more(20, Duration::from_secs(10));
    let broken = format!(
        "{good}---\napiVersion: v1\nkind: Service\nmetadata: {{name: broken, namespace: shop}}\n\
         spec: {{ports: nope}}\n"
    );
    controller.rewrite_mesh(&broken);
    let deadline = Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let (status, ready) = controller.ready();
        if ready["mesh_file"]["current"] == false {
            assert_eq!(status, 200, "the last good version keeps serving: {ready}");
            break ready;
        }
        assert!(
            Instant::now() < deadline,
            "broken edit not reported: {ready}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let error = ready["mesh_file"]["last_error"]
        .as_str()
        .unwrap_or_default();
    println!("broken edit: controller reports {error:?}");
    assert!(error.contains("document 4"), "{ready}");
    assert_eq!(
        controller.metric("weft_controller_mesh_file_current", &[]),
        Some(0.0)
    );

    let before = seen(&backends);
    traffic.wait_for_more(200, Duration::from_secs(10));
    let report = traffic.stop();
    let received = received_since(&backends, &before);
    println!(
        "broken edit: {} requests, {} failed; backends received {received:?} after the edit",
        report.total(),
        report.failures()
    );
    assert_no_failures(&report, "broken edit");
    assert!(
        received.iter().all(|&n| n > 0),
        "both backends keep serving: {received:?}"
    );
}

#[test]
fn scaling_to_zero_fails_fast_and_scaling_back_recovers() {
    let backend = HttpTestServer::start();
    let controller = ControllerProcess::start(&web_mesh(&[&backend]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    controller.rewrite_mesh(&web_mesh(&[]).render());
    controller.wait_good_loads(2, Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    let failed = loop {
        let outcome = load::get(proxy.outbound_addr(), &web_url("/"));
        if !outcome.is_success() {
            break outcome;
        }
        assert!(
            Instant::now() < deadline,
            "still served 5s after its last workload was removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("scaled to zero: {failed:?}");
    assert_eq!(failed.status, Some(503), "{failed:?}");
    let reason = failed.proxy_error.as_deref().unwrap_or_default();
    assert!(reason.contains("fail-fast"), "{failed:?}");

    let restored = Instant::now();
    controller.rewrite_mesh(&web_mesh(&[&backend]).render());
    wait_resolved(&proxy, &web_url("/"));
    println!("scaled back: served again after {:?}", restored.elapsed());
    assert!(
        restored.elapsed() < Duration::from_secs(5),
        "served again only after {:?}",
        restored.elapsed()
    );
}

#[test]
fn a_proxy_started_before_its_controller_is_routed_once_it_is_up() {
    let backend = HttpTestServer::start();
    let mut controller = ControllerProcess::start(&web_mesh(&[&backend]).render());
    controller.kill();
    let proxy = meshed_proxy(&controller);

    // No answer within the initial timeout: the name goes to DNS, which
    // does not know it.
    let early = load::get(proxy.outbound_addr(), &web_url("/"));
    println!("controller down: {early:?}");
    assert!(!early.is_success(), "{early:?}");

    controller.restart();
    let up = Instant::now();
    let sent = wait_resolved(&proxy, &web_url("/"));
    println!(
        "controller up: routed after {:?} ({sent} requests)",
        up.elapsed()
    );
    assert!(backend.requests_seen() > 0);
}

#[test]
fn a_request_in_flight_finishes_when_its_endpoint_is_removed() {
    let slow = HttpTestServer::start_with(Behavior::new().delay(Duration::from_millis(1500)));
    let controller = ControllerProcess::start(&web_mesh(&[&slow]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));

    let outbound = proxy.outbound_addr();
    let in_flight = std::thread::spawn(move || load::get(outbound, &web_url("/")));
    let before = slow.requests_seen();
    eventually(Duration::from_secs(1), || slow.requests_seen() > before);
    controller.rewrite_mesh(&web_mesh(&[]).render());
    controller.wait_good_loads(2, Duration::from_secs(1));
    let outcome = in_flight.join().expect("client thread");
    println!("in flight while its endpoint was removed: {outcome:?}");
    assert!(outcome.is_success(), "{outcome:?}");
}

#[test]
fn a_profile_edit_applies_to_the_next_requests() {
    let backend = HttpTestServer::start();
    let controller = ControllerProcess::start(&web_mesh(&[&backend]).render());
    let proxy = meshed_proxy(&controller);
    wait_resolved(&proxy, &web_url("/"));
    let before = load::get(proxy.outbound_addr(), &web_url("/slow/300"));
    assert_eq!(before.status, Some(200), "{before:?}");

    let profile =
        "  routes:\n  - name: slow\n    condition: {pathRegex: /slow/.*}\n    timeout: 100ms\n";
    let edited = web_mesh(&[&backend]).profile("shop", "web", profile);
    controller.rewrite_mesh(&edited.render());
    let edited_at = Instant::now();
    let deadline = edited_at + Duration::from_secs(3);
    loop {
        let outcome = load::get(proxy.outbound_addr(), &web_url("/slow/300"));
        if outcome.status == Some(504) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new route's timeout not applied 3s after the edit: {outcome:?}"
        );
    }
    println!(
        "profile edit: route timeout applied after {:?}",
        edited_at.elapsed()
    );
    let other = load::get(proxy.outbound_addr(), &web_url("/"));
    assert_eq!(other.status, Some(200), "{other:?}");
}

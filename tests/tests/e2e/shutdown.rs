//! Graceful shutdown: SIGTERM or `POST /shutdown` lets in-flight requests
//! finish, then the process exits 0 within the grace period.

use std::time::Duration;

use weft_e2e::{CurlOutput, finish_curl, spawn_curl};
use weft_test_support::{HttpTestServer, ProxyProcess, eventually};

use crate::{proxy_arg, url};

/// The proxy's grace period in these tests.
const GRACE: &str = "5s";
/// Longest wait for the exit: grace period plus slack for a loaded machine.
const EXIT_WAIT: Duration = Duration::from_secs(20);

/// The in-flight requests all complete with 200, then the proxy exits 0
/// within the grace period (plus slack) after `trigger`.
fn assert_drained_and_exited(
    proxy: &mut ProxyProcess,
    running: Vec<(std::process::Child, std::path::PathBuf)>,
    trigger: &str,
) {
    let results: Vec<CurlOutput> = running
        .into_iter()
        .map(|(child, dir)| finish_curl(child, dir))
        .collect();
    assert_all_completed(&results);
    let status = proxy
        .wait_exit(EXIT_WAIT)
        .unwrap_or_else(|| panic!("weft-proxy still running after {trigger}"));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after {trigger}: {status}\n{}",
        proxy.log()
    );
}

/// Starts `inbound` + `outbound` `/slow/1500` requests and waits until the app has them all.
fn start_slow_requests(
    app: &HttpTestServer,
    proxy: &ProxyProcess,
    inbound: usize,
    outbound: usize,
) -> Vec<(std::process::Child, std::path::PathBuf)> {
    let before = app.requests_seen();
    let mut running = Vec::new();
    for _ in 0..inbound {
        running.push(spawn_curl(&[&url(proxy.inbound_addr(), "/slow/1500")]));
    }
    for _ in 0..outbound {
        running.push(spawn_curl(&[
            "-x",
            &proxy_arg(proxy),
            &url(app.addr(), "/slow/1500"),
        ]));
    }
    let total = (inbound + outbound) as u64;
    eventually(Duration::from_secs(15), || {
        app.requests_seen() >= before + total
    });
    running
}

fn assert_all_completed(results: &[CurlOutput]) {
    for out in results {
        assert_eq!(
            (out.exit_code, out.http_code, out.body_text().as_str()),
            (0, 200, "slept 1500ms\n"),
            "an in-flight request did not complete during shutdown: {}",
            out.stderr
        );
    }
}

fn slow_proxy(app: &HttpTestServer) -> ProxyProcess {
    ProxyProcess::builder()
        .inbound_forward(app.addr())
        .env("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", GRACE)
        .spawn()
}

/// While requests are still in flight, `/ready` must turn into a 503 (not
/// stay 200, and not vanish before the drain is over).
fn assert_not_ready_while_draining(
    proxy: &ProxyProcess,
    running: &mut [(std::process::Child, std::path::PathBuf)],
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let still_in_flight = running
            .iter_mut()
            .any(|(c, _)| c.try_wait().ok().flatten().is_none());
        match proxy.admin_get("/ready") {
            Ok(r) if r.status == 503 => return,
            Ok(r) if r.status == 200 && still_in_flight && std::time::Instant::now() < deadline => {
            }
            other => panic!(
                "expected `503 not ready` from /ready while draining (requests in flight: {still_in_flight}), got {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let app = HttpTestServer::start();
    let mut proxy = slow_proxy(&app);
    let mut running = start_slow_requests(&app, &proxy, 3, 3);
    proxy.sigterm();
    assert_not_ready_while_draining(&proxy, &mut running);
    // Draining: a new request is not served.
    let late = weft_e2e::curl(&["--max-time", "5", &url(proxy.inbound_addr(), "/")]);
    assert_ne!(
        late.http_code, 200,
        "a new connection was served after SIGTERM: {late:?}"
    );
    assert_drained_and_exited(&mut proxy, running, "SIGTERM");
}

#[test]
fn post_shutdown_drains_in_flight_requests_and_exits_zero() {
    let app = HttpTestServer::start();
    let mut proxy = slow_proxy(&app);
    let running = start_slow_requests(&app, &proxy, 2, 2);
    let response = proxy.admin_post("/shutdown").expect("POST /shutdown");
    assert!(
        (200..300).contains(&response.status),
        "POST /shutdown answered {response:?}"
    );
    assert_drained_and_exited(&mut proxy, running, "POST /shutdown");
}

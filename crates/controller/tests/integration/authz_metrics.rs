//! Allowed and denied requests in `/api/stat`: the real controller scrapes
//! two stand-ins for proxy admin endpoints ([`MetricsTarget`]): `guarded`
//! serves linkerd2-proxy's exact inbound authorization counters
//! (`inbound_{http,tcp}_authz_{allow,deny}_total` with their Server, route
//! and authorization labels), `plain` serves response counters and no
//! authorization counters at all (a proxy without policy).
//!
//! ```text
//! MetricsTarget guarded (authz counters) ◄─┐
//! MetricsTarget plain (response_total)   ◄─┴─ weft-controller scrapes (1 s) ◄── GET /api/stat
//!                                          └─ or Prometheus (/api/sd, 1 s) ◄── --prometheus-url
//! ```
//!
//! The counters start at zero (the baseline) and then jump once, so the
//! window's increase settles at exactly the jump (both backends extrapolate
//! to the window's end as Prometheus does: the test polls until it reads
//! the exact figures).

use std::time::{Duration, Instant};

use serde_json::Value;
use weft_api::StatResponse;
use weft_test_support::metrics_target::{MetricsTarget, authz_text};
use weft_test_support::{ControllerProcess, MeshFile, free_port};

use crate::mesh::{NAMESPACE, workload_yaml};
use crate::metrics_api::{PROMETHEUS, Prometheus};

/// How long the controller may take to scrape and answer.
const PATIENCE: Duration = Duration::from_secs(40);

/// A proxy's response counter, with no authorization counters.
fn plain_text(responses: u64) -> String {
    format!(
        "# TYPE response_total counter\n\
         response_total{{direction=\"inbound\",authority=\"plain.demo.svc.cluster.local:80\",tls=\"true\",\
         status_code=\"200\",classification=\"success\"}} {responses}\n"
    )
}

fn stat(controller: &ControllerProcess, query: &str) -> StatResponse {
    let response = controller.web_get(&format!("/api/stat?{query}")).unwrap();
    assert_eq!(response.status, 200, "{query}: {}", response.body);
    // Strictly (the `strict` feature): a field on one side only fails here.
    serde_json::from_str(&response.body).unwrap_or_else(|error| {
        panic!("{query}: {error}: {}", response.body);
    })
}

/// Polls `/api/stat?{query}` until `accept` takes the answer.
fn stat_until(
    controller: &ControllerProcess,
    query: &str,
    accept: impl Fn(&StatResponse) -> bool,
) -> StatResponse {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = stat(controller, query);
        if accept(&answer) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{query}: not seen within {PATIENCE:?}: {answer:#?}\n--- controller log ---\n{}",
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn counts(answer: &StatResponse, name: &str) -> Option<(Option<u64>, Option<u64>)> {
    let row = answer.rows.iter().find(|row| row.name == name)?;
    Some((row.authz_allowed, row.authz_denied))
}

#[test]
fn stat_sums_allowed_and_denied_per_workload_and_namespace() {
    let guarded = MetricsTarget::start(&authz_text(0, 0, 0));
    let plain = MetricsTarget::start(&plain_text(0));
    let controller = ControllerProcess::start_with_args(
        &mesh_file(&guarded, &plain),
        &["--scrape-interval", "1s"],
    );
    check_stat(&controller, &guarded, &plain);
}

#[test]
fn with_prometheus_the_same_counts() {
    if !std::path::Path::new(PROMETHEUS).is_file() {
        println!("SKIPPED: {PROMETHEUS} is absent (Debian package `prometheus`; CI installs it)");
        return;
    }
    let guarded = MetricsTarget::start(&authz_text(0, 0, 0));
    let plain = MetricsTarget::start(&plain_text(0));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let controller = ControllerProcess::start_with_args(
        &mesh_file(&guarded, &plain),
        &["--prometheus-url", &url],
    );
    let _prometheus = Prometheus::start(port, controller.web_addr());
    check_stat(&controller, &guarded, &plain);
}

fn mesh_file(guarded: &MetricsTarget, plain: &MetricsTarget) -> String {
    MeshFile::new()
        .document(&workload_yaml(
            "guarded",
            "guarded",
            0,
            guarded.proxy_ports(),
        ))
        .document(&workload_yaml("plain", "plain", 0, plain.proxy_ports()))
        .render()
}

/// Waits for two scrapes of both targets (the baseline), makes guarded's
/// counters jump, and checks `/api/stat`'s rows.
fn check_stat(controller: &ControllerProcess, guarded: &MetricsTarget, plain: &MetricsTarget) {
    let deadline = Instant::now() + PATIENCE;
    while guarded.scrapes() < 2 || plain.scrapes() < 2 {
        assert!(Instant::now() < deadline, "{}", controller.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // 40 requests allowed, 7 denied, 1 TCP connection denied.
    guarded.set_text(&authz_text(40, 7, 1));
    plain.set_text(&plain_text(25));

    let workloads = format!("kind=workload&namespace={NAMESPACE}");
    let answer = stat_until(controller, &workloads, |answer| {
        counts(answer, "guarded") == Some((Some(40), Some(8)))
    });
    // No authorization counters: unknown, not zero.
    let plain_row = answer.rows.iter().find(|row| row.name == "plain").unwrap();
    assert_eq!(
        (plain_row.authz_allowed, plain_row.authz_denied),
        (None, None),
        "{answer:#?}"
    );
    // The JSON carries them as numbers and nulls.
    let response = controller
        .web_get(&format!("/api/stat?{workloads}"))
        .unwrap();
    let body: Value = serde_json::from_str(&response.body).unwrap();
    let rows = body["rows"].as_array().unwrap();
    let plain_json = rows.iter().find(|row| row["name"] == "plain").unwrap();
    assert_eq!(plain_json["authz_denied"], Value::Null);

    // The namespace sums its workloads.
    stat_until(controller, "kind=namespace", |answer| {
        counts(answer, NAMESPACE) == Some((Some(40), Some(8)))
    });
    // One workload by name.
    let one = stat(
        controller,
        &format!("kind=workload&namespace={NAMESPACE}&name=guarded"),
    );
    assert_eq!(one.rows.len(), 1, "{one:#?}");
    // Views the counters cannot answer (outbound, authorities): unknown.
    let outbound = stat(
        controller,
        &format!("kind=workload&namespace={NAMESPACE}&to=workload/{NAMESPACE}/guarded"),
    );
    assert!(
        outbound
            .rows
            .iter()
            .all(|row| row.authz_allowed.is_none() && row.authz_denied.is_none()),
        "{outbound:#?}"
    );
    let authorities = stat(controller, "kind=authority");
    assert!(
        authorities
            .rows
            .iter()
            .all(|row| row.authz_denied.is_none()),
        "{authorities:#?}"
    );
}

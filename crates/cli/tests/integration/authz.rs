//! Authorization as users see it, against the fake API of `fake_api.rs`:
//! `weft authz` (its query, table, JSON and errors) and `weft stat`'s
//! DENIED column and `authz_*` fields; and `weft stat` against a real
//! controller scraping a stand-in proxy admin endpoint that serves
//! linkerd2-proxy's exact authorization counters
//! (`weft_test_support::metrics_target`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_api::{AuthzEntry, AuthzResponse, PortAuthz, ResourceKind, StatResponse, StatRow};

use weft_test_support::metrics_target::{MetricsTarget, authz_text};
use weft_test_support::{ControllerProcess, MeshFile, bin_path};

use super::fake_api::{FakeApi, stderr, stdout, weft};

/// web: a Server on 8080 admitting traffic's identity, and the default
/// policy (`deny`, from the workload's annotation) on 9090.
fn web_policy() -> AuthzResponse {
    AuthzResponse {
        namespace: "demo".into(),
        workload: "web".into(),
        default_policy: "deny".into(),
        ports: vec![
            PortAuthz {
                port: 8080,
                port_name: Some("http".into()),
                server: Some("web-http".into()),
                protocol: "http1".into(),
                authorizations: vec![AuthzEntry {
                    kind: "AuthorizationPolicy".into(),
                    name: "web-clients".into(),
                    route: None,
                    clients: vec![
                        "identity traffic.demo.serviceaccount.identity.weft.cluster.local".into(),
                    ],
                }],
                routes: Vec::new(),
            },
            PortAuthz {
                port: 9090,
                port_name: None,
                server: None,
                protocol: "detect".into(),
                authorizations: Vec::new(),
                routes: Vec::new(),
            },
        ],
    }
}

#[test]
fn authz_prints_one_line_per_authorization() {
    let fake = FakeApi::start();
    fake.set_json("/api/authz", &web_policy());
    // No -n: the namespace is the only one web is in (/api/workloads).
    let output = weft(&fake, &["authz", "web"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        fake.seen("/api/authz")[0].0,
        "/api/authz?namespace=demo&workload=web"
    );
    let text = stdout(&output);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            vec!["PORT", "SERVER", "ROUTE", "AUTHORIZATION", "CLIENTS"],
            vec![
                "8080/http",
                "web-http",
                "*",
                "authorizationpolicy/web-clients",
                "identity",
                "traffic.demo.serviceaccount.identity.weft.cluster.local"
            ],
            vec!["9090", "default:deny", "-", "-", "-"],
        ],
        "{text}"
    );

    let json = weft(
        &fake,
        &["authz", "workload/web", "-n", "demo", "-o", "json"],
    );
    assert!(json.status.success(), "{}", stderr(&json));
    let document: AuthzResponse = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document, web_policy());
}

#[test]
fn authz_of_an_unknown_workload_says_so() {
    let fake = FakeApi::start();
    // Not in /api/workloads: the namespace cannot be found.
    let output = weft(&fake, &["authz", "nosuch"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot tell the namespace of workload/nosuch: not found"),
        "{}",
        stderr(&output)
    );
    // With -n, the controller's 404 message.
    fake.set(
        "/api/authz",
        404,
        r#"{"error": "no workload demo/nosuch"}"#.into(),
    );
    let output = weft(&fake, &["authz", "nosuch", "-n", "demo"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "weft: no workload demo/nosuch\n");
    assert_eq!(stdout(&output), "");
    // Not a workload.
    let output = weft(&fake, &["authz", "svc/web"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("weft authz takes a workload"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn authz_when_the_controller_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let output = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args([
            "authz",
            "web",
            "-n",
            "demo",
            "--api-addr",
            &addr.to_string(),
        ])
        .env(
            "WEFT_STATE_DIR",
            std::env::temp_dir().join("weft-cli-nowhere"),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("cannot reach the weft controller's API at")
            && text.contains("is `weft up` running?"),
        "{text}"
    );
}

/// `weft stat wl -n demo -o json`'s rows.
fn json_rows(fake: &FakeApi) -> Value {
    let output = weft(fake, &["stat", "wl", "-n", "demo", "-o", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// traffic (no authorization counters) and web, which denied 7 requests.
fn denying_stat() -> StatResponse {
    let row = |name: &str, allowed: Option<u64>, denied: Option<u64>| StatRow {
        kind: ResourceKind::Workload,
        namespace: "demo".into(),
        name: name.into(),
        meshed: Some(1),
        running: Some(1),
        success: 42,
        failure: 0,
        success_rate: Some(1.0),
        rps: Some(0.7),
        latency_ms: None,
        tcp_connections: Some(1),
        read_bytes_per_sec: None,
        write_bytes_per_sec: None,
        authz_allowed: allowed,
        authz_denied: denied,
    };
    StatResponse {
        window_seconds: 60,
        rows: vec![row("traffic", None, None), row("web", Some(42), Some(7))],
    }
}

#[test]
fn stat_shows_denials() {
    let fake = FakeApi::start();
    // The healthy mesh's rows have no authorization counters: no DENIED
    // (the table Linkerd prints), but wide has it, and JSON says null.
    let plain = weft(&fake, &["stat", "wl", "-n", "demo"]);
    assert!(!stdout(&plain).contains("DENIED"), "{}", stdout(&plain));
    let wide = weft(&fake, &["stat", "wl", "-n", "demo", "-o", "wide"]);
    let header = stdout(&wide);
    assert!(
        header.contains("TCP_CONN   DENIED   READ_BYTES/SEC"),
        "{header}"
    );
    let rows = json_rows(&fake);
    assert_eq!(rows[1]["authz_denied"], Value::Null);
    // A controller without the fields (older): the same.
    let mut old: Value = serde_json::to_value(denying_stat()).unwrap();
    for row in old["rows"].as_array_mut().unwrap() {
        let row = row.as_object_mut().unwrap();
        row.remove("authz_allowed");
        row.remove("authz_denied");
    }
    fake.set("/api/stat", 200, old.to_string());
    assert_eq!(json_rows(&fake)[1]["authz_denied"], Value::Null);

    fake.set_json("/api/stat", &denying_stat());
    let rows = json_rows(&fake);
    assert_eq!(
        (&rows[1]["authz_allowed"], &rows[1]["authz_denied"]),
        (&Value::from(42), &Value::from(7))
    );
    let table = weft(&fake, &["stat", "wl", "-n", "demo"]);
    let text = stdout(&table);
    let cells: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(cells[0].last(), Some(&"DENIED"), "{text}");
    assert_eq!(
        (cells[1][0], cells[1].last()),
        ("traffic", Some(&"-")),
        "{text}"
    );
    assert_eq!(
        (cells[2][0], cells[2].last()),
        ("web", Some(&"7")),
        "{text}"
    );
}

#[test]
fn stat_shows_a_real_controllers_denials() {
    let guarded = MetricsTarget::start(&authz_text(0, 0, 0));
    let workload = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: guarded\n  namespace: demo\n\
         spec:\n  serviceAccount: guarded\n  addresses: [127.0.0.1]\n  meshed: true\n  proxy: {}\n",
        guarded.proxy_ports().mesh_yaml()
    );
    let mesh = MeshFile::new().document(&workload).render();
    let controller = ControllerProcess::start_with_args(&mesh, &["--scrape-interval", "1s"]);
    let deadline = Instant::now() + Duration::from_secs(40);
    while guarded.scrapes() < 2 {
        assert!(Instant::now() < deadline, "{}", controller.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // 12 requests allowed, 5 denied, no TCP connection denied.
    guarded.set_text(&authz_text(12, 5, 0));
    let stat = |args: &[&str]| {
        Command::new(bin_path("weft"))
            .args(args)
            .env("WEFT_API_ADDR", controller.web_addr().to_string())
            .env(
                "WEFT_STATE_DIR",
                std::env::temp_dir().join("weft-cli-nowhere"),
            )
            .output()
            .unwrap()
    };
    loop {
        let output = stat(&["stat", "wl", "-n", "demo"]);
        let text = stdout(&output);
        let cells: Vec<Vec<&str>> = text
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        if cells.len() == 2 && cells[0].last() == Some(&"DENIED") && cells[1].last() == Some(&"5") {
            assert_eq!(cells[1][0], "guarded", "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no DENIED 5 within 40s:\n{text}{}\n--- controller log ---\n{}",
            stderr(&output),
            controller.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // JSON: the same figure (polled too: the controller extrapolates the
    // increase to the window's end as Prometheus does, so a figure read
    // just before a scrape can be a little higher).
    loop {
        let json = stat(&["stat", "wl", "-n", "demo", "-o", "json"]);
        let rows: Value = serde_json::from_slice(&json.stdout).unwrap_or(Value::Null);
        if rows[0]["authz_denied"] == 5 {
            assert!(
                rows[0]["authz_allowed"]
                    .as_u64()
                    .is_some_and(|allowed| allowed >= 12)
            );
            break;
        }
        assert!(Instant::now() < deadline, "{rows:#}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

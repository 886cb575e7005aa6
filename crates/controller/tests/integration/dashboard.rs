//! The dashboard in a real browser: headless Chromium (Debian's `chromium`)
//! driven by `chromedriver` over WebDriver's HTTP JSON protocol, against a
//! real controller, real proxies and traffic ([`crate::mesh::DemoMesh`]).
//!
//! ```text
//! test ──WebDriver (HTTP JSON)──► chromedriver ──► chromium --headless
//!                                                      │ GET / , /api/* , /api/tap (NDJSON)
//!                                                      ▼
//!                                   weft-controller ◄── proxies ◄── traffic
//! ```
//!
//! Checks: the page loads from the controller (no external resources), the
//! workloads table shows the demo's workloads with non-zero RPS, the
//! topology draws the traffic → web edge, a tap session on the workload
//! page shows live request rows; a wrong Host header is refused; the
//! Denied column shows `/api/stat`'s `authz_denied` and the "Denied
//! requests" panel lists the workloads with denials (a controller scraping
//! stand-in proxy admin endpoints that serve the authorization counters).
//! Screenshots are saved under `$CARGO_TARGET_TMPDIR` and their paths
//! printed.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/run`
//! installs the `chromium` and `chromium-driver` packages); override with
//! `WEFT_TEST_CHROMIUM` / `WEFT_TEST_CHROMEDRIVER`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::mesh::{DemoMesh, NAMESPACE, workload_yaml};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use weft_test_support::metrics_target::{MetricsTarget, authz_text};
use weft_test_support::{ControllerProcess, MeshFile, free_addr};

/// Bound for the page to show what the test waits for (scrapes every 1 s,
/// rates need two samples, the page polls every 3 s).
const PATIENCE: Duration = Duration::from_secs(45);

fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

/// A chromedriver child process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    address: SocketAddr,
    session: String,
}

impl Browser {
    async fn start() -> Self {
        let address = free_addr();
        let driver_path = program("WEFT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let driver = Command::new(&driver_path)
            .arg(format!("--port={}", address.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {driver_path}: {error}"));
        let mut browser = Self {
            driver,
            address,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(address).await.is_ok() {
                let (status, body) = browser.call("GET", "/status", None).await;
                if status == 200 && body["value"]["ready"] == true {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": program("WEFT_TEST_CHROMIUM", "/usr/bin/chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1100"],
            },
        }}});
        let (status, body) = browser.call("POST", "/session", Some(capabilities)).await;
        assert_eq!(status, 200, "new session: {body}");
        browser.session = body["value"]["sessionId"].as_str().unwrap().to_string();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        crate::mesh::json_request(self.address, method, path, body).await
    }

    async fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let (status, body) = self.call(method, &path, body).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn run(&self, script: &str) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// Polls `script` until `accept` says yes; the last value.
    async fn wait_for(&self, what: &str, script: &str, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.run(script).await;
            if accept(&value) {
                return value;
            }
            if Instant::now() >= deadline {
                let page = self
                    .run("return document.getElementById('main').innerText")
                    .await;
                let path = self.screenshot("failure").await;
                panic!(
                    "{what}: not seen within {PATIENCE:?}; last value {value}; screenshot {}; page:\n{}",
                    path.display(),
                    page.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Saves a PNG of the window; its path.
    async fn screenshot(&self, name: &str) -> PathBuf {
        let value = self.session_call("GET", "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap())
            .unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let dir =
            PathBuf::from(option_env!("CARGO_TARGET_TMPDIR").unwrap_or(env!("CARGO_MANIFEST_DIR")));
        let path = dir.join(format!("dashboard-{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Ends the browser; chromedriver is killed just after.
            let address = self.address;
            let path = format!("/session/{}", self.session);
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        crate::mesh::json_request(address, "DELETE", &path, None),
                    )
                    .await;
                });
            })
            .join();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Polls until the page's Denied cell of `workload` (`NS/NAME`) shows what
/// `/api/stat` says (`-` for `null`), both read in the same turn: the
/// figures move with the window. The figure.
async fn denied_cell_matches_the_api(browser: &Browser, web: SocketAddr, workload: &str) -> Value {
    let script = format!(
        "const cell = document.querySelector('#workloads tr[data-workload=\"{workload}\"] td.denied'); \
         return cell ? cell.textContent : null"
    );
    let (namespace, name) = workload.split_once('/').unwrap();
    let path = format!("/api/stat?kind=workload&namespace={namespace}&name={name}&window=1m");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let shown = browser.run(&script).await;
        let (status, answer) = crate::mesh::json_request(web, "GET", &path, None).await;
        assert_eq!(status, 200, "{answer}");
        let figure = answer["rows"][0]["authz_denied"].clone();
        let expected = match &figure {
            Value::Null => "-".to_string(),
            number => number.to_string(),
        };
        if shown.as_str() == Some(expected.as_str()) {
            return figure;
        }
        assert!(
            Instant::now() < deadline,
            "{workload}'s Denied cell {shown} never matched the API's {figure}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn number_in(value: &Value) -> f64 {
    value
        .as_str()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_shows_live_workloads_topology_and_tap() {
    let demo = tokio::task::spawn_blocking(|| DemoMesh::start("dashboard"))
        .await
        .unwrap();
    let web = demo.web_addr();

    // DNS rebinding: only loopback Host names are answered.
    let response = crate::mesh::request(web, "GET", "/", &[("host", "evil.example")], None).await;
    assert_eq!(response.status(), 403);
    let response = crate::mesh::request(web, "GET", "/", &[], None).await;
    assert_eq!(response.status(), 200);
    let page = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&page).contains("/assets/app.js"));

    let browser = Browser::start().await;
    let base = format!("http://localhost:{}/", web.port());
    browser.open(&format!("{base}#token={}", demo.token)).await;

    // The overview: both workloads, web serving a non-zero rate.
    let rps = browser
        .wait_for(
            "demo/web with non-zero RPS",
            "const cell = document.querySelector('tr[data-workload=\"demo/web\"] td.rps'); \
             return cell ? cell.textContent : null",
            |value| number_in(value) > 0.0,
        )
        .await;
    println!("demo/web rps on the page: {rps}");
    let denied = denied_cell_matches_the_api(&browser, web, "demo/web").await;
    println!("demo/web denied on the page and in the API: {denied}");
    browser
        .wait_for(
            "demo/traffic listed",
            "return !!document.querySelector('tr[data-workload=\"demo/traffic\"]')",
            |value| value == true,
        )
        .await;
    browser
        .wait_for(
            "the traffic -> web edge in the topology",
            "return !!document.querySelector('[data-edge=\"demo/traffic->demo/web\"]')",
            |value| value == true,
        )
        .await;
    browser
        .wait_for(
            "namespace demo listed",
            "return !!document.querySelector('tr[data-namespace=\"demo\"]')",
            |value| value == true,
        )
        .await;
    // The token left the address bar once stored.
    let hash = browser.run("return location.hash").await;
    assert_eq!(hash, "#/");
    browser.screenshot("overview").await;

    // The workload page: a tap session shows live requests.
    browser.open(&format!("{base}#/workloads/demo/web")).await;
    browser
        .wait_for(
            "the workload page",
            "return !!document.getElementById('tap-start')",
            |value| value == true,
        )
        .await;
    browser
        .run("document.getElementById('tap-start').click(); return true")
        .await;
    let rows = browser
        .wait_for(
            "tap rows with a response",
            "return [...document.querySelectorAll('#tap-rows tr.tap-row')]\
               .filter(row => row.querySelector('.status-code').textContent.trim() !== '')\
               .map(row => [row.dataset.proxy, row.querySelector('.src').textContent,\
                            row.querySelector('.dst').textContent, row.querySelector('.method').textContent,\
                            row.querySelector('.status-code').textContent.trim()])",
            |value| value.as_array().is_some_and(|rows| rows.len() >= 3),
        )
        .await;
    for row in rows.as_array().unwrap() {
        assert_eq!(
            row,
            &json!(["in", "demo/traffic", "demo/web", "GET", "200"]),
            "{rows}"
        );
    }
    let status = browser
        .run("return document.getElementById('tap-status').dataset.state")
        .await;
    assert_eq!(status, "streaming");
    let path = browser.screenshot("workload-tap").await;
    assert!(std::fs::metadata(&path).unwrap().len() > 10_000);

    // The topology page draws the same edge.
    browser.open(&format!("{base}#/topology")).await;
    browser
        .wait_for(
            "the topology page's edge",
            "return !!document.querySelector('#topology [data-edge=\"demo/traffic->demo/web\"]')",
            |value| value == true,
        )
        .await;
    browser.screenshot("topology").await;

    // The certificates page lists each proxy's leaf.
    browser.open(&format!("{base}#/identity")).await;
    browser
        .wait_for(
            "web's certificate expiry",
            "const cell = document.querySelector('#certificates tr[data-workload=\"demo/web\"] td.expiry'); \
             return cell ? cell.textContent : ''",
            |value| value.as_str().is_some_and(|text| text.contains("in ")),
        )
        .await;
    browser.screenshot("certificates").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_shows_denied_requests() {
    // guarded: 30 requests allowed, 6 denied, 1 TCP connection denied once
    // the controller has its baseline; plain: no authorization counters.
    let guarded = MetricsTarget::start(&authz_text(0, 0, 0));
    let plain = MetricsTarget::start(
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1\n",
    );
    let mesh = MeshFile::new()
        .document(&workload_yaml(
            "guarded",
            "guarded",
            0,
            guarded.proxy_ports(),
        ))
        .document(&workload_yaml("plain", "plain", 0, plain.proxy_ports()))
        .render();
    let controller = tokio::task::spawn_blocking(move || {
        ControllerProcess::start_with_args(&mesh, &["--scrape-interval", "1s"])
    })
    .await
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while guarded.scrapes() < 2 {
        assert!(Instant::now() < deadline, "{}", controller.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    guarded.set_text(&authz_text(30, 6, 1));
    let web = controller.web_addr();

    let browser = Browser::start().await;
    browser
        .open(&format!("http://localhost:{}/", web.port()))
        .await;
    browser
        .wait_for(
            "demo/guarded with denials",
            "const cell = document.querySelector('#workloads tr[data-workload=\"demo/guarded\"] td.denied'); \
             return cell ? cell.textContent : null",
            |value| number_in(value) > 0.0,
        )
        .await;
    let denied = denied_cell_matches_the_api(&browser, web, &format!("{NAMESPACE}/guarded")).await;
    assert!(
        denied.as_u64().is_some_and(|denied| denied >= 7),
        "{denied}"
    );
    // No counters: `-`, and not in the panel.
    let unknown = denied_cell_matches_the_api(&browser, web, &format!("{NAMESPACE}/plain")).await;
    assert_eq!(unknown, Value::Null);
    let panel = browser
        .wait_for(
            "the Denied requests panel",
            "return [...document.querySelectorAll('#denied tbody tr')]\
               .map(row => [row.dataset.workload, row.querySelector('td.denied').textContent])",
            |value| value.as_array().is_some_and(|rows| rows.len() == 1),
        )
        .await;
    assert_eq!(panel[0][0], "demo/guarded", "{panel}");
    assert!(number_in(&panel[0][1]) >= 7.0, "{panel}");
    // The namespace row sums its workloads.
    browser
        .wait_for(
            "namespace demo with denials",
            "const cell = document.querySelector('#namespaces tr[data-namespace=\"demo\"] td.denied'); \
             return cell ? cell.textContent : null",
            |value| number_in(value) > 0.0,
        )
        .await;
    browser.screenshot("denied").await;
}

//! `weft up -f mesh.yaml` end to end: the real `weft` runs a real
//! controller and, for two workloads, a `weft-demo books` app and a
//! `weft-proxy` each; a request from one workload's proxy reaches the other
//! by service name; a killed app comes back; Ctrl-C stops every process.
//! A taken port is reported by name before anything starts.
//!
//! The `examples/` mesh files run as they are: proxy ports allocated by
//! `weft up` (and kept across restarts), apps started after what they
//! depend on, a plain `curl` app meshed through `http_proxy`, a
//! TrafficSplit edited while running.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use weft_cli::state::UpState;
use weft_test_support::{bin_path, eventually, free_port};

/// Generous: a debug build on a shared machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// An empty directory for one test's files (`weft-<kind>-<test>-<pid>`),
/// once the binaries `weft up` runs are built: the apps, proxies and
/// controller are found next to weft.
fn scratch_dir(kind: &str, test: &str) -> PathBuf {
    for binary in ["weft-controller", "weft-proxy", "weft-demo"] {
        bin_path(binary);
    }
    let dir = std::env::temp_dir().join(format!("weft-{kind}-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `weft up`'s controller flags, every listener on a free port.
fn controller_flags() -> Vec<String> {
    let mut flags = Vec::new();
    for flag in [
        "--destination-addr",
        "--identity-addr",
        "--controller-admin-addr",
        "--web-addr",
    ] {
        flags.push(flag.to_string());
        flags.push(format!("127.0.0.1:{}", free_port()));
    }
    flags
}

/// Two workloads, `books` and `client`, each `weft-demo books` behind a proxy.
struct TestMesh {
    dir: PathBuf,
    mesh_file: PathBuf,
    books_admin: u16,
    controller_flags: Vec<String>,
}

impl TestMesh {
    fn new(test: &str) -> TestMesh {
        let dir = scratch_dir("up", test);
        let books_admin = free_port();
        let mut text = String::from(
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: books, namespace: test}\n\
             spec:\n  selector: {app: books}\n  ports: [{name: http, port: 80, targetPort: http}]\n",
        );
        for (name, admin) in [("books", books_admin), ("client", free_port())] {
            let app = free_port();
            text.push_str(&format!(
                "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\n\
                 metadata: {{name: {name}, namespace: test, labels: {{app: {name}}}}}\n\
                 spec:\n  serviceAccount: {name}\n  addresses: [127.0.0.1]\n  \
                 ports: [{{name: http, port: {app}}}]\n  meshed: true\n  \
                 proxy: {{inboundPort: {}, outboundPort: {}, adminPort: {admin}, tapPort: {}}}\n  \
                 run: {{command: [weft-demo, books, --app-version, {name}-v1, --listen, '127.0.0.1:{app}']}}\n",
                free_port(),
                free_port(),
                free_port(),
            ));
        }
        let mesh_file = dir.join("mesh.yaml");
        std::fs::write(&mesh_file, text).unwrap();
        TestMesh {
            dir,
            mesh_file,
            books_admin,
            controller_flags: controller_flags(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
        command
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("up")
            .arg("-f")
            .arg(&self.mesh_file)
            .args(&self.controller_flags)
            .stdin(Stdio::null());
        command
    }
}

impl Drop for TestMesh {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("weft up's files are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A running `weft up`, killed (with its children) if the test fails.
struct Up {
    child: Child,
    output: PathBuf,
}

impl Up {
    fn start(mesh: &TestMesh) -> Up {
        Up::spawn(mesh.command(), mesh.dir.join("weft-up.out"))
    }

    fn spawn(mut command: Command, output: PathBuf) -> Up {
        let file = std::fs::File::create(&output).unwrap();
        let child = command
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn weft up");
        Up { child, output }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGINT, then waits for a clean exit.
    fn interrupt(mut self) {
        kill_process(Pid::from_raw(self.pid() as i32).unwrap(), Signal::INT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "weft up did not exit after SIGINT"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status}:\n{}", self.output());
    }

    /// Waits for `up.json`, which is written once every proxy is ready.
    fn wait_up(&mut self, state_dir: &Path) -> UpState {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(state)) = weft_cli::state::load(state_dir) {
                return state;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "weft up exited ({status}) before the mesh was up:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the mesh was not up within {START_TIMEOUT:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for pid in children_of(self.child.id()) {
                if let Some(pid) = Pid::from_raw(pid as i32) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!("--- weft up's output ---\n{}", self.output());
        }
    }
}

/// Processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|field| field.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// Whether a process exists (and is not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// `GET url` through an HTTP proxy: the status and body.
fn get_via_proxy(proxy: SocketAddr, url: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(proxy)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    write!(
        stream,
        "GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn up_runs_the_mesh_restarts_apps_and_ctrl_c_stops_everything() {
    let mesh = TestMesh::new("run");
    let mut up = Up::start(&mesh);
    let state = up.wait_up(&mesh.state_dir());
    assert_eq!(state.pid, up.pid());
    assert_eq!(state.workloads.len(), 2, "{state:?}");

    // Traffic: the client's proxy, as the client's HTTP proxy, reaches books by name.
    let client = state
        .workloads
        .iter()
        .find(|workload| workload.name == "client")
        .unwrap();
    let outbound: SocketAddr = client.outbound.parse().unwrap();
    let mut last = None;
    eventually(Duration::from_secs(30), || {
        let answer = get_via_proxy(outbound, "http://books.test.svc.cluster.local/books");
        let ok = matches!(&answer, Ok((200, body)) if body.contains("\"version\":\"books-v1\""));
        last = Some(answer);
        ok
    });
    let books = state
        .workloads
        .iter()
        .find(|workload| workload.name == "books")
        .unwrap();
    assert_eq!(books.admin, format!("127.0.0.1:{}", mesh.books_admin));
    assert_eq!(
        books.identity.as_deref(),
        Some("books.test.serviceaccount.identity.weft.cluster.local")
    );

    // A log per process.
    let logs = mesh.state_dir().join("logs");
    for file in [
        "controller.log",
        "test-books-app.log",
        "test-books-proxy.log",
        "test-client-app.log",
        "test-client-proxy.log",
    ] {
        assert!(logs.join(file).is_file(), "{file} missing");
    }
    let proxy_log = std::fs::read_to_string(logs.join("test-books-proxy.log")).unwrap();
    assert!(proxy_log.contains("certified"), "{proxy_log}");

    // Five children: the controller, two apps, two proxies.
    let children = children_of(up.pid());
    assert_eq!(children.len(), 5, "{children:?}");

    // A killed app is started again.
    let books_app = *children
        .iter()
        .find(|pid| command_line(**pid).contains("books-v1"))
        .unwrap();
    kill_process(Pid::from_raw(books_app as i32).unwrap(), Signal::KILL).unwrap();
    eventually(Duration::from_secs(30), || {
        children_of(up.pid())
            .iter()
            .any(|pid| *pid != books_app && command_line(*pid).contains("books-v1"))
    });
    eventually(Duration::from_secs(30), || {
        matches!(
            get_via_proxy(outbound, "http://books.test.svc.cluster.local/books"),
            Ok((200, _))
        )
    });
    let children = children_of(up.pid());
    assert_eq!(children.len(), 5, "{children:?}");

    // Ctrl-C: exit 0, no process left, up.json gone.
    kill_process(Pid::from_raw(up.pid() as i32).unwrap(), Signal::INT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = up.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "weft up did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}:\n{}", up.output());
    for pid in children {
        assert!(!alive(pid), "process {pid} ({}) is left", command_line(pid));
    }
    assert!(!mesh.state_dir().join("up.json").exists());
    assert!(up.output().contains("stopped"), "{}", up.output());
}

#[test]
fn a_taken_port_is_named_and_nothing_starts() {
    let mesh = TestMesh::new("taken");
    let _holder = TcpListener::bind(("127.0.0.1", mesh.books_admin)).unwrap();
    let output = mesh.command().output().expect("run weft up");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "port {} (admin of test/books) is taken",
            mesh.books_admin
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was started"), "{stderr}");
    assert!(!mesh.state_dir().join("logs").exists());
    assert!(!mesh.state_dir().join("up.json").exists());
}

/// The repository's `examples/` directory.
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A directory for one example's run (state, output), removed unless the
/// test fails.
struct ExampleRun {
    dir: PathBuf,
    port_base: u16,
    controller_flags: Vec<String>,
}

impl ExampleRun {
    fn new(test: &str) -> ExampleRun {
        let dir = scratch_dir("example", test);
        ExampleRun {
            dir,
            // Allocation starts at base + 10 and skips taken ports.
            port_base: free_port().min(60_000),
            controller_flags: controller_flags(),
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// `weft up -f <mesh_file> --port-base …` with the controller on free ports.
    fn command(&self, mesh_file: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_weft"));
        command
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("up")
            .arg("-f")
            .arg(mesh_file)
            .arg("--port-base")
            .arg(self.port_base.to_string())
            .args(&self.controller_flags)
            .stdin(Stdio::null());
        command
    }

    /// A copy of `examples/<file>` in the run's directory, to edit while it
    /// runs (the apps' working directory is the file's, which these apps do
    /// not use): its path and its text.
    fn copy_example(&self, file: &str) -> (PathBuf, String) {
        let mesh_file = self.dir.join(file);
        let text = std::fs::read_to_string(examples().join(file)).unwrap();
        std::fs::write(&mesh_file, &text).unwrap();
        (mesh_file, text)
    }

    /// Writes `edited` (which must differ from `text`, the file's content)
    /// to `mesh_file` and waits until the running controller's effective
    /// mesh contains `applied`.
    fn edit(&self, mesh_file: &Path, text: &str, edited: &str, applied: &str) {
        assert_ne!(edited, text);
        std::fs::write(mesh_file, edited).unwrap();
        let effective = self.state_dir().join("mesh.effective.yaml");
        eventually(Duration::from_secs(10), || {
            std::fs::read_to_string(&effective).is_ok_and(|text| text.contains(applied))
        });
    }

    fn start(&self, mesh_file: &Path) -> (Up, UpState) {
        let mut up = Up::spawn(self.command(mesh_file), self.dir.join("weft-up.out"));
        let state = up.wait_up(&self.state_dir());
        (up, state)
    }
}

impl Drop for ExampleRun {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("weft up's files are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The workload named `name` in `up.json`.
fn workload<'a>(state: &'a UpState, name: &str) -> &'a weft_cli::state::UpWorkload {
    state
        .workloads
        .iter()
        .find(|workload| workload.name == name)
        .unwrap_or_else(|| panic!("{name} is not in {state:?}"))
}

/// The sum of a proxy's `response_total` samples whose labels include every
/// `(name, value)` of `labels` (0 when its admin server does not answer).
fn responses(admin: &str, labels: &[(&str, &str)]) -> f64 {
    metric_sum(admin, "response_total", labels)
}

/// The sum of a proxy's `family` samples whose labels include every
/// `(name, value)` of `labels` (0 when its admin server does not answer).
fn metric_sum(admin: &str, family_name: &str, labels: &[(&str, &str)]) -> f64 {
    let Ok((200, body)) = get_via_proxy(admin.parse().unwrap(), &format!("http://{admin}/metrics"))
    else {
        return 0.0;
    };
    let (families, _) = prom_text_format_parser::parse_scrape(&body);
    families
        .iter()
        .filter(|family| family.name == family_name)
        .flat_map(|family| &family.samples)
        .filter(|sample| {
            labels.iter().all(|(name, value)| {
                sample
                    .labels
                    .iter()
                    .any(|label| label.key == *name && label.value == *value)
            })
        })
        .map(|sample| sample.value.value.as_f64())
        .filter(|value| !value.is_nan())
        .sum()
}

/// Waits until the count keeps growing: above zero, then higher again
/// within 20 s (a 10 % split of ten calls a second can go a few seconds
/// without one).
fn steady(what: &str, count: impl Fn() -> f64) {
    eventually(START_TIMEOUT, || count() > 0.0);
    let first = count();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut later = count();
    while later <= first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        later = count();
    }
    assert!(later > first, "{what}: {first}, still {later} 20 s later");
}

#[test]
fn example_hello_http_runs_on_allocated_ports_kept_across_restarts() {
    let run = ExampleRun::new("hello");
    let mesh_file = examples().join("hello-http.yaml");
    let (up, state) = run.start(&mesh_file);
    let books = workload(&state, "books").clone();
    let traffic = workload(&state, "traffic").clone();

    // Every proxy port came from the base up, none of them the defaults.
    let allocated = |workload: &weft_cli::state::UpWorkload| -> Vec<u16> {
        [
            &workload.inbound,
            &workload.outbound,
            &workload.admin,
            &workload.tap,
        ]
        .iter()
        .map(|addr| addr.parse::<SocketAddr>().unwrap().port())
        .collect()
    };
    for port in allocated(&books).into_iter().chain(allocated(&traffic)) {
        assert!(
            port >= run.port_base + 10,
            "{port} (base {})",
            run.port_base
        );
    }
    assert!(up.output().contains("ports.json"), "{}", up.output());
    let kept = std::fs::read_to_string(run.state_dir().join("ports.json")).unwrap();
    assert!(kept.contains("hello/books"), "{kept}");
    // The controller knows them: discovery sends traffic to books' proxy
    // over mutual TLS, which counts it inbound.
    steady("books inbound", || {
        responses(&books.admin, &[("direction", "inbound"), ("tls", "true")])
    });
    // traffic started after books listened: none of its calls failed.
    steady("traffic outbound", || {
        responses(
            &traffic.admin,
            &[("direction", "outbound"), ("dst_service", "books")],
        )
    });
    assert_eq!(
        responses(
            &traffic.admin,
            &[("direction", "outbound"), ("classification", "failure")]
        ),
        0.0
    );
    up.interrupt();

    // A taken allocated port is named before anything starts, with where
    // the allocation is kept.
    let holder = TcpListener::bind(books.admin.as_str()).unwrap();
    let output = run.command(&mesh_file).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "port {} (admin of hello/books) is taken",
            books.admin.parse::<SocketAddr>().unwrap().port()
        )) && stderr.contains("ports.json"),
        "{stderr}"
    );
    drop(holder);

    // Started again: the same ports.
    let (up, again) = run.start(&mesh_file);
    assert_eq!(again.workloads, state.workloads);
    up.interrupt();
}

#[test]
fn example_traffic_split_splits_and_takes_edits_live() {
    let run = ExampleRun::new("split");
    let (mesh_file, text) = run.copy_example("traffic-split.yaml");
    let (up, state) = run.start(&mesh_file);
    let inbound = |name: &str| {
        responses(
            &workload(&state, name).admin,
            &[("direction", "inbound"), ("tls", "true")],
        )
    };
    steady("books-v1 inbound", || inbound("books-v1"));
    steady("books-v2 inbound", || inbound("books-v2"));

    // Everything to v1 now: the controller reads the re-rendered file.
    let edited = text.replace(
        "- {service: books-v1, weight: 50}\n  - {service: books-v2, weight: 50}",
        "- {service: books-v1, weight: 100}\n  - {service: books-v2, weight: 0}",
    );
    run.edit(&mesh_file, &text, &edited, "weight: 100");
    let mut last = inbound("books-v2");
    eventually(Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_secs(2));
        let now = inbound("books-v2");
        let settled = now == last;
        last = now;
        settled
    });
    steady("books-v1 inbound after the edit", || inbound("books-v1"));
    up.interrupt();
}

#[test]
fn example_policy_admits_one_identity_and_takes_edits_live() {
    let run = ExampleRun::new("policy");
    let (mesh_file, text) = run.copy_example("policy.yaml");
    let (up, state) = run.start(&mesh_file);
    let books = workload(&state, "books").admin.clone();
    let traffic = workload(&state, "traffic").admin.clone();
    let stranger = workload(&state, "stranger").admin.clone();
    let traffic_id = "traffic.policy.serviceaccount.identity.weft.cluster.local";
    let stranger_id = "stranger.policy.serviceaccount.identity.weft.cluster.local";
    let allowed = |client: &str| {
        metric_sum(
            &books,
            "inbound_http_authz_allow_total",
            &[
                ("client_id", client),
                ("srv_name", "books-http"),
                ("authz_name", "books-from-traffic"),
            ],
        )
    };
    let denied = |client: &str| {
        metric_sum(
            &books,
            "inbound_http_authz_deny_total",
            &[("client_id", client), ("srv_name", "books-http")],
        )
    };
    // traffic is admitted, stranger refused: books counts both, and each
    // client's own proxy sees the status the policy gave it.
    steady("traffic allowed", || allowed(traffic_id));
    steady("stranger denied", || denied(stranger_id));
    assert_eq!(denied(traffic_id), 0.0);
    assert_eq!(allowed(stranger_id), 0.0);
    assert_eq!(
        responses(
            &traffic,
            &[("direction", "outbound"), ("status_code", "403")]
        ),
        0.0
    );
    assert!(
        responses(
            &stranger,
            &[("direction", "outbound"), ("status_code", "403")]
        ) > 0.0
    );
    // Admit stranger too: the edit reaches books' proxy and its requests
    // succeed from then on.
    let edited = text.replace(
        "identityRefs: [{kind: ServiceAccount, name: traffic}]",
        "identityRefs: [{kind: ServiceAccount, name: traffic}, {kind: ServiceAccount, name: stranger}]",
    );
    run.edit(&mesh_file, &text, &edited, "name: stranger}]");
    steady("stranger allowed after the edit", || allowed(stranger_id));
    let before = denied(stranger_id);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(denied(stranger_id), before, "denials after the edit");
    // Counted twice, independently: every denial books' proxy counted is a
    // 403 stranger's proxy received, and nothing else was a 403.
    assert_eq!(
        responses(
            &stranger,
            &[("direction", "outbound"), ("status_code", "403")]
        ),
        before
    );
    up.interrupt();
}

#[test]
fn example_http_route_sends_the_canary_header_to_v2_and_splits_the_rest() {
    let run = ExampleRun::new("http-route");
    let (up, state) = run.start(&examples().join("http-route.yaml"));
    let identity =
        |account: &str| format!("{account}.canary.serviceaccount.identity.weft.cluster.local");
    let (tester, traffic) = (identity("tester"), identity("traffic"));
    let served = |version: &str, client: &str| {
        responses(
            &workload(&state, version).admin,
            &[("direction", "inbound"), ("client_id", client)],
        )
    };
    // curl's calls carry x-canary: true, so the route's first rule sends
    // every one of them to books-v2 ...
    // (A call made before the route reached tester's proxy, waited for at
    // most WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT on a loaded machine, may
    // have gone by the plain service: only calls from then on are counted.)
    steady("tester's calls on books-v2", || served("books-v2", &tester));
    let (v1_before, v2_before) = (served("books-v1", &tester), served("books-v2", &tester));
    eventually(START_TIMEOUT, || {
        served("books-v2", &tester) >= v2_before + 3.0
    });
    assert_eq!(served("books-v1", &tester), v1_before);
    // ... while traffic's go 90/10: both versions serve it, v1 most (with
    // 50 calls or more, v2 serving as many as v1 has a probability below
    // 1e-12).
    eventually(START_TIMEOUT, || served("books-v1", &traffic) >= 50.0);
    let (v1, v2) = (served("books-v1", &traffic), served("books-v2", &traffic));
    println!("traffic's calls: books-v1 {v1}, books-v2 {v2}");
    assert!(v1 > v2, "books-v1 {v1}, books-v2 {v2}");
    steady("traffic's calls on books-v2", || {
        served("books-v2", &traffic)
    });
    up.interrupt();
}

#[test]
fn a_curl_app_reaches_a_service_by_name_through_its_proxy() {
    let run = ExampleRun::new("curl");
    let (up, state) = run.start(&examples().join("curl-client.yaml"));
    let client = workload(&state, "client");
    // curl's calls leave through its proxy (it read http_proxy) ...
    steady("curl's outbound", || {
        responses(
            &client.admin,
            &[
                ("direction", "outbound"),
                ("dst_service", "books"),
                ("classification", "success"),
            ],
        )
    });
    // ... and reach books' proxy over mutual TLS.
    assert!(
        responses(
            &workload(&state, "books").admin,
            &[("direction", "inbound"), ("tls", "true")]
        ) > 0.0
    );
    up.interrupt();
}

//! `weft up -f mesh.yaml` end to end: the real `weft` runs a real
//! controller and, for two workloads, a `weft-demo books` app and a
//! `weft-proxy` each; a request from one workload's proxy reaches the other
//! by service name; a killed app comes back; Ctrl-C stops every process.
//! A taken port is reported by name before anything starts.

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

/// Two workloads, `books` and `client`, each `weft-demo books` behind a proxy.
struct TestMesh {
    dir: PathBuf,
    mesh_file: PathBuf,
    books_admin: u16,
    controller_flags: Vec<String>,
}

impl TestMesh {
    fn new(test: &str) -> TestMesh {
        // The apps, proxies and controller are found next to weft.
        for binary in ["weft-controller", "weft-proxy", "weft-demo"] {
            bin_path(binary);
        }
        let dir = std::env::temp_dir().join(format!("weft-up-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
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
        let mut controller_flags = Vec::new();
        for flag in [
            "--destination-addr",
            "--identity-addr",
            "--controller-admin-addr",
            "--web-addr",
        ] {
            controller_flags.push(flag.to_string());
            controller_flags.push(format!("127.0.0.1:{}", free_port()));
        }
        TestMesh {
            dir,
            mesh_file,
            books_admin,
            controller_flags,
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
        let output = mesh.dir.join("weft-up.out");
        let file = std::fs::File::create(&output).unwrap();
        let child = mesh
            .command()
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

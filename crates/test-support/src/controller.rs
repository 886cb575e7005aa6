//! `weft-controller` as a real child process, and mesh files to feed it.
//!
//! ```text
//!  test ──rewrite_mesh──► mesh.yaml (temp dir) ──watched by──► ControllerProcess
//!                                                               ├─ Destination gRPC: destination_addr()
//!                                                               └─ admin: /ready /metrics
//! ```
//!
//! [`ControllerProcess::start`] writes the mesh file into a temporary
//! directory, starts the binary on free loopback ports (`--destination-addr`,
//! `--admin-addr`) and waits until `/ready` answers 200. The test then edits
//! the file with [`ControllerProcess::rewrite_mesh`] (write + rename, as
//! editors do), or [`ControllerProcess::kill`]s the controller and
//! [`ControllerProcess::restart`]s it on the same ports. The child is killed on
//! drop, and its log printed when the test is failing.
//!
//! [`MeshFile`] builds the YAML for the common shapes (a Service selecting
//! Workloads that listen on loopback ports, a ServiceProfile, a
//! TrafficSplit); anything else goes in as a raw document.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::{AdminResponse, admin_request, temp_dir};
use crate::{bin_path, free_addr, free_port, prom};

/// How long start-up waits for `/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `weft-controller` child process; killed on drop.
#[derive(Debug)]
pub struct ControllerProcess {
    child: Option<Child>,
    destination: SocketAddr,
    admin: SocketAddr,
    /// The HTTP API (`--web-addr`).
    web: SocketAddr,
    dir: PathBuf,
    log_path: PathBuf,
    /// Start-ups so far (the log of each run is appended to the same file).
    runs: u32,
    /// The Identity service's address, when identity is on.
    identity: Option<SocketAddr>,
    /// More command-line arguments, on every start.
    extra_args: Vec<String>,
}

impl ControllerProcess {
    /// Writes `mesh` and starts the controller on free ports; waits for `/ready`.
    ///
    /// Panics (printing the log) if the controller exits or is not ready in time.
    pub fn start(mesh: &str) -> Self {
        Self::start_inner(mesh, false, &[])
    }

    /// Like [`ControllerProcess::start`], with the Identity service on:
    /// credentials made by `weft-controller identity init` under the
    /// controller's directory, and a token file per meshed workload
    /// ([`ControllerProcess::token_path`]).
    pub fn start_with_identity(mesh: &str) -> Self {
        Self::start_inner(mesh, true, &[])
    }

    /// Like [`ControllerProcess::start_with_identity`], with more arguments
    /// (e.g. `--identity-issuance-lifetime 5s`).
    pub fn start_with_identity_args(mesh: &str, args: &[&str]) -> Self {
        Self::start_inner(mesh, true, args)
    }

    /// Like [`ControllerProcess::start`], with more arguments (e.g.
    /// `--scrape-interval 1s`).
    pub fn start_with_args(mesh: &str, args: &[&str]) -> Self {
        Self::start_inner(mesh, false, args)
    }

    fn start_inner(mesh: &str, identity: bool, args: &[&str]) -> Self {
        // A port picked free may be taken before the controller binds it.
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let dir = temp_dir();
            let mut controller = Self {
                child: None,
                destination: free_addr(),
                admin: free_addr(),
                web: free_addr(),
                log_path: dir.join("weft-controller.log"),
                dir,
                runs: 0,
                identity: identity.then(free_addr),
                extra_args: args.iter().map(|arg| arg.to_string()).collect(),
            };
            if identity {
                controller.init_identity();
            }
            controller.rewrite_mesh(mesh);
            match controller.spawn_and_wait() {
                Ok(()) => return controller,
                Err(why) if attempt < ATTEMPTS && controller.log().contains("cannot bind") => {
                    eprintln!("weft-controller: retrying with fresh ports: {why}");
                }
                Err(why) => controller.fail(&why),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn init_identity(&self) {
        let output = Command::new(bin_path("weft-controller"))
            .args(["identity", "init", "--dir"])
            .arg(self.dir.join("state"))
            .output()
            .expect("run weft-controller identity init");
        assert!(
            output.status.success(),
            "identity init failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Replaces the issuer with a new one signed by the same trust anchor
    /// (`weft-controller identity rotate-issuer`); the running controller
    /// reloads it.
    pub fn rotate_issuer(&self) {
        let output = Command::new(bin_path("weft-controller"))
            .args(["identity", "rotate-issuer", "--dir"])
            .arg(self.dir.join("state"))
            .output()
            .expect("run weft-controller identity rotate-issuer");
        assert!(
            output.status.success(),
            "rotate-issuer failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The Identity gRPC address (`WEFT_PROXY_IDENTITY_SVC_ADDR`), when on.
    pub fn identity_addr(&self) -> Option<SocketAddr> {
        self.identity
    }

    /// The trust anchor, PEM (`WEFT_PROXY_IDENTITY_TRUST_ANCHORS`).
    pub fn trust_anchors_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("state/trust-anchor.pem")).expect("trust anchor")
    }

    /// The token file the controller writes for a meshed workload.
    pub fn token_path(&self, namespace: &str, workload: &str) -> PathBuf {
        self.dir
            .join(format!("tokens/{namespace}/{workload}.token"))
    }

    /// `builder` set up to take `identity` from this controller's identity
    /// service as the meshed workload `namespace/workload`: the identity
    /// address, the workload's token file, the local name and the trust
    /// anchors.
    pub fn proxy_identity(
        &self,
        builder: crate::ProxyBuilder,
        namespace: &str,
        workload: &str,
        identity: &str,
    ) -> crate::ProxyBuilder {
        builder
            .env(
                "WEFT_PROXY_IDENTITY_SVC_ADDR",
                self.identity_addr()
                    .expect("the controller serves identity")
                    .to_string(),
            )
            .env(
                "WEFT_PROXY_IDENTITY_TOKEN_FILE",
                self.token_path(namespace, workload).display().to_string(),
            )
            .env("WEFT_PROXY_IDENTITY_LOCAL_NAME", identity)
            .env(
                "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
                self.trust_anchors_pem(),
            )
    }

    /// The Destination gRPC address (`WEFT_PROXY_DESTINATION_SVC_ADDR`).
    pub fn destination_addr(&self) -> SocketAddr {
        self.destination
    }

    /// The admin server address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The watched mesh file.
    pub fn mesh_path(&self) -> PathBuf {
        self.dir.join("mesh.yaml")
    }

    /// Directory holding the mesh file and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the mesh file atomically (write a sibling, then rename).
    pub fn rewrite_mesh(&self, mesh: &str) {
        let staging = self.dir.join(".mesh.yaml.tmp");
        std::fs::write(&staging, mesh).expect("write mesh file");
        std::fs::rename(&staging, self.mesh_path()).expect("rename mesh file");
    }

    /// Everything the controller wrote to stdout and stderr so far (all runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Process id of the running child, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the child is running.
    pub fn is_running(&mut self) -> bool {
        self.try_exit_status().is_none() && self.child.is_some()
    }

    /// Kills the child (SIGKILL: no drain) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the controller again on the same ports (killing it first if it
    /// still runs) and waits for `/ready`.
    pub fn restart(&mut self) {
        self.kill();
        // The port was just released; binding again succeeds at once on
        // Linux (SO_REUSEADDR), but allow a few tries.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(why) if Instant::now() < deadline && self.log().contains("cannot bind") => {
                    eprintln!("weft-controller: restart: {why}; trying again");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(why) => self.fail(&why),
            }
        }
    }

    /// The HTTP API's address (`--web-addr`).
    pub fn web_addr(&self) -> SocketAddr {
        self.web
    }

    /// `GET path` on the HTTP API (`--web-addr`).
    pub fn web_get(&self, path: &str) -> std::io::Result<AdminResponse> {
        admin_request(self.web, "GET", path)
    }

    /// `GET path` on the admin server.
    pub fn admin_get(&self, path: &str) -> std::io::Result<AdminResponse> {
        admin_request(self.admin, "GET", path)
    }

    /// `/ready`: its status code and JSON body (see the controller's `app.rs`:
    /// `ready`, `mesh_file.{current, last_error, good_loads, failed_loads, ...}`).
    pub fn ready(&self) -> (u16, serde_json::Value) {
        let response = self.admin_get("/ready").expect("GET /ready");
        let body = serde_json::from_str(response.body.trim())
            .unwrap_or_else(|e| panic!("/ready body is not JSON ({e}): {}", response.body));
        (response.status, body)
    }

    /// The `/metrics` text; panics if it cannot be fetched.
    pub fn metrics_text(&self) -> String {
        let response = self.admin_get("/metrics").expect("GET /metrics");
        assert_eq!(response.status, 200, "GET /metrics: {}", response.body);
        response.body
    }

    /// Sum of every sample `name` whose labels include `labels`; `None` when
    /// no series matches. Names carry the `weft_controller_` prefix.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        prom::sum(&prom::parse(&self.metrics_text()), name, labels)
    }

    /// Waits until the mesh file's good loads reach `loads` (the first load
    /// at start-up counts as one); panics after `timeout`.
    pub fn wait_good_loads(&self, loads: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, body) = self.ready();
            let seen = body["mesh_file"]["good_loads"].as_u64().unwrap_or(0);
            if seen >= loads {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mesh file not loaded {loads} times within {timeout:?}: {body}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open controller log");
        self.runs += 1;
        let mut command = Command::new(bin_path("weft-controller"));
        if let Some(identity) = self.identity {
            command
                .arg("--identity-addr")
                .arg(identity.to_string())
                .arg("--identity-issuer-dir")
                .arg(self.dir.join("state/issuer"))
                .arg("--identity-trust-anchors")
                .arg(self.dir.join("state/trust-anchor.pem"))
                .arg("--identity-token-dir")
                .arg(self.dir.join("tokens"));
        }
        let child = command
            .args(&self.extra_args)
            .arg("--mesh-file")
            .arg(self.mesh_path())
            .arg("--destination-addr")
            .arg(self.destination.to_string())
            .arg("--admin-addr")
            .arg(self.admin.to_string())
            .arg("--web-addr")
            .arg(self.web.to_string())
            .env_remove("WEFT_CONTROLLER_MESH_FILE")
            .env_remove("WEFT_CONTROLLER_DESTINATION_ADDR")
            .env_remove("WEFT_CONTROLLER_ADMIN_ADDR")
            .env(
                "RUST_LOG",
                std::env::var("WEFT_E2E_CONTROLLER_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn weft-controller");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.try_exit_status() {
                self.child = None;
                return Err(format!(
                    "weft-controller exited before ready ({status}, run {})",
                    self.runs
                ));
            }
            if matches!(self.admin_get("/ready"), Ok(r) if r.status == 200) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "weft-controller not ready within {READY_TIMEOUT:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().expect("try_wait"))
    }

    /// Panics; the log is printed on drop.
    fn fail(&mut self, why: &str) -> ! {
        self.kill();
        panic!("{why} (the controller's log follows)");
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- weft-controller log ({}) ---\n{}--- end of log ---",
                self.log_path.display(),
                self.log()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A mesh file under construction: YAML documents joined with `---`.
///
/// ```
/// # use weft_test_support::controller::MeshFile;
/// let mesh = MeshFile::new()
///     .service("shop", "web", &[("app", "web")])
///     .workload("shop", "web-1", &[("app", "web")], "127.0.0.1:8081".parse().unwrap())
///     .render();
/// assert!(mesh.contains("kind: Workload"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MeshFile {
    documents: Vec<String>,
}

impl MeshFile {
    /// An empty mesh file.
    pub fn new() -> Self {
        Self::default()
    }

    /// A Service `name.namespace` on port 80 with the named `targetPort: http`,
    /// selecting workloads by `selector`.
    pub fn service(self, namespace: &str, name: &str, selector: &[(&str, &str)]) -> Self {
        self.document(&format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {namespace}\n\
             spec:\n  selector: {}\n  ports:\n  - {{name: http, port: 80, targetPort: http}}\n",
            flow_map(selector)
        ))
    }

    /// A meshed Workload (service account `name`) with `labels` serving
    /// `address` on its port named `http`, whose proxy takes mesh traffic on
    /// `inbound_port` (same IP).
    pub fn meshed_workload(
        self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
        address: SocketAddr,
        inbound_port: u16,
    ) -> Self {
        self.document(&format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  \
             namespace: {namespace}\n  labels: {}\nspec:\n  serviceAccount: {name}\n  \
             addresses: [{}]\n  ports:\n  - {{name: http, port: {}}}\n  meshed: true\n  \
             proxy: {{inboundPort: {inbound_port}}}\n",
            flow_map(labels),
            address.ip(),
            address.port()
        ))
    }

    /// Service `web` (selecting app=web) and its meshed Workload `web-1`
    /// (app=web) serving `address`, whose proxy takes mesh traffic on
    /// `inbound_port`: the server side most tests mesh.
    pub fn web_service_and_web_1(
        self,
        namespace: &str,
        address: SocketAddr,
        inbound_port: u16,
    ) -> Self {
        self.service(namespace, "web", &[("app", "web")])
            .meshed_workload(namespace, "web-1", &[("app", "web")], address, inbound_port)
    }

    /// A meshed Workload (service account `name`) with `labels` at free
    /// loopback ports nothing serves: it stands in the mesh for its identity
    /// (the certificate a test client presents, a name a test proxy takes).
    pub fn unserved_workload(self, namespace: &str, name: &str, labels: &[(&str, &str)]) -> Self {
        self.meshed_workload(namespace, name, labels, free_addr(), free_port())
    }

    /// A Workload with `labels` serving `address` on its port named `http`.
    pub fn workload(
        self,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
        address: SocketAddr,
    ) -> Self {
        self.document(&format!(
            "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata:\n  name: {name}\n  \
             namespace: {namespace}\n  labels: {}\nspec:\n  serviceAccount: {name}\n  \
             addresses: [{}]\n  ports:\n  - {{name: http, port: {}}}\n  meshed: false\n",
            flow_map(labels),
            address.ip(),
            address.port()
        ))
    }

    /// A ServiceProfile for `name.namespace.svc.cluster.local` whose `spec`
    /// is `spec_yaml` (indented by the caller as the body of `spec:`, two spaces).
    pub fn profile(self, namespace: &str, name: &str, spec_yaml: &str) -> Self {
        self.document(&format!(
            "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  \
             name: {name}.{namespace}.svc.cluster.local\n  namespace: {namespace}\nspec:\n{spec_yaml}"
        ))
    }

    /// A TrafficSplit of `apex` between `backends` (service name, weight in
    /// thousandths, e.g. `900` for `900m`).
    pub fn split(self, namespace: &str, apex: &str, backends: &[(&str, u32)]) -> Self {
        let mut text = format!(
            "apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata:\n  \
             name: {apex}-split\n  namespace: {namespace}\nspec:\n  service: {apex}\n  backends:\n"
        );
        for (service, weight) in backends {
            let _ = writeln!(text, "  - service: {service}\n    weight: {weight}m");
        }
        self.document(&text)
    }

    /// Any other YAML document, as is.
    pub fn document(mut self, yaml: &str) -> Self {
        self.documents.push(yaml.trim_end().to_string());
        self
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for document in &self.documents {
            text.push_str("---\n");
            text.push_str(document);
            text.push('\n');
        }
        text
    }
}

/// `{a: b, c: d}`.
fn flow_map(pairs: &[(&str, &str)]) -> String {
    let items: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{{{}}}", items.join(", "))
}

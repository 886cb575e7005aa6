//! Helpers shared by the controller's wire tests: scratch directories, the
//! `weft-controller` process and its command line, raw HTTP over TCP, and
//! the checks of an issued leaf certificate.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use linkerd2_proxy_api::identity::CertifyResponse;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use weft_test_support::kube_api::KubeApiServer;

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory named after the test.
    pub fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "weft-controller-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// A path inside the directory.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.0.join(relative)
    }

    /// Replaces a file atomically (write, then rename), as editors do.
    pub fn replace(&self, relative: &str, contents: &[u8]) {
        let target = self.path(relative);
        let staging = target.with_extension("staging");
        std::fs::write(&staging, contents).unwrap();
        std::fs::rename(&staging, &target).unwrap();
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `weft-controller` binary built with these tests.
pub const CONTROLLER_BINARY: &str = env!("CARGO_BIN_EXE_weft-controller");

/// Where a controller reads the mesh from.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    /// `--mesh-file <path>`.
    MeshFile(&'a Path),
    /// `--kubernetes --kubeconfig <path>`.
    Kubernetes { kubeconfig: &'a Path },
}

/// [`CONTROLLER_BINARY`] reading `source`, with the Destination service at
/// `destination`, the admin server at `admin`, the dashboard on a free port,
/// warnings logged and no `$KUBECONFIG`; the caller adds flags and stdio.
pub fn controller_command(
    source: Source<'_>,
    destination: SocketAddr,
    admin: SocketAddr,
) -> Command {
    controller_command_at(CONTROLLER_BINARY, source, destination, admin)
}

/// [`controller_command`] running the controller binary at `binary`.
pub fn controller_command_at(
    binary: impl AsRef<OsStr>,
    source: Source<'_>,
    destination: SocketAddr,
    admin: SocketAddr,
) -> Command {
    let mut command = Command::new(binary);
    match source {
        Source::MeshFile(path) => command.arg("--mesh-file").arg(path),
        Source::Kubernetes { kubeconfig } => command
            .arg("--kubernetes")
            .arg("--kubeconfig")
            .arg(kubeconfig),
    };
    command
        .args(["--destination-addr", &destination.to_string()])
        .args(["--admin-addr", &admin.to_string()])
        .args(["--web-addr", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .env_remove("KUBECONFIG");
    command
}

/// Writes a kubeconfig for `api` as `scratch/kubeconfig` and returns its path.
pub fn kubeconfig_for(scratch: &Scratch, api: &KubeApiServer) -> PathBuf {
    let kubeconfig = scratch.path("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    kubeconfig
}

/// `weft-controller identity …` to completion.
pub fn identity_command(arguments: &[&str]) -> Output {
    Command::new(CONTROLLER_BINARY)
        .arg("identity")
        .args(arguments)
        .env("RUST_LOG", "warn")
        .output()
        .expect("weft-controller runs")
}

/// A running controller, killed on drop. With a log file its stderr goes
/// there, and is printed if the test panics; without one it is inherited.
pub struct ControllerProcess {
    pub child: Child,
    pub admin: SocketAddr,
    log: Option<PathBuf>,
}

impl ControllerProcess {
    /// Spawns `command` (whose admin server is at `admin`), stdout discarded.
    pub fn spawn(command: &mut Command, admin: SocketAddr, log: Option<PathBuf>) -> Self {
        let stderr = match &log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("weft-controller starts");
        Self { child, admin, log }
    }

    /// [`Self::spawn`], then waits for `/ready` within `patience`.
    pub async fn start(
        command: &mut Command,
        admin: SocketAddr,
        log: Option<PathBuf>,
        patience: Duration,
    ) -> Self {
        let mut controller = Self::spawn(command, admin, log);
        wait_until_ready(&mut controller.child, admin, patience).await;
        controller
    }

    /// What the controller has logged so far (empty without a log file).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// The value of the first `/metrics` sample named `name`, which may
    /// include the labels (`name{label="value"}`).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (_, body) = http_get(self.admin, "/metrics").await.ok()?;
        body.lines()
            .find(|line| line.starts_with(name) && line[name.len()..].starts_with([' ', '{']))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.log.is_some() && std::thread::panicking() {
            eprintln!("--- weft-controller log ---\n{}--- end ---", self.log());
        }
    }
}

/// A controller serving the Destination service, killed on drop.
pub struct DestinationController {
    pub process: ControllerProcess,
    pub destination: SocketAddr,
}

impl DestinationController {
    /// Spawns the controller reading `source` on free loopback ports.
    pub fn spawn(source: Source<'_>) -> Self {
        let destination = weft_test_support::free_addr();
        let admin = weft_test_support::free_addr();
        let mut command = controller_command(source, destination, admin);
        let process = ControllerProcess::spawn(&mut command, admin, None);
        Self {
            process,
            destination,
        }
    }

    /// [`Self::spawn`], then waits for `/ready` within `patience`.
    pub async fn start(source: Source<'_>, patience: Duration) -> Self {
        let mut controller = Self::spawn(source);
        let admin = controller.admin();
        wait_until_ready(&mut controller.process.child, admin, patience).await;
        controller
    }

    pub fn admin(&self) -> SocketAddr {
        self.process.admin
    }

    pub async fn client(&self) -> DestinationClient<Channel> {
        DestinationClient::connect(format!("http://{}", self.destination))
            .await
            .expect("connects to the Destination service")
    }
}

/// Waits until `condition` holds, polling every 50 ms; panics with `what`
/// after `patience`.
pub async fn eventually(patience: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {patience:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for `child` to exit within `patience`; kills it and panics with
/// `what` if it does not.
pub async fn wait_for_exit(child: &mut Child, patience: Duration, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > patience {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the controller did not exit");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the controller's `/ready` on `admin` until it answers 200, within
/// `patience`; panics if the process exits first or time runs out.
pub async fn wait_until_ready(child: &mut Child, admin: SocketAddr, patience: Duration) {
    let started = Instant::now();
    loop {
        if let Ok((200, _)) = http_get(admin, "/ready").await {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("weft-controller exited early: {status}");
        }
        assert!(
            started.elapsed() < patience,
            "controller never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bare HTTP/1.1 GET: (status, body).
pub async fn http_get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(address, path, &address.to_string(), "").await
}

/// A bare HTTP/1.1 GET with this `Host` and `extra` header lines (each
/// ending in CRLF): (status, body).
pub async fn http_get_with(
    address: SocketAddr,
    path: &str,
    host: &str,
    extra: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The identity name the controller issues for a service account (written
/// out here, independently of `weft_core::names`, so a changed format fails).
pub fn identity_of(namespace: &str, service_account: &str) -> String {
    format!("{service_account}.{namespace}.serviceaccount.identity.weft.cluster.local")
}

/// Asserts that the leaf of `response` chains through the returned
/// intermediates to `anchor_der` for each of `usages` and is valid for
/// `identity` (a DNS name).
pub fn assert_leaf_chains(
    response: &CertifyResponse,
    anchor_der: &[u8],
    identity: &str,
    usages: impl IntoIterator<Item = webpki::KeyUsage>,
) {
    let anchor_der = CertificateDer::from(anchor_der.to_vec());
    let anchors = [webpki::anchor_from_trusted_cert(&anchor_der).unwrap()];
    let intermediates: Vec<CertificateDer<'_>> = response
        .intermediate_certificates
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let leaf_der = CertificateDer::from(response.leaf_certificate.clone());
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).expect("the leaf is DER");
    for usage in usages {
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            UnixTime::now(),
            usage,
            None,
            None,
        )
        .expect("the leaf chains to the trust anchor");
    }
    leaf.verify_is_valid_for_subject_name(&ServerName::try_from(identity.to_string()).unwrap())
        .expect("the leaf names the identity");
}

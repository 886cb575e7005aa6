//! Wire contract of the real `weft-controller` binary's Identity service:
//! credentials from `weft-controller identity init`, tokens from
//! `--identity-token-dir`, a `linkerd2-proxy-api` Identity client sending
//! rcgen CSRs, leaves verified against the trust anchor with webpki, and the
//! issuer files replaced while it runs.

use crate::common::{
    Scratch, assert_leaf_chains, eventually, http_get, identity_command, identity_of,
    wait_until_ready,
};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use linkerd2_proxy_api::identity::identity_client::IdentityClient;
use linkerd2_proxy_api::identity::{CertifyRequest, CertifyResponse};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};
use tonic::Code;
use tonic::transport::Channel;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Generous bound for start-up and reloads.
const PATIENCE: Duration = Duration::from_secs(10);
/// Leaf lifetime bound: 24 h plus the 20 s skew on each side.
const MAX_LEAF_SECONDS: i64 = 24 * 3600 + 40;

const MESH: &str = "
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  serviceAccount: web
  addresses: [127.0.0.1]
  ports: [{name: http, port: 8081}]
  meshed: true
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: db-1, namespace: shop, labels: {app: db}}
spec:
  serviceAccount: db
  addresses: [127.0.0.2]
  ports: [{name: postgres, port: 5432}]
  meshed: true
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: legacy-1, namespace: shop, labels: {app: legacy}}
spec:
  serviceAccount: legacy
  addresses: [127.0.0.3]
  ports: [{name: http, port: 8080}]
  meshed: false
";

const NEW_WORKLOAD: &str = "
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: api-1, namespace: payments, labels: {app: api}}
spec:
  serviceAccount: api
  addresses: [127.0.0.4]
  ports: [{name: http, port: 8084}]
  meshed: true
";

fn controller_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_weft-controller"));
    command.env("RUST_LOG", "warn");
    command
}

/// The controller process, killed on drop.
struct Controller {
    child: Child,
    identity: SocketAddr,
    admin: SocketAddr,
}

impl Controller {
    /// Starts with identity enabled from `state` (made by `identity init`).
    async fn start(scratch: &Scratch) -> Self {
        Self::start_with(scratch, &[]).await
    }

    /// [`Self::start`] with more flags.
    async fn start_with(scratch: &Scratch, extra: &[&str]) -> Self {
        let identity = weft_test_support::free_addr();
        let admin = weft_test_support::free_addr();
        let child = controller_command()
            .arg("--mesh-file")
            .arg(scratch.path("mesh.yaml"))
            .args([
                "--destination-addr",
                &weft_test_support::free_addr().to_string(),
            ])
            .args(["--admin-addr", &admin.to_string()])
            .args(["--web-addr", "127.0.0.1:0"])
            .args(["--identity-addr", &identity.to_string()])
            .arg("--identity-issuer-dir")
            .arg(scratch.path("state/issuer"))
            .arg("--identity-trust-anchors")
            .arg(scratch.path("state/trust-anchor.pem"))
            .arg("--identity-token-dir")
            .arg(scratch.path("tokens"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("weft-controller starts");
        let mut controller = Self {
            child,
            identity,
            admin,
        };
        wait_until_ready(&mut controller.child, admin, PATIENCE).await;
        controller
    }

    async fn client(&self) -> IdentityClient<Channel> {
        IdentityClient::connect(format!("http://{}", self.identity))
            .await
            .expect("connects to the Identity service")
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One metric's value from `/metrics` (the first sample line starting with `name`).
async fn metric(controller: &Controller, name: &str) -> Option<f64> {
    let (_, body) = http_get(controller.admin, "/metrics").await.ok()?;
    body.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with([' ', '{']))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A CSR for `dns_name` as a proxy makes it: fresh P-256 key, no subject, DER.
fn csr_for(dns_name: &str) -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![dns_name.to_string()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.serialize_request(&key).unwrap().der().to_vec()
}

fn token(scratch: &Scratch, namespace: &str, workload: &str) -> Vec<u8> {
    std::fs::read(scratch.path(&format!("tokens/{namespace}/{workload}.token")))
        .expect("the token file exists")
}

async fn certify(
    client: &mut IdentityClient<Channel>,
    identity: &str,
    token: Vec<u8>,
    csr: Vec<u8>,
) -> Result<CertifyResponse, tonic::Status> {
    client
        .certify(CertifyRequest {
            identity: identity.to_string(),
            token,
            certificate_signing_request: csr,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn pem_certificates(path: &Path) -> Vec<Vec<u8>> {
    let text = std::fs::read(path).unwrap();
    x509_parser::pem::Pem::iter_from_buffer(&text)
        .map(|block| block.unwrap().contents)
        .collect()
}

/// Checks the response: the leaf chains through the returned issuer to the
/// anchor, is valid for `identity` (DNS SAN), for server and client auth, and
/// lives at most 24 h + skew; `valid_until` is its NotAfter.
fn assert_valid_leaf(response: &CertifyResponse, anchor_der: &[u8], identity: &str) {
    assert_eq!(
        response.intermediate_certificates.len(),
        1,
        "the issuer alone"
    );
    assert_leaf_chains(
        response,
        anchor_der,
        identity,
        [
            webpki::KeyUsage::server_auth(),
            webpki::KeyUsage::client_auth(),
        ],
    );

    let (_, parsed) = X509Certificate::from_der(&response.leaf_certificate).unwrap();
    let not_before = parsed.validity().not_before.timestamp();
    let not_after = parsed.validity().not_after.timestamp();
    assert!(
        not_after - not_before <= MAX_LEAF_SECONDS,
        "lifetime ≤ 24h + skew"
    );
    assert!(
        not_after - not_before >= 24 * 3600,
        "lifetime is the default 24 h"
    );
    let valid_until = response.valid_until.as_ref().expect("valid_until set");
    assert_eq!(valid_until.seconds, not_after);
}

#[tokio::test]
async fn init_refuses_to_overwrite_and_keeps_keys_private() {
    let scratch = Scratch::new("init");
    let state = scratch.path("state");
    let state = state.to_str().unwrap();
    let first = identity_command(&["init", "--dir", state]);
    assert!(first.status.success(), "{first:?}");
    for (file, private) in [
        ("state/trust-anchor.pem", false),
        ("state/trust-anchor.key.pem", true),
        ("state/issuer/crt.pem", false),
        ("state/issuer/key.pem", true),
        ("state/token.key", true),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(scratch.path(file))
            .expect(file)
            .permissions()
            .mode();
        if private {
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
    let anchor_before = std::fs::read(scratch.path("state/trust-anchor.pem")).unwrap();

    let again = identity_command(&["init", "--dir", state]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{again:?}"
    );
    assert_eq!(
        std::fs::read(scratch.path("state/trust-anchor.pem")).unwrap(),
        anchor_before
    );

    let forced = identity_command(&["init", "--dir", state, "--force"]);
    assert!(forced.status.success(), "{forced:?}");
    assert_ne!(
        std::fs::read(scratch.path("state/trust-anchor.pem")).unwrap(),
        anchor_before
    );
}

#[tokio::test]
async fn certify_issues_leaves_only_for_the_tokens_identity_and_follows_issuer_rotation() {
    let scratch = Scratch::new("certify");
    let init = identity_command(&["init", "--dir", scratch.path("state").to_str().unwrap()]);
    assert!(init.status.success(), "{init:?}");
    scratch.replace("mesh.yaml", MESH.as_bytes());
    let controller = Controller::start(&scratch).await;
    let anchor = pem_certificates(&scratch.path("state/trust-anchor.pem")).remove(0);
    let first_issuer = pem_certificates(&scratch.path("state/issuer/crt.pem")).remove(0);
    let mut client = controller.client().await;
    let web = identity_of("shop", "web");
    let db = identity_of("shop", "db");

    // Token files: one per meshed workload, private; none for legacy-1.
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(scratch.path("tokens/shop/web-1.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(!scratch.path("tokens/shop/legacy-1.token").exists());

    // A workload's token and a CSR for its identity: a leaf that chains to the anchor.
    let response = certify(
        &mut client,
        &web,
        token(&scratch, "shop", "web-1"),
        csr_for(&web),
    )
    .await
    .expect("web gets its certificate");
    assert_valid_leaf(&response, &anchor, &web);
    assert_eq!(
        response.intermediate_certificates,
        vec![first_issuer.clone()]
    );

    // Latency of a Certify round trip over loopback (key generation excluded).
    let mut timings = Vec::new();
    for _ in 0..20 {
        let csr = csr_for(&db);
        let started = Instant::now();
        certify(&mut client, &db, token(&scratch, "shop", "db-1"), csr)
            .await
            .expect("db gets its certificate");
        timings.push(started.elapsed());
    }
    timings.sort();
    println!(
        "certify latency over loopback: p50 {:?}, max {:?}",
        timings[timings.len() / 2],
        timings[timings.len() - 1]
    );

    // web's token can never obtain db's certificate.
    let stolen = certify(
        &mut client,
        &db,
        token(&scratch, "shop", "web-1"),
        csr_for(&db),
    )
    .await
    .expect_err("web's token is not db's");
    assert_eq!(stolen.code(), Code::FailedPrecondition);
    assert_eq!(
        stolen.message(),
        "requested identity did not match provided token"
    );
    // Nor with a CSR that names db while asking for web.
    let sneaky = certify(
        &mut client,
        &web,
        token(&scratch, "shop", "web-1"),
        csr_for(&db),
    )
    .await
    .expect_err("the CSR must name the requested identity");
    assert_eq!(sneaky.code(), Code::FailedPrecondition);
    // Tokens that prove nothing.
    let forged = certify(&mut client, &web, b"weft1.e30.AAAA".to_vec(), csr_for(&web))
        .await
        .expect_err("a forged token");
    assert_eq!(forged.code(), Code::FailedPrecondition);
    let garbage = certify(&mut client, &web, b"hello".to_vec(), csr_for(&web))
        .await
        .expect_err("a malformed token");
    assert_eq!(garbage.code(), Code::InvalidArgument);
    let no_csr = certify(
        &mut client,
        &web,
        token(&scratch, "shop", "web-1"),
        Vec::new(),
    )
    .await
    .expect_err("no CSR");
    assert_eq!(no_csr.code(), Code::InvalidArgument);

    assert_eq!(
        metric(&controller, "weft_controller_identity_cert_issued_total").await,
        Some(21.0)
    );
    let (_, metrics) = http_get(controller.admin, "/metrics").await.unwrap();
    assert!(
        metrics.contains(
            "weft_controller_identity_cert_rejected_total{reason=\"identity_mismatch\"} 1"
        ),
        "{metrics}"
    );
    let expiry = metric(
        &controller,
        "weft_controller_identity_issuer_expiration_timestamp_seconds",
    )
    .await
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(expiry > now + 364.0 * 86400.0, "the issuer lasts a year");

    // A new workload in the mesh file gets a token.
    scratch.replace("mesh.yaml", format!("{MESH}{NEW_WORKLOAD}").as_bytes());
    let started = Instant::now();
    while !scratch.path("tokens/payments/api-1.token").exists() {
        assert!(
            started.elapsed() < PATIENCE,
            "no token for the new workload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let api = identity_of("payments", "api");
    let response = certify(
        &mut client,
        &api,
        token(&scratch, "payments", "api-1"),
        csr_for(&api),
    )
    .await
    .expect("the new workload gets its certificate");
    assert_valid_leaf(&response, &anchor, &api);

    // A broken issuer replacement is reported and the old issuer keeps signing.
    scratch.replace("state/issuer/crt.pem", b"not a certificate");
    let started = Instant::now();
    loop {
        let (_, body) = http_get(controller.admin, "/ready").await.unwrap();
        if body.contains("crt.pem") && body.contains("\"current\":false") {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the bad issuer was never reported: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(
            &controller,
            "weft_controller_identity_issuer_failed_reloads_total"
        )
        .await,
        Some(1.0)
    );
    let response = certify(
        &mut client,
        &web,
        token(&scratch, "shop", "web-1"),
        csr_for(&web),
    )
    .await
    .expect("the previous issuer keeps signing");
    assert_eq!(
        response.intermediate_certificates,
        vec![first_issuer.clone()]
    );

    // A rotated issuer (same anchor): the next leaves chain to it.
    let rotate = identity_command(&[
        "rotate-issuer",
        "--dir",
        scratch.path("state").to_str().unwrap(),
    ]);
    assert!(rotate.status.success(), "{rotate:?}");
    let second_issuer = pem_certificates(&scratch.path("state/issuer/crt.pem")).remove(0);
    assert_ne!(second_issuer, first_issuer);
    let started = Instant::now();
    let response = loop {
        let response = certify(
            &mut client,
            &web,
            token(&scratch, "shop", "web-1"),
            csr_for(&web),
        )
        .await
        .expect("web gets its certificate");
        if response.intermediate_certificates == vec![second_issuer.clone()] {
            break response;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the new issuer never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_valid_leaf(&response, &anchor, &web);
    let (_, leaf) = X509Certificate::from_der(&response.leaf_certificate).unwrap();
    let (_, issuer) = X509Certificate::from_der(&second_issuer).unwrap();
    leaf.verify_signature(Some(issuer.public_key()))
        .expect("signed by the new issuer");
    assert_eq!(
        metric(&controller, "weft_controller_identity_issuer_reloads_total").await,
        Some(1.0)
    );
    let (status, body) = http_get(controller.admin, "/ready").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("\"current\":true"), "{body}");
}

#[tokio::test]
async fn tokens_are_renewed_expire_and_are_revoked_with_their_workload() {
    let scratch = Scratch::new("token-lifetime");
    let init = identity_command(&["init", "--dir", scratch.path("state").to_str().unwrap()]);
    assert!(init.status.success(), "{init:?}");
    scratch.replace("mesh.yaml", MESH.as_bytes());
    let controller = Controller::start_with(&scratch, &["--identity-token-lifetime", "4s"]).await;
    let mut client = controller.client().await;
    let web = identity_of("shop", "web");

    // The first token works.
    let first = token(&scratch, "shop", "web-1");
    certify(&mut client, &web, first.clone(), csr_for(&web))
        .await
        .expect("a fresh token is accepted");

    // With half of its 4 s left it is replaced by a new one, which works too.
    eventually(
        Duration::from_secs(6),
        "the token was never renewed",
        || token(&scratch, "shop", "web-1") != first,
    )
    .await;
    let renewed = token(&scratch, "shop", "web-1");
    certify(&mut client, &web, renewed, csr_for(&web))
        .await
        .expect("the renewed token is accepted");

    // The first token stops working at its expiry.
    let started = Instant::now();
    let expired = loop {
        match certify(&mut client, &web, first.clone(), csr_for(&web)).await {
            Ok(_) => {
                assert!(started.elapsed() < PATIENCE, "the old token never expired");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => break status,
        }
    };
    assert_eq!(expired.code(), Code::FailedPrecondition, "{expired:?}");
    assert!(
        expired.message().contains("token expired"),
        "{}",
        expired.message()
    );
    let (_, metrics) = http_get(controller.admin, "/metrics").await.unwrap();
    assert!(
        metrics
            .contains("weft_controller_identity_cert_rejected_total{reason=\"token_expired\"} 1"),
        "{metrics}"
    );

    // web-1 leaves the mesh file: its file goes, and a copy of its still
    // valid token obtains nothing.
    let copy = token(&scratch, "shop", "web-1");
    let without_web = MESH.replacen("name: web-1", "name: web-2", 1).replacen(
        "serviceAccount: web",
        "serviceAccount: web2",
        1,
    );
    scratch.replace("mesh.yaml", without_web.as_bytes());
    eventually(PATIENCE, "web-1's token file stayed", || {
        !scratch.path("tokens/shop/web-1.token").exists()
    })
    .await;
    assert!(scratch.path("tokens/shop/web-2.token").exists());
    let revoked = certify(&mut client, &web, copy, csr_for(&web))
        .await
        .expect_err("the service account left the mesh");
    assert_eq!(revoked.code(), Code::PermissionDenied, "{revoked:?}");
    assert!(
        revoked.message().contains("token revoked") && revoked.message().contains("\"web\""),
        "{}",
        revoked.message()
    );
    let web2 = identity_of("shop", "web2");
    certify(
        &mut client,
        &web2,
        token(&scratch, "shop", "web-2"),
        csr_for(&web2),
    )
    .await
    .expect("the new workload's token is accepted");
    let (_, metrics) = http_get(controller.admin, "/metrics").await.unwrap();
    assert!(
        metrics.contains("weft_controller_identity_token_files_removed_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn start_up_refuses_missing_or_untrusted_issuer_files() {
    let scratch = Scratch::new("refuse");
    scratch.replace("mesh.yaml", MESH.as_bytes());
    let other = Scratch::new("refuse-other");
    for directory in [&scratch, &other] {
        let init = identity_command(&["init", "--dir", directory.path("state").to_str().unwrap()]);
        assert!(init.status.success(), "{init:?}");
    }
    let run = |issuer_dir: PathBuf, anchors: PathBuf| {
        controller_command()
            .arg("--mesh-file")
            .arg(scratch.path("mesh.yaml"))
            .args([
                "--destination-addr",
                &weft_test_support::free_addr().to_string(),
            ])
            .args(["--admin-addr", &weft_test_support::free_addr().to_string()])
            .args(["--web-addr", "127.0.0.1:0"])
            .args([
                "--identity-addr",
                &weft_test_support::free_addr().to_string(),
            ])
            .arg("--identity-issuer-dir")
            .arg(issuer_dir)
            .arg("--identity-trust-anchors")
            .arg(anchors)
            .output()
            .unwrap()
    };
    let cases = [
        (
            "missing issuer directory",
            scratch.path("nowhere"),
            scratch.path("state/trust-anchor.pem"),
            "nowhere/crt.pem: cannot read",
        ),
        (
            "issuer of another mesh",
            other.path("state/issuer"),
            scratch.path("state/trust-anchor.pem"),
            "is not signed by any trust anchor",
        ),
        (
            "anchors not PEM",
            scratch.path("state/issuer"),
            scratch.path("mesh.yaml"),
            "mesh.yaml: holds no CERTIFICATE",
        ),
    ];
    for (name, issuer_dir, anchors, expected) in cases {
        let output = run(issuer_dir, anchors);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
}

//! Other proxies compared on the same work: nginx and HAProxy as L7
//! reverse proxies configured by the harness (one worker, one listen port
//! per workload: HTTP/1.1, h2c, gRPC), or any command given as a template.
//! Also two chains of two nginx processes (HTTP/1.1 only), plaintext and
//! with mutual TLS 1.3 between them, whose certificates (ECDSA P-256, a CA
//! and two leaves) the `openssl` command line makes. Missing nginx/HAProxy
//! binaries are installed with `apt-get` on request.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Another proxy to put in the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtherProxy {
    /// nginx, `worker_processes 1`.
    Nginx,
    /// HAProxy, `nbthread 1`.
    Haproxy,
    /// Two nginx processes in a chain, plaintext HTTP/1.1 between them
    /// (HTTP/1.1 only).
    NginxTwoHop,
    /// Two nginx processes in a chain, mutual TLS 1.3 between them
    /// (HTTP/1.1 only).
    NginxMtlsTwoHop,
    /// linkerd2-proxy (`linkerd=PATH`), transparent like weft-transparent:
    /// it only learns where a connection goes from `SO_ORIGINAL_DST`.
    Linkerd {
        /// The linkerd2-proxy binary (checked to be an executable file).
        binary: PathBuf,
    },
    /// `NAME=PROGRAM ARGS...`: `{listen}` and `{backend}` in the arguments
    /// are replaced by the address to listen on and the backend's address;
    /// the program must serve all three workloads on `{listen}`.
    Command {
        /// Setup name in reports.
        name: String,
        /// Whitespace-separated program and arguments (no shell quoting).
        template: String,
    },
}

impl OtherProxy {
    /// Parses `nginx`, `haproxy`, `nginx-2hop`, `nginx-mtls-2hop`,
    /// `linkerd=PATH` (PATH must be an executable file) or
    /// `NAME=COMMAND TEMPLATE`.
    pub fn parse(text: &str) -> anyhow::Result<OtherProxy> {
        match text {
            "nginx" => Ok(OtherProxy::Nginx),
            "haproxy" => Ok(OtherProxy::Haproxy),
            "nginx-2hop" => Ok(OtherProxy::NginxTwoHop),
            "nginx-mtls-2hop" => Ok(OtherProxy::NginxMtlsTwoHop),
            "linkerd" => bail!(
                "--other linkerd needs the linkerd2-proxy binary: --other linkerd=/path/to/linkerd2-proxy"
            ),
            _ if text.starts_with("linkerd=") => {
                let binary = PathBuf::from(&text["linkerd=".len()..]);
                check_executable(&binary).with_context(|| format!("--other {text}"))?;
                Ok(OtherProxy::Linkerd { binary })
            }
            _ => match text.split_once('=') {
                Some((name, template)) if !name.is_empty() && !template.trim().is_empty() => {
                    Ok(OtherProxy::Command {
                        name: name.to_string(),
                        template: template.to_string(),
                    })
                }
                _ => bail!(
                    "--other {text:?}: expected nginx, haproxy, nginx-2hop, nginx-mtls-2hop, \
                     linkerd=PATH or NAME='COMMAND {{listen}} {{backend}}'"
                ),
            },
        }
    }

    /// Setup name in reports.
    pub fn name(&self) -> &str {
        match self {
            OtherProxy::Nginx => "nginx",
            OtherProxy::Haproxy => "haproxy",
            OtherProxy::NginxTwoHop => "nginx-2hop",
            OtherProxy::NginxMtlsTwoHop => "nginx-mtls-2hop",
            OtherProxy::Linkerd { .. } => "linkerd",
            OtherProxy::Command { name, .. } => name,
        }
    }
}

/// Fails unless `path` is a file with an execute permission bit.
pub fn check_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata =
        std::fs::metadata(path).with_context(|| format!("{} does not exist", path.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a file", path.display());
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        bail!("{} is not executable", path.display());
    }
    Ok(())
}

/// Listen ports of a configured reverse proxy, one per workload.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// HTTP/1.1 in, HTTP/1.1 keep-alive to the backend.
    pub http1: SocketAddr,
    /// h2c (prior knowledge) in, HTTP/1.1 to the backend.
    pub http2: SocketAddr,
    /// h2c in, gRPC (HTTP/2) to the backend.
    pub grpc: SocketAddr,
}

/// The nginx configuration templates (`bench/src/nginx/`), filled in by
/// [`fill_template`]. Every one but `main.conf` starts with `{{main}}`.
mod nginx_templates {
    /// What every configuration starts with; ends inside the `http` block.
    pub(super) const MAIN: &str = include_str!("nginx/main.conf");
    /// `nginx`: one port per workload in front of the backend.
    pub(super) const REVERSE_PROXY: &str = include_str!("nginx/reverse_proxy.conf");
    /// One hop of `nginx-2hop` / `nginx-mtls-2hop`.
    pub(super) const CHAIN_HOP: &str = include_str!("nginx/chain_hop.conf");
    /// The server side of a mutual TLS hop (inside its `server` block).
    pub(super) const CHAIN_ACCEPT_TLS: &str = include_str!("nginx/chain_accept_tls.conf");
    /// The client side of a mutual TLS hop (inside its `location` block).
    pub(super) const CHAIN_CONNECT_TLS: &str = include_str!("nginx/chain_connect_tls.conf");
}

/// Replaces every `{{name}}` in `template` with its value from `values`, in
/// one pass (values are not searched for placeholders). A placeholder without
/// a value is a bug in the harness: it panics, and the tests fill every
/// template.
pub fn fill_template(template: &str, values: &[(&str, &str)]) -> String {
    let mut filled = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        filled.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .unwrap_or_else(|| panic!("unclosed placeholder in template: {after:.40}"));
        let name = &after[..end];
        let value = values
            .iter()
            .find(|(key, _)| *key == name)
            .unwrap_or_else(|| panic!("no value for template placeholder {{{{{name}}}}}"))
            .1;
        filled.push_str(value);
        rest = &after[end + 2..];
    }
    filled.push_str(rest);
    filled
}

/// nginx configuration for `ports` in front of `backend`; `dir` holds its
/// pid, log and temp files.
pub fn nginx_config(ports: &Ports, backend: SocketAddr, dir: &Path) -> String {
    fill_template(
        nginx_templates::REVERSE_PROXY,
        &[
            ("main", &nginx_main(dir)),
            ("backend", &backend.to_string()),
            ("http1", &ports.http1.to_string()),
            ("http2", &ports.http2.to_string()),
            ("grpc", &ports.grpc.to_string()),
        ],
    )
}

/// The part of every nginx configuration the harness writes (`main.conf`),
/// with its files in `dir`.
fn nginx_main(dir: &Path) -> String {
    fill_template(
        nginx_templates::MAIN,
        &[("dir", &dir.display().to_string())],
    )
}

/// Path on the server-side nginx of `nginx-mtls-2hop` that answers with the
/// TLS session it was reached over (`$ssl_protocol $ssl_client_verify
/// $ssl_client_s_dn`) instead of proxying: asked through the client-side
/// nginx, it shows what the hop between the two is.
pub const TLS_CHECK_PATH: &str = "/weft-bench/tls-session";

/// Name in the server-side leaf certificate of `nginx-mtls-2hop` (its
/// subjectAltName), which the client-side nginx verifies.
pub const CHAIN_SERVER_NAME: &str = "nginx-server-side.bench.weft-bench.test";

/// Name in the client-side leaf certificate of `nginx-mtls-2hop`.
pub const CHAIN_CLIENT_NAME: &str = "nginx-client-side.bench.weft-bench.test";

/// A leaf certificate and its key, PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// The certificate.
    pub certificate: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// The certificates of `nginx-mtls-2hop`: one CA and a leaf for each side,
/// both leaves usable for server and client authentication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCertificates {
    /// The CA certificate both sides trust.
    pub authority: PathBuf,
    /// The server-side nginx's certificate (`CHAIN_SERVER_NAME`).
    pub server: Leaf,
    /// The client-side nginx's certificate (`CHAIN_CLIENT_NAME`).
    pub client: Leaf,
}

impl ChainCertificates {
    /// The files under `dir`.
    pub fn in_dir(dir: &Path) -> ChainCertificates {
        let leaf = |name: &str| Leaf {
            certificate: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        ChainCertificates {
            authority: dir.join("ca.pem"),
            server: leaf("server-side"),
            client: leaf("client-side"),
        }
    }
}

/// Makes the CA and the two leaves of `nginx-mtls-2hop` in `dir` with the
/// `openssl` command line: ECDSA P-256 keys (as in weft's mesh), leaves
/// signed by the CA with serverAuth and clientAuth and one DNS name each.
pub fn make_chain_certificates(openssl: &Path, dir: &Path) -> anyhow::Result<ChainCertificates> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = ChainCertificates::in_dir(dir);
    let path = |p: &Path| p.display().to_string();
    let authority_key = dir.join("ca.key");
    run_openssl(openssl, &p256_key_args(&path(&authority_key)))?;
    run_openssl(
        openssl,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &path(&authority_key),
            "-subj",
            "/CN=weft-bench nginx chain CA",
            "-days",
            "7",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            &path(&files.authority),
        ],
    )?;
    for (serial, leaf, name) in [
        ("2", &files.server, CHAIN_SERVER_NAME),
        ("3", &files.client, CHAIN_CLIENT_NAME),
    ] {
        run_openssl(openssl, &p256_key_args(&path(&leaf.key)))?;
        let request = leaf.certificate.with_extension("csr");
        run_openssl(
            openssl,
            &[
                "req",
                "-new",
                "-key",
                &path(&leaf.key),
                "-subj",
                &format!("/CN={name}"),
                "-out",
                &path(&request),
            ],
        )?;
        let extensions = leaf.certificate.with_extension("ext");
        std::fs::write(&extensions, leaf_extensions(name))?;
        run_openssl(
            openssl,
            &[
                "x509",
                "-req",
                "-in",
                &path(&request),
                "-CA",
                &path(&files.authority),
                "-CAkey",
                &path(&authority_key),
                "-set_serial",
                serial,
                "-days",
                "7",
                "-extfile",
                &path(&extensions),
                "-out",
                &path(&leaf.certificate),
            ],
        )?;
    }
    Ok(files)
}

/// The `openssl` arguments that make an ECDSA P-256 key at `out` (PEM).
pub fn p256_key_args(out: &str) -> [&str; 7] {
    [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        out,
    ]
}

/// X.509v3 extensions of a chain leaf named `name`.
fn leaf_extensions(name: &str) -> String {
    format!(
        "basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:{name}
"
    )
}

/// Runs `openssl ARGS`; fails with its stderr.
pub(crate) fn run_openssl(openssl: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(openssl)
        .args(args)
        .output()
        .with_context(|| format!("running {} {}", openssl.display(), args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "openssl {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Sends `GET path` (`Connection: close`) over TLS 1.3 to `addr` with
/// `openssl s_client`, verifying the server as `CHAIN_SERVER_NAME` against
/// the chain's CA and presenting `client` when given; returns what came back
/// (empty when the server refused the connection).
pub fn tls_get(
    openssl: &Path,
    addr: SocketAddr,
    certificates: &ChainCertificates,
    client: Option<&Leaf>,
    path: &str,
) -> anyhow::Result<String> {
    let mut command = Command::new(openssl);
    command
        .args(["s_client", "-quiet", "-tls1_3", "-verify_return_error"])
        .args(["-connect", &addr.to_string()])
        .args(["-servername", CHAIN_SERVER_NAME])
        .args(["-verify_hostname", CHAIN_SERVER_NAME])
        .arg("-CAfile")
        .arg(&certificates.authority);
    if let Some(client) = client {
        command
            .arg("-cert")
            .arg(&client.certificate)
            .arg("-key")
            .arg(&client.key);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting openssl s_client")?;
    if let Some(mut stdin) = child.stdin.take() {
        // The server may refuse before reading: a failed write is an answer.
        let _ = write!(
            stdin,
            "GET {path} HTTP/1.1\r\nHost: {CHAIN_SERVER_NAME}\r\nConnection: close\r\n\r\n"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("openssl s_client to {addr} did not finish within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut response = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout.read_to_string(&mut response)?;
    }
    Ok(response)
}

/// One nginx of a two-nginx chain: HTTP/1.1 on `listen`, keep-alive
/// HTTP/1.1 to `upstream`.
#[derive(Clone, Debug)]
pub struct ChainHop<'a> {
    /// Directory of its pid, log and temp files.
    pub dir: &'a Path,
    /// Where it listens.
    pub listen: SocketAddr,
    /// Where it sends requests (the next nginx, or the backend).
    pub upstream: SocketAddr,
    /// Mutual TLS on its listener (server side) or toward its upstream
    /// (client side); plaintext when `None`.
    pub tls: Option<ChainTls<'a>>,
}

/// The mutual TLS side of a chain hop.
#[derive(Clone, Copy, Debug)]
pub enum ChainTls<'a> {
    /// Terminate TLS 1.3 on the listener, requiring a client certificate
    /// signed by the CA.
    Accept(&'a ChainCertificates),
    /// Connect to the upstream with TLS 1.3, presenting the client
    /// certificate and verifying the server's against the CA and
    /// `CHAIN_SERVER_NAME`.
    Connect(&'a ChainCertificates),
}

/// nginx configuration of one hop of `nginx-2hop` / `nginx-mtls-2hop`.
pub fn nginx_chain_config(hop: &ChainHop<'_>) -> String {
    let path = |p: &Path| p.display().to_string();
    let tls_files = |leaf: &Leaf, certificates: &ChainCertificates| {
        [
            path(&leaf.certificate),
            path(&leaf.key),
            path(&certificates.authority),
        ]
    };
    let (listen_tls, server_tls, upstream_scheme, proxy_tls) = match hop.tls {
        None => ("", String::new(), "http", String::new()),
        Some(ChainTls::Accept(certificates)) => {
            let [certificate, key, authority] = tls_files(&certificates.server, certificates);
            let server_tls = fill_template(
                nginx_templates::CHAIN_ACCEPT_TLS,
                &[
                    ("certificate", &certificate),
                    ("key", &key),
                    ("authority", &authority),
                    ("tls_check_path", TLS_CHECK_PATH),
                ],
            );
            (" ssl", server_tls, "http", String::new())
        }
        Some(ChainTls::Connect(certificates)) => {
            let [certificate, key, authority] = tls_files(&certificates.client, certificates);
            let proxy_tls = fill_template(
                nginx_templates::CHAIN_CONNECT_TLS,
                &[
                    ("certificate", &certificate),
                    ("key", &key),
                    ("authority", &authority),
                    ("server_name", CHAIN_SERVER_NAME),
                ],
            );
            ("", String::new(), "https", proxy_tls)
        }
    };
    fill_template(
        nginx_templates::CHAIN_HOP,
        &[
            ("main", &nginx_main(hop.dir)),
            ("upstream", &hop.upstream.to_string()),
            ("listen", &hop.listen.to_string()),
            ("listen_tls", listen_tls),
            ("server_tls", &server_tls),
            ("upstream_scheme", upstream_scheme),
            ("proxy_tls", &proxy_tls),
        ],
    )
}

/// HAProxy configuration for `ports` in front of `backend`.
pub fn haproxy_config(ports: &Ports, backend: SocketAddr) -> String {
    format!(
        "global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend http1
  bind {h1}
  default_backend plain
frontend http2
  bind {h2} proto h2
  default_backend plain
frontend grpc
  bind {grpc} proto h2
  default_backend grpc
backend plain
  server backend {backend}
backend grpc
  server backend {backend} proto h2
",
        h1 = ports.http1,
        h2 = ports.http2,
        grpc = ports.grpc,
    )
}

/// Program and arguments of a command template with its placeholders
/// filled in.
pub fn expand_template(template: &str, listen: SocketAddr, backend: SocketAddr) -> Vec<String> {
    template
        .split_whitespace()
        .map(|word| {
            word.replace("{listen}", &listen.to_string())
                .replace("{backend}", &backend.to_string())
        })
        .collect()
}

/// Finds `program` (on `PATH` or in `/usr/sbin`), installing the Debian
/// package `package` with `apt-get` first when `install` is set.
pub fn locate_or_install(program: &str, package: &str, install: bool) -> anyhow::Result<PathBuf> {
    if let Some(found) = locate(program) {
        return Ok(found);
    }
    if !install {
        bail!(
            "{program} not found; install it (apt-get install {package}) or pass --install-others"
        );
    }
    eprintln!("weft-bench: installing {package} with apt-get...");
    let update = Command::new("apt-get").args(["update", "-q"]).status();
    if !update.is_ok_and(|s| s.success()) {
        eprintln!("weft-bench: apt-get update failed; trying the install anyway");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .with_context(|| format!("running apt-get install {package}"))?;
    if !status.success() {
        bail!("apt-get install {package} failed: {status}");
    }
    locate(program).with_context(|| format!("{program} still not found after installing {package}"))
}

/// Finds `program` on `PATH` or in `/usr/sbin`.
pub fn locate(program: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_other_proxies() {
        assert_eq!(OtherProxy::parse("nginx").unwrap(), OtherProxy::Nginx);
        let command = OtherProxy::parse("envoy=envoy -c x --listen {listen}").unwrap();
        assert_eq!(command.name(), "envoy");
        assert!(OtherProxy::parse("bogus").is_err());
        for name in ["nginx-2hop", "nginx-mtls-2hop"] {
            assert_eq!(OtherProxy::parse(name).unwrap().name(), name);
        }
    }

    #[test]
    fn parses_linkerd_with_an_executable_path() {
        let linkerd = OtherProxy::parse("linkerd=/bin/sh").unwrap();
        assert_eq!(
            linkerd,
            OtherProxy::Linkerd {
                binary: PathBuf::from("/bin/sh")
            }
        );
        assert_eq!(linkerd.name(), "linkerd");
        let table = [
            ("linkerd", "needs the linkerd2-proxy binary"),
            ("linkerd=/nonexistent/linkerd2-proxy", "does not exist"),
            ("linkerd=/", "is not a file"),
            ("linkerd=/etc/passwd", "is not executable"),
        ];
        for (text, expected) in table {
            let error = format!("{:#}", OtherProxy::parse(text).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn expands_templates() {
        let words = expand_template(
            "socat TCP-LISTEN:{listen} TCP:{backend}",
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        assert_eq!(
            words,
            ["socat", "TCP-LISTEN:127.0.0.1:1", "TCP:127.0.0.1:2"]
        );
    }

    #[test]
    fn fills_templates_in_one_pass() {
        let filled = fill_template("a {{x}} b {{y}}{{x}} { c }", &[("x", "1"), ("y", "{{x}}")]);
        assert_eq!(filled, "a 1 b {{x}}1 { c }");
        assert_eq!(fill_template("no placeholders", &[]), "no placeholders");
    }

    #[test]
    #[should_panic(expected = "no value for template placeholder {{z}}")]
    fn a_placeholder_without_a_value_is_a_bug() {
        fill_template("{{z}}", &[]);
    }

    /// Every template's placeholders are filled: no `{{` is left, and the
    /// braces balance.
    #[test]
    fn configs_leave_no_placeholder() {
        let ports = Ports {
            http1: "127.0.0.1:1001".parse().unwrap(),
            http2: "127.0.0.1:1002".parse().unwrap(),
            grpc: "127.0.0.1:1003".parse().unwrap(),
        };
        let certificates = ChainCertificates::in_dir(Path::new("/tmp/x/tls"));
        let hop = |tls| {
            nginx_chain_config(&ChainHop {
                dir: Path::new("/tmp/x"),
                listen: "127.0.0.1:1001".parse().unwrap(),
                upstream: "127.0.0.1:1002".parse().unwrap(),
                tls,
            })
        };
        for config in [
            nginx_config(
                &ports,
                "127.0.0.1:2000".parse().unwrap(),
                Path::new("/tmp/x"),
            ),
            hop(None),
            hop(Some(ChainTls::Accept(&certificates))),
            hop(Some(ChainTls::Connect(&certificates))),
        ] {
            assert!(!config.contains("{{"), "{config}");
            assert!(config.contains("worker_processes 1;"), "{config}");
            let opened = config.matches('{').count();
            assert_eq!(opened, config.matches('}').count(), "{config}");
        }
    }

    #[test]
    fn configs_name_every_port() {
        let ports = Ports {
            http1: "127.0.0.1:1001".parse().unwrap(),
            http2: "127.0.0.1:1002".parse().unwrap(),
            grpc: "127.0.0.1:1003".parse().unwrap(),
        };
        let backend = "127.0.0.1:2000".parse().unwrap();
        let nginx = nginx_config(&ports, backend, Path::new("/tmp/x"));
        let haproxy = haproxy_config(&ports, backend);
        for config in [nginx, haproxy] {
            for port in ["1001", "1002", "1003", "2000"] {
                assert!(config.contains(port), "{port} missing from {config}");
            }
        }
    }

    #[test]
    fn chain_configs_name_every_port_and_certificate() {
        let certificates = ChainCertificates::in_dir(Path::new("/tmp/x/tls"));
        let server_dir = Path::new("/tmp/x/server-side");
        let client_dir = Path::new("/tmp/x/client-side");
        let hop = |dir, listen: &str, upstream: &str, tls| ChainHop {
            dir,
            listen: listen.parse().unwrap(),
            upstream: upstream.parse().unwrap(),
            tls,
        };

        let plain = nginx_chain_config(&hop(client_dir, "127.0.0.1:1001", "127.0.0.1:1002", None));
        for expected in [
            "listen 127.0.0.1:1001;",
            "server 127.0.0.1:1002; keepalive 256; keepalive_requests 1000000;",
            "proxy_pass http://next;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_ignore_client_abort on;",
            "pid /tmp/x/client-side/nginx.pid;",
        ] {
            assert!(plain.contains(expected), "{expected} missing from {plain}");
        }
        assert!(!plain.contains("ssl"), "{plain}");

        let server = nginx_chain_config(&hop(
            server_dir,
            "127.0.0.1:1002",
            "127.0.0.1:2000",
            Some(ChainTls::Accept(&certificates)),
        ));
        for expected in [
            "listen 127.0.0.1:1002 ssl;",
            "server 127.0.0.1:2000;",
            "proxy_pass http://next;",
            "ssl_certificate /tmp/x/tls/server-side.pem;",
            "ssl_certificate_key /tmp/x/tls/server-side.key;",
            "ssl_protocols TLSv1.3;",
            "ssl_verify_client on;",
            "ssl_client_certificate /tmp/x/tls/ca.pem;",
            TLS_CHECK_PATH,
            "pid /tmp/x/server-side/nginx.pid;",
        ] {
            assert!(
                server.contains(expected),
                "{expected} missing from {server}"
            );
        }

        let client = nginx_chain_config(&hop(
            client_dir,
            "127.0.0.1:1001",
            "127.0.0.1:1002",
            Some(ChainTls::Connect(&certificates)),
        ));
        for expected in [
            "listen 127.0.0.1:1001;",
            "server 127.0.0.1:1002; keepalive 256;",
            "proxy_pass https://next;",
            "proxy_ssl_certificate /tmp/x/tls/client-side.pem;",
            "proxy_ssl_certificate_key /tmp/x/tls/client-side.key;",
            "proxy_ssl_trusted_certificate /tmp/x/tls/ca.pem;",
            "proxy_ssl_verify on;",
            &format!("proxy_ssl_name {CHAIN_SERVER_NAME};"),
            "proxy_ssl_session_reuse on;",
            "proxy_ssl_protocols TLSv1.3;",
        ] {
            assert!(
                client.contains(expected),
                "{expected} missing from {client}"
            );
        }
        assert!(!client.contains("ssl_verify_client"), "{client}");
    }

    #[test]
    fn chain_leaves_serve_both_ways() {
        assert!(leaf_extensions("a.test").contains("serverAuth, clientAuth"));
        assert!(leaf_extensions("a.test").contains("DNS:a.test"));
        let Some(openssl) = locate("openssl") else {
            eprintln!("openssl not installed: certificate generation not tried");
            return;
        };
        let dir = std::env::temp_dir().join(format!("weft-bench-chain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let certificates = make_chain_certificates(&openssl, &dir).unwrap();
        assert_eq!(certificates, ChainCertificates::in_dir(&dir));
        for (purpose, leaf) in [
            ("sslserver", &certificates.server),
            ("sslclient", &certificates.server),
            ("sslserver", &certificates.client),
            ("sslclient", &certificates.client),
        ] {
            run_openssl(
                &openssl,
                &[
                    "verify",
                    "-CAfile",
                    &certificates.authority.display().to_string(),
                    "-purpose",
                    purpose,
                    &leaf.certificate.display().to_string(),
                ],
            )
            .unwrap();
            let key = std::fs::read_to_string(&leaf.key).unwrap();
            assert!(key.contains("PRIVATE KEY"), "{key}");
        }
        let text = Command::new(&openssl)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&certificates.server.certificate)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(
            text.contains("prime256v1") || text.contains("P-256"),
            "{text}"
        );
        assert!(text.contains(CHAIN_SERVER_NAME), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

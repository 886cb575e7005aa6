//! Other proxies compared on the same work: nginx and HAProxy as L7
//! reverse proxies configured by the harness (one worker, one listen port
//! per workload: HTTP/1.1, h2c, gRPC), or any command given as a template.
//! Missing nginx/HAProxy binaries are installed with `apt-get` on request.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Another proxy to put in the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OtherProxy {
    /// nginx, `worker_processes 1`.
    Nginx,
    /// HAProxy, `nbthread 1`.
    Haproxy,
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
    /// Parses `nginx`, `haproxy` or `NAME=COMMAND TEMPLATE`.
    pub fn parse(text: &str) -> anyhow::Result<OtherProxy> {
        match text {
            "nginx" => Ok(OtherProxy::Nginx),
            "haproxy" => Ok(OtherProxy::Haproxy),
            _ => match text.split_once('=') {
                Some((name, template)) if !name.is_empty() && !template.trim().is_empty() => {
                    Ok(OtherProxy::Command {
                        name: name.to_string(),
                        template: template.to_string(),
                    })
                }
                _ => bail!(
                    "--other {text:?}: expected nginx, haproxy or NAME='COMMAND {{listen}} {{backend}}'"
                ),
            },
        }
    }

    /// Setup name in reports.
    pub fn name(&self) -> &str {
        match self {
            OtherProxy::Nginx => "nginx",
            OtherProxy::Haproxy => "haproxy",
            OtherProxy::Command { name, .. } => name,
        }
    }
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

/// nginx configuration for `ports` in front of `backend`; `dir` holds its
/// pid, log and temp files.
pub fn nginx_config(ports: &Ports, backend: SocketAddr, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "user root;
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  keepalive_requests 1000000;
  http2_max_concurrent_streams 1024;
  # Separate pools: a cached gRPC (HTTP/2) connection must never be
  # reused for an HTTP/1.1 request.
  upstream plain {{ server {backend}; keepalive 256; keepalive_requests 1000000; }}
  upstream grpc {{ server {backend}; keepalive 256; keepalive_requests 1000000; }}
  server {{
    listen {h1};
    location / {{ proxy_pass http://plain; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}
  }}
  server {{
    listen {h2} http2;
    location / {{ proxy_pass http://plain; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}
  }}
  server {{
    listen {grpc} http2;
    location / {{ grpc_pass grpc://grpc; }}
  }}
}}
",
        h1 = ports.http1,
        h2 = ports.http2,
        grpc = ports.grpc,
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

fn locate(program: &str) -> Option<PathBuf> {
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
}

//! The `weft-proxy` child process: locate, spawn, wait for `/ready`, stop.
//!
//! The proxy is configured only through its `WEFT_PROXY_*` environment (see
//! `crates/proxy/README.md`); the demo sets the three listen addresses and the
//! inbound forward address, and passes everything else through.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use rustix::process::{Pid, Signal, kill_process};
use tokio::process::{Child, Command};

use crate::traffic::http1_get;

/// Grace period given to the proxy unless `WEFT_PROXY_SHUTDOWN_GRACE_PERIOD`
/// is already set: a demo should stop promptly on Ctrl-C.
const DEMO_GRACE_PERIOD: &str = "3s";

/// Addresses the proxy is started with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The `weft-proxy` executable.
    pub bin: PathBuf,
    /// `WEFT_PROXY_INBOUND_LISTEN_ADDR`.
    pub inbound: SocketAddr,
    /// `WEFT_PROXY_OUTBOUND_LISTEN_ADDR`.
    pub outbound: SocketAddr,
    /// `WEFT_PROXY_ADMIN_LISTEN_ADDR`.
    pub admin: SocketAddr,
    /// `WEFT_PROXY_INBOUND_FORWARD_ADDR`: the demo app.
    pub forward_to: SocketAddr,
}

/// A running proxy child process.
pub struct Proxy {
    child: Child,
    admin: SocketAddr,
}

/// Finds the proxy binary: `explicit` if given, else `weft-proxy` next to the
/// running executable (both are built into the same `target/<profile>/`).
pub fn locate(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match explicit {
        Some(bin) => bin,
        None => std::env::current_exe()
            .context("cannot find the running executable")?
            .with_file_name("weft-proxy"),
    };
    if !bin.is_file() {
        bail!(
            "weft-proxy not found at {} (build it with `cargo build -p weft-proxy`, \
             or pass --proxy PATH)",
            bin.display()
        );
    }
    Ok(bin)
}

impl Proxy {
    /// Starts the proxy. Its stdout and stderr (logs) are the demo's own.
    pub fn spawn(config: &ProxyConfig) -> anyhow::Result<Self> {
        let mut command = Command::new(&config.bin);
        command
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", config.inbound.to_string())
            .env(
                "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
                config.outbound.to_string(),
            )
            .env("WEFT_PROXY_ADMIN_LISTEN_ADDR", config.admin.to_string())
            .env(
                "WEFT_PROXY_INBOUND_FORWARD_ADDR",
                config.forward_to.to_string(),
            )
            .stdin(Stdio::null())
            // Should the demo die without stopping it, do not leave it behind.
            .kill_on_drop(true);
        if std::env::var_os("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD").is_none() {
            command.env("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", DEMO_GRACE_PERIOD);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", config.bin.display()))?;
        Ok(Self {
            child,
            admin: config.admin,
        })
    }

    /// The proxy's process id.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Polls `GET /ready` until it answers 200, the proxy exits, or `timeout`.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let host = self.admin.to_string();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("weft-proxy exited before it was ready ({status}); its log is above");
            }
            let last = match http1_get(self.admin, "/ready", &host).await {
                Ok(answer) if answer.status.is_success() => return Ok(()),
                Ok(answer) => format!("/ready answered {}", answer.status),
                Err(error) => format!("{error:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                bail!("weft-proxy not ready after {timeout:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the proxy process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Resolves when the proxy exits on its own.
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// Sends SIGTERM (graceful drain) and waits up to `timeout`, then SIGKILL.
    pub async fn stop(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        if let Some(pid) = self
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw)
        {
            // It may exit between try_wait and kill: ESRCH is fine.
            let _ = kill_process(pid, Signal::TERM);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                bail!("weft-proxy did not exit within {timeout:?} of SIGTERM; killed it")
            }
        }
    }
}

/// `path` shortened for display when it is under the current directory.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

//! `weft-proxy` inside the test process: [`InProcessProxy`] runs the proxy
//! library's own `app::run` on a runtime thread of its own, configured
//! through `Config::from_lookup` from a map instead of the environment.
//!
//! For tests that need nothing a separate process gives (signals, exit
//! status, RSS, an open-file limit, a log file): it starts without an exec
//! of the debug binary, and a failure's backtrace runs through proxy code.
//! It stops with `POST /shutdown` on drop, as an operator would stop it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weft_proxy::{app, config::Config};
use weft_test_support::proxy::{AdminResponse, admin_request};
use weft_test_support::{RunningProxy, free_addr};

/// How long [`InProcessBuilder::start`] waits for `/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How long drop waits for the proxy to drain and its thread to end.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds and starts an [`InProcessProxy`].
#[derive(Debug, Default, Clone)]
pub struct InProcessBuilder {
    variables: Vec<(String, String)>,
}

impl InProcessBuilder {
    /// Sets a `WEFT_PROXY_*` variable (later values win).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }

    /// Explicit inbound mode: every inbound connection goes to `app`.
    pub fn inbound_forward(self, app: SocketAddr) -> Self {
        self.env("WEFT_PROXY_INBOUND_FORWARD_ADDR", app.to_string())
    }

    /// Starts the proxy on free loopback ports and waits until `/ready`
    /// answers 200; panics with the start-up error otherwise.
    pub fn start(self) -> InProcessProxy {
        // A port picked free may be taken before the proxy binds it: retry.
        const ATTEMPTS: usize = 3;
        let mut last_error = String::new();
        for _ in 0..ATTEMPTS {
            match self.try_start() {
                Ok(proxy) => return proxy,
                Err(error) if error.contains("Address already in use") => last_error = error,
                Err(error) => panic!("in-process weft-proxy did not start: {error}"),
            }
        }
        panic!("in-process weft-proxy did not start: {last_error}")
    }

    fn try_start(&self) -> Result<InProcessProxy, String> {
        let addresses = Addresses {
            inbound: free_addr(),
            outbound: free_addr(),
            admin: free_addr(),
            tap: free_addr(),
        };
        let mut variables: HashMap<String, String> = HashMap::from([
            // Stopping on drop should not wait out the default grace period.
            ("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD".into(), "1s".into()),
            (
                "WEFT_PROXY_INBOUND_LISTEN_ADDR".into(),
                addresses.inbound.to_string(),
            ),
            (
                "WEFT_PROXY_OUTBOUND_LISTEN_ADDR".into(),
                addresses.outbound.to_string(),
            ),
            (
                "WEFT_PROXY_ADMIN_LISTEN_ADDR".into(),
                addresses.admin.to_string(),
            ),
            (
                "WEFT_PROXY_TAP_LISTEN_ADDR".into(),
                addresses.tap.to_string(),
            ),
        ]);
        variables.extend(self.variables.iter().cloned());
        let config = Config::from_lookup(&|name| variables.get(name).cloned())
            .map_err(|error| error.to_string())?;
        let thread = std::thread::Builder::new()
            .name("in-process-proxy".into())
            .spawn(move || {
                let runtime = app::runtime(&config).map_err(|error| error.to_string())?;
                runtime
                    .block_on(app::run(config))
                    .map_err(|error| error.to_string())
            })
            .map_err(|error| error.to_string())?;
        let mut proxy = InProcessProxy {
            addresses,
            thread: Some(thread),
        };
        proxy.wait_ready()?;
        Ok(proxy)
    }
}

/// The four listeners' addresses.
#[derive(Debug, Clone, Copy)]
struct Addresses {
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
    tap: SocketAddr,
}

/// A proxy running on a thread of the test process; stopped on drop.
#[derive(Debug)]
pub struct InProcessProxy {
    addresses: Addresses,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl InProcessProxy {
    /// A builder with no extra variables.
    pub fn builder() -> InProcessBuilder {
        InProcessBuilder::default()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                let outcome = self.thread.take().map(JoinHandle::join);
                return Err(match outcome {
                    Some(Ok(Err(error))) => error,
                    Some(Err(_)) => "the proxy thread panicked".into(),
                    _ => "the proxy stopped before it was ready".into(),
                });
            }
            if matches!(
                self.admin_get("/ready"),
                Ok(AdminResponse { status: 200, .. })
            ) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready within {READY_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl RunningProxy for InProcessProxy {
    fn inbound_addr(&self) -> SocketAddr {
        self.addresses.inbound
    }

    fn outbound_addr(&self) -> SocketAddr {
        self.addresses.outbound
    }

    fn admin_addr(&self) -> SocketAddr {
        self.addresses.admin
    }

    fn tap_addr(&self) -> SocketAddr {
        self.addresses.tap
    }
}

impl Drop for InProcessProxy {
    fn drop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let _ = admin_request(self.addresses.admin, "POST", "/shutdown");
        let deadline = Instant::now() + STOP_TIMEOUT;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // A proxy that does not stop in time is left to the process's exit;
        // a test that needs a clean stop asserts it itself.
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

//! Wiring `weft-controller`, in start-up order:
//!
//! ```text
//! 1. load the mesh file into the catalog      (a bad or missing file stops start-up: exit 64)
//! 2. bind --destination-addr and --admin-addr (a taken port stops start-up, naming the flag)
//! 3. register metrics in one registry
//! 4. start the mesh-file watcher, the Destination server, the admin server
//! 5. mark ready; on SIGTERM/SIGINT stop everything and drain
//! ```
//!
//! The admin server answers `/metrics` (OpenMetrics text), `/ready` (200 once
//! the first good load is serving; the body shows the mesh file's status,
//! including the current file's error while the last good version serves) and
//! `/live`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::destination::{DestinationMetrics, DestinationService, ServerError};
use crate::mesh_file::{MeshFileError, MeshFileSource, MeshFileStatus};

/// The exit status for a bad or missing mesh file at start-up (`EX_USAGE`).
pub const EXIT_BAD_MESH_FILE: i32 = 64;
/// How long shutdown waits for servers to drain before giving up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Command-line flags (each with an environment fallback).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "weft-controller", about = "The weft control plane", version)]
pub struct Args {
    /// The mesh file: multi-document YAML of Services, Workloads,
    /// ServiceProfiles and TrafficSplits. Watched for edits.
    #[arg(long, env = "WEFT_CONTROLLER_MESH_FILE")]
    pub mesh_file: PathBuf,
    /// Where the Destination gRPC service listens.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_DESTINATION_ADDR",
        default_value = "0.0.0.0:8086"
    )]
    pub destination_addr: SocketAddr,
    /// Where the admin HTTP server (/metrics, /ready, /live) listens.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_ADMIN_ADDR",
        default_value = "127.0.0.1:9990"
    )]
    pub admin_addr: SocketAddr,
}

/// Why the controller could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The mesh file is missing, unreadable or invalid at start-up.
    #[error("cannot start: {0}")]
    MeshFile(#[from] MeshFileError),
    /// A listener could not be bound (port taken, bad address).
    #[error("cannot bind {flag} {address}: {source}")]
    Bind {
        /// The flag naming the address.
        flag: &'static str,
        /// The address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Destination server failed.
    #[error(transparent)]
    Destination(#[from] ServerError),
    /// The admin server failed.
    #[error("admin server failed: {0}")]
    Admin(std::io::Error),
}

impl AppError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::MeshFile(_) => EXIT_BAD_MESH_FILE,
            AppError::Bind { .. } | AppError::Destination(_) | AppError::Admin(_) => 1,
        }
    }
}

/// Mesh-file metrics, refreshed from its status at each scrape.
#[derive(Debug, Clone, Default)]
struct MeshFileMetrics {
    good_loads: Counter,
    failed_loads: Counter,
    last_good_load_seconds: Gauge,
    current: Gauge,
}

impl MeshFileMetrics {
    fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "mesh_file_good_loads",
            "Mesh-file versions loaded into the catalog",
            metrics.good_loads.clone(),
        );
        registry.register(
            "mesh_file_failed_loads",
            "Mesh-file versions rejected (the last good one kept serving)",
            metrics.failed_loads.clone(),
        );
        registry.register(
            "mesh_file_last_good_load_timestamp_seconds",
            "When the catalog last took a version of the mesh file (Unix time)",
            metrics.last_good_load_seconds.clone(),
        );
        registry.register(
            "mesh_file_current",
            "1 when the file on disk is the version serving, 0 while it is broken",
            metrics.current.clone(),
        );
        metrics
    }

    fn refresh(&self, status: &MeshFileStatus) {
        self.good_loads
            .inc_by(status.good_loads.saturating_sub(self.good_loads.get()));
        self.failed_loads
            .inc_by(status.failed_loads.saturating_sub(self.failed_loads.get()));
        let seconds = status
            .last_good_load
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs());
        self.last_good_load_seconds
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.current.set(i64::from(status.is_current()));
    }
}

/// What the admin server reads.
struct AdminState {
    registry: Registry,
    mesh_file_metrics: MeshFileMetrics,
    mesh_file_path: PathBuf,
    mesh_file_status: Arc<Mutex<MeshFileStatus>>,
    ready: AtomicBool,
}

impl AdminState {
    fn status(&self) -> MeshFileStatus {
        self.mesh_file_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The bound, not yet running controller.
pub struct App {
    source: MeshFileSource,
    destination: DestinationService,
    destination_listener: TcpListener,
    admin_listener: TcpListener,
    admin: Arc<AdminState>,
    shutdown: watch::Sender<bool>,
}

impl App {
    /// Steps 1–3: loads the mesh file, binds both listeners, builds the servers.
    pub async fn build(args: &Args) -> Result<Self, AppError> {
        // 1. The catalog and its source: the first load must succeed.
        let catalog = Catalog::default().shared();
        let mut source = MeshFileSource::new(&args.mesh_file, catalog.clone());
        source.reload()?;

        // 2. Every listener up front, so a taken port fails start-up.
        let destination_listener = bind("--destination-addr", args.destination_addr).await?;
        let admin_listener = bind("--admin-addr", args.admin_addr).await?;

        // 3. One registry, passed to each component.
        let mut registry = Registry::with_prefix("weft_controller");
        let mesh_file_metrics = MeshFileMetrics::new(&mut registry);
        let destination_metrics = DestinationMetrics::new(&mut registry);

        let (shutdown, shutdown_receiver) = watch::channel(false);
        let destination = DestinationService::new(catalog, destination_metrics, shutdown_receiver);
        let admin = Arc::new(AdminState {
            registry,
            mesh_file_metrics,
            mesh_file_path: args.mesh_file.clone(),
            mesh_file_status: source.status_handle(),
            ready: AtomicBool::new(false),
        });
        Ok(Self {
            source,
            destination,
            destination_listener,
            admin_listener,
            admin,
            shutdown,
        })
    }

    /// The bound Destination address.
    pub fn destination_addr(&self) -> std::io::Result<SocketAddr> {
        self.destination_listener.local_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin_listener.local_addr()
    }

    /// Steps 4–5: runs until `stop` completes, then drains (bounded).
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), AppError> {
        let Self {
            source,
            destination,
            destination_listener,
            admin_listener,
            admin,
            shutdown,
        } = self;
        let stopped = |mut receiver: watch::Receiver<bool>| async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        };

        // 4. The watcher, the Destination server, the admin server.
        let watcher = tokio::spawn(source.run(stopped(shutdown.subscribe())));
        let mut destination =
            tokio::spawn(destination.serve(destination_listener, stopped(shutdown.subscribe())));
        let router = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/ready", get(ready))
            .route("/live", get(|| async { "live\n" }))
            .with_state(Arc::clone(&admin));
        let mut admin_server = tokio::spawn(
            axum::serve(admin_listener, router)
                .with_graceful_shutdown(stopped(shutdown.subscribe()))
                .into_future(),
        );

        // 5. Ready: the first good load is serving. Then wait for a stop or a failure.
        admin.ready.store(true, Ordering::Release);
        tracing::info!("weft-controller ready");
        let failure = tokio::select! {
            () = stop => None,
            result = &mut destination => Some(flatten(result, |error| error.into())),
            result = &mut admin_server => Some(flatten(result, AppError::Admin)),
        };
        admin.ready.store(false, Ordering::Release);
        let _ = shutdown.send(true);
        let drain = async {
            let _ = watcher.await;
            if !destination.is_finished() {
                let _ = destination.await;
            }
            if !admin_server.is_finished() {
                let _ = admin_server.await;
            }
        };
        if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
            tracing::warn!("shutdown: servers did not drain in time");
        }
        match failure {
            Some(Err(error)) => Err(error),
            _ => Ok(()),
        }
    }
}

fn flatten<E>(
    result: Result<Result<(), E>, tokio::task::JoinError>,
    convert: impl FnOnce(E) -> AppError,
) -> Result<(), AppError> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(convert(error)),
        Err(join) => Err(AppError::Admin(std::io::Error::other(join))),
    }
}

async fn bind(flag: &'static str, address: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| AppError::Bind {
            flag,
            address,
            source,
        })
}

async fn metrics(State(admin): State<Arc<AdminState>>) -> impl IntoResponse {
    admin.mesh_file_metrics.refresh(&admin.status());
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &admin.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        ),
        Err(error) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("cannot encode metrics: {error}\n"),
        ),
    }
}

async fn ready(State(admin): State<Arc<AdminState>>) -> impl IntoResponse {
    let status = admin.status();
    let is_ready = admin.ready.load(Ordering::Acquire) && status.last_good_load.is_some();
    let seconds = |time: Option<SystemTime>| {
        time.and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map(|since| since.as_secs())
    };
    let problems: Vec<serde_json::Value> = status
        .last_problems
        .iter()
        .map(|problem| {
            serde_json::json!({
                "document": problem.document,
                "line": problem.line,
                "reason": problem.reason,
            })
        })
        .collect();
    let body = serde_json::json!({
        "ready": is_ready,
        "mesh_file": {
            "path": admin.mesh_file_path.display().to_string(),
            "current": status.is_current(),
            "objects": status.objects,
            "good_loads": status.good_loads,
            "failed_loads": status.failed_loads,
            "last_good_load_seconds": seconds(status.last_good_load),
            "last_load_ms": status
                .last_load_duration
                .map(|duration| duration.as_secs_f64() * 1000.0),
            "last_error": status.last_error,
            "last_problems": problems,
            "last_error_seconds": seconds(status.last_error_at),
        },
    });
    let code = if is_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}

//! Wiring `weft-controller`, in start-up order:
//!
//! ```text
//! 1. load the mesh file into the catalog      (a bad or missing file stops start-up: exit 64)
//!    or, with --kubernetes, build the API client (a bad kubeconfig: exit 64)
//!    and the Kubernetes source (it lists and watches once running; /ready
//!    waits for its first lists)
//! 2. identity (with --identity-issuer-dir, or --identity-issuer-secret with
//!    --kubernetes): load and check the issuer (files, or the Secret and the
//!    anchor ConfigMap read from the API), then either read or create the
//!    token key and write the workloads' token files (mesh file) or check
//!    tokens with TokenReview (--kubernetes: start-up asks whether the
//!    controller may create TokenReviews), issue the controller its own
//!    certificate (any failure: exit 64)
//! 2b. the proxy injector (--injector-addr, which needs identity: exit 64
//!    without it): the injection configuration from the flags, its
//!    certificate for `weft-proxy-injector.<cns>.svc[.<cluster domain>]`
//!    and the trust anchors from the issuer
//! 3. bind --destination-addr, --policy-addr (when set), --identity-addr, --admin-addr, --web-addr,
//!    --injector-addr (when set) (a
//!    taken port stops start-up, naming the flag); with identity both gRPC
//!    ports take TLS (the controller's certificate) and plaintext
//! 4. register metrics in one registry
//! 5. start the watchers (mesh file, issuer files or Secret), the token writer, the
//!    controller certificate's renewal, the Destination and Identity
//!    servers, the admin server, the web server (HTTP API + merged routes),
//!    the injector and its certificate's renewal
//! 6. mark ready; on SIGTERM/SIGINT stop everything and drain
//! ```
//!
//! The admin server's handlers are [`crate::admin`]'s.
//!
//! The web server (`--web-addr`) serves [`crate::api`]'s `/api/...` routes
//! merged with [`web_routes`]: the composition point where other modules
//! (tap, the dashboard at `/`) add theirs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use weft_core::workload::Workload;

use crate::admin::{AdminState, IssuerOrigin};
use crate::api::WebState;
use crate::catalog::Catalog;
use crate::catalog::PolicySettings;
pub use crate::config::Args;
use crate::config::{IdentityConfig, IssuerLocation, TokenConfig};
use crate::dashboard::AllowedHosts;
use crate::destination::limits::StreamLimiter;
use crate::destination::translate::MeshHints;
use crate::destination::{DestinationMetrics, DestinationService, ServerError, StreamLimits};
use crate::identity::issuer_files::{
    AuthorityHandle, IssuerFilesError, IssuerMetrics, IssuerSource, IssuerStatus,
};
use crate::identity::issuer_secret::{IssuerSecretError, SecretIssuerSource};
use crate::identity::server::{CertifyMetrics, IdentityServerError, IdentityService};
use crate::identity::serving::{ServingCertificate, ServingError};
use crate::identity::token::{HmacTokens, TokenKey, TokenKeyError, TokenValidator};
use crate::identity::token_files::{
    MeshTokenValidator, TokenDirError, TokenFileMetrics, TokenFiles,
};
use crate::identity::token_review::{ReviewAccessDenied, TokenReviewValidator, check_access};
use crate::incoming::{GrpcListener, IncomingMetrics, PlaintextPolicy, Server};
use crate::injector::server::{InjectorListener, InjectorState};
use crate::injector::serving::{
    InjectorCertificate, InjectorTlsError, SharedInjectionConfig, injector_names,
};
use crate::injector::{InjectorMetrics, injection_config};
use crate::kubernetes::namespaces::NamespaceAnnotations;
use crate::kubernetes::{ConnectError, KubernetesSource};
use crate::mesh_file::{MeshFileError, MeshFileLimits, MeshFileSource};
use crate::metrics_api::prometheus::PrometheusClient;
use crate::metrics_api::scrape::{ScrapeMetrics, Scraper};
use crate::metrics_api::store::Store;
use crate::metrics_api::{Backend, MetricsApi, MetricsSource, ScrapeStatuses};
use crate::policy::outbound::{OutboundPolicyMetrics, OutboundPolicyService};
use crate::policy::{InboundPolicyMetrics, InboundPolicyService, PolicyServices};
use crate::tap::fanout::ProxyConnector;
use crate::tap::token::{ApiToken, TokenFileError};
use crate::tap::{TapMetrics, TapState};

/// The exit status for bad or missing start-up input: the mesh file, the
/// identity issuer files, the token key or directory (`EX_USAGE`).
pub const EXIT_BAD_MESH_FILE: i32 = 64;
/// How long shutdown waits for servers to drain before giving up.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the controller could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No mesh file was given (clap normally refuses this first).
    #[error("cannot start: --mesh-file is required")]
    NoMeshFile,
    /// The mesh file is missing, unreadable or invalid at start-up.
    #[error("cannot start: {0}")]
    MeshFile(#[from] MeshFileError),
    /// The Kubernetes API client cannot be built (`--kubernetes`).
    #[error("cannot start: {0}")]
    Kubernetes(#[from] ConnectError),
    /// The identity issuer files are missing or invalid at start-up.
    #[error("cannot start the identity service: {0}")]
    IssuerFiles(#[from] IssuerFilesError),
    /// The identity issuer Secret or anchor ConfigMap is missing, unreadable
    /// or invalid at start-up.
    #[error("cannot start the identity service: {0}")]
    IssuerSecret(#[from] IssuerSecretError),
    /// The controller may not create TokenReviews (`--kubernetes`).
    #[error("cannot start the identity service: {0}")]
    ReviewAccess(#[from] ReviewAccessDenied),
    /// The token key cannot be read or created.
    #[error("cannot start the identity service: token key {0}")]
    TokenKey(#[from] TokenKeyError),
    /// The token directory cannot be created.
    #[error("cannot start the identity service: {0}")]
    TokenDir(#[from] TokenDirError),
    /// The API token file cannot be read or created.
    #[error("cannot start: --api-token-file {0}")]
    ApiToken(#[from] TokenFileError),
    /// The controller could not certify itself.
    #[error("cannot start the identity service: {0}")]
    Serving(#[from] ServingError),
    /// `--injector-addr` without identity: its certificate comes from the issuer.
    #[error(
        "cannot start: --injector-addr needs identity (--identity-issuer-secret or \
         --identity-issuer-dir): the injector's certificate comes from the issuer"
    )]
    InjectorNeedsIdentity,
    /// The injected proxy's resources would be refused by Kubernetes.
    #[error("cannot start: --proxy-cpu-*/--proxy-memory-*: {0}")]
    InjectorResources(String),
    /// The injector could not get its certificate.
    #[error("cannot start the proxy injector: {0}")]
    InjectorTls(#[from] InjectorTlsError),
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
    /// The Identity server failed.
    #[error(transparent)]
    Identity(#[from] IdentityServerError),
    /// The `--policy-addr` server failed.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyServerError),
    /// The admin server failed.
    #[error("admin server failed: {0}")]
    Admin(std::io::Error),
    /// The web server failed.
    #[error("web server failed: {0}")]
    Web(std::io::Error),
    /// The injector's listener failed.
    #[error("proxy injector failed: {0}")]
    Injector(std::io::Error),
    /// A start-up step on the blocking pool panicked or was cancelled.
    #[error("cannot start: {0}")]
    StartUp(String),
}

impl AppError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::NoMeshFile
            | AppError::MeshFile(_)
            | AppError::Kubernetes(_)
            | AppError::IssuerFiles(_)
            | AppError::IssuerSecret(_)
            | AppError::ReviewAccess(_)
            | AppError::TokenKey(_)
            | AppError::TokenDir(_)
            | AppError::ApiToken(_)
            | AppError::Serving(_)
            | AppError::InjectorNeedsIdentity
            | AppError::InjectorResources(_)
            | AppError::InjectorTls(_) => EXIT_BAD_MESH_FILE,
            AppError::Bind { .. }
            | AppError::Destination(_)
            | AppError::Identity(_)
            | AppError::Policy(_)
            | AppError::Admin(_)
            | AppError::Web(_)
            | AppError::Injector(_)
            | AppError::StartUp(_) => 1,
        }
    }
}

/// The identity parts, loaded but not yet running.
struct IdentityStage {
    /// Where the issuer is, as `/ready` shows it.
    origin: IssuerOrigin,
    addr: SocketAddr,
    issuer: IssuerFeed,
    service: IdentityService,
    token_files: Option<TokenFiles>,
    /// The controller's own certificate, for TLS on both gRPC ports.
    serving: ServingCertificate,
}

/// Where the catalog's objects come from.
// One value, built once at start-up: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum CatalogSource {
    /// `--mesh-file`.
    MeshFile(MeshFileSource),
    /// `--kubernetes`.
    Kubernetes(KubernetesSource),
}

impl CatalogSource {
    /// The Workloads for the identity token files: the mesh file's; none on
    /// Kubernetes (ServiceAccount tokens are reviewed there instead).
    fn subscribe_workloads(&self) -> watch::Receiver<Arc<[Workload]>> {
        match self {
            CatalogSource::MeshFile(source) => source.subscribe_workloads(),
            CatalogSource::Kubernetes(_) => watch::channel(Arc::from(Vec::new())).1,
        }
    }

    /// Watches until `shutdown` completes.
    async fn run(self, shutdown: impl Future<Output = ()>) {
        match self {
            CatalogSource::MeshFile(source) => source.run(shutdown).await,
            CatalogSource::Kubernetes(source) => source.run(shutdown).await,
        }
    }
}

/// The bound, not yet running controller.
pub struct App {
    source: CatalogSource,
    destination: DestinationService,
    destination_listener: GrpcListener,
    /// The policy services, served with Destination and on `--policy-addr`.
    policy: PolicyServices,
    /// `--policy-addr`, when set.
    policy_listener: Option<GrpcListener>,
    identity: Option<(IdentityStage, GrpcListener)>,
    admin_listener: TcpListener,
    admin: Arc<AdminState>,
    web_listener: TcpListener,
    web: Arc<WebState>,
    /// Routes merged into the web listener: tap and the dashboard.
    web_extra: axum::Router,
    /// The Host names the web listener answers.
    allowed_hosts: Arc<AllowedHosts>,
    /// The scraper, unless Prometheus answers.
    scraper: Option<Scraper>,
    /// The proxy injector (`--injector-addr`) and its certificate.
    injector: Option<(InjectorListener, InjectorCertificate)>,
    shutdown: watch::Sender<bool>,
}

impl App {
    /// Steps 1–4: loads the mesh file and the identity credentials, binds
    /// every listener, builds the servers.
    pub async fn build(args: &Args) -> Result<Self, AppError> {
        // 1. The catalog and its source: the mesh file's first load must
        //    succeed; the Kubernetes source needs a client.
        let mut catalog = Catalog::default();
        catalog.set_policy_settings(PolicySettings {
            default_policy: args.policy.default_inbound_policy,
            cluster_networks: args.policy.cluster_networks.0.clone(),
            control_namespace: args.identity.identity_control_namespace.clone(),
            trust_domain: args.identity.identity_trust_domain.clone(),
        });
        let catalog = catalog.shared();
        // One registry, passed to each component as it is built.
        let mut registry = Registry::with_prefix("weft_controller");
        // The one API client (catalog source and identity), with --kubernetes.
        let kube_client = if args.kubernetes.kubernetes {
            Some(crate::kubernetes::connect(&args.kubernetes).await?)
        } else {
            None
        };
        // The namespaces' annotations the injector reads: the Kubernetes
        // source's Namespaces; none in a mesh file.
        let mut namespaces = NamespaceAnnotations::default();
        let (source, mesh_file, mesh_file_status, kubernetes_status) =
            if let Some(client) = &kube_client {
                let source = KubernetesSource::new(client.clone(), catalog.clone(), &mut registry);
                let status = source.status_handle();
                namespaces = source.namespace_handle();
                (
                    CatalogSource::Kubernetes(source),
                    std::path::PathBuf::new(),
                    Arc::default(),
                    Some(status),
                )
            } else {
                let mesh_file = args.mesh_file.as_ref().ok_or(AppError::NoMeshFile)?;
                let mut source =
                    MeshFileSource::new(mesh_file, catalog.clone()).with_limits(MeshFileLimits {
                        max_bytes: args.limits.mesh_file_max_bytes,
                        max_objects: usize::try_from(args.limits.mesh_file_max_objects)
                            .unwrap_or(usize::MAX),
                    });
                // File reads and writes run on the blocking pool, never on an async worker.
                let (source, loaded) = blocking(move || {
                    let loaded = source.reload();
                    (source, loaded)
                })
                .await?;
                loaded?;
                let status = source.status_handle();
                (
                    CatalogSource::MeshFile(source),
                    mesh_file.clone(),
                    status,
                    None,
                )
            };

        // 2. Identity: the issuer must load and chain to the anchors; the
        //    token key is read (or created); token files are written once now.
        //    With --kubernetes the issuer may come from a Secret and tokens
        //    are reviewed by the API.
        let identity = match args.identity.config(args.kubernetes.kubernetes) {
            Some(config) => {
                let workloads = Some(source.subscribe_workloads());
                let client = kube_client.clone();
                Some(IdentityStage::load(config, client, workloads, &mut registry).await?)
            }
            None => None,
        };

        // 2b. The proxy injector: its certificate and the anchors it
        //     injects come from the issuer, so it needs identity.
        let injector = match (args.injector.injector_addr.0, &identity) {
            (None, _) => None,
            (Some(_), None) => return Err(AppError::InjectorNeedsIdentity),
            (Some(address), Some(stage)) => {
                let config = injection_config(args);
                config
                    .proxy_resources
                    .check()
                    .map_err(AppError::InjectorResources)?;
                let config = SharedInjectionConfig::new(config);
                let names = injector_names(
                    &args.identity.identity_control_namespace,
                    &args.injector.cluster_domain,
                );
                let policy = args
                    .identity
                    .config(args.kubernetes.kubernetes)
                    .map(|config| config.policy)
                    .unwrap_or_default();
                let certificate = InjectorCertificate::issue_first(
                    &stage.issuer.authority(),
                    names,
                    policy,
                    config.clone(),
                    &mut registry,
                )?;
                let state = Arc::new(InjectorState {
                    config,
                    namespaces,
                    metrics: InjectorMetrics::new(&mut registry),
                });
                Some((address, certificate, state))
            }
        };

        // 2c. The API token tap requires: read, or created (0600).
        let api_token = match &args.access.api_token_file {
            Some(path) => {
                let file = path.clone();
                let (token, created) = blocking(move || ApiToken::load_or_create(&file)).await??;
                if created {
                    tracing::info!(path = %path.display(), "created a new API token");
                }
                Some(token)
            }
            None => None,
        };

        // 3. Every listener up front, so a taken port fails start-up. With
        //    identity, both gRPC ports also take TLS with the controller's
        //    certificate.
        let incoming_metrics = IncomingMetrics::new(&mut registry);
        let tls = identity.as_ref().map(|stage| stage.serving.tls());
        let plaintext = if args.identity.allow_remote_plaintext {
            PlaintextPolicy::Any
        } else {
            PlaintextPolicy::LoopbackOnly
        };
        let destination_listener = GrpcListener {
            listener: bind("--destination-addr", args.destination_addr).await?,
            server: Server::Destination,
            tls: tls.clone(),
            plaintext,
            metrics: incoming_metrics.clone(),
        };
        let policy_listener = match args.policy.policy_addr.0 {
            Some(address) => Some(GrpcListener {
                listener: bind("--policy-addr", address).await?,
                server: Server::Policy,
                tls: tls.clone(),
                plaintext,
                metrics: incoming_metrics.clone(),
            }),
            None => None,
        };
        let identity = match identity {
            Some(stage) => {
                let listener = GrpcListener {
                    listener: bind("--identity-addr", stage.addr).await?,
                    server: Server::Identity,
                    tls,
                    plaintext,
                    metrics: incoming_metrics,
                };
                Some((stage, listener))
            }
            None => None,
        };
        let admin_listener = bind("--admin-addr", args.admin_addr).await?;
        let web_listener = bind("--web-addr", args.web.web_addr).await?;
        let injector = match injector {
            Some((address, certificate, state)) => {
                let listener = InjectorListener {
                    listener: bind("--injector-addr", address).await?,
                    tls: certificate.tls(),
                    state,
                };
                Some((listener, certificate))
            }
            None => None,
        };

        // 4. The remaining metrics, in the same registry.
        let destination_metrics = DestinationMetrics::new(&mut registry);
        let tap = Arc::new(TapState {
            catalog: catalog.clone(),
            token: api_token,
            connector: ProxyConnector {
                mode: args.access.tap_tls,
                identity: identity.as_ref().and_then(|(stage, _)| {
                    let domain = args.identity.config(args.kubernetes.kubernetes)?.domain;
                    Some((stage.serving.tls(), domain))
                }),
            },
            metrics: TapMetrics::new(&mut registry),
        });
        let web_extra = web_routes(tap);
        let allowed_hosts = Arc::new(AllowedHosts::new(&args.access.web_allowed_hosts));

        let (shutdown, shutdown_receiver) = watch::channel(false);
        let mesh = args
            .identity
            .config(args.kubernetes.kubernetes)
            .map(|config| MeshHints {
                domain: config.domain,
                h2_upgrade: !args.disable_h2_upgrade,
            });
        // Golden metrics: Prometheus answers, or the scraper fills a store.
        let statuses = ScrapeStatuses::default();
        let (metrics, scraper) = match &args.web.prometheus_url {
            Some(url) => {
                let metrics = MetricsApi {
                    source: MetricsSource::Prometheus,
                    statuses: statuses.clone(),
                    backend: Backend::Prometheus(Box::new(PrometheusClient::new(url))),
                };
                (metrics, None)
            }
            None => {
                let store = Arc::new(Mutex::new(Store::new(
                    args.web.metrics_retention,
                    args.web.scrape_interval.mul_f64(2.5),
                )));
                let scraper = Scraper {
                    catalog: catalog.clone(),
                    store: Arc::clone(&store),
                    statuses: statuses.clone(),
                    interval: args.web.scrape_interval,
                    metrics: ScrapeMetrics::new(&mut registry),
                };
                let metrics = MetricsApi {
                    source: MetricsSource::Scrape,
                    statuses,
                    backend: Backend::Scrape(store),
                };
                (metrics, Some(scraper))
            }
        };
        let web = Arc::new(WebState {
            catalog: catalog.clone(),
            metrics,
            identity_domain: mesh.as_ref().map(|hints| hints.domain.clone()),
            identity_authority: identity.as_ref().map(|(stage, _)| stage.issuer.authority()),
            leaf_lifetime: args
                .identity
                .config(args.kubernetes.kubernetes)
                .map(|config| config.policy.lifetime),
            mesh_file_path: mesh_file.clone(),
            mesh_file_status: Arc::clone(&mesh_file_status),
            kubernetes: kubernetes_status.clone(),
        });
        let stream_limits = StreamLimits {
            per_client: usize::try_from(args.limits.destination_max_streams_per_client)
                .unwrap_or(usize::MAX),
            total: usize::try_from(args.limits.destination_max_streams).unwrap_or(usize::MAX),
        };
        // Destination and policy streams count against one limiter.
        let limiter = StreamLimiter::new(stream_limits);
        let policy = PolicyServices {
            inbound: InboundPolicyService::new(
                catalog.clone(),
                Arc::clone(&limiter),
                InboundPolicyMetrics::new(&mut registry),
                shutdown_receiver.clone(),
            ),
            outbound: OutboundPolicyService::new(
                catalog.clone(),
                OutboundPolicyMetrics::new(&mut registry),
                shutdown_receiver.clone(),
                Arc::clone(&limiter),
            ),
        };
        let destination = DestinationService::new(
            catalog,
            destination_metrics,
            shutdown_receiver,
            mesh,
            limiter,
        );
        let issuer = identity
            .as_ref()
            .map(|(stage, _)| (stage.origin.clone(), stage.issuer.status_handle()));
        let admin = Arc::new(
            AdminState::new(registry, mesh_file, mesh_file_status, issuer)
                .with_kubernetes(kubernetes_status),
        );
        Ok(Self {
            source,
            destination,
            destination_listener,
            policy,
            policy_listener,
            identity,
            admin_listener,
            admin,
            web_listener,
            web,
            web_extra,
            allowed_hosts,
            scraper,
            injector,
            shutdown,
        })
    }

    /// The bound proxy injector address, when `--injector-addr` is set.
    pub fn injector_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.injector
            .as_ref()
            .map(|(listener, _)| listener.local_addr())
    }

    /// The bound Identity address, when identity is enabled.
    pub fn identity_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.identity
            .as_ref()
            .map(|(_, listener)| listener.local_addr())
    }

    /// The bound Destination address.
    pub fn destination_addr(&self) -> std::io::Result<SocketAddr> {
        self.destination_listener.local_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin_listener.local_addr()
    }

    /// The bound web (HTTP API) address.
    pub fn web_addr(&self) -> std::io::Result<SocketAddr> {
        self.web_listener.local_addr()
    }

    /// Steps 5–6: runs until `stop` completes, then drains (bounded).
    pub async fn run(self, stop: impl Future<Output = ()>) -> Result<(), AppError> {
        let Self {
            source,
            destination,
            destination_listener,
            policy,
            policy_listener,
            identity,
            admin_listener,
            admin,
            web_listener,
            web,
            web_extra,
            allowed_hosts,
            scraper,
            injector,
            shutdown,
        } = self;
        let stopped = |mut receiver: watch::Receiver<bool>| async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        };

        // 5. The watchers, the token writer, the Destination and Identity
        //    servers, the admin server.
        let workloads = source.subscribe_workloads();
        let mut background = vec![tokio::spawn(source.run(stopped(shutdown.subscribe())))];
        let mut policy_server = policy_listener.map(|listener| {
            tokio::spawn(
                policy
                    .clone()
                    .serve(listener, stopped(shutdown.subscribe())),
            )
        });
        let mut destination = tokio::spawn(destination.serve(
            destination_listener,
            policy,
            stopped(shutdown.subscribe()),
        ));
        let mut identity_server = identity.map(|(stage, listener)| {
            background.push(tokio::spawn(
                stage.issuer.run(stopped(shutdown.subscribe())),
            ));
            background.push(tokio::spawn(
                stage.serving.run(stopped(shutdown.subscribe())),
            ));
            if let Some(token_files) = stage.token_files {
                background.push(tokio::spawn(
                    token_files.run(workloads, stopped(shutdown.subscribe())),
                ));
            }
            tokio::spawn(stage.service.serve(listener, stopped(shutdown.subscribe())))
        });
        let mut admin_server = tokio::spawn(
            axum::serve(admin_listener, crate::admin::router(Arc::clone(&admin)))
                .with_graceful_shutdown(stopped(shutdown.subscribe()))
                .into_future(),
        );

        if let Some(scraper) = scraper {
            background.push(tokio::spawn(scraper.run(stopped(shutdown.subscribe()))));
        }
        let mut web_server = tokio::spawn(crate::api::serve(
            web_listener,
            web,
            web_extra,
            guard_hosts(allowed_hosts),
            stopped(shutdown.subscribe()),
        ));

        let mut injector_server = injector.map(|(listener, certificate)| {
            background.push(tokio::spawn(certificate.run(stopped(shutdown.subscribe()))));
            tokio::spawn(listener.serve(stopped(shutdown.subscribe())))
        });

        // 6. Ready: the first good load is serving. Then wait for a stop or a failure.
        admin.set_ready(true);
        tracing::info!("weft-controller ready");
        let failure = tokio::select! {
            () = stop => None,
            result = &mut destination => Some(flatten(result, |error| error.into())),
            result = async {
                match identity_server.as_mut() {
                    Some(server) => server.await,
                    None => std::future::pending().await,
                }
            } => Some(flatten(result, |error| error.into())),
            result = async {
                match policy_server.as_mut() {
                    Some(server) => server.await,
                    None => std::future::pending().await,
                }
            } => Some(flatten(result, |error| error.into())),
            result = &mut admin_server => Some(flatten(result, AppError::Admin)),
            result = &mut web_server => Some(flatten(result, AppError::Web)),
            result = async {
                match injector_server.as_mut() {
                    Some(server) => server.await,
                    None => std::future::pending().await,
                }
            } => Some(flatten(result, AppError::Injector)),
        };
        admin.set_ready(false);
        let _ = shutdown.send(true);
        let drain = async {
            for task in background {
                let _ = task.await;
            }
            if !destination.is_finished() {
                let _ = destination.await;
            }
            if let Some(server) = policy_server
                && !server.is_finished()
            {
                let _ = server.await;
            }
            if let Some(server) = identity_server
                && !server.is_finished()
            {
                let _ = server.await;
            }
            if !admin_server.is_finished() {
                let _ = admin_server.await;
            }
            if !web_server.is_finished() {
                let _ = web_server.await;
            }
            if let Some(server) = injector_server
                && !server.is_finished()
            {
                let _ = server.await;
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

/// Where the issuer comes from: files, or a Secret and a ConfigMap.
enum IssuerFeed {
    /// `--identity-issuer-dir` and `--identity-trust-anchors`.
    Files(IssuerSource),
    /// `--identity-issuer-secret` and `--identity-trust-anchors-configmap`
    /// (boxed: its API handles make it large).
    Secret(Box<SecretIssuerSource>),
}

impl IssuerFeed {
    fn authority(&self) -> AuthorityHandle {
        match self {
            IssuerFeed::Files(source) => source.authority(),
            IssuerFeed::Secret(source) => source.authority(),
        }
    }

    fn status_handle(&self) -> Arc<Mutex<IssuerStatus>> {
        match self {
            IssuerFeed::Files(source) => source.status_handle(),
            IssuerFeed::Secret(source) => source.status_handle(),
        }
    }

    /// Watches and reloads until `shutdown` completes.
    async fn run(self, shutdown: impl Future<Output = ()>) {
        match self {
            IssuerFeed::Files(source) => source.run(shutdown).await,
            IssuerFeed::Secret(source) => (*source).run(shutdown).await,
        }
    }
}

impl IdentityStage {
    /// Step 2: the issuer (loaded and checked now), the token validator
    /// (TokenReview through `client`, or the controller's own tokens: the
    /// key read or created, the token files written once), the service, and
    /// the controller's own certificate. File work runs on the blocking pool.
    async fn load(
        config: IdentityConfig,
        client: Option<kube::Client>,
        workloads: Option<watch::Receiver<Arc<[Workload]>>>,
        registry: &mut Registry,
    ) -> Result<Self, AppError> {
        let metrics = IssuerMetrics::new(registry);
        let (issuer, origin) = match config.issuer {
            IssuerLocation::Files(paths) => {
                let mut source = IssuerSource::new(paths.clone(), metrics);
                let (source, loaded) = blocking(move || {
                    let loaded = source.reload();
                    (source, loaded)
                })
                .await?;
                loaded?;
                let origin = IssuerOrigin::from(&paths);
                (IssuerFeed::Files(source), origin)
            }
            IssuerLocation::Secret(reference) => {
                let client = client.clone().ok_or_else(|| {
                    AppError::StartUp("--identity-issuer-secret needs --kubernetes".into())
                })?;
                let origin = IssuerOrigin {
                    issuer: reference.secret_object(),
                    trust_anchors: reference.configmap_object(),
                };
                let mut source = SecretIssuerSource::new(client, reference, metrics);
                source.load_initial().await?;
                (IssuerFeed::Secret(Box::new(source)), origin)
            }
        };
        let (validator, token_files): (Arc<dyn TokenValidator>, Option<TokenFiles>) = match config
            .tokens
        {
            TokenConfig::Review { audience } => {
                let client = client
                    .ok_or_else(|| AppError::StartUp("TokenReview needs --kubernetes".into()))?;
                check_access(&client).await?;
                tracing::info!(%audience, "identity tokens are checked with TokenReview");
                (Arc::new(TokenReviewValidator::new(client, audience)), None)
            }
            TokenConfig::Minted { key, dir, lifetime } => {
                let workloads = workloads.ok_or_else(|| {
                    AppError::StartUp("the controller's own tokens need a mesh file".into())
                })?;
                // The registry goes to the blocking pool and back.
                let mut owned = std::mem::take(registry);
                let (owned, minted) = blocking(move || {
                    let minted = minted_tokens(&key, dir, lifetime, workloads, &mut owned);
                    (owned, minted)
                })
                .await?;
                *registry = owned;
                let (validator, files) = minted?;
                (Arc::new(validator), files)
            }
        };
        let serving = ServingCertificate::issue_first(
            &issuer.authority(),
            &config.domain,
            config.policy,
            registry,
        )?;
        let service = IdentityService::new(
            issuer.authority(),
            validator,
            config.domain,
            config.policy,
            CertifyMetrics::new(registry),
        );
        Ok(Self {
            origin,
            addr: config.addr,
            issuer,
            service,
            token_files,
            serving,
        })
    }
}

/// The controller's own tokens (mesh file): the key read or created, the
/// token files written once. Blocking (file reads and writes).
fn minted_tokens(
    key_path: &std::path::Path,
    token_dir: Option<PathBuf>,
    lifetime: Duration,
    workloads: watch::Receiver<Arc<[Workload]>>,
    registry: &mut Registry,
) -> Result<(MeshTokenValidator, Option<TokenFiles>), AppError> {
    let (key, created) = TokenKey::load_or_create(key_path)?;
    if created {
        tracing::info!(path = %key_path.display(), "created a new identity token key");
    }
    let tokens = Arc::new(HmacTokens::new(&key));
    let token_files = match token_dir {
        Some(dir) => {
            let files = TokenFiles::new(
                dir,
                Arc::clone(&tokens),
                lifetime,
                TokenFileMetrics::new(registry),
            )?;
            files.write_all(&workloads.borrow());
            Some(files)
        }
        None => None,
    };
    Ok((MeshTokenValidator::new(tokens, workloads), token_files))
}

/// Routes served on `--web-addr` beside the `/api/...` routes of
/// [`crate::api`]: modules that add pages or streams (tap, the dashboard at
/// `/` and `/assets/...`) merge their own `Router` (with its state applied) here.
/// The browser-facing ones answer only allowed Host names (DNS rebinding).
fn web_routes(tap: Arc<TapState>) -> axum::Router {
    axum::Router::new()
        .merge(crate::tap::router(tap))
        .merge(crate::dashboard::router())
}

/// Every route on `--web-addr` answers only allowed Host names (against DNS
/// rebinding: a page elsewhere must not read the mesh's metrics or tap it).
fn guard_hosts(allowed_hosts: Arc<AllowedHosts>) -> impl FnOnce(axum::Router) -> axum::Router {
    move |router| {
        router.layer(axum::middleware::from_fn_with_state(
            allowed_hosts,
            crate::dashboard::check_host,
        ))
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

/// Runs blocking start-up work (file reads and writes) on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| AppError::StartUp(error.to_string()))
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

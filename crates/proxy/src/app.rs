//! Wires the proxy together in start-up order and runs it until shutdown.
//! Listeners (inbound, outbound, admin, tap) are all bound first.
//! This is the only place that constructs long-lived components.

use crate::admin::{self, AdminState};
use crate::config::{Config, LogFormat};
use crate::control::{ControlClientConfig, ControlPlaneTls, ControlTls, uses_tls};
use crate::direction::Direction;
use crate::discovery::client::ClientError;
use crate::drain::{DrainOutcome, DrainSignal};
use crate::http::client::{HttpClient, PoolSettings};
use crate::http::header_case::CaseMaps;
use crate::identity::{self, Credentials, IdentitySettings};
use crate::listen::Listener;
use crate::log_limit::LogLimit;
use crate::metrics::ProxyMetrics;
use crate::metrics::control::ControlMetrics;
use crate::metrics::identity::IdentityMetrics;
use crate::metrics::process::ProcessCollector;
use crate::policy::PolicyChannel;
use crate::policy::inbound::{InboundPolicies, ServerPolicy};
use crate::policy::outbound::PolicyCache;
use crate::proxy::Proxy;
use crate::resources::{self, ConnectionLimit};
use crate::routing::Router;
use crate::tap::Taps;
use crate::tap::server::TapListener;
use crate::tap::service::TapService;
use crate::tls::config::{TlsStore, TrustAnchors, control_server_only, follow_credentials};
use crate::{inbound, outbound};
use prometheus_client::registry::Registry;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// The most inbound ports watched from the start (the rest of a wide
/// `WEFT_PROXY_INBOUND_PORTS` range is watched at first connection).
const EAGER_POLICY_PORTS: usize = 256;
/// The longest the proxy waits for the first inbound policy answers before
/// becoming ready anyway (the default policy then applies until they come).
const POLICY_READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often idle inbound policy watches are dropped.
const POLICY_EVICTION_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener's address is taken or not available.
    #[error("cannot listen on {name} {addr}: {source}")]
    Bind {
        /// The variable that names the address.
        name: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The admin thread could not start.
    #[error("cannot start the admin server: {0}")]
    Admin(std::io::Error),
    /// The trust anchors cannot be used.
    #[error("WEFT_PROXY_IDENTITY_TRUST_ANCHORS: {0}")]
    TrustAnchors(crate::tls::config::TlsError),
    /// The identity client could not be set up.
    #[error("identity: {0}")]
    Identity(crate::identity::IdentityError),
    /// The Destination client could not be built.
    #[error("WEFT_PROXY_DESTINATION_SVC_ADDR: {0}")]
    Destination(#[from] ClientError),
    /// The policy channel could not be built.
    #[error("{0}")]
    Policy(#[from] crate::policy::PolicyChannelError),
    /// A control-plane service name cannot be used for TLS.
    #[error("invalid control plane service name {0:?}")]
    ServerName(String),
}

/// The addresses a started proxy serves on.
#[derive(Clone, Debug)]
pub struct BoundAddrs {
    /// Inbound listener.
    pub inbound: SocketAddr,
    /// Outbound listeners.
    pub outbound: Vec<SocketAddr>,
    /// Admin listener.
    pub admin: SocketAddr,
    /// Tap listener, when tap is on.
    pub tap: Option<SocketAddr>,
}

/// Sets up logging as configured.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Builds the runtime the configuration asks for: `WEFT_PROXY_CORES`
/// workers, never more than the CPUs the process may use.
pub fn runtime(config: &Config) -> std::io::Result<tokio::runtime::Runtime> {
    let available = std::thread::available_parallelism().map_or(1, usize::from);
    let cores = config.cores.min(available);
    if cores <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cores)
            .thread_name("proxy")
            .enable_all()
            .build()
    }
}

/// Runs the proxy until SIGTERM, SIGINT or `POST /shutdown`, then drains.
pub async fn run(config: Config) -> Result<(), StartError> {
    let started = SystemTime::now();
    let config = Arc::new(config);

    // 1. Metrics: one registry for the whole process.
    let mut registry = Registry::default();
    let metrics = ProxyMetrics::new(&mut registry);
    let taps = Arc::new(Taps::new(&mut registry));
    registry.register_collector(Box::new(ProcessCollector::new(started)));

    // 2. Listeners, all bound before anything serves, so a taken port fails
    //    start-up with the variable's name. Each direction's connections are
    //    limited, within the open-file limit (raised to its hard limit) less
    //    a reserve, so a flood on one listener leaves descriptors for the
    //    other and for the admin server.
    let (inbound_limit, outbound_limit) = connection_limits(&config, &metrics);
    metrics
        .limits
        .set_limit(Direction::Inbound, inbound_limit.max());
    metrics
        .limits
        .set_limit(Direction::Outbound, outbound_limit.max());
    let inbound = Listener::bind(
        config.inbound_listen_addr,
        Direction::Inbound,
        inbound_limit,
        inbound::accept,
    )
    .await
    .map_err(|source| StartError::Bind {
        name: "WEFT_PROXY_INBOUND_LISTEN_ADDR",
        addr: config.inbound_listen_addr,
        source,
    })?;
    let mut outbound = Vec::new();
    for addr in &config.outbound_listen_addrs {
        outbound.push(
            Listener::bind(
                *addr,
                Direction::Outbound,
                outbound_limit.clone(),
                outbound::accept,
            )
            .await
            .map_err(|source| StartError::Bind {
                name: "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
                addr: *addr,
                source,
            })?,
        );
    }
    let admin_listener =
        std::net::TcpListener::bind(config.admin_listen_addr).map_err(|source| {
            StartError::Bind {
                name: "WEFT_PROXY_ADMIN_LISTEN_ADDR",
                addr: config.admin_listen_addr,
                source,
            }
        })?;
    let tap_listener = match &config.tap {
        Some(tap) => match TapListener::bind(tap.listen_addr).await {
            Ok(listener) => Some(listener),
            // Several proxies on one host cannot all have the default port:
            // only an address someone chose must be served.
            Err(error) if !tap.listen_addr_set => {
                tracing::warn!(addr = %tap.listen_addr, %error, "tap disabled: the default tap address cannot be bound (set WEFT_PROXY_TAP_LISTEN_ADDR)");
                None
            }
            Err(source) => {
                return Err(StartError::Bind {
                    name: "WEFT_PROXY_TAP_LISTEN_ADDR",
                    addr: tap.listen_addr,
                    source,
                });
            }
        },
        None => None,
    };
    let bound = BoundAddrs {
        inbound: inbound.local_addr().map_err(StartError::Admin)?,
        outbound: outbound
            .iter()
            .map(Listener::local_addr)
            .collect::<Result<_, _>>()
            .map_err(StartError::Admin)?,
        admin: admin_listener.local_addr().map_err(StartError::Admin)?,
        tap: tap_listener
            .as_ref()
            .map(TapListener::local_addr)
            .transpose()
            .map_err(StartError::Admin)?,
    };

    // 3. Shared data-path state: clients and their pools.
    let pool = PoolSettings {
        idle_timeout: config.http1_pool_idle_timeout,
        max_idle: config.http1_pool_max_idle,
        meshed_http1_connections: config.meshed_http1_connections,
    };
    // 4. Identity, when configured: a key in memory, a certificate from the
    //    identity service (over TLS verifying the controller, unless
    //    WEFT_PROXY_CONTROL_PLANE_TLS keeps it plaintext), renewed before it
    //    expires; the TLS configurations follow the certificate.
    let (credentials, tls_store) = match &config.identity {
        Some(identity) => {
            let anchors =
                TrustAnchors::new(&identity.trust_anchors).map_err(StartError::TrustAnchors)?;
            let tls = if uses_tls(config.control_plane_tls, &identity.svc_addr) {
                Some(ControlTls {
                    server_name: server_name(&identity.svc_name)?,
                    config: ControlClientConfig::ServerOnly(
                        control_server_only(&anchors).map_err(StartError::TrustAnchors)?,
                    ),
                })
            } else {
                None
            };
            log_control_plane("identity", &identity.svc_addr, tls.as_ref());
            let credentials = identity::spawn(
                IdentitySettings {
                    service_addr: identity.svc_addr.clone(),
                    token_file: identity.token_file.clone(),
                    local_name: identity.local_name.clone(),
                    tls,
                    trust_anchors: anchors.clone(),
                },
                IdentityMetrics::new(&mut registry),
            )
            .map_err(StartError::Identity)?;
            let store = Arc::new(TlsStore::default());
            tokio::spawn(follow_credentials(
                store.clone(),
                anchors,
                credentials.clone(),
            ));
            (Some(credentials), Some(store))
        }
        None => (None, None),
    };

    // 5. Discovery, when a Destination service is configured: outbound
    //    routing, and inbound profile lookups for route metrics. It
    //    connects lazily: the proxy serves even while the controller is down.
    //    With identity it is mutual TLS (unless WEFT_PROXY_CONTROL_PLANE_TLS
    //    says plaintext), presenting the current certificate.
    let outbound_router = match &config.destination {
        Some(destination) => {
            let tls = mutual_control_tls(
                "destination",
                config.control_plane_tls,
                tls_store.as_ref(),
                &destination.addr,
                &destination.svc_name,
            )?;
            Some(Router::new(
                &config,
                destination,
                tls,
                ControlMetrics::new(&mut registry, &destination.addr),
            )?)
        }
        None => None,
    };
    // 5b. The policy APIs' channel, when the proxy names its workload:
    //     inbound server policies and outbound routes. Lazy and mutual TLS,
    //     as discovery.
    let policy = match &config.policy {
        Some(policy) => {
            let tls = mutual_control_tls(
                "policy",
                config.control_plane_tls,
                tls_store.as_ref(),
                &policy.addr,
                &policy.svc_name,
            )?;
            Some(PolicyChannel::new(policy, tls)?)
        }
        None => None,
    };
    // 5c. Outbound HTTPRoute/GRPCRoute routing: OutboundPolicies watches
    //     through the policy channel, beside the profiles.
    let outbound_router = match (outbound_router, &policy, &config.destination) {
        (Some(router), Some(channel), Some(destination)) => {
            Some(router.with_policies(PolicyCache::new(
                channel.clone(),
                destination.initial_timeout,
                config.discovery_idle_timeout,
            )))
        }
        (router, _, _) => router,
    };
    // 5d. Inbound policies: the declared inbound ports are watched now
    //     (at most EAGER_POLICY_PORTS of them), others at their first
    //     connection; idle ones are dropped.
    let inbound_policies = InboundPolicies::new(
        policy.clone(),
        config.inbound_default_policy,
        config.policy_cluster_networks.clone(),
    );
    let proxy = Arc::new(Proxy {
        config: config.clone(),
        metrics: metrics.clone(),
        inbound_client: HttpClient::new(pool, metrics.tcp.clone()),
        outbound_client: HttpClient::new(pool, metrics.tcp.clone()),
        listener_addrs: [bound.inbound, bound.admin]
            .into_iter()
            .chain(bound.outbound.iter().copied())
            .chain(bound.tap)
            .collect(),
        log_limit: LogLimit::default(),
        router: outbound_router,
        policy,
        inbound_policies: inbound_policies.clone(),
        tls: tls_store.clone(),
        case_maps: CaseMaps::default(),
        taps: taps.clone(),
    });
    if proxy.policy.is_some() {
        if let Some(ports) = &config.inbound_ports {
            inbound_policies.watch_eagerly(ports.iter().take(EAGER_POLICY_PORTS));
        }
        inbound_policies.spawn_eviction(POLICY_EVICTION_PERIOD);
    }

    // 6. Admin server on its own thread.
    let (shutdown_sender, mut shutdown_requested) = watch::channel(false);
    let admin_state = Arc::new(AdminState {
        registry: Arc::new(registry),
        config_json: config.to_json(),
        ready: AtomicBool::new(false),
        shutdown: shutdown_sender,
        policy: Arc::new(ServerPolicy::default_for(
            config.inbound_default_policy,
            bound.admin.port(),
            &config.policy_cluster_networks,
        )),
    });
    admin::spawn(admin_listener, admin_state.clone()).map_err(StartError::Admin)?;

    // 7. Serve both directions, and keep pools and metrics tidy.
    let drain = DrainSignal::new();
    tokio::spawn(inbound.run(proxy.clone(), drain.watch()));
    for listener in outbound {
        tokio::spawn(listener.run(proxy.clone(), drain.watch()));
    }
    // Tap, on the same runtime: TLS clients are served once the proxy
    // holds a certificate.
    if let (Some(listener), Some(tap)) = (tap_listener, &config.tap) {
        let service = TapService::new(taps, tap.svc_name.as_str().into());
        tokio::spawn(listener.run(service, tls_store.clone(), drain.watch()));
    }
    let maintenance = tokio::spawn(maintain(proxy.clone()));
    // Ready now, or, with identity, once the first certificate arrives.
    let readiness = tokio::spawn(become_ready(
        admin_state.clone(),
        credentials,
        inbound_policies.clone(),
        config
            .inbound_ports
            .iter()
            .flat_map(|ports| ports.iter().take(EAGER_POLICY_PORTS))
            .collect(),
    ));
    tracing::info!(
        inbound = %bound.inbound,
        outbound = ?bound.outbound,
        admin = %bound.admin,
        tap = %bound.tap.map_or("off".to_string(), |addr| addr.to_string()),
        mode = if config.inbound_forward_addr.is_some() { "explicit" } else { "transparent" },
        "weft-proxy serving"
    );
    tracing::info!(config = %config.to_json(), "effective configuration");

    // 8. Wait for a reason to stop, then drain.
    let reason = wait_for_shutdown(&mut shutdown_requested).await;
    tracing::info!(reason, grace_period = %crate::config::format_duration(config.shutdown_grace_period), "draining");
    readiness.abort();
    admin_state.ready.store(false, Ordering::Relaxed);
    match drain.drain(config.shutdown_grace_period).await {
        DrainOutcome::Complete => tracing::info!("drained; exiting"),
        DrainOutcome::TimedOut => {
            tracing::warn!("grace period ended with connections still open; exiting")
        }
    }
    maintenance.abort();
    Ok(())
}

/// Raises the open-file limit and fits each direction's connection limit
/// in it (logged when lowered).
fn connection_limits(
    config: &Config,
    metrics: &ProxyMetrics,
) -> (Arc<ConnectionLimit>, Arc<ConnectionLimit>) {
    let fd_limit = match resources::raise_fd_limit() {
        Ok(limit) => {
            tracing::debug!(before = ?limit.before, now = ?limit.now, "open-file limit");
            limit.now
        }
        Err(error) => {
            tracing::warn!(%error, "keeping the open-file limit");
            rustix::process::getrlimit(rustix::process::Resource::Nofile).current
        }
    };
    let configured = (
        config.inbound_max_connections,
        config.outbound_max_connections,
    );
    let (inbound, outbound) =
        resources::fit_connection_limits(fd_limit, configured.0, configured.1);
    if (inbound, outbound) != configured {
        tracing::warn!(
            open_file_limit = ?fd_limit,
            inbound,
            outbound,
            "connection limits lowered to fit the open-file limit (WEFT_PROXY_INBOUND_MAX_CONNECTIONS, WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS)"
        );
    }
    (
        ConnectionLimit::new(inbound, metrics.limits.accepted(Direction::Inbound)),
        ConnectionLimit::new(outbound, metrics.limits.accepted(Direction::Outbound)),
    )
}

/// The TLS name of a control-plane service (checked by the config already).
fn server_name(name: &str) -> Result<ServerName<'static>, StartError> {
    ServerName::try_from(name.to_string()).map_err(|_| StartError::ServerName(name.to_string()))
}

/// Mutual TLS to the control-plane `service` at `addr` (`svc_name` its
/// identity) when the proxy has an identity and `mode` says TLS for that
/// address, else plaintext; logged either way.
fn mutual_control_tls(
    service: &'static str,
    mode: ControlPlaneTls,
    tls_store: Option<&Arc<TlsStore>>,
    addr: &str,
    svc_name: &str,
) -> Result<Option<ControlTls>, StartError> {
    let tls = match tls_store {
        Some(store) if uses_tls(mode, addr) => Some(ControlTls {
            server_name: server_name(svc_name)?,
            config: ControlClientConfig::Mutual(store.clone()),
        }),
        _ => None,
    };
    log_control_plane(service, addr, tls.as_ref());
    Ok(tls)
}

fn log_control_plane(service: &'static str, addr: &str, tls: Option<&ControlTls>) {
    match tls {
        Some(tls) => tracing::info!(
            service,
            addr,
            server_name = %tls.server_name.to_str(),
            mutual = matches!(tls.config, ControlClientConfig::Mutual(_)),
            "control plane over TLS"
        ),
        None => tracing::info!(service, addr, "control plane in plaintext"),
    }
}

/// Marks the proxy ready: at once without identity, else when it holds a
/// certificate.
/// Ready once the proxy holds a certificate (with identity) and the
/// controller has answered (or failed to answer) the policy of every
/// declared inbound port, waited for at most [`POLICY_READY_TIMEOUT`]: an
/// app started once its proxy is ready is never reached under the default
/// policy while its Server's policy is on its way.
async fn become_ready(
    admin_state: Arc<AdminState>,
    credentials: Option<watch::Receiver<Option<Arc<Credentials>>>>,
    inbound_policies: InboundPolicies,
    declared_ports: Vec<u16>,
) {
    if let Some(mut credentials) = credentials {
        tracing::info!("waiting for a certificate before becoming ready");
        if credentials.wait_for(Option::is_some).await.is_err() {
            return;
        }
    }
    let settled = inbound_policies.settled(declared_ports);
    if tokio::time::timeout(POLICY_READY_TIMEOUT, settled)
        .await
        .is_err()
    {
        tracing::warn!(
            waited = ?POLICY_READY_TIMEOUT,
            "no inbound policy answer yet: ready with the default policy"
        );
    }
    admin_state.ready.store(true, Ordering::Relaxed);
}

async fn wait_for_shutdown(shutdown_requested: &mut watch::Receiver<bool>) -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = shutdown_requested.wait_for(|requested| *requested) => "POST /shutdown",
    }
}

/// Closes idle pooled connections every second and expires idle metric
/// label sets every minute.
async fn maintain(proxy: Arc<Proxy>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut count: u64 = 0;
    loop {
        ticks.tick().await;
        count += 1;
        proxy.inbound_client.evict_idle();
        proxy.outbound_client.evict_idle();
        if count.is_multiple_of(60) {
            let expired = proxy.metrics.expire_idle(proxy.config.metrics_retain_idle);
            if expired > 0 {
                tracing::debug!(expired, "expired idle metric label sets");
            }
        }
    }
}

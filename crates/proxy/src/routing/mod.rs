//! Discovery-driven outbound routing: what the controller says about a
//! target decides where its traffic goes.
//!
//! ```text
//! target (original destination ip:port, or an explicit request's host:port)
//!   └─ covered by PROFILE_NETWORKS / PROFILE_SUFFIXES? (policy::lookup_path) ──no──► original destination
//!        └─ GetProfile (shared per target, waited for at most the initial timeout)
//!             ├─ endpoint set (a workload address)  ─► Plan::Endpoint: connect there, dst_* labels
//!             ├─ fully-qualified name               ─► Plan::Logical:
//!             │     route (first match: timeout, retries, response classes)
//!             │     → backend (dst_overrides weights; else name:port)
//!             │     → Get(backend) balancer: P2C over peak-EWMA (per request / per connection)
//!             └─ nothing, unresolved, rejected      ─► Plan::Original
//! ```
//!
//! Inbound, the same client looks up the profile of the service a request
//! names, for route metrics only (see [`inbound`]).
//!
//! A backend with no endpoint holds a request or connection until one
//! appears, at most the failfast timeout (then 503), and at most
//! `WEFT_PROXY_OUTBOUND_MAX_PENDING` wait at once. An endpoint that refuses
//! connections is penalised in the balancer (its load estimate jumps to one
//! second) and another is tried, so a dead endpoint costs little before the
//! controller drops it.

pub(crate) mod budget;
pub(crate) mod http_routes;
pub(crate) mod inbound;
pub(crate) mod policy;
pub(crate) mod profile;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::HeaderValue;

use crate::balance::EndpointLease;
use crate::balance::accrual::{Accrual, AccrualConfig, Admission};
use crate::balance::p2c::Random;
use crate::config::{Config, DestinationConfig, IpNetwork};
use crate::control::ControlTls;
use crate::direction::Direction;
use crate::discovery::client::ClientError;
use crate::discovery::{
    DiscoveryCache, DiscoveryClient, DiscoveryConfig, EndpointMeta, EndpointsWatch, Lookup,
    ProfileWatch,
};
use crate::metrics::control::ControlMetrics;
use crate::metrics::route::RouteLabels;
use crate::policy::outbound::{FailureAccrual, OutboundPolicy, PolicyCache, PolicyWatch};
use budget::RetryBudget;
use http_routes::PolicyRoutes;
use inbound::InboundDiscovery;
use profile::{Profile, Route};

/// The load estimate given to an endpoint that refused a connection.
pub(crate) const CONNECT_FAILURE_PENALTY: Duration = Duration::from_secs(1);

/// How many endpoints one request or connection tries when they refuse.
pub(crate) const CONNECT_ATTEMPTS: usize = 3;

/// Retry budgets kept for names no connection uses any more.
pub(crate) const MAX_BUDGETS: usize = 10_000;

/// A balanced endpoint chosen for one request or connection.
pub(crate) type Lease = EndpointLease<EndpointMeta>;

/// Why no endpoint was picked for a request or connection. The HTTP stage
/// maps it to a response (`http::errors`), the TCP stage to a metric label.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PickError {
    /// A backend had no endpoint for the whole failfast timeout.
    #[error("service in fail-fast: no endpoints for {authority} within {}", crate::config::format_duration(*after))]
    FailFast {
        /// The backend (`name:port`).
        authority: String,
        /// The failfast timeout.
        after: Duration,
    },
    /// Too many requests are already waiting for endpoints.
    #[error("too many requests waiting for endpoints of {authority}")]
    Overloaded {
        /// The backend (`name:port`).
        authority: String,
    },
    /// Failure accrual has ejected every endpoint of the backend: fail
    /// fast rather than wait for one to be probed.
    #[error("every endpoint of {authority} is ejected by failure accrual")]
    Ejected {
        /// The backend (`name:port`).
        authority: String,
    },
}

/// Discovery state shared by every connection: outbound plans, and the
/// inbound profile lookups that label route metrics ([`inbound`]).
pub(crate) struct Router {
    cache: DiscoveryCache,
    /// Profile lookups of the names inbound requests carry: the same
    /// client, its own entries (bounded, since clients choose the names).
    inbound: DiscoveryCache,
    suffixes: Vec<String>,
    networks: Vec<IpNetwork>,
    failfast_timeout: Duration,
    max_pending: usize,
    pending: AtomicUsize,
    /// One budget per logical name, outliving the connections that use it
    /// (a client opening a connection per request must not get a fresh
    /// budget each time).
    budgets: Mutex<HashMap<Arc<str>, Arc<RetryBudget>>>,
    random: Random,
    /// Whether this proxy has an identity (mutual TLS to meshed endpoints).
    mesh_tls: bool,
    /// Outbound policy watches, when the proxy has a policy channel.
    policies: Option<PolicyCache>,
    /// One failure accrual per backend authority, shared by every
    /// connection (bounded like `budgets`).
    accruals: Mutex<HashMap<Arc<str>, Arc<Accrual>>>,
}

/// What to do with a target's traffic.
#[derive(Clone)]
pub(crate) enum Plan {
    /// Forward to the original destination (or the explicit target).
    Original,
    /// Discovery named one endpoint: connect to it directly.
    Endpoint {
        /// Where to connect.
        addr: SocketAddr,
        /// Its labels, identity and protocol hints.
        meta: EndpointMeta,
        /// Whether its port is opaque (no protocol detection).
        opaque: bool,
    },
    /// A logical service: route, split, balance.
    Logical(Arc<LogicalTarget>),
}

impl Plan {
    /// Whether discovery says connections are opaque (no detection).
    pub(crate) fn is_opaque(&self) -> bool {
        match self {
            Plan::Original => false,
            Plan::Endpoint { opaque, .. } => *opaque,
            Plan::Logical(logical) => logical.opaque,
        }
    }
}

/// A service known by name, with its profile and backends resolved.
pub(crate) struct LogicalTarget {
    /// `name:port`: the `authority` and `dst` label, `l5d-dst-canonical`.
    pub name: Arc<str>,
    /// `name` as a header value.
    pub canonical: HeaderValue,
    /// The profile the target was built from.
    pub profile: Arc<Profile>,
    /// Whether connections are opaque (no protocol detection).
    pub opaque: bool,
    backends: Vec<Backend>,
    weights: Vec<u32>,
    budget: Option<Arc<RetryBudget>>,
    /// Route labels by route index, then the default route's.
    route_labels: Vec<RouteLabels>,
    /// HTTPRoute/GRPCRoute routing, when the outbound policy has routes
    /// and the profile has neither routes nor a traffic split.
    policy: Option<PolicyRoutes>,
}

/// One backend of a logical target: an authority and its balancer.
pub(crate) struct Backend {
    /// `name:port` looked up with `Get`.
    pub authority: Arc<str>,
    /// The lookup and its balancer.
    pub endpoints: EndpointsWatch,
    /// Failure accrual of its endpoints (policy backends that configure it).
    pub accrual: Option<Arc<Accrual>>,
}

impl Backend {
    /// Records a response (`failed` or not) from `addr` in the failure
    /// accrual, if any.
    pub(crate) fn observe(&self, addr: SocketAddr, failed: bool, random: &Random) {
        if let Some(accrual) = &self.accrual {
            let uniform = random.next_fraction();
            accrual.observe(addr, failed, Instant::now(), uniform);
        }
    }
}

/// The route a request takes through a logical target.
pub(crate) struct RouteChoice<'a> {
    /// Its metric labels.
    pub labels: &'a RouteLabels,
    /// The matched route; `None` for the default route.
    pub route: Option<&'a Route>,
}

impl RouteChoice<'_> {
    /// The route's response classes (empty: the default classification).
    pub(crate) fn classes(&self) -> Vec<profile::ResponseClass> {
        self.route
            .map(|route| route.response_classes.clone())
            .unwrap_or_default()
    }
}

/// The first of `routes` matching the request, with its labels (`labels`:
/// one per route, then the default route's); the default route when none
/// matches.
fn choose_route<'a>(
    routes: &'a [Route],
    labels: &'a [RouteLabels],
    method: &http::Method,
    path: &str,
) -> RouteChoice<'a> {
    match policy::select_route(routes, method, path) {
        Some(index) => RouteChoice {
            labels: &labels[index],
            route: Some(&routes[index]),
        },
        None => RouteChoice {
            labels: &labels[routes.len()],
            route: None,
        },
    }
}

/// The metric labels of `profile`'s routes for the logical name `dst`, in
/// order, then the default route's.
fn route_labels(profile: &Profile, dst: &Arc<str>, direction: Direction) -> Vec<RouteLabels> {
    profile
        .routes
        .iter()
        .map(|route| RouteLabels {
            direction,
            dst: dst.clone(),
            route: (!route.name.is_empty()).then(|| Arc::from(route.name.as_str())),
        })
        .chain([RouteLabels {
            direction,
            dst: dst.clone(),
            route: None,
        }])
        .collect()
}

impl LogicalTarget {
    /// The route for a request: the first matching profile route, or the
    /// default route.
    pub(crate) fn route(&self, method: &http::Method, path: &str) -> RouteChoice<'_> {
        choose_route(&self.profile.routes, &self.route_labels, method, path)
    }

    /// The HTTPRoute/GRPCRoute routing, when the policy decides routes.
    pub(crate) fn policy_routes(&self) -> Option<&PolicyRoutes> {
        self.policy.as_ref()
    }

    /// The retry budget; `None` means no retries.
    pub(crate) fn budget(&self) -> Option<&RetryBudget> {
        self.budget.as_deref()
    }

    /// A backend, chosen by the split's weights.
    pub(crate) fn backend(&self, random: &Random) -> &Backend {
        if self.backends.len() == 1 {
            return &self.backends[0];
        }
        let uniform = random.next_fraction();
        let index = policy::select_backend(self.weights.iter().copied(), uniform).unwrap_or(0);
        &self.backends[index]
    }
}

/// One connection's discovery of one target: its profile lookup and the
/// plan made from the latest profile.
pub(crate) struct TargetDiscovery {
    port: u16,
    watch: ProfileWatch,
    /// The target's outbound policy watch, when the proxy has a policy
    /// channel.
    policy: Option<PolicyWatch>,
    last: Option<(Arc<Profile>, Option<Arc<OutboundPolicy>>, Plan)>,
}

impl Router {
    /// Outbound discovery through the Destination service in `destination`
    /// (over `tls` when given). Connects lazily: a controller that is down never stops the proxy.
    pub(crate) fn new(
        config: &Config,
        destination: &DestinationConfig,
        tls: Option<ControlTls>,
        metrics: ControlMetrics,
    ) -> Result<Router, ClientError> {
        let mut discovery = DiscoveryConfig::new(&destination.addr, &destination.context_token);
        discovery.tls = tls;
        discovery.initial_timeout = destination.initial_timeout;
        discovery.metrics = Some(metrics);
        discovery.mesh_tls = config.identity.is_some();
        let client = DiscoveryClient::new(discovery)?;
        Ok(Router {
            inbound: DiscoveryCache::new(client.clone(), config.discovery_idle_timeout),
            cache: DiscoveryCache::new(client, config.discovery_idle_timeout),
            suffixes: destination.profile_suffixes.clone(),
            networks: destination.profile_networks.clone(),
            failfast_timeout: config.failfast_timeout,
            max_pending: config.max_pending,
            pending: AtomicUsize::new(0),
            budgets: Mutex::new(HashMap::new()),
            random: Random::from_entropy(),
            mesh_tls: config.identity.is_some(),
            policies: None,
            accruals: Mutex::new(HashMap::new()),
        })
    }

    /// The router with HTTPRoute/GRPCRoute routing from `policies`.
    pub(crate) fn with_policies(mut self, policies: PolicyCache) -> Router {
        self.policies = Some(policies);
        self
    }

    /// Random numbers for backend choices.
    pub(crate) fn random(&self) -> &Random {
        &self.random
    }

    /// Starts (or shares) discovery of `host:port`; `None` when discovery
    /// does not cover the target.
    pub(crate) fn discover(&self, host: &str, port: u16) -> Option<TargetDiscovery> {
        let key = policy::lookup_path(host, port, &self.suffixes, &self.networks)?;
        let watch = self.cache.profile(&key);
        let policy = self
            .policies
            .as_ref()
            .and_then(|policies| policies.watch(&key));
        Some(TargetDiscovery {
            port,
            watch,
            policy,
            last: None,
        })
    }

    /// Starts (or shares) the profile lookup of the service name `host:port`
    /// an inbound request names; `None` for IP addresses, names outside the
    /// profile suffixes, and new names past [`inbound::MAX_INBOUND_PROFILES`].
    pub(crate) fn discover_inbound(&self, host: &str, port: u16) -> Option<InboundDiscovery> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        let key = policy::lookup_path(host, port, &self.suffixes, &[])?;
        let watch = self
            .inbound
            .profile_within(&key, inbound::MAX_INBOUND_PROFILES)?;
        Some(InboundDiscovery::new(watch, port))
    }

    /// The plan for a discovered target, waiting for the first answer at
    /// most the initial timeout. Cheap when the profile has not changed.
    pub(crate) async fn plan(&self, discovery: &mut TargetDiscovery) -> Plan {
        let profile = match discovery.watch.current() {
            Lookup::Resolved(profile) => profile,
            Lookup::Pending => match discovery.watch.ready().await {
                Lookup::Resolved(profile) => profile,
                _ => return Plan::Original,
            },
            Lookup::Unresolved | Lookup::NotDiscoverable { .. } => return Plan::Original,
        };
        // The policy's first answer is waited for at most the initial
        // timeout too (its watch started with the profile's); anything but
        // an answer is no policy.
        let outbound_policy = match &mut discovery.policy {
            Some(watch) => match watch.ready().await {
                Lookup::Resolved(policy) => Some(policy),
                _ => None,
            },
            None => None,
        };
        if let Some((last_profile, last_policy, plan)) = &discovery.last
            && Arc::ptr_eq(last_profile, &profile)
            && same_policy(last_policy.as_ref(), outbound_policy.as_ref())
        {
            return plan.clone();
        }
        let plan = self.plan_for(&profile, outbound_policy.as_ref(), discovery.port);
        discovery.last = Some((profile, outbound_policy, plan.clone()));
        plan
    }

    fn plan_for(
        &self,
        profile: &Arc<Profile>,
        outbound_policy: Option<&Arc<OutboundPolicy>>,
        port: u16,
    ) -> Plan {
        if let Some(endpoint) = &profile.endpoint {
            return Plan::Endpoint {
                addr: endpoint.addr,
                meta: EndpointMeta::new(endpoint, self.mesh_tls),
                opaque: profile.opaque_protocol,
            };
        }
        let Some(name) = &profile.fully_qualified_name else {
            return Plan::Original;
        };
        let name: Arc<str> = format!("{}:{port}", name.trim_end_matches('.')).into();
        let (authorities, weights): (Vec<Arc<str>>, Vec<u32>) = if profile.dst_overrides.is_empty()
        {
            (vec![name.clone()], vec![1])
        } else {
            profile
                .dst_overrides
                .iter()
                .map(|split| (Arc::from(split.authority.as_str()), split.weight))
                .unzip()
        };
        let backends = authorities
            .into_iter()
            .map(|authority| Backend {
                endpoints: self.cache.endpoints(&authority),
                authority,
                accrual: None,
            })
            .collect();
        // Linkerd's rule: a profile with routes or a traffic split wins;
        // otherwise an outbound policy with (non-default) routes routes.
        let policy_routes = match outbound_policy {
            Some(outbound_policy)
                if profile.routes.is_empty()
                    && !policy::is_split(&profile.dst_overrides, &name)
                    && outbound_policy.routes_by_resource() =>
            {
                Some(self.policy_routes(outbound_policy))
            }
            _ => None,
        };
        let route_labels = route_labels(profile, &name, Direction::Outbound);
        let has_retryable_route = profile.routes.iter().any(|route| route.is_retryable);
        let budget = match profile.retry_budget {
            Some(spec) if has_retryable_route => Some(self.budget(&name, spec)),
            _ => None,
        };
        Plan::Logical(Arc::new(LogicalTarget {
            canonical: HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("")),
            name,
            profile: profile.clone(),
            opaque: profile.opaque_protocol,
            backends,
            weights,
            budget,
            route_labels,
            policy: policy_routes,
        }))
    }

    /// The routes of `outbound_policy` with a backend (lookup, balancer,
    /// failure accrual) per DestinationGet path.
    fn policy_routes(&self, outbound_policy: &Arc<OutboundPolicy>) -> PolicyRoutes {
        let backends = http_routes::backend_paths(outbound_policy)
            .into_iter()
            .map(|path| {
                let authority: Arc<str> = Arc::from(path.as_str());
                let accrual = outbound_policy
                    .failure_accrual
                    .map(|settings| self.accrual(&authority, settings));
                let backend = Backend {
                    endpoints: self.cache.endpoints(&path),
                    authority,
                    accrual,
                };
                (path, backend)
            })
            .collect();
        PolicyRoutes {
            policy: outbound_policy.clone(),
            backends,
        }
    }

    /// The one failure accrual of a backend authority (shared by every
    /// connection), replaced when its settings change. Past
    /// [`MAX_BUDGETS`] authorities, those no plan holds are dropped.
    fn accrual(&self, authority: &Arc<str>, settings: FailureAccrual) -> Arc<Accrual> {
        let config = AccrualConfig {
            max_failures: settings.max_failures,
            min_backoff: settings.min_backoff,
            max_backoff: settings.max_backoff,
            jitter_ratio: settings.jitter_ratio,
        };
        let mut accruals = self.accruals.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(accrual) = accruals.get(authority)
            && *accrual.config() == config
        {
            return accrual.clone();
        }
        if accruals.len() >= MAX_BUDGETS {
            accruals.retain(|_, accrual| Arc::strong_count(accrual) > 1);
        }
        let accrual = Arc::new(Accrual::new(config));
        accruals.insert(authority.clone(), accrual.clone());
        accrual
    }

    /// The one retry budget of a logical name (shared by every connection,
    /// kept while connections come and go), replaced when the profile's
    /// budget changes. Past [`MAX_BUDGETS`] names, budgets no connection
    /// holds are dropped.
    fn budget(&self, name: &Arc<str>, spec: profile::RetryBudget) -> Arc<RetryBudget> {
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(budget) = budgets.get(name)
            && budget.spec() == spec
        {
            return budget.clone();
        }
        if budgets.len() >= MAX_BUDGETS {
            budgets.retain(|_, budget| Arc::strong_count(budget) > 1);
        }
        let budget = Arc::new(RetryBudget::new(spec, Instant::now()));
        budgets.insert(name.clone(), budget.clone());
        budget
    }

    /// An endpoint of `backend` for one request or connection. With none
    /// ready, waits for discovery to add one, at most the failfast timeout.
    pub(crate) async fn pick(&self, backend: &Backend) -> Result<Lease, PickError> {
        self.pick_avoiding(backend, &[]).await
    }

    /// Like [`Router::pick`], but not one of the endpoints in `avoid`
    /// (they already failed this request or connection) while the backend
    /// has another.
    pub(crate) async fn pick_avoiding(
        &self,
        backend: &Backend,
        avoid: &[SocketAddr],
    ) -> Result<Lease, PickError> {
        let balancer = backend.endpoints.balancer();
        if let Some(accrual) = &backend.accrual {
            let now = Instant::now();
            let mut avoiding = avoid.to_vec();
            avoiding.extend(accrual.ejected(now));
            accrual.retain(|addr| balancer.contains(addr));
            if let Some(lease) = balancer.pick_avoiding(&avoiding) {
                // The balancer picks an avoided endpoint only when every
                // endpoint is avoided: all ejected, fail fast.
                if accrual.admit(lease.address(), now) == Admission::Ejected {
                    return Err(PickError::Ejected {
                        authority: backend.authority.to_string(),
                    });
                }
                return Ok(lease);
            }
        } else if let Some(lease) = balancer.pick_avoiding(avoid) {
            return Ok(lease);
        }
        let _waiting = PendingSlot::take(&self.pending, self.max_pending).ok_or_else(|| {
            PickError::Overloaded {
                authority: backend.authority.to_string(),
            }
        })?;
        let mut lookup = backend.endpoints.lookup().clone();
        let deadline = tokio::time::Instant::now() + self.failfast_timeout;
        loop {
            let changed = tokio::time::timeout_at(deadline, lookup.changed()).await;
            if let Some(lease) = backend.endpoints.balancer().pick() {
                return Ok(lease);
            }
            match changed {
                Ok(true) => continue,
                // Timed out, or the lookup ended (the name is not discoverable).
                Ok(false) | Err(_) => {
                    return Err(PickError::FailFast {
                        authority: backend.authority.to_string(),
                        after: self.failfast_timeout,
                    });
                }
            }
        }
    }
}

/// Whether two policy answers are the same one.
fn same_policy(last: Option<&Arc<OutboundPolicy>>, current: Option<&Arc<OutboundPolicy>>) -> bool {
    match (last, current) {
        (Some(last), Some(current)) => Arc::ptr_eq(last, current),
        (None, None) => true,
        _ => false,
    }
}

/// One place among the requests waiting for endpoints.
struct PendingSlot<'a>(&'a AtomicUsize);

impl<'a> PendingSlot<'a> {
    fn take(pending: &'a AtomicUsize, max: usize) -> Option<PendingSlot<'a>> {
        let previous = pending.fetch_add(1, Ordering::Relaxed);
        let slot = PendingSlot(pending);
        (previous < max).then_some(slot)
    }
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests;

//! The inbound policy client: one `WatchPort` stream per watched port, each
//! feeding a `tokio::sync::watch` of the port's current [`ServerPolicy`].
//!
//! ```text
//! WEFT_PROXY_INBOUND_PORTS ─► watched at start (kept)
//! other ports ─► watched at their first connection, dropped when no
//!                connection has held them for IDLE_TIMEOUT (90 s, as Linkerd)
//! each watch: WatchPort{workload, port} ─► convert ─► send
//!   ├─ before the first answer, UNIMPLEMENTED, NOT_FOUND: the default policy
//!   └─ stream ends or fails ─► backoff (100 ms → 10 s) ─► again, keeping the last answer
//! ```
//!
//! Bound: at most [`MAX_WATCHED_PORTS`] ports are watched. A new port past
//! it first evicts idle watches; when none is idle, the port gets the
//! default policy without a watch (shared, never changes). Without a
//! policy channel every port gets the default policy.

use super::convert;
use super::server::ServerPolicy;
use crate::balance::p2c::Random;
use crate::config::{DefaultPolicy, IpNetwork};
use crate::discovery::backoff::ExponentialBackoff;
use crate::policy::PolicyChannel;
use linkerd2_proxy_api::inbound::PortSpec;
use linkerd2_proxy_api::inbound::inbound_server_policies_client::InboundServerPoliciesClient;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The most ports watched at once.
pub(crate) const MAX_WATCHED_PORTS: usize = 1024;
/// How long a lazily watched port is kept with no connection holding it.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A port's policy as it changes.
pub(crate) type PolicyWatch = watch::Receiver<Arc<ServerPolicy>>;

/// Every watched port's policy. Cheap to clone.
#[derive(Clone)]
pub(crate) struct InboundPolicies {
    shared: Arc<Shared>,
}

struct Shared {
    channel: Option<PolicyChannel>,
    default_policy: DefaultPolicy,
    cluster_networks: Vec<IpNetwork>,
    /// Handed out past the bound: the default policy, never changing.
    overflow: watch::Sender<Arc<ServerPolicy>>,
    ports: Mutex<HashMap<u16, PortWatch>>,
    max_ports: usize,
    idle_timeout: Duration,
    backoff: ExponentialBackoff,
    random: Random,
}

struct PortWatch {
    sender: Arc<watch::Sender<Arc<ServerPolicy>>>,
    /// True once the controller answered (or the stream failed, so the
    /// default or last policy is what there will be for now).
    settled: Arc<watch::Sender<bool>>,
    /// Watched from the start (WEFT_PROXY_INBOUND_PORTS): never evicted.
    eager: bool,
    last_used: Instant,
    task: Option<tokio::task::AbortHandle>,
}

impl Drop for PortWatch {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl InboundPolicies {
    /// The policies of a proxy asking `channel` (none: every port gets the
    /// default policy). Call it inside a tokio runtime when there is a channel.
    pub(crate) fn new(
        channel: Option<PolicyChannel>,
        default_policy: DefaultPolicy,
        cluster_networks: Vec<IpNetwork>,
    ) -> InboundPolicies {
        InboundPolicies::with_limits(
            channel,
            default_policy,
            cluster_networks,
            MAX_WATCHED_PORTS,
            IDLE_TIMEOUT,
        )
    }

    /// As [`InboundPolicies::new`], with other bounds.
    pub(crate) fn with_limits(
        channel: Option<PolicyChannel>,
        default_policy: DefaultPolicy,
        cluster_networks: Vec<IpNetwork>,
        max_ports: usize,
        idle_timeout: Duration,
    ) -> InboundPolicies {
        let overflow = ServerPolicy::default_for(default_policy, 0, &cluster_networks);
        InboundPolicies {
            shared: Arc::new(Shared {
                channel,
                default_policy,
                cluster_networks,
                overflow: watch::Sender::new(Arc::new(overflow)),
                ports: Mutex::new(HashMap::new()),
                max_ports,
                idle_timeout,
                backoff: ExponentialBackoff::default(),
                random: Random::from_entropy(),
            }),
        }
    }

    /// Starts watching `ports` for good (the ports the workload declares).
    pub(crate) fn watch_eagerly(&self, ports: impl IntoIterator<Item = u16>) {
        for port in ports {
            let _ = self.watch(port, true);
        }
    }

    /// The policy of `port`, watching it when it is not yet.
    pub(crate) fn port(&self, port: u16) -> PolicyWatch {
        self.watch(port, false)
    }

    fn watch(&self, port: u16, eager: bool) -> PolicyWatch {
        let shared = &self.shared;
        let mut ports = shared.ports.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(watched) = ports.get_mut(&port) {
            watched.last_used = now;
            watched.eager |= eager;
            return watched.sender.subscribe();
        }
        if ports.len() >= shared.max_ports {
            evict_idle(&mut ports, shared.idle_timeout, now);
        }
        if ports.len() >= shared.max_ports {
            tracing::debug!(port, "too many watched ports: the default policy applies");
            return shared.overflow.subscribe();
        }
        let default =
            ServerPolicy::default_for(shared.default_policy, port, &shared.cluster_networks);
        let (sender, receiver) = watch::channel(Arc::new(default));
        let sender = Arc::new(sender);
        let settled = Arc::new(watch::Sender::new(shared.channel.is_none()));
        let task = shared.channel.as_ref().map(|channel| {
            let stream = PortStream {
                channel: channel.clone(),
                port,
                sender: sender.clone(),
                settled: settled.clone(),
                backoff: shared.backoff,
                random: Random::with_seed(shared.random.next_u64()),
                default_policy: shared.default_policy,
                cluster_networks: shared.cluster_networks.clone(),
                last: None,
            };
            tokio::spawn(stream.run()).abort_handle()
        });
        ports.insert(
            port,
            PortWatch {
                sender,
                settled,
                eager,
                last_used: now,
                task,
            },
        );
        receiver
    }

    /// Waits until each of `ports` that is watched has its first answer
    /// from the controller, or its stream failed (the default, or the last
    /// policy, is then what applies for now). The proxy becomes ready only
    /// after this for its declared ports, so no client reaches an app under
    /// the default policy while the controller's answer is on its way.
    pub(crate) async fn settled(&self, ports: impl IntoIterator<Item = u16>) {
        let receivers: Vec<watch::Receiver<bool>> = {
            let watched = self
                .shared
                .ports
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            ports
                .into_iter()
                .filter_map(|port| watched.get(&port))
                .map(|watch| watch.settled.subscribe())
                .collect()
        };
        for mut receiver in receivers {
            // An error means the watch was dropped: nothing to wait for.
            let _ = receiver.wait_for(|settled| *settled).await;
        }
    }

    /// Drops the lazily watched ports no connection has held for the idle
    /// timeout; returns how many.
    pub(crate) fn evict_idle(&self) -> usize {
        let mut ports = self
            .shared
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        evict_idle(&mut ports, self.shared.idle_timeout, Instant::now())
    }

    /// How many ports are watched.
    #[cfg(test)]
    pub(crate) fn watched(&self) -> usize {
        self.shared
            .ports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Evicts idle ports every `period` until the process ends.
    pub(crate) fn spawn_eviction(&self, period: Duration) {
        let policies = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                policies.evict_idle();
            }
        });
    }
}

fn evict_idle(ports: &mut HashMap<u16, PortWatch>, idle_timeout: Duration, now: Instant) -> usize {
    let before = ports.len();
    ports.retain(|_, watched| {
        watched.eager
            || watched.sender.receiver_count() > 0
            || now.saturating_duration_since(watched.last_used) < idle_timeout
    });
    before - ports.len()
}

/// One port's `WatchPort` stream, reopened with backoff until aborted.
struct PortStream {
    channel: PolicyChannel,
    port: u16,
    sender: Arc<watch::Sender<Arc<ServerPolicy>>>,
    settled: Arc<watch::Sender<bool>>,
    backoff: ExponentialBackoff,
    random: Random,
    default_policy: DefaultPolicy,
    cluster_networks: Vec<IpNetwork>,
    /// The answer in force (`None`: the default policy), so a repeated
    /// answer (each reconnection repeats it) changes nothing.
    last: Option<linkerd2_proxy_api::inbound::Server>,
}

impl PortStream {
    async fn run(mut self) {
        let mut client = InboundServerPoliciesClient::new(self.channel.channel.clone());
        let mut attempt: u32 = 0;
        loop {
            let spec = PortSpec {
                workload: self.channel.workload.clone(),
                port: u32::from(self.port),
            };
            match client.watch_port(spec).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(server)) => {
                                attempt = 0;
                                self.answer(server);
                            }
                            Ok(None) => break,
                            Err(status) => {
                                self.failed(&status);
                                break;
                            }
                        }
                    }
                }
                Err(status) => self.failed(&status),
            }
            let random = self.random.next_fraction();
            tokio::time::sleep(self.backoff.delay(attempt, random)).await;
            attempt = attempt.saturating_add(1);
        }
    }

    fn answer(&mut self, server: linkerd2_proxy_api::inbound::Server) {
        self.settled.send_replace(true);
        if self.last.as_ref() == Some(&server) {
            return;
        }
        match convert::server_policy(server.clone(), self.port) {
            Ok(policy) => {
                self.sender.send_replace(Arc::new(policy));
                self.last = Some(server);
            }
            Err(error) => {
                tracing::warn!(port = self.port, %error, "inbound policy refused; the last one stays");
            }
        }
    }

    /// A failed stream keeps the last answer, except when the controller
    /// says it has no policy for the port: then the default applies.
    fn failed(&mut self, status: &tonic::Status) {
        tracing::debug!(port = self.port, ?status, "inbound policy stream failed");
        self.settled.send_replace(true);
        let no_policy = matches!(
            status.code(),
            tonic::Code::Unimplemented | tonic::Code::NotFound
        );
        if no_policy && self.last.take().is_some() {
            let default =
                ServerPolicy::default_for(self.default_policy, self.port, &self.cluster_networks);
            self.sender.send_replace(Arc::new(default));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(sender: Arc<watch::Sender<Arc<ServerPolicy>>>) -> PortStream {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        PortStream {
            channel: PolicyChannel {
                channel,
                workload: r#"{"ns":"shop","pod":"web-1"}"#.to_string(),
            },
            port: 8080,
            sender,
            settled: Arc::new(watch::Sender::new(false)),
            backoff: ExponentialBackoff::default(),
            random: Random::with_seed(1),
            default_policy: DefaultPolicy::Deny,
            cluster_networks: Vec::new(),
            last: None,
        }
    }

    fn answer(name: &str) -> linkerd2_proxy_api::inbound::Server {
        use linkerd2_proxy_api::inbound as api;
        api::Server {
            protocol: Some(api::ProxyProtocol {
                kind: Some(api::proxy_protocol::Kind::Opaque(
                    api::proxy_protocol::Opaque {},
                )),
            }),
            server_ips: Vec::new(),
            authorizations: Vec::new(),
            labels: HashMap::from([("name".to_string(), name.to_string())]),
        }
    }

    #[tokio::test]
    async fn failures_keep_the_last_answer_unless_the_controller_has_no_policy() {
        let initial = ServerPolicy::default_for(DefaultPolicy::Deny, 8080, &[]);
        let (sender, mut receiver) = watch::channel(Arc::new(initial));
        let mut stream = stream(Arc::new(sender));
        let name = |receiver: &PolicyWatch| receiver.borrow().labels.resource.name.to_string();

        stream.answer(answer("web"));
        assert!(receiver.has_changed().unwrap());
        assert_eq!(name(&receiver), "web");
        receiver.borrow_and_update();
        // The same answer again (a reconnection repeats it): no change.
        stream.answer(answer("web"));
        assert!(!receiver.has_changed().unwrap());
        // A broken stream keeps it.
        for code in [tonic::Code::Unavailable, tonic::Code::Internal] {
            stream.failed(&tonic::Status::new(code, "down"));
            assert_eq!(name(&receiver), "web", "{code:?}");
        }
        // An answer that cannot be used keeps it too.
        let mut broken = answer("broken");
        broken.protocol = None;
        stream.answer(broken);
        assert_eq!(name(&receiver), "web");
        // The controller has no policy for the port: the default.
        for code in [tonic::Code::Unimplemented, tonic::Code::NotFound] {
            stream.answer(answer("web"));
            stream.failed(&tonic::Status::new(code, "no"));
            assert_eq!(name(&receiver), "deny", "{code:?}");
        }
    }
}

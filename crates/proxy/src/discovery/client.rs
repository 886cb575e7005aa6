//! The Destination client: one background task per lookup, each holding one
//! `GetProfile` or `Get` stream and publishing what it learns in a watch.
//!
//! ```text
//! DiscoveryClient::profile("10.0.0.7:80")   ─► ProfileWatch   (watch of Lookup<Profile>)
//! DiscoveryClient::endpoints("web.shop…:80") ─► EndpointsWatch (watch of Lookup<KnownEndpoints>
//!                                                               + Balancer fed by the stream)
//! lookup task:
//!   open stream ─► message ─► convert ─► publish Resolved(value)   (attempts reset)
//!        │           stream ends / fails ─► backoff (100 ms → 10 s, jitter) ─► open again
//!        │           InvalidArgument | FailedPrecondition | NotFound ─► NotDiscoverable (task ends)
//!   timer: still Pending after the initial timeout ─► Unresolved (the task keeps trying)
//! ```
//!
//! A caller never waits on the controller longer than the initial timeout:
//! [`LookupWatch::ready`] returns as soon as the lookup is anything but
//! `Pending`. While the controller is away the last value keeps being served.
//! Dropping every clone of a watch aborts its task and closes its stream;
//! sharing one stream between callers is [`super::cache`]'s job.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::destination_client::DestinationClient;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tonic::transport::Channel;
use tonic::{Code, Status, Streaming};

use super::backoff::ExponentialBackoff;
use super::convert::ConvertError;
use super::endpoints::{Endpoint, Update};
use crate::balance::p2c::Random;
use crate::balance::{Balancer, Change, PeakEwmaConfig};
use crate::metrics::control::ControlMetrics;
use crate::metrics::labels::{TargetLabels, TlsStatus};
use crate::routing::profile::Profile;

/// What the balancer keeps about one endpoint: its metric labels (made once,
/// shared by every request sent there) and how to reach its proxy.
#[derive(Clone, Debug)]
pub(crate) struct EndpointMeta {
    /// Labels of requests and connections to it (`dst_*`, TLS status).
    pub labels: Arc<TargetLabels>,
    /// The identity to require with mutual TLS; `None`: plaintext (not
    /// meshed, or this proxy has no identity).
    pub identity: Option<Arc<str>>,
    /// Whether its proxy takes HTTP/2 (HTTP/1 requests travel upgraded).
    pub h2: bool,
    /// Its proxy's inbound port for opaque traffic with a transport header.
    pub opaque_transport_port: Option<u16>,
    /// Whether its proxy restores header names' case from
    /// `l5d-orig-header-case` (a weft proxy, reached with mutual TLS); only
    /// such a peer is sent the header.
    pub restores_header_case: bool,
}

impl EndpointMeta {
    /// The metadata of `endpoint`; mutual TLS only when `mesh_tls` (this
    /// proxy has an identity) and discovery names the endpoint's identity.
    pub(crate) fn new(endpoint: &Endpoint, mesh_tls: bool) -> EndpointMeta {
        let identity: Option<Arc<str>> = endpoint
            .identity
            .as_deref()
            .filter(|_| mesh_tls)
            .map(Arc::from);
        let tls = match &identity {
            Some(identity) => TlsStatus::ToServer(identity.clone()),
            None => TlsStatus::NotProvidedByServiceDiscovery,
        };
        let meshed = identity.is_some();
        EndpointMeta {
            labels: TargetLabels::discovered(endpoint.addr, tls, endpoint.labels.clone()),
            identity,
            h2: meshed && endpoint.h2,
            opaque_transport_port: endpoint.opaque_transport_port.filter(|_| meshed),
            restores_header_case: meshed && endpoint.weft_proxy,
        }
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The Destination address is not a valid `host:port` authority.
    #[error("invalid destination address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },
}

/// What a [`DiscoveryClient`] needs. Config wiring
/// (`WEFT_PROXY_DESTINATION_*`) builds this later.
#[derive(Clone, Debug)]
pub(crate) struct DiscoveryConfig {
    /// The Destination service, `host:port`.
    pub destination_addr: String,
    /// TLS to it (mutual, with the proxy's current certificate); `None`:
    /// plaintext HTTP/2.
    pub tls: Option<crate::control::ControlTls>,
    /// The opaque `context_token` sent with every lookup.
    pub context_token: String,
    /// Delay between attempts to (re)open a stream.
    pub backoff: ExponentialBackoff,
    /// After this long without a first answer a lookup says `Unresolved`.
    pub initial_timeout: Duration,
    /// Timeout for connecting to the Destination service.
    pub connect_timeout: Duration,
    /// Load estimation for the balancers fed by `Get` streams.
    pub balancer: PeakEwmaConfig,
    /// Stream metrics, if they are exported.
    pub metrics: Option<ControlMetrics>,
    /// Whether this proxy has an identity, so endpoints discovery names an
    /// identity for are reached with mutual TLS.
    pub mesh_tls: bool,
}

impl DiscoveryConfig {
    /// Defaults (backoff 100 ms–10 s, initial timeout 500 ms, connect
    /// timeout 1 s) for `destination_addr` and `context_token`.
    pub(crate) fn new(
        destination_addr: impl Into<String>,
        context_token: impl Into<String>,
    ) -> Self {
        DiscoveryConfig {
            destination_addr: destination_addr.into(),
            tls: None,
            context_token: context_token.into(),
            backoff: ExponentialBackoff::default(),
            initial_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(1),
            balancer: PeakEwmaConfig::default(),
            metrics: None,
            mesh_tls: false,
        }
    }
}

/// The state of one lookup.
#[derive(Debug)]
pub(crate) enum Lookup<T> {
    /// No answer yet, and the initial timeout has not passed: wait.
    Pending,
    /// No answer within the initial timeout: proceed without discovery
    /// (original destination). The lookup keeps trying and may still
    /// become `Resolved`.
    Unresolved,
    /// The latest answer. Kept while the controller is away.
    Resolved(Arc<T>),
    /// The controller says the target is not discoverable
    /// (`InvalidArgument`, `FailedPrecondition` or `NotFound`). Terminal:
    /// fall back to the original destination.
    NotDiscoverable {
        /// The status code and message, for logs.
        reason: String,
    },
}

impl<T> Clone for Lookup<T> {
    fn clone(&self) -> Self {
        match self {
            Lookup::Pending => Lookup::Pending,
            Lookup::Unresolved => Lookup::Unresolved,
            Lookup::Resolved(value) => Lookup::Resolved(value.clone()),
            Lookup::NotDiscoverable { reason } => Lookup::NotDiscoverable {
                reason: reason.clone(),
            },
        }
    }
}

impl<T> Lookup<T> {
    /// The resolved value, if any.
    #[cfg(test)]
    pub(crate) fn value(&self) -> Option<&Arc<T>> {
        match self {
            Lookup::Resolved(value) => Some(value),
            _ => None,
        }
    }

    /// Whether the caller should still wait (only before the initial timeout).
    pub(crate) fn is_pending(&self) -> bool {
        matches!(self, Lookup::Pending)
    }
}

/// The endpoint set a `Get` stream describes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KnownEndpoints {
    /// `false` after `no_endpoints{exists: false}`: the service is unknown.
    pub exists: bool,
    /// Current endpoints and their labels.
    pub endpoints: BTreeMap<SocketAddr, Endpoint>,
}

/// A handle on one lookup: the watch of its state. Clones share the lookup;
/// the lookup (and its stream) ends when the last clone is dropped.
#[derive(Debug)]
pub(crate) struct LookupWatch<T> {
    receiver: watch::Receiver<Lookup<T>>,
    task: Arc<LookupTask>,
}

impl<T> Clone for LookupWatch<T> {
    fn clone(&self) -> Self {
        LookupWatch {
            receiver: self.receiver.clone(),
            task: self.task.clone(),
        }
    }
}

impl<T> LookupWatch<T> {
    /// The current state.
    pub(crate) fn current(&self) -> Lookup<T> {
        self.receiver.borrow().clone()
    }

    /// The current value, if resolved.
    #[cfg(test)]
    pub(crate) fn value(&self) -> Option<Arc<T>> {
        self.receiver.borrow().value().cloned()
    }

    /// Waits until the lookup is no longer `Pending` (at most about the
    /// initial timeout) and returns its state.
    pub(crate) async fn ready(&mut self) -> Lookup<T> {
        let waited = self
            .receiver
            .wait_for(|state| !state.is_pending())
            .await
            .map(|state| state.clone());
        // An error means the lookup ended; its last state stays readable.
        waited.unwrap_or_else(|_| self.current())
    }

    /// Waits for the next change; `false` once the lookup has ended (it was
    /// not discoverable), after which the state never changes again.
    pub(crate) async fn changed(&mut self) -> bool {
        self.receiver.changed().await.is_ok()
    }

    /// How many times this lookup's stream has been re-opened.
    #[cfg(test)]
    pub(crate) fn reconnects(&self) -> u64 {
        self.task.reconnects.load(Ordering::Relaxed)
    }

    /// A watch on `receiver`, fed by the task `abort` stops once the last
    /// clone is dropped (the outbound policy watches; they count no
    /// reconnects).
    pub(crate) fn of_task(receiver: watch::Receiver<Lookup<T>>, abort: AbortHandle) -> Self {
        LookupWatch {
            receiver,
            task: Arc::new(LookupTask {
                abort,
                reconnects: Arc::new(AtomicU64::new(0)),
            }),
        }
    }

    /// Handles on this lookup, including this one (the cache uses it to see
    /// that nobody else holds the lookup).
    pub(crate) fn holders(&self) -> usize {
        Arc::strong_count(&self.task)
    }
}

/// A lookup of a service profile (`GetProfile`).
pub(crate) type ProfileWatch = LookupWatch<Profile>;

/// A lookup of an endpoint set (`Get`) and the balancer it feeds. The
/// balancer applies every update as it arrives (`Reset` for the first
/// message of each stream, then `Add`/`Remove`); the watch exposes the same
/// set for callers that need to see it change.
#[derive(Clone, Debug)]
pub(crate) struct EndpointsWatch {
    lookup: LookupWatch<KnownEndpoints>,
    balancer: Balancer<EndpointMeta>,
}

impl EndpointsWatch {
    /// The lookup's state.
    pub(crate) fn lookup(&self) -> &LookupWatch<KnownEndpoints> {
        &self.lookup
    }

    /// The lookup's state, to wait on.
    #[cfg(test)]
    pub(crate) fn lookup_mut(&mut self) -> &mut LookupWatch<KnownEndpoints> {
        &mut self.lookup
    }

    /// The balancer over the current endpoints (shared by every clone).
    pub(crate) fn balancer(&self) -> &Balancer<EndpointMeta> {
        &self.balancer
    }
}

/// Aborts the lookup's task when the last handle goes.
#[derive(Debug)]
struct LookupTask {
    abort: AbortHandle,
    /// Read by tests ([`LookupWatch::reconnects`]).
    #[cfg_attr(not(test), allow(dead_code))]
    reconnects: Arc<AtomicU64>,
}

impl Drop for LookupTask {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// A client of the Destination service. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct DiscoveryClient {
    shared: Arc<ClientShared>,
}

#[derive(Debug)]
struct ClientShared {
    client: DestinationClient<Channel>,
    context_token: String,
    backoff: ExponentialBackoff,
    initial_timeout: Duration,
    balancer: PeakEwmaConfig,
    random: Random,
    metrics: Option<ControlMetrics>,
    mesh_tls: bool,
}

impl DiscoveryClient {
    /// A client for `config.destination_addr`. Connects lazily, so it never
    /// fails or waits because the controller is down. Call it inside a tokio
    /// runtime.
    pub(crate) fn new(config: DiscoveryConfig) -> Result<DiscoveryClient, ClientError> {
        let endpoint =
            crate::control::streaming_endpoint(&config.destination_addr, config.connect_timeout)
                .map_err(|reason| ClientError::InvalidAddress {
                    address: config.destination_addr.clone(),
                    reason,
                })?;
        let channel = crate::control::connect_lazy(endpoint, config.tls);
        Ok(DiscoveryClient {
            shared: Arc::new(ClientShared {
                client: DestinationClient::new(channel),
                context_token: config.context_token,
                backoff: config.backoff,
                initial_timeout: config.initial_timeout,
                balancer: config.balancer,
                random: Random::from_entropy(),
                metrics: config.metrics,
                mesh_tls: config.mesh_tls,
            }),
        })
    }

    /// Starts a `GetProfile` lookup of `target` (`ip:port` outbound,
    /// `name:port` inbound).
    pub(crate) fn profile(&self, target: &str) -> ProfileWatch {
        self.spawn(target, ProfileSession)
    }

    /// Starts a `Get` lookup of `authority` (`fqdn:port`) feeding a new
    /// balancer.
    pub(crate) fn endpoints(&self, authority: &str) -> EndpointsWatch {
        let balancer = Balancer::new(self.shared.balancer);
        let session = EndpointsSession {
            balancer: balancer.clone(),
            known: KnownEndpoints::default(),
            mesh_tls: self.shared.mesh_tls,
        };
        EndpointsWatch {
            lookup: self.spawn(authority, session),
            balancer,
        }
    }

    fn spawn<S: Session>(&self, path: &str, session: S) -> LookupWatch<S::Value> {
        let (sender, receiver) = watch::channel(Lookup::Pending);
        let sender = Arc::new(sender);
        let reconnects = Arc::new(AtomicU64::new(0));
        let timer_sender = sender.clone();
        let initial_timeout = self.shared.initial_timeout;
        let stream = StreamLoop {
            shared: self.shared.clone(),
            path: path.to_string(),
            sender,
            reconnects: reconnects.clone(),
        };
        // One task for the stream and the initial timeout, so aborting it
        // drops every sender and ends the watch.
        let task = tokio::spawn(run_with_initial_timeout(
            stream.run(session),
            initial_timeout,
            timer_sender,
        ));
        LookupWatch {
            receiver,
            task: Arc::new(LookupTask {
                abort: task.abort_handle(),
                reconnects,
            }),
        }
    }
}

/// Runs a lookup's stream `run`; if `sender` still says `Pending` after
/// `initial_timeout`, it says `Unresolved` instead (the stream goes on).
/// `sender` is dropped once the timer has fired. Shared with the outbound
/// policy watches.
pub(crate) async fn run_with_initial_timeout<T, S>(
    run: impl Future<Output = ()>,
    initial_timeout: Duration,
    sender: S,
) where
    S: Deref<Target = watch::Sender<Lookup<T>>>,
{
    tokio::pin!(run);
    tokio::select! {
        () = &mut run => return,
        () = tokio::time::sleep(initial_timeout) => {
            sender.send_if_modified(|state| {
                let pending = state.is_pending();
                if pending {
                    *state = Lookup::Unresolved;
                }
                pending
            });
        }
    }
    drop(sender);
    run.await;
}

/// What differs between a `GetProfile` and a `Get` lookup.
trait Session: Send + 'static {
    type Message: Send + 'static;
    type Value: Send + Sync + 'static;
    /// The `kind` label of its messages.
    const KIND: &'static str;

    /// Opens the stream.
    fn open(
        client: DestinationClient<Channel>,
        request: proto::GetDestination,
    ) -> BoxFuture<'static, Result<tonic::Response<Streaming<Self::Message>>, Status>>;

    /// Applies one message (`first` of its stream) and returns the new value.
    fn apply(&mut self, message: Self::Message, first: bool) -> Result<Self::Value, ConvertError>;
}

struct ProfileSession;

impl Session for ProfileSession {
    type Message = proto::DestinationProfile;
    type Value = Profile;
    const KIND: &'static str = "profile";

    fn open(
        mut client: DestinationClient<Channel>,
        request: proto::GetDestination,
    ) -> BoxFuture<'static, Result<tonic::Response<Streaming<Self::Message>>, Status>> {
        Box::pin(async move { client.get_profile(request).await })
    }

    fn apply(&mut self, message: Self::Message, _first: bool) -> Result<Profile, ConvertError> {
        Profile::try_from(message)
    }
}

struct EndpointsSession {
    balancer: Balancer<EndpointMeta>,
    known: KnownEndpoints,
    mesh_tls: bool,
}

impl Session for EndpointsSession {
    type Message = proto::Update;
    type Value = KnownEndpoints;
    const KIND: &'static str = "endpoints";

    fn open(
        mut client: DestinationClient<Channel>,
        request: proto::GetDestination,
    ) -> BoxFuture<'static, Result<tonic::Response<Streaming<Self::Message>>, Status>> {
        Box::pin(async move { client.get(request).await })
    }

    /// The first message of a stream is the whole current set, so it
    /// replaces what an earlier stream said (endpoints removed while the
    /// controller was away disappear); later messages are diffs.
    fn apply(
        &mut self,
        message: proto::Update,
        first: bool,
    ) -> Result<KnownEndpoints, ConvertError> {
        let known = &mut self.known;
        match Update::try_from(message)? {
            Update::Add(endpoints) => {
                if first {
                    known.endpoints.clear();
                }
                known.exists = true;
                for endpoint in &endpoints {
                    known.endpoints.insert(endpoint.addr, endpoint.clone());
                }
                if first {
                    let all = known
                        .endpoints
                        .iter()
                        .map(|(addr, endpoint)| (*addr, EndpointMeta::new(endpoint, self.mesh_tls)))
                        .collect();
                    self.balancer.update(Change::Reset(all));
                } else {
                    for endpoint in endpoints {
                        let meta = EndpointMeta::new(&endpoint, self.mesh_tls);
                        self.balancer.update(Change::Add(endpoint.addr, meta));
                    }
                }
            }
            Update::Remove(addresses) => {
                for address in addresses {
                    known.endpoints.remove(&address);
                    self.balancer.update(Change::Remove(address));
                }
            }
            Update::NoEndpoints { exists } => {
                known.exists = exists;
                known.endpoints.clear();
                self.balancer.update(Change::Reset(Vec::new()));
            }
        }
        Ok(known.clone())
    }
}

/// One lookup's stream, re-opened with backoff until it is rejected.
struct StreamLoop<T> {
    shared: Arc<ClientShared>,
    path: String,
    sender: Arc<watch::Sender<Lookup<T>>>,
    reconnects: Arc<AtomicU64>,
}

impl<T: Send + Sync + 'static> StreamLoop<T> {
    async fn run<S: Session<Value = T>>(self, mut session: S) {
        let mut attempt = 0u32;
        loop {
            let request = proto::GetDestination {
                scheme: String::new(),
                path: self.path.clone(),
                context_token: self.shared.context_token.clone(),
            };
            let metrics = self.shared.metrics.as_ref();
            if let Some(metrics) = metrics {
                metrics.stream_opened();
            }
            let ending = match S::open(self.shared.client.clone(), request).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    let mut first = true;
                    loop {
                        match stream.message().await {
                            Ok(Some(message)) => match session.apply(message, first) {
                                Ok(value) => {
                                    if let Some(metrics) = metrics {
                                        metrics.update(S::KIND);
                                    }
                                    first = false;
                                    attempt = 0;
                                    self.sender.send_replace(Lookup::Resolved(Arc::new(value)));
                                }
                                Err(error) => {
                                    tracing::warn!(path = %self.path, %error, "ignoring a bad discovery message");
                                }
                            },
                            Ok(None) => break None,
                            Err(status) => break Some(status),
                        }
                    }
                }
                Err(status) => Some(status),
            };
            if let Some(metrics) = metrics {
                metrics.stream_ended(ending.as_ref().map_or(0, |status| status.code() as i32));
            }
            if let Some(status) = ending {
                if is_rejection(status.code()) {
                    tracing::debug!(path = %self.path, ?status, "not discoverable");
                    self.sender.send_replace(Lookup::NotDiscoverable {
                        reason: format!("{:?}: {}", status.code(), status.message()),
                    });
                    return;
                }
                tracing::debug!(path = %self.path, ?status, "discovery stream failed");
            }
            let random = self.shared.random.next_fraction();
            let delay = self.shared.backoff.delay(attempt, random);
            attempt = attempt.saturating_add(1);
            tokio::time::sleep(delay).await;
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Statuses meaning "this target is not discoverable" (reference §3.4):
/// retrying would get the same answer.
pub(crate) fn is_rejection(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument | Code::FailedPrecondition | Code::NotFound
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rejections_are_terminal() {
        let table = [
            (Code::InvalidArgument, true),
            (Code::FailedPrecondition, true),
            (Code::NotFound, true),
            (Code::Unavailable, false),
            (Code::Unknown, false),
            (Code::Internal, false),
            (Code::Ok, false),
            (Code::Unimplemented, false),
        ];
        for (code, terminal) in table {
            assert_eq!(is_rejection(code), terminal, "{code:?}");
        }
    }

    #[test]
    fn only_a_weft_proxy_reached_with_mutual_tls_restores_header_case() {
        // (identity named, this proxy has one, weft proxy) -> restores
        let table = [
            (true, true, true, true),
            (true, true, false, false),
            (true, false, true, false),
            (false, true, true, false),
            (false, false, false, false),
        ];
        for (named, mesh_tls, weft_proxy, expected) in table {
            let endpoint = Endpoint {
                addr: "10.0.0.1:8080".parse().unwrap(),
                labels: Default::default(),
                identity: named.then(|| "web.shop.serviceaccount.identity.weft".to_string()),
                h2: true,
                opaque_transport_port: Some(4143),
                weft_proxy,
            };
            let meta = EndpointMeta::new(&endpoint, mesh_tls);
            assert_eq!(
                meta.restores_header_case, expected,
                "named {named}, mesh TLS {mesh_tls}, weft {weft_proxy}"
            );
        }
    }

    #[tokio::test]
    async fn addresses_need_a_port() {
        for (address, valid) in [
            ("127.0.0.1:8086", true),
            ("destination.weft:8086", true),
            ("127.0.0.1", false),
            ("not an address", false),
        ] {
            let result = DiscoveryClient::new(DiscoveryConfig::new(address, ""));
            assert_eq!(result.is_ok(), valid, "{address}");
        }
    }
}

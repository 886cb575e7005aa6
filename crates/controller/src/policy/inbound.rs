//! The `InboundServerPolicies` tonic service.
//!
//! ```text
//! GetPort(PortSpec)   port_target ─► catalog.inbound_policy ─► translate::server
//! WatchPort(PortSpec) admit (limiter) ─► port_target ─► catalog.subscribe_inbound
//!                     ─► the current answer at once, then one message per changed answer
//! ```
//!
//! A WatchPort stream is a plain `Stream` over its watch receiver: when the
//! client leaves tonic drops it, which drops the receiver, releases the
//! catalog watch (removed with its last subscriber), gives back the stream
//! permit and lowers the gauge. Every stream ends on shutdown.

use std::pin::Pin;
use std::sync::{Arc, MutexGuard, PoisonError};

use futures::stream::{self, Stream, StreamExt};
use linkerd2_proxy_api::inbound as proto;
use linkerd2_proxy_api::inbound::inbound_server_policies_server::{
    InboundServerPolicies, InboundServerPoliciesServer,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::GRPC_LIMITS;
use super::translate::{self, TranslateError};
use crate::catalog::{Catalog, PortPolicy, PortTarget, SharedCatalog};
use crate::destination::limits::{ClientKey, StreamLimiter, StreamPermit};
use crate::incoming::ConnectionInfo;

/// A boxed response stream.
type ResponseStream = Pin<Box<dyn Stream<Item = Result<proto::Server, Status>> + Send>>;

/// Why streams were refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// The inbound policy gauges and counters.
#[derive(Debug, Clone, Default)]
pub struct InboundPolicyMetrics {
    streams: Gauge,
    watches: Gauge,
    refused: Family<RefusalLabels, Counter>,
    updates: Counter,
}

impl InboundPolicyMetrics {
    /// Registers `inbound_policy_streams`, `inbound_policy_watches`,
    /// `inbound_policy_streams_refused_total{reason}` and `inbound_policy_updates_total`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "inbound_policy_streams",
            "Open InboundServerPolicies.WatchPort streams",
            metrics.streams.clone(),
        );
        registry.register(
            "inbound_policy_watches",
            "Catalog watches held for WatchPort streams (one per workload port)",
            metrics.watches.clone(),
        );
        registry.register(
            "inbound_policy_streams_refused",
            "WatchPort streams refused by a limit (reason: per_client, total)",
            metrics.refused.clone(),
        );
        registry.register(
            "inbound_policy_updates",
            "Messages sent on WatchPort streams",
            metrics.updates.clone(),
        );
        for reason in ["per_client", "total"] {
            drop(metrics.refused.get_or_create(&RefusalLabels { reason }));
        }
        metrics
    }

    fn record_watches(&self, catalog: &Catalog) {
        self.watches
            .set(i64::try_from(catalog.inbound_subscriptions()).unwrap_or(i64::MAX));
    }
}

/// The InboundServerPolicies service.
#[derive(Debug, Clone)]
pub struct InboundPolicyService {
    catalog: SharedCatalog,
    limiter: Arc<StreamLimiter>,
    metrics: InboundPolicyMetrics,
    shutdown: watch::Receiver<bool>,
}

impl InboundPolicyService {
    /// A service over `catalog`, its streams counted by `limiter` (shared
    /// with Destination); every stream ends once `shutdown` turns true.
    pub fn new(
        catalog: SharedCatalog,
        limiter: Arc<StreamLimiter>,
        metrics: InboundPolicyMetrics,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            catalog,
            limiter,
            metrics,
            shutdown,
        }
    }

    /// The tonic service, with the Destination server's message bound.
    pub fn into_server(self) -> InboundServerPoliciesServer<Self> {
        InboundServerPoliciesServer::new(self).max_decoding_message_size(GRPC_LIMITS.message_bytes)
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn admit<T>(&self, request: &Request<T>) -> Result<StreamPermit, Status> {
        let client = match request.extensions().get::<ConnectionInfo>() {
            Some(ConnectionInfo {
                client_identity: Some(identity),
                ..
            }) => ClientKey::Identity(identity.clone()),
            Some(ConnectionInfo {
                remote: Some(remote),
                ..
            }) => ClientKey::Address(remote.ip()),
            _ => ClientKey::Unknown,
        };
        self.limiter.try_open(client).map_err(|refusal| {
            self.metrics
                .refused
                .get_or_create(&RefusalLabels {
                    reason: refusal.reason(),
                })
                .inc();
            Status::resource_exhausted(refusal.to_string())
        })
    }
}

fn status_of(error: TranslateError) -> Status {
    match error {
        TranslateError::InvalidWorkload(_) | TranslateError::InvalidPort(_) => {
            Status::invalid_argument(error.to_string())
        }
    }
}

/// Releases the catalog watch when dropped, after the receiver (declared first).
struct Watched {
    receiver: watch::Receiver<Arc<PortPolicy>>,
    _release: WatchRelease,
    _permit: StreamPermit,
    _guard: StreamGuard,
}

struct WatchRelease {
    catalog: SharedCatalog,
    target: PortTarget,
    metrics: InboundPolicyMetrics,
}

impl Drop for WatchRelease {
    fn drop(&mut self) {
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        catalog.release_inbound(&self.target);
        self.metrics.record_watches(&catalog);
    }
}

struct StreamGuard(Gauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[tonic::async_trait]
impl InboundServerPolicies for InboundPolicyService {
    type WatchPortStream = ResponseStream;

    async fn get_port(
        &self,
        request: Request<proto::PortSpec>,
    ) -> Result<Response<proto::Server>, Status> {
        let spec = request.into_inner();
        let target = translate::port_target(&spec.workload, spec.port).map_err(status_of)?;
        let answer = self.catalog().inbound_policy(&target);
        Ok(Response::new(translate::server(&answer)))
    }

    async fn watch_port(
        &self,
        request: Request<proto::PortSpec>,
    ) -> Result<Response<Self::WatchPortStream>, Status> {
        let permit = self.admit(&request)?;
        let spec = request.into_inner();
        let target = translate::port_target(&spec.workload, spec.port).map_err(status_of)?;
        let receiver = {
            let mut catalog = self.catalog();
            let receiver = catalog.subscribe_inbound(&target);
            self.metrics.record_watches(&catalog);
            receiver
        };
        self.metrics.streams.inc();
        let watched = Watched {
            receiver,
            _release: WatchRelease {
                catalog: Arc::clone(&self.catalog),
                target,
                metrics: self.metrics.clone(),
            },
            _permit: permit,
            _guard: StreamGuard(self.metrics.streams.clone()),
        };
        let updates = self.metrics.updates.clone();
        let answers = stream::unfold((watched, true), |(mut watched, first)| async move {
            if !first && watched.receiver.changed().await.is_err() {
                return None;
            }
            let answer = Arc::clone(&watched.receiver.borrow_and_update());
            Some((answer, (watched, false)))
        });
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        let stream = answers.take_until(stopped).map(move |answer| {
            updates.inc();
            Ok(translate::server(&answer))
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

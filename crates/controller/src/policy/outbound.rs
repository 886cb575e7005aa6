//! The `io.linkerd.proxy.outbound.OutboundPolicies` gRPC service over the catalog.
//!
//! ```text
//! Get/Watch(TrafficSpec{source_workload, target})
//!   source_workload not {"ns","pod"}        ─► INVALID_ARGUMENT
//!   target Addr(ip:port):  a Service clusterIP ─► that Service's port
//!                          anything else (a workload, unknown) ─► NOT_FOUND
//!   target Authority("<name>.<ns>.svc.<domain>[:port]") ─► that Service's port
//!                          other names ─► NOT_FOUND
//!   the client's namespace (source_workload's ns) picks its consumer routes
//!   Service port ─► catalog.subscribe_outbound ─► OutboundPolicy now (Get: once),
//!                   then one message per changed answer (Watch); the stream
//!                   ends when the Service goes away (the proxy asks again)
//!   no such Service (or ExternalName) ─► NOT_FOUND
//! ```
//!
//! NOT_FOUND is what Linkerd's policy controller answers for an address
//! that is not a Service's (a pod's included): the proxy then synthesizes
//! its policy itself, forwarding to the Destination profile's `endpoint`
//! (with its identity and protocol hints) or to the original address. So a
//! workload address gets no answer here, and what a proxy does without one
//! is unchanged.
//!
//! Bounds: the streams of this service count against the Destination
//! listener's limits (the same [`StreamLimiter`]: per client and in total,
//! RESOURCE_EXHAUSTED beyond them); a catalog watch per `service:port` and
//! client namespace goes with its last stream; the Destination server's HTTP/2 and message limits.

use std::pin::Pin;
use std::sync::{Arc, MutexGuard, PoisonError};

use futures::stream::{self, Stream, StreamExt};
use linkerd2_proxy_api::outbound as proto;
use linkerd2_proxy_api::outbound::outbound_policies_server::{
    OutboundPolicies, OutboundPoliciesServer,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::outbound_translate::{self, OutboundTarget, TranslateError};
use crate::catalog::{Catalog, OutboundAnswer, ProfileTarget, ServicePort, SharedCatalog};
use crate::destination::limits::{ClientKey, StreamLimiter, StreamPermit};
use crate::incoming::ConnectionInfo;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Why streams were refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RefusalLabels {
    reason: &'static str,
}

/// The OutboundPolicies gauges and counters, registered in an explicit registry.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicyMetrics {
    watch_streams: Gauge,
    watches: Gauge,
    refused: Family<RefusalLabels, Counter>,
}

impl OutboundPolicyMetrics {
    /// Registers `outbound_policy_watch_streams`, `outbound_policy_watches`
    /// and `outbound_policy_streams_refused_total{reason}`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "outbound_policy_watch_streams",
            "Open OutboundPolicies.Watch streams",
            metrics.watch_streams.clone(),
        );
        registry.register(
            "outbound_policy_watches",
            "Catalog watches (service:port) held for open OutboundPolicies.Watch streams",
            metrics.watches.clone(),
        );
        registry.register(
            "outbound_policy_streams_refused",
            "OutboundPolicies streams refused by a Destination stream limit (reason: per_client, total)",
            metrics.refused.clone(),
        );
        for reason in ["per_client", "total"] {
            drop(metrics.refused.get_or_create(&RefusalLabels { reason }));
        }
        metrics
    }

    fn record_watches(&self, catalog: &Catalog) {
        self.watches
            .set(i64::try_from(catalog.outbound_subscriptions()).unwrap_or(i64::MAX));
    }
}

/// Releases a catalog watch when dropped (after the receiver, declared before it).
struct Watched {
    receiver: watch::Receiver<Option<Arc<OutboundAnswer>>>,
    _release: WatchRelease,
}

struct WatchRelease {
    catalog: SharedCatalog,
    target: ProfileTarget,
    metrics: OutboundPolicyMetrics,
}

impl Drop for WatchRelease {
    fn drop(&mut self) {
        let mut catalog = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        catalog.release_outbound(&self.target);
        self.metrics.record_watches(&catalog);
    }
}

/// Counts one open Watch stream while alive.
struct StreamGuard(Gauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The OutboundPolicies service: answers from a shared catalog.
#[derive(Debug, Clone)]
pub struct OutboundPolicyService {
    catalog: SharedCatalog,
    metrics: OutboundPolicyMetrics,
    shutdown: watch::Receiver<bool>,
    limiter: Arc<StreamLimiter>,
}

impl OutboundPolicyService {
    /// A service over `catalog` whose streams count in `limiter`; every
    /// stream ends once `shutdown` turns true.
    pub fn new(
        catalog: SharedCatalog,
        metrics: OutboundPolicyMetrics,
        shutdown: watch::Receiver<bool>,
        limiter: Arc<StreamLimiter>,
    ) -> Self {
        Self {
            catalog,
            metrics,
            shutdown,
            limiter,
        }
    }

    /// The tonic service, refusing request messages above `message_bytes`
    /// (the listener's limit).
    pub fn server(self, message_bytes: usize) -> OutboundPoliciesServer<Self> {
        OutboundPoliciesServer::new(self).max_decoding_message_size(message_bytes)
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

    /// The question a TrafficSpec asks (a Service port, and the client's
    /// namespace for its consumer routes), or the status refusing it.
    fn question(&self, spec: proto::TrafficSpec) -> Result<ProfileTarget, Status> {
        let source =
            outbound_translate::parse_workload(&spec.source_workload).map_err(status_of)?;
        let catalog = self.catalog();
        let target = outbound_translate::parse_target(spec.target, catalog.cluster_domain())
            .map_err(status_of)?;
        let (service, port) = match target {
            OutboundTarget::Service { service, port } => (service, port),
            OutboundTarget::Address(address) => {
                let service = catalog.service_at(address.ip()).ok_or_else(|| {
                    Status::not_found(format!("no Service has the address {address}"))
                })?;
                (service, address.port())
            }
        };
        let target = ProfileTarget::new(ServicePort { service, port }, Some(source.namespace));
        if catalog.outbound(&target).is_none() {
            return Err(Status::not_found(format!(
                "unknown target {}",
                target.target
            )));
        }
        Ok(target)
    }
}

fn status_of(error: TranslateError) -> Status {
    match error {
        TranslateError::UnknownAuthority { .. } => Status::not_found(error.to_string()),
        TranslateError::MissingTarget
        | TranslateError::InvalidAddress(_)
        | TranslateError::InvalidWorkload(_) => Status::invalid_argument(error.to_string()),
    }
}

#[tonic::async_trait]
impl OutboundPolicies for OutboundPolicyService {
    type WatchStream = ResponseStream<proto::OutboundPolicy>;

    async fn get(
        &self,
        request: Request<proto::TrafficSpec>,
    ) -> Result<Response<proto::OutboundPolicy>, Status> {
        let target = self.question(request.into_inner())?;
        let answer = self
            .catalog()
            .outbound(&target)
            .ok_or_else(|| Status::not_found(format!("unknown target {}", target.target)))?;
        Ok(Response::new(outbound_translate::policy(&answer)))
    }

    async fn watch(
        &self,
        request: Request<proto::TrafficSpec>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let permit = self.admit(&request)?;
        let target = self.question(request.into_inner())?;
        let receiver = {
            let mut catalog = self.catalog();
            let receiver = catalog.subscribe_outbound(&target);
            self.metrics.record_watches(&catalog);
            receiver
        };
        let watched = Watched {
            receiver,
            _release: WatchRelease {
                catalog: Arc::clone(&self.catalog),
                target,
                metrics: self.metrics.clone(),
            },
        };
        self.metrics.watch_streams.inc();
        let guard = StreamGuard(self.metrics.watch_streams.clone());
        Ok(Response::new(self.finish(answers(watched), guard, permit)))
    }
}

impl OutboundPolicyService {
    /// Ends `stream` on shutdown; keeps `guard` and `permit` as long as it lives.
    fn finish(
        &self,
        stream: ResponseStream<proto::OutboundPolicy>,
        guard: StreamGuard,
        permit: StreamPermit,
    ) -> ResponseStream<proto::OutboundPolicy> {
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        Box::pin(stream.take_until(stopped).map(move |item| {
            let _alive = (&guard, &permit);
            item
        }))
    }
}

/// The current answer, then each changed one; ends when the Service is gone.
fn answers(watched: Watched) -> ResponseStream<proto::OutboundPolicy> {
    Box::pin(stream::unfold(
        (watched, true),
        |(mut watched, first)| async move {
            if !first && watched.receiver.changed().await.is_err() {
                return None;
            }
            let answer = watched.receiver.borrow_and_update().clone()?;
            Some((Ok(outbound_translate::policy(&answer)), (watched, false)))
        },
    ))
}

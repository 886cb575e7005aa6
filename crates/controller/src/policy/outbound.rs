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

use std::sync::{Arc, MutexGuard, PoisonError};

use linkerd2_proxy_api::outbound as proto;
use linkerd2_proxy_api::outbound::outbound_policies_server::{
    OutboundPolicies, OutboundPoliciesServer,
};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::outbound_translate::{self, OutboundTarget, TranslateError};
use crate::catalog::{Catalog, ProfileTarget, ServicePort, SharedCatalog};
use crate::destination::limits::StreamLimiter;
use crate::destination::stream::{
    self as watch_stream, RefusedStreams, ResponseStream, StreamGuard, WatchGauges, Watched,
};

/// The OutboundPolicies gauges and counters, registered in an explicit registry.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicyMetrics {
    watch_streams: Gauge,
    watches: Gauge,
    refused: RefusedStreams,
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
        metrics.refused.register(
            registry,
            "outbound_policy_streams_refused",
            "OutboundPolicies streams refused by a Destination stream limit (reason: per_client, total)",
        );
        metrics
    }
}

impl WatchGauges for OutboundPolicyMetrics {
    fn record_watches(&self, catalog: &Catalog) {
        self.watches
            .set(i64::try_from(catalog.outbound_subscriptions()).unwrap_or(i64::MAX));
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
        let permit = watch_stream::admit(&self.limiter, &self.metrics.refused, &request)?;
        let target = self.question(request.into_inner())?;
        let watched = Watched::subscribe(
            &self.catalog,
            target,
            &self.metrics,
            Catalog::subscribe_outbound,
            Catalog::release_outbound,
        );
        let guard = StreamGuard::open(&self.metrics.watch_streams);
        // The current answer, then each changed one; ends when the Service is gone.
        let answers = watch_stream::answers(watched, |answer| {
            answer.map(|answer| Ok(outbound_translate::policy(&answer)))
        });
        Ok(Response::new(watch_stream::finish(
            answers,
            &self.shutdown,
            guard,
            permit,
        )))
    }
}

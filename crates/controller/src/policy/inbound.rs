//! The `InboundServerPolicies` tonic service.
//!
//! ```text
//! GetPort(PortSpec)   port_target ─► catalog.inbound_policy ─► translate::server
//! WatchPort(PortSpec) admit (limiter) ─► port_target ─► catalog.subscribe_inbound
//!                     ─► the current answer at once, then one message per changed answer
//! ```
//!
//! A WatchPort stream is a plain `Stream` over its watch receiver
//! ([`crate::destination::stream`], as Destination's): when the client
//! leaves tonic drops it, which drops the receiver, releases the catalog
//! watch (removed with its last subscriber), gives back the stream permit
//! and lowers the gauge. Every stream ends on shutdown.

use std::sync::{Arc, MutexGuard, PoisonError};

use linkerd2_proxy_api::inbound as proto;
use linkerd2_proxy_api::inbound::inbound_server_policies_server::{
    InboundServerPolicies, InboundServerPoliciesServer,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::GRPC_LIMITS;
use super::translate::{self, TranslateError};
use crate::catalog::{Catalog, SharedCatalog};
use crate::destination::limits::StreamLimiter;
use crate::destination::stream::{
    self as watch_stream, RefusedStreams, ResponseStream, StreamGuard, WatchGauges, Watched,
};

/// The inbound policy gauges and counters.
#[derive(Debug, Clone, Default)]
pub struct InboundPolicyMetrics {
    streams: Gauge,
    watches: Gauge,
    refused: RefusedStreams,
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
        metrics.refused.register(
            registry,
            "inbound_policy_streams_refused",
            "WatchPort streams refused by a limit (reason: per_client, total)",
        );
        registry.register(
            "inbound_policy_updates",
            "Messages sent on WatchPort streams",
            metrics.updates.clone(),
        );
        metrics
    }
}

impl WatchGauges for InboundPolicyMetrics {
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
}

fn status_of(error: TranslateError) -> Status {
    match error {
        TranslateError::InvalidWorkload(_) | TranslateError::InvalidPort(_) => {
            Status::invalid_argument(error.to_string())
        }
    }
}

#[tonic::async_trait]
impl InboundServerPolicies for InboundPolicyService {
    type WatchPortStream = ResponseStream<proto::Server>;

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
        let permit = watch_stream::admit(&self.limiter, &self.metrics.refused, &request)?;
        let spec = request.into_inner();
        let target = translate::port_target(&spec.workload, spec.port).map_err(status_of)?;
        let watched = Watched::subscribe(
            &self.catalog,
            target,
            &self.metrics,
            Catalog::subscribe_inbound,
            Catalog::release_inbound,
        );
        let guard = StreamGuard::open(&self.metrics.streams);
        let updates = self.metrics.updates.clone();
        let answers = watch_stream::answers(watched, move |answer| {
            updates.inc();
            Some(Ok(translate::server(&answer)))
        });
        Ok(Response::new(watch_stream::finish(
            answers,
            &self.shutdown,
            guard,
            permit,
        )))
    }
}

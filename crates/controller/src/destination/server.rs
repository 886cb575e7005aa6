//! The `io.linkerd.proxy.destination.Destination` gRPC service over the catalog.
//!
//! ```text
//! Get(path)        parse ─► service name  ─► catalog.subscribe_endpoints ─► snapshot, then diffs
//!                        └► instance name ─► the same, only the endpoint with that hostname
//!                        └► ip:port       ─► clusterIP: that service's endpoints
//!                                            workload:  one Add of that workload, then idle
//!                                            other:     one Add of the bare address, then idle
//! GetProfile(path, context_token ─► client namespace)
//!                  parse ─► service name  ─► catalog.subscribe_profile ─► each new answer
//!                                            (a ServiceProfile in the client's namespace first)
//!                        └► instance name ─► that endpoint now: profile with `endpoint`, then idle
//!                                            none:      the service's profile
//!                        └► ip:port       ─► clusterIP: that service's profile
//!                                            workload:  profile with `endpoint`, then idle
//!                                            other:     default profile, then idle
//! ```
//!
//! Every stream is a plain `Stream` built from the subscription
//! ([`super::stream`]): when the client goes away tonic drops it, which
//! releases its catalog watch (removed with its last subscriber, so names
//! asked once cost nothing afterwards), gives back its permit and drops the
//! metrics guard. On shutdown every stream ends, so the server drains promptly.
//!
//! Bounds: streams per client and in total ([`super::limits`], refused with
//! RESOURCE_EXHAUSTED), HTTP/2 streams per connection, header list and
//! request message sizes ([`GRPC_LIMITS`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, MutexGuard, PoisonError};

use futures::stream::{self, StreamExt};
use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::destination_server::{Destination, DestinationServer};

use crate::incoming::{GrpcLimits, GrpcListener};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};
use weft_core::names::ServiceName;
use weft_core::service::is_external_name;

use super::limits::StreamLimiter;
use super::stream::{
    self as watch_stream, RefusedStreams, ResponseStream, StreamGuard, WatchGauges, Watched,
};
use super::translate::{self, MeshHints, Target, TranslateError};
use crate::catalog::{
    Catalog, EndpointTarget, EndpointUpdate, Profile, ProfileTarget, ServicePort, SharedCatalog,
};
use crate::policy::PolicyServices;

/// Why the Destination server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The gRPC transport failed (accepting connections).
    #[error("destination server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The Destination server's bounds.
pub const GRPC_LIMITS: GrpcLimits = GrpcLimits {
    streams_per_connection: 1_000,
    header_list_bytes: 16 * 1024,
    message_bytes: 16 * 1024,
};

/// Which watches a gauge counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct WatchLabels {
    kind: &'static str,
}

/// The Destination gauges and counters, registered in an explicit registry.
#[derive(Debug, Clone, Default)]
pub struct DestinationMetrics {
    get_streams: Gauge,
    profile_streams: Gauge,
    watches: Family<WatchLabels, Gauge>,
    refused: RefusedStreams,
}

impl DestinationMetrics {
    /// Registers `destination_get_streams`, `destination_get_profile_streams`,
    /// `destination_watches{kind}` and `destination_streams_refused_total{reason}`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "destination_get_streams",
            "Open Destination.Get streams",
            metrics.get_streams.clone(),
        );
        registry.register(
            "destination_get_profile_streams",
            "Open Destination.GetProfile streams",
            metrics.profile_streams.clone(),
        );
        registry.register(
            "destination_watches",
            "Catalog watches held for open streams (kind: endpoints, profiles)",
            metrics.watches.clone(),
        );
        metrics.refused.register(
            registry,
            "destination_streams_refused",
            "Destination streams refused by a limit (reason: per_client, total)",
        );
        // Every series from the start, so a scrape shows the zeros.
        for kind in ["endpoints", "profiles"] {
            drop(metrics.watches.get_or_create(&WatchLabels { kind }));
        }
        metrics
    }
}

impl WatchGauges for DestinationMetrics {
    fn record_watches(&self, catalog: &Catalog) {
        let count = |count: usize| i64::try_from(count).unwrap_or(i64::MAX);
        self.watches
            .get_or_create(&WatchLabels { kind: "endpoints" })
            .set(count(catalog.endpoint_subscriptions()));
        self.watches
            .get_or_create(&WatchLabels { kind: "profiles" })
            .set(count(catalog.profile_subscriptions()));
    }
}

/// The Destination service: answers from a shared catalog.
#[derive(Debug, Clone)]
pub struct DestinationService {
    catalog: SharedCatalog,
    metrics: DestinationMetrics,
    shutdown: watch::Receiver<bool>,
    /// When identities are on: meshed endpoints are then sent with their
    /// identity and protocol hints.
    mesh: Option<MeshHints>,
    /// Open streams per client and in total.
    limiter: Arc<StreamLimiter>,
}

impl DestinationService {
    /// A service over `catalog`; every stream ends once `shutdown` turns true.
    pub fn new(
        catalog: SharedCatalog,
        metrics: DestinationMetrics,
        shutdown: watch::Receiver<bool>,
        mesh: Option<MeshHints>,
        limiter: Arc<StreamLimiter>,
    ) -> Self {
        Self {
            catalog,
            metrics,
            shutdown,
            mesh,
            limiter,
        }
    }

    /// Serves gRPC on `listener` (TLS or plaintext, see [`crate::incoming`])
    /// until `shutdown` completes, then drains. The policy services share
    /// the listener (one tonic server).
    pub async fn serve(
        self,
        listener: GrpcListener,
        policy: PolicyServices,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let incoming = listener.incoming();
        let router = GRPC_LIMITS.server().add_service(
            DestinationServer::new(self).max_decoding_message_size(GRPC_LIMITS.message_bytes),
        );
        policy
            .add_to(router)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }

    fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the request names, and the client's namespace from its context token.
    fn target(
        &self,
        request: Request<proto::GetDestination>,
    ) -> Result<(Target, Option<String>), Status> {
        let request = request.into_inner();
        let cluster_domain = self.catalog().cluster_domain().to_string();
        let target = translate::parse_target(&request.path, &cluster_domain).map_err(status_of)?;
        Ok((target, translate::client_namespace(&request.context_token)))
    }

    fn endpoints_of_service(
        &self,
        service: ServiceName,
        port: u16,
    ) -> ResponseStream<proto::Update> {
        self.endpoints_of(EndpointTarget::service(ServicePort { service, port }))
    }

    /// The endpoints of a service, or of one instance of it; refused for
    /// an ExternalName service.
    fn endpoints_of(&self, target: EndpointTarget) -> ResponseStream<proto::Update> {
        let labels = translate::set_labels(&target.target.service);
        let watched = Watched::subscribe(
            &self.catalog,
            target,
            &self.metrics,
            Catalog::subscribe_endpoints_for,
            Catalog::release_endpoints_for,
        );
        endpoint_stream(watched, labels, self.mesh.clone())
    }

    /// Refuses a name whose service is `type: ExternalName`.
    fn refuse_external_name(&self, service: &ServiceName) -> Result<(), Status> {
        let external = self
            .catalog()
            .service(service)
            .is_some_and(is_external_name);
        if external {
            return Err(Status::invalid_argument(format!(
                "{service} is an ExternalName service"
            )));
        }
        Ok(())
    }

    fn profile_of_service(
        &self,
        service: ServiceName,
        port: u16,
        client_namespace: Option<String>,
    ) -> ResponseStream<proto::DestinationProfile> {
        let unknown = proto::DestinationProfile {
            fully_qualified_name: service.fully_qualified(self.catalog().cluster_domain()),
            ..translate::default_profile()
        };
        let request = ProfileTarget::new(ServicePort { service, port }, client_namespace);
        let watched = Watched::subscribe(
            &self.catalog,
            request,
            &self.metrics,
            Catalog::subscribe_profile,
            Catalog::release_profile,
        );
        profile_stream(watched, unknown)
    }
}

#[tonic::async_trait]
impl Destination for DestinationService {
    type GetStream = ResponseStream<proto::Update>;
    type GetProfileStream = ResponseStream<proto::DestinationProfile>;

    async fn get(
        &self,
        request: Request<proto::GetDestination>,
    ) -> Result<Response<Self::GetStream>, Status> {
        let permit = watch_stream::admit(&self.limiter, &self.metrics.refused, &request)?;
        let (target, _client_namespace) = self.target(request)?;
        let stream = match target {
            Target::Service { service, port } => {
                self.refuse_external_name(&service)?;
                self.endpoints_of_service(service, port)
            }
            Target::Instance {
                hostname,
                service,
                port,
            } => {
                self.refuse_external_name(&service)?;
                self.endpoints_of(EndpointTarget::instance(
                    ServicePort { service, port },
                    &hostname,
                ))
            }
            Target::Address(address) => {
                let service = self.catalog().service_at(address.ip());
                let workload = self.catalog().workload_at(address);
                match (service, workload) {
                    (Some(service), _) => self.endpoints_of_service(service, address.port()),
                    (None, Some(endpoint)) => {
                        let labels =
                            HashMap::from([("namespace".to_string(), endpoint.namespace.clone())]);
                        let add = EndpointUpdate::Add(vec![endpoint]);
                        once_then_idle(translate::update(add, &labels, self.mesh.as_ref()))
                    }
                    (None, None) => once_then_idle(translate::bare_address_update(address)),
                }
            }
        };
        let guard = StreamGuard::open(&self.metrics.get_streams);
        Ok(Response::new(watch_stream::finish(
            stream,
            &self.shutdown,
            guard,
            permit,
        )))
    }

    async fn get_profile(
        &self,
        request: Request<proto::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let permit = watch_stream::admit(&self.limiter, &self.metrics.refused, &request)?;
        let (target, client_namespace) = self.target(request)?;
        let stream = match target {
            Target::Service { service, port } => {
                self.profile_of_service(service, port, client_namespace)
            }
            Target::Instance {
                hostname,
                service,
                port,
            } => {
                let target = EndpointTarget::instance(
                    ServicePort {
                        service: service.clone(),
                        port,
                    },
                    &hostname,
                );
                let endpoint = self
                    .catalog()
                    .endpoints_for(&target)
                    .and_then(|set| set.into_values().next());
                match endpoint {
                    Some(endpoint) => {
                        once_then_idle(translate::endpoint_profile(&endpoint, self.mesh.as_ref()))
                    }
                    None => self.profile_of_service(service, port, client_namespace),
                }
            }
            Target::Address(address) => {
                let service = self.catalog().service_at(address.ip());
                let workload = self.catalog().workload_at(address);
                match (service, workload) {
                    (Some(service), _) => {
                        self.profile_of_service(service, address.port(), client_namespace)
                    }
                    (None, Some(endpoint)) => {
                        once_then_idle(translate::endpoint_profile(&endpoint, self.mesh.as_ref()))
                    }
                    (None, None) => once_then_idle(translate::default_profile()),
                }
            }
        };
        let guard = StreamGuard::open(&self.metrics.profile_streams);
        Ok(Response::new(watch_stream::finish(
            stream,
            &self.shutdown,
            guard,
            permit,
        )))
    }
}

/// The gRPC status for a refused request.
fn status_of(error: TranslateError) -> Status {
    match error {
        TranslateError::InvalidAuthority(_) => Status::invalid_argument(error.to_string()),
    }
}

/// The subscription's updates (snapshot first, then diffs); ends when the
/// catalog drops a lagging subscriber, so the client resubscribes.
fn endpoint_stream(
    watched: Watched<mpsc::Receiver<EndpointUpdate>>,
    labels: HashMap<String, String>,
    mesh: Option<MeshHints>,
) -> ResponseStream<proto::Update> {
    Box::pin(stream::unfold(watched, move |mut watched| {
        let labels = labels.clone();
        let mesh = mesh.clone();
        async move {
            let update = watched.receiver.recv().await?;
            Some((
                Ok(translate::update(update, &labels, mesh.as_ref())),
                watched,
            ))
        }
    }))
}

/// The current profile, then each new one; `unknown` while the service does not exist.
fn profile_stream(
    watched: Watched<watch::Receiver<Option<Arc<Profile>>>>,
    unknown: proto::DestinationProfile,
) -> ResponseStream<proto::DestinationProfile> {
    Box::pin(watch_stream::answers(watched, move |answer| {
        Some(Ok(match answer {
            Some(profile) => translate::profile(&profile),
            None => unknown.clone(),
        }))
    }))
}

/// One message, then nothing until the client leaves or the server stops.
fn once_then_idle<T: Send + 'static>(message: T) -> ResponseStream<T> {
    Box::pin(stream::once(async move { Ok(message) }).chain(stream::pending()))
}

#[cfg(test)]
mod tests;

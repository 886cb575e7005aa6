//! The `io.linkerd.proxy.destination.Destination` gRPC service over the catalog.
//!
//! ```text
//! Get(path)        parse ─► service name  ─► catalog.subscribe_endpoints ─► snapshot, then diffs
//!                        └► ip:port       ─► clusterIP: that service's endpoints
//!                                            workload:  one Add of that workload, then idle
//!                                            other:     one Add of the bare address, then idle
//! GetProfile(path, context_token ─► client namespace)
//!                  parse ─► service name  ─► catalog.subscribe_profile ─► each new answer
//!                                            (a ServiceProfile in the client's namespace first)
//!                        └► ip:port       ─► clusterIP: that service's profile
//!                                            workload:  profile with `endpoint`, then idle
//!                                            other:     default profile, then idle
//! ```
//!
//! Every stream is a plain `Stream` built from the subscription (no spawned
//! task): when the client goes away tonic drops it, which drops the
//! subscription and the metrics guard. On shutdown every stream ends, so the
//! server drains promptly.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, MutexGuard, PoisonError};

use futures::stream::{self, Stream, StreamExt};
use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::destination_server::{Destination, DestinationServer};

use crate::incoming::GrpcListener;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};
use weft_core::names::ServiceName;
use weft_core::service::is_external_name;

use super::translate::{self, MeshHints, Target, TranslateError};
use crate::catalog::{Catalog, EndpointUpdate, Profile, ProfileTarget, ServicePort, SharedCatalog};

/// A boxed response stream.
type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Why the Destination server stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The gRPC transport failed (accepting connections).
    #[error("destination server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The open-stream gauges, registered in an explicit registry.
#[derive(Debug, Clone, Default)]
pub struct DestinationMetrics {
    get_streams: Gauge,
    profile_streams: Gauge,
}

impl DestinationMetrics {
    /// Registers `destination_get_streams` and `destination_get_profile_streams`.
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
        metrics
    }
}

/// Counts one open stream while alive.
#[derive(Debug)]
struct StreamGuard(Gauge);

impl StreamGuard {
    fn open(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
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
}

impl DestinationService {
    /// A service over `catalog`; every stream ends once `shutdown` turns true.
    pub fn new(
        catalog: SharedCatalog,
        metrics: DestinationMetrics,
        shutdown: watch::Receiver<bool>,
        mesh: Option<MeshHints>,
    ) -> Self {
        Self {
            catalog,
            metrics,
            shutdown,
            mesh,
        }
    }

    /// Serves gRPC on `listener` (TLS or plaintext, see [`crate::incoming`])
    /// until `shutdown` completes, then drains.
    pub async fn serve(
        self,
        listener: GrpcListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let incoming = listener.incoming();
        tonic::transport::Server::builder()
            .add_service(DestinationServer::new(self))
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

    /// Ends `stream` on shutdown and keeps `guard` alive as long as it is.
    fn finish<T: Send + 'static>(
        &self,
        stream: ResponseStream<T>,
        guard: StreamGuard,
    ) -> ResponseStream<T> {
        let mut shutdown = self.shutdown.clone();
        let stopped = async move {
            // An error means the sender is gone: stop as well.
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        };
        Box::pin(stream.take_until(stopped).map(move |item| {
            let _alive = &guard;
            item
        }))
    }

    fn endpoints_of_service(
        &self,
        service: ServiceName,
        port: u16,
    ) -> ResponseStream<proto::Update> {
        let labels = translate::set_labels(&service);
        let receiver = self
            .catalog()
            .subscribe_endpoints(&ServicePort { service, port });
        endpoint_stream(receiver, labels, self.mesh.clone())
    }

    fn profile_of_service(
        &self,
        service: ServiceName,
        port: u16,
        client_namespace: Option<String>,
    ) -> ResponseStream<proto::DestinationProfile> {
        let mut catalog = self.catalog();
        let unknown = proto::DestinationProfile {
            fully_qualified_name: service.fully_qualified(catalog.cluster_domain()),
            ..translate::default_profile()
        };
        let request = ProfileTarget::new(ServicePort { service, port }, client_namespace);
        let receiver = catalog.subscribe_profile(&request);
        profile_stream(receiver, unknown)
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
        let (target, _client_namespace) = self.target(request)?;
        let stream = match target {
            Target::Service { service, port } => {
                let external = self
                    .catalog()
                    .service(&service)
                    .is_some_and(is_external_name);
                if external {
                    return Err(Status::invalid_argument(format!(
                        "{service} is an ExternalName service"
                    )));
                }
                self.endpoints_of_service(service, port)
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
        Ok(Response::new(self.finish(stream, guard)))
    }

    async fn get_profile(
        &self,
        request: Request<proto::GetDestination>,
    ) -> Result<Response<Self::GetProfileStream>, Status> {
        let (target, client_namespace) = self.target(request)?;
        let stream = match target {
            Target::Service { service, port } => {
                self.profile_of_service(service, port, client_namespace)
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
        Ok(Response::new(self.finish(stream, guard)))
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
    receiver: mpsc::Receiver<EndpointUpdate>,
    labels: HashMap<String, String>,
    mesh: Option<MeshHints>,
) -> ResponseStream<proto::Update> {
    Box::pin(stream::unfold(receiver, move |mut receiver| {
        let labels = labels.clone();
        let mesh = mesh.clone();
        async move {
            let update = receiver.recv().await?;
            Some((
                Ok(translate::update(update, &labels, mesh.as_ref())),
                receiver,
            ))
        }
    }))
}

/// The current profile, then each new one; `unknown` while the service does not exist.
fn profile_stream(
    receiver: watch::Receiver<Option<Arc<Profile>>>,
    unknown: proto::DestinationProfile,
) -> ResponseStream<proto::DestinationProfile> {
    let answers = stream::unfold((receiver, true), |(mut receiver, first)| async move {
        if !first && receiver.changed().await.is_err() {
            return None;
        }
        let answer = receiver.borrow_and_update().clone();
        Some((answer, (receiver, false)))
    });
    Box::pin(answers.map(move |answer| {
        Ok(match answer {
            Some(profile) => translate::profile(&profile),
            None => unknown.clone(),
        })
    }))
}

/// One message, then nothing until the client leaves or the server stops.
fn once_then_idle<T: Send + 'static>(message: T) -> ResponseStream<T> {
    Box::pin(stream::once(async move { Ok(message) }).chain(stream::pending()))
}

//! A fake `io.linkerd.proxy.outbound.OutboundPolicies` server for proxy
//! tests, and builders for the policies it answers with.
//!
//! ```text
//! weft-proxy ──Watch(TrafficSpec{source_workload, target})──► OutboundPolicyServer
//!   target with a policy    ─► the policy, then every change while the stream is open
//!   target without a policy ─► NotFound
//! ```
//!
//! The target key is what the proxy sends: `ip:port` for an address, the
//! authority (`name:port`) for a name. The server runs on its own thread
//! and runtime; [`OutboundPolicyServer::set`] changes an answer while
//! streams are open.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::Stream;
use linkerd2_proxy_api::outbound::outbound_policies_server::{
    OutboundPolicies, OutboundPoliciesServer,
};
use linkerd2_proxy_api::outbound::{self as proto, traffic_spec};
use linkerd2_proxy_api::{grpc_route, http_route, meta};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// The fake server; stopped when dropped.
pub struct OutboundPolicyServer {
    state: Arc<State>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for OutboundPolicyServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Default)]
struct State {
    policies: Mutex<HashMap<String, watch::Sender<Option<proto::OutboundPolicy>>>>,
    watches: Mutex<Vec<(String, String)>>,
}

impl State {
    fn sender(&self, target: &str) -> watch::Sender<Option<proto::OutboundPolicy>> {
        let mut policies = self.policies.lock().unwrap_or_else(PoisonError::into_inner);
        policies
            .entry(target.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }
}

#[derive(Clone)]
struct Service(Arc<State>);

type PolicyStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<proto::OutboundPolicy, Status>> + Send>>;

#[tonic::async_trait]
impl OutboundPolicies for Service {
    type WatchStream = PolicyStream;

    async fn get(
        &self,
        request: Request<proto::TrafficSpec>,
    ) -> Result<Response<proto::OutboundPolicy>, Status> {
        let target = target_key(&request.into_inner())?;
        match self.0.sender(&target).borrow().clone() {
            Some(policy) => Ok(Response::new(policy)),
            None => Err(Status::not_found(format!("no policy for {target}"))),
        }
    }

    async fn watch(
        &self,
        request: Request<proto::TrafficSpec>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let spec = request.into_inner();
        let target = target_key(&spec)?;
        self.0
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((target.clone(), spec.source_workload.clone()));
        let receiver = self.0.sender(&target).subscribe();
        if receiver.borrow().is_none() {
            return Err(Status::not_found(format!("no policy for {target}")));
        }
        // Every change while the stream is open; a policy removed ends it
        // with NotFound.
        let stream =
            futures::stream::unfold((receiver, true), |(mut receiver, first)| async move {
                if !first && receiver.changed().await.is_err() {
                    return None;
                }
                let policy = receiver.borrow_and_update().clone();
                let item = match policy {
                    Some(policy) => Ok(policy),
                    None => Err(Status::not_found("policy removed")),
                };
                Some((item, (receiver, false)))
            });
        Ok(Response::new(Box::pin(stream)))
    }
}

fn target_key(spec: &proto::TrafficSpec) -> Result<String, Status> {
    match &spec.target {
        Some(traffic_spec::Target::Addr(addr)) => SocketAddr::try_from(*addr)
            .map(|addr| addr.to_string())
            .map_err(|_| Status::invalid_argument("bad address")),
        Some(traffic_spec::Target::Authority(authority)) => Ok(authority.clone()),
        None => Err(Status::invalid_argument("no target")),
    }
}

impl OutboundPolicyServer {
    /// Starts the server on a fresh loopback port, with no policies.
    pub fn start() -> Self {
        let state = Arc::new(State::default());
        let service = Service(state.clone());
        let listener = crate::bind_unique();
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local_addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Its own multi-threaded runtime: streams stay open and answer
        // while a test blocks.
        let thread = std::thread::Builder::new()
            .name("outbound-policy-server".to_string())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("policy server runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let serve = tonic::transport::Server::builder()
                        .add_service(OutboundPoliciesServer::new(service))
                        .serve_with_incoming(TcpListenerStream::new(listener));
                    // Not a graceful shutdown: open Watch streams never end,
                    // so stopping drops them with the runtime.
                    tokio::select! {
                        _ = serve => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("spawn the policy server thread");
        OutboundPolicyServer {
            state,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers `target` with `policy` from now on, on open streams too.
    pub fn set(&self, target: &str, policy: proto::OutboundPolicy) {
        self.state.sender(target).send_replace(Some(policy));
    }

    /// Removes `target`'s policy: open streams end with NotFound.
    pub fn remove(&self, target: &str) {
        self.state.sender(target).send_replace(None);
    }

    /// The `(target, source_workload)` of every Watch received so far.
    pub fn watches(&self) -> Vec<(String, String)> {
        self.state
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A route's metadata naming an HTTPRoute resource.
pub fn resource(kind: &str, name: &str) -> Option<meta::Metadata> {
    Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: "gateway.networking.k8s.io".to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            namespace: "shop".to_string(),
            ..Default::default()
        })),
    })
}

/// A balancer backend resolved with Destination `Get(path)`.
pub fn backend(path: &str) -> proto::Backend {
    proto::Backend {
        metadata: None,
        queue: None,
        kind: Some(proto::backend::Kind::Balancer(proto::backend::BalanceP2c {
            discovery: Some(proto::backend::EndpointDiscovery {
                kind: Some(proto::backend::endpoint_discovery::Kind::Dst(
                    proto::backend::endpoint_discovery::DestinationGet {
                        path: path.to_string(),
                    },
                )),
            }),
            load: None,
        })),
    }
}

/// An HTTP rule matching `matches`, to `backends` (`(path, weight)`).
pub fn http_rule(
    matches: Vec<http_route::HttpRouteMatch>,
    backends: &[(&str, u32)],
) -> proto::http_route::Rule {
    #[allow(deprecated)]
    proto::http_route::Rule {
        matches,
        filters: vec![],
        backends: Some(proto::http_route::Distribution {
            kind: Some(proto::http_route::distribution::Kind::RandomAvailable(
                proto::http_route::distribution::RandomAvailable {
                    backends: backends
                        .iter()
                        .map(|(path, weight)| proto::http_route::WeightedRouteBackend {
                            backend: Some(proto::http_route::RouteBackend {
                                backend: Some(backend(path)),
                                filters: vec![],
                                request_timeout: None,
                            }),
                            weight: *weight,
                        })
                        .collect(),
                },
            )),
        }),
        request_timeout: None,
        timeouts: None,
        retry: None,
        allow_l5d_request_headers: false,
    }
}

/// A path-prefix match.
pub fn prefix(path: &str) -> http_route::HttpRouteMatch {
    http_route::HttpRouteMatch {
        path: Some(http_route::PathMatch {
            kind: Some(http_route::path_match::Kind::Prefix(path.to_string())),
        }),
        ..Default::default()
    }
}

/// A header match (exact value) with a path prefix `/`.
pub fn header(name: &str, value: &str) -> http_route::HttpRouteMatch {
    http_route::HttpRouteMatch {
        headers: vec![http_route::HeaderMatch {
            name: name.to_string(),
            value: Some(http_route::header_match::Value::Exact(
                value.as_bytes().to_vec(),
            )),
        }],
        ..prefix("/")
    }
}

/// The timeouts of a rule: the whole request.
pub fn request_timeout(timeout: Duration) -> Option<http_route::Timeouts> {
    Some(http_route::Timeouts {
        request: Some(timeout.try_into().expect("duration")),
        ..Default::default()
    })
}

/// A retry of 5xx responses, at most `max_retries` times.
pub fn retry_5xx(max_retries: u32) -> Option<proto::http_route::Retry> {
    Some(proto::http_route::Retry {
        max_retries,
        conditions: Some(proto::http_route::retry::Conditions {
            status_ranges: vec![proto::http_route::retry::conditions::StatusRange {
                start: 500,
                end: 599,
            }],
        }),
        ..Default::default()
    })
}

/// Consecutive-failures accrual: eject after `max_failures`, for
/// `min_backoff` growing to `max_backoff`, no jitter.
pub fn consecutive_failures(
    max_failures: u32,
    min_backoff: Duration,
    max_backoff: Duration,
) -> Option<proto::FailureAccrual> {
    Some(proto::FailureAccrual {
        ejection: None,
        kind: Some(proto::failure_accrual::Kind::ConsecutiveFailures(
            proto::failure_accrual::ConsecutiveFailures {
                max_failures,
                backoff: Some(proto::ExponentialBackoff {
                    min_backoff: Some(min_backoff.try_into().expect("duration")),
                    max_backoff: Some(max_backoff.try_into().expect("duration")),
                    jitter_ratio: 0.0,
                    respect_retry_after_hint: false,
                }),
            },
        )),
    })
}

/// A Detect policy with `routes` for HTTP/1 and HTTP/2 and `accrual`.
pub fn http_policy(
    routes: Vec<proto::HttpRoute>,
    accrual: Option<proto::FailureAccrual>,
) -> proto::OutboundPolicy {
    proto::OutboundPolicy {
        metadata: None,
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proto::proxy_protocol::Kind::Detect(
                proto::proxy_protocol::Detect {
                    timeout: Some(Duration::from_secs(10).try_into().expect("duration")),
                    opaque: None,
                    http1: Some(proto::proxy_protocol::Http1 {
                        routes: routes.clone(),
                        failure_accrual: accrual,
                    }),
                    http2: Some(proto::proxy_protocol::Http2 {
                        routes,
                        failure_accrual: accrual,
                    }),
                },
            )),
        }),
    }
}

/// One HTTPRoute named `name` with `rules`.
pub fn http_route(name: &str, rules: Vec<proto::http_route::Rule>) -> proto::HttpRoute {
    proto::HttpRoute {
        metadata: resource("HTTPRoute", name),
        hosts: vec![],
        rules,
    }
}

/// A gRPC policy: one GRPCRoute named `name` whose rules each match a
/// `(service, method)` (empty = any) and go to one backend path.
pub fn grpc_policy(name: &str, rules: &[(&str, &str, &str)]) -> proto::OutboundPolicy {
    #[allow(deprecated)]
    let rules = rules
        .iter()
        .map(|(service, method, path)| proto::grpc_route::Rule {
            matches: vec![grpc_route::GrpcRouteMatch {
                rpc: Some(grpc_route::GrpcRpcMatch {
                    service: service.to_string(),
                    method: method.to_string(),
                }),
                headers: vec![],
            }],
            filters: vec![],
            backends: Some(proto::grpc_route::Distribution {
                kind: Some(proto::grpc_route::distribution::Kind::FirstAvailable(
                    proto::grpc_route::distribution::FirstAvailable {
                        backends: vec![proto::grpc_route::RouteBackend {
                            backend: Some(backend(path)),
                            filters: vec![],
                            request_timeout: None,
                        }],
                    },
                )),
            }),
            request_timeout: None,
            timeouts: None,
            retry: None,
            allow_l5d_request_headers: false,
        })
        .collect();
    proto::OutboundPolicy {
        metadata: None,
        protocol: Some(proto::ProxyProtocol {
            kind: Some(proto::proxy_protocol::Kind::Grpc(
                proto::proxy_protocol::Grpc {
                    routes: vec![proto::GrpcRoute {
                        metadata: resource("GRPCRoute", name),
                        hosts: vec![],
                        rules,
                    }],
                    failure_accrual: None,
                },
            )),
        }),
    }
}

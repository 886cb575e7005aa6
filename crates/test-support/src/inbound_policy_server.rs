//! A fake `io.linkerd.proxy.inbound.InboundServerPolicies` server for proxy
//! tests: answers `WatchPort` for each port with what the test set, and
//! sends a new answer on every open stream when the test changes it.
//!
//! ```text
//! test ── set(port, Server) ──► InboundPolicyServer ══WatchPort stream══► weft-proxy
//! ```
//!
//! A port with no answer keeps its stream open without a message (the
//! proxy uses its default policy meanwhile). [`answers`] builds the
//! Linkerd-shaped messages tests need.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures::Stream;
use linkerd2_proxy_api::inbound::inbound_server_policies_server::{
    InboundServerPolicies, InboundServerPoliciesServer,
};
use linkerd2_proxy_api::inbound::{PortSpec, Server};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::background::BackgroundServer;

/// The fake server; stopped when dropped.
pub struct InboundPolicyServer {
    server: BackgroundServer,
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    /// The answer of each port (`None`: not answered yet).
    answers: Mutex<HashMap<u32, watch::Sender<Option<Server>>>>,
    /// Every request received: (workload, port).
    requests: Mutex<Vec<(String, u32)>>,
}

impl State {
    fn sender(&self, port: u32) -> watch::Sender<Option<Server>> {
        self.answers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(port)
            .or_insert_with(|| watch::Sender::new(None))
            .clone()
    }
}

impl InboundPolicyServer {
    /// Starts the server on `127.0.0.1:<free port>` with no answers.
    pub fn start() -> InboundPolicyServer {
        let state = Arc::new(State::default());
        let service = Service {
            state: state.clone(),
        };
        let server = BackgroundServer::start("inbound-policy-server", move |listener| {
            serve(listener, service)
        });
        InboundPolicyServer { server, state }
    }

    /// The address to give the proxy (`WEFT_PROXY_POLICY_SVC_ADDR`).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Answers `port` with `server` from now on, on open streams too.
    pub fn set(&self, port: u16, server: Server) {
        self.state
            .sender(u32::from(port))
            .send_replace(Some(server));
    }

    /// Every `WatchPort` request so far, as (workload, port).
    pub fn requests(&self) -> Vec<(String, u32)> {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many `WatchPort` streams are open for `port`.
    pub fn open_streams(&self, port: u16) -> usize {
        self.state.sender(u32::from(port)).receiver_count()
    }
}

async fn serve(listener: TcpListener, service: Service) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let _ = tonic::transport::Server::builder()
        .add_service(InboundServerPoliciesServer::new(service))
        .serve_with_incoming(incoming)
        .await;
}

#[derive(Clone)]
struct Service {
    state: Arc<State>,
}

type Answers = Pin<Box<dyn Stream<Item = Result<Server, Status>> + Send>>;

#[tonic::async_trait]
impl InboundServerPolicies for Service {
    async fn get_port(&self, request: Request<PortSpec>) -> Result<Response<Server>, Status> {
        let spec = request.into_inner();
        self.record(&spec);
        let answer = self.state.sender(spec.port).borrow().clone();
        answer
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no answer for the port"))
    }

    type WatchPortStream = Answers;

    async fn watch_port(
        &self,
        request: Request<PortSpec>,
    ) -> Result<Response<Self::WatchPortStream>, Status> {
        let spec = request.into_inner();
        self.record(&spec);
        let mut receiver = self.state.sender(spec.port).subscribe();
        receiver.mark_changed();
        let answers = futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                receiver.changed().await.ok()?;
                let answer = receiver.borrow_and_update().clone();
                if let Some(server) = answer {
                    return Some((Ok(server), receiver));
                }
            }
        });
        Ok(Response::new(Box::pin(answers)))
    }
}

impl Service {
    fn record(&self, spec: &PortSpec) {
        self.state
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((spec.workload.clone(), spec.port));
    }
}

/// Linkerd-shaped answers, as the policy controller writes them.
pub mod answers {
    use std::collections::HashMap;

    use linkerd2_proxy_api::inbound::{
        Authn, Authz, HttpRoute, Identity, IdentitySuffix, Network, ProxyProtocol, Server, authn,
        http_route, proxy_protocol,
    };
    use linkerd2_proxy_api::meta::{Metadata, Resource, metadata};
    use linkerd2_proxy_api::net::{IpAddress, IpNetwork, ip_address};

    /// Metadata naming the `policy.linkerd.io` resource `kind`/`name`.
    fn policy_resource(kind: &str, name: &str) -> Option<Metadata> {
        Some(Metadata {
            kind: Some(metadata::Kind::Resource(Resource {
                group: "policy.linkerd.io".to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
                ..Resource::default()
            })),
        })
    }

    /// A Server resource named `name` (protocol detect) with `authorizations`.
    pub fn server(name: &str, authorizations: Vec<Authz>) -> Server {
        server_with(name, detect(), authorizations)
    }

    /// A Server resource named `name` (protocol detect) with `routes`, each
    /// with its own authorizations.
    pub fn server_with_routes(
        name: &str,
        authorizations: Vec<Authz>,
        routes: Vec<HttpRoute>,
    ) -> Server {
        server_with(
            name,
            proxy_protocol::Kind::Detect(proxy_protocol::Detect {
                timeout: None,
                http_routes: routes,
                http_local_rate_limit: None,
            }),
            authorizations,
        )
    }

    /// An HTTPRoute `name` matching paths under `prefix`, for `authorizations`.
    pub fn http_route(name: &str, prefix: &str, authorizations: Vec<Authz>) -> HttpRoute {
        use linkerd2_proxy_api::http_route as http_api;
        HttpRoute {
            metadata: policy_resource("HTTPRoute", name),
            hosts: Vec::new(),
            authorizations,
            rules: vec![http_route::Rule {
                matches: vec![http_api::HttpRouteMatch {
                    path: Some(http_api::PathMatch {
                        kind: Some(http_api::path_match::Kind::Prefix(prefix.to_string())),
                    }),
                    ..http_api::HttpRouteMatch::default()
                }],
                filters: Vec::new(),
            }],
        }
    }

    /// A Server resource named `name` whose protocol is opaque.
    pub fn opaque_server(name: &str, authorizations: Vec<Authz>) -> Server {
        server_with(
            name,
            proxy_protocol::Kind::Opaque(proxy_protocol::Opaque {}),
            authorizations,
        )
    }

    fn detect() -> proxy_protocol::Kind {
        proxy_protocol::Kind::Detect(proxy_protocol::Detect {
            timeout: None,
            http_routes: Vec::new(),
            http_local_rate_limit: None,
        })
    }

    fn server_with(name: &str, kind: proxy_protocol::Kind, authorizations: Vec<Authz>) -> Server {
        Server {
            protocol: Some(ProxyProtocol { kind: Some(kind) }),
            server_ips: Vec::new(),
            authorizations,
            labels: HashMap::from([
                ("group".to_string(), "policy.linkerd.io".to_string()),
                ("kind".to_string(), "server".to_string()),
                ("name".to_string(), name.to_string()),
            ]),
        }
    }

    /// An AuthorizationPolicy `name` admitting the mesh `identities` from
    /// anywhere.
    pub fn identities(name: &str, identities: &[&str]) -> Authz {
        mesh_tls(name, identities, &[])
    }

    /// An AuthorizationPolicy `name` admitting any verified identity.
    pub fn any_identity(name: &str) -> Authz {
        mesh_tls(name, &[], &[&[]])
    }

    fn mesh_tls(name: &str, identities: &[&str], suffixes: &[&[&str]]) -> Authz {
        use authn::permit_mesh_tls::{Clients, PermitClientIdentities};
        authz(
            name,
            authn::Permit::MeshTls(authn::PermitMeshTls {
                clients: Some(Clients::Identities(PermitClientIdentities {
                    identities: identities
                        .iter()
                        .map(|identity| Identity {
                            name: identity.to_string(),
                        })
                        .collect(),
                    suffixes: suffixes
                        .iter()
                        .map(|parts| IdentitySuffix {
                            parts: parts.iter().map(|part| part.to_string()).collect(),
                        })
                        .collect(),
                })),
            }),
        )
    }

    /// An AuthorizationPolicy `name` admitting anyone from anywhere.
    pub fn unauthenticated(name: &str) -> Authz {
        authz(
            name,
            authn::Permit::Unauthenticated(authn::PermitUnauthenticated {}),
        )
    }

    fn authz(name: &str, permit: authn::Permit) -> Authz {
        Authz {
            networks: vec![network([0, 0, 0, 0])],
            authentication: Some(Authn {
                permit: Some(permit),
            }),
            labels: HashMap::new(),
            metadata: policy_resource("authorizationpolicy", name),
        }
    }

    fn network(address: [u8; 4]) -> Network {
        Network {
            net: Some(IpNetwork {
                ip: Some(IpAddress {
                    ip: Some(ip_address::Ip::Ipv4(u32::from_be_bytes(address))),
                }),
                prefix_len: 0,
            }),
            except: Vec::new(),
        }
    }
}

//! Tables for the inbound policy: conversion of the controller's answer,
//! the authorization decision, default policies, and the watch bounds.

use super::authorize::{
    Client, ClientTls, Decision, RequestDecision, authorize, authorize_request,
};
use super::convert::{ConvertError, server_policy};
use super::server::{Authentication, IdentitySuffix, Protocol, ServerPolicy};
use super::watch::InboundPolicies;
use crate::config::{DefaultPolicy, IpNetwork};
use linkerd2_proxy_api::inbound as api;
use linkerd2_proxy_api::meta::{Metadata, Resource, metadata};
use linkerd2_proxy_api::net as net_api;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

fn net(text: &str) -> net_api::IpNetwork {
    let (address, prefix) = text.split_once('/').unwrap();
    let address: IpAddr = address.parse().unwrap();
    let ip = match address {
        IpAddr::V4(ip) => net_api::ip_address::Ip::Ipv4(u32::from(ip)),
        IpAddr::V6(ip) => {
            let bits = u128::from(ip);
            net_api::ip_address::Ip::Ipv6(net_api::IPv6 {
                first: (bits >> 64) as u64,
                last: bits as u64,
            })
        }
    };
    net_api::IpNetwork {
        ip: Some(net_api::IpAddress { ip: Some(ip) }),
        prefix_len: prefix.parse().unwrap(),
    }
}

fn resource(kind: &str, name: &str) -> Option<Metadata> {
    Some(Metadata {
        kind: Some(metadata::Kind::Resource(Resource {
            group: "policy.linkerd.io".to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
            ..Resource::default()
        })),
    })
}

fn mesh_tls(identities: &[&str], suffixes: &[&[&str]]) -> Option<api::Authn> {
    use api::authn::permit_mesh_tls::{Clients, PermitClientIdentities};
    Some(api::Authn {
        permit: Some(api::authn::Permit::MeshTls(api::authn::PermitMeshTls {
            clients: Some(Clients::Identities(PermitClientIdentities {
                identities: identities
                    .iter()
                    .map(|name| api::Identity {
                        name: name.to_string(),
                    })
                    .collect(),
                suffixes: suffixes
                    .iter()
                    .map(|parts| api::IdentitySuffix {
                        parts: parts.iter().map(|part| part.to_string()).collect(),
                    })
                    .collect(),
            })),
        })),
    })
}

fn unauthenticated() -> Option<api::Authn> {
    Some(api::Authn {
        permit: Some(api::authn::Permit::Unauthenticated(
            api::authn::PermitUnauthenticated {},
        )),
    })
}

fn authz(
    name: &str,
    networks: &[(&str, &[&str])],
    authentication: Option<api::Authn>,
) -> api::Authz {
    api::Authz {
        networks: networks
            .iter()
            .map(|(network, except)| api::Network {
                net: Some(net(network)),
                except: except.iter().map(|except| net(except)).collect(),
            })
            .collect(),
        authentication,
        labels: HashMap::new(),
        metadata: resource("authorizationpolicy", name),
    }
}

fn server(kind: api::proxy_protocol::Kind, authorizations: Vec<api::Authz>) -> api::Server {
    api::Server {
        protocol: Some(api::ProxyProtocol { kind: Some(kind) }),
        server_ips: Vec::new(),
        authorizations,
        labels: HashMap::from([
            ("group".to_string(), "policy.linkerd.io".to_string()),
            ("kind".to_string(), "server".to_string()),
            ("name".to_string(), "web-http".to_string()),
        ]),
    }
}

fn detect() -> api::proxy_protocol::Kind {
    api::proxy_protocol::Kind::Detect(api::proxy_protocol::Detect {
        timeout: Some(prost_types::Duration {
            seconds: 10,
            nanos: 0,
        }),
        http_routes: Vec::new(),
        http_local_rate_limit: None,
    })
}

const A: &str = "a.shop.serviceaccount.identity.weft.cluster.local";
const B: &str = "b.shop.serviceaccount.identity.weft.cluster.local";
const C: &str = "c.other.serviceaccount.identity.weft.cluster.local";

#[test]
fn convert_table() {
    let opaque = api::proxy_protocol::Kind::Opaque(api::proxy_protocol::Opaque {});
    let grpc = api::proxy_protocol::Kind::Grpc(api::proxy_protocol::Grpc { routes: Vec::new() });
    // (answer, protocol or error, authorizations, first authz name)
    let converted = server_policy(
        server(
            detect(),
            vec![authz("only-a", &[("0.0.0.0/0", &[])], mesh_tls(&[A], &[]))],
        ),
        8080,
    )
    .unwrap();
    assert_eq!(
        converted.protocol,
        Protocol::Detect {
            timeout: Some(Duration::from_secs(10))
        }
    );
    assert_eq!(&*converted.labels.resource.name, "web-http");
    assert_eq!(&*converted.labels.resource.kind, "server");
    assert_eq!(converted.labels.port, 8080);
    assert_eq!(&*converted.authorizations[0].labels.name, "only-a");
    assert_eq!(
        &*converted.authorizations[0].labels.kind,
        "authorizationpolicy"
    );
    assert_eq!(
        converted.authorizations[0].authentication,
        Authentication::MeshTls {
            identities: vec![A.to_string()],
            suffixes: Vec::new()
        }
    );
    assert_eq!(
        server_policy(server(opaque, Vec::new()), 1)
            .unwrap()
            .protocol,
        Protocol::Opaque
    );
    assert_eq!(
        server_policy(server(grpc, Vec::new()), 1).unwrap().protocol,
        Protocol::Grpc
    );

    // Refused answers.
    let mut no_protocol = server(detect(), Vec::new());
    no_protocol.protocol = None;
    assert_eq!(
        server_policy(no_protocol, 1).err(),
        Some(ConvertError::MissingProtocol)
    );
    assert_eq!(
        server_policy(
            server(detect(), vec![authz("x", &[("0.0.0.0/0", &[])], None)]),
            1
        )
        .err(),
        Some(ConvertError::MissingAuthentication("x".to_string()))
    );
    let mut bad_prefix = authz("y", &[("10.0.0.0/8", &[])], unauthenticated());
    bad_prefix.networks[0].net.as_mut().unwrap().prefix_len = 33;
    assert_eq!(
        server_policy(server(detect(), vec![bad_prefix]), 1).err(),
        Some(ConvertError::InvalidNetwork("y".to_string()))
    );

    // Default metadata and label maps.
    let mut default = authz("ignored", &[("::/0", &[])], unauthenticated());
    default.metadata = Some(Metadata {
        kind: Some(metadata::Kind::Default("all-unauthenticated".to_string())),
    });
    let converted = server_policy(server(detect(), vec![default]), 1).unwrap();
    assert_eq!(&*converted.authorizations[0].labels.kind, "default");
    assert_eq!(&*converted.authorizations[0].labels.group, "");
    assert_eq!(
        &*converted.authorizations[0].labels.name,
        "all-unauthenticated"
    );
}

#[test]
fn identity_suffix_table() {
    let table: [(&[&str], &str, bool); 7] = [
        (&[], A, true),
        (
            &[
                "shop",
                "serviceaccount",
                "identity",
                "weft",
                "cluster",
                "local",
            ],
            A,
            true,
        ),
        (
            &["serviceaccount", "identity", "weft", "cluster", "local"],
            C,
            true,
        ),
        (
            &[
                "shop",
                "serviceaccount",
                "identity",
                "weft",
                "cluster",
                "local",
            ],
            C,
            false,
        ),
        // Label boundary: "hop" is not a label of A.
        (
            &[
                "hop",
                "serviceaccount",
                "identity",
                "weft",
                "cluster",
                "local",
            ],
            A,
            false,
        ),
        (
            &[
                "a",
                "shop",
                "serviceaccount",
                "identity",
                "weft",
                "cluster",
                "local",
            ],
            A,
            // The identity itself is not under its own suffix (linkerd2-proxy).
            false,
        ),
        (
            &[
                "x",
                "a",
                "shop",
                "serviceaccount",
                "identity",
                "weft",
                "cluster",
                "local",
            ],
            A,
            false,
        ),
    ];
    for (parts, identity, expected) in table {
        let parts: Vec<String> = parts.iter().map(|part| part.to_string()).collect();
        assert_eq!(
            IdentitySuffix::new(&parts).matches(identity),
            expected,
            "{parts:?} {identity}"
        );
    }
}

#[test]
fn authorization_decision_table() {
    let shop_suffix: &[&str] = &[
        "shop",
        "serviceaccount",
        "identity",
        "weft",
        "cluster",
        "local",
    ];
    let policy = server_policy(
        server(
            detect(),
            vec![
                authz("only-a", &[("0.0.0.0/0", &[])], mesh_tls(&[A], &[])),
                authz(
                    "shop",
                    &[("10.0.0.0/8", &["10.9.0.0/16"])],
                    mesh_tls(&[], &[shop_suffix]),
                ),
                authz(
                    "any-identity",
                    &[("192.168.0.0/16", &[])],
                    mesh_tls(&[], &[&[]]),
                ),
                authz(
                    "lan",
                    &[("172.16.0.0/12", &[]), ("fd00::/8", &[])],
                    unauthenticated(),
                ),
                authz(
                    "tls-any",
                    &[("198.51.100.0/24", &[])],
                    Some(api::Authn {
                        permit: Some(api::authn::Permit::MeshTls(api::authn::PermitMeshTls {
                            clients: Some(api::authn::permit_mesh_tls::Clients::Unauthenticated(
                                api::authn::PermitUnauthenticated {},
                            )),
                        })),
                    }),
                ),
            ],
        ),
        80,
    )
    .unwrap();
    let plain = ClientTls::Plaintext;
    let tls = |identity| ClientTls::Terminated {
        identity: Some(identity),
    };
    let no_cert = ClientTls::Terminated { identity: None };
    // (client address, tls, expected authorization or None = deny)
    let table = [
        ("203.0.113.1", tls(A), Some("only-a")),
        ("203.0.113.1", tls(B), None),
        ("203.0.113.1", plain, None),
        ("10.1.2.3", tls(B), Some("shop")),
        ("10.1.2.3", tls(C), None),
        ("10.9.2.3", tls(B), None),
        ("10.1.2.3", plain, None),
        ("192.168.1.1", tls(C), Some("any-identity")),
        ("192.168.1.1", no_cert, None),
        ("192.168.1.1", plain, None),
        ("172.20.0.1", plain, Some("lan")),
        ("fd00::1", plain, Some("lan")),
        ("::ffff:172.20.0.1", plain, Some("lan")),
        ("fe80::1", plain, None),
        ("198.51.100.7", no_cert, Some("tls-any")),
        ("198.51.100.7", plain, None),
    ];
    for (addr, tls, expected) in table {
        let client = Client {
            addr: addr.parse().unwrap(),
            tls,
        };
        let got = match authorize(&policy.authorizations, &client) {
            Decision::Allow {
                authorization,
                audit,
            } => {
                assert!(!audit);
                Some(authorization.labels.name.to_string())
            }
            Decision::Deny => None,
        };
        assert_eq!(got.as_deref(), expected, "{addr} {tls:?}");
    }
}

#[test]
fn default_policy_table() {
    let cluster = [IpNetwork::parse("10.0.0.0/8").unwrap()];
    let inside: IpAddr = "10.0.0.1".parse().unwrap();
    let outside: IpAddr = "203.0.113.9".parse().unwrap();
    // (policy, address, identity, expected authz name or None = deny)
    let table = [
        (
            DefaultPolicy::AllUnauthenticated,
            outside,
            None,
            Some("all-unauthenticated"),
        ),
        (DefaultPolicy::AllAuthenticated, outside, None, None),
        (
            DefaultPolicy::AllAuthenticated,
            outside,
            Some(A),
            Some("all-authenticated"),
        ),
        (
            DefaultPolicy::ClusterUnauthenticated,
            inside,
            None,
            Some("cluster-unauthenticated"),
        ),
        (DefaultPolicy::ClusterUnauthenticated, outside, None, None),
        (DefaultPolicy::ClusterAuthenticated, inside, None, None),
        (
            DefaultPolicy::ClusterAuthenticated,
            inside,
            Some(A),
            Some("cluster-authenticated"),
        ),
        (DefaultPolicy::ClusterAuthenticated, outside, Some(A), None),
        (DefaultPolicy::Deny, inside, Some(A), None),
        (DefaultPolicy::Audit, outside, None, Some("audit")),
    ];
    for (default, addr, identity, expected) in table {
        let policy = ServerPolicy::default_for(default, 8080, &cluster);
        assert_eq!(&*policy.labels.resource.name, default.as_str());
        assert_eq!(&*policy.labels.resource.kind, "default");
        let client = Client {
            addr,
            tls: ClientTls::from_identity(identity),
        };
        let got = match authorize(&policy.authorizations, &client) {
            Decision::Allow {
                authorization,
                audit,
            } => {
                assert_eq!(audit, default == DefaultPolicy::Audit);
                Some(authorization.labels.name.to_string())
            }
            Decision::Deny => None,
        };
        assert_eq!(
            got.as_deref(),
            expected,
            "{} {addr} {identity:?}",
            default.as_str()
        );
    }
}

#[tokio::test]
async fn watched_ports_are_bounded_and_idle_ones_evicted() {
    // Without a channel nothing is streamed, but ports are still held
    // (they get the default policy).
    let policies = InboundPolicies::with_limits(
        None,
        DefaultPolicy::Deny,
        Vec::new(),
        3,
        Duration::from_millis(50),
    );
    policies.watch_eagerly([1]);
    let held = policies.port(2);
    let idle = policies.port(3);
    drop(idle);
    assert_eq!(policies.watched(), 3);
    // Full, and port 3 not idle long enough: port 4 gets the shared default.
    let overflow = policies.port(4);
    assert_eq!(policies.watched(), 3);
    assert_eq!(&*overflow.borrow().labels.resource.name, "deny");
    tokio::time::sleep(Duration::from_millis(60)).await;
    // Port 3 has been idle past the timeout: evicted for port 5. The eager
    // port and the held one stay.
    let _five = policies.port(5);
    assert_eq!(policies.watched(), 3);
    assert_eq!(policies.evict_idle(), 0);
    assert_eq!(held.borrow().labels.port, 2);
    drop(held);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(policies.evict_idle(), 1);
    assert_eq!(policies.watched(), 2);
}

#[test]
fn the_bound_is_linkerds() {
    assert_eq!(super::watch::MAX_WATCHED_PORTS, 1024);
    assert_eq!(super::watch::IDLE_TIMEOUT, Duration::from_secs(90));
}

fn http_route(name: &str, prefix: &str, authorizations: Vec<api::Authz>) -> api::HttpRoute {
    use linkerd2_proxy_api::http_route as http_api;
    api::HttpRoute {
        metadata: resource("HTTPRoute", name),
        hosts: Vec::new(),
        authorizations,
        rules: vec![api::http_route::Rule {
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

/// The decision on `request` from 10.0.0.1 with `identity`, as the tables
/// spell it: `route/authorization`, `deny:<route>` or `no route`.
fn request_decision(
    policy: &ServerPolicy,
    request: &http::Request<()>,
    identity: Option<&str>,
) -> String {
    let client = Client {
        addr: "10.0.0.1".parse().unwrap(),
        tls: ClientTls::from_identity(identity),
    };
    let view = crate::policy::route_match::RequestView::of(request);
    match authorize_request(policy, &view, &client) {
        RequestDecision::Allow {
            route,
            authorization,
            ..
        } => format!("{}/{}", route.name, authorization.labels.name),
        RequestDecision::Deny { route } => format!("deny:{}", route.name),
        RequestDecision::NoRoute => "no route".to_string(),
    }
}

#[test]
fn per_route_authorization_table() {
    let everyone = || authz("everyone", &[("0.0.0.0/0", &[])], unauthenticated());
    let only_a = || authz("only-a", &[("0.0.0.0/0", &[])], mesh_tls(&[A], &[]));
    let with_routes = server_policy(
        server(
            api::proxy_protocol::Kind::Detect(api::proxy_protocol::Detect {
                timeout: None,
                http_routes: vec![
                    http_route("public", "/public", vec![everyone()]),
                    http_route("admin", "/admin", vec![only_a()]),
                    http_route("closed", "/closed", Vec::new()),
                ],
                http_local_rate_limit: None,
            }),
            // No Server-wide authorization: each route's own decide.
            Vec::new(),
        ),
        80,
    )
    .unwrap();
    let without_routes = server_policy(server(detect(), vec![only_a()]), 80).unwrap();
    // (policy, path, identity, expected: route/authz, "deny:<route>" or "no route")
    let table = [
        (&with_routes, "/public/x", None, "public/everyone"),
        (&with_routes, "/public", Some(B), "public/everyone"),
        (&with_routes, "/admin/users", Some(A), "admin/only-a"),
        (&with_routes, "/admin/users", Some(B), "deny:admin"),
        (&with_routes, "/admin", None, "deny:admin"),
        (&with_routes, "/closed", Some(A), "deny:closed"),
        (&with_routes, "/elsewhere", Some(A), "no route"),
        (&with_routes, "/publicity", None, "no route"),
        (&without_routes, "/anything", Some(A), "default/only-a"),
        (&without_routes, "/anything", Some(B), "deny:default"),
    ];
    for (policy, path, identity, expected) in table {
        let request = http::Request::builder()
            .uri(format!("http://web.shop.svc.cluster.local{path}"))
            .body(())
            .unwrap();
        let got = request_decision(policy, &request, identity);
        assert_eq!(got, expected, "{path} {identity:?}");
    }
    // The Server's authorizations follow each route's own.
    let server_wide = server_policy(
        server(
            api::proxy_protocol::Kind::Detect(api::proxy_protocol::Detect {
                timeout: None,
                http_routes: vec![http_route("closed", "/", Vec::new())],
                http_local_rate_limit: None,
            }),
            vec![only_a()],
        ),
        80,
    )
    .unwrap();
    let request = http::Request::builder().uri("/x").body(()).unwrap();
    let view = crate::policy::route_match::RequestView::of(&request);
    for (identity, allowed) in [(Some(A), true), (Some(B), false)] {
        let client = Client {
            addr: "10.0.0.1".parse().unwrap(),
            tls: ClientTls::from_identity(identity),
        };
        assert_eq!(
            matches!(
                authorize_request(&server_wide, &view, &client),
                RequestDecision::Allow { .. }
            ),
            allowed
        );
    }
    // The route's labels come from its metadata.
    let super::server::InboundRoutes::Http(routes) = &with_routes.routes else {
        panic!("HTTP routes expected");
    };
    assert_eq!(&*routes[1].data.labels.kind, "HTTPRoute");
    assert_eq!(&*routes[1].data.labels.group, "policy.linkerd.io");
}

/// How long one allowed `authorize_request` takes (a report, not a check;
/// `cargo test -p weft-proxy --release authorize_cost -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn authorize_cost() {
    let policy = server_policy(
        server(
            detect(),
            vec![
                authz("only-b", &[("0.0.0.0/0", &[])], mesh_tls(&[B], &[])),
                authz("only-a", &[("0.0.0.0/0", &[])], mesh_tls(&[A], &[])),
            ],
        ),
        80,
    )
    .unwrap();
    let request = http::Request::builder()
        .uri("http://web.shop.svc.cluster.local/items/42")
        .body(())
        .unwrap();
    let client = Client {
        addr: "10.0.0.1".parse().unwrap(),
        tls: ClientTls::from_identity(Some(A)),
    };
    let rounds = 2_000_000u32;
    let started = std::time::Instant::now();
    let mut allowed = 0u32;
    for _ in 0..rounds {
        let view = crate::policy::route_match::RequestView::of(std::hint::black_box(&request));
        if let RequestDecision::Allow { .. } =
            authorize_request(std::hint::black_box(&policy), &view, &client)
        {
            allowed += 1;
        }
    }
    let each = started.elapsed() / rounds;
    assert_eq!(allowed, rounds);
    println!("authorize_request (default route, second of two authorizations): {each:?} each");

    // Counting the allow: the label set (Arc clones) and the family lookup.
    use crate::metrics::authz::{AuthzEvent, AuthzLabels, AuthzMetrics};
    use crate::metrics::labels::{TargetLabels, TlsStatus};
    let (metrics, _) = AuthzMetrics::new(&mut prometheus_client::registry::Registry::default());
    let target = TargetLabels::new(
        "127.0.0.1:8080".parse().unwrap(),
        TlsStatus::FromClient(Some(A.into())),
    );
    let authorization = &policy.authorizations[1];
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let labels = AuthzLabels {
            target: target.clone(),
            server: policy.labels.clone(),
            route: Some(policy.default_route.clone()),
            authz: Some(authorization.labels.clone()),
        };
        metrics.record(AuthzEvent::HttpAllow, std::hint::black_box(&labels));
    }
    let each = started.elapsed() / rounds;
    println!("counting an allow (labels + IdleFamily lookup): {each:?} each");
    // As a connection's requests do: through its handle cache.
    let cache = crate::metrics::HandleCache::default();
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let labels = AuthzLabels {
            target: target.clone(),
            server: policy.labels.clone(),
            route: Some(policy.default_route.clone()),
            authz: Some(authorization.labels.clone()),
        };
        metrics.record_cached(&cache, AuthzEvent::HttpAllow, std::hint::black_box(&labels));
    }
    let each = started.elapsed() / rounds;
    println!("counting an allow through the connection's cache: {each:?} each");
}

#[test]
fn grpc_routes_authorize_by_service() {
    use linkerd2_proxy_api::grpc_route as grpc_api;
    let route = |name: &str, service: &str, authorizations| api::GrpcRoute {
        metadata: resource("GRPCRoute", name),
        hosts: Vec::new(),
        authorizations,
        rules: vec![api::grpc_route::Rule {
            matches: vec![grpc_api::GrpcRouteMatch {
                rpc: Some(grpc_api::GrpcRpcMatch {
                    service: service.to_string(),
                    method: String::new(),
                }),
                headers: Vec::new(),
            }],
            filters: Vec::new(),
        }],
    };
    let policy = server_policy(
        server(
            api::proxy_protocol::Kind::Grpc(api::proxy_protocol::Grpc {
                routes: vec![
                    route(
                        "orders",
                        "shop.Orders",
                        vec![authz("only-a", &[("0.0.0.0/0", &[])], mesh_tls(&[A], &[]))],
                    ),
                    route(
                        "health",
                        "grpc.health.v1.Health",
                        vec![authz("everyone", &[("0.0.0.0/0", &[])], unauthenticated())],
                    ),
                ],
            }),
            Vec::new(),
        ),
        9090,
    )
    .unwrap();
    assert_eq!(policy.protocol, Protocol::Grpc);
    // (path, identity, expected)
    let table = [
        ("/shop.Orders/Place", Some(A), "orders/only-a"),
        ("/shop.Orders/Place", Some(B), "deny:orders"),
        ("/grpc.health.v1.Health/Check", None, "health/everyone"),
        ("/shop.Payments/Pay", Some(A), "no route"),
    ];
    for (path, identity, expected) in table {
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://orders.shop:9090{path}"))
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let got = request_decision(&policy, &request, identity);
        assert_eq!(got, expected, "{path} {identity:?}");
    }
}

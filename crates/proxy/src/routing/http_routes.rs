//! HTTPRoute / GRPCRoute routing of a logical target, from its outbound
//! policy: the route a request takes, and the backend of each attempt.
//!
//! ```text
//! request ─► routes for its protocol (gRPC; HTTP/2; HTTP/1)
//!   └─ route_match::select_* (host, path, method, headers, query; precedence)
//!        ├─ none ─► 404 `no route found for request` (gRPC: grpc-status 5)
//!        └─ rule ─► filters, timeout, retry; per attempt: backend by weight
//!                   ─► Backend (Get of its DestinationGet path + balancer, failure accrual)
//! ```
//!
//! The route metric label `rt_route` is the HTTPRoute's (GRPCRoute's) name.
//! `Forward` backends (one fixed address) are not used: a rule whose
//! chosen backend is one answers 503 (`no usable backend`).

use std::collections::HashMap;
use std::sync::Arc;

use http::Version;

use super::Backend;
use crate::balance::p2c::Random;
use crate::direction::Direction;
use crate::metrics::route::RouteLabels;
use crate::policy::outbound::{BackendTarget, OutboundPolicy, Protocol, RouteBackend, RouteRule};
use crate::policy::route_match::{RequestView, select_grpc, select_http};

/// A logical target's policy routes and their backends.
pub(crate) struct PolicyRoutes {
    /// The policy they were built from.
    pub policy: Arc<OutboundPolicy>,
    /// Backends by DestinationGet path.
    pub(super) backends: HashMap<String, Backend>,
}

/// The route a request takes.
pub(crate) struct PolicyChoice<'a> {
    /// Its metric labels (`rt_route` = the route's name).
    pub labels: RouteLabels,
    /// The route's name.
    pub name: &'a str,
    /// The matched rule.
    pub rule: &'a RouteRule,
}

impl PolicyRoutes {
    /// The route for a request (`is_grpc`: a gRPC request), or `None` when
    /// no route matches.
    pub(crate) fn route<'a>(
        &'a self,
        request: &RequestView<'_>,
        version: Version,
        is_grpc: bool,
        dst: &Arc<str>,
    ) -> Option<PolicyChoice<'a>> {
        let (meta, rule) = match &self.policy.protocol {
            Protocol::Grpc(routes) => {
                let selected = select_grpc(routes, request)?;
                (&selected.route.data, &selected.rule.data)
            }
            Protocol::Detect { http1, http2 } => {
                let routes = if version == Version::HTTP_2 || is_grpc {
                    http2
                } else {
                    http1
                };
                let selected = select_http(routes, request)?;
                (&selected.route.data, &selected.rule.data)
            }
            Protocol::Http1(routes) | Protocol::Http2(routes) => {
                let selected = select_http(routes, request)?;
                (&selected.route.data, &selected.rule.data)
            }
            Protocol::Opaque => return None,
        };
        Some(PolicyChoice {
            labels: RouteLabels {
                direction: Direction::Outbound,
                dst: dst.clone(),
                route: Some(meta.name.clone()),
            },
            name: &meta.name,
            rule,
        })
    }

    /// The backend of one attempt on `rule`, by weight; `None` when the
    /// rule has none the proxy can use.
    pub(crate) fn backend<'a>(
        &'a self,
        rule: &'a RouteRule,
        random: &Random,
    ) -> Option<(&'a RouteBackend, &'a Backend)> {
        let backends = rule.distribution.backends();
        let index = if backends.len() == 1 {
            0
        } else {
            let weights = backends.iter().map(|backend| backend.weight);
            super::policy::select_backend(weights, random.next_fraction())?
        };
        let route_backend = backends.get(index)?;
        match &route_backend.target {
            BackendTarget::Balancer(path) => self
                .backends
                .get(path)
                .map(|backend| (route_backend, backend)),
            BackendTarget::Forward(_) => None,
        }
    }
}

/// Every DestinationGet path the policy's rules name.
pub(super) fn backend_paths(policy: &OutboundPolicy) -> Vec<String> {
    let mut paths = Vec::new();
    let mut add = |rule: &RouteRule| {
        for backend in rule.distribution.backends() {
            if let BackendTarget::Balancer(path) = &backend.target
                && !paths.contains(path)
            {
                paths.push(path.clone());
            }
        }
    };
    match &policy.protocol {
        Protocol::Detect { http1, http2 } => {
            for route in http1.iter().chain(http2) {
                route.rules.iter().for_each(|rule| add(&rule.data));
            }
        }
        Protocol::Http1(routes) | Protocol::Http2(routes) => {
            for route in routes {
                route.rules.iter().for_each(|rule| add(&rule.data));
            }
        }
        Protocol::Grpc(routes) => {
            for route in routes {
                route.rules.iter().for_each(|rule| add(&rule.data));
            }
        }
        Protocol::Opaque => {}
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::outbound::{BackendTarget, Distribution, PolicyHttpRoute, RouteMeta};
    use crate::policy::route_match::{HttpRouteMatch, PathMatch, Route, Rule};

    fn route(name: &str, prefix: &str, backend: BackendTarget) -> PolicyHttpRoute {
        Route {
            hosts: vec![],
            rules: vec![Rule {
                matches: vec![HttpRouteMatch {
                    path: Some(PathMatch::Prefix(prefix.to_string())),
                    ..Default::default()
                }],
                data: RouteRule {
                    distribution: Distribution::RandomAvailable(vec![RouteBackend {
                        target: backend,
                        weight: 1,
                        filters: vec![],
                        request_timeout: None,
                    }]),
                    ..Default::default()
                },
            }],
            data: RouteMeta {
                name: Arc::from(name),
                kind: "HTTPRoute".to_string(),
                is_resource: true,
            },
        }
    }

    fn routes(protocol: Protocol) -> PolicyRoutes {
        PolicyRoutes {
            policy: Arc::new(OutboundPolicy {
                protocol,
                failure_accrual: None,
            }),
            backends: HashMap::new(),
        }
    }

    #[test]
    fn the_request_version_picks_the_route_list() {
        let a = BackendTarget::Balancer("a:80".to_string());
        let b = BackendTarget::Balancer("b:80".to_string());
        let routes = routes(Protocol::Detect {
            http1: vec![route("h1", "/", a.clone())],
            http2: vec![route("h2", "/", b.clone())],
        });
        let dst: Arc<str> = Arc::from("web.shop.svc.cluster.local:80");
        let request = http::Request::get("/x").body(()).unwrap();
        let view = RequestView::of(&request);
        // (version, is_grpc, expected route)
        let table = [
            (Version::HTTP_11, false, "h1"),
            (Version::HTTP_10, false, "h1"),
            (Version::HTTP_2, false, "h2"),
            (Version::HTTP_11, true, "h2"),
        ];
        for (version, is_grpc, expected) in table {
            let choice = routes
                .route(&view, version, is_grpc, &dst)
                .expect("a route");
            assert_eq!(choice.name, expected, "{version:?} grpc {is_grpc}");
            assert_eq!(choice.labels.route.as_deref(), Some(expected));
            assert_eq!(choice.labels.dst, dst);
        }
        let opaque = super::tests::routes(Protocol::Opaque);
        assert!(opaque.route(&view, Version::HTTP_11, false, &dst).is_none());
        let paths = backend_paths(&routes.policy);
        assert_eq!(paths, vec!["a:80".to_string(), "b:80".to_string()]);
    }

    #[test]
    fn forward_and_unknown_backends_are_unusable() {
        let random = Random::with_seed(7);
        let forward = BackendTarget::Forward("10.0.0.1:80".parse().unwrap());
        let table = [forward, BackendTarget::Balancer("not-built:80".to_string())];
        for target in table {
            let routes = routes(Protocol::Http1(vec![route("r", "/", target.clone())]));
            let Protocol::Http1(list) = &routes.policy.protocol else {
                unreachable!()
            };
            let rule = &list[0].rules[0].data;
            assert!(routes.backend(rule, &random).is_none(), "{target:?}");
        }
        let empty = RouteRule::default();
        let routes = routes(Protocol::Http1(vec![]));
        assert!(routes.backend(&empty, &random).is_none(), "no backends");
    }
}

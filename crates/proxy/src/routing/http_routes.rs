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
            let weights: Vec<u32> = backends.iter().map(|backend| backend.weight).collect();
            let uniform = (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            super::policy::select_backend(&weights, uniform)?
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

//! Table tests for the protobuf conversions.

use super::*;
use linkerd2_proxy_api::destination::request_match::Seq as RequestSeq;
use linkerd2_proxy_api::destination::response_match::Seq as ResponseSeq;
use linkerd2_proxy_api::http_types::HttpMethod;
use linkerd2_proxy_api::net::IpAddress;

fn tcp(address: &str) -> TcpAddress {
    TcpAddress::from(address.parse::<SocketAddr>().unwrap())
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

fn path(regex: &str) -> proto::RequestMatch {
    proto::RequestMatch {
        r#match: Some(ProtoRequestMatch::Path(proto::PathMatch {
            regex: regex.to_string(),
        })),
    }
}

fn method(method: http::Method) -> proto::RequestMatch {
    proto::RequestMatch {
        r#match: Some(ProtoRequestMatch::Method(HttpMethod::from(method))),
    }
}

fn status(min: u32, max: u32) -> proto::ResponseMatch {
    proto::ResponseMatch {
        r#match: Some(ProtoResponseMatch::Status(proto::HttpStatusRange {
            min,
            max,
        })),
    }
}

fn weighted(address: &str, own: &[(&str, &str)]) -> proto::WeightedAddr {
    proto::WeightedAddr {
        addr: Some(tcp(address)),
        weight: 10000,
        metric_labels: labels(own),
        ..Default::default()
    }
}

#[test]
fn request_matches_follow_linkerd() {
    let get_items = proto::RequestMatch {
        r#match: Some(ProtoRequestMatch::All(RequestSeq {
            matches: vec![method(http::Method::GET), path("/api/items")],
        })),
    };
    let not_admin = proto::RequestMatch {
        r#match: Some(ProtoRequestMatch::Not(Box::new(path("/admin/.*")))),
    };
    let any = proto::RequestMatch {
        r#match: Some(ProtoRequestMatch::Any(RequestSeq {
            matches: vec![path("^/a$"), path("/b")],
        })),
    };
    // (condition, method, path, matches)
    let table = [
        (get_items.clone(), "GET", "/api/items", true),
        (get_items.clone(), "POST", "/api/items", false),
        // Anchored: a prefix or a longer path does not match.
        (get_items.clone(), "GET", "/api/items/1", false),
        (get_items, "GET", "/x/api/items", false),
        (not_admin.clone(), "GET", "/admin/users", false),
        (not_admin, "GET", "/users", true),
        (any.clone(), "PUT", "/a", true),
        (any.clone(), "PUT", "/b", true),
        (any, "PUT", "/c", false),
    ];
    for (condition, request_method, request_path, expected) in table {
        let converted = RequestMatch::try_from(condition).unwrap();
        let request_method = http::Method::from_bytes(request_method.as_bytes()).unwrap();
        assert_eq!(
            converted.matches(&request_method, request_path),
            expected,
            "{request_method} {request_path} against {converted:?}"
        );
    }
}

#[test]
fn bad_request_matches_are_errors() {
    let table = [
        (
            proto::RequestMatch { r#match: None },
            ConvertError::MissingCondition("request match"),
        ),
        (
            path("(unclosed"),
            ConvertError::InvalidRegex {
                regex: "(unclosed".to_string(),
                reason: String::new(),
            },
        ),
        (
            proto::RequestMatch {
                r#match: Some(ProtoRequestMatch::Method(HttpMethod { r#type: None })),
            },
            ConvertError::InvalidMethod(String::new()),
        ),
    ];
    for (condition, expected) in table {
        let error = RequestMatch::try_from(condition).unwrap_err();
        assert_eq!(
            std::mem::discriminant(&error),
            std::mem::discriminant(&expected),
            "{error}"
        );
    }
}

#[test]
fn response_matches_and_status_ranges() {
    let server_errors_but_503 = proto::ResponseMatch {
        r#match: Some(ProtoResponseMatch::All(ResponseSeq {
            matches: vec![
                status(500, 599),
                proto::ResponseMatch {
                    r#match: Some(ProtoResponseMatch::Not(Box::new(status(503, 503)))),
                },
            ],
        })),
    };
    let converted = ResponseMatch::try_from(server_errors_but_503).unwrap();
    for (code, expected) in [(200, false), (500, true), (503, false), (599, true)] {
        assert_eq!(converted.matches(code), expected, "status {code}");
    }
    for (min, max) in [(0, 200), (500, 400), (100, 600), (70000, 70000)] {
        assert_eq!(
            ResponseMatch::try_from(status(min, max)),
            Err(ConvertError::InvalidStatusRange { min, max })
        );
    }
}

#[test]
fn routes_take_name_classes_retryability_and_timeout() {
    let route = proto::Route {
        condition: Some(path("/api/.*")),
        response_classes: vec![proto::ResponseClass {
            condition: Some(status(500, 599)),
            is_failure: true,
        }],
        metrics_labels: labels(&[("route", "GET /api")]),
        is_retryable: true,
        timeout: Some(prost_types::Duration {
            seconds: 0,
            nanos: 100_000_000,
        }),
    };
    let converted = Route::try_from(route.clone()).unwrap();
    assert_eq!(converted.name, "GET /api");
    assert!(converted.is_retryable);
    assert_eq!(converted.timeout, Some(Duration::from_millis(100)));
    assert_eq!(
        converted.response_classes,
        vec![ResponseClass {
            condition: ResponseMatch::Status { min: 500, max: 599 },
            is_failure: true,
        }]
    );

    let table = [
        (
            proto::Route {
                condition: None,
                ..route.clone()
            },
            ConvertError::MissingCondition("route"),
        ),
        (
            proto::Route {
                timeout: Some(prost_types::Duration {
                    seconds: -1,
                    nanos: 0,
                }),
                ..route.clone()
            },
            ConvertError::InvalidDuration("route timeout"),
        ),
        (
            proto::Route {
                response_classes: vec![proto::ResponseClass {
                    condition: None,
                    is_failure: true,
                }],
                ..route
            },
            ConvertError::MissingCondition("response class"),
        ),
    ];
    for (route, expected) in table {
        assert_eq!(Route::try_from(route).unwrap_err(), expected);
    }
}

#[test]
fn retry_budgets_outside_linkerd_limits_are_rejected() {
    let budget = |ratio: f32, minimum: u32, ttl_seconds: i64| proto::RetryBudget {
        retry_ratio: ratio,
        min_retries_per_second: minimum,
        ttl: Some(prost_types::Duration {
            seconds: ttl_seconds,
            nanos: 0,
        }),
    };
    // (budget, valid)
    let table = [
        (budget(0.2, 10, 10), true),
        (budget(0.0, 0, 1), true),
        (budget(1000.0, 10, 60), true),
        (budget(0.2, 10, 0), false),
        (budget(0.2, 10, 61), false),
        (budget(-0.1, 10, 10), false),
        (budget(1000.5, 10, 10), false),
        (budget(0.2, u32::MAX, 10), false),
        (
            proto::RetryBudget {
                ttl: None,
                ..budget(0.2, 10, 10)
            },
            false,
        ),
    ];
    for (proto_budget, valid) in table {
        let converted = RetryBudget::try_from(proto_budget);
        assert_eq!(converted.is_ok(), valid, "{proto_budget:?}");
    }
}

#[test]
fn profiles_keep_valid_parts_and_drop_invalid_ones() {
    let good_route = proto::Route {
        condition: Some(path("/ok")),
        ..Default::default()
    };
    let bad_route = proto::Route {
        condition: Some(path("(")),
        ..Default::default()
    };
    let profile = proto::DestinationProfile {
        fully_qualified_name: "web.shop.svc.cluster.local.".to_string(),
        opaque_protocol: true,
        routes: vec![bad_route, good_route],
        retry_budget: Some(proto::RetryBudget {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: None,
        }),
        dst_overrides: vec![
            proto::WeightedDst {
                authority: "web-v1.shop.svc.cluster.local:80".to_string(),
                weight: 9000,
                ..Default::default()
            },
            proto::WeightedDst {
                authority: "web-v2.shop.svc.cluster.local:80".to_string(),
                weight: 0,
                ..Default::default()
            },
        ],
        endpoint: Some(weighted("10.0.0.1:8080", &[("pod", "web-1")])),
        ..Default::default()
    };
    let converted = Profile::try_from(profile).unwrap();
    assert_eq!(
        converted.fully_qualified_name.as_deref(),
        Some("web.shop.svc.cluster.local")
    );
    assert!(converted.opaque_protocol);
    assert_eq!(converted.routes.len(), 1, "the invalid route is dropped");
    assert!(converted.retry_budget.is_none(), "a budget without ttl");
    assert_eq!(
        converted.dst_overrides,
        vec![DstOverride {
            authority: "web-v1.shop.svc.cluster.local:80".to_string(),
            weight: 9000,
        }]
    );
    let endpoint = converted.endpoint.unwrap();
    assert_eq!(endpoint.addr, "10.0.0.1:8080".parse().unwrap());
    assert_eq!(endpoint.labels.get("pod"), Some("web-1"));

    let unnamed = Profile::try_from(proto::DestinationProfile::default()).unwrap();
    assert!(unnamed.fully_qualified_name.is_none());
    assert!(unnamed.routes.is_empty() && unnamed.endpoint.is_none());
}

#[test]
fn updates_convert_and_merge_labels() {
    let add = proto::Update {
        update: Some(ProtoUpdate::Add(proto::WeightedAddrSet {
            addrs: vec![
                weighted("10.0.0.1:80", &[("pod", "web-1"), ("namespace", "other")]),
                weighted("[fd00::2]:80", &[]),
            ],
            metric_labels: labels(&[("service", "web"), ("namespace", "shop")]),
        })),
    };
    let Update::Add(endpoints) = Update::try_from(add).unwrap() else {
        panic!("an add");
    };
    assert_eq!(endpoints.len(), 2);
    let first: Vec<_> = endpoints[0].labels.iter().collect();
    assert_eq!(
        first,
        vec![("namespace", "other"), ("pod", "web-1"), ("service", "web")],
        "the address's labels win over the set's"
    );
    assert_eq!(endpoints[1].addr, "[fd00::2]:80".parse().unwrap());
    assert_eq!(endpoints[1].labels.get("namespace"), Some("shop"));

    let table = [
        (
            proto::Update {
                update: Some(ProtoUpdate::Remove(proto::AddrSet {
                    addrs: vec![tcp("10.0.0.1:80")],
                })),
            },
            Ok(Update::Remove(vec!["10.0.0.1:80".parse().unwrap()])),
        ),
        (
            proto::Update {
                update: Some(ProtoUpdate::NoEndpoints(proto::NoEndpoints {
                    exists: true,
                })),
            },
            Ok(Update::NoEndpoints { exists: true }),
        ),
        (
            proto::Update { update: None },
            Err(ConvertError::MissingUpdate),
        ),
        (
            proto::Update {
                update: Some(ProtoUpdate::Add(proto::WeightedAddrSet {
                    addrs: vec![proto::WeightedAddr::default()],
                    metric_labels: HashMap::new(),
                })),
            },
            Err(ConvertError::MissingAddress),
        ),
        (
            proto::Update {
                update: Some(ProtoUpdate::Remove(proto::AddrSet {
                    addrs: vec![TcpAddress {
                        ip: Some(IpAddress { ip: None }),
                        port: 80,
                    }],
                })),
            },
            Err(ConvertError::InvalidAddress(
                "the ip has neither v4 nor v6".to_string(),
            )),
        ),
        (
            proto::Update {
                update: Some(ProtoUpdate::Remove(proto::AddrSet {
                    addrs: vec![TcpAddress {
                        port: 70000,
                        ..tcp("10.0.0.1:80")
                    }],
                })),
            },
            Err(ConvertError::InvalidAddress("port 70000".to_string())),
        ),
    ];
    for (update, expected) in table {
        assert_eq!(Update::try_from(update), expected);
    }
}

fn resource(group: &str, kind: &str) -> meta::Metadata {
    meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: group.to_string(),
            kind: kind.to_string(),
            name: "web-1".to_string(),
            namespace: "shop".to_string(),
            ..Default::default()
        })),
    }
}

#[test]
fn only_a_weft_workload_reference_marks_a_weft_proxy() {
    let table = [
        (Some(resource("weft.dev", "Workload")), true),
        (Some(resource("", "Pod")), false),
        (Some(resource("weft.dev", "Service")), false),
        (Some(resource("workload.linkerd.io", "Workload")), false),
        (
            Some(meta::Metadata {
                kind: Some(meta::metadata::Kind::Default("weft.dev".to_string())),
            }),
            false,
        ),
        (Some(meta::Metadata { kind: None }), false),
        (None, false),
    ];
    for (reference, expected) in table {
        let wire = proto::WeightedAddr {
            resource_ref: reference.clone(),
            ..weighted("10.0.0.1:80", &[])
        };
        let update = proto::Update {
            update: Some(ProtoUpdate::Add(proto::WeightedAddrSet {
                addrs: vec![wire],
                metric_labels: HashMap::new(),
            })),
        };
        let Ok(Update::Add(endpoints)) = Update::try_from(update) else {
            panic!("an add");
        };
        assert_eq!(endpoints[0].weft_proxy, expected, "{reference:?}");
        // The hint is no metric label.
        assert!(endpoints[0].labels.iter().next().is_none(), "{reference:?}");
    }
}

//! Translation tables: request paths, endpoint updates, profiles.

use linkerd2_proxy_api::destination::request_match::Match as RequestMatcher;
use linkerd2_proxy_api::destination::response_match::Match as ResponseMatcher;
use linkerd2_proxy_api::destination::update::Update as UpdateKind;

use super::*;
use crate::catalog::{Catalog, ServicePort};
use crate::mesh_file::parse_mesh;

const DOMAIN: &str = "cluster.local";

fn service(name: &str, port: u16) -> Result<Target, TranslateError> {
    Ok(Target::Service {
        service: ServiceName::new("shop", name),
        port,
    })
}

fn instance(hostname: &str, name: &str, port: u16) -> Result<Target, TranslateError> {
    Ok(Target::Instance {
        hostname: hostname.to_string(),
        service: ServiceName::new("shop", name),
        port,
    })
}

fn address(text: &str) -> Result<Target, TranslateError> {
    Ok(Target::Address(text.parse().unwrap()))
}

fn invalid(path: &str) -> Result<Target, TranslateError> {
    Err(TranslateError::InvalidAuthority(path.to_string()))
}

#[test]
fn parses_paths_as_linkerd() {
    let cases: Vec<(&str, Result<Target, TranslateError>)> = vec![
        ("web.shop.svc.cluster.local:8080", service("web", 8080)),
        ("web.shop.svc.cluster.local.:8080", service("web", 8080)),
        ("web.shop.svc.cluster.local", service("web", 80)),
        ("web.shop.svc.cluster.local.", service("web", 80)),
        ("WEB.shop.svc.cluster.local:80", service("web", 80)),
        ("10.96.0.10:80", address("10.96.0.10:80")),
        ("10.96.0.10", address("10.96.0.10:80")),
        ("[fd00::1]:8080", address("[fd00::1]:8080")),
        ("fd00::1", address("[fd00::1]:80")),
        (
            "web.shop.svc.cluster.local:0",
            invalid("web.shop.svc.cluster.local:0"),
        ),
        (
            "web.shop.svc.cluster.local:65536",
            invalid("web.shop.svc.cluster.local:65536"),
        ),
        (
            "web.shop.svc.cluster.local:http",
            invalid("web.shop.svc.cluster.local:http"),
        ),
        ("10.0.0.1:0", invalid("10.0.0.1:0")),
        ("web:80", invalid("web:80")),
        ("web.shop:80", invalid("web.shop:80")),
        ("web.shop.svc:80", invalid("web.shop.svc:80")),
        (
            "web.shop.svc.example.org:80",
            invalid("web.shop.svc.example.org:80"),
        ),
        ("a.web.shop.svc.cluster.local:80", instance("a", "web", 80)),
        (
            "web-0.web.shop.svc.cluster.local.",
            instance("web-0", "web", 80),
        ),
        (
            "WEB-1.web.shop.svc.cluster.local:8080",
            instance("web-1", "web", 8080),
        ),
        (
            "a.b.web.shop.svc.cluster.local:80",
            invalid("a.b.web.shop.svc.cluster.local:80"),
        ),
        (
            "-a.web.shop.svc.cluster.local:80",
            invalid("-a.web.shop.svc.cluster.local:80"),
        ),
        (
            "a_b.web.shop.svc.cluster.local:80",
            invalid("a_b.web.shop.svc.cluster.local:80"),
        ),
        (
            "a.web.shop.svc.example.org:80",
            invalid("a.web.shop.svc.example.org:80"),
        ),
        ("", invalid("")),
        (":80", invalid(":80")),
    ];
    for (path, expected) in cases {
        assert_eq!(parse_target(path, DOMAIN), expected, "{path:?}");
    }
}

fn endpoint(text: &str, workload: &str) -> Endpoint {
    Endpoint {
        address: text.parse().unwrap(),
        workload: workload.to_string(),
        namespace: "shop".to_string(),
        labels: Default::default(),
        service_account: "web".to_string(),
        proxy: None,
        owner: None,
        zone: None,
        for_zones: Vec::new(),
    }
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}

#[test]
fn translates_endpoint_updates() {
    let set_labels = set_labels(&ServiceName::new("shop", "web"));
    assert_eq!(
        set_labels,
        labels(&[("service", "web"), ("namespace", "shop")])
    );
    let web_1 = endpoint("10.0.0.1:8080", "web-1");
    let expected_addr = proto::WeightedAddr {
        addr: Some(tcp_address(web_1.address)),
        weight: 10_000,
        metric_labels: labels(&[
            ("workload", "web-1"),
            ("serviceaccount", "web"),
            ("namespace", "shop"),
        ]),
        tls_identity: None,
        protocol_hint: None,
        ..Default::default()
    };
    let cases: Vec<(&str, EndpointUpdate, UpdateKind)> = vec![
        (
            "add",
            EndpointUpdate::Add(vec![web_1.clone()]),
            UpdateKind::Add(proto::WeightedAddrSet {
                addrs: vec![expected_addr],
                metric_labels: set_labels.clone(),
            }),
        ),
        (
            "remove",
            EndpointUpdate::Remove(vec![web_1.address]),
            UpdateKind::Remove(proto::AddrSet {
                addrs: vec![tcp_address(web_1.address)],
            }),
        ),
        (
            "no endpoints, service exists",
            EndpointUpdate::NoEndpoints { exists: true },
            UpdateKind::NoEndpoints(proto::NoEndpoints { exists: true }),
        ),
        (
            "no endpoints, unknown service",
            EndpointUpdate::NoEndpoints { exists: false },
            UpdateKind::NoEndpoints(proto::NoEndpoints { exists: false }),
        ),
    ];
    for (name, input, expected) in cases {
        assert_eq!(
            update(input, &set_labels, None).update,
            Some(expected),
            "{name}"
        );
    }
}

#[test]
fn translates_addresses() {
    let cases: &[(&str, IpAddress, u32)] = &[
        (
            "10.0.0.1:8080",
            IpAddress::from(IpAddr::from([10, 0, 0, 1])),
            8080,
        ),
        (
            "[fd00::1]:80",
            IpAddress::from("fd00::1".parse::<IpAddr>().unwrap()),
            80,
        ),
    ];
    for (text, ip, port) in cases {
        let translated = tcp_address(text.parse().unwrap());
        assert_eq!(translated.ip.as_ref(), Some(ip), "{text}");
        assert_eq!(translated.port, *port, "{text}");
    }
}

fn example_catalog() -> Catalog {
    let objects = parse_mesh(include_str!("../../../examples/mesh.yaml")).expect("example parses");
    let mut catalog = Catalog::default();
    catalog.reset(objects).expect("example loads");
    catalog
}

#[test]
fn translates_the_example_profile() {
    let catalog = example_catalog();
    let answer = catalog
        .profile(&ServicePort::new("shop", "web", 80))
        .expect("web exists");
    let wire = profile(&answer);
    assert_eq!(wire.fully_qualified_name, "web.shop.svc.cluster.local");
    assert!(!wire.opaque_protocol);
    assert_eq!(wire.endpoint, None);

    let budget = wire.retry_budget.expect("budget");
    assert!((budget.retry_ratio - 0.2).abs() < 1e-6);
    assert_eq!(budget.min_retries_per_second, 10);
    assert_eq!(budget.ttl.map(|ttl| ttl.seconds), Some(10));

    let overrides: Vec<(&str, u32)> = wire
        .dst_overrides
        .iter()
        .map(|destination| (destination.authority.as_str(), destination.weight))
        .collect();
    assert_eq!(
        overrides,
        vec![
            ("web-v1.shop.svc.cluster.local.:80", 9000),
            ("web-v2.shop.svc.cluster.local.:80", 1000),
        ]
    );

    assert_eq!(wire.routes.len(), 2);
    let items = &wire.routes[0];
    assert_eq!(items.metrics_labels, labels(&[("route", "GET /api/items")]));
    assert!(items.is_retryable);
    assert_eq!(
        items.timeout,
        Some(prost_types::Duration {
            seconds: 0,
            nanos: 300_000_000
        })
    );
    // Two fields (method, pathRegex) → wrapped in `all`.
    let Some(RequestMatcher::All(all)) = items.condition.as_ref().and_then(|c| c.r#match.clone())
    else {
        panic!("expected all: {:?}", items.condition);
    };
    let matchers: Vec<RequestMatcher> = all
        .matches
        .into_iter()
        .filter_map(|matcher| matcher.r#match)
        .collect();
    assert_eq!(
        matchers,
        vec![
            RequestMatcher::Method(HttpMethod {
                r#type: Some(http_method::Type::Registered(
                    http_method::Registered::Get as i32
                )),
            }),
            RequestMatcher::Path(proto::PathMatch {
                regex: "/api/items(/[^/]+)?".to_string()
            }),
        ]
    );
    assert_eq!(items.response_classes.len(), 1);
    assert!(items.response_classes[0].is_failure);
    assert_eq!(
        items.response_classes[0]
            .condition
            .as_ref()
            .and_then(|c| c.r#match.clone()),
        Some(ResponseMatcher::Status(proto::HttpStatusRange {
            min: 500,
            max: 599
        }))
    );

    let orders = &wire.routes[1];
    assert!(!orders.is_retryable);
    assert_eq!(
        orders.timeout.as_ref().map(|timeout| timeout.seconds),
        Some(2)
    );
    // One field (`all`) → used directly.
    assert!(matches!(
        orders.condition.as_ref().and_then(|c| c.r#match.as_ref()),
        Some(RequestMatcher::All(sequence)) if sequence.matches.len() == 2
    ));
}

#[test]
fn translates_single_field_conditions_directly() {
    let condition = RequestMatch::path("/health").unwrap();
    assert_eq!(
        request_match(&condition).r#match,
        Some(RequestMatcher::Path(proto::PathMatch {
            regex: "/health".to_string()
        }))
    );
    let condition = ResponseMatch::status(500, 504).unwrap();
    assert_eq!(
        response_match(&condition).r#match,
        Some(ResponseMatcher::Status(proto::HttpStatusRange {
            min: 500,
            max: 504
        }))
    );
    let custom = http_method("PURGE");
    assert_eq!(
        custom.r#type,
        Some(http_method::Type::Unregistered("PURGE".to_string()))
    );
}

#[test]
fn translates_workload_and_default_profiles() {
    let catalog = example_catalog();
    let web_1 = catalog
        .workload_at("127.0.0.1:8081".parse().unwrap())
        .expect("web-1 at its address");
    let wire = endpoint_profile(&web_1, None);
    assert_eq!(wire.fully_qualified_name, "");
    assert!(wire.routes.is_empty() && wire.dst_overrides.is_empty());
    assert!(wire.retry_budget.is_some());
    let endpoint = wire.endpoint.expect("endpoint set");
    assert_eq!(endpoint.addr, Some(tcp_address(web_1.address)));
    assert_eq!(endpoint.weight, 10_000);
    assert_eq!(
        endpoint.metric_labels.get("workload").map(String::as_str),
        Some("web-1")
    );
    assert_eq!(
        endpoint.metric_labels.get("namespace").map(String::as_str),
        Some("shop")
    );

    let unknown = default_profile();
    assert_eq!(unknown.endpoint, None);
    assert!(unknown.dst_overrides.is_empty());
    assert!(unknown.retry_budget.is_some());
}

#[test]
fn opaque_ports_mark_the_profile_opaque() {
    let annotated = include_str!("../../../examples/mesh.yaml").replace(
        "  name: db\n  namespace: shop\n",
        "  name: db\n  namespace: shop\n  annotations: {config.linkerd.io/opaque-ports: \"5432\"}\n",
    );
    let mut catalog = Catalog::default();
    catalog
        .reset(parse_mesh(&annotated).expect("annotated example parses"))
        .unwrap();
    let cases: &[(&str, u16, bool)] = &[("db", 5432, true), ("db", 80, false), ("web", 80, false)];
    for (name, port, expected) in cases {
        let answer = catalog
            .profile(&ServicePort::new("shop", name, *port))
            .expect("service exists");
        assert_eq!(profile(&answer).opaque_protocol, *expected, "{name}:{port}");
    }
}

/// (endpoint, mesh hints, expected identity, inbound port, H2 hint)
type HintCase<'a> = (
    &'a Endpoint,
    Option<&'a MeshHints>,
    Option<&'a str>,
    Option<u32>,
    bool,
);

#[test]
fn meshed_endpoints_carry_identity_and_hints_when_identities_are_on() {
    use weft_core::workload::ProxyEndpoint;
    let domain = crate::identity::IdentityDomain::default();
    let mut meshed = endpoint("10.0.0.1:8080", "web-1");
    meshed.proxy = Some(ProxyEndpoint {
        address: None,
        inbound_port: 4143,
        implementation: ProxyImplementation::Weft,
    });
    let plain = endpoint("10.0.0.2:8080", "web-2");
    let hints = |h2_upgrade| MeshHints {
        domain: domain.clone(),
        h2_upgrade,
    };
    let (upgrading, not_upgrading) = (hints(true), hints(false));
    let web = Some("web.shop.serviceaccount.identity.weft.cluster.local");
    let table: [HintCase<'_>; 6] = [
        (&meshed, Some(&upgrading), web, Some(4143), true),
        (&meshed, Some(&not_upgrading), web, Some(4143), false),
        (&meshed, None, None, None, false),
        (&plain, Some(&upgrading), None, None, false),
        (&plain, Some(&not_upgrading), None, None, false),
        (&plain, None, None, None, false),
    ];
    for (endpoint, mesh, identity, port, h2) in table {
        let wire = weighted_addr(endpoint, mesh);
        let name = wire
            .tls_identity
            .as_ref()
            .and_then(|tls| match &tls.strategy {
                Some(proto::tls_identity::Strategy::DnsLikeIdentity(dns)) => {
                    Some(dns.name.as_str())
                }
                _ => None,
            });
        let case = format!("{} {mesh:?}", endpoint.workload);
        assert_eq!(name, identity, "{case}");
        let hint = wire.protocol_hint.as_ref();
        assert_eq!(
            hint.and_then(|hint| hint.opaque_transport)
                .map(|transport| transport.inbound_port),
            port,
            "{case}"
        );
        assert_eq!(
            hint.is_some_and(|hint| matches!(
                hint.protocol,
                Some(proto::protocol_hint::Protocol::H2(_))
            )),
            h2,
            "{case}"
        );
    }
}

#[test]
fn only_endpoints_behind_a_weft_proxy_carry_the_weft_hint() {
    use weft_core::workload::ProxyEndpoint;
    let domain = crate::identity::IdentityDomain::default();
    let hints = MeshHints {
        domain,
        h2_upgrade: true,
    };
    let behind = |implementation| {
        let mut endpoint = endpoint("10.0.0.1:8080", "web-1");
        endpoint.proxy = Some(ProxyEndpoint {
            address: None,
            inbound_port: 4143,
            implementation,
        });
        endpoint
    };
    let weft = behind(ProxyImplementation::Weft);
    let linkerd = behind(ProxyImplementation::Linkerd2Proxy);
    let plain = endpoint("10.0.0.2:8080", "web-2");
    let weft_ref = Some(meta::Metadata {
        kind: Some(meta::metadata::Kind::Resource(meta::Resource {
            group: "weft.dev".to_string(),
            kind: "Workload".to_string(),
            name: "web-1".to_string(),
            namespace: "shop".to_string(),
            ..Default::default()
        })),
    });
    // (endpoint, mesh hints, resource_ref)
    let table: [(&Endpoint, Option<&MeshHints>, Option<meta::Metadata>); 5] = [
        (&weft, Some(&hints), weft_ref),
        (&weft, None, None),
        (&linkerd, Some(&hints), None),
        (&linkerd, None, None),
        (&plain, Some(&hints), None),
    ];
    for (endpoint, mesh, expected) in table {
        let wire = weighted_addr(endpoint, mesh);
        let case = format!("{:?} {mesh:?}", endpoint.proxy);
        assert_eq!(wire.resource_ref, expected, "{case}");
        // Whatever the proxy, a linkerd2-proxy sees the same labels, identity
        // and protocol hint.
        let without_hint = proto::WeightedAddr {
            resource_ref: None,
            ..wire.clone()
        };
        let as_linkerd = {
            let mut other = endpoint.clone();
            if let Some(proxy) = other.proxy.as_mut() {
                proxy.implementation = ProxyImplementation::Linkerd2Proxy;
            }
            weighted_addr(&other, mesh)
        };
        assert_eq!(without_hint, as_linkerd, "{case}");
    }
}

#[test]
fn client_namespaces_from_context_tokens() {
    let cases: &[(&str, Option<&str>)] = &[
        (
            r#"{"ns":"shop","nodeName":"node-1","pod":"web-1"}"#,
            Some("shop"),
        ),
        (r#"{"ns":"shop","nodeName":"node-1"}"#, Some("shop")),
        (r#" {"nodeName":"node-1","ns":"shop"} "#, Some("shop")),
        ("ns:shop", Some("shop")),
        ("ns: shop ", Some("shop")),
        ("", None),
        ("ns:", None),
        (r#"{"ns":""}"#, None),
        (r#"{"nodeName":"node-1"}"#, None),
        (r#"{"ns":42}"#, None),
        (r#"{"ns":"shop""#, None),
        ("shop", None),
        ("namespace:shop", None),
    ];
    for (token, expected) in cases {
        assert_eq!(client_namespace(token).as_deref(), *expected, "{token:?}");
    }
}

#[test]
fn pods_are_labelled_with_their_owner_and_zone_as_linkerd() {
    use weft_core::workload::WorkloadOwner;
    let owned = |kind: &str, name: &str, zone: Option<&str>| {
        let mut endpoint = endpoint("10.1.0.1:8080", "web-5d9c7-x2x4q");
        endpoint.owner = Some(WorkloadOwner {
            kind: kind.to_string(),
            name: name.to_string(),
        });
        endpoint.in_zone(zone.map(str::to_string), Vec::new())
    };
    let base = [
        ("workload", "web-5d9c7-x2x4q"),
        ("serviceaccount", "web"),
        ("namespace", "shop"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut pairs = base.to_vec();
        pairs.extend_from_slice(extra);
        labels(&pairs)
    };
    let cases: Vec<(&str, Endpoint, HashMap<String, String>)> = vec![
        (
            "host workload",
            endpoint("10.1.0.1:8080", "web-5d9c7-x2x4q"),
            with(&[]),
        ),
        (
            "deployment",
            owned("Deployment", "web", None),
            with(&[("pod", "web-5d9c7-x2x4q"), ("deployment", "web")]),
        ),
        (
            "statefulset in a zone",
            owned("StatefulSet", "db", Some("zone-a")),
            with(&[
                ("pod", "web-5d9c7-x2x4q"),
                ("statefulset", "db"),
                ("zone", "zone-a"),
            ]),
        ),
        (
            "daemonset",
            owned("DaemonSet", "agent", None),
            with(&[("pod", "web-5d9c7-x2x4q"), ("daemonset", "agent")]),
        ),
        (
            "cronjob",
            owned("CronJob", "nightly", None),
            with(&[("pod", "web-5d9c7-x2x4q"), ("cronjob", "nightly")]),
        ),
        (
            "job",
            owned("Job", "once", None),
            with(&[("pod", "web-5d9c7-x2x4q"), ("job", "once")]),
        ),
        (
            "replicaset",
            owned("ReplicaSet", "web-5d9c7", None),
            with(&[("pod", "web-5d9c7-x2x4q"), ("replicaset", "web-5d9c7")]),
        ),
        (
            "a kind clashing with a label is left out",
            owned("Namespace", "x", None),
            with(&[("pod", "web-5d9c7-x2x4q")]),
        ),
    ];
    for (name, endpoint, expected) in cases {
        assert_eq!(endpoint_labels(&endpoint), expected, "{name}");
        assert_eq!(
            weighted_addr(&endpoint, None).metric_labels,
            expected,
            "{name}"
        );
    }
}

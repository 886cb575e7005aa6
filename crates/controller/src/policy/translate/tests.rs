//! Table tests of the policy translations.

use std::collections::HashMap;
use std::time::Duration;

use linkerd2_proxy_api::http_route as http_proto;
use linkerd2_proxy_api::inbound as proto;
use linkerd2_proxy_api::meta::metadata;
use weft_core::object::MeshObject;
use weft_core::policy::DefaultPolicy;

use super::*;
use crate::catalog::{Catalog, PortTarget};
use crate::mesh_file::parse_mesh;

const MESH: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-1, namespace: shop, labels: {app: web}, annotations: {config.linkerd.io/opaque-ports: "5432"}}
spec:
  addresses: [127.0.0.1]
  ports: [{name: http, port: 8080}, {name: grpc, port: 9090}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-http, namespace: shop}
spec: {podSelector: {matchLabels: {app: web}}, port: http, proxyProtocol: HTTP/1}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: web-grpc, namespace: shop}
spec: {podSelector: {matchLabels: {app: web}}, port: grpc, proxyProtocol: gRPC}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: web-clients, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: web-http}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: clients}
    - {group: policy.linkerd.io, kind: NetworkAuthentication, name: office}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: clients, namespace: shop}
spec: {identities: ["client.shop.serviceaccount.identity.weft.cluster.local", "*.batch.serviceaccount.identity.weft.cluster.local"]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: office, namespace: shop}
spec: {networks: [{cidr: 192.168.0.0/16, except: [192.168.9.0/24]}]}
"#;

fn catalog(extra: &str) -> Catalog {
    let mut catalog = Catalog::default();
    let objects: Vec<MeshObject> = parse_mesh(&format!("{MESH}{extra}")).unwrap();
    catalog.reset(objects).unwrap();
    catalog
}

fn answer(catalog: &Catalog, workload: &str, port: u16) -> proto::Server {
    server(&catalog.inbound_policy(&PortTarget {
        namespace: "shop".into(),
        workload: workload.into(),
        port,
    }))
}

fn labels(group: &str, kind: &str, name: &str) -> HashMap<String, String> {
    resource_labels(group, kind, name)
}

fn networks(server: &proto::Server) -> Vec<String> {
    server.authorizations[0]
        .networks
        .iter()
        .map(|network| {
            let net = network.net.unwrap();
            let ip: std::net::IpAddr = net.ip.unwrap().try_into().unwrap();
            let except: Vec<String> = network
                .except
                .iter()
                .map(|except| {
                    let ip: std::net::IpAddr = except.ip.unwrap().try_into().unwrap();
                    format!("{ip}/{}", except.prefix_len)
                })
                .collect();
            format!(
                "{ip}/{}{}",
                net.prefix_len,
                if except.is_empty() {
                    String::new()
                } else {
                    format!(" except {}", except.join(","))
                }
            )
        })
        .collect()
}

#[test]
fn workload_strings() {
    type Expected = Result<(&'static str, &'static str, u16), ()>;
    let cases: &[(&str, u32, Expected)] = &[
        (
            r#"{"ns":"shop","pod":"web-1"}"#,
            8080,
            Ok(("shop", "web-1", 8080)),
        ),
        (
            r#"{"pod":"web-1","ns":"shop"}"#,
            1,
            Ok(("shop", "web-1", 1)),
        ),
        (
            r#"{"ns":"shop","external_workload":"vm-1"}"#,
            80,
            Ok(("shop", "vm-1", 80)),
        ),
        ("shop:web-1", 8080, Ok(("shop", "web-1", 8080))),
        (":web-1", 8080, Err(())),
        ("shop:", 8080, Err(())),
        (
            r#"{"ns":"shop","pod":"a","external_workload":"b"}"#,
            8080,
            Err(()),
        ),
        (r#"{"ns":"shop"}"#, 8080, Err(())),
        (r#"{"ns":"","pod":"web"}"#, 8080, Err(())),
        (r#"{"ns":"shop","pod":"web","x":1}"#, 8080, Err(())),
        ("shop/web", 8080, Err(())),
        (r#"{"ns":"shop","pod":"web"}"#, 0, Err(())),
        (r#"{"ns":"shop","pod":"web"}"#, 70_000, Err(())),
    ];
    for (workload, port, expected) in cases {
        let parsed = port_target(workload, *port)
            .map(|target| (target.namespace, target.workload, target.port))
            .map_err(drop);
        let expected =
            expected.map(|(namespace, name, port)| (namespace.to_string(), name.to_string(), port));
        assert_eq!(parsed, expected, "{workload} {port}");
    }
}

#[test]
fn servers_and_defaults_as_linkerd_sends_them() {
    let catalog = catalog("");
    use proto::proxy_protocol::Kind;
    // (port, labels, protocol name, authorizations)
    let http = answer(&catalog, "web-1", 8080);
    assert_eq!(
        http.labels,
        labels("policy.linkerd.io", "server", "web-http")
    );
    let Some(Kind::Http1(http1)) = http.protocol.clone().unwrap().kind else {
        panic!("{http:?}");
    };
    assert_eq!(http1.routes.len(), 1);
    assert_eq!(
        http1.routes[0].metadata.clone().unwrap().kind,
        Some(metadata::Kind::Default("default".into()))
    );
    assert_eq!(http.authorizations.len(), 1);
    let authz = &http.authorizations[0];
    assert_eq!(
        authz.labels,
        labels("policy.linkerd.io", "authorizationpolicy", "web-clients")
    );
    let Some(metadata::Kind::Resource(resource)) = authz.metadata.clone().unwrap().kind else {
        panic!("{authz:?}");
    };
    assert_eq!(
        (
            resource.group.as_str(),
            resource.kind.as_str(),
            resource.name.as_str()
        ),
        ("policy.linkerd.io", "authorizationpolicy", "web-clients")
    );
    assert_eq!(networks(&http), ["192.168.0.0/16 except 192.168.9.0/24"]);
    let Some(proto::authn::Permit::MeshTls(mesh)) = authz.authentication.clone().unwrap().permit
    else {
        panic!("{authz:?}");
    };
    let Some(proto::authn::permit_mesh_tls::Clients::Identities(identities)) = mesh.clients else {
        panic!();
    };
    assert_eq!(
        identities.identities[0].name,
        "client.shop.serviceaccount.identity.weft.cluster.local"
    );
    assert_eq!(
        identities.suffixes[0].parts,
        [
            "batch",
            "serviceaccount",
            "identity",
            "weft",
            "cluster",
            "local"
        ]
    );

    let grpc = answer(&catalog, "web-1", 9090);
    let Some(Kind::Grpc(grpc_protocol)) = grpc.protocol.clone().unwrap().kind else {
        panic!("{grpc:?}");
    };
    assert_eq!(grpc_protocol.routes.len(), 1);
    assert!(
        grpc.authorizations.is_empty(),
        "no policy, accessPolicy deny: nothing allowed"
    );

    let unselected = answer(&catalog, "web-1", 7000);
    assert_eq!(
        unselected.labels,
        labels("", "default", "all-unauthenticated")
    );
    let Some(Kind::Detect(detect)) = unselected.protocol.clone().unwrap().kind else {
        panic!("{unselected:?}");
    };
    assert_eq!(
        detect.timeout,
        prost_types::Duration::try_from(Duration::from_secs(10)).ok()
    );
    assert_eq!(detect.http_routes.len(), 1);
    assert_eq!(networks(&unselected), ["0.0.0.0/0", "::/0"]);
    assert_eq!(
        unselected.authorizations[0].metadata.clone().unwrap().kind,
        Some(metadata::Kind::Default("all-unauthenticated".into()))
    );
    assert_eq!(
        unselected.authorizations[0]
            .authentication
            .clone()
            .unwrap()
            .permit,
        Some(proto::authn::Permit::Unauthenticated(
            proto::authn::PermitUnauthenticated {}
        ))
    );

    let opaque = answer(&catalog, "web-1", 5432);
    assert!(matches!(
        opaque.protocol.unwrap().kind,
        Some(Kind::Opaque(_))
    ));

    let unknown = answer(&catalog, "nobody", 8080);
    assert_eq!(unknown.labels, labels("", "default", "all-unauthenticated"));
}

#[test]
fn each_default_policy() {
    for policy in weft_core::policy::default_policy::ALL_POLICIES {
        let mut catalog = catalog("");
        let mut settings = catalog.policy_settings().clone();
        settings.default_policy = policy;
        catalog.set_policy_settings(settings);
        let server = answer(&catalog, "web-1", 7000);
        assert_eq!(
            server.labels,
            labels("", "default", policy.as_str()),
            "{policy}"
        );
        let expected_networks = match policy {
            DefaultPolicy::Deny => 0,
            DefaultPolicy::ClusterAuthenticated | DefaultPolicy::ClusterUnauthenticated => 6,
            _ => 2,
        };
        let found = server
            .authorizations
            .first()
            .map_or(0, |authz| authz.networks.len());
        assert_eq!(found, expected_networks, "{policy}");
        if let Some(authz) = server.authorizations.first() {
            assert_eq!(
                authz.metadata.clone().unwrap().kind,
                Some(metadata::Kind::Default(policy.as_str().into())),
                "{policy}"
            );
            let authenticated = matches!(
                authz.authentication.clone().unwrap().permit,
                Some(proto::authn::Permit::MeshTls(_))
            );
            assert_eq!(
                authenticated,
                matches!(
                    policy,
                    DefaultPolicy::AllAuthenticated | DefaultPolicy::ClusterAuthenticated
                ),
                "{policy}"
            );
        }
    }
}

#[test]
fn inbound_routes_with_their_authorizations() {
    let catalog = catalog(
        r#"
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: web-metrics, namespace: shop}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: web-http}]
  hostnames: ["*.example.com"]
  rules:
    - matches: [{path: {type: Exact, value: /metrics}, method: GET, headers: [{name: x-team, value: ops}]}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-seen, value: "1"}], remove: [x-drop]}
    - matches: [{path: {value: /old}}]
      filters:
        - type: RequestRedirect
          requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}, statusCode: 301}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: metrics-anyone, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: web-metrics}
  requiredAuthenticationRefs: []
"#,
    );
    let server = answer(&catalog, "web-1", 8080);
    let Some(proto::proxy_protocol::Kind::Http1(http1)) = server.protocol.unwrap().kind else {
        panic!();
    };
    assert_eq!(http1.routes.len(), 1);
    let route = &http1.routes[0];
    let Some(metadata::Kind::Resource(resource)) = route.metadata.clone().unwrap().kind else {
        panic!();
    };
    assert_eq!(
        (
            resource.kind.as_str(),
            resource.name.as_str(),
            resource.group.as_str()
        ),
        ("HTTPRoute", "web-metrics", "policy.linkerd.io")
    );
    assert_eq!(route.authorizations.len(), 1);
    assert_eq!(route.authorizations[0].labels["name"], "metrics-anyone");
    assert_eq!(route.rules.len(), 2);
    let first = &route.rules[0].matches[0];
    assert_eq!(
        first.path.clone().unwrap().kind,
        Some(http_proto::path_match::Kind::Exact("/metrics".into()))
    );
    assert_eq!(first.headers.len(), 1);
    assert!(first.method.is_some());
    assert!(matches!(
        route.rules[0].filters[0].kind,
        Some(proto::http_route::filter::Kind::RequestHeaderModifier(_))
    ));
    let Some(proto::http_route::filter::Kind::Redirect(redirect)) =
        route.rules[1].filters[0].kind.clone()
    else {
        panic!();
    };
    assert_eq!(redirect.status, 301);
    assert_eq!(route.hosts.len(), 1);
    // The Server-level authorization stays on the Server.
    assert_eq!(server.authorizations.len(), 1);
    assert_eq!(server.authorizations[0].labels["name"], "web-clients");
}

//! Catalog tests: apply objects, check answers and what subscribers receive.

use std::time::Duration;

use weft_core::profile::RetryBudget;
use weft_core::split::WeightedDestination;

use super::*;

fn service(namespace: &str, name: &str, app: &str) -> MeshObject {
    let yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
         spec:\n  selector: {{app: {app}}}\n  clusterIP: 10.96.0.{}\n  ports:\n  - {{name: http, port: 80, targetPort: http}}\n  - {{name: grpc, port: 9090}}\n",
        name.len()
    );
    let service: Service = serde_saphyr::from_str(&yaml).expect("service yaml");
    service.into()
}

fn workload(namespace: &str, name: &str, app: &str, ip: &str, http_port: u16) -> MeshObject {
    let yaml = format!(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{app: {app}}}}}\n\
         spec: {{serviceAccount: {app}, addresses: [{ip}], ports: [{{name: http, port: {http_port}}}], meshed: true}}\n"
    );
    let workload: Workload = serde_saphyr::from_str(&yaml).expect("workload yaml");
    workload.into()
}

fn object<T: serde::de::DeserializeOwned + Into<MeshObject>>(yaml: &str) -> MeshObject {
    serde_saphyr::from_str::<T>(yaml).expect("yaml").into()
}

pub(super) fn address(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn addresses(set: &EndpointSet) -> Vec<SocketAddr> {
    set.keys().copied().collect()
}

fn added(update: &EndpointUpdate) -> Vec<SocketAddr> {
    match update {
        EndpointUpdate::Add(endpoints) => {
            endpoints.iter().map(|endpoint| endpoint.address).collect()
        }
        other => panic!("expected Add, got {other:?}"),
    }
}

pub(super) fn next(receiver: &mut mpsc::Receiver<EndpointUpdate>) -> EndpointUpdate {
    receiver.try_recv().expect("an update was published")
}

/// The next update says the target has no endpoints, and whether it exists.
pub(super) fn assert_no_endpoints(receiver: &mut mpsc::Receiver<EndpointUpdate>, exists: bool) {
    assert_eq!(next(receiver), EndpointUpdate::NoEndpoints { exists });
}

/// For each `(address, workload)`, `workload_at(address)` finds that
/// workload's endpoint at exactly that address, or nothing.
pub(super) fn assert_workloads_at(catalog: &Catalog, cases: &[(&str, Option<&str>)]) {
    for (text, expected) in cases {
        let found = catalog.workload_at(address(text));
        assert_eq!(
            found.as_ref().map(|endpoint| endpoint.workload.as_str()),
            *expected,
            "{text}"
        );
        if let Some(endpoint) = found {
            assert_eq!(endpoint.address, address(text));
        }
    }
}

fn web_catalog() -> Catalog {
    let mut catalog = Catalog::default();
    catalog.apply(service("shop", "web", "web")).unwrap();
    catalog
        .apply(workload("shop", "web-1", "web", "10.0.0.1", 8080))
        .unwrap();
    catalog
        .apply(workload("shop", "web-2", "web", "10.0.0.2", 8081))
        .unwrap();
    catalog
        .apply(workload("shop", "api-1", "api", "10.0.0.3", 8080))
        .unwrap();
    catalog
        .apply(workload("other", "web-9", "web", "10.0.0.9", 8080))
        .unwrap();
    catalog
}

#[test]
fn endpoints_resolve_named_target_ports_per_workload() {
    let catalog = web_catalog();
    let http = catalog
        .endpoints(&ServicePort::new("shop", "web", 80))
        .unwrap();
    assert_eq!(
        addresses(&http),
        vec![address("10.0.0.1:8080"), address("10.0.0.2:8081")]
    );
    let first = &http[&address("10.0.0.1:8080")];
    assert_eq!(
        (
            first.workload.as_str(),
            first.namespace.as_str(),
            first.service_account.as_str()
        ),
        ("web-1", "shop", "web")
    );
    assert_eq!(first.labels.get("app").map(String::as_str), Some("web"));
    assert!(first.is_meshed());
    let grpc = catalog
        .endpoints(&ServicePort::new("shop", "web", 9090))
        .unwrap();
    assert_eq!(
        addresses(&grpc),
        vec![address("10.0.0.1:9090"), address("10.0.0.2:9090")]
    );
    assert_eq!(
        catalog.endpoints(&ServicePort::new("shop", "nope", 80)),
        None
    );
    assert!(catalog.service_exists(&ServiceName::new("shop", "web")));
    assert!(!catalog.service_exists(&ServiceName::new("other", "web")));
}

#[test]
fn subscriber_gets_the_current_set_then_only_diffs() {
    let mut catalog = web_catalog();
    let target = ServicePort::new("shop", "web", 80);
    let mut receiver = catalog.subscribe_endpoints(&target);
    assert_eq!(
        added(&next(&mut receiver)),
        vec![address("10.0.0.1:8080"), address("10.0.0.2:8081")]
    );
    assert!(receiver.try_recv().is_err(), "nothing else yet");

    catalog
        .apply(workload("shop", "web-3", "web", "10.0.0.4", 8080))
        .unwrap();
    assert_eq!(added(&next(&mut receiver)), vec![address("10.0.0.4:8080")]);

    // Changes elsewhere publish nothing.
    catalog
        .apply(workload("shop", "api-2", "api", "10.0.0.5", 8080))
        .unwrap();
    catalog
        .apply(workload("other", "web-8", "web", "10.0.0.8", 8080))
        .unwrap();
    assert!(receiver.try_recv().is_err());

    // A workload moving port: removed then re-added.
    catalog
        .apply(workload("shop", "web-3", "web", "10.0.0.4", 9000))
        .unwrap();
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.0.0.4:8080")])
    );
    assert_eq!(added(&next(&mut receiver)), vec![address("10.0.0.4:9000")]);

    assert!(catalog.delete(Kind::Workload, "shop", "web-3"));
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.0.0.4:9000")])
    );
    catalog.delete(Kind::Workload, "shop", "web-1");
    catalog.delete(Kind::Workload, "shop", "web-2");
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.0.0.1:8080")])
    );
    assert_no_endpoints(&mut receiver, true);
    catalog.delete(Kind::Service, "shop", "web");
    assert_no_endpoints(&mut receiver, false);
    assert!(
        !catalog.delete(Kind::Service, "shop", "web"),
        "already gone"
    );
}

#[test]
fn subscriber_to_an_unknown_service_learns_when_it_appears() {
    let mut catalog = Catalog::default();
    let mut receiver = catalog.subscribe_endpoints(&ServicePort::new("shop", "web", 80));
    assert_no_endpoints(&mut receiver, false);
    catalog.apply(service("shop", "web", "web")).unwrap();
    assert_no_endpoints(&mut receiver, true);
    catalog
        .apply(workload("shop", "web-1", "web", "10.0.0.1", 8080))
        .unwrap();
    assert_eq!(added(&next(&mut receiver)), vec![address("10.0.0.1:8080")]);
}

#[test]
fn reset_publishes_only_what_changed() {
    let mut catalog = web_catalog();
    let mut receiver = catalog.subscribe_endpoints(&ServicePort::new("shop", "web", 80));
    next(&mut receiver);
    catalog
        .reset(vec![
            service("shop", "web", "web"),
            workload("shop", "web-1", "web", "10.0.0.1", 8080),
            workload("shop", "web-4", "web", "10.0.0.6", 8080),
        ])
        .unwrap();
    assert_eq!(
        next(&mut receiver),
        EndpointUpdate::Remove(vec![address("10.0.0.2:8081")])
    );
    assert_eq!(added(&next(&mut receiver)), vec![address("10.0.0.6:8080")]);
    assert!(receiver.try_recv().is_err());
}

#[test]
fn reset_refuses_duplicates_and_changes_nothing() {
    let mut catalog = web_catalog();
    let result = catalog.reset(vec![
        service("shop", "web", "web"),
        service("shop", "web", "web"),
    ]);
    assert_eq!(
        result,
        Err(CatalogError::Duplicate(ObjectKey::new(
            Kind::Service,
            "shop",
            "web"
        )))
    );
    assert_eq!(
        catalog
            .endpoints(&ServicePort::new("shop", "web", 80))
            .map(|set| set.len()),
        Some(2)
    );
}

#[test]
fn unnamed_objects_are_refused() {
    let mut catalog = Catalog::default();
    let unnamed = object::<Service>("apiVersion: v1\nkind: Service\nmetadata: {namespace: shop}\n");
    assert!(matches!(
        catalog.apply(unnamed),
        Err(CatalogError::InvalidObject {
            kind: Kind::Service,
            ..
        })
    ));
}

#[test]
fn slow_subscribers_are_dropped() {
    let mut catalog = web_catalog();
    let mut receiver = catalog.subscribe_endpoints(&ServicePort::new("shop", "web", 80));
    for index in 0..SUBSCRIBER_QUEUE_CAPACITY {
        let port = 10_000 + u16::try_from(index).unwrap();
        catalog
            .apply(workload("shop", "web-1", "web", "10.0.0.1", port))
            .unwrap();
    }
    assert_eq!(
        catalog.endpoint_subscriptions(),
        0,
        "the subscriber fell behind and was dropped"
    );
    let mut received = 0;
    while receiver.try_recv().is_ok() {
        received += 1;
    }
    assert_eq!(received, SUBSCRIBER_QUEUE_CAPACITY);
    assert!(matches!(
        receiver.try_recv(),
        Err(mpsc::error::TryRecvError::Disconnected)
    ));
}

const PROFILE: &str = "
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.shop.svc.cluster.local, namespace: shop}
spec:
  routes:
  - name: list
    condition: {method: GET, pathRegex: /items}
    isRetryable: true
    timeout: 100ms
  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 3, ttl: 5s}
";

const SPLIT: &str = "
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: web-split, namespace: shop}
spec:
  service: web
  backends: [{service: web-v1, weight: 900m}, {service: web-v2, weight: 100m}]
";

#[test]
fn profiles_default_then_follow_service_profile_and_split() {
    let mut catalog = web_catalog();
    let target = ServicePort::new("shop", "web", 80);
    assert_eq!(catalog.profile(&ServicePort::new("shop", "nope", 80)), None);

    let default = catalog.profile(&target).unwrap();
    assert_eq!(default.fully_qualified_name, "web.shop.svc.cluster.local");
    assert!(default.routes.is_empty());
    assert_eq!(default.retry_budget, RetryBudget::default());
    assert!(default.dst_overrides.is_empty());

    let mut receiver = catalog.subscribe_profile(&ProfileTarget::new(target.clone(), None));
    assert_eq!(receiver.borrow_and_update().as_deref(), Some(&default));

    catalog.apply(object::<ServiceProfile>(PROFILE)).unwrap();
    assert!(receiver.has_changed().unwrap());
    let with_routes = receiver.borrow_and_update().clone().unwrap();
    assert_eq!(with_routes.routes[0].name, "list");
    assert_eq!(
        with_routes.routes[0]
            .timeout
            .as_ref()
            .map(|timeout| timeout.value()),
        Some(Duration::from_millis(100))
    );
    assert_eq!(with_routes.retry_budget.retry_ratio, 0.5);

    catalog.apply(object::<TrafficSplit>(SPLIT)).unwrap();
    let split = receiver.borrow_and_update().clone().unwrap();
    assert_eq!(
        split.dst_overrides,
        vec![
            WeightedDestination {
                authority: "web-v1.shop.svc.cluster.local.:80".into(),
                weight: 9_000
            },
            WeightedDestination {
                authority: "web-v2.shop.svc.cluster.local.:80".into(),
                weight: 1_000
            },
        ]
    );

    // Unrelated changes do not wake profile subscribers.
    catalog
        .apply(workload("shop", "web-5", "web", "10.0.0.7", 8080))
        .unwrap();
    assert!(!receiver.has_changed().unwrap());

    catalog.delete(Kind::Service, "shop", "web");
    assert!(receiver.has_changed().unwrap());
    assert_eq!(*receiver.borrow_and_update(), None);
}

#[test]
fn lookups_by_address() {
    let mut catalog = web_catalog();
    // Two workloads on one host, told apart by port.
    catalog
        .apply(workload("shop", "web-6", "web", "10.0.0.1", 8090))
        .unwrap();
    let cases: &[(&str, Option<&str>)] = &[
        ("10.0.0.1:8080", Some("web-1")),
        ("10.0.0.1:8090", Some("web-6")),
        ("10.0.0.1:7777", None),
        ("10.0.0.3:7777", Some("api-1")),
        ("10.9.9.9:80", None),
    ];
    assert_workloads_at(&catalog, cases);
    assert_eq!(
        catalog.service_at("10.96.0.3".parse().unwrap()),
        Some(ServiceName::new("shop", "web"))
    );
    assert_eq!(catalog.service_at("10.96.0.99".parse().unwrap()), None);
}

#[test]
fn one_change_reaches_every_subscriber_of_a_service_once() {
    let mut catalog = web_catalog();
    let target = ServicePort::new("shop", "web", 80);
    let mut receivers: Vec<_> = (0..200)
        .map(|_| catalog.subscribe_endpoints(&target))
        .collect();
    for receiver in &mut receivers {
        assert_eq!(added(&next(receiver)).len(), 2, "snapshot first");
    }
    catalog
        .update(
            vec![workload("shop", "web-3", "web", "10.0.0.4", 8080)],
            Vec::new(),
        )
        .unwrap();
    for receiver in &mut receivers {
        assert_eq!(added(&next(receiver)), vec![address("10.0.0.4:8080")]);
        assert!(receiver.try_recv().is_err(), "exactly one diff");
    }
}

#[test]
fn batch_updates_touch_only_the_services_they_change() {
    let mut catalog = web_catalog();
    catalog.apply(service("shop", "api", "api")).unwrap();
    let mut web = catalog.subscribe_endpoints(&ServicePort::new("shop", "web", 80));
    let mut api = catalog.subscribe_endpoints(&ServicePort::new("shop", "api", 80));
    next(&mut web);
    next(&mut api);

    let removed = catalog
        .update(
            vec![workload("shop", "web-2", "web", "10.0.0.7", 8081)],
            vec![
                ObjectKey::new(Kind::Workload, "shop", "web-1"),
                ObjectKey::new(Kind::Workload, "shop", "missing"),
            ],
        )
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        next(&mut web),
        EndpointUpdate::Remove(vec![address("10.0.0.1:8080"), address("10.0.0.2:8081")])
    );
    assert_eq!(added(&next(&mut web)), vec![address("10.0.0.7:8081")]);
    assert!(api.try_recv().is_err(), "api's workloads did not change");

    // A workload moving from one service to another updates both.
    catalog
        .update(
            vec![workload("shop", "api-1", "web", "10.0.0.3", 8080)],
            Vec::new(),
        )
        .unwrap();
    assert_eq!(next(&mut api), EndpointUpdate::NoEndpoints { exists: true });
    assert_eq!(added(&next(&mut web)), vec![address("10.0.0.3:8080")]);

    // A refused object leaves everything as it was.
    let unnamed = object::<Workload>(
        "apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {namespace: shop}\nspec: {addresses: [10.0.0.8]}\n",
    );
    assert!(
        catalog
            .update(
                vec![unnamed],
                vec![ObjectKey::new(Kind::Service, "shop", "web")]
            )
            .is_err()
    );
    assert!(catalog.service_exists(&ServiceName::new("shop", "web")));
}

#[test]
fn a_profile_in_the_client_namespace_takes_precedence() {
    let mut catalog = web_catalog();
    catalog.apply(object::<ServiceProfile>(PROFILE)).unwrap();
    let target = ServicePort::new("shop", "web", 80);
    let from =
        |namespace: Option<&str>| ProfileTarget::new(target.clone(), namespace.map(str::to_string));
    let route_names = |profile: Option<Profile>| -> Vec<String> {
        profile
            .unwrap()
            .routes
            .into_iter()
            .map(|route| route.name)
            .collect()
    };
    // Same namespace as the service, or no namespace: one question.
    assert_eq!(from(Some("shop")), from(None));
    let mut client = catalog.subscribe_profile(&from(Some("client")));
    assert_eq!(
        route_names(catalog.profile_for(&from(Some("client")))),
        ["list"]
    );
    client.borrow_and_update();

    let client_profile = PROFILE
        .replace("namespace: shop", "namespace: client")
        .replace("name: list", "name: client-list");
    catalog
        .apply(object::<ServiceProfile>(&client_profile))
        .unwrap();
    assert!(
        client.has_changed().unwrap(),
        "the client's watch follows its namespace"
    );
    assert_eq!(
        route_names(client.borrow_and_update().as_deref().cloned()),
        ["client-list"]
    );
    assert_eq!(
        route_names(catalog.profile_for(&from(Some("shop")))),
        ["list"]
    );
    assert_eq!(
        route_names(catalog.profile_for(&from(Some("other")))),
        ["list"]
    );
    assert_eq!(route_names(catalog.profile(&target)), ["list"]);

    catalog.delete(Kind::ServiceProfile, "client", "web.shop.svc.cluster.local");
    assert_eq!(
        route_names(client.borrow_and_update().as_deref().cloned()),
        ["list"]
    );
}

#[test]
fn watches_are_released_when_their_last_subscriber_leaves() {
    let mut catalog = web_catalog();
    let known = ServicePort::new("shop", "web", 80);
    let unknown = ServicePort::new("shop", "never-declared", 80);
    let first = catalog.subscribe_endpoints(&known);
    let second = catalog.subscribe_endpoints(&known);
    let lonely = catalog.subscribe_endpoints(&unknown);
    let profile_request = ProfileTarget::new(unknown.clone(), Some("elsewhere".into()));
    let profile = catalog.subscribe_profile(&profile_request);
    let profile_again = catalog.subscribe_profile(&profile_request);
    assert_eq!(catalog.endpoint_subscriptions(), 2);
    assert_eq!(catalog.profile_subscriptions(), 1);

    // One of two subscribers leaves: the watch stays.
    drop(first);
    catalog.release_endpoints(&known);
    assert_eq!(catalog.endpoint_subscriptions(), 2);
    drop(profile);
    catalog.release_profile(&profile_request);
    assert_eq!(catalog.profile_subscriptions(), 1);

    // The last ones leave: known or not, nothing is left behind.
    drop((second, lonely, profile_again));
    catalog.release_endpoints(&known);
    catalog.release_endpoints(&unknown);
    catalog.release_profile(&profile_request);
    assert_eq!(catalog.endpoint_subscriptions(), 0);
    assert_eq!(catalog.profile_subscriptions(), 0);
    // Releasing what is not watched is harmless.
    catalog.release_endpoints(&unknown);
}

//! Router plans and endpoint picks against an in-process fake Destination
//! server: logical services, workload addresses, targets discovery does not
//! cover, a silent controller, failfast and waking on a new endpoint.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::update::Update as ProtoUpdate;
use linkerd2_proxy_api::net::TcpAddress;

use super::*;
use crate::discovery::fake::{FakeDestination, Reply, add};

const SERVICE: &str = "web.shop.svc.cluster.local:80";
const FAILFAST: Duration = Duration::from_millis(300);

async fn outbound(destination: SocketAddr) -> Router {
    let variables = HashMap::from([
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", destination.to_string()),
        (
            "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
            "10.96.0.0/16".to_string(),
        ),
        (
            "WEFT_PROXY_DESTINATION_INITIAL_TIMEOUT",
            "200ms".to_string(),
        ),
        ("WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT", "300ms".to_string()),
    ]);
    let config =
        Config::from_lookup(&move |name| variables.get(name).cloned()).expect("valid config");
    let destination = config.destination.clone().expect("discovery configured");
    let mut registry = prometheus_client::registry::Registry::default();
    Router::new(
        &config,
        &destination,
        None,
        ControlMetrics::new(&mut registry, &destination.addr),
    )
    .unwrap()
}

fn no_endpoints() -> proto::Update {
    proto::Update {
        update: Some(ProtoUpdate::NoEndpoints(proto::NoEndpoints {
            exists: true,
        })),
    }
}

fn named_profile() -> proto::DestinationProfile {
    proto::DestinationProfile {
        fully_qualified_name: "web.shop.svc.cluster.local".to_string(),
        retry_budget: Some(proto::RetryBudget {
            retry_ratio: 0.2,
            min_retries_per_second: 10,
            ttl: Some(prost_types::Duration {
                seconds: 10,
                nanos: 0,
            }),
        }),
        ..Default::default()
    }
}

fn logical(plan: Plan) -> Arc<LogicalTarget> {
    match plan {
        Plan::Logical(target) => target,
        Plan::Original => panic!("expected a logical plan, got Original"),
        Plan::Endpoint { addr, .. } => panic!("expected a logical plan, got Endpoint {addr}"),
    }
}

#[tokio::test]
async fn a_named_profile_balances_over_its_endpoints() {
    let fake = FakeDestination::default();
    fake.reply_profile("10.96.0.10:80", Reply::Stream(vec![named_profile()]));
    fake.reply_endpoints(
        SERVICE,
        Reply::Stream(vec![add(&["10.1.0.1:8080", "10.1.0.2:8080"])]),
    );
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let outbound = outbound(server.address).await;

    let mut discovery = outbound.discover("10.96.0.10", 80).expect("covered");
    let target = logical(outbound.plan(&mut discovery).await);
    assert_eq!(&*target.name, SERVICE);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let lease = outbound
            .pick(target.backend(outbound.random()))
            .await
            .unwrap();
        assert_eq!(
            lease.metadata().labels.destination().get("service"),
            Some("web")
        );
        seen.insert(lease.address());
    }
    assert_eq!(seen.len(), 2, "both endpoints picked: {seen:?}");
    // The plan is reused while the profile is unchanged.
    let again = logical(outbound.plan(&mut discovery).await);
    assert!(Arc::ptr_eq(&target, &again));
    server.stop().await;
}

#[tokio::test]
async fn a_workload_address_is_connected_directly() {
    let fake = FakeDestination::default();
    let endpoint = proto::WeightedAddr {
        addr: Some(TcpAddress::from(
            "10.96.3.4:8080".parse::<SocketAddr>().unwrap(),
        )),
        metric_labels: HashMap::from([("workload".to_string(), "web-1".to_string())]),
        ..Default::default()
    };
    fake.reply_profile(
        "10.96.3.4:8080",
        Reply::Stream(vec![proto::DestinationProfile {
            endpoint: Some(endpoint),
            ..Default::default()
        }]),
    );
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let outbound = outbound(server.address).await;
    let mut discovery = outbound.discover("10.96.3.4", 8080).unwrap();
    match outbound.plan(&mut discovery).await {
        Plan::Endpoint { addr, meta, .. } => {
            let labels = meta.labels;
            assert_eq!(addr, "10.96.3.4:8080".parse().unwrap());
            assert_eq!(labels.destination().get("workload"), Some("web-1"));
        }
        _ => panic!("expected an endpoint plan"),
    }
    server.stop().await;
}

#[tokio::test]
async fn uncovered_targets_and_a_silent_controller_fall_back() {
    let fake = FakeDestination::default();
    // Accepts the stream and never answers.
    fake.reply_profile("10.96.0.11:80", Reply::Stream(Vec::new()));
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let outbound = outbound(server.address).await;

    assert!(
        outbound.discover("192.168.0.1", 80).is_none(),
        "not in the networks"
    );
    assert!(
        outbound.discover("example.com", 80).is_none(),
        "not a suffix"
    );

    let mut discovery = outbound.discover("10.96.0.11", 80).unwrap();
    let started = Instant::now();
    assert!(matches!(
        outbound.plan(&mut discovery).await,
        Plan::Original
    ));
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    server.stop().await;
}

#[tokio::test]
async fn no_endpoints_fails_fast_and_a_new_endpoint_wakes_waiters() {
    let fake = FakeDestination::default();
    fake.reply_profile("10.96.0.10:80", Reply::Stream(vec![named_profile()]));
    fake.reply_endpoints(SERVICE, Reply::Stream(vec![no_endpoints()]));
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let outbound = Arc::new(outbound(server.address).await);
    let mut discovery = outbound.discover("10.96.0.10", 80).unwrap();
    let target = logical(outbound.plan(&mut discovery).await);

    let started = Instant::now();
    let error = outbound
        .pick(target.backend(outbound.random()))
        .await
        .unwrap_err();
    assert!(matches!(error, PickError::FailFast { .. }), "{error}");
    assert!(error.to_string().contains("fail-fast"), "{error}");
    assert!(started.elapsed() >= FAILFAST);

    let waiter = {
        let outbound = outbound.clone();
        let target = target.clone();
        tokio::spawn(async move {
            outbound
                .pick(target.backend(outbound.random()))
                .await
                .map(|lease| lease.address())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake.push_update(SERVICE, add(&["10.1.0.9:8080"]));
    let picked = waiter.await.unwrap().expect("woken by the new endpoint");
    assert_eq!(picked, "10.1.0.9:8080".parse().unwrap());
    server.stop().await;
}

#[test]
fn waiting_is_bounded() {
    let pending = AtomicUsize::new(0);
    let first = PendingSlot::take(&pending, 2).unwrap();
    let second = PendingSlot::take(&pending, 2).unwrap();
    assert!(PendingSlot::take(&pending, 2).is_none());
    drop(first);
    assert!(PendingSlot::take(&pending, 2).is_some());
    drop(second);
    assert_eq!(pending.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn the_retry_budget_outlives_connections() {
    let fake = FakeDestination::default();
    let mut profile = named_profile();
    profile.routes = vec![proto::Route {
        condition: Some(proto::RequestMatch {
            r#match: Some(proto::request_match::Match::Path(proto::PathMatch {
                regex: "/.*".to_string(),
            })),
        }),
        is_retryable: true,
        ..Default::default()
    }];
    fake.reply_profile("10.96.0.10:80", Reply::Stream(vec![profile]));
    fake.reply_endpoints(SERVICE, Reply::Stream(vec![add(&["10.1.0.1:8080"])]));
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let outbound = outbound(server.address).await;

    let first_budget = {
        let mut first = outbound.discover("10.96.0.10", 80).unwrap();
        let target = logical(outbound.plan(&mut first).await);
        target.budget().expect("a retryable route has a budget") as *const RetryBudget
    };
    // The first connection (and its plan) is gone; a new one gets the same budget.
    let mut second = outbound.discover("10.96.0.10", 80).unwrap();
    let target = logical(outbound.plan(&mut second).await);
    let second_budget = target.budget().unwrap() as *const RetryBudget;
    assert_eq!(first_budget, second_budget);
    drop((target, second, outbound));
    server.stop().await;
}

/// A profile for `name` with one route, `api`, taking `/api/*`.
fn profile_with_route(name: &str) -> proto::DestinationProfile {
    use linkerd2_proxy_api::destination::request_match::Match;
    proto::DestinationProfile {
        fully_qualified_name: name.to_string(),
        routes: vec![proto::Route {
            condition: Some(proto::RequestMatch {
                r#match: Some(Match::Path(proto::PathMatch {
                    regex: "/api/.*".to_string(),
                })),
            }),
            metrics_labels: HashMap::from([("route".to_string(), "api".to_string())]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[tokio::test]
async fn inbound_names_with_profile_routes_get_inbound_route_labels() {
    let fake = FakeDestination::default();
    fake.reply_profile(
        SERVICE,
        Reply::Stream(vec![profile_with_route("web.shop.svc.cluster.local.")]),
    );
    // A service without a ServiceProfile: a name, no routes.
    fake.reply_profile(
        "books.shop.svc.cluster.local:80",
        Reply::Stream(vec![proto::DestinationProfile {
            fully_qualified_name: "books.shop.svc.cluster.local".to_string(),
            ..Default::default()
        }]),
    );
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let router = outbound(server.address).await;

    let mut web = router
        .discover_inbound("web.shop.svc.cluster.local", 80)
        .expect("a name under the suffixes");
    let routes = web.routes().await.expect("routes");
    assert_eq!(&*routes.name, SERVICE);
    let api = routes.route(&http::Method::GET, "/api/books");
    assert_eq!(api.labels.direction, Direction::Inbound);
    assert_eq!(api.labels.route.as_deref(), Some("api"));
    let other = routes.route(&http::Method::GET, "/");
    assert_eq!(
        (other.labels.route.as_ref(), &*other.labels.dst),
        (None, SERVICE)
    );
    // Reused while the profile is unchanged.
    assert!(Arc::ptr_eq(&routes, &web.routes().await.unwrap()));

    let mut books = router
        .discover_inbound("books.shop.svc.cluster.local", 80)
        .expect("looked up");
    assert!(
        books.routes().await.is_none(),
        "no routes, no route metrics"
    );
    // IP addresses (even in the profile networks) and names outside the
    // suffixes are not looked up.
    assert!(router.discover_inbound("10.96.0.10", 80).is_none());
    assert!(router.discover_inbound("[::1]", 80).is_none());
    assert!(router.discover_inbound("example.com", 80).is_none());
    assert_eq!(fake.profile_calls("10.96.0.10:80"), 0);
    server.stop().await;
}

#[tokio::test]
async fn inbound_lookups_of_a_silent_controller_end_at_the_initial_timeout() {
    let fake = FakeDestination::default();
    fake.reply_profile(SERVICE, Reply::Stream(vec![]));
    let server = fake.serve("127.0.0.1:0".parse().unwrap()).await;
    let router = outbound(server.address).await;

    let mut web = router
        .discover_inbound("web.shop.svc.cluster.local", 80)
        .unwrap();
    let started = Instant::now();
    assert!(web.routes().await.is_none());
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(2),
        "waited {waited:?} (initial timeout 200ms)"
    );
    let started = Instant::now();
    assert!(web.routes().await.is_none());
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "a second wait"
    );
    server.stop().await;
}

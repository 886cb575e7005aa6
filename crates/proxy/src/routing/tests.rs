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

//! Discovery against an in-process fake Destination server: first answers,
//! diffs, a controller restart, rejections, silence, sharing and eviction.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use linkerd2_proxy_api::destination as proto;
use linkerd2_proxy_api::destination::update::Update as ProtoUpdate;
use linkerd2_proxy_api::net::TcpAddress;
use tonic::Code;

use super::fake::{FakeDestination, Reply, add};
use super::*;
use crate::discovery::backoff::ExponentialBackoff;
use crate::discovery::cache::DEFAULT_IDLE_TIMEOUT;
use crate::discovery::client::LookupWatch;

const SERVICE: &str = "web.shop.svc.cluster.local:80";
const TARGET: &str = "10.0.0.7:80";
const INITIAL_TIMEOUT: Duration = Duration::from_millis(200);
/// Bound for anything that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(2);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn config(destination: SocketAddr) -> DiscoveryConfig {
    DiscoveryConfig {
        backoff: ExponentialBackoff::new(Duration::from_millis(10), Duration::from_millis(50), 0.1)
            .unwrap(),
        initial_timeout: INITIAL_TIMEOUT,
        connect_timeout: Duration::from_millis(200),
        ..DiscoveryConfig::new(destination.to_string(), "ns:shop")
    }
}

fn client(destination: SocketAddr) -> DiscoveryClient {
    DiscoveryClient::new(config(destination)).unwrap()
}

fn remove(addresses: &[&str]) -> proto::Update {
    let addrs = addresses
        .iter()
        .map(|address| TcpAddress::from(address.parse::<SocketAddr>().unwrap()))
        .collect();
    proto::Update {
        update: Some(ProtoUpdate::Remove(proto::AddrSet { addrs })),
    }
}

fn profile(name: &str) -> proto::DestinationProfile {
    proto::DestinationProfile {
        fully_qualified_name: name.to_string(),
        routes: vec![proto::Route {
            condition: Some(proto::RequestMatch {
                r#match: Some(proto::request_match::Match::Path(proto::PathMatch {
                    regex: "/api/.*".to_string(),
                })),
            }),
            metrics_labels: HashMap::from([("route".to_string(), "api".to_string())]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The addresses in the balancer, found by picking until every one is seen
/// (the set is small), cross-checked with its length.
fn balancer_addresses(watch: &EndpointsWatch) -> BTreeSet<SocketAddr> {
    let watched: BTreeSet<SocketAddr> = watch
        .lookup()
        .value()
        .map(|known| known.endpoints.keys().copied().collect())
        .unwrap_or_default();
    let balancer = watch.balancer();
    assert_eq!(
        balancer.len(),
        watched.len(),
        "the balancer follows the watch"
    );
    for address in &watched {
        assert!(
            balancer.endpoint_state(*address).is_some(),
            "{address} in the balancer"
        );
    }
    watched
}

fn addresses(list: &[&str]) -> BTreeSet<SocketAddr> {
    list.iter()
        .map(|address| address.parse().unwrap())
        .collect()
}

/// Waits for a lookup to be ready, failing (not hanging) past [`PATIENCE`].
async fn ready<T>(watch: &mut LookupWatch<T>) -> Lookup<T> {
    tokio::time::timeout(PATIENCE, watch.ready())
        .await
        .expect("the lookup never left Pending")
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn first_profile_and_endpoint_set_arrive() {
    let fake = FakeDestination::default();
    fake.reply_profile(
        TARGET,
        Reply::Stream(vec![profile("web.shop.svc.cluster.local.")]),
    );
    fake.reply_endpoints(
        SERVICE,
        Reply::Stream(vec![add(&["10.1.0.1:8080", "10.1.0.2:8080"])]),
    );
    let server = fake.serve(any_port()).await;
    let client = client(server.address);

    let mut profile_watch = client.profile(TARGET);
    let Lookup::Resolved(profile) = ready(&mut profile_watch).await else {
        panic!("a profile: {:?}", profile_watch.current());
    };
    assert_eq!(
        profile.fully_qualified_name.as_deref(),
        Some("web.shop.svc.cluster.local")
    );
    assert_eq!(profile.routes.len(), 1);
    assert_eq!(profile.routes[0].name, "api");

    let mut endpoints = client.endpoints(SERVICE);
    let state = ready(endpoints.lookup_mut()).await;
    let known = state.value().expect("endpoints");
    assert!(known.exists);
    assert_eq!(
        known.endpoints[&"10.1.0.1:8080".parse().unwrap()]
            .labels
            .get("service"),
        Some("web"),
        "set-level labels reach each endpoint"
    );
    assert_eq!(
        balancer_addresses(&endpoints),
        addresses(&["10.1.0.1:8080", "10.1.0.2:8080"])
    );
    let lease = endpoints.balancer().pick().expect("an endpoint to pick");
    assert!(lease.metadata().labels.destination().get("pod").is_some());
    server.stop().await;
}

#[tokio::test]
async fn endpoint_diffs_update_the_balancer() {
    let fake = FakeDestination::default();
    fake.reply_endpoints(SERVICE, Reply::Stream(vec![add(&["10.1.0.1:8080"])]));
    let server = fake.serve(any_port()).await;
    let client = client(server.address);
    let mut endpoints = client.endpoints(SERVICE);
    ready(endpoints.lookup_mut()).await;
    assert_eq!(
        balancer_addresses(&endpoints),
        addresses(&["10.1.0.1:8080"])
    );

    fake.push_update(SERVICE, add(&["10.1.0.2:8080", "10.1.0.3:8080"]));
    eventually("two endpoints added", || endpoints.balancer().len() == 3).await;
    assert_eq!(
        balancer_addresses(&endpoints),
        addresses(&["10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"])
    );

    fake.push_update(SERVICE, remove(&["10.1.0.1:8080"]));
    eventually("one endpoint removed", || endpoints.balancer().len() == 2).await;
    assert_eq!(
        balancer_addresses(&endpoints),
        addresses(&["10.1.0.2:8080", "10.1.0.3:8080"])
    );

    let no_endpoints = proto::Update {
        update: Some(ProtoUpdate::NoEndpoints(proto::NoEndpoints {
            exists: true,
        })),
    };
    fake.push_update(SERVICE, no_endpoints);
    eventually("the set emptied", || endpoints.balancer().is_empty()).await;
    let known = endpoints.lookup().value().unwrap();
    assert!(known.exists && known.endpoints.is_empty());
    assert!(endpoints.balancer().pick().is_none());
    server.stop().await;
}

#[tokio::test]
async fn controller_restart_keeps_endpoints_and_reconnects() {
    let fake = FakeDestination::default();
    fake.reply_endpoints(
        SERVICE,
        Reply::Stream(vec![add(&["10.1.0.1:8080", "10.1.0.2:8080"])]),
    );
    let server = fake.serve(any_port()).await;
    let address = server.address;
    let client = client(address);
    let mut endpoints = client.endpoints(SERVICE);
    ready(endpoints.lookup_mut()).await;
    assert_eq!(endpoints.balancer().len(), 2);
    assert_eq!(endpoints.lookup().reconnects(), 0);

    // The controller goes away: its streams fail and the port is closed.
    server.stop().await;
    eventually("retries while the controller is down", || {
        endpoints.lookup().reconnects() >= 3
    })
    .await;
    assert_eq!(
        balancer_addresses(&endpoints),
        addresses(&["10.1.0.1:8080", "10.1.0.2:8080"]),
        "the last known endpoints keep serving"
    );
    assert!(endpoints.balancer().pick().is_some());

    // It comes back on the same address; meanwhile one endpoint went away
    // and another appeared. The new stream's first message replaces the set.
    fake.reply_endpoints(
        SERVICE,
        Reply::Stream(vec![add(&["10.1.0.2:8080", "10.1.0.9:8080"])]),
    );
    let server = fake.serve(address).await;
    eventually("the new set arrives", || {
        endpoints.lookup().value().is_some_and(|known| {
            known
                .endpoints
                .contains_key(&"10.1.0.9:8080".parse().unwrap())
        })
    })
    .await;
    assert_eq!(
        balancer_addresses(&endpoints),
        addresses(&["10.1.0.2:8080", "10.1.0.9:8080"])
    );
    assert_eq!(fake.get_calls(SERVICE), 2, "one stream per server life");

    // Diffs flow on the new stream.
    fake.push_update(SERVICE, remove(&["10.1.0.2:8080"]));
    eventually("a diff after the restart", || {
        endpoints.balancer().len() == 1
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn rejections_are_terminal() {
    let fake = FakeDestination::default();
    fake.reply_profile(TARGET, Reply::Status(Code::InvalidArgument));
    fake.reply_endpoints(SERVICE, Reply::Status(Code::NotFound));
    fake.reply_endpoints("unavailable:80", Reply::Status(Code::Unavailable));
    let server = fake.serve(any_port()).await;
    let client = client(server.address);

    let mut profile_watch = client.profile(TARGET);
    let state = ready(&mut profile_watch).await;
    assert!(
        matches!(&state, Lookup::NotDiscoverable { reason } if reason.contains("InvalidArgument")),
        "{state:?}"
    );
    let mut endpoints = client.endpoints(SERVICE);
    let state = ready(endpoints.lookup_mut()).await;
    assert!(matches!(state, Lookup::NotDiscoverable { .. }), "{state:?}");
    // Terminal: the lookup ends and never asks again.
    let changed = tokio::time::timeout(PATIENCE, profile_watch.changed()).await;
    assert_eq!(changed, Ok(false), "the lookup ended: no further changes");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.profile_calls(TARGET), 1);
    assert_eq!(fake.get_calls(SERVICE), 1);

    // Unavailable is not a rejection: the lookup keeps retrying.
    let retrying = client.endpoints("unavailable:80");
    eventually("retries after Unavailable", || {
        fake.get_calls("unavailable:80") >= 3
    })
    .await;
    assert!(!matches!(
        retrying.lookup().current(),
        Lookup::NotDiscoverable { .. }
    ));
    server.stop().await;
}

#[tokio::test]
async fn a_silent_controller_yields_unresolved_after_the_initial_timeout() {
    let fake = FakeDestination::default();
    fake.reply_profile(TARGET, Reply::Stream(Vec::new()));
    fake.reply_endpoints(SERVICE, Reply::Stream(Vec::new()));
    let server = fake.serve(any_port()).await;
    let client = client(server.address);

    let started = Instant::now();
    let mut profile_watch = client.profile(TARGET);
    let mut endpoints = client.endpoints(SERVICE);
    assert!(profile_watch.current().is_pending());
    let profile_state = ready(&mut profile_watch).await;
    let endpoints_state = ready(endpoints.lookup_mut()).await;
    let waited = started.elapsed();
    assert!(
        matches!(profile_state, Lookup::Unresolved),
        "{profile_state:?}"
    );
    assert!(
        matches!(endpoints_state, Lookup::Unresolved),
        "{endpoints_state:?}"
    );
    assert!(
        waited >= INITIAL_TIMEOUT && waited < INITIAL_TIMEOUT * 3,
        "waited {waited:?}"
    );
    assert_eq!(fake.profile_calls(TARGET), 1, "the stream was accepted");

    // A late answer still resolves the lookup.
    fake.push_update(SERVICE, add(&["10.1.0.1:8080"]));
    eventually("a late answer", || endpoints.balancer().len() == 1).await;
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_controller_never_blocks_a_caller() {
    // A port nothing listens on: bind, note, close.
    let closed = std::net::TcpListener::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap();
    let client = client(closed);
    let started = Instant::now();
    let mut profile_watch = client.profile(TARGET);
    let state = ready(&mut profile_watch).await;
    assert!(matches!(state, Lookup::Unresolved), "{state:?}");
    assert!(started.elapsed() < INITIAL_TIMEOUT * 3);
    assert!(profile_watch.reconnects() >= 1, "it keeps trying");
}

#[tokio::test]
async fn lookups_of_one_target_share_one_stream() {
    let fake = FakeDestination::default();
    fake.reply_profile(
        TARGET,
        Reply::Stream(vec![profile("web.shop.svc.cluster.local")]),
    );
    fake.reply_endpoints(SERVICE, Reply::Stream(vec![add(&["10.1.0.1:8080"])]));
    fake.reply_endpoints(
        "other.shop.svc.cluster.local:80",
        Reply::Stream(vec![add(&[])]),
    );
    let server = fake.serve(any_port()).await;
    let cache = DiscoveryCache::new(client(server.address), DEFAULT_IDLE_TIMEOUT);

    let mut first = cache.endpoints(SERVICE);
    let mut second = cache.endpoints(SERVICE);
    ready(first.lookup_mut()).await;
    ready(second.lookup_mut()).await;
    let _other = cache.endpoints("other.shop.svc.cluster.local:80");
    let mut profiles = [cache.profile(TARGET), cache.profile(TARGET)];
    for profile_watch in &mut profiles {
        assert!(ready(profile_watch).await.value().is_some());
    }
    eventually("the other lookup's call", || {
        fake.get_calls("other.shop.svc.cluster.local:80") == 1
    })
    .await;
    assert_eq!(fake.get_calls(SERVICE), 1);
    assert_eq!(fake.open_get_streams(SERVICE), 1);
    assert_eq!(fake.profile_calls(TARGET), 1);
    assert_eq!(cache.len(), 3);

    // One stream feeds one balancer, seen by both callers.
    fake.push_update(SERVICE, add(&["10.1.0.2:8080"]));
    eventually("both see the diff", || {
        first.balancer().len() == 2 && second.balancer().len() == 2
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn the_cache_evicts_idle_targets() {
    let idle_timeout = Duration::from_millis(100);
    let fake = FakeDestination::default();
    fake.reply_endpoints(SERVICE, Reply::Stream(vec![add(&["10.1.0.1:8080"])]));
    let server = fake.serve(any_port()).await;
    let cache = DiscoveryCache::new(client(server.address), idle_timeout);

    let mut held = cache.endpoints(SERVICE);
    ready(held.lookup_mut()).await;
    // Held for well past the idle timeout: kept.
    tokio::time::sleep(idle_timeout * 3).await;
    assert_eq!(cache.len(), 1, "a held lookup is never evicted");
    assert_eq!(fake.open_get_streams(SERVICE), 1);

    drop(held);
    eventually("the idle lookup is evicted", || cache.is_empty()).await;
    eventually("its stream is closed", || {
        fake.open_get_streams(SERVICE) == 0
    })
    .await;

    // A later lookup opens a new stream.
    let mut again = cache.endpoints(SERVICE);
    ready(again.lookup_mut()).await;
    assert_eq!(fake.get_calls(SERVICE), 2);
    server.stop().await;
}

#[tokio::test]
async fn a_bounded_lookup_shares_known_targets_and_refuses_new_ones_past_the_bound() {
    let fake = FakeDestination::default();
    let server = fake.serve(any_port()).await;
    let cache = DiscoveryCache::new(client(server.address), DEFAULT_IDLE_TIMEOUT);

    let first = cache.profile_within("a.shop.svc.cluster.local:80", 2);
    let second = cache.profile_within("b.shop.svc.cluster.local:80", 2);
    assert!(first.is_some() && second.is_some());
    assert!(
        cache
            .profile_within("c.shop.svc.cluster.local:80", 2)
            .is_none(),
        "a third target past a bound of 2"
    );
    assert!(
        cache
            .profile_within("a.shop.svc.cluster.local:80", 2)
            .is_some()
    );
    assert_eq!(cache.len(), 2);
    server.stop().await;
}

//! The Destination service over a catalog fed as the Kubernetes source
//! feeds it: instance names and pod IPs, through the gRPC trait methods.

use futures::StreamExt;
use weft_core::object::MeshObject;

use super::*;
use crate::destination::StreamLimits;
use crate::mesh_file::parse_mesh;

const CLUSTER: &str = "
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: weft.dev/v1alpha1
kind: Workload
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {serviceAccount: web, addresses: [10.1.0.1], meshed: true, owner: {kind: StatefulSet, name: web}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-x1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints:
- addresses: [10.1.0.1]
  hostname: web-0
  zone: zone-a
  targetRef: {kind: Pod, name: web-0}
- addresses: [10.1.0.2]
  hostname: web-1
  targetRef: {kind: Pod, name: web-1}
";

fn service() -> (DestinationService, watch::Sender<bool>) {
    let objects: Vec<MeshObject> = parse_mesh(CLUSTER).expect("the cluster parses");
    let mut catalog = Catalog::default();
    catalog.set_endpoints_from_slices(true);
    catalog.reset(objects).expect("the cluster loads");
    let (stop, shutdown) = watch::channel(false);
    let service = DestinationService::new(
        catalog.shared(),
        DestinationMetrics::default(),
        shutdown,
        None,
        StreamLimiter::new(StreamLimits::default()),
    );
    (service, stop)
}

fn request(path: &str) -> Request<proto::GetDestination> {
    Request::new(proto::GetDestination {
        path: path.to_string(),
        ..Default::default()
    })
}

async fn first_update(service: &DestinationService, path: &str) -> proto::update::Update {
    let mut stream = service
        .get(request(path))
        .await
        .expect("a stream")
        .into_inner();
    let update = stream.next().await.expect("a message").expect("no error");
    update.update.expect("an update")
}

async fn first_profile(service: &DestinationService, path: &str) -> proto::DestinationProfile {
    let mut stream = service
        .get_profile(request(path))
        .await
        .expect("a stream")
        .into_inner();
    stream.next().await.expect("a message").expect("no error")
}

/// The addresses of an `Add`, with each one's `pod` and `statefulset` labels.
fn added(update: proto::update::Update) -> Vec<(String, Option<String>, Option<String>)> {
    let proto::update::Update::Add(set) = update else {
        panic!("expected Add, got {update:?}");
    };
    set.addrs
        .iter()
        .map(|addr| {
            let address = addr.addr.as_ref().expect("an address");
            let ip: std::net::IpAddr = address.ip.expect("an ip").try_into().unwrap();
            (
                std::net::SocketAddr::new(ip, address.port as u16).to_string(),
                addr.metric_labels.get("pod").cloned(),
                addr.metric_labels.get("statefulset").cloned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn instance_names_get_only_their_endpoint() {
    let (service, _stop) = service();
    let some = |text: &str| Some(text.to_string());
    assert_eq!(
        added(first_update(&service, "web.shop.svc.cluster.local:80").await),
        vec![
            ("10.1.0.1:8080".to_string(), some("web-0"), some("web")),
            ("10.1.0.2:8080".to_string(), None, None),
        ]
    );
    assert_eq!(
        added(first_update(&service, "web-0.web.shop.svc.cluster.local:80").await),
        vec![("10.1.0.1:8080".to_string(), some("web-0"), some("web"))]
    );
    assert_eq!(
        first_update(&service, "web-7.web.shop.svc.cluster.local:80").await,
        proto::update::Update::NoEndpoints(proto::NoEndpoints { exists: true })
    );
    assert_eq!(
        first_update(&service, "web-0.nope.shop.svc.cluster.local:80").await,
        proto::update::Update::NoEndpoints(proto::NoEndpoints { exists: false })
    );
}

#[tokio::test]
async fn profiles_of_pod_ips_and_instance_names_carry_the_endpoint() {
    let (service, _stop) = service();
    for path in [
        // The pod declares no port: found by its IP.
        "10.1.0.1:8080",
        "web-0.web.shop.svc.cluster.local:80",
    ] {
        let profile = first_profile(&service, path).await;
        let endpoint = profile.endpoint.expect("the endpoint is set");
        assert_eq!(
            endpoint.metric_labels.get("pod").map(String::as_str),
            Some("web-0"),
            "{path}"
        );
        assert_eq!(
            endpoint.metric_labels.get("zone").map(String::as_str),
            // Found by IP the catalog knows the pod, not its slice's zone.
            if path.starts_with("10.") {
                None
            } else {
                Some("zone-a")
            },
            "{path}"
        );
    }
    // An instance not known now: the service's profile.
    let profile = first_profile(&service, "web-7.web.shop.svc.cluster.local:80").await;
    assert!(profile.endpoint.is_none());
    assert_eq!(profile.fully_qualified_name, "web.shop.svc.cluster.local");
}

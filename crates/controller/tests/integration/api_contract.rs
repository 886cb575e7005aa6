//! The HTTP API's contract: every endpoint of the real `weft-controller`
//! (identity on, two real proxies with traffic between them) answers
//! documents that the `weft-api` types read strictly — no field they do not
//! know (`deny_unknown_fields`) — and write back unchanged (no field lost,
//! none missing, no number changing type). A field added, renamed or dropped
//! on either side fails here.
//!
//! ```text
//! test ──GET /api/...──► weft-controller ──scrapes / taps──► web and traffic proxies
//!   └─ serde_json::Value ─► weft_api::T (strict) ─► Value again == the answer
//! ```

use std::time::{Duration, Instant};

use crate::mesh::{DemoMesh, TapStream};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use weft_api::{
    AuthzResponse, EdgesResponse, ErrorBody, IdentityInfo, MeshStatus, RoutesResponse,
    StatResponse, TapEvent, TapEventKind, TargetGroup, TrafficSplitsResponse, Version,
    WorkloadsResponse,
};

/// How long the scrapes (every second) may take to show the traffic.
const SETTLE: Duration = Duration::from_secs(30);

/// `body` read as `T`, strictly; panics naming `what` when it does not fit.
fn strict<T: DeserializeOwned + Serialize>(what: &str, body: &Value) -> T {
    let typed: T = serde_json::from_value(body.clone())
        .unwrap_or_else(|error| panic!("{what}: {error}\n{body:#}"));
    let again = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &again, body,
        "{what}: the weft-api type does not write back what the controller sent"
    );
    typed
}

/// The types read strictly here (weft-api's `strict` feature, a
/// dev-dependency): without it a field added on one side would pass.
#[test]
fn the_api_types_refuse_unknown_fields_in_tests() {
    let extra = serde_json::json!({"error": "x", "added": 1});
    assert!(serde_json::from_value::<ErrorBody>(extra).is_err());
}

/// `GET path`: its status and body as JSON.
fn get(demo: &DemoMesh, path: &str) -> (u16, Value) {
    let response = demo.controller.web_get(path).expect("GET the API");
    let body = serde_json::from_str(&response.body)
        .unwrap_or_else(|error| panic!("{path}: {error}: {}", response.body));
    (response.status, body)
}

/// Polls `path` until it answers 200 with a document `ready` accepts, which
/// must fit `T`.
fn settled<T: DeserializeOwned + Serialize>(
    demo: &DemoMesh,
    path: &str,
    ready: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + SETTLE;
    loop {
        let (status, body) = get(demo, path);
        if status == 200 {
            let typed: T = strict(path, &body);
            if ready(&typed) {
                return typed;
            }
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never settled within {SETTLE:?}; last answer {status}: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn every_endpoint_answers_the_weft_api_types() {
    let demo = DemoMesh::start("api-contract");
    // A ServiceProfile, so routes have rows besides `[DEFAULT]` (the proxies
    // follow it through their GetProfile watches).
    let mesh = std::fs::read_to_string(demo.controller.mesh_path()).unwrap();
    demo.controller.rewrite_mesh(&format!(
        "{mesh}\n---\napiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  \
         name: web.demo.svc.cluster.local\n  namespace: demo\nspec:\n  routes:\n  - name: GET /\n    \
         condition:\n      method: GET\n      pathRegex: /\n\
         ---\napiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata:\n  \
         name: web-split\n  namespace: demo\nspec:\n  service: web\n  backends:\n  \
         - service: web\n    weight: 1\n"
    ));
    demo.controller.wait_good_loads(2, SETTLE);

    let version: Version = settled(&demo, "/api/version", |_| true);
    assert_eq!(version.metrics_source, "scrape");

    let workloads: WorkloadsResponse =
        settled(&demo, "/api/workloads", |answer: &WorkloadsResponse| {
            answer.workloads.iter().all(|workload| {
                workload
                    .scrape
                    .as_ref()
                    .is_some_and(|scrape| scrape.up && workload.cert_expiry_unix.is_some())
            })
        });
    assert_eq!(workloads.workloads.len(), 2, "{workloads:?}");
    let _: WorkloadsResponse = settled(&demo, "/api/workloads?namespace=demo", |_| true);

    let has_rows = |answer: &StatResponse| {
        answer
            .rows
            .iter()
            .any(|row| row.success + row.failure > 0 && row.latency_ms.is_some())
    };
    for query in [
        "kind=namespace",
        "kind=workload&namespace=demo",
        "kind=service&namespace=demo",
        "kind=authority&namespace=demo",
        "kind=workload&namespace=demo&to=service/demo/web",
        "kind=workload&from=workload/demo/traffic",
    ] {
        let _: StatResponse = settled(&demo, &format!("/api/stat?{query}&window=1m"), has_rows);
    }
    // Rows without traffic: nulls where nothing can be computed.
    let idle: StatResponse = settled(
        &demo,
        "/api/stat?kind=workload&namespace=demo&name=traffic",
        |_| true,
    );
    assert_eq!(idle.rows.len(), 1, "{idle:?}");

    // TrafficSplits: the leaf web (of apex web) with its traffic.
    let splits: TrafficSplitsResponse = settled(
        &demo,
        "/api/trafficsplits?namespace=demo&window=1m",
        |answer: &TrafficSplitsResponse| {
            answer
                .rows
                .iter()
                .any(|row| row.rps.is_some() && row.latency_ms.is_some())
        },
    );
    assert_eq!(splits.rows.len(), 1, "{splits:?}");
    assert_eq!(
        (
            splits.rows[0].apex.as_str(),
            splits.rows[0].leaf.as_str(),
            splits.rows[0].weight.as_str()
        ),
        ("web", "web", "1"),
        "{splits:?}"
    );
    let _: TrafficSplitsResponse = settled(&demo, "/api/trafficsplits?name=none", |_| true);

    // The proxies name routes on the client side: outbound, to the service.
    let _: RoutesResponse = settled(
        &demo,
        "/api/routes?kind=workload&namespace=demo&name=traffic&to=service/demo/web",
        |answer: &RoutesResponse| {
            answer
                .rows
                .iter()
                .any(|row| row.route == "GET /" && row.latency_ms.is_some())
        },
    );
    for query in [
        "kind=workload&namespace=demo&name=web",
        "kind=service&namespace=demo&name=web",
    ] {
        let routes: RoutesResponse = settled(&demo, &format!("/api/routes?{query}"), |_| true);
        let names: Vec<&str> = routes.profiles.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web.demo.svc.cluster.local"], "{query}: {routes:?}");
        assert_eq!(routes.profiles[0].routes, ["GET /"], "{routes:?}");
    }
    // No service selects traffic: no profile applies.
    let none: RoutesResponse = settled(
        &demo,
        "/api/routes?kind=workload&namespace=demo&name=traffic",
        |_| true,
    );
    assert!(none.profiles.is_empty() && none.rows.is_empty(), "{none:?}");

    let edges: EdgesResponse = settled(
        &demo,
        "/api/edges?kind=workload",
        |answer: &EdgesResponse| !answer.rows.is_empty(),
    );
    assert!(edges.rows.iter().all(|edge| edge.secured), "{edges:?}");

    let identity: IdentityInfo = settled(&demo, "/api/identity", |_| true);
    assert!(
        identity.enabled && identity.issuer.is_some(),
        "{identity:?}"
    );
    let mesh: MeshStatus = settled(&demo, "/api/mesh", |_| true);
    assert!(mesh.valid, "{mesh:?}");
    let groups: Vec<TargetGroup> = settled(&demo, "/api/sd", |_| true);
    assert_eq!(groups.len(), 2, "{groups:?}");
    // No Server in the demo: every port of web gets the default policy.
    let authz: AuthzResponse = settled(&demo, "/api/authz?namespace=demo&workload=web", |_| true);
    assert!(!authz.ports.is_empty(), "{authz:?}");
    assert!(
        authz.ports.iter().all(|port| port.server.is_none()
            && port
                .authorizations
                .iter()
                .all(|entry| entry.kind == "default")),
        "{authz:?}"
    );

    // Errors: one shape for every endpoint.
    for path in [
        "/api/stat?kind=pod",
        "/api/stat?kind=workload&window=1h",
        "/api/routes?kind=workload",
        "/api/edges?kind=service",
        "/api/authz?namespace=demo",
    ] {
        let (status, body) = get(&demo, path);
        assert_eq!(status, 400, "{path}: {body}");
        let _: ErrorBody = strict(path, &body);
    }
    // A namespace no object of the mesh file is in: 404, saying so.
    for path in [
        "/api/stat?kind=workload&namespace=nosuch",
        "/api/edges?kind=workload&namespace=nosuch",
        "/api/trafficsplits?namespace=nosuch",
        "/api/routes?kind=service&namespace=demo&name=nosuch",
        "/api/routes?kind=workload&namespace=demo&name=nosuch",
        "/api/routes?kind=workload&namespace=demo&name=traffic&to=service/demo/nosuch",
        "/api/authz?namespace=demo&workload=nosuch",
    ] {
        let (status, body) = get(&demo, path);
        assert_eq!(status, 404, "{path}: {body}");
        let error: ErrorBody = strict(path, &body);
        assert!(error.error.contains("does not exist"), "{path}: {body}");
    }

    // Tap: every kind of event, and its refusal.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let events = runtime.block_on(async {
        let (status, body) = TapStream::open(
            demo.web_addr(),
            "kind=workload&namespace=demo&name=web",
            None,
        )
        .await
        .err()
        .expect("tap refuses a caller without the token");
        assert_eq!(status, 401);
        let _: ErrorBody = strict("/api/tap without a token", &body);
        let mut stream = TapStream::open(
            demo.web_addr(),
            "kind=namespace&namespace=demo",
            Some(&demo.token),
        )
        .await
        .expect("tap accepted");
        let mut events = Vec::new();
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            let event = stream.next(SETTLE).await.expect("a tap event");
            events.push(event);
            let kinds: Vec<&Value> = events.iter().map(|event| &event["type"]).collect();
            if ["req", "rsp", "end"]
                .iter()
                .all(|kind| kinds.iter().any(|seen| *seen == kind))
                && events.len() >= 12
            {
                break;
            }
        }
        events
    });
    let mut kinds = Vec::new();
    for event in &events {
        let typed: TapEvent = strict("a /api/tap line", event);
        kinds.push(typed.kind);
    }
    for kind in [
        TapEventKind::Request,
        TapEventKind::Response,
        TapEventKind::End,
    ] {
        assert!(kinds.contains(&kind), "no {kind:?} event: {events:?}");
    }
}

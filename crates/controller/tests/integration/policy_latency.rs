//! Measurements, not contracts: how long an inbound policy edit in the
//! mesh file takes to reach WatchPort streams of the real `weft-controller`
//! with 1,000 Servers (one stream; 1,000 streams). Printed as p50/p99/max;
//! run with `--no-capture` to see them.

use std::time::{Duration, Instant};

use crate::common::Scratch;
use crate::policy_inbound::{Controller, PATIENCE, next, spec, watch_port};

/// A measurement, not a contract: with 1,000 Servers in the mesh file (and
/// 1,000 Workloads), how long an edit of one AuthorizationPolicy takes to
/// reach the WatchPort stream of the port it changes. Printed as p50/p99.
#[tokio::test]
async fn watch_port_latency_with_1000_servers() {
    const SERVERS: usize = 1_000;
    const EDITS: usize = 30;
    let scratch = Scratch::new("policy-latency");
    let mut base = String::new();
    for index in 0..SERVERS {
        base.push_str(&format!(
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: app-{index}, namespace: load, labels: {{app: app-{index}}}}}\nspec: {{addresses: [10.1.{}.{}], ports: [{{name: http, port: 8080}}]}}\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: app-{index}, namespace: load}}\nspec: {{podSelector: {{matchLabels: {{app: app-{index}}}}}, port: http, proxyProtocol: HTTP/1}}\n",
            index / 250,
            index % 250 + 1
        ));
    }
    let policy = |identity: usize| {
        format!(
            "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: app-0-policy, namespace: load}}\nspec:\n  targetRef: {{group: policy.linkerd.io, kind: Server, name: app-0}}\n  requiredAuthenticationRefs: [{{kind: ServiceAccount, name: client-{identity}}}]\n"
        )
    };
    scratch.replace("mesh.yaml", format!("{base}{}", policy(0)).as_bytes());
    let controller = Controller::start(&scratch.path("mesh.yaml"), &[]).await;
    let mut client = controller.client().await;
    let mut stream = watch_port(&mut client, spec("load", "app-0", 8080)).await;
    let _ = next(&mut stream, PATIENCE).await;
    let mut latencies = Vec::new();
    for edit in 1..=EDITS {
        let text = format!("{base}{}", policy(edit));
        let started = Instant::now();
        scratch.replace("mesh.yaml", text.as_bytes());
        let update = next(&mut stream, Duration::from_secs(10)).await;
        latencies.push(started.elapsed());
        assert_eq!(update.authorizations.len(), 1);
    }
    latencies.sort();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile).round() as usize];
    eprintln!(
        "policy edit → WatchPort with {SERVERS} Servers: p50 {:?}, p99 {:?}, max {:?} ({EDITS} edits)",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

/// A measurement, not a contract: 1,000 WatchPort streams (one per
/// Workload, each selected by its own Server, on 4 connections) and an
/// AuthorizationPolicy targeting the whole namespace edited: how long until
/// every stream has the new answer. Printed as p50/p99/max over all
/// (stream, edit) pairs.
#[tokio::test]
async fn watch_port_fan_out_with_1000_servers() {
    const WORKLOADS: usize = 1_000;
    const CONNECTIONS: usize = 4;
    const EDITS: usize = 5;
    let scratch = Scratch::new("policy-fan-out");
    let mut base = String::new();
    for index in 0..WORKLOADS {
        base.push_str(&format!(
            "---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {{name: app-{index}, namespace: load, labels: {{app: app-{index}}}}}\nspec: {{addresses: [10.2.{}.{}], ports: [{{name: http, port: 8080}}]}}\n---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {{name: app-{index}, namespace: load}}\nspec: {{podSelector: {{matchLabels: {{app: app-{index}}}}}, port: http}}\n",
            index / 250,
            index % 250 + 1
        ));
    }
    let policy = |identity: usize| {
        format!(
            "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {{name: everyone-from-{identity}, namespace: load}}\nspec:\n  targetRef: {{kind: Namespace, name: load}}\n  requiredAuthenticationRefs: [{{kind: ServiceAccount, name: client-{identity}}}]\n"
        )
    };
    scratch.replace("mesh.yaml", format!("{base}{}", policy(0)).as_bytes());
    let controller = Controller::start(&scratch.path("mesh.yaml"), &[]).await;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(controller.client().await);
    }
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    for index in 0..WORKLOADS {
        let client = &mut clients[index % CONNECTIONS];
        let mut stream = watch_port(client, spec("load", &format!("app-{index}"), 8080)).await;
        let _ = next(&mut stream, PATIENCE).await;
        let sender = sender.clone();
        tokio::spawn(async move {
            while let Ok(Some(server)) = stream.message().await {
                let name = server.authorizations[0].labels["name"].clone();
                if sender.send((index, name, Instant::now())).is_err() {
                    return;
                }
            }
        });
    }
    let mut latencies = Vec::new();
    for edit in 1..=EDITS {
        let expected = format!("everyone-from-{edit}");
        let started = Instant::now();
        scratch.replace("mesh.yaml", format!("{base}{}", policy(edit)).as_bytes());
        let mut seen = std::collections::HashSet::new();
        while seen.len() < WORKLOADS {
            let (index, name, at) = tokio::time::timeout(Duration::from_secs(30), receiver.recv())
                .await
                .expect("every stream updated in time")
                .expect("streams open");
            if name == expected && seen.insert(index) {
                latencies.push(at - started);
            }
        }
    }
    latencies.sort();
    let at = |quantile: f64| latencies[((latencies.len() - 1) as f64 * quantile).round() as usize];
    eprintln!(
        "namespace policy edit → {WORKLOADS} WatchPort streams ({WORKLOADS} Servers): p50 {:?}, p99 {:?}, max {:?} ({EDITS} edits)",
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}

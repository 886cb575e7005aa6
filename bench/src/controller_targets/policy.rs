//! The inbound policy scenario: one Server per Service (selecting its
//! Workloads' `http` port) and one namespace-wide AuthorizationPolicy per
//! namespace; `--policy-streams` WatchPort streams, one on the first Workload
//! of each Service in turn; every edit renames the client identity of every
//! namespace's policy, so every stream gets one new answer per edit.
//!
//! ```text
//! mesh.yaml + Servers + policies(0) ─► WatchPort streams (first answer each)
//!   each edit: t0 = rename(tmp, mesh.yaml) with policies(edit); per stream: t(answer) − t0
//! ```
//!
//! [`policy_documents`] is pure; [`scenario`] drives the streams.

use std::fmt::Write;
use std::time::{Duration, Instant};

use anyhow::bail;
use linkerd2_proxy_api::inbound::PortSpec;
use linkerd2_proxy_api::inbound::inbound_server_policies_client::InboundServerPoliciesClient;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use super::mesh::{MeshShape, WORKLOAD_PORT};
use super::report::{EditResults, Summary};
use super::{EDIT_TIMEOUT, MeshFile, last_load_ms};

/// The Servers (one per Service) and, per namespace, an AuthorizationPolicy
/// targeting the namespace that admits the service account `client-<edit>`.
pub fn policy_documents(shape: &MeshShape, edit: usize) -> String {
    let mut text = String::with_capacity(shape.services * 260 + shape.namespaces * 300);
    for service in 0..shape.services {
        let name = MeshShape::service_name(service);
        let _ = write!(
            text,
            "---\napiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata:\n  name: {name}-http\n  \
             namespace: {}\nspec:\n  podSelector: {{matchLabels: {{app: {name}}}}}\n  port: http\n  \
             proxyProtocol: HTTP/1\n",
            shape.namespace(service)
        );
    }
    for namespace in 0..shape.namespaces.max(1) {
        let _ = write!(
            text,
            "---\napiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  \
             name: bench-clients\n  namespace: ns-{namespace}\nspec:\n  targetRef: {{kind: Namespace, name: ns-{namespace}}}\n  \
             requiredAuthenticationRefs: [{{kind: ServiceAccount, name: client-{edit}}}]\n"
        );
    }
    text
}

/// What the scenario needs from the run.
pub(super) struct PolicyRun<'a> {
    /// The generated mesh.
    pub(super) shape: MeshShape,
    /// The mesh without policy.
    pub(super) base_text: &'a str,
    /// The file to edit.
    pub(super) mesh_file: &'a MeshFile,
    /// Where InboundServerPolicies is served (the Destination listener).
    pub(super) address: std::net::SocketAddr,
    /// The controller's admin address (reload times).
    pub(super) admin: std::net::SocketAddr,
    /// WatchPort streams.
    pub(super) streams: usize,
    /// gRPC connections they share.
    pub(super) connections: usize,
    /// Edits.
    pub(super) edits: usize,
    /// Pause between edits.
    pub(super) pause: Duration,
}

/// Runs the scenario; the mesh file is left without policy.
pub(super) async fn scenario(run: PolicyRun<'_>) -> anyhow::Result<EditResults> {
    let name = "policy: namespace-wide AuthorizationPolicy edit, one WatchPort stream per Server";
    eprintln!("controller-targets: {name}");
    run.mesh_file.write(&format!(
        "{}{}",
        run.base_text,
        policy_documents(&run.shape, 0)
    ))?;
    tokio::time::sleep(run.pause.max(Duration::from_secs(2))).await;
    let endpoint = Endpoint::from_shared(format!("http://{}", run.address))?
        .connect_timeout(Duration::from_secs(5));
    let mut channels: Vec<Channel> = Vec::with_capacity(run.connections);
    for _ in 0..run.connections.max(1) {
        channels.push(endpoint.connect().await?);
    }
    let (sender, mut received) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut tasks = JoinSet::new();
    for stream in 0..run.streams {
        let service = stream % run.shape.services.max(1);
        let mut client =
            InboundServerPoliciesClient::new(channels[stream % channels.len()].clone());
        let spec = PortSpec {
            workload: format!(
                r#"{{"ns":"{}","pod":"{}-0"}}"#,
                run.shape.namespace(service),
                MeshShape::service_name(service)
            ),
            port: u32::from(WORKLOAD_PORT),
        };
        let mut answers = match client.watch_port(spec).await {
            Ok(response) => response.into_inner(),
            Err(status) => bail!("WatchPort refused: {status}"),
        };
        if answers.message().await?.is_none() {
            bail!("a WatchPort stream ended before its first answer");
        }
        let sender = sender.clone();
        tasks.spawn(async move {
            while let Ok(Some(_)) = answers.message().await {
                if sender.send((stream, Instant::now())).is_err() {
                    return;
                }
            }
        });
    }
    eprintln!("  {} WatchPort streams open", run.streams);
    let (mut latencies, mut firsts, mut spreads, mut reloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut misses = 0;
    for edit in 1..=run.edits {
        while received.try_recv().is_ok() {}
        let text = format!("{}{}", run.base_text, policy_documents(&run.shape, edit));
        let written = Instant::now();
        run.mesh_file.write(&text)?;
        let mut seen = vec![false; run.streams];
        let mut arrivals = Vec::with_capacity(run.streams);
        let deadline = tokio::time::Instant::now() + EDIT_TIMEOUT;
        while arrivals.len() < run.streams {
            let Ok(Some((stream, at))) = tokio::time::timeout_at(deadline, received.recv()).await
            else {
                break;
            };
            if !std::mem::replace(&mut seen[stream], true) {
                arrivals.push(at.duration_since(written));
            }
        }
        misses += run.streams - arrivals.len();
        arrivals.sort();
        if let (Some(first), Some(last)) = (arrivals.first(), arrivals.last()) {
            firsts.push(*first);
            spreads.push(*last - *first);
            eprintln!(
                "  edit {edit}: {} of {} streams, first {:.1} ms, last {:.1} ms",
                arrivals.len(),
                run.streams,
                first.as_secs_f64() * 1000.0,
                last.as_secs_f64() * 1000.0
            );
        }
        latencies.extend(arrivals);
        if let Ok(reload_ms) = last_load_ms(run.admin) {
            reloads.push(Duration::from_secs_f64(reload_ms / 1000.0));
        }
        tokio::time::sleep(run.pause).await;
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    run.mesh_file.write(run.base_text)?;
    tokio::time::sleep(run.pause).await;
    Ok(EditResults {
        name: name.to_string(),
        streams: run.streams,
        receivers_per_edit: run.streams,
        edits: run.edits,
        latency: Summary::of(&latencies),
        first: Summary::of(&firsts),
        spread: Summary::of(&spreads),
        reload: Summary::of(&reloads),
        misses,
        unexpected: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_per_service_and_one_policy_per_namespace() {
        let shape = MeshShape {
            services: 4,
            endpoints_per_service: 2,
            namespaces: 2,
        };
        let text = policy_documents(&shape, 3);
        assert_eq!(text.matches("kind: Server\n").count(), 4);
        assert_eq!(text.matches("kind: AuthorizationPolicy\n").count(), 2);
        assert!(text.contains("name: svc-3-http\n  namespace: ns-1\n"));
        assert!(text.contains("name: client-3}"));
        let parsed = document_count(&format!("{}{text}", shape.render(None)));
        assert_eq!(parsed, 4 + 2 + 4 + 8);
    }

    /// How many YAML documents the text holds.
    fn document_count(text: &str) -> usize {
        text.matches("\n---\n").count() + usize::from(text.starts_with("---\n"))
    }
}

//! The OutboundPolicies client: one `Watch` stream per target, shared by
//! every connection to it through [`PolicyCache`] and evicted when idle.
//!
//! ```text
//! PolicyCache::watch("10.96.0.10:80") ─► cached PolicyWatch clone (or a new Watch)
//!   task: Watch(TrafficSpec{source_workload, target}) ─► message ─► convert ─► Resolved
//!         stream ends / fails ─► backoff (100 ms → 10 s, jitter) ─► Watch again (last answer kept)
//!         NotFound | Unimplemented | InvalidArgument | FailedPrecondition ─► NotDiscoverable (ends)
//!   timer: still Pending after the initial timeout ─► Unresolved (keeps trying)
//! sweeper, every idle_timeout / 4: entries only the cache holds, idle ≥ idle_timeout ─► evicted
//! ```
//!
//! At most [`MAX_POLICY_TARGETS`] targets are watched at once; a new
//! target past that gets no policy (routing by profile alone), so a client
//! connecting to many addresses cannot make the proxy hold unbounded
//! streams.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use linkerd2_proxy_api::outbound as proto;
use linkerd2_proxy_api::outbound::outbound_policies_client::OutboundPoliciesClient;
use tokio::sync::watch;
use tonic::Code;

use super::OutboundPolicy;
use crate::balance::p2c::Random;
use crate::discovery::Lookup;
use crate::discovery::backoff::ExponentialBackoff;
use crate::discovery::cache::{Entry, evict_idle, spawn_sweeper};
use crate::discovery::client::{LookupWatch, run_with_initial_timeout};
use crate::policy::PolicyChannel;

/// Targets watched at once at most.
pub(crate) const MAX_POLICY_TARGETS: usize = 10_000;

/// What the watch of one target says.
pub(crate) type PolicyLookup = Lookup<OutboundPolicy>;

/// A handle on one target's policy watch; the stream ends when the last
/// clone is dropped.
pub(crate) type PolicyWatch = LookupWatch<OutboundPolicy>;

/// Statuses meaning "no policy for this target": asking again would get
/// the same answer. `Unimplemented`: a controller without the service.
pub(crate) fn is_rejection(code: Code) -> bool {
    matches!(
        code,
        Code::NotFound | Code::Unimplemented | Code::InvalidArgument | Code::FailedPrecondition
    )
}

/// The `TrafficSpec` target of `key`: an address for `ip:port`, else an
/// authority (`name:port`).
pub(crate) fn traffic_target(key: &str) -> proto::traffic_spec::Target {
    match key.parse::<SocketAddr>() {
        Ok(addr) => proto::traffic_spec::Target::Addr(addr.into()),
        Err(_) => proto::traffic_spec::Target::Authority(key.to_string()),
    }
}

/// Shared watches per target. Cheap to clone; clones share entries.
#[derive(Clone, Debug)]
pub(crate) struct PolicyCache {
    shared: Arc<Shared>,
    entries: Arc<Mutex<HashMap<String, Entry<PolicyWatch>>>>,
}

#[derive(Debug)]
struct Shared {
    channel: PolicyChannel,
    initial_timeout: Duration,
    backoff: ExponentialBackoff,
    random: Random,
    max_targets: usize,
}

impl PolicyCache {
    /// A cache asking through `channel`; a watch with no answer within
    /// `initial_timeout` says `Unresolved`; entries nobody holds are
    /// evicted after `idle_timeout`. Spawns the sweeper (inside a tokio
    /// runtime); it stops when the last clone is dropped.
    pub(crate) fn new(
        channel: PolicyChannel,
        initial_timeout: Duration,
        idle_timeout: Duration,
    ) -> PolicyCache {
        PolicyCache::with_limit(channel, initial_timeout, idle_timeout, MAX_POLICY_TARGETS)
    }

    /// Like [`PolicyCache::new`] with at most `max_targets` watches.
    pub(crate) fn with_limit(
        channel: PolicyChannel,
        initial_timeout: Duration,
        idle_timeout: Duration,
        max_targets: usize,
    ) -> PolicyCache {
        let entries = Arc::new(Mutex::new(HashMap::new()));
        spawn_sweeper(&entries, idle_timeout, move |entries, now| {
            let what = "outbound policy watch";
            evict_idle(entries, now, idle_timeout, what, PolicyWatch::holders);
        });
        PolicyCache {
            shared: Arc::new(Shared {
                channel,
                initial_timeout,
                backoff: ExponentialBackoff::default(),
                random: Random::from_entropy(),
                max_targets,
            }),
            entries,
        }
    }

    /// The watch of `target` (`ip:port` or `name:port`), shared; `None`
    /// for a new target past the limit.
    pub(crate) fn watch(&self, target: &str) -> Option<PolicyWatch> {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get_mut(target) {
            entry.idle_since = None;
            return Some(entry.watch.clone());
        }
        if entries.len() >= self.shared.max_targets {
            tracing::debug!(%target, "too many outbound policy watches; no policy");
            return None;
        }
        let watch = spawn(self.shared.clone(), target.to_string());
        entries.insert(
            target.to_string(),
            Entry {
                watch: watch.clone(),
                idle_since: None,
            },
        );
        Some(watch)
    }
}

fn lock(
    entries: &Mutex<HashMap<String, Entry<PolicyWatch>>>,
) -> MutexGuard<'_, HashMap<String, Entry<PolicyWatch>>> {
    // Every operation leaves the map consistent before it can panic.
    entries.lock().unwrap_or_else(PoisonError::into_inner)
}

fn spawn(shared: Arc<Shared>, target: String) -> PolicyWatch {
    let (sender, receiver) = watch::channel(Lookup::Pending);
    let initial_timeout = shared.initial_timeout;
    let task = tokio::spawn(async move {
        let run = run(&shared, &target, &sender);
        run_with_initial_timeout(run, initial_timeout, &sender).await;
    });
    PolicyWatch::of_task(receiver, task.abort_handle())
}

/// Watches `target` until rejected, reopening with backoff.
async fn run(shared: &Shared, target: &str, sender: &watch::Sender<PolicyLookup>) {
    let mut attempt = 0u32;
    loop {
        let request = proto::TrafficSpec {
            source_workload: shared.channel.workload.clone(),
            target: Some(traffic_target(target)),
        };
        tracing::debug!(%target, attempt, "watching the outbound policy");
        let mut client = OutboundPoliciesClient::new(shared.channel.channel.clone());
        let ending = match client.watch(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                loop {
                    match stream.message().await {
                        Ok(Some(message)) => match OutboundPolicy::try_from(message) {
                            Ok(policy) => {
                                attempt = 0;
                                sender.send_replace(Lookup::Resolved(Arc::new(policy)));
                            }
                            Err(error) => {
                                tracing::warn!(%target, %error, "ignoring a bad outbound policy");
                            }
                        },
                        Ok(None) => break None,
                        Err(status) => break Some(status),
                    }
                }
            }
            Err(status) => Some(status),
        };
        if let Some(status) = ending {
            if is_rejection(status.code()) {
                tracing::debug!(%target, ?status, "no outbound policy");
                // A rejection after an answer keeps nothing: the target
                // has no policy any more.
                sender.send_replace(Lookup::NotDiscoverable {
                    reason: format!("{:?}: {}", status.code(), status.message()),
                });
                return;
            }
            tracing::debug!(%target, ?status, "outbound policy stream failed");
        }
        let random = shared.random.next_fraction();
        let delay = shared.backoff.delay(attempt, random);
        attempt = attempt.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

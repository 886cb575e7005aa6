//! Bounds on open Destination streams: per client and in total.
//!
//! ```text
//! Get / GetProfile ─► ClientKey (verified identity, else peer IP)
//!                  ─► StreamLimiter::try_open ─► admit (pure) ─► StreamPermit (held by the stream)
//!                                                            └► Refusal ─► RESOURCE_EXHAUSTED,
//!                                                               destination_streams_refused_total{reason},
//!                                                               a log line (at most one a second)
//! ```
//!
//! A permit is given back when its stream ends (the client left, or the
//! server stopped), so the counts follow the streams actually open.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// How many streams may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Per client (`--destination-max-streams-per-client`).
    pub per_client: usize,
    /// All clients together (`--destination-max-streams`).
    pub total: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            per_client: 1_000,
            total: 20_000,
        }
    }
}

/// Who a stream is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// The identity of a verified client certificate.
    Identity(String),
    /// The peer's IP address (plaintext, or TLS without a client certificate).
    Address(IpAddr),
    /// Neither is known (a transport that reports no peer).
    Unknown,
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientKey::Identity(identity) => write!(formatter, "identity {identity}"),
            ClientKey::Address(address) => write!(formatter, "address {address}"),
            ClientKey::Unknown => formatter.write_str("an unknown peer"),
        }
    }
}

/// Why a stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// The client already holds its share of streams.
    #[error(
        "too many Destination streams from one client (limit {0}, --destination-max-streams-per-client)"
    )]
    PerClient(usize),
    /// The controller already serves as many streams as it may.
    #[error("too many Destination streams in total (limit {0}, --destination-max-streams)")]
    Total(usize),
}

impl Refusal {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::PerClient(_) => "per_client",
            Refusal::Total(_) => "total",
        }
    }
}

/// The decision: may one more stream open, with `client_open` streams open
/// for its client and `total_open` overall?
pub fn admit(client_open: usize, total_open: usize, limits: StreamLimits) -> Result<(), Refusal> {
    if client_open >= limits.per_client {
        return Err(Refusal::PerClient(limits.per_client));
    }
    if total_open >= limits.total {
        return Err(Refusal::Total(limits.total));
    }
    Ok(())
}

#[derive(Debug, Default)]
struct Counts {
    per_client: HashMap<ClientKey, usize>,
    total: usize,
}

/// Counts open streams and hands out permits within the limits.
#[derive(Debug)]
pub struct StreamLimiter {
    limits: StreamLimits,
    counts: Mutex<Counts>,
    log: RefusalLog,
}

impl StreamLimiter {
    /// A limiter with nothing open.
    pub fn new(limits: StreamLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            counts: Mutex::default(),
            log: RefusalLog::new(),
        })
    }

    /// A permit for one more stream of `client`, or why not. A refusal is
    /// logged (at most one line a second, with the count held back).
    pub fn try_open(self: &Arc<Self>, client: ClientKey) -> Result<StreamPermit, Refusal> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let client_open = counts.per_client.get(&client).copied().unwrap_or(0);
        if let Err(refusal) = admit(client_open, counts.total, self.limits) {
            drop(counts);
            if let Some(held_back) = self.log.allow() {
                tracing::info!(%client, held_back, "Destination stream refused: {refusal}");
            }
            return Err(refusal);
        }
        *counts.per_client.entry(client.clone()).or_default() += 1;
        counts.total += 1;
        Ok(StreamPermit {
            limiter: Arc::clone(self),
            client,
        })
    }

    /// Streams open now: (for `client`, in total).
    pub fn open(&self, client: &ClientKey) -> (usize, usize) {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        (
            counts.per_client.get(client).copied().unwrap_or(0),
            counts.total,
        )
    }

    fn close(&self, client: &ClientKey) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(open) = counts.per_client.get_mut(client) {
            *open -= 1;
            if *open == 0 {
                counts.per_client.remove(client);
            }
        }
    }
}

/// One open stream, counted until dropped.
#[derive(Debug)]
pub struct StreamPermit {
    limiter: Arc<StreamLimiter>,
    client: ClientKey,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.limiter.close(&self.client);
    }
}

/// At most one refusal line a second; the lines held back are counted and
/// reported with the next one written.
#[derive(Debug)]
struct RefusalLog {
    epoch: Instant,
    /// The second (since `epoch`) of the last line written, plus one; 0: none yet.
    last_second: AtomicU64,
    held_back: AtomicU64,
}

impl RefusalLog {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            last_second: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(lines held back since the last one)` when a line may be written now.
    fn allow(&self) -> Option<u64> {
        let now = self.epoch.elapsed().as_secs() + 1;
        let last = self.last_second.load(Ordering::Relaxed);
        if last != now
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::Relaxed));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_table() {
        let limits = StreamLimits {
            per_client: 2,
            total: 3,
        };
        let cases = [
            (0, 0, Ok(())),
            (1, 2, Ok(())),
            (2, 2, Err(Refusal::PerClient(2))),
            (0, 3, Err(Refusal::Total(3))),
            // The client's own limit is named first.
            (2, 3, Err(Refusal::PerClient(2))),
        ];
        for (client_open, total_open, expected) in cases {
            assert_eq!(
                admit(client_open, total_open, limits),
                expected,
                "{client_open} {total_open}"
            );
        }
    }

    #[test]
    fn permits_are_counted_per_client_and_given_back() {
        let limiter = StreamLimiter::new(StreamLimits {
            per_client: 2,
            total: 3,
        });
        let alice = ClientKey::Address("10.0.0.1".parse().unwrap());
        let bob =
            ClientKey::Identity("bob.shop.serviceaccount.identity.linkerd.cluster.local".into());
        let first = limiter.try_open(alice.clone()).unwrap();
        let _second = limiter.try_open(alice.clone()).unwrap();
        assert_eq!(
            limiter.try_open(alice.clone()).unwrap_err(),
            Refusal::PerClient(2)
        );
        let _third = limiter.try_open(bob.clone()).unwrap();
        assert_eq!(
            limiter.try_open(bob.clone()).unwrap_err(),
            Refusal::Total(3)
        );
        drop(first);
        assert_eq!(limiter.open(&alice), (1, 2));
        assert!(limiter.try_open(bob.clone()).is_ok());
        assert_eq!(limiter.open(&bob), (1, 2), "the permit was dropped at once");
    }

    #[test]
    fn refusal_lines_are_limited_to_one_a_second() {
        let log = RefusalLog::new();
        assert_eq!(log.allow(), Some(0));
        assert_eq!(log.allow(), None);
        assert_eq!(log.allow(), None);
        assert_eq!(log.held_back.load(Ordering::Relaxed), 2);
    }
}

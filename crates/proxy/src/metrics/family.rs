//! [`IdleFamily`]: a labelled metric family whose label sets expire when
//! nobody has used them for a while, so cardinality stays bounded by the
//! traffic of the last retention period rather than the process's lifetime.
//!
//! A label set that is still held (an open connection's byte counters, a
//! response still streaming) is never dropped, whatever its age.
//!
//! Some label values come from clients (the `authority` of inbound
//! requests), so a family also holds at most [`MAX_LABEL_SETS`]: past that,
//! new label sets share one metric that is not exported, so a client inventing Host headers cannot grow
//! the proxy's memory. The first refusal is logged.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The most label sets one family holds.
pub(crate) const MAX_LABEL_SETS: usize = 10_000;

/// A metric together with the last time it was handed out.
#[derive(Debug)]
pub(crate) struct Tracked<M> {
    metric: M,
    last_used_millis: AtomicU64,
}

impl<M> Deref for Tracked<M> {
    type Target = M;

    fn deref(&self) -> &M {
        &self.metric
    }
}

/// A family of metrics keyed by label set, with idle expiry.
pub(crate) struct IdleFamily<L, M> {
    shared: Arc<Shared<L, M>>,
}

struct Shared<L, M> {
    metrics: RwLock<HashMap<L, Arc<Tracked<M>>>>,
    make: fn() -> M,
    epoch: Instant,
    /// Stands in for label sets past the limit; never exported.
    overflow: Arc<Tracked<M>>,
    overflowed: AtomicU64,
    max_label_sets: usize,
}

impl<L, M> Clone for IdleFamily<L, M> {
    fn clone(&self) -> Self {
        IdleFamily {
            shared: self.shared.clone(),
        }
    }
}

impl<L, M> std::fmt::Debug for IdleFamily<L, M> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("IdleFamily")
    }
}

impl<L: Clone + Hash + Eq, M> IdleFamily<L, M> {
    /// An empty family whose metrics are made by `make`.
    pub(crate) fn new(make: fn() -> M) -> Self {
        IdleFamily::with_limit(make, MAX_LABEL_SETS)
    }

    /// An empty family holding at most `max_label_sets` label sets.
    pub(crate) fn with_limit(make: fn() -> M, max_label_sets: usize) -> Self {
        IdleFamily {
            shared: Arc::new(Shared {
                metrics: RwLock::new(HashMap::new()),
                make,
                epoch: Instant::now(),
                overflow: Arc::new(Tracked {
                    metric: make(),
                    last_used_millis: AtomicU64::new(0),
                }),
                overflowed: AtomicU64::new(0),
                max_label_sets,
            }),
        }
    }

    /// How many times a new label set was refused because the family was full.
    #[cfg(test)]
    pub(crate) fn overflowed(&self) -> u64 {
        self.shared.overflowed.load(Ordering::Relaxed)
    }

    fn now_millis(&self) -> u64 {
        self.shared.epoch.elapsed().as_millis() as u64
    }

    /// The metric for `labels`, created on first use; marks it as used now.
    pub(crate) fn get(&self, labels: &L) -> Arc<Tracked<M>> {
        let now = self.now_millis();
        if let Some(tracked) = self
            .shared
            .metrics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(labels)
        {
            tracked.last_used_millis.store(now, Ordering::Relaxed);
            return tracked.clone();
        }
        let mut metrics = self
            .shared
            .metrics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if metrics.len() >= self.shared.max_label_sets && !metrics.contains_key(labels) {
            if self.shared.overflowed.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    limit = self.shared.max_label_sets,
                    "a metric family reached its label-set limit; new label sets are not recorded until idle ones expire"
                );
            }
            return self.shared.overflow.clone();
        }
        let tracked = metrics.entry(labels.clone()).or_insert_with(|| {
            Arc::new(Tracked {
                metric: (self.shared.make)(),
                last_used_millis: AtomicU64::new(now),
            })
        });
        tracked.last_used_millis.store(now, Ordering::Relaxed);
        tracked.clone()
    }

    /// Drops label sets unused for longer than `retain` and held by nobody.
    /// Returns how many were dropped.
    pub(crate) fn expire(&self, retain: Duration) -> usize {
        let cutoff = self.now_millis().saturating_sub(retain.as_millis() as u64);
        let mut metrics = self
            .shared
            .metrics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let before = metrics.len();
        metrics.retain(|_, tracked| {
            Arc::strong_count(tracked) > 1
                || tracked.last_used_millis.load(Ordering::Relaxed) >= cutoff
        });
        before - metrics.len()
    }

    /// How many label sets the family holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shared
            .metrics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl<L, M> EncodeMetric for IdleFamily<L, M>
where
    L: Clone + Hash + Eq + EncodeLabelSet,
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let metrics = self
            .shared
            .metrics
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        for (labels, tracked) in metrics.iter() {
            tracked.metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    fn is_empty(&self) -> bool {
        self.shared
            .metrics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty()
    }
}

/// Something whose idle entries can be expired; lets the app sweep every
/// family from one task.
pub(crate) trait Expire: Send + Sync {
    /// Drops idle entries; returns how many.
    fn expire_idle(&self, retain: Duration) -> usize;
}

impl<L, M> Expire for IdleFamily<L, M>
where
    L: Clone + Hash + Eq + Send + Sync,
    M: Send + Sync,
{
    fn expire_idle(&self, retain: Duration) -> usize {
        self.expire(retain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;

    #[test]
    fn idle_label_sets_expire_but_held_ones_stay() {
        let family: IdleFamily<Vec<(String, String)>, Counter> = IdleFamily::new(Counter::default);
        let idle = vec![("authority".to_string(), "idle:80".to_string())];
        let held = vec![("authority".to_string(), "held:80".to_string())];
        family.get(&idle).inc();
        let handle = family.get(&held);
        handle.inc();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(family.expire(Duration::from_millis(1)), 1);
        assert_eq!(family.len(), 1);
        assert_eq!(family.get(&held).get(), 1);
        drop(handle);
        assert_eq!(family.expire(Duration::from_secs(60)), 0, "recently used");
    }

    #[test]
    fn a_full_family_refuses_new_label_sets() {
        let family: IdleFamily<String, Counter> = IdleFamily::with_limit(Counter::default, 2);
        family.get(&"a".to_string()).inc();
        family.get(&"b".to_string()).inc();
        family.get(&"c".to_string()).inc();
        family.get(&"a".to_string()).inc();
        assert_eq!(family.len(), 2);
        assert_eq!(family.overflowed(), 1);
        assert_eq!(
            family.get(&"a".to_string()).get(),
            2,
            "existing sets still count"
        );
    }
}

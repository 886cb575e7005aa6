//! The scrape store: every kept series of every proxy over a bounded
//! window (`--metrics-retention`), and the evaluation of [`Query`]s over it.
//!
//! ```text
//! scrape ─► ingest(target labels + kept samples, time) ─► series: (metric, labels) → [(time, value)]
//!                                                          trim: samples older than the retention go
//! Query ─► evaluate(now): select by matchers ─► per series increase / latest ─► sum by group
//! ```
//!
//! Label strings are interned, so a thousand series of one proxy share one
//! copy of each name and value.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use super::parse::KeptSample;
use super::query::{
    Group, Operation, Query, extrapolated_increase, extrapolated_increase_covering,
    histogram_quantile,
};

/// A series' identity: its metric and sorted labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    metric: &'static str,
    labels: Box<[(Arc<str>, Arc<str>)]>,
}

impl SeriesKey {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|(key, _)| (**key).cmp(name))
            .ok()
            .map(|index| &*self.labels[index].1)
    }
}

/// The samples of every series in the retention window.
#[derive(Debug)]
pub struct Store {
    retention: Duration,
    /// A gauge sample older than this is not "latest" any more (its proxy
    /// stopped answering or stopped reporting it).
    freshness: Duration,
    series: HashMap<SeriesKey, VecDeque<(f64, f64)>>,
    strings: HashSet<Arc<str>>,
    /// When each target (its labels) was last scraped.
    last_scrapes: HashMap<Vec<(String, String)>, f64>,
}

impl Store {
    /// An empty store keeping `retention` of samples; gauges count while
    /// younger than `freshness` (about two scrape intervals).
    pub fn new(retention: Duration, freshness: Duration) -> Self {
        Self {
            retention,
            freshness,
            series: HashMap::new(),
            strings: HashSet::new(),
            last_scrapes: HashMap::new(),
        }
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(interned) = self.strings.get(text) {
            return Arc::clone(interned);
        }
        let interned: Arc<str> = Arc::from(text);
        self.strings.insert(Arc::clone(&interned));
        interned
    }

    /// Adds one scrape of a target at `time` (Unix seconds): each sample
    /// with the target's labels (`namespace`, `workload`, ...) added;
    /// samples whose labels became equal (dropped labels) are summed. A
    /// counter that appears on a target scraped before starts with a zero
    /// at that scrape (it did not exist then), so its first requests count.
    pub fn ingest(&mut self, target_labels: &[(&str, &str)], samples: &[KeptSample], time: f64) {
        let target: Vec<(String, String)> = target_labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let previous = self.last_scrapes.insert(target, time);
        let mut summed: HashMap<SeriesKey, f64> = HashMap::new();
        for sample in samples {
            let mut labels: Vec<(Arc<str>, Arc<str>)> = sample
                .labels
                .iter()
                .filter(|(key, _)| !target_labels.iter().any(|(target, _)| target == key))
                .map(|(key, value)| (self.intern(key), self.intern(value)))
                .collect();
            for (key, value) in target_labels {
                let label = (self.intern(key), self.intern(value));
                labels.push(label);
            }
            labels.sort();
            let key = SeriesKey {
                metric: sample.metric,
                labels: labels.into_boxed_slice(),
            };
            *summed.entry(key).or_default() += sample.value;
        }
        for (key, value) in summed {
            let samples = self.series.entry(key.clone()).or_default();
            if samples.is_empty()
                && let Some(previous) = previous
                && is_counter(key.metric)
            {
                samples.push_back((previous, 0.0));
            }
            samples.push_back((time, value));
        }
    }

    /// Drops samples older than the retention, then empty series and
    /// strings nothing uses any more.
    pub fn trim(&mut self, now: f64) {
        let oldest = now - self.retention.as_secs_f64();
        self.series.retain(|_, samples| {
            while samples.front().is_some_and(|(time, _)| *time < oldest) {
                samples.pop_front();
            }
            samples.shrink_to(samples.len() + 4);
            !samples.is_empty()
        });
        self.strings.retain(|text| Arc::strong_count(text) > 1);
        self.last_scrapes.retain(|_, time| *time >= oldest);
    }

    /// How many series are stored.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// How many samples are stored.
    pub fn sample_count(&self) -> usize {
        self.series.values().map(VecDeque::len).sum()
    }

    /// Evaluates a query at `now` (Unix seconds).
    pub fn evaluate(&self, query: &Query, now: f64) -> Vec<Group> {
        let start = now - query.window.as_secs_f64();
        let selected = self.series.iter().filter(|(key, _)| {
            key.metric == query.metric
                && query
                    .matchers
                    .iter()
                    .all(|matcher| matcher.matches(key.label(matcher.label())))
        });
        let group_of = |key: &SeriesKey| -> BTreeMap<String, String> {
            query
                .group_by
                .iter()
                .map(|label| {
                    (
                        label.clone(),
                        key.label(label).unwrap_or_default().to_string(),
                    )
                })
                .collect()
        };
        match query.operation {
            Operation::Increase => {
                let mut groups: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
                for (key, samples) in selected {
                    let samples = samples.make_contiguous_copy();
                    if let Some(increase) = extrapolated_increase(&samples, start, now) {
                        *groups.entry(group_of(key)).or_default() += increase;
                    }
                }
                groups.into_iter().collect()
            }
            Operation::Covered => {
                let mut groups: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
                for (key, samples) in selected {
                    let samples = samples.make_contiguous_copy();
                    if let Some((_, covered)) = extrapolated_increase_covering(&samples, start, now)
                    {
                        let longest = groups.entry(group_of(key)).or_default();
                        *longest = longest.max(covered);
                    }
                }
                groups.into_iter().collect()
            }
            Operation::Latest => {
                let fresh = now - self.freshness.as_secs_f64();
                let mut groups: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
                for (key, samples) in selected {
                    if let Some((time, value)) = samples.back()
                        && *time >= fresh
                    {
                        *groups.entry(group_of(key)).or_default() += value;
                    }
                }
                groups.into_iter().collect()
            }
            Operation::Quantile(quantile) => {
                let mut histograms: BTreeMap<BTreeMap<String, String>, BTreeMap<u64, (f64, f64)>> =
                    BTreeMap::new();
                for (key, samples) in selected {
                    let Some(bound) = key.label("le").and_then(parse_bound) else {
                        continue;
                    };
                    let samples = samples.make_contiguous_copy();
                    if let Some(increase) = extrapolated_increase(&samples, start, now) {
                        let buckets = histograms.entry(group_of(key)).or_default();
                        let bucket = buckets.entry(bound.to_bits()).or_insert((bound, 0.0));
                        bucket.1 += increase;
                    }
                }
                histograms
                    .into_iter()
                    .filter_map(|(group, buckets)| {
                        let buckets: Vec<(f64, f64)> = buckets.into_values().collect();
                        histogram_quantile(quantile, &buckets).map(|value| (group, value))
                    })
                    .collect()
            }
        }
    }
}

/// Whether a kept metric is a counter (or a histogram's bucket counter).
fn is_counter(metric: &str) -> bool {
    metric.ends_with("_total") || metric.ends_with("_bucket")
}

/// A bucket's `le` as a number (`+Inf` included).
fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

/// A deque's samples as one slice.
trait ContiguousCopy {
    fn make_contiguous_copy(&self) -> Vec<(f64, f64)>;
}

impl ContiguousCopy for VecDeque<(f64, f64)> {
    fn make_contiguous_copy(&self) -> Vec<(f64, f64)> {
        self.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::query::Matcher;
    use super::*;

    fn sample(metric: &'static str, labels: &[(&str, &str)], value: f64) -> KeptSample {
        KeptSample {
            metric,
            labels: labels
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            value,
        }
    }

    fn query(operation: Operation, metric: &'static str, group_by: &[&str]) -> Query {
        Query {
            operation,
            metric,
            matchers: vec![Matcher::equal("direction", "inbound")],
            group_by: group_by.iter().map(|label| label.to_string()).collect(),
            window: Duration::from_secs(60),
        }
    }

    #[test]
    fn sums_increases_latest_and_quantiles_by_group() {
        let mut store = Store::new(Duration::from_secs(900), Duration::from_secs(20));
        let web = [("namespace", "demo"), ("workload", "web")];
        for step in 0..=6 {
            let time = 1000.0 + f64::from(step) * 10.0;
            let count = f64::from(step) * 10.0;
            store.ingest(
                &web,
                &[
                    sample(
                        "response_total",
                        &[
                            ("direction", "inbound"),
                            ("classification", "success"),
                            ("status_code", "200"),
                        ],
                        count * 0.9,
                    ),
                    sample(
                        "response_total",
                        &[("direction", "inbound"), ("classification", "failure")],
                        count * 0.1,
                    ),
                    sample(
                        "response_total",
                        &[("direction", "outbound"), ("classification", "success")],
                        1000.0,
                    ),
                    sample(
                        "response_latency_ms_bucket",
                        &[("direction", "inbound"), ("le", "10")],
                        count * 0.5,
                    ),
                    sample(
                        "response_latency_ms_bucket",
                        &[("direction", "inbound"), ("le", "100")],
                        count,
                    ),
                    sample(
                        "response_latency_ms_bucket",
                        &[("direction", "inbound"), ("le", "+Inf")],
                        count,
                    ),
                    sample("tcp_open_connections", &[("direction", "inbound")], 3.0),
                ],
                time,
            );
        }
        let now = 1060.0;
        let increases = store.evaluate(
            &query(
                Operation::Increase,
                "response_total",
                &["workload", "classification"],
            ),
            now,
        );
        let by_class: BTreeMap<String, f64> = increases
            .iter()
            .map(|(group, value)| (group["classification"].clone(), *value))
            .collect();
        assert!((by_class["success"] - 54.0).abs() < 1e-9, "{by_class:?}");
        assert!((by_class["failure"] - 6.0).abs() < 1e-9, "{by_class:?}");
        let p50 = store.evaluate(
            &query(
                Operation::Quantile(0.5),
                "response_latency_ms_bucket",
                &["workload"],
            ),
            now,
        );
        assert_eq!(p50.len(), 1);
        assert!((p50[0].1 - 10.0).abs() < 1e-9, "{p50:?}");
        let connections = store.evaluate(
            &query(Operation::Latest, "tcp_open_connections", &["namespace"]),
            now,
        );
        assert_eq!(connections[0].1, 3.0);
        // A gauge not refreshed for longer than the freshness is gone.
        assert!(
            store
                .evaluate(
                    &query(Operation::Latest, "tcp_open_connections", &[]),
                    now + 60.0
                )
                .is_empty()
        );
    }

    #[test]
    fn a_counter_new_on_a_known_target_starts_from_zero() {
        let mut store = Store::new(Duration::from_secs(900), Duration::from_secs(20));
        let web = [("workload", "web")];
        let counter = |value| sample("response_total", &[("direction", "inbound")], value);
        store.ingest(&web, &[], 100.0);
        store.ingest(&web, &[counter(40.0)], 110.0);
        store.ingest(&web, &[counter(40.0)], 120.0);
        // A target seen for the first time has no such zero.
        store.ingest(
            &[("workload", "db")],
            &[sample("response_total", &[("direction", "inbound")], 7.0)],
            120.0,
        );
        let query = query(Operation::Increase, "response_total", &["workload"]);
        let increases: BTreeMap<String, f64> = store
            .evaluate(&query, 120.0)
            .into_iter()
            .map(|(group, value)| (group["workload"].clone(), value))
            .collect();
        assert_eq!(increases.get("web"), Some(&40.0), "{increases:?}");
        assert_eq!(increases.get("db"), None, "{increases:?}");
    }

    #[test]
    fn trims_to_the_retention() {
        let mut store = Store::new(Duration::from_secs(60), Duration::from_secs(20));
        for step in 0..100 {
            let time = f64::from(step) * 10.0;
            store.ingest(
                &[("workload", "web")],
                &[sample("response_total", &[("direction", "inbound")], time)],
                time,
            );
            store.trim(time);
        }
        assert_eq!(store.series_count(), 1);
        assert_eq!(store.sample_count(), 7, "60 s of 10 s samples, both ends");
        store.trim(10_000.0);
        assert_eq!(store.series_count(), 0);
        assert!(store.strings.is_empty());
    }
}

//! Golden-metrics queries as data, and the arithmetic behind them.
//!
//! A [`Query`] is what Linkerd's viz asks Prometheus (`sum(increase(...))
//! by (...)`, `histogram_quantile(...)`, `sum(gauge) by (...)`), written as a
//! plain struct so two evaluators answer it alike: [`to_promql`] renders it
//! for a real Prometheus, and the scrape store evaluates it over its own
//! samples with [`extrapolated_increase`] and [`histogram_quantile`], which
//! follow Prometheus' definitions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// What a query computes per group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Operation {
    /// `sum(increase(metric[window])) by (...)`: a counter's growth.
    Increase,
    /// `histogram_quantile(q, sum(rate(metric_bucket[window])) by (le, ...))`.
    Quantile(f64),
    /// `sum(metric) by (...)`: a gauge's latest value.
    Latest,
    /// How many seconds of the window the counters' samples cover (the
    /// longest span among a group's series, as [`Operation::Increase`]
    /// extrapolates it): rates divide by this, not by a window the
    /// controller was not scraping for all of (its first minute). The
    /// Prometheus backend answers the full window for every group present.
    Covered,
}

/// How a label must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matcher {
    /// `label="value"`.
    Equal(String, String),
    /// `label=~"^host(:port)?$"`: an authority with any port (route `dst`).
    Host(String, String),
}

impl Matcher {
    /// `label="value"`.
    pub fn equal(label: &str, value: &str) -> Self {
        Matcher::Equal(label.to_string(), value.to_string())
    }

    /// Whether a series' value of the label matches.
    pub fn matches(&self, value: Option<&str>) -> bool {
        match self {
            Matcher::Equal(_, wanted) => value.unwrap_or_default() == wanted,
            Matcher::Host(_, host) => value.is_some_and(|value| {
                value == host
                    || value.strip_prefix(host.as_str()).is_some_and(|rest| {
                        rest.strip_prefix(':').is_some_and(|port| {
                            !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit())
                        })
                    })
            }),
        }
    }

    /// The label it reads.
    pub fn label(&self) -> &str {
        match self {
            Matcher::Equal(label, _) | Matcher::Host(label, _) => label,
        }
    }
}

/// One instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What it computes.
    pub operation: Operation,
    /// The metric (`response_total`, `response_latency_ms_bucket`, ...).
    pub metric: &'static str,
    /// Which series take part.
    pub matchers: Vec<Matcher>,
    /// The labels results are grouped by.
    pub group_by: Vec<String>,
    /// The window of increases and rates.
    pub window: Duration,
}

/// One result: the group's labels and its value.
pub type Group = (BTreeMap<String, String>, f64);

/// `"` and `\` escaped for a PromQL string.
fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// Regex metacharacters escaped (for `Host`).
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if "\\.+*?()|[]{}^$".contains(character) {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// The query as PromQL (what Linkerd's viz metrics API sends).
pub fn to_promql(query: &Query) -> String {
    let mut selector = String::from(query.metric);
    selector.push('{');
    for (index, matcher) in query.matchers.iter().enumerate() {
        if index > 0 {
            selector.push(',');
        }
        match matcher {
            Matcher::Equal(label, value) => {
                let _ = write!(selector, "{label}={}", quote(value));
            }
            Matcher::Host(label, host) => {
                let pattern = format!("{}(:\\d+)?", regex_escape(host));
                let _ = write!(selector, "{label}=~{}", quote(&pattern));
            }
        }
    }
    selector.push('}');
    let window = format!("{}s", query.window.as_secs().max(1));
    let by = query.group_by.join(", ");
    match query.operation {
        Operation::Increase => format!("sum(increase({selector}[{window}])) by ({by})"),
        Operation::Latest => format!("sum({selector}) by ({by})"),
        Operation::Covered => format!(
            "count({selector}) by ({by}) * 0 + {}",
            query.window.as_secs().max(1)
        ),
        Operation::Quantile(quantile) => {
            let by = if by.is_empty() {
                "le".to_string()
            } else {
                format!("le, {by}")
            };
            format!("histogram_quantile({quantile}, sum(rate({selector}[{window}])) by ({by}))")
        }
    }
}

/// A counter's increase between `start` and `end` from its samples
/// `(unix seconds, value)` in time order, as Prometheus' `increase`: resets
/// (a drop) count the new value, and the sampled span is extrapolated
/// towards the window's edges (by at most half an interval where samples
/// stop short, and not below zero at the start). `None` with fewer than two
/// samples in the window.
pub fn extrapolated_increase(samples: &[(f64, f64)], start: f64, end: f64) -> Option<f64> {
    extrapolated_increase_covering(samples, start, end).map(|(increase, _)| increase)
}

/// [`extrapolated_increase`] and the seconds it covers: the sampled span
/// plus what was extrapolated at either end (at most `end - start`). A
/// counter first sampled mid-window covers less than the window, and a rate
/// over it is `increase / covered`.
pub fn extrapolated_increase_covering(
    samples: &[(f64, f64)],
    start: f64,
    end: f64,
) -> Option<(f64, f64)> {
    let inside: Vec<(f64, f64)> = samples
        .iter()
        .copied()
        .filter(|(time, _)| *time >= start && *time <= end)
        .collect();
    let (first, last) = (inside.first()?, inside.last()?);
    if inside.len() < 2 {
        return None;
    }
    let mut increase = 0.0;
    for pair in inside.windows(2) {
        let (previous, current) = (pair[0].1, pair[1].1);
        increase += if current < previous {
            current
        } else {
            current - previous
        };
    }
    let sampled = last.0 - first.0;
    if sampled <= 0.0 {
        return None;
    }
    let average_interval = sampled / (inside.len() - 1) as f64;
    let threshold = average_interval * 1.1;
    let mut to_start = first.0 - start;
    if increase > 0.0 && first.1 >= 0.0 {
        // A counter is never below zero: do not extrapolate past where it was.
        let to_zero = sampled * (first.1 / increase);
        to_start = to_start.min(to_zero);
    }
    let to_end = end - last.0;
    let extend_start = if to_start < threshold {
        to_start
    } else {
        average_interval / 2.0
    };
    let extend_end = if to_end < threshold {
        to_end
    } else {
        average_interval / 2.0
    };
    let covered = (sampled + extend_start + extend_end).min(end - start);
    Some((
        increase * (sampled + extend_start + extend_end) / sampled,
        covered,
    ))
}

/// The `quantile` (0–1) of a histogram given as cumulative bucket counts
/// `(upper bound, count)`, as Prometheus' `histogram_quantile`: linear
/// interpolation inside the bucket holding the rank; the first bucket
/// starts at 0; a rank in the `+Inf` bucket answers the highest finite
/// bound. `None` when the histogram is empty.
pub fn histogram_quantile(quantile: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = buckets.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = sorted.last().filter(|(bound, _)| bound.is_infinite())?.1;
    if total <= 0.0 || sorted.len() < 2 {
        return None;
    }
    let rank = quantile.clamp(0.0, 1.0) * total;
    let index = sorted.iter().position(|(_, count)| *count >= rank)?;
    if index == sorted.len() - 1 {
        return Some(sorted[sorted.len() - 2].0);
    }
    let (upper, count) = sorted[index];
    let (lower, below) = if index == 0 {
        (0.0_f64.min(upper), 0.0)
    } else {
        sorted[index - 1]
    };
    if count - below <= 0.0 {
        return Some(upper);
    }
    Some(lower + (upper - lower) * (rank - below) / (count - below))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increases_follow_prometheus() {
        // (samples, start, end, expected)
        type Case<'a> = (&'a [(f64, f64)], f64, f64, Option<f64>);
        let cases: [Case<'_>; 6] = [
            // Steady 1/s sampled across the whole window.
            (
                &[(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)],
                0.0,
                20.0,
                Some(20.0),
            ),
            // A reset: 30 → 5 counts 5.
            (
                &[(0.0, 10.0), (10.0, 30.0), (20.0, 5.0)],
                0.0,
                20.0,
                Some(25.0),
            ),
            // One sample: nothing to say.
            (&[(10.0, 10.0)], 0.0, 20.0, None),
            // Samples outside the window are ignored.
            (
                &[(-50.0, 0.0), (0.0, 10.0), (10.0, 20.0)],
                0.0,
                10.0,
                Some(10.0),
            ),
            // Samples stop 20 s before the end: extend half an interval (5 s).
            (&[(0.0, 10.0), (10.0, 20.0)], 0.0, 30.0, Some(15.0)),
            // A counter that started at 0 mid-window is not extrapolated below zero.
            (&[(10.0, 0.0), (20.0, 10.0)], 0.0, 20.0, Some(10.0)),
        ];
        for (samples, start, end, expected) in cases {
            let got = extrapolated_increase(samples, start, end);
            match (got, expected) {
                (Some(got), Some(expected)) => {
                    assert!(
                        (got - expected).abs() < 1e-9,
                        "{samples:?}: {got} != {expected}"
                    )
                }
                _ => assert_eq!(got, expected, "{samples:?}"),
            }
        }
    }

    #[test]
    fn rates_divide_by_the_time_covered() {
        // (samples, start, end, expected increase, expected covered seconds)
        type Case<'a> = (&'a [(f64, f64)], f64, f64, f64, f64);
        let cases: [Case<'_>; 5] = [
            // A minute of samples: the whole window.
            (
                &[(0.0, 0.0), (30.0, 600.0), (60.0, 1200.0)],
                0.0,
                60.0,
                1200.0,
                60.0,
            ),
            // The controller's first 10 s: 20/s, two scrapes 10 s apart of a
            // counter that began at zero. Covered 10 s, not 60: 20 rps, not 3.3.
            (&[(50.0, 0.0), (60.0, 200.0)], 0.0, 60.0, 200.0, 10.0),
            // A proxy already counting when first scraped: half an interval
            // extrapolated before its first sample, and covered with it.
            (
                &[(40.0, 1000.0), (50.0, 1200.0), (60.0, 1400.0)],
                0.0,
                60.0,
                500.0,
                25.0,
            ),
            // Samples stopping 20 s short of the end: half an interval after.
            (&[(0.0, 10.0), (10.0, 20.0)], 0.0, 30.0, 15.0, 15.0),
            // Never more than the window.
            (
                &[(-5.0, 0.0), (5.0, 10.0), (15.0, 20.0)],
                0.0,
                15.0,
                15.0,
                15.0,
            ),
        ];
        for (samples, start, end, increase, covered) in cases {
            let (got_increase, got_covered) =
                extrapolated_increase_covering(samples, start, end).unwrap();
            assert!(
                (got_increase - increase).abs() < 1e-9 && (got_covered - covered).abs() < 1e-9,
                "{samples:?}: ({got_increase}, {got_covered}) != ({increase}, {covered})"
            );
        }
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let inf = f64::INFINITY;
        let buckets = [(1.0, 10.0), (5.0, 50.0), (10.0, 90.0), (inf, 100.0)];
        let cases = [
            (0.5, Some(5.0)),   // rank 50: the top of (1, 5]
            (0.3, Some(3.0)),   // rank 30: halfway through (1, 5]
            (0.05, Some(0.5)),  // rank 5: halfway through (0, 1]
            (0.9, Some(10.0)),  // rank 90: the top of (5, 10]
            (0.99, Some(10.0)), // in +Inf: the highest finite bound
        ];
        for (quantile, expected) in cases {
            assert_eq!(
                histogram_quantile(quantile, &buckets),
                expected,
                "{quantile}"
            );
        }
        assert_eq!(histogram_quantile(0.5, &[(1.0, 0.0), (inf, 0.0)]), None);
        assert_eq!(
            histogram_quantile(0.5, &[(1.0, 3.0)]),
            None,
            "no +Inf bucket"
        );
        let unsorted = [(inf, 4.0), (2.0, 4.0), (1.0, 0.0)];
        assert_eq!(histogram_quantile(0.5, &unsorted), Some(1.5));
    }

    #[test]
    fn queries_render_as_linkerd_promql() {
        let window = Duration::from_secs(60);
        let cases = [
            (
                Query {
                    operation: Operation::Increase,
                    metric: "response_total",
                    matchers: vec![
                        Matcher::equal("direction", "inbound"),
                        Matcher::equal("namespace", "demo"),
                    ],
                    group_by: vec![
                        "namespace".into(),
                        "workload".into(),
                        "classification".into(),
                    ],
                    window,
                },
                r#"sum(increase(response_total{direction="inbound",namespace="demo"}[60s])) by (namespace, workload, classification)"#,
            ),
            (
                Query {
                    operation: Operation::Quantile(0.95),
                    metric: "route_response_latency_ms_bucket",
                    matchers: vec![Matcher::Host(
                        "dst".into(),
                        "web.demo.svc.cluster.local".into(),
                    )],
                    group_by: vec!["rt_route".into()],
                    window,
                },
                r#"histogram_quantile(0.95, sum(rate(route_response_latency_ms_bucket{dst=~"web\\.demo\\.svc\\.cluster\\.local(:\\d+)?"}[60s])) by (le, rt_route))"#,
            ),
            (
                Query {
                    operation: Operation::Latest,
                    metric: "tcp_open_connections",
                    matchers: vec![Matcher::equal("authority", "a\"b")],
                    group_by: vec![],
                    window,
                },
                r#"sum(tcp_open_connections{authority="a\"b"}) by ()"#,
            ),
            (
                Query {
                    operation: Operation::Covered,
                    metric: "response_total",
                    matchers: vec![Matcher::equal("direction", "inbound")],
                    group_by: vec!["workload".into()],
                    window,
                },
                r#"count(response_total{direction="inbound"}) by (workload) * 0 + 60"#,
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(to_promql(&query), expected);
        }
    }

    #[test]
    fn host_matchers_take_any_port() {
        let matcher = Matcher::Host("dst".into(), "web.demo.svc.cluster.local".into());
        let cases = [
            (Some("web.demo.svc.cluster.local:80"), true),
            (Some("web.demo.svc.cluster.local"), true),
            (Some("web.demo.svc.cluster.local:"), false),
            (Some("web.demo.svc.cluster.localhost:80"), false),
            (None, false),
        ];
        for (value, expected) in cases {
            assert_eq!(matcher.matches(value), expected, "{value:?}");
        }
        assert!(Matcher::equal("rt_route", "").matches(None));
    }
}

//! weft against another proxy on the same path, as ratios of the same run's
//! medians (weft ÷ other): proxy CPU per request and throughput per load
//! point, p99 at each open-loop rate, and RSS idle and with 200 held
//! connections (all the proxies of each setup summed). Below 1 is weft
//! cheaper (or, for throughput, slower).
//!
//! The pairs are fixed: the transparent path against linkerd2-proxy (`--other
//! linkerd=PATH`), and the nginx references against the weft setups that run
//! the same path. A pair is reported only when both of its setups ran.

use std::fmt::Write as _;

use serde::Serialize;

use crate::load::{LoadPoint, Workload};
use crate::report::{Cell, Memory};

/// (weft setup, the other proxy's setup), in report order.
pub const PAIRS: [(&str, &str); 4] = [
    ("weft-transparent", "linkerd"),
    ("weft-1hop", "nginx"),
    ("weft-discovery-2hop", "nginx-2hop"),
    ("weft-mtls-2hop", "nginx-mtls-2hop"),
];

/// One figure of a pair, weft ÷ other.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ratio {
    /// The weft setup.
    pub weft: String,
    /// The setup compared with.
    pub other: String,
    /// What is compared, e.g. `http1 c=50 CPU µs/req` or `RSS idle`.
    pub figure: String,
    /// weft's median.
    pub weft_value: f64,
    /// The other's median.
    pub other_value: f64,
    /// weft ÷ other.
    pub ratio: f64,
}

/// The ratios of every pair of [`PAIRS`] whose two setups ran.
pub fn ratios(cells: &[Cell], memory: &[Memory]) -> Vec<Ratio> {
    let mut ratios = Vec::new();
    for (weft, other) in PAIRS {
        let ran = |setup: &str| cells.iter().any(|cell| cell.setup == setup);
        if !ran(weft) || !ran(other) {
            continue;
        }
        let mut push = |figure: String, weft_value: Option<f64>, other_value: Option<f64>| {
            if let (Some(weft_value), Some(other_value)) = (weft_value, other_value)
                && other_value > 0.0
            {
                ratios.push(Ratio {
                    weft: weft.to_string(),
                    other: other.to_string(),
                    figure,
                    weft_value,
                    other_value,
                    ratio: weft_value / other_value,
                });
            }
        };
        for cell in cells.iter().filter(|cell| cell.setup == weft) {
            let Some(theirs) = cells.iter().find(|candidate| {
                candidate.setup == other
                    && candidate.workload == cell.workload
                    && candidate.point == cell.point
            }) else {
                continue;
            };
            let at = label(cell.workload, cell.point);
            push(
                format!("{at} CPU µs/req"),
                cell.proxy_cpu_us_per_request,
                theirs.proxy_cpu_us_per_request,
            );
            match cell.point {
                LoadPoint::Closed { .. } => push(
                    format!("{at} throughput rps"),
                    Some(cell.throughput_rps),
                    Some(theirs.throughput_rps),
                ),
                LoadPoint::Open { .. } => push(
                    format!("{at} p99 ms"),
                    Some(cell.p99_ms),
                    Some(theirs.p99_ms),
                ),
            }
        }
        let rss = |setup: &str, value: fn(&Memory) -> Option<u64>| {
            let of_setup: Vec<u64> = memory
                .iter()
                .filter(|m| m.setup == setup)
                .map(value)
                .collect::<Option<_>>()?;
            (!of_setup.is_empty()).then(|| of_setup.iter().sum::<u64>() as f64 / 1024.0)
        };
        push(
            "RSS idle MiB".into(),
            rss(weft, |m| Some(m.idle_kib)),
            rss(other, |m| Some(m.idle_kib)),
        );
        push(
            "RSS 200 connections MiB".into(),
            rss(weft, |m| m.conns_200_kib),
            rss(other, |m| m.conns_200_kib),
        );
    }
    ratios
}

fn label(workload: Workload, point: LoadPoint) -> String {
    format!("{workload} {point}")
}

/// The markdown section, empty when no pair ran.
pub fn markdown(ratios: &[Ratio], md: &mut String) {
    if ratios.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## weft ÷ another proxy on the same path (medians of this run)\n\n\
         CPU per request sums all the proxies of a setup; RSS sums them too. Below 1: weft \
         uses less (for throughput: serves less).\n\n\
         | weft | other | figure | weft | other | **ratio** |\n|---|---|---|---:|---:|---:|"
    );
    for ratio in ratios {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.1} | **{:.2}×** |",
            ratio.weft, ratio.other, ratio.figure, ratio.weft_value, ratio.other_value, ratio.ratio
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(setup: &str, point: LoadPoint, rps: f64, p99: f64, cpu: Option<f64>) -> Cell {
        Cell {
            setup: setup.into(),
            workload: Workload::Http1,
            point,
            runs: 3,
            throughput_rps: rps,
            p50_ms: 0.1,
            p99_ms: p99,
            p999_ms: 1.0,
            errors: 0,
            proxy_cpu_us_per_request: cpu,
            saturated: false,
            saturated_runs: 0,
        }
    }

    fn memory(setup: &str, role: &str, idle: u64, held: Option<u64>) -> Memory {
        Memory {
            setup: setup.into(),
            role: role.into(),
            idle_kib: idle,
            conns_200_kib: held,
            after_load_kib: None,
        }
    }

    #[test]
    fn a_pair_that_ran_gets_cpu_throughput_p99_and_rss_ratios() {
        let closed = LoadPoint::Closed { concurrency: 50 };
        let open = LoadPoint::Open { rate: 1000 };
        let cells = [
            cell("direct", closed, 100_000.0, 0.5, None),
            cell("weft-transparent", closed, 30_000.0, 2.0, Some(20.0)),
            cell("weft-transparent", open, 1_000.0, 1.0, Some(100.0)),
            cell("linkerd", closed, 20_000.0, 3.0, Some(40.0)),
            cell("linkerd", open, 1_000.0, 4.0, Some(160.0)),
            // nginx ran, weft-1hop did not: no nginx pair.
            cell("nginx", closed, 50_000.0, 1.0, Some(10.0)),
        ];
        let memory = [
            memory(
                "weft-transparent",
                "weft-transparent",
                9 * 1024,
                Some(18 * 1024),
            ),
            memory("linkerd", "linkerd", 18 * 1024, Some(36 * 1024)),
        ];
        let got: Vec<(String, f64)> = ratios(&cells, &memory)
            .into_iter()
            .map(|ratio| {
                assert_eq!(
                    (ratio.weft.as_str(), ratio.other.as_str()),
                    ("weft-transparent", "linkerd")
                );
                (ratio.figure, ratio.ratio)
            })
            .collect();
        assert_eq!(
            got,
            [
                ("http1 c=50 CPU µs/req".to_string(), 0.5),
                ("http1 c=50 throughput rps".to_string(), 1.5),
                ("http1 1000rps CPU µs/req".to_string(), 0.625),
                ("http1 1000rps p99 ms".to_string(), 0.25),
                ("RSS idle MiB".to_string(), 0.5),
                ("RSS 200 connections MiB".to_string(), 0.5),
            ]
        );
        let mut md = String::new();
        markdown(&ratios(&cells, &memory), &mut md);
        assert!(
            md.contains("| weft-transparent | linkerd | RSS idle MiB | 9.0 | 18.0 | **0.50×** |"),
            "{md}"
        );
    }

    #[test]
    fn missing_figures_and_pairs_give_no_rows() {
        let closed = LoadPoint::Closed { concurrency: 50 };
        // The other side's CPU is unknown, its memory unmeasured: only
        // throughput remains.
        let cells = [
            cell("weft-1hop", closed, 30_000.0, 2.0, Some(20.0)),
            cell("nginx", closed, 60_000.0, 1.0, None),
        ];
        let got = ratios(&cells, &[memory("weft-1hop", "weft-1hop", 9 * 1024, None)]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].figure, "http1 c=50 throughput rps");
        assert_eq!(got[0].ratio, 0.5);
        assert!(ratios(&cells[..1], &[]).is_empty());
        let mut md = String::new();
        markdown(&[], &mut md);
        assert!(md.is_empty());
    }
}

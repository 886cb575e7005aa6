//! Turning raw runs into the published numbers: medians over repeats per
//! (setup, workload, load point), proxy CPU per request, latency added per
//! hop, what discovery adds (weft-discovery − weft-outbound), memory, and
//! weft ÷ another proxy on the same path (`ratios`); rendered as a markdown
//! table set and as JSON.

pub mod ratios;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::handshakes::HandshakeCost;
use crate::load::{LoadPoint, LoadResult, Workload};
use crate::procfs::TICKS_PER_SECOND;
use crate::setups::MtlsConnections;
use crate::stats::median;

/// One measured run.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    /// Repeat number, from 0.
    pub repeat: u32,
    /// Setup name.
    pub setup: String,
    /// Protocol.
    pub workload: Workload,
    /// Load.
    pub point: LoadPoint,
    /// What the load generator saw.
    pub result: LoadResult,
    /// CPU ticks (1/100 s) each proxy of the setup spent during the run, by role.
    pub proxy_cpu_ticks: BTreeMap<String, u64>,
}

/// Resident memory of one proxy.
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    /// Setup name.
    pub setup: String,
    /// Proxy role.
    pub role: String,
    /// VmRSS right after start, before any traffic (KiB).
    pub idle_kib: u64,
    /// VmRSS with 200 client connections open (KiB), if measured.
    pub conns_200_kib: Option<u64>,
    /// VmRSS after all load runs (KiB).
    pub after_load_kib: Option<u64>,
}

/// Something that could not be measured.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    /// Setup name.
    pub setup: String,
    /// Protocol, if the failure is specific to one.
    pub workload: Option<Workload>,
    /// What went wrong.
    pub message: String,
}

/// Medians of one (setup, workload, load point) over its repeats.
#[derive(Clone, Debug, Serialize)]
pub struct Cell {
    /// Setup name.
    pub setup: String,
    /// Protocol.
    pub workload: Workload,
    /// Load.
    pub point: LoadPoint,
    /// Runs that went into the medians.
    pub runs: usize,
    /// Median successful requests per second.
    pub throughput_rps: f64,
    /// Median p50 (ms).
    pub p50_ms: f64,
    /// Median p99 (ms).
    pub p99_ms: f64,
    /// Median p99.9 (ms).
    pub p999_ms: f64,
    /// Failed requests over all runs.
    pub errors: u64,
    /// Proxy CPU (all proxies of the setup) per successful request, in µs,
    /// over all runs of the cell.
    pub proxy_cpu_us_per_request: Option<f64>,
    /// Most open-loop runs achieved less than 95% of their rate.
    pub saturated: bool,
    /// Open-loop runs that achieved less than 95% of their rate.
    pub saturated_runs: usize,
}

/// CPU per request of one proxy for one workload, over all its runs.
#[derive(Clone, Debug, Serialize)]
pub struct ProxyCpu {
    /// Setup name.
    pub setup: String,
    /// Proxy role.
    pub role: String,
    /// Protocol.
    pub workload: Workload,
    /// µs of CPU (utime + stime) per successful request.
    pub us_per_request: f64,
    /// Requests it was measured over.
    pub requests: u64,
}

/// The setup without discovery that weft-discovery is compared with.
pub const OUTBOUND: &str = "weft-outbound";
/// The same path with discovery and balancing.
pub const DISCOVERY: &str = "weft-discovery";

/// What discovery and balancing add to one workload: weft-discovery minus
/// weft-outbound, the same proxy on the same path without discovery.
#[derive(Clone, Debug, Serialize)]
pub struct DiscoveryCost {
    /// Protocol.
    pub workload: Workload,
    /// weft-outbound's proxy CPU per request over all runs (µs).
    pub outbound_us_per_request: f64,
    /// weft-discovery's proxy CPU per request over all runs (µs).
    pub discovery_us_per_request: f64,
    /// discovery − outbound (µs per request).
    pub added_us_per_request: f64,
    /// discovery ÷ outbound.
    pub ratio: f64,
    /// discovery − outbound at c=50 only (µs per request).
    pub added_us_per_request_c50: Option<f64>,
    /// Median p50 at 1,000 rps, discovery − outbound (ms).
    pub added_p50_ms_1k: Option<f64>,
    /// Median p99 at 1,000 rps, discovery − outbound (ms).
    pub added_p99_ms_1k: Option<f64>,
}

/// The setup with mutual TLS between two meshed proxies.
pub const MTLS: &str = "weft-mtls-2hop";
/// The same with HTTP/1.1 (no HTTP/2 upgrade) between the proxies.
pub const MTLS_HTTP1: &str = "weft-mtls-h1-2hop";
/// The same with every HTTP/1 request upgraded to HTTP/2.
pub const MTLS_HTTP2: &str = "weft-mtls-h2-2hop";
/// The same two proxies found by discovery, plaintext HTTP/1.1 between them.
pub const DISCOVERY_TWO_HOP: &str = "weft-discovery-2hop";
/// Two proxies, plaintext, no discovery.
pub const TWO_HOP: &str = "weft-2hop";

/// What mutual TLS adds to one workload: weft-mtls-2hop minus a plaintext
/// two-hop setup (both proxies summed, and per proxy).
#[derive(Clone, Debug, Serialize)]
pub struct MtlsCost {
    /// Protocol.
    pub workload: Workload,
    /// The mutual-TLS setup ([`MTLS`], [`MTLS_HTTP1`] or [`MTLS_HTTP2`]).
    pub mtls: String,
    /// The plaintext setup compared with.
    pub baseline: String,
    /// Its proxy CPU per request, both proxies, over all runs (µs).
    pub baseline_us_per_request: f64,
    /// weft-mtls-2hop's proxy CPU per request, both proxies (µs).
    pub mtls_us_per_request: f64,
    /// mTLS − baseline, both proxies (µs per request).
    pub added_us_per_request: f64,
    /// mTLS − baseline, client-side proxy (A) only (µs per request).
    pub added_client_us_per_request: Option<f64>,
    /// mTLS − baseline, server-side proxy (B) only (µs per request).
    pub added_server_us_per_request: Option<f64>,
    /// Proxy CPU per request at 1,000 rps, both proxies: baseline (µs).
    pub baseline_us_per_request_1k: Option<f64>,
    /// The same for weft-mtls-2hop (µs).
    pub mtls_us_per_request_1k: Option<f64>,
    /// mTLS − baseline at 1,000 rps, client-side proxy (A) only (µs).
    pub added_client_us_per_request_1k: Option<f64>,
    /// mTLS − baseline at 1,000 rps, server-side proxy (B) only (µs).
    pub added_server_us_per_request_1k: Option<f64>,
    /// Median p50 at 1,000 rps, mTLS − baseline (ms).
    pub added_p50_ms_1k: Option<f64>,
    /// Median p99 at 1,000 rps, mTLS − baseline (ms).
    pub added_p99_ms_1k: Option<f64>,
    /// Median p99 at 1,000 rps, mTLS − direct (ms).
    pub mtls_minus_direct_p99_ms_1k: Option<f64>,
}

/// Facts about the run, for the reader and the JSON.
#[derive(Clone, Debug, Serialize)]
pub struct Meta {
    /// UTC start time.
    pub started: String,
    /// Profile name, repeats and durations.
    pub profile: String,
    /// Setups in the order given.
    pub setups: Vec<String>,
    /// Free-form notes printed under the title (topology, pinning, tools).
    pub notes: Vec<String>,
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Facts about the run.
    pub meta: Meta,
    /// Medians per cell.
    pub cells: Vec<Cell>,
    /// CPU per request per proxy and workload.
    pub proxy_cpu: Vec<ProxyCpu>,
    /// weft-discovery − weft-outbound per workload, when both ran.
    pub discovery_cost: Vec<DiscoveryCost>,
    /// weft-mtls-2hop − the plaintext two-hop setups per workload.
    pub mtls_cost: Vec<MtlsCost>,
    /// Connections proxy A of weft-mtls-2hop opened toward B.
    pub mtls_connections: Option<MtlsConnections>,
    /// New-connection cost at proxy B of weft-mtls-2hop.
    pub handshakes: Option<HandshakeCost>,
    /// Proxy memory.
    pub memory: Vec<Memory>,
    /// weft ÷ another proxy on the same path.
    pub ratios: Vec<ratios::Ratio>,
    /// What could not be measured.
    pub failures: Vec<Failure>,
    /// Every run.
    pub samples: Vec<Sample>,
}

fn us_per_request(ticks: u64, requests: u64) -> Option<f64> {
    (requests > 0).then(|| ticks as f64 * 1e6 / TICKS_PER_SECOND as f64 / requests as f64)
}

/// Builds the report from raw material.
pub fn build(
    meta: Meta,
    samples: Vec<Sample>,
    memory: Vec<Memory>,
    failures: Vec<Failure>,
) -> Report {
    let mut groups: BTreeMap<(usize, Workload, LoadPoint), Vec<&Sample>> = BTreeMap::new();
    for sample in &samples {
        let setup = meta
            .setups
            .iter()
            .position(|s| *s == sample.setup)
            .unwrap_or(usize::MAX);
        groups
            .entry((setup, sample.workload, sample.point))
            .or_default()
            .push(sample);
    }
    let cells: Vec<Cell> = groups
        .into_iter()
        .map(|((_, workload, point), runs)| {
            let med = |f: &dyn Fn(&LoadResult) -> f64| {
                median(&mut runs.iter().map(|s| f(&s.result)).collect::<Vec<_>>())
            };
            let ticks: u64 = runs.iter().flat_map(|s| s.proxy_cpu_ticks.values()).sum();
            let requests: u64 = runs.iter().map(|s| s.result.ok).sum();
            let has_proxy = runs.iter().any(|s| !s.proxy_cpu_ticks.is_empty());
            let short_of_rate = |s: &&&Sample| match point {
                LoadPoint::Open { rate } => s.result.throughput() < 0.95 * f64::from(rate),
                LoadPoint::Closed { .. } => false,
            };
            let saturated_runs = runs.iter().filter(short_of_rate).count();
            Cell {
                setup: runs[0].setup.clone(),
                workload,
                point,
                runs: runs.len(),
                throughput_rps: med(&|r| r.throughput()),
                p50_ms: med(&|r| r.latency.p50_ms),
                p99_ms: med(&|r| r.latency.p99_ms),
                p999_ms: med(&|r| r.latency.p999_ms),
                errors: runs.iter().map(|s| s.result.errors).sum(),
                proxy_cpu_us_per_request: if has_proxy {
                    us_per_request(ticks, requests)
                } else {
                    None
                },
                saturated: saturated_runs * 2 > runs.len(),
                saturated_runs,
            }
        })
        .collect();
    let mut cpu: BTreeMap<(String, String, Workload), (u64, u64)> = BTreeMap::new();
    for sample in &samples {
        for (role, ticks) in &sample.proxy_cpu_ticks {
            let entry = cpu
                .entry((sample.setup.clone(), role.clone(), sample.workload))
                .or_default();
            entry.0 += ticks;
            entry.1 += sample.result.ok;
        }
    }
    let proxy_cpu = cpu
        .into_iter()
        .filter_map(|((setup, role, workload), (ticks, requests))| {
            Some(ProxyCpu {
                setup,
                role,
                workload,
                us_per_request: us_per_request(ticks, requests)?,
                requests,
            })
        })
        .collect();
    let ratios = ratios::ratios(&cells, &memory);
    let mut report = Report {
        meta,
        cells,
        proxy_cpu,
        discovery_cost: Vec::new(),
        mtls_cost: Vec::new(),
        mtls_connections: None,
        handshakes: None,
        memory,
        ratios,
        failures,
        samples,
    };
    report.discovery_cost = report.discovery_costs();
    report.mtls_cost = report.mtls_costs();
    report
}

impl Report {
    fn cell(&self, setup: &str, workload: Workload, point: LoadPoint) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.setup == setup && c.workload == workload && c.point == point)
    }

    /// CPU per request of a one-proxy setup, over all its runs of `workload`.
    fn setup_cpu(&self, setup: &str, workload: Workload) -> Option<f64> {
        let mut of_setup = self
            .proxy_cpu
            .iter()
            .filter(|p| p.setup == setup && p.workload == workload);
        match (of_setup.next(), of_setup.next()) {
            (Some(only), None) => Some(only.us_per_request),
            _ => None,
        }
    }

    fn discovery_costs(&self) -> Vec<DiscoveryCost> {
        let difference = |point: LoadPoint, workload, value: CellValueOption| {
            let at = |setup| self.cell(setup, workload, point).and_then(value);
            Some(at(DISCOVERY)? - at(OUTBOUND)?)
        };
        let c50 = LoadPoint::Closed { concurrency: 50 };
        let rate_1k = LoadPoint::Open { rate: 1_000 };
        self.workloads()
            .into_iter()
            .filter_map(|workload| {
                let outbound = self.setup_cpu(OUTBOUND, workload)?;
                let discovery = self.setup_cpu(DISCOVERY, workload)?;
                Some(DiscoveryCost {
                    workload,
                    outbound_us_per_request: outbound,
                    discovery_us_per_request: discovery,
                    added_us_per_request: discovery - outbound,
                    ratio: discovery / outbound,
                    added_us_per_request_c50: difference(c50, workload, |c| {
                        c.proxy_cpu_us_per_request
                    }),
                    added_p50_ms_1k: difference(rate_1k, workload, |c| Some(c.p50_ms)),
                    added_p99_ms_1k: difference(rate_1k, workload, |c| Some(c.p99_ms)),
                })
            })
            .collect()
    }

    /// CPU per request of one proxy (by the part of its role after `/`).
    fn role_cpu(&self, setup: &str, side: &str, workload: Workload) -> Option<f64> {
        let role = format!("{setup}/{side}");
        self.proxy_cpu
            .iter()
            .find(|p| p.setup == setup && p.role == role && p.workload == workload)
            .map(|p| p.us_per_request)
    }

    /// CPU per request at one load point, over its runs: of one proxy
    /// (`side`, the part of its role after `/`) or of all the setup's.
    fn cpu_at(
        &self,
        setup: &str,
        side: Option<&str>,
        workload: Workload,
        point: LoadPoint,
    ) -> Option<f64> {
        let role = side.map(|side| format!("{setup}/{side}"));
        let runs = self
            .samples
            .iter()
            .filter(|s| s.setup == setup && s.workload == workload && s.point == point);
        let (mut ticks, mut requests) = (0, 0);
        for run in runs {
            ticks += run
                .proxy_cpu_ticks
                .iter()
                .filter(|(r, _)| role.as_ref().is_none_or(|role| *r == role))
                .map(|(_, t)| t)
                .sum::<u64>();
            requests += run.result.ok;
        }
        us_per_request(ticks, requests)
    }

    /// CPU per request of all proxies of a setup together.
    fn setup_total_cpu(&self, setup: &str, workload: Workload) -> Option<f64> {
        let of_setup: Vec<f64> = self
            .proxy_cpu
            .iter()
            .filter(|p| p.setup == setup && p.workload == workload)
            .map(|p| p.us_per_request)
            .collect();
        (!of_setup.is_empty()).then(|| of_setup.iter().sum())
    }

    fn mtls_costs(&self) -> Vec<MtlsCost> {
        let rate_1k = LoadPoint::Open { rate: 1_000 };
        let mut costs = Vec::new();
        let pairs = [
            (MTLS, DISCOVERY_TWO_HOP),
            (MTLS, TWO_HOP),
            (MTLS_HTTP1, DISCOVERY_TWO_HOP),
            (MTLS_HTTP2, DISCOVERY_TWO_HOP),
        ];
        for (setup, baseline) in pairs {
            for workload in self.workloads() {
                let (Some(base), Some(mtls)) = (
                    self.setup_total_cpu(baseline, workload),
                    self.setup_total_cpu(setup, workload),
                ) else {
                    continue;
                };
                let side = |side: &str| {
                    Some(
                        self.role_cpu(setup, side, workload)?
                            - self.role_cpu(baseline, side, workload)?,
                    )
                };
                let at =
                    |setup: &str, value: CellValue| self.cell(setup, workload, rate_1k).map(value);
                let difference =
                    |a: &str, b: &str, value: CellValue| Some(at(a, value)? - at(b, value)?);
                let at_1k =
                    |setup: &str, side: Option<&str>| self.cpu_at(setup, side, workload, rate_1k);
                let added_at_1k =
                    |side: &str| Some(at_1k(setup, Some(side))? - at_1k(baseline, Some(side))?);
                costs.push(MtlsCost {
                    baseline_us_per_request_1k: at_1k(baseline, None),
                    mtls_us_per_request_1k: at_1k(setup, None),
                    added_client_us_per_request_1k: added_at_1k("client-side"),
                    added_server_us_per_request_1k: added_at_1k("server-side"),
                    workload,
                    mtls: setup.to_string(),
                    baseline: baseline.to_string(),
                    baseline_us_per_request: base,
                    mtls_us_per_request: mtls,
                    added_us_per_request: mtls - base,
                    added_client_us_per_request: side("client-side"),
                    added_server_us_per_request: side("server-side"),
                    added_p50_ms_1k: difference(setup, baseline, |c| c.p50_ms),
                    added_p99_ms_1k: difference(setup, baseline, |c| c.p99_ms),
                    mtls_minus_direct_p99_ms_1k: difference(setup, "direct", |c| c.p99_ms),
                });
            }
        }
        costs
    }

    fn workloads(&self) -> Vec<Workload> {
        let mut workloads: Vec<Workload> = self.cells.iter().map(|c| c.workload).collect();
        workloads.sort();
        workloads.dedup();
        workloads
    }

    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# weft-bench: {} run, {}\n",
            self.meta.profile, self.meta.started
        );
        for note in &self.meta.notes {
            let _ = writeln!(md, "- {note}");
        }
        self.throughput_table(&mut md);
        self.latency_table(&mut md);
        self.per_hop_table(&mut md);
        self.cpu_table(&mut md);
        self.discovery_table(&mut md);
        self.mtls_table(&mut md);
        self.memory_table(&mut md);
        ratios::markdown(&self.ratios, &mut md);
        if !self.failures.is_empty() {
            let _ = writeln!(md, "\n## Failures\n");
            for f in &self.failures {
                let workload = f.workload.map(|w| format!(" {w}")).unwrap_or_default();
                let _ = writeln!(md, "- **{}{}**: {}", f.setup, workload, f.message);
            }
        }
        md
    }

    fn throughput_table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n## Max throughput (closed loop, successful requests/s, median)\n\n\
             | workload | setup | c=1 | c=10 | c=50 | proxy CPU µs/req at c=50 (all proxies of the path) |\n\
             |---|---|---:|---:|---:|---:|"
        );
        for workload in self.workloads() {
            for setup in &self.meta.setups {
                let mut row = format!("| {workload} | {setup} |");
                for concurrency in crate::plan::CONCURRENCIES {
                    let cell = self.cell(setup, workload, LoadPoint::Closed { concurrency });
                    row += &format!(" {} |", cell.map_or("–".into(), rps));
                }
                let cpu = self
                    .cell(setup, workload, LoadPoint::Closed { concurrency: 50 })
                    .and_then(|c| c.proxy_cpu_us_per_request);
                row += &format!(" {} |", cpu.map_or("–".into(), |v| format!("{v:.1}")));
                let _ = writeln!(md, "{row}");
            }
        }
    }

    fn latency_table(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n## Latency at a fixed rate (open loop, coordinated-omission corrected, ms, median)\n\n\
             | workload | setup | 1k p50 | 1k p99 | 1k p99.9 | 5k p50 | 5k p99 | 5k p99.9 |\n\
             |---|---|---:|---:|---:|---:|---:|---:|"
        );
        for workload in self.workloads() {
            for setup in &self.meta.setups {
                let mut row = format!("| {workload} | {setup} |");
                for rate in crate::plan::RATES {
                    match self.cell(setup, workload, LoadPoint::Open { rate }) {
                        Some(c) => {
                            let mark = if c.saturated { "*" } else { "" };
                            row += &format!(
                                " {:.3}{mark} | {:.3}{mark} | {:.3}{mark} |",
                                c.p50_ms, c.p99_ms, c.p999_ms
                            );
                        }
                        None => row += " – | – | – |",
                    }
                }
                let _ = writeln!(md, "{row}");
            }
        }
        let _ = writeln!(
            md,
            "\n`*` = most runs achieved < 95% of the requested rate (the JSON counts \
             `saturated_runs` per cell)."
        );
    }

    fn per_hop_table(&self, md: &mut String) {
        let others: Vec<&String> = self.meta.setups.iter().filter(|s| *s != "direct").collect();
        if others.is_empty() {
            return;
        }
        let has_hops =
            others.iter().any(|s| *s == "weft-1hop") && others.iter().any(|s| *s == "weft-2hop");
        let mut header = String::from("| workload | quantile |");
        let mut rule = String::from("|---|---|");
        for setup in &others {
            header += &format!(" {setup} − direct |");
            rule += "---:|";
        }
        if has_hops {
            header += " 2nd weft hop (2hop − 1hop) |";
            rule += "---:|";
        }
        let _ = writeln!(
            md,
            "\n## Latency added by the path at 1,000 rps (ms; differences of the medians)\n\n\
             {header}\n{rule}"
        );
        let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:+.3}", a - b),
            _ => "–".into(),
        };
        let quantiles: [(&str, CellValue); 2] = [("p50", |c| c.p50_ms), ("p99", |c| c.p99_ms)];
        for workload in self.workloads() {
            for (name, quantile) in quantiles {
                let at = |setup: &str| {
                    self.cell(setup, workload, LoadPoint::Open { rate: 1_000 })
                        .map(quantile)
                };
                let mut row = format!("| {workload} | {name} |");
                for setup in &others {
                    row += &format!(" {} |", delta(at(setup), at("direct")));
                }
                if has_hops {
                    row += &format!(" {} |", delta(at("weft-2hop"), at("weft-1hop")));
                }
                let _ = writeln!(md, "{row}");
            }
        }
    }

    fn cpu_table(&self, md: &mut String) {
        if self.proxy_cpu.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## Proxy CPU per request (utime+stime over all runs ÷ successful requests, µs)\n\n\
             | proxy | http1 | http2 | grpc |\n|---|---:|---:|---:|"
        );
        let mut roles: Vec<(&String, &String)> =
            self.proxy_cpu.iter().map(|p| (&p.setup, &p.role)).collect();
        roles.sort_by_key(|(setup, role)| {
            let order = self.meta.setups.iter().position(|s| s == *setup);
            (order, (*role).clone())
        });
        roles.dedup();
        for (setup, role) in roles {
            let mut row = format!("| {role} |");
            for workload in Workload::ALL {
                let value = self
                    .proxy_cpu
                    .iter()
                    .find(|p| &p.setup == setup && &p.role == role && p.workload == workload);
                row += &format!(
                    " {} |",
                    value.map_or("–".into(), |p| format!("{:.1}", p.us_per_request))
                );
            }
            let _ = writeln!(md, "{row}");
        }
    }

    fn discovery_table(&self, md: &mut String) {
        if self.discovery_cost.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## What discovery adds ({DISCOVERY} − {OUTBOUND}, same proxy and path)\n\n\
             Proxy CPU per request over all runs (µs), then the difference at c=50 only, \
             and the difference of the median latencies at 1,000 rps (ms).\n\n\
             | workload | {OUTBOUND} µs/req | {DISCOVERY} µs/req | discovery − outbound µs/req \
             | ratio | Δ µs/req at c=50 | Δ p50 1k | Δ p99 1k |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        let signed = |value: Option<f64>, digits: usize| {
            value.map_or("–".into(), |v| format!("{v:+.digits$}"))
        };
        for cost in &self.discovery_cost {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1} | **{:+.1}** | {:.2}× | {} | {} | {} |",
                cost.workload,
                cost.outbound_us_per_request,
                cost.discovery_us_per_request,
                cost.added_us_per_request,
                cost.ratio,
                signed(cost.added_us_per_request_c50, 1),
                signed(cost.added_p50_ms_1k, 3),
                signed(cost.added_p99_ms_1k, 3),
            );
        }
    }

    fn mtls_table(&self, md: &mut String) {
        if self.mtls_cost.is_empty() && self.handshakes.is_none() {
            return;
        }
        let signed = |value: Option<f64>, digits: usize| {
            value.map_or("–".into(), |v| format!("{v:+.digits$}"))
        };
        let plain = |value: Option<f64>| value.map_or("–".into(), |v| format!("{v:.1}"));
        if !self.mtls_cost.is_empty() {
            let _ = writeln!(
                md,
                "\n## What mutual TLS adds (an mTLS setup − a plaintext two-hop setup)\n\n\
                 Proxy CPU per request over all runs (µs; both proxies, then client side A and \
                 server side B), the same at 1,000 rps only (µs; at low load each request pays \
                 its own wake-ups and syscalls, so this is the per-request cost an idle-ish mesh \
                 sees), and the difference of the median latencies at 1,000 rps (ms). \
                 {DISCOVERY_TWO_HOP} is the same path without identity (the cleanest \
                 comparison); {TWO_HOP} also has no discovery. {MTLS_HTTP1} − \
                 {DISCOVERY_TWO_HOP} is TLS alone (both HTTP/1.1 between the proxies); {MTLS} \
                 upgrades to HTTP/2 only requests that find A's HTTP/1.1 connection busy, \
                 {MTLS_HTTP2} every one.\n\n\
                 | workload | mTLS setup | baseline | baseline µs/req | mTLS µs/req | **mTLS − baseline µs/req** \
                 | Δ A µs/req | Δ B µs/req | 1k: baseline / mTLS µs/req | **1k: Δ µs/req** (A, B) \
                 | Δ p50 1k | **Δ p99 1k** | mTLS − direct p99 1k |\n\
                 |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for cost in &self.mtls_cost {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {:.1} | {:.1} | **{:+.1}** | {} | {} | {} / {} | **{}** ({}, {}) \
                     | {} | **{}** | {} |",
                    cost.workload,
                    cost.mtls,
                    cost.baseline,
                    cost.baseline_us_per_request,
                    cost.mtls_us_per_request,
                    cost.added_us_per_request,
                    signed(cost.added_client_us_per_request, 1),
                    signed(cost.added_server_us_per_request, 1),
                    plain(cost.baseline_us_per_request_1k),
                    plain(cost.mtls_us_per_request_1k),
                    signed(
                        cost.mtls_us_per_request_1k
                            .zip(cost.baseline_us_per_request_1k)
                            .map(|(m, b)| m - b),
                        1
                    ),
                    signed(cost.added_client_us_per_request_1k, 1),
                    signed(cost.added_server_us_per_request_1k, 1),
                    signed(cost.added_p50_ms_1k, 3),
                    signed(cost.added_p99_ms_1k, 3),
                    signed(cost.mtls_minus_direct_p99_ms_1k, 3),
                );
            }
        }
        if let Some(c) = &self.mtls_connections {
            let per = if c.tls_opened > 0 {
                format!("{:.0}", c.requests as f64 / c.tls_opened as f64)
            } else {
                "–".into()
            };
            let _ = writeln!(
                md,
                "\nProxy A of {MTLS} opened **{}** mutual-TLS connection(s) to B \
                 (`tcp_open_total{{direction=\"outbound\",peer=\"dst\",tls=\"true\"}}`; {} \
                 other outbound connections) for {} requests ({per} requests per handshake): \
                 on reused connections the handshake is amortised away.",
                c.tls_opened, c.other_opened, c.requests
            );
        }
        if let Some(h) = &self.handshakes {
            let us = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
            let _ = writeln!(
                md,
                "\n### New connections: TLS handshake cost at proxy B\n\n\
                 {} connections one after another from a rustls client (TLS 1.3, no resumption, \
                 SNI = B's identity, no client certificate) to B's inbound port, then the same \
                 with plain TCP connect + close. B's CPU from /proc around each series.\n\n\
                 | series | ok | errors | B CPU µs/conn | client CPU µs/conn | wall p50 µs | wall p99 µs |\n\
                 |---|---:|---:|---:|---:|---:|---:|\n\
                 | TLS handshake + close | {} | {} | {} | {:.0} | {:.0} | {:.0} |\n\
                 | plain TCP connect + close | {} | {} | {} | {:.0} | {:.0} | {:.0} |\n\n\
                 **Handshake at B: {} µs CPU** (TLS − plain); verifying a client certificate \
                 (which proxy A presents) adds to it. The client column approximates proxy A's \
                 side (same rustls and ring), less signing with A's key.",
                h.count,
                h.tls.ok,
                h.tls.errors,
                us(h.tls_server_cpu_us),
                h.tls.client_cpu_us,
                h.tls.p50_us,
                h.tls.p99_us,
                h.plain.ok,
                h.plain.errors,
                us(h.plain_server_cpu_us),
                h.plain.client_cpu_us,
                h.plain.p50_us,
                h.plain.p99_us,
                us(h.server_handshake_us()),
            );
        }
    }

    fn memory_table(&self, md: &mut String) {
        if self.memory.is_empty() {
            return;
        }
        let _ = writeln!(
            md,
            "\n## Proxy memory (VmRSS, MiB)\n\n\
             | proxy | idle | 200 open connections | after all runs |\n|---|---:|---:|---:|"
        );
        let mib =
            |kib: Option<u64>| kib.map_or("–".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        for m in &self.memory {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                m.role,
                mib(Some(m.idle_kib)),
                mib(m.conns_200_kib),
                mib(m.after_load_kib)
            );
        }
    }
}

/// Reads one figure of a cell.
type CellValue = fn(&Cell) -> f64;

/// Reads one figure of a cell that may be missing.
type CellValueOption = fn(&Cell) -> Option<f64>;

fn rps(cell: &Cell) -> String {
    let errors = if cell.errors > 0 {
        format!(" ({} err)", cell.errors)
    } else {
        String::new()
    };
    format!("{:.0}{errors}", cell.throughput_rps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Latency;

    fn sample(setup: &str, repeat: u32, ok: u64, p99: f64, ticks: u64) -> Sample {
        Sample {
            repeat,
            setup: setup.into(),
            workload: Workload::Http1,
            point: LoadPoint::Open { rate: 1_000 },
            result: LoadResult {
                ok,
                errors: 0,
                seconds: 1.0,
                latency: Latency {
                    p50_ms: 0.1,
                    p99_ms: p99,
                    p999_ms: 1.0,
                },
                error_sample: None,
            },
            proxy_cpu_ticks: if setup == "direct" {
                BTreeMap::new()
            } else {
                BTreeMap::from([(setup.to_string(), ticks)])
            },
        }
    }

    #[test]
    fn summarises_cells_cpu_and_hops() {
        let meta = Meta {
            started: "now".into(),
            profile: "test".into(),
            setups: vec!["direct".into(), "weft-1hop".into()],
            notes: vec![],
        };
        let samples = vec![
            sample("direct", 0, 1000, 0.30, 0),
            sample("direct", 1, 1000, 0.50, 0),
            sample("direct", 2, 1000, 0.40, 0),
            sample("weft-1hop", 0, 1000, 0.70, 3),
            sample("weft-1hop", 1, 900, 0.60, 2),
            sample("weft-1hop", 2, 1000, 0.90, 3),
        ];
        let report = build(meta, samples, vec![], vec![]);
        let proxy = report.cell(
            "weft-1hop",
            Workload::Http1,
            LoadPoint::Open { rate: 1_000 },
        );
        let proxy = proxy.unwrap();
        assert_eq!(proxy.p99_ms, 0.70);
        assert_eq!(
            proxy.saturated_runs, 1,
            "900 of 1000 rps is short of the rate"
        );
        assert!(!proxy.saturated, "one run of three is not most");
        // 8 ticks = 80 ms over 2900 requests.
        let cpu = proxy.proxy_cpu_us_per_request.unwrap();
        assert!((cpu - 80_000.0 / 2900.0).abs() < 1e-9);
        let md = report.markdown();
        assert!(md.contains("| http1 | p99 | +0.300 |"), "{md}");
        assert!(report.discovery_cost.is_empty());
    }

    #[test]
    fn compares_discovery_with_plain_outbound() {
        let meta = Meta {
            started: "now".into(),
            profile: "test".into(),
            setups: vec![OUTBOUND.into(), DISCOVERY.into()],
            notes: vec![],
        };
        let samples = vec![
            sample(OUTBOUND, 0, 1000, 0.50, 2),
            sample(OUTBOUND, 1, 1000, 0.60, 2),
            sample(DISCOVERY, 0, 1000, 0.70, 3),
            sample(DISCOVERY, 1, 1000, 0.80, 3),
        ];
        let report = build(meta, samples, vec![], vec![]);
        let [cost] = report.discovery_cost.as_slice() else {
            panic!("one workload: {:?}", report.discovery_cost);
        };
        // 4 ticks = 40 ms over 2000 requests, against 6 ticks.
        assert!((cost.outbound_us_per_request - 20.0).abs() < 1e-9);
        assert!((cost.discovery_us_per_request - 30.0).abs() < 1e-9);
        assert!((cost.added_us_per_request - 10.0).abs() < 1e-9);
        assert!((cost.ratio - 1.5).abs() < 1e-9);
        assert!((cost.added_p99_ms_1k.unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(cost.added_us_per_request_c50, None);
        let md = report.markdown();
        assert!(
            md.contains("| http1 | 20.0 | 30.0 | **+10.0** | 1.50× | – | +0.000 | +0.200 |"),
            "{md}"
        );
    }

    #[test]
    fn compares_mtls_with_plaintext_two_hops_per_proxy() {
        let meta = Meta {
            started: "now".into(),
            profile: "test".into(),
            setups: vec![DISCOVERY_TWO_HOP.into(), MTLS.into()],
            notes: vec![],
        };
        let two_proxies = |setup: &str, client: u64, server: u64| {
            let mut run = sample(setup, 0, 1000, 0.5, 0);
            run.proxy_cpu_ticks = BTreeMap::from([
                (format!("{setup}/client-side"), client),
                (format!("{setup}/server-side"), server),
            ]);
            run
        };
        let samples = vec![
            two_proxies(DISCOVERY_TWO_HOP, 10, 9),
            two_proxies(MTLS, 15, 12),
        ];
        let report = build(meta, samples, vec![], vec![]);
        let [cost] = report.mtls_cost.as_slice() else {
            panic!("one workload: {:?}", report.mtls_cost);
        };
        assert_eq!(cost.baseline, DISCOVERY_TWO_HOP);
        // 19 ticks = 190 ms over 1000 requests, against 27.
        assert!((cost.added_us_per_request - 80.0).abs() < 1e-9);
        assert!((cost.added_client_us_per_request.unwrap() - 50.0).abs() < 1e-9);
        assert!((cost.added_server_us_per_request_1k.unwrap() - 30.0).abs() < 1e-9);
        assert!((cost.mtls_us_per_request_1k.unwrap() - 270.0).abs() < 1e-9);
        let md = report.markdown();
        assert!(md.contains("| **+80.0** (+50.0, +30.0) |"), "{md}");
    }
}

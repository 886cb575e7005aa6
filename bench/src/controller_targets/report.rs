//! Summaries and the markdown report of a controller-targets run (pure).

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;

/// The targets the run checks.
pub const RSS_TARGET_MIB: f64 = 30.0;
/// p99 of "file written → stream received the diff", over all streams and edits.
pub const FAN_OUT_TARGET_MS: f64 = 100.0;

/// p50 / p99 / max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (nearest rank).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Summary {
    /// Summarises `samples` (all zero when empty).
    pub fn of(samples: &[Duration]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort();
        let rank = |quantile: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let index = ((quantile * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            millis(sorted[index - 1])
        };
        Self {
            count: sorted.len(),
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: sorted.last().map_or(0.0, |last| millis(*last)),
        }
    }
}

/// A duration in milliseconds.
pub fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One scenario's edits: per-stream latencies and where the time went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EditResults {
    /// What was measured.
    pub name: String,
    /// Open `Get` streams.
    pub streams: usize,
    /// Streams expected to see each edit.
    pub receivers_per_edit: usize,
    /// Edits made.
    pub edits: usize,
    /// File written → each receiving stream got the diff (all streams, all edits).
    pub latency: Summary,
    /// File written → the first stream got it (watch + read + parse + catalog), per edit.
    pub first: Summary,
    /// First stream → last stream, per edit (fan-out).
    pub spread: Summary,
    /// The controller's own reload time per edit (`last_load_ms` on `/ready`).
    pub reload: Summary,
    /// Streams that missed an edit within the timeout, or got the wrong kind of update.
    pub misses: usize,
    /// Updates on streams whose service the edit did not touch.
    pub unexpected: usize,
}

/// Resident memory at the moments the run samples.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// After start-up with the big mesh, no streams.
    pub idle_kib: u64,
    /// With the fan-out scenario's streams open.
    pub fan_out_kib: u64,
    /// With the one-stream-per-service scenario's streams open.
    pub spread_kib: u64,
    /// The process's peak (`VmHWM`) at the end.
    pub peak_kib: u64,
}

/// The controller's CPU time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cpu {
    /// CPU time (user + system) from start to `/ready`.
    pub start_ms: f64,
    /// CPU use while idle after start-up (percent of one core).
    pub idle_percent: f64,
}

/// Everything a run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// When it started (UTC).
    pub started: String,
    /// `/proc/loadavg` at the start.
    pub load_average: String,
    /// Services, endpoints, namespaces, mesh file size.
    pub mesh: String,
    /// The controller binary.
    pub controller: String,
    /// Start → `/ready` 200.
    pub start_to_ready_ms: f64,
    /// The controller's first full load of the file (`last_load_ms`).
    pub initial_load_ms: f64,
    /// Memory samples.
    pub memory: Memory,
    /// CPU time.
    pub cpu: Cpu,
    /// The scenarios.
    pub scenarios: Vec<EditResults>,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

impl Report {
    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# weft-controller targets — {}\n", self.started);
        let _ = writeln!(out, "- mesh: {}", self.mesh);
        let _ = writeln!(out, "- controller: {}", self.controller);
        let _ = writeln!(out, "- load average at start: {}\n", self.load_average);

        let _ = writeln!(out, "| target | measured | |");
        let _ = writeln!(out, "|---|---|---|");
        let idle = mib(self.memory.idle_kib);
        let _ = writeln!(
            out,
            "| RSS ≤ {RSS_TARGET_MIB} MiB with the big mesh (idle) | {idle:.1} MiB | {} |",
            verdict(idle <= RSS_TARGET_MIB)
        );
        for scenario in &self.scenarios {
            let met = scenario.latency.p99_ms <= FAN_OUT_TARGET_MS && scenario.misses == 0;
            let _ = writeln!(
                out,
                "| edit → {} streams p99 ≤ {FAN_OUT_TARGET_MS} ms ({}) | {:.1} ms | {} |",
                scenario.receivers_per_edit,
                scenario.name,
                scenario.latency.p99_ms,
                verdict(met)
            );
        }

        let _ = writeln!(out, "\n## Memory (VmRSS)\n");
        let _ = writeln!(out, "| moment | RSS |");
        let _ = writeln!(out, "|---|---|");
        let memory = &self.memory;
        for (moment, kib) in [
            ("idle, big mesh loaded", memory.idle_kib),
            ("fan-out streams open", memory.fan_out_kib),
            ("one stream per service open", memory.spread_kib),
            ("peak (VmHWM) at the end", memory.peak_kib),
        ] {
            let _ = writeln!(out, "| {moment} | {:.1} MiB |", mib(kib));
        }

        let _ = writeln!(out, "\n## CPU (user + system)\n");
        let _ = writeln!(out, "| moment | CPU |");
        let _ = writeln!(out, "|---|---|");
        let _ = writeln!(out, "| start → /ready | {:.0} ms |", self.cpu.start_ms);
        let _ = writeln!(
            out,
            "| idle, 10 s after start-up | {:.2} % of a core |",
            self.cpu.idle_percent
        );

        let _ = writeln!(out, "\n## Edit → stream latency (ms)\n");
        let _ = writeln!(
            out,
            "Per stream: from the edit (the mesh-file write, a rename; or the EndpointSlice \
             replaced in the API server) to the stream receiving the diff. \
             *first* = edit → first stream (watch + read + parse + catalog); \
             *fan-out* = first → last stream of the same edit; *reload* = the controller's own \
             read+parse+reset time.\n"
        );
        let _ = writeln!(
            out,
            "| scenario | streams | edits | p50 | p99 | max | first p50 / max | fan-out p50 / max | reload p50 / max | misses | unexpected |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        for s in &self.scenarios {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} / {:.1} | {} | {} |",
                s.name,
                s.streams,
                s.edits,
                s.latency.p50_ms,
                s.latency.p99_ms,
                s.latency.max_ms,
                s.first.p50_ms,
                s.first.max_ms,
                s.spread.p50_ms,
                s.spread.max_ms,
                s.reload.p50_ms,
                s.reload.max_ms,
                s.misses,
                s.unexpected
            );
        }

        let _ = writeln!(out, "\n## Mesh file load\n");
        let _ = writeln!(out, "| | ms |");
        let _ = writeln!(out, "|---|---|");
        let _ = writeln!(out, "| start → /ready | {:.0} |", self.start_to_ready_ms);
        let _ = writeln!(
            out,
            "| initial full load (controller) | {:.1} |",
            self.initial_load_ms
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = Summary::of(&samples);
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(Summary::of(&[]), Summary::default());
        let one = Summary::of(&[Duration::from_millis(7)]);
        assert_eq!((one.p50_ms, one.p99_ms, one.max_ms), (7.0, 7.0, 7.0));
    }

    #[test]
    fn markdown_names_missed_targets() {
        let report = Report {
            memory: Memory {
                idle_kib: 20 * 1024,
                fan_out_kib: 40 * 1024,
                ..Memory::default()
            },
            scenarios: vec![EditResults {
                name: "fan-out".into(),
                receivers_per_edit: 1000,
                latency: Summary {
                    p99_ms: 150.0,
                    ..Summary::default()
                },
                ..EditResults::default()
            }],
            ..Report::default()
        };
        let markdown = report.markdown();
        assert!(markdown.contains("| 150.0 ms | MISSED |"), "{markdown}");
        let report = Report {
            memory: Memory {
                idle_kib: 20 * 1024,
                ..Memory::default()
            },
            scenarios: vec![EditResults {
                name: "fan-out".into(),
                receivers_per_edit: 1000,
                latency: Summary {
                    p99_ms: 50.0,
                    ..Summary::default()
                },
                ..EditResults::default()
            }],
            ..Report::default()
        };
        let markdown = report.markdown();
        assert!(markdown.contains("| 20.0 MiB | met |"), "{markdown}");
        assert!(markdown.contains("| 50.0 ms | met |"), "{markdown}");
    }
}

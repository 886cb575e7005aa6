//! Process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_start_time_seconds`, …) read from `/proc/self` at scrape time.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::time::{SystemTime, UNIX_EPOCH};

/// Linux reports CPU time in clock ticks of 1/100 s (USER_HZ) on every
/// architecture the proxy runs on.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// Collects process metrics on each scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    start_time_seconds: f64,
}

impl ProcessCollector {
    /// A collector that reports `started` as the process start time.
    pub(crate) fn new(started: SystemTime) -> Self {
        ProcessCollector {
            start_time_seconds: started
                .duration_since(UNIX_EPOCH)
                .map(|since| since.as_secs_f64())
                .unwrap_or_default(),
        }
    }
}

/// What `/proc/self` says about this process.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ProcessSample {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_memory_bytes: i64,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: i64,
    /// Threads in the process.
    pub threads: i64,
}

impl ProcessSample {
    /// Reads the current process's figures.
    pub(crate) fn read() -> Option<ProcessSample> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        ProcessSample::parse(&stat, &status)
    }

    /// Parses `/proc/PID/stat` and `/proc/PID/status` contents.
    pub(crate) fn parse(stat: &str, status: &str) -> Option<ProcessSample> {
        // The command name (field 2) may hold spaces; fields after it are
        // counted from the closing parenthesis.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // fields[0] is field 3 (state): utime is field 14, stime 15, threads 20.
        let field = |number: usize| fields.get(number - 3)?.parse::<f64>().ok();
        let cpu_seconds = (field(14)? + field(15)?) / CLOCK_TICKS_PER_SECOND;
        let threads = field(20)? as i64;
        let kib = |key: &str| -> Option<i64> {
            let line = status.lines().find(|line| line.starts_with(key))?;
            line[key.len()..]
                .split_whitespace()
                .next()?
                .parse::<i64>()
                .ok()
        };
        Some(ProcessSample {
            cpu_seconds,
            resident_memory_bytes: kib("VmRSS:")? * 1024,
            virtual_memory_bytes: kib("VmSize:")? * 1024,
            threads,
        })
    }
}

fn open_fds() -> i64 {
    std::fs::read_dir("/proc/self/fd")
        .map(|entries| entries.count() as i64)
        .unwrap_or(0)
}

fn encode_counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let counter = ConstCounter::new(value);
    counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)
}

fn encode_gauge<N>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        encode_gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Time the process started, in seconds since the Unix epoch.",
            self.start_time_seconds,
        )?;
        if let Some(sample) = ProcessSample::read() {
            encode_counter(
                &mut encoder,
                "process_cpu_seconds",
                "Total user and system CPU time spent, in seconds.",
                sample.cpu_seconds,
            )?;
            encode_gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size, in bytes.",
                sample.resident_memory_bytes,
            )?;
            encode_gauge(
                &mut encoder,
                "process_virtual_memory_bytes",
                "Virtual memory size, in bytes.",
                sample.virtual_memory_bytes,
            )?;
            encode_gauge(
                &mut encoder,
                "process_threads",
                "Threads in the process.",
                sample.threads,
            )?;
        }
        encode_gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors.",
            open_fds(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (weft proxy) S 1 4242 4242 0 -1 4194560 300 0 0 0 250 50 0 0 20 0 3 0 12345 10000 500";
        let status = "Name:\tweft-proxy\nVmSize:\t   10240 kB\nVmRSS:\t    5120 kB\n";
        let sample = ProcessSample::parse(stat, status).unwrap();
        assert_eq!(
            sample,
            ProcessSample {
                cpu_seconds: 3.0,
                resident_memory_bytes: 5120 * 1024,
                virtual_memory_bytes: 10240 * 1024,
                threads: 3,
            }
        );
    }

    #[test]
    fn reads_this_process() {
        let sample = ProcessSample::read().unwrap();
        assert!(sample.resident_memory_bytes > 0);
        assert!(sample.threads >= 1);
    }
}

//! HTTP/1.1 and HTTP/2 load through [`oha`](https://github.com/hatoo/oha):
//! finding or installing the binary, turning a [`LoadSpec`] into its flags,
//! and reading its JSON report back into a [`LoadResult`].
//!
//! Closed loop: HTTP/1.1 uses `-c N` connections with one request each in
//! flight; HTTP/2 uses one connection carrying `N` streams (`-c 1 -p N`).
//! Open loop adds `-q RATE --latency-correction`, which times each request
//! from the moment the rate limiter released it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::load::{Latency, LoadPoint, LoadResult, LoadSpec, Workload};
use crate::process::Placement;

/// Finds `oha` on `PATH` or in `~/.cargo/bin`, installing it with
/// `cargo install oha --locked` (about 3.5 minutes) when `install` is set.
pub fn locate(install: bool) -> anyhow::Result<PathBuf> {
    if let Some(found) = find_on_path() {
        return Ok(found);
    }
    if !install {
        bail!("oha not found on PATH or in ~/.cargo/bin; run `cargo install oha --locked`");
    }
    eprintln!("weft-bench: installing oha (cargo install oha --locked, ~3.5 min)...");
    let status = Command::new("cargo")
        .args(["install", "oha", "--locked"])
        .status()
        .context("running cargo install oha")?;
    if !status.success() {
        bail!("cargo install oha --locked failed: {status}");
    }
    find_on_path().context("oha still not found after installing it")
}

fn find_on_path() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("oha"))
        .find(|candidate| candidate.is_file())
}

/// The version line `oha --version` prints.
pub fn version(oha: &Path) -> String {
    Command::new(oha)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The command-line arguments for one run (pure, so it is unit-tested).
pub fn args(spec: &LoadSpec) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-tui".into(),
        "--output-format".into(),
        "json".into(),
        "-z".into(),
        format!("{}ms", spec.duration.as_millis()),
    ];
    let in_flight = match spec.point {
        LoadPoint::Closed { concurrency } => concurrency,
        LoadPoint::Open { .. } => spec.open_loop_slots,
    };
    match spec.workload {
        Workload::Http2 => {
            args.extend(["--http2".into(), "-c".into(), "1".into()]);
            args.extend(["-p".into(), in_flight.to_string()]);
        }
        _ => args.extend(["-c".into(), in_flight.to_string()]),
    }
    if spec.new_connections && spec.workload == Workload::Http1 {
        args.push("--disable-keepalive".into());
    }
    if let LoadPoint::Open { rate } = spec.point {
        args.extend(["-q".into(), rate.to_string(), "--latency-correction".into()]);
    }
    if let Some(proxy) = spec.target.via_proxy {
        // The proxy resolves the authority (it may be a name only discovery
        // knows): oha must not look it up first.
        args.extend([
            "-x".into(),
            format!("http://{proxy}"),
            "--no-pre-lookup".into(),
        ]);
        if spec.workload == Workload::Http2 {
            args.push("--proxy-http2".into());
        }
    }
    args.push(format!("http://{}/", spec.target.authority));
    args
}

/// Runs `oha` (placed on CPUs and priority by `placement`) and
/// parses its report.
pub fn run(oha: &Path, placement: &Placement, spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    let mut command = placement.command(oha);
    let output = command
        .args(args(spec))
        .stdin(Stdio::null())
        .output()
        .context("running oha")?;
    if !output.status.success() {
        bail!(
            "oha failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    parse(&output.stdout)
}

/// The parts of oha's `--output-format json` report the harness uses.
#[derive(Deserialize)]
struct Report {
    summary: Summary,
    #[serde(rename = "latencyPercentiles")]
    latency_percentiles: BTreeMap<String, Option<f64>>,
    #[serde(rename = "statusCodeDistribution")]
    status_codes: BTreeMap<String, u64>,
    #[serde(rename = "errorDistribution")]
    errors: BTreeMap<String, u64>,
}

#[derive(Deserialize)]
struct Summary {
    total: f64,
}

/// oha's name for requests cut off by `-z`; they are not failures.
const DEADLINE_ERROR: &str = "aborted due to deadline";

/// Parses oha's JSON report (latencies there are in seconds).
pub fn parse(json: &[u8]) -> anyhow::Result<LoadResult> {
    let report: Report = serde_json::from_slice(json).context("parsing oha's JSON report")?;
    let ok = report.status_codes.get("200").copied().unwrap_or(0);
    let bad_status: u64 = report
        .status_codes
        .iter()
        .filter(|(code, _)| code.as_str() != "200")
        .map(|(_, n)| n)
        .sum();
    let transport_errors: u64 = report
        .errors
        .iter()
        .filter(|(message, _)| !message.contains(DEADLINE_ERROR))
        .map(|(_, n)| n)
        .sum();
    let error_sample = report
        .errors
        .keys()
        .find(|message| !message.contains(DEADLINE_ERROR))
        .cloned()
        .or_else(|| {
            report
                .status_codes
                .keys()
                .find(|code| code.as_str() != "200")
                .map(|code| format!("HTTP status {code}"))
        });
    let percentile = |key: &str| {
        report
            .latency_percentiles
            .get(key)
            .copied()
            .flatten()
            .unwrap_or(f64::NAN)
            * 1000.0
    };
    Ok(LoadResult {
        ok,
        errors: bad_status + transport_errors,
        seconds: report.summary.total,
        latency: Latency {
            p50_ms: percentile("p50"),
            p99_ms: percentile("p99"),
            p999_ms: percentile("p99.9"),
        },
        error_sample,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Target;
    use std::time::Duration;

    fn spec(workload: Workload, point: LoadPoint, via_proxy: bool) -> LoadSpec {
        LoadSpec {
            workload,
            point,
            target: Target {
                authority: "127.0.0.1:8080".into(),
                via_proxy: via_proxy.then(|| "127.0.0.1:4140".parse().unwrap()),
            },
            duration: Duration::from_millis(1500),
            open_loop_slots: 64,
            new_connections: false,
        }
    }

    #[test]
    fn http1_closed_loop_uses_one_connection_per_slot() {
        let args = args(&spec(
            Workload::Http1,
            LoadPoint::Closed { concurrency: 10 },
            false,
        ));
        assert_eq!(
            args.join(" "),
            "--no-tui --output-format json -z 1500ms -c 10 http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn http1_new_connections_disable_keepalive() {
        let mut spec = spec(Workload::Http1, LoadPoint::Open { rate: 1000 }, false);
        spec.new_connections = true;
        assert_eq!(
            args(&spec).join(" "),
            "--no-tui --output-format json -z 1500ms -c 64 --disable-keepalive -q 1000 \
             --latency-correction http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn http2_open_loop_through_proxy() {
        let args = args(&spec(Workload::Http2, LoadPoint::Open { rate: 1000 }, true));
        assert_eq!(
            args.join(" "),
            "--no-tui --output-format json -z 1500ms --http2 -c 1 -p 64 -q 1000 \
             --latency-correction -x http://127.0.0.1:4140 --no-pre-lookup --proxy-http2 \
             http://127.0.0.1:8080/"
        );
    }

    #[test]
    fn parses_report() {
        let json = br#"{
            "summary": {"successRate": 1.0, "total": 2.0},
            "latencyPercentiles": {"p50": 0.0005, "p99": 0.001, "p99.9": 0.002},
            "statusCodeDistribution": {"200": 1000, "502": 2},
            "errorDistribution": {"aborted due to deadline": 7, "connection refused": 1}
        }"#;
        let result = parse(json).unwrap();
        assert_eq!(result.ok, 1000);
        assert_eq!(result.errors, 3);
        assert_eq!(result.throughput(), 500.0);
        assert!((result.latency.p99_ms - 1.0).abs() < 1e-9);
        assert_eq!(result.error_sample.as_deref(), Some("connection refused"));
    }
}

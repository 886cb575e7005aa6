//! Command line of `weft-bench`: the benchmark run (default) and the two
//! helper subcommands the harness starts as pinned child processes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Side-by-side benchmark: direct vs. one and two weft-proxy hops (and
/// optionally other proxies), interleaved, medians over repeats.
#[derive(Debug, Parser)]
#[command(name = "weft-bench", args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Helper processes (started by the harness itself).
    #[command(subcommand)]
    pub command: Option<Helper>,
    /// Benchmark options.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Helper processes the harness runs as children.
#[derive(Debug, Subcommand)]
pub enum Helper {
    /// Serve the backend (HTTP/1.1, h2c, gRPC) on one port (of one or
    /// more addresses: the transparent setups' intercepted ones too).
    #[command(hide = true)]
    Backend {
        /// Address to listen on (repeatable).
        #[arg(long, required = true)]
        listen: Vec<SocketAddr>,
    },
    /// Run one gRPC load run and print its result as JSON.
    #[command(hide = true)]
    GrpcLoad {
        /// The run, as JSON (`GrpcRun`).
        #[arg(long)]
        spec: String,
    },
    /// Make TLS handshakes (or plain connections) to a proxy one after
    /// another and print what they cost as JSON.
    #[command(hide = true)]
    TlsHandshakes {
        /// The series, as JSON (`HandshakeRun`).
        #[arg(long)]
        spec: String,
    },
}

/// How the first of two weft hops is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EntryArg {
    /// Client-side proxy's outbound listener as an explicit HTTP proxy.
    Outbound,
    /// Client-side proxy's inbound listener, forwarding to the server side.
    Inbound,
}

/// Options of a benchmark run.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Short run (~3–4 min): 3 repeats of 1 s runs. Default: full (~13–15
    /// min): 5 repeats of 3 s runs.
    #[arg(long)]
    pub quick: bool,
    /// Override the number of repeats.
    #[arg(long)]
    pub repeats: Option<u32>,
    /// Override the length of each run (e.g. `2s`, `1500ms`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Setups to compare (of direct, weft-1hop, weft-2hop, weft-outbound,
    /// weft-discovery, weft-discovery-2hop, weft-mtls-2hop,
    /// weft-mtls-h1-2hop, weft-transparent). weft-transparent needs root and
    /// iptables: an iptables REDIRECT sends the client's connections into a
    /// weft-proxy without a forward address, run as UID 2102.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,weft-1hop,weft-2hop"
    )]
    pub setups: Vec<String>,
    /// Workloads (of http1, http2, grpc).
    #[arg(long, value_delimiter = ',', default_value = "http1,http2,grpc")]
    pub workloads: Vec<String>,
    /// How weft-2hop's first hop is entered.
    #[arg(long, value_enum, default_value = "outbound")]
    pub two_hop_entry: EntryArg,
    /// Add weft-outbound and weft-discovery to the setups: the outbound
    /// listener as an explicit proxy, without and with discovery (a
    /// weft-controller resolves the service), to measure what discovery and
    /// balancing cost.
    #[arg(long)]
    pub discovery: bool,
    /// Add weft-2hop, weft-discovery, weft-discovery-2hop and weft-mtls-2hop
    /// to the setups: two proxies found by discovery, plaintext and with
    /// mutual TLS (a weft-controller with identity issues both proxies'
    /// certificates), to measure what mTLS costs; and, after the runs, a
    /// TLS handshake measurement against the mTLS server-side proxy.
    #[arg(long)]
    pub mtls: bool,
    /// TLS handshakes the handshake measurement makes (with --mtls or
    /// weft-mtls-2hop; 0 = none).
    #[arg(long, default_value_t = 2_000)]
    pub handshakes: u32,
    /// HTTP/1.1 only: open a new client connection for every request
    /// (`oha --disable-keepalive`), to see what connection set-up costs
    /// each path.
    #[arg(long)]
    pub new_connections: bool,
    /// Before every measured run, the same load for this long, not
    /// recorded, so pooled connections (and their TLS handshakes) closed
    /// while other setups ran are open again (`0ms` = none).
    #[arg(long, default_value = "300ms", value_parser = parse_duration)]
    pub pre_run: Duration,
    /// Another proxy to compare: `nginx`, `haproxy`, `nginx-2hop` (two
    /// nginx processes in a chain, plaintext HTTP/1.1 between them),
    /// `nginx-mtls-2hop` (the same with mutual TLS 1.3 between them),
    /// `linkerd=/path/to/linkerd2-proxy` (transparent like weft-transparent,
    /// which it adds; needs root and iptables; a weft-controller with
    /// identity is its control plane), or
    /// `NAME=PROGRAM ARGS` with `{listen}` and `{backend}` placeholders
    /// (one port for all workloads). The nginx chains serve HTTP/1.1 only;
    /// they are the reference for weft-2hop and weft-mtls-2hop. Repeatable.
    #[arg(long = "other")]
    pub others: Vec<String>,
    /// Install missing nginx / HAProxy with apt-get.
    #[arg(long)]
    pub install_others: bool,
    /// Do not `cargo install oha --locked` when oha is missing.
    #[arg(long)]
    pub no_install_oha: bool,
    /// The weft-proxy binary (default: next to this executable).
    #[arg(long)]
    pub proxy_bin: Option<PathBuf>,
    /// The weft-controller binary for weft-discovery (default: next to this
    /// executable).
    #[arg(long)]
    pub controller_bin: Option<PathBuf>,
    /// CPU list (`taskset -c`) for the proxies under test.
    #[arg(long, default_value = "0")]
    pub proxy_cpus: String,
    /// CPU list for the load generators and the backend.
    #[arg(long, default_value = "1")]
    pub client_cpus: String,
    /// Do not pin processes to CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// `nice` adjustment of proxies, backend and load generators (negative
    /// puts them ahead of other work on a shared machine; needs root).
    #[arg(long, default_value_t = -10, allow_negative_numbers = true)]
    pub nice: i32,
    /// Directory for results (markdown, JSON, logs).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    pub out_dir: PathBuf,
    /// Open-loop in-flight capacity (connections for HTTP/1.1, streams for
    /// HTTP/2 and gRPC).
    #[arg(long, default_value_t = 50)]
    pub open_loop_slots: u32,
    /// Closed-loop concurrencies for max throughput (`''` for none).
    #[arg(long, default_value = "1,10,50", value_parser = parse_numbers)]
    pub concurrencies: Numbers,
    /// Open-loop rates (requests/s) for latency (`''` for none), e.g.
    /// `--concurrencies '' --rates 1000` for a latency-only run.
    #[arg(long, default_value = "1000,5000", value_parser = parse_numbers)]
    pub rates: Numbers,
}

/// A comma-separated list of positive numbers, possibly empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Numbers(pub Vec<u32>);

/// Parses `1,10,50` (or `` for none).
pub fn parse_numbers(text: &str) -> Result<Numbers, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{part:?}: expected a positive whole number")),
        })
        .collect::<Result<Vec<u32>, String>>()
        .map(Numbers)
}

/// Parses `1500ms`, `2s`, `1m`, `1m30s` (weft-core's duration parser).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    weft_core::duration::parse_duration(text).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_lists() {
        assert_eq!(parse_numbers("1,10,50"), Ok(Numbers(vec![1, 10, 50])));
        assert_eq!(parse_numbers(""), Ok(Numbers(vec![])));
        assert_eq!(parse_numbers("1000"), Ok(Numbers(vec![1000])));
        assert!(parse_numbers("0").is_err());
        assert!(parse_numbers("1k").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("2 parsecs").is_err());
    }

    #[test]
    fn defaults_parse() {
        let cli = Cli::try_parse_from(["weft-bench", "--quick", "--other", "nginx"]).unwrap();
        assert!(cli.command.is_none());
        assert!(cli.run.quick);
        assert_eq!(cli.run.setups, ["direct", "weft-1hop", "weft-2hop"]);
        assert!(!cli.run.discovery);
        assert!(!cli.run.mtls);
        let cli = Cli::try_parse_from([
            "weft-bench",
            "--other",
            "nginx-2hop",
            "--other",
            "nginx-mtls-2hop",
        ])
        .unwrap();
        assert_eq!(cli.run.others, ["nginx-2hop", "nginx-mtls-2hop"]);
        let cli = Cli::try_parse_from(["weft-bench", "backend", "--listen", "127.0.0.1:1"]);
        assert!(matches!(cli.unwrap().command, Some(Helper::Backend { .. })));
        let cli = Cli::try_parse_from([
            "weft-bench",
            "backend",
            "--listen",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.2:1",
        ]);
        let Some(Helper::Backend { listen }) = cli.unwrap().command else {
            panic!("not the backend");
        };
        assert_eq!(listen.len(), 2);
    }
}

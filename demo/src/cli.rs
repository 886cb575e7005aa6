//! The command line: one subcommand per app of the demo mesh.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};

/// weft-demo: the apps of weft's demo mesh (run them with `weft demo`).
#[derive(Debug, Parser)]
#[command(name = "weft-demo", version, about)]
pub struct Cli {
    /// The app to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The apps.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The HTTP/1.1 front end: `GET /` asks books (HTTP/1.1) and authors (gRPC).
    Web(WebArgs),
    /// The books service (`GET /books`), in the version given.
    Books(BooksArgs),
    /// The gRPC authors service, failing a share of its calls.
    Authors(AuthorsArgs),
    /// Calls a URL at a steady rate and logs how the calls went.
    Traffic(TrafficArgs),
}

/// `weft-demo web`.
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:7410")]
    pub listen: SocketAddr,
    /// The books service's base URL.
    #[arg(long, default_value = "http://books.demo.svc.cluster.local")]
    pub books: String,
    /// The authors service's URL (gRPC).
    #[arg(long, default_value = "http://authors.demo.svc.cluster.local")]
    pub authors: String,
}

/// `weft-demo books`.
#[derive(Debug, Clone, Args)]
pub struct BooksArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:7420")]
    pub listen: SocketAddr,
    /// The version it says it is (`v1`, `v2`).
    #[arg(long = "app-version", default_value = "v1")]
    pub version: String,
}

/// `weft-demo authors`.
#[derive(Debug, Clone, Args)]
pub struct AuthorsArgs {
    /// Where to listen (gRPC over h2c).
    #[arg(long, default_value = "127.0.0.1:7440")]
    pub listen: SocketAddr,
    /// The share of calls answered with UNAVAILABLE (0 to 1).
    #[arg(long, default_value_t = 0.1, value_parser = failure_rate)]
    pub failure_rate: f64,
}

/// `weft-demo traffic`.
#[derive(Debug, Clone, Args)]
pub struct TrafficArgs {
    /// The URL to call.
    #[arg(long, default_value = "http://web.demo.svc.cluster.local/")]
    pub target: String,
    /// Requests per second.
    #[arg(long, default_value_t = 10.0, value_parser = positive_rate)]
    pub rps: f64,
    /// Where to listen (a health endpoint, so the proxy has an app to forward to).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
}

fn failure_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

fn positive_rate(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if rate > 0.0 && rate <= 10_000.0 {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 (excluded) and 10000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_checked() {
        for (input, ok) in [
            ("0", true),
            ("0.1", true),
            ("1", true),
            ("1.5", false),
            ("x", false),
        ] {
            assert_eq!(failure_rate(input).is_ok(), ok, "{input}");
        }
        for (input, ok) in [("10", true), ("0", false), ("-1", false)] {
            assert_eq!(positive_rate(input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn parses_each_app() {
        let cli = Cli::try_parse_from(["weft-demo", "authors", "--failure-rate", "0.25"]).unwrap();
        assert!(
            matches!(cli.command, Command::Authors(AuthorsArgs { failure_rate, .. }) if failure_rate == 0.25)
        );
        let cli = Cli::try_parse_from(["weft-demo", "books", "--app-version", "v2"]).unwrap();
        assert!(
            matches!(cli.command, Command::Books(BooksArgs { version, .. }) if version == "v2")
        );
    }
}

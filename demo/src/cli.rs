//! Command-line options of `weft-demo`.
//!
//! Hand-parsed (a handful of flags does not need an argument-parsing crate).
//! A port of `0` means "pick a free loopback port".

use std::path::PathBuf;
use std::time::Duration;

/// Printed by `--help` and after a usage error.
pub const USAGE: &str = "\
weft-demo: run a small demo app behind a real weft-proxy and show how to curl through it

USAGE:
    weft-demo [OPTIONS]

OPTIONS:
    --app-port PORT         demo app port on 127.0.0.1 (default 0 = a free port)
    --inbound-port PORT     proxy inbound listener on 127.0.0.1 (default 4143)
    --outbound-port PORT    proxy outbound listener on 127.0.0.1 (default 4140)
    --admin-port PORT       proxy admin server on 127.0.0.1 (default 4191)
    --proxy PATH            weft-proxy binary (default: weft-proxy next to this
                            executable; env WEFT_DEMO_PROXY_BIN also works)
    --traffic               send a few requests through the proxy every second
                            so /metrics has numbers
    --check                 send one round of requests through every path, verify
                            the answers and the proxy's metrics, stop, and exit
                            0 (all good) or 1
    -h, --help              print this help

Ctrl-C or SIGTERM stops the proxy (SIGTERM, graceful drain) and exits.
Any WEFT_PROXY_* variable in the environment is passed to the proxy, except the
listen/forward addresses, which the demo sets.
";

/// Default interval between two rounds of `--traffic` requests.
const TRAFFIC_INTERVAL: Duration = Duration::from_secs(1);

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run the demo with these options.
    Run(Options),
    /// Print the usage text and exit.
    Help,
}

/// Options of one demo run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Port of the demo app on 127.0.0.1 (0 = free port).
    pub app_port: u16,
    /// Port of the proxy's inbound listener on 127.0.0.1 (0 = free port).
    pub inbound_port: u16,
    /// Port of the proxy's outbound listener on 127.0.0.1 (0 = free port).
    pub outbound_port: u16,
    /// Port of the proxy's admin server on 127.0.0.1 (0 = free port).
    pub admin_port: u16,
    /// Explicit path of the `weft-proxy` binary.
    pub proxy_bin: Option<PathBuf>,
    /// Interval of generated traffic, if `--traffic` was given.
    pub traffic: Option<Duration>,
    /// Verify every path once and exit instead of waiting for Ctrl-C.
    pub check: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            app_port: 0,
            inbound_port: 4143,
            outbound_port: 4140,
            admin_port: 4191,
            proxy_bin: std::env::var_os("WEFT_DEMO_PROXY_BIN").map(PathBuf::from),
            traffic: None,
            check: false,
        }
    }
}

impl Options {
    /// Parses the arguments (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            // Accept both `--flag value` and `--flag=value`.
            let (flag, inline_value) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_string(), Some(value.to_string()))
                }
                _ => (arg.clone(), None),
            };
            let mut value = || {
                inline_value
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-h" | "--help" => return Ok(Parsed::Help),
                "--app-port" => options.app_port = parse_port(&flag, &value()?)?,
                "--inbound-port" => options.inbound_port = parse_port(&flag, &value()?)?,
                "--outbound-port" => options.outbound_port = parse_port(&flag, &value()?)?,
                "--admin-port" => options.admin_port = parse_port(&flag, &value()?)?,
                "--proxy" => options.proxy_bin = Some(PathBuf::from(value()?)),
                "--traffic" => options.traffic = Some(TRAFFIC_INTERVAL),
                "--check" => options.check = true,
                _ => return Err(format!("unknown argument {arg:?}")),
            }
        }
        Ok(Parsed::Run(options))
    }
}

fn parse_port(flag: &str, value: &str) -> Result<u16, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a port (0-65535)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        Options::parse(args.iter().map(|arg| arg.to_string()))
    }

    #[test]
    fn defaults_are_the_readme_ports() {
        let Parsed::Run(options) = parse(&[]).unwrap() else {
            panic!("expected options")
        };
        assert_eq!(
            (
                options.inbound_port,
                options.outbound_port,
                options.admin_port
            ),
            (4143, 4140, 4191)
        );
        assert_eq!(options.app_port, 0);
        assert!(!options.check && options.traffic.is_none());
    }

    #[test]
    fn flags_with_separate_and_inline_values() {
        let Parsed::Run(options) = parse(&[
            "--app-port",
            "8080",
            "--admin-port=0",
            "--traffic",
            "--check",
            "--proxy",
            "/x/weft-proxy",
        ])
        .unwrap() else {
            panic!("expected options")
        };
        assert_eq!(options.app_port, 8080);
        assert_eq!(options.admin_port, 0);
        assert_eq!(options.traffic, Some(TRAFFIC_INTERVAL));
        assert!(options.check);
        assert_eq!(options.proxy_bin, Some(PathBuf::from("/x/weft-proxy")));
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(&["--traffic", "-h"]), Ok(Parsed::Help));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert!(
            parse(&["--app-port", "70000"])
                .unwrap_err()
                .contains("--app-port")
        );
        assert!(
            parse(&["--admin-port"])
                .unwrap_err()
                .contains("needs a value")
        );
        assert!(parse(&["--nope"]).unwrap_err().contains("--nope"));
    }
}

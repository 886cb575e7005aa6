//! The top-level command line: global options shared by every command and
//! the list of commands (each command's own flags live in its module).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// weft: the service mesh that is five minutes from nothing to metrics.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about)]
pub struct Cli {
    /// Options every command shares.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOptions {
    /// Where `weft up` keeps its state (certificates, tokens, logs, `up.json`).
    #[arg(long, global = true, env = "WEFT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The controller's API and dashboard address (default: from the state
    /// directory's `up.json`, else http://127.0.0.1:8084).
    #[arg(long, global = true, env = "WEFT_API_ADDR")]
    pub api_addr: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a mesh on this host from a mesh file: controller, apps and proxies.
    Up(crate::up::Args),
    /// Run the built-in demo mesh (`weft up` with a demo mesh file).
    Demo(crate::demo::Args),
    /// Check the mesh's health: controller, certificates, proxies, mesh file, clocks.
    Check(crate::check::Args),
    /// Golden metrics (success rate, RPS, latency, TCP) per namespace, workload, service.
    Stat(crate::stat::Args),
    /// Golden metrics per route.
    Routes(crate::routes::Args),
    /// Edges between workloads, with their identities and whether they are secured.
    Edges(crate::edges::Args),
    /// Live requests aggregated by path.
    Top(crate::top::Args),
    /// Live requests, one line per event.
    Tap(crate::tap::Args),
    /// Diagnostics: a proxy's raw metrics.
    #[command(subcommand)]
    Diagnostics(crate::diagnostics::Command),
    /// Print (and open, when possible) the dashboard's URL.
    Dashboard(crate::dashboard::Args),
}

//! `weft diagnostics …` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// The diagnostics commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print a proxy's raw `/metrics`.
    ProxyMetrics {},
}

/// Runs a diagnostics command.
pub async fn run(_global: &GlobalOptions, _command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft diagnostics is not built yet")
}

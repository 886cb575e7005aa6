//! `weft edges` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft edges` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft edges`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft edges is not built yet")
}

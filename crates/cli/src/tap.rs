//! `weft tap` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft tap` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft tap`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft tap is not built yet")
}

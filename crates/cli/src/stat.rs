//! `weft stat` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft stat` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft stat`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft stat is not built yet")
}

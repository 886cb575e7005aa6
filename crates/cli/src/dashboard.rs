//! `weft dashboard` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft dashboard` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft dashboard`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft dashboard is not built yet")
}

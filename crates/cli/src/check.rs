//! `weft check` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft check` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft check`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft check is not built yet")
}

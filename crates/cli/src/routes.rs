//! `weft routes` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft routes` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft routes`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft routes is not built yet")
}

//! `weft top` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft top` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft top`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft top is not built yet")
}

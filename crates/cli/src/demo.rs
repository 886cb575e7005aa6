//! `weft demo` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft demo` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft demo`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft demo is not built yet")
}

//! `weft up` (not yet built).

use std::process::ExitCode;

use crate::cli::GlobalOptions;

/// `weft up` flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `weft up`.
pub async fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("weft up is not built yet")
}

//! `weft inject` and `weft uninject`: Kubernetes YAML in (files or stdin),
//! the same YAML out with the proxy injected into (or removed from) every
//! pod template, by the same decision the controller's admission webhook
//! makes (`weft_core::inject`).

use crate::global_options::GlobalOptions;

/// `weft inject` flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to read (`-` or none: stdin).
    pub files: Vec<std::path::PathBuf>,
}

/// `weft uninject` flags.
#[derive(Debug, clap::Args)]
pub struct UninjectArgs {
    /// Files to read (`-` or none: stdin).
    pub files: Vec<std::path::PathBuf>,
}

/// Run `weft inject`.
pub async fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<std::process::ExitCode> {
    let _ = (global, args);
    anyhow::bail!("weft inject is not built yet")
}

/// Run `weft uninject`.
pub async fn run_uninject(
    global: &GlobalOptions,
    args: UninjectArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let _ = (global, args);
    anyhow::bail!("weft uninject is not built yet")
}

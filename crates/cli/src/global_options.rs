//! The options every command shares (`--state-dir`, `--api-addr`). A low
//! module of its own: every command reads them, and the top-level parser in
//! [`crate::cli`] names every command, so keeping them apart keeps the
//! commands from importing the parser.

use std::path::PathBuf;

/// Options every command shares.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalOptions {
    /// Where `weft up` keeps its state (certificates, tokens, logs, `up.json`).
    #[arg(long, global = true, env = "WEFT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The controller's API and dashboard address (default: from the state
    /// directory's `up.json`, else http://127.0.0.1:8084).
    #[arg(long, global = true, env = "WEFT_API_ADDR")]
    pub api_addr: Option<String>,
}

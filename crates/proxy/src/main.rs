//! The `weft-proxy` binary: read the configuration, build the runtime, run.

use std::process::ExitCode;
use weft_proxy::{app, config};

/// mimalloc (v2) returns freed pages to the system after a flood of
/// connections ends (with the purge delay `memory.rs` sets); glibc's malloc
/// kept them, and jemalloc took longer to purge and far longer to build
/// (figures in ARCHITECTURE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for invalid configuration (EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    weft_proxy::memory::return_freed_pages_at_once();
    match std::env::args().nth(1).as_deref() {
        None => {}
        Some("-h" | "--help") => {
            print!("{}", config::help_text());
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("weft-proxy {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!(
                "weft-proxy takes no arguments (got {other:?}); it is configured by WEFT_PROXY_* variables, see --help"
            );
            return ExitCode::from(EXIT_USAGE);
        }
    }
    let config = match config::Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprint!("weft-proxy: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    app::init_logging(&config);
    let runtime = match app::runtime(&config) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("weft-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("weft-proxy: {error}");
            ExitCode::FAILURE
        }
    }
}

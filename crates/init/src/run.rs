//! weft-init's steps in order: check the flags, pick the backend, read the
//! nat table, work out the commands, run them (or print them with
//! `--dry-run`), then log the table as it now is.

use std::process::ExitCode;

use crate::apply::{self, ApplyError, CommandLine, NatState};
use crate::args::Args;
use crate::backend::{self, Backend};
use crate::ports::{BackendChoice, Config, InputErrors};
use crate::rules::{self, RuleSet};

/// The exit status for bad input (`EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;

/// Why weft-init stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A flag's value is refused: nothing was touched. Exit 64.
    #[error("{0}")]
    Input(#[from] InputErrors),
    /// iptables failed (its stderr is in the message). Exit 1.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl RunError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Input(_) => ExitCode::from(EXIT_USAGE),
            Self::Apply(_) => ExitCode::FAILURE,
        }
    }
}

/// The rule set `config` asks for: weft's rules, or none with `--remove`.
pub fn wanted(config: &Config) -> RuleSet {
    if config.remove {
        RuleSet::default()
    } else {
        rules::rule_set(config)
    }
}

/// What `--dry-run` prints: the commands for a table without weft's chains
/// (install), or for one holding exactly this configuration's (`--remove`).
/// Nothing is probed, so `--backend auto` is shown as nft, the choice in a
/// fresh network namespace where nf_tables works.
pub fn dry_run_commands(config: &Config) -> Vec<CommandLine> {
    let backend = match config.backend {
        BackendChoice::Legacy => Backend::Legacy,
        BackendChoice::Nft | BackendChoice::Auto => Backend::Nft,
    };
    let state = if config.remove {
        NatState::installed(&rules::rule_set(config))
    } else {
        NatState::default()
    };
    apply::converge(&wanted(config), &state)
        .iter()
        .map(|command| command.for_backend(backend))
        .collect()
}

/// Runs weft-init with `args`, logging to stdout (commands) and stderr
/// (notes).
pub fn run(args: &Args) -> Result<(), RunError> {
    let config = Config::from_args(args)?;
    let action = if config.remove { "remove" } else { "install" };
    if !config.skip_networks.ipv6.is_empty() {
        eprintln!(
            "weft-init: --skip-subnets: IPv6 networks {} need no rule (only IPv4 is redirected)",
            config.skip_networks.ipv6.join(",")
        );
    }
    if config.dry_run {
        if config.backend == BackendChoice::Auto {
            eprintln!("weft-init: dry run: nothing probed, --backend auto shown as iptables-nft");
        }
        eprintln!("weft-init: dry run ({action}): these commands would run");
        for command in dry_run_commands(&config) {
            println!("{command}");
        }
        return Ok(());
    }

    let decision = backend::resolve(config.backend);
    println!(
        "weft-init: {action} with {} ({})",
        decision.backend.program(),
        decision.reason
    );
    let state = apply::read_state(decision.backend)?;
    let commands = apply::converge(&wanted(&config), &state);
    if commands.is_empty() {
        println!("weft-init: nothing to do: weft's chains are not in the nat table");
        return Ok(());
    }
    for command in &commands {
        let line = command.for_backend(decision.backend);
        println!("{line}");
        apply::run(&line.program, &line.args)?;
    }
    println!("weft-init: the nat table now:");
    print!("{}", apply::nat_listing(decision.backend)?);
    Ok(())
}

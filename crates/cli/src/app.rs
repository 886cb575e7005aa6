//! Dispatches a parsed command line to its command.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

/// Runs the command and returns the process's exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Up(args) => crate::up::run(&global, args).await,
        Command::Demo(args) => crate::demo::run(&global, args).await,
        Command::Check(args) => crate::check::run(&global, args).await,
        Command::Stat(args) => crate::stat::run(&global, args).await,
        Command::Routes(args) => crate::routes::run(&global, args).await,
        Command::Authz(args) => crate::authz::run(&global, args).await,
        Command::Edges(args) => crate::edges::run(&global, args).await,
        Command::Top(args) => crate::top::run(&global, args).await,
        Command::Tap(args) => crate::tap::run(&global, args).await,
        Command::Diagnostics(command) => crate::diagnostics::run(&global, command).await,
        Command::Dashboard(args) => crate::dashboard::run(&global, args).await,
        Command::Install(args) => crate::install::run(&global, args).await,
        Command::Uninstall(args) => crate::install::run_uninstall(&global, args).await,
        Command::Inject(args) => crate::inject::run(&global, args).await,
        Command::Uninject(args) => crate::inject::run_uninject(&global, args).await,
    }
}

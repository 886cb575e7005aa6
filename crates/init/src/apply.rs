//! Installing and removing, idempotently: the nat table as it is
//! ([`NatState`], read from `*-save`, which creates nothing) and the rule
//! set wanted ([`RuleSet`]; empty for `--remove`) give the commands that
//! turn one into the other ([`converge`], pure). Running it twice changes
//! nothing the second time but refilling weft's chains: existing chains are
//! flushed, not duplicated; a jump already there is kept.
//!
//! ```text
//! 1. delete jumps into weft's chains other than the wanted ones (by number,
//!    highest first, or by spec when the rule is exactly `-j WEFT_…`)
//! 2. wanted chains: flush if present, else create
//! 3. weft chains no longer wanted: flush all, then delete
//! 4. append the wanted chains' rules
//! 5. append each wanted jump that is not there yet
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::process::Command;

use crate::backend::Backend;
use crate::rules::{ALL_CHAINS, Rule, RuleSet};

/// A failed iptables run.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The program could not be started (not installed, not executable).
    #[error("cannot run {program}: {source} (is it installed and on PATH?)")]
    Spawn {
        /// The program.
        program: String,
        /// Why it did not start.
        source: std::io::Error,
    },
    /// The program ran and failed; its stderr says why.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The whole command line.
        command: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed to stderr, trimmed.
        stderr: String,
    },
}

/// The nat table as found: which chains exist, and every rule in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatState {
    /// Every chain (built-in and user-defined).
    pub chains: BTreeSet<String>,
    /// Every rule, in listing order.
    pub rules: Vec<Rule>,
}

impl NatState {
    /// The `*nat` section of a `*-save` listing (empty when there is none:
    /// the table does not exist yet).
    pub fn from_save(listing: &str) -> Self {
        let mut state = Self::default();
        let mut in_nat = false;
        for line in listing.lines() {
            let line = line.trim_end();
            if let Some(table) = line.strip_prefix('*') {
                in_nat = table == "nat";
            } else if !in_nat {
            } else if let Some(chain) = line.strip_prefix(':') {
                if let Some(name) = chain.split_whitespace().next() {
                    state.chains.insert(name.to_string());
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let mut words = rule.split_whitespace();
                if let Some(chain) = words.next() {
                    state.rules.push(Rule {
                        chain: chain.to_string(),
                        spec: words.map(ToString::to_string).collect(),
                    });
                }
            } else if line == "COMMIT" {
                in_nat = false;
            }
        }
        state
    }

    /// The state right after installing `set` into an empty table (what
    /// `--dry-run --remove` assumes).
    pub fn installed(set: &RuleSet) -> Self {
        let mut chains: BTreeSet<String> = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]
            .iter()
            .map(ToString::to_string)
            .collect();
        chains.extend(set.chains.iter().map(ToString::to_string));
        let mut rules = set.jumps.clone();
        rules.extend(set.rules.iter().cloned());
        Self { chains, rules }
    }
}

/// One iptables invocation on the nat table: the arguments after
/// `<program> -w -t nat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCommand(pub Vec<String>);

impl TableCommand {
    fn new(args: &[&str]) -> Self {
        Self(args.iter().map(ToString::to_string).collect())
    }

    /// The whole command line for `backend` (always `-w`: wait for the
    /// xtables lock rather than fail).
    pub fn for_backend(&self, backend: Backend) -> CommandLine {
        let mut args = vec!["-w".to_string(), "-t".to_string(), "nat".to_string()];
        args.extend(self.0.iter().cloned());
        CommandLine {
            program: backend.program().to_string(),
            args,
        }
    }
}

/// A program and its arguments, printed as a shell would read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The program (`iptables-nft`).
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl fmt::Display for CommandLine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}", self.program)?;
        for arg in &self.args {
            write!(formatter, " {arg}")?;
        }
        Ok(())
    }
}

/// Whether `rule` jumps (or goes) to one of weft's chains.
fn targets_weft_chain(rule: &Rule) -> bool {
    rule.spec.windows(2).any(|pair| {
        matches!(pair[0].as_str(), "-j" | "-g" | "--jump" | "--goto")
            && ALL_CHAINS.contains(&pair[1].as_str())
    })
}

/// The commands that turn the nat table `state` into one holding exactly
/// `wanted` (besides everything that is not weft's). An empty `wanted`
/// removes weft entirely; an empty result means nothing to do.
pub fn converge(wanted: &RuleSet, state: &NatState) -> Vec<TableCommand> {
    let mut commands = Vec::new();
    let is_weft = |chain: &str| ALL_CHAINS.contains(&chain);

    // 1. Jumps into weft's chains from elsewhere: keep the first copy of
    //    each wanted jump, delete the rest.
    let mut kept: Vec<&Rule> = Vec::new();
    let mut chains_in_order: Vec<&str> = Vec::new();
    for rule in &state.rules {
        if !chains_in_order.contains(&rule.chain.as_str()) {
            chains_in_order.push(&rule.chain);
        }
    }
    for chain in chains_in_order.into_iter().filter(|chain| !is_weft(chain)) {
        let mut by_number = Vec::new();
        let mut by_spec = Vec::new();
        let rules = state.rules.iter().filter(|rule| rule.chain == chain);
        for (index, rule) in rules.enumerate() {
            if !targets_weft_chain(rule) {
                continue;
            }
            if wanted.jumps.contains(rule) && !kept.contains(&rule) {
                kept.push(rule);
            } else if rule.spec.len() == 2 && rule.spec[0] == "-j" {
                by_spec.push(rule);
            } else {
                by_number.push(index + 1);
            }
        }
        for number in by_number.into_iter().rev() {
            commands.push(TableCommand::new(&["-D", chain, &number.to_string()]));
        }
        for rule in by_spec {
            let mut args = vec!["-D".to_string(), rule.chain.clone()];
            args.extend(rule.spec.iter().cloned());
            commands.push(TableCommand(args));
        }
    }

    // 2. The wanted chains, empty.
    for chain in &wanted.chains {
        let verb = if state.chains.contains(*chain) {
            "-F"
        } else {
            "-N"
        };
        commands.push(TableCommand::new(&[verb, chain]));
    }

    // 3. weft chains no longer wanted (all of them for --remove): nothing
    //    jumps to them now but each other, so flush all, then delete.
    let stale: Vec<&str> = ALL_CHAINS
        .iter()
        .copied()
        .filter(|chain| state.chains.contains(*chain) && !wanted.chains.contains(chain))
        .collect();
    for chain in &stale {
        commands.push(TableCommand::new(&["-F", chain]));
    }
    for chain in &stale {
        commands.push(TableCommand::new(&["-X", chain]));
    }

    // 4. The wanted rules.
    commands.extend(wanted.rules.iter().map(|rule| TableCommand(rule.append())));

    // 5. The jumps not already there.
    for jump in &wanted.jumps {
        if !kept.contains(&jump) {
            commands.push(TableCommand(jump.append()));
        }
    }
    commands
}

/// Runs `program args`, returning its stdout; a failure carries stderr.
pub fn run(program: &str, args: &[String]) -> Result<String, ApplyError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|source| ApplyError::Spawn {
            program: program.to_string(),
            source,
        })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let line = CommandLine {
            program: program.to_string(),
            args: args.to_vec(),
        };
        Err(ApplyError::Failed {
            command: line.to_string(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// The nat table as `backend` sees it now (read with its save program,
/// which creates no table).
pub fn read_state(backend: Backend) -> Result<NatState, ApplyError> {
    run(backend.save_program(), &[]).map(|listing| NatState::from_save(&listing))
}

/// The `*nat` section of `backend`'s save listing, as printed (for the log).
pub fn nat_listing(backend: Backend) -> Result<String, ApplyError> {
    let listing = run(backend.save_program(), &[])?;
    let mut section = String::new();
    let mut in_nat = false;
    for line in listing.lines() {
        if line.starts_with('*') {
            in_nat = line == "*nat";
        }
        if in_nat {
            section.push_str(line);
            section.push('\n');
        }
        if line == "COMMIT" {
            in_nat = false;
        }
    }
    Ok(section)
}

#[cfg(test)]
mod tests;

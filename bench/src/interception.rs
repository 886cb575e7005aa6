//! Transparent interception for the bench's transparent setups: an iptables
//! `nat OUTPUT` REDIRECT that sends the client's connections to a dedicated
//! loopback address into a proxy's inbound listener, the way a sidecar's init
//! container does, with the proxy's own connections (its UID) exempt.
//!
//! ```text
//! client (root) ─connect 127.0.0.2:P─► nat OUTPUT ─► WEFT_BENCH_<pid>_2:
//!     -p tcp -d 127.0.0.2 --dport P, owner not UID 2102 ─► REDIRECT --to-ports I
//!   ─► proxy inbound 127.0.0.1:I (UID 2102): SO_ORIGINAL_DST = 127.0.0.2:P
//!   ─► proxy connects to 127.0.0.2:P itself (UID 2102: not redirected) ─► backend
//! ```
//!
//! Every rule lives in a chain of its own, named after the bench's process id
//! and the intercepted address, jumped to from `nat OUTPUT`; [`Redirect`]
//! installs it and removes it (jump, rules, chain) when dropped. A chain left
//! by a bench that died (its process id no longer runs) is removed before a
//! new one is installed. The argument lists are pure functions, tested by
//! tables; the guard only runs them.

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::others;

/// The user (and group) id the transparent setups' proxies run as: the
/// REDIRECT rule exempts it, so the proxy's own connection to the original
/// destination is not sent back to itself. Linkerd's chart uses 2102 too.
pub const PROXY_UID: u32 = 2102;

/// What every chain the bench installs is named after.
pub const CHAIN_PREFIX: &str = "WEFT_BENCH";

/// One REDIRECT: connections to `address:port` from anyone but
/// `exempt_uid` go to the local port `to_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectRule {
    /// The chain holding the rule (see [`chain_name`]).
    pub chain: String,
    /// The intercepted destination address.
    pub address: Ipv4Addr,
    /// The intercepted destination port.
    pub port: u16,
    /// The proxy's inbound port (on 127.0.0.1: REDIRECT sends locally
    /// generated packets to the loopback address).
    pub to_port: u16,
    /// The proxy's user id, whose connections are left alone.
    pub exempt_uid: u32,
}

/// The chain of the bench process `pid` for `address`:
/// `WEFT_BENCH_<pid>_<last octet>` (at most 26 characters; iptables allows 28).
pub fn chain_name(pid: u32, address: Ipv4Addr) -> String {
    format!("{CHAIN_PREFIX}_{pid}_{}", address.octets()[3])
}

/// The `iptables` arguments that install `rule`: the chain, its REDIRECT,
/// then the jump from `nat OUTPUT` (first, so no other rule sees the
/// connection before it).
pub fn install_commands(rule: &RedirectRule) -> Vec<Vec<String>> {
    let destination = format!("{}/32", rule.address);
    let words = |text: &str| text.split_whitespace().map(String::from).collect();
    vec![
        words(&format!("-t nat -N {}", rule.chain)),
        words(&format!(
            "-t nat -A {} -p tcp -d {destination} --dport {} -m owner ! --uid-owner {} \
             -j REDIRECT --to-ports {}",
            rule.chain, rule.port, rule.exempt_uid, rule.to_port
        )),
        words(&format!(
            "-t nat -I OUTPUT 1 -p tcp -d {destination} -j {}",
            rule.chain
        )),
    ]
}

/// The `iptables` arguments that remove `chain` as `listing` (the output of
/// `iptables -t nat -S`) shows it: every rule jumping to it (`-A X … -j
/// chain` becomes `-D X …`), then its rules (`-F`) and itself (`-X`).
/// Nothing when the listing has neither the chain nor a jump to it.
pub fn removal_commands(listing: &str, chain: &str) -> Vec<Vec<String>> {
    let mut commands: Vec<Vec<String>> = Vec::new();
    for line in listing.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let jumps_to_chain = words
            .windows(2)
            .any(|pair| pair[0] == "-j" && pair[1] == chain);
        if words.first() == Some(&"-A") && jumps_to_chain {
            let mut command = vec!["-t".to_string(), "nat".into(), "-D".into()];
            command.extend(words[1..].iter().map(|word| word.to_string()));
            commands.push(command);
        }
    }
    let declared = listing
        .lines()
        .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["-N", chain]);
    if declared {
        for flag in ["-F", "-X"] {
            commands.push(vec!["-t".into(), "nat".into(), flag.into(), chain.into()]);
        }
    }
    commands
}

/// The bench chains in `listing` whose owner is gone: named
/// `WEFT_BENCH_<pid>_…` with `is_running(pid)` false, or any other
/// `WEFT_BENCH…` name (not one this bench makes, so no one's).
pub fn stale_chains(listing: &str, is_running: impl Fn(u32) -> bool) -> Vec<String> {
    listing
        .lines()
        .filter_map(|line| line.strip_prefix("-N "))
        .map(str::trim)
        .filter(|chain| chain.starts_with(CHAIN_PREFIX))
        .filter(|chain| {
            let pid = chain
                .strip_prefix(CHAIN_PREFIX)
                .and_then(|rest| rest.strip_prefix('_'))
                .and_then(|rest| rest.split('_').next())
                .and_then(|pid| pid.parse::<u32>().ok());
            !pid.is_some_and(&is_running)
        })
        .map(String::from)
        .collect()
}

/// The effective user id in a `/proc/<pid>/status` text (`Uid:` real,
/// effective, saved, filesystem).
pub fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|id| id.parse().ok())
}

/// Checks that this host can run a transparent setup named `setup`: the
/// bench runs as root (nat rules, a process started as [`PROXY_UID`]) and
/// `iptables` with a working nat table is installed. Returns `iptables`.
pub fn check_host(setup: &str) -> anyhow::Result<PathBuf> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    if effective_uid(&status) != Some(0) {
        bail!(
            "{setup} needs root: it installs iptables nat rules and runs its proxy as UID \
             {PROXY_UID}; run weft-bench as root, or leave {setup} out"
        );
    }
    let iptables = others::locate("iptables").with_context(|| {
        format!("{setup} needs iptables with the nat table (apt-get install iptables)")
    })?;
    let listing =
        list(&iptables).with_context(|| format!("{setup} needs the iptables nat table"))?;
    drop(listing);
    Ok(iptables)
}

/// `iptables -t nat -S`.
pub fn list(iptables: &Path) -> anyhow::Result<String> {
    let output = Command::new(iptables)
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .with_context(|| format!("running {} -t nat -S", iptables.display()))?;
    if !output.status.success() {
        bail!(
            "iptables -t nat -S failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn run(iptables: &Path, args: &[String]) -> anyhow::Result<()> {
    let output = Command::new(iptables)
        .arg("-w")
        .args(args)
        .output()
        .with_context(|| format!("running iptables {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "iptables {} failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Removes `chain` (and every jump to it) if the nat table has it.
fn remove_chain(iptables: &Path, chain: &str) -> anyhow::Result<()> {
    let listing = list(iptables)?;
    for command in removal_commands(&listing, chain) {
        run(iptables, &command)?;
    }
    Ok(())
}

/// An installed [`RedirectRule`]; its chain is removed when dropped.
#[derive(Debug)]
pub struct Redirect {
    iptables: PathBuf,
    chain: String,
}

impl Redirect {
    /// Removes chains left by benches that died, then installs `rule` (a
    /// chain of the same name is replaced). On failure, whatever was
    /// installed is removed again.
    pub fn install(iptables: &Path, rule: &RedirectRule) -> anyhow::Result<Redirect> {
        let listing = list(iptables)?;
        let is_running = |pid: u32| Path::new(&format!("/proc/{pid}")).exists();
        let mut leftovers = stale_chains(&listing, is_running);
        if listing
            .lines()
            .any(|line| line.trim() == format!("-N {}", rule.chain))
        {
            leftovers.push(rule.chain.clone());
        }
        for chain in leftovers {
            eprintln!("weft-bench: removing the iptables chain {chain} an earlier run left");
            remove_chain(iptables, &chain)
                .with_context(|| format!("removing the leftover iptables chain {chain}"))?;
        }
        let redirect = Redirect {
            iptables: iptables.to_path_buf(),
            chain: rule.chain.clone(),
        };
        for command in install_commands(rule) {
            // On error `redirect` is dropped: what was installed goes.
            run(iptables, &command).context("installing the REDIRECT rule")?;
        }
        Ok(redirect)
    }

    /// The chain's name.
    pub fn chain(&self) -> &str {
        &self.chain
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        if let Err(error) = remove_chain(&self.iptables, &self.chain) {
            eprintln!(
                "weft-bench: could not remove the iptables chain {}: {error:#}; \
                 remove it with iptables -t nat -D OUTPUT … -j {0}; -F {0}; -X {0}",
                self.chain
            );
        }
    }
}

/// What a proxy's user must be able to do with a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read it.
    Read,
    /// Execute it.
    Execute,
}

/// Fails unless the user and group `uid` can read or execute `path`
/// (`test -r`/`-x` run as that user, so every directory on the way counts).
pub fn check_access(uid: u32, path: &Path, access: Access) -> anyhow::Result<()> {
    let (flag, what) = match access {
        Access::Read => ("-r", "readable"),
        Access::Execute => ("-x", "executable"),
    };
    let status = Command::new("test")
        .arg(flag)
        .arg(path)
        .uid(uid)
        .gid(uid)
        .status()
        .with_context(|| format!("running test {flag} {} as UID {uid}", path.display()))?;
    if !status.success() {
        bail!(
            "{} is not {what} by UID {uid}, the proxy's user: make it (and every directory \
             above it) {what} by others",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> RedirectRule {
        RedirectRule {
            chain: chain_name(4242, Ipv4Addr::new(127, 0, 0, 2)),
            address: Ipv4Addr::new(127, 0, 0, 2),
            port: 41000,
            to_port: 42000,
            exempt_uid: PROXY_UID,
        }
    }

    fn joined(commands: &[Vec<String>]) -> Vec<String> {
        commands.iter().map(|command| command.join(" ")).collect()
    }

    #[test]
    fn chain_names_carry_the_pid_and_the_address() {
        let table = [
            (1, Ipv4Addr::new(127, 0, 0, 2), "WEFT_BENCH_1_2"),
            (
                4_194_304,
                Ipv4Addr::new(127, 0, 0, 3),
                "WEFT_BENCH_4194304_3",
            ),
        ];
        for (pid, address, expected) in table {
            let name = chain_name(pid, address);
            assert_eq!(name, expected);
            assert!(name.len() <= 28, "{name}");
        }
    }

    #[test]
    fn installs_chain_redirect_and_jump() {
        assert_eq!(
            joined(&install_commands(&rule())),
            [
                "-t nat -N WEFT_BENCH_4242_2",
                "-t nat -A WEFT_BENCH_4242_2 -p tcp -d 127.0.0.2/32 --dport 41000 \
                 -m owner ! --uid-owner 2102 -j REDIRECT --to-ports 42000",
                "-t nat -I OUTPUT 1 -p tcp -d 127.0.0.2/32 -j WEFT_BENCH_4242_2",
            ]
        );
    }

    #[test]
    fn removes_jumps_rules_and_chain_as_listed() {
        // What `iptables -t nat -S` prints after install_commands (and a
        // second jump, and someone else's rules, which stay).
        let listing = "\
-P PREROUTING ACCEPT
-P OUTPUT ACCEPT
-N DOCKER
-N WEFT_BENCH_4242_2
-N WEFT_BENCH_4242_20
-A OUTPUT -d 127.0.0.2/32 -p tcp -j WEFT_BENCH_4242_2
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -j WEFT_BENCH_4242_2
-A OUTPUT -j WEFT_BENCH_4242_20
-A WEFT_BENCH_4242_2 -d 127.0.0.2/32 -p tcp -m tcp --dport 41000 -m owner ! --uid-owner 2102 -j REDIRECT --to-ports 42000
";
        let table: [(&str, &[&str]); 3] = [
            (
                "WEFT_BENCH_4242_2",
                &[
                    "-t nat -D OUTPUT -d 127.0.0.2/32 -p tcp -j WEFT_BENCH_4242_2",
                    "-t nat -D OUTPUT -j WEFT_BENCH_4242_2",
                    "-t nat -F WEFT_BENCH_4242_2",
                    "-t nat -X WEFT_BENCH_4242_2",
                ],
            ),
            (
                "WEFT_BENCH_4242_20",
                &[
                    "-t nat -D OUTPUT -j WEFT_BENCH_4242_20",
                    "-t nat -F WEFT_BENCH_4242_20",
                    "-t nat -X WEFT_BENCH_4242_20",
                ],
            ),
            ("WEFT_BENCH_1_2", &[]),
        ];
        for (chain, expected) in table {
            assert_eq!(
                joined(&removal_commands(listing, chain)),
                expected,
                "{chain}"
            );
        }
    }

    #[test]
    fn stale_chains_are_those_of_benches_gone() {
        let listing = "\
-N DOCKER
-N WEFT_BENCH_100_2
-N WEFT_BENCH_200_3
-N WEFT_BENCH
-N WEFT_BENCH_x_2
-A OUTPUT -j WEFT_BENCH_100_2
";
        let running = |pid: u32| pid == 200;
        assert_eq!(
            stale_chains(listing, running),
            ["WEFT_BENCH_100_2", "WEFT_BENCH", "WEFT_BENCH_x_2"]
        );
        assert!(stale_chains("-N DOCKER\n", running).is_empty());
    }

    #[test]
    fn reads_the_effective_uid() {
        let table = [
            (
                "Name:\tweft-bench\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n",
                Some(0),
            ),
            ("Uid:\t1000\t2102\t1000\t2102\n", Some(2102)),
            ("Name:\tx\n", None),
        ];
        for (status, expected) in table {
            assert_eq!(effective_uid(status), expected, "{status:?}");
        }
    }
}

//! Which iptables to drive: `iptables-nft` or `iptables-legacy`, called by
//! name (Debian's `iptables` is a symlink to either). The two must never be
//! mixed in one network namespace: a legacy REDIRECT beside nft rules wins
//! silently. `--backend auto` therefore picks the one that already holds
//! rules here, else nft when it works, else legacy ([`decide`], pure); the
//! probes ([`probe`]) only read, so they create no table.

use std::process::Command;

use crate::ports::BackendChoice;

/// An iptables implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// iptables over nf_tables (`iptables-nft`).
    Nft,
    /// The x_tables kernel interface (`iptables-legacy`).
    Legacy,
}

impl Backend {
    /// The program that edits rules.
    pub fn program(self) -> &'static str {
        match self {
            Self::Nft => "iptables-nft",
            Self::Legacy => "iptables-legacy",
        }
    }

    /// The program that prints every table that exists (and creates none).
    pub fn save_program(self) -> &'static str {
        match self {
            Self::Nft => "iptables-nft-save",
            Self::Legacy => "iptables-legacy-save",
        }
    }
}

/// What `auto` looks at: the rules each backend already holds here (`None`
/// when its save program failed), and whether nft can list the nat table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// `-A` lines in `iptables-nft-save`.
    pub nft_rules: Option<usize>,
    /// `-A` lines in `iptables-legacy-save`.
    pub legacy_rules: Option<usize>,
    /// `iptables-nft -w -t nat -S` succeeded.
    pub nft_works: bool,
}

/// The backend, and why (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The chosen backend.
    pub backend: Backend,
    /// Why, in a few words.
    pub reason: String,
}

/// The `auto` rule: the backend holding rules here (the one holding more
/// if both do, nft on a tie), else nft if it works, else legacy.
pub fn decide(probe: &Probe) -> Decision {
    let nft = probe.nft_rules.unwrap_or(0);
    let legacy = probe.legacy_rules.unwrap_or(0);
    let (backend, reason) = if nft > 0 || legacy > 0 {
        if legacy > nft {
            (
                Backend::Legacy,
                format!("iptables-legacy already holds {legacy} rules here (nft {nft})"),
            )
        } else {
            (
                Backend::Nft,
                format!("iptables-nft already holds {nft} rules here (legacy {legacy})"),
            )
        }
    } else if probe.nft_works {
        (
            Backend::Nft,
            "no rules here yet and iptables-nft works".to_string(),
        )
    } else {
        (
            Backend::Legacy,
            "no rules here yet and iptables-nft does not work".to_string(),
        )
    };
    Decision { backend, reason }
}

/// The backend for `choice`: as given, or [`decide`]d from a [`probe`].
pub fn resolve(choice: BackendChoice) -> Decision {
    match choice {
        BackendChoice::Nft => Decision {
            backend: Backend::Nft,
            reason: "--backend nft".to_string(),
        },
        BackendChoice::Legacy => Decision {
            backend: Backend::Legacy,
            reason: "--backend legacy".to_string(),
        },
        BackendChoice::Auto => decide(&probe()),
    }
}

/// The number of rules (`-A` lines) in a `*-save` listing.
pub fn count_rules(save_output: &str) -> usize {
    save_output
        .lines()
        .filter(|line| line.starts_with("-A "))
        .count()
}

/// Reads both backends' rules and tries nft's nat table. Read-only: the
/// save programs print only tables that exist.
pub fn probe() -> Probe {
    let rules = |program: &str| {
        let output = Command::new(program).output().ok()?;
        output
            .status
            .success()
            .then(|| count_rules(&String::from_utf8_lossy(&output.stdout)))
    };
    let nft_works = Command::new(Backend::Nft.program())
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .is_ok_and(|output| output.status.success());
    Probe {
        nft_rules: rules(Backend::Nft.save_program()),
        legacy_rules: rules(Backend::Legacy.save_program()),
        nft_works,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_existing_rules_then_prefers_working_nft() {
        let cases = [
            // (nft rules, legacy rules, nft works) -> backend
            (Some(0), Some(0), true, Backend::Nft),
            (Some(0), Some(0), false, Backend::Legacy),
            (None, None, false, Backend::Legacy),
            (None, Some(0), true, Backend::Nft),
            (Some(0), Some(3), true, Backend::Legacy),
            (Some(2), Some(0), false, Backend::Nft),
            (Some(2), Some(5), true, Backend::Legacy),
            (Some(4), Some(4), true, Backend::Nft),
            (None, Some(1), true, Backend::Legacy),
        ];
        for (nft_rules, legacy_rules, nft_works, want) in cases {
            let probe = Probe {
                nft_rules,
                legacy_rules,
                nft_works,
            };
            assert_eq!(decide(&probe).backend, want, "{probe:?}");
        }
    }

    #[test]
    fn counts_only_rules() {
        let save = "# Generated by iptables-nft-save v1.8.9 (nf_tables)\n\
                    # Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n\
                    *nat\n:PREROUTING ACCEPT [0:0]\n:WEFT_OUTPUT - [0:0]\n\
                    -A OUTPUT -j WEFT_OUTPUT\n-A WEFT_OUTPUT -o lo -j RETURN\nCOMMIT\n";
        assert_eq!(count_rules(save), 2);
        assert_eq!(count_rules(""), 0);
    }
}

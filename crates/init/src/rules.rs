//! The rules, as data: a checked [`Config`] becomes weft's chains in the
//! nat table, their rules and the jumps into them from PREROUTING and
//! OUTPUT. Pure: nothing here runs iptables ([`crate::apply`] does).
//!
//! Each rule is written the way `iptables -S` prints it back, so what is
//! installed reads the same in `iptables-save`.

use crate::ports::{Config, PortRange};

/// PREROUTING jumps here: skipped inbound ports return, the rest is
/// redirected.
pub const PREROUTING_CHAIN: &str = "WEFT_PREROUTING";
/// REDIRECT to the proxy's inbound port.
pub const INBOUND_REDIRECT_CHAIN: &str = "WEFT_INBOUND_REDIRECT";
/// OUTPUT jumps here: the proxy's own traffic, loopback and skipped ports
/// and networks return, the rest is redirected.
pub const OUTPUT_CHAIN: &str = "WEFT_OUTPUT";
/// REDIRECT to the proxy's outbound port.
pub const OUTBOUND_REDIRECT_CHAIN: &str = "WEFT_OUTBOUND_REDIRECT";

/// Every chain weft-init may create, in creation order. Removal and
/// re-installation look for exactly these.
pub const ALL_CHAINS: [&str; 4] = [
    PREROUTING_CHAIN,
    INBOUND_REDIRECT_CHAIN,
    OUTPUT_CHAIN,
    OUTBOUND_REDIRECT_CHAIN,
];

/// How many ports one `-m multiport` match takes (a range counts twice).
pub const MULTIPORT_SLOTS: usize = 15;

/// One rule of the nat table: its chain and what follows `-A <chain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The chain it is appended to.
    pub chain: String,
    /// The match and target, one argument per item.
    pub spec: Vec<String>,
}

impl Rule {
    fn new(chain: &str, spec: &[&str]) -> Self {
        Self {
            chain: chain.to_string(),
            spec: spec.iter().map(|part| (*part).to_string()).collect(),
        }
    }

    /// The `-A <chain> <spec…>` arguments.
    pub fn append(&self) -> Vec<String> {
        let mut args = vec!["-A".to_string(), self.chain.clone()];
        args.extend(self.spec.iter().cloned());
        args
    }
}

/// What weft-init installs: its chains, their rules (in order), and the
/// jumps that send PREROUTING and OUTPUT through them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    /// weft's chains to exist, in creation order.
    pub chains: Vec<&'static str>,
    /// The rules of those chains, in order.
    pub rules: Vec<Rule>,
    /// One jump per built-in chain, appended to it.
    pub jumps: Vec<Rule>,
}

/// The rule set for `config`:
///
/// ```text
/// PREROUTING ─► WEFT_PREROUTING
///                 -p tcp -m multiport --dports <skip-inbound-ports> ─► RETURN
///                 -p tcp ─► WEFT_INBOUND_REDIRECT ─► REDIRECT --to-ports <inbound>
/// OUTPUT ─────► WEFT_OUTPUT                        (absent with --inbound-only)
///                 -m owner --uid-owner <proxy uid> ─► RETURN   the proxy's own connections
///                 -o lo ─► RETURN                              to this pod's addresses
///                 -d 127.0.0.1/32 ─► RETURN
///                 -p tcp -m multiport --dports <skip-outbound-ports> ─► RETURN
///                 -d <skip-subnets> ─► RETURN
///                 -p tcp ─► WEFT_OUTBOUND_REDIRECT ─► REDIRECT --to-ports <outbound>
/// ```
pub fn rule_set(config: &Config) -> RuleSet {
    let mut set = RuleSet::default();
    let inbound = config.inbound_proxy_port.to_string();
    set.chains
        .extend([PREROUTING_CHAIN, INBOUND_REDIRECT_CHAIN]);
    set.rules.push(Rule::new(
        INBOUND_REDIRECT_CHAIN,
        &["-p", "tcp", "-j", "REDIRECT", "--to-ports", &inbound],
    ));
    set.rules
        .extend(skip_ports(PREROUTING_CHAIN, &config.skip_inbound_ports));
    set.rules.push(Rule::new(
        PREROUTING_CHAIN,
        &["-p", "tcp", "-j", INBOUND_REDIRECT_CHAIN],
    ));
    set.jumps
        .push(Rule::new("PREROUTING", &["-j", PREROUTING_CHAIN]));
    if config.inbound_only {
        return set;
    }

    let outbound = config.outbound_proxy_port.to_string();
    let uid = config.proxy_uid.to_string();
    set.chains.extend([OUTPUT_CHAIN, OUTBOUND_REDIRECT_CHAIN]);
    set.rules.push(Rule::new(
        OUTBOUND_REDIRECT_CHAIN,
        &["-p", "tcp", "-j", "REDIRECT", "--to-ports", &outbound],
    ));
    // The proxy's own connections (to peers, the controller, and inbound
    // to the app at the pod's address) are never redirected: that is what
    // keeps it from looping into itself.
    set.rules.push(Rule::new(
        OUTPUT_CHAIN,
        &["-m", "owner", "--uid-owner", &uid, "-j", "RETURN"],
    ));
    // Traffic to the pod itself (any of its addresses routes over lo).
    set.rules
        .push(Rule::new(OUTPUT_CHAIN, &["-o", "lo", "-j", "RETURN"]));
    set.rules.push(Rule::new(
        OUTPUT_CHAIN,
        &["-d", "127.0.0.1/32", "-j", "RETURN"],
    ));
    set.rules
        .extend(skip_ports(OUTPUT_CHAIN, &config.skip_outbound_ports));
    for network in &config.skip_networks.ipv4 {
        set.rules.push(Rule::new(
            OUTPUT_CHAIN,
            &["-d", &network.to_string(), "-j", "RETURN"],
        ));
    }
    set.rules.push(Rule::new(
        OUTPUT_CHAIN,
        &["-p", "tcp", "-j", OUTBOUND_REDIRECT_CHAIN],
    ));
    set.jumps.push(Rule::new("OUTPUT", &["-j", OUTPUT_CHAIN]));
    set
}

/// `-p tcp -m multiport --dports … -j RETURN` rules for `ports`, as many as
/// multiport's 15 slots need.
fn skip_ports(chain: &str, ports: &[PortRange]) -> Vec<Rule> {
    let mut groups: Vec<Vec<PortRange>> = Vec::new();
    let mut used = 0;
    for &port in ports {
        if groups.is_empty() || used + port.slots() > MULTIPORT_SLOTS {
            groups.push(Vec::new());
            used = 0;
        }
        used += port.slots();
        if let Some(group) = groups.last_mut() {
            group.push(port);
        }
    }
    groups
        .iter()
        .map(|group| {
            let list: Vec<String> = group.iter().map(ToString::to_string).collect();
            Rule::new(
                chain,
                &[
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--dports",
                    &list.join(","),
                    "-j",
                    "RETURN",
                ],
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;

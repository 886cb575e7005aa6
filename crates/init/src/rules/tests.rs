//! The rule set for each kind of configuration, as `iptables -S` lines.

use super::*;
use crate::test_args::config;

/// The set as `-N`/`-A` lines: chains, rules, then jumps.
fn lines(set: &RuleSet) -> Vec<String> {
    let chains = set.chains.iter().map(|chain| format!("-N {chain}"));
    let rules = set
        .rules
        .iter()
        .chain(&set.jumps)
        .map(|rule| rule.append().join(" "));
    chains.chain(rules).collect()
}

#[test]
fn rule_sets() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            // The defaults: nothing skipped.
            &[],
            &[
                "-N WEFT_PREROUTING",
                "-N WEFT_INBOUND_REDIRECT",
                "-N WEFT_OUTPUT",
                "-N WEFT_OUTBOUND_REDIRECT",
                "-A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
                "-A WEFT_PREROUTING -p tcp -j WEFT_INBOUND_REDIRECT",
                "-A WEFT_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4140",
                "-A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
                "-A WEFT_OUTPUT -o lo -j RETURN",
                "-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A WEFT_OUTPUT -p tcp -j WEFT_OUTBOUND_REDIRECT",
                "-A PREROUTING -j WEFT_PREROUTING",
                "-A OUTPUT -j WEFT_OUTPUT",
            ],
        ),
        (
            // What the injector writes, with every annotation set.
            &[
                "--inbound-proxy-port",
                "4143",
                "--outbound-proxy-port",
                "4140",
                "--proxy-uid",
                "2102",
                "--skip-inbound-ports",
                "4190,4191,9000-9010",
                "--skip-outbound-ports",
                "25,3306",
                "--skip-subnets",
                "10.96.0.0/12,fd00::/8,169.254.169.254",
            ],
            &[
                "-N WEFT_PREROUTING",
                "-N WEFT_INBOUND_REDIRECT",
                "-N WEFT_OUTPUT",
                "-N WEFT_OUTBOUND_REDIRECT",
                "-A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
                "-A WEFT_PREROUTING -p tcp -m multiport --dports 4190,4191,9000:9010 -j RETURN",
                "-A WEFT_PREROUTING -p tcp -j WEFT_INBOUND_REDIRECT",
                "-A WEFT_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4140",
                "-A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
                "-A WEFT_OUTPUT -o lo -j RETURN",
                "-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A WEFT_OUTPUT -p tcp -m multiport --dports 25,3306 -j RETURN",
                "-A WEFT_OUTPUT -d 10.96.0.0/12 -j RETURN",
                "-A WEFT_OUTPUT -d 169.254.169.254/32 -j RETURN",
                "-A WEFT_OUTPUT -p tcp -j WEFT_OUTBOUND_REDIRECT",
                "-A PREROUTING -j WEFT_PREROUTING",
                "-A OUTPUT -j WEFT_OUTPUT",
            ],
        ),
        (
            // Ingress mode: no OUTPUT chain, no OUTPUT jump.
            &[
                "--inbound-only",
                "--skip-inbound-ports",
                "4190,4191",
                "--skip-outbound-ports",
                "25",
            ],
            &[
                "-N WEFT_PREROUTING",
                "-N WEFT_INBOUND_REDIRECT",
                "-A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
                "-A WEFT_PREROUTING -p tcp -m multiport --dports 4190,4191 -j RETURN",
                "-A WEFT_PREROUTING -p tcp -j WEFT_INBOUND_REDIRECT",
                "-A PREROUTING -j WEFT_PREROUTING",
            ],
        ),
        (
            // Other ports and user.
            &[
                "--inbound-proxy-port",
                "15006",
                "--outbound-proxy-port",
                "15001",
                "--proxy-uid",
                "1337",
            ],
            &[
                "-N WEFT_PREROUTING",
                "-N WEFT_INBOUND_REDIRECT",
                "-N WEFT_OUTPUT",
                "-N WEFT_OUTBOUND_REDIRECT",
                "-A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
                "-A WEFT_PREROUTING -p tcp -j WEFT_INBOUND_REDIRECT",
                "-A WEFT_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
                "-A WEFT_OUTPUT -m owner --uid-owner 1337 -j RETURN",
                "-A WEFT_OUTPUT -o lo -j RETURN",
                "-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN",
                "-A WEFT_OUTPUT -p tcp -j WEFT_OUTBOUND_REDIRECT",
                "-A PREROUTING -j WEFT_PREROUTING",
                "-A OUTPUT -j WEFT_OUTPUT",
            ],
        ),
    ];
    for (command_line, want) in cases {
        assert_eq!(
            lines(&rule_set(&config(command_line))),
            *want,
            "{command_line:?}"
        );
    }
}

#[test]
fn the_proxys_uid_returns_before_anything_is_redirected() {
    let set = rule_set(&config(&["--proxy-uid", "2102"]));
    let output: Vec<String> = set
        .rules
        .iter()
        .filter(|rule| rule.chain == OUTPUT_CHAIN)
        .map(|rule| rule.spec.join(" "))
        .collect();
    assert_eq!(
        output.first().map(String::as_str),
        Some("-m owner --uid-owner 2102 -j RETURN")
    );
    // Nothing the proxy sends over lo goes back to its inbound port: its
    // inbound side dials the app at the pod's address, which would loop.
    assert!(
        set.rules.iter().all(|rule| rule.chain != OUTPUT_CHAIN
            || !rule.spec.contains(&PREROUTING_CHAIN.to_string())
                && !rule.spec.contains(&INBOUND_REDIRECT_CHAIN.to_string())),
        "{output:?}"
    );
}

#[test]
fn long_port_lists_are_split_at_fifteen_multiport_slots() {
    // 14 single ports and a range (2 slots) overflow one match.
    let ports: Vec<String> = (1..=14)
        .map(|port| port.to_string())
        .chain(["100-200".to_string(), "300".to_string()])
        .collect();
    let set = rule_set(&config(&["--skip-inbound-ports", &ports.join(",")]));
    let skips: Vec<String> = set
        .rules
        .iter()
        .filter(|rule| {
            rule.chain == PREROUTING_CHAIN && rule.spec.contains(&"multiport".to_string())
        })
        .map(|rule| rule.spec[5].clone())
        .collect();
    assert_eq!(skips, ["1,2,3,4,5,6,7,8,9,10,11,12,13,14", "100:200,300"]);

    let fifteen: Vec<String> = (1..=15).map(|port| port.to_string()).collect();
    let set = rule_set(&config(&["--skip-outbound-ports", &fifteen.join(",")]));
    let count = set
        .rules
        .iter()
        .filter(|rule| rule.spec.contains(&"multiport".to_string()))
        .count();
    assert_eq!(count, 1);
}

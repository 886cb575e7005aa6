//! Port lists, networks and the whole command line, by table.

use super::*;
use crate::test_args::args;

fn range(low: u16, high: u16) -> PortRange {
    PortRange { low, high }
}

#[test]
fn port_lists() {
    let cases: &[(&str, &[PortRange])] = &[
        ("", &[]),
        ("   ", &[]),
        ("4190", &[range(4190, 4190)]),
        ("4190,4191", &[range(4190, 4190), range(4191, 4191)]),
        (" 25 , 9000-9010 ", &[range(25, 25), range(9000, 9010)]),
        ("1-65535", &[range(1, 65535)]),
        ("80-80", &[range(80, 80)]),
    ];
    for (value, want) in cases {
        assert_eq!(
            parse_ports("skip-inbound-ports", value).as_deref(),
            Ok(*want),
            "{value:?}"
        );
    }
}

#[test]
fn bad_port_lists_name_the_flag_and_the_item() {
    let cases = [
        ("0", "0", "not a port"),
        ("65536", "65536", "not a port"),
        ("http", "http", "not a port"),
        ("80,x", "x", "not a port"),
        ("-5", "-5", "not a port"),
        ("9010-9000", "9010-9000", "above its last"),
        ("80,,81", "80,,81", "empty item"),
        ("80,", "80,", "empty item"),
        ("1-2-3", "1-2-3", "not a port"),
    ];
    for (value, item, reason) in cases {
        let error = parse_ports("skip-outbound-ports", value).expect_err(value);
        assert_eq!(error.flag, "skip-outbound-ports", "{value:?}");
        assert_eq!(error.value, item, "{value:?}");
        assert!(error.reason.contains(reason), "{value:?}: {error}");
        assert!(
            error.to_string().starts_with("--skip-outbound-ports: "),
            "{error}"
        );
    }
}

#[test]
fn ranges_print_as_iptables_reads_them() {
    assert_eq!(range(80, 80).to_string(), "80");
    assert_eq!(range(9000, 9010).to_string(), "9000:9010");
    assert_eq!((range(80, 80).slots(), range(1, 2).slots()), (1, 2));
}

#[test]
fn networks() {
    let v4 = |address: [u8; 4], prefix: u8| Ipv4Network {
        address: Ipv4Addr::from(address),
        prefix,
    };
    let cases: &[(&str, &[Ipv4Network], &[&str])] = &[
        ("", &[], &[]),
        ("10.96.0.0/12", &[v4([10, 96, 0, 0], 12)], &[]),
        // Host bits are cleared, a bare address is one host.
        (
            "10.1.2.3/8, 192.168.1.7",
            &[v4([10, 0, 0, 0], 8), v4([192, 168, 1, 7], 32)],
            &[],
        ),
        ("0.0.0.0/0", &[v4([0, 0, 0, 0], 0)], &[]),
        (
            "fd00::/8,10.0.0.0/8",
            &[v4([10, 0, 0, 0], 8)],
            &["fd00::/8"],
        ),
        ("::1", &[], &["::1"]),
    ];
    for (value, ipv4, ipv6) in cases {
        let networks = parse_networks("skip-subnets", value).expect(value);
        assert_eq!(networks.ipv4, *ipv4, "{value:?}");
        assert_eq!(networks.ipv6, *ipv6, "{value:?}");
    }
    assert_eq!(v4([10, 96, 0, 0], 12).to_string(), "10.96.0.0/12");
}

#[test]
fn bad_networks_name_the_flag_and_the_item() {
    let cases = [
        ("10.0.0.0/33", "10.0.0.0/33", "0-32"),
        ("10.0.0.0/x", "10.0.0.0/x", "0-32"),
        ("10.0.0/8", "10.0.0/8", "not a network"),
        ("cluster", "cluster", "not a network"),
        ("10.0.0.0/8,example.com", "example.com", "not a network"),
        ("fd00::/129", "fd00::/129", "0-128"),
        ("10.0.0.0/8,", "10.0.0.0/8,", "empty item"),
    ];
    for (value, item, reason) in cases {
        let error = parse_networks("skip-subnets", value).expect_err(value);
        assert_eq!((error.flag, error.value.as_str()), ("skip-subnets", item));
        assert!(error.reason.contains(reason), "{value:?}: {error}");
    }
}

#[test]
fn the_injectors_arguments_give_a_config() {
    let config = Config::from_args(&args(&[
        "--inbound-proxy-port",
        "4143",
        "--outbound-proxy-port",
        "4140",
        "--proxy-uid",
        "2102",
        "--skip-inbound-ports",
        "4190,4191,9000-9010",
        "--skip-outbound-ports",
        "25",
        "--skip-subnets",
        "10.96.0.0/12",
        "--inbound-only",
    ]))
    .expect("valid");
    assert_eq!(config.inbound_proxy_port, 4143);
    assert_eq!(config.outbound_proxy_port, 4140);
    assert_eq!(config.proxy_uid, 2102);
    assert_eq!(config.skip_inbound_ports.len(), 3);
    assert_eq!(config.skip_outbound_ports, [range(25, 25)]);
    assert_eq!(config.skip_networks.ipv4.len(), 1);
    assert!(config.inbound_only && !config.remove && !config.dry_run);
    assert_eq!(config.backend, BackendChoice::Auto);
}

#[test]
fn backends() {
    for (value, want) in [
        ("auto", BackendChoice::Auto),
        ("nft", BackendChoice::Nft),
        ("legacy", BackendChoice::Legacy),
    ] {
        let config = Config::from_args(&args(&["--backend", value])).expect(value);
        assert_eq!(config.backend, want);
    }
}

#[test]
fn every_bad_flag_is_reported_together() {
    let errors = Config::from_args(&args(&[
        "--inbound-proxy-port",
        "0",
        "--skip-inbound-ports",
        "80,x",
        "--skip-outbound-ports",
        "70000",
        "--skip-subnets",
        "10.0.0.0/40",
        "--backend",
        "iptables",
    ]))
    .expect_err("invalid");
    let flags: Vec<&str> = errors.0.iter().map(|error| error.flag).collect();
    assert_eq!(
        flags,
        [
            "inbound-proxy-port",
            "skip-inbound-ports",
            "skip-outbound-ports",
            "skip-subnets",
            "backend"
        ]
    );
    let message = errors.to_string();
    assert!(
        message.contains("--backend: expected auto, nft or legacy (got \"iptables\")"),
        "{message}"
    );
    assert!(
        message.contains("--inbound-proxy-port: not a port"),
        "{message}"
    );
}

//! Tables of variables and values: what parses, what is refused and why.

use super::*;
use std::collections::HashMap;

fn config_from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Config::from_lookup(&move |name| map.get(name).cloned())
}

#[test]
fn durations() {
    let table: &[(&str, Result<u64, ()>)] = &[
        ("10s", Ok(10_000)),
        ("500ms", Ok(500)),
        (" 2m ", Ok(120_000)),
        ("1h", Ok(3_600_000)),
        ("1d", Ok(86_400_000)),
        ("1m30s", Ok(90_000)),
        ("1.5s", Ok(1_500)),
        ("0", Ok(0)),
        ("10", Err(())),
        ("s", Err(())),
        ("", Err(())),
        ("10 s", Err(())),
        ("10sec", Err(())),
        ("-1s", Err(())),
    ];
    for (input, expected) in table {
        let parsed = parse_duration(input).map(|duration| duration.as_millis() as u64);
        assert_eq!(parsed.map_err(|_| ()), *expected, "input {input:?}");
    }
}

#[test]
fn port_sets() {
    let set = parse_port_set("25, 587,8000-8100,,").unwrap();
    let table = [
        (25, true),
        (587, true),
        (8000, true),
        (8050, true),
        (8100, true),
        (8101, false),
        (26, false),
    ];
    for (port, expected) in table {
        assert_eq!(set.contains(port), expected, "port {port}");
    }
    assert_eq!(set.to_string(), "25,587,8000-8100");
    assert!(parse_port_set("").unwrap().is_empty());
    for bad in ["0", "70000", "9-3", "http", "1-2-3"] {
        assert!(parse_port_set(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn networks() {
    let table: &[(&str, &str, bool)] = &[
        ("10.0.0.0/8", "10.3.4.5", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("10.0.0.0/8", "::ffff:10.1.1.1", true),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("0.0.0.0/0", "192.168.1.1", true),
        ("0.0.0.0/0", "fd00::1", false),
        ("fd00::/8", "fd12::1", true),
        ("fd00::/8", "fe80::1", false),
        ("::/0", "2001:db8::1", true),
    ];
    for (network, ip, expected) in table {
        let parsed = IpNetwork::parse(network).unwrap();
        assert_eq!(
            parsed.contains(ip.parse().unwrap()),
            *expected,
            "{network} ∋ {ip}"
        );
    }
    for bad in ["10.0.0.0/33", "fd00::/129", "ten/8", "10.0.0.0/x", ""] {
        assert!(IpNetwork::parse(bad).is_err(), "{bad:?} should be refused");
    }
}

#[test]
fn destination_variables() {
    let config = config_from(&[]).unwrap();
    assert!(
        config.destination.is_none(),
        "no discovery unless configured"
    );
    let config = config_from(&[
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
        (
            "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
            "10.0.0.0/8, fd00::/8",
        ),
        (
            "WEFT_PROXY_DESTINATION_PROFILE_SUFFIXES",
            "svc.cluster.local.,Example.COM",
        ),
        ("WEFT_PROXY_DESTINATION_CONTEXT", "{\"ns\":\"shop\"}"),
    ])
    .unwrap();
    let destination = config.destination.unwrap();
    assert_eq!(destination.addr, "127.0.0.1:8086");
    assert_eq!(destination.profile_networks.len(), 2);
    assert_eq!(
        destination.profile_suffixes,
        vec!["svc.cluster.local.".to_string(), "example.com".to_string()]
    );
    assert_eq!(destination.context_token, "{\"ns\":\"shop\"}");
    assert_eq!(destination.initial_timeout, Duration::from_millis(500));
    let error = config_from(&[
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "controller"),
        ("WEFT_PROXY_DESTINATION_PROFILE_NETWORKS", "10.0.0.0/40"),
        ("WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT", "0"),
    ])
    .unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEFT_PROXY_DESTINATION_SVC_ADDR",
            "WEFT_PROXY_DESTINATION_PROFILE_NETWORKS",
            "WEFT_PROXY_OUTBOUND_FAILFAST_TIMEOUT"
        ]
    );
}

/// A self-signed P-256 certificate, as a trust-anchor PEM.
fn trust_anchor_pem() -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    rcgen::CertificateParams::new(vec!["root.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap()
        .pem()
}

#[test]
fn identity_variables_come_together() {
    let anchor = trust_anchor_pem();
    let config = config_from(&[
        ("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080"),
        ("WEFT_PROXY_IDENTITY_TOKEN_FILE", "/var/run/weft/token"),
        (
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            "web.shop.serviceaccount.identity.weft.cluster.local",
        ),
        ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", &anchor),
    ])
    .unwrap();
    let identity = config.identity.unwrap();
    assert_eq!(identity.trust_anchors.len(), 1);
    assert!(config_from(&[]).unwrap().identity.is_none());

    let error = config_from(&[("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080")]).unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS"
        ]
    );
    let error = config_from(&[
        ("WEFT_PROXY_IDENTITY_SVC_ADDR", "127.0.0.1:8080"),
        ("WEFT_PROXY_IDENTITY_TOKEN_FILE", "/t"),
        ("WEFT_PROXY_IDENTITY_LOCAL_NAME", "a.b"),
        ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", "not a certificate"),
    ])
    .unwrap_err();
    assert_eq!(error.invalid.len(), 1, "{error}");
    assert_eq!(error.invalid[0].name, "WEFT_PROXY_IDENTITY_TRUST_ANCHORS");
}

#[test]
fn control_plane_tls_variables() {
    let anchor = trust_anchor_pem();
    let identity = [
        ("WEFT_PROXY_IDENTITY_SVC_ADDR", "10.0.0.1:8080"),
        ("WEFT_PROXY_IDENTITY_TOKEN_FILE", "/t"),
        ("WEFT_PROXY_IDENTITY_LOCAL_NAME", "a.b"),
        ("WEFT_PROXY_IDENTITY_TRUST_ANCHORS", anchor.as_str()),
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "10.0.0.1:8086"),
    ];
    let config = config_from(&identity).unwrap();
    assert_eq!(config.control_plane_tls, ControlPlaneTls::Auto);
    assert_eq!(config.identity.unwrap().svc_name, DEFAULT_CONTROLLER_NAME);
    assert_eq!(
        config.destination.unwrap().svc_name,
        DEFAULT_CONTROLLER_NAME
    );

    let mut named = identity.to_vec();
    named.extend([
        ("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
        ("WEFT_PROXY_IDENTITY_SVC_NAME", "Identity.Weft.Example"),
        ("WEFT_PROXY_DESTINATION_SVC_NAME", "dst.weft.example"),
    ]);
    let config = config_from(&named).unwrap();
    assert_eq!(config.control_plane_tls, ControlPlaneTls::Always);
    assert_eq!(config.identity.unwrap().svc_name, "identity.weft.example");
    assert_eq!(config.destination.unwrap().svc_name, "dst.weft.example");

    // Every mistake, each with its name, value and reason.
    let mut bad = identity.to_vec();
    bad.extend([
        ("WEFT_PROXY_CONTROL_PLANE_TLS", "sometimes"),
        ("WEFT_PROXY_IDENTITY_SVC_NAME", "not a name"),
        ("WEFT_PROXY_DESTINATION_SVC_NAME", "10.0.0.1:8086"),
    ]);
    let error = config_from(&bad).unwrap_err();
    let found: Vec<(&str, &str)> = error
        .invalid
        .iter()
        .map(|bad| (bad.name.as_str(), bad.value.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("WEFT_PROXY_DESTINATION_SVC_NAME", "10.0.0.1:8086"),
            ("WEFT_PROXY_IDENTITY_SVC_NAME", "not a name"),
            ("WEFT_PROXY_CONTROL_PLANE_TLS", "sometimes"),
        ],
        "{error}"
    );
    assert!(error.to_string().contains("expected auto, always or never"));

    // `always` needs trust anchors to verify the controller with.
    let error = config_from(&[
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "10.0.0.1:8086"),
        ("WEFT_PROXY_CONTROL_PLANE_TLS", "always"),
    ])
    .unwrap_err();
    assert_eq!(error.invalid.len(), 1, "{error}");
    assert_eq!(error.invalid[0].name, "WEFT_PROXY_CONTROL_PLANE_TLS");
    assert!(
        config_from(&[("WEFT_PROXY_CONTROL_PLANE_TLS", "never")]).is_ok(),
        "never needs nothing"
    );
}

#[test]
fn defaults() {
    let config = config_from(&[]).unwrap();
    assert_eq!(config.inbound_listen_addr.to_string(), "0.0.0.0:4143");
    assert_eq!(
        config.outbound_listen_addrs,
        ["127.0.0.1:4140".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(config.admin_listen_addr.to_string(), "127.0.0.1:4191");
    assert_eq!(config.inbound_forward_addr, None);
    assert!(config.opaque_ports.contains(6379));
    assert!(!config.opaque_ports.contains(80));
    assert_eq!(config.detect_timeout, Duration::from_secs(10));
    assert_eq!(config.cores, 1);
}

#[test]
fn every_bad_variable_is_reported() {
    let error = config_from(&[
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", "nowhere"),
        ("WEFT_PROXY_DETECT_TIMEOUT", "10"),
        ("WEFT_PROXY_OPAQUE_PORTS", "99999"),
        ("WEFT_PROXY_CORES", "0"),
        ("WEFT_PROXY_LOG_FORMAT", "xml"),
    ])
    .unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEFT_PROXY_INBOUND_LISTEN_ADDR",
            "WEFT_PROXY_OPAQUE_PORTS",
            "WEFT_PROXY_DETECT_TIMEOUT",
            "WEFT_PROXY_CORES",
            "WEFT_PROXY_LOG_FORMAT"
        ]
    );
    let text = error.to_string();
    assert!(
        text.contains("WEFT_PROXY_DETECT_TIMEOUT=\"10\": missing unit"),
        "{text}"
    );
}

/// A log filter the filter parser would panic on is refused instead.
#[test]
fn a_non_ascii_log_filter_is_refused() {
    let error = config_from(&[("WEFT_PROXY_LOG", "warn, é[x]")]).unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(names, ["WEFT_PROXY_LOG"]);
}

/// A span field value, whose pattern the filter compiles into a DFA of up
/// to exponential size, is refused before anything compiles it; field names
/// alone are fine.
#[test]
fn a_log_filter_with_a_field_value_is_refused() {
    let started = std::time::Instant::now();
    let error = config_from(&[(
        "WEFT_PROXY_LOG",
        "warn,h2[conn{peer=a..................................................b}]=trace",
    )])
    .unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(names, ["WEFT_PROXY_LOG"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(config_from(&[("WEFT_PROXY_LOG", "warn,h2[conn{peer}]=trace")]).is_ok());
}

#[test]
fn one_or_two_outbound_listeners() {
    let config = config_from(&[(
        "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
        "127.0.0.1:4140, [::1]:4140",
    )])
    .unwrap();
    assert_eq!(config.outbound_listen_addrs.len(), 2);
    for bad in ["", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "127.0.0.1:1,x"] {
        assert!(
            config_from(&[("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", bad)]).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn cross_field_checks() {
    let error = config_from(&[
        ("WEFT_PROXY_OUTBOUND_LISTEN_ADDR", "127.0.0.1:5000"),
        ("WEFT_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:5000"),
        ("WEFT_PROXY_INBOUND_FORWARD_ADDR", "0.0.0.0:4143"),
    ])
    .unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEFT_PROXY_ADMIN_LISTEN_ADDR",
            "WEFT_PROXY_INBOUND_FORWARD_ADDR"
        ]
    );
}

#[test]
fn tap_variables() {
    let tap = config_from(&[]).unwrap().tap.unwrap();
    assert_eq!(tap.listen_addr.to_string(), "127.0.0.1:4190");
    assert!(!tap.listen_addr_set);
    assert_eq!(tap.svc_name, DEFAULT_CONTROLLER_NAME);
    for off in ["off", "OFF", "", " "] {
        let config = config_from(&[("WEFT_PROXY_TAP_LISTEN_ADDR", off)]).unwrap();
        assert!(config.tap.is_none(), "{off:?}");
        assert_eq!(config.to_json()["tap_listen_addr"], "off");
    }
    let tap = config_from(&[
        ("WEFT_PROXY_TAP_LISTEN_ADDR", "0.0.0.0:14190"),
        ("WEFT_PROXY_TAP_SVC_NAME", "Tap.Weft.Example"),
    ])
    .unwrap()
    .tap
    .unwrap();
    assert_eq!(tap.listen_addr.to_string(), "0.0.0.0:14190");
    assert!(tap.listen_addr_set);
    assert_eq!(tap.svc_name, "tap.weft.example");
    let error = config_from(&[
        ("WEFT_PROXY_TAP_LISTEN_ADDR", "sometimes"),
        ("WEFT_PROXY_TAP_SVC_NAME", "not a name"),
    ])
    .unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(
        names,
        ["WEFT_PROXY_TAP_LISTEN_ADDR", "WEFT_PROXY_TAP_SVC_NAME"]
    );
    let error = config_from(&[
        ("WEFT_PROXY_ADMIN_LISTEN_ADDR", "127.0.0.1:5000"),
        ("WEFT_PROXY_TAP_LISTEN_ADDR", "127.0.0.1:5000"),
    ])
    .unwrap_err();
    assert_eq!(error.invalid[0].name, "WEFT_PROXY_TAP_LISTEN_ADDR");
}

#[test]
fn help_lists_every_variable() {
    let help = help_text();
    for variable in VARIABLES {
        assert!(help.contains(variable.name));
    }
}

#[test]
fn resource_bound_variables() {
    let config = config_from(&[]).unwrap();
    assert_eq!(config.http_header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.http_idle_timeout, Duration::from_secs(120));
    assert_eq!(config.inbound_max_connections, 10_000);
    assert_eq!(config.outbound_max_connections, 10_000);
    let config = config_from(&[
        ("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "500ms"),
        ("WEFT_PROXY_HTTP_IDLE_TIMEOUT", "1s"),
        ("WEFT_PROXY_INBOUND_MAX_CONNECTIONS", "5"),
        ("WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS", "7"),
    ])
    .unwrap();
    assert_eq!(config.http_header_read_timeout, Duration::from_millis(500));
    assert_eq!(config.http_idle_timeout, Duration::from_secs(1));
    assert_eq!(config.inbound_max_connections, 5);
    assert_eq!(config.outbound_max_connections, 7);
    let error = config_from(&[
        ("WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", "0"),
        ("WEFT_PROXY_HTTP_IDLE_TIMEOUT", "soon"),
        ("WEFT_PROXY_INBOUND_MAX_CONNECTIONS", "0"),
        ("WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS", "-1"),
    ])
    .unwrap_err();
    let names: Vec<&str> = error.invalid.iter().map(|bad| bad.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT",
            "WEFT_PROXY_HTTP_IDLE_TIMEOUT",
            "WEFT_PROXY_INBOUND_MAX_CONNECTIONS",
            "WEFT_PROXY_OUTBOUND_MAX_CONNECTIONS"
        ]
    );
}

#[test]
fn policy_variables() {
    // No workload: no policy client, whatever else is set.
    let config = config_from(&[("WEFT_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086")]).unwrap();
    assert!(config.policy.is_none());
    assert_eq!(
        config.inbound_default_policy,
        DefaultPolicy::AllUnauthenticated
    );
    // A workload and no address of its own: the Destination service's.
    let workload = r#"{"ns":"shop","pod":"web-1"}"#;
    let config = config_from(&[
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
        (
            "WEFT_PROXY_DESTINATION_SVC_NAME",
            "ctl.weft.serviceaccount.identity.weft.cluster.local",
        ),
        ("WEFT_PROXY_POLICY_WORKLOAD", workload),
    ])
    .unwrap();
    let policy = config.policy.unwrap();
    assert_eq!(policy.addr, "127.0.0.1:8086");
    assert_eq!(
        policy.svc_name,
        "ctl.weft.serviceaccount.identity.weft.cluster.local"
    );
    assert_eq!(policy.workload, workload);
    // Its own address and name win.
    let config = config_from(&[
        ("WEFT_PROXY_DESTINATION_SVC_ADDR", "127.0.0.1:8086"),
        ("WEFT_PROXY_POLICY_SVC_ADDR", "policy.weft:8090"),
        (
            "WEFT_PROXY_POLICY_SVC_NAME",
            "policy.weft.serviceaccount.identity.weft.cluster.local",
        ),
        ("WEFT_PROXY_POLICY_WORKLOAD", workload),
        ("WEFT_PROXY_INBOUND_DEFAULT_POLICY", " Deny "),
        ("WEFT_PROXY_POLICY_CLUSTER_NETWORKS", "10.0.0.0/8, fd00::/8"),
    ])
    .unwrap();
    let policy = config.policy.as_ref().unwrap();
    assert_eq!(policy.addr, "policy.weft:8090");
    assert_eq!(
        policy.svc_name,
        "policy.weft.serviceaccount.identity.weft.cluster.local"
    );
    assert_eq!(config.inbound_default_policy, DefaultPolicy::Deny);
    assert_eq!(config.policy_cluster_networks.len(), 2);
    let json = config.to_json();
    assert_eq!(json["inbound_default_policy"], "deny");
    assert_eq!(json["policy_workload"], workload);
    // A workload without any address: no policy client.
    let config = config_from(&[("WEFT_PROXY_POLICY_WORKLOAD", workload)]).unwrap();
    assert!(config.policy.is_none());
    // Every default policy name parses and prints back.
    for policy in DefaultPolicy::ALL {
        assert_eq!(DefaultPolicy::parse(policy.as_str()), Ok(policy));
    }
    // Bad values name the variable and say what is expected.
    let error = config_from(&[
        ("WEFT_PROXY_POLICY_WORKLOAD", "web-1"),
        ("WEFT_PROXY_INBOUND_DEFAULT_POLICY", "allow"),
        ("WEFT_PROXY_POLICY_CLUSTER_NETWORKS", "10.0.0.0/33"),
    ])
    .unwrap_err()
    .to_string();
    for expected in [
        "WEFT_PROXY_POLICY_WORKLOAD",
        "WEFT_PROXY_INBOUND_DEFAULT_POLICY",
        "expected one of all-unauthenticated, all-authenticated",
        "WEFT_PROXY_POLICY_CLUSTER_NETWORKS",
    ] {
        assert!(
            error.contains(expected),
            "{expected:?} missing from {error}"
        );
    }
    for bad in [
        r#"{"ns":"shop"}"#,
        r#"{"ns":"","pod":"web"}"#,
        r#"{"ns":1,"pod":"web"}"#,
        "[]",
    ] {
        let error = config_from(&[("WEFT_PROXY_POLICY_WORKLOAD", bad)]).unwrap_err();
        assert!(
            error.to_string().contains("WEFT_PROXY_POLICY_WORKLOAD"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn server_first_delay() {
    // (value, milliseconds; None = off), and the values refused.
    let table: &[(Option<&str>, Option<u64>)] = &[
        (None, Some(200)),
        (Some("300ms"), Some(300)),
        (Some("1s"), Some(1_000)),
        (Some("off"), None),
        (Some("OFF"), None),
        (Some("0"), None),
        (Some("0s"), None),
        (Some(""), None),
    ];
    for (value, expected) in table {
        let pairs: Vec<(&str, &str)> = value
            .map(|value| ("WEFT_PROXY_SERVER_FIRST_DELAY", value))
            .into_iter()
            .collect();
        let config = config_from(&pairs).unwrap_or_else(|error| panic!("{value:?}: {error}"));
        let delay = config
            .server_first_delay
            .map(|delay| delay.as_millis() as u64);
        assert_eq!(delay, *expected, "{value:?}");
    }
    for bad in ["200", "soon", "-1s"] {
        let error = config_from(&[("WEFT_PROXY_SERVER_FIRST_DELAY", bad)])
            .map(|_| ())
            .expect_err(bad);
        assert!(
            error.to_string().contains("WEFT_PROXY_SERVER_FIRST_DELAY"),
            "{error}"
        );
    }
}

//! Configuration errors: every bad variable is reported at once, with its
//! name and value, and the process exits with status 64.

use std::time::Duration;

use weft_test_support::ProxyBuilder;

#[test]
fn bad_config_exits_64_naming_every_bad_variable() {
    let bad = [
        ("WEFT_PROXY_DETECT_TIMEOUT", "banana"),
        ("WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", "10"),
        ("WEFT_PROXY_OPAQUE_PORTS", "25,99999"),
        ("WEFT_PROXY_INBOUND_LISTEN_ADDR", "not-an-address"),
        ("WEFT_PROXY_LOG_FORMAT", "xml"),
    ];
    let mut builder = ProxyBuilder::new()
        .outbound_addr(weft_test_support::free_addr())
        .admin_addr(weft_test_support::free_addr());
    for (name, value) in bad {
        builder = builder.env(name, value);
    }
    let output = builder.run_to_exit(Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(64),
        "exit status {}; stderr:\n{stderr}",
        output.status
    );
    for (name, value) in bad {
        assert!(
            stderr.contains(name),
            "stderr does not name {name}:\n{stderr}"
        );
        assert!(
            stderr.contains(value),
            "stderr does not show {name}'s value {value:?}:\n{stderr}"
        );
    }
}

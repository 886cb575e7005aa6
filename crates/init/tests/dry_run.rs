//! The real `weft-init` binary without root: `--dry-run` prints the exact
//! iptables commands and runs none (no iptables on PATH here), bad flags
//! exit 64 naming the flag, and a missing iptables fails with exit 1.

use std::process::{Command, Output};

/// Runs weft-init with `args` and an empty PATH: nothing can be executed.
fn weft_init(args: &[&str]) -> Output {
    let empty = std::env::temp_dir().join("weft-init-test-empty-path");
    std::fs::create_dir_all(&empty).expect("create an empty directory");
    Command::new(env!("CARGO_BIN_EXE_weft-init"))
        .args(args)
        .env_clear()
        .env("PATH", &empty)
        .output()
        .expect("run weft-init")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(ToString::to_string)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The arguments the injector gives the init container (see the plan's
/// "injected pod"), with every optional annotation set.
const INJECTOR_ARGS: &[&str] = &[
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
    "10.96.0.0/12",
];

#[test]
fn dry_run_prints_the_install_commands_and_runs_nothing() {
    let output = weft_init(&[INJECTOR_ARGS, &["--dry-run"]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let want = [
        "iptables-nft -w -t nat -N WEFT_PREROUTING",
        "iptables-nft -w -t nat -N WEFT_INBOUND_REDIRECT",
        "iptables-nft -w -t nat -N WEFT_OUTPUT",
        "iptables-nft -w -t nat -N WEFT_OUTBOUND_REDIRECT",
        "iptables-nft -w -t nat -A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
        "iptables-nft -w -t nat -A WEFT_PREROUTING -p tcp -m multiport --dports 4190,4191,9000:9010 -j RETURN",
        "iptables-nft -w -t nat -A WEFT_PREROUTING -p tcp -j WEFT_INBOUND_REDIRECT",
        "iptables-nft -w -t nat -A WEFT_OUTBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4140",
        "iptables-nft -w -t nat -A WEFT_OUTPUT -m owner --uid-owner 2102 -j RETURN",
        "iptables-nft -w -t nat -A WEFT_OUTPUT -o lo -j RETURN",
        "iptables-nft -w -t nat -A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "iptables-nft -w -t nat -A WEFT_OUTPUT -p tcp -m multiport --dports 25,3306 -j RETURN",
        "iptables-nft -w -t nat -A WEFT_OUTPUT -d 10.96.0.0/12 -j RETURN",
        "iptables-nft -w -t nat -A WEFT_OUTPUT -p tcp -j WEFT_OUTBOUND_REDIRECT",
        "iptables-nft -w -t nat -A PREROUTING -j WEFT_PREROUTING",
        "iptables-nft -w -t nat -A OUTPUT -j WEFT_OUTPUT",
    ];
    assert_eq!(stdout_lines(&output), want);
    assert!(
        stderr(&output).contains("--backend auto shown as iptables-nft"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn dry_run_ingress_mode_with_legacy() {
    let output = weft_init(&[
        "--inbound-only",
        "--skip-inbound-ports",
        "4190,4191",
        "--backend",
        "legacy",
        "--dry-run",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout_lines(&output),
        [
            "iptables-legacy -w -t nat -N WEFT_PREROUTING",
            "iptables-legacy -w -t nat -N WEFT_INBOUND_REDIRECT",
            "iptables-legacy -w -t nat -A WEFT_INBOUND_REDIRECT -p tcp -j REDIRECT --to-ports 4143",
            "iptables-legacy -w -t nat -A WEFT_PREROUTING -p tcp -m multiport --dports 4190,4191 -j RETURN",
            "iptables-legacy -w -t nat -A WEFT_PREROUTING -p tcp -j WEFT_INBOUND_REDIRECT",
            "iptables-legacy -w -t nat -A PREROUTING -j WEFT_PREROUTING",
        ]
    );
}

#[test]
fn dry_run_remove_prints_the_removal() {
    let output = weft_init(&["--remove", "--dry-run", "--backend", "nft"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout_lines(&output),
        [
            "iptables-nft -w -t nat -D PREROUTING -j WEFT_PREROUTING",
            "iptables-nft -w -t nat -D OUTPUT -j WEFT_OUTPUT",
            "iptables-nft -w -t nat -F WEFT_PREROUTING",
            "iptables-nft -w -t nat -F WEFT_INBOUND_REDIRECT",
            "iptables-nft -w -t nat -F WEFT_OUTPUT",
            "iptables-nft -w -t nat -F WEFT_OUTBOUND_REDIRECT",
            "iptables-nft -w -t nat -X WEFT_PREROUTING",
            "iptables-nft -w -t nat -X WEFT_INBOUND_REDIRECT",
            "iptables-nft -w -t nat -X WEFT_OUTPUT",
            "iptables-nft -w -t nat -X WEFT_OUTBOUND_REDIRECT",
        ]
    );
}

#[test]
fn bad_input_exits_64_naming_the_flag() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--skip-inbound-ports", "4190,http"],
            &["--skip-inbound-ports", "\"http\""],
        ),
        (
            &["--skip-outbound-ports", "9010-9000"],
            &["--skip-outbound-ports"],
        ),
        (
            &["--skip-subnets", "10.0.0.0/33"],
            &["--skip-subnets", "10.0.0.0/33"],
        ),
        (
            &["--backend", "iptables"],
            &["--backend", "auto, nft or legacy"],
        ),
        (&["--inbound-proxy-port", "0"], &["--inbound-proxy-port"]),
        // clap's own refusals exit 64 too.
        (
            &["--outbound-proxy-port", "http"],
            &["--outbound-proxy-port"],
        ),
        (&["--proxy-uid", "-1"], &["-1"]),
        (&["--no-such-flag"], &["--no-such-flag"]),
    ];
    for (args, expected) in cases {
        let output = weft_init(&[*args, &["--dry-run"]].concat());
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{args:?}: printed commands");
        for part in *expected {
            assert!(
                stderr(&output).contains(part),
                "{args:?}: {}",
                stderr(&output)
            );
        }
    }
}

#[test]
fn a_missing_iptables_fails_with_its_name() {
    let output = weft_init(&["--backend", "legacy"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot run iptables-legacy-save"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn help_exits_0() {
    let output = weft_init(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--inbound-proxy-port",
        "--outbound-proxy-port",
        "--proxy-uid",
        "--skip-inbound-ports",
        "--skip-outbound-ports",
        "--skip-subnets",
        "--inbound-only",
        "--backend",
        "--dry-run",
        "--remove",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

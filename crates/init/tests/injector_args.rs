//! The injector's golden patches (crates/core/tests/fixtures/inject/, made
//! by `weft_core::inject`) hold weft-init's arguments: each set must parse
//! and check with this crate's flags, so the two sides of the flag contract
//! cannot drift apart. Read as files: weft-init does not depend on
//! weft-core.

use std::path::Path;

use clap::Parser;
use weft_init::args::Args;
use weft_init::ports::Config;
use weft_init::run::dry_run_commands;

/// Every `"args": [...]` list in a pretty-printed JSON file whose first
/// item is `--inbound-proxy-port` (weft-init's; the proxy has no args).
fn weft_init_argument_lists(json: &str) -> Vec<Vec<String>> {
    let mut lists = Vec::new();
    let mut lines = json.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "\"args\": [" {
            continue;
        }
        let mut list = Vec::new();
        for item in lines.by_ref() {
            let item = item.trim();
            if item.starts_with(']') {
                break;
            }
            let text = item.trim_end_matches(',');
            let unquoted = text
                .strip_prefix('"')
                .and_then(|text| text.strip_suffix('"'))
                .unwrap_or_else(|| panic!("not a plain string item: {item}"));
            list.push(unquoted.replace("\\\"", "\""));
        }
        if list.first().map(String::as_str) == Some("--inbound-proxy-port") {
            lists.push(list);
        }
    }
    lists
}

#[test]
fn every_injected_weft_init_parses_and_checks() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures/inject");
    let mut checked = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&fixtures)
        .unwrap_or_else(|error| panic!("{}: {error}", fixtures.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".patch.json"))
        .collect();
    entries.sort();
    for path in entries {
        let json = std::fs::read_to_string(&path).expect("read the golden patch");
        let lists = weft_init_argument_lists(&json);
        if json.contains("\"name\": \"weft-init\"") {
            assert_eq!(
                lists.len(),
                1,
                "{}: weft-init's args not found",
                path.display()
            );
        }
        for list in lists {
            let args =
                Args::try_parse_from(std::iter::once("weft-init".to_string()).chain(list.clone()))
                    .unwrap_or_else(|error| panic!("{}: {list:?}: {error}", path.display()));
            let config = Config::from_args(&args)
                .unwrap_or_else(|error| panic!("{}: {list:?}: {error}", path.display()));
            assert!(!dry_run_commands(&config).is_empty());
            assert_eq!(
                config.inbound_only,
                path.to_string_lossy().contains("ingress"),
                "{}: --inbound-only",
                path.display()
            );
            checked.push(
                path.file_name()
                    .map(|name| name.to_string_lossy().into_owned()),
            );
        }
    }
    assert!(
        checked.len() >= 4,
        "expected weft-init in the injector's golden patches, checked {checked:?}"
    );
}

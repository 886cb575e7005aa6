//! The properties the fuzz targets in `fuzz/` check, one function per
//! target, kept here so that the normal test run replays the committed fuzz
//! corpora through exactly the same code (see the test at the bottom).
//!
//! Each function takes the fuzzer's bytes, runs one parser on them and
//! panics if the parser panics or breaks a stated property:
//!
//! - [`detect`]: `detect::classify` never panics, and a `Known` verdict on
//!   a prefix is the verdict on the whole input (the socket loop may stop at
//!   any prefix, so the answer must not depend on how bytes are segmented).
//! - [`client_hello`]: `server_name` never panics; `Incomplete { needed }`
//!   asks for more than it has; a name found on a prefix is the name found
//!   on the whole input, and so is a refusal (whose reason may cite fewer
//!   bytes); a name is a lower-case DNS name of at most 253 bytes.
//! - [`transport_header`]: `decode` never panics; `needed` grows past the
//!   buffer; `consumed` lies within it; a decoded header re-encodes to bytes
//!   that decode to the same header, and a header or an error on a prefix is
//!   the answer on the whole input.
//! - [`config`]: `Config::from_lookup` never panics on any values of the
//!   real variables, every refused variable is named by its real name, and
//!   an accepted configuration's durations and port set read back from how
//!   `/config` shows them.

use std::collections::HashMap;

use crate::config::{self, Config, VARIABLES};
use crate::detect::{self, Verdict};
use crate::tls::client_hello::{self, ClientHello};
use crate::tls::transport_header::{self, Decoded};

/// Prefix lengths worth re-checking: every short one, then sixteen spread
/// over the input (checking them all would make long inputs quadratic).
fn prefix_lengths(length: usize) -> impl Iterator<Item = usize> {
    let short = 0..length.min(32);
    let spread = (1..16).map(move |part| length * part / 16);
    short.chain(spread).filter(move |&prefix| prefix < length)
}

/// Protocol detection on a connection's first bytes.
pub fn detect(data: &[u8]) {
    let verdict = detect::classify(data);
    for length in prefix_lengths(data.len()) {
        if let Verdict::Known(earlier) = detect::classify(&data[..length]) {
            assert_eq!(
                verdict,
                Verdict::Known(earlier),
                "the first {length} bytes were already {earlier:?}"
            );
        }
    }
}

/// The ClientHello parser on a connection's first bytes.
pub fn client_hello(data: &[u8]) {
    let answer = client_hello::server_name(data);
    match &answer {
        ClientHello::Incomplete { needed } => {
            assert!(*needed > data.len(), "needed {needed} of {}", data.len());
        }
        ClientHello::ServerName(Some(name)) => {
            assert!(!name.is_empty() && name.len() <= 253, "name {name:?}");
            assert!(
                name.bytes().all(|byte| byte.is_ascii()
                    && !byte.is_ascii_uppercase()
                    && (byte.is_ascii_alphanumeric() || b"-_.".contains(&byte))),
                "name {name:?}"
            );
        }
        ClientHello::ServerName(None) | ClientHello::NotTls(_) => {}
    }
    for length in prefix_lengths(data.len()) {
        match client_hello::server_name(&data[..length]) {
            ClientHello::Incomplete { needed } => {
                // A lower bound: nothing shorter than `needed` is a whole
                // ClientHello.
                if data.len() < needed {
                    assert!(
                        !matches!(answer, ClientHello::ServerName(_)),
                        "the first {length} bytes needed {needed}, yet {} gave {answer:?}",
                        data.len()
                    );
                }
            }
            // Rejection may come early, its reason citing fewer bytes.
            ClientHello::NotTls(_) => {
                assert!(
                    matches!(answer, ClientHello::NotTls(_)),
                    "the first {length} bytes are not TLS, the whole input gave {answer:?}"
                );
            }
            earlier => assert_eq!(earlier, answer, "the first {length} bytes"),
        }
    }
}

/// The transport header codec on a direct connection's first bytes.
pub fn transport_header(data: &[u8]) {
    let decoded = transport_header::decode(data);
    match &decoded {
        Ok(Decoded::Incomplete { needed }) => {
            assert!(*needed > data.len(), "needed {needed} of {}", data.len());
        }
        Ok(Decoded::Complete { header, consumed }) => {
            assert!(
                *consumed <= data.len(),
                "consumed {consumed} of {}",
                data.len()
            );
            assert_eq!(
                transport_header::decode(&data[..*consumed]),
                decoded,
                "the header's own bytes"
            );
            let encoded = transport_header::encode(header);
            assert_eq!(
                transport_header::decode(&encoded),
                Ok(Decoded::Complete {
                    header: header.clone(),
                    consumed: encoded.len(),
                }),
                "re-encoded as {encoded:?}"
            );
        }
        Err(_) => {}
    }
    for length in prefix_lengths(data.len()) {
        match transport_header::decode(&data[..length]) {
            Ok(Decoded::Incomplete { needed }) => assert!(
                needed > length
                    && !matches!(decoded, Ok(Decoded::Complete { consumed, .. }) if consumed < needed),
                "the first {length} bytes needed {needed}, whole input: {decoded:?}"
            ),
            Err(error) => assert!(
                decoded.is_err(),
                "the first {length} bytes failed with {error:?}, the whole input gave {decoded:?}"
            ),
            earlier => assert_eq!(earlier, decoded, "the first {length} bytes"),
        }
    }
}

/// Reads fuzzer bytes as variable settings: entries separated by NUL bytes
/// (which no environment value can hold), each a byte choosing a variable
/// of the real table followed by its value. A later setting of the same
/// variable wins.
pub fn config_settings(data: &[u8]) -> HashMap<&'static str, String> {
    data.split(|&byte| byte == 0)
        .filter_map(|entry| {
            let (&choice, value) = entry.split_first()?;
            let variable = &VARIABLES[usize::from(choice) % VARIABLES.len()];
            Some((variable.name, String::from_utf8_lossy(value).into_owned()))
        })
        .collect()
}

/// The proxy's configuration parser on any values of its variables.
pub fn config(data: &[u8]) {
    let settings = config_settings(data);
    let lookup = |name: &str| settings.get(name).cloned();
    match Config::from_lookup(&lookup) {
        Ok(config) => {
            let _ = config.to_json();
            let durations = [
                config.detect_timeout,
                config.inbound_connect_timeout,
                config.outbound_connect_timeout,
                config.discovery_idle_timeout,
                config.failfast_timeout,
                config.http1_pool_idle_timeout,
                config.metrics_retain_idle,
                config.shutdown_grace_period,
            ];
            for duration in durations {
                let shown = config::format_duration(duration);
                assert_eq!(config::parse_duration(&shown), Ok(duration), "{shown}");
            }
            let ports = config.opaque_ports.to_string();
            let reread = config::parse_port_set(&ports).expect("shown port set parses");
            assert_eq!(reread.to_string(), ports);
        }
        Err(error) => {
            assert!(!error.invalid.is_empty());
            for invalid in &error.invalid {
                assert!(
                    VARIABLES
                        .iter()
                        .any(|variable| variable.name == invalid.name),
                    "an error names {:?}",
                    invalid.name
                );
                assert!(!invalid.reason.is_empty(), "{invalid:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every committed seed and regression input of each fuzz target, run
    /// through the target's property check (`fuzz/corpus/<target>/` and
    /// `fuzz/regressions/<target>/`).
    #[test]
    fn fuzz_corpora_replay() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        type Check = fn(&[u8]);
        let targets: [(&str, Check); 4] = [
            ("detect", super::detect),
            ("client_hello", super::client_hello),
            ("transport_header", super::transport_header),
            ("proxy_config", super::config),
        ];
        for (target, check) in targets {
            let mut replayed = 0;
            for directory in ["corpus", "regressions"] {
                let Ok(entries) = std::fs::read_dir(fuzz.join(directory).join(target)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("directory entry").path();
                    let data = std::fs::read(&path).expect("readable input");
                    let outcome = std::panic::catch_unwind(|| check(&data));
                    assert!(outcome.is_ok(), "{target}: {} fails", path.display());
                    replayed += 1;
                }
            }
            assert!(replayed > 0, "{target}: no corpus under {}", fuzz.display());
        }
    }
}

//! The annotations that steer injection, read from the pod and its
//! namespace: `weft.io/inject` (whether, and how) and the configuration
//! overrides `config.weft.io/<name>` (Linkerd's `config.linkerd.io/<name>`
//! is honoured too, so annotated Linkerd workloads keep their settings).
//!
//! Precedence, first found wins:
//!
//! ```text
//! pod config.weft.io/X ─► pod config.linkerd.io/X ─► namespace config.weft.io/X
//!     ─► namespace config.linkerd.io/X ─► InjectionConfig
//! ```
//!
//! Every value is checked here, before it reaches a container: a bad one
//! names its annotation and says why, and the pod is left unmeshed.

use std::collections::BTreeMap;

use crate::cluster::INJECT_ANNOTATION;
use crate::policy::DefaultPolicy;
use crate::policy::network::Cidr;

use super::{ProxyResources, SkipReason};

/// The prefix of weft's configuration annotations.
pub const CONFIG_PREFIX: &str = "config.weft.io/";
/// The prefix of Linkerd's configuration annotations, read when weft's is absent.
pub const LINKERD_CONFIG_PREFIX: &str = "config.linkerd.io/";

/// The configuration annotations the injector reads (without prefix).
pub const CONFIG_ANNOTATIONS: [&str; 13] = [
    PROXY_CPU_REQUEST,
    PROXY_CPU_LIMIT,
    PROXY_MEMORY_REQUEST,
    PROXY_MEMORY_LIMIT,
    PROXY_LOG_LEVEL,
    OPAQUE_PORTS,
    SKIP_INBOUND_PORTS,
    SKIP_OUTBOUND_PORTS,
    SKIP_SUBNETS,
    DEFAULT_INBOUND_POLICY,
    PROXY_IMAGE,
    PROXY_VERSION,
    PROXY_IMAGE_PULL_POLICY,
];

const PROXY_CPU_REQUEST: &str = "proxy-cpu-request";
const PROXY_CPU_LIMIT: &str = "proxy-cpu-limit";
const PROXY_MEMORY_REQUEST: &str = "proxy-memory-request";
const PROXY_MEMORY_LIMIT: &str = "proxy-memory-limit";
const PROXY_LOG_LEVEL: &str = "proxy-log-level";
const OPAQUE_PORTS: &str = "opaque-ports";
const SKIP_INBOUND_PORTS: &str = "skip-inbound-ports";
const SKIP_OUTBOUND_PORTS: &str = "skip-outbound-ports";
const SKIP_SUBNETS: &str = "skip-subnets";
const DEFAULT_INBOUND_POLICY: &str = "default-inbound-policy";
const PROXY_IMAGE: &str = "proxy-image";
const PROXY_VERSION: &str = "proxy-version";
const PROXY_IMAGE_PULL_POLICY: &str = "image-pull-policy";

/// Annotations by name.
pub type Annotations = BTreeMap<String, String>;

/// How a pod asked for its proxy (`weft.io/inject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectMode {
    /// `enabled`: inbound and outbound traffic through the proxy.
    Enabled,
    /// `ingress`: only inbound traffic is redirected; the ingress reaches
    /// meshed services through the proxy's outbound port explicitly.
    Ingress,
}

/// The pod's `weft.io/inject` if it has one, else the namespace's:
/// `enabled` and `ingress` ask for a proxy, anything else does not.
pub fn requested_mode(pod: &Annotations, namespace: &Annotations) -> Option<InjectMode> {
    let value = pod
        .get(INJECT_ANNOTATION)
        .or_else(|| namespace.get(INJECT_ANNOTATION))?;
    match value.trim() {
        "enabled" => Some(InjectMode::Enabled),
        "ingress" => Some(InjectMode::Ingress),
        _ => None,
    }
}

/// One override: the annotation it came from and its (normalized) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The annotation, with its prefix (`config.linkerd.io/opaque-ports`).
    pub annotation: String,
    /// Its value, normalized (lists without spaces).
    pub value: String,
}

/// What the annotations override, each checked; `None`: not annotated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `proxy-cpu-request`.
    pub cpu_request: Option<Setting>,
    /// `proxy-cpu-limit`.
    pub cpu_limit: Option<Setting>,
    /// `proxy-memory-request`.
    pub memory_request: Option<Setting>,
    /// `proxy-memory-limit`.
    pub memory_limit: Option<Setting>,
    /// `proxy-log-level`.
    pub log_level: Option<Setting>,
    /// `opaque-ports` (an empty list is no override of the proxy's default).
    pub opaque_ports: Option<Setting>,
    /// `skip-inbound-ports`.
    pub skip_inbound_ports: Option<Setting>,
    /// `skip-outbound-ports`.
    pub skip_outbound_ports: Option<Setting>,
    /// `skip-subnets`.
    pub skip_subnets: Option<Setting>,
    /// `default-inbound-policy`.
    pub default_inbound_policy: Option<Setting>,
    /// `proxy-image`.
    pub proxy_image: Option<Setting>,
    /// `proxy-version`.
    pub proxy_version: Option<Setting>,
    /// `image-pull-policy` (Linkerd's name).
    pub image_pull_policy: Option<Setting>,
}

/// A check of one annotation's value: the normalized value or why it is bad.
type Check = fn(&str) -> Result<String, String>;

/// Reads and checks every configuration annotation; `resources` are the
/// configured defaults an annotated request or limit is compared with.
pub fn read(
    pod: &Annotations,
    namespace: &Annotations,
    resources: &ProxyResources,
) -> Result<Overrides, SkipReason> {
    let setting = |name: &str, check: Check| -> Result<Option<Setting>, SkipReason> {
        let Some((annotation, value)) = lookup(pod, namespace, name) else {
            return Ok(None);
        };
        match check(value) {
            Ok(value) => Ok(Some(Setting { annotation, value })),
            Err(reason) => Err(SkipReason::InvalidAnnotation { annotation, reason }),
        }
    };
    let overrides = Overrides {
        cpu_request: setting(PROXY_CPU_REQUEST, check_quantity)?,
        cpu_limit: setting(PROXY_CPU_LIMIT, check_quantity)?,
        memory_request: setting(PROXY_MEMORY_REQUEST, check_quantity)?,
        memory_limit: setting(PROXY_MEMORY_LIMIT, check_quantity)?,
        log_level: setting(PROXY_LOG_LEVEL, check_log_level)?,
        opaque_ports: setting(OPAQUE_PORTS, check_port_list)?,
        skip_inbound_ports: setting(SKIP_INBOUND_PORTS, check_port_list)?,
        skip_outbound_ports: setting(SKIP_OUTBOUND_PORTS, check_port_list)?,
        skip_subnets: setting(SKIP_SUBNETS, check_network_list)?,
        default_inbound_policy: setting(DEFAULT_INBOUND_POLICY, check_default_policy)?,
        proxy_image: setting(PROXY_IMAGE, check_image)?,
        proxy_version: setting(PROXY_VERSION, check_version)?,
        image_pull_policy: setting(PROXY_IMAGE_PULL_POLICY, check_pull_policy)?,
    };
    check_request_within_limit(
        overrides.cpu_request.as_ref(),
        resources.cpu_request.as_deref(),
        overrides.cpu_limit.as_ref(),
        resources.cpu_limit.as_deref(),
    )?;
    check_request_within_limit(
        overrides.memory_request.as_ref(),
        resources.memory_request.as_deref(),
        overrides.memory_limit.as_ref(),
        resources.memory_limit.as_deref(),
    )?;
    Ok(overrides)
}

/// The annotation configuring `name` and its value, by precedence.
fn lookup<'annotations>(
    pod: &'annotations Annotations,
    namespace: &'annotations Annotations,
    name: &str,
) -> Option<(String, &'annotations str)> {
    [pod, namespace].into_iter().find_map(|annotations| {
        [CONFIG_PREFIX, LINKERD_CONFIG_PREFIX]
            .into_iter()
            .find_map(|prefix| {
                let annotation = format!("{prefix}{name}");
                let value = annotations.get(&annotation)?;
                Some((annotation, value.as_str()))
            })
    })
}

/// The value as quoted in a reason, cut short.
fn quoted(value: &str) -> String {
    const MAXIMUM: usize = 64;
    match value.char_indices().nth(MAXIMUM) {
        Some((end, _)) => format!("{:?}…", &value[..end]),
        None => format!("{value:?}"),
    }
}

/// Kubernetes would refuse the pod if a request were above its limit (the
/// pod would not start at all); only checked when one of them is annotated.
fn check_request_within_limit(
    request_override: Option<&Setting>,
    request_default: Option<&str>,
    limit_override: Option<&Setting>,
    limit_default: Option<&str>,
) -> Result<(), SkipReason> {
    let Some(annotated) = limit_override.or(request_override) else {
        return Ok(());
    };
    let request = request_override.map(|setting| setting.value.as_str());
    let limit = limit_override.map(|setting| setting.value.as_str());
    let (Some(request), Some(limit)) = (request.or(request_default), limit.or(limit_default))
    else {
        return Ok(());
    };
    let (Ok(request_amount), Ok(limit_amount)) = (quantity_amount(request), quantity_amount(limit))
    else {
        return Ok(());
    };
    if request_amount > limit_amount {
        return Err(SkipReason::InvalidAnnotation {
            annotation: annotated.annotation.clone(),
            reason: format!("the request {request} is above the limit {limit}"),
        });
    }
    Ok(())
}

/// A Kubernetes quantity, not negative: `100m`, `0.5`, `64Mi`, `1e3`.
pub fn check_quantity(value: &str) -> Result<String, String> {
    quantity_amount(value)?;
    Ok(value.to_string())
}

/// The amount a quantity stands for (approximately: for comparisons).
///
/// The grammar (Kubernetes' `resource.Quantity`): an optional `+`, a number
/// (`1`, `1.5`, `1.`, `.5`), then a suffix: binary (`Ki` … `Ei`), decimal
/// (`n`, `u`, `m`, none, `k`, `M`, `G`, `T`, `P`, `E`) or an exponent
/// (`e3`, `E-2`).
pub(super) fn quantity_amount(value: &str) -> Result<f64, String> {
    let invalid = || {
        format!(
            "{} is not a Kubernetes quantity (such as 100m, 0.5, 64Mi)",
            quoted(value)
        )
    };
    if value.starts_with('-') {
        return Err(format!("{} is negative", quoted(value)));
    }
    let unsigned = value.strip_prefix('+').unwrap_or(value);
    let number_length = unsigned
        .find(|character: char| !character.is_ascii_digit() && character != '.')
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_length);
    let digit_count = number.chars().filter(char::is_ascii_digit).count();
    if digit_count == 0 || number.matches('.').count() > 1 {
        return Err(invalid());
    }
    let amount: f64 = number.parse().map_err(|_| invalid())?;
    let multiplier = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E']).ok_or_else(invalid)?;
            let unsigned_digits = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned_digits.is_empty()
                || !unsigned_digits.bytes().all(|byte| byte.is_ascii_digit())
            {
                return Err(invalid());
            }
            let power: i32 = digits.parse().map_err(|_| invalid())?;
            10f64.powi(power)
        }
    };
    Ok(amount * multiplier)
}

/// A comma-separated list of ports and `LOW-HIGH` ranges within 1-65535;
/// normalized without spaces. An empty list is allowed (it overrides a
/// namespace's list with none).
pub fn check_port_list(value: &str) -> Result<String, String> {
    let mut entries = Vec::new();
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    for entry in value.split(',').map(str::trim) {
        let port = |text: &str| -> Result<u16, String> {
            text.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| {
                    format!(
                        "{} is not a port (1-65535) or a range LOW-HIGH",
                        quoted(entry)
                    )
                })
        };
        match entry.split_once('-') {
            None => entries.push(port(entry)?.to_string()),
            Some((low, high)) => {
                let (low, high) = (port(low.trim())?, port(high.trim())?);
                if low > high {
                    return Err(format!(
                        "{}: the range's low end is above its high end",
                        quoted(entry)
                    ));
                }
                entries.push(format!("{low}-{high}"));
            }
        }
    }
    Ok(entries.join(","))
}

/// A comma-separated list of CIDR networks (`10.0.0.0/8,fd00::/8`; a bare
/// address is a host network), normalized. An empty list is allowed.
pub fn check_network_list(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        return Ok(String::new());
    }
    let networks = value
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err("an entry of the list is empty".to_string());
            }
            Cidr::parse(entry)
                .map(|network| network.to_string())
                .map_err(|error| error.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(networks.join(","))
}

/// One of Linkerd's default inbound policies.
pub fn check_default_policy(value: &str) -> Result<String, String> {
    DefaultPolicy::parse(value)
        .map(|policy| policy.as_str().to_string())
        .map_err(|error| error.to_string())
}

/// A proxy log filter (`warn,weft_proxy=debug`): not empty, no spaces.
pub fn check_log_level(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("the log level is empty".to_string());
    }
    if value
        .chars()
        .any(|character| character.is_whitespace() || character.is_control())
    {
        return Err(format!(
            "{} has spaces or control characters",
            quoted(value)
        ));
    }
    Ok(value.to_string())
}

/// An image name without its tag (`ghcr.io/weft-mesh/weft-proxy`).
pub fn check_image(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("the image is empty".to_string());
    }
    if value
        .chars()
        .any(|character| character.is_whitespace() || character.is_control() || character == '@')
    {
        return Err(format!(
            "{} is not an image name (no spaces, no digest)",
            quoted(value)
        ));
    }
    Ok(value.to_string())
}

/// An image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn check_version(value: &str) -> Result<String, String> {
    let valid_character =
        |character: char| character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '-');
    let valid = value
        .chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && value.len() <= 128
        && value.chars().all(valid_character);
    if value.is_empty() {
        return Err("the version is empty".to_string());
    }
    if !valid {
        return Err(format!(
            "{} is not an image tag (letters, digits, `_`, `.`, `-`, at most 128)",
            quoted(value)
        ));
    }
    Ok(value.to_string())
}

/// `Always`, `IfNotPresent` or `Never`.
pub fn check_pull_policy(value: &str) -> Result<String, String> {
    match value {
        "Always" | "IfNotPresent" | "Never" => Ok(value.to_string()),
        _ => Err(format!(
            "{} is not an image pull policy (Always, IfNotPresent or Never)",
            quoted(value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        let valid = [
            "0", "1", "100m", "0.5", "1.", ".5", "+1", "64Mi", "1Gi", "1Ki", "2Ei", "1e3", "1E-2",
            "5k", "3M", "10n", "10u", "1T", "1P", "1E",
        ];
        for value in valid {
            assert_eq!(check_quantity(value).as_deref(), Ok(value), "{value}");
        }
        let invalid = [
            "", "m", "-1", "1..0", "1.0.0", "64MB", "1 Gi", " 1", "1e", "1e+", "1Mi3", "abc",
            "1ki", "0x10", "1e1.5",
        ];
        for value in invalid {
            assert!(check_quantity(value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn port_lists() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("", Ok("")),
            ("80", Ok("80")),
            ("1,65535", Ok("1,65535")),
            (" 22 , 8000-8100 ", Ok("22,8000-8100")),
            ("8000 - 8100", Ok("8000-8100")),
            ("5-5", Ok("5-5")),
            ("0", Err("not a port")),
            ("65536", Err("not a port")),
            ("http", Err("not a port")),
            ("1,,2", Err("not a port")),
            ("10-", Err("not a port")),
            ("-10", Err("not a port")),
            ("1-2-3", Err("not a port")),
            ("9-8", Err("low end")),
        ];
        for (value, expected) in cases {
            match (check_port_list(value), expected) {
                (Ok(normalized), Ok(expected)) => assert_eq!(normalized, *expected, "{value:?}"),
                (Err(reason), Err(part)) => assert!(reason.contains(part), "{value:?}: {reason}"),
                (outcome, _) => panic!("{value:?}: {outcome:?}"),
            }
        }
    }

    #[test]
    fn other_annotation_checks() {
        assert_eq!(
            check_network_list("10.0.0.0/8, fd00::/8,192.168.1.1").as_deref(),
            Ok("10.0.0.0/8,fd00::/8,192.168.1.1/32")
        );
        assert!(check_network_list("10.0.0.0/8,,").is_err());
        assert!(check_network_list("::/129").is_err());
        for policy in [
            "all-unauthenticated",
            "all-authenticated",
            "cluster-unauthenticated",
            "cluster-authenticated",
            "deny",
            "audit",
        ] {
            assert_eq!(check_default_policy(policy).as_deref(), Ok(policy));
        }
        assert!(check_default_policy("allow-all").is_err());
        assert!(check_log_level("info,weft_proxy=debug").is_ok());
        assert!(check_log_level("info\n").is_err());
        assert!(check_image("ghcr.io/weft-mesh/weft-proxy").is_ok());
        assert!(check_image("a b").is_err());
        assert!(check_version("v1.2.3-rc.1_x").is_ok());
        assert!(check_version(".hidden").is_err());
        assert!(check_version(&"a".repeat(129)).is_err());
        let long = "x".repeat(500);
        let reason = check_version(&format!("{long} ")).expect_err("invalid");
        assert!(reason.len() < 200, "the value is cut short: {reason}");
    }
}

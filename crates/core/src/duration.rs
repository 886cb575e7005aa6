//! Durations as weft writes them: in ServiceProfiles (timeouts, TTLs), the
//! proxy's `WEFT_PROXY_*` variables, the controller's and CLI's flags and the
//! bench harness. One parser for all of them: a Go duration string (`250ms`,
//! `1m30s`, `1.5s`) that may also use days (`1d`). A unit is required except
//! for a bare `0`. ServiceProfiles are parsed once at deserialization, so a bad
//! value is reported with its line.
//!
//! ```text
//! [+]NUMBER UNIT [NUMBER UNIT]…     NUMBER = digits [. digits]   | 0
//! UNIT = ns | us | µs | ms | s | m | h | d
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The units the parser accepts, for messages.
const UNITS: &str = "ns, us, ms, s, m, h or d";

/// A duration string that was rejected: the text and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}")]
pub struct DurationError {
    text: String,
    reason: DurationReason,
}

impl DurationError {
    fn new(text: &str, reason: DurationReason) -> Self {
        Self {
            text: text.to_string(),
            reason,
        }
    }

    /// Why the text was rejected, without the text itself (for messages that
    /// already show the value, such as the proxy's `NAME="value": reason`).
    pub fn reason(&self) -> &DurationReason {
        &self.reason
    }
}

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationReason {
    /// The string was empty.
    #[error("empty: expected a number with a unit ({UNITS}), e.g. 10s")]
    Empty,
    /// A number was expected (e.g. `ms` alone, `1..5s`).
    #[error("expected a number with a unit ({UNITS}), e.g. 10s")]
    MissingNumber,
    /// A number other than `0` without a unit (`10`).
    #[error("missing unit: write {UNITS} (e.g. 10s)")]
    MissingUnit,
    /// A unit that is not one of ns, us, µs, ms, s, m, h, d.
    #[error("unknown unit {0:?}: use {UNITS}")]
    UnknownUnit(String),
    /// Negative durations are not meaningful for timeouts.
    #[error("must not be negative")]
    Negative,
    /// The value does not fit in a [`Duration`].
    #[error("too large")]
    Overflow,
}

/// A duration as a ServiceProfile writes it (read by [`parse_duration`]); keeps
/// the text it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GoDuration {
    text: String,
    value: Duration,
}

impl GoDuration {
    /// The parsed value.
    pub fn value(&self) -> Duration {
        self.value
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The spellings [`parse_duration`] accepts, as a CRD schema pattern
/// (ECMA-262 and Go RE2 alike): numbers with units, or a bare `0`.
#[cfg(feature = "crds")]
pub const DURATION_PATTERN: &str =
    r"^\s*\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d))+)\s*$";

/// In a CRD: a string of the spellings [`parse_duration`] accepts.
#[cfg(feature = "crds")]
impl schemars::JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

impl TryFrom<String> for GoDuration {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let value = parse_duration(&text)?;
        Ok(Self { text, value })
    }
}

impl From<GoDuration> for String {
    fn from(duration: GoDuration) -> String {
        duration.text
    }
}

impl From<Duration> for GoDuration {
    fn from(value: Duration) -> Self {
        Self {
            text: format!("{}ms", value.as_millis()),
            value,
        }
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// Parses a duration: a sequence of decimal numbers, each with a unit (`10s`,
/// `1m30s`, `1.5h`, `1d`); `0` alone is allowed. Surrounding blanks are
/// ignored; negative values are rejected. Fractions below a nanosecond are
/// truncated.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let fail = |reason| DurationError::new(text, reason);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(fail(DurationReason::Empty));
    }
    if trimmed.starts_with('-') {
        return Err(fail(DurationReason::Negative));
    }
    let mut rest = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_length = rest
            .find(|character: char| !(character.is_ascii_digit() || character == '.'))
            .unwrap_or(rest.len());
        let (number, after_number) = rest.split_at(number_length);
        if number.is_empty() || number == "." {
            return Err(fail(DurationReason::MissingNumber));
        }
        let unit_length = after_number
            .find(|character: char| character.is_ascii_digit() || character == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_length);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SECOND,
            "m" => 60 * NANOS_PER_SECOND,
            "h" => 3_600 * NANOS_PER_SECOND,
            "d" => 86_400 * NANOS_PER_SECOND,
            "" => return Err(fail(DurationReason::MissingUnit)),
            _ => return Err(fail(DurationReason::UnknownUnit(unit.to_string()))),
        };
        let nanos = scale_decimal(number, nanos_per_unit)
            .map_err(|reason| DurationError::new(text, reason))?;
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| fail(DurationReason::Overflow))?;
        rest = after_unit;
    }
    let seconds = u64::try_from(total_nanos / NANOS_PER_SECOND)
        .map_err(|_| fail(DurationReason::Overflow))?;
    let subsecond_nanos = (total_nanos % NANOS_PER_SECOND) as u32;
    Ok(Duration::new(seconds, subsecond_nanos))
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// `"1.5"` × 1e9 → 1.5e9, exactly (fractions below one nanosecond are
/// truncated).
fn scale_decimal(number: &str, scale: u128) -> Result<u128, DurationReason> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') {
        return Err(DurationReason::MissingNumber);
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        // Only digits reach here, so a parse failure is an overflow.
        whole.parse().map_err(|_| DurationReason::Overflow)?
    };
    let mut result = whole_value
        .checked_mul(scale)
        .ok_or(DurationReason::Overflow)?;
    let mut place = scale;
    for digit in fraction.chars() {
        place /= 10;
        let digit = digit.to_digit(10).ok_or(DurationReason::MissingNumber)?;
        result += u128::from(digit) * place;
    }
    Ok(result)
}

/// Writes a duration in the largest unit that holds it exactly (`0`, `2h`,
/// `90s`, `500ms`, `1500us`, `7ns`); [`parse_duration`] reads it back to the
/// same value. Days are written in hours (`24h`).
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0".to_string();
    }
    let units: [(u128, &str); 6] = [
        (3_600 * NANOS_PER_SECOND, "h"),
        (60 * NANOS_PER_SECOND, "m"),
        (NANOS_PER_SECOND, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    let (size, unit) = units
        .into_iter()
        .find(|(size, _)| nanos.is_multiple_of(*size))
        .unwrap_or((1, "ns"));
    format!("{}{unit}", nanos / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling any of weft's parsers accepted, and what each refuses.
    #[test]
    fn parses_durations() {
        let cases: &[(&str, Result<Duration, DurationReason>)] = &[
            ("500ms", Ok(Duration::from_millis(500))),
            ("250ms", Ok(Duration::from_millis(250))),
            ("10s", Ok(Duration::from_secs(10))),
            (" 2m ", Ok(Duration::from_secs(120))),
            ("1h", Ok(Duration::from_secs(3600))),
            ("1d", Ok(Duration::from_secs(86_400))),
            ("1m30s", Ok(Duration::from_secs(90))),
            ("1d12h", Ok(Duration::from_secs(129_600))),
            ("2h45m10s500ms", Ok(Duration::from_millis(9_910_500))),
            ("1.5s", Ok(Duration::from_millis(1500))),
            (".5s", Ok(Duration::from_millis(500))),
            ("1.5ms", Ok(Duration::from_micros(1500))),
            ("100us", Ok(Duration::from_micros(100))),
            ("10µs", Ok(Duration::from_micros(10))),
            ("7ns", Ok(Duration::from_nanos(7))),
            ("+3s", Ok(Duration::from_secs(3))),
            ("0", Ok(Duration::ZERO)),
            ("0s", Ok(Duration::ZERO)),
            ("1000d", Ok(Duration::from_secs(86_400_000))),
            ("", Err(DurationReason::Empty)),
            ("  ", Err(DurationReason::Empty)),
            ("10", Err(DurationReason::MissingUnit)),
            ("1m30", Err(DurationReason::MissingUnit)),
            ("ms", Err(DurationReason::MissingNumber)),
            ("s", Err(DurationReason::MissingNumber)),
            (".s", Err(DurationReason::MissingNumber)),
            ("1..5s", Err(DurationReason::MissingNumber)),
            ("10 s", Err(DurationReason::UnknownUnit(" s".to_string()))),
            ("10sec", Err(DurationReason::UnknownUnit("sec".to_string()))),
            (
                "10 parsecs",
                Err(DurationReason::UnknownUnit(" parsecs".to_string())),
            ),
            ("1w", Err(DurationReason::UnknownUnit("w".to_string()))),
            ("-1s", Err(DurationReason::Negative)),
            ("99999999999999999999999h", Err(DurationReason::Overflow)),
            ("600000000000000d", Err(DurationReason::Overflow)),
        ];
        for (text, expected) in cases {
            let parsed = parse_duration(text).map_err(|error| error.reason().clone());
            assert_eq!(&parsed, expected, "{text:?}");
        }
    }

    #[test]
    fn errors_name_the_text_and_the_reason() {
        let error = parse_duration("10").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid duration \"10\": missing unit: write ns, us, ms, s, m, h or d (e.g. 10s)"
        );
        assert_eq!(
            parse_duration("3w").unwrap_err().reason().to_string(),
            "unknown unit \"w\": use ns, us, ms, s, m, h or d"
        );
    }

    #[test]
    fn formats_what_it_parses() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0"),
            (Duration::from_secs(7_200), "2h"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(1500), "1500us"),
            (Duration::from_nanos(7), "7ns"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(*duration), *text);
            assert_eq!(parse_duration(text), Ok(*duration), "{text}");
        }
    }

    /// The CRD pattern admits every spelling the parser accepts, and refuses
    /// the malformed ones (overflow is the parser's to refuse).
    #[cfg(feature = "crds")]
    #[test]
    fn crd_pattern_follows_the_parser() {
        let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
        let accepted = [
            "500ms",
            "10s",
            " 2m ",
            "1h",
            "1d",
            "1m30s",
            "1d12h",
            "1.5s",
            ".5s",
            "100us",
            "10µs",
            "10μs",
            "7ns",
            "+3s",
            "0",
            "0s",
            "2h45m10s500ms",
        ];
        for text in accepted {
            assert!(parse_duration(text).is_ok(), "{text:?} parses");
            assert!(pattern.is_match(text), "{text:?} matches");
        }
        let refused = [
            "", "  ", "10", "1m30", "ms", "s", ".s", "1..5s", "10 s", "10sec", "-1s", "1w",
        ];
        for text in refused {
            assert!(parse_duration(text).is_err(), "{text:?} is refused");
            assert!(!pattern.is_match(text), "{text:?} does not match");
        }
    }

    #[test]
    fn keeps_the_text() {
        let duration = GoDuration::try_from("1m30s".to_string()).unwrap();
        assert_eq!(duration.as_str(), "1m30s");
        assert_eq!(duration.value(), Duration::from_secs(90));
    }
}

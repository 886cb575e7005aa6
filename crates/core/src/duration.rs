//! Go duration strings, as ServiceProfiles write timeouts and TTLs (`250ms`,
//! `1m30s`, `1.5s`). Parsed once at deserialization, so a bad value is reported
//! with its line.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("empty duration")]
    Empty,
    /// A number was expected (e.g. `ms` alone).
    #[error("invalid duration {0:?}: expected a number")]
    MissingNumber(String),
    /// A unit was missing or unknown; Go accepts ns, us, µs, ms, s, m, h.
    #[error("invalid duration {0:?}: unit must be one of ns, us, ms, s, m, h")]
    BadUnit(String),
    /// Negative durations are not meaningful for timeouts.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
    /// The value does not fit.
    #[error("invalid duration {0:?}: too large")]
    Overflow(String),
}

/// A duration written as a Go duration string; keeps the text it came from.
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

impl TryFrom<String> for GoDuration {
    type Error = DurationError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let value = parse_go_duration(&text)?;
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

/// Parses a Go duration (`time.ParseDuration`): a sequence of decimal numbers,
/// each with a unit; `0` alone is allowed. Negative values are rejected.
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    if trimmed.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
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
            return Err(DurationError::MissingNumber(text.to_string()));
        }
        let unit_length = after_number
            .find(|character: char| character.is_ascii_digit() || character == '.')
            .unwrap_or(after_number.len());
        let (unit, after_unit) = after_number.split_at(unit_length);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            _ => return Err(DurationError::BadUnit(text.to_string())),
        };
        total_nanos = total_nanos
            .checked_add(
                scale_decimal(number, nanos_per_unit)
                    .ok_or_else(|| DurationError::MissingNumber(text.to_string()))?,
            )
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        rest = after_unit;
    }
    let nanos =
        u64::try_from(total_nanos).map_err(|_| DurationError::Overflow(text.to_string()))?;
    Ok(Duration::from_nanos(nanos))
}

/// `"1.5"` × 1e9 → 1.5e9, exactly (fractions below one unit are truncated).
fn scale_decimal(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut result = whole_value.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.chars() {
        place /= 10;
        result += u128::from(digit.to_digit(10)?) * place;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases: &[(&str, Result<Duration, ()>)] = &[
            ("250ms", Ok(Duration::from_millis(250))),
            ("10s", Ok(Duration::from_secs(10))),
            ("1m30s", Ok(Duration::from_secs(90))),
            ("1.5s", Ok(Duration::from_millis(1500))),
            ("1h", Ok(Duration::from_secs(3600))),
            ("100us", Ok(Duration::from_micros(100))),
            ("10µs", Ok(Duration::from_micros(10))),
            ("7ns", Ok(Duration::from_nanos(7))),
            (".5s", Ok(Duration::from_millis(500))),
            ("0", Ok(Duration::ZERO)),
            ("", Err(())),
            ("10", Err(())),
            ("ms", Err(())),
            ("10 parsecs", Err(())),
            ("-1s", Err(())),
            ("1..5s", Err(())),
        ];
        for (text, expected) in cases {
            let parsed = parse_go_duration(text).map_err(|_| ());
            assert_eq!(&parsed, expected, "{text:?}");
        }
    }

    #[test]
    fn keeps_the_text() {
        let duration = GoDuration::try_from("1m30s".to_string()).unwrap();
        assert_eq!(duration.as_str(), "1m30s");
        assert_eq!(duration.value(), Duration::from_secs(90));
    }
}

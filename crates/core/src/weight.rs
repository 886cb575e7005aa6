//! Relative weights as Kubernetes quantities (`900m`, `1`, `0.5`), as
//! TrafficSplit backends and ServiceProfile `dstOverrides` write them, and
//! their wire form in a profile answer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The wire weight of one whole unit (Linkerd's "decimillis": `1` → 10000).
pub const WIRE_WEIGHT_PER_UNIT: u32 = 10_000;

/// Why a weight was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeightError {
    /// Not a non-negative quantity like `900m`, `1`, `0.5` or an integer.
    #[error("invalid weight {0:?}: expected a quantity such as 900m, 1 or 0.5")]
    Invalid(String),
    /// Finer than a milli-unit or too large.
    #[error("invalid weight {0:?}: out of range or finer than 1m")]
    OutOfRange(String),
}

/// A relative weight written as a Kubernetes quantity (`900m`, `1`, `0.5`) or
/// an integer (SMI v1alpha2+), held in milli-units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "WeightText", into = "String")]
pub struct Weight {
    milli: u64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WeightText {
    Integer(u64),
    Text(String),
}

impl TryFrom<WeightText> for Weight {
    type Error = WeightError;
    fn try_from(text: WeightText) -> Result<Self, Self::Error> {
        match text {
            WeightText::Integer(units) => units
                .checked_mul(1000)
                .map(Weight::from_milli)
                .ok_or_else(|| WeightError::OutOfRange(units.to_string())),
            WeightText::Text(text) => text.parse(),
        }
    }
}

/// The quantity spellings [`Weight`]'s parser accepts, as a CRD schema
/// pattern (it applies to strings only; integers are checked by `minimum`).
#[cfg(feature = "crds")]
pub const WEIGHT_PATTERN: &str = r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)[mk]?\s*$";

/// In a CRD: an integer or a quantity string (`x-kubernetes-int-or-string`).
#[cfg(feature = "crds")]
impl schemars::JsonSchema for Weight {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Weight".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "x-kubernetes-int-or-string": true,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "minimum": 0,
            "pattern": WEIGHT_PATTERN,
        })
    }
}

impl std::str::FromStr for Weight {
    type Err = WeightError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || WeightError::Invalid(text.to_string());
        let out_of_range = || WeightError::OutOfRange(text.to_string());
        let (number, milli_per_unit) = match text.trim() {
            trimmed if trimmed.ends_with('m') => (&trimmed[..trimmed.len() - 1], 1u64),
            trimmed if trimmed.ends_with('k') => (&trimmed[..trimmed.len() - 1], 1_000_000u64),
            trimmed => (trimmed, 1000u64),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let all_digits = |part: &str| part.chars().all(|character| character.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction)
        {
            return Err(invalid());
        }
        let whole_value: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| out_of_range())?
        };
        let mut milli = whole_value
            .checked_mul(milli_per_unit)
            .ok_or_else(out_of_range)?;
        let mut place = milli_per_unit;
        for digit in fraction.chars() {
            place /= 10;
            let digit = u64::from(digit.to_digit(10).ok_or_else(invalid)?);
            if place == 0 {
                if digit != 0 {
                    return Err(out_of_range());
                }
                continue;
            }
            milli = milli.checked_add(digit * place).ok_or_else(out_of_range)?;
        }
        Ok(Weight::from_milli(milli))
    }
}

impl Weight {
    /// A weight of `milli` thousandths.
    pub fn from_milli(milli: u64) -> Self {
        Self { milli }
    }

    /// In thousandths (`900m` → 900, `1` → 1000).
    pub fn milli(self) -> u64 {
        self.milli
    }

    /// On the wire: ×10000 per unit (`900m` → 9000), saturating.
    pub fn wire(self) -> u32 {
        u32::try_from(self.milli.saturating_mul(10)).unwrap_or(u32::MAX)
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.milli.is_multiple_of(1000) {
            write!(formatter, "{}", self.milli / 1000)
        } else {
            write!(formatter, "{}m", self.milli)
        }
    }
}

impl From<Weight> for String {
    fn from(weight: Weight) -> String {
        weight.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_weights() {
        let cases: &[(&str, Result<u64, ()>)] = &[
            ("900m", Ok(900)),
            ("1", Ok(1000)),
            ("0.5", Ok(500)),
            ("100", Ok(100_000)),
            ("1k", Ok(1_000_000)),
            ("0", Ok(0)),
            ("0.0005", Err(())),
            ("0.5000", Ok(500)),
            ("-1", Err(())),
            ("ten", Err(())),
            ("", Err(())),
            ("1Gi", Err(())),
        ];
        for (text, expected) in cases {
            assert_eq!(
                &text.parse::<Weight>().map(Weight::milli).map_err(|_| ()),
                expected,
                "{text:?}"
            );
        }
        assert_eq!(Weight::from_milli(900).wire(), 9000);
        assert_eq!(Weight::from_milli(900).to_string(), "900m");
    }

    /// The CRD pattern admits every spelling the parser accepts, and refuses
    /// the malformed ones (out-of-range values are the parser's to refuse).
    #[cfg(feature = "crds")]
    #[test]
    fn crd_pattern_follows_the_parser() {
        let pattern = regex::Regex::new(WEIGHT_PATTERN).unwrap();
        for text in [
            "900m", "1", "0.5", "100", "1k", "0", "0.5000", ".5", "2.", " 1 ",
        ] {
            assert!(text.parse::<Weight>().is_ok(), "{text:?} parses");
            assert!(pattern.is_match(text), "{text:?} matches");
        }
        for text in ["-1", "ten", "", "1Gi", "1e3", "m"] {
            assert!(text.parse::<Weight>().is_err(), "{text:?} is refused");
            assert!(!pattern.is_match(text), "{text:?} does not match");
        }
    }
}

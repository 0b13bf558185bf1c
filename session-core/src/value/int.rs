//! Python's unbounded `int`.

use std::fmt;
use std::str::FromStr;

use num_bigint::BigInt;
use num_traits::ToPrimitive;

/// A Python `int` of any size.
///
/// Values that fit in an `i64` are stored inline (the common case: user ids, counters, expiry
/// seconds); larger ones as a [`BigInt`]. The representation is canonical, so two equal integers are
/// always stored the same way and derived equality is exact.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Int(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    Small(i64),
    // Invariant: never fits in an i64.
    Big(Box<BigInt>),
}

impl Int {
    /// The value as an `i64`, if it fits.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.0 {
            Repr::Small(v) => Some(*v),
            Repr::Big(_) => None,
        }
    }

    /// The value as a `u64`, if it fits.
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Small(v) => u64::try_from(*v).ok(),
            Repr::Big(b) => b.to_u64(),
        }
    }

    /// The value as an `i128`, if it fits.
    pub fn as_i128(&self) -> Option<i128> {
        match &self.0 {
            Repr::Small(v) => Some(i128::from(*v)),
            Repr::Big(b) => b.to_i128(),
        }
    }

    /// The value as a [`BigInt`].
    pub fn to_bigint(&self) -> BigInt {
        match &self.0 {
            Repr::Small(v) => BigInt::from(*v),
            Repr::Big(b) => (**b).clone(),
        }
    }

    /// The nearest `f64` (what Python's `float(n)` gives, up to rounding of huge values).
    pub fn to_f64(&self) -> f64 {
        match &self.0 {
            // Rounding to the nearest double is the intent here.
            #[allow(clippy::cast_precision_loss)]
            Repr::Small(v) => *v as f64,
            Repr::Big(b) => b.to_f64().unwrap_or(f64::NAN),
        }
    }
}

impl From<i64> for Int {
    fn from(v: i64) -> Self {
        Int(Repr::Small(v))
    }
}

impl From<u64> for Int {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(small) => Int(Repr::Small(small)),
            Err(_) => Int(Repr::Big(Box::new(BigInt::from(v)))),
        }
    }
}

impl From<i128> for Int {
    fn from(v: i128) -> Self {
        match i64::try_from(v) {
            Ok(small) => Int(Repr::Small(small)),
            Err(_) => Int(Repr::Big(Box::new(BigInt::from(v)))),
        }
    }
}

impl From<u128> for Int {
    fn from(v: u128) -> Self {
        match i64::try_from(v) {
            Ok(small) => Int(Repr::Small(small)),
            Err(_) => Int(Repr::Big(Box::new(BigInt::from(v)))),
        }
    }
}

impl From<BigInt> for Int {
    fn from(v: BigInt) -> Self {
        match v.to_i64() {
            Some(small) => Int(Repr::Small(small)),
            None => Int(Repr::Big(Box::new(v))),
        }
    }
}

impl fmt::Display for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(v) => fmt::Display::fmt(v, f),
            Repr::Big(b) => fmt::Display::fmt(b, f),
        }
    }
}

impl fmt::Debug for Int {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The text was not a decimal integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid integer literal: expected an optional '-' followed by decimal digits")]
pub struct ParseIntError;

impl FromStr for Int {
    type Err = ParseIntError;

    /// Parses an optional `-` followed by ASCII decimal digits (JSON's integer grammar, minus the
    /// leading-zero rule, which the JSON parser checks itself).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseIntError);
        }
        if let Ok(small) = s.parse::<i64>() {
            return Ok(Int(Repr::Small(small)));
        }
        s.parse::<BigInt>()
            .map(Int::from)
            .map_err(|_| ParseIntError)
    }
}

impl Int {
    /// Whether the value is negative.
    pub fn is_negative(&self) -> bool {
        match &self.0 {
            Repr::Small(v) => *v < 0,
            Repr::Big(b) => b.sign() == num_bigint::Sign::Minus,
        }
    }

    /// The value as a `u128`, if it fits.
    pub fn as_u128(&self) -> Option<u128> {
        match &self.0 {
            Repr::Small(v) => u128::try_from(*v).ok(),
            Repr::Big(b) => b.to_u128(),
        }
    }

    /// Whether Python would refuse to convert this integer to or from decimal text: it has more
    /// than [`MAX_STR_DIGITS`] digits (Python 3.11+'s default `sys.get_int_max_str_digits()`).
    pub fn exceeds_python_str_digits(&self) -> bool {
        let Repr::Big(b) = &self.0 else {
            return false;
        };
        // A number of `bits` bits has floor(bits * log10 2) + 1 digits, or one fewer.
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let estimate = (b.bits() as f64 * std::f64::consts::LOG10_2) as usize + 1;
        if estimate <= MAX_STR_DIGITS {
            false
        } else if estimate > MAX_STR_DIGITS + 1 {
            true
        } else {
            b.magnitude().to_string().len() > MAX_STR_DIGITS
        }
    }

    /// The big-integer representation, if the value does not fit in an `i64`.
    pub(crate) fn as_big(&self) -> Option<&BigInt> {
        match &self.0 {
            Repr::Small(_) => None,
            Repr::Big(b) => Some(b),
        }
    }
}

/// Python's default limit on the number of decimal digits in `int` <-> `str` conversions
/// (`sys.get_int_max_str_digits()`, Python 3.11+). Python's `json` refuses longer integers in both
/// directions, and so does our JSON serializer (it also keeps quadratic big-number parsing bounded).
pub const MAX_STR_DIGITS: usize = 4300;

/// Name of the one-field map our value deserializer hands to a visitor for integers too large for
/// any serde integer type; `Value`'s own `Deserialize` recognises it (serde_json does the same for
/// its arbitrary-precision numbers). Also the newtype name our value serializer accepts them under.
pub(crate) const BIG_INT_TOKEN: &str = "$session_core::private::Int";

impl serde::Serialize for Int {
    /// Serializes as `i64`, `u64`, `i128` or `u128`, the first that fits. Larger integers only
    /// serialize into a [`Value`](crate::value::Value) (with [`to_value`](crate::value::to_value));
    /// other formats get an error, because serde has no wider integer type.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Small(v) => serializer.serialize_i64(*v),
            Repr::Big(b) => {
                if let Some(v) = b.to_u64() {
                    serializer.serialize_u64(v)
                } else if let Some(v) = b.to_i128() {
                    serializer.serialize_i128(v)
                } else if let Some(v) = b.to_u128() {
                    serializer.serialize_u128(v)
                } else if crate::value::ser::is_value_serializer::<S>() {
                    serializer.serialize_newtype_struct(BIG_INT_TOKEN, &b.to_string())
                } else {
                    Err(serde::ser::Error::custom(format_args!(
                        "integer {b} is too large for this format (more than 128 bits)"
                    )))
                }
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Int {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match crate::value::Value::deserialize(deserializer)? {
            crate::value::Value::Int(i) => Ok(i),
            other => Err(serde::de::Error::custom(format_args!(
                "invalid type: expected int, found {}",
                other.type_name()
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn small_values_stay_inline_and_big_ones_normalise() {
        assert_eq!(Int::from(i64::MAX).as_i64(), Some(i64::MAX));
        let big = Int::from(u64::MAX);
        assert_eq!(big.as_i64(), None);
        assert_eq!(big.as_u64(), Some(u64::MAX));
        // A BigInt that fits is stored small, so equality is exact.
        assert_eq!(Int::from(BigInt::from(42)), Int::from(42i64));
    }

    #[test]
    fn parses_and_prints_unbounded_decimals() {
        let text = "-10000000000000000000000000000000000000000";
        let n: Int = text.parse().unwrap();
        assert_eq!(n.to_string(), text);
        assert_eq!("0".parse::<Int>().unwrap(), Int::from(0i64));
        assert!("".parse::<Int>().is_err());
        assert!("-".parse::<Int>().is_err());
        assert!("1.5".parse::<Int>().is_err());
        assert!("+1".parse::<Int>().is_err());
    }

    #[test]
    fn knows_pythons_str_digit_limit_exactly() {
        assert!(!Int::from(i64::MIN).exceeds_python_str_digits());
        for (digits, over) in [(4299, false), (4300, false), (4301, true), (4302, true)] {
            let nines: Int = format!("-{}", "9".repeat(digits)).parse().unwrap();
            assert_eq!(nines.exceeds_python_str_digits(), over, "{digits} nines");
            let power: Int = format!("1{}", "0".repeat(digits - 1)).parse().unwrap();
            assert_eq!(
                power.exceeds_python_str_digits(),
                over,
                "10**{}",
                digits - 1
            );
        }
    }
}

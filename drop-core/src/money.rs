//! Exact money: integer minor units (cents), never floating point.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DropError;

/// The largest amount accepted, in minor units (one billion major units):
/// far above any drop price, far below `i64` overflow in sums.
pub const MONEY_MAX_MINOR: i64 = 100_000_000_000;

/// A non-negative amount in minor units (1/100 of the currency unit).
///
/// On the wire it is written as a decimal string with two decimals
/// (`"199.99"`) and read from a JSON number or a decimal string with at most
/// two decimals. Reading a number goes through its shortest decimal form, so
/// `199.99` is exactly 19 999 minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Money(i64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From minor units; `INVALID_INPUT` (field `price`) when negative or too large.
    pub fn from_minor(minor: i64) -> Result<Self, DropError> {
        if !(0..=MONEY_MAX_MINOR).contains(&minor) {
            return Err(DropError::invalid(
                "price",
                "must be between 0 and 1000000000",
            ));
        }
        Ok(Self(minor))
    }

    /// The amount in minor units.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// `quantity` times this amount, or `None` when that is above
    /// [`MONEY_MAX_MINOR`].
    pub fn times(self, quantity: u32) -> Option<Money> {
        self.0
            .checked_mul(i64::from(quantity))
            .filter(|m| *m <= MONEY_MAX_MINOR)
            .map(Money)
    }

    /// Parses a decimal such as `"199.99"`, `"5"` or `"0.5"`.
    pub fn parse_decimal(raw: &str) -> Result<Self, DropError> {
        let bad = || {
            DropError::invalid(
                "price",
                "must be a non-negative amount with at most 2 decimals",
            )
        };
        let s = raw.trim();
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if frac.len() > 2
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (s.contains('.') && frac.is_empty())
        {
            return Err(bad());
        }
        // Longer than this cannot be in range; avoids overflow in the parse.
        if whole.len() > 12 {
            return Err(DropError::invalid(
                "price",
                "must be between 0 and 1000000000",
            ));
        }
        let whole: i64 = whole.parse().map_err(|_| bad())?;
        let cents: i64 = match frac.len() {
            0 => 0,
            1 => frac.parse::<i64>().map_err(|_| bad())? * 10,
            _ => frac.parse().map_err(|_| bad())?,
        };
        Self::from_minor(whole * 100 + cents)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl FromStr for Money {
    type Err = DropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_decimal(s)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;

        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative amount with at most 2 decimals")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(100))
                    .ok_or_else(|| E::custom("price is too large"))
                    .and_then(|m| Money::from_minor(m).map_err(E::custom))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                if v < 0 {
                    return Err(E::custom("price must not be negative"));
                }
                self.visit_u64(v as u64)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                if !v.is_finite() || v < 0.0 {
                    return Err(E::custom("price must be a non-negative amount"));
                }
                // Rust prints the shortest decimal that reads back as `v`,
                // which is exactly what the client wrote for any amount with
                // two decimals.
                Money::parse_decimal(&format!("{v}")).map_err(E::custom)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
                Money::parse_decimal(v).map_err(E::custom)
            }
        }

        d.deserialize_any(MoneyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_stops_at_the_largest_amount() {
        let price = Money::from_minor(MONEY_MAX_MINOR / 2).unwrap();
        assert_eq!(price.times(2).map(Money::minor), Some(MONEY_MAX_MINOR));
        assert_eq!(price.times(3), None);
        assert_eq!(Money::from_minor(250).unwrap().times(0), Some(Money::ZERO));
        assert_eq!(
            Money::from_minor(MONEY_MAX_MINOR).unwrap().times(u32::MAX),
            None
        );
    }

    #[test]
    fn parses_and_prints_exactly() {
        for (raw, minor, shown) in [
            ("199.99", 19_999, "199.99"),
            ("5", 500, "5.00"),
            ("0.5", 50, "0.50"),
            ("0", 0, "0.00"),
        ] {
            let m = Money::parse_decimal(raw).unwrap();
            assert_eq!(m.minor(), minor);
            assert_eq!(m.to_string(), shown);
        }
    }

    #[test]
    fn rejects_bad_amounts() {
        for raw in [
            "-1",
            "1.234",
            "abc",
            "",
            ".5",
            "5.",
            "1e3",
            "99999999999999",
        ] {
            assert!(Money::parse_decimal(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn json_numbers_and_strings() {
        let m: Money = serde_json::from_str("199.99").unwrap();
        assert_eq!(m.minor(), 19_999);
        let m: Money = serde_json::from_str("\"0.10\"").unwrap();
        assert_eq!(m.minor(), 10);
        let m: Money = serde_json::from_str("12").unwrap();
        assert_eq!(m.minor(), 1_200);
        assert!(serde_json::from_str::<Money>("-3").is_err());
        assert!(serde_json::from_str::<Money>("1.005").is_err());
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"12.00\"");
    }
}

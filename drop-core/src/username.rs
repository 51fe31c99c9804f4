//! The buyer's name, validated once at the edge.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::DropError;

/// Shortest accepted username, in characters.
pub const USERNAME_MIN: usize = 3;
/// Longest accepted username, in characters.
pub const USERNAME_MAX: usize = 50;

/// A validated username: trimmed, 3–50 characters of `A–Z a–z 0–9 _`.
///
/// Cheap to clone (shared string), since a store keeps one per hold and
/// one per purchase.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(pub(crate) Arc<str>);

impl Username {
    /// Validates and trims `raw`; `INVALID_INPUT` on field `username` otherwise.
    pub fn parse(raw: &str) -> Result<Self, DropError> {
        let name = raw.trim();
        let len = name.chars().count();
        if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
            return Err(DropError::invalid(
                "username",
                format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters"),
            ));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(DropError::invalid(
                "username",
                "may contain only letters, digits and underscores",
            ));
        }
        Ok(Self(Arc::from(name)))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({:?})", &*self.0)
    }
}

impl std::str::FromStr for Username {
    type Err = DropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_trims() {
        assert_eq!(Username::parse("  ann_01 ").unwrap().as_str(), "ann_01");
        assert!(Username::parse(&"a".repeat(50)).is_ok());
    }

    #[test]
    fn rejects_outside_the_rule() {
        for bad in [
            "",
            "ab",
            "  ab  ",
            "has space",
            "émile",
            "a-b-c",
            &"a".repeat(51),
        ] {
            let err = Username::parse(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_INPUT", "{bad:?}");
        }
    }
}

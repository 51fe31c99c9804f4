//! Who a buyer is to the store: an opaque id the embedding app gives, and
//! the name public feeds show instead of it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{DropError, Username};

/// Longest accepted buyer id, in bytes.
pub const BUYER_ID_MAX: usize = 128;

/// The store's key for a buyer: an opaque string of 1–128 bytes without
/// control characters, as the embedding app knows its users (a user id
/// from its own auth, a UUID, an email).
///
/// Taken as given, not trimmed: two ids that differ only in spaces are two
/// buyers, since the app, not dropkit, decides what its ids mean. It never
/// appears in anything public; feeds show the buyer's display name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct BuyerId(Arc<str>);

impl BuyerId {
    /// Checks `raw`; `INVALID_INPUT` on field `buyerId` otherwise.
    pub fn parse(raw: &str) -> Result<Self, DropError> {
        if raw.is_empty() || raw.len() > BUYER_ID_MAX {
            return Err(DropError::invalid(
                "buyerId",
                format!("must be 1 to {BUYER_ID_MAX} bytes"),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(DropError::invalid(
                "buyerId",
                "must not contain control characters",
            ));
        }
        Ok(Self(Arc::from(raw)))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A username is a valid buyer id (3–50 word characters), for callers that
/// key buyers by the name they claim. The text is shared, not copied: a
/// store keeps both on every hold.
impl From<&Username> for BuyerId {
    fn from(name: &Username) -> Self {
        Self(Arc::clone(&name.0))
    }
}

impl fmt::Display for BuyerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BuyerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BuyerId({:?})", &*self.0)
    }
}

impl std::str::FromStr for BuyerId {
    type Err = DropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for BuyerId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A buyer as a reserve names them: the id holds and purchases are keyed
/// by, and the display name public feeds show (a [`Username`]'s rules).
/// Names need not be unique: two buyers may share one.
///
/// New fields may be added in minor releases: build one with
/// [`Buyer::new`] or [`Buyer::claimed`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Buyer {
    /// The store's key for them.
    pub id: BuyerId,
    /// The name shown in public feeds.
    pub display_name: Username,
}

impl Buyer {
    /// A buyer with its id and display name.
    pub fn new(id: BuyerId, display_name: Username) -> Self {
        Self { id, display_name }
    }

    /// A buyer known only by the username they claim: it is both their id
    /// and their display name (the original, unauthenticated behaviour).
    pub fn claimed(username: Username) -> Self {
        Self {
            id: BuyerId::from(&username),
            display_name: username,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_opaque_ids_as_given() {
        for ok in [
            "a",
            "ann@example.com",
            "auth0|abc",
            "6f1c2a9e-1b7d-4c55-9a0e-3f2b8d7c6e10",
            " spaced ",
            "émile",
            &"x".repeat(BUYER_ID_MAX),
        ] {
            assert_eq!(BuyerId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_empty_long_and_control_characters() {
        for bad in [
            "",
            "tab\there",
            "nl\n",
            "nul\0",
            &"x".repeat(BUYER_ID_MAX + 1),
        ] {
            let err = BuyerId::parse(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_INPUT", "{bad:?}");
            assert_eq!(err.field(), Some("buyerId"), "{bad:?}");
        }
        // The bound is in bytes: 65 two-byte characters are 130 bytes.
        assert!(BuyerId::parse(&"é".repeat(65)).is_err());
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let id = BuyerId::parse("auth0|abc").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"auth0|abc\"");
        assert_eq!(
            serde_json::from_str::<BuyerId>("\"auth0|abc\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<BuyerId>("\"\"").is_err());
    }

    #[test]
    fn a_claimed_buyer_is_keyed_by_its_name() {
        let buyer = Buyer::claimed(Username::parse("ann_01").unwrap());
        assert_eq!(buyer.id.as_str(), "ann_01");
        assert_eq!(buyer.display_name.as_str(), "ann_01");
    }
}

//! Identifiers. All are random (v4) UUIDs: a reservation id is a bearer of
//! intent, so it must not be guessable from another one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DropError;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }

            /// Wraps an existing UUID (for stores reading ids back).
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = DropError;

            /// Parses the hyphenated UUID form; anything else is
            /// `INVALID_INPUT` naming the field.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(s.trim())
                    .map(Self)
                    .map_err(|_| DropError::invalid($field, "must be a UUID"))
            }
        }
    };
}

uuid_id!(
    /// Identifies a drop.
    DropId,
    "dropId"
);
uuid_id!(
    /// Identifies a reservation (a hold). Random and unguessable.
    ReservationId,
    "reservationId"
);
uuid_id!(
    /// Identifies a completed purchase.
    PurchaseId,
    "purchaseId"
);
uuid_id!(
    /// Identifies a variant (a size, a colour) of a drop.
    VariantId,
    "variantId"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_parse_back() {
        let a = ReservationId::new();
        let b = ReservationId::new();
        assert_ne!(a, b);
        assert_eq!(a.to_string().parse::<ReservationId>().unwrap(), a);
    }

    #[test]
    fn bad_ids_name_their_field() {
        let err = "42".parse::<DropId>().unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert!(err.to_string().contains("dropId"), "{err}");
    }
}

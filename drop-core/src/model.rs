//! Domain records: drops, holds, purchases and stock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Buyer, BuyerId, DropError, DropId, Money, NotActiveReason, PurchaseId, ReservationId, Username,
};

/// Hold duration when a drop does not choose one.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Shortest hold a drop may have (short holds are for tests and demos).
pub const MIN_HOLD: Duration = Duration::from_millis(50);
/// Longest hold a drop may have.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest stock a single drop may have.
pub const MAX_STOCK: u32 = 1_000_000;
/// Longest drop name, in characters.
pub const MAX_NAME: usize = 100;
/// Earliest `startsAt` / `endsAt` a drop may have (1970-01-01T00:00:00Z).
pub const EARLIEST_INSTANT: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// Latest `startsAt` / `endsAt` a drop may have (9999-12-31T23:59:59Z):
/// the last instant RFC 3339 writes with a four-digit year. Every store
/// can hold the instants between the two (PostgreSQL's `timestamptz` spans
/// 4713 BC to 294276 AD), so nothing valid is refused by a database.
pub const LATEST_INSTANT: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => panic!("9999-12-31T23:59:59Z is a valid instant"),
};

/// A product on sale in limited quantity: what was decided when the drop
/// was created. Its live counters are a [`Stock`]; both together are a
/// [`DropState`].
///
/// Not named `Drop`, so that `use dropkit::*` never shadows the prelude's
/// `Drop` trait. New fields may be added in minor releases: build one with
/// [`NewDrop::into_drop`] or, in a store reading its own rows,
/// [`DropInfo::new`] and the public fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DropInfo {
    /// Its id.
    pub id: DropId,
    /// Display name.
    pub name: String,
    /// Price of one unit.
    pub price: Money,
    /// Units for sale in all.
    pub total_stock: u32,
    /// Sale opens at this instant (open from creation when absent).
    pub starts_at: Option<DateTime<Utc>>,
    /// Sale closes at this instant (never when absent).
    pub ends_at: Option<DateTime<Utc>>,
    /// How long a reservation holds a unit.
    #[serde(rename = "holdSeconds", with = "hold_seconds")]
    pub hold: Duration,
    /// When the drop was created.
    pub created_at: DateTime<Utc>,
}

impl DropInfo {
    /// A drop as a store read it back: open from creation, never closing;
    /// set [`starts_at`](Self::starts_at) and [`ends_at`](Self::ends_at)
    /// afterwards. No rule is checked here: rules are checked once, by
    /// [`NewDrop::validate`], when the drop is created.
    pub fn new(
        id: DropId,
        name: impl Into<String>,
        price: Money,
        total_stock: u32,
        hold: Duration,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            price,
            total_stock,
            starts_at: None,
            ends_at: None,
            hold,
            created_at,
        }
    }

    /// `Ok` while the drop takes reservations and purchases at `now`.
    pub fn check_active(&self, now: DateTime<Utc>) -> Result<(), DropError> {
        let reason = if self.starts_at.is_some_and(|s| now < s) {
            NotActiveReason::NotStarted
        } else if self.is_ended(now) {
            NotActiveReason::Ended
        } else {
            return Ok(());
        };
        Err(DropError::DropNotActive {
            drop_id: self.id,
            reason,
        })
    }

    /// Whether the sale window has closed at `now`.
    pub fn is_ended(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|e| now >= e)
    }

    /// The expiry of a hold taken at `now`.
    pub fn hold_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.hold).unwrap_or(chrono::Duration::MAX)
    }
}

/// What a caller supplies to create a drop. Build it with [`NewDrop::new`]
/// and the setters, then hand it to a store, which calls
/// [`NewDrop::validate`]. New fields may be added in minor releases (each
/// with a default), so it cannot be built as a struct literal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewDrop {
    /// Display name (trimmed; 1–100 characters).
    pub name: String,
    /// Price of one unit.
    pub price: Money,
    /// Units for sale (1–1,000,000).
    pub total_stock: u32,
    /// Optional opening instant.
    pub starts_at: Option<DateTime<Utc>>,
    /// Optional closing instant (after `starts_at`).
    pub ends_at: Option<DateTime<Utc>>,
    /// Hold duration. Defaults to [`DEFAULT_HOLD`] (60 s).
    #[serde(
        rename = "holdSeconds",
        with = "hold_seconds",
        default = "default_hold"
    )]
    pub hold: Duration,
}

fn default_hold() -> Duration {
    DEFAULT_HOLD
}

impl NewDrop {
    /// A drop open from now on, forever, with the default hold.
    pub fn new(name: impl Into<String>, price: Money, total_stock: u32) -> Self {
        Self {
            name: name.into(),
            price,
            total_stock,
            starts_at: None,
            ends_at: None,
            hold: DEFAULT_HOLD,
        }
    }

    /// Sets the opening instant.
    pub fn starts_at(mut self, at: DateTime<Utc>) -> Self {
        self.starts_at = Some(at);
        self
    }

    /// Sets the closing instant.
    pub fn ends_at(mut self, at: DateTime<Utc>) -> Self {
        self.ends_at = Some(at);
        self
    }

    /// Sets the hold duration. Defaults to 60 s.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Checks every rule; the error names the first field that breaks one.
    pub fn validate(&self) -> Result<(), DropError> {
        let name_len = self.name.trim().chars().count();
        if name_len == 0 || name_len > MAX_NAME {
            return Err(DropError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        if self.name.trim().chars().any(char::is_control) {
            return Err(DropError::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        if self.total_stock == 0 || self.total_stock > MAX_STOCK {
            return Err(DropError::invalid(
                "totalStock",
                format!("must be between 1 and {MAX_STOCK}"),
            ));
        }
        for (field, at) in [("startsAt", self.starts_at), ("endsAt", self.ends_at)] {
            if at.is_some_and(|at| !(EARLIEST_INSTANT..=LATEST_INSTANT).contains(&at)) {
                return Err(DropError::invalid(
                    field,
                    "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
                ));
            }
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            return Err(DropError::invalid("endsAt", "must be after startsAt"));
        }
        if self.hold < MIN_HOLD || self.hold > MAX_HOLD {
            return Err(DropError::invalid(
                "holdSeconds",
                format!(
                    "must be between {} and {} seconds",
                    MIN_HOLD.as_secs_f64(),
                    MAX_HOLD.as_secs()
                ),
            ));
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and refuses a drop whose sale would
    /// already be over at `now` (the store's time of creation).
    pub fn validate_at(&self, now: DateTime<Utc>) -> Result<(), DropError> {
        self.validate()?;
        if self.ends_at.is_some_and(|e| e <= now) {
            return Err(DropError::invalid("endsAt", "must be in the future"));
        }
        Ok(())
    }

    /// Validates (at `now`) and turns this into a [`DropInfo`] created at
    /// `now`, with the name trimmed.
    pub fn into_drop(self, id: DropId, now: DateTime<Utc>) -> Result<DropInfo, DropError> {
        self.validate_at(now)?;
        Ok(DropInfo {
            id,
            name: self.name.trim().to_owned(),
            price: self.price,
            total_stock: self.total_stock,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            hold: self.hold,
            created_at: now,
        })
    }
}

/// The state of a hold. See [`crate::state`] for the allowed moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    /// Holding a unit until `expiresAt`.
    Active,
    /// Turned into a purchase (terminal).
    Purchased,
    /// Ran out of time (terminal).
    Expired,
    /// Given back by its owner (terminal).
    Released,
}

impl ReservationStatus {
    /// Whether no further transition is possible.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Active)
    }

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Purchased => "purchased",
            Self::Expired => "expired",
            Self::Released => "released",
        }
    }
}

impl std::str::FromStr for ReservationStatus {
    type Err = DropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => Self::Active,
            "purchased" => Self::Purchased,
            "expired" => Self::Expired,
            "released" => Self::Released,
            _ => return Err(DropError::invalid("status", "unknown reservation status")),
        })
    }
}

/// A hold on one unit of a drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reservation {
    /// Its id (random).
    pub id: ReservationId,
    /// The drop held.
    pub drop_id: DropId,
    /// Who holds it.
    pub buyer_id: BuyerId,
    /// The holder's display name, as given when the hold was taken.
    pub display_name: Username,
    /// Current state.
    pub status: ReservationStatus,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// When the hold runs out.
    pub expires_at: DateTime<Utc>,
}

impl Reservation {
    /// A hold as a store records it.
    pub fn new(
        id: ReservationId,
        drop_id: DropId,
        buyer: Buyer,
        status: ReservationStatus,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            drop_id,
            buyer_id: buyer.id,
            display_name: buyer.display_name,
            status,
            created_at,
            expires_at,
        }
    }

    /// Its holder, id and display name.
    pub fn buyer(&self) -> Buyer {
        Buyer::new(self.buyer_id.clone(), self.display_name.clone())
    }
}

/// The answer to a reserve: the hold, and whether this call created it
/// (`false` when the caller already held one, returned unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reserved {
    /// The caller's active hold.
    pub reservation: Reservation,
    /// Whether this call created it.
    pub created: bool,
}

impl Reserved {
    /// The answer to a reserve.
    pub fn new(reservation: Reservation, created: bool) -> Self {
        Self {
            reservation,
            created,
        }
    }
}

/// A completed purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Purchase {
    /// Its id.
    pub id: PurchaseId,
    /// The hold it completed.
    pub reservation_id: ReservationId,
    /// The drop bought from.
    pub drop_id: DropId,
    /// The buyer.
    pub buyer_id: BuyerId,
    /// The buyer's display name, as given when the hold was taken.
    pub display_name: Username,
    /// What was paid (the drop's price).
    pub amount_paid: Money,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Purchase {
    /// A purchase as a store records it.
    pub fn new(
        id: PurchaseId,
        reservation_id: ReservationId,
        drop_id: DropId,
        buyer: Buyer,
        amount_paid: Money,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            reservation_id,
            drop_id,
            buyer_id: buyer.id,
            display_name: buyer.display_name,
            amount_paid,
            created_at,
        }
    }
}

/// One entry of a drop's recent-buyers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TopPurchaser {
    /// The buyer's display name (never their id: this list is public).
    pub display_name: Username,
    /// When they bought.
    pub purchased_at: DateTime<Utc>,
}

impl TopPurchaser {
    /// One recent buyer.
    pub fn new(display_name: Username, purchased_at: DateTime<Utc>) -> Self {
        Self {
            display_name,
            purchased_at,
        }
    }
}

/// The stock counters of a drop. `available = total − reserved − sold`.
///
/// `version` grows by at least one with every committed change to the
/// counters, so a consumer receiving stock snapshots out of order keeps the
/// newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Stock {
    /// Units in all.
    pub total: u32,
    /// Units under an active hold (holds past their expiry that no one has
    /// reclaimed yet may still be counted here; they never block a reserve).
    pub reserved: u32,
    /// Units sold.
    pub sold: u32,
    /// Change counter; higher is newer.
    pub version: u64,
}

impl Stock {
    /// Counters as a store keeps them.
    pub fn new(total: u32, reserved: u32, sold: u32, version: u64) -> Self {
        Self {
            total,
            reserved,
            sold,
            version,
        }
    }

    /// Units free to reserve.
    pub fn available(&self) -> u32 {
        self.total.saturating_sub(self.reserved + self.sold)
    }
}

/// A drop with its current stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DropState {
    /// The drop.
    pub drop: DropInfo,
    /// Its counters.
    pub stock: Stock,
}

impl DropState {
    /// A drop with its counters.
    pub fn new(drop: DropInfo, stock: Stock) -> Self {
        Self { drop, stock }
    }
}

/// Serde for a hold duration as (possibly fractional) seconds.
mod hold_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_f64(d.as_secs_f64())
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| de::Error::custom("holdSeconds must be a non-negative number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn new_drop_rules() {
        let ok = NewDrop::new("Air", Money::from_minor(100).unwrap(), 10);
        assert!(ok.validate().is_ok());
        let cases = [
            (
                NewDrop {
                    name: "  ".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (
                NewDrop {
                    total_stock: 0,
                    ..ok.clone()
                },
                "totalStock",
            ),
            (
                NewDrop {
                    total_stock: MAX_STOCK + 1,
                    ..ok.clone()
                },
                "totalStock",
            ),
            (
                ok.clone()
                    .starts_at(t("2030-01-02T00:00:00Z"))
                    .ends_at(t("2030-01-01T00:00:00Z")),
                "endsAt",
            ),
            (ok.clone().hold(Duration::from_millis(1)), "holdSeconds"),
            // Instants no store can be trusted to keep: PostgreSQL stops
            // at 4713 BC; RFC 3339 at year 9999.
            (ok.clone().starts_at(t("-5000-01-01T00:00:00Z")), "startsAt"),
            (ok.clone().starts_at(t("1969-12-31T23:59:59Z")), "startsAt"),
            (ok.clone().ends_at(t("+10000-01-01T00:00:00Z")), "endsAt"),
        ];
        for (new, field) in cases {
            assert_eq!(new.validate().unwrap_err().field(), Some(field));
        }
        let edges = ok
            .clone()
            .starts_at(EARLIEST_INSTANT)
            .ends_at(LATEST_INSTANT);
        assert!(edges.validate().is_ok());
    }

    #[test]
    fn an_end_already_past_is_refused() {
        let now = t("2030-01-01T00:00:00Z");
        let ok = NewDrop::new("Air", Money::ZERO, 10);
        let past = ok.clone().ends_at(now);
        assert!(past.validate().is_ok(), "not a rule without a time");
        assert_eq!(past.validate_at(now).unwrap_err().field(), Some("endsAt"));
        assert!(
            past.clone()
                .into_drop(DropId::new(), now)
                .is_err_and(|e| e.field() == Some("endsAt"))
        );
        let later = ok.ends_at(now + chrono::Duration::microseconds(1));
        assert!(later.validate_at(now).is_ok());
    }

    #[test]
    fn window_checks() {
        let d = NewDrop::new("A", Money::ZERO, 1)
            .starts_at(t("2030-01-01T00:00:00Z"))
            .ends_at(t("2030-01-02T00:00:00Z"))
            .into_drop(DropId::new(), t("2029-01-01T00:00:00Z"))
            .unwrap();
        assert!(matches!(
            d.check_active(t("2029-12-31T23:59:59Z")),
            Err(DropError::DropNotActive {
                reason: NotActiveReason::NotStarted,
                ..
            })
        ));
        assert!(d.check_active(t("2030-01-01T00:00:00Z")).is_ok());
        assert!(matches!(
            d.check_active(t("2030-01-02T00:00:00Z")),
            Err(DropError::DropNotActive {
                reason: NotActiveReason::Ended,
                ..
            })
        ));
    }

    #[test]
    fn hold_seconds_on_the_wire() {
        let d = NewDrop::new("A", Money::ZERO, 1).hold(Duration::from_millis(1500));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["holdSeconds"], 1.5);
        let back: NewDrop = serde_json::from_value(v).unwrap();
        assert_eq!(back.hold, Duration::from_millis(1500));
    }
}

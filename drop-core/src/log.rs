//! The durable event log: every committed change, numbered store-wide.
//!
//! A store appends one [`LogEntry`] per change in the same transaction as
//! the change (the memory store: under the same lock), numbered by a
//! store-wide sequence ([`LogEntry::seq`]). A consumer follows the log with
//! [`InventoryStore::events_after`](crate::InventoryStore::events_after):
//! **it never misses an entry by reading after its cursor**. Numbers may
//! skip (a transaction that rolled back after taking a number leaves a
//! hole), but an entry never becomes visible after an entry with a higher
//! number has been seen: a store makes numbering order and visibility
//! order the same.
//!
//! Unlike the in-process [`DropEvent`](crate::DropEvent) stream, the log
//! survives restarts and is shared by every instance of a store; stock
//! counters are not logged (they are state, derived from these changes).
//!
//! Named consumers (the webhooks of `web_drop`, for one) keep their
//! position in the store as a [cursor](crate::InventoryStore::claim_cursor),
//! leased to one holder at a time, so a restart or another instance goes
//! on where delivery stopped. Entries older than the retention
//! ([`DEFAULT_EVENT_RETENTION`]) are pruned, but never one that a cursor
//! has not passed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BuyerId, DropId, DropInfo, Money, PurchaseId, ReservationId, Username, VariantId};

/// How long a store keeps log entries by default: 30 days. Entries a
/// cursor has not passed are kept longer.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Most entries one [`events_after`](crate::InventoryStore::events_after)
/// call returns.
pub const MAX_LOG_PAGE: usize = 1_000;

/// Longest cursor name a store accepts.
pub const CURSOR_NAME_MAX: usize = 200;

/// One committed change, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LogEntry {
    /// Its number: store-wide, increasing in the order entries become
    /// visible (possibly with holes).
    pub seq: u64,
    /// When the change committed, by the store's clock.
    pub at: DateTime<Utc>,
    /// The drop it concerns.
    pub drop_id: DropId,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

impl LogEntry {
    /// An entry as a store reads it back.
    pub fn new(seq: u64, at: DateTime<Utc>, drop_id: DropId, change: Change) -> Self {
        Self {
            seq,
            at,
            drop_id,
            change,
        }
    }
}

/// What an admin did to a drop, in a [`Change::DropUpdated`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum DropAction {
    /// Its fields were edited (`PATCH`).
    Edited,
    /// It was paused.
    Paused,
    /// It was resumed.
    Resumed,
    /// It was ended now.
    Ended,
}

/// A committed change, as the log keeps it. On the wire (JSON) it is
/// flattened into its [`LogEntry`], tagged by `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum Change {
    /// A drop was created.
    DropCreated {
        /// The drop as created.
        drop: DropInfo,
    },
    /// An admin changed a drop (and nothing is logged for a change that
    /// changed nothing, such as pausing a paused drop).
    DropUpdated {
        /// What was done.
        action: DropAction,
        /// The drop after the change.
        drop: DropInfo,
    },
    /// A hold was taken.
    HoldCreated {
        /// The hold.
        reservation_id: ReservationId,
        /// Who holds it.
        buyer_id: BuyerId,
        /// Their display name when they took it.
        display_name: Username,
        /// The variant held.
        variant_id: VariantId,
        /// How many units.
        quantity: u32,
        /// When it runs out.
        expires_at: DateTime<Utc>,
        /// Whether it was offered from the waiting list (absent in entries
        /// written before there was one).
        #[serde(default)]
        offered: bool,
    },
    /// A hold was bought.
    PurchaseCompleted {
        /// The purchase made.
        purchase_id: PurchaseId,
        /// The hold it completed.
        reservation_id: ReservationId,
        /// Who bought.
        buyer_id: BuyerId,
        /// Their display name when they held it.
        display_name: Username,
        /// The variant bought.
        variant_id: VariantId,
        /// How many units.
        quantity: u32,
        /// What was paid (price × quantity).
        amount: Money,
    },
    /// A hold was given back by its owner.
    HoldReleased {
        /// The hold.
        reservation_id: ReservationId,
        /// Who held it.
        buyer_id: BuyerId,
        /// The variant.
        variant_id: VariantId,
        /// How many units went back.
        quantity: u32,
    },
    /// A hold ran out of time and its units went back.
    HoldExpired {
        /// The hold.
        reservation_id: ReservationId,
        /// Who held it.
        buyer_id: BuyerId,
        /// The variant.
        variant_id: VariantId,
        /// How many units went back.
        quantity: u32,
    },
    /// An admin cancelled a purchase; its units went back.
    PurchaseCancelled {
        /// The purchase.
        purchase_id: PurchaseId,
        /// The hold it had completed.
        reservation_id: ReservationId,
        /// Who had bought it.
        buyer_id: BuyerId,
        /// The variant.
        variant_id: VariantId,
        /// How many units went back.
        quantity: u32,
        /// What had been paid (to refund).
        amount: Money,
    },
    /// A buyer joined a variant's waiting list.
    WaitlistJoined {
        /// Who joined.
        buyer_id: BuyerId,
        /// Their display name when they joined.
        display_name: Username,
        /// The variant waited for.
        variant_id: VariantId,
        /// How many units they want.
        quantity: u32,
        /// Their place's ticket: the line's order.
        ticket: u64,
    },
    /// A buyer left a variant's waiting list. Everyone behind them in
    /// that line moved up one place.
    WaitlistLeft {
        /// Who left.
        buyer_id: BuyerId,
        /// The variant.
        variant_id: VariantId,
        /// The quantity they had asked for.
        quantity: u32,
        /// The ticket of the place they had.
        ticket: u64,
        /// Why they left.
        reason: crate::LeaveReason,
    },
    /// A draw drop drew ([`crate::entry`]). The winners' holds are logged
    /// before it, one [`HoldCreated`](Self::HoldCreated) each; the places
    /// it put in line are not logged one by one: the published draw
    /// ([`draw_status`](crate::InventoryStore::draw_status)) lists them.
    DrawCompleted {
        /// When it was drawn.
        drawn_at: DateTime<Utc>,
        /// Entries drawn from.
        entries: u32,
        /// Entries that won a unit.
        winners: u32,
        /// Entries put in a line.
        waiting: u32,
    },
}

impl Change {
    /// The `type` tag this change has on the wire, e.g. `"holdCreated"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::DropCreated { .. } => "dropCreated",
            Self::DropUpdated { .. } => "dropUpdated",
            Self::HoldCreated { .. } => "holdCreated",
            Self::PurchaseCompleted { .. } => "purchaseCompleted",
            Self::HoldReleased { .. } => "holdReleased",
            Self::HoldExpired { .. } => "holdExpired",
            Self::PurchaseCancelled { .. } => "purchaseCancelled",
            Self::WaitlistJoined { .. } => "waitlistJoined",
            Self::WaitlistLeft { .. } => "waitlistLeft",
            Self::DrawCompleted { .. } => "drawCompleted",
        }
    }

    /// The buyer the change is about, when it is about one.
    pub fn buyer_id(&self) -> Option<&BuyerId> {
        match self {
            Self::DropCreated { .. } | Self::DropUpdated { .. } | Self::DrawCompleted { .. } => {
                None
            }
            Self::HoldCreated { buyer_id, .. }
            | Self::PurchaseCompleted { buyer_id, .. }
            | Self::HoldReleased { buyer_id, .. }
            | Self::HoldExpired { buyer_id, .. }
            | Self::PurchaseCancelled { buyer_id, .. }
            | Self::WaitlistJoined { buyer_id, .. }
            | Self::WaitlistLeft { buyer_id, .. } => Some(buyer_id),
        }
    }
}

/// Every `type` a [`Change`] can have, in declaration order.
pub const CHANGE_KINDS: &[&str] = &[
    "dropCreated",
    "dropUpdated",
    "holdCreated",
    "purchaseCompleted",
    "holdReleased",
    "holdExpired",
    "purchaseCancelled",
    "waitlistJoined",
    "waitlistLeft",
    "drawCompleted",
];

/// A named consumer's position in the log, as
/// [`claim_cursor`](crate::InventoryStore::claim_cursor) hands it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CursorClaim {
    /// The last entry the consumer has finished with: read from
    /// `events_after(position, …)` on.
    pub position: u64,
    /// Whether this claim made the cursor: no consumer of that name had
    /// one. A consumer that wants only what happens from now on moves a
    /// cursor it made to the log's head before reading; one that it did
    /// not make is another instance's work, to be gone on with.
    pub created: bool,
}

impl CursorClaim {
    /// A claim of an existing cursor at `position`.
    pub fn new(position: u64) -> Self {
        Self {
            position,
            created: false,
        }
    }

    /// The claim that made the cursor, at `position`.
    pub fn created(position: u64) -> Self {
        Self {
            position,
            created: true,
        }
    }
}

/// A named cursor as the store keeps it ([`InventoryStore::cursors`]):
/// what an operator looks at to find a consumer that is gone for good, whose
/// cursor keeps every entry after its position from being pruned.
///
/// [`InventoryStore::cursors`]: crate::InventoryStore::cursors
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CursorInfo {
    /// The cursor's name (a webhook endpoint's is `webhook:<url>`).
    pub name: String,
    /// The last entry its consumer finished with: retention keeps every
    /// entry above it.
    pub position: u64,
    /// Whether a holder's lease is running now (a consumer is at work).
    pub held: bool,
    /// When the last lease given ends or ended; `None` when the holder
    /// gave it up (or nobody ever claimed it).
    pub lease_until: Option<DateTime<Utc>>,
}

impl CursorInfo {
    /// A cursor's description.
    pub fn new(
        name: impl Into<String>,
        position: u64,
        held: bool,
        lease_until: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            name: name.into(),
            position,
            held,
            lease_until,
        }
    }
}

/// Checks a cursor name: 1 to [`CURSOR_NAME_MAX`] bytes, no control
/// characters. `INVALID_INPUT` (field `cursor`) otherwise.
pub fn check_cursor_name(name: &str) -> Result<(), crate::DropError> {
    if name.is_empty() || name.len() > CURSOR_NAME_MAX || name.chars().any(char::is_control) {
        return Err(crate::DropError::invalid(
            "cursor",
            "must be 1 to 200 bytes without control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_wire_tags() {
        let change = Change::HoldExpired {
            reservation_id: ReservationId::new(),
            buyer_id: BuyerId::parse("b1").unwrap(),
            variant_id: VariantId::new(),
            quantity: 2,
        };
        let json = serde_json::to_value(LogEntry::new(
            7,
            DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap(),
            DropId::new(),
            change.clone(),
        ))
        .unwrap();
        assert_eq!(json["type"], "holdExpired");
        assert_eq!(json["seq"], 7);
        assert_eq!(json["quantity"], 2);
        assert!(CHANGE_KINDS.contains(&change.kind()));
        let back: LogEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back.change, change);
    }

    #[test]
    fn cursor_names_are_checked() {
        assert!(check_cursor_name("webhook:https://shop.example/hook").is_ok());
        assert!(check_cursor_name("").is_err());
        assert!(check_cursor_name("a\nb").is_err());
        assert!(check_cursor_name(&"x".repeat(201)).is_err());
    }
}

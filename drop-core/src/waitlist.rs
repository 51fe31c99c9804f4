//! The waiting list: who gets a unit when one frees up.
//!
//! First come, first served rewards whoever's request lands next when a
//! hold runs out, usually a script refreshing in a loop. A drop with its
//! waiting list on (the default, [`DropInfo::waitlist`](crate::DropInfo::waitlist))
//! serves freed units in the order buyers asked for them instead.
//!
//! # The rules every store follows
//!
//! - **One line per variant.** A buyer stands in at most one line per
//!   drop, asking for a quantity (1 to `maxPerBuyer`). Each place gets a
//!   store-wide, increasing [`ticket`](WaitlistPlace::ticket); the line's
//!   order is the tickets' order.
//! - **Joining** ([`join_waitlist`](crate::InventoryStore::join_waitlist))
//!   is for a variant that cannot serve the request now: checked in the
//!   order `DROP_NOT_FOUND`; the request against the drop (as a reserve);
//!   `WAITLIST_CLOSED` (the drop's line is off); `DROP_NOT_ACTIVE`,
//!   `DROP_PAUSED`; `DRAW_ONLY` (a draw drop before its draw, whose
//!   losers are put in line by the draw itself); the buyer's place in a line of this drop (the same
//!   variant and quantity answer it unchanged, anything else is
//!   `ALREADY_IN_LINE` carrying it); `HOLD_EXISTS` (a buyer holding units
//!   of the drop buys or releases them first); `BUYER_LIMIT_REACHED`;
//!   `WAITLIST_NOT_NEEDED` when, after reclaiming overdue holds, a reserve
//!   of the same request would succeed.
//! - **Freed units go to the head of the line.** Units freed by an expiry
//!   (swept or reclaimed lazily), a release, a cancelled purchase, added
//!   stock or a head leaving the line are, while the variant's line is not
//!   empty, *set aside* for its head until the head's quantity is covered;
//!   then the head gets them as one **offered hold** ([`Reservation::offered`](crate::Reservation::offered)),
//!   a normal hold with the drop's hold window, made in the same critical
//!   section or transaction that freed the units, and leaves the line
//!   ([`LeaveReason::Offered`]). Units left over go to the next head, and
//!   so on; when the line is empty, what is left goes back on open sale.
//! - **Skipping.** A head who meanwhile holds units of the drop, or whose
//!   units bought plus the quantity asked would exceed `maxPerBuyer`, is
//!   skipped: they leave the line ([`LeaveReason::Skipped`]) and the next
//!   head is served.
//! - **No line-cutting.** Set-aside units count as reserved, so while
//!   anyone waits for a variant its `available` stock is 0 and a plain
//!   reserve answers `OUT_OF_STOCK`.
//! - **When offers are made.** Only while the sale is open (after its
//!   start, before its end); a pause stops open sale, not the line. Units
//!   freed after the end stay set aside.
//! - An offered hold that runs out frees its units like any other: they
//!   go to the next in line. The buyer it was offered to is not put back.
//!
//! Every join and leave is a logged change ([`Change::WaitlistJoined`](crate::Change::WaitlistJoined),
//! [`Change::WaitlistLeft`](crate::Change::WaitlistLeft)) and an event, and
//! every change of a line's length is a
//! [`StockChanged`](crate::DropEvent::StockChanged) (each variant's
//! [`waitlist_length`](crate::VariantStock::waitlist_length)).
//!
//! A buyer's place moves up by one each time someone ahead of them
//! leaves: a client that knows its ticket can follow its place from the
//! public `waitlistLeft` changes alone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{BuyerId, DropId, Username, VariantId};

/// A buyer's place in a variant's line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WaitlistPlace {
    /// The drop.
    pub drop_id: DropId,
    /// The variant waited for.
    pub variant_id: VariantId,
    /// Who waits.
    pub buyer_id: BuyerId,
    /// Their display name when they joined.
    pub display_name: Username,
    /// How many units they want (offered as one hold).
    pub quantity: u32,
    /// Orders the line: store-wide, increasing, never reused.
    pub ticket: u64,
    /// 1 for the head of the line.
    pub position: u32,
    /// Units already set aside for them (only the head has any; fewer
    /// than `quantity`, or they would have been offered).
    pub set_aside: u32,
    /// When they joined, by the store's clock.
    pub joined_at: DateTime<Utc>,
}

impl WaitlistPlace {
    /// A place as a store reads it back: at the head, nothing set aside;
    /// set [`position`](Self::position) and [`set_aside`](Self::set_aside)
    /// afterwards.
    pub fn new(
        drop_id: DropId,
        variant_id: VariantId,
        buyer: crate::Buyer,
        quantity: u32,
        ticket: u64,
        joined_at: DateTime<Utc>,
    ) -> Self {
        Self {
            drop_id,
            variant_id,
            buyer_id: buyer.id,
            display_name: buyer.display_name,
            quantity,
            ticket,
            position: 1,
            set_aside: 0,
            joined_at,
        }
    }
}

/// Why a buyer left a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum LeaveReason {
    /// They left ([`leave_waitlist`](crate::InventoryStore::leave_waitlist)).
    Left,
    /// Their turn came: they were offered a hold.
    Offered,
    /// Their turn came, but they held units of the drop or had reached
    /// `maxPerBuyer`.
    Skipped,
}

impl LeaveReason {
    /// The wire name: `"left"`, `"offered"` or `"skipped"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Offered => "offered",
            Self::Skipped => "skipped",
        }
    }
}

impl std::str::FromStr for LeaveReason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "left" => Ok(Self::Left),
            "offered" => Ok(Self::Offered),
            "skipped" => Ok(Self::Skipped),
            other => Err(format!("unknown waitlist leave reason {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip() {
        for r in [
            LeaveReason::Left,
            LeaveReason::Offered,
            LeaveReason::Skipped,
        ] {
            assert_eq!(r.as_str().parse::<LeaveReason>().unwrap(), r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}

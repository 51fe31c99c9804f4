//! What the store keeps beside the drops themselves, and which a drop's
//! critical section writes before its lock is released: the id indexes,
//! each buyer's purchases and the idempotency records. Each has a lock of
//! its own, always taken after a drop's lock and never the other way
//! round.

use drop_core::{PurchaseId, ReservationId};

use crate::buyers::BuyerPurchases;
use crate::index::DropIndex;
use crate::records::Records;

#[derive(Debug)]
pub(crate) struct Shared {
    /// The drop of every hold kept.
    pub(crate) reservations: DropIndex<ReservationId>,
    /// The drop of every purchase.
    pub(crate) purchases: DropIndex<PurchaseId>,
    /// Each buyer's purchases across drops.
    pub(crate) buyers: BuyerPurchases,
    /// Idempotency records.
    pub(crate) records: Records,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            reservations: DropIndex::new(),
            purchases: DropIndex::new(),
            buyers: BuyerPurchases::new(),
            records: Records::new(),
        }
    }
}

//! What the store keeps beside the drops themselves, and which a drop's
//! critical section writes before its lock is released: the id indexes,
//! each buyer's purchases, the idempotency records, the event log and the
//! waiting lists' ticket counter. Each
//! has a lock of its own, always taken after a drop's lock and never the
//! other way round; none of them is held while another of them is taken,
//! except the records' lock, which a drop's creation holds while it
//! appends to the log.

use std::sync::atomic::Ordering;

use chrono::TimeDelta;
use drop_core::{PurchaseId, ReservationId};

use crate::buyers::BuyerPurchases;
use crate::index::DropIndex;
use crate::log::EventLog;
use crate::records::Records;
use crate::sync::AtomicU64;

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
    /// Every committed change, numbered store-wide.
    pub(crate) log: EventLog,
    /// The last waiting-list ticket handed out (0 before any).
    tickets: AtomicU64,
}

impl Shared {
    /// `log_retention`: how long log entries are kept at least.
    pub(crate) fn new(log_retention: TimeDelta) -> Self {
        Self {
            reservations: DropIndex::new(),
            purchases: DropIndex::new(),
            buyers: BuyerPurchases::new(),
            records: Records::new(),
            log: EventLog::new(log_retention),
            tickets: AtomicU64::new(0),
        }
    }

    /// A new waiting-list ticket: store-wide, increasing, never reused.
    /// Drawn under the joining drop's lock, so within one drop tickets
    /// also follow the order of the joins.
    pub(crate) fn next_ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `n` consecutive new tickets, answering the first: a draw's places,
    /// handed out under the drop's lock as one block.
    pub(crate) fn next_tickets(&self, n: u64) -> u64 {
        self.tickets.fetch_add(n, Ordering::Relaxed) + 1
    }
}

//! One drop and everything about it, behind its own lock.
//!
//! All of a drop's holds, purchases and counters live under one
//! `Mutex`, so a reserve is one short, synchronous critical section that
//! touches no other drop: a hot drop never slows the others.
//!
//! Ended holds (released, expired) are kept for a retention period so a
//! client can still look its hold up, then pruned a few at a time by the
//! operations on the drop, so reserve/release churn does not grow memory
//! without bound. Purchased holds are records and are never pruned.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    Buyer, BuyerId, DropError, DropEvent, DropInfo, DropState, Purchase, PurchaseId, Reservation,
    ReservationId, ReservationStatus, Reserved, Stock, TopPurchaser, Transition, next_status,
};

use crate::index::ReservationIndex;
use crate::sync::{Mutex, MutexGuard, lock};

/// Most ended holds one operation prunes beyond those it ended itself, so
/// a backlog that comes due at once is spread over later operations
/// instead of stalling one of them.
const PRUNE_BATCH: usize = 64;

#[derive(Debug)]
pub(crate) struct DropCell {
    pub(crate) drop: DropInfo,
    state: Mutex<DropInner>,
    /// Where reservation ids are found; written under this drop's lock so
    /// an id is findable before anyone can be told it.
    index: Arc<ReservationIndex>,
    /// How long an ended hold stays visible after its `expiresAt`.
    retention: TimeDelta,
}

#[derive(Debug, Default)]
pub(crate) struct DropInner {
    reserved: u32,
    sold: u32,
    version: u64,
    /// Every hold taken on this drop that is active, purchased, or ended
    /// less than the retention ago (a client may look its hold up after
    /// it ends).
    holds: HashMap<ReservationId, Reservation>,
    /// The active hold of each buyer: at most one (invariant 4).
    active_by_user: HashMap<BuyerId, ReservationId>,
    /// Active holds by expiry, earliest first.
    due: BTreeSet<(DateTime<Utc>, ReservationId)>,
    /// Purchases in commit order.
    purchases: Vec<Purchase>,
    /// Released and expired holds still kept, by `expiresAt`: the
    /// retention counts from there, so it needs no extra timestamp.
    ended: BTreeSet<(DateTime<Utc>, ReservationId)>,
}

impl DropCell {
    pub(crate) fn new(drop: DropInfo, index: Arc<ReservationIndex>, retention: TimeDelta) -> Self {
        Self {
            drop,
            state: Mutex::new(DropInner::default()),
            index,
            retention,
        }
    }

    /// Whether `hold` ended so long ago that it counts as pruned, whether
    /// or not it has been removed yet (so answers do not depend on when
    /// pruning ran).
    fn forgotten(&self, hold: &Reservation, now: DateTime<Utc>) -> bool {
        matches!(
            hold.effective_status(now),
            ReservationStatus::Released | ReservationStatus::Expired
        ) && hold
            .expires_at
            .checked_add_signed(self.retention)
            .is_some_and(|gone| now >= gone)
    }

    /// Removes up to `extra` + [`PRUNE_BATCH`] holds whose retention is over.
    fn prune(&self, g: &mut DropInner, now: DateTime<Utc>, extra: usize) {
        let Some(cutoff) = now.checked_sub_signed(self.retention) else {
            return;
        };
        for _ in 0..extra.saturating_add(PRUNE_BATCH) {
            match g.ended.first() {
                Some(&(at, id)) if at <= cutoff => {
                    g.ended.pop_first();
                    g.holds.remove(&id);
                    self.index.remove(id);
                }
                _ => break,
            }
        }
    }

    fn inner(&self) -> MutexGuard<'_, DropInner> {
        lock(&self.state)
    }

    /// The drop and its stock as clients should see it at `now`: holds
    /// past their time count as free even before they are swept.
    pub(crate) fn state(&self, now: DateTime<Utc>) -> DropState {
        let g = self.inner();
        let mut stock = g.stock(&self.drop);
        let overdue = g.due.iter().take_while(|(at, _)| *at <= now).count();
        stock.reserved -= u32::try_from(overdue).expect("overdue holds fit the stock");
        DropState::new(self.drop.clone(), stock)
    }

    /// Reserves one unit for `buyer` at `now`; `events` receives what
    /// committed (also on `OUT_OF_STOCK`, when overdue holds were reclaimed).
    pub(crate) fn reserve(
        &self,
        id: ReservationId,
        buyer: &Buyer,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Reserved, DropError> {
        self.drop.check_active(now)?;
        let mut g = self.inner();
        self.prune(&mut g, now, 0);
        if let Some(existing) = g.active_by_user.get(&buyer.id).map(|rid| &g.holds[rid])
            && !existing.is_due(now)
        {
            return Ok(Reserved::new(existing.clone(), false));
        }
        // Reclaim overdue holds (the user's own included) before counting,
        // so a hold past its time never blocks anyone (invariant 2).
        let changed = g.expire_due(&self.drop, now, usize::MAX, events) > 0;
        if g.reserved + g.sold >= self.drop.total_stock {
            if changed {
                g.push_stock(&self.drop, events);
            }
            return Err(DropError::OutOfStock {
                drop_id: self.drop.id,
            });
        }
        let hold = Reservation::new(
            id,
            self.drop.id,
            buyer.clone(),
            ReservationStatus::Active,
            now,
            self.drop.hold_expiry(now),
        );
        g.reserved += 1;
        g.active_by_user.insert(buyer.id.clone(), id);
        g.due.insert((hold.expires_at, id));
        g.holds.insert(id, hold.clone());
        // Still under the drop lock: from the moment a concurrent reserve or
        // `active_hold` of this user can see the hold, a purchase can find it.
        self.index.insert(id, self.drop.id);
        events.push(DropEvent::HoldCreated {
            drop_id: self.drop.id,
            reservation_id: id,
            buyer_id: buyer.id.clone(),
            expires_at: hold.expires_at,
        });
        g.push_stock(&self.drop, events);
        Ok(Reserved::new(hold, true))
    }

    /// Moves hold `id` by `transition` on behalf of `buyer`.
    pub(crate) fn transition(
        &self,
        id: ReservationId,
        transition: Transition,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<(Reservation, Option<Purchase>), DropError> {
        let mut g = self.inner();
        self.prune(&mut g, now, 0);
        let hold = g
            .holds
            .get(&id)
            .filter(|h| !self.forgotten(h, now))
            .ok_or(DropError::ReservationNotFound { reservation_id: id })?;
        let to = next_status(hold, transition, Some(buyer), now)?;
        let purchase = (to == ReservationStatus::Purchased).then(|| {
            Purchase::new(
                PurchaseId::new(),
                id,
                self.drop.id,
                hold.buyer(),
                self.drop.price,
                now,
            )
        });
        let hold = g.finish(id, to);
        match &purchase {
            Some(p) => {
                g.sold += 1;
                g.purchases.push(p.clone());
                g.push_stock(&self.drop, events);
                events.push(DropEvent::PurchaseCompleted {
                    drop_id: self.drop.id,
                    reservation_id: id,
                    buyer_id: p.buyer_id.clone(),
                    display_name: p.display_name.clone(),
                    top_purchasers: g.top(drop_core::TOP_PURCHASERS),
                });
            }
            None => {
                events.push(DropEvent::HoldReleased {
                    drop_id: self.drop.id,
                    reservation_id: id,
                    buyer_id: hold.buyer_id.clone(),
                });
                g.push_stock(&self.drop, events);
            }
        }
        Ok((hold, purchase))
    }

    /// Expires up to `limit` due holds; returns how many.
    pub(crate) fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        events: &mut Vec<DropEvent>,
    ) -> usize {
        let mut g = self.inner();
        let n = g.expire_due(&self.drop, now, limit, events);
        if n > 0 {
            g.push_stock(&self.drop, events);
        }
        self.prune(&mut g, now, n);
        n
    }

    pub(crate) fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.inner().due.first().map(|(at, _)| *at)
    }

    /// A hold with its status as time sees it.
    pub(crate) fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Option<Reservation> {
        self.inner()
            .holds
            .get(&id)
            .filter(|h| !self.forgotten(h, now))
            .map(|h| {
                let mut hold = h.clone();
                hold.status = h.effective_status(now);
                hold
            })
    }

    pub(crate) fn active_hold(&self, buyer: &BuyerId, now: DateTime<Utc>) -> Option<Reservation> {
        let g = self.inner();
        let hold = &g.holds[g.active_by_user.get(buyer)?];
        (!hold.is_due(now)).then(|| hold.clone())
    }

    /// How many holds this drop keeps in memory.
    pub(crate) fn kept_holds(&self) -> usize {
        self.inner().holds.len()
    }

    pub(crate) fn top_purchasers(&self, limit: usize) -> Vec<TopPurchaser> {
        self.inner().top(limit)
    }

    /// Checks the counters against the records; describes the first mismatch.
    pub(crate) fn verify(&self) -> Result<(), String> {
        let g = self.inner();
        let id = self.drop.id;
        let count = |s| g.holds.values().filter(|h| h.status == s).count();
        let active = count(ReservationStatus::Active);
        let purchased = count(ReservationStatus::Purchased);
        if g.reserved as usize != active {
            return Err(format!(
                "drop {id}: reserved {} but {active} active holds",
                g.reserved
            ));
        }
        if g.sold as usize != purchased || purchased != g.purchases.len() {
            return Err(format!(
                "drop {id}: sold {}, {purchased} purchased holds, {} purchases",
                g.sold,
                g.purchases.len()
            ));
        }
        if g.reserved + g.sold > self.drop.total_stock {
            return Err(format!("drop {id}: oversold"));
        }
        let ended = g.holds.len() - active - purchased;
        if g.ended.len() != ended {
            return Err(format!(
                "drop {id}: {} kept ended holds indexed but {ended} kept",
                g.ended.len()
            ));
        }
        if g.active_by_user.len() != active || g.due.len() != active {
            return Err(format!(
                "drop {id}: indexes disagree with {active} active holds"
            ));
        }
        for p in &g.purchases {
            if g.holds.get(&p.reservation_id).map(|h| h.status)
                != Some(ReservationStatus::Purchased)
            {
                return Err(format!(
                    "drop {id}: purchase {} without a purchased hold",
                    p.id
                ));
            }
        }
        Ok(())
    }
}

impl DropInner {
    fn stock(&self, drop: &DropInfo) -> Stock {
        Stock::new(drop.total_stock, self.reserved, self.sold, self.version)
    }

    /// Records a change of the counters and announces the new stock.
    fn push_stock(&mut self, drop: &DropInfo, events: &mut Vec<DropEvent>) {
        self.version += 1;
        events.push(DropEvent::StockChanged {
            drop_id: drop.id,
            stock: self.stock(drop),
        });
    }

    /// Ends an active hold in `to`, keeping the indexes in step.
    fn finish(&mut self, id: ReservationId, to: ReservationStatus) -> Reservation {
        let hold = self.holds.get_mut(&id).expect("hold exists");
        debug_assert_eq!(hold.status, ReservationStatus::Active);
        hold.status = to;
        let hold = hold.clone();
        self.reserved -= 1;
        self.active_by_user.remove(&hold.buyer_id);
        self.due.remove(&(hold.expires_at, id));
        if to != ReservationStatus::Purchased {
            self.ended.insert((hold.expires_at, id));
        }
        hold
    }

    fn expire_due(
        &mut self,
        drop: &DropInfo,
        now: DateTime<Utc>,
        limit: usize,
        events: &mut Vec<DropEvent>,
    ) -> usize {
        let mut n = 0;
        while n < limit {
            match self.due.first() {
                Some(&(at, id)) if at <= now => {
                    self.finish(id, ReservationStatus::Expired);
                    events.push(DropEvent::HoldExpired {
                        drop_id: drop.id,
                        reservation_id: id,
                    });
                    n += 1;
                }
                _ => break,
            }
        }
        n
    }

    fn top(&self, limit: usize) -> Vec<TopPurchaser> {
        self.purchases
            .iter()
            .rev()
            .take(limit)
            .map(|p| TopPurchaser::new(p.display_name.clone(), p.created_at))
            .collect()
    }
}

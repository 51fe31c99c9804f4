//! One drop and everything about it, behind its own lock.
//!
//! All of a drop's holds, purchases and counters (a [`Ledger`]) live under
//! one `Mutex`, so every write is one short, synchronous critical section
//! that touches no other drop: a hot drop never slows the others. A keyed
//! write claims and records its idempotency key inside the same critical
//! section as its change.
//!
//! Ended holds (released, expired) are kept for a retention period so a
//! client can still look its hold up, then pruned a few at a time by the
//! operations on the drop, so reserve/release churn does not grow memory
//! without bound. Purchased holds are records and are never pruned. A hold
//! an idempotency record names is kept past its retention (hidden from
//! every read but the record's replay) until the record goes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    Applied, Buyer, BuyerId, DropAction, DropError, DropEvent, DropId, DropInfo, DropPatch,
    DropState, IdempotencyKey, Purchase, PurchaseId, Purchased, Recorded, Reservation,
    ReservationId, ReservationStatus, ReserveRequest, Reserved, TopPurchaser, VariantStock,
    WaitlistPlace,
};
use drop_core::{Beacon, DrawStatus, DrawSummary, Entry, Receipt, Seed, VariantId};

use crate::ledger::Ledger;
use crate::records::{Claim, Keyed};
use crate::shared::Shared;
use crate::sync::{Mutex, MutexGuard, lock};

/// Most ended holds one operation prunes beyond those it ended itself, so
/// a backlog that comes due at once is spread over later operations
/// instead of stalling one of them.
const PRUNE_BATCH: usize = 64;

#[derive(Debug)]
pub(crate) struct DropCell {
    pub(crate) id: DropId,
    /// Creation time, fixed: lists sort by it without taking the lock.
    pub(crate) created_at: DateTime<Utc>,
    state: Mutex<Inner>,
    /// Indexes and records written under this drop's lock, so an id is
    /// findable before anyone can be told it.
    shared: Arc<Shared>,
    /// How long an ended hold stays visible after its `expiresAt`.
    retention: TimeDelta,
}

#[derive(Debug)]
struct Inner {
    ledger: Ledger,
    /// Holds idempotency records name, with how many records name each.
    pinned: HashMap<ReservationId, u32>,
    /// Pinned holds past their retention: kept for replays only.
    kept_for_replay: HashSet<ReservationId>,
}

impl DropCell {
    /// `seed`: a draw drop's secret, drawn at its creation.
    pub(crate) fn new(
        drop: DropInfo,
        variants: Vec<VariantStock>,
        seed: Option<Seed>,
        shared: Arc<Shared>,
        retention: TimeDelta,
    ) -> Self {
        Self {
            id: drop.id,
            created_at: drop.created_at,
            state: Mutex::new(Inner {
                ledger: Ledger::new(drop, variants, seed),
                pinned: HashMap::new(),
                kept_for_replay: HashSet::new(),
            }),
            shared,
            retention,
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
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

    /// Removes up to `extra` + [`PRUNE_BATCH`] holds whose retention is
    /// over; a pinned one stays, for its record's replay.
    fn prune(&self, g: &mut Inner, now: DateTime<Utc>, extra: usize) {
        let Some(cutoff) = now.checked_sub_signed(self.retention) else {
            return;
        };
        for _ in 0..extra.saturating_add(PRUNE_BATCH) {
            match g.ledger.ended.first() {
                Some(&(at, id)) if at <= cutoff => {
                    g.ledger.ended.pop_first();
                    if g.pinned.contains_key(&id) {
                        g.kept_for_replay.insert(id);
                    } else {
                        g.ledger.holds.remove(&id);
                        self.shared.reservations.remove(id);
                    }
                }
                _ => break,
            }
        }
    }

    /// Runs a write under the drop's lock; with a key, claims it first
    /// (a recorded key answers [`Keyed::Replay`] without acting) and
    /// records what the write did, in the same critical section. What the
    /// write committed (the events it added to `events`) is appended to
    /// the log there too; `action` names an admin write's `DropUpdated`.
    fn write<T>(
        &self,
        key: Option<&IdempotencyKey>,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
        action: Option<DropAction>,
        act: impl FnOnce(&mut Ledger, &mut Vec<DropEvent>) -> Result<T, DropError>,
        recorded: impl FnOnce(&T) -> (Recorded, bool),
    ) -> Result<Keyed<T>, DropError> {
        let mut g = self.inner();
        let claim = match key {
            Some(key) => match self.shared.records.claim(key)? {
                Claim::Replay(record) => return Ok(Keyed::Replay(record)),
                Claim::Fresh(claim) => Some(claim),
            },
            None => None,
        };
        self.prune(&mut g, now, 0);
        let start = events.len();
        let result = act(&mut g.ledger, events);
        // Logged whatever the answer: a refused reserve may still have
        // reclaimed overdue holds, and those expiries committed.
        self.log(&mut g.ledger, &events[start..], action, now);
        // A refusal drops the claim, which frees the key: nothing recorded.
        let value = result?;
        if let Some(claim) = claim {
            let (entity, created) = recorded(&value);
            if let Recorded::Reservation(id) = entity {
                *g.pinned.entry(id).or_default() += 1;
            }
            claim.complete(entity, created, now);
        }
        Ok(Keyed::Acted(value))
    }

    /// Appends what `events` committed to the store's log: under the
    /// drop's lock, before any pruning can remove the holds they name.
    /// Holds offered from a line are indexed here too, still under the
    /// lock, so their ids can be looked up from the moment anyone hears
    /// of them; places that left a line are forgotten once logged.
    fn log(
        &self,
        ledger: &mut Ledger,
        events: &[DropEvent],
        action: Option<DropAction>,
        now: DateTime<Utc>,
    ) {
        for event in events {
            if let DropEvent::HoldCreated {
                reservation_id,
                offered: true,
                ..
            } = event
            {
                self.shared.reservations.insert(*reservation_id, self.id);
            }
        }
        self.shared
            .log
            .append_events(ledger, self.id, events, action, now);
        ledger.forget_departed();
    }

    /// The drop and its stock as clients should see it at `now`.
    pub(crate) fn state(&self, now: DateTime<Utc>) -> DropState {
        self.inner().ledger.state(now)
    }

    /// Reserves for `buyer` at `now` under hold id `id`; `events` receives
    /// what committed (also on `OUT_OF_STOCK`, when overdue holds were
    /// reclaimed).
    pub(crate) fn reserve(
        &self,
        id: ReservationId,
        buyer: &Buyer,
        request: ReserveRequest,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Keyed<Reserved>, DropError> {
        self.write(
            key,
            now,
            events,
            None,
            |ledger, events| {
                let reserved = ledger.reserve(id, buyer, request, now, events)?;
                if reserved.created {
                    // Still under the drop lock: from the moment a
                    // concurrent reserve or `active_hold` of this buyer can
                    // see the hold, a purchase can find it.
                    self.shared.reservations.insert(id, self.id);
                }
                Ok(reserved)
            },
            |r| (Recorded::Reservation(r.reservation.id), r.created),
        )
    }

    /// A hold the store still shows: `RESERVATION_NOT_FOUND` once pruned
    /// or past its retention.
    fn visible(
        &self,
        ledger: &Ledger,
        id: ReservationId,
        now: DateTime<Utc>,
    ) -> Result<(), DropError> {
        match ledger.holds.get(&id) {
            Some(h) if !self.forgotten(h, now) => Ok(()),
            _ => Err(DropError::ReservationNotFound { reservation_id: id }),
        }
    }

    /// Buys hold `id` for `buyer`, or answers the purchase they made of it.
    pub(crate) fn purchase(
        &self,
        id: ReservationId,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Keyed<Purchased>, DropError> {
        self.write(
            key,
            now,
            events,
            None,
            |ledger, events| {
                self.visible(ledger, id, now)?;
                let purchased = ledger.purchase(id, buyer, now, events)?;
                if purchased.created {
                    let p = &purchased.purchase;
                    self.shared.purchases.insert(p.id, self.id);
                    self.shared.buyers.record(buyer, p.id, self.id);
                }
                Ok(purchased)
            },
            |p| (Recorded::Purchase(p.purchase.id), p.created),
        )
    }

    /// Gives hold `id` back for its owner `buyer`.
    pub(crate) fn release(
        &self,
        id: ReservationId,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Reservation, DropError> {
        let mut g = self.inner();
        self.prune(&mut g, now, 0);
        self.visible(&g.ledger, id, now)?;
        let start = events.len();
        let released = g.ledger.release(id, buyer, now, events)?;
        self.log(&mut g.ledger, &events[start..], None, now);
        Ok(released)
    }

    /// Puts `buyer` in the line of `request`'s variant.
    pub(crate) fn join_waitlist(
        &self,
        buyer: &Buyer,
        request: ReserveRequest,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Applied<WaitlistPlace>, DropError> {
        let mut g = self.inner();
        self.prune(&mut g, now, 0);
        let start = events.len();
        let joined = g
            .ledger
            .join(buyer, request, || self.shared.next_ticket(), now, events);
        // Logged whatever the answer, as for a reserve: a refused join may
        // have reclaimed overdue holds.
        self.log(&mut g.ledger, &events[start..], None, now);
        joined
    }

    /// Takes `buyer` out of the drop's line.
    pub(crate) fn leave_waitlist(
        &self,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Option<WaitlistPlace> {
        let mut g = self.inner();
        let start = events.len();
        let left = g.ledger.leave(buyer, now, events);
        self.log(&mut g.ledger, &events[start..], None, now);
        left
    }

    /// Enters `buyer` in the drop's draw; `receipt` is drawn only for a
    /// new entry. Entering changes no stock and announces nothing.
    pub(crate) fn enter_draw(
        &self,
        buyer: &Buyer,
        variant: Option<VariantId>,
        receipt: impl FnOnce() -> Receipt,
        now: DateTime<Utc>,
    ) -> Result<Applied<Entry>, DropError> {
        self.inner().ledger.enter(buyer, variant, receipt, now)
    }

    /// Withdraws `buyer`'s entry.
    pub(crate) fn withdraw_entry(
        &self,
        buyer: &BuyerId,
        now: DateTime<Utc>,
    ) -> Result<Option<Entry>, DropError> {
        self.inner().ledger.withdraw(buyer, now)
    }

    /// `buyer`'s entry, with its outcome once drawn.
    pub(crate) fn draw_entry(&self, buyer: &BuyerId) -> Option<Entry> {
        self.inner().ledger.draw_entry(buyer)
    }

    /// The draw's public record.
    pub(crate) fn draw_status(&self) -> Result<DrawStatus, DropError> {
        self.inner().ledger.draw_status()
    }

    /// The drop's settings (not its stock): what the draw runner's
    /// questions need, without computing counters.
    pub(crate) fn info(&self) -> DropInfo {
        self.inner().ledger.drop.clone()
    }

    /// Makes the drop's draw if it is due, in one critical section: the
    /// entry list is frozen by the lock, and a second caller finds
    /// `drawnAt` set and answers `None`. What committed is logged here.
    pub(crate) fn run_draw(
        &self,
        beacon: Option<Beacon>,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Option<DrawSummary>, DropError> {
        let mut g = self.inner();
        self.prune(&mut g, now, 0);
        let start = events.len();
        let drawn = g
            .ledger
            .run_draw(beacon, |n| self.shared.next_tickets(n), now, events);
        self.log(&mut g.ledger, &events[start..], None, now);
        drawn
    }

    /// How many entries the drop's draw holds.
    pub(crate) fn entry_count(&self) -> usize {
        self.inner().ledger.entry_count()
    }

    /// `buyer`'s place in the drop's line.
    pub(crate) fn waitlist_place(&self, buyer: &BuyerId) -> Option<WaitlistPlace> {
        self.inner().ledger.waitlist_place(buyer)
    }

    /// Cancels purchase `id`.
    pub(crate) fn cancel_purchase(
        &self,
        id: PurchaseId,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Keyed<Applied<Purchase>>, DropError> {
        self.write(
            key,
            now,
            events,
            None,
            |ledger, events| ledger.cancel_purchase(id, now, events),
            |a| (Recorded::Purchase(a.value.id), false),
        )
    }

    /// Edits the drop.
    pub(crate) fn update(
        &self,
        patch: &DropPatch,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Keyed<Applied<DropState>>, DropError> {
        self.write(
            key,
            now,
            events,
            Some(DropAction::Edited),
            |ledger, events| ledger.update(patch, now, events),
            |_| (Recorded::Drop(self.id), false),
        )
    }

    /// Pauses or resumes the drop.
    pub(crate) fn set_paused(
        &self,
        paused: bool,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Keyed<Applied<DropState>>, DropError> {
        let action = if paused {
            DropAction::Paused
        } else {
            DropAction::Resumed
        };
        self.write(
            key,
            now,
            events,
            Some(action),
            |ledger, events| Ok(ledger.set_paused(paused, now, events)),
            |_| (Recorded::Drop(self.id), false),
        )
    }

    /// Ends the drop's sale now.
    pub(crate) fn end(
        &self,
        now: DateTime<Utc>,
        key: Option<&IdempotencyKey>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Keyed<Applied<DropState>>, DropError> {
        self.write(
            key,
            now,
            events,
            Some(DropAction::Ended),
            |ledger, events| Ok(ledger.end(now, events)),
            |_| (Recorded::Drop(self.id), false),
        )
    }

    /// Expires up to `limit` due holds; returns how many.
    pub(crate) fn expire_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        events: &mut Vec<DropEvent>,
    ) -> usize {
        let mut g = self.inner();
        let start = events.len();
        let n = g.ledger.expire_due(now, limit, events);
        if n > 0 {
            g.ledger.announce_stock(now, events);
            // Before the prune below, which may remove the holds just
            // expired (a sweep long overdue).
            self.log(&mut g.ledger, &events[start..], None, now);
        }
        self.prune(&mut g, now, n);
        n
    }

    pub(crate) fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.inner().ledger.next_expiry()
    }

    /// A hold with its status as time sees it.
    pub(crate) fn reservation(&self, id: ReservationId, now: DateTime<Utc>) -> Option<Reservation> {
        self.inner()
            .ledger
            .holds
            .get(&id)
            .filter(|h| !self.forgotten(h, now))
            .map(|h| as_seen(h, now))
    }

    /// A hold an idempotency record names, as it is now, even past its
    /// retention.
    pub(crate) fn replayed_hold(
        &self,
        id: ReservationId,
        now: DateTime<Utc>,
    ) -> Option<Reservation> {
        self.inner().ledger.holds.get(&id).map(|h| as_seen(h, now))
    }

    /// One of the record naming hold `id` is gone: once none is left, the
    /// hold is pruned like any other.
    pub(crate) fn unpin(&self, id: ReservationId) {
        let mut g = self.inner();
        let Some(n) = g.pinned.get_mut(&id) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            g.pinned.remove(&id);
            if g.kept_for_replay.remove(&id) {
                g.ledger.holds.remove(&id);
                self.shared.reservations.remove(id);
            }
        }
    }

    pub(crate) fn purchase_by_id(&self, id: PurchaseId) -> Option<Purchase> {
        self.inner().ledger.purchase_by_id(id).cloned()
    }

    pub(crate) fn active_hold(&self, buyer: &BuyerId, now: DateTime<Utc>) -> Option<Reservation> {
        self.inner().ledger.active_hold(buyer, now)
    }

    /// How many holds this drop keeps in memory.
    pub(crate) fn kept_holds(&self) -> usize {
        self.inner().ledger.holds.len()
    }

    pub(crate) fn top_purchasers(&self, limit: usize) -> Vec<TopPurchaser> {
        self.inner().ledger.top(limit)
    }

    /// Checks the counters against the records; describes the first mismatch.
    pub(crate) fn verify(&self) -> Result<(), String> {
        let g = self.inner();
        if g.kept_for_replay
            .iter()
            .any(|id| !g.pinned.contains_key(id))
        {
            return Err(format!(
                "drop {}: an unpinned hold kept for replay",
                self.id
            ));
        }
        g.ledger.verify(g.kept_for_replay.len())
    }
}

/// `hold` with its status as time sees it at `now`.
fn as_seen(hold: &Reservation, now: DateTime<Utc>) -> Reservation {
    let mut hold = hold.clone();
    hold.status = hold.effective_status(now);
    hold
}

//! One drop's counters, holds and purchases, and every change to them, as
//! plain single-threaded code: [`DropCell`](crate::cell::DropCell) runs it
//! under the drop's lock.
//!
//! The counters are kept per variant and always agree with the holds,
//! purchases and waiting lists (`verify` checks it). Holds past their
//! `expiresAt` that no one has reclaimed yet still count in the stored
//! counters, exactly as [`DropPatch::apply`](drop_core::DropPatch::apply)
//! expects; every answer and event shows them as free, except in a
//! variant people wait for, whose freed units are owed to its line.
//!
//! The waiting list's rules ([`drop_core::waitlist`]) are applied in one
//! place, [`Ledger::settle`], which every change runs before it announces
//! the stock: units freed by any change are set aside or offered in the
//! same critical section that freed them.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Buyer, BuyerId, DropError, DropEvent, DropInfo, DropPatch, DropState, LeaveReason,
    Money, Purchase, PurchaseId, PurchaseStatus, Purchased, Reservation, ReservationId,
    ReservationStatus, ReserveRequest, Reserved, Seed, Stock, TopPurchaser, Transition, VariantId,
    VariantStock, WaitlistPlace, next_status,
};

use crate::line::{Line, Place};

mod draw;

use draw::DrawBook;

#[derive(Debug)]
pub(crate) struct Ledger {
    pub(crate) drop: DropInfo,
    /// Each variant's counters, in the drop's order.
    variants: Vec<VariantStock>,
    version: u64,
    /// Every hold taken on this drop that is active, purchased, ended less
    /// than the retention ago, or named by an idempotency record.
    pub(crate) holds: HashMap<ReservationId, Reservation>,
    /// The active hold of each buyer (at most one: invariant 4), with its
    /// place in `due`.
    active_by_buyer: HashMap<BuyerId, (ReservationId, u64)>,
    /// Active holds by expiry, then by the order they were taken (so
    /// which of two holds due at once is reclaimed first never depends on
    /// their random ids).
    due: BTreeSet<(DateTime<Utc>, u64, ReservationId)>,
    /// The order number of the next hold.
    next_seq: u64,
    /// Purchases in commit order.
    purchases: Vec<Purchase>,
    /// Where each purchase sits in `purchases`.
    purchase_at: HashMap<PurchaseId, usize>,
    /// Where each purchased hold's purchase sits in `purchases`.
    purchase_of_hold: HashMap<ReservationId, usize>,
    /// Units each buyer bought and that were not cancelled: the part of
    /// `maxPerBuyer` that no longer shows as a hold.
    bought: HashMap<BuyerId, u32>,
    /// Released and expired holds still kept, by `expiresAt`: the
    /// retention counts from there, so it needs no extra timestamp.
    pub(crate) ended: BTreeSet<(DateTime<Utc>, ReservationId)>,
    /// Each variant's waiting list, in the order of `variants`.
    lines: Vec<Line>,
    /// The line each waiting buyer stands in (at most one per drop), by
    /// variant index and ticket.
    in_line: HashMap<BuyerId, (usize, u64)>,
    /// Places that left a line in the current critical section, by
    /// ticket: the log entry of a departure names its quantity, and the
    /// place itself is gone. Emptied once the change is logged.
    departed: Vec<(u64, Place)>,
    /// A draw drop's seed, entries and published draw; `None` for a
    /// first-come drop.
    draw: Option<DrawBook>,
}

/// `price × quantity`, or `INVALID_INPUT` when that is beyond what
/// [`Money`] can hold.
fn amount(price: Money, quantity: u32) -> Result<Money, DropError> {
    price
        .minor()
        .checked_mul(i64::from(quantity))
        .and_then(|minor| Money::from_minor(minor).ok())
        .ok_or_else(|| {
            DropError::invalid("quantity", "price × quantity is above the largest amount")
        })
}

impl Ledger {
    /// A new drop's ledger; `seed` is a draw drop's secret, drawn when it
    /// was created.
    pub(crate) fn new(drop: DropInfo, variants: Vec<VariantStock>, seed: Option<Seed>) -> Self {
        let count = variants.len();
        Self {
            drop,
            variants,
            version: 0,
            holds: HashMap::new(),
            active_by_buyer: HashMap::new(),
            due: BTreeSet::new(),
            next_seq: 0,
            purchases: Vec::new(),
            purchase_at: HashMap::new(),
            purchase_of_hold: HashMap::new(),
            bought: HashMap::new(),
            ended: BTreeSet::new(),
            lines: std::iter::repeat_with(Line::default).take(count).collect(),
            in_line: HashMap::new(),
            departed: Vec::new(),
            draw: seed.map(DrawBook::new),
        }
    }

    /// Where variant `id` sits in the drop's order.
    fn index_of(&self, id: VariantId) -> usize {
        self.variants
            .iter()
            .position(|v| v.id == id)
            .expect("a hold's variant belongs to its drop")
    }

    fn variant_mut(&mut self, id: VariantId) -> &mut VariantStock {
        let i = self.index_of(id);
        &mut self.variants[i]
    }

    /// Each variant's counters as clients see them at `now`: holds past
    /// their time count as free even before they are reclaimed, except in
    /// a variant people wait for, where the units they will free are
    /// owed to the line (so its `available` stays 0 while anyone waits).
    fn counters(&self, now: DateTime<Utc>) -> Vec<VariantStock> {
        let mut out = self.variants.clone();
        for (_, _, id) in self.due.iter().take_while(|(at, _, _)| *at <= now) {
            let hold = &self.holds[id];
            if let Some(i) = out.iter().position(|v| v.id == hold.variant_id)
                && self.lines[i].is_empty()
            {
                out[i].reserved -= hold.quantity;
            }
        }
        out
    }

    /// The drop's counters and each variant's, as clients see them at
    /// `now`.
    fn stock(&self, now: DateTime<Utc>) -> (Stock, Vec<VariantStock>) {
        let variants = self.counters(now);
        let (reserved, sold) = variants
            .iter()
            .fold((0, 0), |(r, s), v| (r + v.reserved, s + v.sold));
        let stock = Stock::new(self.drop.total_stock, reserved, sold, self.version);
        (stock, variants)
    }

    /// The drop and its stock as clients see it at `now`.
    pub(crate) fn state(&self, now: DateTime<Utc>) -> DropState {
        let (stock, variants) = self.stock(now);
        DropState::new(self.drop.clone(), stock, variants)
    }

    /// Serves the waiting lists (units a change freed go to them first),
    /// then records the change of the counters and announces the new
    /// stock: the last event of every change.
    pub(crate) fn announce_stock(&mut self, now: DateTime<Utc>, events: &mut Vec<DropEvent>) {
        self.settle(now, events);
        self.version += 1;
        let (stock, variants) = self.stock(now);
        events.push(DropEvent::StockChanged {
            drop_id: self.drop.id,
            stock,
            variants,
        });
    }

    /// Ends active hold `id` in `to`, keeping counters and indexes in step.
    fn finish(&mut self, id: ReservationId, to: ReservationStatus) -> Reservation {
        let hold = self.holds.get_mut(&id).expect("hold exists");
        debug_assert_eq!(hold.status, ReservationStatus::Active);
        hold.status = to;
        let hold = hold.clone();
        let v = self.variant_mut(hold.variant_id);
        v.reserved -= hold.quantity;
        if to == ReservationStatus::Purchased {
            v.sold += hold.quantity;
        }
        if let Some((_, seq)) = self.active_by_buyer.remove(&hold.buyer_id) {
            self.due.remove(&(hold.expires_at, seq, id));
        }
        if to != ReservationStatus::Purchased {
            self.ended.insert((hold.expires_at, id));
        }
        hold
    }

    fn expire(&mut self, id: ReservationId, events: &mut Vec<DropEvent>) {
        self.finish(id, ReservationStatus::Expired);
        events.push(DropEvent::HoldExpired {
            drop_id: self.drop.id,
            reservation_id: id,
        });
    }

    /// Expires up to `limit` overdue holds, earliest first; returns how
    /// many. Announces the holds, not the stock.
    pub(crate) fn expire_due(
        &mut self,
        now: DateTime<Utc>,
        limit: usize,
        events: &mut Vec<DropEvent>,
    ) -> usize {
        let mut n = 0;
        while n < limit {
            match self.due.first() {
                Some(&(at, _, id)) if at <= now => {
                    self.expire(id, events);
                    n += 1;
                }
                _ => break,
            }
        }
        n
    }

    /// Expires every overdue hold of `variant`, earliest first; returns
    /// whether any expired.
    fn reclaim_all(
        &mut self,
        variant: VariantId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> bool {
        let due: Vec<ReservationId> = self
            .due
            .iter()
            .take_while(|(at, _, _)| *at <= now)
            .map(|&(_, _, id)| id)
            .filter(|id| self.holds[id].variant_id == variant)
            .collect();
        for &id in &due {
            self.expire(id, events);
        }
        !due.is_empty()
    }

    /// Expires overdue holds of `variant`, earliest first, until it has
    /// `quantity` free units; returns whether any expired. Only as many as
    /// the reserve needs, and none when all of them would not be enough:
    /// the sweeper ends the rest, and every read already shows them free.
    /// A variant people wait for has every overdue hold reclaimed: its
    /// units are owed to the line first (an overdue hold never blocks an
    /// offer), and the caller settles the lines next.
    fn reclaim_for(
        &mut self,
        variant: VariantId,
        quantity: u32,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> bool {
        if !self.lines[self.index_of(variant)].is_empty() {
            return self.reclaim_all(variant, now, events);
        }
        let free = self.variant_mut(variant).available();
        let Some(mut needed) = quantity.checked_sub(free).filter(|n| *n > 0) else {
            return false;
        };
        let mut chosen = Vec::new();
        for &(_, _, id) in self.due.iter().take_while(|(at, _, _)| *at <= now) {
            let hold = &self.holds[&id];
            if hold.variant_id == variant {
                chosen.push(id);
                needed = needed.saturating_sub(hold.quantity);
                if needed == 0 {
                    break;
                }
            }
        }
        if needed > 0 {
            return false;
        }
        for &id in &chosen {
            self.expire(id, events);
        }
        true
    }

    pub(crate) fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.due.first().map(|(at, _, _)| *at)
    }

    /// Applies the waiting list's rules to every line: the one place
    /// where freed units are set aside for heads, offered or put back on
    /// sale. Every change runs it (through [`announce_stock`](Self::announce_stock))
    /// after its own writes; with the lines already settled it changes
    /// nothing. Returns whether it changed anything.
    pub(crate) fn settle(&mut self, now: DateTime<Utc>, events: &mut Vec<DropEvent>) -> bool {
        if self.in_line.is_empty() {
            // Nobody waits, so nothing is set aside: the common case.
            return false;
        }
        let mut changed = false;
        loop {
            let mut again = false;
            for i in 0..self.lines.len() {
                if self.lines[i].is_empty() {
                    continue;
                }
                let (served, freed_elsewhere) = self.serve_line(i, now, events);
                changed |= served;
                again |= freed_elsewhere;
            }
            // A head's overdue hold of another variant, expired to serve
            // them, may have freed units another line is owed.
            if !again {
                return changed;
            }
        }
    }

    /// Serves line `i` while units are free: heads who may not take a
    /// hold are skipped, heads whose quantity the free units cover are
    /// offered one, and what is left is set aside for the head (all of it while the sale is not
    /// open: no offers then, and no open sale either). Returns whether it
    /// changed anything, and whether it expired a hold of another variant.
    fn serve_line(
        &mut self,
        i: usize,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> (bool, bool) {
        let (mut changed, mut freed_elsewhere) = (false, false);
        // Recounted from scratch: units set aside before are free again
        // for the head, or for whoever is head now.
        let before = std::mem::take(&mut self.lines[i].set_aside);
        self.variants[i].reserved -= before;
        let variant = self.variants[i].id;
        // A pause stops open sale, not the line.
        let open = self.drop.check_active(now).is_ok();
        // A head's turn comes when there is something to give them: with
        // no unit free, nobody is offered anything or skipped.
        while open && self.variants[i].available() > 0 {
            let Some((ticket, buyer, quantity)) = self.lines[i]
                .head()
                .map(|(t, p)| (t, p.buyer.id.clone(), p.quantity))
            else {
                break;
            };
            // An overdue hold holds nothing (it never blocks an offer),
            // but one buyer has one hold at most: it ends first.
            if let Some(&(old, _)) = self.active_by_buyer.get(&buyer)
                && self.holds[&old].is_due(now)
            {
                freed_elsewhere |= self.holds[&old].variant_id != variant;
                self.expire(old, events);
                changed = true;
            }
            let bought = self.bought.get(&buyer).copied().unwrap_or(0);
            if self.active_by_buyer.contains_key(&buyer)
                || bought.saturating_add(quantity) > self.drop.max_per_buyer
            {
                self.leave_line(i, ticket, LeaveReason::Skipped, events);
                changed = true;
                continue;
            }
            if self.variants[i].available() < quantity {
                break;
            }
            let place = self.remove_place(i, ticket);
            self.take_hold(
                ReservationId::new(),
                place.buyer.clone(),
                variant,
                quantity,
                true,
                now,
                events,
            );
            self.push_left(i, ticket, &place, LeaveReason::Offered, events);
            changed = true;
        }
        if !self.lines[i].is_empty() {
            let free = self.variants[i].available();
            self.lines[i].set_aside = free;
            self.variants[i].reserved += free;
        }
        changed |= self.lines[i].set_aside != before;
        (changed, freed_elsewhere)
    }

    /// Takes the place with `ticket` out of line `i`, keeping it for the
    /// log until the change is logged. Units set aside in a line left
    /// empty go back on sale at once, so only lines with someone in them
    /// ever need serving.
    fn remove_place(&mut self, i: usize, ticket: u64) -> Place {
        let place = self.lines[i].remove(ticket).expect("a place in line");
        self.in_line.remove(&place.buyer.id);
        self.variants[i].waitlist_length -= 1;
        if self.lines[i].is_empty() {
            self.variants[i].reserved -= std::mem::take(&mut self.lines[i].set_aside);
        }
        self.departed.push((ticket, place.clone()));
        place
    }

    /// Announces that `place` (ticket `ticket`) left line `i`.
    fn push_left(
        &self,
        i: usize,
        ticket: u64,
        place: &Place,
        reason: LeaveReason,
        events: &mut Vec<DropEvent>,
    ) {
        events.push(DropEvent::WaitlistLeft {
            drop_id: self.drop.id,
            variant_id: self.variants[i].id,
            buyer_id: place.buyer.id.clone(),
            ticket,
            reason,
        });
    }

    /// Takes the place with `ticket` out of line `i` and announces why.
    fn leave_line(
        &mut self,
        i: usize,
        ticket: u64,
        reason: LeaveReason,
        events: &mut Vec<DropEvent>,
    ) {
        let place = self.remove_place(i, ticket);
        self.push_left(i, ticket, &place, reason, events);
    }

    /// The place of `ticket` in variant `variant`'s line, or one that left
    /// it in the current critical section: what the log completes the
    /// waiting list's events from.
    pub(crate) fn place_by_ticket(&self, variant: VariantId, ticket: u64) -> Option<&Place> {
        let line = &self.lines[self.variants.iter().position(|v| v.id == variant)?];
        line.get(ticket).or_else(|| {
            self.departed
                .iter()
                .find(|(t, _)| *t == ticket)
                .map(|(_, p)| p)
        })
    }

    /// Forgets the places that left: called once their departures are
    /// logged (a place is kept no longer than it stands in line).
    pub(crate) fn forget_departed(&mut self) {
        self.departed.clear();
    }

    /// `buyer`'s place in the drop's line, as it is now.
    pub(crate) fn waitlist_place(&self, buyer: &BuyerId) -> Option<WaitlistPlace> {
        let &(i, ticket) = self.in_line.get(buyer)?;
        self.lines[i].view(self.drop.id, self.variants[i].id, ticket)
    }

    /// Puts `buyer` in the line of `request`'s variant, checking as
    /// [`InventoryStore::join_waitlist`] orders it; `ticket` draws the
    /// place's ticket (only once the join is sure).
    ///
    /// [`InventoryStore::join_waitlist`]: drop_core::InventoryStore::join_waitlist
    pub(crate) fn join(
        &mut self,
        buyer: &Buyer,
        request: ReserveRequest,
        ticket: impl FnOnce() -> u64,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Applied<WaitlistPlace>, DropError> {
        let variant = self.drop.check_request(&request)?;
        if !self.drop.waitlist {
            return Err(DropError::WaitlistClosed {
                drop_id: self.drop.id,
            });
        }
        self.drop.check_open(now)?;
        // Before the draw there is no line to join: entries are.
        self.drop.check_first_come()?;
        let quantity = request.quantity;
        if let Some(place) = self.waitlist_place(&buyer.id) {
            if place.variant_id == variant && place.quantity == quantity {
                return Ok(Applied::new(place, false));
            }
            return Err(DropError::AlreadyInLine {
                place: Box::new(place),
            });
        }
        if let Some(hold) = self.active_hold(&buyer.id, now) {
            return Err(DropError::HoldExists {
                reservation: Box::new(hold),
            });
        }
        let taken = self.bought.get(&buyer.id).copied().unwrap_or(0);
        if taken + quantity > self.drop.max_per_buyer {
            return Err(DropError::BuyerLimitReached {
                drop_id: self.drop.id,
                max_per_buyer: self.drop.max_per_buyer,
                taken,
            });
        }
        // Every overdue unit of the variant is reclaimed, not only what
        // the request needs: whether the buyer joins or is sent to
        // reserve, those units go to the line or back on sale now.
        let reclaimed = self.reclaim_all(variant, now, events);
        if reclaimed {
            self.settle(now, events);
        }
        let i = self.index_of(variant);
        if self.variants[i].available() >= quantity {
            if reclaimed {
                self.announce_stock(now, events);
            }
            return Err(self.not_needed(variant));
        }
        let ticket = ticket();
        self.lines[i].insert(
            ticket,
            Place {
                buyer: buyer.clone(),
                quantity,
                joined_at: now,
            },
        );
        self.in_line.insert(buyer.id.clone(), (i, ticket));
        self.variants[i].waitlist_length += 1;
        events.push(DropEvent::WaitlistJoined {
            drop_id: self.drop.id,
            variant_id: variant,
            buyer_id: buyer.id.clone(),
            quantity,
            ticket,
        });
        // Sets aside for the new head what is free but not enough for them.
        self.announce_stock(now, events);
        let place = self
            .waitlist_place(&buyer.id)
            .expect("a buyer who just joined waits");
        Ok(Applied::new(place, true))
    }

    fn not_needed(&self, variant: VariantId) -> DropError {
        DropError::WaitlistNotNeeded {
            drop_id: self.drop.id,
            variant_id: variant,
        }
    }

    /// Takes `buyer` out of the drop's line; what was set aside for them
    /// goes to the next in line or back on sale. Answers the place they
    /// had.
    pub(crate) fn leave(
        &mut self,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Option<WaitlistPlace> {
        let place = self.waitlist_place(buyer)?;
        let (i, ticket) = self.in_line[buyer];
        self.leave_line(i, ticket, LeaveReason::Left, events);
        self.announce_stock(now, events);
        Some(place)
    }

    /// Takes a hold `id` for `buyer` as [`InventoryStore::reserve_with`]
    /// orders its checks; answers the hold and whether it is new.
    ///
    /// [`InventoryStore::reserve_with`]: drop_core::InventoryStore::reserve_with
    pub(crate) fn reserve(
        &mut self,
        id: ReservationId,
        buyer: &Buyer,
        request: ReserveRequest,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Reserved, DropError> {
        let variant = self.drop.check_request(&request)?;
        self.drop.check_open(now)?;
        // A draw drop's units go by its draw until it is made.
        self.drop.check_first_come()?;
        let quantity = request.quantity;
        if let Some(existing) = self
            .active_by_buyer
            .get(&buyer.id)
            .map(|(r, _)| &self.holds[r])
            && !existing.is_due(now)
        {
            if existing.variant_id == variant && existing.quantity == quantity {
                return Ok(Reserved::new(existing.clone(), false));
            }
            return Err(DropError::HoldExists {
                reservation: Box::new(existing.clone()),
            });
        }
        let taken = self.bought.get(&buyer.id).copied().unwrap_or(0);
        if taken + quantity > self.drop.max_per_buyer {
            return Err(DropError::BuyerLimitReached {
                drop_id: self.drop.id,
                max_per_buyer: self.drop.max_per_buyer,
                taken,
            });
        }
        let reclaimed = self.reclaim_for(variant, quantity, now, events);
        if reclaimed {
            // The line is served before the reserve: what it leaves over
            // is on open sale.
            self.settle(now, events);
        }
        if self.variant_mut(variant).available() < quantity {
            if reclaimed {
                self.announce_stock(now, events);
            }
            return Err(DropError::OutOfStock {
                drop_id: self.drop.id,
            });
        }
        // The buyer's own overdue hold, if the reclaim did not need it,
        // ends now: one active hold per buyer.
        if let Some(&(old, _)) = self.active_by_buyer.get(&buyer.id) {
            self.expire(old, events);
        }
        let hold = self.take_hold(id, buyer.clone(), variant, quantity, false, now, events);
        // Units the buyer's own overdue hold freed may be owed to a line:
        // served after the new hold exists, so a buyer waiting there is
        // skipped rather than given a second hold.
        self.announce_stock(now, events);
        Ok(Reserved::new(hold, true))
    }

    /// Makes an active hold of `quantity` units of `variant` for `buyer`
    /// (the caller checked every rule) and announces it, not the stock.
    #[allow(
        clippy::too_many_arguments,
        reason = "one hold's every field, for the reserve and the offer alike"
    )]
    fn take_hold(
        &mut self,
        id: ReservationId,
        buyer: Buyer,
        variant: VariantId,
        quantity: u32,
        offered: bool,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Reservation {
        let mut hold = Reservation::new(
            id,
            self.drop.id,
            variant,
            buyer,
            ReservationStatus::Active,
            now,
            self.drop.hold_expiry(now),
        );
        hold.quantity = quantity;
        hold.offered = offered;
        self.variant_mut(variant).reserved += quantity;
        let seq = self.next_seq;
        self.next_seq += 1;
        self.active_by_buyer
            .insert(hold.buyer_id.clone(), (id, seq));
        self.due.insert((hold.expires_at, seq, id));
        self.holds.insert(id, hold.clone());
        events.push(DropEvent::HoldCreated {
            drop_id: self.drop.id,
            reservation_id: id,
            buyer_id: hold.buyer_id.clone(),
            variant_id: variant,
            quantity,
            expires_at: hold.expires_at,
            offered,
        });
        hold
    }

    /// Buys hold `id` for its owner `buyer`; a hold they bought already
    /// answers its purchase (`created: false`).
    pub(crate) fn purchase(
        &mut self,
        id: ReservationId,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Purchased, DropError> {
        let hold = &self.holds[&id];
        if hold.status == ReservationStatus::Purchased && hold.buyer_id == *buyer {
            let at = self.purchase_of_hold[&id];
            return Ok(Purchased::new(self.purchases[at].clone(), false));
        }
        next_status(hold, Transition::Purchase, Some(buyer), now)?;
        let purchase = Purchase::new(
            PurchaseId::new(),
            hold,
            amount(self.drop.price, hold.quantity)?,
            now,
        );
        self.finish(id, ReservationStatus::Purchased);
        *self.bought.entry(buyer.clone()).or_default() += purchase.quantity;
        let at = self.purchases.len();
        self.purchase_at.insert(purchase.id, at);
        self.purchase_of_hold.insert(id, at);
        self.purchases.push(purchase.clone());
        self.announce_stock(now, events);
        events.push(DropEvent::PurchaseCompleted {
            drop_id: self.drop.id,
            purchase_id: purchase.id,
            reservation_id: id,
            buyer_id: purchase.buyer_id.clone(),
            variant_id: purchase.variant_id,
            quantity: purchase.quantity,
            amount_paid: purchase.amount_paid,
            display_name: purchase.display_name.clone(),
            top_purchasers: self.top(drop_core::TOP_PURCHASERS),
        });
        Ok(Purchased::new(purchase, true))
    }

    /// Gives hold `id` back on behalf of its owner `buyer`.
    pub(crate) fn release(
        &mut self,
        id: ReservationId,
        buyer: &BuyerId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Reservation, DropError> {
        let to = next_status(&self.holds[&id], Transition::Release, Some(buyer), now)?;
        let hold = self.finish(id, to);
        events.push(DropEvent::HoldReleased {
            drop_id: self.drop.id,
            reservation_id: id,
            buyer_id: hold.buyer_id.clone(),
        });
        self.announce_stock(now, events);
        Ok(hold)
    }

    pub(crate) fn purchase_by_id(&self, id: PurchaseId) -> Option<&Purchase> {
        self.purchase_at.get(&id).map(|&at| &self.purchases[at])
    }

    /// Cancels purchase `id`: its units go back on sale and stop counting
    /// against its buyer's limit. Cancelling again changes nothing.
    pub(crate) fn cancel_purchase(
        &mut self,
        id: PurchaseId,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Applied<Purchase>, DropError> {
        let at = *self
            .purchase_at
            .get(&id)
            .ok_or(DropError::PurchaseNotFound { purchase_id: id })?;
        if self.purchases[at].status == PurchaseStatus::Cancelled {
            return Ok(Applied::new(self.purchases[at].clone(), false));
        }
        let p = &mut self.purchases[at];
        p.status = PurchaseStatus::Cancelled;
        p.cancelled_at = Some(now);
        let p = p.clone();
        self.variant_mut(p.variant_id).sold -= p.quantity;
        if let Some(n) = self.bought.get_mut(&p.buyer_id) {
            *n -= p.quantity;
            if *n == 0 {
                self.bought.remove(&p.buyer_id);
            }
        }
        events.push(DropEvent::PurchaseCancelled {
            drop_id: self.drop.id,
            purchase_id: p.id,
            reservation_id: p.reservation_id,
            buyer_id: p.buyer_id.clone(),
            variant_id: p.variant_id,
            quantity: p.quantity,
        });
        self.announce_stock(now, events);
        Ok(Applied::new(p, true))
    }

    /// Replaces the drop's settings by `next` (and its counters by
    /// `variants`, when given: counted without units set aside), serves
    /// the lines (added stock, a later end) and announces the change: the
    /// edit first, then what the lines got, then the stock.
    fn commit_update(
        &mut self,
        next: DropInfo,
        variants: Option<Vec<VariantStock>>,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Applied<DropState> {
        self.drop = next;
        let mut stock_changed = variants.is_some();
        if let Some(v) = variants {
            self.variants = v;
            // The new counters hold no set-aside units: serving the lines
            // sets aside again what the heads are owed.
            for line in &mut self.lines {
                line.set_aside = 0;
            }
        }
        let mut served = Vec::new();
        stock_changed |= self.settle(now, &mut served);
        self.version += 1;
        let state = self.state(now);
        events.push(DropEvent::DropUpdated {
            drop: state.clone(),
        });
        events.append(&mut served);
        if stock_changed {
            events.push(DropEvent::StockChanged {
                drop_id: self.drop.id,
                stock: state.stock,
                variants: state.variants.clone(),
            });
        }
        Applied::new(state, true)
    }

    /// Edits the drop as `patch` says ([`DropPatch::apply`] decides).
    /// Units set aside for a line are nobody's yet: they do not stop a
    /// lower stock figure, and what is left of them stays owed to the
    /// line.
    pub(crate) fn update(
        &mut self,
        patch: &DropPatch,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Applied<DropState>, DropError> {
        if patch.is_empty() {
            return Ok(Applied::new(self.state(now), false));
        }
        let committed: Vec<VariantStock> = self
            .variants
            .iter()
            .zip(&self.lines)
            .map(|(v, line)| {
                let mut v = *v;
                v.reserved -= line.set_aside;
                v
            })
            .collect();
        let (next, variants) = patch.apply(&self.drop, &committed, now)?;
        let stock_changed = variants != committed;
        if !stock_changed && next == self.drop {
            return Ok(Applied::new(self.state(now), false));
        }
        Ok(self.commit_update(next, stock_changed.then_some(variants), now, events))
    }

    /// Pauses or resumes new holds.
    pub(crate) fn set_paused(
        &mut self,
        paused: bool,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Applied<DropState> {
        if self.drop.paused == paused {
            return Applied::new(self.state(now), false);
        }
        let mut next = self.drop.clone();
        next.paused = paused;
        self.commit_update(next, None, now, events)
    }

    /// Ends the sale at `now`. A drop that has not started yet never
    /// opens: its start is cleared, so its window stays well formed.
    pub(crate) fn end(
        &mut self,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Applied<DropState> {
        if self.drop.is_ended(now) {
            return Applied::new(self.state(now), false);
        }
        let mut next = self.drop.clone();
        next.ends_at = Some(now);
        if next.starts_at.is_some_and(|s| s >= now) {
            next.starts_at = None;
        }
        self.commit_update(next, None, now, events)
    }

    /// The buyer's active, unexpired hold.
    pub(crate) fn active_hold(&self, buyer: &BuyerId, now: DateTime<Utc>) -> Option<Reservation> {
        let hold = &self.holds[&self.active_by_buyer.get(buyer)?.0];
        (!hold.is_due(now)).then(|| hold.clone())
    }

    /// The latest purchases that still stand, newest first.
    pub(crate) fn top(&self, limit: usize) -> Vec<TopPurchaser> {
        self.purchases
            .iter()
            .rev()
            .filter(|p| p.is_completed())
            .take(limit)
            .map(|p| TopPurchaser::new(p.display_name.clone(), p.created_at))
            .collect()
    }

    /// Checks the counters against the records; describes the first
    /// mismatch. `kept_for_replay` is how many ended holds past their
    /// retention are kept for idempotency records.
    pub(crate) fn verify(&self, kept_for_replay: usize) -> Result<(), String> {
        let id = self.drop.id;
        let mut total = 0;
        for (v, line) in self.variants.iter().zip(&self.lines) {
            let held: u32 = self
                .holds
                .values()
                .filter(|h| h.variant_id == v.id && h.status == ReservationStatus::Active)
                .map(|h| h.quantity)
                .sum();
            let sold: u32 = self
                .purchases
                .iter()
                .filter(|p| p.variant_id == v.id && p.is_completed())
                .map(|p| p.quantity)
                .sum();
            if (v.reserved, v.sold) != (held + line.set_aside, sold) {
                return Err(format!(
                    "drop {id} variant {}: counters {}/{} but {held} held, {} set aside, {sold} sold",
                    v.id, v.reserved, v.sold, line.set_aside
                ));
            }
            if v.waitlist_length as usize != line.len() {
                return Err(format!(
                    "drop {id} variant {}: waitlist length {} but {} in line",
                    v.id,
                    v.waitlist_length,
                    line.len()
                ));
            }
            // No line-cutting: while anyone waits, nothing is on open sale.
            if !line.is_empty() && v.available() > 0 {
                return Err(format!(
                    "drop {id} variant {}: {} units on sale while {} wait",
                    v.id,
                    v.available(),
                    line.len()
                ));
            }
            if line.is_empty() && line.set_aside > 0 {
                return Err(format!(
                    "drop {id} variant {}: units set aside for an empty line",
                    v.id
                ));
            }
            if v.reserved + v.sold > v.total {
                return Err(format!("drop {id} variant {}: oversold", v.id));
            }
            total += v.total;
        }
        if total != self.drop.total_stock {
            return Err(format!(
                "drop {id}: total {} but variants sum to {total}",
                self.drop.total_stock
            ));
        }
        let count = |s| self.holds.values().filter(|h| h.status == s).count();
        let active = count(ReservationStatus::Active);
        let purchased = count(ReservationStatus::Purchased);
        if purchased != self.purchases.len() || purchased != self.purchase_of_hold.len() {
            return Err(format!(
                "drop {id}: {purchased} purchased holds, {} purchases",
                self.purchases.len()
            ));
        }
        for p in &self.purchases {
            if self.holds.get(&p.reservation_id).map(|h| h.status)
                != Some(ReservationStatus::Purchased)
            {
                return Err(format!(
                    "drop {id}: purchase {} without a purchased hold",
                    p.id
                ));
            }
        }
        let ended = self.holds.len() - active - purchased;
        if self.ended.len() + kept_for_replay != ended {
            return Err(format!(
                "drop {id}: {} ended holds indexed, {kept_for_replay} kept for replay, but {ended} kept",
                self.ended.len()
            ));
        }
        if self.active_by_buyer.len() != active || self.due.len() != active {
            return Err(format!(
                "drop {id}: indexes disagree with {active} active holds"
            ));
        }
        let placed: usize = self.lines.iter().map(Line::len).sum();
        let indexed = self.lines.iter().enumerate().all(|(i, line)| {
            line.places()
                .all(|(t, p)| self.in_line.get(&p.buyer.id) == Some(&(i, t)))
        });
        if placed != self.in_line.len() || !indexed {
            return Err(format!(
                "drop {id}: {placed} places in line, {} buyers indexed",
                self.in_line.len()
            ));
        }
        if !self.departed.is_empty() {
            return Err(format!("drop {id}: departed places kept after logging"));
        }
        self.verify_draw()?;
        let mut bought: HashMap<&BuyerId, u32> = HashMap::new();
        for p in self.purchases.iter().filter(|p| p.is_completed()) {
            *bought.entry(&p.buyer_id).or_default() += p.quantity;
        }
        if bought.len() != self.bought.len()
            || bought.iter().any(|(b, n)| self.bought.get(*b) != Some(n))
        {
            return Err(format!(
                "drop {id}: per-buyer tallies disagree with purchases"
            ));
        }
        Ok(())
    }
}

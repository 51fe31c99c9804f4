//! Proptest state-machine test: random operation sequences against the
//! memory store and a small reference model, comparing every answer and
//! checking every counter and invariant after every step.
//!
//! Drops of 1–3 variants with `maxPerBuyer` 1–3, most with a waiting
//! list; reserves of 1–3 units, purchases (repeated too), releases,
//! cancellations, pause and resume, stock edits, ending a drop, time
//! passing, sweeps, joining and leaving lines, and idempotency keys drawn
//! from a small pool so that replays and reuses are common.
//!
//! The model keeps each variant's line and the units set aside for its
//! head, and serves the lines after every change as the memory store
//! does (see `Model::settle`): offers, skips, set-aside units, no offers
//! after the end. Places, positions, offered holds and each variant's
//! `waitlistLength` are compared with the store after every step.
//!
//! After every step the event log must have grown by exactly the entries
//! the step committed: their kinds, in order, and the drop each concerns.
//!
//! 256 cases by default; `PROPTEST_CASES=1024 cargo test -p drop-store-memory --test model`
//! runs more.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use drop_core::{
    Buyer, BuyerId, Change, DropAction, DropError, DropId, DropPatch, IdempotencyKey,
    InventoryStore, LogEntry, MAX_PAGE, ManualClock, Money, NewDrop, NewVariant, PurchaseId,
    PurchaseStatus, ReservationId, ReservationStatus, ReserveRequest, Username, VariantId,
    WaitlistPlace,
};
use drop_store_memory::MemoryStore;
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};

const USERS: usize = 4;
const MAX_DROPS: usize = 3;
/// Keys each caller draws from: small, so keys come back often.
const KEYS: u8 = 3;
/// The store's retention of ended holds, short so that sequences reach it.
const RETENTION_SECS: u64 = 45;
/// The price of one unit in every drop, in minor units.
const PRICE: i64 = 250;
/// The caller admin writes are keyed by.
const ADMIN: &str = "admin";

#[derive(Debug, Clone, Hash)]
enum Op {
    CreateDrop {
        stocks: Vec<u32>,
        max_per_buyer: u32,
        hold_secs: u64,
        waitlist: bool,
        key: Option<u8>,
    },
    Reserve {
        drop: usize,
        user: usize,
        /// `None`: no variant named; `Some(i)` past the drop's variants:
        /// a variant of no drop.
        variant: Option<usize>,
        quantity: u32,
        key: Option<u8>,
    },
    Purchase {
        hold: usize,
        user: usize,
        key: Option<u8>,
    },
    Release {
        hold: usize,
        user: usize,
    },
    Cancel {
        purchase: usize,
        key: Option<u8>,
    },
    Pause {
        drop: usize,
        paused: bool,
        key: Option<u8>,
    },
    EditStock {
        drop: usize,
        variant: usize,
        total: u32,
        key: Option<u8>,
    },
    End {
        drop: usize,
        key: Option<u8>,
    },
    Advance {
        secs: u64,
    },
    ExpireDue,
    /// Join a line, the variant chosen as for [`Op::Reserve`].
    Join {
        drop: usize,
        user: usize,
        variant: Option<usize>,
        quantity: u32,
    },
    /// Leave whatever line of the drop the buyer stands in.
    Leave {
        drop: usize,
        user: usize,
    },
}

impl Op {
    fn key(&self) -> Option<u8> {
        match self {
            Op::CreateDrop { key, .. }
            | Op::Reserve { key, .. }
            | Op::Purchase { key, .. }
            | Op::Cancel { key, .. }
            | Op::Pause { key, .. }
            | Op::EditStock { key, .. }
            | Op::End { key, .. } => *key,
            Op::Release { .. }
            | Op::Advance { .. }
            | Op::ExpireDue
            | Op::Join { .. }
            | Op::Leave { .. } => None,
        }
    }

    /// Who the write is keyed by: the buyer, or the admin.
    fn caller(&self) -> String {
        match self {
            Op::Reserve { user, .. } | Op::Purchase { user, .. } => buyer_id(*user),
            _ => ADMIN.to_owned(),
        }
    }

    /// The request without its key, as a web layer would hash it.
    fn fingerprint(&self) -> [u8; 32] {
        let mut bare = self.clone();
        match &mut bare {
            Op::CreateDrop { key, .. }
            | Op::Reserve { key, .. }
            | Op::Purchase { key, .. }
            | Op::Cancel { key, .. }
            | Op::Pause { key, .. }
            | Op::EditStock { key, .. }
            | Op::End { key, .. } => *key = None,
            Op::Release { .. }
            | Op::Advance { .. }
            | Op::ExpireDue
            | Op::Join { .. }
            | Op::Leave { .. } => {}
        }
        let mut h = DefaultHasher::new();
        bare.hash(&mut h);
        let mut out = [0; 32];
        out[..8].copy_from_slice(&h.finish().to_le_bytes());
        out
    }
}

/// What the model says an operation answers.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Drop {
        drop: usize,
        changed: bool,
        replayed: bool,
    },
    Reserved {
        hold: usize,
        created: bool,
        replayed: bool,
        status: ReservationStatus,
        quantity: u32,
    },
    Purchased {
        purchase: usize,
        created: bool,
        replayed: bool,
        status: PurchaseStatus,
        amount: i64,
    },
    Released,
    Cancelled {
        purchase: usize,
        changed: bool,
        replayed: bool,
    },
    Expired(usize),
    /// A place in line, as a join answers it.
    Joined {
        place: PlaceView,
        changed: bool,
    },
    /// The place a buyer had when they left, if any.
    Left(Option<PlaceView>),
    /// A refusal; `HOLD_EXISTS` carries the hold it names.
    Err(&'static str, Option<usize>),
    Nothing,
}

fn err(code: &'static str) -> Outcome {
    Outcome::Err(code, None)
}

/// A place as a buyer sees it: the variant, the quantity, the position
/// (1 for the head) and the units set aside (only the head has any).
#[derive(Debug, Clone, Copy, PartialEq)]
struct PlaceView {
    variant: usize,
    quantity: u32,
    position: u32,
    set_aside: u32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Entity {
    Drop(usize),
    Hold(usize),
    Purchase(usize),
}

#[derive(Debug, Clone)]
struct MDrop {
    totals: Vec<u32>,
    max_per_buyer: u32,
    hold_secs: u64,
    paused: bool,
    ended: bool,
    waitlist: bool,
    /// Each variant's line.
    lines: Vec<MLine>,
}

/// A variant's line: places in ticket order, and the units set aside for
/// its head (counted as reserved; 0 while the line is empty).
#[derive(Debug, Clone, Default)]
struct MLine {
    places: Vec<MPlace>,
    set_aside: u32,
}

#[derive(Debug, Clone)]
struct MPlace {
    user: usize,
    quantity: u32,
    /// The model's join counter: the store's tickets follow its order.
    ticket: usize,
}

#[derive(Debug, Clone)]
struct MHold {
    drop: usize,
    variant: usize,
    quantity: u32,
    user: usize,
    /// As the store records it (an overdue hold stays active until
    /// reclaimed).
    status: ReservationStatus,
    expires: u64,
    /// Offered from a line rather than reserved.
    offered: bool,
}

#[derive(Debug, Clone)]
struct MPurchase {
    hold: usize,
    status: PurchaseStatus,
}

#[derive(Debug, Clone, Default)]
struct Model {
    now: u64,
    drops: Vec<MDrop>,
    holds: Vec<MHold>,
    purchases: Vec<MPurchase>,
    /// (caller, key) → (fingerprint, entity, created).
    records: HashMap<(String, u8), ([u8; 32], Entity, bool)>,
    last: Option<Outcome>,
    /// What the last step appended to the log: each entry's kind and drop.
    logged: Vec<(&'static str, usize)>,
    /// Joins so far: the next place's ticket.
    tickets: usize,
}

impl Model {
    fn effective(&self, h: &MHold) -> ReservationStatus {
        if h.status == ReservationStatus::Active && self.now >= h.expires {
            ReservationStatus::Expired
        } else {
            h.status
        }
    }

    /// Released or expired, and past its retention: the store answers as
    /// if it never existed.
    fn gone(&self, h: &MHold) -> bool {
        matches!(
            self.effective(h),
            ReservationStatus::Released | ReservationStatus::Expired
        ) && self.now >= h.expires + RETENTION_SECS
    }

    /// Units of a variant held by recorded-active holds, overdue or not
    /// (the store's own counters), or by holds active in their time.
    fn held(&self, drop: usize, variant: usize, effective: bool) -> u32 {
        self.holds
            .iter()
            .filter(|h| h.drop == drop && h.variant == variant)
            .filter(|h| {
                let status = if effective {
                    self.effective(h)
                } else {
                    h.status
                };
                status == ReservationStatus::Active
            })
            .map(|h| h.quantity)
            .sum()
    }

    fn sold(&self, drop: usize, variant: usize) -> u32 {
        self.purchases
            .iter()
            .filter(|p| p.status == PurchaseStatus::Completed)
            .map(|p| &self.holds[p.hold])
            .filter(|h| h.drop == drop && h.variant == variant)
            .map(|h| h.quantity)
            .sum()
    }

    fn bought(&self, drop: usize, user: usize) -> u32 {
        self.purchases
            .iter()
            .filter(|p| p.status == PurchaseStatus::Completed)
            .map(|p| &self.holds[p.hold])
            .filter(|h| h.drop == drop && h.user == user)
            .map(|h| h.quantity)
            .sum()
    }

    /// Units of a variant free for open sale by the store's own counters:
    /// overdue holds not reclaimed and units set aside still count.
    fn raw_available(&self, drop: usize, variant: usize) -> u32 {
        let d = &self.drops[drop];
        d.totals[variant].saturating_sub(
            self.held(drop, variant, false) + self.sold(drop, variant) + d.lines[variant].set_aside,
        )
    }

    /// Units of a variant reserved as a read shows them: overdue holds
    /// read as free, except in a variant people wait for, whose freed
    /// units are owed to the line (its `available` stays 0).
    fn reserved_read(&self, drop: usize, variant: usize) -> u32 {
        let line = &self.drops[drop].lines[variant];
        self.held(drop, variant, line.places.is_empty()) + line.set_aside
    }

    /// A sweep: each drop's overdue holds expire, then its lines are
    /// served.
    fn expire_all_due(&mut self) -> usize {
        let now = self.now;
        let mut n = 0;
        for drop in 0..self.drops.len() {
            let mut here = 0;
            for h in &mut self.holds {
                if h.drop == drop && h.status == ReservationStatus::Active && now >= h.expires {
                    h.status = ReservationStatus::Expired;
                    self.logged.push(("holdExpired", h.drop));
                    here += 1;
                }
            }
            if here > 0 {
                self.settle(drop);
            }
            n += here;
        }
        n
    }

    /// Expires every overdue hold of a variant; whether any expired.
    fn reclaim_all(&mut self, drop: usize, variant: usize) -> bool {
        let now = self.now;
        let mut any = false;
        for h in &mut self.holds {
            if h.drop == drop
                && h.variant == variant
                && h.status == ReservationStatus::Active
                && now >= h.expires
            {
                h.status = ReservationStatus::Expired;
                self.logged.push(("holdExpired", drop));
                any = true;
            }
        }
        any
    }

    /// The line and index of the buyer's place in a drop, if any.
    fn place_of(&self, drop: usize, user: usize) -> Option<(usize, usize)> {
        self.drops[drop]
            .lines
            .iter()
            .enumerate()
            .find_map(|(v, line)| {
                line.places
                    .iter()
                    .position(|p| p.user == user)
                    .map(|i| (v, i))
            })
    }

    fn view(&self, drop: usize, variant: usize, index: usize) -> PlaceView {
        let line = &self.drops[drop].lines[variant];
        PlaceView {
            variant,
            quantity: line.places[index].quantity,
            position: index as u32 + 1,
            set_aside: if index == 0 { line.set_aside } else { 0 },
        }
    }

    /// Takes the place at `index` out of a line; the units set aside in a
    /// line left empty go back on sale.
    fn remove_place(&mut self, drop: usize, variant: usize, index: usize) -> MPlace {
        let line = &mut self.drops[drop].lines[variant];
        let place = line.places.remove(index);
        if line.places.is_empty() {
            line.set_aside = 0;
        }
        self.logged.push(("waitlistLeft", drop));
        place
    }

    /// Serves every line of a drop until nothing changes: a head's
    /// overdue hold of another variant, ended to serve them, frees units
    /// another line may be owed.
    fn settle(&mut self, drop: usize) {
        if self.drops[drop].lines.iter().all(|l| l.places.is_empty()) {
            return;
        }
        loop {
            let mut again = false;
            for v in 0..self.drops[drop].lines.len() {
                if !self.drops[drop].lines[v].places.is_empty() {
                    again |= self.serve_line(drop, v);
                }
            }
            if !again {
                return;
            }
        }
    }

    /// Serves one line with what is free (its set-aside units counted
    /// again): heads holding units of the drop or whose quantity would
    /// pass the limit are skipped, covered heads get an offered hold, and
    /// what is left is set aside for the head. No offers (and no skips)
    /// once the sale has ended: everything free is set aside. Whether a
    /// hold of another variant was ended.
    fn serve_line(&mut self, drop: usize, v: usize) -> bool {
        let now = self.now;
        self.drops[drop].lines[v].set_aside = 0;
        let open = !self.drops[drop].ended;
        let mut freed_elsewhere = false;
        while open && self.raw_available(drop, v) > 0 {
            let Some(head) = self.drops[drop].lines[v].places.first().cloned() else {
                break;
            };
            // An overdue hold never blocks an offer; it ends first.
            if let Some(h) = self.holds.iter_mut().find(|h| {
                h.drop == drop
                    && h.user == head.user
                    && h.status == ReservationStatus::Active
                    && now >= h.expires
            }) {
                h.status = ReservationStatus::Expired;
                freed_elsewhere |= h.variant != v;
                self.logged.push(("holdExpired", drop));
            }
            let holding = self.holds.iter().any(|h| {
                h.drop == drop && h.user == head.user && h.status == ReservationStatus::Active
            });
            if holding
                || self.bought(drop, head.user) + head.quantity > self.drops[drop].max_per_buyer
            {
                self.remove_place(drop, v, 0);
                continue;
            }
            if self.raw_available(drop, v) < head.quantity {
                break;
            }
            self.drops[drop].lines[v].places.remove(0);
            if self.drops[drop].lines[v].places.is_empty() {
                self.drops[drop].lines[v].set_aside = 0;
            }
            self.logged.push(("holdCreated", drop));
            self.holds.push(MHold {
                drop,
                variant: v,
                quantity: head.quantity,
                user: head.user,
                status: ReservationStatus::Active,
                expires: now + self.drops[drop].hold_secs,
                offered: true,
            });
            self.logged.push(("waitlistLeft", drop));
        }
        if !self.drops[drop].lines[v].places.is_empty() {
            self.drops[drop].lines[v].set_aside = self.raw_available(drop, v);
        }
        freed_elsewhere
    }

    /// Resolves a request's variant and quantity as a reserve checks
    /// them.
    fn check_request(
        &self,
        drop: usize,
        variant: Option<usize>,
        quantity: u32,
    ) -> Result<usize, Outcome> {
        let d = &self.drops[drop];
        let variant = match variant {
            Some(v) if v >= d.totals.len() => return Err(err("VARIANT_NOT_FOUND")),
            Some(v) => v,
            None if d.totals.len() > 1 => return Err(err("INVALID_INPUT")),
            None => 0,
        };
        if quantity == 0 || quantity > d.max_per_buyer {
            return Err(err("INVALID_INPUT"));
        }
        Ok(variant)
    }

    /// The buyer's active hold in its time on a drop, if any.
    fn active(&self, drop: usize, user: usize) -> Option<usize> {
        let now = self.now;
        self.holds.iter().position(|h| {
            h.drop == drop
                && h.user == user
                && h.status == ReservationStatus::Active
                && now < h.expires
        })
    }

    fn join(&mut self, drop: usize, user: usize, variant: Option<usize>, quantity: u32) -> Outcome {
        let variant = match self.check_request(drop, variant, quantity) {
            Ok(v) => v,
            Err(refused) => return refused,
        };
        let d = &self.drops[drop];
        if !d.waitlist {
            return err("WAITLIST_CLOSED");
        }
        if d.ended {
            return err("DROP_NOT_ACTIVE");
        }
        if d.paused {
            return err("DROP_PAUSED");
        }
        if let Some((v, i)) = self.place_of(drop, user) {
            let place = self.view(drop, v, i);
            if v == variant && place.quantity == quantity {
                return Outcome::Joined {
                    place,
                    changed: false,
                };
            }
            return err("ALREADY_IN_LINE");
        }
        if let Some(i) = self.active(drop, user) {
            return Outcome::Err("HOLD_EXISTS", Some(i));
        }
        if self.bought(drop, user) + quantity > self.drops[drop].max_per_buyer {
            return err("BUYER_LIMIT_REACHED");
        }
        if self.reclaim_all(drop, variant) {
            self.settle(drop);
        }
        if self.raw_available(drop, variant) >= quantity {
            return err("WAITLIST_NOT_NEEDED");
        }
        let ticket = self.tickets;
        self.tickets += 1;
        self.drops[drop].lines[variant].places.push(MPlace {
            user,
            quantity,
            ticket,
        });
        self.logged.push(("waitlistJoined", drop));
        self.settle(drop);
        let (v, i) = self
            .place_of(drop, user)
            .expect("a buyer who just joined waits");
        Outcome::Joined {
            place: self.view(drop, v, i),
            changed: true,
        }
    }

    fn leave(&mut self, drop: usize, user: usize) -> Outcome {
        let Some((v, i)) = self.place_of(drop, user) else {
            return Outcome::Left(None);
        };
        let had = self.view(drop, v, i);
        self.remove_place(drop, v, i);
        self.settle(drop);
        Outcome::Left(Some(had))
    }

    fn hold_outcome(&self, hold: usize, created: bool, replayed: bool) -> Outcome {
        let h = &self.holds[hold];
        Outcome::Reserved {
            hold,
            created,
            replayed,
            status: self.effective(h),
            quantity: h.quantity,
        }
    }

    fn purchase_outcome(&self, purchase: usize, created: bool, replayed: bool) -> Outcome {
        let p = &self.purchases[purchase];
        Outcome::Purchased {
            purchase,
            created,
            replayed,
            status: p.status,
            amount: PRICE * i64::from(self.holds[p.hold].quantity),
        }
    }

    fn reserve(
        &mut self,
        drop: usize,
        user: usize,
        variant: Option<usize>,
        quantity: u32,
    ) -> Result<(Outcome, Entity, bool), Outcome> {
        let variant = self.check_request(drop, variant, quantity)?;
        let d = &self.drops[drop];
        if d.ended {
            return Err(err("DROP_NOT_ACTIVE"));
        }
        if d.paused {
            return Err(err("DROP_PAUSED"));
        }
        let now = self.now;
        let mine = |h: &MHold| h.drop == drop && h.user == user;
        if let Some(i) = self
            .holds
            .iter()
            .position(|h| mine(h) && h.status == ReservationStatus::Active && now < h.expires)
        {
            let h = &self.holds[i];
            if h.variant == variant && h.quantity == quantity {
                return Ok((self.hold_outcome(i, false, false), Entity::Hold(i), false));
            }
            return Err(Outcome::Err("HOLD_EXISTS", Some(i)));
        }
        if self.bought(drop, user) + quantity > self.drops[drop].max_per_buyer {
            return Err(err("BUYER_LIMIT_REACHED"));
        }
        if !self.drops[drop].lines[variant].places.is_empty() {
            // People wait: every overdue unit of the variant is reclaimed
            // for them, and the line is served before the reserve.
            if self.reclaim_all(drop, variant) {
                self.settle(drop);
            }
            if self.raw_available(drop, variant) < quantity {
                return Err(err("OUT_OF_STOCK"));
            }
        }
        let free = self.raw_available(drop, variant);
        if free < quantity {
            // Overdue holds of the variant, earliest first, as many as
            // needed; none when all of them would not be enough.
            let mut overdue: Vec<usize> = (0..self.holds.len())
                .filter(|&i| {
                    let h = &self.holds[i];
                    h.drop == drop
                        && h.variant == variant
                        && h.status == ReservationStatus::Active
                        && now >= h.expires
                })
                .collect();
            overdue.sort_by_key(|&i| (self.holds[i].expires, i));
            let mut needed = quantity - free;
            let mut chosen = Vec::new();
            for i in overdue {
                if needed == 0 {
                    break;
                }
                chosen.push(i);
                needed = needed.saturating_sub(self.holds[i].quantity);
            }
            if needed > 0 {
                return Err(err("OUT_OF_STOCK"));
            }
            for i in chosen {
                self.holds[i].status = ReservationStatus::Expired;
                self.logged.push(("holdExpired", drop));
            }
            self.settle(drop);
        }
        // The buyer's own overdue hold ends as the new one starts.
        for h in &mut self.holds {
            if mine(h) && h.status == ReservationStatus::Active {
                h.status = ReservationStatus::Expired;
                self.logged.push(("holdExpired", drop));
            }
        }
        self.logged.push(("holdCreated", drop));
        self.holds.push(MHold {
            drop,
            variant,
            quantity,
            user,
            status: ReservationStatus::Active,
            expires: now + self.drops[drop].hold_secs,
            offered: false,
        });
        let i = self.holds.len() - 1;
        // Units the buyer's own overdue hold freed may be owed to a line.
        self.settle(drop);
        Ok((self.hold_outcome(i, true, false), Entity::Hold(i), true))
    }

    fn purchase(&mut self, hold: usize, user: usize) -> Result<(Outcome, Entity, bool), Outcome> {
        let h = &self.holds[hold];
        if self.gone(h) {
            return Err(err("RESERVATION_NOT_FOUND"));
        }
        if h.user != user {
            return Err(err("NOT_OWNER"));
        }
        match self.effective(h) {
            ReservationStatus::Purchased => {
                let p = self
                    .purchases
                    .iter()
                    .position(|p| p.hold == hold)
                    .expect("a purchased hold has its purchase");
                Ok((
                    self.purchase_outcome(p, false, false),
                    Entity::Purchase(p),
                    false,
                ))
            }
            ReservationStatus::Active => {
                self.holds[hold].status = ReservationStatus::Purchased;
                self.logged
                    .push(("purchaseCompleted", self.holds[hold].drop));
                self.purchases.push(MPurchase {
                    hold,
                    status: PurchaseStatus::Completed,
                });
                // A head at their limit now, or no longer holding, is
                // served (or skipped) with what is set aside.
                self.settle(self.holds[hold].drop);
                let p = self.purchases.len() - 1;
                Ok((
                    self.purchase_outcome(p, true, false),
                    Entity::Purchase(p),
                    true,
                ))
            }
            ReservationStatus::Released => Err(err("ALREADY_RELEASED")),
            ReservationStatus::Expired => Err(err("RESERVATION_EXPIRED")),
        }
    }

    fn release(&mut self, hold: usize, user: usize) -> Outcome {
        let h = &self.holds[hold];
        if self.gone(h) {
            return err("RESERVATION_NOT_FOUND");
        }
        if h.user != user {
            return err("NOT_OWNER");
        }
        match self.effective(h) {
            ReservationStatus::Active => {
                let drop = h.drop;
                self.logged.push(("holdReleased", drop));
                self.holds[hold].status = ReservationStatus::Released;
                self.settle(drop);
                Outcome::Released
            }
            ReservationStatus::Purchased => err("ALREADY_PURCHASED"),
            ReservationStatus::Released => err("ALREADY_RELEASED"),
            ReservationStatus::Expired => err("RESERVATION_EXPIRED"),
        }
    }

    fn edit_stock(&mut self, drop: usize, variant: usize, total: u32) -> Result<bool, Outcome> {
        let committed = self.held(drop, variant, false) + self.sold(drop, variant);
        if total < committed {
            return Err(err("STOCK_BELOW_COMMITTED"));
        }
        let d = &mut self.drops[drop];
        let sum: u32 = d.totals.iter().sum::<u32>() - d.totals[variant] + total;
        if sum == 0 {
            return Err(err("INVALID_INPUT"));
        }
        let changed = d.totals[variant] != total;
        d.totals[variant] = total;
        if changed {
            // Set-aside units are nobody's yet: counted again for the
            // heads from the new totals.
            for line in &mut d.lines {
                line.set_aside = 0;
            }
            self.logged.push(("dropUpdated", drop));
            self.settle(drop);
        }
        Ok(changed)
    }

    /// Acts on `op` (a write that may be keyed): the answer, and for a
    /// success the entity and whether it was created.
    fn act(&mut self, op: &Op) -> Result<(Outcome, Entity, bool), Outcome> {
        let drop_outcome = |drop, changed| Outcome::Drop {
            drop,
            changed,
            replayed: false,
        };
        match *op {
            Op::CreateDrop {
                ref stocks,
                max_per_buyer,
                hold_secs,
                waitlist,
                ..
            } => {
                self.drops.push(MDrop {
                    totals: stocks.clone(),
                    max_per_buyer,
                    hold_secs,
                    paused: false,
                    ended: false,
                    waitlist,
                    lines: vec![MLine::default(); stocks.len()],
                });
                let d = self.drops.len() - 1;
                self.logged.push(("dropCreated", d));
                Ok((drop_outcome(d, true), Entity::Drop(d), true))
            }
            Op::Reserve {
                drop,
                user,
                variant,
                quantity,
                ..
            } => self.reserve(drop, user, variant, quantity),
            Op::Purchase { hold, user, .. } => self.purchase(hold, user),
            Op::Cancel { purchase, .. } => {
                let p = &mut self.purchases[purchase];
                let changed = p.status == PurchaseStatus::Completed;
                p.status = PurchaseStatus::Cancelled;
                if changed {
                    let drop = self.holds[self.purchases[purchase].hold].drop;
                    self.logged.push(("purchaseCancelled", drop));
                    self.settle(drop);
                }
                let outcome = Outcome::Cancelled {
                    purchase,
                    changed,
                    replayed: false,
                };
                Ok((outcome, Entity::Purchase(purchase), false))
            }
            Op::Pause { drop, paused, .. } => {
                let changed = self.drops[drop].paused != paused;
                self.drops[drop].paused = paused;
                if changed {
                    self.logged.push(("dropUpdated", drop));
                    self.settle(drop);
                }
                Ok((drop_outcome(drop, changed), Entity::Drop(drop), false))
            }
            Op::EditStock {
                drop,
                variant,
                total,
                ..
            } => {
                let changed = self.edit_stock(drop, variant, total)?;
                Ok((drop_outcome(drop, changed), Entity::Drop(drop), false))
            }
            Op::End { drop, .. } => {
                let changed = !self.drops[drop].ended;
                self.drops[drop].ended = true;
                if changed {
                    self.logged.push(("dropUpdated", drop));
                    self.settle(drop);
                }
                Ok((drop_outcome(drop, changed), Entity::Drop(drop), false))
            }
            Op::Release { .. }
            | Op::Advance { .. }
            | Op::ExpireDue
            | Op::Join { .. }
            | Op::Leave { .. } => {
                unreachable!("not a keyed write")
            }
        }
    }

    /// The answer to a repeat of a recorded write: the entity as it is now.
    fn replay(&self, op: &Op, entity: Entity, created: bool) -> Outcome {
        match (op, entity) {
            (
                Op::CreateDrop { .. } | Op::Pause { .. } | Op::EditStock { .. } | Op::End { .. },
                Entity::Drop(drop),
            ) => Outcome::Drop {
                drop,
                changed: false,
                replayed: true,
            },
            (Op::Reserve { .. }, Entity::Hold(h)) => self.hold_outcome(h, created, true),
            (Op::Purchase { .. }, Entity::Purchase(p)) => self.purchase_outcome(p, created, true),
            (Op::Cancel { .. }, Entity::Purchase(purchase)) => Outcome::Cancelled {
                purchase,
                changed: false,
                replayed: true,
            },
            _ => err("IDEMPOTENCY_KEY_REUSED"),
        }
    }

    fn keyed(&mut self, op: &Op) -> Outcome {
        let slot = op.key().map(|k| (op.caller(), k));
        if let Some(slot) = &slot
            && let Some(&(fingerprint, entity, created)) = self.records.get(slot)
        {
            if fingerprint != op.fingerprint() {
                return err("IDEMPOTENCY_KEY_REUSED");
            }
            return self.replay(op, entity, created);
        }
        match self.act(op) {
            Ok((outcome, entity, created)) => {
                if let Some(slot) = slot {
                    self.records
                        .insert(slot, (op.fingerprint(), entity, created));
                }
                outcome
            }
            Err(refused) => refused,
        }
    }
}

struct Reference;

fn key() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![1 => Just(None), 2 => (0..KEYS).prop_map(Some)]
}

impl ReferenceStateMachine for Reference {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model::default()).boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let stocks = prop_oneof![
            1 => prop::collection::vec(1u32..4, 1),
            4 => prop::collection::vec(0u32..4, 2..=3),
        ]
        .prop_filter("some stock", |s| s.iter().sum::<u32>() > 0);
        let create = (stocks, 1u32..=3, 1u64..6, prop::bool::weighted(0.85), key()).prop_map(
            |(stocks, max_per_buyer, h, waitlist, key)| Op::CreateDrop {
                stocks,
                max_per_buyer,
                hold_secs: h * 10,
                waitlist,
                key,
            },
        );
        let advance = (1u64..40).prop_map(|secs| Op::Advance { secs });
        if state.drops.is_empty() {
            return prop_oneof![create, advance].boxed();
        }
        let variants: Vec<usize> = state.drops.iter().map(|d| d.totals.len()).collect();
        let drops = state.drops.len();
        let vs = variants.clone();
        let reserve = (
            0..drops,
            0..USERS,
            any::<prop::sample::Index>(),
            0u32..10,
            1u32..=3,
            key(),
        )
            .prop_map(move |(drop, user, pick, how, quantity, key)| {
                let n = vs[drop];
                // Mostly a variant of the drop; now and then none, or
                // one of no drop.
                let variant = match how {
                    0 => None,
                    1 => Some(n),
                    _ => Some(pick.index(n)),
                };
                Op::Reserve {
                    drop,
                    user,
                    variant,
                    quantity,
                    key,
                }
            });
        let vs = variants.clone();
        let join = (
            0..drops,
            0..USERS,
            any::<prop::sample::Index>(),
            0u32..12,
            1u32..=3,
        )
            .prop_map(move |(drop, user, pick, how, quantity)| {
                let n = vs[drop];
                let variant = match how {
                    0 => None,
                    1 => Some(n),
                    _ => Some(pick.index(n)),
                };
                Op::Join {
                    drop,
                    user,
                    variant,
                    quantity,
                }
            });
        // Joins mostly aim at sold-out variants of open drops with a line
        // switched on, and leaves at buyers who wait, so that lines form
        // and move; the blind ones above cover the refusals.
        let sold_out: Vec<(usize, usize)> = state
            .drops
            .iter()
            .enumerate()
            .filter(|(_, d)| d.waitlist && !d.ended)
            .flat_map(|(i, d)| (0..d.totals.len()).map(move |v| (i, v)))
            .filter(|&(i, v)| state.raw_available(i, v) == 0)
            .collect();
        let join = if sold_out.is_empty() {
            join.boxed()
        } else {
            let aimed = (prop::sample::select(sold_out), 0..USERS, 1u32..=2).prop_map(
                |((drop, variant), user, quantity)| Op::Join {
                    drop,
                    user,
                    variant: Some(variant),
                    quantity,
                },
            );
            prop_oneof![1 => join, 3 => aimed].boxed()
        };
        let leave = (0..drops, 0..USERS).prop_map(|(drop, user)| Op::Leave { drop, user });
        let waiting: Vec<(usize, usize)> = state
            .drops
            .iter()
            .enumerate()
            .flat_map(|(i, d)| {
                d.lines
                    .iter()
                    .flat_map(move |l| l.places.iter().map(move |p| (i, p.user)))
            })
            .collect();
        let leave = if waiting.is_empty() {
            leave.boxed()
        } else {
            let aimed =
                prop::sample::select(waiting).prop_map(|(drop, user)| Op::Leave { drop, user });
            prop_oneof![1 => leave, 2 => aimed].boxed()
        };
        let vs = variants.clone();
        let edit = (0..drops, any::<prop::sample::Index>(), 0u32..5, key()).prop_map(
            move |(drop, pick, total, key)| Op::EditStock {
                drop,
                variant: pick.index(vs[drop]),
                total,
                key,
            },
        );
        let pause = (0..drops, prop::bool::weighted(0.6), key())
            .prop_map(|(drop, paused, key)| Op::Pause { drop, paused, key });
        let end = (0..drops, key()).prop_map(|(drop, key)| Op::End { drop, key });
        if state.holds.is_empty() {
            return prop_oneof![
                1 => create,
                6 => reserve,
                1 => advance,
                1 => pause,
                1 => edit,
                2 => join,
            ]
            .boxed();
        }
        // Mostly the owner, sometimes a stranger.
        let owners: Vec<usize> = state.holds.iter().map(|h| h.user).collect();
        let actor = (0..owners.len(), prop::bool::weighted(0.85), 0..USERS)
            .prop_map(move |(hold, own, other)| (hold, if own { owners[hold] } else { other }));
        let purchase =
            (actor.clone(), key()).prop_map(|((hold, user), key)| Op::Purchase { hold, user, key });
        let release = actor.prop_map(|(hold, user)| Op::Release { hold, user });
        if state.purchases.is_empty() {
            return prop_oneof![
                1 => create,
                6 => reserve,
                4 => purchase,
                2 => release,
                2 => advance,
                1 => Just(Op::ExpireDue),
                1 => pause,
                1 => edit,
                4 => join,
                1 => leave,
            ]
            .boxed();
        }
        let cancel = (0..state.purchases.len(), key())
            .prop_map(|(purchase, key)| Op::Cancel { purchase, key });
        prop_oneof![
            1 => create,
            6 => reserve,
            4 => purchase,
            2 => release,
            2 => advance,
            1 => Just(Op::ExpireDue),
            1 => pause,
            1 => edit,
            1 => end,
            2 => cancel,
            4 => join,
            1 => leave,
        ]
        .boxed()
    }

    fn preconditions(state: &Model, op: &Op) -> bool {
        let drop_ok = |d: usize| d < state.drops.len();
        match op {
            Op::CreateDrop { .. } => state.drops.len() < MAX_DROPS,
            Op::Reserve { drop, variant, .. } | Op::Join { drop, variant, .. } => {
                drop_ok(*drop) && variant.is_none_or(|v| v <= state.drops[*drop].totals.len())
            }
            Op::Leave { drop, .. } => drop_ok(*drop),
            Op::EditStock { drop, variant, .. } => {
                drop_ok(*drop) && *variant < state.drops[*drop].totals.len()
            }
            Op::Pause { drop, .. } | Op::End { drop, .. } => drop_ok(*drop),
            Op::Purchase { hold, .. } | Op::Release { hold, .. } => *hold < state.holds.len(),
            Op::Cancel { purchase, .. } => *purchase < state.purchases.len(),
            Op::Advance { .. } | Op::ExpireDue => true,
        }
    }

    fn apply(mut s: Model, op: &Op) -> Model {
        s.logged.clear();
        let outcome = match *op {
            Op::Release { hold, user } => s.release(hold, user),
            Op::Advance { secs } => {
                s.now += secs;
                Outcome::Nothing
            }
            Op::ExpireDue => Outcome::Expired(s.expire_all_due()),
            Op::Join {
                drop,
                user,
                variant,
                quantity,
            } => s.join(drop, user, variant, quantity),
            Op::Leave { drop, user } => s.leave(drop, user),
            _ => s.keyed(op),
        };
        s.last = Some(outcome);
        s
    }
}

struct Real {
    rt: tokio::runtime::Runtime,
    clock: ManualClock,
    store: MemoryStore,
    drops: Vec<DropId>,
    /// Each drop's variant ids, in the drop's order.
    variants: Vec<Vec<VariantId>>,
    /// Holds and purchases in the model's order: registered from the log,
    /// which is where offered holds first show.
    holds: Vec<ReservationId>,
    purchases: Vec<PurchaseId>,
    /// The store's ticket of each join, in the model's order.
    tickets: Vec<u64>,
    /// The highest log entry checked so far.
    log_head: u64,
    /// The highest log entry registered so far, and the entries
    /// registered but not yet checked.
    read_head: u64,
    unchecked: Vec<LogEntry>,
}

fn buyer_id(i: usize) -> String {
    format!("auth0|{i}")
}

/// Buyer `i`: an id that is no username, and a display name shared with
/// other buyers, so that a store keying anything by the name parts from
/// the model.
fn user(i: usize) -> Buyer {
    Buyer::new(
        BuyerId::parse(&buyer_id(i)).unwrap(),
        Username::parse(&format!("name{}", i % 2)).unwrap(),
    )
}

/// The model's index of buyer `id`.
fn user_index(id: &BuyerId) -> usize {
    id.as_str()
        .strip_prefix("auth0|")
        .and_then(|i| i.parse().ok())
        .expect("a model buyer")
}

fn outcome_of<T>(r: Result<T, DropError>, ok: impl FnOnce(T) -> Outcome) -> Outcome {
    match r {
        Ok(v) => ok(v),
        Err(e) => err(e.code()),
    }
}

impl Real {
    fn key(&self, op: &Op) -> Option<IdempotencyKey> {
        op.key().map(|k| {
            IdempotencyKey::new(op.caller(), format!("key-{k}"), op.fingerprint()).unwrap()
        })
    }

    fn hold_index(&self, id: ReservationId) -> usize {
        self.holds
            .iter()
            .position(|h| *h == id)
            .expect("a hold the model knows")
    }

    fn purchase_index(&self, id: PurchaseId) -> usize {
        self.purchases
            .iter()
            .position(|p| *p == id)
            .expect("a purchase the model knows")
    }

    /// Reads what the step logged and learns the ids it names: the holds
    /// it made (matched to the model's new holds by drop and buyer: a step
    /// makes at most one per buyer and drop, and a sweep visits drops in
    /// no fixed order), its purchases and its joins' tickets. Idempotent
    /// within a step.
    fn register(&mut self, model: &Model) {
        let store = self.store.clone();
        let new = self
            .block(store.events_after(self.read_head, drop_core::MAX_LOG_PAGE))
            .unwrap();
        let Some(last) = new.last() else { return };
        self.read_head = last.seq;
        let mut made = Vec::new();
        for e in &new {
            match &e.change {
                Change::HoldCreated {
                    reservation_id,
                    buyer_id,
                    offered,
                    ..
                } => made.push((
                    self.drop_index(e.drop_id),
                    user_index(buyer_id),
                    *reservation_id,
                    *offered,
                )),
                Change::PurchaseCompleted { purchase_id, .. } => self.purchases.push(*purchase_id),
                Change::WaitlistJoined { ticket, .. } => {
                    assert!(
                        self.tickets.last().is_none_or(|t| t < ticket),
                        "tickets increase: {e:?}"
                    );
                    self.tickets.push(*ticket);
                }
                _ => {}
            }
        }
        for (j, h) in model.holds.iter().enumerate().skip(self.holds.len()) {
            let at = made
                .iter()
                .position(|(d, u, _, _)| (*d, *u) == (h.drop, h.user))
                .unwrap_or_else(|| panic!("the model made hold {j} ({h:?}), the store did not"));
            let (_, _, id, offered) = made.remove(at);
            assert_eq!(offered, h.offered, "hold {j} offered or not");
            self.holds.push(id);
        }
        assert!(made.is_empty(), "holds the model did not make: {made:?}");
        self.unchecked.extend(new);
    }

    /// A place as the model sees it.
    fn place_view(&self, drop: usize, p: &WaitlistPlace) -> PlaceView {
        assert_eq!(p.drop_id, self.drops[drop]);
        PlaceView {
            variant: self.variants[drop]
                .iter()
                .position(|v| *v == p.variant_id)
                .expect("a variant of the drop"),
            quantity: p.quantity,
            position: p.position,
            set_aside: p.set_aside,
        }
    }

    fn drop_index(&self, id: DropId) -> usize {
        self.drops
            .iter()
            .position(|d| *d == id)
            .expect("a known drop")
    }
}

impl StateMachineTest for Real {
    type SystemUnderTest = Self;
    type Reference = Reference;

    fn init_test(_: &Model) -> Self {
        let clock = ManualClock::fixed();
        Real {
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
            store: MemoryStore::builder()
                .clock(Arc::new(clock.clone()))
                .retention(Duration::from_secs(RETENTION_SECS))
                .build(),
            clock,
            drops: Vec::new(),
            variants: Vec::new(),
            holds: Vec::new(),
            purchases: Vec::new(),
            tickets: Vec::new(),
            log_head: 0,
            read_head: 0,
            unchecked: Vec::new(),
        }
    }

    fn apply(mut sut: Self, model: &Model, op: Op) -> Self {
        let store = sut.store.clone();
        let key = sut.key(&op);
        let key = key.as_ref();
        let drop_applied = |sut: &Real, r: Result<drop_core::Applied<drop_core::DropState>, _>| {
            outcome_of(r, |a| Outcome::Drop {
                drop: sut.drop_index(a.value.drop.id),
                changed: a.changed,
                replayed: a.replayed,
            })
        };
        let got = match op {
            Op::CreateDrop {
                ref stocks,
                max_per_buyer,
                hold_secs,
                waitlist,
                ..
            } => {
                let variants = stocks
                    .iter()
                    .enumerate()
                    .map(|(i, s)| NewVariant::new(format!("v{i}"), *s));
                let new = NewDrop::with_variants(
                    "Model drop",
                    Money::from_minor(PRICE).unwrap(),
                    variants,
                )
                .max_per_buyer(max_per_buyer)
                .waitlist(waitlist)
                .hold(Duration::from_secs(hold_secs));
                let r = sut.rt.block_on(store.create_drop_with(new, key));
                if let Ok(a) = &r
                    && !a.replayed
                {
                    sut.drops.push(a.value.drop.id);
                    sut.variants
                        .push(a.value.drop.variants.iter().map(|v| v.id).collect());
                }
                drop_applied(&sut, r)
            }
            Op::Reserve {
                drop,
                user: u,
                variant,
                quantity,
                ..
            } => {
                let mut request = ReserveRequest::new().quantity(quantity);
                if let Some(v) = variant {
                    let id = sut.variants[drop]
                        .get(v)
                        .copied()
                        .unwrap_or_else(VariantId::new);
                    request = request.variant(id);
                }
                let r =
                    sut.rt
                        .block_on(store.reserve_with(sut.drops[drop], &user(u), request, key));
                sut.register(model);
                match r {
                    Ok(r) => Outcome::Reserved {
                        hold: sut.hold_index(r.reservation.id),
                        created: r.created,
                        replayed: r.replayed,
                        status: r.reservation.status,
                        quantity: r.reservation.quantity,
                    },
                    Err(DropError::HoldExists { reservation }) => {
                        Outcome::Err("HOLD_EXISTS", Some(sut.hold_index(reservation.id)))
                    }
                    Err(e) => err(e.code()),
                }
            }
            Op::Purchase { hold, user: u, .. } => {
                let r = sut
                    .rt
                    .block_on(store.purchase_with(sut.holds[hold], &user(u).id, key));
                sut.register(model);
                outcome_of(r, |p| {
                    assert_eq!(p.purchase.reservation_id, sut.holds[hold]);
                    Outcome::Purchased {
                        purchase: sut.purchase_index(p.purchase.id),
                        created: p.created,
                        replayed: p.replayed,
                        status: p.purchase.status,
                        amount: p.purchase.amount_paid.minor(),
                    }
                })
            }
            Op::Release { hold, user: u } => outcome_of(
                sut.rt.block_on(store.release(sut.holds[hold], &user(u).id)),
                |_| Outcome::Released,
            ),
            Op::Cancel { purchase, .. } => {
                let r = sut
                    .rt
                    .block_on(store.cancel_purchase(sut.purchases[purchase], key));
                outcome_of(r, |a| {
                    assert_eq!(a.value.status, PurchaseStatus::Cancelled);
                    Outcome::Cancelled {
                        purchase: sut.purchase_index(a.value.id),
                        changed: a.changed,
                        replayed: a.replayed,
                    }
                })
            }
            Op::Pause { drop, paused, .. } => {
                let r = sut
                    .rt
                    .block_on(store.set_paused(sut.drops[drop], paused, key));
                drop_applied(&sut, r)
            }
            Op::EditStock {
                drop,
                variant,
                total,
                ..
            } => {
                let patch = DropPatch::new().variant_stock(sut.variants[drop][variant], total);
                let r = sut
                    .rt
                    .block_on(store.update_drop(sut.drops[drop], &patch, key));
                drop_applied(&sut, r)
            }
            Op::End { drop, .. } => {
                let r = sut.rt.block_on(store.end_drop(sut.drops[drop], key));
                drop_applied(&sut, r)
            }
            Op::Advance { secs } => {
                sut.clock.advance(Duration::from_secs(secs));
                Outcome::Nothing
            }
            Op::ExpireDue => Outcome::Expired(sut.rt.block_on(store.expire_due(1000)).unwrap()),
            Op::Join {
                drop,
                user: u,
                variant,
                quantity,
            } => {
                let mut request = ReserveRequest::new().quantity(quantity);
                if let Some(v) = variant {
                    let id = sut.variants[drop]
                        .get(v)
                        .copied()
                        .unwrap_or_else(VariantId::new);
                    request = request.variant(id);
                }
                let buyer = user(u);
                let r = sut
                    .rt
                    .block_on(store.join_waitlist(sut.drops[drop], &buyer, request));
                sut.register(model);
                match r {
                    Ok(a) => {
                        assert!(!a.replayed);
                        assert_eq!(a.value.buyer_id, buyer.id);
                        assert_eq!(a.value.display_name, buyer.display_name);
                        Outcome::Joined {
                            place: sut.place_view(drop, &a.value),
                            changed: a.changed,
                        }
                    }
                    Err(DropError::HoldExists { reservation }) => {
                        Outcome::Err("HOLD_EXISTS", Some(sut.hold_index(reservation.id)))
                    }
                    Err(DropError::AlreadyInLine { place }) => {
                        let now = sut
                            .block(store.waitlist_place(sut.drops[drop], &buyer.id))
                            .unwrap();
                        assert_eq!(Some(*place), now, "ALREADY_IN_LINE carries the place");
                        err("ALREADY_IN_LINE")
                    }
                    Err(e) => err(e.code()),
                }
            }
            Op::Leave { drop, user: u } => {
                let r = sut
                    .rt
                    .block_on(store.leave_waitlist(sut.drops[drop], &user(u).id));
                outcome_of(r, |p| Outcome::Left(p.map(|p| sut.place_view(drop, &p))))
            }
        };
        assert_eq!(Some(&got), model.last.as_ref(), "answer to {op:?}");
        sut.check_log(model, &op);
        sut
    }

    fn check_invariants(sut: &Self, model: &Model) {
        sut.store.verify_invariants().unwrap();
        let store = &sut.store;
        for (i, id) in sut.drops.iter().enumerate() {
            let state = sut.block(store.get_drop(*id)).unwrap();
            let d = &model.drops[i];
            assert_eq!(state.drop.paused, d.paused, "paused, drop {i}");
            assert_eq!(
                state.drop.is_ended(sut.clock_now()),
                d.ended,
                "ended, drop {i}"
            );
            for (v, counters) in state.variants.iter().enumerate() {
                assert_eq!(counters.id, sut.variants[i][v]);
                // Overdue holds read as free before they are swept,
                // unless people wait for the variant.
                let want = (d.totals[v], model.reserved_read(i, v), model.sold(i, v));
                assert_eq!(
                    (counters.total, counters.reserved, counters.sold),
                    want,
                    "counters of drop {i} variant {v}"
                );
                assert!(
                    counters.reserved + counters.sold <= counters.total,
                    "oversold"
                );
                let line = &d.lines[v];
                assert_eq!(
                    counters.waitlist_length as usize,
                    line.places.len(),
                    "waitlistLength of drop {i} variant {v}"
                );
                if !line.places.is_empty() {
                    assert_eq!(counters.available(), 0, "no line-cutting");
                }
            }
            let sums = state.variants.iter().fold((0, 0, 0), |(t, r, s), v| {
                (t + v.total, r + v.reserved, s + v.sold)
            });
            assert_eq!(
                (state.stock.total, state.stock.reserved, state.stock.sold),
                sums,
                "drop {i}: the drop's stock is the sum of its variants'"
            );
            for u in 0..USERS {
                let place = sut.block(store.waitlist_place(*id, &user(u).id)).unwrap();
                let want = model.place_of(i, u).map(|(v, at)| {
                    let ticket = sut.tickets[d.lines[v].places[at].ticket];
                    (model.view(i, v, at), ticket)
                });
                assert_eq!(
                    place.map(|p| (sut.place_view(i, &p), p.ticket)),
                    want,
                    "place of buyer {u} in drop {i}"
                );
                let active = sut.block(store.active_hold(*id, &user(u).id)).unwrap();
                let expected = model.holds.iter().position(|h| {
                    h.drop == i && h.user == u && model.effective(h) == ReservationStatus::Active
                });
                assert_eq!(
                    active.as_ref().map(|r| r.id),
                    expected.map(|h| sut.holds[h])
                );
                // Units held plus bought never exceed the limit.
                let held = active.map_or(0, |h| h.quantity);
                assert!(
                    held + model.bought(i, u) <= d.max_per_buyer,
                    "over the limit"
                );
            }
        }
        for (i, id) in sut.holds.iter().enumerate() {
            let got = sut.block(store.get_reservation(*id));
            let h = &model.holds[i];
            if model.gone(h) {
                assert!(
                    matches!(got, Err(DropError::ReservationNotFound { .. })),
                    "hold {i} is past its retention: {got:?}"
                );
            } else {
                let got = got.unwrap();
                assert_eq!(got.status, model.effective(h), "status of hold {i}");
                assert_eq!(got.offered, h.offered, "hold {i} offered or not");
                assert_eq!(got.variant_id, sut.variants[h.drop][h.variant]);
            }
        }
        for (i, id) in sut.purchases.iter().enumerate() {
            let got = sut.block(store.get_purchase(*id)).unwrap();
            let p = &model.purchases[i];
            assert_eq!(got.status, p.status, "status of purchase {i}");
            assert_eq!(got.reservation_id, sut.holds[p.hold]);
            assert_eq!(
                got.cancelled_at.is_some(),
                p.status == PurchaseStatus::Cancelled
            );
        }
        // Each buyer's purchases, newest first, whole and page by page.
        for u in 0..USERS {
            let id = user(u).id;
            let want: Vec<PurchaseId> = (0..model.purchases.len())
                .rev()
                .filter(|&p| model.holds[model.purchases[p].hold].user == u)
                .map(|p| sut.purchases[p])
                .collect();
            let all = sut
                .block(store.buyer_purchases(&id, None, MAX_PAGE))
                .unwrap();
            assert_eq!(all.iter().map(|p| p.id).collect::<Vec<_>>(), want);
            let mut paged = Vec::new();
            let mut before = None;
            loop {
                let page = sut.block(store.buyer_purchases(&id, before, 2)).unwrap();
                let Some(last) = page.last() else { break };
                before = Some(last.id);
                paged.extend(page.iter().map(|p| p.id));
            }
            assert_eq!(paged, want, "pages of buyer {u}");
        }
        // What the store keeps is never less than the model says is visible.
        let visible = model.holds.iter().filter(|h| !model.gone(h)).count();
        assert!(
            sut.store.kept_holds() >= visible,
            "a visible hold was pruned"
        );
        assert_eq!(sut.store.kept_idempotency_records(), model.records.len());
    }
}

impl Real {
    /// Reads what the step appended to the log and compares it with what
    /// the model says it committed.
    fn check_log(&mut self, model: &Model, op: &Op) {
        let store = self.store.clone();
        self.register(model);
        let new = std::mem::take(&mut self.unchecked);
        let mut seq = self.log_head;
        for e in &new {
            assert_eq!(e.seq, seq + 1, "the memory store numbers without holes");
            seq = e.seq;
            assert_eq!(e.at, self.clock_now(), "logged at the store's time");
            match &e.change {
                Change::HoldCreated { reservation_id, .. }
                | Change::HoldExpired { reservation_id, .. }
                | Change::HoldReleased { reservation_id, .. } => {
                    assert!(self.holds.contains(reservation_id), "{e:?}");
                }
                Change::PurchaseCompleted { purchase_id, .. }
                | Change::PurchaseCancelled { purchase_id, .. } => {
                    assert!(self.purchases.contains(purchase_id), "{e:?}");
                }
                Change::DropUpdated { action, drop } => {
                    let want = match op {
                        Op::Pause { paused: true, .. } => DropAction::Paused,
                        Op::Pause { paused: false, .. } => DropAction::Resumed,
                        Op::End { .. } => DropAction::Ended,
                        _ => DropAction::Edited,
                    };
                    assert_eq!(*action, want, "{e:?}");
                    assert_eq!(drop.id, e.drop_id);
                }
                Change::DropCreated { drop } => assert_eq!(drop.id, e.drop_id),
                Change::WaitlistJoined { ticket, .. } | Change::WaitlistLeft { ticket, .. } => {
                    assert!(self.tickets.contains(ticket), "a ticket joined: {e:?}");
                }
                other => panic!("unexpected change {other:?}"),
            }
        }
        let mut got: Vec<(&'static str, usize)> = new
            .iter()
            .map(|e| (e.change.kind(), self.drop_index(e.drop_id)))
            .collect();
        let mut want = model.logged.clone();
        if matches!(op, Op::ExpireDue) {
            // The sweep visits drops in no fixed order.
            got.sort();
            want.sort();
        }
        assert_eq!(got, want, "what {op:?} logged");
        self.log_head = seq;
        assert_eq!(self.block(store.log_head()).unwrap(), seq);
    }

    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use drop_core::Clock;
        self.clock.now()
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

prop_state_machine! {
    #![proptest_config(Config { cases: cases(), failure_persistence: None, ..Config::default() })]

    #[test]
    fn memory_store_matches_the_model(sequential 1..60 => Real);
}

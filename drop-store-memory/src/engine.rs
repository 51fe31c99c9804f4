//! The store's synchronous core: every write is a short critical section
//! on one drop, with events published after the lock is released. Being
//! synchronous keeps it checkable by loom.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    Applied, Buyer, BuyerId, Change, Clock, DropError, DropEvent, DropId, DropPatch, DropState,
    EventBus, IdempotencyKey, IdempotencyRecord, MAX_PAGE, NewDrop, Purchase, PurchaseId,
    Purchased, Recorded, Reservation, ReservationId, ReserveRequest, Reserved, RevokedSessions,
    TopPurchaser, WaitlistPlace,
};
use drop_core::{
    Beacon, DrawRandom, DrawStatus, DrawSummary, DropInfo, Entry, SaleMode, VariantId,
};
use uuid::Uuid;

use crate::cell::DropCell;
use crate::log::EventLog;
use crate::records::Keyed;
use crate::revocations::Revocations;
use crate::shared::Shared;
use crate::sync::RwLock;

#[derive(Debug)]
pub(crate) struct Engine {
    clock: Arc<dyn Clock>,
    /// Written only when a drop is created; every operation takes a read
    /// lock for a lookup and then works under the drop's own lock.
    drops: RwLock<HashMap<DropId, Arc<DropCell>>>,
    shared: Arc<Shared>,
    /// How long ended holds stay visible after their `expiresAt`.
    retention: TimeDelta,
    /// Revoked sessions, apart from the drops.
    revocations: Revocations,
    /// Draw drops' seeds (at creation) and entries' receipts.
    random: Arc<dyn DrawRandom>,
    pub(crate) bus: EventBus,
}

/// The error for a key whose record names an entity of another kind than
/// the write asks for: the same key on another request.
fn reused(record: &IdempotencyRecord) -> DropError {
    DropError::IdempotencyKeyReused {
        key: record.key.clone(),
    }
}

impl Engine {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        bus: EventBus,
        retention: TimeDelta,
        log_retention: TimeDelta,
        random: Arc<dyn DrawRandom>,
    ) -> Self {
        Self {
            clock,
            random,
            drops: RwLock::new(HashMap::new()),
            shared: Arc::new(Shared::new(log_retention)),
            retention,
            revocations: Revocations::new(),
            bus,
        }
    }

    /// The store-wide event log.
    pub(crate) fn log(&self) -> &EventLog {
        &self.shared.log
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn cell(&self, id: DropId) -> Result<Arc<DropCell>, DropError> {
        self.drops
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or(DropError::DropNotFound { drop_id: id })
    }

    fn cells(&self) -> Vec<Arc<DropCell>> {
        self.drops
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn cell_of(&self, id: ReservationId) -> Result<Arc<DropCell>, DropError> {
        let drop_id = self
            .shared
            .reservations
            .get(id)
            .ok_or(DropError::ReservationNotFound { reservation_id: id })?;
        self.cell(drop_id)
    }

    fn cell_of_purchase(&self, id: PurchaseId) -> Result<Arc<DropCell>, DropError> {
        let drop_id = self
            .shared
            .purchases
            .get(id)
            .ok_or(DropError::PurchaseNotFound { purchase_id: id })?;
        self.cell(drop_id)
    }

    /// Runs a keyed write: a key already recorded replays without
    /// locking the drop; otherwise `act` runs (and may still find the key
    /// recorded, by a write that got the drop's lock first). Replays read
    /// the entity after every lock is released, as it may live in another
    /// drop.
    fn keyed<T>(
        &self,
        key: Option<&IdempotencyKey>,
        replay: impl Fn(&IdempotencyRecord) -> Result<T, DropError>,
        act: impl FnOnce() -> Result<Keyed<T>, DropError>,
    ) -> Result<T, DropError> {
        if let Some(key) = key
            && let Some(record) = self.shared.records.lookup(key)?
        {
            return replay(&record);
        }
        let out = match act()? {
            Keyed::Acted(value) => value,
            Keyed::Replay(record) => replay(&record)?,
        };
        if key.is_some() {
            self.prune_records();
        }
        Ok(out)
    }

    /// Forgets records past their retention, a few at a time, and lets
    /// the holds they kept go.
    fn prune_records(&self) {
        for id in self.shared.records.prune(self.now()) {
            if let Ok(cell) = self.cell_of(id) {
                cell.unpin(id);
            }
        }
    }

    fn replay_drop(&self, record: &IdempotencyRecord) -> Result<Applied<DropState>, DropError> {
        match record.entity {
            Recorded::Drop(id) => Ok(Applied::replay(self.get_drop(id)?)),
            _ => Err(reused(record)),
        }
    }

    fn replay_hold(&self, record: &IdempotencyRecord) -> Result<Reserved, DropError> {
        let Recorded::Reservation(id) = record.entity else {
            return Err(reused(record));
        };
        let hold = self
            .cell_of(id)?
            .replayed_hold(id, self.now())
            .ok_or(DropError::ReservationNotFound { reservation_id: id })?;
        Ok(Reserved::replay(hold, record.created))
    }

    fn replay_purchase(&self, record: &IdempotencyRecord) -> Result<Purchase, DropError> {
        match record.entity {
            Recorded::Purchase(id) => self.get_purchase(id),
            _ => Err(reused(record)),
        }
    }

    fn insert_drop(&self, new: NewDrop) -> Result<DropState, DropError> {
        let now = self.now();
        let (drop, variants) = new.into_drop(DropId::new(), now)?;
        // The seed is fixed now, so its hash is public from the start.
        let seed = (drop.mode == SaleMode::Draw).then(|| self.random.seed());
        let cell = Arc::new(DropCell::new(
            drop,
            variants,
            seed,
            self.shared.clone(),
            self.retention,
        ));
        let state = cell.state(now);
        // Logged before the drop can be found, so no entry about it can
        // come before its creation.
        self.shared.log.append(
            state.drop.id,
            now,
            [Change::DropCreated {
                drop: state.drop.clone(),
            }],
        );
        self.drops
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(state.drop.id, cell);
        Ok(state)
    }

    pub(crate) fn create_drop(
        &self,
        new: NewDrop,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        let replay = |r: &IdempotencyRecord| self.replay_drop(r);
        let created = self.keyed(key, replay, || match key {
            // No drop lock to serialise on yet: the records' lock is held
            // across the creation instead.
            Some(key) => self.shared.records.exclusive(key, self.now(), || {
                let state = self.insert_drop(new)?;
                let id = state.drop.id;
                Ok((Applied::new(state, true), Recorded::Drop(id), true))
            }),
            None => Ok(Keyed::Acted(Applied::new(self.insert_drop(new)?, true))),
        })?;
        if !created.replayed {
            self.bus.publish([DropEvent::DropCreated {
                drop: created.value.clone(),
            }]);
        }
        Ok(created)
    }

    pub(crate) fn list_drops(&self) -> Vec<DropState> {
        let now = self.now();
        let mut out: Vec<DropState> = self
            .cells()
            .iter()
            .map(|c| c.state(now))
            .filter(|s| !s.drop.is_ended(now))
            .collect();
        out.sort_by_key(|s| {
            (
                s.drop.starts_at.unwrap_or(s.drop.created_at),
                s.drop.created_at,
                s.drop.id,
            )
        });
        out
    }

    pub(crate) fn list_all_drops(&self) -> Vec<DropState> {
        let now = self.now();
        let mut cells = self.cells();
        cells.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.id)));
        cells.iter().map(|c| c.state(now)).collect()
    }

    pub(crate) fn get_drop(&self, id: DropId) -> Result<DropState, DropError> {
        Ok(self.cell(id)?.state(self.now()))
    }

    pub(crate) fn reserve(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError> {
        let replay = |r: &IdempotencyRecord| self.replay_hold(r);
        self.keyed(key, replay, || {
            let cell = self.cell(drop_id)?;
            let mut events = Vec::new();
            // The cell indexes a new hold under its lock, before any other
            // caller can see it.
            let result = cell.reserve(
                ReservationId::new(),
                buyer,
                request,
                self.now(),
                key,
                &mut events,
            );
            self.bus.publish(events);
            result
        })
    }

    pub(crate) fn purchase(
        &self,
        id: ReservationId,
        buyer: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError> {
        let replay =
            |r: &IdempotencyRecord| Ok(Purchased::replay(self.replay_purchase(r)?, r.created));
        self.keyed(key, replay, || {
            let cell = self.cell_of(id)?;
            let mut events = Vec::new();
            let result = cell.purchase(id, buyer, self.now(), key, &mut events);
            self.bus.publish(events);
            result
        })
    }

    pub(crate) fn release(
        &self,
        id: ReservationId,
        buyer: &BuyerId,
    ) -> Result<Reservation, DropError> {
        let cell = self.cell_of(id)?;
        let mut events = Vec::new();
        let result = cell.release(id, buyer, self.now(), &mut events);
        self.bus.publish(events);
        result
    }

    pub(crate) fn join_waitlist(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
    ) -> Result<Applied<WaitlistPlace>, DropError> {
        let cell = self.cell(drop_id)?;
        let mut events = Vec::new();
        let result = cell.join_waitlist(buyer, request, self.now(), &mut events);
        self.bus.publish(events);
        result
    }

    pub(crate) fn leave_waitlist(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        let cell = self.cell(drop_id)?;
        let mut events = Vec::new();
        let left = cell.leave_waitlist(buyer, self.now(), &mut events);
        self.bus.publish(events);
        Ok(left)
    }

    pub(crate) fn waitlist_place(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        Ok(self.cell(drop_id)?.waitlist_place(buyer))
    }

    pub(crate) fn enter_draw(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        variant: Option<VariantId>,
    ) -> Result<Applied<Entry>, DropError> {
        self.cell(drop_id)?
            .enter_draw(buyer, variant, || self.random.receipt(), self.now())
    }

    pub(crate) fn withdraw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        self.cell(drop_id)?.withdraw_entry(buyer, self.now())
    }

    pub(crate) fn draw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        Ok(self.cell(drop_id)?.draw_entry(buyer))
    }

    pub(crate) fn draw_status(&self, drop_id: DropId) -> Result<DrawStatus, DropError> {
        self.cell(drop_id)?.draw_status()
    }

    /// Draw drops due now, earliest `drawAt` first (then oldest drop, so
    /// the order never depends on random ids alone), at most `limit`.
    pub(crate) fn due_draws(&self, limit: usize) -> Vec<DropInfo> {
        let now = self.now();
        let mut due: Vec<DropInfo> = self
            .cells()
            .iter()
            .map(|c| c.info())
            .filter(|d| d.draw_due(now))
            .collect();
        due.sort_by_key(|d| (d.draw_at, d.created_at, d.id));
        due.truncate(limit);
        due
    }

    /// The earliest `drawAt` of the draws still to be made.
    pub(crate) fn next_draw_at(&self) -> Option<DateTime<Utc>> {
        self.cells()
            .iter()
            .map(|c| c.info())
            .filter(|d| d.mode == SaleMode::Draw && d.drawn_at.is_none())
            .filter_map(|d| d.draw_at.filter(|at| d.ends_at.is_none_or(|end| end > *at)))
            .min()
    }

    pub(crate) fn run_draw(
        &self,
        drop_id: DropId,
        beacon: Option<Beacon>,
    ) -> Result<Option<DrawSummary>, DropError> {
        let cell = self.cell(drop_id)?;
        let mut events = Vec::new();
        let drawn = cell.run_draw(beacon, self.now(), &mut events);
        self.bus.publish(events);
        drawn
    }

    pub(crate) fn entry_count(&self, drop_id: DropId) -> Result<usize, DropError> {
        Ok(self.cell(drop_id)?.entry_count())
    }

    pub(crate) fn get_purchase(&self, id: PurchaseId) -> Result<Purchase, DropError> {
        self.cell_of_purchase(id)?
            .purchase_by_id(id)
            .ok_or(DropError::PurchaseNotFound { purchase_id: id })
    }

    pub(crate) fn buyer_purchases(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(DropError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let page = self.shared.buyers.page(buyer, before, limit)?;
        page.into_iter()
            .map(|(id, drop_id)| {
                self.cell(drop_id)?
                    .purchase_by_id(id)
                    .ok_or(DropError::PurchaseNotFound { purchase_id: id })
            })
            .collect()
    }

    /// An admin write on one drop, keyed and announced.
    fn drop_write(
        &self,
        drop_id: DropId,
        key: Option<&IdempotencyKey>,
        act: impl FnOnce(
            &DropCell,
            DateTime<Utc>,
            &mut Vec<DropEvent>,
        ) -> Result<Keyed<Applied<DropState>>, DropError>,
    ) -> Result<Applied<DropState>, DropError> {
        let replay = |r: &IdempotencyRecord| self.replay_drop(r);
        self.keyed(key, replay, || {
            let cell = self.cell(drop_id)?;
            let mut events = Vec::new();
            let result = act(&cell, self.now(), &mut events);
            self.bus.publish(events);
            result
        })
    }

    pub(crate) fn update_drop(
        &self,
        drop_id: DropId,
        patch: &DropPatch,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.drop_write(drop_id, key, |cell, now, events| {
            cell.update(patch, now, key, events)
        })
    }

    pub(crate) fn set_paused(
        &self,
        drop_id: DropId,
        paused: bool,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.drop_write(drop_id, key, |cell, now, events| {
            cell.set_paused(paused, now, key, events)
        })
    }

    pub(crate) fn end_drop(
        &self,
        drop_id: DropId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.drop_write(drop_id, key, |cell, now, events| cell.end(now, key, events))
    }

    pub(crate) fn cancel_purchase(
        &self,
        id: PurchaseId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Purchase>, DropError> {
        let replay = |r: &IdempotencyRecord| Ok(Applied::replay(self.replay_purchase(r)?));
        self.keyed(key, replay, || {
            let cell = self.cell_of_purchase(id)?;
            let mut events = Vec::new();
            let result = cell.cancel_purchase(id, self.now(), key, &mut events);
            self.bus.publish(events);
            result
        })
    }

    pub(crate) fn idempotency_record(&self, caller: &str, key: &str) -> Option<IdempotencyRecord> {
        self.shared.records.get(caller, key)
    }

    pub(crate) fn get_reservation(&self, id: ReservationId) -> Result<Reservation, DropError> {
        self.cell_of(id)?
            .reservation(id, self.now())
            .ok_or(DropError::ReservationNotFound { reservation_id: id })
    }

    pub(crate) fn active_hold(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Reservation>, DropError> {
        Ok(self.cell(drop_id)?.active_hold(buyer, self.now()))
    }

    pub(crate) fn top_purchasers(
        &self,
        drop_id: DropId,
        limit: usize,
    ) -> Result<Vec<TopPurchaser>, DropError> {
        Ok(self.cell(drop_id)?.top_purchasers(limit))
    }

    pub(crate) fn expire_due(&self, limit: usize) -> usize {
        let now = self.now();
        let mut total = 0;
        for cell in self.cells() {
            if total >= limit {
                break;
            }
            let mut events = Vec::new();
            total += cell.expire_due(now, limit - total, &mut events);
            self.bus.publish(events);
        }
        // The sweeper runs even when no keyed write comes, so records
        // past their retention do not wait for one.
        self.prune_records();
        total
    }

    pub(crate) fn next_expiry(&self) -> Option<DateTime<Utc>> {
        self.cells().iter().filter_map(|c| c.next_expiry()).min()
    }

    pub(crate) fn revoke_session(&self, id: Uuid, expires_at: DateTime<Utc>) {
        self.revocations.revoke(id, expires_at, self.now());
    }

    pub(crate) fn revoked_sessions(&self, since: Option<DateTime<Utc>>) -> RevokedSessions {
        self.revocations.list(since, self.now())
    }

    pub(crate) fn kept_holds(&self) -> usize {
        self.cells().iter().map(|c| c.kept_holds()).sum()
    }

    pub(crate) fn kept_records(&self) -> usize {
        self.shared.records.len()
    }

    pub(crate) fn verify(&self) -> Result<(), String> {
        self.cells().iter().try_for_each(|c| c.verify())?;
        let (indexed, kept) = (self.shared.reservations.len(), self.kept_holds());
        if indexed != kept {
            return Err(format!(
                "{indexed} reservation ids indexed but {kept} holds kept"
            ));
        }
        Ok(())
    }
}

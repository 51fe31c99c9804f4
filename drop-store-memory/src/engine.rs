//! The store's synchronous core: every operation is a short critical
//! section on one drop, with events published after the lock is released.
//! Being synchronous keeps it checkable by loom.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    Buyer, BuyerId, Clock, DropError, DropEvent, DropId, DropState, EventBus, NewDrop, Purchase,
    Reservation, ReservationId, Reserved, RevokedSessions, TopPurchaser, Transition,
};
use uuid::Uuid;

use crate::cell::DropCell;
use crate::index::ReservationIndex;
use crate::revocations::Revocations;
use crate::sync::RwLock;

#[derive(Debug)]
pub(crate) struct Engine {
    clock: Arc<dyn Clock>,
    /// Written only when a drop is created; every operation takes a read
    /// lock for a lookup and then works under the drop's own lock.
    drops: RwLock<HashMap<DropId, Arc<DropCell>>>,
    index: Arc<ReservationIndex>,
    /// How long ended holds stay visible after their `expiresAt`.
    retention: TimeDelta,
    /// Revoked sessions, apart from the drops.
    revocations: Revocations,
    pub(crate) bus: EventBus,
}

impl Engine {
    pub(crate) fn new(clock: Arc<dyn Clock>, bus: EventBus, retention: TimeDelta) -> Self {
        Self {
            clock,
            drops: RwLock::new(HashMap::new()),
            index: Arc::new(ReservationIndex::new()),
            retention,
            revocations: Revocations::new(),
            bus,
        }
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
            .index
            .get(id)
            .ok_or(DropError::ReservationNotFound { reservation_id: id })?;
        self.cell(drop_id)
    }

    pub(crate) fn create_drop(&self, new: NewDrop) -> Result<DropState, DropError> {
        let now = self.now();
        let drop = new.into_drop(DropId::new(), now)?;
        let cell = Arc::new(DropCell::new(drop, self.index.clone(), self.retention));
        let state = cell.state(now);
        self.drops
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(state.drop.id, cell);
        self.bus.publish([DropEvent::DropCreated {
            drop: state.clone(),
        }]);
        Ok(state)
    }

    pub(crate) fn list_drops(&self) -> Vec<DropState> {
        let now = self.now();
        let mut out: Vec<DropState> = self
            .cells()
            .iter()
            .filter(|c| !c.drop.is_ended(now))
            .map(|c| c.state(now))
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

    pub(crate) fn get_drop(&self, id: DropId) -> Result<DropState, DropError> {
        Ok(self.cell(id)?.state(self.now()))
    }

    pub(crate) fn reserve(&self, drop_id: DropId, buyer: &Buyer) -> Result<Reserved, DropError> {
        let cell = self.cell(drop_id)?;
        let id = ReservationId::new();
        let mut events = Vec::new();
        // The cell indexes a new hold under its lock, before any other
        // caller can see it.
        let result = cell.reserve(id, buyer, self.now(), &mut events);
        self.bus.publish(events);
        result
    }

    pub(crate) fn transition(
        &self,
        id: ReservationId,
        transition: Transition,
        buyer: &BuyerId,
    ) -> Result<(Reservation, Option<Purchase>), DropError> {
        let cell = self.cell_of(id)?;
        let mut events = Vec::new();
        let result = cell.transition(id, transition, buyer, self.now(), &mut events);
        self.bus.publish(events);
        result
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

    pub(crate) fn verify(&self) -> Result<(), String> {
        self.cells().iter().try_for_each(|c| c.verify())?;
        let (indexed, kept) = (self.index.len(), self.kept_holds());
        if indexed != kept {
            return Err(format!(
                "{indexed} reservation ids indexed but {kept} holds kept"
            ));
        }
        Ok(())
    }
}

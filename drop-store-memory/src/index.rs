//! Which drop a reservation belongs to, so purchase and release (which
//! name only the reservation) find the right drop lock.
//!
//! Sharded by the id's random bits: every reserve writes here, and one
//! map behind one lock would serialise all drops again.

use std::collections::HashMap;

use drop_core::{DropId, ReservationId};

use crate::sync::RwLock;

#[cfg(not(dropkit_loom))]
const SHARDS: usize = 64;
// Fewer objects keep the model checker's state space small.
#[cfg(dropkit_loom)]
const SHARDS: usize = 2;

#[derive(Debug)]
pub(crate) struct ReservationIndex {
    shards: Box<[RwLock<HashMap<ReservationId, DropId>>]>,
}

impl ReservationIndex {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, id: ReservationId) -> &RwLock<HashMap<ReservationId, DropId>> {
        // v4 UUIDs are random in their low bytes.
        let low = id.as_uuid().as_u128() as usize;
        &self.shards[low % SHARDS]
    }

    pub(crate) fn insert(&self, id: ReservationId, drop_id: DropId) {
        self.shard(id)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, drop_id);
    }

    pub(crate) fn remove(&self, id: ReservationId) {
        self.shard(id)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }

    /// How many ids are indexed (for checks: it locks every shard in turn).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub(crate) fn get(&self, id: ReservationId) -> Option<DropId> {
        self.shard(id)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }
}

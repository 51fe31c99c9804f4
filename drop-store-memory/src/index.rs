//! Which drop a reservation or a purchase belongs to, so the operations
//! that name only the reservation or the purchase find the right drop lock.
//!
//! Sharded by the id's random bits: every reserve writes here, and one
//! map behind one lock would serialise all drops again.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

use drop_core::{DropId, PurchaseId, ReservationId};

use crate::sync::RwLock;

#[cfg(not(dropkit_loom))]
const SHARDS: usize = 64;
// Fewer objects keep the model checker's state space small.
#[cfg(dropkit_loom)]
const SHARDS: usize = 2;

/// An id whose bits are random enough to pick a shard by.
pub(crate) trait RandomId: Copy + Eq + Hash + Debug {
    fn bits(&self) -> u128;
}

impl RandomId for ReservationId {
    fn bits(&self) -> u128 {
        self.as_uuid().as_u128()
    }
}

impl RandomId for PurchaseId {
    fn bits(&self) -> u128 {
        self.as_uuid().as_u128()
    }
}

/// A sharded map from an id to the drop that owns it.
#[derive(Debug)]
pub(crate) struct DropIndex<K: RandomId> {
    shards: Box<[RwLock<HashMap<K, DropId>>]>,
}

impl<K: RandomId> DropIndex<K> {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, id: K) -> &RwLock<HashMap<K, DropId>> {
        // v4 UUIDs are random in their low bytes.
        let low = id.bits() as usize;
        &self.shards[low % SHARDS]
    }

    pub(crate) fn insert(&self, id: K, drop_id: DropId) {
        self.shard(id)
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, drop_id);
    }

    pub(crate) fn remove(&self, id: K) {
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

    pub(crate) fn get(&self, id: K) -> Option<DropId> {
        self.shard(id)
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .copied()
    }
}

//! Each buyer's purchases across every drop, newest last, so a buyer's
//! history pages without visiting every drop.
//!
//! Written by a purchase inside its drop's critical section (lock order:
//! the drop's lock, then this one), so a purchase is listed from the
//! moment anyone can be told of it. Sharded by buyer, so purchases in
//! different drops by different buyers rarely meet on one lock.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};

use drop_core::{BuyerId, DropError, DropId, PurchaseId};

use crate::sync::{Mutex, lock};

#[cfg(not(dropkit_loom))]
const SHARDS: usize = 16;
// Fewer objects keep the model checker's state space small.
#[cfg(dropkit_loom)]
const SHARDS: usize = 2;

#[derive(Debug)]
pub(crate) struct BuyerPurchases {
    shards: Box<[Mutex<Inner>]>,
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Inner {
    /// Each buyer's purchases in commit order.
    by_buyer: HashMap<BuyerId, Vec<(PurchaseId, DropId)>>,
    /// Where each purchase of this shard's buyers sits in its buyer's
    /// list, so a page starting after it is found without a scan.
    position: HashMap<PurchaseId, usize>,
}

impl BuyerPurchases {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Inner::default())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The shard holding `buyer`'s list (and the positions in it).
    fn shard(&self, buyer: &BuyerId) -> &Mutex<Inner> {
        let h = self.hasher.hash_one(buyer.as_str()) as usize;
        &self.shards[h % SHARDS]
    }

    /// Lists a new purchase as `buyer`'s newest.
    pub(crate) fn record(&self, buyer: &BuyerId, id: PurchaseId, drop_id: DropId) {
        let mut g = lock(self.shard(buyer));
        let list = g.by_buyer.entry(buyer.clone()).or_default();
        list.push((id, drop_id));
        let at = list.len() - 1;
        g.position.insert(id, at);
    }

    /// Up to `limit` of `buyer`'s purchases, newest first, starting after
    /// `before` (which must be one of theirs: `PURCHASE_NOT_FOUND`
    /// otherwise).
    pub(crate) fn page(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<(PurchaseId, DropId)>, DropError> {
        let g = lock(self.shard(buyer));
        let list = g.by_buyer.get(buyer).map(Vec::as_slice).unwrap_or_default();
        let end = match before {
            None => list.len(),
            Some(id) => g
                .position
                .get(&id)
                .copied()
                .filter(|&at| list.get(at).is_some_and(|(p, _)| *p == id))
                .ok_or(DropError::PurchaseNotFound { purchase_id: id })?,
        };
        Ok(list[..end].iter().rev().take(limit).copied().collect())
    }
}

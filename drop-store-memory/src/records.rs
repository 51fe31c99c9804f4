//! Idempotency records: (caller, key) → what the first write did.
//!
//! A keyed write claims its key inside its drop's critical section (lock
//! order: the drop's lock, then this one) and completes the claim there
//! once it has acted, so a second call with the same key on the same drop
//! always finds the finished record and replays it. A claim still open is
//! only ever seen by a write on another drop (or a drop creation), which
//! is a different request racing the first: it is told
//! `IDEMPOTENCY_IN_PROGRESS`. A refused write gives its claim back, so it
//! records nothing.
//!
//! Records are kept [`IDEMPOTENCY_RETENTION`] and then pruned a few at a
//! time by later keyed writes and by sweeps.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    DropError, IDEMPOTENCY_RETENTION, IdempotencyKey, IdempotencyRecord, Recorded, ReservationId,
};

use crate::sync::{Mutex, lock};

/// Most records one prune removes, so a backlog that comes due at once is
/// spread over later writes.
const PRUNE_BATCH: usize = 16;

type Slot = (String, String);

#[derive(Debug)]
pub(crate) struct Records {
    inner: Mutex<Inner>,
    retention: TimeDelta,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Slot, Entry>,
    /// Finished records in the order they were written, for pruning.
    order: VecDeque<(DateTime<Utc>, Slot)>,
}

#[derive(Debug)]
enum Entry {
    /// A write holding the key is acting right now.
    Claimed,
    Done(IdempotencyRecord),
}

/// What a keyed write in a critical section did: acted, or found the key
/// recorded and must replay the record (after releasing its locks, since
/// the record's entity may live under another drop's lock).
#[derive(Debug)]
pub(crate) enum Keyed<T> {
    Acted(T),
    Replay(IdempotencyRecord),
}

/// The answer to a claim.
#[derive(Debug)]
pub(crate) enum Claim<'a> {
    /// The key is free: act, then [`Claimed::complete`] it.
    Fresh(Claimed<'a>),
    /// The key answered an earlier write with the same fingerprint.
    Replay(IdempotencyRecord),
}

/// A key held by a write that is acting. Dropped without
/// [`complete`](Self::complete) (the write was refused, or panicked), it
/// frees the key again.
#[derive(Debug)]
pub(crate) struct Claimed<'a> {
    records: &'a Records,
    key: &'a IdempotencyKey,
    done: bool,
}

fn slot(caller: &str, key: &str) -> Slot {
    (caller.to_owned(), key.to_owned())
}

impl Records {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            retention: TimeDelta::from_std(IDEMPOTENCY_RETENTION).expect("24 h fits"),
        }
    }

    /// The finished record of `key` matching its fingerprint, if any;
    /// `IDEMPOTENCY_KEY_REUSED` for another fingerprint. A key claimed by
    /// a write in flight reads as free here: the claim under the drop's
    /// lock decides.
    pub(crate) fn lookup(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, DropError> {
        let g = lock(&self.inner);
        match g.entries.get(&slot(key.caller(), key.key())) {
            Some(Entry::Done(record)) => record.matches(key).map(|()| Some(record.clone())),
            Some(Entry::Claimed) | None => Ok(None),
        }
    }

    /// The finished record of `caller`'s `key`, if kept.
    pub(crate) fn get(&self, caller: &str, key: &str) -> Option<IdempotencyRecord> {
        match lock(&self.inner).entries.get(&slot(caller, key)) {
            Some(Entry::Done(record)) => Some(record.clone()),
            _ => None,
        }
    }

    /// Claims `key` for a write about to act (call it under the drop's
    /// lock). Errors: `IDEMPOTENCY_KEY_REUSED` (recorded with another
    /// fingerprint), `IDEMPOTENCY_IN_PROGRESS` (claimed by a write on
    /// another drop).
    pub(crate) fn claim<'a>(&'a self, key: &'a IdempotencyKey) -> Result<Claim<'a>, DropError> {
        let mut g = lock(&self.inner);
        match g.entries.get(&slot(key.caller(), key.key())) {
            Some(Entry::Done(record)) => {
                record.matches(key)?;
                return Ok(Claim::Replay(record.clone()));
            }
            Some(Entry::Claimed) => {
                return Err(DropError::IdempotencyInProgress {
                    key: key.key().to_owned(),
                });
            }
            None => {}
        }
        g.entries
            .insert(slot(key.caller(), key.key()), Entry::Claimed);
        Ok(Claim::Fresh(Claimed {
            records: self,
            key,
            done: false,
        }))
    }

    /// Runs `act` with the records locked throughout: for a write that has
    /// no drop lock to serialise on (creating a drop), so two first calls
    /// with one key act once. `act` must not take a drop's lock.
    pub(crate) fn exclusive<T>(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
        act: impl FnOnce() -> Result<(T, Recorded, bool), DropError>,
    ) -> Result<Keyed<T>, DropError> {
        let mut g = lock(&self.inner);
        let slot = slot(key.caller(), key.key());
        match g.entries.get(&slot) {
            Some(Entry::Done(record)) => {
                record.matches(key)?;
                return Ok(Keyed::Replay(record.clone()));
            }
            Some(Entry::Claimed) => {
                return Err(DropError::IdempotencyInProgress {
                    key: key.key().to_owned(),
                });
            }
            None => {}
        }
        let (value, entity, created) = act()?;
        g.finish(slot, IdempotencyRecord::new(key, entity, created, now));
        Ok(Keyed::Acted(value))
    }

    /// Forgets up to a batch of records older than the retention; answers
    /// the holds they named, which their drops may now forget too.
    pub(crate) fn prune(&self, now: DateTime<Utc>) -> Vec<ReservationId> {
        let Some(cutoff) = now.checked_sub_signed(self.retention) else {
            return Vec::new();
        };
        let mut g = lock(&self.inner);
        let mut released = Vec::new();
        for _ in 0..PRUNE_BATCH {
            match g.order.front() {
                Some((at, _)) if *at <= cutoff => {
                    let (_, slot) = g.order.pop_front().expect("a front entry");
                    if let Some(Entry::Done(record)) = g.entries.remove(&slot)
                        && let Recorded::Reservation(id) = record.entity
                    {
                        released.push(id);
                    }
                }
                _ => break,
            }
        }
        released
    }

    /// How many finished records are kept.
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).order.len()
    }
}

impl Inner {
    fn finish(&mut self, slot: Slot, record: IdempotencyRecord) {
        self.order.push_back((record.recorded_at, slot.clone()));
        self.entries.insert(slot, Entry::Done(record));
    }
}

impl Claimed<'_> {
    /// Records what the write did, turning the claim into a record.
    pub(crate) fn complete(mut self, entity: Recorded, created: bool, now: DateTime<Utc>) {
        let record = IdempotencyRecord::new(self.key, entity, created, now);
        lock(&self.records.inner).finish(slot(self.key.caller(), self.key.key()), record);
        self.done = true;
    }
}

impl Drop for Claimed<'_> {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.records.inner)
                .entries
                .remove(&slot(self.key.caller(), self.key.key()));
        }
    }
}

//! The store-wide event log: every committed change, numbered.
//!
//! A drop's critical section appends its changes while it still holds the
//! drop's lock, taking the log's own lock after it (never the other way
//! round). Numbers are handed out and entries become visible under that one
//! lock, so numbering order is visibility order: a reader that saw entry
//! `n` can never later find an entry below `n` it had not seen.
//!
//! Entries sit in one deque in number order, without holes, so a read
//! finds its place by arithmetic; each drop keeps the numbers of its own
//! entries for [`drop_history`](EventLog::drop_history). Appending prunes
//! a bounded number of entries past the retention from the front, never
//! one a cursor has not passed.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    Change, CursorClaim, CursorInfo, DropAction, DropError, DropEvent, DropId, LogEntry,
    MAX_LOG_PAGE, check_cursor_name,
};
use uuid::Uuid;

use crate::ledger::Ledger;
use crate::sync::{Mutex, lock};

/// Most entries one append prunes: enough to drain a backlog (a retention
/// shortened, a cursor removed) over later appends, few enough that no
/// write stalls on it.
const PRUNE_PER_APPEND: usize = 8;

#[derive(Debug)]
pub(crate) struct EventLog {
    inner: Mutex<Inner>,
    /// How long an entry is kept at least.
    retention: TimeDelta,
}

#[derive(Debug, Default)]
struct Inner {
    /// The entries kept, by number, consecutive.
    entries: VecDeque<LogEntry>,
    /// The last number handed out (0 before any).
    last: u64,
    /// The highest number pruned (0 before any): entries above it are kept.
    horizon: u64,
    /// Each drop's entries kept, and the highest number of its own pruned.
    drops: HashMap<DropId, DropEntries>,
    cursors: HashMap<String, Cursor>,
}

#[derive(Debug, Default)]
struct DropEntries {
    seqs: VecDeque<u64>,
    horizon: u64,
}

#[derive(Debug)]
struct Cursor {
    position: u64,
    holder: Option<Uuid>,
    lease_until: DateTime<Utc>,
}

impl Cursor {
    fn held_by(&self, holder: Uuid, now: DateTime<Utc>) -> bool {
        self.holder == Some(holder) && now < self.lease_until
    }
}

/// The change a committed event stands for, completed from the ledger it
/// was committed to (still locked, and not yet pruned): `None` for what
/// the log leaves out (stock snapshots, which are state).
fn change_of(ledger: &Ledger, event: &DropEvent, action: Option<DropAction>) -> Option<Change> {
    Some(match event {
        DropEvent::DropCreated { drop } => Change::DropCreated {
            drop: drop.drop.clone(),
        },
        DropEvent::DropUpdated { drop } => Change::DropUpdated {
            // Only admin writes emit it, and each names its action.
            action: action.unwrap_or(DropAction::Edited),
            drop: drop.drop.clone(),
        },
        DropEvent::HoldCreated {
            reservation_id,
            buyer_id,
            variant_id,
            quantity,
            expires_at,
            offered,
            ..
        } => Change::HoldCreated {
            reservation_id: *reservation_id,
            buyer_id: buyer_id.clone(),
            display_name: ledger.holds.get(reservation_id)?.display_name.clone(),
            variant_id: *variant_id,
            quantity: *quantity,
            expires_at: *expires_at,
            offered: *offered,
        },
        DropEvent::PurchaseCompleted {
            purchase_id,
            reservation_id,
            buyer_id,
            variant_id,
            quantity,
            amount_paid,
            display_name,
            ..
        } => Change::PurchaseCompleted {
            purchase_id: *purchase_id,
            reservation_id: *reservation_id,
            buyer_id: buyer_id.clone(),
            display_name: display_name.clone(),
            variant_id: *variant_id,
            quantity: *quantity,
            amount: *amount_paid,
        },
        DropEvent::HoldReleased { reservation_id, .. } => {
            let hold = ledger.holds.get(reservation_id)?;
            Change::HoldReleased {
                reservation_id: *reservation_id,
                buyer_id: hold.buyer_id.clone(),
                variant_id: hold.variant_id,
                quantity: hold.quantity,
            }
        }
        DropEvent::HoldExpired { reservation_id, .. } => {
            let hold = ledger.holds.get(reservation_id)?;
            Change::HoldExpired {
                reservation_id: *reservation_id,
                buyer_id: hold.buyer_id.clone(),
                variant_id: hold.variant_id,
                quantity: hold.quantity,
            }
        }
        DropEvent::PurchaseCancelled {
            purchase_id,
            reservation_id,
            buyer_id,
            variant_id,
            quantity,
            ..
        } => Change::PurchaseCancelled {
            purchase_id: *purchase_id,
            reservation_id: *reservation_id,
            buyer_id: buyer_id.clone(),
            variant_id: *variant_id,
            quantity: *quantity,
            amount: ledger.purchase_by_id(*purchase_id)?.amount_paid,
        },
        DropEvent::WaitlistJoined {
            variant_id,
            buyer_id,
            quantity,
            ticket,
            ..
        } => Change::WaitlistJoined {
            buyer_id: buyer_id.clone(),
            display_name: ledger
                .place_by_ticket(*variant_id, *ticket)?
                .buyer
                .display_name
                .clone(),
            variant_id: *variant_id,
            quantity: *quantity,
            ticket: *ticket,
        },
        DropEvent::WaitlistLeft {
            variant_id,
            buyer_id,
            ticket,
            reason,
            ..
        } => Change::WaitlistLeft {
            buyer_id: buyer_id.clone(),
            variant_id: *variant_id,
            // The place is gone from the line: the ledger keeps it until
            // the change is logged.
            quantity: ledger.place_by_ticket(*variant_id, *ticket)?.quantity,
            ticket: *ticket,
            reason: *reason,
        },
        DropEvent::DrawCompleted {
            drawn_at,
            entries,
            winners,
            waiting,
            ..
        } => Change::DrawCompleted {
            drawn_at: *drawn_at,
            entries: *entries,
            winners: *winners,
            waiting: *waiting,
        },
        _ => return None,
    })
}

impl EventLog {
    pub(crate) fn new(retention: TimeDelta) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            retention,
        }
    }

    /// Appends what `events` committed on drop `drop_id` at `now`, in
    /// their order, completing them from `ledger` (the drop's, locked by
    /// the caller). `action` names the admin write, for `DropUpdated`.
    pub(crate) fn append_events(
        &self,
        ledger: &Ledger,
        drop_id: DropId,
        events: &[DropEvent],
        action: Option<DropAction>,
        now: DateTime<Utc>,
    ) {
        if !events
            .iter()
            .any(|e| !matches!(e, DropEvent::StockChanged { .. }))
        {
            return;
        }
        self.append(
            drop_id,
            now,
            events.iter().filter_map(|e| {
                let change = change_of(ledger, e, action);
                // The holds and purchases named are in the ledger until
                // the critical section prunes, after this.
                debug_assert!(
                    change.is_some() || matches!(e, DropEvent::StockChanged { .. }),
                    "a committed change without its record: {e:?}"
                );
                change
            }),
        );
    }

    /// Appends `changes` on drop `drop_id` at `now`, then prunes a few
    /// entries past the retention.
    pub(crate) fn append(
        &self,
        drop_id: DropId,
        now: DateTime<Utc>,
        changes: impl IntoIterator<Item = Change>,
    ) {
        let mut g = lock(&self.inner);
        let g = &mut *g;
        let mut appended = 0;
        for change in changes {
            g.last += 1;
            let seq = g.last;
            g.entries
                .push_back(LogEntry::new(seq, now, drop_id, change));
            appended += 1;
        }
        if appended == 0 {
            return;
        }
        let own = g.drops.entry(drop_id).or_default();
        own.seqs.extend((g.last + 1 - appended)..=g.last);
        self.prune(g, now);
    }

    /// Removes up to [`PRUNE_PER_APPEND`] of the oldest entries that are
    /// past the retention and that every cursor has passed.
    fn prune(&self, g: &mut Inner, now: DateTime<Utc>) {
        let Some(cutoff) = now.checked_sub_signed(self.retention) else {
            return;
        };
        // Cheap enough per append: a store has a handful of cursors.
        let pinned = g.cursors.values().map(|c| c.position).min();
        for _ in 0..PRUNE_PER_APPEND {
            match g.entries.front() {
                Some(e) if e.at <= cutoff && pinned.is_none_or(|p| e.seq <= p) => {
                    let e = g.entries.pop_front().expect("front exists");
                    g.horizon = e.seq;
                    if let Some(own) = g.drops.get_mut(&e.drop_id) {
                        own.seqs.pop_front();
                        own.horizon = e.seq;
                    }
                }
                _ => break,
            }
        }
    }

    /// The oldest number kept, or the next to be handed out.
    fn oldest(g: &Inner) -> u64 {
        g.entries.front().map_or(g.last + 1, |e| e.seq)
    }

    /// The entry numbered `seq`, which is kept.
    fn entry(g: &Inner, seq: u64) -> &LogEntry {
        let front = Self::oldest(g);
        &g.entries[usize::try_from(seq - front).expect("a kept entry's place")]
    }

    pub(crate) fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, DropError> {
        let g = lock(&self.inner);
        if after < g.horizon {
            return Err(DropError::EventsPruned {
                after,
                oldest: Self::oldest(&g),
            });
        }
        let limit = limit.min(MAX_LOG_PAGE);
        let start = after.saturating_add(1).max(Self::oldest(&g));
        if limit == 0 || start > g.last {
            return Ok(Vec::new());
        }
        let from = usize::try_from(start - Self::oldest(&g)).expect("a kept entry's place");
        Ok(g.entries.range(from..).take(limit).cloned().collect())
    }

    pub(crate) fn drop_history(
        &self,
        drop_id: DropId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, DropError> {
        let g = lock(&self.inner);
        let Some(own) = g.drops.get(&drop_id) else {
            return Ok(Vec::new());
        };
        if after < own.horizon {
            return Err(DropError::EventsPruned {
                after,
                oldest: own.seqs.front().copied().unwrap_or(g.last + 1),
            });
        }
        let from = own.seqs.partition_point(|&s| s <= after);
        Ok(own
            .seqs
            .range(from..)
            .take(limit.min(MAX_LOG_PAGE))
            .map(|&s| Self::entry(&g, s).clone())
            .collect())
    }

    pub(crate) fn head(&self) -> u64 {
        lock(&self.inner).last
    }

    pub(crate) fn claim_cursor(
        &self,
        name: &str,
        holder: Uuid,
        lease: TimeDelta,
        now: DateTime<Utc>,
    ) -> Result<Option<CursorClaim>, DropError> {
        check_cursor_name(name)?;
        let lease_until = now
            .checked_add_signed(lease)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut g = lock(&self.inner);
        let horizon = g.horizon;
        let created = !g.cursors.contains_key(name);
        let cursor = g.cursors.entry(name.to_owned()).or_insert(Cursor {
            position: horizon,
            holder: None,
            lease_until: now,
        });
        if cursor.holder.is_some_and(|h| h != holder) && now < cursor.lease_until {
            return Ok(None);
        }
        cursor.holder = Some(holder);
        cursor.lease_until = lease_until;
        Ok(Some(if created {
            CursorClaim::created(cursor.position)
        } else {
            CursorClaim::new(cursor.position)
        }))
    }

    pub(crate) fn advance_cursor(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, DropError> {
        check_cursor_name(name)?;
        let mut g = lock(&self.inner);
        match g.cursors.get_mut(name) {
            Some(c) if c.held_by(holder, now) => {
                c.position = c.position.max(position);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(crate) fn release_cursor(&self, name: &str, holder: Uuid) -> Result<(), DropError> {
        check_cursor_name(name)?;
        let mut g = lock(&self.inner);
        if let Some(c) = g.cursors.get_mut(name)
            && c.holder == Some(holder)
        {
            c.holder = None;
        }
        Ok(())
    }

    pub(crate) fn remove_cursor(&self, name: &str) -> Result<(), DropError> {
        check_cursor_name(name)?;
        lock(&self.inner).cursors.remove(name);
        Ok(())
    }

    pub(crate) fn cursors(&self, now: DateTime<Utc>) -> Vec<CursorInfo> {
        let g = lock(&self.inner);
        let mut listed: Vec<CursorInfo> = g
            .cursors
            .iter()
            .map(|(name, c)| {
                let lease_until = c.holder.map(|_| c.lease_until);
                CursorInfo::new(
                    name.clone(),
                    c.position,
                    c.holder.is_some() && now < c.lease_until,
                    lease_until,
                )
            })
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        listed
    }

    /// How many entries are kept (for tests of retention).
    pub(crate) fn kept(&self) -> usize {
        lock(&self.inner).entries.len()
    }
}

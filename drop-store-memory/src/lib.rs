//! # drop-store-memory
//!
//! The in-memory [`InventoryStore`](drop_core::InventoryStore) of dropkit:
//! the embedded default and the fastest store.
//!
//! ```
//! use drop_core::{
//!     Buyer, BuyerId, InventoryStore, Money, NewDrop, NewVariant, ReserveRequest, Username,
//! };
//! use drop_store_memory::MemoryStore;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let drop = store
//!     .create_drop(
//!         NewDrop::with_variants(
//!             "Air Jordan 1",
//!             Money::parse_decimal("199.99")?,
//!             [NewVariant::new("42", 60), NewVariant::new("43", 40)],
//!         )
//!         .max_per_buyer(2),
//!     )
//!     .await?;
//! // Holds are keyed by the app's own id for the buyer; the name is shown.
//! let alice = Buyer::new(BuyerId::parse("auth0|alice")?, Username::parse("alice")?);
//! let size_43 = ReserveRequest::new().variant(drop.drop.variants[1].id).quantity(2);
//! let hold = store
//!     .reserve_with(drop.drop.id, &alice, size_43, None)
//!     .await?
//!     .reservation;
//! let bought = store.purchase(hold.id, &alice.id).await?;
//! assert_eq!(bought.purchase.amount_paid.to_string(), "399.98");
//! # Ok::<(), drop_core::DropError>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! ## Concurrency
//!
//! - Every drop has its own mutex over its settings, its variants'
//!   counters, its holds, its purchases and each buyer's tally under
//!   `maxPerBuyer`. A reserve, purchase, release, expiry, cancellation or
//!   edit is one synchronous critical section on that one drop: it reads
//!   the state, decides (with [`drop_core::next_status`] and
//!   [`DropPatch::apply`](drop_core::DropPatch::apply)), and writes, so no
//!   interleaving can oversell a variant, double-sell a hold, give a buyer
//!   two holds or let them past their limit. The loom tests in
//!   `src/loom_tests.rs` check the races that matter under every
//!   interleaving.
//! - Idempotency records are written inside the critical section of the
//!   change they guard (the drop's lock first, then the records' own), so
//!   two calls with one key on one drop act once and the second replays
//!   the first. Creating a drop has no drop lock yet: it holds the
//!   records' lock instead.
//! - The drop table is read-locked only to look a drop up (written when a
//!   drop is created); reservation ids are found through a sharded index.
//!   Different drops never contend on a lock. Each buyer's purchases are
//!   listed in one store-wide index, written briefly under the drop's
//!   lock. Revoked sessions have a lock of their own, which no drop
//!   operation takes.
//! - Overdue holds are reclaimed inside the reserve's critical section,
//!   earliest first and only as many as the reserve needs, so availability
//!   never waits for a sweeper; until then every read and event shows
//!   them as free.
//! - A new hold is indexed by id inside the reserve's critical section, so
//!   an id handed to any caller (the reserve's own, a concurrent reserve of
//!   the same user, `active_hold`) can always be looked up.
//! - The waiting list ([`drop_core::waitlist`]) lives in the drop's
//!   ledger, under the same lock: each variant's line, the units set aside
//!   for its head (counted as reserved) and an index of who waits where.
//!   Every change that frees units (a release, an expiry swept or
//!   reclaimed by a reserve or a join, a cancelled purchase, added stock,
//!   a head leaving) serves the lines in its own critical section, in one
//!   place, before it announces the stock: no reserve can slip in between
//!   a unit being freed and its offer. Tickets come from one store-wide
//!   counter, drawn under the joining drop's lock. A place is forgotten as
//!   soon as it leaves its line.
//! - Draw drops ([`drop_core::entry`]) keep their seed (drawn from the
//!   store's [`DrawRandom`](drop_core::DrawRandom) at creation, see
//!   [`MemoryStoreBuilder::draw_random`]) and their entries in the drop's
//!   ledger, under the same lock. The draw is one critical section: the
//!   lock freezes the entry list, `drawnAt` is set in it (so a second
//!   runner answers `None` and a late entry `ENTRIES_CLOSED`), and the
//!   winners' offered holds, the others' places in line and every
//!   entry's outcome are written before the lock is released; the log
//!   gets the holds, then `drawCompleted`. Entries are O(1) to take and
//!   withdraw, and the draw is O(n log n): 1,000,000 entries are fine
//!   (`cargo bench --bench memory_draw`).
//! - Events are published after the lock is released; the stock `version`
//!   orders stock snapshots that overtake each other.
//! - The event log ([`events_after`](drop_core::InventoryStore::events_after))
//!   is appended to inside the change's critical section, under a lock of
//!   its own taken after the drop's: numbers are handed out and entries
//!   become visible under that one lock, so a reader never sees an entry
//!   before a lower-numbered one. It is the one lock every drop's writes
//!   share, held only to push an entry or two.
//!
//! ## Memory
//!
//! Released and expired holds are pruned once a retention period (10
//! minutes by default) has passed since their `expiresAt`; purchased holds
//! and purchases (cancelled ones too) are kept. See
//! [`MemoryStoreBuilder::retention`]. Idempotency records are kept
//! [`IDEMPOTENCY_RETENTION`](drop_core::IDEMPOTENCY_RETENTION) (24 h on the
//! store's clock), then pruned a few at a time; a hold a record names
//! stays (visible to that record's replay only) until the record goes.
//! Revoked sessions live in a map under a lock of their own, and each is
//! forgotten once its session has expired.
//!
//! The event log keeps every entry for
//! [`DEFAULT_EVENT_RETENTION`](drop_core::DEFAULT_EVENT_RETENTION) (30
//! days; see [`MemoryStoreBuilder::event_retention`]) and any entry a
//! cursor has not passed, so its memory grows with the rate of changes
//! times the retention (a couple of hundred bytes an entry): a busy
//! long-running process may want a shorter retention. Old entries are
//! pruned a few per append.

mod buyers;
mod cell;
mod engine;
mod index;
mod ledger;
mod line;
mod log;
mod records;
mod revocations;
mod shared;
mod store;
mod sync;

#[cfg(all(test, dropkit_loom))]
mod loom_tests;

pub use store::{DEFAULT_RETENTION, MemoryStore, MemoryStoreBuilder};

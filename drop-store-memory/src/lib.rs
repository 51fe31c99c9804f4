//! # drop-store-memory
//!
//! The in-memory [`InventoryStore`](drop_core::InventoryStore) of dropkit:
//! the embedded default and the fastest store.
//!
//! ```
//! use drop_core::{Buyer, BuyerId, InventoryStore, Money, NewDrop, Username};
//! use drop_store_memory::MemoryStore;
//!
//! # tokio_test_block_on(async {
//! let store = MemoryStore::new();
//! let drop = store
//!     .create_drop(NewDrop::new("Air Jordan 1", Money::parse_decimal("199.99")?, 100))
//!     .await?;
//! // Holds are keyed by the app's own id for the buyer; the name is shown.
//! let alice = Buyer::new(BuyerId::parse("auth0|alice")?, Username::parse("alice")?);
//! let hold = store.reserve(drop.drop.id, &alice).await?.reservation;
//! let purchase = store.purchase(hold.id, &alice.id).await?;
//! assert_eq!(purchase.amount_paid.to_string(), "199.99");
//! # Ok::<(), drop_core::DropError>(())
//! # }).unwrap();
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```
//!
//! ## Concurrency
//!
//! - Every drop has its own mutex over its counters, holds and purchases.
//!   A reserve, purchase, release or expiry is one synchronous critical
//!   section on that one drop: it reads the state, decides with
//!   [`drop_core::next_status`], and writes, so no interleaving can
//!   oversell, double-sell or give a user two holds. The loom tests in
//!   `src/loom_tests.rs` check the races that matter under every
//!   interleaving.
//! - The drop table is read-locked only to look a drop up (written when a
//!   drop is created); reservation ids are found through a sharded index.
//!   Different drops never contend on a lock. Revoked sessions have a lock
//!   of their own, which no drop operation takes.
//! - Overdue holds are reclaimed inside the reserve's critical section
//!   whenever they are due, so availability never waits for a sweeper.
//! - A new hold is indexed by id inside the reserve's critical section, so
//!   an id handed to any caller (the reserve's own, a concurrent reserve of
//!   the same user, `active_hold`) can always be looked up.
//! - Events are published after the lock is released; the stock `version`
//!   orders stock snapshots that overtake each other.
//!
//! ## Memory
//!
//! Released and expired holds are pruned once a retention period (10
//! minutes by default) has passed since their `expiresAt`; purchased holds
//! and purchases are kept. See [`MemoryStoreBuilder::retention`].
//! Revoked sessions live in a map under a lock of their own, and each is
//! forgotten once its session has expired.

mod cell;
mod engine;
mod index;
mod revocations;
mod store;
mod sync;

#[cfg(all(test, dropkit_loom))]
mod loom_tests;

pub use store::{DEFAULT_RETENTION, MemoryStore, MemoryStoreBuilder};

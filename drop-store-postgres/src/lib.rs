//! # drop-store-postgres
//!
//! dropkit's [`InventoryStore`](drop_core::InventoryStore) on PostgreSQL,
//! through sqlx (tokio, TLS by rustls). Several application instances may
//! share one database: holds and purchases stay exact through the database,
//! every instance may sweep expiries, and events reach every instance.
//!
//! ```no_run
//! # async fn run() -> Result<(), drop_core::DropError> {
//! use std::sync::Arc;
//! use drop_core::{ExpiryScheduler, InventoryStore};
//! use drop_store_postgres::PgStore;
//!
//! let store = PgStore::connect("postgres://postgres@127.0.0.1:5432/shop").await?;
//! let cancel = tokio_util::sync::CancellationToken::new();
//! ExpiryScheduler::new(Arc::new(store.clone())).spawn(cancel.clone());
//! # Ok(()) }
//! ```
//!
//! ## Inside a host application
//!
//! - [`PgStoreBuilder::schema`] keeps every dropkit object, the migration
//!   history included, in a schema of its own; without it nothing changes
//!   from earlier versions (the objects live in `public`).
//! - [`PgStoreBuilder::channel`] names the `LISTEN/NOTIFY` channel (derived
//!   from the schema by default), so stores of different schemas in one
//!   database never hear each other.
//! - [`PgStoreBuilder::listener_url`] sends the event listener's connection
//!   elsewhere than the pool's (behind a transaction-pooling proxy, which
//!   `LISTEN` does not survive).
//! - A pool handed to [`PgStoreBuilder::build`] stays the application's:
//!   [`PgStore::close`] leaves it open, and its `search_path` must reach the
//!   schema (checked at start).
//! - [`PgStoreBuilder::run_migrations`] (or [`PgStore::migrator`]) runs the
//!   migrations from the application's own pipeline, with
//!   [`PgStoreBuilder::migrate`]`(false)` on the store.
//!
//! ## Schema
//!
//! Embedded migrations (`migrations/`, applied by every constructor unless
//! [`PgStoreBuilder::migrate`] turns that off, and by [`PgStore::migrate`])
//! create the tables below. Their history lives in [`HISTORY_TABLE`], not in
//! sqlx's default `_sqlx_migrations`, so an application that keeps its own
//! migrations in the same database never sees dropkit's versions (nor
//! dropkit the application's). Migrations are append-only: a released one
//! is never edited. The database itself refuses what must never happen:
//!
//! - `dropkit_drops` keeps the sums of its variants' counters (`reserved`,
//!   `sold`, in units) with CHECKs `reserved ≥ 0`, `sold ≥ 0`,
//!   `reserved + sold ≤ total_stock`, a `version` that grows with every
//!   change, `max_per_buyer` and `paused`. Its row is the lock every writer
//!   of the drop takes first.
//! - `dropkit_variants`: one row per variant with its own counters under
//!   the same CHECKs — no oversell of any variant even if the code were
//!   wrong.
//! - `dropkit_reservations` (holds, with their variant and quantity): a
//!   CHECKed status, a partial unique index giving at most one active hold
//!   per (drop, buyer), and a partial index on `(drop_id, expires_at)` of
//!   active holds for the sweeper, lazy reclaim and `next_expiry`.
//! - `dropkit_purchases`: unique per hold, completed or cancelled, indexed
//!   by buyer for the per-buyer limit (units bought and not cancelled, one
//!   probe per buyer) and for a buyer's purchase history.
//! - `dropkit_idempotency`: (caller, key) → the request's fingerprint and
//!   the entity the write made or changed, recorded in the write's own
//!   transaction and pruned after
//!   [`IDEMPOTENCY_RETENTION`](drop_core::IDEMPOTENCY_RETENTION).
//! - `dropkit_events`: the durable event log, one row per committed change
//!   (`seq`, `at`, `drop_id`, `kind`, `data`: the change as drop-core's
//!   serde writes it), appended in the transaction of the change and read
//!   with [`events_after`](drop_core::InventoryStore::events_after);
//!   `dropkit_log_head` keeps the pruned horizon, and its oid names the
//!   advisory lock through which readers wait for the writers of the
//!   numbers they are about to read; `dropkit_cursors` holds
//!   named consumers' positions and leases. See
//!   [`PgStoreBuilder::event_log`] and [`PgStoreBuilder::event_retention`].
//! - `dropkit_waitlist`: the waiting list ([`drop_core::waitlist`]), one
//!   place per (drop, buyer), keyed by (variant, ticket) so a line's head
//!   and a place's position come from the key; each variant row keeps
//!   `waitlist_length` and `set_aside`, the units set aside for the head,
//!   counted in `reserved` so that no path can sell them past the line.
//!   Holds carry `offered`.
//! - Draw drops ([`drop_core::entry`]): `dropkit_drops` keeps the `mode`,
//!   `draw_at`, `beacon_name`, the secret `seed` (drawn when the drop is
//!   made, from [`PgStoreBuilder::draw_random`]) and, once drawn,
//!   `drawn_at`, the beacon value and the entry list's hash; each variant
//!   keeps the units it drew (`draw_stock`); `dropkit_entries` holds one
//!   entry per (drop, buyer) with a receipt unique per drop, its outcome,
//!   its place in the draw and the hold it won. The published draw is read
//!   back from these rows. A partial index of the draw drops not drawn
//!   yet serves `due_draws` and `next_draw_at`.
//! - `dropkit_revoked_sessions`: signed-out sessions, until their tokens
//!   would have expired anyway (the store deletes expired rows as it
//!   records new ones), so every instance refuses a revoked token.
//!
//! Holds and purchases carry their drop's id without a foreign key: the
//! key-share lock a foreign-key check takes on the referenced row would
//! contend with every update of a hot drop. Drops are never deleted, the
//! write functions read the drop before writing, and
//! [`PgStore::verify_invariants`] checks for orphans.
//!
//! ## Concurrency
//!
//! Every write is one call of a PL/pgSQL function: one round trip, one
//! short transaction that moves the counters and the rows together. No
//! path counts rows. Locks are taken drop row first (`FOR NO KEY UPDATE`)
//! on every path without exception: once a function has the drop row, no
//! hold of that drop is being written by anyone else, so hold rows need no
//! locks and no insert waits on another transaction's uncommitted hold.
//!
//! - **Reserve** takes `quantity` units of one variant, all or nothing,
//!   checked in the trait's order: the request, the window and the pause,
//!   the buyer's active hold (returned unchanged for the same request,
//!   `HOLD_EXISTS` otherwise), the per-buyer limit, the variant's stock.
//!   It expires the caller's own overdue hold, and when the variant is
//!   short reclaims its overdue holds (as many units as needed) before
//!   answering `OUT_OF_STOCK`, so a late sweeper never blocks a sale.
//! - **Idempotency keys**: a replay is answered from one statement that
//!   reads the key's record with its entity, without queueing on the drop;
//!   a first call records its key in the transaction of its write.
//! - **Admin writes** (edit, pause, end, cancel a purchase) are one
//!   transaction each under the drop's lock, the rules decided by
//!   [`DropPatch::apply`](drop_core::DropPatch::apply) on the counters read
//!   under it.
//! - **Purchase / release** check owner and expiry by the database's time
//!   under the lock; a purchase racing the sweeper ends in exactly one
//!   state. A hold taken before `endsAt` may be bought until its own
//!   `expiresAt`. A release by a stranger, or of an ended hold, is answered
//!   without the lock.
//! - **Expiry** is set-based and fair across drops: each sweep takes every
//!   drop's earliest due holds before any drop's later ones, with one
//!   counter update per drop. Instances sweeping at once leave a drop that
//!   another is on to it (a per-drop advisory lock, tried without waiting)
//!   and each hold expires exactly once.
//! - **The waiting list** is served by one SQL function,
//!   `dropkit_serve_line`, which every path that frees units (the sweep, a
//!   reserve's lazy reclaim or a caller's own overdue hold, a release, a
//!   cancelled purchase, an admin edit, a head leaving) calls in its own
//!   transaction, under the drop's lock: freed units are set aside for the
//!   head and offered as one hold once its quantity is covered, so
//!   instances never offer a unit twice and an offer commits with the
//!   change that freed it. A reserve of a variant people wait for answers
//!   `OUT_OF_STOCK` and leaves its overdue holds to the line.
//! - **Draws**: entering takes the drop row `FOR KEY SHARE` only (it never
//!   waits for reserves, nor they for it); the draw is one transaction
//!   that takes the row `FOR UPDATE`, which waits for the entries in
//!   flight and makes every later one see the drop drawn, so the list it
//!   ranks is final. It ranks in Rust and writes back with one statement
//!   per table (a million entries is one draw, not a million statements).
//!   Every instance may run it at once: one draws, the others answer
//!   `None`; one killed mid-draw rolls back and leaves it to the next. A
//!   reserve or a join of a draw drop not drawn yet is refused
//!   (`DRAW_ONLY`) before it is queued.
//! - **Reads** (`list_drops`, `get_drop`, `overview`) count overdue holds
//!   as free before they are swept (unless people wait for their
//!   variant: then they are the line's); `overview` is one statement.
//! - **Group commit** (on by default, [`PgStoreBuilder::group_commit`]):
//!   while a transaction for a drop is in flight, newly arriving reserves
//!   (and purchases, and joins of its waiting list) of that drop queue; the queue goes as the next batch,
//!   one transaction granting units in arrival order. One drop row can
//!   commit only so many updates per second; batching multiplies what each
//!   commit carries. Each caller still gets its own answer.
//! - **Faults**: serialization failures, deadlocks and lost connections are
//!   retried a bounded number of times ([`PgStoreBuilder::retries`]) and
//!   then reported as `UNAVAILABLE`; a call that waited
//!   [`PgStoreBuilder::acquire_timeout`] for a connection is not retried.
//!   Retries reuse the ids chosen for the first attempt, so a write that
//!   did commit before its answer was lost is recognised (and announced)
//!   rather than repeated; subscribers hear an
//!   [`EventsLost`](drop_core::EventsLost) whenever a commit's outcome is
//!   unknown.
//! - **Cancellation**: every write runs on a task of the store's, so a
//!   caller that gives up mid-statement cannot separate a commit from its
//!   events. Every task the store starts (writes, batches, the notifier,
//!   the listener, the statistics watch) is tracked: [`PgStore::close`]
//!   waits for the writes, then sends the notifications still queued, then
//!   waits for the rest.
//! - **Events** are published only after commit: locally at once, to other
//!   instances through `LISTEN/NOTIFY` by a background notifier that sends
//!   whatever accumulated as one notification (never one per reservation).
//!   When the listener's connection drops it reconnects and tells
//!   subscribers to resync (an [`EventsLost`](drop_core::EventsLost)).

#[macro_use]
mod rows;
mod admin;
mod batch;
mod builder;
mod draws;
mod error;
mod fanout;
mod invariants;
mod keys;
mod log;
mod migrations;
mod sessions;
mod statistics;
mod store;
mod waitlist;
mod writes;

pub use builder::{DEFAULT_ACQUIRE_TIMEOUT, PgStoreBuilder};
pub use migrations::HISTORY_TABLE;
pub use store::{InvariantViolations, PgStore};

/// Re-exported so users name the same sqlx version.
pub use sqlx::PgPool;
/// Re-exported for [`PgStoreBuilder::connect_with`] and
/// [`PgStoreBuilder::listener_options`], and for an application that opens
/// its own pool for [`PgStoreBuilder::build`].
pub use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

#[cfg(test)]
mod tests {
    /// Every task the store starts is spawned on one of its `TaskTracker`s
    /// (see `PgStore::close`): a bare `spawn` would run a task that
    /// shutdown does not wait for. Test modules may spawn freely.
    #[test]
    fn tasks_are_spawned_only_on_trackers() {
        let sources = [
            ("admin.rs", include_str!("admin.rs")),
            ("batch.rs", include_str!("batch.rs")),
            ("builder.rs", include_str!("builder.rs")),
            ("draws.rs", include_str!("draws.rs")),
            ("error.rs", include_str!("error.rs")),
            ("fanout.rs", include_str!("fanout.rs")),
            ("invariants.rs", include_str!("invariants.rs")),
            ("keys.rs", include_str!("keys.rs")),
            ("log.rs", include_str!("log.rs")),
            ("migrations.rs", include_str!("migrations.rs")),
            ("sessions.rs", include_str!("sessions.rs")),
            ("rows.rs", include_str!("rows.rs")),
            ("statistics.rs", include_str!("statistics.rs")),
            ("store.rs", include_str!("store.rs")),
            ("writes.rs", include_str!("writes.rs")),
        ];
        let untracked = [concat!("tokio::", "spawn"), concat!("task::", "spawn")];
        for (name, source) in sources {
            let code = source.split("#[cfg(test)]").next().unwrap_or(source);
            for bare in untracked {
                assert!(
                    !code.contains(bare),
                    "{name} calls {bare}: spawn on the store's TaskTracker instead"
                );
            }
        }
    }
}

/// Compile-time checks: the constructors' futures are `Send` for every
/// lifetime, so an application can start the store inside a boxed
/// `dyn Future + Send` (a test harness, a spawned task). A borrow held
/// across an `.await` in a way the compiler cannot generalise breaks this
/// only where such a caller is compiled, far from the cause.
#[cfg(test)]
mod send_probe {
    use std::future::Future;
    use std::pin::Pin;

    use crate::{PgPool, PgStore};

    type Boxed = Pin<Box<dyn Future<Output = ()> + Send>>;

    #[allow(dead_code)]
    fn constructors_are_send(pool: PgPool) -> [Boxed; 3] {
        let (a, b) = (pool.clone(), pool);
        [
            Box::pin(async {
                let _ = PgStore::connect("postgres://x/y").await;
            }),
            Box::pin(async move {
                let _ = PgStore::builder().build(a).await;
            }),
            Box::pin(async move {
                let _ = PgStore::builder().run_migrations(&b).await;
            }),
        ]
    }
}

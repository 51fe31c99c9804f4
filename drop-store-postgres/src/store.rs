//! [`PgStore`]: the [`InventoryStore`] on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Beacon, Buyer, BuyerId, CursorClaim, DrawStatus, DrawSummary, DropError, DropId,
    DropInfo, DropOverview, DropPatch, DropState, Entry, EventBus, EventStream, IdempotencyKey,
    IdempotencyRecord, InventoryStore, LogEntry, MAX_PAGE, NewDrop, Purchase, PurchaseId,
    Purchased, Reservation, ReservationId, ReservationStatus, ReserveRequest, Reserved,
    RevokedSessions, TOP_PURCHASERS, TopPurchaser, VariantId, WaitlistPlace, async_trait,
};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::admin::{self, DropChange};
use crate::batch::{BatchFuture, Gatherer};
use crate::builder::PgStoreBuilder;
use crate::draws::{self, FirstCome, Gate};
use crate::error::{internal, map_sqlx};
use crate::fanout::{self, Fanout, FeedTasks};
use crate::keys;
use crate::log;
use crate::migrations;
use crate::rows;
use crate::sessions;
use crate::statistics;
use crate::waitlist;
use crate::writes::{self, PurchaseCall, ReserveCall, Shared};

type ReserveGate = Gatherer<DropId, ReserveCall, Reserved>;
type PurchaseGate = Gatherer<DropId, PurchaseCall, Purchased>;
type JoinGate = Gatherer<DropId, waitlist::JoinCall, Applied<WaitlistPlace>>;
type EnterGate = Gatherer<DropId, draws::EnterCall, Applied<Entry>>;

/// A dropkit store on PostgreSQL.
///
/// Cheap to clone (an `Arc` inside); clones share the pool, the event feed
/// and the batching queues. Background tasks (the cross-instance event
/// listener and notifier) stop when the last clone is dropped or on
/// [`close`](PgStore::close), which also waits for them.
///
/// See the [crate docs](crate) for the schema, the locking and the
/// guarantees under concurrency.
#[derive(Clone, Debug)]
pub struct PgStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Shared,
    instance: Uuid,
    reserve_gate: Option<ReserveGate>,
    purchase_gate: Option<PurchaseGate>,
    join_gate: Option<JoinGate>,
    enter_gate: Option<EnterGate>,
    /// The drops known to sell first come, for the `DRAW_ONLY` check.
    first_come: FirstCome,
    /// The notifier, the listener and its heartbeats.
    feed: FeedTasks,
    /// The listener's connection (a pool of one), when the store listens.
    listener_pool: Option<PgPool>,
    /// Whether the store opened `shared.pool` (and so closes it).
    owns_pool: bool,
    health_timeout: Duration,
    /// Stops the feed when the last clone goes without a close().
    _stop_feed: DropGuard,
}

impl PgStore {
    /// Connects to `database_url` with the default settings (a pool of 32,
    /// group commit on), applies the migrations and starts the event
    /// listener. TLS is negotiated as the URL's `sslmode` asks (rustls).
    pub async fn connect(database_url: &str) -> Result<PgStore, DropError> {
        Self::builder().connect(database_url).await
    }

    /// Settings beyond the defaults.
    pub fn builder() -> PgStoreBuilder {
        PgStoreBuilder::default()
    }

    /// A store on an existing pool, with the default settings; applies the
    /// migrations.
    pub async fn from_pool(pool: PgPool) -> Result<PgStore, DropError> {
        Self::builder().build(pool).await
    }

    /// Applies the embedded migrations (forward only; already applied ones
    /// are skipped, so this is safe to run from every instance at start).
    /// The history is kept in its own table,
    /// [`HISTORY_TABLE`](crate::HISTORY_TABLE), so it never mixes with a host
    /// application's `_sqlx_migrations`; a database whose dropkit history is
    /// still in `_sqlx_migrations` (made by an earlier version) has it moved
    /// first.
    /// With a schema, use [`PgStoreBuilder::run_migrations`].
    pub async fn migrate(pool: &PgPool) -> Result<(), DropError> {
        Self::builder().run_migrations(pool).await
    }

    /// The embedded migrations, recording their history in
    /// [`HISTORY_TABLE`](crate::HISTORY_TABLE), for applications that run
    /// migrations in their own pipeline (with
    /// [`PgStoreBuilder::migrate`]`(false)` on the store). The files name no
    /// schema: run it on a connection whose `search_path` is the store's
    /// schema, if it has one. Prefer [`PgStoreBuilder::run_migrations`],
    /// which also creates the schema and moves an older version's history.
    pub fn migrator() -> &'static sqlx::migrate::Migrator {
        &migrations::MIGRATOR
    }

    pub(crate) async fn start(
        pool: PgPool,
        settings: &PgStoreBuilder,
        owns_pool: bool,
    ) -> Result<PgStore, DropError> {
        if settings.migrate {
            settings.run_migrations(&pool).await?;
        }
        if let Some(schema) = &settings.schema {
            migrations::check_schema(&pool, schema).await?;
        }
        let instance = Uuid::new_v4();
        let bus = EventBus::new(settings.event_capacity);
        // Every task of the store runs on one of two trackers, so close()
        // can wait for all of them: the work (writes, batches, the
        // statistics watch), then the feed (notifier, listener, heartbeats),
        // which must outlive the work to send its events.
        let work = TaskTracker::new();
        let feed = FeedTasks {
            tracker: TaskTracker::new(),
            stop: CancellationToken::new(),
        };
        let (fanout, listener_pool) = if settings.listen {
            let listener_pool = PgPoolOptions::new()
                .max_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
                .acquire_timeout(settings.acquire_timeout)
                .connect_lazy_with(
                    settings
                        .listener
                        .clone()
                        .unwrap_or_else(|| (*pool.connect_options()).clone()),
                );
            let started = fanout::start(
                pool.clone(),
                listener_pool.clone(),
                settings.channel_name(),
                bus,
                instance,
                settings.feed(),
                feed.clone(),
            )
            .await;
            match started {
                Ok(fanout) => (fanout, Some(listener_pool)),
                // The listener task ended when it reported the failure;
                // nothing else was started.
                Err(e) => return Err(map_sqlx(e)),
            }
        } else {
            (Fanout::local_only(bus), None)
        };
        let closing = CancellationToken::new();
        work.spawn(statistics::first_analyze(pool.clone(), closing.clone()));
        let shared = Shared {
            pool,
            fanout,
            retries: settings.retries,
            tasks: work.clone(),
            closing,
            pruned: Default::default(),
            log: settings.event_log,
            retention: settings.event_retention,
            draw_random: settings.draw_random.clone(),
        };
        let (reserve_gate, purchase_gate, join_gate, enter_gate) = if settings.group_commit {
            let s = shared.clone();
            let reserve: ReserveGate =
                Gatherer::new(settings.batch_cap, work.clone(), move |drop_id, users| {
                    let s = s.clone();
                    Box::pin(async move { writes::reserve(&s, drop_id, users).await })
                        as BatchFuture<_>
                });
            let s = shared.clone();
            let purchase: PurchaseGate =
                Gatherer::new(settings.batch_cap, work.clone(), move |drop_id, reqs| {
                    let s = s.clone();
                    Box::pin(async move { writes::purchase(&s, drop_id, reqs).await })
                        as BatchFuture<_>
                });
            let s = shared.clone();
            let join: JoinGate =
                Gatherer::new(settings.batch_cap, work.clone(), move |drop_id, calls| {
                    let s = s.clone();
                    Box::pin(async move { waitlist::join_batch(&s, drop_id, calls).await })
                        as BatchFuture<_>
                });
            let s = shared.clone();
            let enter: EnterGate =
                Gatherer::new(settings.batch_cap, work, move |drop_id, calls| {
                    let s = s.clone();
                    Box::pin(async move { draws::enter_batch(&s, drop_id, calls).await })
                        as BatchFuture<_>
                });
            (Some(reserve), Some(purchase), Some(join), Some(enter))
        } else {
            (None, None, None, None)
        };
        Ok(PgStore {
            inner: Arc::new(Inner {
                shared,
                instance,
                reserve_gate,
                purchase_gate,
                join_gate,
                enter_gate,
                first_come: FirstCome::default(),
                _stop_feed: feed.stop.clone().drop_guard(),
                feed,
                listener_pool,
                owns_pool,
                health_timeout: settings.acquire_timeout,
            }),
        })
    }

    /// The connection pool.
    pub fn pool(&self) -> &PgPool {
        &self.inner.shared.pool
    }

    /// This instance's id, as carried in its cross-instance events.
    pub fn instance_id(&self) -> Uuid {
        self.inner.instance
    }

    /// Whether concurrent reserves, purchases, joins and draw entries of a drop are grouped into
    /// one transaction.
    pub fn group_commit(&self) -> bool {
        self.inner.reserve_gate.is_some()
    }

    /// Shuts the store down: new writes get `UNAVAILABLE`; writes in
    /// flight and calls already queued finish and are answered; their
    /// events, and every event not yet sent to other instances, are sent;
    /// then the listener stops. Returns once every task the store started
    /// has ended and the listener's connection is closed. Closes the pool
    /// too if the store opened it ([`PgStoreBuilder::connect`],
    /// [`PgStoreBuilder::connect_with`]); a pool handed to
    /// [`PgStoreBuilder::build`] stays open for the application. Safe to
    /// call more than once.
    pub async fn close(&self) {
        let inner = &self.inner;
        // 1. Refuse new work.
        inner.shared.closing.cancel();
        if let Some(g) = &inner.reserve_gate {
            g.close();
        }
        if let Some(g) = &inner.purchase_gate {
            g.close();
        }
        if let Some(g) = &inner.join_gate {
            g.close();
        }
        if let Some(g) = &inner.enter_gate {
            g.close();
        }
        // 2. Finish the work in flight: writes commit, batches answer, and
        // their events reach the feed.
        inner.shared.tasks.close();
        inner.shared.tasks.wait().await;
        // 3. Stop the feed: the notifier sends what is queued, the listener
        // and its heartbeats end.
        inner.feed.stop.cancel();
        inner.feed.tracker.close();
        inner.feed.tracker.wait().await;
        // 4. Connections: the listener's, and the pool if it is ours.
        if let Some(listener_pool) = &inner.listener_pool {
            listener_pool.close().await;
        }
        if inner.owns_pool {
            inner.shared.pool.close().await;
        }
    }

    /// Proves the bookkeeping: every variant's counters equal what its rows
    /// say (`reserved` = units of its active holds, `sold` = units of its
    /// completed purchases), `reserved + sold ≤ total` per variant and per
    /// drop, each drop's figures equal its variants' sums, every purchase
    /// belongs to a purchased hold of the same drop, variant, quantity and
    /// buyer, no buyer has two active holds on a drop, and no buyer holds
    /// plus bought more units of a drop than the highest `maxPerBuyer` it
    /// has had (lowering the limit takes nothing back). Reads one
    /// consistent snapshot.
    ///
    /// Errors with [`DropError::Internal`] whose source is an
    /// [`InvariantViolations`] listing every problem found.
    pub async fn verify_invariants(&self) -> Result<(), DropError> {
        let problems = crate::invariants::check(self.pool()).await?;
        if problems.is_empty() {
            Ok(())
        } else {
            Err(DropError::Internal {
                store: crate::error::STORE,
                source: drop_core::ErrorSource::new(InvariantViolations { problems }),
            })
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Runs an admin change of a drop on a task of the store's.
    async fn change(
        &self,
        drop_id: DropId,
        change: DropChange,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        let (shared, key) = (self.shared().clone(), key.cloned());
        self.shared()
            .detached(async move { admin::change(&shared, drop_id, change, key).await })
            .await
    }

    /// The database's clock, which decides every hold's time.
    async fn database_time(&self) -> Result<DateTime<Utc>, DropError> {
        self.shared()
            .read(|| sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(self.pool()))
            .await
    }
}

/// What [`PgStore::verify_invariants`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariants broken: {}", problems.join("; "))]
pub struct InvariantViolations {
    /// One line per problem.
    pub problems: Vec<String>,
}

#[async_trait]
impl InventoryStore for PgStore {
    async fn create_drop_with(
        &self,
        new: NewDrop,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        let (shared, key) = (self.shared().clone(), key.cloned());
        let made = self
            .shared()
            .detached(async move { admin::create(&shared, new, key).await })
            .await?;
        if made.value.drop.check_first_come().is_ok() {
            self.inner.first_come.learn(made.value.drop.id);
        }
        Ok(made)
    }

    async fn list_all_drops(&self) -> Result<Vec<DropState>, DropError> {
        const SQL: &str = concat!(
            "SELECT ",
            visible_drop_columns!(),
            " FROM dropkit_drops d ORDER BY d.created_at DESC, d.id"
        );
        let rows = self
            .shared()
            .read(|| sqlx::query_as::<_, rows::DropRow>(SQL).fetch_all(self.pool()))
            .await?;
        rows.into_iter().map(DropState::try_from).collect()
    }

    async fn list_drops(&self) -> Result<Vec<DropState>, DropError> {
        const SQL: &str = concat!(
            "SELECT ",
            visible_drop_columns!(),
            " FROM dropkit_drops d ",
            not_ended_in_order!()
        );
        let rows = self
            .shared()
            .read(|| sqlx::query_as::<_, rows::DropRow>(SQL).fetch_all(self.pool()))
            .await?;
        rows.into_iter().map(DropState::try_from).collect()
    }

    async fn get_drop(&self, drop_id: DropId) -> Result<DropState, DropError> {
        admin::read_drop(self.shared(), drop_id).await
    }

    async fn reserve_with(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError> {
        // A replay costs one read and never queues on the drop.
        if let Some(key) = key
            && let Some(replay) = keys::reserve_replay(self.shared(), key).await?
        {
            return Ok(replay);
        }
        // Before queueing, so both paths (batched or not) refuse alike.
        draws::first_come_gate(
            self.shared(),
            &self.inner.first_come,
            drop_id,
            &request,
            Gate::Reserve,
        )
        .await?;
        let call = ReserveCall {
            buyer: buyer.clone(),
            request,
            key: key.cloned(),
        };
        match &self.inner.reserve_gate {
            Some(gate) => gate.submit(drop_id, call).await,
            None => {
                let shared = self.shared().clone();
                self.shared()
                    .detached(async move {
                        writes::reserve(&shared, drop_id, vec![call])
                            .await
                            .pop()
                            .unwrap_or_else(|| Err(internal("reserve gave no answer")))
                    })
                    .await
            }
        }
    }

    async fn purchase_with(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError> {
        if let Some(key) = key
            && let Some(replay) = keys::purchase_replay(self.shared(), key).await?
        {
            return Ok(replay);
        }
        // Owner and terminal states never change, so they can be answered
        // from a plain read without queueing on the drop's lock; the
        // owner's repeat of a purchase made is answered with it (unless a
        // key must be recorded, which takes the drop's lock).
        const CHECK: &str = "SELECT h.drop_id, h.buyer_id, h.status, h.expires_at <= clock_timestamp() AS overdue, \
                    p.id AS purchase_id \
               FROM dropkit_reservations h \
               LEFT JOIN dropkit_purchases p ON p.reservation_id = h.id \
              WHERE h.id = $1";
        let row = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::PurchaseCheck>(CHECK)
                    .bind(reservation_id.as_uuid())
                    .fetch_optional(self.pool())
            })
            .await?;
        let Some(hold) = row else {
            return Err(DropError::ReservationNotFound { reservation_id });
        };
        if !hold.owned_by(buyer) {
            return Err(DropError::NotOwner { reservation_id });
        }
        match hold.status()? {
            ReservationStatus::Purchased if key.is_none() => {
                let id = hold
                    .purchase_id()
                    .ok_or_else(|| internal("a purchased hold has no purchase"))?;
                return self
                    .get_purchase(id)
                    .await
                    .map(|p| Purchased::new(p, false));
            }
            ReservationStatus::Purchased => {}
            ReservationStatus::Released => {
                return Err(DropError::AlreadyReleased { reservation_id });
            }
            ReservationStatus::Expired => {
                return Err(DropError::ReservationExpired { reservation_id });
            }
            ReservationStatus::Active if hold.overdue => {
                return Err(DropError::ReservationExpired { reservation_id });
            }
            ReservationStatus::Active => {}
        }
        let drop_id = hold.drop_id();
        let call = PurchaseCall {
            reservation_id,
            buyer: buyer.clone(),
            key: key.cloned(),
        };
        match &self.inner.purchase_gate {
            Some(gate) => gate.submit(drop_id, call).await,
            None => {
                let shared = self.shared().clone();
                self.shared()
                    .detached(async move {
                        writes::purchase(&shared, drop_id, vec![call])
                            .await
                            .pop()
                            .unwrap_or_else(|| Err(internal("purchase gave no answer")))
                    })
                    .await
            }
        }
    }

    async fn get_purchase(&self, purchase_id: PurchaseId) -> Result<Purchase, DropError> {
        const SQL: &str = concat!(
            "SELECT ",
            purchase_columns!(),
            " FROM dropkit_purchases WHERE id = $1"
        );
        let row = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::PurchaseRecordRow>(SQL)
                    .bind(purchase_id.as_uuid())
                    .fetch_optional(self.pool())
            })
            .await?;
        match row {
            Some(row) => Purchase::try_from(row),
            None => Err(DropError::PurchaseNotFound { purchase_id }),
        }
    }

    async fn buyer_purchases(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(DropError::invalid(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        let after_seq: i64 = match before {
            None => i64::MAX,
            Some(purchase_id) => self
                .shared()
                .read(|| {
                    sqlx::query_scalar(
                        "SELECT seq FROM dropkit_purchases WHERE id = $1 AND buyer_id = $2",
                    )
                    .bind(purchase_id.as_uuid())
                    .bind(buyer.as_str())
                    .fetch_optional(self.pool())
                })
                .await?
                .ok_or(DropError::PurchaseNotFound { purchase_id })?,
        };
        const SQL: &str = concat!(
            "SELECT ",
            purchase_columns!(),
            " FROM dropkit_purchases WHERE buyer_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::PurchaseRecordRow>(SQL)
                    .bind(buyer.as_str())
                    .bind(after_seq)
                    .bind(limit)
                    .fetch_all(self.pool())
            })
            .await?;
        rows.into_iter().map(Purchase::try_from).collect()
    }

    async fn update_drop(
        &self,
        drop_id: DropId,
        patch: &DropPatch,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.change(drop_id, DropChange::Patch(patch.clone()), key)
            .await
    }

    async fn set_paused(
        &self,
        drop_id: DropId,
        paused: bool,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.change(drop_id, DropChange::Pause(paused), key).await
    }

    async fn end_drop(
        &self,
        drop_id: DropId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.change(drop_id, DropChange::End, key).await
    }

    async fn cancel_purchase(
        &self,
        purchase_id: PurchaseId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Purchase>, DropError> {
        let (shared, key) = (self.shared().clone(), key.cloned());
        self.shared()
            .detached(async move { admin::cancel(&shared, purchase_id, key).await })
            .await
    }

    async fn join_waitlist(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
    ) -> Result<Applied<WaitlistPlace>, DropError> {
        draws::first_come_gate(
            self.shared(),
            &self.inner.first_come,
            drop_id,
            &request,
            Gate::Join,
        )
        .await?;
        let call = waitlist::JoinCall {
            buyer: buyer.clone(),
            request,
        };
        if let Some(gate) = &self.inner.join_gate {
            return gate.submit(drop_id, call).await;
        }
        let shared = self.shared().clone();
        self.shared()
            .detached(async move {
                let mut answers = waitlist::join_batch(&shared, drop_id, vec![call]).await;
                answers
                    .pop()
                    .unwrap_or_else(|| Err(internal("a join got no answer")))
            })
            .await
    }

    async fn leave_waitlist(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        let (shared, buyer) = (self.shared().clone(), buyer.clone());
        self.shared()
            .detached(async move { waitlist::leave(&shared, drop_id, &buyer).await })
            .await
    }

    async fn waitlist_place(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        waitlist::place(self.shared(), drop_id, buyer).await
    }

    async fn enter_draw(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        variant_id: Option<VariantId>,
    ) -> Result<Applied<Entry>, DropError> {
        let call = draws::EnterCall {
            buyer: buyer.clone(),
            variant_id,
        };
        if let Some(gate) = &self.inner.enter_gate {
            return gate.submit(drop_id, call).await;
        }
        let shared = self.shared().clone();
        self.shared()
            .detached(async move {
                draws::enter_batch(&shared, drop_id, vec![call])
                    .await
                    .pop()
                    .unwrap_or_else(|| Err(internal("an entry got no answer")))
            })
            .await
    }

    async fn withdraw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        let (shared, buyer) = (self.shared().clone(), buyer.clone());
        self.shared()
            .detached(async move { draws::withdraw(&shared, drop_id, &buyer).await })
            .await
    }

    async fn draw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        draws::entry(self.shared(), drop_id, buyer).await
    }

    async fn due_draws(&self, limit: usize) -> Result<Vec<DropInfo>, DropError> {
        draws::due(self.shared(), limit).await
    }

    async fn next_draw_at(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        draws::next_at(self.shared()).await
    }

    async fn run_draw(
        &self,
        drop_id: DropId,
        beacon: Option<Beacon>,
    ) -> Result<Option<DrawSummary>, DropError> {
        let shared = self.shared().clone();
        self.shared()
            .detached(async move { draws::run(&shared, drop_id, beacon).await })
            .await
    }

    async fn draw_status(&self, drop_id: DropId) -> Result<DrawStatus, DropError> {
        draws::status(self.shared(), drop_id).await
    }

    async fn idempotency_record(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, DropError> {
        keys::lookup(self.shared(), caller, key)
            .await?
            .map(|row| row.record(caller, key))
            .transpose()
    }

    async fn release(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
    ) -> Result<Reservation, DropError> {
        let (shared, user) = (self.shared().clone(), buyer.clone());
        self.shared()
            .detached(async move { writes::release(&shared, reservation_id, &user).await })
            .await
    }

    async fn get_reservation(
        &self,
        reservation_id: ReservationId,
    ) -> Result<Reservation, DropError> {
        const SQL: &str = concat!(
            "SELECT ",
            hold_columns!(),
            ", clock_timestamp() AS now FROM dropkit_reservations WHERE id = $1"
        );
        let row = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::HoldAt>(SQL)
                    .bind(reservation_id.as_uuid())
                    .fetch_optional(self.pool())
            })
            .await?;
        let Some(row) = row else {
            return Err(DropError::ReservationNotFound { reservation_id });
        };
        let mut hold = Reservation::try_from(row.hold)?;
        hold.status = hold.effective_status(row.now);
        Ok(hold)
    }

    async fn active_hold(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Reservation>, DropError> {
        const SQL: &str = concat!(
            "SELECT ",
            hold_columns!(),
            " FROM dropkit_reservations \
             WHERE drop_id = $1 AND buyer_id = $2 AND status = 'active' \
               AND expires_at > clock_timestamp()"
        );
        let row = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::HoldRow>(SQL)
                    .bind(drop_id.as_uuid())
                    .bind(buyer.as_str())
                    .fetch_optional(self.pool())
            })
            .await?;
        row.map(Reservation::try_from).transpose()
    }

    async fn top_purchasers(
        &self,
        drop_id: DropId,
        limit: usize,
    ) -> Result<Vec<TopPurchaser>, DropError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::LatestRow>(
                    "SELECT p.display_name, p.created_at FROM dropkit_drops d \
                     LEFT JOIN LATERAL (SELECT display_name, created_at FROM dropkit_purchases \
                        WHERE drop_id = d.id ORDER BY created_at DESC, seq DESC LIMIT $2) p ON true \
                     WHERE d.id = $1",
                )
                .bind(drop_id.as_uuid())
                .bind(limit)
                .fetch_all(self.pool())
            })
            .await?;
        if rows.is_empty() {
            return Err(DropError::DropNotFound { drop_id });
        }
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.extend(row.buyer()?);
        }
        Ok(out)
    }

    async fn expire_due(&self, limit: usize) -> Result<usize, DropError> {
        let shared = self.shared().clone();
        self.shared()
            .detached(async move { writes::expire_due(&shared, limit).await })
            .await
    }

    async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.shared()
            .read(|| {
                // The earliest of each drop's first entry in
                // `dropkit_reservations_due_by_drop`, over the drops whose
                // counter says they have active holds: one entry read per
                // such drop, whatever the statistics say of the table's
                // size (the predicate is stated, the order is the index's).
                sqlx::query_scalar(
                    "SELECT min(h.expires_at) FROM dropkit_drops d \
                      CROSS JOIN LATERAL ( \
                            SELECT r.expires_at FROM dropkit_reservations r \
                             WHERE r.drop_id = d.id AND r.status = 'active' \
                               AND r.created_at < r.expires_at \
                             ORDER BY r.drop_id, r.expires_at LIMIT 1) h \
                      WHERE d.reserved > 0",
                )
                .fetch_one(self.pool())
            })
            .await
    }

    fn subscribe(&self) -> EventStream {
        self.shared().fanout.bus().subscribe()
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<LogEntry>, DropError> {
        log::read(self.shared(), None, after, limit).await
    }

    async fn drop_history(
        &self,
        drop_id: DropId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, DropError> {
        log::read(self.shared(), Some(drop_id), after, limit).await
    }

    async fn log_head(&self) -> Result<u64, DropError> {
        log::head(self.shared()).await
    }

    async fn claim_cursor(
        &self,
        name: &str,
        holder: Uuid,
        lease: Duration,
    ) -> Result<Option<CursorClaim>, DropError> {
        log::claim(self.shared(), name, holder, lease).await
    }

    async fn advance_cursor(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
    ) -> Result<bool, DropError> {
        log::advance(self.shared(), name, holder, position).await
    }

    async fn release_cursor(&self, name: &str, holder: Uuid) -> Result<(), DropError> {
        log::release(self.shared(), name, holder).await
    }

    async fn remove_cursor(&self, name: &str) -> Result<(), DropError> {
        log::remove(self.shared(), name).await
    }

    async fn cursors(&self) -> Result<Vec<drop_core::CursorInfo>, DropError> {
        log::cursors(self.shared()).await
    }

    async fn revoke_session(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<(), DropError> {
        // On a task of the store's, like every write: shutdown waits for
        // it, and refuses it once begun.
        let shared = self.shared().clone();
        self.shared()
            .detached(async move { sessions::revoke(&shared, id, expires_at).await })
            .await
    }

    async fn revoked_sessions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevokedSessions, DropError> {
        sessions::revoked(self.shared(), since).await
    }

    /// One statement however many drops there are: each drop's latest
    /// buyers, the viewer's hold and the viewer's place in its line come
    /// from correlated subqueries and joins, instead of round trips per
    /// drop.
    async fn overview(&self, viewer: Option<&BuyerId>) -> Result<Vec<DropOverview>, DropError> {
        const SQL: &str = concat!(
            "SELECT ",
            visible_drop_columns!(),
            ", (SELECT coalesce(array_agg(ROW(t.display_name, t.created_at)::dropkit_buyer \
                                          ORDER BY t.created_at DESC, t.seq DESC), '{}') \
                  FROM (SELECT p.display_name, p.created_at, p.seq FROM dropkit_purchases p \
                         WHERE p.drop_id = d.id ORDER BY p.created_at DESC, p.seq DESC LIMIT $2) t) \
                AS latest, \
               h.id AS hold_id, h.display_name AS hold_display_name, \
               h.created_at AS hold_created_at, h.expires_at AS hold_expires_at, \
               h.variant_id AS hold_variant_id, h.quantity AS hold_quantity, \
               h.offered AS hold_offered, w.*, ",
            entry_columns!(),
            " FROM dropkit_drops d \
             LEFT JOIN dropkit_reservations h \
               ON h.buyer_id = $1 AND h.drop_id = d.id AND h.status = 'active' \
              AND h.expires_at > statement_timestamp() \
             LEFT JOIN LATERAL dropkit_waitlist_place(d.id, $1) w ON $1 IS NOT NULL \
             LEFT JOIN dropkit_entries en \
               ON $1 IS NOT NULL AND en.drop_id = d.id AND en.buyer_id = $1 ",
            not_ended_in_order!()
        );
        let limit = i64::try_from(TOP_PURCHASERS).unwrap_or(i64::MAX);
        let rows = self
            .shared()
            .read(|| {
                sqlx::query_as::<_, rows::OverviewRow>(SQL)
                    .bind(viewer.map(BuyerId::as_str))
                    .bind(limit)
                    .fetch_all(self.pool())
            })
            .await?;
        rows.into_iter().map(|row| row.overview(viewer)).collect()
    }

    async fn store_time(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.database_time().await.map(Some)
    }

    async fn health(&self) -> Result<(), DropError> {
        let unavailable = |why: &str| DropError::Unavailable {
            store: crate::error::STORE,
            source: why.to_owned().into(),
        };
        if self.shared().closing.is_cancelled() {
            return Err(unavailable("the store is shut down"));
        }
        if !self.shared().fanout.listening() {
            return Err(unavailable(
                "the event listener is not connected: other instances' changes are not heard",
            ));
        }
        // One try, bounded: a health check answers promptly, never after
        // the pool's retries.
        let ping = sqlx::query("SELECT 1").execute(self.pool());
        match tokio::time::timeout(self.inner.health_timeout, ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(map_sqlx(e)),
            Err(_) => Err(unavailable("the database did not answer in time")),
        }
    }

    async fn close(&self) {
        PgStore::close(self).await;
    }
}

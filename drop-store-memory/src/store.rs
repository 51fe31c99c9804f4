//! [`MemoryStore`]: the async face of the engine.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{
    Applied, Buyer, BuyerId, Clock, CursorClaim, DEFAULT_EVENT_CAPACITY, DEFAULT_EVENT_RETENTION,
    DropError, DropId, DropPatch, DropState, EventBus, EventStream, IdempotencyKey,
    IdempotencyRecord, InventoryStore, LogEntry, NewDrop, Purchase, PurchaseId, Purchased,
    Reservation, ReservationId, ReserveRequest, Reserved, RevokedSessions, SystemClock,
    TopPurchaser, WaitlistPlace,
};
use drop_core::{
    Beacon, DrawRandom, DrawStatus, DrawSummary, DropInfo, Entry, OsRandom, VariantId,
};
use uuid::Uuid;

use crate::engine::Engine;

/// The in-memory store: the embedded default and the fastest store.
///
/// Each drop has its own lock, so operations on different drops never wait
/// on each other; every operation is a short synchronous critical section
/// (never held across an `.await`). Time comes from a [`Clock`]. Clones
/// share the same data.
///
/// Everything lives in this process: nothing survives a restart, and
/// several processes do not share stock (use the PostgreSQL store for that).
///
/// Purchases and purchased holds are kept for good. Released and expired
/// holds are kept for a retention period counted from their `expiresAt`
/// (10 minutes by default, see [`MemoryStoreBuilder::retention`]) so
/// clients can still look them up, then pruned; after that,
/// [`get_reservation`](InventoryStore::get_reservation), `purchase` and
/// `release` of such a hold answer `RESERVATION_NOT_FOUND`, exactly as for
/// an id that never existed. (The PostgreSQL store keeps every hold.) A
/// hold an idempotency record names is still answered to that record's
/// replay until the record is pruned, 24 hours after it was written.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    engine: Arc<Engine>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store on the system clock.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A store on `clock` (tests pass a [`drop_core::ManualClock`]).
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self::builder().clock(clock).build()
    }

    /// A builder for the less common settings.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder {
            clock: Arc::new(SystemClock),
            event_capacity: DEFAULT_EVENT_CAPACITY,
            retention: DEFAULT_RETENTION,
            event_retention: DEFAULT_EVENT_RETENTION,
            draw_random: Arc::new(OsRandom),
        }
    }

    /// The clock the store keeps time by (give it to the
    /// [`ExpiryScheduler`](drop_core::ExpiryScheduler)).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.engine.clock().clone()
    }

    /// How many holds the store keeps in memory: active and purchased ones,
    /// released or expired ones still within the retention period, and
    /// those kept for an idempotency record's replay.
    pub fn kept_holds(&self) -> usize {
        self.engine.kept_holds()
    }

    /// How many idempotency records the store keeps: each is kept at least
    /// [`IDEMPOTENCY_RETENTION`](drop_core::IDEMPOTENCY_RETENTION), then
    /// pruned a few at a time by later keyed writes and sweeps.
    pub fn kept_idempotency_records(&self) -> usize {
        self.engine.kept_records()
    }

    /// Checks every drop's counters against its holds and purchases;
    /// describes the first mismatch. For tests: it locks each drop in turn.
    pub fn verify_invariants(&self) -> Result<(), String> {
        self.engine.verify()
    }

    /// How many event log entries the store keeps: those within the
    /// event retention, and older ones a cursor has not passed (pruning
    /// goes a few entries per append, so a few more may linger).
    pub fn kept_log_entries(&self) -> usize {
        self.engine.log().kept()
    }

    /// How many entries a draw drop's draw holds (0 for a first-come
    /// drop): entries are kept with the drop, for good. Errors:
    /// `DROP_NOT_FOUND`.
    pub fn entry_count(&self, drop_id: DropId) -> Result<usize, DropError> {
        self.engine.entry_count(drop_id)
    }
}

/// How long released and expired holds stay visible after their
/// `expiresAt` by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(10 * 60);

/// Builds a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryStoreBuilder {
    clock: Arc<dyn Clock>,
    event_capacity: usize,
    retention: Duration,
    event_retention: Duration,
    draw_random: Arc<dyn DrawRandom>,
}

impl MemoryStoreBuilder {
    /// Where draw drops' seeds and entries' receipts come from. Defaults
    /// to [`OsRandom`]; tests that must see the same draws on every run
    /// pass a [`SeededRandom`](drop_core::SeededRandom) (never in
    /// production: its values are predictable).
    pub fn draw_random(mut self, random: Arc<dyn DrawRandom>) -> Self {
        self.draw_random = random;
        self
    }

    /// The time source. Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How many events a slow subscriber may fall behind before it is told
    /// it lost some. Defaults to 4096.
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }

    /// How long a released or expired hold stays visible, counted from
    /// its `expiresAt`; after that it is pruned and reads as
    /// `RESERVATION_NOT_FOUND`. Defaults to [`DEFAULT_RETENTION`] (10 minutes).
    /// Memory then grows with the rate of holds ending times
    /// (hold length + retention), not with every hold ever taken.
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long the event log keeps an entry at least, counted from when
    /// it was written; an entry a cursor has not passed is kept until it
    /// has. Defaults to [`DEFAULT_EVENT_RETENTION`] (30 days). Older
    /// entries are pruned a few at a time as new ones are appended.
    pub fn event_retention(mut self, retention: Duration) -> Self {
        self.event_retention = retention;
        self
    }

    /// The store.
    pub fn build(self) -> MemoryStore {
        // Beyond chrono's range means "keep for good".
        let retention = TimeDelta::from_std(self.retention).unwrap_or(TimeDelta::MAX);
        let event_retention = TimeDelta::from_std(self.event_retention).unwrap_or(TimeDelta::MAX);
        MemoryStore {
            engine: Arc::new(Engine::new(
                self.clock,
                EventBus::new(self.event_capacity),
                retention,
                event_retention,
                self.draw_random,
            )),
        }
    }
}

#[async_trait]
impl InventoryStore for MemoryStore {
    async fn create_drop_with(
        &self,
        new: NewDrop,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.engine.create_drop(new, key)
    }

    async fn list_drops(&self) -> Result<Vec<DropState>, DropError> {
        Ok(self.engine.list_drops())
    }

    async fn list_all_drops(&self) -> Result<Vec<DropState>, DropError> {
        Ok(self.engine.list_all_drops())
    }

    async fn get_drop(&self, drop_id: DropId) -> Result<DropState, DropError> {
        self.engine.get_drop(drop_id)
    }

    async fn reserve_with(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError> {
        self.engine.reserve(drop_id, buyer, request, key)
    }

    async fn purchase_with(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError> {
        self.engine.purchase(reservation_id, buyer, key)
    }

    async fn get_purchase(&self, purchase_id: PurchaseId) -> Result<Purchase, DropError> {
        self.engine.get_purchase(purchase_id)
    }

    async fn buyer_purchases(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError> {
        self.engine.buyer_purchases(buyer, before, limit)
    }

    async fn update_drop(
        &self,
        drop_id: DropId,
        patch: &DropPatch,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.engine.update_drop(drop_id, patch, key)
    }

    async fn set_paused(
        &self,
        drop_id: DropId,
        paused: bool,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.engine.set_paused(drop_id, paused, key)
    }

    async fn end_drop(
        &self,
        drop_id: DropId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.engine.end_drop(drop_id, key)
    }

    async fn cancel_purchase(
        &self,
        purchase_id: PurchaseId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Purchase>, DropError> {
        self.engine.cancel_purchase(purchase_id, key)
    }

    async fn join_waitlist(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
    ) -> Result<Applied<WaitlistPlace>, DropError> {
        self.engine.join_waitlist(drop_id, buyer, request)
    }

    async fn leave_waitlist(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        self.engine.leave_waitlist(drop_id, buyer)
    }

    async fn waitlist_place(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        self.engine.waitlist_place(drop_id, buyer)
    }

    async fn enter_draw(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        variant_id: Option<VariantId>,
    ) -> Result<Applied<Entry>, DropError> {
        self.engine.enter_draw(drop_id, buyer, variant_id)
    }

    async fn withdraw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        self.engine.withdraw_entry(drop_id, buyer)
    }

    async fn draw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError> {
        self.engine.draw_entry(drop_id, buyer)
    }

    async fn due_draws(&self, limit: usize) -> Result<Vec<DropInfo>, DropError> {
        Ok(self.engine.due_draws(limit))
    }

    async fn next_draw_at(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        Ok(self.engine.next_draw_at())
    }

    async fn run_draw(
        &self,
        drop_id: DropId,
        beacon: Option<Beacon>,
    ) -> Result<Option<DrawSummary>, DropError> {
        self.engine.run_draw(drop_id, beacon)
    }

    async fn draw_status(&self, drop_id: DropId) -> Result<DrawStatus, DropError> {
        self.engine.draw_status(drop_id)
    }

    async fn idempotency_record(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, DropError> {
        Ok(self.engine.idempotency_record(caller, key))
    }

    async fn release(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
    ) -> Result<Reservation, DropError> {
        self.engine.release(reservation_id, buyer)
    }

    async fn get_reservation(
        &self,
        reservation_id: ReservationId,
    ) -> Result<Reservation, DropError> {
        self.engine.get_reservation(reservation_id)
    }

    async fn active_hold(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Reservation>, DropError> {
        self.engine.active_hold(drop_id, buyer)
    }

    async fn top_purchasers(
        &self,
        drop_id: DropId,
        limit: usize,
    ) -> Result<Vec<TopPurchaser>, DropError> {
        self.engine.top_purchasers(drop_id, limit)
    }

    async fn expire_due(&self, limit: usize) -> Result<usize, DropError> {
        Ok(self.engine.expire_due(limit))
    }

    async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        Ok(self.engine.next_expiry())
    }

    fn subscribe(&self) -> EventStream {
        self.engine.bus.subscribe()
    }

    async fn events_after(&self, after: u64, limit: usize) -> Result<Vec<LogEntry>, DropError> {
        self.engine.log().events_after(after, limit)
    }

    async fn drop_history(
        &self,
        drop_id: DropId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogEntry>, DropError> {
        self.engine.log().drop_history(drop_id, after, limit)
    }

    async fn log_head(&self) -> Result<u64, DropError> {
        Ok(self.engine.log().head())
    }

    async fn claim_cursor(
        &self,
        name: &str,
        holder: Uuid,
        lease: Duration,
    ) -> Result<Option<CursorClaim>, DropError> {
        // Beyond chrono's range means "for good".
        let lease = TimeDelta::from_std(lease).unwrap_or(TimeDelta::MAX);
        self.engine
            .log()
            .claim_cursor(name, holder, lease, self.engine.now())
    }

    async fn advance_cursor(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
    ) -> Result<bool, DropError> {
        self.engine
            .log()
            .advance_cursor(name, holder, position, self.engine.now())
    }

    async fn release_cursor(&self, name: &str, holder: Uuid) -> Result<(), DropError> {
        self.engine.log().release_cursor(name, holder)
    }

    async fn remove_cursor(&self, name: &str) -> Result<(), DropError> {
        self.engine.log().remove_cursor(name)
    }

    async fn cursors(&self) -> Result<Vec<drop_core::CursorInfo>, DropError> {
        Ok(self.engine.log().cursors(self.engine.now()))
    }

    async fn revoke_session(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<(), DropError> {
        self.engine.revoke_session(id, expires_at);
        Ok(())
    }

    async fn revoked_sessions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevokedSessions, DropError> {
        Ok(self.engine.revoked_sessions(since))
    }
}

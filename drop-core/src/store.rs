//! The storage contract every backend implements.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::{
    Applied, Buyer, BuyerId, DropError, DropId, DropPatch, DropState, EventStream, IdempotencyKey,
    IdempotencyRecord, NewDrop, Purchase, PurchaseId, Purchased, Reservation, ReservationId,
    ReserveRequest, Reserved, RevokedSessions, TopPurchaser, WaitlistPlace,
};
use crate::{Beacon, DrawStatus, DrawSummary, DropInfo, Entry, VariantId};

/// Most purchases one page of [`InventoryStore::buyer_purchases`] holds.
pub const MAX_PAGE: usize = 100;

/// How many recent buyers a drop lists.
pub const TOP_PURCHASERS: usize = 3;

/// Storage for drops, holds and purchases, and the list of revoked
/// sign-in sessions every instance shares.
///
/// Object safe: applications hold an `Arc<dyn InventoryStore>`.
///
/// # Contract
///
/// Every implementation keeps the invariants below under any concurrency,
/// and proves it by running the conformance suite (`drop_core::testkit`,
/// feature `testkit`):
///
/// 1. No oversell, per variant: `reserved + sold ≤ total` for each
///    variant at every instant (and so for the drop).
/// 2. A hold past its `expiresAt` never blocks a reserve, even if no
///    sweeper has run ([`expire_due`](Self::expire_due) is for promptness,
///    not correctness).
/// 3. Every hold ends in exactly one terminal state; a purchase exists iff
///    its hold is purchased; at most one purchase per hold.
/// 4. At most one active hold per (drop, buyer id), and the units a buyer
///    holds plus has bought (not cancelled) in a drop never exceed its
///    `maxPerBuyer` as it stood when they were taken, whatever the
///    concurrency (several instances included): lowering the limit takes
///    nothing back. Holds and purchases are keyed by [`BuyerId`]; the display
///    name is only shown, so two buyers sharing one are still two buyers.
/// 5. [`subscribe`](Self::subscribe)rs hear of every committed change and
///    of nothing that did not commit.
///
/// # Idempotency
///
/// The writes taking an `Option<&IdempotencyKey>` record the key in the
/// same critical section or transaction as their change, and a later call
/// with the same caller and key replays instead of acting (see
/// [`crate::idempotency`]): same fingerprint, the recorded entity as it is
/// now, marked `replayed`; another fingerprint, `IDEMPOTENCY_KEY_REUSED`.
/// Refused writes record nothing.
///
/// Time is the store's: a clock given to it, or the database's.
#[async_trait]
pub trait InventoryStore: Debug + Send + Sync + 'static {
    /// Validates and creates a drop; emits [`DropEvent::DropCreated`](crate::DropEvent::DropCreated).
    /// The answer is `changed` (a replay is not).
    async fn create_drop_with(
        &self,
        new: NewDrop,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError>;

    /// Validates and creates a drop (no idempotency key).
    async fn create_drop(&self, new: NewDrop) -> Result<DropState, DropError> {
        self.create_drop_with(new, None).await.map(|a| a.value)
    }

    /// Drops that have not ended, soonest start first.
    async fn list_drops(&self) -> Result<Vec<DropState>, DropError>;

    /// Every drop, ended ones too, newest first (for admins).
    async fn list_all_drops(&self) -> Result<Vec<DropState>, DropError>;

    /// One drop with its stock.
    async fn get_drop(&self, drop_id: DropId) -> Result<DropState, DropError>;

    /// Holds `request.quantity` units of one variant of `drop_id` for
    /// `buyer`, shown as its display name: all of them, or none.
    ///
    /// Checked in this order, so every store answers alike:
    /// 1. `DROP_NOT_FOUND`;
    /// 2. the request against the drop ([`DropInfo::check_request`](crate::DropInfo::check_request)):
    ///    `VARIANT_NOT_FOUND`, `INVALID_INPUT` (`variantId` missing on a
    ///    drop of several, `quantity` 0 or above `maxPerBuyer`);
    /// 3. `DROP_NOT_ACTIVE` outside the sale window, `DROP_PAUSED`, then
    ///    `DRAW_ONLY` on a draw drop not drawn yet ([`crate::entry`]);
    /// 4. the buyer's active, unexpired hold on this drop: the same variant
    ///    and quantity answer it unchanged with `created: false` (no
    ///    extension: holding is not a way to hoard); anything else is
    ///    `HOLD_EXISTS` carrying it;
    /// 5. `BUYER_LIMIT_REACHED` when the units bought (not cancelled) in
    ///    this drop plus `quantity` exceed `maxPerBuyer`;
    /// 6. `OUT_OF_STOCK` when the variant has fewer free units, after
    ///    reclaiming overdue holds of the drop.
    ///
    /// With a key, the idempotency rules of the trait apply (step 0).
    async fn reserve_with(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError>;

    /// One unit of the drop's only variant: [`reserve_with`](Self::reserve_with)
    /// with the default request and no key.
    async fn reserve(&self, drop_id: DropId, buyer: &Buyer) -> Result<Reserved, DropError> {
        self.reserve_with(drop_id, buyer, ReserveRequest::default(), None)
            .await
    }

    /// Completes a hold: the owner (`buyer`) pays the drop's price ×
    /// quantity. The owner asking again for a hold they bought gets the
    /// same purchase back with `created: false` (a lost answer is the
    /// common case), even if it was cancelled since. Errors:
    /// `RESERVATION_NOT_FOUND`, `NOT_OWNER`, `RESERVATION_EXPIRED` (at or
    /// after `expiresAt`, swept or not), `ALREADY_RELEASED`.
    ///
    /// A hold taken before the drop's `endsAt` may be bought until its own
    /// `expiresAt`; a paused drop's holds may be bought too.
    async fn purchase_with(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError>;

    /// [`purchase_with`](Self::purchase_with) without a key.
    async fn purchase(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
    ) -> Result<Purchased, DropError> {
        self.purchase_with(reservation_id, buyer, None).await
    }

    /// One purchase, completed or cancelled. Errors: `PURCHASE_NOT_FOUND`.
    /// Whoever asks may see it: the web layer shows it to its owner and
    /// admins only.
    async fn get_purchase(&self, purchase_id: PurchaseId) -> Result<Purchase, DropError>;

    /// The buyer's purchases in every drop, cancelled ones included,
    /// newest first: at most `limit` (1–[`MAX_PAGE`]) of them, starting
    /// after purchase `before` (the last one of the previous page; a
    /// purchase of another buyer or none at all is `PURCHASE_NOT_FOUND`).
    async fn buyer_purchases(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError>;

    /// Edits a drop ([`DropPatch::apply`] decides, under the drop's lock),
    /// emitting [`DropUpdated`](crate::DropEvent::DropUpdated) and, when
    /// stock changed, [`StockChanged`](crate::DropEvent::StockChanged).
    /// An empty patch changes nothing and emits nothing.
    async fn update_drop(
        &self,
        drop_id: DropId,
        patch: &DropPatch,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError>;

    /// Pauses (`true`) or resumes (`false`) a drop: a paused drop refuses
    /// new holds with `DROP_PAUSED`. Pausing a paused drop (or resuming a
    /// running one) changes nothing and emits nothing.
    async fn set_paused(
        &self,
        drop_id: DropId,
        paused: bool,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError>;

    /// Ends a drop's sale now (its `endsAt` becomes now). Holds taken
    /// before may still be bought until their own `expiresAt`. A drop
    /// that had not started never opens: its `startsAt` is cleared. Ending
    /// an ended drop changes nothing.
    async fn end_drop(
        &self,
        drop_id: DropId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError>;

    /// Cancels a purchase: its units go back on sale at once, the buyer's
    /// count under `maxPerBuyer` drops by them, and
    /// [`PurchaseCancelled`](crate::DropEvent::PurchaseCancelled) and
    /// [`StockChanged`](crate::DropEvent::StockChanged) are emitted.
    /// Cancelling a cancelled purchase changes nothing. Errors:
    /// `PURCHASE_NOT_FOUND`.
    async fn cancel_purchase(
        &self,
        purchase_id: PurchaseId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Purchase>, DropError>;

    /// Puts `buyer` in the line for `request`'s variant of `drop_id` (see
    /// [`crate::waitlist`] for the rules and the order of the checks),
    /// and answers their place. `changed: false` when they already stood
    /// in that line for the same quantity. There is no idempotency key:
    /// joining again with the same request is already harmless.
    async fn join_waitlist(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
    ) -> Result<Applied<WaitlistPlace>, DropError>;

    /// Takes `buyer` out of the drop's line; units set aside for them go
    /// to the next in line (or back on sale). Answers the place they had,
    /// `None` when they stood in none. Errors: `DROP_NOT_FOUND`.
    async fn leave_waitlist(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError>;

    /// `buyer`'s place in the drop's line as it is now, if they stand in
    /// one. Errors: `DROP_NOT_FOUND`.
    async fn waitlist_place(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError>;

    /// Enters `buyer` in the drop's draw for one unit of `variant_id` (the
    /// drop's only variant when `None`); see [`crate::entry`] for the
    /// rules and the order of the checks. An entry they already have
    /// answers unchanged with `changed: false`, whatever variant was asked.
    async fn enter_draw(
        &self,
        drop_id: DropId,
        buyer: &Buyer,
        variant_id: Option<VariantId>,
    ) -> Result<Applied<Entry>, DropError>;

    /// Withdraws `buyer`'s entry before `drawAt`, answering it (`None`
    /// when they had none). Errors: `DROP_NOT_FOUND`, `NOT_A_DRAW`,
    /// `ENTRIES_CLOSED` at or after `drawAt`.
    async fn withdraw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError>;

    /// `buyer`'s entry to the drop's draw, with its outcome once drawn.
    /// Errors: `DROP_NOT_FOUND`.
    async fn draw_entry(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Entry>, DropError>;

    /// Draw drops whose draw is due at the store's time
    /// ([`DropInfo::draw_due`]), earliest `drawAt` first, at most `limit`.
    async fn due_draws(&self, limit: usize) -> Result<Vec<DropInfo>, DropError>;

    /// The earliest `drawAt` of the draws still to be made (drops ended
    /// before their draw excluded), on the store's clock: when a runner
    /// should look next. It may be in the past (a draw due now).
    async fn next_draw_at(&self) -> Result<Option<DateTime<Utc>>, DropError>;

    /// Makes the drop's draw if it is due and not made yet, exactly once
    /// across every instance (see [`crate::entry`]): `Some` when this call
    /// drew, `None` when the draw is not due yet or was made already, by
    /// this instance or another. `beacon` is the value of the public
    /// randomness the drop names ([`DropInfo::beacon_name`]): required
    /// when it names one, refused when it does not (`INVALID_INPUT`, field
    /// `beacon`). Errors: `DROP_NOT_FOUND`, `NOT_A_DRAW`.
    async fn run_draw(
        &self,
        drop_id: DropId,
        beacon: Option<Beacon>,
    ) -> Result<Option<DrawSummary>, DropError>;

    /// The draw's public record: the seed's hash from the drop's creation,
    /// and once drawn, everything needed to check it. Errors:
    /// `DROP_NOT_FOUND`, `NOT_A_DRAW`.
    async fn draw_status(&self, drop_id: DropId) -> Result<DrawStatus, DropError>;

    /// The record of `caller`'s write under `key`, if one is kept: for a
    /// caller that wants to answer a replay without attempting the write.
    async fn idempotency_record(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, DropError>;

    /// The owner (`buyer`) gives a hold back; the unit is free again at once.
    async fn release(
        &self,
        reservation_id: ReservationId,
        buyer: &BuyerId,
    ) -> Result<Reservation, DropError>;

    /// A hold, with its status as time sees it (an overdue active hold
    /// reads as expired). A store may forget released and expired holds
    /// after a retention period (the memory store does, 10 minutes after
    /// `expiresAt` by default); such a hold answers `RESERVATION_NOT_FOUND`.
    async fn get_reservation(
        &self,
        reservation_id: ReservationId,
    ) -> Result<Reservation, DropError>;

    /// The buyer's active, unexpired hold on a drop, if any.
    async fn active_hold(
        &self,
        drop_id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Reservation>, DropError>;

    /// The drop's most recent buyers, newest first, at most `limit`.
    async fn top_purchasers(
        &self,
        drop_id: DropId,
        limit: usize,
    ) -> Result<Vec<TopPurchaser>, DropError>;

    /// Expires up to `limit` holds whose time is up; returns how many.
    /// Safe to call from any number of tasks or processes at once: each hold
    /// expires exactly once.
    async fn expire_due(&self, limit: usize) -> Result<usize, DropError>;

    /// When the earliest active hold runs out, on the store's clock
    /// (`None` when no hold is active).
    async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError>;

    /// Committed events from now on.
    fn subscribe(&self) -> EventStream;

    /// The durable log's entries numbered above `after`, oldest first, at
    /// most `limit` of them (at most [`MAX_LOG_PAGE`](crate::MAX_LOG_PAGE);
    /// a `limit` of 0 answers nothing). Start at 0 for the whole log.
    ///
    /// The guarantee a consumer relies on: **reading after its cursor never
    /// skips an entry**. Once an entry is in an answer, every entry with a
    /// lower number that will ever exist is visible already, so asking
    /// again with the highest `seq` seen finds exactly the entries that
    /// were not seen. Numbers may have holes.
    ///
    /// `EVENTS_PRUNED` when entries above `after` were already pruned
    /// (retention): the consumer has missed them.
    async fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::LogEntry>, DropError>;

    /// One drop's log entries numbered above `after`, oldest first, at
    /// most `limit` (capped as in [`events_after`](Self::events_after)),
    /// with the same guarantee: a drop's history for an admin screen
    /// without reading the whole log. `EVENTS_PRUNED` as there.
    async fn drop_history(
        &self,
        drop_id: DropId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::LogEntry>, DropError>;

    /// The highest number in the log so far (0 when it is empty): a
    /// consumer that only wants what happens from now on starts there.
    async fn log_head(&self) -> Result<u64, DropError>;

    /// Claims the named cursor (`name`, checked by
    /// [`check_cursor_name`](crate::check_cursor_name)) for `holder` for
    /// `lease`: a cursor nobody holds, or whose lease ran out, or that
    /// `holder` holds already (the lease is renewed). A new cursor starts
    /// at the oldest entry kept (0 before anything was pruned). `None`
    /// when another holder's lease is still running.
    ///
    /// One holder at a time is how several instances share one consumer
    /// (a webhook endpoint) without delivering twice at once; the lease
    /// lets another take over when the holder dies. While a cursor exists,
    /// retention never prunes an entry it has not passed.
    async fn claim_cursor(
        &self,
        name: &str,
        holder: Uuid,
        lease: std::time::Duration,
    ) -> Result<Option<crate::CursorClaim>, DropError>;

    /// Moves the named cursor forward to `position` (never back: a lower
    /// position leaves it where it is) if `holder` still holds its lease;
    /// `false` when it does not (another holder took over: stop).
    async fn advance_cursor(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
    ) -> Result<bool, DropError>;

    /// Gives the lease on the named cursor up (at shutdown), so another
    /// holder can take over at once. Nothing happens when `holder` does
    /// not hold it.
    async fn release_cursor(&self, name: &str, holder: Uuid) -> Result<(), DropError>;

    /// Deletes the named cursor (a consumer that is gone for good), so it
    /// no longer keeps entries from being pruned. Idempotent.
    async fn remove_cursor(&self, name: &str) -> Result<(), DropError>;

    /// Every cursor, by name: positions, and whether each is held now. A
    /// cursor nobody has held for long is a consumer that may be gone, and
    /// it keeps every entry after its position from being pruned.
    async fn cursors(&self) -> Result<Vec<crate::CursorInfo>, DropError>;

    /// Records that sign-in session `id` is revoked, for every instance
    /// sharing the store. `expires_at` is when the session's token expires
    /// anyway: from then on the record serves no purpose, and the store
    /// may forget it (each store prunes expired records as it goes).
    ///
    /// Idempotent: revoking a session again is not an error. The record
    /// keeps the later of the two expiries, and its `revoked_at` becomes
    /// the time of the latest revocation, so pollers hear of it again.
    /// The revocation's time is the store's (its clock, or the database's),
    /// taken before the revocation commits.
    async fn revoke_session(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<(), DropError>;

    /// The revocations recorded at or after `since` (every one when
    /// `None`) whose `expires_at` has not passed, oldest `revoked_at`
    /// first, with the store's time of the read
    /// ([`RevokedSessions::now`]), both by the store's own clock.
    ///
    /// To follow revocations, start with `since = None`, then ask again
    /// and again with `since = now - overlap`, where `now` is the previous
    /// answer's: a revocation's `revoked_at` is taken before it commits,
    /// so one committing while a read runs may carry a time before that
    /// read's `now` and still not be in its answer. An overlap of a few
    /// seconds (longer than any revocation takes to commit) catches it on
    /// the next read; revocations in the overlap come again, which is
    /// harmless. A session is revoked while `now < expires_at`.
    async fn revoked_sessions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevokedSessions, DropError>;

    /// Every drop that has not ended (as [`list_drops`](Self::list_drops)),
    /// with its latest buyers and `viewer`'s active hold.
    ///
    /// The default asks [`list_drops`](Self::list_drops), then
    /// [`top_purchasers`](Self::top_purchasers) and
    /// [`active_hold`](Self::active_hold) per drop ([`overview_by_parts`]);
    /// a store that can answer in a fixed number of round trips overrides it.
    async fn overview(&self, viewer: Option<&BuyerId>) -> Result<Vec<DropOverview>, DropError> {
        overview_by_parts(self, viewer).await
    }

    /// The store's own time now, when it keeps one apart from the clock it
    /// was given (a database's clock); `None` (the default) when its time is
    /// the clock the application passed it. The
    /// [`ExpiryScheduler`](crate::ExpiryScheduler) reads it to turn the
    /// store's next expiry into a sleep of the right length even when the
    /// two clocks disagree.
    async fn store_time(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        Ok(None)
    }

    /// `Ok` when the store can serve requests. Bounded in time: a store
    /// whose backend does not answer says so promptly.
    async fn health(&self) -> Result<(), DropError> {
        Ok(())
    }

    /// Shuts the store down at the end of the process: refuses new writes,
    /// lets the writes in flight finish and publishes their events, then
    /// releases what the store holds (connections, background tasks). Call
    /// it after the server has drained. Defaults to doing nothing.
    async fn close(&self) {}
}

/// A drop as a buyer's screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DropOverview {
    /// The drop and its stock.
    pub state: DropState,
    /// Its latest buyers, newest first.
    pub top_purchasers: Vec<TopPurchaser>,
    /// The viewer's active hold on it, if a viewer was named and holds one.
    pub user_reservation: Option<Reservation>,
    /// The viewer's place in its waiting list, if a viewer was named and
    /// stands in one.
    #[serde(default)]
    pub user_waitlist: Option<WaitlistPlace>,
    /// The viewer's entry to its draw, if a viewer was named and entered.
    #[serde(default)]
    pub user_entry: Option<Entry>,
}

impl DropOverview {
    /// A drop's overview from its parts.
    pub fn new(
        state: DropState,
        top_purchasers: Vec<TopPurchaser>,
        user_reservation: Option<Reservation>,
    ) -> Self {
        Self {
            state,
            top_purchasers,
            user_reservation,
            user_waitlist: None,
            user_entry: None,
        }
    }

    /// Sets the viewer's place in the drop's line.
    pub fn with_waitlist(mut self, place: Option<WaitlistPlace>) -> Self {
        self.user_waitlist = place;
        self
    }

    /// Sets the viewer's entry to the drop's draw.
    pub fn with_entry(mut self, entry: Option<Entry>) -> Self {
        self.user_entry = entry;
        self
    }
}

/// [`InventoryStore::overview`] from the store's parts: one
/// [`list_drops`](InventoryStore::list_drops), then per drop its top buyers
/// and the viewer's hold. The default implementation, and the reference a
/// store's own implementation is tested against.
pub async fn overview_by_parts<S: InventoryStore + ?Sized>(
    store: &S,
    viewer: Option<&BuyerId>,
) -> Result<Vec<DropOverview>, DropError> {
    let drops = store.list_drops().await?;
    let mut out = Vec::with_capacity(drops.len());
    for state in drops {
        out.push(store.drop_overview(state, viewer).await?);
    }
    Ok(out)
}

/// Conveniences built on [`InventoryStore`], for every store.
#[async_trait]
pub trait InventoryStoreExt: InventoryStore {
    /// One drop's overview, from its state.
    async fn drop_overview(
        &self,
        state: DropState,
        viewer: Option<&BuyerId>,
    ) -> Result<DropOverview, DropError> {
        let id = state.drop.id;
        let top_purchasers = self.top_purchasers(id, TOP_PURCHASERS).await?;
        let draw = state.drop.mode == crate::SaleMode::Draw;
        let (user_reservation, user_waitlist, user_entry) = match viewer {
            Some(buyer) => (
                self.active_hold(id, buyer).await?,
                self.waitlist_place(id, buyer).await?,
                if draw {
                    self.draw_entry(id, buyer).await?
                } else {
                    None
                },
            ),
            None => (None, None, None),
        };
        Ok(DropOverview {
            state,
            top_purchasers,
            user_reservation,
            user_waitlist,
            user_entry,
        })
    }
}

impl<S: InventoryStore + ?Sized> InventoryStoreExt for S {}

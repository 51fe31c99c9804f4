//! A store wrapped for a test: every call goes to the inner store, with
//! hooks where a test needs to count, hold or redirect something.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{
    Applied, Buyer, BuyerId, DropError, DropId, DropOverview, DropPatch, DropState, EventStream,
    IdempotencyKey, IdempotencyRecord, InventoryStore, NewDrop, Purchase, PurchaseId, Purchased,
    Reservation, ReservationId, ReserveRequest, Reserved, RevokedSessions, TopPurchaser,
    WaitlistPlace,
};

/// What a test changes in a store it wraps with [`Wrapped`]. Every hook
/// defaults to the inner store's own behaviour.
#[async_trait]
pub trait StoreHooks: Debug + Send + Sync + 'static {
    /// Runs before each `reserve_with` reaches the inner store (a test may
    /// hold a reserve here to make a race certain).
    async fn before_reserve(&self) {}

    /// Runs before each `expire_due` reaches the inner store (a test may
    /// count sweeps here).
    async fn before_expire_due(&self) {}

    /// The event stream subscribers get: the inner store's by default.
    fn subscribe(&self, inner: &dyn InventoryStore) -> EventStream {
        inner.subscribe()
    }
}

/// An inner store with [`StoreHooks`]: everything else is the inner store's.
#[derive(Debug)]
pub struct Wrapped<H> {
    /// The store every call goes to.
    pub inner: Arc<dyn InventoryStore>,
    /// What the test changes.
    pub hooks: H,
}

impl<H: StoreHooks> Wrapped<H> {
    /// `inner` with `hooks`.
    pub fn new(inner: Arc<dyn InventoryStore>, hooks: H) -> Self {
        Self { inner, hooks }
    }
}

#[async_trait]
impl<H: StoreHooks> InventoryStore for Wrapped<H> {
    async fn create_drop_with(
        &self,
        new: NewDrop,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.create_drop_with(new, key).await
    }
    async fn list_drops(&self) -> Result<Vec<DropState>, DropError> {
        self.inner.list_drops().await
    }
    async fn list_all_drops(&self) -> Result<Vec<DropState>, DropError> {
        self.inner.list_all_drops().await
    }
    async fn get_drop(&self, id: DropId) -> Result<DropState, DropError> {
        self.inner.get_drop(id).await
    }
    async fn reserve_with(
        &self,
        id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError> {
        self.hooks.before_reserve().await;
        self.inner.reserve_with(id, buyer, request, key).await
    }
    async fn purchase_with(
        &self,
        id: ReservationId,
        buyer: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError> {
        self.inner.purchase_with(id, buyer, key).await
    }
    async fn get_purchase(&self, id: PurchaseId) -> Result<Purchase, DropError> {
        self.inner.get_purchase(id).await
    }
    async fn buyer_purchases(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError> {
        self.inner.buyer_purchases(buyer, before, limit).await
    }
    async fn update_drop(
        &self,
        id: DropId,
        patch: &DropPatch,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.update_drop(id, patch, key).await
    }
    async fn set_paused(
        &self,
        id: DropId,
        paused: bool,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.set_paused(id, paused, key).await
    }
    async fn end_drop(
        &self,
        id: DropId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.end_drop(id, key).await
    }
    async fn cancel_purchase(
        &self,
        id: PurchaseId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Purchase>, DropError> {
        self.inner.cancel_purchase(id, key).await
    }
    async fn idempotency_record(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, DropError> {
        self.inner.idempotency_record(caller, key).await
    }
    async fn join_waitlist(
        &self,
        id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
    ) -> Result<Applied<WaitlistPlace>, DropError> {
        self.inner.join_waitlist(id, buyer, request).await
    }
    async fn leave_waitlist(
        &self,
        id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        self.inner.leave_waitlist(id, buyer).await
    }
    async fn waitlist_place(
        &self,
        id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<WaitlistPlace>, DropError> {
        self.inner.waitlist_place(id, buyer).await
    }
    async fn enter_draw(
        &self,
        id: DropId,
        buyer: &Buyer,
        variant_id: Option<crate::VariantId>,
    ) -> Result<Applied<crate::Entry>, DropError> {
        self.inner.enter_draw(id, buyer, variant_id).await
    }
    async fn withdraw_entry(
        &self,
        id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<crate::Entry>, DropError> {
        self.inner.withdraw_entry(id, buyer).await
    }
    async fn draw_entry(
        &self,
        id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<crate::Entry>, DropError> {
        self.inner.draw_entry(id, buyer).await
    }
    async fn due_draws(&self, limit: usize) -> Result<Vec<crate::DropInfo>, DropError> {
        self.inner.due_draws(limit).await
    }
    async fn next_draw_at(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, DropError> {
        self.inner.next_draw_at().await
    }
    async fn run_draw(
        &self,
        id: DropId,
        beacon: Option<crate::Beacon>,
    ) -> Result<Option<crate::DrawSummary>, DropError> {
        self.inner.run_draw(id, beacon).await
    }
    async fn draw_status(&self, id: DropId) -> Result<crate::DrawStatus, DropError> {
        self.inner.draw_status(id).await
    }
    async fn release(&self, id: ReservationId, buyer: &BuyerId) -> Result<Reservation, DropError> {
        self.inner.release(id, buyer).await
    }
    async fn get_reservation(&self, id: ReservationId) -> Result<Reservation, DropError> {
        self.inner.get_reservation(id).await
    }
    async fn active_hold(
        &self,
        id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Reservation>, DropError> {
        self.inner.active_hold(id, buyer).await
    }
    async fn top_purchasers(
        &self,
        id: DropId,
        limit: usize,
    ) -> Result<Vec<TopPurchaser>, DropError> {
        self.inner.top_purchasers(id, limit).await
    }
    async fn expire_due(&self, limit: usize) -> Result<usize, DropError> {
        self.hooks.before_expire_due().await;
        self.inner.expire_due(limit).await
    }
    async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.inner.next_expiry().await
    }
    fn subscribe(&self) -> EventStream {
        self.hooks.subscribe(&*self.inner)
    }
    async fn events_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::LogEntry>, DropError> {
        self.inner.events_after(after, limit).await
    }
    async fn drop_history(
        &self,
        drop_id: DropId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<crate::LogEntry>, DropError> {
        self.inner.drop_history(drop_id, after, limit).await
    }
    async fn log_head(&self) -> Result<u64, DropError> {
        self.inner.log_head().await
    }
    async fn claim_cursor(
        &self,
        name: &str,
        holder: Uuid,
        lease: std::time::Duration,
    ) -> Result<Option<crate::CursorClaim>, DropError> {
        self.inner.claim_cursor(name, holder, lease).await
    }
    async fn advance_cursor(
        &self,
        name: &str,
        holder: Uuid,
        position: u64,
    ) -> Result<bool, DropError> {
        self.inner.advance_cursor(name, holder, position).await
    }
    async fn release_cursor(&self, name: &str, holder: Uuid) -> Result<(), DropError> {
        self.inner.release_cursor(name, holder).await
    }
    async fn remove_cursor(&self, name: &str) -> Result<(), DropError> {
        self.inner.remove_cursor(name).await
    }
    async fn cursors(&self) -> Result<Vec<crate::CursorInfo>, DropError> {
        self.inner.cursors().await
    }
    async fn revoke_session(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<(), DropError> {
        self.inner.revoke_session(id, expires_at).await
    }
    async fn revoked_sessions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevokedSessions, DropError> {
        self.inner.revoked_sessions(since).await
    }
    async fn overview(&self, viewer: Option<&BuyerId>) -> Result<Vec<DropOverview>, DropError> {
        self.inner.overview(viewer).await
    }
    async fn store_time(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.inner.store_time().await
    }
    async fn health(&self) -> Result<(), DropError> {
        self.inner.health().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

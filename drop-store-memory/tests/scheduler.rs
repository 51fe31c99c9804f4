//! The expiry scheduler driving the memory store, under tokio's paused time.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Clock, DropError, DropEvent, DropId, DropPatch, DropState, EventStream,
    ExpiryScheduler, IdempotencyKey, IdempotencyRecord, InventoryStore, ManualClock, Money,
    NewDrop, Purchase, PurchaseId, Purchased, Reservation, ReservationId, ReservationStatus,
    ReserveRequest, Reserved, RevokedSessions, TopPurchaser, Username, async_trait,
};
use drop_core::{Buyer, BuyerId};
use drop_store_memory::MemoryStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Wall time that follows tokio's (paused) clock, so auto-advance moves
/// the store's time and the scheduler's sleeps together.
#[derive(Debug)]
struct TokioClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
    }
}

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

async fn drop_with_hold(store: &MemoryStore, hold: Duration) -> DropId {
    store
        .create_drop(NewDrop::new("Drop", Money::ZERO, 10).hold(hold))
        .await
        .unwrap()
        .drop
        .id
}

#[tokio::test(start_paused = true)]
async fn expires_exactly_when_due_and_wakes_for_sooner_holds() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock {
        base: ManualClock::fixed().now(),
        start: Instant::now(),
    });
    let store = MemoryStore::with_clock(clock.clone());
    let cancel = CancellationToken::new();
    let task = ExpiryScheduler::new(Arc::new(store.clone()))
        .clock(clock.clone())
        .max_sleep(Duration::from_secs(3600))
        .spawn(cancel.clone());

    let long = drop_with_hold(&store, Duration::from_secs(60)).await;
    let short = drop_with_hold(&store, Duration::from_secs(1)).await;
    let a = store
        .reserve(long, &user("alice"))
        .await
        .unwrap()
        .reservation;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // The scheduler now sleeps towards alice's expiry, 55 s away. A hold due
    // in 1 s must wake it early.
    let mut events = store.subscribe();
    let b = store
        .reserve(short, &user("bob"))
        .await
        .unwrap()
        .reservation;
    let expired_at = loop {
        match tokio::time::timeout(Duration::from_secs(120), futures_next(&mut events)).await {
            Ok(DropEvent::HoldExpired { reservation_id, .. }) => {
                assert_eq!(reservation_id, b.id, "bob's hold is due first");
                break clock.now();
            }
            Ok(_) => continue,
            Err(_) => panic!("bob's hold never expired"),
        }
    };
    let lateness = (expired_at - b.expires_at)
        .to_std()
        .expect("not before its time");
    assert!(lateness < Duration::from_millis(50), "late by {lateness:?}");
    assert_eq!(
        store.get_reservation(a.id).await.unwrap().status,
        ReservationStatus::Active
    );

    // Alice's hold expires at its own time, not before.
    tokio::time::sleep_until(
        Instant::now() + (a.expires_at - clock.now()).to_std().unwrap()
            - Duration::from_millis(100),
    )
    .await;
    assert_eq!(
        store.get_drop(long).await.unwrap().stock.reserved,
        1,
        "not expired before its time"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.get_drop(long).await.unwrap().stock.reserved, 0);
    assert_eq!(
        store.get_reservation(a.id).await.unwrap().status,
        ReservationStatus::Expired
    );

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(1), task.into_future())
        .await
        .expect("scheduler stops on cancel");
}

async fn futures_next(events: &mut EventStream) -> DropEvent {
    use tokio_stream::StreamExt;
    events
        .next()
        .await
        .expect("stream open")
        .expect("no events lost")
}

/// Counts the sweeps a scheduler makes.
#[derive(Debug)]
struct Counting {
    inner: MemoryStore,
    sweeps: AtomicUsize,
}

#[async_trait]
impl InventoryStore for Counting {
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
        u: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError> {
        self.inner.reserve_with(id, u, request, key).await
    }
    async fn purchase_with(
        &self,
        id: ReservationId,
        u: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError> {
        self.inner.purchase_with(id, u, key).await
    }
    async fn get_purchase(&self, id: PurchaseId) -> Result<Purchase, DropError> {
        self.inner.get_purchase(id).await
    }
    async fn buyer_purchases(
        &self,
        u: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError> {
        self.inner.buyer_purchases(u, before, limit).await
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
    async fn release(&self, id: ReservationId, u: &BuyerId) -> Result<Reservation, DropError> {
        self.inner.release(id, u).await
    }
    async fn get_reservation(&self, id: ReservationId) -> Result<Reservation, DropError> {
        self.inner.get_reservation(id).await
    }
    async fn active_hold(&self, id: DropId, u: &BuyerId) -> Result<Option<Reservation>, DropError> {
        self.inner.active_hold(id, u).await
    }
    async fn top_purchasers(&self, id: DropId, n: usize) -> Result<Vec<TopPurchaser>, DropError> {
        self.inner.top_purchasers(id, n).await
    }
    async fn expire_due(&self, limit: usize) -> Result<usize, DropError> {
        self.sweeps.fetch_add(1, Ordering::SeqCst);
        self.inner.expire_due(limit).await
    }
    async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.inner.next_expiry().await
    }
    fn subscribe(&self) -> EventStream {
        self.inner.subscribe()
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
}

/// With a manual clock stepped in lockstep with tokio's paused time: an
/// idle hour costs a single sweep (no polling), and a burst of due holds is
/// expired in batches.
#[tokio::test(start_paused = true)]
async fn sleeps_instead_of_polling_and_sweeps_in_batches() {
    let clock = ManualClock::fixed();
    let store = Arc::new(Counting {
        inner: MemoryStore::with_clock(Arc::new(clock.clone())),
        sweeps: AtomicUsize::new(0),
    });
    let cancel = CancellationToken::new();
    let task = ExpiryScheduler::new(store.clone())
        .clock(Arc::new(clock.clone()))
        .batch_size(10)
        .max_sleep(Duration::from_secs(7200))
        .spawn(cancel.clone());
    let step = |d: Duration| {
        clock.advance(d);
        tokio::time::advance(d)
    };
    step(Duration::from_secs(3600)).await;
    tokio::task::yield_now().await;
    assert_eq!(
        store.sweeps.load(Ordering::SeqCst),
        1,
        "an idle store is not polled"
    );

    let id = store
        .create_drop(NewDrop::new("Burst", Money::ZERO, 100).hold(Duration::from_secs(60)))
        .await
        .unwrap()
        .drop
        .id;
    for i in 0..35 {
        store.reserve(id, &user(&format!("user{i}"))).await.unwrap();
    }
    step(Duration::from_secs(61)).await;
    // Let the scheduler run (paused time auto-advances while all wait).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.get_drop(id).await.unwrap().stock.reserved, 0);
    // 35 holds in batches of 10: four sweeps (10, 10, 10, 5), plus the first.
    assert_eq!(store.sweeps.load(Ordering::SeqCst), 5);
    cancel.cancel();
    task.await;
}

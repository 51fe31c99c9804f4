//! The expiry scheduler driving the memory store, under tokio's paused time.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::testkit::{StoreHooks, Wrapped};
use drop_core::{
    Buyer, Clock, DropEvent, DropId, EventStream, ExpiryScheduler, InventoryStore, ManualClock,
    Money, NewDrop, ReservationStatus, Username, async_trait,
};
use drop_store_memory::MemoryStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

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
#[derive(Debug, Default)]
struct Counting {
    sweeps: AtomicUsize,
}

#[async_trait]
impl StoreHooks for Counting {
    async fn before_expire_due(&self) {
        self.sweeps.fetch_add(1, Ordering::SeqCst);
    }
}

/// With a manual clock stepped in lockstep with tokio's paused time: an
/// idle hour costs a single sweep (no polling), and a burst of due holds is
/// expired in batches.
#[tokio::test(start_paused = true)]
async fn sleeps_instead_of_polling_and_sweeps_in_batches() {
    let clock = ManualClock::fixed();
    let store = Arc::new(Wrapped::new(
        Arc::new(MemoryStore::with_clock(Arc::new(clock.clone()))),
        Counting::default(),
    ));
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
        store.hooks.sweeps.load(Ordering::SeqCst),
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
    assert_eq!(store.hooks.sweeps.load(Ordering::SeqCst), 5);
    cancel.cancel();
    task.await;
}

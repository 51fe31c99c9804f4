//! Ended holds are pruned after the retention period, on a manual clock:
//! reserve/release churn keeps memory bounded, purchases stay.

use std::sync::Arc;
use std::time::Duration;

use drop_core::{
    Buyer, Clock, DropError, DropId, IDEMPOTENCY_RETENTION, IdempotencyKey, InventoryStore,
    ManualClock, Money, NewDrop, ReserveRequest, Username,
};
use drop_store_memory::{DEFAULT_RETENTION, MemoryStore};

const HOLD: Duration = Duration::from_secs(60);

fn user(i: usize) -> Buyer {
    Buyer::claimed(Username::parse(&format!("user{i}")).unwrap())
}

async fn store_and_drop(retention: Option<Duration>) -> (ManualClock, MemoryStore, DropId) {
    let clock = ManualClock::fixed();
    let mut builder = MemoryStore::builder().clock(Arc::new(clock.clone()));
    if let Some(r) = retention {
        builder = builder.retention(r);
    }
    let store = builder.build();
    let drop = store
        .create_drop(NewDrop::new("Churn", Money::ZERO, 5).hold(HOLD))
        .await
        .unwrap();
    (clock, store, drop.drop.id)
}

fn not_found(r: Result<impl std::fmt::Debug, DropError>) -> bool {
    matches!(r, Err(DropError::ReservationNotFound { .. }))
}

/// One reserve and release a second for 2,000 s with the default 10-minute
/// retention: only the holds of the last hold + retention (660 s) are
/// kept, not all 2,000.
#[tokio::test]
async fn reserve_release_churn_stays_bounded() {
    let (clock, store, drop) = store_and_drop(None).await;
    assert_eq!(DEFAULT_RETENTION, Duration::from_secs(600));
    let mut ids = Vec::new();
    for i in 0..2_000 {
        let u = user(i % 7);
        let hold = store.reserve(drop, &u).await.unwrap().reservation;
        store.release(hold.id, &u.id).await.unwrap();
        ids.push(hold.id);
        clock.advance(Duration::from_secs(1));
    }
    let kept = store.kept_holds();
    // Released at t, expiresAt t + 60, pruned from t + 660.
    assert!(kept <= 661, "{kept} holds kept after 2,000 s of churn");
    assert!(kept >= 600, "only {kept} kept: pruned before the retention");
    store.verify_invariants().unwrap();
    // The oldest answer as if they never existed; the recent are still there.
    assert!(not_found(store.get_reservation(ids[0]).await));
    assert!(not_found(store.release(ids[0], &user(0).id).await));
    let recent = store.get_reservation(ids[1_999]).await.unwrap();
    assert_eq!(recent.status.as_str(), "released");
}

/// Expired holds are pruned too, also when the sweeper is what ends them;
/// purchased holds and their purchases stay for good.
#[tokio::test]
async fn expired_holds_go_purchased_holds_stay() {
    let retention = Duration::from_secs(30);
    let (clock, store, drop) = store_and_drop(Some(retention)).await;
    let bought = store.reserve(drop, &user(0)).await.unwrap().reservation;
    store.purchase(bought.id, &user(0).id).await.unwrap();
    let lapsed = store.reserve(drop, &user(1)).await.unwrap().reservation;
    let released = store.reserve(drop, &user(2)).await.unwrap().reservation;
    store.release(released.id, &user(2).id).await.unwrap();

    // Just before expiresAt + retention: everything is still visible.
    clock.advance(HOLD + retention - Duration::from_micros(1));
    assert_eq!(store.expire_due(100).await.unwrap(), 1);
    assert_eq!(store.kept_holds(), 3);
    assert_eq!(
        store
            .get_reservation(lapsed.id)
            .await
            .unwrap()
            .status
            .as_str(),
        "expired"
    );
    assert_eq!(
        store
            .get_reservation(released.id)
            .await
            .unwrap()
            .status
            .as_str(),
        "released"
    );

    // At expiresAt + retention both read as unknown at once, before any
    // pruning ran (reads do not prune), and the next write on the drop
    // frees them.
    clock.advance(Duration::from_micros(1));
    assert!(not_found(store.get_reservation(lapsed.id).await));
    assert!(not_found(store.get_reservation(released.id).await));
    assert_eq!(store.kept_holds(), 3);
    assert!(not_found(store.purchase(lapsed.id, &user(1).id).await));
    assert_eq!(store.kept_holds(), 1, "only the bought hold");
    store.reserve(drop, &user(3)).await.unwrap();
    assert_eq!(store.kept_holds(), 2, "the bought hold and the new one");
    store.verify_invariants().unwrap();

    // A purchase is a record: still there long after.
    clock.advance(Duration::from_secs(365 * 24 * 3600));
    store.expire_due(100).await.unwrap();
    let kept = store.get_reservation(bought.id).await.unwrap();
    assert_eq!(kept.status.as_str(), "purchased");
    assert_eq!(store.top_purchasers(drop, 3).await.unwrap().len(), 1);
    assert_eq!(store.kept_holds(), 1);
    store.verify_invariants().unwrap();
}

/// A sweep that ends a large backlog frees it once its retention is over,
/// spread over the operations that follow rather than left behind.
#[tokio::test]
async fn a_swept_backlog_is_freed() {
    let retention = Duration::from_secs(10);
    let clock = ManualClock::fixed();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .retention(retention)
        .build();
    let drop = store
        .create_drop(NewDrop::new("Backlog", Money::ZERO, 1_000).hold(HOLD))
        .await
        .unwrap()
        .drop
        .id;
    for i in 0..1_000 {
        store.reserve(drop, &user(i)).await.unwrap();
    }
    clock.advance(HOLD);
    assert_eq!(store.expire_due(10_000).await.unwrap(), 1_000);
    assert_eq!(store.kept_holds(), 1_000);
    clock.advance(retention);
    // Sweeps with nothing due still prune.
    while store.kept_holds() > 0 {
        let before = store.kept_holds();
        store.expire_due(100).await.unwrap();
        assert!(store.kept_holds() < before, "pruning stalled at {before}");
    }
    store.verify_invariants().unwrap();
}

/// A keyed reserve still replays after its hold has been pruned from
/// every other read; the record is kept 24 hours, then pruned, and the
/// hold with it. After that the key is free: a call with it acts afresh.
#[tokio::test]
async fn idempotency_records_outlive_pruned_holds_then_go() {
    let retention = Duration::from_secs(30);
    let (clock, store, drop) = store_and_drop(Some(retention)).await;
    let alice = user(0);
    let key = IdempotencyKey::new(alice.id.as_str(), "reserve-1", [1; 32]).unwrap();
    let first = store
        .reserve_with(drop, &alice, ReserveRequest::new(), Some(&key))
        .await
        .unwrap();
    assert!(first.created && !first.replayed);
    let hold = first.reservation;
    store.release(hold.id, &alice.id).await.unwrap();

    clock.advance(HOLD + retention);
    // Any write on the drop prunes what is past its retention.
    store.reserve(drop, &user(1)).await.unwrap();
    assert!(not_found(store.get_reservation(hold.id).await));
    assert!(not_found(store.release(hold.id, &alice.id).await));
    let again = store
        .reserve_with(drop, &alice, ReserveRequest::new(), Some(&key))
        .await
        .unwrap();
    assert!(again.replayed && again.created);
    assert_eq!(again.reservation.id, hold.id);
    assert_eq!(again.reservation.status.as_str(), "released");
    store.verify_invariants().unwrap();

    // Kept for at least the whole retention of records...
    let recorded = store
        .idempotency_record(alice.id.as_str(), "reserve-1")
        .await
        .unwrap()
        .expect("recorded");
    let day = chrono::TimeDelta::from_std(IDEMPOTENCY_RETENTION).unwrap();
    let remaining = recorded.recorded_at + day - clock.now();
    clock.advance(remaining.to_std().unwrap() - Duration::from_micros(1));
    store.expire_due(100).await.unwrap();
    assert_eq!(store.kept_idempotency_records(), 1);
    let replay = store
        .reserve_with(drop, &alice, ReserveRequest::new(), Some(&key))
        .await
        .unwrap();
    assert_eq!(replay.reservation.id, hold.id);

    // ...then pruned by a sweep, and the hold it kept goes with it.
    clock.advance(Duration::from_micros(1));
    store.expire_due(100).await.unwrap();
    assert_eq!(store.kept_idempotency_records(), 0);
    assert_eq!(
        store
            .idempotency_record(alice.id.as_str(), "reserve-1")
            .await
            .unwrap(),
        None
    );
    // Every other hold ended long ago; the released one was kept only
    // for the record.
    assert_eq!(store.kept_holds(), 0);
    store.verify_invariants().unwrap();
    let fresh = store
        .reserve_with(drop, &alice, ReserveRequest::new(), Some(&key))
        .await
        .unwrap();
    assert!(fresh.created && !fresh.replayed);
    assert_ne!(fresh.reservation.id, hold.id);
}

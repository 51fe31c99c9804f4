//! Many callers, many instances, one database.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use common::{active_holds_in_db, assert_invariants, drop_of, store_on, user};
use drop_core::{DropEvent, DropId, InventoryStore, ReservationId, ReservationStatus};
use drop_store_postgres::PgStore;
use futures::StreamExt;
use futures::future::join_all;
use sqlx::PgPool;

/// `n` reserves by distinct users, all at once; returns (granted, refused).
async fn storm(store: &PgStore, drop_id: DropId, n: usize) -> (HashSet<ReservationId>, usize) {
    let results = join_all((0..n).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.reserve(drop_id, &user(&format!("buyer{i}"))).await })
    }))
    .await;
    let mut granted = HashSet::new();
    let mut refused = 0;
    for r in results {
        match r.unwrap() {
            Ok(r) => {
                assert!(r.created);
                assert!(granted.insert(r.reservation.id));
            }
            Err(e) if e.code() == "OUT_OF_STOCK" => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    (granted, refused)
}

/// What one subscriber heard, counted while the test runs.
#[derive(Debug, Default)]
struct Heard {
    created: HashSet<ReservationId>,
    created_events: usize,
    purchased: HashSet<ReservationId>,
    purchase_events: usize,
    expired: HashSet<ReservationId>,
    expired_events: usize,
    lost: usize,
}

/// Counts a store's events from now until [`Tally::finish`].
struct Tally(
    tokio::task::JoinHandle<Heard>,
    tokio::sync::oneshot::Sender<()>,
);

impl Tally {
    fn start(store: &PgStore) -> Self {
        let mut events = store.subscribe();
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        Self(
            tokio::spawn(async move {
                let mut heard = Heard::default();
                let mut stopping = false;
                loop {
                    let next = if stopping {
                        // After the stop: whatever is still queued.
                        match tokio::time::timeout(Duration::from_millis(200), events.next()).await
                        {
                            Ok(e) => e,
                            Err(_) => return heard,
                        }
                    } else {
                        tokio::select! {
                            _ = &mut stopped => { stopping = true; continue }
                            e = events.next() => e,
                        }
                    };
                    match next {
                        Some(Ok(DropEvent::HoldCreated { reservation_id, .. })) => {
                            heard.created_events += 1;
                            heard.created.insert(reservation_id);
                        }
                        Some(Ok(DropEvent::PurchaseCompleted { reservation_id, .. })) => {
                            heard.purchase_events += 1;
                            heard.purchased.insert(reservation_id);
                        }
                        Some(Ok(DropEvent::HoldExpired { reservation_id, .. })) => {
                            heard.expired_events += 1;
                            heard.expired.insert(reservation_id);
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) => heard.lost += 1,
                        None => return heard,
                    }
                }
            }),
            stop,
        )
    }

    async fn finish(self) -> Heard {
        let _ = self.1.send(());
        let heard = self.0.await.unwrap();
        assert_eq!(heard.lost, 0, "the subscriber missed events");
        heard
    }
}

#[sqlx::test(migrations = false)]
async fn two_thousand_reserves_through_32_connections(pool: PgPool) {
    let store = store_on(&pool, 32, PgStore::builder().group_commit(false)).await;
    let drop_id = drop_of(&store, 100, Duration::from_secs(600)).await;
    let tally = Tally::start(&store);
    let (granted, refused) = storm(&store, drop_id, 2_000).await;
    assert_eq!((granted.len(), refused), (100, 1_900));
    // Invariant 5: one event per hold granted, none for the refusals.
    let heard = tally.finish().await;
    assert_eq!(heard.created_events, 100);
    assert_eq!(heard.created, granted);
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 100);
    let stock = store.get_drop(drop_id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (100, 0, 0));
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn five_thousand_reserves_on_a_thousand_units_batched(pool: PgPool) {
    let store = store_on(&pool, 32, PgStore::builder()).await;
    assert!(store.group_commit(), "group commit is on by default");
    let drop_id = drop_of(&store, 1_000, Duration::from_secs(600)).await;
    let v0 = store.get_drop(drop_id).await.unwrap().stock.version;
    let tally = Tally::start(&store);
    let (granted, refused) = storm(&store, drop_id, 5_000).await;
    assert_eq!((granted.len(), refused), (1_000, 4_000));
    let heard = tally.finish().await;
    assert_eq!(heard.created_events, 1_000);
    assert_eq!(heard.created, granted);
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 1_000);
    let stock = store.get_drop(drop_id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.available()), (1_000, 0));
    // Each committed batch moves the version once: far fewer than 1,000
    // commits carried the 1,000 holds.
    assert!(
        stock.version - v0 < 1_000,
        "expected batches, got {} commits",
        stock.version - v0
    );
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn arrival_order_is_respected_within_an_instance(pool: PgPool) {
    let store = store_on(&pool, 8, PgStore::builder().batch_cap(4)).await;
    let drop_id = drop_of(&store, 10, Duration::from_secs(600)).await;
    // join_all polls the futures in order, and a reserve queues on its
    // first poll: caller i arrives before caller i + 1. With a cap of 4 the
    // 50 callers go as 13 batches in arrival order.
    let results = join_all((0..50).map(|i| {
        let store = store.clone();
        async move { store.reserve(drop_id, &user(&format!("fan{i:02}"))).await }
    }))
    .await;
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(_) => assert!(i < 10, "caller {i} was granted after earlier callers"),
            Err(e) => {
                assert_eq!(e.code(), "OUT_OF_STOCK");
                assert!(
                    i >= 10,
                    "caller {i} was refused while later callers got units"
                );
            }
        }
    }
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn the_same_user_many_times_in_one_batch_gets_one_hold(pool: PgPool) {
    let store = store_on(&pool, 8, PgStore::builder()).await;
    let drop_id = drop_of(&store, 5, Duration::from_secs(600)).await;
    // All queue on their first poll, before any batch has started, so
    // alice's calls share batches with each other.
    let names: Vec<String> = std::iter::once("opener".to_owned())
        .chain((0..30).map(|i| {
            if i % 3 == 0 {
                format!("other{i}")
            } else {
                "alice".to_owned()
            }
        }))
        .collect();
    let results = join_all(names.iter().map(|n| {
        let store = store.clone();
        let u = user(n);
        async move { store.reserve(drop_id, &u).await }
    }))
    .await;
    let alice: Vec<_> = names
        .iter()
        .zip(&results)
        .filter(|(n, _)| n.as_str() == "alice")
        .map(|(_, r)| r.as_ref().expect("alice gets her hold"))
        .collect();
    let ids: HashSet<_> = alice.iter().map(|r| r.reservation.id).collect();
    assert_eq!(ids.len(), 1, "alice got several holds");
    assert_eq!(alice.iter().filter(|r| r.created).count(), 1);
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_reservations WHERE buyer_id = 'alice' AND status = 'active'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(active, 1);
    // A user who already holds gets the same hold back, unchanged.
    let again = store.reserve(drop_id, &user("alice")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation, alice[0].reservation);
    assert_invariants(&store).await;
    store.close().await;
}

/// Two instances with separate pools purchase and sweep the same holds at
/// the expiry boundary: every hold ends in exactly one state.
async fn two_instances_race(pool: &PgPool, batched: bool) {
    // Not listening to each other: each instance's subscriber hears exactly
    // the changes that instance committed.
    let a = store_on(
        pool,
        8,
        PgStore::builder().group_commit(batched).listen(false),
    )
    .await;
    let b = store_on(
        pool,
        8,
        PgStore::builder().group_commit(batched).listen(false),
    )
    .await;
    let n = 120;
    let hold = Duration::from_millis(1_500);
    let drop_id = drop_of(&a, n, hold).await;
    let mut holds = Vec::new();
    for i in 0..n {
        let u = user(&format!("racer{i}"));
        let r = a.reserve(drop_id, &u).await.unwrap().reservation;
        holds.push((r, u));
    }
    // Start purchasing shortly before the earliest expiry.
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap();
    let wait = (holds[0].0.expires_at - now).to_std().unwrap_or_default();
    tokio::time::sleep(wait.saturating_sub(Duration::from_millis(40))).await;
    let (tally_a, tally_b) = (Tally::start(&a), Tally::start(&b));
    let sweepers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            tokio::spawn(async move {
                let mut swept = 0;
                for _ in 0..60 {
                    swept += s.expire_due(10).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                swept
            })
        })
        .collect();
    // Every hold is bought through both instances at once.
    let buys = join_all(holds.iter().flat_map(|(r, u)| {
        [a.clone(), b.clone()].into_iter().map(move |s| {
            let (id, u) = (r.id, u.clone());
            tokio::spawn(async move { (id, s.purchase(id, &u.id).await) })
        })
    }))
    .await;
    let mut swept = 0;
    for s in sweepers {
        swept += s.await.unwrap();
    }
    tokio::time::sleep(hold).await;
    swept += a.expire_due(10_000).await.unwrap() + b.expire_due(10_000).await.unwrap();

    let mut wins: HashMap<ReservationId, usize> = HashMap::new();
    for r in buys {
        let (id, res) = r.unwrap();
        match res {
            // The owner's second call, on the other instance, is answered
            // with the purchase the first made (not a second one).
            Ok(p) => {
                assert_eq!(p.purchase.reservation_id, id);
                if p.created {
                    *wins.entry(id).or_default() += 1;
                }
            }
            Err(e) => assert!(
                matches!(e.code(), "RESERVATION_EXPIRED" | "ALREADY_PURCHASED"),
                "{e}"
            ),
        }
    }
    assert!(wins.values().all(|&w| w == 1), "a hold was purchased twice");
    for (r, _) in &holds {
        let status = a.get_reservation(r.id).await.unwrap().status;
        let want = if wins.contains_key(&r.id) {
            ReservationStatus::Purchased
        } else {
            ReservationStatus::Expired
        };
        assert_eq!(status, want, "hold {}", r.id);
    }
    assert_eq!(
        wins.len() + swept,
        n as usize,
        "each hold ends exactly once"
    );
    let purchases: i64 = sqlx::query_scalar("SELECT count(*) FROM dropkit_purchases")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(purchases as usize, wins.len());
    // Invariant 5, across both instances: each purchase and each expiry
    // announced once, by the instance that committed it.
    let (on_a, on_b) = (tally_a.finish().await, tally_b.finish().await);
    assert_eq!(on_a.purchase_events + on_b.purchase_events, wins.len());
    assert_eq!(on_a.expired_events + on_b.expired_events, swept);
    let bought: HashSet<ReservationId> = wins.keys().copied().collect();
    assert_eq!(&on_a.purchased | &on_b.purchased, bought);
    assert!(on_a.expired.is_disjoint(&on_b.expired));
    assert!((&on_a.expired | &on_b.expired).is_disjoint(&bought));
    let stock = b.get_drop(drop_id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold as usize), (0, wins.len()));
    assert_invariants(&a).await;
    a.close().await;
    b.close().await;
}

#[sqlx::test(migrations = false)]
async fn two_instances_sweep_and_purchase_the_same_holds(pool: PgPool) {
    two_instances_race(&pool, false).await;
}

#[sqlx::test(migrations = false)]
async fn two_batched_instances_sweep_and_purchase_the_same_holds(pool: PgPool) {
    two_instances_race(&pool, true).await;
}

#[sqlx::test(migrations = false)]
async fn an_event_through_instance_a_reaches_a_subscriber_of_instance_b(pool: PgPool) {
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    assert_ne!(a.instance_id(), b.instance_id());
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let drop_id = drop_of(&a, 3, Duration::from_secs(60)).await;
    let hold = a
        .reserve(drop_id, &user("alice"))
        .await
        .unwrap()
        .reservation;
    let want = |e: &DropEvent| matches!(e, DropEvent::HoldCreated { reservation_id, .. } if *reservation_id == hold.id);
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match on_b.next().await {
                Some(Ok(e)) if want(&e) => return e,
                Some(_) => {}
                None => panic!("B's stream ended"),
            }
        }
    })
    .await
    .expect("B hears A's reservation");
    assert!(want(&heard));
    // A hears its own events once: not again through the database.
    let mut created = 0;
    let quiet = tokio::time::timeout(Duration::from_millis(500), async {
        while let Some(Ok(e)) = on_a.next().await {
            if want(&e) {
                created += 1;
            }
        }
    })
    .await;
    assert!(quiet.is_err());
    assert_eq!(created, 1);
    a.close().await;
    b.close().await;
}

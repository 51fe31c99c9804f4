//! The store's runtime under faults: callers that give up, a database that
//! goes away and comes back, a listener whose connection dies silently,
//! and shutdown. Faults come from a TCP proxy inside the test and from
//! locks taken on another connection; the PostgreSQL server itself is
//! never stopped. Bounds are generous multiples of the configured
//! timeouts.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proxy::Mode;
use common::{
    assert_invariants, block_drop, drop_of, proxy_for, store_on, store_via, user, wait_event,
};
use drop_core::{DropEvent, EventsLost, ExpiryScheduler, InventoryStore, Money, NewDrop, Origin};
use drop_store_postgres::PgStore;
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Waits until a backend of this database waits on a lock inside
/// `function`: the store's statement has been sent and is in the database.
async fn wait_for_lock_waiter(pool: &PgPool, function: &str) {
    let pattern = format!("%{function}%");
    for _ in 0..1_000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND wait_event_type = 'Lock' AND query LIKE $1",
        )
        .bind(&pattern)
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no backend waited inside {function}");
}

/// A caller cancelled after its statement reached the database (the drop
/// row is locked from outside, so the statement waits there) does not
/// cancel the write: it commits, its events are published, and the expiry
/// scheduler, which learns of holds from those events, expires it on time.
async fn cancelled_caller_case(pool: PgPool, group_commit: bool) {
    let store = store_on(&pool, 4, PgStore::builder().group_commit(group_commit)).await;
    let hold = Duration::from_secs(1);
    let drop_id = drop_of(&store, 5, hold).await;
    let stop = CancellationToken::new();
    // Sleeps "forever" unless an event tells it of a hold.
    let scheduler = ExpiryScheduler::new(Arc::new(store.clone()))
        .max_sleep(Duration::from_secs(600))
        .spawn(stop.clone());
    let mut events = store.subscribe();
    let blocker = block_drop(&pool, drop_id).await;
    let caller = {
        let store = store.clone();
        tokio::spawn(async move { store.reserve(drop_id, &user("gone")).await })
    };
    wait_for_lock_waiter(&pool, "dropkit_reserve").await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    blocker.rollback().await.unwrap();

    let created = wait_event(&mut events, Duration::from_secs(10), |e| match e {
        Ok(DropEvent::HoldCreated {
            drop_id: d,
            reservation_id,
            ..
        }) if *d == drop_id => Some(*reservation_id),
        _ => None,
    })
    .await
    .expect("the committed hold is announced although its caller is gone");
    assert_eq!(store.get_drop(drop_id).await.unwrap().stock.reserved, 1);
    // The scheduler heard of it and expires it when it runs out.
    let expired = wait_event(&mut events, hold + Duration::from_secs(20), |e| match e {
        Ok(DropEvent::HoldExpired { reservation_id, .. }) if *reservation_id == created => Some(()),
        _ => None,
    })
    .await;
    assert!(expired.is_some(), "the scheduler never expired the hold");
    assert_eq!(store.get_drop(drop_id).await.unwrap().stock.reserved, 0);
    assert_invariants(&store).await;
    stop.cancel();
    let _ = scheduler.await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn a_cancelled_batched_caller_still_commits_and_announces(pool: PgPool) {
    cancelled_caller_case(pool, true).await;
}

#[sqlx::test(migrations = false)]
async fn a_cancelled_unbatched_caller_still_commits_and_announces(pool: PgPool) {
    cancelled_caller_case(pool, false).await;
}

/// Events a store has not yet sent to other instances go out on close,
/// even when its notifier would have waited much longer.
#[sqlx::test(migrations = false)]
async fn close_sends_the_pending_notifications(pool: PgPool) {
    let a = store_on(
        &pool,
        4,
        PgStore::builder().notify_interval(Duration::from_secs(600)),
    )
    .await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let mut on_b = b.subscribe();
    let drop_id = drop_of(&a, 5, Duration::from_secs(60)).await;
    a.close().await;
    let heard = wait_event(&mut on_b, Duration::from_secs(10), |e| match e {
        Ok(DropEvent::DropCreated { drop }) if drop.drop.id == drop_id => Some(()),
        _ => None,
    })
    .await;
    assert!(
        heard.is_some(),
        "the other instance never heard of the drop"
    );
    // Closed: writes are refused.
    let refused = a.create_drop(NewDrop::new("Late", Money::from_minor(1).unwrap(), 1));
    assert_eq!(refused.await.unwrap_err().code(), "UNAVAILABLE");
    b.close().await;
}

/// While the database is unreachable, calls and the health check answer
/// `UNAVAILABLE` within about the acquire timeout (no retries on top), and
/// service resumes soon after it is reachable again.
async fn outage_case(pool: PgPool, outage: Mode) {
    let proxy = proxy_for(&pool).await;
    let acquire = Duration::from_secs(1);
    let store = store_via(
        &pool,
        &proxy,
        4,
        PgStore::builder()
            .acquire_timeout(acquire)
            .listener_timeout(Duration::from_secs(2)),
    )
    .await;
    let drop_id = drop_of(&store, 100, Duration::from_secs(60)).await;
    store.reserve(drop_id, &user("before")).await.unwrap();

    proxy.set(outage);
    // Once the old connections are found dead, every call is bounded by
    // one acquire timeout; before the fix, pool timeouts were retried.
    let bound = acquire * 5 / 2;
    for i in 0..3 {
        let started = Instant::now();
        let err = store
            .reserve(drop_id, &user(&format!("during{i}")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNAVAILABLE", "{err}");
        assert!(
            started.elapsed() < bound,
            "reserve took {:?} to fail",
            started.elapsed()
        );
        let started = Instant::now();
        assert!(store.health().await.is_err());
        assert!(
            started.elapsed() < bound,
            "health took {:?}",
            started.elapsed()
        );
    }

    proxy.set(Mode::Forward);
    let back = Instant::now();
    loop {
        if store.health().await.is_ok() && store.reserve(drop_id, &user("after")).await.is_ok() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "no service 15 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn a_refusing_database_is_reported_fast_and_service_resumes(pool: PgPool) {
    outage_case(pool, Mode::Cut).await;
}

#[sqlx::test(migrations = false)]
async fn a_silent_database_is_reported_fast_and_service_resumes(pool: PgPool) {
    outage_case(pool, Mode::Stall).await;
}

/// A listener whose connection goes silent without closing (a half-open
/// TCP connection) notices within its timeout, tells subscribers to
/// resync, reconnects, and hears the other instance again.
#[sqlx::test(migrations = false)]
async fn a_half_open_listener_is_noticed_and_replaced(pool: PgPool) {
    let proxy = proxy_for(&pool).await;
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let timeout = Duration::from_secs(2);
    let b = store_via(
        &pool,
        &proxy,
        4,
        PgStore::builder().listener_timeout(timeout),
    )
    .await;
    assert!(b.health().await.is_ok());
    let mut on_b = b.subscribe();
    proxy.set(Mode::Stall);
    let started = Instant::now();
    let lost = wait_event(&mut on_b, timeout * 5, |e| e.as_ref().err().copied()).await;
    assert!(
        lost.is_some(),
        "no resync notice {:?} after the connection went silent",
        started.elapsed()
    );
    // Not ready while it hears nothing.
    assert!(b.health().await.is_err());
    proxy.set(Mode::Forward);
    // Reconnected: B hears A's changes again and is ready.
    let heard = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let drop_id = drop_of(&a, 1, Duration::from_secs(60)).await;
            let got = wait_event(&mut on_b, Duration::from_millis(500), |e| match e {
                Ok(DropEvent::DropCreated { drop }) if drop.drop.id == drop_id => Some(()),
                _ => None,
            })
            .await;
            if got.is_some() {
                return;
            }
        }
    })
    .await;
    assert!(
        heard.is_ok(),
        "B never heard A after the connection came back"
    );
    assert!(b.health().await.is_ok());
    a.close().await;
    b.close().await;
}

/// With several instances, `subscribe` carries every instance's changes,
/// each marked with where it committed: an expiry counted only where it is
/// local is counted once across instances.
#[sqlx::test(migrations = false)]
async fn other_instances_events_are_marked_remote(pool: PgPool) {
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let drop_id = drop_of(&a, 5, Duration::from_millis(200)).await;
    let hold = a
        .reserve(drop_id, &user("brief"))
        .await
        .unwrap()
        .reservation;
    let (mut at_a, mut at_b) = (a.subscribe().with_origin(), b.subscribe().with_origin());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.expire_due(100).await.unwrap(), 1);
    let expired = |e: &Result<(Origin, DropEvent), EventsLost>| match e {
        Ok((origin, DropEvent::HoldExpired { reservation_id, .. }))
            if *reservation_id == hold.id =>
        {
            Some(*origin)
        }
        _ => None,
    };
    assert_eq!(
        wait_event(&mut at_a, Duration::from_secs(10), expired).await,
        Some(Origin::Local)
    );
    assert_eq!(
        wait_event(&mut at_b, Duration::from_secs(10), expired).await,
        Some(Origin::Remote)
    );
    a.close().await;
    b.close().await;
}

/// A write that never got a connection sent nothing: it fails
/// `UNAVAILABLE` and subscribers are not told to resync.
#[sqlx::test(migrations = false)]
async fn a_write_that_never_reached_the_database_announces_nothing(pool: PgPool) {
    let proxy = proxy_for(&pool).await;
    let store = store_via(
        &pool,
        &proxy,
        2,
        PgStore::builder()
            .listen(false)
            .acquire_timeout(Duration::from_millis(500)),
    )
    .await;
    let drop_id = drop_of(&store, 5, Duration::from_secs(60)).await;
    let mut events = store.subscribe();
    proxy.set(Mode::Cut);
    for i in 0..3 {
        let err = store
            .reserve(drop_id, &user(&format!("nobody{i}")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    }
    let heard = wait_event(&mut events, Duration::from_millis(500), |e| Some(e.clone())).await;
    assert!(heard.is_none(), "announced {heard:?}");
    proxy.set(Mode::Forward);
    store.close().await;
}

/// close() waits for a batch in flight: the batch (stopped half-way on a
/// row lock) commits, its caller is answered, and its events reach local
/// subscribers and the other instances before close() returns.
#[sqlx::test(migrations = false)]
async fn close_waits_for_a_batch_in_flight_and_sends_its_events(pool: PgPool) {
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let drop_id = drop_of(&a, 5, Duration::from_secs(60)).await;
    let mut on_a = a.subscribe();
    let mut on_b = b.subscribe();
    let blocker = block_drop(&pool, drop_id).await;
    let caller = {
        let a = a.clone();
        tokio::spawn(async move { a.reserve(drop_id, &user("late")).await })
    };
    wait_for_lock_waiter(&pool, "dropkit_reserve").await;
    let closing = {
        let a = a.clone();
        tokio::spawn(async move { a.close().await })
    };
    // close() refuses new calls at once, but waits for the batch.
    while a.health().await.is_ok() {
        tokio::task::yield_now().await;
    }
    let refused = a.reserve(drop_id, &user("after")).await.unwrap_err();
    assert_eq!(refused.code(), "UNAVAILABLE");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !closing.is_finished(),
        "close() returned with a batch in flight"
    );
    blocker.rollback().await.unwrap();
    closing.await.unwrap();

    let held = caller
        .await
        .unwrap()
        .expect("the batch in flight is answered");
    assert!(held.created);
    // Published before close() returned: already waiting in the stream.
    let mut local = None;
    while let Some(Some(event)) = on_a.next().now_or_never() {
        if let Ok(DropEvent::HoldCreated { reservation_id, .. }) = event {
            local = Some(reservation_id);
        }
    }
    assert_eq!(
        local,
        Some(held.reservation.id),
        "no local event by close()"
    );
    let remote = wait_event(&mut on_b, Duration::from_secs(10), |e| match e {
        Ok(DropEvent::HoldCreated { reservation_id, .. }) => Some(*reservation_id),
        _ => None,
    })
    .await;
    assert_eq!(
        remote,
        Some(held.reservation.id),
        "the other instance never heard"
    );
    assert_eq!(b.get_drop(drop_id).await.unwrap().stock.reserved, 1);
    b.close().await;
}

/// A store built on the application's pool leaves it open on close; a
/// store that opened its own pool closes it.
#[sqlx::test(migrations = false)]
async fn close_leaves_the_applications_pool_open(pool: PgPool) {
    let apps = common::pool_like(&pool, 4).await;
    let store = PgStore::builder().build(apps.clone()).await.unwrap();
    drop_of(&store, 1, Duration::from_secs(60)).await;
    store.close().await;
    assert!(!apps.is_closed());
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&apps)
        .await
        .unwrap();
    assert_eq!(one, 1);

    let own = PgStore::builder()
        .connect_with((*pool.connect_options()).clone())
        .await
        .unwrap();
    own.close().await;
    assert!(own.pool().is_closed());
}

//! Real faults: backends terminated with `pg_terminate_backend` in the
//! middle of the store's transactions and under its event listener.

mod common;

use std::time::Duration;

use common::{
    active_holds_in_db, assert_invariants, block_drop, drop_of, proxy_for, store_on, store_via,
    user,
};
use drop_core::{DEFAULT_HOLD, DropError, DropEvent, DropId, InventoryStore, Money, NewDrop};
use drop_store_postgres::PgStore;
use futures::StreamExt;
use futures::future::join_all;
use sqlx::PgPool;

/// Waits for a backend of this database stuck on a lock inside `function`
/// (other than those in `spared`, already killed), and terminates it.
/// Returns its pid.
async fn kill_waiting(pool: &PgPool, function: &str, spared: &[i32]) -> i32 {
    let pattern = format!("%{function}%");
    for _ in 0..1_000 {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND wait_event_type = 'Lock' AND query LIKE $1 AND NOT (pid = ANY ($2)) LIMIT 1",
        )
        .bind(&pattern)
        .bind(spared)
        .fetch_optional(pool)
        .await
        .unwrap();
        if let Some(pid) = pid {
            let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(pool)
                .await
                .unwrap();
            assert!(killed, "could not terminate backend {pid}");
            return pid;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen: Vec<(i32, Option<String>)> = sqlx::query_as(
        "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database()",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    panic!("no backend waited inside {function}; backends: {seen:?}");
}

#[sqlx::test(migrations = false)]
async fn a_backend_killed_mid_reserve_changes_nothing_and_the_store_goes_on(pool: PgPool) {
    let store = store_on(&pool, 4, PgStore::builder().group_commit(false).retries(0)).await;
    let drop_id = drop_of(&store, 5, DEFAULT_HOLD).await;
    let mut events = store.subscribe();
    let blocker = block_drop(&pool, drop_id).await;
    let call = {
        let store = store.clone();
        tokio::spawn(async move { store.reserve(drop_id, &user("alice")).await })
    };
    kill_waiting(&pool, "dropkit_reserve_logged", &[]).await;
    let err = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call is answered")
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    assert!(err.is_retryable());
    blocker.rollback().await.unwrap();
    // Nothing committed, so nothing is announced (the store cannot tell a
    // kill before the commit from one after it, so it may ask to resync).
    assert_nothing_announced(&mut events).await;
    // All or nothing: nothing.
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 0);
    assert_eq!(store.get_drop(drop_id).await.unwrap().stock.reserved, 0);
    // The pool replaced the dead connection; the store works on.
    let r = store.reserve(drop_id, &user("alice")).await.unwrap();
    assert!(r.created);
    store
        .purchase(r.reservation.id, &user("alice").id)
        .await
        .unwrap();
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn a_killed_reserve_is_retried_once_and_takes_one_unit(pool: PgPool) {
    let store = store_on(&pool, 4, PgStore::builder().group_commit(false)).await;
    let drop_id = drop_of(&store, 5, DEFAULT_HOLD).await;
    let blocker = block_drop(&pool, drop_id).await;
    let call = {
        let store = store.clone();
        tokio::spawn(async move { store.reserve(drop_id, &user("alice")).await })
    };
    kill_waiting(&pool, "dropkit_reserve_logged", &[]).await;
    blocker.rollback().await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call is answered")
        .unwrap()
        .expect("the retry succeeds");
    assert!(r.created);
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 1);
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn a_backend_killed_mid_purchase_changes_nothing(pool: PgPool) {
    let store = store_on(&pool, 4, PgStore::builder().group_commit(false).retries(0)).await;
    let drop_id = drop_of(&store, 5, DEFAULT_HOLD).await;
    let alice = user("alice");
    let hold = store.reserve(drop_id, &alice).await.unwrap().reservation;
    let mut events = store.subscribe();
    let blocker = block_drop(&pool, drop_id).await;
    let call = {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { store.purchase(hold.id, &alice.id).await })
    };
    kill_waiting(&pool, "dropkit_purchase_logged", &[]).await;
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UNAVAILABLE");
    blocker.rollback().await.unwrap();
    assert_nothing_announced(&mut events).await;
    let stock = store.get_drop(drop_id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold), (1, 0));
    store.purchase(hold.id, &alice.id).await.unwrap();
    assert_invariants(&store).await;
    store.close().await;
}

/// Reserves `n` distinct users at once on a batched store: they queue
/// together while the drop's first transaction is on its way.
fn batch_of(
    store: &PgStore,
    drop_id: DropId,
    n: usize,
) -> tokio::task::JoinHandle<Vec<Result<drop_core::Reserved, DropError>>> {
    let store = store.clone();
    tokio::spawn(async move {
        join_all((0..n).map(|i| {
            let store = store.clone();
            async move { store.reserve(drop_id, &user(&format!("crowd{i}"))).await }
        }))
        .await
    })
}

#[sqlx::test(migrations = false)]
async fn a_backend_killed_during_a_batch_fails_the_whole_batch_and_answers_everyone(pool: PgPool) {
    let store = store_on(&pool, 4, PgStore::builder().retries(0)).await;
    let drop_id = drop_of(&store, 100, DEFAULT_HOLD).await;
    let mut events = store.subscribe();
    let blocker = block_drop(&pool, drop_id).await;
    let calls = batch_of(&store, drop_id, 20);
    // The lone first call, then the batch of the 19 that queued behind it.
    // Whether the 20 went as one batch or a lone first call and then the
    // rest, each batch in turn waits on the lock and is killed.
    let mut killed = vec![kill_waiting(&pool, "dropkit_reserve_logged", &[]).await];
    tokio::time::sleep(Duration::from_millis(300)).await;
    while !calls.is_finished() {
        killed.push(kill_waiting(&pool, "dropkit_reserve_logged", &killed).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    blocker.rollback().await.unwrap();
    let results = tokio::time::timeout(Duration::from_secs(15), calls)
        .await
        .expect("every caller is answered")
        .unwrap();
    for r in &results {
        assert_eq!(r.as_ref().unwrap_err().code(), "UNAVAILABLE");
    }
    assert_eq!(
        active_holds_in_db(&pool, drop_id).await,
        0,
        "all or nothing"
    );
    assert_nothing_announced(&mut events).await;
    // Later calls succeed.
    let (granted, _) = {
        let results = batch_of(&store, drop_id, 20).await.unwrap();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        (ok, results.len())
    };
    assert_eq!(granted, 20);
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 20);
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn a_batch_whose_backend_dies_is_retried_as_a_whole(pool: PgPool) {
    let store = store_on(&pool, 4, PgStore::builder()).await;
    let drop_id = drop_of(&store, 100, DEFAULT_HOLD).await;
    let blocker = block_drop(&pool, drop_id).await;
    let calls = batch_of(&store, drop_id, 20);
    kill_waiting(&pool, "dropkit_reserve_logged", &[]).await;
    blocker.rollback().await.unwrap();
    let results = tokio::time::timeout(Duration::from_secs(15), calls)
        .await
        .expect("every caller is answered")
        .unwrap();
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(|r| r.created)));
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 20);
    assert_invariants(&store).await;
    store.close().await;
}

#[sqlx::test(migrations = false)]
async fn the_listener_reconnects_and_tells_subscribers_to_resync(pool: PgPool) {
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let mut on_b = b.subscribe();
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%') t",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(killed, 2, "one listener per instance");
    // B's subscribers hear that events may have been lost...
    let lost = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Err(lost)) = on_b.next().await {
                return lost;
            }
        }
    })
    .await
    .expect("a resync notice");
    assert_eq!(lost.missed, 0);
    // ...and, once reconnected, hear A again.
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let drop_id = drop_of(&a, 1, DEFAULT_HOLD).await;
            let wait = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    e = on_b.next() => if let Some(Ok(DropEvent::DropCreated { drop })) = e
                        && drop.drop.id == drop_id
                    {
                        return;
                    },
                }
            }
        }
    })
    .await;
    assert!(heard.is_ok(), "B never heard A after reconnecting");
    a.close().await;
    b.close().await;
}

/// Asserts that no change was announced: only resync notices, if any.
async fn assert_nothing_announced(events: &mut drop_core::EventStream) {
    let heard = drain(events, Duration::from_millis(300)).await;
    assert!(heard.iter().all(|e| e.is_err()), "announced: {heard:?}");
}

/// Every item `events` yields within `quiet` of the previous one.
async fn drain(
    events: &mut drop_core::EventStream,
    quiet: Duration,
) -> Vec<Result<DropEvent, drop_core::EventsLost>> {
    let mut out = Vec::new();
    while let Ok(Some(item)) = tokio::time::timeout(quiet, events.next()).await {
        out.push(item);
    }
    out
}

fn holds_created(items: &[Result<DropEvent, drop_core::EventsLost>]) -> usize {
    items
        .iter()
        .filter(|e| matches!(e, Ok(DropEvent::HoldCreated { .. })))
        .count()
}

fn resyncs(items: &[Result<DropEvent, drop_core::EventsLost>]) -> usize {
    items.iter().filter(|e| e.is_err()).count()
}

/// A reserve that commits and loses its answer, with no retry left: the
/// caller hears `UNAVAILABLE` and subscribers hear that events may have
/// been lost (the hold's own event never went out).
#[sqlx::test(migrations = false)]
async fn a_lost_answer_without_retries_announces_a_resync(pool: PgPool) {
    let proxy = proxy_for(&pool).await;
    let store = store_via(
        &pool,
        &proxy,
        2,
        PgStore::builder().retries(0).listen(false),
    )
    .await;
    let drop_id = drop_of(&store, 5, DEFAULT_HOLD).await;
    let mut events = store.subscribe();
    proxy.lose_answer_to("dropkit_reserve_logged");
    let err = store.reserve(drop_id, &user("alice")).await.unwrap_err();
    assert_eq!(proxy.answers_lost(), 1);
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    // The commit went through.
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 1);
    let heard = drain(&mut events, Duration::from_millis(300)).await;
    assert_eq!(resyncs(&heard), 1, "{heard:?}");
    assert_eq!(holds_created(&heard), 0, "{heard:?}");
    assert_invariants(&store).await;
    store.close().await;
}

/// A batch whose commit's answer is lost is retried; the retry finds the
/// holds it committed (same ids) and answers every caller with its hold,
/// announcing each hold once.
#[sqlx::test(migrations = false)]
async fn a_batch_whose_answer_is_lost_answers_every_caller_with_its_hold(pool: PgPool) {
    let proxy = proxy_for(&pool).await;
    let store = store_via(&pool, &proxy, 4, PgStore::builder().listen(false)).await;
    let drop_id = drop_of(&store, 100, DEFAULT_HOLD).await;
    let mut events = store.subscribe();
    let blocker = block_drop(&pool, drop_id).await;
    // A lone call goes first and waits on the lock; the crowd queues
    // behind it as one batch, whose answer is lost.
    let first = {
        let store = store.clone();
        tokio::spawn(async move { store.reserve(drop_id, &user("first")).await })
    };
    kill_free_wait(&pool, "dropkit_reserve_logged").await;
    proxy.lose_answer_to("crowd7");
    let calls = batch_of(&store, drop_id, 20);
    tokio::time::sleep(Duration::from_millis(200)).await;
    blocker.rollback().await.unwrap();
    assert!(first.await.unwrap().unwrap().created);
    let results = tokio::time::timeout(Duration::from_secs(15), calls)
        .await
        .expect("every caller is answered")
        .unwrap();
    assert_eq!(proxy.answers_lost(), 1);
    for r in &results {
        let r = r.as_ref().expect("each caller gets its hold");
        assert!(r.created);
    }
    assert_eq!(active_holds_in_db(&pool, drop_id).await, 21);
    let heard = drain(&mut events, Duration::from_millis(300)).await;
    assert_eq!(holds_created(&heard), 21, "{heard:?}");
    assert_invariants(&store).await;
    store.close().await;
}

/// A purchase whose commit's answer is lost is retried and recognised as
/// done ("repeated"): the buyer gets the purchase, announced once.
#[sqlx::test(migrations = false)]
async fn a_purchase_whose_answer_is_lost_is_recognised(pool: PgPool) {
    let proxy = proxy_for(&pool).await;
    let store = store_via(&pool, &proxy, 2, PgStore::builder().listen(false)).await;
    let drop_id = drop_of(&store, 5, DEFAULT_HOLD).await;
    let alice = user("alice");
    let hold = store.reserve(drop_id, &alice).await.unwrap().reservation;
    let mut events = store.subscribe();
    proxy.lose_answer_to("dropkit_purchase_logged");
    let bought = store
        .purchase(hold.id, &alice.id)
        .await
        .expect("recognised");
    assert_eq!(proxy.answers_lost(), 1);
    assert_eq!(bought.purchase.reservation_id, hold.id);
    let ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM dropkit_purchases WHERE reservation_id = $1")
            .bind(hold.id.as_uuid())
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        ids,
        vec![bought.purchase.id.as_uuid()],
        "the one purchase, answered"
    );
    let heard = drain(&mut events, Duration::from_millis(300)).await;
    let purchases = heard
        .iter()
        .filter(|e| matches!(e, Ok(DropEvent::PurchaseCompleted { .. })))
        .count();
    assert_eq!(purchases, 1, "{heard:?}");
    assert_invariants(&store).await;
    store.close().await;
}

/// `create_drop` whose commit's answer is lost is retried; the retry
/// recognises the drop by its id instead of failing on it.
#[sqlx::test(migrations = false)]
async fn a_create_drop_whose_answer_is_lost_is_recognised(pool: PgPool) {
    let proxy = proxy_for(&pool).await;
    let store = store_via(&pool, &proxy, 2, PgStore::builder().listen(false)).await;
    let mut events = store.subscribe();
    proxy.lose_answer_to("INSERT INTO dropkit_drops");
    let created = store
        .create_drop(NewDrop::new("Lost", Money::from_minor(100).unwrap(), 3))
        .await
        .expect("the drop that was created");
    assert_eq!(proxy.answers_lost(), 1);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM dropkit_drops")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
    assert_eq!(store.get_drop(created.drop.id).await.unwrap(), created);
    let heard = drain(&mut events, Duration::from_millis(300)).await;
    let announced = heard
        .iter()
        .filter(
            |e| matches!(e, Ok(DropEvent::DropCreated { drop }) if drop.drop.id == created.drop.id),
        )
        .count();
    assert_eq!(announced, 1, "{heard:?}");
    store.close().await;
}

/// Waits (without killing) until a backend waits on a lock in `function`.
async fn kill_free_wait(pool: &PgPool, function: &str) {
    let pattern = format!("%{function}%");
    for _ in 0..1_000 {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query LIKE $1",
        )
        .bind(&pattern)
        .fetch_one(pool)
        .await
        .unwrap();
        if n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing waited inside {function}");
}

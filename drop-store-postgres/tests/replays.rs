//! Idempotency records: what a replay costs — one statement that probes
//! the key's record and the entity it names by their primary keys, and
//! nothing else; it never queues on the drop's lock (measured in
//! PostgreSQL's own statistics, not in time) — and how long records stay.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{block_drop, store_on, user};
use drop_core::{IdempotencyKey, InventoryStore, Money, NewDrop, ReserveRequest};
use drop_store_postgres::PgStore;
use sqlx::{Connection, PgConnection, PgPool};

/// Replays measured.
const REPLAYS: i64 = 40;

/// Index scans and table scans so far on dropkit's tables, by name.
async fn scans(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT indexrelname::text, coalesce(idx_scan, 0) FROM pg_stat_user_indexes \
          WHERE relname LIKE 'dropkit%' \
         UNION ALL \
         SELECT relname || ' (seq)', coalesce(seq_scan, 0) FROM pg_stat_user_tables \
          WHERE relname LIKE 'dropkit%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[sqlx::test(migrations = false)]
async fn a_replay_is_one_indexed_read_and_never_waits_for_the_drop(pool: PgPool) {
    PgStore::migrate(&pool).await.unwrap();
    // One connection, no listener: every statement below is the store's.
    let store = store_on(&pool, 1, PgStore::builder().listen(false)).await;
    let drop_id = store
        .create_drop(
            NewDrop::new("Keyed", Money::from_minor(100).unwrap(), 10)
                .hold(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .drop
        .id;
    let buyer = user("keyed");
    let key = IdempotencyKey::new(buyer.id.as_str(), "retry-me", [9; 32]).unwrap();
    let first = store
        .reserve_with(drop_id, &buyer, ReserveRequest::new(), Some(&key))
        .await
        .unwrap();
    assert!(first.created && !first.replayed);

    // The drop's row is locked by someone else for the whole measurement:
    // a replay that queued on it would never finish.
    let blocker = block_drop(&pool, drop_id).await;
    let mut observer = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // Statistics of the store's backend land when it exits: start from a
    // fresh one, so that the measured backend ran the replays only.
    store.pool().close().await;
    wait_gone(&mut observer, backend).await;
    let before = scans(&mut observer).await;
    let store = store_on(&pool, 1, PgStore::builder().listen(false)).await;
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    for _ in 0..REPLAYS {
        let again = tokio::time::timeout(
            Duration::from_secs(30),
            store.reserve_with(drop_id, &buyer, ReserveRequest::new(), Some(&key)),
        )
        .await
        .expect("a replay does not wait for the drop's lock")
        .unwrap();
        assert!(again.replayed && again.created);
        assert_eq!(again.reservation.id, first.reservation.id);
    }
    store.pool().close().await;
    wait_gone(&mut observer, backend).await;
    let mut after = scans(&mut observer).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = scans(&mut observer).await;
        if now == after {
            break;
        }
        after = now;
    }
    drop(blocker);

    let read: BTreeMap<&str, i64> = after
        .iter()
        .map(|(k, v)| (k.as_str(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    // Per replay: the record by its key, the hold it names by its id.
    assert_eq!(
        read,
        BTreeMap::from([
            ("dropkit_idempotency_pkey", REPLAYS),
            ("dropkit_reservations_pkey", REPLAYS),
        ]),
        "what {REPLAYS} replays read"
    );
}

/// Waits until backend `pid` has exited (and so reported its statistics).
async fn wait_gone(observer: &mut PgConnection, pid: i32) {
    for _ in 0..200 {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(pid)
                .fetch_one(&mut *observer)
                .await
                .unwrap();
        if !alive {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("backend {pid} did not exit");
}

/// Records older than the retention are pruned by the sweeps; younger
/// ones stay, and so do their replays.
#[sqlx::test(migrations = false)]
async fn old_records_are_pruned_by_the_sweeper(pool: PgPool) {
    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .unwrap();
    let drop_id = store
        .create_drop(NewDrop::new("Kept", Money::from_minor(100).unwrap(), 10))
        .await
        .unwrap()
        .drop
        .id;
    let (old, young) = (user("old"), user("young"));
    for buyer in [&old, &young] {
        let key = IdempotencyKey::new(buyer.id.as_str(), "k", [1; 32]).unwrap();
        store
            .reserve_with(drop_id, buyer, ReserveRequest::new(), Some(&key))
            .await
            .unwrap();
    }
    // One of them was recorded a day and a minute ago.
    sqlx::query(
        "UPDATE dropkit_idempotency SET recorded_at = recorded_at - interval '1 day 1 minute' \
          WHERE caller = $1",
    )
    .bind(old.id.as_str())
    .execute(&pool)
    .await
    .unwrap();
    store.expire_due(100).await.unwrap();
    let kept: Vec<String> =
        sqlx::query_scalar("SELECT caller FROM dropkit_idempotency ORDER BY caller")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(kept, [young.id.as_str()]);
    assert!(
        store
            .idempotency_record(old.id.as_str(), "k")
            .await
            .unwrap()
            .is_none()
    );
    let record = store
        .idempotency_record(young.id.as_str(), "k")
        .await
        .unwrap()
        .expect("the young record stays");
    assert!(record.created);
    store.close().await;
}

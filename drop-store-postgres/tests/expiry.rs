//! Expiry at scale: fair across drops, shared by several sweepers, never
//! skipping a hot drop.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{active_holds_in_db, assert_invariants};
use drop_core::{DropEvent, DropId, InventoryStore, Money, NewDrop};
use drop_store_postgres::PgStore;
use futures::StreamExt;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

/// Far longer than any of these calls takes when it does not wait.
const PATIENCE: Duration = Duration::from_secs(30);

async fn store(pool: &PgPool) -> PgStore {
    PgStore::builder()
        .group_commit(false)
        .build(pool.clone())
        .await
        .unwrap()
}

async fn new_drop(store: &PgStore, name: &str) -> DropId {
    store
        .create_drop(NewDrop::new(name, Money::ZERO, 100_000).hold(Duration::from_secs(600)))
        .await
        .unwrap()
        .drop
        .id
}

/// Gives `drop_id` `n` active holds that ran out `ago` (the earliest first),
/// counters in step, as a storm nobody bought would leave them.
async fn overdue_holds(pool: &PgPool, drop_id: DropId, n: i32, ago: &str) -> HashSet<Uuid> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO dropkit_reservations \
                (id, drop_id, variant_id, buyer_id, display_name, status, created_at, expires_at) \
         SELECT gen_random_uuid(), $1, (SELECT v.id FROM dropkit_variants v WHERE v.drop_id = $1), \
                'u' || i, 'u' || i, 'active', \
                now() - $3::interval - interval '1 minute' + i * interval '1 microsecond', \
                now() - $3::interval + i * interval '1 microsecond' \
           FROM generate_series(1, $2) AS i RETURNING id",
    )
    .bind(drop_id.as_uuid())
    .bind(n)
    .bind(ago)
    .fetch_all(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE dropkit_drops SET reserved = reserved + $2 WHERE id = $1")
        .bind(drop_id.as_uuid())
        .bind(n)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE dropkit_variants SET reserved = reserved + $2 WHERE drop_id = $1")
        .bind(drop_id.as_uuid())
        .bind(n)
        .execute(pool)
        .await
        .unwrap();
    ids.into_iter().collect()
}

/// A drop with a backlog of 5,000 long-overdue holds does not delay
/// another drop's holds that just ran out: one sweep of 100 takes all of
/// the second drop's, then the backlog's earliest; each drop's counter
/// moves once.
#[sqlx::test(migrations = false)]
async fn one_sweep_serves_every_drop_with_due_holds(pool: PgPool) {
    let store = store(&pool).await;
    let backlog = new_drop(&store, "Backlog").await;
    let fresh = new_drop(&store, "Fresh").await;
    let old = overdue_holds(&pool, backlog, 5_000, "10 minutes").await;
    let new = overdue_holds(&pool, fresh, 3, "1 second").await;
    let mut events = store.subscribe();

    assert_eq!(store.expire_due(100).await.unwrap(), 100);

    let mut expired = HashSet::new();
    let mut stock_updates = Vec::new();
    while expired.len() < 100 || stock_updates.len() < 2 {
        match tokio::time::timeout(PATIENCE, events.next()).await {
            Ok(Some(Ok(DropEvent::HoldExpired { reservation_id, .. }))) => {
                expired.insert(reservation_id.as_uuid());
            }
            Ok(Some(Ok(DropEvent::StockChanged { drop_id, .. }))) => stock_updates.push(drop_id),
            Ok(Some(Ok(_))) => {}
            other => panic!("no event: {other:?}"),
        }
    }
    assert!(
        new.iter().all(|id| expired.contains(id)),
        "the fresh drop's holds wait behind the backlog"
    );
    assert_eq!(expired.iter().filter(|id| old.contains(id)).count(), 97);
    stock_updates.sort();
    let mut both = vec![backlog, fresh];
    both.sort();
    assert_eq!(stock_updates, both, "one stock update per drop");
    assert_eq!(active_holds_in_db(&pool, fresh).await, 0);
    assert_eq!(active_holds_in_db(&pool, backlog).await, 5_000 - 97);
    assert_invariants(&store).await;
}

/// A sweeper in the middle of a drop (its transaction still open) does not
/// hold up another sweeper: the second leaves that drop to the first and
/// sweeps the others.
#[sqlx::test(migrations = false)]
async fn sweepers_do_not_wait_on_each_other(pool: PgPool) {
    let store = store(&pool).await;
    let busy = new_drop(&store, "Busy").await;
    let other = new_drop(&store, "Other").await;
    overdue_holds(&pool, busy, 50, "1 minute").await;

    // The first sweeper takes the busy drop and has not committed.
    let mut first = PgConnection::connect_with(pool.connect_options().as_ref())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut first).await.unwrap();
    let took: Vec<Uuid> = sqlx::query_scalar("SELECT o_drop FROM dropkit_expire_due(10)")
        .fetch_all(&mut first)
        .await
        .unwrap();
    assert_eq!(took, vec![busy.as_uuid()], "the first sweeper's share");
    // Meanwhile another drop's holds run out.
    overdue_holds(&pool, other, 20, "1 second").await;

    let second = tokio::time::timeout(PATIENCE, store.expire_due(1_000))
        .await
        .expect("the second sweeper does not wait for the first")
        .unwrap();
    assert_eq!(second, 20, "it sweeps the drops the first is not on");
    assert_eq!(active_holds_in_db(&pool, other).await, 0);

    sqlx::query("COMMIT").execute(&mut first).await.unwrap();
    assert_eq!(store.expire_due(1_000).await.unwrap(), 40);
    assert_eq!(active_holds_in_db(&pool, busy).await, 0);
    assert_invariants(&store).await;
}

/// A drop whose row is locked by a write in flight (as a hot drop's is,
/// nearly always) is not skipped: the sweeper waits its turn and sweeps it.
#[sqlx::test(migrations = false)]
async fn a_hot_drop_is_waited_for_not_skipped(pool: PgPool) {
    let store = store(&pool).await;
    let hot = new_drop(&store, "Hot").await;
    overdue_holds(&pool, hot, 30, "1 second").await;
    let mut writer = PgConnection::connect_with(pool.connect_options().as_ref())
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut writer).await.unwrap();
    sqlx::query("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR NO KEY UPDATE")
        .bind(hot.as_uuid())
        .execute(&mut writer)
        .await
        .unwrap();
    let sweep = tokio::spawn({
        let store = store.clone();
        async move { store.expire_due(100).await }
    });
    // The sweeper queues on the row...
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            let waiting: bool = sqlx::query_scalar(
                "SELECT count(*) > 0 FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND query LIKE '%dropkit_expire_due%'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if waiting {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    waited.expect("the sweeper waits for the hot drop's row");
    // ... and sweeps it once the write commits.
    sqlx::query("COMMIT").execute(&mut writer).await.unwrap();
    let swept = tokio::time::timeout(PATIENCE, sweep)
        .await
        .expect("the sweep finishes")
        .unwrap()
        .unwrap();
    assert_eq!(swept, 30);
    assert_eq!(active_holds_in_db(&pool, hot).await, 0);
    assert_invariants(&store).await;
}

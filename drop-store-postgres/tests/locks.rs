//! Lock order, replayed with separate connections: who waits for whom.

mod common;

use std::time::Duration;

use common::assert_invariants;
use drop_core::{Buyer, DropId, InventoryStore, Money, NewDrop, Username};
use drop_store_postgres::PgStore;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

/// Far longer than any of these calls takes when it does not wait, and
/// than PostgreSQL's deadlock check (1 s by default).
const PATIENCE: Duration = Duration::from_secs(30);

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

async fn connect(pool: &PgPool) -> PgConnection {
    PgConnection::connect_with(pool.connect_options().as_ref())
        .await
        .expect("a connection of its own")
}

async fn pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Waits until backend `pid` is blocked on a lock.
async fn until_waiting(pool: &PgPool, pid: i32) {
    let waited = tokio::time::timeout(PATIENCE, async {
        loop {
            let waiting: bool = sqlx::query_scalar(
                "SELECT coalesce(bool_or(wait_event_type = 'Lock'), false) \
                 FROM pg_stat_activity WHERE pid = $1",
            )
            .bind(pid)
            .fetch_one(pool)
            .await
            .unwrap();
            if waiting {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("backend {pid} never waited for a lock"));
}

/// Takes the drop's row lock on `conn` inside a transaction left open.
async fn lock_drop_row(conn: &mut PgConnection, drop_id: DropId) {
    sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
    sqlx::query("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR UPDATE")
        .bind(drop_id.as_uuid())
        .execute(&mut *conn)
        .await
        .unwrap();
}

async fn new_drop(store: &PgStore) -> DropId {
    store
        .create_drop(
            NewDrop::new("Hot", Money::from_minor(100).unwrap(), 10).hold(Duration::from_secs(600)),
        )
        .await
        .unwrap()
        .drop
        .id
}

/// The interleaving that deadlocked: one session holds the drop row; a
/// batch of two users queues on it; then a lone call for one of them
/// arrives. The lone call used to insert its hold before queueing on the
/// row, and the batch, once it had the row, waited on that hold's unique
/// key: each waited for the other. Now every path queues on the row first,
/// so both finish, in queue order, and the user gets one hold.
#[sqlx::test(migrations = false)]
async fn a_lone_reserve_behind_a_batch_does_not_deadlock(pool: PgPool) {
    let store = PgStore::builder()
        .group_commit(false)
        .build(pool.clone())
        .await
        .unwrap();
    let drop_id = new_drop(&store).await;

    let mut holder = connect(&pool).await;
    lock_drop_row(&mut holder, drop_id).await;

    let mut batch_conn = connect(&pool).await;
    let batch_pid = pid(&mut batch_conn).await;
    let (ann_batch, bob_batch) = (Uuid::new_v4(), Uuid::new_v4());
    let batch = tokio::spawn(async move {
        let row: (String, Vec<String>) = sqlx::query_as(
            "SELECT o_outcome::text, ARRAY(SELECT a.outcome::text FROM unnest(o_answers) a) \
               FROM dropkit_reserve_units($1, ARRAY['ann', 'bob'], ARRAY['ann', 'bob'], \
                                          ARRAY[NULL, NULL]::uuid[], ARRAY[1, 1], $2, \
                                          ARRAY[NULL, NULL]::text[], ARRAY[NULL, NULL]::text[], \
                                          ARRAY[NULL, NULL]::bytea[])",
        )
        .bind(drop_id.as_uuid())
        .bind(vec![ann_batch, bob_batch])
        .fetch_one(&mut batch_conn)
        .await?;
        Ok::<_, sqlx::Error>(row)
    });
    until_waiting(&pool, batch_pid).await;

    let mut lone_conn = connect(&pool).await;
    let lone_pid = pid(&mut lone_conn).await;
    let ann_lone = Uuid::new_v4();
    let lone = tokio::spawn(async move {
        let row: (String, Vec<String>, Vec<Uuid>) = sqlx::query_as(
            "SELECT o_outcome::text, ARRAY(SELECT a.outcome::text FROM unnest(o_answers) a), \
                    ARRAY(SELECT a.hold_id FROM unnest(o_answers) a) \
               FROM dropkit_reserve_units($1, ARRAY['ann'], ARRAY['ann'], ARRAY[NULL]::uuid[], \
                                          ARRAY[1], $2, ARRAY[NULL]::text[], ARRAY[NULL]::text[], \
                                          ARRAY[NULL]::bytea[])",
        )
        .bind(drop_id.as_uuid())
        .bind(vec![ann_lone])
        .fetch_one(&mut lone_conn)
        .await?;
        Ok::<_, sqlx::Error>(row)
    });
    until_waiting(&pool, lone_pid).await;

    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let batch = tokio::time::timeout(PATIENCE, batch)
        .await
        .expect("the batch finishes")
        .unwrap()
        .expect("the batch is not a deadlock victim");
    let lone = tokio::time::timeout(PATIENCE, lone)
        .await
        .expect("the lone call finishes")
        .unwrap()
        .expect("the lone call is not a deadlock victim");

    assert_eq!(
        batch,
        (
            "ok".to_owned(),
            vec!["created".to_owned(), "created".to_owned()]
        )
    );
    assert_eq!(
        lone,
        (
            "ok".to_owned(),
            vec!["existing".to_owned()],
            vec![ann_batch]
        ),
        "ann keeps the hold the batch gave her"
    );
    let stock = store.get_drop(drop_id).await.unwrap().stock;
    assert_eq!(stock.reserved, 2);
    assert_invariants(&store).await;
}

/// A release by someone who does not own the hold, or of a hold that has
/// ended, is answered without queueing on the drop's row.
#[sqlx::test(migrations = false)]
async fn refused_releases_do_not_wait_for_the_drop_row(pool: PgPool) {
    let store = PgStore::builder()
        .group_commit(false)
        .build(pool.clone())
        .await
        .unwrap();
    let drop_id = new_drop(&store).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let held = store.reserve(drop_id, &alice).await.unwrap().reservation;
    let bought = store.reserve(drop_id, &bob).await.unwrap().reservation;
    store.purchase(bought.id, &bob.id).await.unwrap();

    let mut holder = connect(&pool).await;
    lock_drop_row(&mut holder, drop_id).await;
    let answer = |r: Result<_, drop_core::DropError>| r.map(|_| ()).unwrap_err().code();
    let not_owner = tokio::time::timeout(PATIENCE, store.release(held.id, &bob.id))
        .await
        .expect("a stranger's release does not queue on the drop row");
    assert_eq!(answer(not_owner), "NOT_OWNER");
    let ended = tokio::time::timeout(PATIENCE, store.release(bought.id, &bob.id))
        .await
        .expect("releasing a bought hold does not queue on the drop row");
    assert_eq!(answer(ended), "ALREADY_PURCHASED");

    // The owner's release of an active hold does take the lock, and gets
    // it once the row is free.
    let owner = tokio::spawn({
        let store = store.clone();
        async move { store.release(held.id, &alice.id).await }
    });
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    tokio::time::timeout(PATIENCE, owner)
        .await
        .expect("the owner's release finishes")
        .unwrap()
        .expect("released");
    assert_invariants(&store).await;
}

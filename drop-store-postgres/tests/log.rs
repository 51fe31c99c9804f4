//! The event log on PostgreSQL: what each write appends, that a follower
//! never misses an entry although sequence order is not commit order,
//! cursors and retention.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{assert_invariants, drop_of, store_on, user};
use drop_core::{
    Change, DropAction, DropError, DropId, DropPatch, InventoryStore, LogEntry, MAX_LOG_PAGE,
};
use drop_store_postgres::PgStore;
use sqlx::PgPool;
use uuid::Uuid;

const HOUR: Duration = Duration::from_secs(3600);

/// Every entry from `after` on, page by page.
async fn read_all(store: &PgStore, after: u64) -> Vec<LogEntry> {
    let mut out: Vec<LogEntry> = Vec::new();
    let mut at = after;
    loop {
        let page = store.events_after(at, MAX_LOG_PAGE).await.unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        at = last.seq;
        out.extend(page);
    }
}

fn kinds(entries: &[LogEntry]) -> Vec<&'static str> {
    entries.iter().map(|e| e.change.kind()).collect()
}

/// The entries' changes as the log answers them (stored JSON, or JSON
/// built from the typed columns), next to what serde makes of the changes
/// read back: the functions must answer exactly the core's shapes.
async fn assert_serde_shapes(pool: &PgPool) {
    let rows: Vec<(i64, String, serde_json::Value)> =
        sqlx::query_as("SELECT seq, kind, dropkit_log_data(e) FROM dropkit_events e ORDER BY seq")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    for (seq, kind, data) in rows {
        let change: Change = serde_json::from_value(data.clone())
            .unwrap_or_else(|e| panic!("entry {seq} does not read as a Change: {e}: {data}"));
        assert_eq!(change.kind(), kind, "entry {seq}");
        assert_eq!(
            serde_json::to_value(&change).unwrap(),
            data,
            "entry {seq} is not what serde writes"
        );
    }
}

#[sqlx::test(migrations = false)]
async fn every_write_appends_its_changes_in_order(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    assert_eq!(store.log_head().await.unwrap(), 0);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    let drop_id = drop_of(&store, 10, HOUR).await;
    let short = drop_of(&store, 5, Duration::from_secs(1)).await;

    let ann = store
        .reserve(drop_id, &user("ann"))
        .await
        .unwrap()
        .reservation;
    // The same request again, and refusals, append nothing.
    store.reserve(drop_id, &user("ann")).await.unwrap();
    let bought = store
        .purchase(ann.id, &ann.buyer_id)
        .await
        .unwrap()
        .purchase;
    store.purchase(ann.id, &ann.buyer_id).await.unwrap();
    let bob = store
        .reserve(drop_id, &user("bob"))
        .await
        .unwrap()
        .reservation;
    store.release(bob.id, &bob.buyer_id).await.unwrap();
    assert!(store.release(bob.id, &bob.buyer_id).await.is_err());
    store.set_paused(drop_id, true, None).await.unwrap();
    store.set_paused(drop_id, true, None).await.unwrap();
    store.set_paused(drop_id, false, None).await.unwrap();
    let mut patch = DropPatch::new();
    patch.name = Some("Renamed".into());
    store.update_drop(drop_id, &patch, None).await.unwrap();
    store.cancel_purchase(bought.id, None).await.unwrap();
    store.cancel_purchase(bought.id, None).await.unwrap();
    let cid = store
        .reserve(short, &user("cid"))
        .await
        .unwrap()
        .reservation;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.expire_due(100).await.unwrap(), 1);
    store.end_drop(drop_id, None).await.unwrap();

    let all = read_all(&store, 0).await;
    assert_eq!(
        kinds(&all),
        [
            "dropCreated",
            "dropCreated",
            "holdCreated",
            "purchaseCompleted",
            "holdCreated",
            "holdReleased",
            "dropUpdated",
            "dropUpdated",
            "dropUpdated",
            "purchaseCancelled",
            "holdCreated",
            "holdExpired",
            "dropUpdated",
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.log_head().await.unwrap(), all.last().unwrap().seq);
    match &all[2].change {
        Change::HoldCreated {
            reservation_id,
            buyer_id,
            display_name,
            quantity,
            expires_at,
            ..
        } => {
            assert_eq!(*reservation_id, ann.id);
            assert_eq!(*buyer_id, ann.buyer_id);
            assert_eq!(display_name.as_str(), "ann");
            assert_eq!(*quantity, 1);
            assert_eq!(*expires_at, ann.expires_at);
        }
        other => panic!("{other:?}"),
    }
    match &all[3].change {
        Change::PurchaseCompleted {
            purchase_id,
            amount,
            ..
        } => {
            assert_eq!(*purchase_id, bought.id);
            assert_eq!(amount.to_string(), "1.00");
        }
        other => panic!("{other:?}"),
    }
    let actions: Vec<DropAction> = all
        .iter()
        .filter_map(|e| match &e.change {
            Change::DropUpdated { action, .. } => Some(*action),
            _ => None,
        })
        .collect();
    assert_eq!(
        actions,
        [
            DropAction::Paused,
            DropAction::Resumed,
            DropAction::Edited,
            DropAction::Ended
        ]
    );
    match &all[8].change {
        Change::DropUpdated { drop, .. } => assert_eq!(drop.name, "Renamed"),
        other => panic!("{other:?}"),
    }
    match &all[11].change {
        Change::HoldExpired { reservation_id, .. } => assert_eq!(*reservation_id, cid.id),
        other => panic!("{other:?}"),
    }
    assert_eq!(all[11].drop_id, short);
    assert_serde_shapes(&pool).await;

    // A drop's history is its entries alone, with the same numbers.
    let history = store.drop_history(short, 0, 100).await.unwrap();
    assert_eq!(
        kinds(&history),
        ["dropCreated", "holdCreated", "holdExpired"]
    );
    let from_all: Vec<&LogEntry> = all.iter().filter(|e| e.drop_id == short).collect();
    assert_eq!(history.iter().collect::<Vec<_>>(), from_all);
    // Paging: limits, and reading after a number.
    let two = store.events_after(0, 2).await.unwrap();
    assert_eq!(two, all[..2]);
    assert_eq!(store.events_after(two[1].seq, 3).await.unwrap(), all[2..5]);
    assert!(store.events_after(0, 0).await.unwrap().is_empty());
    let capped = store.events_after(0, usize::MAX).await.unwrap();
    assert_eq!(capped, all);
    assert_invariants(&store).await;
}

#[sqlx::test(migrations = false)]
async fn a_reserve_that_ends_overdue_holds_logs_them_first(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&store, 1, Duration::from_secs(1)).await;
    let ann = store
        .reserve(drop_id, &user("ann"))
        .await
        .unwrap()
        .reservation;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The only unit is held by ann's overdue hold: bob's reserve reclaims it.
    let bob = store
        .reserve(drop_id, &user("bob"))
        .await
        .unwrap()
        .reservation;
    let all = read_all(&store, 0).await;
    assert_eq!(
        kinds(&all),
        ["dropCreated", "holdCreated", "holdExpired", "holdCreated"]
    );
    assert!(
        matches!(&all[2].change, Change::HoldExpired { reservation_id, .. } if *reservation_id == ann.id)
    );
    assert!(
        matches!(&all[3].change, Change::HoldCreated { reservation_id, .. } if *reservation_id == bob.id)
    );
    assert_serde_shapes(&pool).await;
}

#[sqlx::test(migrations = false)]
async fn with_the_log_off_writes_append_nothing(pool: PgPool) {
    let store = PgStore::builder()
        .event_log(false)
        .build(pool.clone())
        .await
        .unwrap();
    let drop_id = drop_of(&store, 10, HOUR).await;
    let hold = store
        .reserve(drop_id, &user("ann"))
        .await
        .unwrap()
        .reservation;
    store.purchase(hold.id, &hold.buyer_id).await.unwrap();
    store.set_paused(drop_id, true, None).await.unwrap();
    assert!(store.events_after(0, 100).await.unwrap().is_empty());
    assert_eq!(store.log_head().await.unwrap(), 0);
    assert_invariants(&store).await;
}

/// Several instances (separate pools), many writers on a few drops with
/// group commit, admin writes, and a follower reading as fast as it can:
/// it sees every entry exactly once, in order, and what it saw is the log.
#[sqlx::test(migrations = false)]
async fn a_follower_never_misses_an_entry_under_concurrent_writers(pool: PgPool) {
    const INSTANCES: usize = 3;
    const WRITERS: usize = 8;
    const ROUNDS: usize = 25;
    let first = PgStore::builder().build(pool.clone()).await.unwrap();
    let mut stores = vec![first.clone()];
    for _ in 1..INSTANCES {
        stores.push(store_on(&pool, 8, PgStore::builder()).await);
    }
    let mut drops = Vec::new();
    for _ in 0..4 {
        drops.push(drop_of(&first, 100_000, HOUR).await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let follower = {
        let (store, done, reads) = (first.clone(), done.clone(), reads.clone());
        tokio::spawn(async move {
            let mut seen: Vec<LogEntry> = Vec::new();
            let mut at = 0;
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = store.events_after(at, MAX_LOG_PAGE).await.unwrap();
                reads.fetch_add(1, Ordering::Relaxed);
                if let Some(last) = page.last() {
                    at = last.seq;
                }
                let empty = page.is_empty();
                seen.extend(page);
                if finished && empty {
                    return seen;
                }
            }
        })
    };
    let mut writers = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        for w in 0..WRITERS {
            let (store, drops) = (store.clone(), drops.clone());
            writers.push(tokio::spawn(async move {
                let mut made = 0u64;
                for r in 0..ROUNDS {
                    let drop_id = drops[(w + r) % drops.len()];
                    let buyer = user(&format!("b{i}_{w}_{r}"));
                    let hold = loop {
                        match store.reserve(drop_id, &buyer).await {
                            Ok(r) => break r.reservation,
                            // Paused by the admin task for a moment.
                            Err(DropError::DropPaused { .. }) => {
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                            Err(e) => panic!("{e}"),
                        }
                    };
                    made += 1;
                    if r % 3 == 0 {
                        store.release(hold.id, &hold.buyer_id).await.unwrap();
                    } else {
                        store.purchase(hold.id, &hold.buyer_id).await.unwrap();
                    }
                    made += 1;
                }
                made
            }));
        }
    }
    let admin = {
        let (store, drops) = (stores[INSTANCES - 1].clone(), drops.clone());
        tokio::spawn(async move {
            let mut made = 0u64;
            for r in 0..20 {
                let drop_id = drops[r % drops.len()];
                store.set_paused(drop_id, true, None).await.unwrap();
                store.set_paused(drop_id, false, None).await.unwrap();
                made += 2;
            }
            made
        })
    };
    let mut expected = admin.await.unwrap();
    for w in writers {
        expected += w.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let seen = follower.await.unwrap();
    let all = read_all(&first, 0).await;
    let drops_created = drops.len() as u64;
    assert_eq!(
        all.len() as u64,
        expected + drops_created,
        "every change logged once"
    );
    let seen_seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    let all_seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    let missed: Vec<&u64> = all_seqs.iter().filter(|s| !seen_seqs.contains(s)).collect();
    assert!(missed.is_empty(), "the follower skipped {missed:?}");
    assert_eq!(seen_seqs, all_seqs, "the follower saw the log in order");
    assert!(seen == all, "the follower read the same entries");
    let unique: HashSet<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(unique.len(), seen.len());
    assert!(
        reads.load(Ordering::Relaxed) > 10,
        "the follower read while writers wrote"
    );
    for store in &stores {
        assert_invariants(store).await;
    }
}

type Transaction = sqlx::Transaction<'static, sqlx::Postgres>;

/// A hand transaction that appends one entry and stays open, as a writer
/// between its append and its commit: the number it took.
async fn open_append(pool: &PgPool, drop_id: DropId, change: &Change) -> (Transaction, u64) {
    let mut hand = pool.begin().await.unwrap();
    sqlx::query("SELECT dropkit_log_append($1, $2, $3)")
        .bind(vec![drop_id.as_uuid()])
        .bind(vec![change.kind()])
        .bind(vec![serde_json::to_value(change).unwrap()])
        .execute(&mut *hand)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT currval('dropkit_events_seq')")
        .fetch_one(&mut *hand)
        .await
        .unwrap();
    (hand, n as u64)
}

fn hand_change() -> Change {
    Change::HoldReleased {
        reservation_id: drop_core::ReservationId::new(),
        buyer_id: user("hand").id,
        variant_id: drop_core::VariantId::new(),
        quantity: 1,
    }
}

/// How long a call that must not wait may take: generous, so that a loaded
/// machine cannot fail a test, while a call that does wait (for a
/// transaction the test holds open) never ends within it.
const PATIENCE: Duration = Duration::from_secs(30);

/// Writers do not wait for each other: a later writer commits while an
/// earlier one that took a lower number is still open. A reader does not
/// answer the later entry without the earlier one: it waits until the
/// earlier writer ends, then answers both, in order.
#[sqlx::test(migrations = false)]
async fn a_reader_waits_for_an_earlier_append_that_a_later_writer_passed(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&store, 10, HOUR).await;
    let head = store.log_head().await.unwrap();
    let change = hand_change();
    let (hand, n) = open_append(&pool, drop_id, &change).await;
    assert!(n > head);

    let hold = tokio::time::timeout(PATIENCE, store.reserve(drop_id, &user("ann")))
        .await
        .expect("a writer does not wait for another writer's commit")
        .unwrap()
        .reservation;
    // Read around the store: the reserve's entry is committed and visible,
    // numbered after the open one. A reader must not answer it alone.
    let later: Vec<i64> =
        sqlx::query_scalar("SELECT seq FROM dropkit_events WHERE seq > $1 ORDER BY seq")
            .bind(head as i64)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(later.len(), 1, "only the reserve's entry is visible");
    assert!(later[0] as u64 > n);

    let reader = {
        let store = store.clone();
        tokio::spawn(async move { store.events_after(head, 100).await })
    };
    let head_reader = {
        let store = store.clone();
        tokio::spawn(async move { store.log_head().await })
    };
    // A lower bound only: after this long both still wait for the hand
    // transaction rather than answering without its entry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !reader.is_finished(),
        "the reader answered while an entry below the ones it would answer was in flight"
    );
    assert!(
        !head_reader.is_finished(),
        "log_head answered while an entry at or below it was in flight"
    );
    hand.commit().await.unwrap();

    let after = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the reader goes on once the hand transaction commits")
        .unwrap()
        .unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0].seq, n);
    assert_eq!(after[0].change, change);
    assert!(
        matches!(&after[1].change, Change::HoldCreated { reservation_id, .. } if *reservation_id == hold.id)
    );
    assert_eq!(after[1].seq as i64, later[0]);
    let settled = tokio::time::timeout(PATIENCE, head_reader)
        .await
        .expect("log_head goes on once the hand transaction commits")
        .unwrap()
        .unwrap();
    assert_eq!(settled, after[1].seq);
    assert_eq!(store.log_head().await.unwrap(), after[1].seq);
}

/// A rolled back writer leaves a hole that a reader waited for, then
/// passes over; later entries come after it.
#[sqlx::test(migrations = false)]
async fn a_reader_passes_over_a_rolled_back_append(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&store, 10, HOUR).await;
    let head = store.log_head().await.unwrap();
    let (hand, n) = open_append(&pool, drop_id, &hand_change()).await;
    let reader = {
        let store = store.clone();
        tokio::spawn(async move { store.events_after(head, 100).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !reader.is_finished(),
        "the reader waits for the open append"
    );
    hand.rollback().await.unwrap();
    let read = tokio::time::timeout(PATIENCE, reader)
        .await
        .expect("the reader goes on once the hand transaction rolls back")
        .unwrap()
        .unwrap();
    assert!(read.is_empty());
    assert_eq!(store.log_head().await.unwrap(), n, "the hole is passed");
    store.reserve(drop_id, &user("ann")).await.unwrap();
    let late = store.events_after(n, 100).await.unwrap();
    assert_eq!(kinds(&late), ["holdCreated"]);
    assert!(late[0].seq > n);
}

/// A reader with nothing new to read waits for nobody: not for a writer
/// holding the log's shared lock before it took a number, nor for one
/// whose number the reader has seen already.
#[sqlx::test(migrations = false)]
async fn an_idle_reader_does_not_wait_for_writers(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&store, 10, HOUR).await;
    store.reserve(drop_id, &user("ann")).await.unwrap();
    let head = store.log_head().await.unwrap();
    assert!(head > 0);

    // A writer between the shared lock and its numbers.
    let mut locked = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock_shared(1685221232, dropkit_log_lock_key())")
        .execute(&mut *locked)
        .await
        .unwrap();
    let idle = tokio::time::timeout(PATIENCE, store.events_after(head, 100))
        .await
        .expect("an idle read does not wait for a writer's lock")
        .unwrap();
    assert!(idle.is_empty());
    let idle = tokio::time::timeout(PATIENCE, store.drop_history(drop_id, head, 100))
        .await
        .expect("an idle history read does not wait for a writer's lock")
        .unwrap();
    assert!(idle.is_empty());

    // A writer that took a number and has not committed: a reader that has
    // seen that number (it may, once the writer is done) does not wait.
    let (hand, n) = open_append(&pool, drop_id, &hand_change()).await;
    let idle = tokio::time::timeout(PATIENCE, store.events_after(n, 100))
        .await
        .expect("a read after the last number handed out does not wait")
        .unwrap();
    assert!(idle.is_empty());
    hand.commit().await.unwrap();
    locked.commit().await.unwrap();
    assert_eq!(store.log_head().await.unwrap(), n);
}

/// The exclusive lock a reader takes to settle is not held after the
/// read: a transaction's shared lock is granted at once afterwards, and
/// the connection holds no advisory lock.
#[sqlx::test(migrations = false)]
async fn a_reader_leaves_no_lock_behind(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&store, 10, HOUR).await;
    store.reserve(drop_id, &user("ann")).await.unwrap();
    // On one connection: the settling read, then the lock as it stands.
    let mut conn = pool.acquire().await.unwrap();
    let read: Vec<(Option<i64>,)> =
        sqlx::query_as("SELECT o_seq FROM dropkit_log_read(0, 100, NULL)")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(read.len(), 2);
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(held, 0, "the settling lock outlived the read");
    drop(conn);
    let mut other = pool.begin().await.unwrap();
    let got: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock_shared(1685221232, dropkit_log_lock_key())",
    )
    .fetch_one(&mut *other)
    .await
    .unwrap();
    assert!(got);
    other.rollback().await.unwrap();
}

/// A settling read cut short by `statement_timeout` while it waits fails
/// with the timeout and leaves nothing held or queued behind.
#[sqlx::test(migrations = false)]
async fn a_settling_read_that_times_out_leaves_no_lock(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&store, 10, HOUR).await;
    let (hand, n) = open_append(&pool, drop_id, &hand_change()).await;
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("SET statement_timeout = '300ms'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let e = sqlx::query("SELECT * FROM dropkit_log_read(0, 100, NULL)")
        .execute(&mut *conn)
        .await
        .unwrap_err();
    let code = e.as_database_error().and_then(|d| d.code());
    assert_eq!(code.as_deref(), Some("57014"), "{e}");
    sqlx::query("RESET statement_timeout")
        .execute(&mut *conn)
        .await
        .unwrap();
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(held, 0);
    // Writers are not held back by anything the timed out read left.
    let other = tokio::time::timeout(PATIENCE, store.reserve(drop_id, &user("ann")))
        .await
        .expect("a writer goes on after the timed out read")
        .unwrap();
    assert!(other.created);
    hand.commit().await.unwrap();
    let rows: Vec<(Option<i64>,)> =
        sqlx::query_as("SELECT o_seq FROM dropkit_log_read(0, 100, NULL) ORDER BY o_seq")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert!(rows.iter().any(|(s,)| *s == Some(n as i64)));
}

/// Reading the log is refused, not answered wrong, where its snapshot
/// would predate the wait.
#[sqlx::test(migrations = false)]
async fn a_settling_read_needs_read_committed(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    drop_of(&store, 10, HOUR).await;
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await
        .unwrap();
    let e = sqlx::query("SELECT * FROM dropkit_log_read(0, 100, NULL)")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("READ COMMITTED"), "{e}");
    tx.rollback().await.unwrap();
}

/// Stores in different schemas of one database lock their logs apart: a
/// reader of one does not wait for a writer of the other.
#[sqlx::test(migrations = false)]
async fn stores_in_different_schemas_do_not_wait_for_each_other(pool: PgPool) {
    let in_schema = |schema: &'static str| {
        PgStore::builder()
            .schema(schema)
            .unwrap()
            .max_connections(4)
            .connect_with((*pool.connect_options()).clone())
    };
    let a = in_schema("shop_a").await.unwrap();
    let b = in_schema("shop_b").await.unwrap();
    let a_drop = drop_of(&a, 10, HOUR).await;
    let b_drop = drop_of(&b, 10, HOUR).await;
    let a_head = a.log_head().await.unwrap();
    let b_head = b.log_head().await.unwrap();
    // A's pool reaches A's schema: an append by hand there, left open.
    let (hand, _) = open_append(a.pool(), a_drop, &hand_change()).await;
    b.reserve(b_drop, &user("ann")).await.unwrap();
    let read = tokio::time::timeout(PATIENCE, b.events_after(b_head, 100))
        .await
        .expect("B's reader does not wait for A's writer")
        .unwrap();
    assert_eq!(kinds(&read), ["holdCreated"]);
    let a_reader = {
        let a = a.clone();
        tokio::spawn(async move { a.events_after(a_head, 100).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!a_reader.is_finished(), "A's reader waits for A's writer");
    hand.commit().await.unwrap();
    let read = tokio::time::timeout(PATIENCE, a_reader)
        .await
        .expect("A's reader goes on once A's writer commits")
        .unwrap()
        .unwrap();
    assert_eq!(kinds(&read), ["holdReleased"]);
}

#[sqlx::test(migrations = false)]
async fn cursors_are_leased_to_one_holder(pool: PgPool) {
    let store = PgStore::builder().build(pool.clone()).await.unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let claim = store.claim_cursor("hook", a, HOUR).await.unwrap().unwrap();
    assert_eq!(claim.position, 0);
    assert_eq!(store.claim_cursor("hook", b, HOUR).await.unwrap(), None);
    assert!(store.advance_cursor("hook", a, 7).await.unwrap());
    assert!(store.advance_cursor("hook", a, 3).await.unwrap());
    assert!(!store.advance_cursor("hook", b, 9).await.unwrap());
    // Renewed by its holder, at the position it reached (never back).
    assert_eq!(
        store
            .claim_cursor("hook", a, HOUR)
            .await
            .unwrap()
            .unwrap()
            .position,
        7
    );
    store.release_cursor("hook", b).await.unwrap();
    assert_eq!(store.claim_cursor("hook", b, HOUR).await.unwrap(), None);
    store.release_cursor("hook", a).await.unwrap();
    assert_eq!(
        store
            .claim_cursor("hook", b, Duration::from_millis(300))
            .await
            .unwrap()
            .unwrap()
            .position,
        7
    );
    // A lease that ran out, by the database clock, may be taken over.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!store.advance_cursor("hook", b, 8).await.unwrap());
    assert!(store.claim_cursor("hook", a, HOUR).await.unwrap().is_some());
    store.remove_cursor("hook").await.unwrap();
    store.remove_cursor("hook").await.unwrap();
    assert_eq!(
        store
            .claim_cursor("hook", b, HOUR)
            .await
            .unwrap()
            .unwrap()
            .position,
        0
    );
    for bad in ["", "a\nb"] {
        let e = store.claim_cursor(bad, a, HOUR).await.unwrap_err();
        assert_eq!(e.code(), "INVALID_INPUT");
    }
}

/// Retention prunes old entries, never above a cursor, and a reader that
/// fell behind the pruned horizon hears EVENTS_PRUNED.
#[sqlx::test(migrations = false)]
async fn retention_prunes_old_entries_but_not_what_a_cursor_needs(pool: PgPool) {
    let keep = Duration::from_secs(1);
    let store = PgStore::builder()
        .event_retention(keep)
        .build(pool.clone())
        .await
        .unwrap();
    let drop_id = drop_of(&store, 100, HOUR).await;
    for i in 0..5 {
        store
            .reserve(drop_id, &user(&format!("user{i}")))
            .await
            .unwrap();
    }
    let all = read_all(&store, 0).await;
    assert_eq!(all.len(), 6);
    let pin = all[2].seq;
    let holder = Uuid::new_v4();
    store.claim_cursor("slow", holder, HOUR).await.unwrap();
    assert!(store.advance_cursor("slow", holder, pin).await.unwrap());
    tokio::time::sleep(keep + Duration::from_millis(500)).await;
    // A store's first sweep prunes (then at most once a minute).
    store.expire_due(10).await.unwrap();
    match store.events_after(0, 10).await {
        Err(DropError::EventsPruned { after, oldest }) => {
            assert_eq!((after, oldest), (0, all[3].seq));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.drop_history(drop_id, 0, 10).await,
        Err(DropError::EventsPruned { .. })
    ));
    assert_eq!(store.events_after(pin, 10).await.unwrap(), all[3..]);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM dropkit_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 3, "the pruned rows are deleted");
    // A new cursor starts at the horizon.
    assert_eq!(
        store
            .claim_cursor("new", holder, HOUR)
            .await
            .unwrap()
            .unwrap()
            .position,
        pin
    );
    store.remove_cursor("new").await.unwrap();

    // Without cursors everything old goes; the head stays where it was.
    store.remove_cursor("slow").await.unwrap();
    let again = PgStore::builder()
        .event_retention(keep)
        .build(pool.clone())
        .await
        .unwrap();
    again.expire_due(10).await.unwrap();
    let head = all.last().unwrap().seq;
    assert_eq!(again.log_head().await.unwrap(), head);
    match again.events_after(pin, 10).await {
        Err(DropError::EventsPruned { after, oldest }) => {
            assert_eq!((after, oldest), (pin, head + 1));
        }
        other => panic!("{other:?}"),
    }
    assert!(again.events_after(head, 10).await.unwrap().is_empty());
    // New entries go on after the horizon.
    again.reserve(drop_id, &user("late")).await.unwrap();
    let late = again.events_after(head, 10).await.unwrap();
    assert_eq!(kinds(&late), ["holdCreated"]);
    assert!(late[0].seq > head);
    let _: DropId = drop_id;
}

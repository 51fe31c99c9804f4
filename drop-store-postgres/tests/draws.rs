//! Draw drops across instances on one database: runners racing at
//! `drawAt`, an instance killed mid-draw, entries racing the draw, and
//! entering beside a reserve storm's lock.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{assert_invariants, store_on, user};
use drop_core::{
    Buyer, DropError, DropId, DropState, InventoryStore, Money, NewDrop, NewVariant, Receipt,
    ReserveRequest, verify_draw,
};
use drop_store_postgres::PgStore;
use futures::future::join_all;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// How long a wait in these tests may take before it counts as stuck (a
/// liveness guard, not a timing assert: nothing here is that slow).
const STUCK: Duration = Duration::from_secs(60);

async fn database_now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A draw drop of `units` units (one variant) drawing `lead` from now.
async fn draw_drop(store: &PgStore, units: u32, lead: chrono::Duration) -> DropState {
    let at = database_now(store.pool()).await + lead;
    store
        .create_drop(
            NewDrop::with_variants(
                "Draw",
                Money::from_minor(100).unwrap(),
                [NewVariant::new("Standard", units)],
            )
            .hold(Duration::from_secs(3600))
            .draw_at(at),
        )
        .await
        .unwrap()
}

/// Sleeps until the database's clock has passed `at`.
async fn sleep_past(pool: &PgPool, at: DateTime<Utc>) {
    loop {
        let now = database_now(pool).await;
        if now > at {
            return;
        }
        let left = (at - now).to_std().unwrap_or_default();
        tokio::time::sleep(left + Duration::from_millis(20)).await;
    }
}

/// Puts `n` entries in the drop straight into the table (one statement),
/// with receipts `md5(tag || i)`: the draws below care about how many
/// entries there are, not how they came.
async fn bulk_entries(pool: &PgPool, drop: &DropState, n: i32, tag: &str) {
    sqlx::query(
        "INSERT INTO dropkit_entries (drop_id, buyer_id, display_name, variant_id, receipt, \
                                      entered_at) \
         SELECT $1, $4 || i, 'bulk_buyer', $2, decode(md5($4 || i), 'hex'), clock_timestamp() \
           FROM generate_series(1, $3) AS i",
    )
    .bind(drop.drop.id.as_uuid())
    .bind(drop.variants[0].id.as_uuid())
    .bind(n)
    .bind(tag)
    .execute(pool)
    .await
    .unwrap();
}

async fn count(pool: &PgPool, sql: &str, drop_id: DropId) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(drop_id.as_uuid())
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The drop's draw verifies from what it published alone, and its rows
/// agree: one offered hold per winner, the others in line, one
/// drawCompleted entry in the log.
async fn assert_drawn_once(store: &PgStore, drop_id: DropId, entries: usize, units: usize) {
    let status = store.draw_status(drop_id).await.unwrap();
    let published = status.published.expect("the draw is published");
    assert_eq!(published.entries.len(), entries);
    let result = verify_draw(&published).expect("the published draw verifies");
    let winners: usize = result.variants.iter().map(|v| v.winners.len()).sum();
    assert_eq!(winners, units.min(entries));
    let pool = store.pool();
    let holds = count(
        pool,
        "SELECT count(*) FROM dropkit_reservations WHERE drop_id = $1 AND offered",
        drop_id,
    )
    .await;
    assert_eq!(holds as usize, winners, "one offered hold per winner");
    let waiting = count(
        pool,
        "SELECT count(*) FROM dropkit_waitlist WHERE drop_id = $1",
        drop_id,
    )
    .await;
    assert_eq!(waiting as usize, entries - winners, "the others wait");
    let logged = count(
        pool,
        "SELECT count(*) FROM dropkit_events WHERE drop_id = $1 AND kind = 'drawCompleted'",
        drop_id,
    )
    .await;
    assert_eq!(logged, 1, "drawn once");
    assert_invariants(store).await;
}

/// Two instances call `run_draw` together at `drawAt`: exactly one draws.
#[sqlx::test(migrations = false)]
async fn two_instances_at_draw_time_draw_once(pool: PgPool) {
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let d = draw_drop(&a, 3, chrono::Duration::seconds(1)).await;
    let drop_id = d.drop.id;
    for i in 0..10 {
        a.enter_draw(drop_id, &user(&format!("buyer{i}")), None)
            .await
            .unwrap();
    }
    sleep_past(a.pool(), d.drop.draw_at.unwrap()).await;
    let (x, y) = tokio::join!(a.run_draw(drop_id, None), b.run_draw(drop_id, None));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(
        [x.is_some(), y.is_some()].iter().filter(|s| **s).count(),
        1,
        "exactly one instance drew: {x:?} {y:?}"
    );
    let summary = x.or(y).unwrap();
    assert_eq!(
        (summary.entries, summary.winners, summary.waiting),
        (10, 3, 7)
    );
    assert_drawn_once(&a, drop_id, 10, 3).await;
    // Both agree afterwards: nothing more to draw.
    assert_eq!(a.run_draw(drop_id, None).await.unwrap(), None);
    assert_eq!(b.run_draw(drop_id, None).await.unwrap(), None);
    a.close().await;
    b.close().await;
}

/// An instance killed in the middle of a draw of many entries draws
/// nothing; another instance then draws exactly once, and the draw
/// verifies.
#[sqlx::test(migrations = false)]
async fn an_instance_killed_mid_draw_leaves_the_draw_to_another(pool: PgPool) {
    const ENTRIES: i32 = 50_000;
    // Instance A's connections are named, so the test can find its
    // backend; it does not retry, so its call ends with the kill.
    let options = (*pool.connect_options())
        .clone()
        .application_name("dropkit_draw_a");
    let a_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap();
    let a = PgStore::builder()
        .retries(0)
        .listen(false)
        .build(a_pool)
        .await
        .unwrap();
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let d = draw_drop(&b, 100, chrono::Duration::seconds(1)).await;
    let drop_id = d.drop.id;
    bulk_entries(&pool, &d, ENTRIES, "k").await;
    sleep_past(&pool, d.drop.draw_at.unwrap()).await;

    // The variant row, held from outside: A's draw takes the drop's row,
    // reads and ranks every entry, writes the entries, and then stops at
    // the variant's counters, its transaction open.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dropkit_variants WHERE drop_id = $1 FOR NO KEY UPDATE")
        .bind(drop_id.as_uuid())
        .execute(&mut *blocker)
        .await
        .unwrap();
    let a_draw = {
        let a = a.clone();
        tokio::spawn(async move { a.run_draw(drop_id, None).await })
    };
    let pid: i32 = tokio::time::timeout(STUCK, async {
        loop {
            let waiting: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity \
                  WHERE application_name = 'dropkit_draw_a' AND wait_event_type = 'Lock' \
                    AND query LIKE 'UPDATE dropkit_variants%'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap();
            if let Some(pid) = waiting {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("instance A's draw reaches the variant row");
    // A holds the drop row FOR UPDATE now: B's draw would wait for it.
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
          WHERE a.application_name = 'dropkit_draw_a' AND l.locktype = 'transactionid' \
            AND l.mode = 'ExclusiveLock' AND l.granted",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(holders >= 1, "A's draw is a transaction in flight");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(killed);
    blocker.rollback().await.unwrap();
    let a_result = a_draw.await.unwrap();
    assert!(
        a_result.is_err(),
        "A's draw died with its backend: {a_result:?}"
    );
    // Nothing of A's draw is left.
    let drawn_at: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT drawn_at FROM dropkit_drops WHERE id = $1")
            .bind(drop_id.as_uuid())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(drawn_at, None, "A's draw rolled back");
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM dropkit_entries WHERE drop_id = $1 AND outcome IS NOT NULL",
            drop_id
        )
        .await,
        0
    );

    let summary = b.run_draw(drop_id, None).await.unwrap().expect("B draws");
    assert_eq!(
        (summary.entries, summary.winners, summary.waiting),
        (ENTRIES as u32, 100, ENTRIES as u32 - 100)
    );
    assert_eq!(b.run_draw(drop_id, None).await.unwrap(), None);
    assert_drawn_once(&b, drop_id, ENTRIES as usize, 100).await;
    a.close().await;
    b.close().await;
}

/// Entries sent right up to `drawAt` while a runner polls: every entry
/// answered `Ok` is in the published list, and every other one was
/// refused `ENTRIES_CLOSED`; none is lost.
#[sqlx::test(migrations = false)]
async fn entries_racing_the_draw_are_drawn_or_refused(pool: PgPool) {
    let a = store_on(&pool, 8, PgStore::builder()).await;
    let b = store_on(&pool, 8, PgStore::builder()).await;
    let d = draw_drop(&a, 5, chrono::Duration::milliseconds(1500)).await;
    let drop_id = d.drop.id;
    let draw_at = d.drop.draw_at.unwrap();
    // Eight entrants per instance, each entering new buyers one after
    // another until entries close.
    let entrants = (0..16).map(|t| {
        let store = if t % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0.. {
                let buyer = user(&format!("racer_{t}_{i}"));
                match store.enter_draw(drop_id, &buyer, None).await {
                    Ok(entry) => {
                        assert!(entry.changed);
                        accepted.push(entry.value.receipt);
                    }
                    Err(DropError::EntriesClosed { .. }) => return accepted,
                    Err(e) => panic!("{e:?}"),
                }
            }
            accepted
        })
    });
    let runner = {
        let b = b.clone();
        tokio::spawn(async move {
            loop {
                if let Some(summary) = b.run_draw(drop_id, None).await.unwrap() {
                    return summary;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let accepted: Vec<Receipt> = join_all(entrants)
        .await
        .into_iter()
        .flat_map(|r| r.unwrap())
        .collect();
    let summary = tokio::time::timeout(STUCK, runner).await.unwrap().unwrap();
    assert!(summary.drawn_at >= draw_at);
    let published = a.draw_status(drop_id).await.unwrap().published.unwrap();
    let listed: HashSet<Receipt> = published.entries.iter().map(|e| e.receipt).collect();
    let accepted_set: HashSet<Receipt> = accepted.iter().copied().collect();
    assert_eq!(accepted_set.len(), accepted.len(), "receipts are unique");
    assert_eq!(
        listed, accepted_set,
        "every accepted entry is drawn, none else"
    );
    assert!(!accepted.is_empty());
    assert_drawn_once(&a, drop_id, accepted.len(), 5).await;
    a.close().await;
    b.close().await;
}

/// Entering takes no drop row lock: entries go through while another
/// transaction holds the drop row as every reserve does
/// (`FOR NO KEY UPDATE`), and a reserve queued behind that transaction
/// stays queued meanwhile.
#[sqlx::test(migrations = false)]
async fn entering_does_not_wait_for_the_drop_row_lock(pool: PgPool) {
    let store = store_on(&pool, 8, PgStore::builder()).await;
    let d = draw_drop(&store, 3, chrono::Duration::seconds(3600)).await;
    let drop_id = d.drop.id;
    let mut storm = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR NO KEY UPDATE")
        .bind(drop_id.as_uuid())
        .execute(&mut *storm)
        .await
        .unwrap();
    // A pause must wait for the lock: proof that it is held.
    let pause = {
        let store = store.clone();
        tokio::spawn(async move { store.set_paused(drop_id, true, None).await })
    };
    let entries = (0..20).map(|i| {
        let store = store.clone();
        async move {
            store
                .enter_draw(drop_id, &user(&format!("calm{i}")), None)
                .await
        }
    });
    let entered = tokio::time::timeout(STUCK, join_all(entries))
        .await
        .expect("entries do not wait for the drop row's lock");
    for e in entered {
        assert!(e.unwrap().changed);
    }
    assert!(!pause.is_finished(), "the pause waits for the lock");
    storm.commit().await.unwrap();
    pause.await.unwrap().unwrap();
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM dropkit_entries WHERE drop_id = $1",
            drop_id
        )
        .await,
        20
    );
    store.close().await;
}

/// Before the draw a reserve and a join are refused `DRAW_ONLY` on both
/// paths (group commit on and off); after it the drop sells first come.
#[sqlx::test(migrations = false)]
async fn reserves_and_joins_wait_for_the_draw_on_both_paths(pool: PgPool) {
    let batched = store_on(&pool, 4, PgStore::builder()).await;
    let unbatched = store_on(&pool, 4, PgStore::builder().group_commit(false)).await;
    let d = draw_drop(&batched, 2, chrono::Duration::seconds(1)).await;
    let drop_id = d.drop.id;
    batched
        .enter_draw(drop_id, &user("winner"), None)
        .await
        .unwrap();
    for store in [&batched, &unbatched] {
        // Several at once, so the batched path really batches.
        let buyers: Vec<Buyer> = (0..4).map(|i| user(&format!("early{i}"))).collect();
        let reserves = join_all(buyers.iter().map(|b| store.reserve(drop_id, b))).await;
        for r in reserves {
            assert!(matches!(r, Err(DropError::DrawOnly { .. })), "{r:?}");
        }
        let join = store
            .join_waitlist(drop_id, &user("early_join"), ReserveRequest::new())
            .await;
        assert!(matches!(join, Err(DropError::DrawOnly { .. })), "{join:?}");
    }
    sleep_past(batched.pool(), d.drop.draw_at.unwrap()).await;
    let summary = unbatched.run_draw(drop_id, None).await.unwrap().unwrap();
    assert_eq!((summary.winners, summary.waiting), (1, 0));
    // One unit no entry won: on open sale, to either path.
    let first = batched.reserve(drop_id, &user("after1")).await.unwrap();
    assert!(first.created);
    let second = unbatched.reserve(drop_id, &user("after2")).await;
    assert!(
        matches!(second, Err(DropError::OutOfStock { .. })),
        "{second:?}"
    );
    assert_invariants(&batched).await;
    batched.close().await;
    unbatched.close().await;
}

/// A drop made with a seeded random source keeps that seed: its hash is
/// shown from creation, and the draw reveals it.
#[sqlx::test(migrations = false)]
async fn the_seed_comes_from_the_configured_source(pool: PgPool) {
    let random = Arc::new(drop_core::SeededRandom::new("pg-draws"));
    let expected = drop_core::SeededRandom::new("pg-draws");
    let store = store_on(&pool, 4, PgStore::builder().draw_random(random)).await;
    let d = draw_drop(&store, 1, chrono::Duration::seconds(1)).await;
    let seed = drop_core::DrawRandom::seed(&expected);
    let status = store.draw_status(d.drop.id).await.unwrap();
    assert_eq!(status.seed_hash, seed.hash());
    let entry = store
        .enter_draw(d.drop.id, &user("only"), None)
        .await
        .unwrap();
    assert_eq!(
        entry.value.receipt,
        drop_core::DrawRandom::receipt(&expected)
    );
    sleep_past(store.pool(), d.drop.draw_at.unwrap()).await;
    store.run_draw(d.drop.id, None).await.unwrap().unwrap();
    let published = store
        .draw_status(d.drop.id)
        .await
        .unwrap()
        .published
        .unwrap();
    assert_eq!(published.seed, seed);
    store.close().await;
}

/// One buyer entering many times at once through two instances (a
/// double-click, a retry racing its original): one entry is made, and
/// every call answers it, with `changed` on exactly one. Calls of one
/// batch whose entry another instance committed after the batch's
/// snapshot read it afresh; several rounds make that interleaving likely.
#[sqlx::test(migrations = false)]
async fn one_buyer_entering_through_two_instances_gets_one_entry(pool: PgPool) {
    let a = store_on(&pool, 4, PgStore::builder()).await;
    let b = store_on(&pool, 4, PgStore::builder()).await;
    let d = draw_drop(&a, 3, chrono::Duration::hours(1)).await;
    let drop_id = d.drop.id;
    for round in 0..10 {
        let buyer = user(&format!("twice_{round}"));
        let calls = (0..16).map(|i| {
            let store = if i % 2 == 0 { &a } else { &b };
            let buyer = buyer.clone();
            async move { store.enter_draw(drop_id, &buyer, None).await }
        });
        let answers: Vec<_> = join_all(calls)
            .await
            .into_iter()
            .map(|r| r.expect("every call answers"))
            .collect();
        let receipts: HashSet<Receipt> = answers.iter().map(|a| a.value.receipt).collect();
        assert_eq!(receipts.len(), 1, "one entry: {answers:?}");
        assert_eq!(
            answers.iter().filter(|a| a.changed).count(),
            1,
            "exactly one call made it: {answers:?}"
        );
    }
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM dropkit_entries WHERE drop_id = $1",
            drop_id
        )
        .await,
        10
    );
}

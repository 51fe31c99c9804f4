//! Plans must not depend on what the tables held when a connection first
//! ran a statement.
//!
//! PostgreSQL may cache a generic plan for a prepared statement (and for
//! every statement inside a PL/pgSQL function) after five runs and keep it
//! for the connection's life. A store whose connections served their first
//! requests on a new database (empty tables, where every plan looks free)
//! once kept a plan for the batched reserve that read every active hold
//! through `dropkit_reservations_due` on each batch. This test builds
//! exactly that situation and measures the plans' shape, not time: the
//! index and table tuples the store's own statements read per operation
//! once the tables have grown. A plan that walks the holds reads tens of
//! thousands of tuples per operation here; the bound below is far below
//! that and far above what lookups read, so the test cannot flake on a
//! loaded machine.
//!
//! The waiting list's functions (joining, leaving, a place, and serving a
//! line, which every freeing path calls) run every round too, on a line
//! of their own, beside a line as long as the other tables grown; so do a
//! draw's entries (entering, entering again, reading, withdrawing), on a
//! draw drop holding as many entries.
//!
//! Autovacuum is switched off for the tables, so the only statistics they
//! get are those the store itself takes: an index built on an empty table
//! is recorded as empty, which makes reading it whole look free, and the
//! store analyzes each table once it has changed enough without statistics
//! (`src/statistics.rs`). The test waits for that, then measures with
//! storm-sized batches.
//!
//! The reserve, purchase and release functions leave the choice between
//! custom and generic plans to PostgreSQL: each of their statements has
//! one sensible plan whatever the tables hold (lookups by key or by the
//! buyer's name, inserts). The second test holds them to generic plans
//! from the first call, so a statement whose generic plan depends on the
//! tables' history fails it even before PostgreSQL would pick that plan.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::store_on;
use drop_core::{
    Buyer, DropId, DropPatch, IdempotencyKey, InventoryStore, Money, NewDrop, ReserveRequest,
    Username,
};
use drop_store_postgres::PgStore;
use futures::future::join_all;
use sqlx::{Connection, PgConnection, PgPool};

/// Rows each big table gets before the measured phase.
const GROWN: i64 = 20_000;
/// Measured rounds; each runs every kind of operation.
const ROUNDS: usize = 10;
/// Concurrent reserves per round: with one pooled connection the first
/// runs alone and the rest queue behind it as one batch, so both the lone
/// and the batched reserve paths run every round.
const CALLERS: usize = 128;
/// Tuples the store's statements may read per operation, on average. A
/// lookup reads a handful; the trap read about 20,000 per statement here.
const MAX_TUPLES_PER_OP: f64 = 50.0;

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

/// Tuples read so far from dropkit's hold, purchase, idempotency, log,
/// waiting-list and draw-entry tables, by where they were read (table scans and each
/// index).
async fn tuples_read(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname || ' (seq)', coalesce(seq_tup_read, 0) FROM pg_stat_user_tables \
          WHERE relname IN ('dropkit_reservations', 'dropkit_purchases', 'dropkit_idempotency', \
                            'dropkit_events', 'dropkit_waitlist', 'dropkit_entries') \
         UNION ALL \
         SELECT indexrelname, coalesce(idx_tup_read, 0) FROM pg_stat_user_indexes \
          WHERE relname IN ('dropkit_reservations', 'dropkit_purchases', 'dropkit_idempotency', \
                            'dropkit_events', 'dropkit_waitlist', 'dropkit_entries')",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// One round of every operation a buyer's requests and the sweeper cause;
/// returns how many store calls it made.
async fn round(store: &PgStore, drop_id: DropId, round: usize, tag: &str) -> usize {
    let mut calls = 0;
    let users: Vec<Buyer> = (0..CALLERS)
        .map(|i| user(&format!("{tag}_{round}_{i}")))
        .collect();
    let holds = join_all(users.iter().map(|u| store.reserve(drop_id, u))).await;
    calls += CALLERS;
    let holds: Vec<_> = holds
        .into_iter()
        .map(|r| r.expect("reserve").reservation)
        .collect();
    // The same callers again: each gets its hold back unchanged.
    let again = join_all(users.iter().map(|u| store.reserve(drop_id, u))).await;
    calls += CALLERS;
    assert!(again.iter().all(|r| !r.as_ref().expect("reserve").created));

    // Two purchases at once (batched), one alone, one release.
    let bought = join_all([
        store.purchase(holds[0].id, &users[0].id),
        store.purchase(holds[1].id, &users[1].id),
    ])
    .await;
    bought.into_iter().for_each(|p| {
        p.expect("purchase");
    });
    store
        .purchase(holds[2].id, &users[2].id)
        .await
        .expect("purchase");
    store
        .release(holds[3].id, &users[3].id)
        .await
        .expect("release");
    calls += 4;

    // Keyed writes and their replays, purchase records, admin writes.
    let key = |n: usize| {
        IdempotencyKey::new(users[n].id.as_str(), format!("k{n}"), [7; 32]).expect("key")
    };
    for _ in 0..2 {
        let held = store
            .reserve_with(drop_id, &users[6], ReserveRequest::new(), Some(&key(6)))
            .await
            .expect("keyed reserve");
        assert_eq!(held.reservation.id, holds[6].id);
        let bought = store
            .purchase_with(holds[7].id, &users[7].id, Some(&key(7)))
            .await
            .expect("keyed purchase");
        assert_eq!(bought.purchase.reservation_id, holds[7].id);
    }
    let again = store
        .purchase(holds[0].id, &users[0].id)
        .await
        .expect("repeat");
    assert!(!again.created);
    store
        .get_purchase(again.purchase.id)
        .await
        .expect("purchase");
    store
        .buyer_purchases(&users[0].id, None, 10)
        .await
        .expect("purchases");
    store
        .cancel_purchase(again.purchase.id, None)
        .await
        .expect("cancel");
    store
        .idempotency_record(users[6].id.as_str(), "k6")
        .await
        .expect("record");
    store
        .update_drop(
            drop_id,
            &DropPatch::new().name(format!("Hot {tag} {round}")),
            None,
        )
        .await
        .expect("edit");
    calls += 10;

    store.get_reservation(holds[4].id).await.expect("hold");
    assert!(
        store
            .active_hold(drop_id, &users[5].id)
            .await
            .unwrap()
            .is_some()
    );
    store.top_purchasers(drop_id, 3).await.unwrap();
    store.get_drop(drop_id).await.unwrap();
    store.list_drops().await.unwrap();
    store.overview(Some(&users[5].id)).await.unwrap();
    store.expire_due(500).await.unwrap();
    store.next_expiry().await.unwrap();
    // Following the log from near its head, as a consumer does: each read
    // returns a handful of entries and must read no more than those.
    let head = store.log_head().await.unwrap();
    let recent = store
        .events_after(head.saturating_sub(3), 100)
        .await
        .unwrap();
    assert!(!recent.is_empty());
    store
        .drop_history(drop_id, head.saturating_sub(3), 100)
        .await
        .unwrap();
    calls + 11 + line_round(store, round, tag).await
}

/// One round of the waiting list on a drop of one unit: a holder, two
/// buyers in line, the hold given back (offered to the head), the other
/// buyer leaving, the offer given back (nobody waits: back on sale).
async fn line_round(store: &PgStore, round: usize, tag: &str) -> usize {
    let d = store
        .create_drop(
            NewDrop::new("Line", Money::from_minor(100).unwrap(), 1)
                .hold(Duration::from_secs(3600)),
        )
        .await
        .expect("line drop")
        .drop
        .id;
    let [holder, first, second] =
        ["h", "a", "b"].map(|who| user(&format!("{tag}_line_{round}_{who}")));
    let held = store
        .reserve(d, &holder)
        .await
        .expect("reserve")
        .reservation;
    for b in [&first, &second] {
        store
            .join_waitlist(d, b, ReserveRequest::new())
            .await
            .expect("join");
    }
    let place = store.waitlist_place(d, &second.id).await.unwrap();
    assert_eq!(place.map(|p| p.position), Some(2));
    store.release(held.id, &holder.id).await.expect("release");
    let offer = store
        .active_hold(d, &first.id)
        .await
        .unwrap()
        .expect("offered");
    assert!(offer.offered);
    store
        .leave_waitlist(d, &second.id)
        .await
        .unwrap()
        .expect("left");
    store.release(offer.id, &first.id).await.expect("release");
    9
}

/// One round of a draw's entries, on a draw drop far from its draw:
/// three buyers enter, one enters again, one reads their entry, one
/// withdraws.
async fn entry_round(store: &PgStore, raffle: DropId, round: usize, tag: &str) -> usize {
    let buyers = ["a", "b", "c"].map(|who| user(&format!("{tag}_entry_{round}_{who}")));
    for b in &buyers {
        let entered = store.enter_draw(raffle, b, None).await.expect("enter");
        assert!(entered.changed);
    }
    let again = store
        .enter_draw(raffle, &buyers[0], None)
        .await
        .expect("again");
    assert!(!again.changed);
    let entry = store.draw_entry(raffle, &buyers[1].id).await.unwrap();
    assert!(entry.is_some());
    let gone = store
        .withdraw_entry(raffle, &buyers[2].id)
        .await
        .expect("withdraw");
    assert!(gone.is_some());
    6
}

#[sqlx::test(migrations = false)]
async fn plans_made_on_empty_tables_stay_cheap_when_the_tables_grow(pool: PgPool) {
    cold_start(pool, None).await;
}

/// The write functions that take cached plans (all but the sweeper, which
/// plans each statement with its arguments), held to generic plans from
/// their first call: the plans PostgreSQL may choose to keep after five
/// calls on empty tables must be right on the grown ones too. A statement
/// whose generic plan depends on what the table held fails here.
#[sqlx::test(migrations = false)]
async fn generic_plans_made_on_empty_tables_stay_cheap_when_the_tables_grow(pool: PgPool) {
    cold_start(pool, Some("force_generic_plan")).await;
}

/// The cold start, with `plan_cache_mode` set to `plans` on the write
/// functions that leave it to PostgreSQL.
async fn cold_start(pool: PgPool, plans: Option<&str>) {
    PgStore::migrate(&pool).await.unwrap();
    if let Some(mode) = plans {
        for function in [
            "dropkit_reserve_units(uuid, text[], text[], uuid[], integer[], uuid[], text[], text[], bytea[])",
            "dropkit_purchase_units(uuid, uuid[], text[], uuid[], text[], text[], bytea[])",
            "dropkit_release(uuid, text)",
            "dropkit_reserve_logged(uuid, text[], text[], uuid[], integer[], uuid[], text[], text[], bytea[])",
            "dropkit_purchase_logged(uuid, uuid[], text[], uuid[], text[], text[], bytea[])",
            "dropkit_release_logged(uuid, text)",
            "dropkit_expire_due_logged(integer)",
            "dropkit_log_append(uuid[], text[], jsonb[])",
            "dropkit_log_prune(double precision, integer)",
            "dropkit_log_settle(bigint)",
            "dropkit_log_read(bigint, integer, uuid)",
            "dropkit_serve_line(uuid, timestamptz)",
            "dropkit_waitlist_join(uuid, text, text, uuid, integer, boolean)",
            "dropkit_waitlist_leave(uuid, text, boolean)",
            "dropkit_waitlist_place(uuid, text)",
            "dropkit_log_steps(uuid[], dropkit_line_step[])",
            "dropkit_withdraw_entry(uuid, text)",
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "ALTER FUNCTION {function} SET plan_cache_mode = {mode}"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    // One pooled connection: every statement below runs on the connection
    // that first ran it while the tables were empty.
    let store = store_on(&pool, 1, PgStore::builder().listen(false)).await;
    sqlx::raw_sql(
        "ALTER TABLE dropkit_reservations SET (autovacuum_enabled = false); \
         ALTER TABLE dropkit_purchases SET (autovacuum_enabled = false); \
         ALTER TABLE dropkit_idempotency SET (autovacuum_enabled = false); \
         ALTER TABLE dropkit_variants SET (autovacuum_enabled = false); \
         ALTER TABLE dropkit_drops SET (autovacuum_enabled = false); \
         ALTER TABLE dropkit_events SET (autovacuum_enabled = false); \
         ALTER TABLE dropkit_entries SET (autovacuum_enabled = false);",
    )
    .execute(&pool)
    .await
    .unwrap();
    let drop_id = store
        .create_drop(
            NewDrop::new("Hot", Money::from_minor(100).unwrap(), 1_000_000)
                .hold(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .drop
        .id;

    // A draw drop whose draw is a day away: its entries run every round.
    let raffle = store
        .create_drop(
            NewDrop::new("Raffle", Money::from_minor(100).unwrap(), 10)
                .draw_at(chrono::Utc::now() + chrono::Duration::days(1)),
        )
        .await
        .unwrap()
        .drop
        .id;

    // Cold: more than five runs of every statement on empty tables, so
    // PostgreSQL has made (and would keep) its generic plans.
    for r in 0..8 {
        round(&store, drop_id, r, "cold").await;
        entry_round(&store, raffle, r, "cold").await;
    }

    // The flash sale happens elsewhere: the tables fill up. (Through a
    // connection of our own whose statistics are flushed before measuring.)
    let mut observer = PgConnection::connect_with(&pool.connect_options())
        .await
        .unwrap();
    sqlx::query(
        "WITH v AS (SELECT id FROM dropkit_variants WHERE drop_id = $1), \
         h AS ( \
           INSERT INTO dropkit_reservations \
                  (id, drop_id, variant_id, buyer_id, display_name, status, created_at, expires_at) \
           SELECT gen_random_uuid(), $1, v.id, 'grown_' || g, 'grown_' || g, \
                  CASE WHEN g % 2 = 0 THEN 'active' ELSE 'purchased' END, \
                  now(), now() + interval '1 hour' \
             FROM generate_series(1, $2 * 2) g, v \
           RETURNING id, variant_id, buyer_id, display_name, status) \
         INSERT INTO dropkit_purchases \
                (id, reservation_id, drop_id, variant_id, buyer_id, display_name, amount_minor, \
                 created_at) \
         SELECT gen_random_uuid(), h.id, $1, h.variant_id, h.buyer_id, h.display_name, 100, now() \
           FROM h WHERE h.status = 'purchased'",
    )
    .bind(drop_id.as_uuid())
    .bind(GROWN)
    .execute(&mut observer)
    .await
    .unwrap();
    for table in ["dropkit_drops", "dropkit_variants"] {
        let column = if table == "dropkit_drops" {
            "id"
        } else {
            "drop_id"
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET reserved = reserved + $2, sold = sold + $2 WHERE {column} = $1"
        )))
        .bind(drop_id.as_uuid())
        .bind(GROWN as i32)
        .execute(&mut observer)
        .await
        .unwrap();
    }
    // Other callers' idempotency records, as many.
    sqlx::query(
        "INSERT INTO dropkit_idempotency (caller, key, fingerprint, entity_kind, entity_id, created) \
         SELECT 'grown_' || g, 'k', decode(repeat('00', 32), 'hex'), 'drop', $1, true \
           FROM generate_series(1, $2) g",
    )
    .bind(drop_id.as_uuid())
    .bind(GROWN)
    .execute(&mut observer)
    .await
    .unwrap();
    // And the log, as long as the two tables together.
    sqlx::query(
        "INSERT INTO dropkit_events (seq, at, drop_id, kind, data) \
         SELECT nextval('dropkit_events_seq'), now() - interval '1 day', $1, 'holdReleased', \
                jsonb_build_object('type', 'holdReleased', 'reservationId', gen_random_uuid(), \
                                   'buyerId', 'grown_' || g, 'variantId', gen_random_uuid(), \
                                   'quantity', 1) \
           FROM generate_series(1, $2 * 2) g",
    )
    .bind(drop_id.as_uuid())
    .bind(GROWN)
    .execute(&mut observer)
    .await
    .unwrap();
    // And a line as long, on a drop of its own whose unit is set aside
    // for its head (who wants two).
    let crowd = store
        .create_drop(
            NewDrop::new("Crowd", Money::from_minor(100).unwrap(), 1)
                .max_per_buyer(2)
                .hold(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
        .drop
        .id;
    sqlx::query(
        "WITH v AS (UPDATE dropkit_variants SET reserved = 1, set_aside = 1, waitlist_length = $2 \
                     WHERE drop_id = $1 RETURNING id), \
              d AS (UPDATE dropkit_drops SET reserved = 1 WHERE id = $1) \
         INSERT INTO dropkit_waitlist (drop_id, variant_id, buyer_id, display_name, quantity, \
                                       joined_at) \
         SELECT $1, v.id, 'crowd_' || g, 'crowd_' || g, 2, now() \
           FROM generate_series(1, $2) g, v",
    )
    .bind(crowd.as_uuid())
    .bind(GROWN as i32)
    .execute(&mut observer)
    .await
    .unwrap();
    // And the raffle's entries, as many as the two tables together.
    sqlx::query(
        "INSERT INTO dropkit_entries (drop_id, buyer_id, display_name, variant_id, receipt, \
                                      entered_at) \
         SELECT $1, 'entrant_' || g, 'entrant_' || g, v.id, decode(md5('entrant_' || g), 'hex'), \
                now() \
           FROM generate_series(1, $2 * 2) g, dropkit_variants v WHERE v.drop_id = $1",
    )
    .bind(raffle.as_uuid())
    .bind(GROWN)
    .execute(&mut observer)
    .await
    .unwrap();
    sqlx::query("SELECT pg_stat_force_next_flush()")
        .execute(&mut observer)
        .await
        .unwrap();

    // The store notices tables that grew without statistics and analyzes
    // them (autovacuum, switched off here, would take up to a minute).
    let mut analyzed = false;
    for _ in 0..600 {
        let pending: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_user_tables \
              WHERE relname IN ('dropkit_reservations', 'dropkit_purchases', 'dropkit_waitlist') \
                AND last_analyze IS NULL AND last_autoanalyze IS NULL",
        )
        .fetch_one(&mut observer)
        .await
        .unwrap();
        if pending == 0 {
            analyzed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(analyzed, "the store never analyzed the grown tables");

    let before = tuples_read(&mut observer).await;
    let mut calls = 0;
    for r in 0..ROUNDS {
        calls += round(&store, drop_id, r, "warm").await;
        calls += entry_round(&store, raffle, r, "warm").await;
    }
    // A backend reports its statistics when it exits: close the store's
    // pool and wait until its one connection is gone.
    let backend: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store.close().await;
    store.pool().close().await;
    let mut gone = false;
    for _ in 0..200 {
        let alive: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
                .bind(backend)
                .fetch_one(&mut observer)
                .await
                .unwrap();
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the store's connection did not close");
    // Statistics of a backend that just exited may land a moment later.
    let mut after = tuples_read(&mut observer).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = tuples_read(&mut observer).await;
        if now == after {
            break;
        }
        after = now;
    }

    // The counters still match the rows (checked by a store of its own,
    // after measuring: the check reads whole tables).
    let checker = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .unwrap();
    checker.verify_invariants().await.expect("invariants");

    let read: BTreeMap<&String, i64> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0)))
        .collect();
    let total: i64 = read.values().sum();
    let per_op = total as f64 / calls as f64;
    println!("{per_op:.1} tuples read per operation over {calls} operations: {read:?}");
    assert!(
        per_op <= MAX_TUPLES_PER_OP,
        "{per_op:.0} tuples read per operation over {calls} operations on tables of \
         {GROWN} active holds and {GROWN} purchases (at most {MAX_TUPLES_PER_OP}): \
         a plan made on empty tables is scanning them. By source: {read:#?}"
    );
    // Paths that run a few times per round (a batch of callers who all
    // hold already, say) are diluted in the average: a whole-table read on
    // one of them must fail the test all the same. No statement of the
    // store reads the hold or purchase table whole.
    let scanned: i64 = read
        .iter()
        .filter(|(source, _)| source.ends_with("(seq)"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        scanned, 0,
        "a statement read the hold or purchase table whole; by source: {read:#?}"
    );
}

//! Expiry on PostgreSQL, against the reserves it must keep up with,
//! measured in the same run on the same database:
//!
//! 1. **Sweep rate vs reserve rate on one hot drop.** In interleaved rounds:
//!    a storm of reserves through group commit (256 tasks) on a drop whose
//!    holds last 1 s; then, once they are all due, sweeping them the way
//!    the [`ExpiryScheduler`] does (`expire_due(500)` until one comes back
//!    short). The figure is holds swept per second over holds reserved per
//!    second (target ≥ 0.8).
//! 2. **Another drop's lateness behind a backlog.** One drop has 200,000
//!    overdue holds (a storm nobody bought); the real [`ExpiryScheduler`]
//!    starts draining them while, on another drop, holds of 1 s are taken in
//!    waves. For each of those, the lateness is the time from its
//!    `expiresAt` to its `HoldExpired` event on the store's event stream
//!    (target ≤ 0.5 s). WebSocket clients get it through the hub, which
//!    adds at most its coalescing tick (≈ 50–100 ms) on top.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench expiry
//! ```
//!
//! `BENCH_SECS` sets the seconds of reserves per round (default 2), in four
//! rounds. Without `--bench` (as `cargo test` runs it) it is a smoke run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use drop_core::{
    Buyer, DropEvent, DropId, ExpiryScheduler, InventoryStore, Money, NewDrop, ReservationId,
    Username,
};
use drop_store_postgres::PgStore;
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const POOL: u32 = 64;
const TASKS: usize = 256;
const ROUNDS: u32 = 4;
const SWEEP_BATCH: usize = 500;
const HOLD: Duration = Duration::from_secs(1);

/// Reserves on `drop_id` from `TASKS` tasks for `secs`; returns how many.
async fn storm(store: &PgStore, drop_id: DropId, secs: Duration) -> usize {
    let until = Instant::now() + secs;
    let tag = Uuid::new_v4().simple().to_string();
    let handles: Vec<_> = (0..TASKS)
        .map(|t| {
            let store = store.clone();
            let tag = tag.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < until {
                    let user = Buyer::claimed(
                        Username::parse(&format!("b{}_{t}_{n}", &tag[..8])).expect("name"),
                    );
                    store.reserve(drop_id, &user).await.expect("reserve");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.expect("storm task");
    }
    total
}

/// Sweeps as the scheduler does until nothing is due; returns how many.
async fn sweep_all(store: &PgStore) -> usize {
    let mut total = 0;
    loop {
        let n = store.expire_due(SWEEP_BATCH).await.expect("sweep");
        total += n;
        if n < SWEEP_BATCH {
            return total;
        }
    }
}

/// Part 1: holds swept per second over holds reserved per second.
async fn sweep_vs_reserve(store: &PgStore, secs: Duration) -> (f64, f64) {
    let drop_id = store
        .create_drop(NewDrop::new("Hot", Money::ZERO, 1_000_000).hold(HOLD))
        .await
        .expect("create drop")
        .drop
        .id;
    let (mut reserved, mut reserve_time) = (0usize, Duration::ZERO);
    let (mut swept, mut sweep_time) = (0usize, Duration::ZERO);
    for round in 0..ROUNDS {
        let start = Instant::now();
        let n = storm(store, drop_id, secs).await;
        let reserving = start.elapsed();
        reserve_time += reserving;
        reserved += n;
        // Every hold of the round is due a hold's length after the storm.
        tokio::time::sleep(HOLD + Duration::from_millis(100)).await;
        let start = Instant::now();
        let m = sweep_all(store).await;
        let took = start.elapsed();
        sweep_time += took;
        swept += m;
        println!(
            "  round {round}: reserved {n} in {:.2} s, swept {m} in {:.2} s",
            reserving.as_secs_f64(),
            took.as_secs_f64()
        );
        assert_eq!(n, m, "every hold of the round swept");
    }
    (
        reserved as f64 / reserve_time.as_secs_f64(),
        swept as f64 / sweep_time.as_secs_f64(),
    )
}

/// Gives `drop_id` `n` holds that ran out a minute ago.
async fn backlog(pool: &PgPool, drop_id: DropId, n: i32) {
    let mut tx = pool.begin().await.expect("begin");
    sqlx::query(
        "INSERT INTO dropkit_reservations \
                (id, drop_id, buyer_id, display_name, status, created_at, expires_at) \
         SELECT gen_random_uuid(), $1, 'storm' || g, 'storm' || g, 'active', \
                now() - interval '2 minutes' + g * interval '1 microsecond', \
                now() - interval '1 minute' + g * interval '1 microsecond' \
           FROM generate_series(1, $2) g",
    )
    .bind(drop_id.as_uuid())
    .bind(n)
    .execute(&mut *tx)
    .await
    .expect("seed backlog");
    sqlx::query("UPDATE dropkit_drops SET reserved = reserved + $2 WHERE id = $1")
        .bind(drop_id.as_uuid())
        .bind(n)
        .execute(&mut *tx)
        .await
        .expect("seed counter");
    tx.commit().await.expect("commit");
    sqlx::query("ANALYZE dropkit_reservations")
        .execute(pool)
        .await
        .expect("analyze");
}

/// Part 2: lateness of another drop's expiries while a backlog drains.
/// Returns (lateness per hold, backlog left just after the last was due).
async fn lateness_behind_backlog(
    store: &PgStore,
    pool: &PgPool,
    backlog_holds: i32,
    waves: usize,
) -> (Vec<Duration>, i32) {
    let big = store
        .create_drop(NewDrop::new("Aftermath", Money::ZERO, 1_000_000).hold(HOLD))
        .await
        .expect("create drop")
        .drop
        .id;
    let small = store
        .create_drop(NewDrop::new("Other", Money::ZERO, 10_000).hold(HOLD))
        .await
        .expect("create drop")
        .drop
        .id;
    backlog(pool, big, backlog_holds).await;

    // Every HoldExpired is timed as it arrives, from before the first hold
    // is taken; the other drop's are picked out afterwards.
    let mut events = store.subscribe();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = tokio::spawn(async move {
        let mut heard: HashMap<ReservationId, DateTime<Utc>> = HashMap::new();
        let mut done = done_rx;
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(DropEvent::HoldExpired { drop_id, reservation_id })) if drop_id == small => {
                        heard.insert(reservation_id, Utc::now());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(lost)) => panic!("events lost: {lost}"),
                    None => return heard,
                },
                _ = &mut done => return heard,
            }
        }
    });
    let cancel = CancellationToken::new();
    let scheduler = ExpiryScheduler::new(Arc::new(store.clone())).spawn(cancel.clone());

    // Holds on the other drop, ten per wave, a wave every 200 ms.
    let mut due: HashMap<ReservationId, DateTime<Utc>> = HashMap::new();
    for wave in 0..waves {
        for i in 0..10 {
            let user = Buyer::claimed(Username::parse(&format!("w{wave}_{i}")).expect("name"));
            let hold = store
                .reserve(small, &user)
                .await
                .expect("reserve")
                .reservation;
            due.insert(hold.id, hold.expires_at);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Until the last is due, and a generous while after.
    let last = due.values().max().copied().expect("holds");
    let deadline = Instant::now() + (last - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep_until((deadline + Duration::from_millis(200)).into()).await;
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_reservations WHERE drop_id = $1 AND status = 'active'",
    )
    .bind(big.as_uuid())
    .fetch_one(pool)
    .await
    .expect("count");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let _ = done_tx.send(());
    let heard = listener.await.expect("listener");
    let late: Vec<Duration> = due
        .iter()
        .map(|(id, at)| {
            let heard = heard
                .get(id)
                .unwrap_or_else(|| panic!("hold {id} never expired"));
            (*heard - *at).to_std().unwrap_or(Duration::ZERO)
        })
        .collect();
    cancel.cancel();
    scheduler.await;
    (late, i32::try_from(left).unwrap_or(i32::MAX))
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64);
    let (secs, backlog_holds, waves) = if smoke {
        (Duration::from_millis(200), 2_000, 2)
    } else {
        (secs, 200_000, 10)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let admin_opts: PgConnectOptions = url.parse().expect("DATABASE_URL");
        let db = format!("dropkit_expiry_bench_{}", std::process::id());
        let mut admin = admin_opts.connect().await.expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .expect("create bench database");
        let pool = PgPoolOptions::new()
            .max_connections(POOL)
            .connect_with(admin_opts.clone().database(&db))
            .await
            .expect("bench pool");
        // Room for every event of the backlog: this bench reads each
        // HoldExpired (a hub would resync instead, on EventsLost).
        let listen = std::env::var("BENCH_LISTEN").map_or(true, |v| v != "0");
        let store = PgStore::builder()
            .event_capacity(1 << 20)
            .listen(listen)
            .build(pool.clone())
            .await
            .expect("store");
        println!(
            "PostgreSQL expiry bench: {} s of reserves per round, {ROUNDS} rounds, {TASKS} tasks, \
             pool of {POOL}{}",
            secs.as_secs_f64(),
            if smoke { " (smoke run)" } else { "" }
        );

        let only = std::env::var("BENCH_PART").ok();
        if only.as_deref() != Some("2") {
        println!("\n## 1. sweep rate vs group-commit reserve rate, one hot drop");
        let (reserve_rate, sweep_rate) = sweep_vs_reserve(&store, secs).await;
        let ratio = sweep_rate / reserve_rate;
        println!("  reserved: {reserve_rate:.0} holds/s (group commit, {TASKS} tasks)");
        println!("  swept:    {sweep_rate:.0} holds/s (expire_due({SWEEP_BATCH}) in a loop)");
        println!(
            "  swept / reserved: {ratio:.2} (target ≥ 0.8) — {}",
            if ratio >= 0.8 { "reached" } else { "NOT reached" }
        );
        }

        println!("\n## 2. another drop's expiries while {backlog_holds} overdue holds drain");
        let (mut late, left) = lateness_behind_backlog(&store, &pool, backlog_holds, waves).await;
        late.sort();
        let pct = |p: f64| late[((late.len() as f64 * p) as usize).min(late.len() - 1)];
        let worst = *late.last().expect("some holds");
        println!(
            "  {} holds: lateness p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (expiresAt → HoldExpired \
             on the store's event stream); backlog left 0.2 s after the last of them was due: {left}",
            late.len(),
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            worst.as_secs_f64() * 1e3,
        );
        println!(
            "  max lateness {:.3} s (target ≤ 0.5 s before the hub's ≤ 100 ms tick) — {}",
            worst.as_secs_f64(),
            if worst <= Duration::from_millis(500) {
                "reached"
            } else {
                "NOT reached"
            }
        );

        store.close().await;
        pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop bench database");
    });
}

//! Following the PostgreSQL store's event log during a storm: one follower
//! reads `events_after` after the highest number it has seen, as fast as
//! it can, while writers commit changes; it reports the follower's
//! throughput and its lag (the entry's `at`, taken by the database clock as
//! the entry is appended just before its commit, to the moment the
//! follower has it: commit → seen, plus the commit itself).
//!
//! Four phases, each `BENCH_SECS` long (default 10):
//!
//! 1. **real writes**: reserve + release loops (two entries each) of
//!    `BENCH_WRITERS` tasks (default 64) spread over two store instances
//!    (separate pools, group commit on) and eight drops, unpaced: the
//!    rate this machine reaches;
//! 2. **real + paced appends**: the same writers, plus appends straight
//!    through `dropkit_log_append` (one transaction every 10 ms) paced to
//!    make up what the writers of phase 1 fell short of `BENCH_RATE`
//!    (default 20,000 entries/s), when they did;
//! 3. **reserve storm**: what a drop's opening second looks like,
//!    `BENCH_STORM_WRITERS` tasks (default 256) over the two instances, each
//!    reserving one unit of one hot drop for a new buyer, again and again
//!    (one entry each), unpaced: group commit makes large batches, and the
//!    log takes entries far faster than in phase 1;
//! 4. **reserve storm + paced appends**: phase 3 topped up to `BENCH_RATE`
//!    as phase 2 tops up phase 1, when the storm fell short of it.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench log_follow
//! ```
//!
//! `BENCH_LOG=off` opens the writers' stores with `event_log(false)`: the
//! rate the same writers reach without the log (the follower then sees
//! only the paced appends).
//!
//! `BENCH_VARIANT_SQL=file.sql` applies the file to the bench database
//! after the migrations (a replaced `dropkit_log_append`, say), to compare
//! a change with the figures of a run without it.
//!
//! It creates its own database (`dropkit_bench_log_<pid>`), dropped at the
//! end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use drop_core::{Buyer, Change, DropId, InventoryStore, MAX_LOG_PAGE, Money, NewDrop, Username};
use drop_store_postgres::PgStore;
use hdrhistogram::Histogram;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

const INSTANCES: usize = 2;
const DROPS: usize = 8;
const POOL: u32 = 24;
/// How often the paced appender commits.
const TICK: Duration = Duration::from_millis(10);

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one phase measured.
struct Phase {
    written: u64,
    secs: f64,
    seen: u64,
    lag: Histogram<u64>,
    behind_at_end: u64,
}

/// Reserve + release loops until `stop`; entries written.
async fn writer(store: PgStore, drops: Vec<DropId>, t: usize, stop: Arc<AtomicBool>) -> u64 {
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let mut n = 0u64;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let drop_id = drops[(t + i as usize) % drops.len()];
        let buyer = Buyer::claimed(Username::parse(&format!("w{tag}_{t}_{i}")).expect("name"));
        let Ok(held) = store.reserve(drop_id, &buyer).await else {
            continue;
        };
        n += 1;
        if store.release(held.reservation.id, &buyer.id).await.is_ok() {
            n += 1;
        }
    }
    n
}

/// Reserves for new buyers on one drop until `stop`; entries written.
async fn stormer(store: PgStore, drop_id: DropId, t: usize, stop: Arc<AtomicBool>) -> u64 {
    let tag = &Uuid::new_v4().simple().to_string()[..8];
    let mut n = 0u64;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let buyer = Buyer::claimed(Username::parse(&format!("s{tag}_{t}_{i}")).expect("name"));
        if store.reserve(drop_id, &buyer).await.is_ok() {
            n += 1;
        }
    }
    n
}

/// What the writers of a phase do.
#[derive(Clone, Copy)]
enum Load {
    /// [`writer`]s over the eight drops.
    ReserveRelease,
    /// [`stormer`]s on one drop.
    Storm(DropId),
}

/// Appends `rate` entries per second, one transaction per [`TICK`].
async fn paced(pool: PgPool, drop_id: DropId, rate: u64, stop: Arc<AtomicBool>) -> u64 {
    let per_tick = (rate as f64 * TICK.as_secs_f64()).round().max(1.0) as usize;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let data: Vec<serde_json::Value> = (0..per_tick)
            .map(|_| {
                serde_json::to_value(Change::HoldReleased {
                    reservation_id: drop_core::ReservationId::new(),
                    buyer_id: drop_core::BuyerId::parse("paced").expect("id"),
                    variant_id: drop_core::VariantId::new(),
                    quantity: 1,
                })
                .expect("json")
            })
            .collect();
        sqlx::query("SELECT dropkit_log_append($1, $2, $3)")
            .bind(vec![drop_id.as_uuid(); per_tick])
            .bind(vec!["holdReleased"; per_tick])
            .bind(&data)
            .execute(&pool)
            .await
            .expect("append");
        n += per_tick as u64;
    }
    n
}

/// Follows the log from `from` until `stop`, then drains it: entries
/// seen, their lags in microseconds, and how many entries it was behind
/// when the writers stopped.
async fn follow(store: PgStore, from: u64, stop: Arc<AtomicBool>) -> (u64, Histogram<u64>, u64) {
    let mut lag = Histogram::<u64>::new(3).expect("histogram");
    let mut at = from;
    let mut seen = 0u64;
    let mut behind: Option<u64> = None;
    loop {
        if behind.is_none() && stop.load(Ordering::Relaxed) {
            // The writers have stopped: how far behind the follower is,
            // then it drains the rest.
            let head = store.log_head().await.expect("head");
            behind = Some(head.saturating_sub(at));
        }
        let page = store
            .events_after(at, MAX_LOG_PAGE)
            .await
            .expect("events_after");
        let now = Utc::now();
        for entry in &page {
            assert!(entry.seq > at, "the log went backwards");
            at = entry.seq;
            let us = (now - entry.at).num_microseconds().unwrap_or(0).max(0);
            lag.record(us as u64).expect("record");
        }
        seen += page.len() as u64;
        if page.is_empty() {
            if let Some(behind) = behind {
                return (seen, lag, behind);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn phase(
    stores: &[PgStore],
    pool: &PgPool,
    drops: &[DropId],
    load: Load,
    writers: usize,
    paced_rate: u64,
    secs: Duration,
) -> Phase {
    let stop = Arc::new(AtomicBool::new(false));
    let follow_stop = Arc::new(AtomicBool::new(false));
    let head = stores[0].log_head().await.expect("head");
    let follower = tokio::spawn(follow(stores[0].clone(), head, follow_stop.clone()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..writers {
        let store = stores[t % stores.len()].clone();
        tasks.push(match load {
            Load::ReserveRelease => tokio::spawn(writer(store, drops.to_vec(), t, stop.clone())),
            Load::Storm(hot) => tokio::spawn(stormer(store, hot, t, stop.clone())),
        });
    }
    if paced_rate > 0 {
        tasks.push(tokio::spawn(paced(
            pool.clone(),
            drops[0],
            paced_rate,
            stop.clone(),
        )));
    }
    tokio::time::sleep(secs).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for t in tasks {
        written += t.await.expect("writer");
    }
    let elapsed = start.elapsed().as_secs_f64();
    follow_stop.store(true, Ordering::Relaxed);
    let (seen, lag, behind_at_end) = follower.await.expect("follower");
    Phase {
        written,
        secs: elapsed,
        seen,
        lag,
        behind_at_end,
    }
}

/// One phase of `load`, reported as `name`; then, when its writers fell
/// short of `rate`, the same again with paced appends making up the rest.
#[allow(clippy::too_many_arguments)]
async fn run_and_top_up(
    stores: &[PgStore],
    pool: &PgPool,
    drops: &[DropId],
    load: Load,
    writers: usize,
    rate: u64,
    secs: Duration,
    name: &str,
) {
    let alone = phase(stores, pool, drops, load, writers, 0, secs).await;
    report(name, &alone);
    let reached = alone.written as f64 / alone.secs;
    if reached >= rate as f64 {
        println!("{name}: the writers reached the target rate by themselves");
        return;
    }
    let extra = (rate as f64 - reached) as u64;
    println!(
        "{name}: the writers reached {reached:.0} entries/s, below {rate}: adding {extra}/s \
         through dropkit_log_append"
    );
    let mixed = phase(stores, pool, drops, load, writers, extra, secs).await;
    report(&format!("{name} + paced appends"), &mixed);
}

fn report(name: &str, p: &Phase) {
    let ms = |q: f64| p.lag.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{name}: written {:.0} entries/s ({} in {:.1} s); follower {:.0} entries/s ({} seen, \
         {} behind at the end); lag p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p.written as f64 / p.secs,
        p.written,
        p.secs,
        p.seen as f64 / p.secs,
        p.seen,
        p.behind_at_end,
        ms(0.50),
        ms(0.99),
        p.lag.max() as f64 / 1000.0,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = if smoke {
        Duration::from_millis(500)
    } else {
        Duration::from_secs_f64(env("BENCH_SECS", 10.0))
    };
    let rate: u64 = env("BENCH_RATE", 20_000);
    let writers: usize = env("BENCH_WRITERS", 64);
    let storm_writers: usize = env("BENCH_STORM_WRITERS", 256);
    let log_on = std::env::var("BENCH_LOG").map_or(true, |v| v != "off");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let url = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let admin_opts: PgConnectOptions = url.parse().expect("DATABASE_URL");
        let db = format!("dropkit_bench_log_{}", std::process::id());
        let mut admin = admin_opts.connect().await.expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .expect("create bench database");
        let options = admin_opts.clone().database(&db);
        let mut pools = Vec::new();
        let mut stores = Vec::new();
        for _ in 0..INSTANCES {
            let pool = PgPoolOptions::new()
                .max_connections(POOL)
                .connect_with(options.clone())
                .await
                .expect("pool");
            stores.push(
                PgStore::builder()
                    .event_log(log_on)
                    .build(pool.clone())
                    .await
                    .expect("store"),
            );
            pools.push(pool);
        }
        if let Ok(path) = std::env::var("BENCH_VARIANT_SQL") {
            let sql = std::fs::read_to_string(&path).expect("BENCH_VARIANT_SQL file");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pools[0])
                .await
                .expect("apply BENCH_VARIANT_SQL");
            println!("variant: {path} applied");
        }
        let mut drops = Vec::new();
        for i in 0..DROPS {
            let state = stores[0]
                .create_drop(
                    NewDrop::new(
                        format!("storm {i}"),
                        Money::from_minor(100).expect("price"),
                        1_000_000,
                    )
                    .hold(Duration::from_secs(3_600)),
                )
                .await
                .expect("drop");
            drops.push(state.drop.id);
        }
        let hot = stores[0]
            .create_drop(
                NewDrop::new("hot", Money::from_minor(100).expect("price"), 1_000_000)
                    .hold(Duration::from_secs(3_600)),
            )
            .await
            .expect("drop")
            .drop
            .id;
        println!(
            "log follow bench: {} s per phase, {writers} writers on {INSTANCES} instances and \
             {DROPS} drops, target {rate} entries/s, log {}{}",
            secs.as_secs_f64(),
            if log_on { "on" } else { "off" },
            if smoke { " (smoke run)" } else { "" }
        );
        // Warm the pools and plans.
        phase(
            &stores,
            &pools[0],
            &drops,
            Load::ReserveRelease,
            writers,
            0,
            Duration::from_millis(500),
        )
        .await;

        run_and_top_up(
            &stores,
            &pools[0],
            &drops,
            Load::ReserveRelease,
            writers,
            rate,
            secs,
            "real writes",
        )
        .await;
        run_and_top_up(
            &stores,
            &pools[0],
            &drops,
            Load::Storm(hot),
            storm_writers,
            rate,
            secs,
            &format!("reserve storm ({storm_writers} writers, one drop)"),
        )
        .await;

        for store in &stores {
            store.close().await;
        }
        for pool in &pools {
            pool.close().await;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop bench database");
    });
}

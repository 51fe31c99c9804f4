//! Draw drops on the PostgreSQL store, against baselines measured in the
//! same run on the same database:
//!
//! - (j) `entries`: new buyers entering one draw drop
//!   ([`InventoryStore::enter_draw`]) from `BENCH_TASKS` tasks (default
//!   32), against (c) `floor`, a bare `UPDATE … SET reserved = reserved + 1
//!   WHERE id = $1` on one drop row at the same concurrency (the hot-row
//!   floor of `benches/postgres_reserve.rs`), in interleaved slices. An
//!   entry takes only a key-share lock on the drop row, so entries do not
//!   queue behind each other as updates of one row must: the bar is
//!   (j)/(c) ≥ 5.
//! - (k) `draw`: [`InventoryStore::run_draw`] of a drop with 1,000,000
//!   entries (put in with one statement, not through `enter_draw`) and
//!   1,000 units, its line on (so 999,000 places are made), timed, against
//!   `drop_core::draw` of the same entries in memory (the ranking alone,
//!   nothing read or written).
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   BENCH_TASKS=32 cargo bench --bench postgres_draw
//! ```
//!
//! `BENCH_SECS` sets the measured seconds of (j) and (c) each (default 2),
//! run as four interleaved slices. `BENCH_ENTRIES` sets the size of (k).
//! `cargo test --benches` runs a smoke pass (short slices, 10,000 entries).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use drop_core::{
    Buyer, DrawEntry, DrawKey, DrawStock, DropId, DropState, InventoryStore, Money, NewDrop,
    Receipt, Seed, Username, VariantId,
};
use drop_store_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

const POOL: u32 = 64;
const ROUNDS: u32 = 4;
const UNITS: u32 = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Floor,
    Entries,
}

/// Runs `tasks` loops of `case` for `secs`: the latency (µs) of each one
/// completed in it.
async fn slice(
    case: Case,
    pool: &PgPool,
    store: &PgStore,
    floor: DropId,
    draw: DropId,
    tasks: usize,
    secs: Duration,
) -> Vec<u64> {
    let until = Instant::now() + secs;
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (pool, store) = (pool.clone(), store.clone());
            let tag = Uuid::new_v4().simple().to_string();
            tokio::spawn(async move {
                let mut done = Vec::new();
                let mut i = 0u64;
                while Instant::now() < until {
                    i += 1;
                    let sent = Instant::now();
                    match case {
                        Case::Floor => {
                            sqlx::query(
                                "UPDATE dropkit_drops SET reserved = reserved + 1 WHERE id = $1",
                            )
                            .bind(floor.as_uuid())
                            .execute(&pool)
                            .await
                            .expect("floor update");
                        }
                        Case::Entries => {
                            let name = format!("e{}_{t}_{i}", &tag[..8]);
                            let buyer = Buyer::claimed(Username::parse(&name).expect("username"));
                            let entry = store.enter_draw(draw, &buyer, None).await.expect("enter");
                            assert!(entry.changed);
                        }
                    }
                    let now = Instant::now();
                    if now <= until {
                        done.push(u64::try_from((now - sent).as_micros()).unwrap_or(u64::MAX));
                    }
                }
                done
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.extend(h.await.expect("bench task"));
    }
    out
}

/// The median of `lat` (µs), in milliseconds.
fn p50(lat: &mut [u64]) -> String {
    lat.sort_unstable();
    support::ms(lat.get(lat.len() / 2).copied().unwrap_or(0))
}

async fn draw_drop(store: &PgStore, name: &str, units: u32, lead: chrono::Duration) -> DropState {
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(store.pool())
        .await
        .expect("clock");
    store
        .create_drop(
            NewDrop::new(name, Money::from_minor(100).expect("price"), units)
                .hold(Duration::from_secs(3_600))
                .draw_at(now + lead),
        )
        .await
        .expect("create draw drop")
}

fn main() {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64);
    let smoke = !std::env::args().any(|a| a == "--bench");
    let tasks: usize = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let entries: i32 = std::env::var("BENCH_ENTRIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if smoke { 10_000 } else { 1_000_000 });
    let secs = if smoke {
        Duration::from_millis(200)
    } else {
        secs
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
        let db = format!("dropkit_bench_draw_{}", std::process::id());
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
        let store = PgStore::builder()
            .listen(false)
            .build(pool.clone())
            .await
            .expect("store");
        println!(
            "PostgreSQL draw bench: {tasks} tasks, {} s per case, {entries} entries drawn{}",
            secs.as_secs_f64(),
            if smoke { " (smoke run)" } else { "" }
        );

        // (j) against (c), interleaved.
        let floor = store
            .create_drop(
                NewDrop::new("floor", Money::from_minor(100).expect("price"), 1_000_000)
                    .hold(Duration::from_secs(3_600)),
            )
            .await
            .expect("floor drop")
            .drop
            .id;
        let open = draw_drop(&store, "entries", UNITS, chrono::Duration::hours(1))
            .await
            .drop
            .id;
        // Warm-up: connections open, plans cached.
        for case in [Case::Floor, Case::Entries] {
            slice(
                case,
                &pool,
                &store,
                floor,
                open,
                tasks,
                Duration::from_millis(300),
            )
            .await;
        }
        let part = secs / ROUNDS;
        let (mut floors, mut entered) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            floors.extend(slice(Case::Floor, &pool, &store, floor, open, tasks, part).await);
            entered.extend(slice(Case::Entries, &pool, &store, floor, open, tasks, part).await);
        }
        let per_sec = |n: usize| n as f64 / secs.as_secs_f64();
        let (floor_rate, entry_rate) = (per_sec(floors.len()), per_sec(entered.len()));
        println!("\n## (j) entries vs (c) floor, {tasks} tasks");
        println!(
            "  (c) floor:   {floor_rate:>10.0} updates/s, p50 {} ms",
            p50(&mut floors)
        );
        println!(
            "  (j) entries: {entry_rate:>10.0} entries/s, p50 {} ms",
            p50(&mut entered)
        );
        let ratio = entry_rate / floor_rate;
        println!(
            "  (j)/(c): {ratio:.2} (target ≥ 5) — {}",
            if ratio >= 5.0 {
                "reached"
            } else {
                "NOT reached"
            }
        );

        // (k) a draw of `entries` entries, against the ranking alone.
        let big = draw_drop(&store, "big draw", UNITS, chrono::Duration::seconds(2)).await;
        let variant = big.variants[0].id;
        let put = Instant::now();
        sqlx::query(
            "INSERT INTO dropkit_entries (drop_id, buyer_id, display_name, variant_id, receipt, \
                                          entered_at) \
             SELECT $1, 'b' || i, 'bench_buyer', $2, decode(md5('r' || i), 'hex'), \
                    clock_timestamp() \
               FROM generate_series(1, $3) AS i",
        )
        .bind(big.drop.id.as_uuid())
        .bind(variant.as_uuid())
        .bind(entries)
        .execute(&pool)
        .await
        .expect("bulk entries");
        sqlx::query("ANALYZE dropkit_entries")
            .execute(&pool)
            .await
            .expect("analyze");
        println!(
            "\n## (k) a draw of {entries} entries, {UNITS} units, line on\n  \
             (entries put in with one statement in {:.1} s)",
            put.elapsed().as_secs_f64()
        );
        let draw_at = big.drop.draw_at.expect("draw at");
        loop {
            let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
                .fetch_one(&pool)
                .await
                .expect("clock");
            if now > draw_at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let started = Instant::now();
        let summary = store
            .run_draw(big.drop.id, None)
            .await
            .expect("draw")
            .expect("the draw is due");
        let store_secs = started.elapsed().as_secs_f64();
        assert_eq!(summary.entries as i32, entries);
        println!(
            "  (k) run_draw: {store_secs:.2} s ({} winners, {} in line)",
            summary.winners, summary.waiting
        );

        // The baseline: the same entries and stock, ranked in memory.
        let rows: Vec<(Vec<u8>, Uuid)> =
            sqlx::query_as("SELECT receipt, variant_id FROM dropkit_entries WHERE drop_id = $1")
                .bind(big.drop.id.as_uuid())
                .fetch_all(&pool)
                .await
                .expect("entries");
        let listed: Vec<DrawEntry> = rows
            .iter()
            .map(|(r, v)| {
                let bytes: [u8; 16] = r.as_slice().try_into().expect("16 bytes");
                DrawEntry::new(Receipt::from_bytes(bytes), VariantId::from_uuid(*v))
            })
            .collect();
        drop(rows);
        let stock = [DrawStock::new(variant, UNITS)];
        let key = DrawKey::derive(&Seed::generate(), None);
        let started = Instant::now();
        let ranked = drop_core::draw(&key, &listed, &stock).expect("draw in memory");
        let memory_secs = started.elapsed().as_secs_f64();
        assert_eq!(ranked.variants[0].winners.len(), UNITS as usize);
        println!("  drop_core::draw in memory: {memory_secs:.2} s");
        println!(
            "  (k)/memory: {:.1}× the ranking alone",
            store_secs / memory_secs
        );
        let published = store
            .draw_status(big.drop.id)
            .await
            .expect("status")
            .published
            .expect("published");
        let started = Instant::now();
        drop_core::verify_draw(&published).expect("the draw verifies");
        println!(
            "  verify_draw of the published draw: {:.2} s — verified",
            started.elapsed().as_secs_f64()
        );

        store.close().await;
        pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop bench database");
    });
}

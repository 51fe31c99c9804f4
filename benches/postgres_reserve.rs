//! Reserve throughput of the PostgreSQL store on one hot drop, against
//! baselines measured in the same run on the same database:
//!
//! - (a) `store`: [`PgStore`] with group commit off (one transaction per reserve);
//! - (b) `count-lock`: the original's algorithm — lock the drop row, COUNT the
//!   drop's active holds and its purchases, insert — as one transaction of
//!   several statements;
//! - (c) `floor`: a bare `UPDATE … SET reserved = reserved + 1 WHERE id = $1`,
//!   the database's hot-row floor;
//! - (d) `batched`: [`PgStore`] with group commit (the default);
//! - (e) `floor+notify`: the floor with a `pg_notify` in each transaction,
//!   the cost of announcing every reservation on the hot path;
//! - (h) `batched, log off`: (d) with the event log off
//!   (`event_log(false)`), on the same database and in the same slices, so
//!   (d)/(h) is what appending every change to the log costs;
//! - (g) `batched, 4 variants`: group commit on a drop of four variants
//!   with `maxPerBuyer` 2, each buyer asking for 1 or 2 units of one of
//!   them, compared with the floor and with (d), the one-variant drop, in
//!   the same interleaved run;
//! - (i) `join the line`: new buyers joining the waiting list of a sold-out
//!   drop, through the batched store, while (a) and (d) reserve on drops of
//!   their own in the same interleaved slices: joins/s against reserves/s,
//!   (d) being the bar (joins are grouped like reserves, so a storm of
//!   them commits many per transaction) and (a) one transaction per call.
//!
//! First on a fresh drop ("empty"), then on a big drop that already has
//! 100,000 purchases and 100,000 active holds of other users ("big").
//! Every figure is printed as a ratio to the floor at the same concurrency.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench postgres_reserve
//! ```
//!
//! `BENCH_SECS` sets the measured seconds per case (default 2), run as four
//! interleaved slices so that outside load falls on every case alike.
//!
//! `BENCH_NAME_LEN=N` pads every buyer name to N characters (at most 50,
//! the username limit) with zeros before its counter, to see what longer
//! buyer ids cost (guests' ids are 34 characters).
//!
//! `BENCH_VARIANT_SQL=file.sql` adds a case (f): the store with group
//! commit on a second database, to which the file was applied after the
//! migrations (a setting, an index dropped, a function replaced), measured
//! in the same interleaved slices as (d), so that a change to the SQL is
//! compared with its baseline in one run. For instance, what planning
//! every statement would cost:
//!
//! ```text
//! ALTER FUNCTION dropkit_reserve_units(uuid, text[], text[], uuid[], integer[], uuid[], text[], text[], bytea[])
//!     SET plan_cache_mode = force_custom_plan;
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drop_core::{
    Buyer, DropId, InventoryStore, Money, NewDrop, NewVariant, ReserveRequest, Username, VariantId,
};
use drop_store_postgres::PgStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use uuid::Uuid;

const TASKS: &[usize] = &[1, 8, 32, 64];
const BATCHED_TASKS: &[usize] = &[1, 8, 32, 64, 256];
const POOL: u32 = 64;
const WARMUP: Duration = Duration::from_millis(300);
const ROUNDS: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Algo {
    Floor,
    FloorNotify,
    CountLock,
    Store,
    Batched,
    Variant,
    Variants4,
    BatchedNoLog,
    Join,
}

impl Algo {
    fn name(self) -> &'static str {
        match self {
            Algo::Floor => "(c) floor",
            Algo::FloorNotify => "(e) floor+notify",
            Algo::CountLock => "(b) count-lock",
            Algo::Store => "(a) store",
            Algo::Batched => "(d) batched",
            Algo::Variant => "(f) batched, variant",
            Algo::Variants4 => "(g) batched, 4 variants",
            Algo::BatchedNoLog => "(h) batched, log off",
            Algo::Join => "(i) join the line",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Figure {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
}

struct Bench {
    pool: PgPool,
    store: PgStore,
    batched: PgStore,
    /// The batched store with the event log off.
    unlogged: PgStore,
    /// The batched store on the database with `BENCH_VARIANT_SQL` applied.
    variant: Option<(PgPool, PgStore)>,
    secs: Duration,
}

impl Bench {
    async fn fresh_drop(&self, name: &str) -> DropId {
        fresh_drop(&self.store, name).await
    }

    /// A fresh drop in the variant's database.
    async fn variant_drop(&self, name: &str) -> Option<DropId> {
        match &self.variant {
            Some((_, store)) => Some(fresh_drop(store, name).await),
            None => None,
        }
    }

    /// Runs the cases in turn, in `ROUNDS` short slices each, so that load
    /// from elsewhere on the machine falls on all of them alike.
    async fn interleaved(
        &self,
        cases: &[(Algo, DropId)],
        tasks: usize,
    ) -> Vec<((usize, Algo), Figure)> {
        let slice = self.secs / ROUNDS;
        let mut lat: BTreeMap<Algo, Vec<Duration>> = BTreeMap::new();
        for round in 0..ROUNDS {
            // Every other round in the opposite order, so that no case
            // always runs right after the same neighbour (whose dead
            // tuples, cache state or checkpoints it would inherit).
            let order: Vec<(Algo, DropId)> = if round % 2 == 0 {
                cases.to_vec()
            } else {
                cases.iter().rev().copied().collect()
            };
            for &(algo, drop_id) in &order {
                let warmup = if round == 0 {
                    WARMUP
                } else {
                    Duration::from_millis(50)
                };
                let got = self.run(algo, drop_id, tasks, warmup, slice).await;
                lat.entry(algo).or_default().extend(got);
            }
        }
        lat.into_iter()
            .map(|(algo, mut lat)| {
                lat.sort();
                let pct = |p: f64| {
                    lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                        .copied()
                        .unwrap_or_default()
                };
                let figure = Figure {
                    per_sec: lat.len() as f64 / (slice * ROUNDS).as_secs_f64(),
                    p50: pct(0.50),
                    p99: pct(0.99),
                };
                ((tasks, algo), figure)
            })
            .collect()
    }

    /// Runs `tasks` loops of one reserve each against `drop_id` for `secs`
    /// after a warm-up; the latencies of the reserves done in that time.
    async fn run(
        &self,
        algo: Algo,
        drop_id: DropId,
        tasks: usize,
        warmup: Duration,
        secs: Duration,
    ) -> Vec<Duration> {
        let start = Instant::now();
        let measure_from = start + warmup;
        let until = measure_from + secs;
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let pool = self.pool.clone();
                let store = match (algo, &self.variant) {
                    (Algo::Batched | Algo::Variants4 | Algo::Join, _) => self.batched.clone(),
                    (Algo::BatchedNoLog, _) => self.unlogged.clone(),
                    (Algo::Variant, Some((_, variant))) => variant.clone(),
                    _ => self.store.clone(),
                };
                let tag = Uuid::new_v4().simple().to_string();
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    loop {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        i += 1;
                        let name = buyer_name(&tag[..8], t, i);
                        one(algo, &pool, &store, drop_id, &name).await;
                        // Counted by completion, so that a case slower
                        // than the window still shows what it finished.
                        let done = Instant::now();
                        if done >= measure_from && done <= until {
                            lat.push(done - now);
                        }
                    }
                    lat
                })
            })
            .collect();
        let mut lat: Vec<Duration> = Vec::new();
        for h in handles {
            lat.extend(h.await.expect("bench task"));
        }
        lat
    }
}

async fn fresh_drop(store: &PgStore, name: &str) -> DropId {
    store
        .create_drop(
            NewDrop::new(name, Money::from_minor(100).expect("price"), 1_000_000)
                .hold(Duration::from_secs(3_600)),
        )
        .await
        .expect("create drop")
        .drop
        .id
}

/// A drop of one unit, held: sold out, so buyers may join its line.
async fn sold_out_drop(store: &PgStore, name: &str) -> DropId {
    let id = store
        .create_drop(
            NewDrop::new(name, Money::from_minor(100).expect("price"), 1)
                .hold(Duration::from_secs(3_600)),
        )
        .await
        .expect("create drop")
        .drop
        .id;
    let holder = Buyer::claimed(Username::parse("holder").expect("username"));
    store.reserve(id, &holder).await.expect("hold the unit");
    id
}

/// A drop of four variants of 250,000 units each, at most 2 per buyer.
async fn four_variant_drop(store: &PgStore, name: &str) -> (DropId, Vec<VariantId>) {
    let state = store
        .create_drop(
            NewDrop::with_variants(
                name,
                Money::from_minor(100).expect("price"),
                ["XS", "S", "M", "L"].map(|v| NewVariant::new(v, 250_000)),
            )
            .max_per_buyer(2)
            .hold(Duration::from_secs(3_600)),
        )
        .await
        .expect("create drop");
    let variants = state.drop.variants.iter().map(|v| v.id).collect();
    (state.drop.id, variants)
}

/// The variants of the four-variant drops, by drop.
static VARIANTS: std::sync::Mutex<BTreeMap<DropId, Vec<VariantId>>> =
    std::sync::Mutex::new(BTreeMap::new());

async fn one(algo: Algo, pool: &PgPool, store: &PgStore, drop_id: DropId, name: &str) {
    match algo {
        Algo::Floor => {
            sqlx::query("UPDATE dropkit_drops SET reserved = reserved + 1 WHERE id = $1")
                .bind(drop_id.as_uuid())
                .execute(pool)
                .await
                .expect("floor update");
        }
        Algo::FloorNotify => {
            let mut tx = pool.begin().await.expect("begin");
            sqlx::query("UPDATE dropkit_drops SET reserved = reserved + 1 WHERE id = $1")
                .bind(drop_id.as_uuid())
                .execute(&mut *tx)
                .await
                .expect("floor update");
            sqlx::query("SELECT pg_notify('dropkit_bench', $1)")
                .bind(name)
                .execute(&mut *tx)
                .await
                .expect("notify");
            tx.commit().await.expect("commit");
        }
        Algo::CountLock => {
            // The original: lock the drop, count what is taken, insert.
            let mut tx = pool.begin().await.expect("begin");
            let total: i32 = sqlx::query_scalar(
                "SELECT total_stock FROM dropkit_drops WHERE id = $1 FOR UPDATE",
            )
            .bind(drop_id.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .expect("lock");
            let held: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM dropkit_reservations \
                 WHERE drop_id = $1 AND status = 'active' AND expires_at > now()",
            )
            .bind(drop_id.as_uuid())
            .fetch_one(&mut *tx)
            .await
            .expect("count holds");
            let sold: i64 =
                sqlx::query_scalar("SELECT count(*) FROM dropkit_purchases WHERE drop_id = $1")
                    .bind(drop_id.as_uuid())
                    .fetch_one(&mut *tx)
                    .await
                    .expect("count purchases");
            assert!(held + sold < i64::from(total), "bench drop sold out");
            sqlx::query(
                "INSERT INTO dropkit_reservations \
                        (id, drop_id, variant_id, buyer_id, display_name, status, created_at, \
                         expires_at) \
                 VALUES ($1, $2, (SELECT id FROM dropkit_variants WHERE drop_id = $2), $3, $3, \
                         'active', now(), now() + interval '1 hour')",
            )
            .bind(Uuid::new_v4())
            .bind(drop_id.as_uuid())
            .bind(name)
            .execute(&mut *tx)
            .await
            .expect("insert hold");
            tx.commit().await.expect("commit");
        }
        Algo::Store | Algo::Batched | Algo::Variant | Algo::BatchedNoLog => {
            let user = Buyer::claimed(Username::parse(name).expect("username"));
            store.reserve(drop_id, &user).await.expect("reserve");
        }
        Algo::Join => {
            let user = Buyer::claimed(Username::parse(name).expect("username"));
            let place = store
                .join_waitlist(drop_id, &user, ReserveRequest::new())
                .await
                .expect("join the line");
            assert!(place.changed, "a new place");
        }
        Algo::Variants4 => {
            let user = Buyer::claimed(Username::parse(name).expect("username"));
            // The buyer's name ends in its task and counter: spread the
            // buyers over the variants and the two quantities.
            let n: usize = name
                .split('_')
                .skip(1)
                .filter_map(|part| part.parse::<usize>().ok())
                .sum();
            let variant = VARIANTS.lock().expect("variants")[&drop_id][n % 4];
            let ask = ReserveRequest::new()
                .variant(variant)
                .quantity(1 + u32::try_from(n / 4 % 2).expect("0 or 1"));
            store
                .reserve_with(drop_id, &user, ask, None)
                .await
                .expect("reserve");
        }
    }
}

/// A drop with 100,000 purchases and 100,000 active holds of other users.
async fn big_drop(pool: &PgPool, store: &PgStore, name: &str) -> DropId {
    let id = fresh_drop(store, name).await;
    let mut tx = pool.begin().await.expect("begin");
    for sql in [
        "INSERT INTO dropkit_reservations \
                (id, drop_id, variant_id, buyer_id, display_name, status, created_at, expires_at) \
         SELECT gen_random_uuid(), $1, (SELECT id FROM dropkit_variants WHERE drop_id = $1), \
                'held' || g, 'held' || g, 'active', now(), now() + interval '1 hour' \
         FROM generate_series(1, 100000) g",
        "INSERT INTO dropkit_reservations \
                (id, drop_id, variant_id, buyer_id, display_name, status, created_at, expires_at) \
         SELECT gen_random_uuid(), $1, (SELECT id FROM dropkit_variants WHERE drop_id = $1), \
                'sold' || g, 'sold' || g, 'purchased', now(), now() + interval '1 hour' \
         FROM generate_series(1, 100000) g",
        "INSERT INTO dropkit_purchases \
                (id, reservation_id, drop_id, variant_id, buyer_id, display_name, amount_minor, \
                 created_at) \
         SELECT gen_random_uuid(), id, drop_id, variant_id, buyer_id, display_name, 100, now() \
           FROM dropkit_reservations \
         WHERE drop_id = $1 AND status = 'purchased'",
        "UPDATE dropkit_drops SET reserved = reserved + 100000, sold = sold + 100000, \
         version = version + 1 WHERE id = $1",
        "UPDATE dropkit_variants SET reserved = reserved + 100000, sold = sold + 100000 \
          WHERE drop_id = $1",
    ] {
        sqlx::query(sql)
            .bind(id.as_uuid())
            .execute(&mut *tx)
            .await
            .expect("seed big drop");
    }
    tx.commit().await.expect("commit");
    id
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn print_table(title: &str, figures: &BTreeMap<(usize, Algo), Figure>) {
    println!("\n## {title}");
    println!(
        "{:>6}  {:<18} {:>10} {:>9} {:>9} {:>10}",
        "tasks", "case", "reserve/s", "p50 ms", "p99 ms", "× floor"
    );
    for (&(tasks, algo), f) in figures {
        let floor = figures.get(&(tasks, Algo::Floor)).map(|f| f.per_sec);
        let ratio = floor.map_or("-".to_owned(), |fl| format!("{:.3}", f.per_sec / fl));
        println!(
            "{:>6}  {:<18} {:>10.0} {:>9.2} {:>9.2} {:>10}",
            tasks,
            algo.name(),
            f.per_sec,
            ms(f.p50),
            ms(f.p99),
            ratio
        );
    }
}

fn ratio(figures: &BTreeMap<(usize, Algo), Figure>, tasks: usize, a: Algo, b: Algo) -> f64 {
    figures[&(tasks, a)].per_sec / figures[&(tasks, b)].per_sec
}

fn target(what: &str, got: f64, want: f64) {
    let verdict = if got >= want {
        "reached"
    } else {
        "NOT reached"
    };
    if got.is_finite() {
        println!("  {what}: {got:.2} (target ≥ {want}) — {verdict}");
    } else {
        println!(
            "  {what}: the baseline finished nothing in the window (target ≥ {want}) — {verdict}"
        );
    }
}

fn main() {
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(Duration::from_secs(2), Duration::from_secs_f64);
    // `cargo bench` passes `--bench`; `cargo test --benches` runs a smoke pass.
    let smoke = !std::env::args().any(|a| a == "--bench");
    // `BENCH_TASKS=32` runs one concurrency only (the targets then skip).
    let only: Option<usize> = std::env::var("BENCH_TASKS")
        .ok()
        .and_then(|s| s.parse().ok());
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
        let db = format!("dropkit_bench_{}", std::process::id());
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
        // No store listens: three stores share the bench's database and one
        // has the variant's to itself, and every listener receives and
        // decodes every other store's announcements, which made (d) and (h)
        // pay for two more listeners than (f) (A/A runs: (f)/(d) 1.05–1.34).
        // The announcements are still sent.
        let store = PgStore::builder()
            .group_commit(false)
            .listen(false)
            .build(pool.clone())
            .await
            .expect("store");
        let batched = PgStore::builder()
            .listen(false)
            .build(pool.clone())
            .await
            .expect("store");
        let unlogged = PgStore::builder()
            .event_log(false)
            .listen(false)
            .build(pool.clone())
            .await
            .expect("store");
        // The variant: the same schema in a database of its own, then the
        // file's changes.
        let variant_db = format!("{db}_variant");
        let variant = match std::env::var("BENCH_VARIANT_SQL") {
            Ok(path) => {
                let sql = std::fs::read_to_string(&path).expect("BENCH_VARIANT_SQL file");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {variant_db}")))
                    .execute(&mut admin)
                    .await
                    .expect("create variant database");
                let pool = PgPoolOptions::new()
                    .max_connections(POOL)
                    .connect_with(admin_opts.clone().database(&variant_db))
                    .await
                    .expect("variant pool");
                let store = PgStore::builder()
                    .listen(false)
                    .build(pool.clone())
                    .await
                    .expect("variant store");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&pool)
                    .await
                    .expect("apply BENCH_VARIANT_SQL");
                println!("variant (f): {path} applied");
                Some((pool, store))
            }
            Err(_) => None,
        };
        let bench = Bench {
            pool: pool.clone(),
            store: store.clone(),
            batched: batched.clone(),
            unlogged: unlogged.clone(),
            variant,
            secs,
        };
        println!(
            "PostgreSQL reserve bench: {} s per case, pool of {POOL}{}",
            secs.as_secs_f64(),
            if smoke { " (smoke run)" } else { "" }
        );

        let mut hot = BTreeMap::new();
        for &tasks in BATCHED_TASKS
            .iter()
            .filter(|t| only.is_none_or(|o| o == **t))
        {
            let mut cases = vec![Algo::Floor, Algo::Batched];
            if TASKS.contains(&tasks) {
                cases.extend([Algo::CountLock, Algo::Store]);
            }
            if tasks == 32 {
                cases.extend([Algo::FloorNotify, Algo::BatchedNoLog]);
            }
            let mut on = Vec::new();
            for algo in cases {
                on.push((algo, bench.fresh_drop("hot").await));
            }
            if tasks == 32 {
                on.push((Algo::Join, sold_out_drop(&bench.store, "sold out").await));
            }
            if tasks == 32 {
                let (id, variants) = four_variant_drop(&bench.store, "hot, 4 variants").await;
                VARIANTS.lock().expect("variants").insert(id, variants);
                on.push((Algo::Variants4, id));
            }
            if let Some(drop_id) = bench.variant_drop("hot").await {
                on.push((Algo::Variant, drop_id));
            }
            hot.extend(bench.interleaved(&on, tasks).await);
        }
        print_table("hot drop, empty tables", &hot);
        if hot.contains_key(&(32, Algo::BatchedNoLog)) {
            println!("\n## the event log, 32 tasks");
            target(
                "(d)/(h), group commit with the log vs without",
                ratio(&hot, 32, Algo::Batched, Algo::BatchedNoLog),
                0.8,
            );
            target(
                "(d)/(c), group commit with the log vs the floor",
                ratio(&hot, 32, Algo::Batched, Algo::Floor),
                5.0,
            );
        }
        if hot.contains_key(&(32, Algo::Join)) {
            println!("\n## joining the line under a storm, 32 tasks");
            target(
                "(i)/(d), joins vs reserves with group commit",
                ratio(&hot, 32, Algo::Join, Algo::Batched),
                0.8,
            );
            target(
                "(i)/(a), joins vs reserves one transaction each",
                ratio(&hot, 32, Algo::Join, Algo::Store),
                0.8,
            );
        }
        if hot.contains_key(&(32, Algo::Variants4)) {
            println!("\n## four variants, quantities 1–2, maxPerBuyer 2, 32 tasks");
            target(
                "(g)/(c), four variants vs the floor",
                ratio(&hot, 32, Algo::Variants4, Algo::Floor),
                5.0,
            );
            target(
                "(g)/(d), four variants vs one variant, group commit both",
                ratio(&hot, 32, Algo::Variants4, Algo::Batched),
                0.8,
            );
        }

        // Two big drops: the baseline inserts holds without counters, so it
        // gets its own.
        let big_ours = big_drop(&pool, &store, "big").await;
        let big_theirs = big_drop(&pool, &store, "big baseline").await;
        sqlx::query("ANALYZE")
            .execute(&pool)
            .await
            .expect("analyze");
        let big_variant = match &bench.variant {
            Some((pool, store)) => {
                let id = big_drop(pool, store, "big").await;
                sqlx::query("ANALYZE")
                    .execute(pool)
                    .await
                    .expect("analyze");
                Some(id)
            }
            None => None,
        };
        let mut big = BTreeMap::new();
        for &tasks in TASKS.iter().filter(|t| only.is_none_or(|o| o == **t)) {
            let mut on = vec![
                (Algo::Floor, bench.fresh_drop("floor").await),
                (Algo::CountLock, big_theirs),
                (Algo::Store, big_ours),
                (Algo::Batched, big_ours),
            ];
            if tasks == 32 {
                on.push((Algo::BatchedNoLog, big_ours));
            }
            on.extend(big_variant.map(|id| (Algo::Variant, id)));
            big.extend(bench.interleaved(&on, tasks).await);
        }
        print_table("big drop: 100,000 purchases + 100,000 active holds", &big);
        if big.contains_key(&(32, Algo::BatchedNoLog)) {
            println!(
                "  big drop, 32 tasks: (d)/(h) log on vs off {:.3}, (d)/(c) {:.2}",
                ratio(&big, 32, Algo::Batched, Algo::BatchedNoLog),
                ratio(&big, 32, Algo::Batched, Algo::Floor)
            );
        }
        if bench.variant.is_some() {
            println!("\n## variant");
            for (what, figures) in [("empty", &hot), ("big drop", &big)] {
                for &tasks in BATCHED_TASKS {
                    if figures.contains_key(&(tasks, Algo::Variant)) {
                        println!(
                            "  (f)/(d) at {tasks} tasks, {what}: {:.3}",
                            ratio(figures, tasks, Algo::Variant, Algo::Batched)
                        );
                    }
                }
            }
        }

        let finish = async {
            store.close().await;
            batched.close().await;
            unlogged.close().await;
            pool.close().await;
            let mut dbs = vec![db.clone()];
            if let Some((pool, store)) = &bench.variant {
                store.close().await;
                pool.close().await;
                dbs.push(variant_db.clone());
            }
            for db in dbs {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE {db} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .expect("drop bench database");
            }
        };
        if only.is_some() {
            finish.await;
            return;
        }
        println!("\n## targets");
        target(
            "(a)/(b) at 32 tasks, empty",
            ratio(&hot, 32, Algo::Store, Algo::CountLock),
            1.8,
        );
        target(
            "(a)/(b) at 32 tasks, big drop",
            ratio(&big, 32, Algo::Store, Algo::CountLock),
            10.0,
        );
        target(
            "(a)/(c) at 32 tasks",
            ratio(&hot, 32, Algo::Store, Algo::Floor),
            0.7,
        );
        target(
            "(d)/(c) at 32 tasks",
            ratio(&hot, 32, Algo::Batched, Algo::Floor),
            5.0,
        );
        target(
            "(d)/(c) at 64 tasks",
            ratio(&hot, 64, Algo::Batched, Algo::Floor),
            5.0,
        );
        target(
            "(d)/(a) at 1 task (≥ 0.9 = within 10%)",
            ratio(&hot, 1, Algo::Batched, Algo::Store),
            0.9,
        );
        for tasks in [32, 64] {
            let (d, a) = (
                hot[&(tasks, Algo::Batched)].p99,
                hot[&(tasks, Algo::Store)].p99,
            );
            let verdict = if d <= a { "reached" } else { "NOT reached" };
            println!(
                "  p99 (d) vs (a) at {tasks} tasks: {:.2} ms vs {:.2} ms (target ≤) — {verdict}",
                ms(d),
                ms(a)
            );
        }
        // Flat or not, each as a share of its own run's floor, so machine
        // load between the two sections cancels out.
        let share = |m: &BTreeMap<(usize, Algo), Figure>, algo| ratio(m, 32, algo, Algo::Floor);
        println!(
            "  big drop vs empty, as shares of the floor, 32 tasks: (b) {:.3}, (a) {:.2}, (d) {:.2}",
            share(&big, Algo::CountLock) / share(&hot, Algo::CountLock),
            share(&big, Algo::Store) / share(&hot, Algo::Store),
            share(&big, Algo::Batched) / share(&hot, Algo::Batched),
        );
        println!(
            "  NOTIFY per reservation, (e)/(c) at 32 tasks: {:.2}",
            ratio(&hot, 32, Algo::FloorNotify, Algo::Floor)
        );

        finish.await;
    });
}

/// Buyer `i` of task `t` in the run tagged `tag`, padded to
/// `BENCH_NAME_LEN` characters when it is set.
fn buyer_name(tag: &str, t: usize, i: u64) -> String {
    static LEN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let len = *LEN.get_or_init(|| {
        std::env::var("BENCH_NAME_LEN").map_or(0, |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n <= 50)
                .expect("BENCH_NAME_LEN: a length of at most 50")
        })
    });
    let head = format!("b{tag}_{t}_");
    let width = len.saturating_sub(head.len());
    format!("{head}{i:0>width$}")
}

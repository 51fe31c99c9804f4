//! The first flash sale on a new database: reserve storms on a store whose
//! pooled connections first ran while the tables were empty, against the
//! same store restarted once the tables have grown, and against the
//! database's single-row floor (pgbench), all in one run.
//!
//! For each of two schemas — the current one, and the same with
//! `plan_cache_mode` reset on the write functions (so that PostgreSQL may
//! cache generic plans again, as the first schema let it) — it creates a
//! fresh database and runs three storms of reserves on one hot drop, every
//! reserve a new buyer:
//!
//! 1. `fresh`: the first requests the new server ever serves;
//! 2. `again`: a second storm on the same server, the table now grown;
//! 3. `restarted`: a new server (new connections) on the same database.
//!
//! Each storm runs through HTTP (`POST /api/reservations`, 256 keep-alive
//! connections, the `DropApi` router as `web_drop` serves it) and, on a
//! second drop, directly against the store (256 tasks). The floor is a
//! pgbench script of one `UPDATE … SET n = n + 1` on a single row at 32
//! clients, measured before and after the storms.
//!
//! ```text
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench --bench cold_start
//! COLD_BENCH_SECS=8 cargo bench --bench cold_start   # longer storms (default 4 s)
//! ```
//!
//! Targets: the fresh storm reaches ≥ 3× the floor from its first second
//! and ≥ 0.8× the restarted storm. It also prints the index and table
//! tuples read per reserve in each storm, the plans' shape.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use drop_core::{Buyer, DropId, InventoryStore, Money, NewDrop, SystemClock, Username};
use drop_store_postgres::PgStore;
use drop_ws::DropApi;
use hyper::Method;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use support::Conn;

const CONNS: usize = 256;
const FLOOR_CLIENTS: usize = 32;

/// A storm's outcome: reserves per second overall and in each whole second.
struct Storm {
    per_sec: f64,
    seconds: Vec<u64>,
    failures: u64,
    tuples_per_hold: f64,
    /// Where those tuples were read: table scans or an index, per hold.
    by_source: BTreeMap<String, f64>,
}

/// A `DropApi` server on a [`PgStore`] opened as `web_drop` opens it.
struct Server {
    addr: SocketAddr,
    store: PgStore,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(opts: &PgConnectOptions) -> Server {
        let store = PgStore::builder()
            .connect_with(opts.clone())
            .await
            .expect("open the PostgreSQL store");
        let dyn_store: Arc<dyn InventoryStore> = Arc::new(store.clone());
        let api = DropApi::builder(dyn_store)
            .admin_token("bench")
            // The load names its buyers in the body, as load tools do.
            .claimed_identity()
            .clock(Arc::new(SystemClock))
            .build()
            .await
            .unwrap();
        let (addr, stop, served) = support::serve(api).await;
        Server {
            addr,
            store,
            stop,
            served,
        }
    }

    async fn shut(self) {
        self.stop.cancel();
        self.served.await.expect("server task");
        self.store.close().await;
    }
}

/// Tuples read from the hold table so far, by table scans and each index.
async fn tuples_read(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'seq scans', coalesce(seq_tup_read, 0) FROM pg_stat_user_tables \
          WHERE relname = 'dropkit_reservations' \
         UNION ALL \
         SELECT indexrelname, coalesce(idx_tup_read, 0) FROM pg_stat_user_indexes \
          WHERE relname = 'dropkit_reservations'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// Waits until the server's idle connections have reported their
/// statistics (PostgreSQL sends them at most once a second).
async fn settled_tuples(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let mut last = tuples_read(conn).await;
    loop {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let now = tuples_read(conn).await;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Counts completed reserves into one-second buckets.
struct Timeline {
    start: Instant,
    buckets: Vec<AtomicU64>,
}

impl Timeline {
    fn new(secs: f64) -> Timeline {
        Timeline {
            start: Instant::now(),
            buckets: (0..secs.ceil() as usize + 1)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn tick(&self) {
        let i = self.start.elapsed().as_secs() as usize;
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whole seconds only: the last, partial one is left out.
    fn seconds(&self, secs: f64) -> Vec<u64> {
        self.buckets
            .iter()
            .take(secs.floor() as usize)
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }
}

/// `CONNS` keep-alive connections reserving back to back, each request a
/// new buyer, for `secs`.
async fn http_storm(
    addr: SocketAddr,
    drop_id: DropId,
    secs: f64,
    serial: &Arc<AtomicU64>,
) -> (f64, Vec<u64>, u64) {
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        conns.push(Conn::open(addr).await);
    }
    let timeline = Arc::new(Timeline::new(secs));
    let deadline = timeline.start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let serial = serial.clone();
            let timeline = timeline.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let n = serial.fetch_add(1, Ordering::Relaxed);
                    let body = format!(r#"{{"dropId":"{drop_id}","username":"cold{n}"}}"#);
                    if conn
                        .send(Method::POST, "/api/reservations", Some(body))
                        .await
                        == 201
                    {
                        ok += 1;
                        timeline.tick();
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    gather(tasks, &timeline, secs).await
}

/// Waits for a storm's tasks: reserves per second, per whole second, and
/// failures.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(u64, u64)>>,
    timeline: &Timeline,
    secs: f64,
) -> (f64, Vec<u64>, u64) {
    let (mut ok, mut failed) = (0, 0);
    for t in tasks {
        let (o, f) = t.await.unwrap();
        ok += o;
        failed += f;
    }
    let took = timeline.start.elapsed().as_secs_f64();
    (ok as f64 / took, timeline.seconds(secs), failed)
}

/// `CONNS` tasks calling the store directly, each reserve a new buyer.
async fn store_storm(
    store: &PgStore,
    drop_id: DropId,
    secs: f64,
    serial: &Arc<AtomicU64>,
) -> (f64, Vec<u64>, u64) {
    let timeline = Arc::new(Timeline::new(secs));
    let deadline = timeline.start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..CONNS)
        .map(|_| {
            let store = store.clone();
            let serial = serial.clone();
            let timeline = timeline.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, 0u64);
                while Instant::now() < deadline {
                    let n = serial.fetch_add(1, Ordering::Relaxed);
                    let user = Buyer::claimed(Username::parse(&format!("cold{n}")).unwrap());
                    match store.reserve(drop_id, &user).await {
                        Ok(r) if r.created => {
                            ok += 1;
                            timeline.tick();
                        }
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    gather(tasks, &timeline, secs).await
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Driver {
    Http,
    Store,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Phase {
    Fresh,
    Again,
    Restarted,
}

/// The three storms of one schema on a database of its own.
fn schema_run(
    rt: &Runtime,
    admin_opts: &PgConnectOptions,
    db: &str,
    reset_plans: bool,
    secs: f64,
    serial: &Arc<AtomicU64>,
) -> BTreeMap<(Driver, Phase), Storm> {
    rt.block_on(async {
        let mut admin = admin_opts.connect().await.expect("connect to DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .expect("create bench database");
        let opts = admin_opts.clone().database(db);
        // Migrate, create the drops and (for the old behaviour) reset the
        // plan setting, all before the measured server opens its pool, so
        // the storm is the first thing its connections run.
        let setup = PgStore::builder()
            .listen(false)
            .connect_with(opts.clone())
            .await
            .unwrap();
        let mut drops = BTreeMap::new();
        for driver in [Driver::Http, Driver::Store] {
            let d = setup
                .create_drop(
                    NewDrop::new("Cold", Money::from_minor(100).unwrap(), 1_000_000)
                        .hold(Duration::from_secs(3_600)),
                )
                .await
                .unwrap();
            drops.insert(driver, d.drop.id);
        }
        if reset_plans {
            for f in [
                "dropkit_reserve_units(uuid, text[], text[], uuid[], integer[], uuid[], text[], text[], bytea[])",
                "dropkit_purchase_units(uuid, uuid[], text[], uuid[], text[], text[], bytea[])",
                "dropkit_release(uuid, text)",
                "dropkit_expire_due(integer)",
            ] {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "ALTER FUNCTION {f} RESET plan_cache_mode"
                )))
                .execute(setup.pool())
                .await
                .unwrap();
            }
        }
        setup.close().await;
        let mut observer = PgConnection::connect_with(&opts).await.unwrap();

        let mut out = BTreeMap::new();
        let mut server = Server::start(&opts).await;
        for phase in [Phase::Fresh, Phase::Again, Phase::Restarted] {
            if phase == Phase::Restarted {
                server.shut().await;
                server = Server::start(&opts).await;
            }
            for driver in [Driver::Http, Driver::Store] {
                let before = settled_tuples(&mut observer).await;
                let (per_sec, seconds, failures) = match driver {
                    Driver::Http => http_storm(server.addr, drops[&driver], secs, serial).await,
                    Driver::Store => store_storm(&server.store, drops[&driver], secs, serial).await,
                };
                let after = settled_tuples(&mut observer).await;
                let holds = ((per_sec * secs).round() as u64).max(1) as f64;
                let by_source: BTreeMap<String, f64> = after
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            (v - before.get(k).copied().unwrap_or(0)) as f64 / holds,
                        )
                    })
                    .collect();
                out.insert(
                    (driver, phase),
                    Storm {
                        per_sec,
                        seconds,
                        failures,
                        tuples_per_hold: by_source.values().sum(),
                        by_source,
                    },
                );
            }
        }
        server.store.verify_invariants().await.expect("invariants");
        server.shut().await;
        observer.close().await.ok();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop bench database");
        out
    })
}

/// pgbench: one row updated by `FLOOR_CLIENTS` clients, transactions/s.
fn pgbench_floor(
    rt: &Runtime,
    admin_opts: &PgConnectOptions,
    url: &str,
    db: &str,
    secs: f64,
) -> f64 {
    rt.block_on(async {
        let mut admin = admin_opts.connect().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let mut conn = PgConnection::connect_with(&admin_opts.clone().database(db))
            .await
            .unwrap();
        sqlx::query("CREATE TABLE floor (id int PRIMARY KEY, n bigint NOT NULL)")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO floor VALUES (1, 0)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
    });
    let script = std::env::temp_dir().join(format!("dropkit_floor_{}.sql", std::process::id()));
    std::fs::write(&script, "UPDATE floor SET n = n + 1 WHERE id = 1;\n").unwrap();
    let target = {
        let (base, _) = url.rsplit_once('/').expect("DATABASE_URL names a database");
        format!("{base}/{db}")
    };
    let out = Command::new("pgbench")
        .args(["-n", "-c", &FLOOR_CLIENTS.to_string(), "-j", "2", "-T"])
        .arg(format!("{}", secs.ceil() as u64))
        .arg("-f")
        .arg(&script)
        .arg(&target)
        .output()
        .expect("run pgbench (Debian's postgresql-client or postgresql package)");
    std::fs::remove_file(&script).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"));
    rt.block_on(async {
        let mut admin = admin_opts.connect().await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    });
    tps
}

fn target(what: &str, got: f64, want: f64) {
    let verdict = if got >= want {
        "reached"
    } else {
        "NOT reached"
    };
    println!("  {what}: {got:.2} (target ≥ {want}) — {verdict}");
}

fn main() {
    let secs: f64 = std::env::var("COLD_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin_opts: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pid = std::process::id();
    let serial = Arc::new(AtomicU64::new(0));

    println!(
        "cold_start: {secs} s per storm, {CONNS} connections (HTTP) or tasks (store), \
         one hot drop, a new buyer per reserve; floor = pgbench, {FLOOR_CLIENTS} clients, one row"
    );
    let floor_db = format!("dropkit_coldfloor_{pid}");
    let floor_before = pgbench_floor(&rt, &admin_opts, &url, &floor_db, secs);
    let fixed = schema_run(
        &rt,
        &admin_opts,
        &format!("dropkit_cold_{pid}"),
        false,
        secs,
        &serial,
    );
    // `COLD_BENCH_OLD=0` skips the run with `plan_cache_mode` reset.
    let old = if std::env::var("COLD_BENCH_OLD").as_deref() == Ok("0") {
        BTreeMap::new()
    } else {
        schema_run(
            &rt,
            &admin_opts,
            &format!("dropkit_coldold_{pid}"),
            true,
            secs,
            &serial,
        )
    };
    let floor_after = pgbench_floor(&rt, &admin_opts, &url, &floor_db, secs);
    let floor = (floor_before + floor_after) / 2.0;
    println!("floor: {floor_before:.0} tps before, {floor_after:.0} after, {floor:.0} mean\n");

    println!(
        "{:<28} {:<10} {:>9} {:>8} {:>12}  per second",
        "schema", "storm", "holds/s", "x floor", "tuples/hold"
    );
    for (name, runs) in [
        ("custom plans (current)", &fixed),
        ("plan_cache_mode reset", &old),
    ] {
        for ((driver, phase), s) in runs.iter() {
            println!(
                "{:<28} {:<10} {:>9.0} {:>8.2} {:>12.1}  {:?}",
                format!("{name}, {driver:?}"),
                format!("{phase:?}"),
                s.per_sec,
                s.per_sec / floor,
                s.tuples_per_hold,
                s.seconds
            );
            let sources: Vec<String> = s
                .by_source
                .iter()
                .filter(|(_, v)| **v >= 0.5)
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect();
            if !sources.is_empty() {
                println!("{:<40} tuples/hold by source: {}", "", sources.join(", "));
            }
        }
    }
    println!();
    for driver in [Driver::Http, Driver::Store] {
        let fresh = &fixed[&(driver, Phase::Fresh)];
        let again = &fixed[&(driver, Phase::Again)];
        let restarted = &fixed[&(driver, Phase::Restarted)];
        let first = fresh.seconds.first().copied().unwrap_or(0) as f64;
        println!("{driver:?}, current schema:");
        target("fresh storm / floor", fresh.per_sec / floor, 3.0);
        target("fresh storm's first second / floor", first / floor, 3.0);
        target(
            "fresh storm / restarted storm",
            fresh.per_sec / restarted.per_sec,
            0.8,
        );
        target(
            "second storm / restarted storm",
            again.per_sec / restarted.per_sec,
            0.8,
        );
        if let (Some(old_fresh), Some(old_restarted)) = (
            old.get(&(driver, Phase::Fresh)),
            old.get(&(driver, Phase::Restarted)),
        ) {
            println!(
                "  plan_cache_mode reset: fresh / restarted {:.2}, fresh / floor {:.2}",
                old_fresh.per_sec / old_restarted.per_sec,
                old_fresh.per_sec / floor
            );
        }
    }
    let failed: u64 = fixed.values().chain(old.values()).map(|s| s.failures).sum();
    assert_eq!(failed, 0, "some reserves failed");
}

//! HTTP throughput and latency of `POST /api/reservations` against
//! `GET /api/health` on the same server (the framework's floor), with the
//! buyer named in the body (claimed identity, the load tools' way) and
//! signed in (a guest session's bearer token, checked on every request):
//!
//! - `memory`: the memory store, at 64 and 256 connections;
//! - `postgres`: the PostgreSQL store at `DATABASE_URL`, 256 connections,
//!   with group commit on (the default; claimed and session identity) and
//!   off (claimed). All servers are up at once and every case runs in
//!   interleaved slices, so that outside load falls on all of them alike.
//!   Its health check is a `SELECT 1` through the store's pool, so that
//!   floor includes one database round trip.
//!
//! Each session reserve is a new guest's first, as each claimed one is a
//! new name's: the guests are signed in before the measured slices (their
//! sign-in rate is reported), enough for every reserve to take a unit.
//!
//! ```text
//! cargo bench --bench http_reserve
//! HTTP_BENCH_SECS=5 cargo bench --bench http_reserve   # longer runs
//! HTTP_BENCH_STORES=postgres DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   cargo bench --bench http_reserve                   # one store only
//! ```
//!
//! `HTTP_BENCH_NAMES` sets how buyers are named: `guest` (the default:
//! `g_` and 32 random hex digits, as guest ids are; guests sign in with
//! display names of the same shape, so both identities write the same
//! keys and names), `short` (`buyer1`, `buyer2`, …) or `padded` (`b` and
//! 33 digits, sequential). The session cases' guest ids are `g_` and 32
//! hex digits whatever the setting; only their display names follow it.
//!
//! `HTTP_BENCH_STORES` is a comma-separated list of `memory` and
//! `postgres` (default both). The PostgreSQL cases create a fresh database
//! per server next to `DATABASE_URL`'s (default
//! `postgres://postgres@127.0.0.1:5432/test`) and drop them at the end; an
//! unreachable database fails the run.
//!
//! The server runs in this process on its own 2-thread runtime; the load
//! comes from a small tokio client (one task per keep-alive connection,
//! latencies in an HDR histogram). Both share the machine's cores, as a
//! local load test does.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use drop_core::{InventoryStore, Money, NewDrop, SystemClock};
use drop_store_memory::MemoryStore;
use drop_store_postgres::PgStore;
use drop_ws::DropApi;
use hdrhistogram::Histogram;
use hyper::Method;
use sqlx::ConnectOptions;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use support::{Conn, ms};

/// Connections of the PostgreSQL cases.
const PG_CONNS: usize = 256;
/// Slices each PostgreSQL case is measured in, interleaved with the others.
const ROUNDS: u32 = 3;

struct Outcome {
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    failures: u64,
}

fn main() {
    let secs: f64 = std::env::var("HTTP_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let stores = std::env::var("HTTP_BENCH_STORES").unwrap_or_else(|_| "memory,postgres".into());
    let stores: Vec<&str> = stores.split(',').map(str::trim).collect();
    for s in &stores {
        assert!(
            matches!(*s, "memory" | "postgres"),
            "HTTP_BENCH_STORES: unknown store {s:?} (memory, postgres)"
        );
    }
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let serial = Arc::new(AtomicU64::new(0));
    if stores.contains(&"memory") {
        memory_cases(secs, &server_rt, &client_rt, &serial);
    }
    if stores.contains(&"postgres") {
        if stores.contains(&"memory") {
            println!();
        }
        postgres_cases(secs, &server_rt, &client_rt, &serial);
    }
}

/// What a load sends.
#[derive(Clone)]
enum Load {
    /// `GET /api/health`.
    Health,
    /// A reserve of the drop for a new buyer named in the body.
    Claimed(String),
    /// A reserve of the drop by the next signed-in guest.
    Session(String, Arc<Guests>),
}

/// Signed-in guests' tokens, each used for one reserve.
struct Guests {
    tokens: Vec<String>,
    next: AtomicU64,
}

impl Guests {
    fn take(&self) -> Option<&str> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        self.tokens.get(i).map(String::as_str)
    }
}

/// The name of the `n`th buyer, as `HTTP_BENCH_NAMES` says (see the
/// module docs); unique as long as `n` is.
fn buyer_name(n: u64) -> String {
    static NAMES: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let names =
        NAMES.get_or_init(|| std::env::var("HTTP_BENCH_NAMES").unwrap_or_else(|_| "guest".into()));
    match names.as_str() {
        "guest" => format!("g_{}", uuid::Uuid::new_v4().simple()),
        "short" => format!("buyer{n}"),
        "padded" => format!("b{n:033}"),
        other => panic!("HTTP_BENCH_NAMES: unknown {other:?} (guest, short, padded)"),
    }
}

/// Signs `n` guests in on `addr` over 64 connections: their tokens, and
/// the sign-ins per second.
async fn sign_in_guests(addr: SocketAddr, n: usize) -> (Vec<String>, f64) {
    let left = Arc::new(AtomicU64::new(n as u64));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let left = left.clone();
        let mut conn = Conn::open(addr).await;
        tasks.push(tokio::spawn(async move {
            let mut tokens = Vec::new();
            while let Ok(nth) =
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
            {
                let (status, body) = conn
                    .send_read(
                        Method::POST,
                        "/api/session",
                        // Each guest named as the claimed buyers are.
                        Some(format!(r#"{{"username":"{}"}}"#, buyer_name(nth))),
                    )
                    .await;
                assert_eq!(status, 200, "sign in: {body}");
                let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                tokens.push(answer["token"].as_str().expect("a token").to_owned());
            }
            tokens
        }));
    }
    let mut tokens = Vec::with_capacity(n);
    for t in tasks {
        tokens.extend(t.await.unwrap());
    }
    let rate = tokens.len() as f64 / start.elapsed().as_secs_f64();
    (tokens, rate)
}

/// Guests enough for `need` reserves on `addr`, signed in now.
fn guests(client_rt: &Runtime, addr: SocketAddr, need: usize) -> Arc<Guests> {
    let (tokens, rate) = client_rt.block_on(sign_in_guests(addr, need));
    println!("  (signed in {} guests at {rate:.0}/s)", tokens.len());
    Arc::new(Guests {
        tokens,
        next: AtomicU64::new(0),
    })
}

/// Runs `cases` (name, address, load) in [`ROUNDS`] interleaved slices of
/// `secs / ROUNDS` each, after an unmeasured warm-up; one outcome each.
fn interleaved(
    client_rt: &Runtime,
    cases: &[(&str, SocketAddr, Load)],
    conns: usize,
    secs: f64,
    serial: &Arc<AtomicU64>,
) -> Vec<Outcome> {
    // Every server warms up, the session ones included (their warm-up
    // takes guests from the same pool, which is sized for it).
    for (_, addr, load) in cases {
        client_rt.block_on(load_hist(*addr, conns, 0.3, load.clone(), serial.clone()));
    }
    let slice = secs / f64::from(ROUNDS);
    let mut merged: Vec<(Histogram<u64>, u64, f64)> = cases
        .iter()
        .map(|_| (Histogram::new(3).unwrap(), 0, 0.0))
        .collect();
    for _ in 0..ROUNDS {
        for (i, (_, addr, load)) in cases.iter().enumerate() {
            let (hist, failures, took) =
                client_rt.block_on(load_hist(*addr, conns, slice, load.clone(), serial.clone()));
            merged[i].0.add(hist).unwrap();
            merged[i].1 += failures;
            merged[i].2 += took;
        }
    }
    merged
        .into_iter()
        .map(|(hist, failures, took)| outcome(&hist, failures, took))
        .collect()
}

/// How many guests a session case needs: twice what a claimed run of
/// the same length (and its warm-up) managed in a short probe, and some.
fn guests_needed(
    client_rt: &Runtime,
    addr: SocketAddr,
    what: &Load,
    conns: usize,
    secs: f64,
    serial: &Arc<AtomicU64>,
) -> usize {
    let probe = client_rt.block_on(load(addr, conns, 0.5, what.clone(), serial.clone()));
    (probe.rps * (secs + 0.3) * 2.0) as usize + 10_000
}

fn memory_cases(secs: f64, server_rt: &Runtime, client_rt: &Runtime, serial: &Arc<AtomicU64>) {
    let (claimed_addr, claimed_drop) = server_rt.block_on(start_server(false));
    let (session_addr, session_drop) = server_rt.block_on(start_server(true));
    println!(
        "http_reserve: {secs} s per case in {ROUNDS} interleaved slices, memory store, server and \
         client on this machine"
    );
    let mut rows = Vec::new();
    for conns in [64usize, 256] {
        let claimed = Load::Claimed(claimed_drop.clone());
        let need = guests_needed(client_rt, claimed_addr, &claimed, conns, secs, serial);
        let session = Load::Session(session_drop.clone(), guests(client_rt, session_addr, need));
        let cases = [
            ("GET /api/health", claimed_addr, Load::Health),
            ("reserve, claimed", claimed_addr, claimed),
            ("reserve, session", session_addr, session),
        ];
        let outcomes = interleaved(client_rt, &cases, conns, secs, serial);
        rows.push((conns, outcomes));
    }
    println!(
        "{:<22} {:>6} {:>10} {:>9} {:>9} {:>8}",
        "case", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for (conns, outcomes) in &rows {
        for (name, o) in ["GET /api/health", "reserve, claimed", "reserve, session"]
            .iter()
            .zip(outcomes)
        {
            print_row(name, *conns, o);
        }
    }
    println!();
    for (conns, outcomes) in &rows {
        let [health, claimed, session] = &outcomes[..] else {
            unreachable!()
        };
        println!(
            "{conns:>3} connections: reserve (claimed) {:.2}x the health floor's req/s, p99 {:.2}x; \
             session/claimed {:.2}x the req/s, p99 {:.2}x",
            claimed.rps / health.rps,
            claimed.p99_us as f64 / health.p99_us.max(1) as f64,
            session.rps / claimed.rps,
            session.p99_us as f64 / claimed.p99_us.max(1) as f64
        );
    }
    let failed: u64 = rows
        .iter()
        .flat_map(|(_, o)| o.iter().map(|o| o.failures))
        .sum();
    assert_eq!(failed, 0, "some requests failed");
}

/// One `DropApi` server on a [`PgStore`] in a database of its own.
struct PgServer {
    addr: SocketAddr,
    drop_id: String,
    store: PgStore,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
    db: String,
}

impl PgServer {
    /// Creates database `db`, opens the store on it as `web_drop` does (the
    /// builder's own pool) and serves the API on an ephemeral port.
    async fn start(
        admin: &mut PgConnection,
        admin_opts: &PgConnectOptions,
        db: String,
        group_commit: bool,
        sessions: bool,
    ) -> PgServer {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
            .execute(&mut *admin)
            .await
            .expect("create bench database");
        let store = PgStore::builder()
            .group_commit(group_commit)
            .connect_with(admin_opts.clone().database(&db))
            .await
            .expect("open the PostgreSQL store");
        // Big enough not to sell out, held long enough not to expire mid-run.
        let drop = store
            .create_drop(
                NewDrop::new("Bench", Money::from_minor(100).unwrap(), 1_000_000)
                    .hold(Duration::from_secs(3_600)),
            )
            .await
            .expect("create bench drop");
        let dyn_store: Arc<dyn InventoryStore> = Arc::new(store.clone());
        let api = identity(DropApi::builder(dyn_store), sessions)
            .admin_token("bench")
            .clock(Arc::new(SystemClock))
            .build()
            .await
            .unwrap();
        let (addr, stop, served) = support::serve(api).await;
        PgServer {
            addr,
            drop_id: drop.drop.id.to_string(),
            store,
            stop,
            served,
            db,
        }
    }

    async fn shut(self, admin: &mut PgConnection) {
        self.stop.cancel();
        self.served.await.expect("server task");
        self.store.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {} WITH (FORCE)",
            self.db
        )))
        .execute(&mut *admin)
        .await
        .expect("drop bench database");
    }
}

/// The PostgreSQL cases: health and reserve on a server with group commit
/// on and one with it off, at [`PG_CONNS`] connections.
fn postgres_cases(secs: f64, server_rt: &Runtime, client_rt: &Runtime, serial: &Arc<AtomicU64>) {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin_opts: PgConnectOptions = url.parse().expect("DATABASE_URL");
    let (mut admin, on, on_session, off) = server_rt.block_on(async {
        let mut admin = admin_opts
            .connect()
            .await
            .expect("connect to DATABASE_URL (is PostgreSQL running?)");
        let pid = std::process::id();
        let mut start = async |name: &str, group_commit: bool, sessions: bool| {
            PgServer::start(
                &mut admin,
                &admin_opts,
                format!("dropkit_httpbench_{pid}_{name}"),
                group_commit,
                sessions,
            )
            .await
        };
        let on = start("on", true, false).await;
        let on_session = start("session", true, true).await;
        let off = start("off", false, false).await;
        (admin, on, on_session, off)
    });
    println!(
        "http_reserve: {secs} s per case in {ROUNDS} interleaved slices, PostgreSQL store \
         (pool of 32 per server), {PG_CONNS} connections"
    );
    let claimed = Load::Claimed(on.drop_id.clone());
    let need = guests_needed(client_rt, on.addr, &claimed, PG_CONNS, secs, serial);
    let session = Load::Session(
        on_session.drop_id.clone(),
        guests(client_rt, on_session.addr, need),
    );
    let cases = [
        ("health, batching on", on.addr, Load::Health),
        ("reserve, batching on", on.addr, claimed),
        ("reserve, on, session", on_session.addr, session),
        ("health, batching off", off.addr, Load::Health),
        (
            "reserve, batching off",
            off.addr,
            Load::Claimed(off.drop_id.clone()),
        ),
    ];
    let outcomes = interleaved(client_rt, &cases, PG_CONNS, secs, serial);
    println!(
        "{:<22} {:>6} {:>10} {:>9} {:>9} {:>8}",
        "case", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    for ((name, _, _), o) in cases.iter().zip(&outcomes) {
        print_row(name, PG_CONNS, o);
    }
    let [health_on, reserve_on, session_on, health_off, reserve_off] = &outcomes[..] else {
        unreachable!()
    };
    println!();
    println!(
        "batching on/off: {:.2}x the reservations/s, p99 {:.2}x",
        reserve_on.rps / reserve_off.rps,
        reserve_on.p99_us as f64 / reserve_off.p99_us.max(1) as f64
    );
    println!(
        "reserve/health on the same server: batching on {:.2}x, batching off {:.2}x",
        reserve_on.rps / health_on.rps,
        reserve_off.rps / health_off.rps
    );
    println!(
        "group commit, session/claimed identity: {:.2}x the reservations/s, p99 {:.2}x",
        session_on.rps / reserve_on.rps,
        session_on.p99_us as f64 / reserve_on.p99_us.max(1) as f64
    );
    let failed: u64 = outcomes.iter().map(|o| o.failures).sum();
    server_rt.block_on(async {
        on.shut(&mut admin).await;
        on_session.shut(&mut admin).await;
        off.shut(&mut admin).await;
    });
    assert_eq!(failed, 0, "some requests failed");
}

/// Signed guest sessions (sign-ins unlimited, for the bench's own
/// sign-ins) or claimed identity.
fn identity(builder: drop_ws::DropApiBuilder, sessions: bool) -> drop_ws::DropApiBuilder {
    if sessions {
        builder.sessions(
            drop_ws::SessionIdentity::new(drop_ws::SessionKey::generate()).sign_ins_per_minute(0),
        )
    } else {
        builder.claimed_identity()
    }
}

fn print_row(name: &str, conns: usize, o: &Outcome) {
    println!(
        "{name:<22} {conns:>6} {:>10.0} {:>9} {:>9} {:>8}",
        o.rps,
        ms(o.p50_us),
        ms(o.p99_us),
        o.failures
    );
}

async fn start_server(sessions: bool) -> (SocketAddr, String) {
    let store = Arc::new(MemoryStore::new());
    let drop = store
        .create_drop(NewDrop::new(
            "Bench",
            Money::from_minor(100).unwrap(),
            1_000_000,
        ))
        .await
        .unwrap();
    let store: Arc<dyn InventoryStore> = store;
    let api = identity(DropApi::builder(store), sessions)
        .admin_token("bench")
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = api.router();
    tokio::spawn(async move {
        let _api = api;
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (addr, drop.drop.id.to_string())
}

/// `conns` connections each sending requests back to back for `secs`.
async fn load(
    addr: SocketAddr,
    conns: usize,
    secs: f64,
    what: Load,
    serial: Arc<AtomicU64>,
) -> Outcome {
    let (all, failures, took) = load_hist(addr, conns, secs, what, serial).await;
    outcome(&all, failures, took)
}

fn outcome(all: &Histogram<u64>, failures: u64, took: f64) -> Outcome {
    Outcome {
        rps: all.len() as f64 / took,
        p50_us: all.value_at_quantile(0.50),
        p99_us: all.value_at_quantile(0.99),
        failures,
    }
}

/// [`load`]'s latencies, failures and seconds taken, unsummarised.
async fn load_hist(
    addr: SocketAddr,
    conns: usize,
    secs: f64,
    what: Load,
    serial: Arc<AtomicU64>,
) -> (Histogram<u64>, u64, f64) {
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Conn::open(addr).await);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|mut conn| {
            let what = what.clone();
            let serial = serial.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut failures = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let status = match &what {
                        Load::Health => conn.send(Method::GET, "/api/health", None).await,
                        Load::Claimed(drop_id) => {
                            // Every request a new buyer, so each one takes a unit.
                            let name = buyer_name(serial.fetch_add(1, Ordering::Relaxed));
                            let body = format!(r#"{{"dropId":"{drop_id}","username":"{name}"}}"#);
                            conn.send(Method::POST, "/api/reservations", Some(body))
                                .await
                        }
                        Load::Session(drop_id, guests) => {
                            // Run out of guests: a failure, never a reuse.
                            let Some(token) = guests.take() else {
                                failures += 1;
                                break;
                            };
                            let body = format!(r#"{{"dropId":"{drop_id}"}}"#);
                            conn.send_as(Method::POST, "/api/reservations", Some(body), Some(token))
                                .await
                                .0
                        }
                    };
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    let ok = if matches!(what, Load::Health) {
                        status == 200
                    } else {
                        status == 201
                    };
                    if !ok {
                        failures += 1;
                    }
                }
                (hist, failures)
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).unwrap();
    let mut failures = 0;
    for t in tasks {
        let (h, f) = t.await.unwrap();
        all.add(h).unwrap();
        failures += f;
    }
    let took = start.elapsed().as_secs_f64();
    (all, failures, took)
}

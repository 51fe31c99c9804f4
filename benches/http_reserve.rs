//! HTTP throughput and latency of `POST /api/reservations` on the memory
//! store, against `GET /api/health` on the same server (the framework's
//! floor), at 64 and 256 connections.
//!
//! ```text
//! cargo bench --bench http_reserve
//! HTTP_BENCH_SECS=5 cargo bench --bench http_reserve   # longer runs
//! ```
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

use drop_core::{InventoryStore, Money, NewDrop};
use drop_store_memory::MemoryStore;
use drop_ws::DropApi;
use hdrhistogram::Histogram;
use hyper::Method;

use support::{Conn, ms};

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
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, drop_id) = server_rt.block_on(start_server());
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("http_reserve: {secs} s per case, memory store, server and client on this machine");
    println!(
        "{:<22} {:>6} {:>10} {:>9} {:>9} {:>8}",
        "case", "conns", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let serial = Arc::new(AtomicU64::new(0));
    let mut rows = Vec::new();
    for conns in [64usize, 256] {
        let health = client_rt.block_on(load(addr, conns, secs, None, serial.clone()));
        print_row("GET /api/health", conns, &health);
        let reserve = client_rt.block_on(load(
            addr,
            conns,
            secs,
            Some(drop_id.clone()),
            serial.clone(),
        ));
        print_row("POST /api/reservations", conns, &reserve);
        rows.push((conns, health, reserve));
    }
    println!();
    for (conns, health, reserve) in &rows {
        println!(
            "{conns:>3} connections: reserve runs at {:.2}x the health floor's req/s; p99 {:.2}x the floor's",
            reserve.rps / health.rps,
            reserve.p99_us as f64 / health.p99_us.max(1) as f64
        );
    }
    let failed: u64 = rows.iter().map(|(_, h, r)| h.failures + r.failures).sum();
    assert_eq!(failed, 0, "some requests failed");
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

async fn start_server() -> (SocketAddr, String) {
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
    let api = DropApi::builder(store)
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
    reserve_on: Option<String>,
    serial: Arc<AtomicU64>,
) -> Outcome {
    let mut opened = Vec::with_capacity(conns);
    for _ in 0..conns {
        opened.push(Conn::open(addr).await);
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = opened
        .into_iter()
        .map(|mut conn| {
            let reserve_on = reserve_on.clone();
            let serial = serial.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).unwrap();
                let mut failures = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let status = match &reserve_on {
                        None => conn.send(Method::GET, "/api/health", None).await,
                        Some(drop_id) => {
                            // Every request a new buyer, so each one takes a unit.
                            let n = serial.fetch_add(1, Ordering::Relaxed);
                            let body = format!(r#"{{"dropId":"{drop_id}","username":"buyer{n}"}}"#);
                            conn.send(Method::POST, "/api/reservations", Some(body))
                                .await
                        }
                    };
                    hist.record(t.elapsed().as_micros() as u64).unwrap();
                    let ok = if reserve_on.is_some() {
                        status == 201
                    } else {
                        status == 200
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
    Outcome {
        rps: all.len() as f64 / took,
        p50_us: all.value_at_quantile(0.50),
        p99_us: all.value_at_quantile(0.99),
        failures,
    }
}

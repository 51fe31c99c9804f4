//! Memory store throughput against the floor of a bare `Mutex<u64>`
//! decrement, measured in the same run.
//!
//! `cargo bench --bench memory_store` — prints criterion's figures, then a
//! table of every case as a ratio to the floor with the same thread count.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::Criterion;
use drop_core::{Buyer, DropId, InventoryStore, ManualClock, Money, NewDrop, Username};
use drop_store_memory::MemoryStore;
use futures::FutureExt;
use std::hint::black_box;

const USERS: usize = 1000;
const SPREAD: usize = 1000;
const HOLD: Duration = Duration::from_secs(60);

/// Runs `work(thread, ops)` on `threads` OS threads splitting `iters`, and
/// returns the wall time of the whole.
fn on_threads(threads: usize, iters: u64, work: impl Fn(usize, u64) + Sync) -> Duration {
    let per = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let work = &work;
            s.spawn(move || work(t, per));
        }
    });
    start.elapsed()
}

/// `count` distinct buyers for one thread.
fn users(thread: usize, count: usize) -> Vec<Buyer> {
    (0..count)
        .map(|i| Buyer::claimed(Username::parse(&format!("t{thread}u{i}")).unwrap()))
        .collect()
}

/// A fresh store with `drops` drops of `stock` units each.
fn store_with(drops: usize, stock: u32) -> (MemoryStore, ManualClock, Vec<DropId>) {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let ids = (0..drops)
        .map(|_| {
            store
                .create_drop(NewDrop::new("Bench", Money::ZERO, stock).hold(HOLD))
                .now_or_never()
                .unwrap()
                .unwrap()
                .drop
                .id
        })
        .collect();
    (store, clock, ids)
}

fn floor(c: &mut Criterion, threads: usize) {
    c.bench_function(&format!("floor_mutex_u64/{threads}t"), |b| {
        b.iter_custom(|iters| {
            let stock = Mutex::new(u64::MAX);
            on_threads(threads, iters, |_, n| {
                for _ in 0..n {
                    let mut s = stock.lock().unwrap();
                    *s = black_box(*s - 1);
                }
            })
        })
    });
}

fn reserve_purchase(c: &mut Criterion, spread: bool, threads: usize) {
    let name = format!(
        "reserve_purchase/{}/{threads}t",
        if spread { "spread1000" } else { "hot" }
    );
    c.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            let drops = if spread { SPREAD } else { 1 };
            let stock = (iters / drops as u64 + 1).min(1_000_000) as u32;
            let (store, _, ids) = store_with(drops, stock);
            let cycles = iters.min(stock as u64 * drops as u64);
            // One buyer per cycle: a buyer who bought may not buy again
            // (`maxPerBuyer`), so buyers are made before the clock starts.
            let per_thread = cycles.div_ceil(threads as u64) as usize;
            let users: Vec<_> = (0..threads).map(|t| users(t, per_thread)).collect();
            on_threads(threads, cycles, |t, n| {
                for i in 0..n as usize {
                    let user = &users[t][i];
                    let drop = ids[(i * threads + t) % ids.len()];
                    let hold = store.reserve(drop, user).now_or_never().unwrap().unwrap();
                    store
                        .purchase(hold.reservation.id, &user.id)
                        .now_or_never()
                        .unwrap()
                        .unwrap();
                }
            })
        })
    });
}

fn reserve_expire(c: &mut Criterion, spread: bool, threads: usize) {
    let name = format!(
        "reserve_expire/{}/{threads}t",
        if spread { "spread1000" } else { "hot" }
    );
    c.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            let drops = if spread { SPREAD } else { 1 };
            let (store, clock, ids) = store_with(drops, (USERS * threads) as u32);
            let users: Vec<_> = (0..threads).map(|t| users(t, USERS)).collect();
            let chunk = USERS as u64;
            let start = Instant::now();
            let mut done = 0;
            while done < iters {
                let n = chunk.min(iters - done);
                // Each thread takes `n / threads` holds, then one sweep
                // returns them all: the scheduler's batch, per hold.
                on_threads(threads, n, |t, n| {
                    for i in 0..n as usize {
                        let drop = ids[(i * threads + t) % ids.len()];
                        store
                            .reserve(drop, &users[t][i])
                            .now_or_never()
                            .unwrap()
                            .unwrap();
                    }
                });
                clock.advance(HOLD);
                store
                    .expire_due(usize::MAX)
                    .now_or_never()
                    .unwrap()
                    .unwrap();
                done += n;
            }
            start.elapsed()
        })
    });
}

/// Mean time per iteration of a finished benchmark, from criterion's output.
fn mean_ns(dir: &Path, id: &str) -> Option<f64> {
    let path = dir.join(id.replace('/', "_")).join("new/estimates.json");
    let raw = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&raw).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn main() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion-memory");
    // Only this run's figures may enter the ratio table.
    let _ = std::fs::remove_dir_all(&out);
    let mut c = Criterion::default()
        .output_directory(&out)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    for threads in [1, 2] {
        floor(&mut c, threads);
        for spread in [false, true] {
            reserve_purchase(&mut c, spread, threads);
            reserve_expire(&mut c, spread, threads);
        }
    }
    c.final_summary();

    // Every figure as a ratio to the floor measured in this run.
    for threads in [1, 2] {
        let Some(floor) = mean_ns(&out, &format!("floor_mutex_u64/{threads}t")) else {
            return; // A filtered run: nothing to compare.
        };
        println!("\nthreads = {threads}: floor (Mutex<u64> decrement) {floor:.1} ns/op");
        for case in ["reserve_purchase", "reserve_expire"] {
            for place in ["hot", "spread1000"] {
                let id = format!("{case}/{place}/{threads}t");
                if let Some(ns) = mean_ns(&out, &id) {
                    let ops = 1e9 / ns;
                    println!(
                        "  {id:<34} {ns:>9.1} ns/cycle  {ops:>12.0} cycles/s  {:>6.1}x the floor's time",
                        ns / floor
                    );
                }
            }
        }
    }
}

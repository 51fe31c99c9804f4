//! A draw of 1,000,000 entries over 4 variants made through the memory
//! store, against the baseline of the pure `drop_core::draw` of the same
//! entries in the same run.
//!
//! `cargo bench --bench memory_draw` — for each round: a fresh store, a
//! draw drop of 4 variants × 250 units, 1,000,000 buyers entering (timed,
//! reported as entries per second), the clock moved past `drawAt`, then
//! `run_draw` (timed). The baseline redraws the very entries and stock the
//! store published (`draw_status`) with the pure function, best of 3. The
//! store's draw adds to it: publishing (a sort of the entries by receipt),
//! a hash map from receipt to entry, one offered hold per winner, one
//! place in line per other entry (a B-tree insert and an index entry
//! each), and the events and log entries of the winners. Rounds default
//! to 3 (`MEMORY_DRAW_ROUNDS`); medians are printed last.

use std::sync::Arc;
use std::time::{Duration, Instant};

use drop_core::{
    Buyer, Clock, DrawKey, InventoryStore, ManualClock, Money, NewDrop, NewVariant, Username, draw,
    draw_and_publish,
};
use drop_store_memory::MemoryStore;
use std::hint::black_box;

const ENTRIES: usize = 1_000_000;
const VARIANTS: usize = 4;
const STOCK: u32 = 250;

/// splitmix64: which variant each buyer enters for, without a random
/// source (the receipts come from the store's own).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One round's figures.
struct Round {
    enter: Duration,
    store_draw: Duration,
    pure_draw: Duration,
    pure_publish: Duration,
}

/// The best of `n` runs of `f`.
fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .expect("n > 0")
}

async fn round(buyers: &[Buyer]) -> Round {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let draw_at = clock.now() + Duration::from_secs(3600);
    let d = store
        .create_drop(
            NewDrop::with_variants(
                "Million",
                Money::ZERO,
                (0..VARIANTS).map(|i| NewVariant::new(format!("v{i}"), STOCK)),
            )
            .draw_at(draw_at),
        )
        .await
        .expect("create");
    let id = d.drop.id;
    let variants: Vec<_> = d.drop.variants.iter().map(|v| v.id).collect();

    let start = Instant::now();
    for (i, b) in buyers.iter().enumerate() {
        // Entrants favour some variants, as they do (as in `benches/draw.rs`).
        let v = variants[(mix(i as u64) % 10).min(VARIANTS as u64 - 1) as usize];
        store.enter_draw(id, b, Some(v)).await.expect("enter");
    }
    let enter = start.elapsed();

    clock.set(draw_at);
    let start = Instant::now();
    let summary = store.run_draw(id, None).await.expect("draw").expect("due");
    let store_draw = start.elapsed();
    assert_eq!(summary.entries as usize, buyers.len());
    assert_eq!(summary.winners, STOCK * VARIANTS as u32);

    let published = store
        .draw_status(id)
        .await
        .expect("status")
        .published
        .expect("drawn");
    let key = DrawKey::derive(&published.seed, None);
    let pure_draw = best_of(3, || {
        black_box(draw(&key, black_box(&published.entries), &published.stock).unwrap());
    });
    let pure_publish = best_of(3, || {
        black_box(
            draw_and_publish(
                published.seed,
                None,
                published.entries.clone(),
                published.stock.clone(),
            )
            .unwrap(),
        );
    });
    Round {
        enter,
        store_draw,
        pure_draw,
        pure_publish,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`,
    // a debug build) one small round only checks that the bench runs.
    let quick = !std::env::args().any(|a| a == "--bench");
    let entries = if quick { 10_000 } else { ENTRIES };
    let rounds: usize = std::env::var("MEMORY_DRAW_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if quick { 1 } else { 3 });
    let buyers: Vec<Buyer> = (0..entries)
        .map(|i| Buyer::claimed(Username::parse(&format!("buyer{i:07}")).expect("name")))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    println!(
        "memory_draw: {entries} entries, {VARIANTS} variants × {STOCK} units, {rounds} round(s)"
    );
    println!(
        "{:>5} {:>12} {:>12} {:>14} {:>12} {:>10} {:>12}",
        "round", "enter (s)", "entries/s", "store draw", "pure draw", "ratio", "vs publish"
    );
    let mut ratios = Vec::new();
    let mut draws = Vec::new();
    for r in 0..rounds {
        let f = runtime.block_on(round(&buyers));
        let ratio = f.store_draw.as_secs_f64() / f.pure_draw.as_secs_f64();
        let vs_publish = f.store_draw.as_secs_f64() / f.pure_publish.as_secs_f64();
        println!(
            "{:>5} {:>12.2} {:>12.0} {:>12.1}ms {:>10.1}ms {:>9.2}x {:>11.2}x",
            r + 1,
            f.enter.as_secs_f64(),
            entries as f64 / f.enter.as_secs_f64(),
            f.store_draw.as_secs_f64() * 1e3,
            f.pure_draw.as_secs_f64() * 1e3,
            ratio,
            vs_publish,
        );
        ratios.push(ratio);
        draws.push(f.store_draw.as_secs_f64());
    }
    println!(
        "median: store draw {:.1} ms = {:.2}x the pure drop_core::draw of the same entries \
         (baseline, best of 3 in the same round)",
        median(draws) * 1e3,
        median(ratios)
    );
}

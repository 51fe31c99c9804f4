//! A draw of 1,000,000 entries over 4 variants, against the baseline of
//! hashing the same entry list in the same run.
//!
//! `cargo bench --bench draw` — prints criterion's figures, then each case
//! as a ratio to the baseline: `entry_list_hash` (sort the entries by
//! receipt, one sha256 pass over the 70 MB canonical list), the least any
//! check of a published list does. A draw adds one HMAC-SHA256 per entry
//! and one sort by rank; `verify_draw` is a draw plus comparing winners.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, SamplingMode};
use drop_core::VariantId;
use drop_core::draw::{
    DrawEntry, DrawKey, DrawStock, Receipt, Seed, draw, draw_and_publish, entry_list_hash,
    verify_draw,
};
use std::hint::black_box;

const ENTRIES: usize = 1_000_000;
const VARIANTS: usize = 4;
const STOCK: u32 = 250;

/// splitmix64: distinct, random-looking receipts without a million calls
/// to the operating system's random source.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn inputs() -> (Vec<DrawEntry>, Vec<DrawStock>) {
    let variants: Vec<VariantId> = (0..VARIANTS).map(|_| VariantId::new()).collect();
    let entries = (0..ENTRIES as u64)
        .map(|i| {
            let mut bytes = [0; 16];
            bytes[..8].copy_from_slice(&mix(2 * i).to_be_bytes());
            bytes[8..].copy_from_slice(&mix(2 * i + 1).to_be_bytes());
            // Entrants favour some variants, as they do.
            let variant = variants[(mix(i) % 10).min(VARIANTS as u64 - 1) as usize];
            DrawEntry::new(Receipt::from_bytes(bytes), variant)
        })
        .collect();
    let stock = variants.iter().map(|&v| DrawStock::new(v, STOCK)).collect();
    (entries, stock)
}

/// Mean time per iteration of a finished benchmark, from criterion's output.
fn mean_ns(dir: &Path, group: &str, id: &str) -> Option<f64> {
    let path = dir.join(group).join(id).join("new/estimates.json");
    let raw = std::fs::read_to_string(&path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&raw).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn main() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("criterion-draw");
    // Only this run's figures may enter the ratio table.
    let _ = std::fs::remove_dir_all(&out);
    let mut c = Criterion::default()
        .output_directory(&out)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10))
        .sample_size(10)
        .configure_from_args();

    let (entries, stock) = inputs();
    let seed = Seed::generate();
    let key = DrawKey::derive(&seed, None);
    let (_, published) = draw_and_publish(seed, None, entries.clone(), stock.clone()).unwrap();

    let mut group = c.benchmark_group("draw_1m");
    // Each iteration takes most of a second: the same few per sample.
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("baseline_entry_list_hash", |b| {
        b.iter(|| entry_list_hash(black_box(&entries)).unwrap())
    });
    group.bench_function("draw", |b| {
        b.iter(|| draw(&key, black_box(&entries), &stock).unwrap())
    });
    group.bench_function("verify_draw", |b| {
        b.iter(|| verify_draw(black_box(&published)).unwrap())
    });
    group.finish();
    c.final_summary();

    let Some(base) = mean_ns(&out, "draw_1m", "baseline_entry_list_hash") else {
        return; // A filtered run: nothing to compare.
    };
    println!(
        "\n{ENTRIES} entries, {VARIANTS} variants: baseline (entry_list_hash) {:.1} ms",
        base / 1e6
    );
    for case in ["draw", "verify_draw"] {
        if let Some(ns) = mean_ns(&out, "draw_1m", case) {
            println!(
                "  {case:<12} {:>8.1} ms  {:>6.0} ns/entry  {:>5.2}x the baseline's time",
                ns / 1e6,
                ns / ENTRIES as f64,
                ns / base
            );
        }
    }
}

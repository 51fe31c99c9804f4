//! Heap bytes the memory store keeps per active hold, measured with
//! 1,000,000 active holds, against the baseline of the hold record itself
//! (`size_of::<Reservation>()` plus its buyer's name's bytes).
//!
//! `cargo bench --bench memory_per_hold`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

use drop_core::{Buyer, InventoryStore, ManualClock, Money, NewDrop, Reservation, Username};
use drop_store_memory::MemoryStore;
use futures::FutureExt;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const HOLDS: usize = 1_000_000;

fn main() {
    // `cargo bench` passes `--bench`; a filtered run that names another
    // bench passes its name: run only when unfiltered or named.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !args.is_empty() && !args.iter().any(|a| "memory_per_hold".contains(a.as_str())) {
        return;
    }
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock));
    let drop = store
        .create_drop(NewDrop::new("Big", Money::ZERO, HOLDS as u32))
        .now_or_never()
        .unwrap()
        .unwrap()
        .drop
        .id;
    let names: Vec<String> = (0..HOLDS).map(|i| format!("buyer_{i:07}")).collect();
    let name_len = names[0].len();
    let before = LIVE.load(Ordering::SeqCst);
    for name in &names {
        // The store keeps the only reference to the parsed name.
        let user = Buyer::claimed(Username::parse(name).unwrap());
        store.reserve(drop, &user).now_or_never().unwrap().unwrap();
    }
    let after = LIVE.load(Ordering::SeqCst);
    let per_hold = (after - before) as f64 / HOLDS as f64;
    // The record itself: the struct, plus the name's heap bytes (one
    // `Arc<str>`, two counters and the text, which a claimed buyer's id and
    // display name share).
    let baseline = (std::mem::size_of::<Reservation>() + 16 + name_len) as f64;
    let stock = store.get_drop(drop).now_or_never().unwrap().unwrap().stock;
    assert_eq!(stock.reserved as usize, HOLDS);
    println!("memory per active hold, {HOLDS} active holds on one drop:");
    println!("  store:    {per_hold:>7.1} bytes/hold");
    println!(
        "  baseline: {baseline:>7.1} bytes/hold (the Reservation record and its buyer's name)"
    );
    println!("  ratio:    {:>7.2}x the record", per_hold / baseline);
}

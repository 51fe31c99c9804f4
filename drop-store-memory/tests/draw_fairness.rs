//! Statistical fairness of draws made THROUGH the memory store: a drop is
//! created, eight buyers enter in a fixed order, the clock passes
//! `drawAt`, `run_draw` draws and the outcomes are read back with
//! `draw_entry`. Over 4,000 such draws of 2 units each, every entrant
//! (by the order they entered) should win 1,000 times and be first in
//! line 500 times, whatever their place in the entry order. This is what
//! the pure test (`drop-core/tests/draw_fairness.rs`) cannot see: the
//! store feeding the draw its entries, stock and receipts, and mapping the
//! ranking back to buyers, lines and outcomes.
//!
//! Seeds and receipts come from [`SeededRandom`] with a fixed label, so
//! they are the same on every run. The store mints the variant ids,
//! though (random UUIDs, part of the hashed entry list), so each run
//! still draws differently: a fair store exceeds a p = 0.001 threshold
//! one run in a thousand per statistic. To keep that from ever failing a
//! build, a statistic over its threshold is measured once more on an
//! independent batch (another label) and fails only if that one exceeds
//! it too: one run in a million for a fair store, while a real bias
//! exceeds it on both (see the last test).
//!
//! Critical values of the chi-square distribution at p = 0.001, from the
//! standard tables (NIST/SEMATECH e-Handbook of Statistical Methods,
//! 1.3.6.7.4 "Critical Values of the Chi-Square Distribution"):
//! 7 degrees of freedom 24.322.
//!
//! It can fail: a store that favoured early entries, say by giving the
//! units to the first two entrants in one draw of ten (a tie broken by
//! entry order, a stock count read before the draw, …), gives entrants 0
//! and 1 about 1,300 wins each, a χ² far above 100;
//! `the_statistic_catches_a_store_favouring_early_entries` applies exactly
//! that bias to real outcomes and checks the statistic flags it.

use std::sync::Arc;
use std::time::Duration;

use drop_core::{
    Buyer, Clock, EntryOutcome, InventoryStore, ManualClock, Money, NewDrop, SeededRandom, Username,
};
use drop_store_memory::MemoryStore;

/// Draws per batch: 1,000 expected wins per entrant.
const DRAWS: usize = 4_000;
/// Entrants per draw.
const ENTRANTS: usize = 8;
/// Units per draw.
const UNITS: u32 = 2;
/// χ² critical value at p = 0.001, 7 degrees of freedom (8 cells).
const CHI2_7DF_P001: f64 = 24.322;
/// The fixed label of the first batch.
const LABEL: &str = "dropkit memory draw fairness";

/// One draw's outcome: each entrant's place in the draw order (1 = drawn
/// first), by the order they entered.
type Places = [u32; ENTRANTS];

/// `draws` draws through a memory store, seeded by `label`.
async fn run_draws(label: &str, draws: usize) -> Vec<Places> {
    let clock = ManualClock::fixed();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .draw_random(Arc::new(SeededRandom::new(label)))
        .build();
    let buyers: Vec<Buyer> = (0..ENTRANTS)
        .map(|i| Buyer::claimed(Username::parse(&format!("entrant{i}")).unwrap()))
        .collect();
    let mut out = Vec::with_capacity(draws);
    for _ in 0..draws {
        let draw_at = clock.now() + Duration::from_secs(60);
        let d = store
            .create_drop(NewDrop::new("Raffle", Money::ZERO, UNITS).draw_at(draw_at))
            .await
            .unwrap();
        let id = d.drop.id;
        for b in &buyers {
            store.enter_draw(id, b, None).await.unwrap();
        }
        clock.set(draw_at);
        let summary = store.run_draw(id, None).await.unwrap().expect("due");
        assert_eq!((summary.entries, summary.winners), (ENTRANTS as u32, UNITS));
        let mut places = [0; ENTRANTS];
        for (i, b) in buyers.iter().enumerate() {
            let e = store.draw_entry(id, &b.id).await.unwrap().expect("entered");
            let place = e.draw_position.expect("drawn");
            let won = e.outcome == Some(EntryOutcome::Won);
            assert_eq!(won, place <= UNITS, "{e:?}");
            places[i] = place;
        }
        out.push(places);
    }
    out
}

/// How often each entrant got a place in `range` (by entry order).
fn tally(outcomes: &[Places], range: std::ops::RangeInclusive<u32>) -> [u64; ENTRANTS] {
    let mut counts = [0; ENTRANTS];
    for places in outcomes {
        for (i, p) in places.iter().enumerate() {
            if range.contains(p) {
                counts[i] += 1;
            }
        }
    }
    counts
}

/// Pearson's statistic of `counts` against equal expected counts.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// Wins, and first places in line, per entrant.
fn statistics(outcomes: &[Places]) -> [(&'static str, [u64; ENTRANTS]); 2] {
    [
        ("wins", tally(outcomes, 1..=UNITS)),
        ("first in line", tally(outcomes, UNITS + 1..=UNITS + 1)),
    ]
}

#[tokio::test]
async fn winners_and_the_line_are_uniform_through_the_store() {
    let outcomes = run_draws(LABEL, DRAWS).await;
    let mut retry = None;
    for (k, (name, counts)) in statistics(&outcomes).into_iter().enumerate() {
        let chi = chi_square(&counts);
        eprintln!("{name} {counts:?}: χ² = {chi:.2}");
        if chi < CHI2_7DF_P001 {
            continue;
        }
        // One fair run in a thousand lands here: measure again, apart.
        let again = retry.get_or_insert(run_draws(&format!("{LABEL} again"), DRAWS).await);
        let (_, counts) = &statistics(again)[k];
        let chi = chi_square(counts);
        eprintln!("{name}, second batch {counts:?}: χ² = {chi:.2}");
        assert!(chi < CHI2_7DF_P001, "{name} {counts:?}: χ² = {chi:.2}");
    }
}

/// The statistic above does catch a biased store: the same draws, but one
/// in ten gives the units to the first two entrants.
#[tokio::test]
async fn the_statistic_catches_a_store_favouring_early_entries() {
    let mut outcomes = run_draws(&format!("{LABEL} biased"), DRAWS).await;
    for places in outcomes.iter_mut().step_by(10) {
        // Entrants 0 and 1 take places 1 and 2; whoever had them moves to
        // the places 0 and 1 had.
        for favoured in 0..UNITS as usize {
            let want = favoured as u32 + 1;
            let holder = places.iter().position(|&p| p == want).unwrap();
            places.swap(holder, favoured);
        }
    }
    let (_, wins) = &statistics(&outcomes)[0];
    let chi = chi_square(wins);
    eprintln!("biased wins {wins:?}: χ² = {chi:.2}");
    assert!(
        chi > CHI2_7DF_P001,
        "wins {wins:?}: χ² = {chi:.2} should exceed the threshold"
    );
}

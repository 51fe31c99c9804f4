//! Statistical fairness of the draw: over many draws, every entry wins as
//! often as every other, and the waiting list is as uniform.
//!
//! The seeds are `sha256("dropkit draw fairness" ‖ i)` for draw `i` (as
//! 8 big-endian bytes), so every run sees the same draws: the test cannot
//! flake, and a failure is a real bias (or one run in a thousand of a fair
//! draw, which would fail on every run: then change the fixed seed's label
//! and look again).
//!
//! Critical values of the chi-square distribution at p = 0.001 (the
//! statistic of a fair draw exceeds them one time in a thousand), from the
//! standard tables (NIST/SEMATECH e-Handbook of Statistical Methods,
//! 1.3.6.7.4 "Critical Values of the Chi-Square Distribution"):
//! 9 degrees of freedom 27.877; 89 degrees of freedom 135.978.

use drop_core::VariantId;
use drop_core::draw::{DrawEntry, DrawKey, DrawStock, Receipt, Seed, draw};
use sha2::{Digest, Sha256};

/// Draws per test: 2,000 expected wins per entry of ten.
const DRAWS: usize = 20_000;
/// Entries per draw.
const ENTRIES: usize = 10;
/// χ² critical value at p = 0.001, 9 degrees of freedom (10 cells).
const CHI2_9DF_P001: f64 = 27.877;
/// χ² critical value at p = 0.001, 89 degrees of freedom (90 cells).
const CHI2_89DF_P001: f64 = 135.978;

/// A fixed variant: its id is part of the entry list, so a random one
/// would make every run draw differently.
fn variant() -> VariantId {
    "00000000-0000-4000-8000-000000000001".parse().unwrap()
}

fn seed(i: usize) -> Seed {
    let mut hash = Sha256::new();
    hash.update(b"dropkit draw fairness");
    hash.update((i as u64).to_be_bytes());
    Seed::from_bytes(hash.finalize().into())
}

/// Receipts as regular as can be (00…00, 01…01, …): a ranking that leaked
/// any structure of its input would show here first.
fn entries(count: usize, variant: VariantId) -> Vec<DrawEntry> {
    (0..count)
        .map(|j| DrawEntry::new(Receipt::from_bytes([j as u8; 16]), variant))
        .collect()
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

/// The position (in `entries`) of a receipt.
fn position(entries: &[DrawEntry], receipt: Receipt) -> usize {
    entries.iter().position(|e| e.receipt == receipt).unwrap()
}

#[test]
fn winners_and_the_waiting_list_are_uniform() {
    let variant = variant();
    let entries = entries(ENTRIES, variant);
    let stock = [DrawStock::new(variant, 1)];
    let mut wins = [0u64; ENTRIES];
    let mut first_in_line = [0u64; ENTRIES];
    // (winner, first in line): 90 ordered pairs, each as likely as any
    // other when the whole order is uniform.
    let mut pairs = [[0u64; ENTRIES]; ENTRIES];
    for i in 0..DRAWS {
        let result = draw(&DrawKey::derive(&seed(i), None), &entries, &stock).unwrap();
        let drawn = &result.variants[0];
        assert_eq!(drawn.winners.len(), 1);
        assert_eq!(drawn.waitlist.len(), ENTRIES - 1);
        let winner = position(&entries, drawn.winners[0]);
        let next = position(&entries, drawn.waitlist[0]);
        wins[winner] += 1;
        first_in_line[next] += 1;
        pairs[winner][next] += 1;
    }

    let chi = chi_square(&wins);
    eprintln!("wins {wins:?}: χ² = {chi:.2}");
    assert!(chi < CHI2_9DF_P001, "wins {wins:?}: χ² = {chi:.2}");
    let chi = chi_square(&first_in_line);
    eprintln!("first in line {first_in_line:?}: χ² = {chi:.2}");
    assert!(
        chi < CHI2_9DF_P001,
        "first in line {first_in_line:?}: χ² = {chi:.2}"
    );
    let cells: Vec<u64> = (0..ENTRIES)
        .flat_map(|w| (0..ENTRIES).filter(move |&n| n != w).map(move |n| (w, n)))
        .map(|(w, n)| pairs[w][n])
        .collect();
    assert_eq!(cells.len(), 90);
    let chi = chi_square(&cells);
    eprintln!("(winner, next) pairs: χ² = {chi:.2}");
    assert!(chi < CHI2_89DF_P001, "(winner, next) pairs: χ² = {chi:.2}");
}

/// The same statistic does catch an unfair draw: one buyer of ten who got
/// two entries (the one-entry rule broken) wins about twice as often, and
/// the test above would fail on it.
#[test]
fn the_test_catches_a_buyer_with_two_entries() {
    let variant = variant();
    // Eleven receipts; the last one belongs to buyer 0 too.
    let entries = entries(ENTRIES + 1, variant);
    let stock = [DrawStock::new(variant, 1)];
    let mut wins_per_buyer = [0u64; ENTRIES];
    for i in 0..DRAWS / 4 {
        let result = draw(&DrawKey::derive(&seed(i), None), &entries, &stock).unwrap();
        let buyer = position(&entries, result.variants[0].winners[0]) % ENTRIES;
        wins_per_buyer[buyer] += 1;
    }
    let chi = chi_square(&wins_per_buyer);
    eprintln!("wins per buyer {wins_per_buyer:?}: χ² = {chi:.2}");
    assert!(
        chi > CHI2_9DF_P001,
        "wins {wins_per_buyer:?}: χ² = {chi:.2} should exceed the threshold"
    );
}

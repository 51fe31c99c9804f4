//! A draw drop's entries and its draw, as part of the drop's ledger (see
//! [`drop_core::entry`] for the rules): the entries live with the drop,
//! under its lock, so the draw freezes them, ranks them and hands out the
//! holds and places in one critical section.
//!
//! Entries sit in a vector (the draw reads them all) with an index by
//! buyer; a withdrawal swaps the last entry into the hole, so every
//! operation but the draw is O(1), and the draw is the O(n log n) of
//! [`drop_core::draw`] plus one hash map from receipt to entry.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Beacon, Buyer, BuyerId, DrawEntry, DrawStatus, DrawStock, DrawSummary, DropError,
    DropEvent, Entry, EntryOutcome, PublishedDraw, Receipt, ReservationId, SaleMode, Seed,
    VariantId, draw_and_publish,
};

use super::Ledger;
use crate::line::Place;

/// A draw drop's secret, entries and, once drawn, what it published.
#[derive(Debug)]
pub(crate) struct DrawBook {
    /// Drawn when the drop was created; only its hash is shown until the
    /// draw.
    seed: Seed,
    /// Every entry, in no meaningful order (withdrawals reorder them).
    entries: Vec<Stored>,
    /// Where each buyer's entry sits in `entries`.
    by_buyer: HashMap<BuyerId, usize>,
    /// What the draw published; `None` before it.
    published: Option<PublishedDraw>,
}

/// One entry as kept: [`Entry`] without the drop id.
#[derive(Debug)]
struct Stored {
    buyer: Buyer,
    variant_id: VariantId,
    receipt: Receipt,
    entered_at: DateTime<Utc>,
    outcome: Option<EntryOutcome>,
    draw_position: Option<u32>,
    reservation_id: Option<ReservationId>,
}

impl DrawBook {
    pub(crate) fn new(seed: Seed) -> Self {
        Self {
            seed,
            entries: Vec::new(),
            by_buyer: HashMap::new(),
            published: None,
        }
    }
}

/// Hashes a receipt by its first 8 bytes: receipts are random bytes the
/// store drew itself (nobody can pick them to collide), so SipHash's
/// defence buys nothing in the draw's million lookups.
#[derive(Debug, Default)]
struct ReceiptHasher(u64);

impl Hasher for ReceiptHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `Receipt` hashes as its 16 bytes (one call); any other input
        // still mixes in, so the map stays correct, just slower.
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// A count as the API carries it (entries are bounded by memory, far
/// below `u32::MAX` in practice).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Ledger {
    /// The drop's draw book: `NOT_A_DRAW` for a first-come drop.
    fn book(&self) -> Result<&DrawBook, DropError> {
        match &self.draw {
            Some(book) if self.drop.mode == SaleMode::Draw => Ok(book),
            _ => Err(DropError::NotADraw {
                drop_id: self.drop.id,
            }),
        }
    }

    fn entry_of(&self, stored: &Stored) -> Entry {
        let mut entry = Entry::new(
            self.drop.id,
            stored.variant_id,
            stored.buyer.clone(),
            stored.receipt,
            stored.entered_at,
        );
        entry.outcome = stored.outcome;
        entry.draw_position = stored.draw_position;
        entry.reservation_id = stored.reservation_id;
        entry
    }

    /// Enters `buyer` for one unit of `variant` (the only one when
    /// `None`), checking in the order [`drop_core::entry`] gives;
    /// `receipt` is drawn only for a new entry.
    pub(crate) fn enter(
        &mut self,
        buyer: &Buyer,
        variant: Option<VariantId>,
        receipt: impl FnOnce() -> Receipt,
        now: DateTime<Utc>,
    ) -> Result<Applied<Entry>, DropError> {
        let variant_id = self.drop.pick_variant(variant)?.id;
        self.drop.check_entries_open(now)?;
        let book = self.book()?;
        if let Some(&at) = book.by_buyer.get(&buyer.id) {
            return Ok(Applied::new(self.entry_of(&book.entries[at]), false));
        }
        let stored = Stored {
            buyer: buyer.clone(),
            variant_id,
            receipt: receipt(),
            entered_at: now,
            outcome: None,
            draw_position: None,
            reservation_id: None,
        };
        let entry = self.entry_of(&stored);
        let book = self.draw.as_mut().expect("checked by book()");
        book.by_buyer.insert(buyer.id.clone(), book.entries.len());
        book.entries.push(stored);
        Ok(Applied::new(entry, true))
    }

    /// Takes `buyer`'s entry back before `drawAt`; answers it.
    pub(crate) fn withdraw(
        &mut self,
        buyer: &BuyerId,
        now: DateTime<Utc>,
    ) -> Result<Option<Entry>, DropError> {
        self.book()?;
        let closed = match self.drop.draw_at {
            Some(at) => self.drop.drawn_at.is_some() || now >= at,
            None => true,
        };
        if closed {
            return Err(DropError::EntriesClosed {
                drop_id: self.drop.id,
            });
        }
        let book = self.draw.as_mut().expect("checked by book()");
        let Some(at) = book.by_buyer.remove(buyer) else {
            return Ok(None);
        };
        let stored = book.entries.swap_remove(at);
        if let Some(moved) = book.entries.get(at) {
            book.by_buyer.insert(moved.buyer.id.clone(), at);
        }
        Ok(Some(self.entry_of(&stored)))
    }

    /// `buyer`'s entry with its outcome; `None` on a first-come drop.
    pub(crate) fn draw_entry(&self, buyer: &BuyerId) -> Option<Entry> {
        let book = self.book().ok()?;
        let at = *book.by_buyer.get(buyer)?;
        Some(self.entry_of(&book.entries[at]))
    }

    /// How many entries the drop holds (0 on a first-come drop).
    pub(crate) fn entry_count(&self) -> usize {
        self.draw.as_ref().map_or(0, |b| b.entries.len())
    }

    /// The draw's public record.
    pub(crate) fn draw_status(&self) -> Result<DrawStatus, DropError> {
        let book = self.book()?;
        let draw_at = self.drop.draw_at.ok_or(DropError::NotADraw {
            drop_id: self.drop.id,
        })?;
        let mut status = DrawStatus::pending(
            self.drop.id,
            draw_at,
            book.seed.hash(),
            self.drop.beacon_name.clone(),
        );
        status.drawn_at = self.drop.drawn_at;
        status.published = book.published.clone();
        Ok(status)
    }

    /// Makes the draw at `now` if it is due (see
    /// [`InventoryStore::run_draw`](drop_core::InventoryStore::run_draw)
    /// for the checks); `tickets(n)` hands out `n` consecutive tickets for
    /// the places, answering the first. Events:
    /// one `HoldCreated` per winner, `DrawCompleted`, then the stock.
    pub(crate) fn run_draw(
        &mut self,
        beacon: Option<Beacon>,
        tickets: impl FnOnce(u64) -> u64,
        now: DateTime<Utc>,
        events: &mut Vec<DropEvent>,
    ) -> Result<Option<DrawSummary>, DropError> {
        let book = self.book()?;
        if self.drop.beacon_name.is_some() != beacon.is_some() {
            return Err(DropError::invalid(
                "beacon",
                if beacon.is_some() {
                    "the drop names no beacon: draw without one"
                } else {
                    "the drop names a beacon: its value is required"
                },
            ));
        }
        if !self.drop.draw_due(now) {
            return Ok(None);
        }
        // Nothing can hold a unit before the draw (reserves and joins
        // answer DRAW_ONLY), so a variant's free units are its stock left.
        let stock: Vec<DrawStock> = self
            .variants
            .iter()
            .map(|v| DrawStock::new(v.id, v.available()))
            .collect();
        let entries: Vec<DrawEntry> = book
            .entries
            .iter()
            .map(|e| DrawEntry::new(e.receipt, e.variant_id))
            .collect();
        // Fails only on a repeated receipt (16 random bytes: never) or an
        // entry for a variant the drop lacks (entries are checked): a bug.
        let (result, published) =
            draw_and_publish(book.seed, beacon, entries, stock).map_err(|e| {
                DropError::Internal {
                    store: "memory",
                    source: e.to_string().into(),
                }
            })?;
        // Every check passed: from here on the draw only writes.
        let mut book = self.draw.take().expect("checked by book()");
        // Where each receipt landed: its variant (by index) and its place
        // in that variant's draw order, from 1, winners first.
        let mut placing: HashMap<Receipt, (usize, u32), BuildHasherDefault<ReceiptHasher>> =
            HashMap::with_capacity_and_hasher(book.entries.len(), BuildHasherDefault::default());
        // Per variant drawn: its index, its number of winners and the
        // first ticket of its line (one block of tickets for the whole
        // draw, each line's in draw order).
        let mut spans = Vec::with_capacity(result.variants.len());
        let placed: usize = result.variants.iter().map(|v| v.waitlist.len()).sum();
        let line = self.drop.waitlist;
        let mut next = if line {
            tickets(count(placed).into())
        } else {
            0
        };
        for drawn in &result.variants {
            let i = self.index_of(drawn.variant_id);
            let ranked = drawn.winners.iter().chain(&drawn.waitlist);
            placing.extend(ranked.zip(1..).map(|(r, p)| (*r, (i, p))));
            spans.push((i, count(drawn.winners.len()), next));
            next += u64::from(count(drawn.waitlist.len()));
        }
        let first_ticket = |i: usize| spans.iter().find(|s| s.0 == i).map(|s| (s.1, s.2));
        // Walked in entry order, not draw order: the entries and their
        // buyers sit in memory in that order, so a million of them are
        // read in one sweep instead of a million cache misses.
        let mut won = Vec::new();
        let mut places: Vec<Vec<Option<Place>>> = self
            .lines
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let n = result
                    .variants
                    .iter()
                    .find(|v| self.variants[i].id == v.variant_id)
                    .map_or(0, |v| v.waitlist.len());
                std::iter::repeat_with(|| None)
                    .take(if line { n } else { 0 })
                    .collect()
            })
            .collect();
        if line {
            // Sized once: growing rehashes every buyer id already placed.
            self.in_line.reserve(placed);
        }
        for (at, stored) in book.entries.iter_mut().enumerate() {
            let (i, position) = placing[&stored.receipt];
            let (winners, first) = first_ticket(i).expect("every variant was drawn");
            stored.draw_position = Some(position);
            if position <= winners {
                won.push((i, position, at));
            } else if line {
                let k = (position - winners - 1) as usize;
                let ticket = first + k as u64;
                self.in_line.insert(stored.buyer.id.clone(), (i, ticket));
                places[i][k] = Some(Place {
                    buyer: stored.buyer.clone(),
                    quantity: 1,
                    joined_at: now,
                });
                stored.outcome = Some(EntryOutcome::Waiting);
            } else {
                stored.outcome = Some(EntryOutcome::Lost);
            }
        }
        drop(placing);
        let mut waiting = 0;
        for (i, slots) in places.into_iter().enumerate() {
            let Some((_, first)) = first_ticket(i) else {
                continue;
            };
            let n = slots.len();
            self.lines[i].fill(
                slots
                    .into_iter()
                    .zip(first..)
                    .map(|(place, t)| (t, place.expect("every place was filled"))),
            );
            self.variants[i].waitlist_length += count(n);
            waiting += count(n);
        }
        // The holds in the drop's variant order, then draw order.
        won.sort_unstable();
        let winners = count(won.len());
        for (i, _, at) in won {
            let stored = &mut book.entries[at];
            let id = ReservationId::new();
            let variant = self.variants[i].id;
            self.take_hold(id, stored.buyer.clone(), variant, 1, true, now, events);
            stored.outcome = Some(EntryOutcome::Won);
            stored.reservation_id = Some(id);
        }
        book.published = Some(published);
        let entries = count(book.entries.len());
        self.draw = Some(book);
        self.drop.drawn_at = Some(now);
        let summary = DrawSummary::new(self.drop.id, now, entries, winners, waiting);
        events.push(DropEvent::DrawCompleted {
            drop_id: self.drop.id,
            drawn_at: now,
            entries,
            winners,
            waiting,
        });
        // With someone in a variant's line its stock all went to winners,
        // so serving the lines finds nothing free: only the stock follows.
        self.announce_stock(now, events);
        Ok(Some(summary))
    }

    /// Checks the draw's records against the holds and lines; describes
    /// the first mismatch.
    pub(crate) fn verify_draw(&self) -> Result<(), String> {
        let id = self.drop.id;
        let Some(book) = &self.draw else {
            return match self.drop.mode {
                SaleMode::Draw => Err(format!("drop {id}: a draw drop without its entries")),
                SaleMode::FirstCome => Ok(()),
            };
        };
        if book.by_buyer.len() != book.entries.len()
            || book
                .entries
                .iter()
                .enumerate()
                .any(|(i, e)| book.by_buyer.get(&e.buyer.id) != Some(&i))
        {
            return Err(format!("drop {id}: entries and their index disagree"));
        }
        let drawn = self.drop.drawn_at.is_some();
        if drawn != book.published.is_some() {
            return Err(format!(
                "drop {id}: drawnAt and the published draw disagree"
            ));
        }
        if !drawn {
            // Nothing is handed out before the draw.
            if book.entries.iter().any(|e| e.outcome.is_some()) {
                return Err(format!("drop {id}: an outcome before the draw"));
            }
            if !self.holds.is_empty() || !self.in_line.is_empty() {
                return Err(format!("drop {id}: holds or places before the draw"));
            }
            return Ok(());
        }
        let published = book.published.as_ref().expect("drawn");
        let won = book
            .entries
            .iter()
            .filter(|e| e.outcome == Some(EntryOutcome::Won))
            .count();
        let listed: usize = published.winners.iter().map(|w| w.receipts.len()).sum();
        if won != listed || published.entries.len() != book.entries.len() {
            return Err(format!(
                "drop {id}: {won} entries won, {listed} winners published"
            ));
        }
        for (stock, v) in published.stock.iter().zip(&self.variants) {
            let won = published
                .winners
                .iter()
                .find(|w| w.variant_id == v.id)
                .map_or(0, |w| w.receipts.len());
            if stock.variant_id != v.id || count(won) > stock.stock {
                return Err(format!(
                    "drop {id} variant {}: more winners than stock",
                    v.id
                ));
            }
        }
        Ok(())
    }
}

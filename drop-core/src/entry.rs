//! Draw drops: entries, the draw, and what it publishes.
//!
//! A drop made with [`NewDrop::draw_at`](crate::NewDrop::draw_at)
//! (`mode: "draw"`) gives its units out by a verifiable draw instead of
//! to whoever's request lands first. The arithmetic is [`crate::draw`];
//! this module holds what a store keeps and answers.
//!
//! # The rules every store follows
//!
//! - **The seed is fixed at creation.** The store draws a [`Seed`] when
//!   the drop is made and publishes only its hash ([`DrawStatus::seed_hash`])
//!   until the draw.
//! - **Entries** ([`enter_draw`](crate::InventoryStore::enter_draw)) are
//!   taken from the start until `drawAt`: one per buyer and drop, for one
//!   unit of a variant, each with a fresh random [`Receipt`]. Checked in
//!   the order `DROP_NOT_FOUND`; the variant (as a reserve picks it:
//!   `VARIANT_NOT_FOUND`, `INVALID_INPUT` when a drop of several needs
//!   one named); [`check_entries_open`](crate::DropInfo::check_entries_open)
//!   (`NOT_A_DRAW`, `DROP_NOT_ACTIVE`, `ENTRIES_CLOSED`, `DROP_PAUSED`);
//!   then an existing entry answers unchanged (`changed: false`), whatever
//!   variant was asked. Entering locks no stock: entries do not take the
//!   drop's lock on PostgreSQL.
//! - **Withdrawing** ([`withdraw_entry`](crate::InventoryStore::withdraw_entry))
//!   is allowed until `drawAt` (`ENTRIES_CLOSED` after).
//! - **Before the draw**, a plain reserve or a join of the line answers
//!   `DRAW_ONLY`.
//! - **The draw** ([`run_draw`](crate::InventoryStore::run_draw)) happens
//!   exactly once, whatever the number of instances trying at once or
//!   dying midway, once `drawAt` has come ([`DropInfo::draw_due`](crate::DropInfo::draw_due)).
//!   In one critical section or transaction it freezes the entry list,
//!   ranks it with [`draw_and_publish`](crate::draw_and_publish), each
//!   variant's stock being its free units then, and:
//!   - gives each winner an **offered hold** of one unit whose window
//!     starts at the draw (a [`HoldCreated`](crate::Change::HoldCreated)
//!     with `offered: true` each);
//!   - with the drop's waiting list on, puts every other entry in its
//!     variant's line in draw order (no `waitlistJoined` per entry: the
//!     one [`DrawCompleted`](crate::Change::DrawCompleted) says it, and
//!     each variant's `waitlistLength` changes), otherwise they lose;
//!   - records each entry's [`EntryOutcome`] and its place in the draw;
//!   - publishes the seed, the entry list and the winners ([`PublishedDraw`]).
//! - **After the draw** the drop sells first come: units no entry won are
//!   on open sale, and freed units go to the head of the line as usual.
//! - A drop ended before its `drawAt` never draws.
//!
//! Every entrant hears of the draw: winners by their offered hold's
//! event, everyone by the [`DrawCompleted`](crate::DropEvent::DrawCompleted)
//! event, after which [`draw_entry`](crate::InventoryStore::draw_entry)
//! answers their outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Buyer, BuyerId, DropId, PublishedDraw, Receipt, ReservationId, Seed, SeedHash, Username,
    VariantId,
};

/// A buyer's entry to a draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Entry {
    /// The drop.
    pub drop_id: DropId,
    /// The variant entered for (one unit).
    pub variant_id: VariantId,
    /// Who entered.
    pub buyer_id: BuyerId,
    /// Their display name when they entered.
    pub display_name: Username,
    /// The entry's receipt: how its owner finds it in the published list.
    pub receipt: Receipt,
    /// When it was taken, by the store's clock.
    pub entered_at: DateTime<Utc>,
    /// What the draw gave it; `None` before the draw.
    #[serde(default)]
    pub outcome: Option<EntryOutcome>,
    /// Its place in its variant's draw order (1 = drawn first); `None`
    /// before the draw.
    #[serde(default)]
    pub draw_position: Option<u32>,
    /// The hold it won, when it won.
    #[serde(default)]
    pub reservation_id: Option<ReservationId>,
}

impl Entry {
    /// An entry as a store reads it back, before any draw; set
    /// [`outcome`](Self::outcome), [`draw_position`](Self::draw_position)
    /// and [`reservation_id`](Self::reservation_id) afterwards.
    pub fn new(
        drop_id: DropId,
        variant_id: VariantId,
        buyer: Buyer,
        receipt: Receipt,
        entered_at: DateTime<Utc>,
    ) -> Self {
        Self {
            drop_id,
            variant_id,
            buyer_id: buyer.id,
            display_name: buyer.display_name,
            receipt,
            entered_at,
            outcome: None,
            draw_position: None,
            reservation_id: None,
        }
    }
}

/// What the draw gave an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum EntryOutcome {
    /// It won a unit: an offered hold, to buy within its window.
    Won,
    /// It did not win and was put in the variant's line, in draw order.
    Waiting,
    /// It did not win, and the drop has no waiting list.
    Lost,
}

/// What one draw did, as [`run_draw`](crate::InventoryStore::run_draw)
/// answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DrawSummary {
    /// The drop.
    pub drop_id: DropId,
    /// When it was drawn, by the store's clock: the winners' holds start
    /// then.
    pub drawn_at: DateTime<Utc>,
    /// Entries drawn from.
    pub entries: u32,
    /// Entries that won a unit.
    pub winners: u32,
    /// Entries put in a line.
    pub waiting: u32,
}

impl DrawSummary {
    /// A summary of these counts.
    pub fn new(
        drop_id: DropId,
        drawn_at: DateTime<Utc>,
        entries: u32,
        winners: u32,
        waiting: u32,
    ) -> Self {
        Self {
            drop_id,
            drawn_at,
            entries,
            winners,
            waiting,
        }
    }
}

/// A draw drop's public record: the commitment before the draw, and
/// everything needed to check it after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DrawStatus {
    /// The drop.
    pub drop_id: DropId,
    /// When it draws.
    pub draw_at: DateTime<Utc>,
    /// `sha256(seed)`, fixed since the drop was made.
    pub seed_hash: SeedHash,
    /// The public randomness the draw mixes in, by name, if any.
    #[serde(default)]
    pub beacon_name: Option<String>,
    /// When it was drawn; `None` before.
    #[serde(default)]
    pub drawn_at: Option<DateTime<Utc>>,
    /// What the draw published; `None` before it.
    #[serde(default)]
    pub published: Option<PublishedDraw>,
}

impl DrawStatus {
    /// The record of a draw not made yet.
    pub fn pending(
        drop_id: DropId,
        draw_at: DateTime<Utc>,
        seed_hash: SeedHash,
        beacon_name: Option<String>,
    ) -> Self {
        Self {
            drop_id,
            draw_at,
            seed_hash,
            beacon_name,
            drawn_at: None,
            published: None,
        }
    }
}

/// Where a store gets its draws' randomness: each draw drop's [`Seed`]
/// (at creation) and each entry's [`Receipt`]. The default,
/// [`OsRandom`], asks the operating system; [`SeededRandom`] is for tests
/// that must see the same draws on every run.
pub trait DrawRandom: Send + Sync + std::fmt::Debug {
    /// A new draw's secret seed.
    fn seed(&self) -> Seed;
    /// A new entry's receipt.
    fn receipt(&self) -> Receipt;
}

/// The operating system's random source: what every store uses unless
/// told otherwise.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl DrawRandom for OsRandom {
    fn seed(&self) -> Seed {
        Seed::generate()
    }
    fn receipt(&self) -> Receipt {
        Receipt::generate()
    }
}

/// Deterministic "randomness" for tests: the `n`th value asked for is
/// `sha256(label ‖ kind ‖ n)` (truncated for a receipt), so two runs with
/// the same label see the same seeds and receipts in the same order.
/// Never for real draws: anyone who knows the label can predict them.
#[derive(Debug)]
pub struct SeededRandom {
    label: String,
    next: std::sync::atomic::AtomicU64,
}

impl SeededRandom {
    /// A sequence named `label`, starting at 0.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            next: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn bytes(&self, kind: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(self.label.as_bytes());
        h.update(kind.as_bytes());
        h.update(n.to_be_bytes());
        h.finalize().into()
    }
}

impl DrawRandom for SeededRandom {
    fn seed(&self) -> Seed {
        Seed::from_bytes(self.bytes("seed"))
    }
    fn receipt(&self) -> Receipt {
        let full = self.bytes("receipt");
        let mut out = [0; 16];
        out.copy_from_slice(&full[..16]);
        Receipt::from_bytes(out)
    }
}

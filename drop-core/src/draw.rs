//! Verifiable draws: the arithmetic, pure and deterministic.
//!
//! A draw drop (`mode: "draw"`) takes entries until its `drawAt`, then
//! picks winners per variant uniformly at random. This module is the part
//! anyone can rerun: a store calls [`draw`] (or [`draw_and_publish`]) to
//! draw, and a buyer checks the published result with [`verify_draw`], or
//! by hand with the recipe in `docs/draws.md`.
//!
//! ## The recipe (every byte form)
//!
//! 1. **Seed.** 32 random bytes ([`Seed`]), drawn when the drop is made.
//!    When entries open, the drop publishes `seedHash = sha256(seed)`
//!    ([`SeedHash`]): a commitment that the seed can no longer change.
//! 2. **Beacon (optional).** Public randomness named when entries open
//!    (a drand round, say) whose value nobody knows until after `drawAt`
//!    ([`Beacon`], 1 to [`MAX_BEACON`] bytes). The key that ranks is
//!    `key = sha256(seed ‖ beacon)` with a beacon, `key = seed` without
//!    one ([`DrawKey`]).
//! 3. **Receipts.** Each entry gets 16 random bytes at entry time
//!    ([`Receipt`]); the published entry list holds receipts and variant
//!    ids only, never buyers, and each entrant knows their own receipt.
//! 4. **Entry list hash.** The entries sorted by receipt (bytewise, which
//!    is the order of their lowercase hex), one line each:
//!    `<receipt: 32 lowercase hex> <variant id: lowercase hyphenated UUID>\n`
//!    (ASCII, 70 bytes a line, nothing else); `entryListHash` is the
//!    sha256 of those bytes ([`EntryListHash`]).
//! 5. **Rank.** `rank = HMAC-SHA256(key, entryListHash ‖ receipt)`: the key
//!    as the HMAC key (32 bytes), the message the 32 raw bytes of the entry
//!    list hash followed by the 16 raw bytes of the receipt ([`rank`]).
//! 6. **Order.** Per variant, entries by rank ascending, compared as
//!    unsigned big-endian numbers (bytewise); equal ranks (which take a
//!    SHA-256 collision) fall back to the receipt. The first `stock` of
//!    a variant win; the rest, in that order, are its waiting list.
//!
//! Each rank depends on the whole entry list, so an entry added by someone
//! who knows the key reshuffles everyone: steering the draw that way takes
//! one try per outcome looked at, never a single edit. Without a beacon the
//! operator, who knows the seed, could still try; `docs/draws.md` states
//! the trust model, and what a beacon adds.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::str::FromStr;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::{DropError, VariantId};

/// Longest beacon accepted, in bytes (a drand round's randomness is 32).
pub const MAX_BEACON: usize = 256;

/// Bytes in one line of the canonical entry list:
/// 32 hex + space + 36 (UUID) + newline.
const LINE: usize = 70;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0; bytes.len() * 2];
    hex_into(bytes, &mut out);
    // Only ASCII hex digits were written.
    String::from_utf8(out).expect("hex is ASCII")
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses hex (either case) of any even length.
fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect()
}

/// A newtype over `[u8; N]` written as lowercase hex in JSON and `Display`,
/// parsed from hex of exactly `2 N` digits (`INVALID_INPUT` naming the
/// field otherwise). `Debug` is left to each type: a seed hides its own.
macro_rules! hex_bytes {
    ($(#[$meta:meta])* $name:ident, $len:literal, $digits:literal, $field:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Wraps these bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The bytes inside.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut out = [0; 2 * $len];
                hex_into(&self.0, &mut out);
                f.write_str(std::str::from_utf8(&out).expect("hex is ASCII"))
            }
        }

        impl FromStr for $name {
            type Err = DropError;

            /// Parses exactly `2 × len` hex digits, either case.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                from_hex(s.trim())
                    .and_then(|bytes| <[u8; $len]>::try_from(bytes).ok())
                    .map(Self)
                    .ok_or_else(|| {
                        DropError::invalid($field, concat!("must be ", $digits, " hex digits"))
                    })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_bytes!(
    /// A draw's secret: 32 random bytes, kept by the operator until the
    /// draw and published after it. Its [`hash`](Self::hash) is published
    /// when entries open. `Debug` hides it (a seed logged before the draw
    /// would let its reader predict the order); `Display` and JSON show it,
    /// for the published draw.
    Seed,
    32,
    64,
    "seed"
);

hex_bytes!(
    /// `sha256(seed)`: the commitment published when entries open.
    SeedHash,
    32,
    64,
    "seedHash"
);

hex_bytes!(
    /// `sha256` of the canonical entry list (see the [module](self) docs).
    EntryListHash,
    32,
    64,
    "entryListHash"
);

hex_bytes!(
    /// 16 random bytes handed to an entry when it is taken. The published
    /// entry list names entries by receipt only, so each entrant can find
    /// their own and nobody else's identity.
    Receipt,
    16,
    32,
    "receipt"
);

impl Seed {
    /// 32 bytes from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        Self(bytes)
    }

    /// `sha256(seed)`, published when entries open.
    pub fn hash(&self) -> SeedHash {
        SeedHash(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl fmt::Debug for SeedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SeedHash({self})")
    }
}

impl fmt::Debug for EntryListHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryListHash({self})")
    }
}

impl Receipt {
    /// 16 bytes from the operating system's random source: unguessable, so
    /// a receipt cannot be claimed by someone who did not enter.
    pub fn generate() -> Self {
        let mut bytes = [0; 16];
        getrandom::fill(&mut bytes).expect("the operating system's random source works");
        Self(bytes)
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Receipt({self})")
    }
}

/// Public randomness mixed into the ranking key: 1 to [`MAX_BEACON`]
/// bytes, hex in JSON and `Display`. Chosen (by name, such as a future
/// drand round) when entries open, so nobody, the seed's owner included,
/// knows the order while entries can still be added.
///
/// Never empty: `sha256(seed ‖ "")` is the seed hash published when
/// entries open, which would give the key away.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Beacon(Vec<u8>);

impl Beacon {
    /// A beacon of these bytes: `INVALID_INPUT` (field `beacon`) when
    /// empty or longer than [`MAX_BEACON`].
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, DropError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > MAX_BEACON {
            return Err(DropError::invalid(
                "beacon",
                "must be 1 to 256 bytes (2 to 512 hex digits)",
            ));
        }
        Ok(Self(bytes))
    }

    /// The bytes inside.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Beacon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&to_hex(&self.0))
    }
}

impl fmt::Debug for Beacon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Beacon({self})")
    }
}

impl FromStr for Beacon {
    type Err = DropError;

    /// Parses hex (either case) of 1 to [`MAX_BEACON`] bytes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes =
            from_hex(s.trim()).ok_or_else(|| DropError::invalid("beacon", "must be hex digits"))?;
        Self::new(bytes)
    }
}

impl Serialize for Beacon {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Beacon {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The key that ranks entries: `sha256(seed ‖ beacon)` with a beacon, the
/// seed itself without one. As secret as the seed until the draw, so its
/// `Debug` hides it too.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DrawKey([u8; 32]);

impl DrawKey {
    /// The key for this seed and beacon.
    pub fn derive(seed: &Seed, beacon: Option<&Beacon>) -> Self {
        match beacon {
            None => Self(seed.0),
            Some(beacon) => {
                let mut hash = Sha256::new();
                hash.update(seed.0);
                hash.update(&beacon.0);
                Self(hash.finalize().into())
            }
        }
    }

    /// The 32 bytes of the key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for DrawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DrawKey(..)")
    }
}

/// One entry as the draw sees it (and as it is published): its receipt and
/// the variant entered for. No buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DrawEntry {
    /// The entry's receipt.
    pub receipt: Receipt,
    /// The variant it is for.
    pub variant_id: VariantId,
}

impl DrawEntry {
    /// An entry for `variant_id` with this receipt.
    pub fn new(receipt: Receipt, variant_id: VariantId) -> Self {
        Self {
            receipt,
            variant_id,
        }
    }
}

/// How many units of a variant the draw gives away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DrawStock {
    /// The variant.
    pub variant_id: VariantId,
    /// Its units to draw: at most this many entries win.
    pub stock: u32,
}

impl DrawStock {
    /// `stock` units of `variant_id`.
    pub fn new(variant_id: VariantId, stock: u32) -> Self {
        Self { variant_id, stock }
    }
}

/// A variant's winners as published: receipts in rank order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DrawWinners {
    /// The variant.
    pub variant_id: VariantId,
    /// Its winners' receipts, best rank first.
    pub receipts: Vec<Receipt>,
}

impl DrawWinners {
    /// These receipts won `variant_id`, in this order.
    pub fn new(variant_id: VariantId, receipts: Vec<Receipt>) -> Self {
        Self {
            variant_id,
            receipts,
        }
    }
}

/// One variant's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct VariantDraw {
    /// The variant.
    pub variant_id: VariantId,
    /// Its stock, as drawn.
    pub stock: u32,
    /// The first `stock` entries by rank (all of them when fewer entered).
    pub winners: Vec<Receipt>,
    /// The rest, in rank order: the waiting-list order.
    pub waitlist: Vec<Receipt>,
}

/// A draw's whole outcome: per variant (in the order stock was given),
/// winners then waiting list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DrawResult {
    /// The hash of the entry list drawn from.
    pub entry_list_hash: EntryListHash,
    /// Every variant that had stock, in the order given.
    pub variants: Vec<VariantDraw>,
}

impl DrawResult {
    /// The outcome for `variant_id`, if it was drawn.
    pub fn variant(&self, variant_id: VariantId) -> Option<&VariantDraw> {
        self.variants.iter().find(|v| v.variant_id == variant_id)
    }

    /// The winners as published: one list per variant, in stock order.
    pub fn winners(&self) -> Vec<DrawWinners> {
        self.variants
            .iter()
            .map(|v| DrawWinners::new(v.variant_id, v.winners.clone()))
            .collect()
    }
}

/// Inputs no draw can be made from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DrawError {
    /// Two entries share a receipt.
    #[error("receipt {receipt} appears twice in the entry list")]
    DuplicateReceipt {
        /// The receipt.
        receipt: Receipt,
    },
    /// An entry is for a variant the stock does not list.
    #[error("an entry is for variant {variant_id}, which has no stock line")]
    UnknownVariant {
        /// The variant.
        variant_id: VariantId,
    },
    /// The stock lists a variant twice.
    #[error("variant {variant_id} has two stock lines")]
    DuplicateVariant {
        /// The variant.
        variant_id: VariantId,
    },
}

/// Why a published draw does not check out: the first check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// `sha256(seed)` is not the published seed hash: the seed is not the
    /// one committed to when entries opened.
    #[error("sha256(seed) is {computed}, not the published seed hash {published}")]
    SeedHash {
        /// As published.
        published: SeedHash,
        /// `sha256` of the published seed.
        computed: SeedHash,
    },
    /// The published entry list does not hash to the published entry list
    /// hash: an entry was added, removed or changed.
    #[error("the entry list hashes to {computed}, not the published {published}")]
    EntryListHash {
        /// As published.
        published: EntryListHash,
        /// Recomputed from the published entries.
        computed: EntryListHash,
    },
    /// The published winners of a variant are not the recomputed ones (or
    /// a variant is published twice, or without a stock line).
    #[error("the published winners of variant {variant_id} are not the recomputed ones")]
    Winners {
        /// The first variant that differs.
        variant_id: VariantId,
    },
    /// The published entries or stock cannot be drawn from.
    #[error("the published draw is malformed: {0}")]
    Malformed(#[from] DrawError),
}

/// An entry's rank: `HMAC-SHA256(key, entryListHash ‖ receipt)`, compared
/// bytewise (lower ranks first).
pub fn rank(key: &DrawKey, entry_list_hash: &EntryListHash, receipt: &Receipt) -> [u8; 32] {
    rank_with(&keyed(key), entry_list_hash, receipt)
}

fn keyed(key: &DrawKey) -> Hmac<Sha256> {
    Hmac::new_from_slice(&key.0).expect("HMAC takes keys of any length")
}

// The keyed state is cloned per entry, so the key's two padded blocks are
// hashed once per draw, not once per entry.
fn rank_with(mac: &Hmac<Sha256>, entry_list_hash: &EntryListHash, receipt: &Receipt) -> [u8; 32] {
    let mut mac = mac.clone();
    mac.update(&entry_list_hash.0);
    mac.update(&receipt.0);
    mac.finalize().into_bytes().into()
}

/// The entries sorted by receipt, or the first receipt seen twice.
///
/// Sorted as copies, not references: a million entries scattered in the
/// caller's memory would cost a cache miss per comparison.
fn sorted(entries: &[DrawEntry]) -> Result<Vec<DrawEntry>, DrawError> {
    let mut sorted = entries.to_vec();
    // Big-endian, a receipt's number orders as its bytes do.
    sorted.sort_unstable_by_key(|e| u128::from_be_bytes(e.receipt.0));
    if let Some(pair) = sorted.windows(2).find(|p| p[0].receipt == p[1].receipt) {
        return Err(DrawError::DuplicateReceipt {
            receipt: pair[0].receipt,
        });
    }
    Ok(sorted)
}

/// One canonical line: `<receipt hex> <variant uuid>\n`.
fn line(entry: &DrawEntry) -> [u8; LINE] {
    let mut line = [0; LINE];
    hex_into(&entry.receipt.0, &mut line[..32]);
    line[32] = b' ';
    entry
        .variant_id
        .as_uuid()
        .as_hyphenated()
        .encode_lower(&mut line[33..69]);
    line[69] = b'\n';
    line
}

fn hash_sorted(sorted: &[DrawEntry]) -> EntryListHash {
    let mut hash = Sha256::new();
    for entry in sorted {
        hash.update(line(entry));
    }
    EntryListHash(hash.finalize().into())
}

/// The canonical entry list (see the [module](self) docs): what
/// [`entry_list_hash`] hashes, for a store to serve as a file.
pub fn canonical_entry_list(entries: &[DrawEntry]) -> Result<String, DrawError> {
    let sorted = sorted(entries)?;
    let mut out = Vec::with_capacity(sorted.len() * LINE);
    for entry in &sorted {
        out.extend_from_slice(&line(entry));
    }
    Ok(String::from_utf8(out).expect("the lines are ASCII"))
}

/// `sha256` of the canonical entry list, whatever order `entries` come in.
/// A receipt seen twice is an error.
pub fn entry_list_hash(entries: &[DrawEntry]) -> Result<EntryListHash, DrawError> {
    Ok(hash_sorted(&sorted(entries)?))
}

/// Draws: ranks every entry with `key` and splits each variant's entries
/// into the first `stock` (winners) and the rest (waiting list), both in
/// rank order. Entries may come in any order; every entry's variant must
/// have a stock line (a stock of 0 is fine: all its entries wait).
///
/// One sort by receipt, one sha256 pass over the list, one HMAC per entry
/// and one sort by rank: O(n log n), well under a second for 1,000,000 entries
/// (`cargo bench --bench draw`).
pub fn draw(
    key: &DrawKey,
    entries: &[DrawEntry],
    stock: &[DrawStock],
) -> Result<DrawResult, DrawError> {
    let mut index = HashMap::with_capacity(stock.len());
    for (i, line) in stock.iter().enumerate() {
        match index.entry(line.variant_id) {
            Entry::Occupied(_) => {
                return Err(DrawError::DuplicateVariant {
                    variant_id: line.variant_id,
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    let sorted = sorted(entries)?;
    let entry_list_hash = hash_sorted(&sorted);
    let mac = keyed(key);
    // (variant, rank, receipt), the 32-byte rank as two big-endian halves
    // and the receipt as one, which order as their bytes do: one sort of
    // plain integers groups by variant and orders each group by rank, the
    // receipt breaking (impossible) ties.
    let mut ranked = Vec::with_capacity(sorted.len());
    for entry in &sorted {
        let variant = *index
            .get(&entry.variant_id)
            .ok_or(DrawError::UnknownVariant {
                variant_id: entry.variant_id,
            })?;
        let rank = rank_with(&mac, &entry_list_hash, &entry.receipt);
        let (high, low) = rank.split_at(16);
        ranked.push((
            variant,
            u128::from_be_bytes(high.try_into().expect("16 bytes")),
            u128::from_be_bytes(low.try_into().expect("16 bytes")),
            u128::from_be_bytes(entry.receipt.0),
        ));
    }
    drop(sorted);
    ranked.sort_unstable();

    let mut variants: Vec<VariantDraw> = stock
        .iter()
        .map(|line| VariantDraw {
            variant_id: line.variant_id,
            stock: line.stock,
            winners: Vec::new(),
            waitlist: Vec::new(),
        })
        .collect();
    for (variant, _, _, receipt) in ranked {
        let receipt = Receipt(receipt.to_be_bytes());
        let v = &mut variants[variant];
        // `u32` always fits a `usize` on the targets dropkit supports.
        if v.winners.len() < v.stock as usize {
            v.winners.push(receipt);
        } else {
            v.waitlist.push(receipt);
        }
    }
    Ok(DrawResult {
        entry_list_hash,
        variants,
    })
}

/// Everything a draw publishes once it is made: enough for anyone to redo
/// it ([`verify_draw`]). Served as is (camelCase JSON, hex strings,
/// `beacon` left out when there is none); entries come sorted by receipt,
/// so the list says nothing about when each entry was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PublishedDraw {
    /// The seed, revealed.
    pub seed: Seed,
    /// The commitment published when entries opened.
    pub seed_hash: SeedHash,
    /// The beacon mixed into the key, when the drop named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beacon: Option<Beacon>,
    /// `sha256` of the canonical entry list.
    pub entry_list_hash: EntryListHash,
    /// Every entry drawn from.
    pub entries: Vec<DrawEntry>,
    /// Every variant's stock.
    pub stock: Vec<DrawStock>,
    /// Every variant's winners, in rank order.
    pub winners: Vec<DrawWinners>,
}

impl PublishedDraw {
    /// The published form of a draw made with `seed` and `beacon` from
    /// these `entries` and `stock` that gave `result`; [`draw_and_publish`]
    /// makes both at once.
    pub fn new(
        seed: Seed,
        beacon: Option<Beacon>,
        mut entries: Vec<DrawEntry>,
        stock: Vec<DrawStock>,
        result: &DrawResult,
    ) -> Self {
        entries.sort_unstable_by_key(|e| e.receipt);
        Self {
            seed_hash: seed.hash(),
            seed,
            beacon,
            entry_list_hash: result.entry_list_hash,
            entries,
            stock,
            winners: result.winners(),
        }
    }
}

/// Draws with `seed` and `beacon`, and makes the published form: what a
/// store calls at `drawAt`. The result carries the waiting-list order too.
pub fn draw_and_publish(
    seed: Seed,
    beacon: Option<Beacon>,
    entries: Vec<DrawEntry>,
    stock: Vec<DrawStock>,
) -> Result<(DrawResult, PublishedDraw), DrawError> {
    let result = draw(&DrawKey::derive(&seed, beacon.as_ref()), &entries, &stock)?;
    let published = PublishedDraw::new(seed, beacon, entries, stock, &result);
    Ok((result, published))
}

/// Checks a published draw using nothing else: `sha256(seed)` is the
/// published seed hash; the entries hash to the published entry list
/// hash; redrawing gives the published winners of every variant (a variant
/// left out of `winners` claims none). On success, the recomputed outcome,
/// waiting-list order included; otherwise the first check that failed.
pub fn verify_draw(published: &PublishedDraw) -> Result<DrawResult, VerifyError> {
    let computed = published.seed.hash();
    if computed != published.seed_hash {
        return Err(VerifyError::SeedHash {
            published: published.seed_hash,
            computed,
        });
    }
    let key = DrawKey::derive(&published.seed, published.beacon.as_ref());
    let result = draw(&key, &published.entries, &published.stock)?;
    if result.entry_list_hash != published.entry_list_hash {
        return Err(VerifyError::EntryListHash {
            published: published.entry_list_hash,
            computed: result.entry_list_hash,
        });
    }
    let mut claimed: HashMap<VariantId, &[Receipt]> = HashMap::new();
    for w in &published.winners {
        let known = result.variant(w.variant_id).is_some();
        if !known || claimed.insert(w.variant_id, &w.receipts).is_some() {
            return Err(VerifyError::Winners {
                variant_id: w.variant_id,
            });
        }
    }
    for v in &result.variants {
        let published = claimed.get(&v.variant_id).copied().unwrap_or_default();
        if published != v.winners.as_slice() {
            return Err(VerifyError::Winners {
                variant_id: v.variant_id,
            });
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(last: u8) -> VariantId {
        VariantId::from_str(&format!("00000000-0000-4000-8000-0000000000{last:02x}")).unwrap()
    }

    fn receipt(byte: u8) -> Receipt {
        Receipt::from_bytes([byte; 16])
    }

    fn hex32(s: &str) -> [u8; 32] {
        from_hex(s).unwrap().try_into().unwrap()
    }

    /// The worked example of `docs/draws.md`: seed 00 01 … 1f, five
    /// entries (given out of order), variant `…0a` with 2 units and `…0b`
    /// with 1.
    fn example() -> (Seed, Beacon, Vec<DrawEntry>, Vec<DrawStock>) {
        let (a, b) = (variant(0x0a), variant(0x0b));
        let seed = Seed::from_bytes(std::array::from_fn(|i| i as u8));
        let beacon: Beacon = "f668e344aefcaa61612e39e6c15e292b8ce3ab60dfb7c164cba3247545f3fee5"
            .parse()
            .unwrap();
        let entries = vec![
            DrawEntry::new(receipt(0x44), a),
            DrawEntry::new(receipt(0x11), a),
            DrawEntry::new(receipt(0x55), b),
            DrawEntry::new(receipt(0x33), a),
            DrawEntry::new(receipt(0x22), b),
        ];
        let stock = vec![DrawStock::new(a, 2), DrawStock::new(b, 1)];
        (seed, beacon, entries, stock)
    }

    fn published() -> PublishedDraw {
        let (seed, _, entries, stock) = example();
        draw_and_publish(seed, None, entries, stock).unwrap().1
    }

    // Expected values printed by the Python recipe in docs/draws.md.
    #[test]
    fn known_answer() {
        let (seed, beacon, entries, stock) = example();
        assert_eq!(
            seed.hash().to_string(),
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
        assert_eq!(
            canonical_entry_list(&entries).unwrap(),
            "11111111111111111111111111111111 00000000-0000-4000-8000-00000000000a\n\
             22222222222222222222222222222222 00000000-0000-4000-8000-00000000000b\n\
             33333333333333333333333333333333 00000000-0000-4000-8000-00000000000a\n\
             44444444444444444444444444444444 00000000-0000-4000-8000-00000000000a\n\
             55555555555555555555555555555555 00000000-0000-4000-8000-00000000000b\n"
        );
        let list_hash = entry_list_hash(&entries).unwrap();
        assert_eq!(
            list_hash.to_string(),
            "c9e73116fd2426550cde95c8460127b9d8385b2bd8013696039b02f752538a2c"
        );

        let key = DrawKey::derive(&seed, None);
        assert_eq!(key.as_bytes(), seed.as_bytes());
        assert_eq!(
            rank(&key, &list_hash, &receipt(0x44)),
            hex32("36ef47a5d99cfaf5267429194cff16701f929296808056b0ad38267536b8af60")
        );
        assert_eq!(
            rank(&key, &list_hash, &receipt(0x22)),
            hex32("1f364951fbfa2a544d593e1e4ceeb4873baa77a05e2e12caa555adbc4b01c733")
        );
        let result = draw(&key, &entries, &stock).unwrap();
        assert_eq!(result.entry_list_hash, list_hash);
        let a = &result.variants[0];
        assert_eq!(a.winners, [receipt(0x44), receipt(0x33)]);
        assert_eq!(a.waitlist, [receipt(0x11)]);
        let b = &result.variants[1];
        assert_eq!(b.winners, [receipt(0x22)]);
        assert_eq!(b.waitlist, [receipt(0x55)]);

        let key = DrawKey::derive(&seed, Some(&beacon));
        assert_eq!(
            key.as_bytes(),
            &hex32("6e4dc3c3f6780d0b668d9caefd3881447f33df3d84c02649071f269b12eea56a")
        );
        assert_eq!(
            rank(&key, &list_hash, &receipt(0x55)),
            hex32("2dffacf978543efc47738d94ef582f10710fa8790ef38328524b837904dab69a")
        );
        let result = draw(&key, &entries, &stock).unwrap();
        assert_eq!(result.variants[0].winners, [receipt(0x44), receipt(0x33)]);
        assert_eq!(result.variants[0].waitlist, [receipt(0x11)]);
        assert_eq!(result.variants[1].winners, [receipt(0x55)]);
        assert_eq!(result.variants[1].waitlist, [receipt(0x22)]);
    }

    #[test]
    fn the_beacon_changes_the_outcome() {
        let (seed, beacon, entries, stock) = example();
        let plain = draw(&DrawKey::derive(&seed, None), &entries, &stock).unwrap();
        let mixed = draw(&DrawKey::derive(&seed, Some(&beacon)), &entries, &stock).unwrap();
        assert_eq!(plain.entry_list_hash, mixed.entry_list_hash);
        assert_ne!(plain.variants[1], mixed.variants[1]);
        // And another beacon, another key.
        let other = Beacon::new([1u8]).unwrap();
        assert_ne!(
            DrawKey::derive(&seed, Some(&beacon)),
            DrawKey::derive(&seed, Some(&other))
        );
    }

    #[test]
    fn verify_accepts_the_real_draw() {
        let published = published();
        let result = verify_draw(&published).unwrap();
        assert_eq!(result.winners(), published.winners);
        assert_eq!(result.variants[0].waitlist, [receipt(0x11)]);

        let (seed, beacon, entries, stock) = example();
        let (_, with_beacon) = draw_and_publish(seed, Some(beacon), entries, stock).unwrap();
        assert!(verify_draw(&with_beacon).is_ok());
    }

    #[test]
    fn verify_rejects_a_wrong_seed_hash() {
        let mut published = published();
        published.seed_hash = Seed::from_bytes([9; 32]).hash();
        assert!(matches!(
            verify_draw(&published),
            Err(VerifyError::SeedHash { .. })
        ));
    }

    #[test]
    fn verify_rejects_a_tampered_seed() {
        let mut published = published();
        // Seed 01 01 … 01 makes 44, 11 the winners of `…0a` (the recipe
        // says so); a seed that happens to give the same winners passes.
        let other = Seed::from_bytes([1; 32]);
        published.seed = other;
        assert!(matches!(
            verify_draw(&published),
            Err(VerifyError::SeedHash { .. })
        ));
        // A seed that matches its (also replaced) hash draws other winners.
        published.seed_hash = other.hash();
        assert_eq!(
            verify_draw(&published),
            Err(VerifyError::Winners {
                variant_id: variant(0x0a)
            })
        );
    }

    #[test]
    fn verify_rejects_an_added_or_removed_entry() {
        let mut added = published();
        added
            .entries
            .push(DrawEntry::new(receipt(0x66), variant(0x0a)));
        assert!(matches!(
            verify_draw(&added),
            Err(VerifyError::EntryListHash { .. })
        ));

        let mut removed = published();
        removed.entries.retain(|e| e.receipt != receipt(0x11));
        assert!(matches!(
            verify_draw(&removed),
            Err(VerifyError::EntryListHash { .. })
        ));

        let mut moved = published();
        moved.entries[0].variant_id = variant(0x0b);
        assert!(matches!(
            verify_draw(&moved),
            Err(VerifyError::EntryListHash { .. })
        ));
    }

    #[test]
    fn verify_rejects_changed_winners() {
        let mut swapped = published();
        swapped.winners[0].receipts.swap(0, 1);
        assert_eq!(
            verify_draw(&swapped),
            Err(VerifyError::Winners {
                variant_id: variant(0x0a)
            })
        );

        let mut replaced = published();
        replaced.winners[1].receipts = vec![receipt(0x55)];
        assert_eq!(
            verify_draw(&replaced),
            Err(VerifyError::Winners {
                variant_id: variant(0x0b)
            })
        );

        let mut extra = published();
        extra.winners.push(DrawWinners::new(variant(0x0c), vec![]));
        assert_eq!(
            verify_draw(&extra),
            Err(VerifyError::Winners {
                variant_id: variant(0x0c)
            })
        );

        let mut missing = published();
        missing.winners.pop();
        assert_eq!(
            verify_draw(&missing),
            Err(VerifyError::Winners {
                variant_id: variant(0x0b)
            })
        );

        let mut more_stock = published();
        more_stock.stock[1].stock = 2;
        assert_eq!(
            verify_draw(&more_stock),
            Err(VerifyError::Winners {
                variant_id: variant(0x0b)
            })
        );
    }

    #[test]
    fn fewer_entries_than_stock_all_win() {
        let (seed, _, entries, _) = example();
        let stock = [
            DrawStock::new(variant(0x0a), 10),
            DrawStock::new(variant(0x0b), 2),
        ];
        let result = draw(&DrawKey::derive(&seed, None), &entries, &stock).unwrap();
        assert_eq!(result.variants[0].winners.len(), 3);
        assert_eq!(result.variants[1].winners.len(), 2);
        assert!(result.variants.iter().all(|v| v.waitlist.is_empty()));
        // In rank order still.
        assert_eq!(
            result.variants[0].winners,
            [receipt(0x44), receipt(0x33), receipt(0x11)]
        );
    }

    #[test]
    fn more_entries_than_stock_split_at_the_stock() {
        let seed = Seed::from_bytes([3; 32]);
        let v = variant(1);
        let entries: Vec<_> = (0..100u8).map(|i| DrawEntry::new(receipt(i), v)).collect();
        let result = draw(
            &DrawKey::derive(&seed, None),
            &entries,
            &[DrawStock::new(v, 7)],
        )
        .unwrap();
        let drawn = &result.variants[0];
        assert_eq!(drawn.winners.len(), 7);
        assert_eq!(drawn.waitlist.len(), 93);
        // Winners and waiting list together are every entry once, by rank.
        let key = DrawKey::derive(&seed, None);
        let ranks: Vec<_> = drawn
            .winners
            .iter()
            .chain(&drawn.waitlist)
            .map(|r| rank(&key, &result.entry_list_hash, r))
            .collect();
        assert_eq!(ranks.len(), 100);
        assert!(ranks.windows(2).all(|p| p[0] < p[1]));
    }

    #[test]
    fn a_variant_with_no_stock_only_waits() {
        let (seed, _, entries, _) = example();
        let stock = [
            DrawStock::new(variant(0x0a), 0),
            DrawStock::new(variant(0x0b), 1),
        ];
        let result = draw(&DrawKey::derive(&seed, None), &entries, &stock).unwrap();
        assert!(result.variants[0].winners.is_empty());
        assert_eq!(
            result.variants[0].waitlist,
            [receipt(0x44), receipt(0x33), receipt(0x11)]
        );
        assert_eq!(result.variants[1].winners, [receipt(0x22)]);
    }

    #[test]
    fn no_entries_no_winners() {
        let result = draw(
            &DrawKey::derive(&Seed::generate(), None),
            &[],
            &[DrawStock::new(variant(1), 5)],
        )
        .unwrap();
        // sha256 of no bytes.
        assert_eq!(
            result.entry_list_hash.to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(result.variants[0].winners.is_empty());
    }

    #[test]
    fn malformed_inputs_are_refused() {
        let key = DrawKey::derive(&Seed::from_bytes([1; 32]), None);
        let (a, b) = (variant(1), variant(2));
        let twice = [DrawEntry::new(receipt(1), a), DrawEntry::new(receipt(1), a)];
        assert_eq!(
            draw(&key, &twice, &[DrawStock::new(a, 1)]),
            Err(DrawError::DuplicateReceipt {
                receipt: receipt(1)
            })
        );
        let stray = [DrawEntry::new(receipt(1), b)];
        assert_eq!(
            draw(&key, &stray, &[DrawStock::new(a, 1)]),
            Err(DrawError::UnknownVariant { variant_id: b })
        );
        assert_eq!(
            draw(&key, &[], &[DrawStock::new(a, 1), DrawStock::new(a, 2)]),
            Err(DrawError::DuplicateVariant { variant_id: a })
        );

        let mut published = published();
        published.entries.push(published.entries[0]);
        assert!(matches!(
            verify_draw(&published),
            Err(VerifyError::Malformed(DrawError::DuplicateReceipt { .. }))
        ));
    }

    #[test]
    fn the_order_of_entries_given_does_not_matter() {
        let (seed, _, mut entries, stock) = example();
        let key = DrawKey::derive(&seed, None);
        let first = draw(&key, &entries, &stock).unwrap();
        entries.reverse();
        assert_eq!(draw(&key, &entries, &stock).unwrap(), first);
    }

    #[test]
    fn the_published_json_alone_verifies() {
        let (seed, beacon, entries, stock) = example();
        let (result, published) = draw_and_publish(seed, Some(beacon), entries, stock).unwrap();
        let json = serde_json::to_string(&published).unwrap();

        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value["seed"],
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
        assert_eq!(
            value["seedHash"],
            "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
        );
        assert_eq!(
            value["entryListHash"],
            "c9e73116fd2426550cde95c8460127b9d8385b2bd8013696039b02f752538a2c"
        );
        assert_eq!(
            value["entries"][0]["receipt"],
            "11111111111111111111111111111111"
        );
        assert_eq!(
            value["entries"][0]["variantId"],
            "00000000-0000-4000-8000-00000000000a"
        );
        assert_eq!(value["stock"][1]["stock"], 1);
        assert_eq!(
            value["winners"][1]["receipts"][0],
            "55555555555555555555555555555555"
        );

        let back: PublishedDraw = serde_json::from_str(&json).unwrap();
        assert_eq!(back, published);
        assert_eq!(verify_draw(&back).unwrap(), result);

        // No beacon: the field is left out, and still reads back.
        let plain = serde_json::to_value(self::published()).unwrap();
        assert!(plain.get("beacon").is_none());
        let back: PublishedDraw = serde_json::from_value(plain).unwrap();
        assert!(verify_draw(&back).is_ok());
    }

    #[test]
    fn hex_forms_parse_back_and_are_checked() {
        let r = Receipt::generate();
        assert_eq!(r.to_string().len(), 32);
        assert_eq!(r.to_string().parse::<Receipt>().unwrap(), r);
        assert_eq!(r.to_string().to_uppercase().parse::<Receipt>().unwrap(), r);
        assert_ne!(Receipt::generate(), r);
        assert_ne!(Seed::generate(), Seed::generate());

        let err = "abc".parse::<Receipt>().unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert!(err.to_string().contains("receipt"), "{err}");
        assert!("zz".repeat(32).parse::<Seed>().is_err());
        assert!("00".repeat(33).parse::<SeedHash>().is_err());
        assert!(serde_json::from_str::<Receipt>("\"00\"").is_err());

        assert!("".parse::<Beacon>().is_err());
        assert!(Beacon::new(vec![0; MAX_BEACON + 1]).is_err());
        assert_eq!("0aFf".parse::<Beacon>().unwrap().as_bytes(), [0x0a, 0xff]);
        assert_eq!(Beacon::new([0x0a, 0xff]).unwrap().to_string(), "0aff");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let seed = Seed::from_bytes([0xab; 32]);
        assert!(!format!("{seed:?}").contains("abab"));
        assert!(!format!("{:?}", DrawKey::derive(&seed, None)).contains("abab"));
        assert!(format!("{seed}").starts_with("abab"));
    }
}

//! Domain records: drops, holds, purchases and stock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    Buyer, BuyerId, DEFAULT_MAX_PER_BUYER, DEFAULT_VARIANT_NAME, DropError, DropId, MAX_PER_BUYER,
    MAX_VARIANTS, Money, NewVariant, NotActiveReason, PurchaseId, ReservationId, ReserveRequest,
    Username, VariantId, VariantInfo, VariantStock,
};

/// Hold duration when a drop does not choose one.
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Shortest hold a drop may have (short holds are for tests and demos).
pub const MIN_HOLD: Duration = Duration::from_millis(50);
/// Longest hold a drop may have.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest stock a single drop may have (all its variants together).
pub const MAX_STOCK: u32 = 1_000_000;
/// Longest drop name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest beacon name, in characters.
pub const MAX_BEACON_NAME: usize = 200;
/// Earliest `startsAt` / `endsAt` a drop may have (1970-01-01T00:00:00Z).
pub const EARLIEST_INSTANT: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// Latest `startsAt` / `endsAt` a drop may have (9999-12-31T23:59:59Z):
/// the last instant RFC 3339 writes with a four-digit year. Every store
/// can hold the instants between the two (PostgreSQL's `timestamptz` spans
/// 4713 BC to 294276 AD), so nothing valid is refused by a database.
pub const LATEST_INSTANT: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
    Some(t) => t,
    None => panic!("9999-12-31T23:59:59Z is a valid instant"),
};

/// A product on sale in limited quantity: what was decided when the drop
/// was created. Its live counters are a [`Stock`]; both together are a
/// [`DropState`].
///
/// Not named `Drop`, so that `use dropkit::*` never shadows the prelude's
/// `Drop` trait. New fields may be added in minor releases: build one with
/// [`NewDrop::into_drop`] or, in a store reading its own rows,
/// [`DropInfo::new`] and the public fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DropInfo {
    /// Its id.
    pub id: DropId,
    /// Display name.
    pub name: String,
    /// Price of one unit.
    pub price: Money,
    /// Units for sale in all (the sum over its variants).
    pub total_stock: u32,
    /// Its variants, in the order they were created (at least one).
    pub variants: Vec<VariantInfo>,
    /// Units one buyer may hold plus have bought (not cancelled), across
    /// the variants.
    pub max_per_buyer: u32,
    /// Whether new holds are refused for now (`DROP_PAUSED`); existing
    /// holds can still be bought within their window.
    pub paused: bool,
    /// Whether buyers may wait in line for freed units (see
    /// [`crate::waitlist`]); on by default.
    #[serde(default = "default_waitlist")]
    pub waitlist: bool,
    /// How units are first given out: first come, first served (the
    /// default), or by a draw at [`draw_at`](Self::draw_at) (see
    /// [`crate::entry`]).
    #[serde(default)]
    pub mode: SaleMode,
    /// When a draw drop draws: entries are taken from the start until
    /// then. `None` for a first-come drop.
    #[serde(default)]
    pub draw_at: Option<DateTime<Utc>>,
    /// The public randomness a draw drop mixes into its key, by name (say,
    /// a drand round due after `drawAt`), published with the seed's hash;
    /// `None` draws with the seed alone.
    #[serde(default)]
    pub beacon_name: Option<String>,
    /// When the draw was made; `None` before (and for first-come drops).
    #[serde(default)]
    pub drawn_at: Option<DateTime<Utc>>,
    /// Sale opens at this instant (open from creation when absent).
    pub starts_at: Option<DateTime<Utc>>,
    /// Sale closes at this instant (never when absent).
    pub ends_at: Option<DateTime<Utc>>,
    /// How long a new reservation holds its units.
    #[serde(rename = "holdSeconds", with = "hold_seconds")]
    pub hold: Duration,
    /// When the drop was created.
    pub created_at: DateTime<Utc>,
}

/// How a drop first gives its units out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SaleMode {
    /// First come, first served: reserves from the start.
    #[default]
    FirstCome,
    /// Entries from the start until `drawAt`, then a verifiable draw
    /// ([`crate::entry`]); after the draw, what is left sells first come.
    Draw,
}

impl DropInfo {
    /// A drop as a store read it back: open from creation, never closing,
    /// not paused, with `maxPerBuyer` 1; set [`starts_at`](Self::starts_at),
    /// [`ends_at`](Self::ends_at), [`max_per_buyer`](Self::max_per_buyer)
    /// and [`paused`](Self::paused) afterwards. No rule is checked here:
    /// rules are checked by [`NewDrop::validate`] and
    /// [`DropPatch::apply`](crate::DropPatch::apply).
    pub fn new(
        id: DropId,
        name: impl Into<String>,
        price: Money,
        total_stock: u32,
        variants: Vec<VariantInfo>,
        hold: Duration,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            name: name.into(),
            price,
            total_stock,
            variants,
            max_per_buyer: DEFAULT_MAX_PER_BUYER,
            paused: false,
            waitlist: true,
            mode: SaleMode::FirstCome,
            draw_at: None,
            beacon_name: None,
            drawn_at: None,
            starts_at: None,
            ends_at: None,
            hold,
            created_at,
        }
    }

    /// The variant a reserve asking for `wanted` means: the one named, or
    /// the drop's only one. Errors: `VARIANT_NOT_FOUND`, or
    /// `INVALID_INPUT` (field `variantId`) when none is named and the drop
    /// has several.
    pub fn pick_variant(&self, wanted: Option<VariantId>) -> Result<&VariantInfo, DropError> {
        match wanted {
            Some(id) => {
                self.variants
                    .iter()
                    .find(|v| v.id == id)
                    .ok_or(DropError::VariantNotFound {
                        drop_id: self.id,
                        variant_id: id,
                    })
            }
            None => match self.variants.as_slice() {
                [only] => Ok(only),
                _ => Err(DropError::invalid(
                    "variantId",
                    "is required: the drop has more than one variant",
                )),
            },
        }
    }

    /// Checks a reserve's request against the drop's rules (the variant
    /// and the quantity, not the stock or the buyer's past) and answers
    /// the variant it names. Errors: as [`pick_variant`](Self::pick_variant),
    /// and `INVALID_INPUT` (field `quantity`) for a quantity of 0 or above
    /// `maxPerBuyer`, or whose total (price × quantity) would be above the
    /// largest amount ([`MONEY_MAX_MINOR`](crate::money::MONEY_MAX_MINOR)),
    /// so that a hold granted can always be paid.
    pub fn check_request(&self, request: &ReserveRequest) -> Result<VariantId, DropError> {
        let variant = self.pick_variant(request.variant_id)?.id;
        if request.quantity == 0 || request.quantity > self.max_per_buyer {
            return Err(DropError::invalid(
                "quantity",
                format!(
                    "must be between 1 and the drop's maxPerBuyer ({})",
                    self.max_per_buyer
                ),
            ));
        }
        if self.price.times(request.quantity).is_none() {
            return Err(DropError::invalid(
                "quantity",
                "the total would be above the largest amount (1000000000)",
            ));
        }
        Ok(variant)
    }

    /// `Ok` while the drop takes new holds at `now`: in its window and not
    /// paused (`DROP_NOT_ACTIVE`, `DROP_PAUSED`).
    pub fn check_open(&self, now: DateTime<Utc>) -> Result<(), DropError> {
        self.check_active(now)?;
        if self.paused {
            return Err(DropError::DropPaused { drop_id: self.id });
        }
        Ok(())
    }

    /// `Ok` when a plain reserve or a join may go on: `DRAW_ONLY` for a
    /// draw drop that has not drawn yet (its units go by the draw).
    pub fn check_first_come(&self) -> Result<(), DropError> {
        if self.mode == SaleMode::Draw && self.drawn_at.is_none() {
            return Err(DropError::DrawOnly { drop_id: self.id });
        }
        Ok(())
    }

    /// `Ok` while the drop takes draw entries at `now`, checked in this
    /// order: `NOT_A_DRAW` (a first-come drop); `DROP_NOT_ACTIVE` before
    /// the start or after the end; `ENTRIES_CLOSED` at or after `drawAt`,
    /// or once drawn; `DROP_PAUSED`.
    pub fn check_entries_open(&self, now: DateTime<Utc>) -> Result<(), DropError> {
        let Some(draw_at) = self.draw_at.filter(|_| self.mode == SaleMode::Draw) else {
            return Err(DropError::NotADraw { drop_id: self.id });
        };
        self.check_active(now)?;
        if self.drawn_at.is_some() || now >= draw_at {
            return Err(DropError::EntriesClosed { drop_id: self.id });
        }
        if self.paused {
            return Err(DropError::DropPaused { drop_id: self.id });
        }
        Ok(())
    }

    /// Whether the draw is due at `now`: a draw drop not drawn yet whose
    /// `drawAt` has come, and whose sale did not end before it (a drop
    /// ended before its draw never draws; its entries stay undrawn).
    pub fn draw_due(&self, now: DateTime<Utc>) -> bool {
        match (self.mode, self.draw_at, self.drawn_at) {
            (SaleMode::Draw, Some(at), None) => {
                at <= now && self.ends_at.is_none_or(|end| end > at)
            }
            _ => false,
        }
    }

    /// Whether the price may still change at `now`: only before the sale
    /// starts (a drop without `startsAt` is on sale from its creation).
    pub fn price_locked(&self, now: DateTime<Utc>) -> bool {
        now >= self.starts_at.unwrap_or(self.created_at)
    }

    /// `Ok` while the drop takes reservations and purchases at `now`.
    pub fn check_active(&self, now: DateTime<Utc>) -> Result<(), DropError> {
        let reason = if self.starts_at.is_some_and(|s| now < s) {
            NotActiveReason::NotStarted
        } else if self.is_ended(now) {
            NotActiveReason::Ended
        } else {
            return Ok(());
        };
        Err(DropError::DropNotActive {
            drop_id: self.id,
            reason,
        })
    }

    /// Whether the sale window has closed at `now`.
    pub fn is_ended(&self, now: DateTime<Utc>) -> bool {
        self.ends_at.is_some_and(|e| now >= e)
    }

    /// The expiry of a hold taken at `now`.
    pub fn hold_expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::from_std(self.hold).unwrap_or(chrono::Duration::MAX)
    }
}

/// What a caller supplies to create a drop. Build it with [`NewDrop::new`]
/// (one variant) or [`NewDrop::with_variants`] and the setters, then hand
/// it to a store, which calls [`NewDrop::validate`]. New fields may be
/// added in minor releases (each with a default), so it cannot be built as
/// a struct literal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct NewDrop {
    /// Display name (trimmed; 1–100 characters).
    pub name: String,
    /// Price of one unit.
    pub price: Money,
    /// Its variants (1–100, names unique, stock summing to 1–1,000,000).
    pub variants: Vec<NewVariant>,
    /// Units one buyer may hold plus have bought, across the variants
    /// (1–100; default 1).
    #[serde(default = "default_max_per_buyer")]
    pub max_per_buyer: u32,
    /// Optional opening instant.
    pub starts_at: Option<DateTime<Utc>>,
    /// Optional closing instant (after `starts_at`).
    pub ends_at: Option<DateTime<Utc>>,
    /// Whether buyers may wait in line for freed units (default `true`).
    #[serde(default = "default_waitlist")]
    pub waitlist: bool,
    /// First come (the default) or a draw at `draw_at`.
    #[serde(default)]
    pub mode: SaleMode,
    /// When a draw drop draws (required for, and only for, a draw drop):
    /// after the start, before the end, in the future.
    #[serde(default)]
    pub draw_at: Option<DateTime<Utc>>,
    /// The public randomness a draw mixes in, by name (1–200 characters,
    /// a draw drop only). Its value is handed to the draw
    /// ([`InventoryStore::run_draw`](crate::InventoryStore::run_draw)).
    #[serde(default)]
    pub beacon_name: Option<String>,
    /// Hold duration. Defaults to [`DEFAULT_HOLD`] (60 s).
    #[serde(
        rename = "holdSeconds",
        with = "hold_seconds",
        default = "default_hold"
    )]
    pub hold: Duration,
}

fn default_hold() -> Duration {
    DEFAULT_HOLD
}

fn default_max_per_buyer() -> u32 {
    DEFAULT_MAX_PER_BUYER
}

fn default_waitlist() -> bool {
    true
}

impl NewDrop {
    /// A drop of one variant ([`DEFAULT_VARIANT_NAME`]) with `total_stock`
    /// units, open from now on, forever, with the default hold and one
    /// unit per buyer.
    pub fn new(name: impl Into<String>, price: Money, total_stock: u32) -> Self {
        Self::with_variants(
            name,
            price,
            vec![NewVariant::new(DEFAULT_VARIANT_NAME, total_stock)],
        )
    }

    /// A drop of several variants, each with its own stock.
    pub fn with_variants(
        name: impl Into<String>,
        price: Money,
        variants: impl IntoIterator<Item = NewVariant>,
    ) -> Self {
        Self {
            name: name.into(),
            price,
            variants: variants.into_iter().collect(),
            max_per_buyer: DEFAULT_MAX_PER_BUYER,
            starts_at: None,
            ends_at: None,
            waitlist: true,
            mode: SaleMode::FirstCome,
            draw_at: None,
            beacon_name: None,
            hold: DEFAULT_HOLD,
        }
    }

    /// Units for sale in all: the sum over the variants (saturating).
    pub fn total_stock(&self) -> u32 {
        self.variants
            .iter()
            .fold(0u32, |sum, v| sum.saturating_add(v.total_stock))
    }

    /// Sets how many units one buyer may hold plus have bought.
    pub fn max_per_buyer(mut self, max: u32) -> Self {
        self.max_per_buyer = max;
        self
    }

    /// Sets the opening instant.
    pub fn starts_at(mut self, at: DateTime<Utc>) -> Self {
        self.starts_at = Some(at);
        self
    }

    /// Sets the closing instant.
    pub fn ends_at(mut self, at: DateTime<Utc>) -> Self {
        self.ends_at = Some(at);
        self
    }

    /// Turns the waiting list on (the default) or off.
    pub fn waitlist(mut self, on: bool) -> Self {
        self.waitlist = on;
        self
    }

    /// Makes this a draw drop that draws at `at` (see [`crate::entry`]).
    pub fn draw_at(mut self, at: DateTime<Utc>) -> Self {
        self.mode = SaleMode::Draw;
        self.draw_at = Some(at);
        self
    }

    /// Names the public randomness the draw mixes into its key.
    pub fn beacon_name(mut self, name: impl Into<String>) -> Self {
        self.beacon_name = Some(name.into());
        self
    }

    /// Sets the hold duration. Defaults to 60 s.
    pub fn hold(mut self, hold: Duration) -> Self {
        self.hold = hold;
        self
    }

    /// Checks every rule; the error names the first field that breaks one.
    pub fn validate(&self) -> Result<(), DropError> {
        let name_len = self.name.trim().chars().count();
        if name_len == 0 || name_len > MAX_NAME {
            return Err(DropError::invalid(
                "name",
                format!("must be 1 to {MAX_NAME} characters"),
            ));
        }
        if self.name.trim().chars().any(char::is_control) {
            return Err(DropError::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        if self.variants.is_empty() || self.variants.len() > MAX_VARIANTS {
            return Err(DropError::invalid(
                "variants",
                format!("must have 1 to {MAX_VARIANTS} entries"),
            ));
        }
        for (i, v) in self.variants.iter().enumerate() {
            // A drop made with `totalStock` and no variants names that field.
            if self.variants.len() == 1 && v.total_stock > MAX_STOCK {
                return Err(DropError::invalid(
                    "totalStock",
                    format!("total stock must be between 1 and {MAX_STOCK}"),
                ));
            }
            v.validate(i)?;
            let name = v.name.trim();
            if self.variants[..i].iter().any(|w| w.name.trim() == name) {
                return Err(DropError::invalid(
                    format!("variants[{i}].name"),
                    "must be unique within the drop",
                ));
            }
        }
        let total = self.total_stock();
        if total == 0 || total > MAX_STOCK {
            let field = if self.variants.len() == 1 {
                "totalStock"
            } else {
                "variants"
            };
            return Err(DropError::invalid(
                field,
                format!("total stock must be between 1 and {MAX_STOCK}"),
            ));
        }
        if self.max_per_buyer == 0 || self.max_per_buyer > MAX_PER_BUYER {
            return Err(DropError::invalid(
                "maxPerBuyer",
                format!("must be between 1 and {MAX_PER_BUYER}"),
            ));
        }
        for (field, at) in [("startsAt", self.starts_at), ("endsAt", self.ends_at)] {
            if at.is_some_and(|at| !(EARLIEST_INSTANT..=LATEST_INSTANT).contains(&at)) {
                return Err(DropError::invalid(
                    field,
                    "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
                ));
            }
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            return Err(DropError::invalid("endsAt", "must be after startsAt"));
        }
        self.validate_draw()?;
        if self.hold < MIN_HOLD || self.hold > MAX_HOLD {
            return Err(DropError::invalid(
                "holdSeconds",
                format!(
                    "must be between {} and {} seconds",
                    MIN_HOLD.as_secs_f64(),
                    MAX_HOLD.as_secs()
                ),
            ));
        }
        Ok(())
    }

    fn validate_draw(&self) -> Result<(), DropError> {
        match (self.mode, self.draw_at) {
            (SaleMode::FirstCome, Some(_)) => {
                return Err(DropError::invalid("drawAt", "is for draw drops only"));
            }
            (SaleMode::FirstCome, None) => {
                if self.beacon_name.is_some() {
                    return Err(DropError::invalid("beaconName", "is for draw drops only"));
                }
                return Ok(());
            }
            (SaleMode::Draw, None) => {
                return Err(DropError::invalid("drawAt", "is required for a draw drop"));
            }
            (SaleMode::Draw, Some(at)) => {
                if !(EARLIEST_INSTANT..=LATEST_INSTANT).contains(&at) {
                    return Err(DropError::invalid(
                        "drawAt",
                        "must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
                    ));
                }
                if self.starts_at.is_some_and(|s| at <= s) {
                    return Err(DropError::invalid("drawAt", "must be after startsAt"));
                }
                if self.ends_at.is_some_and(|e| at >= e) {
                    return Err(DropError::invalid("drawAt", "must be before endsAt"));
                }
            }
        }
        if let Some(name) = &self.beacon_name {
            let len = name.trim().chars().count();
            if len == 0 || len > MAX_BEACON_NAME || name.chars().any(char::is_control) {
                return Err(DropError::invalid(
                    "beaconName",
                    format!("must be 1 to {MAX_BEACON_NAME} characters, none of them control"),
                ));
            }
        }
        Ok(())
    }

    /// [`validate`](Self::validate), and refuses a drop whose sale would
    /// already be over at `now` (the store's time of creation), or whose
    /// draw would already be due.
    pub fn validate_at(&self, now: DateTime<Utc>) -> Result<(), DropError> {
        self.validate()?;
        if self.ends_at.is_some_and(|e| e <= now) {
            return Err(DropError::invalid("endsAt", "must be in the future"));
        }
        if self.draw_at.is_some_and(|d| d <= now) {
            return Err(DropError::invalid("drawAt", "must be in the future"));
        }
        Ok(())
    }

    /// Validates (at `now`) and turns this into a [`DropInfo`] created at
    /// `now`, with the names trimmed and a new id for each variant, and the
    /// variants' starting stock (all free), in the same order.
    pub fn into_drop(
        self,
        id: DropId,
        now: DateTime<Utc>,
    ) -> Result<(DropInfo, Vec<VariantStock>), DropError> {
        self.validate_at(now)?;
        let total_stock = self.total_stock();
        let (variants, stock) = self
            .variants
            .iter()
            .map(|v| {
                let vid = VariantId::new();
                (
                    VariantInfo::new(vid, v.name.trim()),
                    VariantStock::new(vid, v.total_stock, 0, 0),
                )
            })
            .unzip();
        Ok((
            DropInfo {
                id,
                name: self.name.trim().to_owned(),
                price: self.price,
                total_stock,
                variants,
                max_per_buyer: self.max_per_buyer,
                paused: false,
                waitlist: self.waitlist,
                mode: self.mode,
                draw_at: self.draw_at,
                beacon_name: self.beacon_name.as_deref().map(|n| n.trim().to_owned()),
                drawn_at: None,
                starts_at: self.starts_at,
                ends_at: self.ends_at,
                hold: self.hold,
                created_at: now,
            },
            stock,
        ))
    }
}

/// The state of a hold. See [`crate::state`] for the allowed moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    /// Holding a unit until `expiresAt`.
    Active,
    /// Turned into a purchase (terminal).
    Purchased,
    /// Ran out of time (terminal).
    Expired,
    /// Given back by its owner (terminal).
    Released,
}

impl ReservationStatus {
    /// Whether no further transition is possible.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Active)
    }

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Purchased => "purchased",
            Self::Expired => "expired",
            Self::Released => "released",
        }
    }
}

impl std::str::FromStr for ReservationStatus {
    type Err = DropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "active" => Self::Active,
            "purchased" => Self::Purchased,
            "expired" => Self::Expired,
            "released" => Self::Released,
            _ => return Err(DropError::invalid("status", "unknown reservation status")),
        })
    }
}

/// A hold on units of one variant of a drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reservation {
    /// Its id (random).
    pub id: ReservationId,
    /// The drop held.
    pub drop_id: DropId,
    /// The variant held.
    pub variant_id: VariantId,
    /// How many units it holds (at least 1).
    pub quantity: u32,
    /// Who holds it.
    pub buyer_id: BuyerId,
    /// The holder's display name, as given when the hold was taken.
    pub display_name: Username,
    /// Current state.
    pub status: ReservationStatus,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// When the hold runs out.
    pub expires_at: DateTime<Utc>,
    /// Whether it was offered to the buyer from the waiting list rather
    /// than taken by a reserve.
    #[serde(default)]
    pub offered: bool,
}

impl Reservation {
    /// A hold of one unit as a store records it; set
    /// [`quantity`](Self::quantity) afterwards for more.
    pub fn new(
        id: ReservationId,
        drop_id: DropId,
        variant_id: VariantId,
        buyer: Buyer,
        status: ReservationStatus,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            drop_id,
            variant_id,
            quantity: 1,
            buyer_id: buyer.id,
            display_name: buyer.display_name,
            status,
            created_at,
            expires_at,
            offered: false,
        }
    }

    /// Its holder, id and display name.
    pub fn buyer(&self) -> Buyer {
        Buyer::new(self.buyer_id.clone(), self.display_name.clone())
    }
}

/// The answer to a reserve: the hold, and whether this call created it
/// (`false` when the caller already held the same units, returned
/// unchanged, or when the call replayed an earlier one by its idempotency
/// key and that one did not create it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Reserved {
    /// The caller's hold (as it is now, for a replay: it may have ended).
    pub reservation: Reservation,
    /// Whether this call (or, for a replay, the call replayed) created it.
    pub created: bool,
    /// Whether this call replayed an earlier one with the same
    /// idempotency key instead of acting.
    pub replayed: bool,
}

impl Reserved {
    /// The answer to a reserve that acted.
    pub fn new(reservation: Reservation, created: bool) -> Self {
        Self {
            reservation,
            created,
            replayed: false,
        }
    }

    /// The answer to a reserve that replayed an earlier one.
    pub fn replay(reservation: Reservation, created: bool) -> Self {
        Self {
            reservation,
            created,
            replayed: true,
        }
    }
}

/// Whether a purchase stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PurchaseStatus {
    /// Paid and standing.
    Completed,
    /// Cancelled by an admin; its units went back on sale (terminal).
    Cancelled,
}

impl PurchaseStatus {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for PurchaseStatus {
    type Err = DropError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ => return Err(DropError::invalid("status", "unknown purchase status")),
        })
    }
}

/// A purchase: a hold paid for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Purchase {
    /// Its id.
    pub id: PurchaseId,
    /// The hold it completed.
    pub reservation_id: ReservationId,
    /// The drop bought from.
    pub drop_id: DropId,
    /// The variant bought.
    pub variant_id: VariantId,
    /// How many units.
    pub quantity: u32,
    /// The buyer.
    pub buyer_id: BuyerId,
    /// The buyer's display name, as given when the hold was taken.
    pub display_name: Username,
    /// What was paid: the drop's price at the time × quantity.
    pub amount_paid: Money,
    /// Completed, or cancelled since.
    pub status: PurchaseStatus,
    /// When it was paid.
    pub created_at: DateTime<Utc>,
    /// When it was cancelled, if it was.
    pub cancelled_at: Option<DateTime<Utc>>,
}

impl Purchase {
    /// A completed purchase of `reservation`'s units as a store records it.
    pub fn new(
        id: PurchaseId,
        reservation: &Reservation,
        amount_paid: Money,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            reservation_id: reservation.id,
            drop_id: reservation.drop_id,
            variant_id: reservation.variant_id,
            quantity: reservation.quantity,
            buyer_id: reservation.buyer_id.clone(),
            display_name: reservation.display_name.clone(),
            amount_paid,
            status: PurchaseStatus::Completed,
            created_at,
            cancelled_at: None,
        }
    }

    /// Its buyer, id and display name.
    pub fn buyer(&self) -> Buyer {
        Buyer::new(self.buyer_id.clone(), self.display_name.clone())
    }

    /// Whether it still stands (not cancelled).
    pub fn is_completed(&self) -> bool {
        self.status == PurchaseStatus::Completed
    }
}

/// The answer to a purchase: the purchase, and whether this call made it
/// (`false` when the owner repeated a purchase of a hold already bought:
/// the same purchase comes back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Purchased {
    /// The purchase (as it is now, for a repeat: it may be cancelled).
    pub purchase: Purchase,
    /// Whether this call (or, for a replay, the call replayed) made it.
    pub created: bool,
    /// Whether this call replayed an earlier one with the same
    /// idempotency key instead of acting.
    pub replayed: bool,
}

impl Purchased {
    /// The answer to a purchase that acted (or found the purchase made).
    pub fn new(purchase: Purchase, created: bool) -> Self {
        Self {
            purchase,
            created,
            replayed: false,
        }
    }

    /// The answer to a purchase that replayed an earlier one.
    pub fn replay(purchase: Purchase, created: bool) -> Self {
        Self {
            purchase,
            created,
            replayed: true,
        }
    }
}

/// One entry of a drop's recent-buyers list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TopPurchaser {
    /// The buyer's display name (never their id: this list is public).
    pub display_name: Username,
    /// When they bought.
    pub purchased_at: DateTime<Utc>,
}

impl TopPurchaser {
    /// One recent buyer.
    pub fn new(display_name: Username, purchased_at: DateTime<Utc>) -> Self {
        Self {
            display_name,
            purchased_at,
        }
    }
}

/// The stock counters of a drop. `available = total − reserved − sold`.
///
/// `version` grows by at least one with every committed change to the
/// counters, so a consumer receiving stock snapshots out of order keeps the
/// newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Stock {
    /// Units in all.
    pub total: u32,
    /// Units under an active hold (holds past their expiry that no one has
    /// reclaimed yet may still be counted here; they never block a reserve).
    pub reserved: u32,
    /// Units sold.
    pub sold: u32,
    /// Change counter; higher is newer.
    pub version: u64,
}

impl Stock {
    /// Counters as a store keeps them.
    pub fn new(total: u32, reserved: u32, sold: u32, version: u64) -> Self {
        Self {
            total,
            reserved,
            sold,
            version,
        }
    }

    /// Units free to reserve.
    pub fn available(&self) -> u32 {
        self.total.saturating_sub(self.reserved + self.sold)
    }
}

/// A drop with its current stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DropState {
    /// The drop.
    pub drop: DropInfo,
    /// Its counters: the sums over its variants.
    pub stock: Stock,
    /// Each variant's counters, in the order of
    /// [`DropInfo::variants`].
    pub variants: Vec<VariantStock>,
}

impl DropState {
    /// A drop with its counters.
    pub fn new(drop: DropInfo, stock: Stock, variants: Vec<VariantStock>) -> Self {
        Self {
            drop,
            stock,
            variants,
        }
    }

    /// One variant's counters.
    pub fn variant(&self, id: VariantId) -> Option<&VariantStock> {
        self.variants.iter().find(|v| v.id == id)
    }
}

/// Serde for a hold duration as (possibly fractional) seconds.
mod hold_seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_f64(d.as_secs_f64())
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs)
            .map_err(|_| de::Error::custom("holdSeconds must be a non-negative number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn new_drop_rules() {
        let ok = NewDrop::new("Air", Money::from_minor(100).unwrap(), 10);
        assert!(ok.validate().is_ok());
        let cases = [
            (
                NewDrop {
                    name: "  ".into(),
                    ..ok.clone()
                },
                "name",
            ),
            (NewDrop::new("Air", Money::ZERO, 0), "totalStock"),
            (
                NewDrop::new("Air", Money::ZERO, MAX_STOCK + 1),
                "totalStock",
            ),
            (NewDrop::with_variants("Air", Money::ZERO, []), "variants"),
            (
                NewDrop::with_variants(
                    "Air",
                    Money::ZERO,
                    [NewVariant::new("M", 1), NewVariant::new(" M ", 1)],
                ),
                "variants[1].name",
            ),
            (
                NewDrop::with_variants(
                    "Air",
                    Money::ZERO,
                    [NewVariant::new("M", 0), NewVariant::new("L", 0)],
                ),
                "variants",
            ),
            (
                NewDrop::with_variants("Air", Money::ZERO, [NewVariant::new("", 1)]),
                "variants[0].name",
            ),
            (ok.clone().max_per_buyer(0), "maxPerBuyer"),
            (ok.clone().max_per_buyer(MAX_PER_BUYER + 1), "maxPerBuyer"),
            (
                ok.clone()
                    .starts_at(t("2030-01-02T00:00:00Z"))
                    .ends_at(t("2030-01-01T00:00:00Z")),
                "endsAt",
            ),
            (ok.clone().hold(Duration::from_millis(1)), "holdSeconds"),
            // Instants no store can be trusted to keep: PostgreSQL stops
            // at 4713 BC; RFC 3339 at year 9999.
            (ok.clone().starts_at(t("-5000-01-01T00:00:00Z")), "startsAt"),
            (ok.clone().starts_at(t("1969-12-31T23:59:59Z")), "startsAt"),
            (ok.clone().ends_at(t("+10000-01-01T00:00:00Z")), "endsAt"),
        ];
        for (new, field) in cases {
            assert_eq!(new.validate().unwrap_err().field(), Some(field));
        }
        let edges = ok
            .clone()
            .starts_at(EARLIEST_INSTANT)
            .ends_at(LATEST_INSTANT);
        assert!(edges.validate().is_ok());
    }

    #[test]
    fn an_end_already_past_is_refused() {
        let now = t("2030-01-01T00:00:00Z");
        let ok = NewDrop::new("Air", Money::ZERO, 10);
        let past = ok.clone().ends_at(now);
        assert!(past.validate().is_ok(), "not a rule without a time");
        assert_eq!(past.validate_at(now).unwrap_err().field(), Some("endsAt"));
        assert!(
            past.clone()
                .into_drop(DropId::new(), now)
                .is_err_and(|e| e.field() == Some("endsAt"))
        );
        let later = ok.ends_at(now + chrono::Duration::microseconds(1));
        assert!(later.validate_at(now).is_ok());
    }

    #[test]
    fn window_checks() {
        let d = NewDrop::new("A", Money::ZERO, 1)
            .starts_at(t("2030-01-01T00:00:00Z"))
            .ends_at(t("2030-01-02T00:00:00Z"))
            .into_drop(DropId::new(), t("2029-01-01T00:00:00Z"))
            .unwrap()
            .0;
        assert!(matches!(
            d.check_active(t("2029-12-31T23:59:59Z")),
            Err(DropError::DropNotActive {
                reason: NotActiveReason::NotStarted,
                ..
            })
        ));
        assert!(d.check_active(t("2030-01-01T00:00:00Z")).is_ok());
        assert!(matches!(
            d.check_active(t("2030-01-02T00:00:00Z")),
            Err(DropError::DropNotActive {
                reason: NotActiveReason::Ended,
                ..
            })
        ));
    }

    #[test]
    fn hold_seconds_on_the_wire() {
        let d = NewDrop::new("A", Money::ZERO, 1).hold(Duration::from_millis(1500));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["holdSeconds"], 1.5);
        let back: NewDrop = serde_json::from_value(v).unwrap();
        assert_eq!(back.hold, Duration::from_millis(1500));
    }

    /// A draw drop's rules: `drawAt` required, inside the sale window and
    /// in the future; nothing of a draw on a first-come drop.
    #[test]
    fn draw_drop_rules() {
        let now = t("2030-01-01T00:00:00Z");
        let base = NewDrop::new("Air", Money::ZERO, 5)
            .starts_at(t("2030-01-02T00:00:00Z"))
            .ends_at(t("2030-01-04T00:00:00Z"));
        let draw = base.clone().draw_at(t("2030-01-03T00:00:00Z"));
        assert!(draw.validate_at(now).is_ok());
        assert!(
            draw.clone()
                .beacon_name("drand round 7")
                .validate_at(now)
                .is_ok()
        );
        let field = |d: NewDrop| match d.validate_at(now) {
            Err(DropError::InvalidInput { field, .. }) => field.into_owned(),
            other => panic!("expected INVALID_INPUT, got {other:?}"),
        };
        let mut no_time = base.clone();
        no_time.mode = SaleMode::Draw;
        assert_eq!(field(no_time), "drawAt");
        let mut first_come_with_time = base.clone();
        first_come_with_time.draw_at = Some(t("2030-01-03T00:00:00Z"));
        assert_eq!(field(first_come_with_time), "drawAt");
        assert_eq!(field(base.clone().beacon_name("x")), "beaconName");
        assert_eq!(
            field(base.clone().draw_at(t("2030-01-02T00:00:00Z"))),
            "drawAt"
        );
        assert_eq!(
            field(base.clone().draw_at(t("2030-01-04T00:00:00Z"))),
            "drawAt"
        );
        assert_eq!(field(draw.clone().beacon_name(" ")), "beaconName");
        assert_eq!(field(draw.clone().beacon_name("a\u{7}b")), "beaconName");
        let past = NewDrop::new("Air", Money::ZERO, 5).draw_at(t("2029-12-31T00:00:00Z"));
        assert_eq!(field(past), "drawAt");
    }

    /// Entries open from the start until `drawAt`; reserves wait for the
    /// draw; the draw is due from `drawAt` unless the sale ended first.
    #[test]
    fn entries_and_the_draw_follow_the_clock() {
        let created = t("2030-01-01T00:00:00Z");
        let draw_at = t("2030-01-01T01:00:00Z");
        let (mut drop, _) = NewDrop::new("Air", Money::ZERO, 5)
            .starts_at(t("2030-01-01T00:10:00Z"))
            .draw_at(draw_at)
            .into_drop(DropId::new(), created)
            .unwrap();
        let code = |r: Result<(), DropError>| r.err().map(|e| e.code());
        assert_eq!(
            code(drop.check_entries_open(created)),
            Some("DROP_NOT_ACTIVE")
        );
        let open = t("2030-01-01T00:30:00Z");
        assert_eq!(code(drop.check_entries_open(open)), None);
        assert_eq!(code(drop.check_first_come()), Some("DRAW_ONLY"));
        assert!(!drop.draw_due(open));
        assert_eq!(
            code(drop.check_entries_open(draw_at)),
            Some("ENTRIES_CLOSED")
        );
        assert!(drop.draw_due(draw_at));
        drop.paused = true;
        assert_eq!(code(drop.check_entries_open(open)), Some("DROP_PAUSED"));
        drop.paused = false;
        drop.ends_at = Some(t("2030-01-01T00:45:00Z"));
        assert!(
            !drop.draw_due(draw_at),
            "ended before its draw: never drawn"
        );
        drop.ends_at = None;
        drop.drawn_at = Some(draw_at);
        assert!(!drop.draw_due(draw_at));
        assert_eq!(code(drop.check_first_come()), None);
        assert_eq!(code(drop.check_entries_open(open)), Some("ENTRIES_CLOSED"));
        let (first_come, _) = NewDrop::new("Air", Money::ZERO, 5)
            .into_drop(DropId::new(), created)
            .unwrap();
        assert_eq!(
            code(first_come.check_entries_open(open)),
            Some("NOT_A_DRAW")
        );
        assert_eq!(code(first_come.check_first_come()), None);
    }
}

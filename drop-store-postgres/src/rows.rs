//! The boundary between SQL and Rust: one typed shape per result row, the
//! outcome enum the write functions answer with, and the one mapping from
//! an outcome to a [`DropError`].
//!
//! Rows are decoded with `sqlx::FromRow`; a row that does not fit its shape
//! is a fault of the store, reported once by [`decode`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Buyer, BuyerId, DropError, DropEvent, DropId, DropInfo, DropOverview, DropState,
    IdempotencyKey, IdempotencyRecord, Money, NotActiveReason, Purchase, PurchaseId,
    PurchaseStatus, Recorded, Reservation, ReservationId, ReservationStatus, Stock, TopPurchaser,
    Username, VariantId, VariantInfo, VariantStock,
};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::error::{internal, map_sqlx};
pub(crate) use crate::waitlist::LineStep;

/// The columns [`DropRow`] reads, from `dropkit_drops d`, with the stock
/// as the database holds it (overdue holds not yet reclaimed count as
/// reserved): what an admin edit decides on.
macro_rules! drop_columns {
    () => {
        "d.id, d.name, d.price_minor, d.total_stock, d.sold, d.version, d.starts_at, \
         d.ends_at, d.hold_micros, d.created_at, d.max_per_buyer, d.paused, d.waitlist, \
         d.mode, d.draw_at, d.beacon_name, d.drawn_at, \
         dropkit_variants_of(d.id) AS variants"
    };
}

/// The columns [`DropRow`] reads, from `dropkit_drops d`, with the stock
/// as clients should see it: holds past their time count as free before
/// the sweeper gets to them. Time is the statement's start, the instant the
/// snapshot is taken. The overdue units are read from the sweeper's index,
/// which holds only the drop's active holds in expiry order, so only the
/// overdue ones are read. Where people wait for a variant, its overdue
/// units are the line's when reclaimed, never on open sale: they stay
/// counted as reserved.
macro_rules! visible_drop_columns {
    () => {
        "d.id, d.name, d.price_minor, d.total_stock, d.sold, d.version, d.starts_at, \
         d.ends_at, d.hold_micros, d.created_at, d.max_per_buyer, d.paused, d.waitlist, \
         d.mode, d.draw_at, d.beacon_name, d.drawn_at, \
         (SELECT coalesce(array_agg(ROW(v.id, v.name, v.total_stock, \
                                        v.reserved - CASE WHEN v.waitlist_length = 0 \
                                                          THEN coalesce(o.units, 0) ELSE 0 END, \
                                        v.sold, v.waitlist_length)::dropkit_variant_stock \
                                    ORDER BY v.position), '{}') \
            FROM dropkit_variants v \
            LEFT JOIN (SELECT r.variant_id, sum(r.quantity)::integer AS units \
                         FROM dropkit_reservations r \
                        WHERE r.drop_id = d.id AND r.status = 'active' \
                          AND r.created_at < r.expires_at AND r.expires_at <= statement_timestamp() \
                        GROUP BY r.variant_id) o ON o.variant_id = v.id \
           WHERE v.drop_id = d.id) AS variants"
    };
}

/// The listing's filter and order, for `dropkit_drops d`: drops that have
/// not ended, soonest start first.
macro_rules! not_ended_in_order {
    () => {
        "WHERE d.ends_at IS NULL OR d.ends_at > statement_timestamp() \
         ORDER BY coalesce(d.starts_at, d.created_at), d.created_at, d.id"
    };
}

/// The columns [`MaybeEntry`](crate::draws::MaybeEntry) reads, from
/// `dropkit_entries en` (a `LEFT JOIN`).
macro_rules! entry_columns {
    () => {
        "en.variant_id AS entry_variant_id, en.display_name AS entry_display_name, \
         en.receipt AS entry_receipt, en.entered_at AS entry_entered_at, \
         en.outcome AS entry_outcome, en.draw_position AS entry_draw_position, \
         en.reservation_id AS entry_reservation_id"
    };
}

/// The columns [`HoldRow`] reads.
macro_rules! hold_columns {
    () => {
        "id, drop_id, variant_id, quantity, buyer_id, display_name, status, created_at, expires_at, \
         offered"
    };
}

/// The columns [`PurchaseRecordRow`] reads.
macro_rules! purchase_columns {
    () => {
        "id, reservation_id, drop_id, variant_id, quantity, buyer_id, display_name, \
         amount_minor, status, created_at, cancelled_at"
    };
}

/// Decodes `row` as `T`. A row that does not fit is the store's own fault
/// (a migration and this code disagree), never the caller's.
pub(crate) fn decode<T>(row: &PgRow) -> Result<T, DropError>
where
    T: for<'r> FromRow<'r, PgRow>,
{
    T::from_row(row).map_err(map_sqlx)
}

/// A value a row must carry for the outcome it reports.
pub(crate) fn present<T>(value: Option<T>, what: &str) -> Result<T, DropError> {
    value.ok_or_else(|| internal(format!("a result row lacks {what}")))
}

/// What a write function says happened: to the call as a whole, to one
/// caller's request, or why it was refused (PostgreSQL type
/// `dropkit_outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "dropkit_outcome", rename_all = "snake_case")]
pub(crate) enum Outcome {
    /// The call ran; see each caller's own outcome.
    Ok,
    /// No drop has that id.
    DropNotFound,
    /// The drop's sale has not begun.
    NotStarted,
    /// The drop's sale is over.
    Ended,
    /// A new hold.
    Created,
    /// The caller's active hold, unchanged.
    Existing,
    /// No unit left for this caller.
    OutOfStock,
    /// The hold is bought now.
    Purchased,
    /// This call's own purchase, committed by an attempt whose answer was
    /// lost.
    Repeated,
    /// The hold is given back now.
    Released,
    /// No hold of that drop has that id.
    NotFound,
    /// Someone else's hold.
    NotOwner,
    /// The hold ran out.
    Expired,
    /// The hold was bought already (by another call).
    AlreadyPurchased,
    /// The hold was given back already.
    AlreadyReleased,
    /// The drop is paused.
    Paused,
    /// The drop has no such variant.
    VariantNotFound,
    /// The drop has several variants and none was named.
    VariantRequired,
    /// The quantity is 0 or above the drop's `maxPerBuyer`.
    BadQuantity,
    /// The buyer holds other units of the drop.
    HoldExists,
    /// The buyer's units would pass the drop's `maxPerBuyer`.
    BuyerLimit,
    /// The caller's idempotency key is recorded (by an earlier call, or by
    /// another transaction meanwhile): the store answers from the record.
    KeyTaken,
}

impl Outcome {
    /// The one mapping from outcomes to errors: a success answers itself;
    /// a refusal answers the [`DropError`] it stands for, about `drop_id`
    /// or `reservation_id` (whichever the refusal names).
    pub(crate) fn accept(
        self,
        drop_id: Option<DropId>,
        reservation_id: Option<ReservationId>,
    ) -> Result<Outcome, DropError> {
        let drop = || present(drop_id, "the drop a refusal names");
        let hold = || present(reservation_id, "the hold a refusal names");
        Err(match self {
            Outcome::Ok
            | Outcome::Created
            | Outcome::Existing
            | Outcome::Purchased
            | Outcome::Repeated
            | Outcome::Released => return Ok(self),
            Outcome::DropNotFound => DropError::DropNotFound { drop_id: drop()? },
            Outcome::NotStarted => DropError::DropNotActive {
                drop_id: drop()?,
                reason: NotActiveReason::NotStarted,
            },
            Outcome::Ended => DropError::DropNotActive {
                drop_id: drop()?,
                reason: NotActiveReason::Ended,
            },
            Outcome::OutOfStock => DropError::OutOfStock { drop_id: drop()? },
            Outcome::NotFound => DropError::ReservationNotFound {
                reservation_id: hold()?,
            },
            Outcome::NotOwner => DropError::NotOwner {
                reservation_id: hold()?,
            },
            Outcome::Expired => DropError::ReservationExpired {
                reservation_id: hold()?,
            },
            Outcome::AlreadyPurchased => DropError::AlreadyPurchased {
                reservation_id: hold()?,
            },
            Outcome::AlreadyReleased => DropError::AlreadyReleased {
                reservation_id: hold()?,
            },
            Outcome::Paused => DropError::DropPaused { drop_id: drop()? },
            Outcome::VariantRequired => DropError::invalid(
                "variantId",
                "is required: the drop has more than one variant",
            ),
            // These carry what only the caller's request knows: the
            // write paths answer them before asking here.
            Outcome::VariantNotFound
            | Outcome::BadQuantity
            | Outcome::HoldExists
            | Outcome::BuyerLimit
            | Outcome::KeyTaken => return Err(self.unexpected("a refusal")),
        })
    }

    /// The fault of a function answering an outcome it never gives there.
    pub(crate) fn unexpected(self, what: &str) -> DropError {
        internal(format!("{what} answered {self:?}"))
    }
}

/// A drop's counters after a write (`o_total`, `o_reserved`, `o_sold`,
/// `o_version`); absent when the write found no drop.
#[derive(Debug, FromRow)]
pub(crate) struct Counters {
    #[sqlx(rename = "o_total")]
    total: Option<i32>,
    #[sqlx(rename = "o_reserved")]
    reserved: Option<i32>,
    #[sqlx(rename = "o_sold")]
    sold: Option<i32>,
    #[sqlx(rename = "o_version")]
    version: Option<i64>,
    #[sqlx(rename = "o_variants")]
    variants: Option<Vec<VariantRow>>,
}

impl Counters {
    /// The stock they stand for.
    pub(crate) fn stock(&self) -> Result<Stock, DropError> {
        stock(
            present(self.total, "the drop's total")?,
            present(self.reserved, "the drop's reserved count")?,
            present(self.sold, "the drop's sold count")?,
            present(self.version, "the drop's version")?,
        )
    }

    /// Each variant's counters, in the drop's order.
    pub(crate) fn variants(&self) -> Result<Vec<VariantStock>, DropError> {
        present(self.variants.as_ref(), "the variants' counters")?
            .iter()
            .map(VariantRow::stock)
            .collect()
    }

    /// The `StockChanged` event they stand for.
    pub(crate) fn event(&self, drop_id: DropId) -> Result<DropEvent, DropError> {
        Ok(DropEvent::StockChanged {
            drop_id,
            stock: self.stock()?,
            variants: self.variants()?,
        })
    }
}

/// One variant and its counters (PostgreSQL type `dropkit_variant_stock`).
#[derive(Debug, Clone, sqlx::Type)]
#[sqlx(type_name = "dropkit_variant_stock")]
pub(crate) struct VariantRow {
    id: Uuid,
    name: String,
    total_stock: i32,
    reserved: i32,
    sold: i32,
    /// Absent only from a row built before the line existed.
    waitlist_length: Option<i32>,
}

impl VariantRow {
    fn info(&self) -> VariantInfo {
        VariantInfo::new(VariantId::from_uuid(self.id), self.name.clone())
    }

    fn stock(&self) -> Result<VariantStock, DropError> {
        let mut stock = VariantStock::new(
            VariantId::from_uuid(self.id),
            counter(self.total_stock)?,
            counter(self.reserved)?,
            counter(self.sold)?,
        );
        stock.waitlist_length = counter(self.waitlist_length.unwrap_or(0))?;
        Ok(stock)
    }
}

/// What `dropkit_reserve_units` answers.
#[derive(Debug, FromRow)]
pub(crate) struct ReserveRow {
    /// `Ok`, or why the whole call was refused.
    #[sqlx(rename = "o_outcome")]
    pub(crate) outcome: Outcome,
    #[sqlx(flatten)]
    pub(crate) after: Counters,
    #[sqlx(rename = "o_max_per_buyer")]
    max_per_buyer: Option<i32>,
    /// One per caller sent, in order (when `Ok`).
    #[sqlx(rename = "o_answers")]
    pub(crate) answers: Vec<UnitAnswer>,
    /// Overdue holds this call ended.
    #[sqlx(rename = "o_expired")]
    pub(crate) expired: Vec<Uuid>,
    /// What serving the lines did afterwards.
    #[sqlx(rename = "o_steps")]
    pub(crate) steps: Vec<LineStep>,
}

impl ReserveRow {
    /// The drop's `maxPerBuyer`.
    pub(crate) fn max_per_buyer(&self) -> Result<u32, DropError> {
        counter(present(self.max_per_buyer, "the drop's maxPerBuyer")?)
    }
}

/// One caller's reserve (PostgreSQL type `dropkit_unit_answer`).
#[derive(Debug, sqlx::Type)]
#[sqlx(type_name = "dropkit_unit_answer")]
pub(crate) struct UnitAnswer {
    /// `Created`, `Existing`, or why the caller was refused.
    pub(crate) outcome: Outcome,
    hold_id: Option<Uuid>,
    created_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    /// The name the hold was taken under.
    display_name: Option<String>,
    variant_id: Option<Uuid>,
    quantity: Option<i32>,
    /// For `BuyerLimit`: the units the buyer bought already.
    taken: Option<i32>,
}

impl UnitAnswer {
    /// The active hold this answer names, owned by `buyer`.
    pub(crate) fn hold(&self, drop_id: DropId, buyer: BuyerId) -> Result<Reservation, DropError> {
        let name = present(self.display_name.as_deref(), "a hold's display name")?;
        let mut hold = Reservation::new(
            ReservationId::from_uuid(present(self.hold_id, "a hold id")?),
            drop_id,
            VariantId::from_uuid(present(self.variant_id, "a hold's variant")?),
            Buyer::new(buyer, display_name(name)?),
            ReservationStatus::Active,
            present(self.created_at, "a hold's createdAt")?,
            present(self.expires_at, "a hold's expiresAt")?,
        );
        hold.quantity = counter(present(self.quantity, "a hold's quantity")?)?;
        Ok(hold)
    }

    /// For `BuyerLimit`: the units the buyer bought already.
    pub(crate) fn taken(&self) -> Result<u32, DropError> {
        counter(present(self.taken, "the units a buyer took")?)
    }
}

/// What `dropkit_purchase_units` answers.
#[derive(Debug, FromRow)]
pub(crate) struct PurchaseRow {
    /// `Ok`, or `DropNotFound`.
    #[sqlx(rename = "o_outcome")]
    pub(crate) outcome: Outcome,
    #[sqlx(flatten)]
    pub(crate) after: Counters,
    /// One per request, in order.
    #[sqlx(rename = "o_answers")]
    pub(crate) answers: Vec<BoughtAnswer>,
    /// The drop's latest buyers before this call, newest first.
    #[sqlx(rename = "o_latest")]
    latest: Vec<LatestBuyer>,
}

impl PurchaseRow {
    /// The drop's latest buyers before this call, newest first.
    pub(crate) fn latest(&self) -> Result<Vec<TopPurchaser>, DropError> {
        self.latest.iter().map(LatestBuyer::top_purchaser).collect()
    }
}

/// One request's purchase (PostgreSQL type `dropkit_bought_answer`).
#[derive(Debug, sqlx::Type)]
#[sqlx(type_name = "dropkit_bought_answer")]
pub(crate) struct BoughtAnswer {
    /// `Purchased`, `Repeated`, or a refusal about the hold.
    pub(crate) outcome: Outcome,
    purchase_id: Option<Uuid>,
    variant_id: Option<Uuid>,
    quantity: Option<i32>,
    amount_minor: Option<i64>,
    status: Option<String>,
    created_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    display_name: Option<String>,
}

impl BoughtAnswer {
    /// The purchase this answer names: of hold `reservation_id` of
    /// `drop_id`, by `buyer`.
    pub(crate) fn purchase(
        &self,
        drop_id: DropId,
        reservation_id: ReservationId,
        buyer: BuyerId,
    ) -> Result<Purchase, DropError> {
        purchase(PurchaseParts {
            id: present(self.purchase_id, "a purchase id")?,
            reservation_id: reservation_id.as_uuid(),
            drop_id: drop_id.as_uuid(),
            variant_id: present(self.variant_id, "a purchase's variant")?,
            quantity: present(self.quantity, "a purchase's quantity")?,
            buyer_id: buyer.as_str(),
            display_name: present(self.display_name.as_deref(), "a purchase's buyer name")?,
            amount_minor: present(self.amount_minor, "a purchase's amount")?,
            status: present(self.status.as_deref(), "a purchase's status")?,
            created_at: present(self.created_at, "a purchase's time")?,
            cancelled_at: self.cancelled_at,
        })
    }
}

/// A purchase's stored fields.
pub(crate) struct PurchaseParts<'a> {
    pub(crate) id: Uuid,
    pub(crate) reservation_id: Uuid,
    pub(crate) drop_id: Uuid,
    pub(crate) variant_id: Uuid,
    pub(crate) quantity: i32,
    pub(crate) buyer_id: &'a str,
    pub(crate) display_name: &'a str,
    pub(crate) amount_minor: i64,
    pub(crate) status: &'a str,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) cancelled_at: Option<DateTime<Utc>>,
}

/// A purchase from its stored fields.
pub(crate) fn purchase(p: PurchaseParts<'_>) -> Result<Purchase, DropError> {
    // A purchase is built from the hold it completes; only the hold's
    // identity and units carry over.
    let mut hold = Reservation::new(
        ReservationId::from_uuid(p.reservation_id),
        DropId::from_uuid(p.drop_id),
        VariantId::from_uuid(p.variant_id),
        Buyer::new(buyer_id(p.buyer_id)?, display_name(p.display_name)?),
        ReservationStatus::Purchased,
        p.created_at,
        p.created_at,
    );
    hold.quantity = counter(p.quantity)?;
    let mut out = Purchase::new(
        PurchaseId::from_uuid(p.id),
        &hold,
        price(p.amount_minor)?,
        p.created_at,
    );
    out.status = p
        .status
        .parse::<PurchaseStatus>()
        .map_err(|_| internal(format!("stored purchase status {:?} is unknown", p.status)))?;
    out.cancelled_at = p.cancelled_at;
    Ok(out)
}

/// A purchase as stored ([`purchase_columns!`]).
#[derive(Debug, Clone, FromRow)]
pub(crate) struct PurchaseRecordRow {
    id: Uuid,
    reservation_id: Uuid,
    drop_id: Uuid,
    variant_id: Uuid,
    quantity: i32,
    buyer_id: String,
    display_name: String,
    amount_minor: i64,
    status: String,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
}

impl TryFrom<PurchaseRecordRow> for Purchase {
    type Error = DropError;

    fn try_from(r: PurchaseRecordRow) -> Result<Purchase, DropError> {
        purchase(PurchaseParts {
            id: r.id,
            reservation_id: r.reservation_id,
            drop_id: r.drop_id,
            variant_id: r.variant_id,
            quantity: r.quantity,
            buyer_id: &r.buyer_id,
            display_name: &r.display_name,
            amount_minor: r.amount_minor,
            status: &r.status,
            created_at: r.created_at,
            cancelled_at: r.cancelled_at,
        })
    }
}

/// A buyer among a drop's latest purchases (PostgreSQL type
/// `dropkit_buyer`).
#[derive(Debug, sqlx::Type)]
#[sqlx(type_name = "dropkit_buyer")]
pub(crate) struct LatestBuyer {
    display_name: String,
    purchased_at: DateTime<Utc>,
}

impl LatestBuyer {
    fn top_purchaser(&self) -> Result<TopPurchaser, DropError> {
        Ok(TopPurchaser::new(
            display_name(&self.display_name)?,
            self.purchased_at,
        ))
    }
}

/// What `dropkit_release` answers.
#[derive(Debug, FromRow)]
pub(crate) struct ReleaseRow {
    /// `Released`, or a refusal about the hold.
    #[sqlx(rename = "o_outcome")]
    pub(crate) outcome: Outcome,
    #[sqlx(rename = "o_drop")]
    drop_id: Option<Uuid>,
    #[sqlx(rename = "o_display_name")]
    display_name: Option<String>,
    #[sqlx(rename = "o_created_at")]
    created_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "o_expires_at")]
    expires_at: Option<DateTime<Utc>>,
    #[sqlx(rename = "o_variant")]
    variant_id: Option<Uuid>,
    #[sqlx(rename = "o_quantity")]
    quantity: Option<i32>,
    /// The drop's counters, when released.
    #[sqlx(flatten)]
    pub(crate) after: Counters,
    /// What serving the variant's line did with the units.
    #[sqlx(rename = "o_steps")]
    pub(crate) steps: Option<Vec<LineStep>>,
}

impl ReleaseRow {
    /// The hold, as this call leaves it.
    pub(crate) fn hold(
        &self,
        id: ReservationId,
        buyer: BuyerId,
        status: ReservationStatus,
    ) -> Result<Reservation, DropError> {
        let name = present(self.display_name.as_deref(), "the hold's display name")?;
        let mut hold = Reservation::new(
            id,
            DropId::from_uuid(present(self.drop_id, "the hold's drop")?),
            VariantId::from_uuid(present(self.variant_id, "the hold's variant")?),
            Buyer::new(buyer, display_name(name)?),
            status,
            present(self.created_at, "a hold's createdAt")?,
            present(self.expires_at, "a hold's expiresAt")?,
        );
        hold.quantity = counter(present(self.quantity, "the hold's quantity")?)?;
        Ok(hold)
    }
}

/// One drop's share of what `dropkit_expire_due` did.
#[derive(Debug, FromRow)]
pub(crate) struct ExpiryRow {
    #[sqlx(rename = "o_drop")]
    drop_id: Uuid,
    /// The holds it ended.
    #[sqlx(rename = "o_expired")]
    pub(crate) expired: Vec<Uuid>,
    #[sqlx(flatten)]
    pub(crate) after: Counters,
    /// What serving the drop's lines did afterwards.
    #[sqlx(rename = "o_steps")]
    pub(crate) steps: Vec<LineStep>,
}

impl ExpiryRow {
    /// The drop swept.
    pub(crate) fn drop_id(&self) -> DropId {
        DropId::from_uuid(self.drop_id)
    }
}

/// A drop as stored ([`drop_columns!`] or [`visible_drop_columns!`]).
#[derive(Debug, Clone, FromRow)]
pub(crate) struct DropRow {
    id: Uuid,
    name: String,
    price_minor: i64,
    total_stock: i32,
    sold: i32,
    version: i64,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    hold_micros: i64,
    created_at: DateTime<Utc>,
    max_per_buyer: i32,
    paused: bool,
    waitlist: bool,
    mode: String,
    draw_at: Option<DateTime<Utc>>,
    beacon_name: Option<String>,
    drawn_at: Option<DateTime<Utc>>,
    variants: Vec<VariantRow>,
}

/// A drop as stored, with the database's time of the read.
#[derive(Debug, FromRow)]
pub(crate) struct DropRowAt {
    #[sqlx(flatten)]
    pub(crate) drop: DropRow,
    /// The database's clock at the read.
    pub(crate) now: DateTime<Utc>,
}

impl TryFrom<DropRow> for DropState {
    type Error = DropError;

    fn try_from(row: DropRow) -> Result<DropState, DropError> {
        let variants = row
            .variants
            .iter()
            .map(VariantRow::stock)
            .collect::<Result<Vec<_>, _>>()?;
        // The drop's reserved units are the variants' (as read: the
        // visible columns count overdue holds as free per variant).
        let reserved = variants.iter().map(|v| v.reserved).sum::<u32>();
        let stock = Stock::new(
            counter(row.total_stock)?,
            reserved,
            counter(row.sold)?,
            u64::try_from(row.version).map_err(|_| internal("negative stock version"))?,
        );
        let mut drop = DropInfo::new(
            DropId::from_uuid(row.id),
            row.name,
            price(row.price_minor)?,
            stock.total,
            row.variants.iter().map(VariantRow::info).collect(),
            Duration::from_micros(u64::try_from(row.hold_micros).unwrap_or(0)),
            row.created_at,
        );
        drop.starts_at = row.starts_at;
        drop.ends_at = row.ends_at;
        drop.max_per_buyer = counter(row.max_per_buyer)?;
        drop.paused = row.paused;
        drop.waitlist = row.waitlist;
        drop.mode = crate::draws::mode(&row.mode)?;
        drop.draw_at = row.draw_at;
        drop.beacon_name = row.beacon_name;
        drop.drawn_at = row.drawn_at;
        Ok(DropState::new(drop, stock, variants))
    }
}

/// A hold as stored ([`hold_columns!`]): its recorded status, not yet read
/// against time.
#[derive(Debug, FromRow)]
pub(crate) struct HoldRow {
    id: Uuid,
    drop_id: Uuid,
    variant_id: Uuid,
    quantity: i32,
    buyer_id: String,
    display_name: String,
    status: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    offered: bool,
}

impl TryFrom<HoldRow> for Reservation {
    type Error = DropError;

    fn try_from(row: HoldRow) -> Result<Reservation, DropError> {
        let mut hold = Reservation::new(
            ReservationId::from_uuid(row.id),
            DropId::from_uuid(row.drop_id),
            VariantId::from_uuid(row.variant_id),
            Buyer::new(buyer_id(&row.buyer_id)?, display_name(&row.display_name)?),
            status(&row.status)?,
            row.created_at,
            row.expires_at,
        );
        hold.quantity = counter(row.quantity)?;
        hold.offered = row.offered;
        Ok(hold)
    }
}

/// A hold with the database's time, to read its status against.
#[derive(Debug, FromRow)]
pub(crate) struct HoldAt {
    #[sqlx(flatten)]
    pub(crate) hold: HoldRow,
    /// The database's clock when the hold was read.
    pub(crate) now: DateTime<Utc>,
}

/// What a purchase needs to know of a hold before it queues on the drop.
#[derive(Debug, FromRow)]
pub(crate) struct PurchaseCheck {
    drop_id: Uuid,
    buyer_id: String,
    status: String,
    /// Its time is up (by the database's clock).
    pub(crate) overdue: bool,
    purchase_id: Option<Uuid>,
}

impl PurchaseCheck {
    /// The hold's drop.
    pub(crate) fn drop_id(&self) -> DropId {
        DropId::from_uuid(self.drop_id)
    }

    /// Whether `buyer` owns it.
    pub(crate) fn owned_by(&self, buyer: &BuyerId) -> bool {
        self.buyer_id == buyer.as_str()
    }

    /// Its recorded status.
    pub(crate) fn status(&self) -> Result<ReservationStatus, DropError> {
        status(&self.status)
    }

    /// The purchase that completed it, if one did.
    pub(crate) fn purchase_id(&self) -> Option<PurchaseId> {
        self.purchase_id.map(PurchaseId::from_uuid)
    }
}

/// A drop's latest buyer, if it has one, from a `LEFT JOIN`.
#[derive(Debug, FromRow)]
pub(crate) struct LatestRow {
    display_name: Option<String>,
    created_at: Option<DateTime<Utc>>,
}

impl LatestRow {
    /// The buyer, or `None` for the row of a drop without purchases.
    pub(crate) fn buyer(self) -> Result<Option<TopPurchaser>, DropError> {
        match (self.display_name, self.created_at) {
            (Some(name), Some(at)) => Ok(Some(TopPurchaser::new(display_name(&name)?, at))),
            _ => Ok(None),
        }
    }
}

/// One drop of the overview: the drop, its latest buyers and the viewer's
/// active hold.
#[derive(Debug, FromRow)]
pub(crate) struct OverviewRow {
    #[sqlx(flatten)]
    drop: DropRow,
    latest: Vec<LatestBuyer>,
    hold_id: Option<Uuid>,
    hold_display_name: Option<String>,
    hold_created_at: Option<DateTime<Utc>>,
    hold_expires_at: Option<DateTime<Utc>>,
    hold_variant_id: Option<Uuid>,
    hold_quantity: Option<i32>,
    hold_offered: Option<bool>,
    #[sqlx(flatten)]
    place: crate::waitlist::PlaceRow,
    #[sqlx(flatten)]
    entry: crate::draws::MaybeEntry,
}

impl OverviewRow {
    /// The overview of the drop for `viewer`, with their active hold if they
    /// have one.
    pub(crate) fn overview(self, viewer: Option<&BuyerId>) -> Result<DropOverview, DropError> {
        let top_purchasers = self
            .latest
            .iter()
            .map(LatestBuyer::top_purchaser)
            .collect::<Result<_, _>>()?;
        let state = DropState::try_from(self.drop)?;
        let user_reservation = match (self.hold_id, viewer) {
            (Some(id), Some(viewer)) => {
                let mut hold = Reservation::new(
                    ReservationId::from_uuid(id),
                    state.drop.id,
                    VariantId::from_uuid(present(self.hold_variant_id, "a hold's variant")?),
                    Buyer::new(
                        viewer.clone(),
                        display_name(present(
                            self.hold_display_name.as_deref(),
                            "a hold's display name",
                        )?)?,
                    ),
                    ReservationStatus::Active,
                    present(self.hold_created_at, "a hold's createdAt")?,
                    present(self.hold_expires_at, "a hold's expiresAt")?,
                );
                hold.quantity = counter(present(self.hold_quantity, "a hold's quantity")?)?;
                hold.offered = self.hold_offered.unwrap_or(false);
                Some(hold)
            }
            _ => None,
        };
        let place = match viewer {
            Some(viewer) => self.place.place(state.drop.id, viewer)?,
            None => None,
        };
        let entry = match viewer {
            Some(viewer) => self.entry.entry(state.drop.id, viewer)?,
            None => None,
        };
        Ok(DropOverview::new(state, top_purchasers, user_reservation)
            .with_waitlist(place)
            .with_entry(entry))
    }
}

pub(crate) fn counter(v: i32) -> Result<u32, DropError> {
    u32::try_from(v).map_err(|_| internal(format!("negative counter {v}")))
}

fn stock(total: i32, reserved: i32, sold: i32, version: i64) -> Result<Stock, DropError> {
    Ok(Stock::new(
        counter(total)?,
        counter(reserved)?,
        counter(sold)?,
        u64::try_from(version).map_err(|_| internal("negative stock version"))?,
    ))
}

fn price(minor: i64) -> Result<Money, DropError> {
    Money::from_minor(minor).map_err(|_| internal(format!("stored price {minor} is invalid")))
}

fn status(raw: &str) -> Result<ReservationStatus, DropError> {
    raw.parse()
        .map_err(|_| internal(format!("stored status {raw:?} is unknown")))
}

pub(crate) fn display_name(raw: &str) -> Result<Username, DropError> {
    Username::parse(raw).map_err(|_| internal(format!("stored display name {raw:?} is invalid")))
}

pub(crate) fn buyer_id(raw: &str) -> Result<BuyerId, DropError> {
    BuyerId::parse(raw).map_err(|_| internal(format!("stored buyer id {raw:?} is invalid")))
}

/// An idempotency record with the hold or purchase it names, read in one
/// statement (a replay's one indexed read).
#[derive(Debug, FromRow)]
pub(crate) struct KeyRow {
    fingerprint: Vec<u8>,
    entity_kind: String,
    entity_id: Uuid,
    created: bool,
    recorded_at: DateTime<Utc>,
    /// The database's clock at the read.
    pub(crate) now: DateTime<Utc>,
    #[sqlx(flatten)]
    hold: MaybeHold,
    #[sqlx(flatten)]
    purchase: MaybePurchase,
}

/// A hold from a `LEFT JOIN` (`h_` columns).
#[derive(Debug, FromRow)]
struct MaybeHold {
    h_id: Option<Uuid>,
    h_drop_id: Option<Uuid>,
    h_variant_id: Option<Uuid>,
    h_quantity: Option<i32>,
    h_buyer_id: Option<String>,
    h_display_name: Option<String>,
    h_status: Option<String>,
    h_created_at: Option<DateTime<Utc>>,
    h_expires_at: Option<DateTime<Utc>>,
    h_offered: Option<bool>,
}

/// A purchase from a `LEFT JOIN` (`p_` columns).
#[derive(Debug, FromRow)]
struct MaybePurchase {
    p_id: Option<Uuid>,
    p_reservation_id: Option<Uuid>,
    p_drop_id: Option<Uuid>,
    p_variant_id: Option<Uuid>,
    p_quantity: Option<i32>,
    p_buyer_id: Option<String>,
    p_display_name: Option<String>,
    p_amount_minor: Option<i64>,
    p_status: Option<String>,
    p_created_at: Option<DateTime<Utc>>,
    p_cancelled_at: Option<DateTime<Utc>>,
}

/// The columns [`KeyRow`] reads, from `dropkit_idempotency i` joined with
/// the hold (`h`) or the purchase (`p`) it names. Each join is a subquery
/// gated by the entity's kind (kept apart by `OFFSET 0`), so only the
/// table the record names is probed.
macro_rules! key_columns {
    () => {
        "i.fingerprint, i.entity_kind, i.entity_id, i.created, i.recorded_at, \
         clock_timestamp() AS now, \
         h.id AS h_id, h.drop_id AS h_drop_id, h.variant_id AS h_variant_id, \
         h.quantity AS h_quantity, h.buyer_id AS h_buyer_id, h.display_name AS h_display_name, \
         h.status AS h_status, h.created_at AS h_created_at, h.expires_at AS h_expires_at, \
         h.offered AS h_offered, \
         p.id AS p_id, p.reservation_id AS p_reservation_id, p.drop_id AS p_drop_id, \
         p.variant_id AS p_variant_id, p.quantity AS p_quantity, p.buyer_id AS p_buyer_id, \
         p.display_name AS p_display_name, p.amount_minor AS p_amount_minor, \
         p.status AS p_status, p.created_at AS p_created_at, p.cancelled_at AS p_cancelled_at \
         FROM dropkit_idempotency i \
         LEFT JOIN LATERAL (SELECT * FROM dropkit_reservations r \
                             WHERE i.entity_kind = 'reservation' AND r.id = i.entity_id \
                            OFFSET 0) h ON true \
         LEFT JOIN LATERAL (SELECT * FROM dropkit_purchases x \
                             WHERE i.entity_kind = 'purchase' AND x.id = i.entity_id \
                            OFFSET 0) p ON true \
         WHERE i.caller = $1 AND i.key = $2"
    };
}

impl KeyRow {
    /// The record, for `caller` and `key`.
    pub(crate) fn record(&self, caller: &str, key: &str) -> Result<IdempotencyRecord, DropError> {
        let fingerprint: [u8; 32] = self
            .fingerprint
            .as_slice()
            .try_into()
            .map_err(|_| internal("a stored fingerprint is not 32 bytes"))?;
        let key = IdempotencyKey::new(caller, key, fingerprint)
            .map_err(|_| internal("a stored idempotency key is invalid"))?;
        Ok(IdempotencyRecord::new(
            &key,
            self.entity()?,
            self.created,
            self.recorded_at,
        ))
    }

    /// The entity recorded.
    pub(crate) fn entity(&self) -> Result<Recorded, DropError> {
        Ok(match self.entity_kind.as_str() {
            "drop" => Recorded::Drop(DropId::from_uuid(self.entity_id)),
            "reservation" => Recorded::Reservation(ReservationId::from_uuid(self.entity_id)),
            "purchase" => Recorded::Purchase(PurchaseId::from_uuid(self.entity_id)),
            other => return Err(internal(format!("stored entity kind {other:?} is unknown"))),
        })
    }

    /// Whether the write recorded created its entity.
    pub(crate) fn created(&self) -> bool {
        self.created
    }

    /// The recorded hold, as stored (its status not yet read against time).
    pub(crate) fn hold(&self) -> Result<Option<Reservation>, DropError> {
        let h = &self.hold;
        let (
            Some(id),
            Some(drop_id),
            Some(variant_id),
            Some(quantity),
            Some(buyer),
            Some(name),
            Some(status),
            Some(created_at),
            Some(expires_at),
        ) = (
            h.h_id,
            h.h_drop_id,
            h.h_variant_id,
            h.h_quantity,
            h.h_buyer_id.clone(),
            h.h_display_name.clone(),
            h.h_status.clone(),
            h.h_created_at,
            h.h_expires_at,
        )
        else {
            return Ok(None);
        };
        let offered = h.h_offered.unwrap_or(false);
        Reservation::try_from(HoldRow {
            id,
            drop_id,
            variant_id,
            quantity,
            buyer_id: buyer,
            display_name: name,
            status,
            created_at,
            expires_at,
            offered,
        })
        .map(Some)
    }

    /// The recorded purchase.
    pub(crate) fn purchase(&self) -> Result<Option<Purchase>, DropError> {
        let p = &self.purchase;
        let (
            Some(id),
            Some(reservation_id),
            Some(drop_id),
            Some(variant_id),
            Some(quantity),
            Some(buyer),
            Some(name),
            Some(amount),
            Some(status),
            Some(created_at),
        ) = (
            p.p_id,
            p.p_reservation_id,
            p.p_drop_id,
            p.p_variant_id,
            p.p_quantity,
            p.p_buyer_id.as_deref(),
            p.p_display_name.as_deref(),
            p.p_amount_minor,
            p.p_status.as_deref(),
            p.p_created_at,
        )
        else {
            return Ok(None);
        };
        purchase(PurchaseParts {
            id,
            reservation_id,
            drop_id,
            variant_id,
            quantity,
            buyer_id: buyer,
            display_name: name,
            amount_minor: amount,
            status,
            created_at,
            cancelled_at: p.p_cancelled_at,
        })
        .map(Some)
    }
}

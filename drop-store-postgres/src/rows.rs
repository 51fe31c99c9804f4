//! The boundary between SQL and Rust: one typed shape per result row, the
//! outcome enum the write functions answer with, and the one mapping from
//! an outcome to a [`DropError`].
//!
//! Rows are decoded with `sqlx::FromRow`; a row that does not fit its shape
//! is a fault of the store, reported once by [`decode`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Buyer, BuyerId, DropError, DropId, DropInfo, DropOverview, DropState, Money, NotActiveReason,
    Reservation, ReservationId, ReservationStatus, Stock, TopPurchaser, Username,
};
use sqlx::FromRow;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::error::{internal, map_sqlx};

/// The columns [`DropRow`] reads, for `SELECT`s and `RETURNING`s.
macro_rules! drop_columns {
    () => {
        "id, name, price_minor, total_stock, reserved, sold, version, starts_at, ends_at, hold_micros, created_at"
    };
}

/// The columns [`DropRow`] reads, from `dropkit_drops d`, with the stock
/// as clients should see it: holds past their time count as free before
/// the sweeper gets to them. Time is the statement's start, the instant the
/// snapshot is taken. Counted in the sweeper's index, which holds only the
/// drop's active holds in expiry order, so the count reads just the
/// overdue ones.
macro_rules! visible_drop_columns {
    () => {
        "d.id, d.name, d.price_minor, d.total_stock, \
         d.reserved - CASE \
           WHEN d.reserved = 0 THEN 0 \
           WHEN coalesce((SELECT r.expires_at FROM dropkit_reservations r \
                           WHERE r.drop_id = d.id AND r.status = 'active' \
                             AND r.created_at < r.expires_at \
                           ORDER BY r.drop_id, r.expires_at LIMIT 1) \
                         > statement_timestamp(), true) THEN 0 \
           ELSE (SELECT count(*) FROM (SELECT 1 FROM dropkit_reservations r \
                  WHERE r.drop_id = d.id AND r.status = 'active' \
                    AND r.created_at < r.expires_at AND r.expires_at <= statement_timestamp() \
                  ORDER BY r.drop_id, r.expires_at LIMIT d.reserved) o)::integer \
         END AS reserved, \
         d.sold, d.version, d.starts_at, d.ends_at, d.hold_micros, d.created_at"
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

/// The columns [`HoldRow`] reads.
macro_rules! hold_columns {
    () => {
        "id, drop_id, buyer_id, display_name, status, created_at, expires_at"
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
fn present<T>(value: Option<T>, what: &str) -> Result<T, DropError> {
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
}

/// What `dropkit_reserve` answers.
#[derive(Debug, FromRow)]
pub(crate) struct ReserveRow {
    /// `Ok`, or why the whole call was refused.
    #[sqlx(rename = "o_outcome")]
    pub(crate) outcome: Outcome,
    #[sqlx(flatten)]
    pub(crate) after: Counters,
    /// One per buyer sent, in order (when `Ok`).
    #[sqlx(rename = "o_answers")]
    pub(crate) answers: Vec<HoldAnswer>,
    /// Overdue holds this call ended.
    #[sqlx(rename = "o_expired")]
    pub(crate) expired: Vec<Uuid>,
}

/// One buyer's reserve (PostgreSQL type `dropkit_hold_answer`).
#[derive(Debug, sqlx::Type)]
#[sqlx(type_name = "dropkit_hold_answer")]
pub(crate) struct HoldAnswer {
    /// `Created`, `Existing` or `OutOfStock`.
    pub(crate) outcome: Outcome,
    hold_id: Option<Uuid>,
    created_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    /// The name the hold was taken under.
    display_name: Option<String>,
}

impl HoldAnswer {
    /// The active hold this answer names, owned by `buyer`.
    pub(crate) fn hold(&self, drop_id: DropId, buyer: BuyerId) -> Result<Reservation, DropError> {
        let name = present(self.display_name.as_deref(), "a hold's display name")?;
        Ok(Reservation::new(
            ReservationId::from_uuid(present(self.hold_id, "a hold id")?),
            drop_id,
            Buyer::new(buyer, display_name(name)?),
            ReservationStatus::Active,
            present(self.created_at, "a hold's createdAt")?,
            present(self.expires_at, "a hold's expiresAt")?,
        ))
    }
}

/// What `dropkit_purchase` answers.
#[derive(Debug, FromRow)]
pub(crate) struct PurchaseRow {
    /// `Ok`, or `DropNotFound`.
    #[sqlx(rename = "o_outcome")]
    pub(crate) outcome: Outcome,
    #[sqlx(flatten)]
    pub(crate) after: Counters,
    #[sqlx(rename = "o_price")]
    price: Option<i64>,
    /// One per request, in order.
    #[sqlx(rename = "o_answers")]
    pub(crate) answers: Vec<PurchaseAnswer>,
    /// The drop's latest buyers before this call, newest first.
    #[sqlx(rename = "o_latest")]
    latest: Vec<LatestBuyer>,
}

impl PurchaseRow {
    /// What each unit of the drop costs.
    pub(crate) fn price(&self) -> Result<Money, DropError> {
        price(present(self.price, "the drop's price")?)
    }

    /// The drop's latest buyers before this call, newest first.
    pub(crate) fn latest(&self) -> Result<Vec<TopPurchaser>, DropError> {
        self.latest.iter().map(LatestBuyer::top_purchaser).collect()
    }
}

/// One request's purchase (PostgreSQL type `dropkit_purchase_answer`).
#[derive(Debug, sqlx::Type)]
#[sqlx(type_name = "dropkit_purchase_answer")]
pub(crate) struct PurchaseAnswer {
    /// `Purchased`, `Repeated`, or a refusal about the hold.
    pub(crate) outcome: Outcome,
    purchased_at: Option<DateTime<Utc>>,
}

impl PurchaseAnswer {
    /// When the purchase was made.
    pub(crate) fn purchased_at(&self) -> Result<DateTime<Utc>, DropError> {
        present(self.purchased_at, "a purchase time")
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
    /// The drop's counters, when released.
    #[sqlx(flatten)]
    pub(crate) after: Counters,
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
        Ok(Reservation::new(
            id,
            DropId::from_uuid(present(self.drop_id, "the hold's drop")?),
            Buyer::new(buyer, display_name(name)?),
            status,
            present(self.created_at, "a hold's createdAt")?,
            present(self.expires_at, "a hold's expiresAt")?,
        ))
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
}

impl ExpiryRow {
    /// The drop swept.
    pub(crate) fn drop_id(&self) -> DropId {
        DropId::from_uuid(self.drop_id)
    }
}

/// A drop as stored ([`drop_columns!`] or [`visible_drop_columns!`]).
#[derive(Debug, FromRow)]
pub(crate) struct DropRow {
    id: Uuid,
    name: String,
    price_minor: i64,
    total_stock: i32,
    reserved: i32,
    sold: i32,
    version: i64,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    hold_micros: i64,
    created_at: DateTime<Utc>,
}

impl TryFrom<DropRow> for DropState {
    type Error = DropError;

    fn try_from(row: DropRow) -> Result<DropState, DropError> {
        let stock = stock(row.total_stock, row.reserved, row.sold, row.version)?;
        let mut drop = DropInfo::new(
            DropId::from_uuid(row.id),
            row.name,
            price(row.price_minor)?,
            stock.total,
            Duration::from_micros(u64::try_from(row.hold_micros).unwrap_or(0)),
            row.created_at,
        );
        drop.starts_at = row.starts_at;
        drop.ends_at = row.ends_at;
        Ok(DropState::new(drop, stock))
    }
}

/// A hold as stored ([`hold_columns!`]): its recorded status, not yet read
/// against time.
#[derive(Debug, FromRow)]
pub(crate) struct HoldRow {
    id: Uuid,
    drop_id: Uuid,
    buyer_id: String,
    display_name: String,
    status: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl TryFrom<HoldRow> for Reservation {
    type Error = DropError;

    fn try_from(row: HoldRow) -> Result<Reservation, DropError> {
        Ok(Reservation::new(
            ReservationId::from_uuid(row.id),
            DropId::from_uuid(row.drop_id),
            Buyer::new(buyer_id(&row.buyer_id)?, display_name(&row.display_name)?),
            status(&row.status)?,
            row.created_at,
            row.expires_at,
        ))
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
    display_name: String,
    status: String,
    /// Its time is up (by the database's clock).
    pub(crate) overdue: bool,
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

    /// Its owner, with the name the hold was taken under.
    pub(crate) fn buyer(&self) -> Result<Buyer, DropError> {
        Ok(Buyer::new(
            buyer_id(&self.buyer_id)?,
            display_name(&self.display_name)?,
        ))
    }

    /// Its recorded status.
    pub(crate) fn status(&self) -> Result<ReservationStatus, DropError> {
        status(&self.status)
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
            (Some(id), Some(viewer)) => Some(Reservation::new(
                ReservationId::from_uuid(id),
                state.drop.id,
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
            )),
            _ => None,
        };
        Ok(DropOverview::new(state, top_purchasers, user_reservation))
    }
}

fn counter(v: i32) -> Result<u32, DropError> {
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

fn display_name(raw: &str) -> Result<Username, DropError> {
    Username::parse(raw).map_err(|_| internal(format!("stored display name {raw:?} is invalid")))
}

fn buyer_id(raw: &str) -> Result<BuyerId, DropError> {
    BuyerId::parse(raw).map_err(|_| internal(format!("stored buyer id {raw:?} is invalid")))
}

//! Reading rows into domain types.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Drop, DropError, DropId, DropState, Money, Reservation, ReservationId, ReservationStatus,
    Stock, Username,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::error::{internal, map_sqlx};

/// The columns [`drop_state`] reads, for `SELECT`s and `RETURNING`s.
macro_rules! drop_columns {
    () => {
        "id, name, price_minor, total_stock, reserved, sold, version, starts_at, ends_at, hold_micros, created_at"
    };
}

/// The columns [`drop_state`] reads, from `dropkit_drops d`, with the stock
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

/// The columns [`reservation`] reads.
macro_rules! hold_columns {
    () => {
        "id, drop_id, username, status, created_at, expires_at"
    };
}

pub(crate) fn counter(v: i32) -> Result<u32, DropError> {
    u32::try_from(v).map_err(|_| internal(format!("negative counter {v}")))
}

pub(crate) fn stock(
    total: i32,
    reserved: i32,
    sold: i32,
    version: i64,
) -> Result<Stock, DropError> {
    Ok(Stock {
        total: counter(total)?,
        reserved: counter(reserved)?,
        sold: counter(sold)?,
        version: u64::try_from(version).map_err(|_| internal("negative stock version"))?,
    })
}

pub(crate) fn username(raw: &str) -> Result<Username, DropError> {
    Username::parse(raw).map_err(|_| internal(format!("stored username {raw:?} is invalid")))
}

pub(crate) fn drop_state(row: &PgRow) -> Result<DropState, DropError> {
    let get = || -> Result<DropState, sqlx::Error> {
        let hold_micros: i64 = row.try_get("hold_micros")?;
        let price: i64 = row.try_get("price_minor")?;
        let stock = stock(
            row.try_get("total_stock")?,
            row.try_get("reserved")?,
            row.try_get("sold")?,
            row.try_get("version")?,
        )
        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
        Ok(DropState {
            drop: Drop {
                id: DropId::from_uuid(row.try_get("id")?),
                name: row.try_get("name")?,
                price: Money::from_minor(price)
                    .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?,
                total_stock: stock.total,
                starts_at: row.try_get("starts_at")?,
                ends_at: row.try_get("ends_at")?,
                hold: Duration::from_micros(u64::try_from(hold_micros).unwrap_or(0)),
                created_at: row.try_get("created_at")?,
            },
            stock,
        })
    };
    get().map_err(map_sqlx)
}

/// A hold as stored (its recorded status, not yet read against time).
pub(crate) fn reservation(row: &PgRow) -> Result<Reservation, DropError> {
    let status: String = row.try_get("status").map_err(map_sqlx)?;
    let name: String = row.try_get("username").map_err(map_sqlx)?;
    Ok(Reservation {
        id: ReservationId::from_uuid(row.try_get("id").map_err(map_sqlx)?),
        drop_id: DropId::from_uuid(row.try_get("drop_id").map_err(map_sqlx)?),
        username: username(&name)?,
        status: status
            .parse::<ReservationStatus>()
            .map_err(|_| internal(format!("stored status {status:?} is unknown")))?,
        created_at: row.try_get("created_at").map_err(map_sqlx)?,
        expires_at: row.try_get("expires_at").map_err(map_sqlx)?,
    })
}

/// The `i`th element of a per-request array column, which must be there.
pub(crate) fn nth<T: Copy>(values: &[Option<T>], i: usize, what: &str) -> Result<T, DropError> {
    values
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| internal(format!("batch answer lacks {what} #{i}")))
}

/// A timestamp array column, NULLs kept.
pub(crate) type Times = Vec<Option<DateTime<Utc>>>;

//! The JSON shapes of the API (camelCase), kept apart from the domain
//! types so the wire stays stable while the domain evolves.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use drop_core::{
    DropOverview, DropState, Money, NewDrop, Purchase, Reservation, Stock, TopPurchaser,
};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::names::FeedNames;
use crate::schema;

/// A drop as buyers see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DropView {
    /// Its id.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Price of one unit, a decimal string such as `"199.99"`.
    #[schema(schema_with = schema::price_out)]
    pub price: String,
    /// Units for sale in all.
    pub total_stock: u32,
    /// Units free to reserve now.
    pub available_stock: u32,
    /// Units under an active hold.
    pub reserved_stock: u32,
    /// Units sold.
    pub sold_stock: u32,
    /// Sale opens at this instant (RFC 3339, UTC), or `null` for open now.
    #[schema(schema_with = schema::optional_instant_out)]
    pub starts_at: Option<String>,
    /// Sale closes at this instant, or `null` for never.
    #[schema(schema_with = schema::optional_instant_out)]
    pub ends_at: Option<String>,
    /// How long a hold lasts, in seconds.
    #[serde(serialize_with = "seconds")]
    #[schema(value_type = f64)]
    pub hold_seconds: Duration,
    /// The latest buyers, newest first (at most 3).
    pub top_purchasers: Vec<TopPurchaserView>,
    /// The caller's own active hold on this drop (`null` when they have
    /// none or are not signed in).
    pub user_reservation: Option<UserHoldView>,
}

/// One recent buyer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TopPurchaserView {
    /// The buyer's display name (shortened to initials, or left out, when
    /// the server hides buyers' names).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Deprecated: the same as `displayName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(deprecated)]
    pub username: Option<String>,
    /// When they bought (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub purchased_at: String,
}

/// The viewer's own hold, as listed with a drop.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserHoldView {
    /// The hold's id.
    pub id: Uuid,
    /// When it runs out (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub expires_at: String,
}

/// A hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    /// Its id (random).
    pub id: Uuid,
    /// The drop held.
    pub drop_id: Uuid,
    /// The holder's display name (a hold is only ever shown to its holder).
    pub display_name: String,
    /// Deprecated: the same as `displayName`.
    #[schema(deprecated)]
    pub username: String,
    /// `active`, `purchased`, `expired` or `released`.
    #[schema(schema_with = schema::status)]
    pub status: &'static str,
    /// When it was taken.
    #[schema(schema_with = schema::instant_out)]
    pub created_at: String,
    /// When it runs out.
    #[schema(schema_with = schema::instant_out)]
    pub expires_at: String,
}

/// A completed purchase.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseView {
    /// Its id.
    pub id: Uuid,
    /// The hold it completed.
    pub reservation_id: Uuid,
    /// The drop.
    pub drop_id: Uuid,
    /// The buyer's display name.
    pub display_name: String,
    /// Deprecated: the same as `displayName`.
    #[schema(deprecated)]
    pub username: String,
    /// What was paid, a decimal string.
    #[schema(schema_with = schema::price_out)]
    pub amount_paid: String,
    /// When.
    #[schema(schema_with = schema::instant_out)]
    pub created_at: String,
}

/// `POST /api/drops`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateDropBody {
    /// Display name, 1–100 characters.
    #[schema(schema_with = schema::drop_name)]
    pub(crate) name: String,
    /// A JSON number or a decimal string, at most 2 decimals, not negative.
    #[schema(schema_with = schema::price_in)]
    pub(crate) price: Money,
    /// Units for sale, 1–1,000,000.
    #[serde(deserialize_with = "whole_number")]
    #[schema(schema_with = schema::total_stock_in)]
    pub(crate) total_stock: u32,
    /// Optional opening instant (RFC 3339).
    #[serde(default)]
    #[schema(schema_with = schema::instant_in)]
    pub(crate) starts_at: Option<DateTime<Utc>>,
    /// Optional closing instant (RFC 3339), after `startsAt`.
    #[serde(default)]
    #[schema(schema_with = schema::instant_in)]
    pub(crate) ends_at: Option<DateTime<Utc>>,
    /// Optional hold length in seconds (the server's default otherwise).
    #[serde(default)]
    #[schema(schema_with = schema::hold_seconds_in)]
    pub(crate) hold_seconds: Option<f64>,
}

impl CreateDropBody {
    /// The domain request, with `default_hold` when none is given.
    pub(crate) fn into_new_drop(self, default_hold: Duration) -> Result<NewDrop, ApiError> {
        let hold = match self.hold_seconds {
            None => default_hold,
            Some(secs) => Duration::try_from_secs_f64(secs)
                .map_err(|_| ApiError::invalid("holdSeconds", "must be a positive number"))?,
        };
        let mut new = NewDrop::new(self.name, self.price, self.total_stock).hold(hold);
        new.starts_at = self.starts_at;
        new.ends_at = self.ends_at;
        new.validate()?;
        Ok(new)
    }
}

/// `POST /api/reservations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReserveBody {
    /// The drop (UUID).
    #[schema(schema_with = schema::drop_id)]
    pub(crate) drop_id: String,
    /// The buyer: 3–50 of `A–Z a–z 0–9 _` (read, and in the document,
    /// only under claimed identity).
    #[serde(default)]
    #[schema(schema_with = schema::username)]
    pub(crate) username: Option<serde_json::Value>,
}

/// `POST /api/purchases`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PurchaseBody {
    /// The hold to complete (UUID).
    #[schema(schema_with = schema::reservation_id)]
    pub(crate) reservation_id: String,
    /// The hold's owner (read, and in the document, only under claimed
    /// identity).
    #[serde(default)]
    #[schema(schema_with = schema::username)]
    pub(crate) username: Option<serde_json::Value>,
}

/// `DELETE /api/reservations/{id}` under claimed identity (the username
/// may also come in the query).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReleaseBody {
    /// The hold's owner.
    #[serde(default)]
    #[schema(schema_with = schema::optional_username)]
    pub(crate) username: Option<String>,
}

/// `?username=` on the drop list and on release, under claimed identity.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsernameQuery {
    /// The viewer, to include their own active hold with each drop.
    #[param(schema_with = schema::username_query)]
    pub(crate) username: Option<String>,
}

/// A signed-in buyer, as they see themselves.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuyerView {
    /// The buyer's id (a guest's is `g_` and 32 hex digits). Shown to the
    /// buyer alone, never in public data.
    #[schema(schema_with = schema::buyer_id)]
    pub id: String,
    /// The name public feeds show.
    pub display_name: String,
}

/// A session: who it signs in and until when.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// The signed-in buyer.
    pub buyer: BuyerView,
    /// The session token, answered once, at sign-in: send it as
    /// `Authorization: Bearer <token>` from clients that keep no cookies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// When the session ends (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub expires_at: String,
}

/// `POST /api/session`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SignInBody {
    /// The name to show: 3–50 of `A–Z a–z 0–9 _`. Not an account: every
    /// sign-in is a new guest.
    #[schema(schema_with = schema::username)]
    pub(crate) username: String,
}

/// `GET /api/health`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthView {
    /// `"ok"`.
    pub status: &'static str,
}

/// A count, as any JSON number with no fraction: JSON Schema's `integer`
/// includes `10.0`, which serde's `u32` alone refuses.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    struct Whole;

    impl serde::de::Visitor<'_> for Whole {
        type Value = u32;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a whole number")
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom("number out of range"))
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u32, E> {
            u32::try_from(v).map_err(|_| E::custom("number out of range"))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u32, E> {
            if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(E::custom("expected a whole number"))
            }
        }
    }

    d.deserialize_any(Whole)
}

/// An instant as RFC 3339 UTC with millisecond precision.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    if d.subsec_nanos() == 0 {
        s.serialize_u64(d.as_secs())
    } else {
        s.serialize_f64(d.as_secs_f64())
    }
}

impl DropView {
    /// A drop with its stock, its top buyers (named as `names` says) and
    /// the viewer's hold.
    pub(crate) fn new(
        state: &DropState,
        top: &[TopPurchaser],
        user_reservation: Option<&Reservation>,
        names: FeedNames,
    ) -> Self {
        let d = &state.drop;
        let s = &state.stock;
        Self {
            id: d.id.as_uuid(),
            name: d.name.clone(),
            price: d.price.to_string(),
            total_stock: s.total,
            available_stock: s.available(),
            reserved_stock: s.reserved,
            sold_stock: s.sold,
            starts_at: d.starts_at.map(time),
            ends_at: d.ends_at.map(time),
            hold_seconds: d.hold,
            top_purchasers: top
                .iter()
                .map(|t| TopPurchaserView::new(t, names))
                .collect(),
            user_reservation: user_reservation.map(|r| UserHoldView {
                id: r.id.as_uuid(),
                expires_at: time(r.expires_at),
            }),
        }
    }
}

impl DropView {
    /// A drop as listed for its viewer.
    pub(crate) fn of(o: &DropOverview, names: FeedNames) -> Self {
        Self::new(
            &o.state,
            &o.top_purchasers,
            o.user_reservation.as_ref(),
            names,
        )
    }
}

impl TopPurchaserView {
    /// A recent buyer, named as `names` says.
    pub(crate) fn new(t: &TopPurchaser, names: FeedNames) -> Self {
        let shown = names.shown(&t.display_name);
        Self {
            display_name: shown.clone(),
            username: shown,
            purchased_at: time(t.purchased_at),
        }
    }
}

impl From<&Reservation> for ReservationView {
    fn from(r: &Reservation) -> Self {
        Self {
            id: r.id.as_uuid(),
            drop_id: r.drop_id.as_uuid(),
            display_name: r.display_name.to_string(),
            username: r.display_name.to_string(),
            status: r.status.as_str(),
            created_at: time(r.created_at),
            expires_at: time(r.expires_at),
        }
    }
}

impl From<&Purchase> for PurchaseView {
    fn from(p: &Purchase) -> Self {
        Self {
            id: p.id.as_uuid(),
            reservation_id: p.reservation_id.as_uuid(),
            drop_id: p.drop_id.as_uuid(),
            display_name: p.display_name.to_string(),
            username: p.display_name.to_string(),
            amount_paid: p.amount_paid.to_string(),
            created_at: time(p.created_at),
        }
    }
}

/// Messages on `GET /api/ws`, each with `type` and `serverTime`.
#[derive(Debug, Clone, Serialize, ToSchema)]
// Fields are renamed per variant (not with `rename_all_fields`, which the
// OpenAPI derive does not read) so the document shows the names sent.
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WsMessage {
    /// Every live or upcoming drop; sent first, and again after a resync.
    #[serde(rename_all = "camelCase")]
    Snapshot {
        /// The server's clock (RFC 3339), to count down on.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drops.
        #[schema(value_type = Vec<DropView>)]
        drops: Arc<Vec<DropView>>,
    },
    /// A drop's latest stock (coalesced: at most one per drop per tick).
    #[serde(rename_all = "camelCase")]
    Stock {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drop.
        drop_id: Uuid,
        /// Units free.
        available_stock: u32,
        /// Units held.
        reserved_stock: u32,
        /// Units sold.
        sold_stock: u32,
    },
    /// Someone bought a unit.
    #[serde(rename_all = "camelCase")]
    Purchase {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drop.
        drop_id: Uuid,
        /// The buyer's display name (shortened, or left out, when the
        /// server hides buyers' names).
        #[serde(skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// Deprecated: the same as `displayName`.
        #[serde(skip_serializing_if = "Option::is_none")]
        #[schema(deprecated)]
        username: Option<String>,
        /// The drop's latest buyers after this purchase.
        top_purchasers: Vec<TopPurchaserView>,
    },
    /// A new drop.
    #[serde(rename_all = "camelCase")]
    DropCreated {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drop.
        drop: DropView,
    },
    /// Sent only to its holder's sockets: their hold ran out.
    #[serde(rename_all = "camelCase")]
    HoldExpired {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
    },
    /// Sent only to its holder's sockets: their hold was given back
    /// (from any of their pages).
    #[serde(rename_all = "camelCase")]
    HoldReleased {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
    },
    /// Sent only to its holder's sockets: their hold was bought (from any
    /// of their pages).
    #[serde(rename_all = "camelCase")]
    HoldPurchased {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
    },
}

impl WsMessage {
    /// A stock message from counters.
    pub(crate) fn stock(server_time: DateTime<Utc>, drop_id: Uuid, stock: &Stock) -> Self {
        Self::Stock {
            server_time: time(server_time),
            drop_id,
            available_stock: stock.available(),
            reserved_stock: stock.reserved,
            sold_stock: stock.sold,
        }
    }

    /// The message as a JSON text frame.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("wire types always serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_message_shape() {
        let stock = Stock::new(10, 2, 3, 7);
        let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&WsMessage::stock(at, Uuid::nil(), &stock).to_json()).unwrap();
        assert_eq!(v["type"], "stock");
        assert_eq!(v["serverTime"], "2030-03-17T17:46:40.000Z");
        assert_eq!(v["availableStock"], 5);
        assert_eq!(v["reservedStock"], 2);
        assert_eq!(v["soldStock"], 3);
    }
}

//! The JSON shapes of the API (camelCase), kept apart from the domain
//! types so the wire stays stable while the domain evolves.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use drop_core::{
    DrawStatus, DropOverview, DropState, Entry, Money, PublishedDraw, Purchase, Reservation,
    SaleMode, TopPurchaser, VariantStock, WaitlistPlace,
};
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

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
    /// Its variants (sizes, colours) with their own stock, in the order
    /// they were created; a drop created without variants has one.
    pub variants: Vec<VariantView>,
    /// Units one buyer may hold plus have bought (not cancelled), across
    /// the variants.
    pub max_per_buyer: u32,
    /// Whether new holds are refused for now (`DROP_PAUSED`).
    pub paused: bool,
    /// Whether buyers may wait in line for a sold-out variant
    /// (`POST /api/drops/{id}/waitlist`): freed units then go to the head
    /// of the line instead of back on open sale.
    pub waitlist: bool,
    /// Sale opens at this instant (RFC 3339, UTC), or `null` for open now.
    #[schema(schema_with = schema::optional_instant_out)]
    pub starts_at: Option<String>,
    /// Sale closes at this instant, or `null` for never.
    #[schema(schema_with = schema::optional_instant_out)]
    pub ends_at: Option<String>,
    /// `firstCome` or `draw`.
    #[schema(schema_with = schema::mode_out)]
    pub mode: &'static str,
    /// When a draw drop draws (entries are taken until then), or `null`
    /// for a first-come drop.
    #[schema(schema_with = schema::optional_instant_out)]
    pub draw_at: Option<String>,
    /// The public randomness the draw mixes in, by name, or `null`.
    pub beacon_name: Option<String>,
    /// When the draw was made, or `null` (not drawn yet, or first come).
    #[schema(schema_with = schema::optional_instant_out)]
    pub drawn_at: Option<String>,
    /// How long a hold lasts, in seconds.
    #[serde(serialize_with = "seconds")]
    #[schema(value_type = f64)]
    pub hold_seconds: Duration,
    /// The latest buyers, newest first (at most 3).
    pub top_purchasers: Vec<TopPurchaserView>,
    /// The caller's own active hold on this drop (`null` when they have
    /// none or are not signed in).
    pub user_reservation: Option<UserHoldView>,
    /// The caller's own place in this drop's waiting list (`null` when
    /// they stand in none or are not signed in).
    pub user_waitlist: Option<WaitlistPlaceView>,
    /// The caller's own entry to this drop's draw, with its outcome once
    /// drawn (`null` when they did not enter, the drop is first come, or
    /// they are not signed in).
    pub user_entry: Option<EntryView>,
}

/// One variant of a drop and its stock.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantView {
    /// Its id.
    pub id: Uuid,
    /// Display name, unique within the drop.
    pub name: String,
    /// Units of it in all.
    pub total_stock: u32,
    /// Units of it free to reserve now.
    pub available_stock: u32,
    /// Units of it under an active hold.
    pub reserved_stock: u32,
    /// Units of it sold (cancelled purchases not counted).
    pub sold_stock: u32,
    /// Buyers waiting in its line.
    pub waitlist_length: u32,
}

/// One variant's stock, as `stock` frames carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantStockView {
    /// The variant.
    pub id: Uuid,
    /// Units free.
    pub available_stock: u32,
    /// Units held.
    pub reserved_stock: u32,
    /// Units sold.
    pub sold_stock: u32,
    /// Units in all.
    pub total_stock: u32,
    /// Buyers waiting in its line.
    pub waitlist_length: u32,
}

impl From<&VariantStock> for VariantStockView {
    fn from(v: &VariantStock) -> Self {
        Self {
            id: v.id.as_uuid(),
            available_stock: v.available(),
            reserved_stock: v.reserved,
            sold_stock: v.sold,
            total_stock: v.total,
            waitlist_length: v.waitlist_length,
        }
    }
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
    /// The variant held.
    pub variant_id: Uuid,
    /// How many units it holds.
    pub quantity: u32,
    /// When it runs out (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub expires_at: String,
    /// Whether it was offered to the viewer from the waiting list.
    pub offered: bool,
}

/// A hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    /// Its id (random).
    pub id: Uuid,
    /// The drop held.
    pub drop_id: Uuid,
    /// The variant held.
    pub variant_id: Uuid,
    /// How many units it holds.
    pub quantity: u32,
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
    /// Whether it was offered to its holder from the waiting list (units
    /// freed while they waited) rather than taken by a reserve.
    pub offered: bool,
}

/// A buyer's place in a variant's waiting list, shown only to that buyer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = WaitlistPlace)]
pub struct WaitlistPlaceView {
    /// The drop.
    pub drop_id: Uuid,
    /// The variant waited for.
    pub variant_id: Uuid,
    /// How many units the buyer asked for; they are offered as one hold.
    #[schema(minimum = 1)]
    pub quantity: u32,
    /// Orders the line: increasing, never reused. A place moves up by one
    /// for each `waitlistMoved` frame of the same variant whose `ticket`
    /// is lower than this one.
    pub ticket: u64,
    /// 1 for the head of the line.
    #[schema(minimum = 1)]
    pub position: u32,
    /// Units already set aside for the buyer (only the head has any, and
    /// fewer than `quantity`: with all of them the hold is offered).
    pub set_aside: u32,
    /// When the buyer joined (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub joined_at: String,
}

impl From<&WaitlistPlace> for WaitlistPlaceView {
    fn from(p: &WaitlistPlace) -> Self {
        Self {
            drop_id: p.drop_id.as_uuid(),
            variant_id: p.variant_id.as_uuid(),
            quantity: p.quantity,
            ticket: p.ticket,
            position: p.position,
            set_aside: p.set_aside,
            joined_at: time(p.joined_at),
        }
    }
}

/// `GET /api/drops/{id}/waitlist`: the caller's place in the drop's line.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitlistAnswer {
    /// The place, or `null` when the caller stands in none of the drop's
    /// lines (never joined, left, or already offered a hold or skipped).
    pub place: Option<WaitlistPlaceView>,
}

/// A buyer's entry to a draw, shown only to that buyer. It names no
/// buyer: the `receipt` is how its owner finds it in the published draw.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Entry)]
pub struct EntryView {
    /// The drop.
    pub drop_id: Uuid,
    /// The variant entered for (one unit).
    pub variant_id: Uuid,
    /// The entry's receipt (hex), listed in the published draw.
    #[schema(schema_with = schema::receipt)]
    pub receipt: String,
    /// When it was taken (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub entered_at: String,
    /// `won`, `waiting` or `lost`; `null` before the draw.
    #[schema(schema_with = schema::outcome)]
    pub outcome: Option<&'static str>,
    /// Its place in its variant's draw order (1 = drawn first, winners
    /// first); `null` before the draw.
    #[schema(minimum = 1)]
    pub draw_position: Option<u32>,
    /// The offered hold it won (`GET /api/reservations/{id}`), or `null`.
    pub reservation_id: Option<Uuid>,
}

impl From<&Entry> for EntryView {
    fn from(e: &Entry) -> Self {
        Self {
            drop_id: e.drop_id.as_uuid(),
            variant_id: e.variant_id.as_uuid(),
            receipt: e.receipt.to_string(),
            entered_at: time(e.entered_at),
            outcome: e.outcome.map(schema::outcome_name),
            draw_position: e.draw_position,
            reservation_id: e.reservation_id.map(|r| r.as_uuid()),
        }
    }
}

/// `GET /api/drops/{id}/entries`: the caller's entry to the drop's draw.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntryAnswer {
    /// The entry, or `null` when the caller has none (never entered, or
    /// withdrew).
    pub entry: Option<EntryView>,
}

/// `GET /api/drops/{id}/draw`: a draw drop's public record. Before the
/// draw only the commitment (`seedHash`); after it, everything needed to
/// redo it (`published`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DrawStatus)]
pub struct DrawView {
    /// The drop.
    pub drop_id: Uuid,
    /// When it draws (RFC 3339).
    #[schema(schema_with = schema::instant_out)]
    pub draw_at: String,
    /// `sha256(seed)`, fixed since the drop was made.
    #[schema(schema_with = schema::seed_hash)]
    pub seed_hash: String,
    /// The public randomness the draw mixes in, by name, or `null`.
    pub beacon_name: Option<String>,
    /// When it was drawn, or `null` before.
    #[schema(schema_with = schema::optional_instant_out)]
    pub drawn_at: Option<String>,
    /// What the draw published, or `null` before it: check it with
    /// `drop_core::verify_draw` (or the documented recipe).
    #[schema(value_type = Option<PublishedDrawDoc>)]
    pub published: Option<PublishedDraw>,
}

impl From<&DrawStatus> for DrawView {
    fn from(d: &DrawStatus) -> Self {
        Self {
            drop_id: d.drop_id.as_uuid(),
            draw_at: time(d.draw_at),
            seed_hash: d.seed_hash.to_string(),
            beacon_name: d.beacon_name.clone(),
            drawn_at: d.drawn_at.map(time),
            published: d.published.clone(),
        }
    }
}

// The published draw is served exactly as drop-core serializes it; these
// types only describe that JSON for the OpenAPI document (a test checks
// that they name the same fields).

/// Everything a draw published: enough for anyone to redo it. Entries
/// come sorted by receipt.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PublishedDraw)]
pub(crate) struct PublishedDrawDoc {
    /// The seed, revealed.
    #[schema(schema_with = schema::seed)]
    seed: String,
    /// `sha256(seed)`: the commitment published when the drop was made.
    #[schema(schema_with = schema::seed_hash)]
    seed_hash: String,
    /// The beacon mixed into the key, when the drop named one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::beacon)]
    beacon: Option<String>,
    /// `sha256` of the canonical entry list.
    #[schema(schema_with = schema::entry_list_hash)]
    entry_list_hash: String,
    /// Every entry drawn from.
    entries: Vec<DrawEntryDoc>,
    /// Every variant's stock drawn (its free units at the draw).
    stock: Vec<DrawStockDoc>,
    /// Every variant's winners, in rank order.
    winners: Vec<DrawWinnersDoc>,
}

/// One entry of a published draw: its receipt and variant, no buyer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DrawEntry)]
pub(crate) struct DrawEntryDoc {
    /// The entry's receipt.
    #[schema(schema_with = schema::receipt)]
    receipt: String,
    /// The variant it is for.
    variant_id: Uuid,
}

/// How many units of a variant the draw gave away at most.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DrawStock)]
pub(crate) struct DrawStockDoc {
    /// The variant.
    variant_id: Uuid,
    /// Its units drawn.
    stock: u32,
}

/// A variant's winners: receipts, best rank first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = DrawWinners)]
pub(crate) struct DrawWinnersDoc {
    /// The variant.
    variant_id: Uuid,
    /// Its winners' receipts, best rank first.
    #[schema(value_type = Vec<String>)]
    receipts: Vec<String>,
}

/// A purchase: a hold paid for, standing or cancelled since. Shown only
/// to its buyer and to admins.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseView {
    /// Its id.
    pub id: Uuid,
    /// The hold it completed.
    pub reservation_id: Uuid,
    /// The drop.
    pub drop_id: Uuid,
    /// The variant bought.
    pub variant_id: Uuid,
    /// The buyer, as shown (never their id).
    pub buyer: PurchaseBuyerView,
    /// Deprecated: the same as `buyer.displayName`.
    #[schema(deprecated)]
    pub display_name: String,
    /// Deprecated: the same as `buyer.displayName`.
    #[schema(deprecated)]
    pub username: String,
    /// How many units.
    pub quantity: u32,
    /// What was paid (the price × quantity), a decimal string.
    #[schema(schema_with = schema::price_out)]
    pub amount_paid: String,
    /// `completed`, or `cancelled` by an admin since.
    #[schema(schema_with = schema::purchase_status)]
    pub status: &'static str,
    /// When it was paid.
    #[schema(schema_with = schema::instant_out)]
    pub created_at: String,
    /// When it was cancelled, or `null`.
    #[schema(schema_with = schema::optional_instant_out)]
    pub cancelled_at: Option<String>,
}

/// The buyer of a purchase.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchaseBuyerView {
    /// Their display name.
    pub display_name: String,
}

/// `GET /api/me/purchases`: one page, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PurchasePage {
    /// The purchases of this page.
    pub purchases: Vec<PurchaseView>,
    /// The id to pass as `before` for the next page, or `null` when this
    /// page is the last.
    pub next_before: Option<Uuid>,
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
    /// Units for sale, 1–1,000,000. Required without `variants`; with
    /// them it may be left out, and if given must equal their sum.
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(schema_with = schema::total_stock_in)]
    pub(crate) total_stock: Option<u32>,
    /// The variants (sizes, colours), 1–100, each with its own stock;
    /// without them the drop has one variant of `totalStock` units.
    #[serde(default, deserialize_with = "some")]
    #[schema(min_items = 1, max_items = 100, nullable = false)]
    pub(crate) variants: Option<Vec<NewVariantBody>>,
    /// Units one buyer may hold plus have bought, 1–100 (default 1).
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(schema_with = schema::max_per_buyer_in)]
    pub(crate) max_per_buyer: Option<u32>,
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
    /// Whether buyers may wait in line for sold-out variants (default
    /// `true`).
    #[serde(default, deserialize_with = "some")]
    #[schema(nullable = false, default = true)]
    pub(crate) waitlist: Option<bool>,
    /// `firstCome` (default) or `draw`.
    #[serde(default, deserialize_with = "some_mode")]
    #[schema(schema_with = schema::mode_in)]
    pub(crate) mode: Option<SaleMode>,
    /// When a draw drop draws (RFC 3339): required for, and only for, a
    /// draw drop.
    #[serde(default)]
    #[schema(schema_with = schema::draw_at_in)]
    pub(crate) draw_at: Option<DateTime<Utc>>,
    /// The public randomness a draw drop mixes in, by name.
    #[serde(default)]
    #[schema(schema_with = schema::beacon_name_in)]
    pub(crate) beacon_name: Option<String>,
}

/// A variant of a new drop.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewVariantBody {
    /// Display name, 1–50 characters, unique within the drop.
    #[schema(schema_with = schema::variant_name)]
    pub(crate) name: String,
    /// Units of it for sale, 0–1,000,000.
    #[serde(deserialize_with = "whole_number")]
    #[schema(schema_with = schema::variant_stock_in)]
    pub(crate) total_stock: u32,
}

/// `PATCH /api/admin/drops/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchDropBody {
    /// New display name, 1–100 characters.
    #[serde(default, deserialize_with = "some")]
    #[schema(schema_with = schema::drop_name)]
    pub(crate) name: Option<String>,
    /// New price (only before the sale starts: `PRICE_LOCKED` after).
    #[serde(default, deserialize_with = "some")]
    #[schema(schema_with = schema::price_in)]
    pub(crate) price: Option<Money>,
    /// New opening instant; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::instant_in)]
    pub(crate) starts_at: Option<Option<DateTime<Utc>>>,
    /// New closing instant; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(schema_with = schema::instant_in)]
    pub(crate) ends_at: Option<Option<DateTime<Utc>>>,
    /// New per-buyer limit, 1–100.
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(schema_with = schema::max_per_buyer_in)]
    pub(crate) max_per_buyer: Option<u32>,
    /// New hold length in seconds, for holds taken from now on.
    #[serde(default, deserialize_with = "some")]
    #[schema(schema_with = schema::hold_seconds_patch)]
    pub(crate) hold_seconds: Option<f64>,
    /// New stock of a one-variant drop (never below its held + sold units).
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(schema_with = schema::patch_stock_in)]
    pub(crate) total_stock: Option<u32>,
    /// New stock per variant (never below each one's held + sold units).
    #[serde(default, deserialize_with = "some")]
    #[schema(max_items = 100, nullable = false)]
    pub(crate) variants: Option<Vec<VariantPatchBody>>,
}

/// One variant's new stock.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VariantPatchBody {
    /// The variant (UUID).
    #[schema(schema_with = schema::variant_id)]
    pub(crate) id: String,
    /// Its new total, 0–1,000,000.
    #[serde(deserialize_with = "whole_number")]
    #[schema(schema_with = schema::variant_stock_in)]
    pub(crate) total_stock: u32,
}

/// `POST /api/reservations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReserveBody {
    /// The drop (UUID).
    #[schema(schema_with = schema::drop_id)]
    pub(crate) drop_id: String,
    /// The variant (UUID); required when the drop has more than one.
    #[serde(default)]
    #[schema(schema_with = schema::optional_variant_id)]
    pub(crate) variant_id: Option<String>,
    /// How many units, 1 to the drop's `maxPerBuyer` (default 1).
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(schema_with = schema::quantity_in)]
    pub(crate) quantity: Option<u32>,
    /// The buyer: 3–50 of `A–Z a–z 0–9 _` (read, and in the document,
    /// only under claimed identity).
    #[serde(default)]
    #[schema(schema_with = schema::username)]
    pub(crate) username: Option<serde_json::Value>,
}

/// `POST /api/drops/{id}/waitlist`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JoinWaitlistBody {
    /// The variant (UUID); required when the drop has more than one.
    #[serde(default)]
    #[schema(schema_with = schema::optional_variant_id)]
    pub(crate) variant_id: Option<String>,
    /// How many units to wait for, 1 to the drop's `maxPerBuyer` (default
    /// 1); they are offered as one hold once all are free.
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(schema_with = schema::waitlist_quantity_in)]
    pub(crate) quantity: Option<u32>,
    /// The buyer: 3–50 of `A–Z a–z 0–9 _` (read, and in the document,
    /// only under claimed identity).
    #[serde(default)]
    #[schema(schema_with = schema::username)]
    pub(crate) username: Option<serde_json::Value>,
}

/// `POST /api/drops/{id}/entries`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnterDrawBody {
    /// The variant (UUID); required when the drop has more than one.
    #[serde(default)]
    #[schema(schema_with = schema::optional_variant_id)]
    pub(crate) variant_id: Option<String>,
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

/// `?after=` on `GET /api/ws`. Read as text, so a bad value names its
/// parameter.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WsQuery {
    /// The highest `seq` the client has seen: when the server still has
    /// every change after it, and there are not too many, the socket
    /// resumes there (`resumed`) instead of starting with a `snapshot`.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub(crate) after: Option<String>,
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

/// `?before=&limit=` of `GET /api/me/purchases` (and `?username=` under
/// claimed identity). Read as text, so a bad value names its parameter.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PurchasesQuery {
    /// The last purchase of the previous page (its `nextBefore`).
    #[param(schema_with = schema::before_query)]
    pub(crate) before: Option<String>,
    /// How many purchases at most, 1–100 (default 20).
    #[param(schema_with = schema::limit_query)]
    pub(crate) limit: Option<String>,
    /// The buyer (claimed identity only).
    #[param(schema_with = schema::username_query)]
    pub(crate) username: Option<String>,
}

/// A field that may be `null` to clear it: absent is `None`, `null` is
/// `Some(None)`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A field that may be left out but not `null`.
fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A sale mode, read as text first: serde's enum reader takes any
/// non-string (`null`, a number) for broken JSON, when it is only the wrong
/// type for the field.
fn some_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SaleMode>, D::Error> {
    let name = String::deserialize(d)?;
    schema::SALE_MODES
        .into_iter()
        .find(|m| schema::mode_name(*m) == name)
        .map(Some)
        .ok_or_else(|| serde::de::Error::unknown_variant(&name, &["firstCome", "draw"]))
}

/// An optional count, as [`whole_number`].
fn some_whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    whole_number(d).map(Some)
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
        Self::with_viewer(state, top, user_reservation, None, None, names)
    }

    /// [`new`](Self::new), with the viewer's place in the drop's line.
    pub(crate) fn with_viewer(
        state: &DropState,
        top: &[TopPurchaser],
        user_reservation: Option<&Reservation>,
        user_waitlist: Option<&WaitlistPlace>,
        user_entry: Option<&Entry>,
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
            variants: d
                .variants
                .iter()
                .map(|v| {
                    let stock = state.variant(v.id);
                    VariantView {
                        id: v.id.as_uuid(),
                        name: v.name.clone(),
                        total_stock: stock.map_or(0, |s| s.total),
                        available_stock: stock.map_or(0, VariantStock::available),
                        reserved_stock: stock.map_or(0, |s| s.reserved),
                        sold_stock: stock.map_or(0, |s| s.sold),
                        waitlist_length: stock.map_or(0, |s| s.waitlist_length),
                    }
                })
                .collect(),
            max_per_buyer: d.max_per_buyer,
            paused: d.paused,
            waitlist: d.waitlist,
            starts_at: d.starts_at.map(time),
            ends_at: d.ends_at.map(time),
            mode: schema::mode_name(d.mode),
            draw_at: d.draw_at.map(time),
            beacon_name: d.beacon_name.clone(),
            drawn_at: d.drawn_at.map(time),
            hold_seconds: d.hold,
            top_purchasers: top
                .iter()
                .map(|t| TopPurchaserView::new(t, names))
                .collect(),
            user_reservation: user_reservation.map(|r| UserHoldView {
                id: r.id.as_uuid(),
                variant_id: r.variant_id.as_uuid(),
                quantity: r.quantity,
                expires_at: time(r.expires_at),
                offered: r.offered,
            }),
            user_waitlist: user_waitlist.map(WaitlistPlaceView::from),
            user_entry: user_entry.map(EntryView::from),
        }
    }
}

impl DropView {
    /// A drop as listed for its viewer.
    pub(crate) fn of(o: &DropOverview, names: FeedNames) -> Self {
        Self::with_viewer(
            &o.state,
            &o.top_purchasers,
            o.user_reservation.as_ref(),
            o.user_waitlist.as_ref(),
            o.user_entry.as_ref(),
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
            variant_id: r.variant_id.as_uuid(),
            quantity: r.quantity,
            display_name: r.display_name.to_string(),
            username: r.display_name.to_string(),
            status: r.status.as_str(),
            created_at: time(r.created_at),
            expires_at: time(r.expires_at),
            offered: r.offered,
        }
    }
}

impl From<&Purchase> for PurchaseView {
    fn from(p: &Purchase) -> Self {
        Self {
            id: p.id.as_uuid(),
            reservation_id: p.reservation_id.as_uuid(),
            drop_id: p.drop_id.as_uuid(),
            variant_id: p.variant_id.as_uuid(),
            buyer: PurchaseBuyerView {
                display_name: p.display_name.to_string(),
            },
            display_name: p.display_name.to_string(),
            username: p.display_name.to_string(),
            quantity: p.quantity,
            amount_paid: p.amount_paid.to_string(),
            status: p.status.as_str(),
            created_at: time(p.created_at),
            cancelled_at: p.cancelled_at.map(time),
        }
    }
}

/// Messages on `GET /api/ws`, each with `type` and `serverTime`.
#[derive(Debug, Clone, Serialize, ToSchema)]
// Fields are renamed per variant (not with `rename_all_fields`, which the
// OpenAPI derive does not read) so the document shows the names sent.
#[serde(tag = "type", rename_all = "camelCase")]
pub enum WsMessage {
    /// Every live or upcoming drop; sent first (unless the socket resumed),
    /// and again after a resync.
    #[serde(rename_all = "camelCase")]
    Snapshot {
        /// The server's clock (RFC 3339), to count down on.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The log position the snapshot shows: every change numbered up
        /// to it is in it, and every frame after it has a higher `seq`.
        seq: u64,
        /// The drops.
        #[schema(value_type = Vec<DropView>)]
        drops: Arc<Vec<DropView>>,
    },
    /// Sent instead of a `snapshot` to a socket opened with `?after=`
    /// that could resume: it came after the frames of every change
    /// numbered in `(after, seq]` (public ones, and the socket's buyer's
    /// own) and the current `stock` of every live drop. Live frames follow.
    #[serde(rename_all = "camelCase")]
    Resumed {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The position the socket asked to resume from.
        after: u64,
        /// The position it has now caught up to.
        seq: u64,
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
        /// Units in all.
        total_stock: u32,
        /// Each variant's stock, in the drop's order.
        variants: Vec<VariantStockView>,
    },
    /// Someone bought units.
    #[serde(rename_all = "camelCase")]
    Purchase {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// The variant bought.
        variant_id: Uuid,
        /// How many units.
        quantity: u32,
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
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop: DropView,
    },
    /// An admin changed a drop (edited, paused, resumed or ended it): the
    /// client replaces its copy.
    #[serde(rename_all = "camelCase")]
    DropUpdated {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop as it is now.
        drop: DropView,
    },
    /// Sent only to its buyer's sockets: an admin cancelled their
    /// purchase (its units are back on sale; a `stock` frame shows them).
    #[serde(rename_all = "camelCase")]
    PurchaseCancelled {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The cancelled purchase.
        purchase_id: Uuid,
        /// The drop.
        drop_id: Uuid,
    },
    /// Sent only to its holder's sockets: their hold ran out.
    #[serde(rename_all = "camelCase")]
    HoldExpired {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
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
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
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
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
    },
    /// Sent only to its buyer's sockets: units they waited for in line
    /// were freed and are now theirs, as an active hold (`offered: true`)
    /// to buy within its window like any other. A `waitlistLeft` frame
    /// (reason `offered`) follows with the same `seq`.
    #[serde(rename_all = "camelCase")]
    HoldOffered {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// The hold, as `POST /api/reservations` answers one.
        reservation: ReservationView,
    },
    /// Sent only to its buyer's sockets: they joined a variant's waiting
    /// list (from any of their pages).
    #[serde(rename_all = "camelCase")]
    WaitlistJoined {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// The variant waited for.
        variant_id: Uuid,
        /// How many units they wait for.
        quantity: u32,
        /// Their place's ticket.
        ticket: u64,
    },
    /// Sent only to its buyer's sockets: they are out of the line, because
    /// they left it (`left`), were offered a hold (`offered`, after the
    /// `holdOffered` frame), or were passed over when their turn came
    /// (`skipped`: they held units of the drop, or had reached
    /// `maxPerBuyer`).
    #[serde(rename_all = "camelCase")]
    WaitlistLeft {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// The variant.
        variant_id: Uuid,
        /// The ticket of the place they had.
        ticket: u64,
        /// Why they are out.
        #[schema(schema_with = schema::leave_reason)]
        reason: &'static str,
    },
    /// Someone left a variant's line (for whatever reason): every client
    /// waiting in that line with a higher `ticket` moved up one place.
    /// Names no buyer.
    #[serde(rename_all = "camelCase")]
    WaitlistMoved {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// The line's variant.
        variant_id: Uuid,
        /// The ticket of the place that left.
        ticket: u64,
    },
    /// A draw drop was drawn: winners got an offered hold (their
    /// `holdOffered` frames come first), the others a place in line or
    /// nothing; `GET /api/drops/{id}/draw` now publishes it, and each
    /// entrant's `GET /api/drops/{id}/entries` shows their outcome. A
    /// `stock` frame follows.
    #[serde(rename_all = "camelCase")]
    DrawCompleted {
        /// The server's clock.
        #[schema(schema_with = schema::instant_out)]
        server_time: String,
        /// The number of the log entry this frame tells of: frames made
        /// from one entry share it, and a later entry's frames have a
        /// higher one. Resume from the highest seen with `?after=`.
        seq: u64,
        /// The drop.
        drop_id: Uuid,
        /// When it was drawn: the winners' holds start then.
        #[schema(schema_with = schema::instant_out)]
        drawn_at: String,
        /// Entries drawn from.
        entries: u32,
        /// Entries that won a unit.
        winners: u32,
        /// Entries put in a line.
        waiting: u32,
    },
}

impl WsMessage {
    /// A stock message from a drop's counters.
    pub(crate) fn stock(server_time: DateTime<Utc>, state: &DropState) -> Self {
        let stock = &state.stock;
        Self::Stock {
            server_time: time(server_time),
            drop_id: state.drop.id.as_uuid(),
            available_stock: stock.available(),
            reserved_stock: stock.reserved,
            sold_stock: stock.sold,
            total_stock: stock.total,
            variants: state.variants.iter().map(VariantStockView::from).collect(),
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

    /// The `drawCompleted` frame has the contract's fields, and an entry
    /// names no buyer.
    #[test]
    fn draw_shapes() {
        let frame = WsMessage::DrawCompleted {
            server_time: "t".into(),
            seq: 9,
            drop_id: Uuid::nil(),
            drawn_at: "d".into(),
            entries: 3,
            winners: 1,
            waiting: 2,
        };
        let v: serde_json::Value = serde_json::from_str(&frame.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "type": "drawCompleted", "serverTime": "t", "seq": 9,
                "dropId": Uuid::nil(), "drawnAt": "d", "entries": 3, "winners": 1, "waiting": 2
            })
        );
        let buyer = drop_core::Buyer::new(
            drop_core::BuyerId::parse("alice").unwrap(),
            drop_core::Username::parse("alice").unwrap(),
        );
        let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let mut entry = Entry::new(
            drop_core::DropId::new(),
            drop_core::VariantId::new(),
            buyer,
            drop_core::Receipt::from_bytes([0xab; 16]),
            at,
        );
        entry.outcome = Some(drop_core::EntryOutcome::Waiting);
        entry.draw_position = Some(2);
        let v = serde_json::to_value(EntryView::from(&entry)).unwrap();
        assert_eq!(v["receipt"], "ab".repeat(16));
        assert_eq!(v["outcome"], "waiting");
        assert_eq!(v["drawPosition"], 2);
        assert_eq!(v["reservationId"], serde_json::Value::Null);
        assert_eq!(v["enteredAt"], "2030-03-17T17:46:40.000Z");
        assert!(v.get("buyerId").is_none() && v.get("displayName").is_none());
    }

    #[test]
    fn stock_message_shape() {
        use drop_core::{NewDrop, NewVariant};
        let at = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let (info, mut variants) = NewDrop::with_variants(
            "A",
            Money::ZERO,
            [NewVariant::new("40", 6), NewVariant::new("41", 4)],
        )
        .into_drop(drop_core::DropId::new(), at)
        .unwrap();
        variants[0].reserved = 2;
        variants[1].sold = 3;
        let state = DropState::new(info, drop_core::Stock::new(10, 2, 3, 7), variants);
        let v: serde_json::Value =
            serde_json::from_str(&WsMessage::stock(at, &state).to_json()).unwrap();
        assert_eq!(v["type"], "stock");
        assert_eq!(v["serverTime"], "2030-03-17T17:46:40.000Z");
        assert_eq!(v["availableStock"], 5);
        assert_eq!(v["reservedStock"], 2);
        assert_eq!(v["soldStock"], 3);
        assert_eq!(v["totalStock"], 10);
        assert_eq!(v["variants"][0]["availableStock"], 4);
        assert_eq!(v["variants"][0]["reservedStock"], 2);
        assert_eq!(v["variants"][1]["availableStock"], 1);
        assert_eq!(v["variants"][1]["soldStock"], 3);
        assert_eq!(v["variants"][1]["totalStock"], 4);
        assert_eq!(v["variants"][1]["id"], state.variants[1].id.to_string());
        assert_eq!(v["variants"][0]["waitlistLength"], 0);
    }
}

//! The admin operations: every drop, edits, pause, resume, end now,
//! cancelling a purchase, and reading the event log. Every write takes an
//! `Idempotency-Key`.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use std::time::Duration;

use drop_core::{
    Applied, Change, DropAction, DropId, DropInfo, DropPatch, DropState, InventoryStoreExt,
    LogEntry, MAX_LOG_PAGE, VariantId, check_cursor_name,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::caller::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AnyBody, CursorPath, DropPath, PurchasePath, QueryParams, RawJson};
use crate::idempotency::{KeyHeader, KeyOwner, answer};
use crate::routes::rule;
use crate::schema;
use crate::state::AppState;
use crate::wire::{DropView, PatchDropBody, PurchaseView, time};

/// A drop as admins see it: with its latest buyers, and no viewer's hold.
async fn view(app: &AppState, state: DropState) -> Result<DropView, ApiError> {
    let overview = app.store.drop_overview(state, None).await?;
    Ok(DropView::of(&overview, app.names))
}

/// The answer to a write on a drop.
async fn drop_answer(app: &AppState, applied: Applied<DropState>) -> Result<Response, ApiError> {
    let replayed = applied.replayed;
    Ok(answer(
        StatusCode::OK,
        replayed,
        view(app, applied.value).await?,
    ))
}

/// Every drop, ended ones too, newest first.
#[utoipa::path(
    get, path = "/api/admin/drops", operation_id = "adminListDrops",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every drop", body = [DropView]),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
    )
)]
pub(crate) async fn list_all_drops(
    State(app): State<AppState>,
    _: Admin,
) -> Result<Json<Vec<DropView>>, ApiError> {
    let drops = app.store.list_all_drops().await?;
    let mut out = Vec::with_capacity(drops.len());
    for state in drops {
        out.push(view(&app, state).await?);
    }
    Ok(Json(out))
}

/// Edits a drop: only the fields given change.
#[utoipa::path(
    patch, path = "/api/admin/drops/{id}", operation_id = "updateDrop", request_body = PatchDropBody,
    params(("id" = Uuid, Path, description = "Drop id"), crate::idempotency::IdempotencyKeyParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The drop as it is now", body = DropView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT` (`id` not a UUID, an unknown field, a field that breaks \
            its schema, a bad `Idempotency-Key`) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`, `VARIANT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`PRICE_LOCKED` (the sale has started); `STOCK_BELOW_COMMITTED` (below a \
            variant's held + sold units); `IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`INVALID_INPUT` on `startsAt` or `endsAt` (outside the allowed range, \
            `endsAt` not after `startsAt`, or `endsAt` already passed: end the drop instead), on `totalStock` \
            (given for a drop of several variants, or leaving no stock in all), on `variants[i].id` (a variant \
            named twice); `IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
    )
)]
pub(crate) async fn update_drop(
    State(app): State<AppState>,
    _: Admin,
    DropPath(id): DropPath,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    RawJson(body, raw): RawJson<PatchDropBody>,
) -> Result<Response, ApiError> {
    let patch = body.into_patch()?;
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Admin, &method, uri.path(), &raw)?;
    let applied = app
        .store
        .update_drop(id, &patch, keyed.as_ref().map(|k| &k.key))
        .await
        .map_err(|err| patch_rule(rule(err.into())))?;
    drop_answer(&app, applied).await
}

/// What an edit breaks against the drop as it is (stock summed over its
/// variants, `totalStock` on a drop of several, a variant named twice) is
/// a rule the schema cannot state: 422, as `startsAt`/`endsAt`.
fn patch_rule(err: ApiError) -> ApiError {
    let message = err.message();
    let against_drop = match err.field() {
        Some("totalStock") => {
            message.contains("several variants") || message.contains("total stock")
        }
        Some(f) => f.starts_with("variants[") && f.ends_with("].id"),
        None => false,
    };
    if err.code() == "INVALID_INPUT" && err.status() == StatusCode::BAD_REQUEST && against_drop {
        err.with_status(StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        err
    }
}

impl PatchDropBody {
    /// The domain patch.
    pub(crate) fn into_patch(self) -> Result<DropPatch, ApiError> {
        let mut patch = DropPatch::new();
        patch.name = self.name;
        patch.price = self.price;
        patch.starts_at = self.starts_at;
        patch.ends_at = self.ends_at;
        patch.max_per_buyer = self.max_per_buyer;
        patch.total_stock = self.total_stock;
        if let Some(secs) = self.hold_seconds {
            patch.hold = Some(
                Duration::try_from_secs_f64(secs)
                    .map_err(|_| ApiError::invalid("holdSeconds", "must be a positive number"))?,
            );
        }
        for (i, v) in self.variants.unwrap_or_default().into_iter().enumerate() {
            let id: VariantId = v.id.parse().map_err(|_| {
                ApiError::invalid(format!("variants[{i}].id"), "must be a variant id (UUID)")
            })?;
            patch = patch.variant_stock(id, v.total_stock);
        }
        Ok(patch)
    }
}

/// Pauses a drop: new holds are refused (`DROP_PAUSED`); existing holds
/// may still be bought within their window. Pausing a paused drop
/// answers it unchanged.
#[utoipa::path(
    post, path = "/api/admin/drops/{id}/pause", operation_id = "pauseDrop",
    params(("id" = Uuid, Path, description = "Drop id"), crate::idempotency::IdempotencyKeyParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The drop, paused", body = DropView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT`: `id` not a UUID, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
    )
)]
pub(crate) async fn pause(
    State(app): State<AppState>,
    _: Admin,
    DropPath(id): DropPath,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    AnyBody(raw): AnyBody,
) -> Result<Response, ApiError> {
    set_paused(app, id, true, method, uri, key, raw).await
}

/// Resumes a paused drop. Resuming a running drop answers it unchanged.
#[utoipa::path(
    post, path = "/api/admin/drops/{id}/resume", operation_id = "resumeDrop",
    params(("id" = Uuid, Path, description = "Drop id"), crate::idempotency::IdempotencyKeyParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The drop, running", body = DropView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT`: `id` not a UUID, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
    )
)]
pub(crate) async fn resume(
    State(app): State<AppState>,
    _: Admin,
    DropPath(id): DropPath,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    AnyBody(raw): AnyBody,
) -> Result<Response, ApiError> {
    set_paused(app, id, false, method, uri, key, raw).await
}

#[allow(clippy::too_many_arguments)]
async fn set_paused(
    app: AppState,
    id: drop_core::DropId,
    paused: bool,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    raw: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Admin, &method, uri.path(), &raw)?;
    let applied = app
        .store
        .set_paused(id, paused, keyed.as_ref().map(|k| &k.key))
        .await?;
    drop_answer(&app, applied).await
}

/// Ends a drop's sale now. Holds taken before may still be bought until
/// their own `expiresAt`. Ending an ended drop answers it unchanged.
#[utoipa::path(
    post, path = "/api/admin/drops/{id}/end", operation_id = "endDrop",
    params(("id" = Uuid, Path, description = "Drop id"), crate::idempotency::IdempotencyKeyParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The drop, ended", body = DropView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT`: `id` not a UUID, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
    )
)]
pub(crate) async fn end(
    State(app): State<AppState>,
    _: Admin,
    DropPath(id): DropPath,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    AnyBody(raw): AnyBody,
) -> Result<Response, ApiError> {
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Admin, &method, uri.path(), &raw)?;
    let applied = app
        .store
        .end_drop(id, keyed.as_ref().map(|k| &k.key))
        .await?;
    drop_answer(&app, applied).await
}

/// Cancels a purchase: its units go back on sale at once, and its buyer
/// may take them again under `maxPerBuyer`. Cancelling a cancelled
/// purchase answers it unchanged.
#[utoipa::path(
    post, path = "/api/admin/purchases/{id}/cancel", operation_id = "cancelPurchase",
    params(("id" = Uuid, Path, description = "Purchase id"), crate::idempotency::IdempotencyKeyParam),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The purchase, cancelled", body = PurchaseView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT`: `id` not a UUID, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 404, description = "`PURCHASE_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`", body = ErrorBody),
    )
)]
pub(crate) async fn cancel_purchase(
    State(app): State<AppState>,
    _: Admin,
    PurchasePath(id): PurchasePath,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    AnyBody(raw): AnyBody,
) -> Result<Response, ApiError> {
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Admin, &method, uri.path(), &raw)?;
    let applied = app
        .store
        .cancel_purchase(id, keyed.as_ref().map(|k| &k.key))
        .await?;
    Ok(answer(
        StatusCode::OK,
        applied.replayed,
        PurchaseView::from(&applied.value),
    ))
}

/// `?after=&limit=&dropId=` of `GET /api/admin/events`. Read as text, so
/// a bad value names its parameter.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub(crate) struct EventsQuery {
    /// Entries numbered above this one (default 0: from the start): the
    /// `next` of the previous page.
    #[param(schema_with = schema::after_query)]
    pub(crate) after: Option<String>,
    /// How many entries at most.
    #[param(schema_with = schema::events_limit_query)]
    pub(crate) limit: Option<String>,
    /// Only this drop's entries.
    #[param(schema_with = schema::drop_id_query)]
    pub(crate) drop_id: Option<String>,
}

impl EventsQuery {
    /// `after`, `limit` and the drop, checked.
    fn parse(&self) -> Result<(u64, usize, Option<DropId>), ApiError> {
        let after = match self.after.as_deref() {
            None => 0,
            Some(raw) => raw.trim().parse::<u64>().map_err(|_| {
                ApiError::invalid("after", "must be a whole number from 0 (a `seq`)")
            })?,
        };
        let limit = match self.limit.as_deref() {
            None => schema::DEFAULT_EVENTS_PAGE,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LOG_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LOG_PAGE}"),
                    )
                })?,
        };
        let drop_id = self
            .drop_id
            .as_deref()
            .map(|raw| {
                raw.trim()
                    .parse::<DropId>()
                    .map_err(|_| ApiError::invalid("dropId", "must be a drop id (UUID)"))
            })
            .transpose()?;
        Ok((after, limit, drop_id))
    }
}

/// One page of the event log.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventPage {
    /// The entries numbered above `after`, oldest first.
    pub(crate) events: Vec<LogEntryView>,
    /// What to pass as `after` for the next page: the last entry's `seq`,
    /// or `after` itself when the page is empty. Reading on from it never
    /// skips an entry, including ones that become visible later.
    pub(crate) next: u64,
    /// Whether entries above `next` were already there: ask again at once
    /// for them. `false` means the page reached the end of the log as it
    /// stood (poll later for new entries).
    pub(crate) more: bool,
    /// The highest number in the whole log when asked (0 when it is
    /// empty): a reader that only wants what happens from now on starts
    /// with `after` = `head`.
    pub(crate) head: u64,
}

/// A drop as an entry of the log records it (without stock: the log
/// records changes, stock is derived from them).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogDropView {
    /// Its id.
    pub(crate) id: Uuid,
    /// Display name.
    pub(crate) name: String,
    /// Price of one unit.
    #[schema(schema_with = schema::price_out)]
    pub(crate) price: String,
    /// Units for sale in all.
    pub(crate) total_stock: u32,
    /// Its variants, in the order they were created.
    pub(crate) variants: Vec<LogVariantView>,
    /// Units one buyer may hold plus have bought.
    pub(crate) max_per_buyer: u32,
    /// Whether new holds were refused.
    pub(crate) paused: bool,
    /// Whether buyers could wait in line for sold-out variants.
    pub(crate) waitlist: bool,
    /// Sale opens at this instant, or `null` for open from creation.
    #[schema(schema_with = schema::optional_instant_out)]
    pub(crate) starts_at: Option<String>,
    /// Sale closes at this instant, or `null` for never.
    #[schema(schema_with = schema::optional_instant_out)]
    pub(crate) ends_at: Option<String>,
    /// How long a hold lasts, in seconds.
    pub(crate) hold_seconds: f64,
    /// `firstCome` or `draw`.
    #[schema(schema_with = schema::mode_out)]
    pub(crate) mode: &'static str,
    /// When a draw drop draws, or `null` for a first-come drop.
    #[schema(schema_with = schema::optional_instant_out)]
    pub(crate) draw_at: Option<String>,
    /// The public randomness the draw mixes in, by name, or `null`.
    pub(crate) beacon_name: Option<String>,
    /// When the draw was made, or `null`.
    #[schema(schema_with = schema::optional_instant_out)]
    pub(crate) drawn_at: Option<String>,
    /// When the drop was created.
    #[schema(schema_with = schema::instant_out)]
    pub(crate) created_at: String,
}

/// A variant as an entry of the log records it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogVariantView {
    /// Its id.
    pub(crate) id: Uuid,
    /// Display name, unique within the drop.
    pub(crate) name: String,
}

impl From<&DropInfo> for LogDropView {
    fn from(d: &DropInfo) -> Self {
        Self {
            id: d.id.as_uuid(),
            name: d.name.clone(),
            price: d.price.to_string(),
            total_stock: d.total_stock,
            variants: d
                .variants
                .iter()
                .map(|v| LogVariantView {
                    id: v.id.as_uuid(),
                    name: v.name.clone(),
                })
                .collect(),
            max_per_buyer: d.max_per_buyer,
            paused: d.paused,
            waitlist: d.waitlist,
            starts_at: d.starts_at.map(time),
            ends_at: d.ends_at.map(time),
            hold_seconds: d.hold.as_secs_f64(),
            mode: schema::mode_name(d.mode),
            draw_at: d.draw_at.map(time),
            beacon_name: d.beacon_name.clone(),
            drawn_at: d.drawn_at.map(time),
            created_at: time(d.created_at),
        }
    }
}

/// One entry of the event log: a committed change with its number
/// (`seq`), when it committed (`at`) and its drop, tagged by `type`.
/// Buyers appear by id; `displayName` is the name they held under.
#[derive(Debug, Clone, Serialize, ToSchema)]
// Fields are renamed per variant (not with `rename_all_fields`, which the
// OpenAPI derive does not read) so the document shows the names sent.
#[serde(tag = "type", rename_all = "camelCase")]
pub(crate) enum LogEntryView {
    /// A drop was created.
    #[serde(rename_all = "camelCase")]
    DropCreated {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// The drop as created.
        drop: LogDropView,
    },
    /// An admin edited, paused, resumed or ended a drop.
    #[serde(rename_all = "camelCase")]
    DropUpdated {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// What was done.
        #[schema(schema_with = schema::drop_action)]
        action: String,
        /// The drop after the change.
        drop: LogDropView,
    },
    /// A buyer took a hold.
    #[serde(rename_all = "camelCase")]
    HoldCreated {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
        /// Who holds it.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// Their display name when they took it.
        display_name: String,
        /// The variant held.
        variant_id: Uuid,
        /// How many units.
        quantity: u32,
        /// When the hold runs out.
        #[schema(schema_with = schema::instant_out)]
        expires_at: String,
        /// Whether it was offered from the waiting list (units freed while
        /// the buyer waited) rather than taken by a reserve.
        offered: bool,
    },
    /// A buyer bought their hold.
    #[serde(rename_all = "camelCase")]
    PurchaseCompleted {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// The purchase made.
        purchase_id: Uuid,
        /// The hold it completed.
        reservation_id: Uuid,
        /// Who bought.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// Their display name when they held it.
        display_name: String,
        /// The variant bought.
        variant_id: Uuid,
        /// How many units.
        quantity: u32,
        /// What was paid (price × quantity).
        #[schema(schema_with = schema::price_out)]
        amount: String,
    },
    /// A buyer gave their hold back.
    #[serde(rename_all = "camelCase")]
    HoldReleased {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
        /// Who held it.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// The variant.
        variant_id: Uuid,
        /// How many units went back.
        quantity: u32,
    },
    /// A hold ran out of time; its units went back.
    #[serde(rename_all = "camelCase")]
    HoldExpired {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// The hold.
        reservation_id: Uuid,
        /// Who held it.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// The variant.
        variant_id: Uuid,
        /// How many units went back.
        quantity: u32,
    },
    /// An admin cancelled a purchase; its units went back.
    #[serde(rename_all = "camelCase")]
    PurchaseCancelled {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// The purchase.
        purchase_id: Uuid,
        /// The hold it had completed.
        reservation_id: Uuid,
        /// Who had bought it.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// The variant.
        variant_id: Uuid,
        /// How many units went back.
        quantity: u32,
        /// What had been paid (to refund).
        #[schema(schema_with = schema::price_out)]
        amount: String,
    },
    /// A buyer joined a variant's waiting list.
    #[serde(rename_all = "camelCase")]
    WaitlistJoined {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// Who joined.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// Their display name when they joined.
        display_name: String,
        /// The variant waited for.
        variant_id: Uuid,
        /// How many units they want.
        quantity: u32,
        /// Their place's ticket: the line's order.
        ticket: u64,
    },
    /// A buyer left a variant's waiting list (everyone behind them moved
    /// up one place).
    #[serde(rename_all = "camelCase")]
    WaitlistLeft {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// Who left.
        #[schema(schema_with = schema::buyer_id)]
        buyer_id: String,
        /// The variant.
        variant_id: Uuid,
        /// The quantity they had asked for.
        quantity: u32,
        /// The ticket of the place they had.
        ticket: u64,
        /// Why they left.
        #[schema(schema_with = schema::leave_reason)]
        reason: String,
    },
    /// A draw drop was drawn. Its winners' offered holds are the
    /// `holdCreated` entries (`offered: true`) just before; the places it
    /// put in line are not logged one by one (`GET /api/drops/{id}/draw`
    /// publishes the draw).
    #[serde(rename_all = "camelCase")]
    DrawCompleted {
        /// The entry's number.
        seq: u64,
        /// When it committed.
        #[schema(schema_with = schema::instant_out)]
        at: String,
        /// The drop.
        drop_id: Uuid,
        /// When it was drawn.
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

impl LogEntryView {
    /// The wire form of a store's entry.
    fn of(entry: &LogEntry) -> Result<Self, ApiError> {
        let seq = entry.seq;
        let at = time(entry.at);
        let drop_id = entry.drop_id.as_uuid();
        Ok(match &entry.change {
            Change::DropCreated { drop } => Self::DropCreated {
                seq,
                at,
                drop_id,
                drop: drop.into(),
            },
            Change::DropUpdated { action, drop } => Self::DropUpdated {
                seq,
                at,
                drop_id,
                action: action_name(*action)?,
                drop: drop.into(),
            },
            Change::HoldCreated {
                reservation_id,
                buyer_id,
                display_name,
                variant_id,
                quantity,
                expires_at,
                offered,
            } => Self::HoldCreated {
                seq,
                at,
                drop_id,
                reservation_id: reservation_id.as_uuid(),
                buyer_id: buyer_id.as_str().to_owned(),
                display_name: display_name.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
                expires_at: time(*expires_at),
                offered: *offered,
            },
            Change::PurchaseCompleted {
                purchase_id,
                reservation_id,
                buyer_id,
                display_name,
                variant_id,
                quantity,
                amount,
            } => Self::PurchaseCompleted {
                seq,
                at,
                drop_id,
                purchase_id: purchase_id.as_uuid(),
                reservation_id: reservation_id.as_uuid(),
                buyer_id: buyer_id.as_str().to_owned(),
                display_name: display_name.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
                amount: amount.to_string(),
            },
            Change::HoldReleased {
                reservation_id,
                buyer_id,
                variant_id,
                quantity,
            } => Self::HoldReleased {
                seq,
                at,
                drop_id,
                reservation_id: reservation_id.as_uuid(),
                buyer_id: buyer_id.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
            },
            Change::HoldExpired {
                reservation_id,
                buyer_id,
                variant_id,
                quantity,
            } => Self::HoldExpired {
                seq,
                at,
                drop_id,
                reservation_id: reservation_id.as_uuid(),
                buyer_id: buyer_id.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
            },
            Change::PurchaseCancelled {
                purchase_id,
                reservation_id,
                buyer_id,
                variant_id,
                quantity,
                amount,
            } => Self::PurchaseCancelled {
                seq,
                at,
                drop_id,
                purchase_id: purchase_id.as_uuid(),
                reservation_id: reservation_id.as_uuid(),
                buyer_id: buyer_id.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
                amount: amount.to_string(),
            },
            Change::WaitlistJoined {
                buyer_id,
                display_name,
                variant_id,
                quantity,
                ticket,
            } => Self::WaitlistJoined {
                seq,
                at,
                drop_id,
                buyer_id: buyer_id.as_str().to_owned(),
                display_name: display_name.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
                ticket: *ticket,
            },
            Change::WaitlistLeft {
                buyer_id,
                variant_id,
                quantity,
                ticket,
                reason,
            } => Self::WaitlistLeft {
                seq,
                at,
                drop_id,
                buyer_id: buyer_id.as_str().to_owned(),
                variant_id: variant_id.as_uuid(),
                quantity: *quantity,
                ticket: *ticket,
                reason: reason.as_str().to_owned(),
            },
            Change::DrawCompleted {
                drawn_at,
                entries,
                winners,
                waiting,
            } => Self::DrawCompleted {
                seq,
                at,
                drop_id,
                drawn_at: time(*drawn_at),
                entries: *entries,
                winners: *winners,
                waiting: *waiting,
            },
            // A kind this layer was built without: refusing the page beats
            // answering one with a silent gap in it.
            other => {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL",
                    "internal error",
                )
                .with_detail(format!(
                    "log entry {seq} has a kind the web layer does not know: {}",
                    other.kind()
                )));
            }
        })
    }
}

/// The wire name of an admin's action (`edited`, `paused`, …), as the
/// core names it.
fn action_name(action: DropAction) -> Result<String, ApiError> {
    match serde_json::to_value(action) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
        .with_detail(format!("drop action {action:?} serialized as {other:?}"))),
    }
}

/// The event log, oldest first: every committed change with its `seq`.
/// Page with `after` = the previous page's `next`; entries that commit
/// later are never skipped. With `dropId`, only that drop's entries.
#[utoipa::path(
    get, path = "/api/admin/events", operation_id = "adminEvents",
    params(EventsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One page; pass its `next` as `after` for the next", body = EventPage),
        (status = 400, description = "`INVALID_INPUT` on `after` (not a whole number), `limit` (not 1–1000) \
            or `dropId` (not a UUID)", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`: no drop has the id `dropId` names", body = ErrorBody),
        (status = 410, description = "`EVENTS_PRUNED`: entries above `after` were pruned (retention); \
            `oldest` is the oldest entry kept: re-read the current state, then go on from `oldest - 1`", body = ErrorBody),
    )
)]
pub(crate) async fn events(
    State(app): State<AppState>,
    _: Admin,
    QueryParams(q): QueryParams<EventsQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let (after, limit, drop_id) = q.parse()?;
    // One more than the page, when the store allows it, tells whether
    // another page is already there.
    let ask = (limit + 1).min(MAX_LOG_PAGE);
    let mut entries = match drop_id {
        Some(id) => {
            // An unknown drop is a mistake worth naming, not an empty history.
            app.store.get_drop(id).await?;
            app.store.drop_history(id, after, ask).await?
        }
        None => app.store.events_after(after, ask).await?,
    };
    let more = entries.len() > limit || (entries.len() == MAX_LOG_PAGE && limit == MAX_LOG_PAGE);
    entries.truncate(limit);
    let head = app.store.log_head().await?;
    let next = entries.last().map_or(after, |e| e.seq);
    let events = entries
        .iter()
        .map(LogEntryView::of)
        .collect::<Result<_, _>>()?;
    Ok(Json(EventPage {
        events,
        next,
        more,
        head,
    }))
}

/// A named cursor of the event log.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CursorView {
    /// The cursor's name; a webhook endpoint's is `webhook:<url>`.
    pub(crate) name: String,
    /// The last entry its consumer finished with. Retention keeps every
    /// entry above it, so a cursor whose consumer is gone keeps the log
    /// from shrinking until it is removed.
    pub(crate) position: u64,
    /// Whether a consumer holds it now (its lease runs).
    pub(crate) held: bool,
    /// When the last lease given ends or ended (RFC 3339); absent when the
    /// holder gave it up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) lease_until: Option<String>,
}

/// The log's cursors, with the log's head to compare positions with.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CursorList {
    /// Every cursor, by name.
    pub(crate) cursors: Vec<CursorView>,
    /// The highest number in the log (0 when it is empty).
    pub(crate) head: u64,
}

/// The event log's named cursors (webhook endpoints' among them): where
/// each consumer stands and whether one is at work. A cursor that is far
/// behind `head` and never held belongs to a consumer that may be gone;
/// it keeps the entries after it from being pruned until it is removed.
#[utoipa::path(
    get, path = "/api/admin/cursors", operation_id = "adminCursors",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every cursor, by name", body = CursorList),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
    )
)]
pub(crate) async fn cursors(
    State(app): State<AppState>,
    _: Admin,
) -> Result<Json<CursorList>, ApiError> {
    let listed = app.store.cursors().await?;
    let head = app.store.log_head().await?;
    let cursors = listed
        .into_iter()
        .map(|c| CursorView {
            name: c.name,
            position: c.position,
            held: c.held,
            lease_until: c.lease_until.map(time),
        })
        .collect();
    Ok(Json(CursorList { cursors, head }))
}

/// Removes a cursor whose consumer is gone for good (a webhook endpoint
/// taken out of the configuration), so that retention prunes past it
/// again. Idempotent: removing a cursor that does not exist answers 204
/// too, and so does a name no cursor can have (empty, over 200 bytes, or
/// with control characters). A consumer still running starts again from
/// the oldest entry kept.
#[utoipa::path(
    delete, path = "/api/admin/cursors/{name}", operation_id = "removeCursor",
    params(("name" = String, Path, description = "The cursor's name, percent-encoded as one path segment")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed (or there was none)"),
        (status = 400, description = "`INVALID_INPUT` on `name`: its percent-encoding is not UTF-8", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
    )
)]
pub(crate) async fn remove_cursor(
    State(app): State<AppState>,
    _: Admin,
    CursorPath(name): CursorPath,
) -> Result<StatusCode, ApiError> {
    // A name no cursor can have names none: there is nothing to remove.
    if check_cursor_name(&name).is_ok() {
        app.store.remove_cursor(&name).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

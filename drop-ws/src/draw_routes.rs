//! Draw drops: entering, reading and withdrawing one's entry, and the
//! draw's public record. The rules are the store's (`drop_core::entry`);
//! these handlers only name the buyer and shape the answers. A buyer only
//! ever sees and withdraws their own entry: the buyer is whoever the
//! identity hook says, never an id the request names.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drop_core::VariantId;

use crate::caller::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{DropPath, JsonBody, QueryParams};
use crate::purchase_routes::reader;
use crate::routes::{claimed_name, counted, created_or_ok, limited};
use crate::state::AppState;
use crate::wire::{DrawView, EnterDrawBody, EntryAnswer, EntryView, UsernameQuery};

/// Enters the caller in the drop's draw for one unit of a variant: 201
/// with the new entry, 200 with the entry they already have (whatever
/// variant was asked). At `drawAt` the draw gives the units out; winners
/// are told on their WebSocket (`holdOffered`), everyone by
/// `drawCompleted`.
#[utoipa::path(
    post, path = "/api/drops/{id}/entries", operation_id = "enterDraw",
    request_body = EnterDrawBody,
    params(("id" = Uuid, Path, description = "Drop id"), crate::idempotency::IgnoredKeyParam),
    responses(
        (status = 201, description = "Entered: the caller's new entry", body = EntryView),
        (status = 200, description = "The caller had entered already: their entry, unchanged \
            (whatever variant was asked)", body = EntryView),
        (status = 400, description = "`INVALID_INPUT` (`id` not a UUID; a field breaks its schema; \
            `variantId` missing on a drop of several variants) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`, `VARIANT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`NOT_A_DRAW` (a first-come drop: reserve instead); \
            `DROP_NOT_ACTIVE` (not started yet, or ended); `ENTRIES_CLOSED` (`drawAt` has come, \
            or the drop was drawn); `DROP_PAUSED`", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: a cookie-signed request whose body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per buyer)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn enter(
    State(app): State<AppState>,
    caller: Caller,
    DropPath(drop_id): DropPath,
    JsonBody(body): JsonBody<EnterDrawBody>,
) -> Result<Response, ApiError> {
    let ip = caller.client_ip();
    let variant = body
        .variant_id
        .as_deref()
        .map(|v| {
            v.parse::<VariantId>()
                .map_err(|_| ApiError::invalid("variantId", "must be a variant id (UUID)"))
        })
        .transpose()?;
    let claimed = claimed_name(&caller, body.username.as_ref())?;
    let buyer = caller.resolve(&app, claimed).await?;
    limited(&app, ip, &buyer)?;
    // No idempotency key is taken: entering again answers the same entry,
    // so a retry is already harmless.
    let entered = app.store.enter_draw(drop_id, &buyer, variant).await;
    let entered = counted(&app, "enter_draw", entered)?;
    Ok((
        created_or_ok(entered.changed),
        Json(EntryView::from(&entered.value)),
    )
        .into_response())
}

/// The caller's entry to the drop's draw, with its outcome once drawn.
#[utoipa::path(
    get, path = "/api/drops/{id}/entries", operation_id = "getEntry",
    params(("id" = Uuid, Path, description = "Drop id"), UsernameQuery),
    responses(
        (status = 200, description = "The caller's entry, or `null` when they have none (a \
            first-come drop has none)", body = EntryAnswer),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
    )
)]
pub(crate) async fn entry(
    State(app): State<AppState>,
    caller: Caller,
    DropPath(drop_id): DropPath,
    QueryParams(q): QueryParams<UsernameQuery>,
) -> Result<Json<EntryAnswer>, ApiError> {
    let buyer = reader(&app, caller, q.username.as_deref()).await?;
    let entry = app.store.draw_entry(drop_id, &buyer.id).await?;
    Ok(Json(EntryAnswer {
        entry: entry.as_ref().map(EntryView::from),
    }))
}

/// The caller withdraws their entry before `drawAt`. Idempotent: 204
/// also when they had none.
#[utoipa::path(
    delete, path = "/api/drops/{id}/entries", operation_id = "withdrawEntry",
    params(("id" = Uuid, Path, description = "Drop id"), UsernameQuery),
    responses(
        (status = 204, description = "Withdrawn (or had no entry)"),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`NOT_A_DRAW` (a first-come drop); `ENTRIES_CLOSED` \
            (`drawAt` has come: the entry stays in the draw)", body = ErrorBody),
    )
)]
pub(crate) async fn withdraw(
    State(app): State<AppState>,
    caller: Caller,
    DropPath(drop_id): DropPath,
    QueryParams(q): QueryParams<UsernameQuery>,
) -> Result<StatusCode, ApiError> {
    let buyer = reader(&app, caller, q.username.as_deref()).await?;
    let withdrawn = app.store.withdraw_entry(drop_id, &buyer.id).await;
    counted(&app, "withdraw_entry", withdrawn)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A draw drop's public record, to anyone: the seed's hash from the
/// drop's creation; once drawn, the seed, the entry list (receipts, no
/// buyers), each variant's stock and the winners, from which anyone can
/// redo the draw.
#[utoipa::path(
    get, path = "/api/drops/{id}/draw", operation_id = "getDraw",
    params(("id" = Uuid, Path, description = "Drop id")),
    responses(
        (status = 200, description = "The draw's record: `published` is `null` until the draw",
            body = DrawView),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`NOT_A_DRAW`: a first-come drop", body = ErrorBody),
    )
)]
pub(crate) async fn draw(
    State(app): State<AppState>,
    DropPath(drop_id): DropPath,
) -> Result<Json<DrawView>, ApiError> {
    let status = app.store.draw_status(drop_id).await?;
    Ok(Json(DrawView::from(&status)))
}

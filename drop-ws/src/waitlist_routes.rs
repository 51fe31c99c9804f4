//! The waiting list: joining a sold-out variant's line, seeing one's
//! place, leaving. The rules are the store's (`drop_core::waitlist`);
//! these handlers only name the buyer and shape the answers. A buyer only
//! ever sees and leaves their own place.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use drop_core::{ReserveRequest, VariantId};

use crate::caller::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{DropPath, JsonBody, QueryParams};
use crate::purchase_routes::reader;
use crate::routes::{claimed_name, counted, created_or_ok, limited};
use crate::state::AppState;
use crate::wire::{JoinWaitlistBody, UsernameQuery, WaitlistAnswer, WaitlistPlaceView};

/// Puts the caller in the line of a variant that cannot serve them now:
/// 201 with their new place, 200 with the same place when they already
/// wait for that variant and quantity. When units free up they go to the
/// head of the line as one hold (`offered: true`), told on the buyer's
/// WebSocket as `holdOffered`.
#[utoipa::path(
    post, path = "/api/drops/{id}/waitlist", operation_id = "joinWaitlist",
    request_body = JoinWaitlistBody,
    params(("id" = Uuid, Path, description = "Drop id"), crate::idempotency::IgnoredKeyParam),
    responses(
        (status = 201, description = "In line: the caller's new place", body = WaitlistPlaceView),
        (status = 200, description = "The caller already waits for this variant and quantity: \
            their place, unchanged", body = WaitlistPlaceView),
        (status = 400, description = "`INVALID_INPUT` (`id` not a UUID; a field breaks its schema; \
            `variantId` missing on a drop of several variants; `quantity` above the drop's \
            `maxPerBuyer`) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`, `VARIANT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`WAITLIST_CLOSED` (the drop has no waiting list); `DROP_NOT_ACTIVE` \
            (not started yet, or ended); `DROP_PAUSED`; `DRAW_ONLY` (a draw drop not drawn \
            yet: enter its draw instead); `ALREADY_IN_LINE` (the caller waits in this \
            drop for another variant or quantity: the body's `place` is that place; leave it first); \
            `HOLD_EXISTS` (the caller holds units of this drop: the body's `reservation` is that hold); \
            `BUYER_LIMIT_REACHED` (what they bought plus `quantity` is over `maxPerBuyer`); \
            `WAITLIST_NOT_NEEDED` (units are free now: reserve instead)", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: a cookie-signed request whose body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per buyer)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn join(
    State(app): State<AppState>,
    caller: Caller,
    DropPath(drop_id): DropPath,
    JsonBody(body): JsonBody<JoinWaitlistBody>,
) -> Result<Response, ApiError> {
    let ip = caller.client_ip();
    let mut request = ReserveRequest::new();
    if let Some(variant) = &body.variant_id {
        let variant: VariantId = variant
            .parse()
            .map_err(|_| ApiError::invalid("variantId", "must be a variant id (UUID)"))?;
        request = request.variant(variant);
    }
    if let Some(quantity) = body.quantity {
        request = request.quantity(quantity);
    }
    let claimed = claimed_name(&caller, body.username.as_ref())?;
    let buyer = caller.resolve(&app, claimed).await?;
    limited(&app, ip, &buyer)?;
    // No idempotency key is taken: joining again with the same request
    // answers the same place, so a retry is already harmless.
    let joined = app.store.join_waitlist(drop_id, &buyer, request).await;
    let joined = counted(&app, "join_waitlist", joined)?;
    Ok((
        created_or_ok(joined.changed),
        Json(WaitlistPlaceView::from(&joined.value)),
    )
        .into_response())
}

/// The caller's place in the drop's line: where they stand and how many
/// units are already set aside for them.
#[utoipa::path(
    get, path = "/api/drops/{id}/waitlist", operation_id = "getWaitlistPlace",
    params(("id" = Uuid, Path, description = "Drop id"), UsernameQuery),
    responses(
        (status = 200, description = "The caller's place, or `null` when they wait in none of the \
            drop's lines", body = WaitlistAnswer),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
    )
)]
pub(crate) async fn place(
    State(app): State<AppState>,
    caller: Caller,
    DropPath(drop_id): DropPath,
    QueryParams(q): QueryParams<UsernameQuery>,
) -> Result<Json<WaitlistAnswer>, ApiError> {
    let buyer = reader(&app, caller, q.username.as_deref()).await?;
    let place = app.store.waitlist_place(drop_id, &buyer.id).await?;
    Ok(Json(WaitlistAnswer {
        place: place.as_ref().map(WaitlistPlaceView::from),
    }))
}

/// The caller leaves the drop's line; units set aside for them go to the
/// next in line (or back on sale). Idempotent: 204 also when they were
/// in no line.
#[utoipa::path(
    delete, path = "/api/drops/{id}/waitlist", operation_id = "leaveWaitlist",
    params(("id" = Uuid, Path, description = "Drop id"), UsernameQuery),
    responses(
        (status = 204, description = "Out of the line (or was in none)"),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
    )
)]
pub(crate) async fn leave(
    State(app): State<AppState>,
    caller: Caller,
    DropPath(drop_id): DropPath,
    QueryParams(q): QueryParams<UsernameQuery>,
) -> Result<StatusCode, ApiError> {
    let buyer = reader(&app, caller, q.username.as_deref()).await?;
    let left = app.store.leave_waitlist(drop_id, &buyer.id).await;
    counted(&app, "leave_waitlist", left)?;
    Ok(StatusCode::NO_CONTENT)
}

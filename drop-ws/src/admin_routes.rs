//! The admin operations: every drop, edits, pause, resume, end now, and
//! cancelling a purchase. Every write takes an `Idempotency-Key`.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use std::time::Duration;

use drop_core::{Applied, DropPatch, DropState, InventoryStoreExt, VariantId};

use crate::caller::Admin;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{AnyBody, DropPath, PurchasePath, RawJson};
use crate::idempotency::{KeyHeader, KeyOwner, answer};
use crate::routes::rule;
use crate::state::AppState;
use crate::wire::{DropView, PatchDropBody, PurchaseView};

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

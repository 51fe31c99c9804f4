//! Reading purchases: one by id (its buyer or an admin), and the caller's
//! own, newest first, a page at a time.

use axum::Json;
use axum::extract::State;
use drop_core::{DropError, MAX_PAGE, PurchaseId};

use crate::caller::{Caller, Reader};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{PurchasePath, QueryParams};
use crate::schema::DEFAULT_PAGE;
use crate::state::AppState;
use crate::wire::{PurchasePage, PurchaseView, PurchasesQuery, UsernameQuery};

/// The buyer a read acts for: under claimed identity the one
/// `?username=` names.
pub(crate) async fn reader(
    app: &AppState,
    caller: Caller,
    username: Option<&str>,
) -> Result<drop_core::Buyer, ApiError> {
    let claimed = match username.map(str::trim) {
        Some(raw) if caller.is_claimed() && !raw.is_empty() => Some(raw),
        _ => None,
    };
    caller.resolve(app, claimed).await
}

/// One purchase, completed or cancelled: to its buyer, or to an admin.
#[utoipa::path(
    get, path = "/api/purchases/{id}", operation_id = "getPurchase",
    params(("id" = Uuid, Path, description = "Purchase id"), UsernameQuery),
    responses(
        (status = 200, description = "The purchase", body = PurchaseView),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session (nor the admin's token)", body = ErrorBody),
        (status = 404, description = "`PURCHASE_NOT_FOUND`: no such purchase, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_purchase(
    State(app): State<AppState>,
    who: Reader,
    PurchasePath(id): PurchasePath,
    QueryParams(q): QueryParams<UsernameQuery>,
) -> Result<Json<PurchaseView>, ApiError> {
    let purchase = match who {
        Reader::Admin => app.store.get_purchase(id).await?,
        Reader::Buyer(caller) => {
            let buyer = reader(&app, *caller, q.username.as_deref()).await?;
            let purchase = app.store.get_purchase(id).await?;
            // Another buyer's purchase is simply not there.
            if purchase.buyer_id != buyer.id {
                return Err(DropError::PurchaseNotFound { purchase_id: id }.into());
            }
            purchase
        }
    };
    Ok(Json(PurchaseView::from(&purchase)))
}

/// The caller's purchases in every drop, cancelled ones included, newest
/// first.
#[utoipa::path(
    get, path = "/api/me/purchases", operation_id = "myPurchases",
    params(PurchasesQuery),
    responses(
        (status = 200, description = "One page; pass its `nextBefore` as `before` for the next", body = PurchasePage),
        (status = 400, description = "`INVALID_INPUT` on `limit` (not 1–100) or `before` (not a UUID)", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 404, description = "`PURCHASE_NOT_FOUND`: `before` is none of the caller's purchases", body = ErrorBody),
    )
)]
pub(crate) async fn my_purchases(
    State(app): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<PurchasesQuery>,
) -> Result<Json<PurchasePage>, ApiError> {
    let limit = match q.limit.as_deref() {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let before = q
        .before
        .as_deref()
        .map(|raw| {
            raw.trim()
                .parse::<PurchaseId>()
                .map_err(|_| ApiError::invalid("before", "must be a purchase id (UUID)"))
        })
        .transpose()?;
    let buyer = reader(&app, caller, q.username.as_deref()).await?;
    // One more than the page, when the store allows it, tells whether
    // another page follows without a request that answers nothing.
    let ask = (limit + 1).min(MAX_PAGE);
    let mut purchases = app.store.buyer_purchases(&buyer.id, before, ask).await?;
    let more = purchases.len() > limit || (purchases.len() == MAX_PAGE && limit == MAX_PAGE);
    purchases.truncate(limit);
    let next_before = more
        .then(|| purchases.last().map(|p| p.id.as_uuid()))
        .flatten();
    Ok(Json(PurchasePage {
        purchases: purchases.iter().map(PurchaseView::from).collect(),
        next_before,
    }))
}

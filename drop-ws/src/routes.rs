//! The REST handlers of drops, holds and purchases.

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use std::time::Duration;

use drop_core::{Buyer, DropError, NewDrop, NewVariant, ReservationId, ReserveRequest, VariantId};

use crate::caller::{Admin, Caller, Viewer};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{OptionalJsonBody, QueryParams, RawJson, ReservationPath};
use crate::idempotency::{KeyHeader, KeyOwner, answer};
use crate::state::AppState;
use crate::wire::{
    CreateDropBody, DropView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, UsernameQuery,
};

/// Counts an operation's outcome and passes the result through.
pub(crate) fn counted<T>(
    app: &AppState,
    op: &'static str,
    r: Result<T, DropError>,
) -> Result<T, ApiError> {
    match r {
        Ok(v) => {
            app.metrics.operation(op, "ok");
            Ok(v)
        }
        Err(err) => {
            app.metrics.operation(op, err.code());
            Err(err.into())
        }
    }
}

/// Through the web API another buyer's hold is simply not there: a 404,
/// never "not yours", so ids tell a stranger nothing.
fn not_theirs(err: DropError) -> DropError {
    match err {
        DropError::NotOwner { reservation_id } => DropError::ReservationNotFound { reservation_id },
        other => other,
    }
}

/// The status of a write's answer: 201 when it (or, for a replay, the
/// request replayed) created the entity, 200 otherwise.
pub(crate) fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

/// The per-address and per-buyer rate limits, when on.
pub(crate) fn limited(
    app: &AppState,
    caller_ip: Option<std::net::IpAddr>,
    buyer: &Buyer,
) -> Result<(), ApiError> {
    match &app.limits {
        Some(limits) => limits.check(caller_ip, buyer.id.as_str()),
        None => Ok(()),
    }
}

/// Live and upcoming drops, each with the caller's own hold.
#[utoipa::path(
    get, path = "/api/drops", operation_id = "listDrops", params(UsernameQuery),
    responses(
        (status = 200, description = "Drops that have not ended", body = [DropView]),
        (status = 400, description = "`INVALID_INPUT`: a username that breaks the rules", body = ErrorBody),
    )
)]
pub(crate) async fn list_drops(
    State(app): State<AppState>,
    Viewer(viewer): Viewer,
) -> Result<Json<Vec<DropView>>, ApiError> {
    let drops = app.store.overview(viewer.as_ref().map(|b| &b.id)).await?;
    Ok(Json(
        drops.iter().map(|d| DropView::of(d, app.names)).collect(),
    ))
}

/// Creates a drop (admin only).
#[utoipa::path(
    post, path = "/api/drops", operation_id = "createDrop", request_body = CreateDropBody,
    params(crate::idempotency::IdempotencyKeyParam),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created (or, with a replayed `Idempotency-Key`, the drop it created, as it is now)",
            body = DropView, headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema, or a bad `Idempotency-Key`) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 409, description = "`IDEMPOTENCY_IN_PROGRESS`: a request with this key is still being answered", body = ErrorBody),
        (status = 422, description = "`INVALID_INPUT` on `startsAt` or `endsAt`: an instant outside \
            1970-01-01T00:00:00Z – 9999-12-31T23:59:59Z, `endsAt` not after `startsAt`, or `endsAt` \
            already passed; on `totalStock`: missing without `variants`, or not their sum; on `variants`: \
            names not unique, or no stock in all. Rules between fields and against the clock, which the \
            schema cannot state. `IDEMPOTENCY_KEY_REUSED`: the key was used for another request.",
            body = ErrorBody),
    )
)]
pub(crate) async fn create_drop(
    State(app): State<AppState>,
    _: Admin,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    RawJson(body, raw): RawJson<CreateDropBody>,
) -> Result<Response, ApiError> {
    let new = body.into_new_drop(app.default_hold).map_err(rule)?;
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Admin, &method, uri.path(), &raw)?;
    let applied = app
        .store
        .create_drop_with(new, keyed.as_ref().map(|k| &k.key))
        .await
        .map_err(|err| rule(err.into()))?;
    Ok(answer(
        StatusCode::CREATED,
        applied.replayed,
        DropView::new(&applied.value, &[], None, app.names),
    ))
}

/// Holds units of one variant for the caller: 201 with a new hold, 200
/// with the same hold again.
#[utoipa::path(
    post, path = "/api/reservations", operation_id = "reserve", request_body = ReserveBody,
    params(crate::idempotency::IdempotencyKeyParam),
    responses(
        (status = 201, description = "New hold (or its replay by `Idempotency-Key`, as it is now)", body = ReservationView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 200, description = "The caller's existing hold of the same variant and quantity, unchanged", body = ReservationView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema; `variantId` missing on a drop \
            of several variants; `quantity` above the drop's `maxPerBuyer`; a bad `Idempotency-Key`) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`, `VARIANT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`OUT_OF_STOCK`; `DROP_NOT_ACTIVE` (not started yet, or ended); `DROP_PAUSED`; \
            `DRAW_ONLY` (a draw drop not drawn yet: enter its draw instead); \
            `HOLD_EXISTS` (the caller holds something else of this drop: the body's `reservation` is that hold); \
            `BUYER_LIMIT_REACHED` (with what they bought, over `maxPerBuyer`); `IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: a cookie-signed request whose body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key was used for another request", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per buyer)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn reserve(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    RawJson(body, raw): RawJson<ReserveBody>,
) -> Result<Response, ApiError> {
    let ip = caller.client_ip();
    let drop_id = body.drop_id.parse()?;
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
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Buyer(&buyer.id), &method, uri.path(), &raw)?;
    let reserved = app
        .store
        .reserve_with(drop_id, &buyer, request, keyed.as_ref().map(|k| &k.key))
        .await;
    let reserved = counted(&app, "reserve", reserved)?;
    Ok(answer(
        created_or_ok(reserved.created),
        reserved.replayed,
        ReservationView::from(&reserved.reservation),
    ))
}

/// One of the caller's holds: its status and expiry.
#[utoipa::path(
    get, path = "/api/reservations/{id}", operation_id = "getReservation",
    params(("id" = Uuid, Path, description = "Reservation id")),
    responses(
        (status = 200, description = "The hold, whatever its status (a released or expired hold \
            stays readable, with that status)", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`: no such hold, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_reservation(
    State(app): State<AppState>,
    caller: Caller,
    ReservationPath(id): ReservationPath,
) -> Result<Json<ReservationView>, ApiError> {
    let res = if caller.is_claimed() {
        // The original API: a hold is readable by its id alone.
        app.store.get_reservation(id).await?
    } else {
        let buyer = caller.resolve(&app, None).await?;
        let res = app.store.get_reservation(id).await?;
        if res.buyer_id != buyer.id {
            return Err(DropError::ReservationNotFound { reservation_id: id }.into());
        }
        res
    };
    Ok(Json(ReservationView::from(&res)))
}

/// The caller gives one of their holds back. Releasing ends the hold, it
/// does not erase it: the hold stays readable with
/// `GET /api/reservations/{id}`, status `released`.
#[utoipa::path(
    delete, path = "/api/reservations/{id}", operation_id = "release",
    params(("id" = Uuid, Path, description = "Reservation id"), UsernameQuery),
    request_body(content = ReleaseBody, description = "Optional: the owner's username (it wins over `?username=`)"),
    responses(
        (status = 200, description = "Released; the hold stays readable with status `released`", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` (`id` not a UUID, or a username that breaks the rules) \
            or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`NOT_OWNER` (claimed identity only); or `FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`: no such hold, or not the caller's", body = ErrorBody),
        (status = 409, description = "`ALREADY_PURCHASED` or `ALREADY_RELEASED`", body = ErrorBody),
        (status = 410, description = "`RESERVATION_EXPIRED`", body = ErrorBody),
        (status = 422, description = "`INVALID_INPUT` on `username`: the owner is named neither in the \
            body nor in the query (a rule between two places, which the schema cannot state)", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(app): State<AppState>,
    caller: Caller,
    ReservationPath(id): ReservationPath,
    QueryParams(q): QueryParams<UsernameQuery>,
    OptionalJsonBody(body): OptionalJsonBody<ReleaseBody>,
) -> Result<Json<ReservationView>, ApiError> {
    if !caller.is_claimed() {
        let buyer = caller.resolve(&app, None).await?;
        let res = app.store.release(id, &buyer.id).await.map_err(not_theirs);
        let res = counted(&app, "release", res)?;
        return Ok(Json(ReservationView::from(&res)));
    }
    // Claimed identity: a `?username=` is checked even when the body
    // names the owner, so no input is accepted unread.
    let from_query = match q.username.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(caller_name(raw)?),
    };
    let name = match body.and_then(|b| b.username) {
        Some(raw) => raw,
        None => from_query.ok_or_else(|| {
            ApiError::invalid("username", "name the owner in the body or in `?username=`")
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        })?,
    };
    let buyer = caller.resolve(&app, Some(&name)).await?;
    let res = counted(&app, "release", app.store.release(id, &buyer.id).await)?;
    Ok(Json(ReservationView::from(&res)))
}

/// The `username` a body names, read only under claimed identity (other
/// identities ignore the field whatever it holds): a string, or a 400 on
/// `username` as the original API answered.
pub(crate) fn claimed_name<'a>(
    caller: &Caller,
    raw: Option<&'a serde_json::Value>,
) -> Result<Option<&'a str>, ApiError> {
    if !caller.is_claimed() {
        return Ok(None);
    }
    raw.map(|v| {
        <&str as serde::Deserialize>::deserialize(v)
            .map_err(|err| ApiError::invalid("username", err.to_string()))
    })
    .transpose()
}

/// A claimed name, checked.
fn caller_name(raw: &str) -> Result<String, ApiError> {
    drop_core::Username::parse(raw)?;
    Ok(raw.to_owned())
}

/// Buys one of the caller's holds within its window: the price × its
/// quantity. The owner repeating it gets the same purchase again (200).
#[utoipa::path(
    post, path = "/api/purchases", operation_id = "purchase", request_body = PurchaseBody,
    params(crate::idempotency::IdempotencyKeyParam),
    responses(
        (status = 201, description = "Bought (or its replay by `Idempotency-Key`, as it is now)", body = PurchaseView,
            headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 200, description = "The hold was bought already: the same purchase, as it is now (it may have been cancelled since)",
            body = PurchaseView, headers(("Idempotent-Replayed" = String, description = "`true` on a replay"))),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema, or a bad `Idempotency-Key`) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`NOT_OWNER` (claimed identity only); or `FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`: no such hold, or not the caller's", body = ErrorBody),
        (status = 409, description = "`ALREADY_RELEASED`; `IDEMPOTENCY_IN_PROGRESS`", body = ErrorBody),
        (status = 410, description = "`RESERVATION_EXPIRED`: the hold ran out (even if no sweeper has run yet)", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: a cookie-signed request whose body is not `application/json`", body = ErrorBody),
        (status = 422, description = "`IDEMPOTENCY_KEY_REUSED`: the key was used for another request", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per buyer)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn purchase(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    key: KeyHeader,
    RawJson(body, raw): RawJson<PurchaseBody>,
) -> Result<Response, ApiError> {
    let ip = caller.client_ip();
    let claimed = caller.is_claimed();
    let id: ReservationId = body.reservation_id.parse()?;
    let name = claimed_name(&caller, body.username.as_ref())?;
    let buyer = caller.resolve(&app, name).await?;
    limited(&app, ip, &buyer)?;
    let keyed = app
        .in_flight
        .begin(key, KeyOwner::Buyer(&buyer.id), &method, uri.path(), &raw)?;
    let mut bought = app
        .store
        .purchase_with(id, &buyer.id, keyed.as_ref().map(|k| &k.key))
        .await;
    if !claimed {
        bought = bought.map_err(not_theirs);
    }
    let bought = counted(&app, "purchase", bought)?;
    Ok(answer(
        created_or_ok(bought.created),
        bought.replayed,
        PurchaseView::from(&bought.purchase),
    ))
}

/// `INVALID_INPUT` from drop validation on `startsAt`/`endsAt`, on a
/// variant's name being unique, or on stock summed over the variants is a
/// rule between fields or against the clock (the shape was checked while
/// parsing), so it answers 422, keeping 400 for what the schema states.
pub(crate) fn rule(err: ApiError) -> ApiError {
    let message = err.message();
    let between = match err.field() {
        // Every `drawAt` rule is between fields or against the clock (its
        // shape was checked while parsing).
        Some("startsAt" | "endsAt" | "drawAt") => true,
        // A beacon's name on a first-come drop; its length is the schema's.
        Some("beaconName") => message.contains("draw drops only"),
        Some("variants") => message.contains("total stock"),
        Some(f) => f.starts_with("variants[") && message.contains("unique"),
        None => false,
    };
    if err.code() == "INVALID_INPUT" && between {
        err.with_status(StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        err
    }
}

impl CreateDropBody {
    /// The domain request, with `default_hold` when none is given.
    pub(crate) fn into_new_drop(self, default_hold: Duration) -> Result<NewDrop, ApiError> {
        let hold = match self.hold_seconds {
            None => default_hold,
            Some(secs) => Duration::try_from_secs_f64(secs)
                .map_err(|_| ApiError::invalid("holdSeconds", "must be a positive number"))?,
        };
        let with_variants = self.variants.is_some();
        let mut new = match self.variants {
            None => {
                let total = self.total_stock.ok_or_else(|| {
                    ApiError::invalid("totalStock", "is required when no variants are given")
                        .with_status(StatusCode::UNPROCESSABLE_ENTITY)
                })?;
                NewDrop::new(self.name, self.price, total)
            }
            Some(variants) => {
                let new = NewDrop::with_variants(
                    self.name,
                    self.price,
                    variants
                        .into_iter()
                        .map(|v| NewVariant::new(v.name, v.total_stock)),
                );
                if let Some(total) = self.total_stock
                    && total != new.total_stock()
                {
                    return Err(ApiError::invalid(
                        "totalStock",
                        "must equal the sum of the variants' totalStock (or be left out)",
                    )
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY));
                }
                new
            }
        }
        .hold(hold);
        if let Some(max) = self.max_per_buyer {
            new = new.max_per_buyer(max);
        }
        if let Some(on) = self.waitlist {
            new = new.waitlist(on);
        }
        // `drawAt` alone makes a draw drop, as `NewDrop::draw_at` does; an
        // explicit `firstCome` with it is refused by `validate`.
        new.mode = match (self.mode, self.draw_at) {
            (Some(mode), _) => mode,
            (None, Some(_)) => drop_core::SaleMode::Draw,
            (None, None) => drop_core::SaleMode::FirstCome,
        };
        new.draw_at = self.draw_at;
        new.beacon_name = self.beacon_name;
        new.starts_at = self.starts_at;
        new.ends_at = self.ends_at;
        new.validate().map_err(|err| {
            // One variant given in `variants` with no stock: the rule is on
            // the sum, as for several.
            if with_variants && err.field() == Some("totalStock") {
                ApiError::invalid("variants", err.to_string())
                    .with_status(StatusCode::UNPROCESSABLE_ENTITY)
            } else if !with_variants && err.field() == Some("variants[0].totalStock") {
                // The drop's one variant is the body's `totalStock`.
                ApiError::invalid(
                    "totalStock",
                    format!("must be between 1 and {}", drop_core::MAX_STOCK),
                )
            } else {
                err.into()
            }
        })?;
        Ok(new)
    }
}

/// Any other path under `/api`.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}
